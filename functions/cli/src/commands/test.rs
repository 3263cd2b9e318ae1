//! `collect test`: runs the policy test files next to the policies and ends
//! with `N passed, N failed`. Fails when a case fails or when no case ran.

use crate::args::Format;
use crate::case_bench::{Bench, run_case};
use crate::cases;
use crate::policy_files;
use anyhow::{Result, bail};
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

/// Run the policy test files (`*.tests.toml`) found under the paths.
#[derive(clap::Args)]
pub struct Args {
    /// Test files (`*.tests.toml`) or folders holding them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Output: `human` for people, `json` for tools.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

#[derive(Serialize)]
struct Outcome {
    file: String,
    line: usize,
    case: String,
    passed: bool,
    failures: Vec<String>,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let files = policy_files::find(&args.paths, ".tests.toml")?;
    let mut outcomes = Vec::new();
    let mut broken_files = 0;
    for path in &files {
        match cases::read(path, policy_files::load) {
            Ok((file, policy)) => {
                let bench = Bench::new(policy, &file.policy_path)?;
                for broken in &file.broken {
                    outcomes.push(Outcome {
                        file: path.display().to_string(),
                        line: broken.line,
                        case: broken.name.clone(),
                        passed: false,
                        failures: vec![format!("this case cannot be read: {}", broken.problem)],
                    });
                }
                for case in &file.cases {
                    let failures = run_case(&bench, case);
                    outcomes.push(Outcome {
                        file: path.display().to_string(),
                        line: case.line,
                        case: case.name.clone(),
                        passed: failures.is_empty(),
                        failures,
                    });
                }
            }
            Err(e) => {
                broken_files += 1;
                eprintln!("error: {:#}", anyhow::Error::from(e));
            }
        }
    }
    outcomes.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    let passed = outcomes.iter().filter(|o| o.passed).count();
    let failed = outcomes.len() - passed;
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "passed": passed, "failed": failed, "broken_files": broken_files, "cases": outcomes
            }))?
        ),
        Format::Human => {
            let mut current = String::new();
            for o in &outcomes {
                if o.file != current {
                    println!("{}", o.file);
                    current.clone_from(&o.file);
                }
                if o.passed {
                    println!("  ok    {}", o.case);
                } else {
                    println!("  FAIL  {}  ({}:{})", o.case, o.file, o.line);
                    for f in &o.failures {
                        println!("        {f}");
                    }
                }
            }
            println!("{passed} passed, {failed} failed");
        }
    }
    if files.is_empty() {
        bail!("no policy test files (`*.tests.toml`) found; no test ran");
    }
    if outcomes.is_empty() && broken_files == 0 {
        bail!("the test files hold no `[[case]]`; no test ran");
    }
    Ok(if failed > 0 || broken_files > 0 || outcomes.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
