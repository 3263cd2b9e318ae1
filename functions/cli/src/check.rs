//! `collect check`: every problem in every policy file, in one run.

use crate::Format;
use crate::policy_files::{self, TemplateDir};
use anyhow::{Result, bail};
use policy_lang::Diagnostic;
use std::path::PathBuf;
use std::process::ExitCode;

pub fn run(paths: &[PathBuf], format: Format, deny_warnings: bool) -> Result<ExitCode> {
    let files = policy_files::find(paths, ".policy")?;
    if files.is_empty() {
        bail!("no `.policy` files found under {}", show(paths));
    }
    let mut all: Vec<Diagnostic> = Vec::new();
    let mut rendered = String::new();
    for path in &files {
        let source = policy_files::read(path)?;
        let name = path.display().to_string();
        let catalog = TemplateDir::beside(path);
        let (_, diags) = policy_lang::check_source(&source, &name, Some(&catalog));
        rendered.push_str(&policy_lang::diagnostic::render(
            &diags,
            &source,
            policy_files::color(),
        ));
        all.extend(diags);
    }
    let (errors, warnings) = policy_files::count(&all);
    match format {
        Format::Json => {
            let out = serde_json::json!({
                "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
                "errors": errors,
                "warnings": warnings,
                "diagnostics": all,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Format::Human => {
            eprint!("{rendered}");
            println!(
                "checked {} policy file(s): {errors} error(s), {warnings} warning(s)",
                files.len()
            );
        }
    }
    let failed = errors > 0 || (deny_warnings && warnings > 0);
    if errors == 0 && failed && format == Format::Human {
        println!("failing because --deny-warnings treats warnings as errors");
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn show(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
