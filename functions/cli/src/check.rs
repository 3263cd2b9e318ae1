//! `collect check`: every problem in every policy file, and in the message
//! templates beside it, in one run.

use crate::Format;
use crate::policy_files::{self, TemplateDir};
use anyhow::{Result, bail};
use collect_core::message::Templates;
use policy_lang::compile::CAction;
use policy_lang::{Diagnostic, Severity, TemplateCatalog};
use serde::Serialize;
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// A problem in a message template (code `T0001` in the reference).
#[derive(Debug, Clone, Serialize)]
struct TemplateIssue {
    code: &'static str,
    severity: Severity,
    file: String,
    line: Option<usize>,
    message: String,
}

impl TemplateIssue {
    fn new(file: String, line: Option<usize>, message: String) -> Self {
        TemplateIssue {
            code: "T0001",
            severity: Severity::Error,
            file,
            line,
            message,
        }
    }

    fn headline(&self) -> String {
        let place = match self.line {
            Some(l) => format!("{}:{l}", self.file),
            None => self.file.clone(),
        };
        format!("{place}: error[{}]: {}", self.code, self.message)
    }
}

/// Templates that loaded, as the language checker sees them.
struct Loaded<'a>(&'a Templates);

impl TemplateCatalog for Loaded<'_> {
    fn has_template(&self, name: &str) -> bool {
        self.0.languages(name).iter().any(|l| l == "en")
    }
    fn names(&self) -> Vec<String> {
        self.0
            .names()
            .into_iter()
            .filter(|n| self.has_template(n))
            .collect()
    }
}

pub fn run(paths: &[PathBuf], format: Format, deny_warnings: bool) -> Result<ExitCode> {
    let files = policy_files::find(paths, ".policy")?;
    if files.is_empty() {
        bail!("no `.policy` files found under {}", show(paths));
    }
    let mut all: Vec<Diagnostic> = Vec::new();
    let mut issues: Vec<TemplateIssue> = Vec::new();
    let mut rendered = String::new();
    let mut checked_dirs: HashSet<PathBuf> = HashSet::new();
    for path in &files {
        let source = policy_files::read(path)?;
        let name = path.display().to_string();
        let dir = path.parent().unwrap_or(Path::new(".")).join("templates");
        let templates = Templates::load(&dir);
        let diags = match &templates {
            Ok(t) => policy_lang::check_source(&source, &name, Some(&Loaded(t))).1,
            Err(e) => {
                issues.push(TemplateIssue::new(
                    dir.display().to_string(),
                    None,
                    e.to_string(),
                ));
                policy_lang::check_source(&source, &name, Some(&TemplateDir::beside(path))).1
            }
        };
        if let Ok(t) = &templates {
            if checked_dirs.insert(dir.clone()) {
                for p in t.check() {
                    issues.push(TemplateIssue::new(
                        p.file.display().to_string(),
                        p.line,
                        p.message,
                    ));
                }
            }
            issues.extend(plan_misuse(&source, &name, t));
        }
        rendered.push_str(&policy_lang::diagnostic::render(
            &diags,
            &source,
            policy_files::color(),
        ));
        all.extend(diags);
    }
    let (errors, warnings) = policy_files::count(&all);
    let errors = errors + issues.len();
    match format {
        Format::Json => {
            let out = serde_json::json!({
                "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
                "errors": errors,
                "warnings": warnings,
                "diagnostics": all,
                "template_problems": issues,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Format::Human => {
            eprint!("{rendered}");
            for i in &issues {
                eprintln!("{}", i.headline());
            }
            println!(
                "checked {} policy file(s) and their templates: {errors} error(s), {warnings} warning(s)",
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

/// Only payment-plan offers give a template a `plan`; any other template a
/// policy sends that mentions it would fail when sent.
fn plan_misuse(source: &str, name: &str, templates: &Templates) -> Vec<TemplateIssue> {
    let Ok((policy, _)) = policy_lang::load(source, name, None) else {
        return Vec::new();
    };
    let mut plain: BTreeSet<String> = BTreeSet::new();
    let mut collect = |a: &CAction| match a {
        CAction::Email { template } | CAction::Letter { template } => {
            plain.insert(template.clone());
        }
        _ => {}
    };
    for step in policy.ladders.iter().flat_map(|l| &l.steps) {
        match &step.action {
            CAction::Experiment { arms, .. } => {
                for arm in arms.iter().filter_map(|a| a.action.as_deref()) {
                    collect(arm);
                }
            }
            other => collect(other),
        }
    }
    plain
        .into_iter()
        .filter(|t| templates.uses_plan(t))
        .map(|t| {
            TemplateIssue::new(
                name.to_string(),
                None,
                format!("template `{t}` uses `plan`, which only `offer plan` steps provide; it would fail when sent"),
            )
        })
        .collect()
}

fn show(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
