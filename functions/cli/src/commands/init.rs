//! `collect init DIR`: writes the standard policy built into `collect`
//! ([`crate::standard`]) to a folder, as a starting point for your own.

use crate::standard::{files, write_out};
use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;

/// Write the standard policy, its tests and templates (built into
/// `collect`) to a folder, as a starting point for your own.
#[derive(clap::Args)]
pub struct Args {
    /// The folder to write to (created when missing).
    dir: PathBuf,
    /// Overwrite files already there.
    #[arg(long)]
    force: bool,
}

/// `collect init DIR`: the standard policy, its tests and templates as a
/// starting point.
pub fn run(args: &Args) -> Result<ExitCode> {
    let dir = args.dir.as_path();
    let policy = write_out(dir, args.force)?;
    println!(
        "Wrote the standard policy, its tests and {} templates to {}.\n\
         Next:\n  collect check {d}\n  collect test {d}\n  collect demo --policy {p}",
        files()
            .iter()
            .filter(|(p, _)| p.ends_with("subject.txt"))
            .count(),
        dir.display(),
        d = dir.display(),
        p = policy.display()
    );
    Ok(ExitCode::SUCCESS)
}
