//! Every problem in every policy file, and in the message templates beside
//! it, in one run: what `collect check` reports and what `collect bundle`
//! requires to pass. [`check`] finds the problems, [`Checked::print`]
//! shows them.

use crate::args::Format;
use crate::policy_files::{self, PolicyFileError, TemplateDir};
use crate::revisions::Revisions;
use collect_delivery::message::locale::language_folder;
use collect_delivery::message::templates::FALLBACK_LANGUAGE;
use collect_delivery::message::{ProblemKind, TemplateError, TemplateProblem, Templates};
use policy_lang::ast::Span;
use policy_lang::compile::CAction;
use policy_lang::{Diagnostic, PLAN_OFFER_TEMPLATE, Severity, TemplateCatalog};
use serde::Serialize;
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

/// Nothing to check, or a policy file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("no `.policy` files found under {}", show(paths))]
    NoPolicies { paths: Vec<PathBuf> },
    #[error(transparent)]
    Files(#[from] PolicyFileError),
}

/// The codes of problems in message templates, documented with the
/// language's codes in the reference (policy/README.md, "Diagnostics";
/// tests/reference.rs finds every code literal and checks it is there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateCode {
    /// T0001 a template that would fail when sent: a missing part, a stray
    /// file, a syntax error, a variable that does not exist, a render error.
    Broken,
    /// T0002 a template without a version in a language customers use:
    /// those customers get the `en` version.
    LanguageFallback,
    /// T0003 a language folder whose name is not a language tag
    /// (`german/` for `de/`): no customer would ever get it.
    NotALanguage,
    /// T0004 a template that reads the same whether its invoices are past
    /// due or not yet due: a merged message would call some invoice what
    /// it is not ([`Templates::check_states`]).
    StateBlind,
    /// T0005 a file or folder of the templates that is a symbolic link: it
    /// may read a file from outside the policy folder, which would then be
    /// mailed and bundled.
    Link,
}

impl TemplateCode {
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateCode::Broken => "T0001",
            TemplateCode::LanguageFallback => "T0002",
            TemplateCode::NotALanguage => "T0003",
            TemplateCode::StateBlind => "T0004",
            TemplateCode::Link => "T0005",
        }
    }

    fn severity(self) -> Severity {
        match self {
            TemplateCode::Broken | TemplateCode::NotALanguage | TemplateCode::Link => {
                Severity::Error
            }
            TemplateCode::LanguageFallback | TemplateCode::StateBlind => Severity::Warning,
        }
    }
}

/// A problem in a message template.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
struct TemplateIssue {
    code: &'static str,
    severity: Severity,
    file: String,
    line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    col: Option<usize>,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    help: Option<String>,
    /// The lines of the template around the mistake, underlined, as the
    /// policy's own diagnostics are shown.
    #[serde(skip)]
    snippet: Option<String>,
}

impl TemplateIssue {
    fn new(file: String, line: Option<usize>, message: String) -> Self {
        Self::with_code(TemplateCode::Broken, file, line, message)
    }

    fn with_code(code: TemplateCode, file: String, line: Option<usize>, message: String) -> Self {
        TemplateIssue {
            code: code.as_str(),
            severity: code.severity(),
            file,
            line,
            col: None,
            message,
            help: None,
            snippet: None,
        }
    }

    /// A problem `Templates` found, with its snippet when it knows the spot.
    fn from_problem(p: TemplateProblem, templates: &Templates) -> Self {
        let source = templates.source(&p.file);
        Self::from_problem_in(p, source)
    }

    /// A problem in a file whose text (as loaded) is `source`.
    fn from_problem_in(p: TemplateProblem, source: Option<String>) -> Self {
        let code = match p.kind {
            ProblemKind::Broken => TemplateCode::Broken,
            ProblemKind::NotALanguage => TemplateCode::NotALanguage,
        };
        let file = p.file.display().to_string();
        let snippet = p.span.zip(source).map(|((start, end), source)| {
            let d = Diagnostic {
                code: code.as_str(),
                severity: code.severity(),
                file: file.clone(),
                line: u32::try_from(p.line.unwrap_or(1)).unwrap_or(u32::MAX),
                col: u32::try_from(p.col.unwrap_or(1)).unwrap_or(u32::MAX),
                span: Span {
                    start,
                    end,
                    line: 0,
                    col: 0,
                },
                message: p.message.clone(),
                help: p.help.clone(),
            };
            policy_lang::diagnostic::render(&[d], &source, policy_files::color())
        });
        TemplateIssue {
            col: p.col,
            help: p.help,
            snippet,
            ..Self::with_code(code, file, p.line, p.message)
        }
    }

    fn headline(&self) -> String {
        let place = match (self.line, self.col) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", self.file),
            (Some(l), None) => format!("{}:{l}", self.file),
            _ => self.file.clone(),
        };
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut out = format!("{place}: {kind}[{}]: {}", self.code, self.message);
        if let Some(help) = &self.help {
            out.push_str(&format!("\n  help: {help}"));
        }
        out
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

/// What a check found: the language's diagnostics and the templates'
/// problems, counted.
pub struct Checked {
    files: Vec<PathBuf>,
    diagnostics: Vec<Diagnostic>,
    /// The diagnostics rendered with their source lines.
    rendered: String,
    issues: Vec<TemplateIssue>,
    errors: usize,
    warnings: usize,
    /// The languages the templates were checked for.
    languages: BTreeSet<String>,
    /// Whether `--languages` was given.
    languages_given: bool,
}

/// Checks every `.policy` file under `paths` and the templates beside it.
/// `languages`: languages customers use (`--languages`), checked on top of
/// every language some template has.
pub fn check(paths: &[PathBuf], languages: &[String]) -> Result<Checked, CheckError> {
    let files = policy_files::find(paths, ".policy")?;
    if files.is_empty() {
        return Err(CheckError::NoPolicies {
            paths: paths.to_vec(),
        });
    }
    let mut all: Vec<Diagnostic> = Vec::new();
    let mut issues: Vec<TemplateIssue> = Vec::new();
    let mut rendered = String::new();
    let mut checked_dirs: HashSet<PathBuf> = HashSet::new();
    let mut checked_languages: BTreeSet<String> = BTreeSet::new();
    for path in &files {
        let source = policy_files::read(path)?;
        let name = path.display().to_string();
        let dir = path.parent().unwrap_or(Path::new(".")).join("templates");
        let templates = Templates::load(&dir);
        let diags = match &templates {
            Ok(t) => policy_lang::check_source(&source, &name, Some(&Loaded(t))).1,
            // A body naming a layout that is not there: at its file and line.
            Err(TemplateError::MissingLayout {
                file,
                line,
                message,
                ..
            }) => {
                issues.push(TemplateIssue::new(
                    file.display().to_string(),
                    *line,
                    message.clone(),
                ));
                policy_lang::check_source(&source, &name, Some(&TemplateDir::beside(path))).1
            }
            // A template that does not parse: at its line and column, underlined.
            Err(TemplateError::Syntax {
                problem,
                source_text,
            }) => {
                issues.push(TemplateIssue::from_problem_in(
                    (**problem).clone(),
                    Some(source_text.clone()),
                ));
                policy_lang::check_source(&source, &name, Some(&TemplateDir::beside(path))).1
            }
            // A link that may read a file from outside the policy folder.
            Err(TemplateError::Link { path: link, target }) => {
                let mut issue = TemplateIssue::with_code(
                    TemplateCode::Link,
                    link.display().to_string(),
                    None,
                    match target {
                        Some(t) => format!("a symbolic link (to {}): a policy folder's files must be in it, so that what is reviewed is what is sent", t.display()),
                        None => "a symbolic link: a policy folder's files must be in it, so that what is reviewed is what is sent".to_string(),
                    },
                );
                issue.help = Some(
                    "replace the link with the file itself (copy it into the folder)".to_string(),
                );
                issues.push(issue);
                policy_lang::check_source(&source, &name, Some(&TemplateDir::beside(path))).1
            }
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
                    issues.push(TemplateIssue::from_problem(p, t));
                }
            }
            let sends = sends(&source, &name);
            issues.extend(plan_misuse(&sends, &name, t));
            for (template, offer) in &sends {
                issues.extend(
                    t.check_sends(template, *offer)
                        .into_iter()
                        .map(|p| TemplateIssue::from_problem(p, t)),
                );
            }
            for (template, offer) in &sends {
                issues.extend(t.check_states(template, *offer).into_iter().map(|p| {
                    TemplateIssue::with_code(
                        TemplateCode::StateBlind,
                        p.file.display().to_string(),
                        p.line,
                        p.message,
                    )
                }));
            }
            let wanted = customer_languages(t, languages);
            issues.extend(fallbacks(&dir, t, &sends, &wanted));
            checked_languages.extend(wanted);
        }
        rendered.push_str(&policy_lang::diagnostic::render(
            &diags,
            &source,
            policy_files::color(),
        ));
        all.extend(diags);
    }
    issues.sort();
    issues.dedup();
    let (errors, warnings) = policy_files::count(&all);
    let errors = errors
        + issues
            .iter()
            .filter(|i| i.severity == Severity::Error)
            .count();
    let warnings = warnings
        + issues
            .iter()
            .filter(|i| i.severity == Severity::Warning)
            .count();
    Ok(Checked {
        files,
        diagnostics: all,
        rendered,
        issues,
        errors,
        warnings,
        languages: checked_languages,
        languages_given: !languages.is_empty(),
    })
}

impl Checked {
    /// Prints what was found (problems on stderr, the summary on stdout,
    /// or one JSON document) and returns whether the check failed: any
    /// error, or with `deny_warnings` any warning.
    /// The policy files checked.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    pub fn print(&self, format: Format, deny_warnings: bool) -> Result<bool, serde_json::Error> {
        let Checked {
            files,
            errors,
            warnings,
            ..
        } = self;
        match format {
            Format::Json => {
                let out = serde_json::json!({
                    "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
                    "errors": errors,
                    "warnings": warnings,
                    "diagnostics": self.diagnostics,
                    "template_problems": self.issues,
                    "languages": self.languages,
                    "revisions": files.iter().map(|f| Revisions::of(f)).collect::<Vec<_>>(),
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            }
            Format::Human => {
                eprint!("{}", self.rendered);
                for i in &self.issues {
                    match &i.snippet {
                        Some(snippet) => eprint!("{snippet}"),
                        None => eprintln!("{}", i.headline()),
                    }
                }
                if !self.languages.is_empty() {
                    println!(
                        "languages checked: {} (every language a template has{})",
                        self.languages
                            .iter()
                            .map(String::as_str)
                            .collect::<Vec<_>>()
                            .join(", "),
                        if self.languages_given {
                            ", and --languages"
                        } else {
                            "; add the languages of your customers with --languages"
                        }
                    );
                }
                for f in files {
                    println!("{}: {}", f.display(), Revisions::of(f).line());
                }
                println!(
                    "checked {} policy file(s) and their templates: {errors} error(s), {warnings} warning(s)",
                    files.len()
                );
            }
        }
        let failed = *errors > 0 || (deny_warnings && *warnings > 0);
        if *errors == 0 && failed && format == Format::Human {
            println!("failing because --deny-warnings treats warnings as errors");
        }
        Ok(failed)
    }
}

/// The templates a policy sends, each with whether it is sent as a
/// payment-plan offer (with a `plan`). Empty when the policy does not load
/// (its errors are reported anyway).
fn sends(source: &str, name: &str) -> BTreeSet<(String, bool)> {
    let mut out = BTreeSet::new();
    let Ok((policy, _)) = policy_lang::load(source, name, None) else {
        return out;
    };
    let mut add = |a: &CAction| match a {
        CAction::Email { template } | CAction::Letter { template } => {
            out.insert((template.clone(), false));
        }
        CAction::OfferPlan(_) => {
            out.insert((PLAN_OFFER_TEMPLATE.to_string(), true));
        }
        _ => {}
    };
    for step in policy.ladders.iter().flat_map(|l| &l.steps) {
        match &step.action {
            CAction::Experiment { arms, .. } => {
                for arm in arms.iter().filter_map(|a| a.action.as_deref()) {
                    add(arm);
                }
            }
            other => add(other),
        }
    }
    out
}

/// Only payment-plan offers give a template a `plan`; any other template a
/// policy sends that mentions it would fail when sent.
fn plan_misuse(
    sends: &BTreeSet<(String, bool)>,
    name: &str,
    templates: &Templates,
) -> Vec<TemplateIssue> {
    sends
        .iter()
        .filter(|(t, offer)| !offer && templates.uses_plan(t))
        .map(|(t, _)| {
            TemplateIssue::new(
                name.to_string(),
                None,
                format!("template `{t}` uses `plan`, which only `offer plan` steps provide; it would fail when sent"),
            )
        })
        .collect()
}

/// The languages customers use, as far as `check` can know: every language
/// some template of the folder has, and those given with `--languages`.
fn customer_languages(templates: &Templates, extra: &[String]) -> BTreeSet<String> {
    templates
        .names()
        .iter()
        .flat_map(|n| templates.languages(n))
        .chain(extra.iter().cloned())
        .map(|l| l.trim().to_ascii_lowercase().replace('_', "-"))
        .filter(|l| !l.is_empty())
        // A folder that is not a language tag is reported as such (T0003),
        // not as a language customers could have.
        .filter(|l| language_folder(l).is_ok())
        .collect()
}

/// A warning for each template the policy sends that a customer language
/// falls back from: those customers get the `en` version.
fn fallbacks(
    dir: &Path,
    templates: &Templates,
    sends: &BTreeSet<(String, bool)>,
    languages: &BTreeSet<String>,
) -> Vec<TemplateIssue> {
    let mut out = Vec::new();
    let names: BTreeSet<&str> = sends.iter().map(|(t, _)| t.as_str()).collect();
    for template in names {
        for lang in languages {
            let primary = lang.split('-').next().unwrap_or(lang);
            if primary == FALLBACK_LANGUAGE {
                continue;
            }
            if templates.language_for(template, lang).as_deref() != Some(FALLBACK_LANGUAGE) {
                continue;
            }
            let mut issue = TemplateIssue::with_code(
                TemplateCode::LanguageFallback,
                dir.join(template).display().to_string(),
                None,
                format!(
                    "template `{template}` has no `{lang}` version: customers whose language is \
                     `{lang}` get the `{FALLBACK_LANGUAGE}` one"
                ),
            );
            issue.help = Some(format!(
                "add `templates/{template}/{primary}/` with subject.txt, body.txt and body.html"
            ));
            out.push(issue);
        }
    }
    out
}

fn show(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
