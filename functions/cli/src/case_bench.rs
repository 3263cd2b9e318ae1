//! Policy test cases run through the production sweep: [`Bench`] is what a
//! case runs against (the policy, the templates beside it, a pay-link
//! key); [`run_case`] checks a case's expectations day by day (for
//! `collect test`), and [`explain_case`] shows one case's decision with
//! its trace (for `collect explain --case`).

use crate::cases::{self, Case, CaseBookError, CaseError, CaseFileError};
use crate::policy_files;
use chrono::NaiveDate;
use collect_delivery::message::{PayLinkError, PayLinks, TemplateError, Templates};
use collect_delivery::rehearsal::{DayOutcome, RehearsalError, rehearse};
use collect_engine::domain::ActionStatus;
use policy_lang::Policy;
use policy_lang::explain::Trace;
use std::path::Path;
use std::sync::Arc;

/// What a case runs against: the policy, its templates and a pay-link key.
pub struct Bench {
    pub policy: Policy,
    /// The templates beside the policy, or why they do not load (then each
    /// case fails with it, and the rest of the file still runs).
    pub templates: Result<Templates, Arc<TemplateError>>,
    pub pay_links: PayLinks,
}

/// The bench's fixed pay-link key was refused (a fault of this build).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BenchError(PayLinkError);

/// A case that cannot be rehearsed.
#[derive(Debug, thiserror::Error)]
pub enum RehearseError {
    #[error("the templates cannot be loaded: {0}")]
    Templates(Arc<TemplateError>),
    #[error(transparent)]
    Case(#[from] CaseBookError),
    /// The sweep itself failed (not the case).
    #[error("{0}")]
    Sweep(RehearsalError),
}

impl Bench {
    /// The policy with the templates beside it, as `collect run` loads them.
    pub fn new(policy: Policy, policy_path: &Path) -> Result<Bench, BenchError> {
        let dir = policy_path
            .parent()
            .unwrap_or(Path::new("."))
            .join("templates");
        let templates = Templates::load(&dir).map_err(Arc::new);
        // A fixed key: the tests never send a link anywhere.
        let pay_links = PayLinks::new(&[0x5a; 32], "https://pay.policy-test.example/{token}")
            .map_err(BenchError)?;
        Ok(Bench {
            policy,
            templates,
            pay_links,
        })
    }

    /// The case's days as the production sweep lives them.
    pub fn rehearse(&self, case: &Case) -> Result<Vec<DayOutcome>, RehearseError> {
        let templates = self
            .templates
            .as_ref()
            .map_err(|e| RehearseError::Templates(Arc::clone(e)))?;
        let (book, run) = case.rehearsal()?;
        rehearse(&self.policy, templates, &self.pay_links, &book, &run)
            .map_err(RehearseError::Sweep)
    }
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

/// Why one case of a file cannot be explained.
#[derive(Debug, thiserror::Error)]
pub enum CaseExplainError {
    #[error(transparent)]
    File(#[from] CaseFileError),
    #[error(transparent)]
    Bench(#[from] BenchError),
    #[error("{}:{line}: {problem}", file.display())]
    Broken {
        file: std::path::PathBuf,
        line: usize,
        problem: Box<CaseError>,
    },
    #[error("{} holds {} cases; pick one with --name:\n{}", file.display(), names.len(), names.iter().map(|n| format!("  {n}")).collect::<Vec<_>>().join("\n"))]
    WhichCase {
        file: std::path::PathBuf,
        names: Vec<String>,
    },
    #[error("{} has no case named `{name}`", file.display())]
    NoSuchCase {
        file: std::path::PathBuf,
        name: String,
    },
    #[error("give the day with --date")]
    NoDay,
    #[error("{}: case `{name}`: {error}", file.display())]
    Rehearse {
        file: std::path::PathBuf,
        name: String,
        error: RehearseError,
    },
}

/// The decision for one case of `case_file` under `policy` on `date` (by
/// default the case's first day), with the trace behind it: the rule's
/// reasoning, and the production sweep's plan for that day.
pub fn explain_case(
    policy: &Path,
    case_file: &Path,
    name: Option<&str>,
    date: Option<NaiveDate>,
) -> Result<Trace, CaseExplainError> {
    let (mut file, compiled) = cases::read(case_file, |_| policy_files::load(policy))?;
    let single = file.cases.len() + file.broken.len() == 1;
    if let Some(at) = file
        .broken
        .iter()
        .position(|b| name.is_none_or(|want| want == b.name))
        .filter(|_| name.is_some() || single)
    {
        let broken = file.broken.swap_remove(at);
        return Err(CaseExplainError::Broken {
            file: case_file.to_path_buf(),
            line: broken.line,
            problem: Box::new(broken.problem),
        });
    }
    let case = match name {
        Some(n) => file.cases.iter().find(|c| c.name == n),
        None if file.cases.len() == 1 => file.cases.first(),
        None => {
            return Err(CaseExplainError::WhichCase {
                file: case_file.to_path_buf(),
                names: file.cases.iter().map(|c| c.name.clone()).collect(),
            });
        }
    };
    let Some(case) = case else {
        return Err(CaseExplainError::NoSuchCase {
            file: case_file.to_path_buf(),
            name: name.unwrap_or_default().to_string(),
        });
    };
    let day = match (date, case.days().first()) {
        (Some(d), _) => d,
        (None, Some(d)) => *d,
        (None, None) => return Err(CaseExplainError::NoDay),
    };
    let mut trace = compiled.explain(&case.facts(day));
    // The decision shown is what the production sweep does that day, swept
    // daily up to it (as `collect test` checks it), not the rule alone.
    let bench = Bench::new(compiled, policy)?;
    let mut one = case.clone();
    one.when = cases::When::Day(day);
    let outcome = bench
        .rehearse(&one)
        .map_err(|error| CaseExplainError::Rehearse {
            file: case_file.to_path_buf(),
            name: one.name.clone(),
            error,
        })?;
    if let Some(o) = outcome.into_iter().next() {
        trace.plan = o.into_day_plan();
    }
    Ok(trace)
}
