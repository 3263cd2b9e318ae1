//! `collect fmt`: rewrite policy files in the canonical layout, or with
//! `--check` list the ones that are not.

use crate::policy_files;
use anyhow::{Context, Result, bail};
use policy_lang::format::{FormatError, format};
use std::path::PathBuf;
use std::process::ExitCode;

/// Lay policy files out in the one canonical way, keeping every comment.
#[derive(clap::Args)]
pub struct Args {
    /// Policy files or folders holding them (searched recursively).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Change nothing; list the files that are not formatted and exit 1.
    #[arg(long)]
    check: bool,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let check = args.check;
    let files = policy_files::find(&args.paths, ".policy")?;
    if files.is_empty() {
        bail!("no `.policy` files found");
    }
    let mut differ = Vec::new();
    let mut failed = false;
    for path in &files {
        let source = policy_files::read(path)?;
        let name = path.display().to_string();
        match format(&source) {
            Ok(out) if out == source => {}
            Ok(out) => {
                if check {
                    differ.push(name);
                } else {
                    std::fs::write(path, out).with_context(|| format!("cannot write {name}"))?;
                    println!("formatted {name}");
                }
            }
            Err(FormatError::Syntax(mut diags)) => {
                failed = true;
                for d in &mut diags {
                    d.file = name.clone();
                }
                eprint!(
                    "{}",
                    policy_lang::diagnostic::render(&diags, &source, policy_files::color())
                );
                eprintln!(
                    "{name}: not formatted because it does not parse; fix the errors above first"
                );
            }
            Err(FormatError::NotEquivalent(why)) => {
                failed = true;
                eprintln!(
                    "{name}: left unchanged: {why} (this is a bug in `collect fmt`; please report it)"
                );
            }
        }
    }
    if check && !differ.is_empty() {
        for d in &differ {
            println!("not formatted: {d}");
        }
        println!("run `collect fmt` on these files to format them");
        return Ok(ExitCode::FAILURE);
    }
    if failed {
        return Ok(ExitCode::FAILURE);
    }
    if check {
        println!("{} policy file(s) already formatted", files.len());
    }
    Ok(ExitCode::SUCCESS)
}
