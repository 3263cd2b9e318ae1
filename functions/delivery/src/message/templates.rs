//! The policy's message templates.
//!
//! Layout: `<dir>/<name>/<lang>/{subject.txt, body.txt, body.html}`, and
//! the shared layouts in `<dir>/_layout/` (the page and the invoice table
//! the HTML bodies extend: `{% extends "_layout/email.html" %}`; a folder,
//! not a template). Every part and every layout is a MiniJinja template,
//! compiled with:
//!
//! - strict undefined behaviour: printing, iterating or testing something that
//!   does not exist is an error (use `x is defined` to test for presence);
//! - auto-escaping for `.html` parts only;
//! - otherwise Jinja's defaults: whitespace around tags is kept (use `{%-`
//!   / `-%}` to trim it), and a single trailing newline is dropped.
//!
//! A customer whose language has no version of a template gets the `en` one.
//!
//! A template can extend or include only what was loaded from `<dir>` (the
//! layouts, or another template's part by `name/lang/part`), never a file
//! elsewhere; one that names a file that does not exist is refused when
//! the templates load.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value};

use super::TemplateError;
pub use super::context::{InvoiceState, MessageContext, format_money};
use super::locale::{NotALanguage, language_folder};
use policy_lang::diagnostic::did_you_mean;

/// The language every template must have, and the fallback for customers
/// whose language has no version.
pub const FALLBACK_LANGUAGE: &str = "en";

/// The parts of a template, in the order they are rendered.
pub const PARTS: [&str; 3] = [SUBJECT, TEXT, HTML];
const SUBJECT: &str = "subject.txt";
const TEXT: &str = "body.txt";
const HTML: &str = "body.html";

/// The folder of the templates that holds the layouts: files the bodies
/// extend or include by `_layout/FILE`. The `_` keeps it apart from
/// template names and languages; it is not a template.
pub const LAYOUT_DIR: &str = "_layout";

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line, trimmed, inner whitespace (newlines included) collapsed.
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Something `check` found wrong with a template file: where (file, line,
/// column and the span to underline, as far as known), what, and how to fix
/// it (`did you mean `customer.name`?`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TemplateProblem {
    pub file: PathBuf,
    pub line: Option<usize>,
    /// 1-based, in characters.
    pub col: Option<usize>,
    pub message: String,
    pub help: Option<String>,
    /// The bytes to underline in the file's text as loaded (without a
    /// byte-order mark): see [`Templates::source`].
    pub span: Option<(usize, usize)>,
    pub kind: ProblemKind,
}

/// What kind of problem a [`TemplateProblem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProblemKind {
    /// The template would fail when sent (or could never be sent).
    Broken,
    /// A language folder whose name is not a language tag: no customer
    /// would ever get it.
    NotALanguage,
}

impl TemplateProblem {
    /// A problem with a file as a whole, or at a line.
    pub fn new(file: PathBuf, line: Option<usize>, message: impl Into<String>) -> Self {
        TemplateProblem {
            file,
            line,
            col: None,
            message: message.into(),
            help: None,
            span: None,
            kind: ProblemKind::Broken,
        }
    }

    /// A problem at bytes `start..end` of the file's text `source`.
    fn at(file: PathBuf, source: &str, span: (usize, usize), message: impl Into<String>) -> Self {
        let (line, col) = position(source, span.0);
        TemplateProblem {
            line: Some(line),
            col: Some(col),
            span: Some(span),
            ..TemplateProblem::new(file, None, message)
        }
    }

    fn with_help(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }
}

/// All templates of a policy folder, compiled.
pub struct Templates {
    dir: PathBuf,
    env: Environment<'static>,
    /// Template name → language → parts present.
    index: BTreeMap<String, BTreeMap<String, BTreeSet<&'static str>>>,
    /// Files inside template folders that are not one of the three parts.
    strays: Vec<PathBuf>,
    /// The ids of the layouts (`_layout/email.html`), sorted.
    layouts: Vec<String>,
    /// Language folders whose name is not a language tag (`german/`).
    not_languages: Vec<(PathBuf, NotALanguage)>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("dir", &self.dir)
            .field("index", &self.index)
            .field("layouts", &self.layouts)
            .finish_non_exhaustive()
    }
}

impl Templates {
    /// Reads and compiles every template under `dir`, and the layouts in
    /// `dir/_layout/`. Hidden files and folders are ignored, as are plain
    /// files directly in `dir`. A template or layout that extends, includes
    /// or imports a file by name (`{% extends "_layout/email.html" %}`)
    /// that is not there is an error naming the template, its line and the
    /// missing file, so a sweep never starts with a message it cannot send.
    pub fn load(dir: &Path) -> Result<Templates, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name: &str| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        // Keeps the span of a failing expression, for clearer messages.
        env.set_debug(true);

        let mut index = BTreeMap::new();
        let mut strays = Vec::new();
        let mut layouts = Vec::new();
        let mut not_languages = Vec::new();
        for (name, name_path) in entries(dir)? {
            if !name_path.is_dir() {
                continue;
            }
            if name == LAYOUT_DIR {
                load_layouts(&mut env, &name_path, LAYOUT_DIR, &mut layouts)?;
                continue;
            }
            let mut languages = BTreeMap::new();
            for (lang, lang_path) in entries(&name_path)? {
                if !lang_path.is_dir() {
                    strays.push(lang_path);
                    continue;
                }
                if let Err(e) = language_folder(&lang) {
                    not_languages.push((lang_path.clone(), e));
                }
                let mut parts = BTreeSet::new();
                for (file, file_path) in entries(&lang_path)? {
                    let Some(part) = PARTS.iter().copied().find(|p| *p == file) else {
                        strays.push(file_path);
                        continue;
                    };
                    add_file(&mut env, template_id(&name, &lang, part), &file_path)?;
                    parts.insert(part);
                }
                if !parts.is_empty() {
                    languages.insert(lang, parts);
                }
            }
            index.insert(name, languages);
        }
        layouts.sort();
        let templates = Templates {
            dir: dir.to_path_buf(),
            env,
            index,
            strays,
            layouts,
            not_languages,
        };
        match templates.missing_layout() {
            Some(err) => Err(err),
            None => Ok(templates),
        }
    }

    /// The first template or layout (in name order) that names a file to
    /// extend, include or import that was not loaded. Only names written
    /// as a literal can be known before rendering; a name computed from
    /// variables is left to [`Templates::check`], which renders.
    fn missing_layout(&self) -> Option<TemplateError> {
        let ids = self
            .compiled_parts()
            .map(|(n, l, p)| template_id(n, l, p))
            .chain(self.layouts.iter().cloned());
        for id in ids {
            let Ok(tmpl) = self.env.get_template(&id) else {
                continue;
            };
            for (name, line) in references(tmpl.source()) {
                if self.env.get_template(&name).is_ok() {
                    continue;
                }
                let known = if self.layouts.is_empty() {
                    format!(
                        "there is no layout in {}",
                        self.dir.join(LAYOUT_DIR).display()
                    )
                } else {
                    format!(
                        "the layouts are: {}",
                        self.layouts
                            .iter()
                            .map(|l| format!("`{l}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                return Some(TemplateError::MissingLayout {
                    file: self.file_of(&id),
                    line: Some(line),
                    message: format!(
                        "`{name}` does not exist: there is no file {} to extend or include ({known})",
                        self.file_of(&name).display()
                    ),
                    layout: name,
                });
            }
        }
        None
    }

    /// The layouts (`_layout/email.html`, …): what the bodies extend or
    /// include, by the name they write.
    pub fn layouts(&self) -> &[String] {
        &self.layouts
    }

    /// The template names (folder names, the layout folder not among
    /// them), sorted.
    pub fn names(&self) -> Vec<String> {
        self.index.keys().cloned().collect()
    }

    /// The languages a template has (folders with at least one part), sorted.
    pub fn languages(&self, name: &str) -> Vec<String> {
        self.index
            .get(name)
            .map(|langs| langs.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether any part of the template mentions `plan` (which only
    /// payment-plan offers provide).
    pub fn uses_plan(&self, name: &str) -> bool {
        self.compiled_parts()
            .filter(|(n, _, _)| *n == name)
            .filter_map(|(n, l, p)| self.env.get_template(&template_id(n, l, p)).ok())
            .any(|t| t.undeclared_variables(false).contains("plan"))
    }

    /// Renders a template in the customer's language: the exact language
    /// (`de-AT`), else its primary subtag (`de`), else `en`.
    pub fn render(
        &self,
        name: &str,
        language: &str,
        ctx: &MessageContext,
    ) -> Result<Rendered, TemplateError> {
        let languages = self
            .index
            .get(name)
            .ok_or_else(|| TemplateError::UnknownTemplate {
                name: name.to_string(),
                known: self.names(),
            })?;
        let lang =
            resolve_language(languages, language).ok_or_else(|| TemplateError::NoLanguage {
                name: name.to_string(),
                language: language.to_string(),
            })?;
        let ctx = Value::from_serialize(ctx);
        let render = |part: &'static str| -> Result<String, TemplateError> {
            let id = template_id(name, lang, part);
            let tmpl = self
                .env
                .get_template(&id)
                .map_err(|_| TemplateError::MissingPart {
                    file: self.file_of(&id),
                })?;
            tmpl.render(&ctx).map_err(|err| {
                let p = self.locate(&err, &id);
                TemplateError::Render {
                    file: p.file,
                    line: p.line,
                    message: match p.help {
                        Some(help) => format!("{}; {help}", p.message),
                        None => p.message,
                    },
                }
            })
        };
        Ok(Rendered {
            subject: one_line(&render(SUBJECT)?),
            text: render(TEXT)?,
            html: render(HTML)?,
        })
    }

    /// Every problem that would stop a template from being sent: missing
    /// parts, stray files, variables that do not exist, render errors with
    /// the complete sample context. Sorted by file and line.
    pub fn check(&self) -> Vec<TemplateProblem> {
        let mut problems = Vec::new();
        for (name, languages) in &self.index {
            for (lang, parts) in languages.iter().map(|(l, p)| (l.as_str(), Some(p))).chain(
                (!languages.contains_key(FALLBACK_LANGUAGE)).then_some((FALLBACK_LANGUAGE, None)),
            ) {
                for part in PARTS {
                    if parts.is_some_and(|p| p.contains(part)) {
                        continue;
                    }
                    let message = if lang == FALLBACK_LANGUAGE {
                        format!(
                            "missing: every template needs {SUBJECT}, {TEXT} and {HTML} in \
                             `{FALLBACK_LANGUAGE}` (the fallback language)"
                        )
                    } else {
                        format!(
                            "missing: the `{lang}` version is incomplete; it needs {SUBJECT}, \
                             {TEXT} and {HTML}"
                        )
                    };
                    problems.push(TemplateProblem::new(
                        self.dir.join(name).join(lang).join(part),
                        None,
                        message,
                    ));
                }
            }
        }
        for stray in &self.strays {
            problems.push(TemplateProblem::new(
                stray.clone(),
                None,
                format!(
                    "unexpected file: a template folder holds one folder per language, each \
                     with {SUBJECT}, {TEXT} and {HTML}"
                ),
            ));
        }
        for (folder, e) in &self.not_languages {
            let mut message = format!("`{}` is not a language tag", e.folder);
            if let Some(tag) = &e.suggestion {
                message = format!("{message}; did you mean `{tag}`?");
            }
            let rule = "language folders are named with the BCP 47 tags customers' `language` \
                        is written with (`en`, `de`, `pt-BR`); no customer gets this one";
            let what = if e.what.is_empty() {
                String::new()
            } else {
                format!("`{}` is {}; ", e.folder, e.what)
            };
            problems.push(TemplateProblem {
                kind: ProblemKind::NotALanguage,
                help: Some(match &e.suggestion {
                    Some(tag) => format!("{what}rename the folder to `{tag}`: {rule}"),
                    None => format!("{what}{rule}"),
                }),
                ..TemplateProblem::new(folder.clone(), None, message)
            });
        }

        let sample = MessageContext::sample();
        let schema = serde_json::to_value(&sample).unwrap_or_default();
        let ctx = Value::from_serialize(&sample);
        let globals: HashSet<String> = self.env.globals().map(|(n, _)| n.to_string()).collect();
        let unknown_in = |tmpl: &minijinja::Template<'_, '_>| -> Vec<String> {
            let mut unknown: Vec<String> = tmpl
                .undeclared_variables(true)
                .into_iter()
                .filter(|path| !is_known(&schema, &globals, path))
                .collect();
            unknown.sort();
            unknown
        };
        // A layout gets only the message's variables (its words come from
        // the bodies' blocks): one it does not have is a mistake even in a
        // branch the sample does not take. That it renders is checked with
        // every body that extends it, below.
        let mut flagged_layouts: HashSet<&str> = HashSet::new();
        for id in &self.layouts {
            let Ok(tmpl) = self.env.get_template(id) else {
                continue;
            };
            let unknown = unknown_in(&tmpl);
            if !unknown.is_empty() {
                flagged_layouts.insert(id);
            }
            for path in unknown {
                problems.push(unknown_variable(
                    self.file_of(id),
                    tmpl.source(),
                    &path,
                    &schema,
                    &globals,
                ));
            }
        }
        for (name, lang, part) in self.compiled_parts() {
            let id = template_id(name, lang, part);
            let file = self.file_of(&id);
            let Ok(tmpl) = self.env.get_template(&id) else {
                continue;
            };
            let unknown = unknown_in(&tmpl);
            for path in &unknown {
                problems.push(unknown_variable(
                    file.clone(),
                    tmpl.source(),
                    path,
                    &schema,
                    &globals,
                ));
            }
            if let Err(err) = tmpl.render(&ctx) {
                // An unknown variable usually also fails the render: say it once.
                if err.kind() == ErrorKind::UndefinedError
                    && (!unknown.is_empty()
                        || err.name().is_some_and(|n| flagged_layouts.contains(n)))
                {
                    continue;
                }
                problems.push(self.locate(&err, &id));
            }
        }
        problems.sort();
        problems.dedup();
        problems
    }

    /// The language version [`Templates::render`] uses for a customer whose
    /// language is `language`, or `None` when the template has none (not
    /// even `en`).
    pub fn language_for(&self, name: &str, language: &str) -> Option<String> {
        resolve_language(self.index.get(name)?, language).map(str::to_string)
    }

    /// Renders every language version of a template the way the sweep
    /// sends it, beyond the complete sample that [`Templates::check`]
    /// uses: an email or a letter has no `plan` and may be about one invoice
    /// or several; an offer (`offer`) has a plan, possibly of a single
    /// installment. Parts that already fail with the complete sample are
    /// left to [`Templates::check`].
    pub fn check_sends(&self, name: &str, offer: bool) -> Vec<TemplateProblem> {
        let Some(languages) = self.index.get(name) else {
            return Vec::new();
        };
        let sample = MessageContext::sample();
        // One invoice (past due), its lists and totals agreeing.
        let mut one = MessageContext::sample_first(1);
        let mut contexts: Vec<(&str, MessageContext)> = Vec::new();
        if offer {
            if let Some(plan) = &mut one.plan {
                plan.installments.truncate(1);
            }
            contexts.push(("an offer of a single installment for one invoice", one));
        } else {
            one.plan = None;
            let mut several = sample.clone();
            several.plan = None;
            contexts.push(("a message about several invoices", several));
            contexts.push(("a message about one invoice", one));
            let mut none_past_due = MessageContext::sample_all(InvoiceState::NotYetDue);
            none_past_due.plan = None;
            contexts.push(("a message with no invoice past due", none_past_due));
        }
        let sample = Value::from_serialize(&sample);
        let mut problems = Vec::new();
        for (lang, parts) in languages {
            for part in parts {
                let id = template_id(name, lang, part);
                let Ok(tmpl) = self.env.get_template(&id) else {
                    continue;
                };
                if tmpl.render(&sample).is_err() {
                    continue;
                }
                for (what, ctx) in &contexts {
                    if let Err(err) = tmpl.render(Value::from_serialize(ctx)) {
                        let p = self.locate(&err, &id);
                        problems.push(TemplateProblem {
                            message: format!("fails for {what}: {}", p.message),
                            ..p
                        });
                        break;
                    }
                }
            }
        }
        problems.sort();
        problems.dedup();
        problems
    }

    /// The rule that a letter is true of every invoice it lists, as far as
    /// a check can tell without knowing the words: the sweep merges a
    /// customer's due steps into one message, so any template may be sent
    /// about invoices past due, due today and not yet due at once. Each
    /// body (text and HTML) of every language version is rendered with the
    /// sample's invoices all past due, then all not yet due (nothing else
    /// differs, [`MessageContext::sample_all`]); a part that names or
    /// counts the invoices and reads the same both ways says nothing of
    /// each one's state, so whatever it says ("the following invoices are
    /// past due") is false of some. A subject is exempt when
    /// `subject_may_ignore_state` (a payment-plan offer's subject only
    /// offers). Parts that do not render are left to
    /// [`Templates::check`] and [`Templates::check_sends`].
    pub fn check_states(&self, name: &str, subject_may_ignore_state: bool) -> Vec<TemplateProblem> {
        let Some(languages) = self.index.get(name) else {
            return Vec::new();
        };
        let past_due = MessageContext::sample_all(InvoiceState::PastDue);
        let numbers: Vec<String> = past_due
            .lists
            .invoices
            .iter()
            .map(|i| i.number.clone())
            .collect();
        let count = past_due.lists.invoices.len().to_string();
        let past_due = Value::from_serialize(&past_due);
        let not_yet_due =
            Value::from_serialize(MessageContext::sample_all(InvoiceState::NotYetDue));
        let mut problems = Vec::new();
        for (lang, parts) in languages {
            for part in parts {
                let id = template_id(name, lang, part);
                let Ok(tmpl) = self.env.get_template(&id) else {
                    continue;
                };
                let (Ok(a), Ok(b)) = (tmpl.render(&past_due), tmpl.render(&not_yet_due)) else {
                    continue;
                };
                if a != b {
                    continue;
                }
                let subject = *part == SUBJECT;
                let names_invoices = numbers.iter().any(|n| a.contains(n.as_str()))
                    || a.split(|c: char| !c.is_ascii_digit()).any(|w| w == count);
                // A part that neither names nor counts the invoices says
                // nothing of them that could be false.
                if !names_invoices || (subject && subject_may_ignore_state) {
                    continue;
                }
                let what = match *part {
                    SUBJECT => "the subject",
                    TEXT => "the text body",
                    _ => "the HTML body",
                };
                problems.push(TemplateProblem::new(
                    self.file_of(&id),
                    None,
                    format!(
                        "{what} reads the same whether the invoices are past due or not yet due, \
                         but a merged message lists invoices in every state: say what is true of \
                         each, with `past_due`, `due_today` and `coming_due` (or \
                         `invoice.state`), and count only `past_due` as overdue"
                    ),
                ));
            }
        }
        problems.sort();
        problems
    }

    /// (name, language, part) of every compiled template.
    fn compiled_parts(&self) -> impl Iterator<Item = (&str, &str, &'static str)> {
        self.index.iter().flat_map(|(name, langs)| {
            langs.iter().flat_map(move |(lang, parts)| {
                parts
                    .iter()
                    .map(move |part| (name.as_str(), lang.as_str(), *part))
            })
        })
    }

    /// The file on disk of a template id (`name/lang/part`, `_layout/FILE`).
    fn file_of(&self, id: &str) -> PathBuf {
        id.split('/').fold(self.dir.clone(), |p, c| p.join(c))
    }

    /// Where a render error of template `id` belongs, and what it says. An
    /// error inside an included file is that file's; a block a layout
    /// requires that the body does not fill is the body's mistake, not the
    /// layout's.
    fn locate(&self, err: &minijinja::Error, id: &str) -> TemplateProblem {
        let mut err = err;
        while err.kind() == ErrorKind::BadInclude {
            match std::error::Error::source(err).and_then(|s| s.downcast_ref::<minijinja::Error>())
            {
                Some(inner) => err = inner,
                None => break,
            }
        }
        let required = (err.kind() == ErrorKind::InvalidOperation)
            .then(|| err.detail())
            .flatten()
            .and_then(|d| d.strip_prefix("Required block '"))
            .and_then(|d| d.split_once('\''))
            .map(|(block, _)| block);
        match (required, err.name()) {
            (Some(block), Some(layout)) if layout != id => TemplateProblem::new(
                self.file_of(id),
                None,
                format!(
                    "the block `{block}` is missing: `{layout}` needs every body that extends it \
                     to fill it (`{{% block {block} %}}…{{% endblock %}}`)"
                ),
            ),
            _ => {
                let file = self.file_of(err.name().unwrap_or(id));
                let (message, help, span) = describe(err, &self.env);
                match (span, err.template_source()) {
                    (Some(span), Some(source)) => {
                        TemplateProblem::at(file, source, span, message).with_help(help)
                    }
                    _ => TemplateProblem::new(file, err.line(), message).with_help(help),
                }
            }
        }
    }

    /// The text of a template file as loaded (what a problem's `span`
    /// points into), or `None` for a file that is not a loaded template.
    pub fn source(&self, file: &Path) -> Option<String> {
        let rel = file.strip_prefix(&self.dir).ok()?;
        let id = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        self.env
            .get_template(&id)
            .ok()
            .map(|t| t.source().to_string())
    }
}

/// Reads and compiles the files under a layout folder, each named by its
/// path from the templates folder (`_layout/email.html`).
fn load_layouts(
    env: &mut Environment<'static>,
    dir: &Path,
    prefix: &str,
    out: &mut Vec<String>,
) -> Result<(), TemplateError> {
    for (file, path) in entries(dir)? {
        let id = format!("{prefix}/{file}");
        if path.is_dir() {
            load_layouts(env, &path, &id, out)?;
        } else {
            add_file(env, id.clone(), &path)?;
            out.push(id);
        }
    }
    Ok(())
}

/// Reads one file (without a byte-order mark) and compiles it as `id`.
fn add_file(env: &mut Environment<'static>, id: String, path: &Path) -> Result<(), TemplateError> {
    let source = std::fs::read_to_string(path).map_err(|source| TemplateError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let source = source
        .strip_prefix('\u{feff}')
        .unwrap_or(&source)
        .to_string();
    env.add_template_owned(id, source.clone()).map_err(|err| {
        let file = path.to_path_buf();
        let message = describe(&err, env).0;
        // MiniJinja's span of a syntax error is in the text it was given.
        let problem = match err.range().filter(|r| r.start <= source.len()) {
            Some(r) => {
                TemplateProblem::at(file, &source, (r.start, r.end.min(source.len())), message)
            }
            None => TemplateProblem::new(file, err.line(), message),
        };
        TemplateError::Syntax {
            problem: Box::new(problem),
            source_text: source,
        }
    })
}

/// The files a template names with a literal in its `extends`, `include`,
/// `import` and `from` tags, each with the tag's line. Comments and `raw`
/// sections are skipped; a name computed from variables, a list of
/// choices and an `include … ignore missing` are not a file that must
/// exist, and are left to rendering.
fn references(source: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut in_raw = false;
    while let Some(start) = source.get(pos..).and_then(|s| s.find('{')).map(|i| pos + i) {
        let rest = source.get(start + 1..).unwrap_or_default();
        let closing = match rest.chars().next() {
            Some('#') if !in_raw => "#}",
            Some('{') if !in_raw => "}}",
            Some('%') => "%}",
            _ => {
                pos = start + 1;
                continue;
            }
        };
        let Some(end) = rest.get(1..).and_then(|r| r.find(closing)) else {
            break;
        };
        pos = start + 1 + 1 + end + closing.len();
        if closing != "%}" {
            continue;
        }
        let tag = rest
            .get(1..1 + end)
            .unwrap_or_default()
            .trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        let (keyword, args) = tag
            .split_once(char::is_whitespace)
            .map_or((tag, ""), |(k, a)| (k, a.trim_start()));
        if in_raw {
            in_raw = keyword != "endraw";
            continue;
        }
        match keyword {
            "raw" => in_raw = true,
            "extends" | "include" | "import" | "from" => {
                if keyword == "include" && args.contains("ignore missing") {
                    continue;
                }
                let mut chars = args.chars();
                let Some(quote @ ('"' | '\'')) = chars.next() else {
                    continue;
                };
                let name: String = chars.by_ref().take_while(|c| *c != quote).collect();
                let line = source
                    .get(..start)
                    .unwrap_or_default()
                    .matches('\n')
                    .count()
                    + 1;
                out.push((name, line));
            }
            _ => {}
        }
    }
    out
}

fn template_id(name: &str, lang: &str, part: &str) -> String {
    format!("{name}/{lang}/{part}")
}

/// The non-hidden entries of a folder, sorted by name. A symbolic link
/// among them, or `dir` itself being one, is refused
/// ([`TemplateError::Link`]): every file a template reads is in the policy
/// folder.
fn entries(dir: &Path) -> Result<Vec<(String, PathBuf)>, TemplateError> {
    let io = |source| TemplateError::Io {
        path: dir.to_path_buf(),
        source,
    };
    refuse_link(dir, std::fs::symlink_metadata(dir).map_err(io)?.file_type())?;
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            refuse_link(&entry.path(), entry.file_type().map_err(io)?)?;
            out.push((name, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// [`TemplateError::Link`] when `path` (of type `kind`, not followed) is a
/// symbolic link.
fn refuse_link(path: &Path, kind: std::fs::FileType) -> Result<(), TemplateError> {
    if kind.is_symlink() {
        return Err(TemplateError::Link {
            path: path.to_path_buf(),
            target: std::fs::read_link(path).ok(),
        });
    }
    Ok(())
}

/// The exact language, its primary subtag, then `en` (case-insensitive).
fn resolve_language<'a, V>(languages: &'a BTreeMap<String, V>, wanted: &str) -> Option<&'a str> {
    let wanted = wanted.trim().to_ascii_lowercase().replace('_', "-");
    let primary = wanted.split('-').next().unwrap_or_default().to_string();
    [wanted, primary, FALLBACK_LANGUAGE.to_string()]
        .iter()
        .filter(|w| !w.is_empty())
        .find_map(|w| {
            languages
                .keys()
                .find(|l| l.eq_ignore_ascii_case(w))
                .map(String::as_str)
        })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A MiniJinja error as one sentence without its location, a help line
/// when there is a likely fix, and the bytes of the template it is about.
fn describe(
    err: &minijinja::Error,
    env: &Environment<'_>,
) -> (String, Option<String>, Option<(usize, usize)>) {
    let source = err.template_source();
    let range = err.range().and_then(|r| {
        let source = source?;
        // Spans of attribute lookups can start after their base
        // (`[0].foo` for `invoices[0].foo`): widen to the whole path.
        let start = source
            .get(..r.start)?
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'))
            .last()
            .map_or(r.start, |(i, _)| i);
        let text = source.get(start..r.end)?;
        let trimmed = text.trim_start();
        let start = start + (text.len() - trimmed.len());
        Some((start, start + trimmed.trim_end().len()))
    });
    let expr = range
        .and_then(|(a, b)| source?.get(a..b))
        .filter(|e| !e.is_empty());
    match (err.kind(), expr, err.detail()) {
        (ErrorKind::UndefinedError, Some(expr), _) => {
            let schema = serde_json::to_value(MessageContext::sample()).unwrap_or_default();
            let globals: HashSet<String> = env.globals().map(|(n, _)| n.to_string()).collect();
            let scope = Scope::new(&schema, &globals, source.unwrap_or_default());
            // A path the context never has is a slip; one it has but not in
            // this message (`plan`, a second invoice) needs a test.
            let message = if scope.resolve(expr).is_some() {
                format!(
                    "`{expr}` is not defined (in strict mode, test optional values with \
                     `is defined`)"
                )
            } else {
                format!("`{expr}` is not a variable a template can use")
            };
            (message, scope.help(expr), range)
        }
        (ErrorKind::UnknownFilter, _, detail) => {
            let name = detail
                .and_then(|d| d.strip_prefix("filter "))
                .and_then(|d| d.strip_suffix(" is unknown"))
                .unwrap_or_default();
            // The filter's own name, within the failing expression.
            let span = range.and_then(|(a, b)| {
                let text = source?.get(a..b)?;
                let i = text.rfind(name).filter(|_| !name.is_empty())?;
                Some((a + i, a + i + name.len()))
            });
            let help = did_you_mean(name, filter_names(env))
                .map(|f| format!("did you mean `{f}`?"))
                .or_else(|| {
                    Some("the filters are MiniJinja's built-in ones, like `upper`, `trim`, `default`".to_string())
                });
            (format!("`{name}` is not a filter"), help, span.or(range))
        }
        (kind, _, Some(detail)) => (format!("{kind}: {detail}"), None, range),
        (kind, _, None) => (kind.to_string(), None, range),
    }
}

/// MiniJinja's built-in filters, as far as this build of it has them: the
/// names are checked against the environment, so one MiniJinja drops is
/// never suggested.
fn filter_names(env: &Environment<'_>) -> Vec<&'static str> {
    const BUILT_IN: &[&str] = &[
        "abs",
        "attr",
        "batch",
        "bool",
        "capitalize",
        "chain",
        "count",
        "d",
        "default",
        "dictsort",
        "e",
        "escape",
        "first",
        "float",
        "format",
        "groupby",
        "indent",
        "int",
        "items",
        "join",
        "last",
        "length",
        "lines",
        "list",
        "lower",
        "map",
        "max",
        "min",
        "pprint",
        "reject",
        "rejectattr",
        "replace",
        "reverse",
        "round",
        "safe",
        "select",
        "selectattr",
        "slice",
        "sort",
        "split",
        "string",
        "sum",
        "title",
        "tojson",
        "trim",
        "unique",
        "upper",
        "urlencode",
        "zip",
    ];
    BUILT_IN
        .iter()
        .copied()
        .filter(|name| {
            env.render_str(&format!("{{{{ 1 | {name} }}}}"), ())
                .err()
                .is_none_or(|e| e.kind() != ErrorKind::UnknownFilter)
        })
        .collect()
}

/// A variable the template names that the context does not have, at its
/// first whole-word occurrence, with the closest one it has.
fn unknown_variable(
    file: PathBuf,
    source: &str,
    path: &str,
    schema: &serde_json::Value,
    globals: &HashSet<String>,
) -> TemplateProblem {
    let message = format!("`{path}` is not a variable a template can use");
    let help = Scope::new(schema, globals, source).help(path);
    match find_offset(source, path) {
        Some(at) => TemplateProblem::at(file, source, (at, at + path.len()), message),
        None => TemplateProblem::new(file, None, message),
    }
    .with_help(help)
}

/// What a template can see: the variables of the message context (derived
/// from [`MessageContext::sample`] serialized, never from a list written by
/// hand, so a field added to the context is known here at once), the
/// environment's globals, and the loop variables its `{% for x in list %}`
/// tags define (each one an item of its list).
struct Scope<'a> {
    schema: &'a serde_json::Value,
    globals: &'a HashSet<String>,
    loops: BTreeMap<String, serde_json::Value>,
}

impl<'a> Scope<'a> {
    fn new(schema: &'a serde_json::Value, globals: &'a HashSet<String>, source: &str) -> Self {
        let mut scope = Scope {
            schema,
            globals,
            loops: BTreeMap::new(),
        };
        for tag in block_tags(source) {
            let Some(rest) = tag.strip_prefix("for ") else {
                continue;
            };
            let Some((var, list)) = rest.split_once(" in ") else {
                continue;
            };
            let var = var.trim();
            if !var.chars().all(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let list: String = list
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'))
                .collect();
            let item = match scope.resolve(&list) {
                Some(serde_json::Value::Array(items)) => items.first().cloned().unwrap_or_default(),
                _ => serde_json::Value::Null,
            };
            scope.loops.insert(var.to_string(), item);
        }
        scope
    }

    /// The node a path (`customer.name`, `invoices[0].number`, `i.balance`)
    /// names, if any.
    fn resolve(&self, path: &str) -> Option<&serde_json::Value> {
        let mut parts = path.split('.');
        let (head, index) = split_index(parts.next()?);
        let mut node = self.loops.get(head).or_else(|| self.schema.get(head))?;
        if index {
            node = node.as_array()?.first()?;
        }
        for part in parts {
            let (name, index) = split_index(part);
            node = node.as_object()?.get(name)?;
            if index {
                node = node.as_array()?.first()?;
            }
        }
        Some(node)
    }

    /// `did you mean `customer.name`?` for a path that does not exist, or
    /// the names there are where the path goes wrong (the fields of
    /// `customer`, not every variable).
    fn help(&self, path: &str) -> Option<String> {
        let parts: Vec<&str> = path.split('.').collect();
        let (head, indexed) = split_index(parts.first()?);
        let mut node = match self.loops.get(head).or_else(|| self.schema.get(head)) {
            Some(node) if indexed => node.as_array()?.first()?,
            Some(node) => node,
            None => {
                let mut names: Vec<&str> = self
                    .schema
                    .as_object()
                    .map(|o| o.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                names.extend(self.loops.keys().map(String::as_str));
                names.extend(self.globals.iter().map(String::as_str));
                names.sort_unstable();
                names.dedup();
                return Some(match did_you_mean(head, names.iter().copied()) {
                    Some(near) => {
                        let fixed = std::iter::once(near)
                            .chain(parts.iter().skip(1).copied())
                            .collect::<Vec<_>>()
                            .join(".");
                        let shown = if self.resolve(&fixed).is_some() {
                            fixed
                        } else {
                            near.to_string()
                        };
                        format!("did you mean `{shown}`?")
                    }
                    None => format!(
                        "the variables are {} (see policy/README.md, \"Message templates\")",
                        names
                            .iter()
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        };
        for (i, part) in parts.iter().enumerate().skip(1) {
            let (name, indexed) = split_index(part);
            let known = parts.get(..i).unwrap_or_default().join(".");
            if let serde_json::Value::Array(items) = node {
                let each = items
                    .first()
                    .and_then(|item| item.as_object())
                    .map(|o| o.keys().map(String::as_str).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default();
                return Some(format!(
                    "`{known}` is a list: go through it with `{{% for item in {known} %}}` and \
                     use `item.{name}` inside (each item has {each})"
                ));
            }
            let fields = node.as_object()?;
            match fields.get(name) {
                Some(next) if indexed => node = next.as_array()?.first()?,
                Some(next) => node = next,
                None => {
                    let near = did_you_mean(name, fields.keys().map(String::as_str));
                    return Some(match near {
                        Some(near) => {
                            let fixed = parts
                                .iter()
                                .take(i)
                                .copied()
                                .chain(std::iter::once(near))
                                .chain(parts.iter().skip(i + 1).copied())
                                .collect::<Vec<_>>()
                                .join(".");
                            let shown = if self.resolve(&fixed).is_some() {
                                fixed
                            } else {
                                format!("{known}.{near}")
                            };
                            format!("did you mean `{shown}`?")
                        }
                        None => format!(
                            "`{known}` has {}",
                            fields
                                .keys()
                                .map(|k| format!("`{k}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    });
                }
            }
        }
        None
    }
}

/// `invoices[0]` → (`invoices`, true).
fn split_index(part: &str) -> (&str, bool) {
    match part.split_once('[') {
        Some((name, _)) => (name, true),
        None => (part, false),
    }
}

/// The inside of every `{% … %}` tag, trimmed of whitespace control.
fn block_tags(source: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find("{%") {
        let after = rest.get(start + 2..).unwrap_or_default();
        let Some(end) = after.find("%}") else {
            break;
        };
        out.push(
            after
                .get(..end)
                .unwrap_or_default()
                .trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace()),
        );
        rest = after.get(end + 2..).unwrap_or_default();
    }
    out
}

/// Whether a dotted path (`customer.name`) names something in the context.
fn is_known(schema: &serde_json::Value, globals: &HashSet<String>, path: &str) -> bool {
    let mut components = path.split('.');
    let Some(head) = components.next() else {
        return false;
    };
    let Some(mut node) = schema.get(head) else {
        return globals.contains(head) && path == head;
    };
    for component in components {
        match node.as_object().and_then(|o| o.get(component)) {
            Some(next) => node = next,
            None => return false,
        }
    }
    true
}

/// 1-based line and column (in characters) of a byte offset.
fn position(source: &str, offset: usize) -> (usize, usize) {
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The byte offset of the first whole-word occurrence of `path` in `source`.
fn find_offset(source: &str, path: &str) -> Option<usize> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    source.match_indices(path).find_map(|(pos, _)| {
        let before = source.get(..pos)?;
        let after = source.get(pos + path.len()..)?;
        let clean_before = before
            .chars()
            .next_back()
            .is_none_or(|c| !is_word(c) && c != '.');
        let clean_after = after.chars().next().is_none_or(|c| !is_word(c));
        (clean_before && clean_after).then_some(pos)
    })
}

#[cfg(test)]
mod tests;
