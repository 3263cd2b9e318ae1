//! `collect test`: runs the policy test files next to the policies and ends
//! with `N passed, N failed`. Fails when a case fails or when no case ran.

use crate::Format;
use crate::cases::{self, Case};
use crate::policy_files;
use anyhow::{Result, bail};
use collect_delivery::message::{PayLinks, Templates};
use collect_delivery::rehearsal::{DayOutcome, rehearse};
use collect_engine::domain::ActionStatus;
use policy_lang::Policy;
use serde::Serialize;
use std::path::Path;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Serialize)]
struct Outcome {
    file: String,
    line: usize,
    case: String,
    passed: bool,
    failures: Vec<String>,
}

pub fn run(paths: &[PathBuf], format: Format) -> Result<ExitCode> {
    let files = policy_files::find(paths, ".tests.toml")?;
    let mut outcomes = Vec::new();
    let mut broken_files = 0;
    for path in &files {
        match cases::read(path, policy_files::load) {
            Ok((file, policy)) => {
                let bench = Bench::new(policy, &file.policy_path)?;
                for (name, line, problem) in &file.broken {
                    outcomes.push(Outcome {
                        file: path.display().to_string(),
                        line: *line,
                        case: name.clone(),
                        passed: false,
                        failures: vec![format!("this case cannot be read: {problem}")],
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
                eprintln!("error: {e:#}");
            }
        }
    }
    outcomes.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    let passed = outcomes.iter().filter(|o| o.passed).count();
    let failed = outcomes.len() - passed;
    match format {
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

fn describe(day: &DayOutcome) -> String {
    if day.actions.is_empty() {
        format!("no action ({})", day.reasons.join("; "))
    } else {
        day.actions
            .iter()
            .map(|a| match (a.status, &a.note) {
                (ActionStatus::Deferred, Some(r)) => format!(
                    "{} (deferred: {})",
                    a.describe(),
                    collect_delivery::ledger::note_after_status("deferred", r)
                ),
                (ActionStatus::Failed, Some(r)) => format!("{} (FAILED: {r})", a.describe()),
                _ => a.describe(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What a case runs against: the policy, its templates and a pay-link key.
pub struct Bench {
    pub policy: Policy,
    pub templates: Result<Templates, String>,
    pub pay_links: PayLinks,
}

impl Bench {
    /// The policy with the templates beside it, as `collect run` loads them.
    pub fn new(policy: Policy, policy_path: &Path) -> Result<Bench> {
        let dir = policy_path
            .parent()
            .unwrap_or(Path::new("."))
            .join("templates");
        let templates = Templates::load(&dir).map_err(|e| e.to_string());
        // A fixed key: the tests never send a link anywhere.
        let pay_links = PayLinks::new(&[0x5a; 32], "https://pay.policy-test.example/{token}")
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Bench {
            policy,
            templates,
            pay_links,
        })
    }

    /// The case's days as the production sweep lives them.
    pub fn rehearse(&self, case: &Case) -> Result<Vec<DayOutcome>, String> {
        let templates = self
            .templates
            .as_ref()
            .map_err(|e| format!("the templates cannot be loaded: {e}"))?;
        let (book, run) = case.rehearsal()?;
        rehearse(&self.policy, templates, &self.pay_links, &book, &run).map_err(|e| e.to_string())
    }
}

/// Checks one case through the production sweep; returns what went wrong,
/// empty when it passed.
pub fn run_case(bench: &Bench, case: &Case) -> Vec<String> {
    let days = match bench.rehearse(case) {
        Ok(days) => days,
        Err(e) => return vec![format!("this case cannot run: {e}")],
    };
    let mut failures = Vec::new();
    for plan in &days {
        let day = plan.day.map(|d| d.to_string()).unwrap_or_default();
        if let Some(want) = &case.segment
            && plan.segment.as_deref() != Some(want.as_str())
        {
            failures.push(format!(
                "on {day}: expected segment {want}, got {}",
                plan.segment.as_deref().unwrap_or("none")
            ));
        }
        for a in plan
            .actions
            .iter()
            .filter(|a| a.status == ActionStatus::Failed)
        {
            failures.push(format!(
                "on {day}: `{}` failed in the sweep: {}",
                a.describe(),
                a.note.as_deref().unwrap_or("no reason recorded")
            ));
        }
        for (expected, deferred) in [(&case.expect, false), (&case.deferred, true)] {
            let Some(expect) = expected else { continue };
            let mut got: Vec<String> = plan
                .actions
                .iter()
                .filter(|a| a.is_deferred() == deferred && a.status != ActionStatus::Failed)
                .map(|a| a.describe())
                .collect();
            let mut want = expect.clone();
            got.sort();
            want.sort();
            if got != want {
                let what = if deferred { "deferred" } else { "sent" };
                let want_text = if want.is_empty() {
                    "nothing".to_string()
                } else {
                    want.join(", ")
                };
                failures.push(format!(
                    "on {day}: expected {what}: {want_text}; got {}",
                    describe(plan)
                ));
            }
        }
        if let Some(reason) = &case.no_action {
            let matches = plan.actions.is_empty()
                && plan
                    .reasons
                    .iter()
                    .any(|r| r.to_lowercase().contains(&reason.to_lowercase()));
            if !matches {
                failures.push(format!(
                    "on {day}: expected no action because of `{reason}`, got {}",
                    describe(plan)
                ));
            }
        }
        for never in &case.never {
            for a in &plan.actions {
                if a.label == *never || a.label.starts_with(&format!("{never} ")) {
                    failures.push(format!(
                        "on {day}: `{}` must never happen here ({})",
                        a.describe(),
                        a.rule
                    ));
                }
            }
        }
    }
    // Over a long range one mistake fails every day; show the first few.
    const SHOWN: usize = 5;
    if failures.len() > SHOWN {
        let more = failures.len() - SHOWN;
        failures.truncate(SHOWN);
        failures.push(format!("… and {more} more"));
    }
    failures
}
