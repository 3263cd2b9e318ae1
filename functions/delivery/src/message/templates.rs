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
pub use super::context::{MessageContext, format_money};

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

/// Something `check` found wrong with a template file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TemplateProblem {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
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
                let (file, line, message) = self.locate(&err, &id);
                TemplateError::Render {
                    file,
                    line,
                    message,
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
                    problems.push(TemplateProblem {
                        file: self.dir.join(name).join(lang).join(part),
                        line: None,
                        message,
                    });
                }
            }
        }
        for stray in &self.strays {
            problems.push(TemplateProblem {
                file: stray.clone(),
                line: None,
                message: format!(
                    "unexpected file: a template folder holds one folder per language, each \
                     with {SUBJECT}, {TEXT} and {HTML}"
                ),
            });
        }

        let sample = MessageContext::sample();
        let schema = serde_json::to_value(&sample).unwrap_or_default();
        let ctx = Value::from_serialize(&sample);
        let globals: HashSet<String> = self.env.globals().map(|(n, _)| n.to_string()).collect();
        let variables = variable_list(&schema);
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
                problems.push(TemplateProblem {
                    file: self.file_of(id),
                    line: find_line(tmpl.source(), &path),
                    message: format!(
                        "`{path}` is not a variable a template can use; the variables are: \
                         {variables}"
                    ),
                });
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
                problems.push(TemplateProblem {
                    file: file.clone(),
                    line: find_line(tmpl.source(), path),
                    message: format!(
                        "`{path}` is not a variable a template can use; the variables are: \
                         {variables}"
                    ),
                });
            }
            if let Err(err) = tmpl.render(&ctx) {
                // An unknown variable usually also fails the render: say it once.
                if err.kind() == ErrorKind::UndefinedError
                    && (!unknown.is_empty()
                        || err.name().is_some_and(|n| flagged_layouts.contains(n)))
                {
                    continue;
                }
                let (file, line, message) = self.locate(&err, &id);
                problems.push(TemplateProblem {
                    file,
                    line,
                    message,
                });
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
        let mut one = sample.clone();
        one.invoices.truncate(1);
        if let Some(first) = one.invoices.first() {
            one.total_balance = first.balance.clone();
        }
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
                        let (file, line, message) = self.locate(&err, &id);
                        problems.push(TemplateProblem {
                            file,
                            line,
                            message: format!("fails for {what}: {message}"),
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
    fn locate(&self, err: &minijinja::Error, id: &str) -> (PathBuf, Option<usize>, String) {
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
            (Some(block), Some(layout)) if layout != id => (
                self.file_of(id),
                None,
                format!(
                    "the block `{block}` is missing: `{layout}` needs every body that extends it \
                     to fill it (`{{% block {block} %}}…{{% endblock %}}`)"
                ),
            ),
            _ => (
                self.file_of(err.name().unwrap_or(id)),
                err.line(),
                describe(err),
            ),
        }
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
    env.add_template_owned(id, source)
        .map_err(|err| TemplateError::Syntax {
            file: path.to_path_buf(),
            line: err.line(),
            message: describe(&err),
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

/// The non-hidden entries of a folder, sorted by name.
fn entries(dir: &Path) -> Result<Vec<(String, PathBuf)>, TemplateError> {
    let io = |source| TemplateError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            out.push((name, entry.path()));
        }
    }
    out.sort();
    Ok(out)
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

/// A MiniJinja error as one sentence, without its location.
fn describe(err: &minijinja::Error) -> String {
    let expr = err.range().and_then(|r| {
        let source = err.template_source()?;
        // Spans of attribute lookups can start after their base
        // (`[0].foo` for `invoices[0].foo`): widen to the whole path.
        let start = source
            .get(..r.start)?
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'))
            .last()
            .map_or(r.start, |(i, _)| i);
        source
            .get(start..r.end)
            .map(str::trim)
            .filter(|e| !e.is_empty())
    });
    match (err.kind(), expr, err.detail()) {
        (ErrorKind::UndefinedError, Some(expr), _) => format!(
            "`{expr}` is not defined (in strict mode, test optional values with `is defined`); \
             the variables are: {}",
            variable_list(&serde_json::to_value(MessageContext::sample()).unwrap_or_default())
        ),
        (kind, _, Some(detail)) => format!("{kind}: {detail}"),
        (kind, _, None) => kind.to_string(),
    }
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

/// `customer.id, customer.name, …, invoices (a list; each has amount, …)`.
fn variable_list(schema: &serde_json::Value) -> String {
    fn walk(prefix: &str, node: &serde_json::Value, out: &mut Vec<String>) {
        match node {
            serde_json::Value::Object(fields) => {
                for (key, value) in fields {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&path, value, out);
                }
            }
            serde_json::Value::Array(items) => match items.first().and_then(|i| i.as_object()) {
                Some(fields) => out.push(format!(
                    "{prefix} (a list; each has {})",
                    fields.keys().cloned().collect::<Vec<_>>().join(", ")
                )),
                None => out.push(format!("{prefix} (a list)")),
            },
            _ => out.push(prefix.to_string()),
        }
    }
    let mut out = Vec::new();
    walk("", schema, &mut out);
    format!("{} (`plan` only in payment-plan offers)", out.join(", "))
}

/// The line of the first whole-word occurrence of `path` in `source`.
fn find_line(source: &str, path: &str) -> Option<usize> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    source.match_indices(path).find_map(|(pos, _)| {
        let before = source.get(..pos)?;
        let after = source.get(pos + path.len()..)?;
        let clean_before = before
            .chars()
            .next_back()
            .is_none_or(|c| !is_word(c) && c != '.');
        let clean_after = after.chars().next().is_none_or(|c| !is_word(c));
        (clean_before && clean_after).then(|| before.matches('\n').count() + 1)
    })
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    fn write(root: &Path, name: &str, lang: &str, part: &str, text: &str) {
        let dir = root.join(name).join(lang);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(part), text).unwrap();
    }

    fn full(root: &Path, name: &str, lang: &str, subject: &str, text: &str, html: &str) {
        write(root, name, lang, SUBJECT, subject);
        write(root, name, lang, TEXT, text);
        write(root, name, lang, HTML, html);
    }

    #[test]
    fn renders_with_escaping_in_html_only() {
        let tmp = tempfile::tempdir().unwrap();
        full(
            tmp.path(),
            "reminder",
            "en",
            "Invoice {{ invoices[0].number }}\n  for {{ customer.name }}\n",
            "Dear {{ customer.name }},\n{% for i in invoices -%}\n- {{ i.number }}: {{ i.balance }}\n{% endfor %}\nTotal {{ total_balance }}",
            "<p>Dear {{ customer.name }}</p>",
        );
        let templates = Templates::load(tmp.path()).unwrap();
        let mut ctx = MessageContext::sample();
        ctx.customer.name = "<script>alert(1)</script> & Co".to_string();
        let r = templates.render("reminder", "en", &ctx).unwrap();
        assert_eq!(
            r.subject,
            "Invoice 2025-0042 for <script>alert(1)</script> & Co"
        );
        assert!(!r.subject.contains('\n'));
        assert!(
            r.text.starts_with(
                "Dear <script>alert(1)</script> & Co,\n- 2025-0042: USD 1,200.00\n- 2025-0057"
            ),
            "{}",
            r.text
        );
        assert!(
            r.html
                .contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; Co"),
            "{}",
            r.html
        );
        assert!(!r.html.contains("<script>"));
        assert!(templates.check().is_empty(), "{:?}", templates.check());
    }

    #[test]
    fn strict_undefined_names_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        full(
            tmp.path(),
            "reminder",
            "en",
            "Hello",
            "Dear {{ customer.name }},\n\nYou owe {{ customer.nmae }}.",
            "<p>{{ customer.name }}</p>",
        );
        let templates = Templates::load(tmp.path()).unwrap();
        let err = templates
            .render("reminder", "en", &MessageContext::sample())
            .unwrap_err();
        let TemplateError::Render { file, line, .. } = &err else {
            panic!("{err:?}");
        };
        assert!(file.ends_with("reminder/en/body.txt"), "{file:?}");
        assert_eq!(*line, Some(3));
        assert!(err.to_string().contains("body.txt:3"), "{err}");

        let problems = templates.check();
        assert_eq!(problems.len(), 1, "{problems:?}");
        let p = &problems[0];
        assert!(p.file.ends_with("reminder/en/body.txt"));
        assert_eq!(p.line, Some(3));
        assert!(
            p.message.starts_with(
                "`customer.nmae` is not a variable a template can use; the variables are: "
            ),
            "{}",
            p.message
        );
        assert!(p.message.contains("customer.name"), "{}", p.message);
        assert!(p.to_string().contains("body.txt:3: `customer.nmae`"), "{p}");
    }

    #[test]
    fn check_catches_unknown_variables_in_untaken_branches_and_loops() {
        let tmp = tempfile::tempdir().unwrap();
        full(
            tmp.path(),
            "offer",
            "en",
            "Plan for {{ customer.name }}",
            "{% if plan is defined %}{{ plan.total }}{% else %}{{ totl }}{% endif %}\n{% for i in plan.installments %}{{ i.number }} {{ loop.index }}{% endfor %}",
            "{% for i in invoices %}\n{{ i.nmber }}\n{% endfor %}",
        );
        let templates = Templates::load(tmp.path()).unwrap();
        let problems = templates.check();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].file.ends_with("offer/en/body.html"));
        assert_eq!(problems[0].line, Some(2));
        assert!(
            problems[0].message.starts_with("`i.nmber` is not defined"),
            "{}",
            problems[0].message
        );
        assert!(problems[1].file.ends_with("offer/en/body.txt"));
        assert_eq!(problems[1].line, Some(1));
        assert!(
            problems[1].message.starts_with("`totl` is not a variable"),
            "{}",
            problems[1].message
        );
        assert!(templates.uses_plan("offer"));
    }

    #[test]
    fn render_error_names_the_whole_expression() {
        let tmp = tempfile::tempdir().unwrap();
        full(
            tmp.path(),
            "t",
            "en",
            "S",
            "x\n{{ invoices[1].nmber }}",
            "H",
        );
        let templates = Templates::load(tmp.path()).unwrap();
        let err = templates
            .render("t", "en", &MessageContext::sample())
            .unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("body.txt:2: `invoices[1].nmber` is not defined"),
            "{message}"
        );
    }

    #[test]
    fn plan_outside_offers_fails_without_plan() {
        let tmp = tempfile::tempdir().unwrap();
        full(tmp.path(), "t", "en", "S", "{{ plan.total }}", "H");
        let templates = Templates::load(tmp.path()).unwrap();
        let mut ctx = MessageContext::sample();
        assert!(templates.render("t", "en", &ctx).is_ok());
        ctx.plan = None;
        assert!(matches!(
            templates.render("t", "en", &ctx),
            Err(TemplateError::Render { .. })
        ));
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        full(
            tmp.path(),
            "broken",
            "en",
            "S",
            "line one\nline two\n{% if customer.name %}\nno end",
            "H",
        );
        let err = Templates::load(tmp.path()).unwrap_err();
        let TemplateError::Syntax {
            file,
            line,
            message,
        } = &err
        else {
            panic!("{err:?}");
        };
        assert!(file.ends_with("broken/en/body.txt"), "{file:?}");
        assert!(matches!(line, Some(3 | 4)), "{line:?}");
        assert!(message.contains("syntax error"), "{message}");
        assert!(err.to_string().contains("body.txt:"), "{err}");
    }

    #[test]
    fn language_fallback() {
        let tmp = tempfile::tempdir().unwrap();
        full(tmp.path(), "t", "en", "Hello", "Hi", "<p>Hi</p>");
        full(tmp.path(), "t", "de", "Hallo", "Servus", "<p>Servus</p>");
        write(tmp.path(), "only-fr", "fr", SUBJECT, "Bonjour");
        let templates = Templates::load(tmp.path()).unwrap();
        assert_eq!(templates.names(), vec!["only-fr", "t"]);
        assert_eq!(templates.languages("t"), vec!["de", "en"]);
        let ctx = MessageContext::sample();
        assert_eq!(templates.render("t", "de", &ctx).unwrap().subject, "Hallo");
        assert_eq!(
            templates.render("t", "DE_at", &ctx).unwrap().subject,
            "Hallo"
        );
        assert_eq!(templates.render("t", "fr", &ctx).unwrap().subject, "Hello");
        assert_eq!(templates.render("t", "", &ctx).unwrap().text, "Hi");
        assert!(matches!(
            templates.render("only-fr", "de", &ctx),
            Err(TemplateError::NoLanguage { .. })
        ));
        assert!(matches!(
            templates.render("only-fr", "fr", &ctx),
            Err(TemplateError::MissingPart { .. })
        ));
        assert!(matches!(
            templates.render("nope", "en", &ctx),
            Err(TemplateError::UnknownTemplate { .. })
        ));
    }

    #[test]
    fn check_flags_missing_parts_and_strays() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "a", "en", SUBJECT, "S");
        write(tmp.path(), "a", "en", "body.htm", "typo");
        full(tmp.path(), "b", "de", "S", "T", "H");
        std::fs::create_dir_all(tmp.path().join("c")).unwrap();
        let templates = Templates::load(tmp.path()).unwrap();
        let problems = templates.check();
        let files: Vec<String> = problems
            .iter()
            .map(|p| {
                p.file
                    .strip_prefix(tmp.path())
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/")
            })
            .collect();
        assert_eq!(
            files,
            vec![
                "a/en/body.htm",
                "a/en/body.html",
                "a/en/body.txt",
                "b/en/body.html",
                "b/en/body.txt",
                "b/en/subject.txt",
                "c/en/body.html",
                "c/en/body.txt",
                "c/en/subject.txt",
            ]
        );
        assert!(problems[0].message.starts_with("unexpected file"));
        assert!(problems[1].message.contains("fallback language"));
    }

    #[test]
    fn check_sends_renders_as_the_sweep_sends() {
        let tmp = tempfile::tempdir().unwrap();
        // Fine with the two-invoice sample, fails for a message about one.
        full(
            tmp.path(),
            "two",
            "en",
            "S",
            "Also {{ invoices[1].number }}",
            "H",
        );
        // Guards `plan` and needs a second installment.
        full(
            tmp.path(),
            "plan-offer",
            "de",
            "S",
            "{{ plan.down_payment }} then {{ plan.installments[1].due_date }}",
            "H",
        );
        full(tmp.path(), "plan-offer", "en", "S", "{{ plan.total }}", "H");
        full(
            tmp.path(),
            "fine",
            "en",
            "S {{ customer.name }}",
            "{% for i in invoices %}{{ i.number }}{% endfor %}",
            "H",
        );
        let templates = Templates::load(tmp.path()).unwrap();
        assert!(templates.check().is_empty(), "{:?}", templates.check());

        let two = templates.check_sends("two", false);
        assert_eq!(two.len(), 1, "{two:?}");
        assert!(
            two[0].file.ends_with("two/en/body.txt"),
            "{:?}",
            two[0].file
        );
        assert!(
            two[0].message.starts_with(
                "fails for a message about one invoice: `invoices[1].number` is not defined"
            ),
            "{}",
            two[0].message
        );

        let offer = templates.check_sends("plan-offer", true);
        assert_eq!(offer.len(), 1, "{offer:?}");
        assert!(offer[0].file.ends_with("plan-offer/de/body.txt"));
        assert!(
            offer[0].message.contains("single installment"),
            "{}",
            offer[0].message
        );

        assert!(templates.check_sends("fine", false).is_empty());
        assert!(templates.check_sends("absent", false).is_empty());
    }

    #[test]
    fn language_for_is_what_render_uses() {
        let tmp = tempfile::tempdir().unwrap();
        full(tmp.path(), "t", "en", "Hello", "Hi", "<p>Hi</p>");
        full(tmp.path(), "t", "de", "Hallo", "Servus", "<p>Servus</p>");
        let templates = Templates::load(tmp.path()).unwrap();
        assert_eq!(templates.language_for("t", "de-AT").as_deref(), Some("de"));
        assert_eq!(templates.language_for("t", "fr").as_deref(), Some("en"));
        assert_eq!(templates.language_for("nope", "fr"), None);
    }

    #[test]
    fn real_templates_pass_check() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policy/templates");
        let templates = Templates::load(&dir).unwrap();
        assert!(!templates.names().is_empty());
        let problems = templates.check();
        assert!(
            problems.is_empty(),
            "{}",
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
        for name in templates.names() {
            let sends = templates.check_sends(&name, name == "plan-offer");
            assert!(sends.is_empty(), "{sends:?}");
        }
        let mut ctx = MessageContext::sample();
        for name in templates.names() {
            if !templates.uses_plan(&name) {
                ctx.plan = None;
            }
            let r = templates.render(&name, "en", &ctx).unwrap();
            assert!(!r.subject.is_empty(), "{name}");
            ctx.plan = MessageContext::sample().plan;
        }
    }

    /// A small layout in the shape of the real one: a page, the invoices,
    /// and blocks for the words.
    const LAYOUT: &str = "{#- the page -#}\n<html lang=\"{% block lang required %}{% endblock %}\">\n<h1 style=\"color:{% block accent required %}{% endblock %}\">{% block title required %}{% endblock %}</h1>\n{% for invoice in invoices %}<a href=\"{{ invoice.pay_link }}\" style=\"background:{{ self.accent() }}\">{% block pay required %}{% endblock %}</a> {{ invoice.number }}\n{% endfor %}<p>{{ company.name }}</p>\n</html>\n";

    fn write_layout(root: &Path, file: &str, text: &str) {
        std::fs::create_dir_all(root.join(LAYOUT_DIR)).unwrap();
        std::fs::write(root.join(LAYOUT_DIR).join(file), text).unwrap();
    }

    fn body(lang: &str, title: &str) -> String {
        format!(
            "{{% extends \"_layout/page.html\" %}}\n{{% block lang %}}{lang}{{% endblock %}}\n\
             {{% block accent %}}#c53030{{% endblock %}}\n{{% block title %}}{title}{{% endblock %}}\n\
             {{% block pay %}}Pay{{% endblock %}}\n"
        )
    }

    #[test]
    fn bodies_extend_a_layout_that_is_not_a_template() {
        let tmp = tempfile::tempdir().unwrap();
        write_layout(tmp.path(), "page.html", LAYOUT);
        full(
            tmp.path(),
            "reminder",
            "en",
            "S",
            "T",
            &body("en", "Hello {{ customer.name }}"),
        );
        full(tmp.path(), "reminder", "de", "S", "T", &body("de", "Hallo"));
        let templates = Templates::load(tmp.path()).unwrap();
        assert_eq!(templates.names(), vec!["reminder"]);
        assert_eq!(templates.languages("reminder"), vec!["de", "en"]);
        assert_eq!(templates.layouts(), ["_layout/page.html"]);
        assert!(templates.check().is_empty(), "{:?}", templates.check());
        assert!(templates.check_sends("reminder", false).is_empty());

        let mut ctx = MessageContext::sample();
        ctx.customer.name = "<Ann & Co>".to_string();
        let html = templates.render("reminder", "en", &ctx).unwrap().html;
        let link = |i: usize| ctx.invoices[i].pay_link.replace('/', "&#x2f;");
        assert_eq!(
            html,
            format!(
                "<html lang=\"en\">\n<h1 style=\"color:#c53030\">Hello &lt;Ann &amp; Co&gt;</h1>\n\
                 <a href=\"{}\" style=\"background:#c53030\">Pay</a> 2025-0042\n\
                 <a href=\"{}\" style=\"background:#c53030\">Pay</a> {}\n<p>{}</p>\n</html>",
                link(0),
                link(1),
                ctx.invoices[1].number,
                ctx.company.name
            )
        );
        let de = templates.render("reminder", "de-AT", &ctx).unwrap().html;
        assert!(de.starts_with("<html lang=\"de\">\n<h1"), "{de}");
    }

    #[test]
    fn a_missing_layout_is_a_load_error_naming_its_path() {
        let tmp = tempfile::tempdir().unwrap();
        write_layout(tmp.path(), "page.html", LAYOUT);
        full(tmp.path(), "fine", "en", "S", "T", &body("en", "Fine"));
        full(
            tmp.path(),
            "reminder",
            "en",
            "S",
            "T",
            &format!(
                "{{# {{% extends \"_layout/commented-out.html\" %}} #}}\n{}",
                body("en", "Hi").replace("_layout/page.html", "_layout/pgae.html")
            ),
        );
        let err = Templates::load(tmp.path()).unwrap_err();
        let TemplateError::MissingLayout {
            file,
            line,
            layout,
            message,
        } = &err
        else {
            panic!("{err:?}");
        };
        assert!(file.ends_with("reminder/en/body.html"), "{file:?}");
        assert_eq!(*line, Some(2));
        assert_eq!(layout, "_layout/pgae.html");
        let path = tmp.path().join("_layout").join("pgae.html");
        assert!(
            message.starts_with(&format!(
                "`_layout/pgae.html` does not exist: there is no file {} to extend or include",
                path.display()
            )),
            "{message}"
        );
        assert!(
            message.contains("the layouts are: `_layout/page.html`"),
            "{message}"
        );
        assert!(
            err.to_string().contains("body.html:2: `_layout/pgae.html`"),
            "{err}"
        );

        // A layout that includes a file that is not there is refused too,
        // and without any layout the message says where they belong.
        full(tmp.path(), "reminder", "en", "S", "T", &body("en", "Hi"));
        write_layout(
            tmp.path(),
            "page.html",
            &LAYOUT.replace("<p>", "{% include 'parts/footer.html' %}<p>"),
        );
        let err = Templates::load(tmp.path()).unwrap_err();
        assert!(
            matches!(&err, TemplateError::MissingLayout { file, line: Some(5), layout, .. }
                if file.ends_with("_layout/page.html") && layout == "parts/footer.html"),
            "{err:?}"
        );
        std::fs::remove_dir_all(tmp.path().join(LAYOUT_DIR)).unwrap();
        let err = Templates::load(tmp.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "there is no layout in {}",
                tmp.path().join(LAYOUT_DIR).display()
            )),
            "{err}"
        );
    }

    #[test]
    fn check_names_the_body_or_the_layout_at_fault() {
        let tmp = tempfile::tempdir().unwrap();
        // A misspelt variable in a branch the sample never takes, and one
        // that fails every render.
        write_layout(
            tmp.path(),
            "page.html",
            &LAYOUT.replace(
                "<p>{{ company.name }}</p>",
                "<p>{% if invoices|length > 9 %}{{ company.nmae }}{% endif %}</p>\n<p>{{ total_balanse }}</p>",
            ),
        );
        full(tmp.path(), "a", "en", "S", "T", &body("en", "A"));
        // A body that leaves out a block the layout requires.
        full(
            tmp.path(),
            "b",
            "en",
            "S",
            "T",
            &body("en", "B").replace("{% block pay %}Pay{% endblock %}\n", ""),
        );
        let templates = Templates::load(tmp.path()).unwrap();
        let problems = templates.check();
        let found: Vec<(String, Option<usize>, &str)> = problems
            .iter()
            .map(|p| {
                (
                    p.file
                        .strip_prefix(tmp.path())
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/"),
                    p.line,
                    p.message.as_str(),
                )
            })
            .collect();
        assert_eq!(found.len(), 3, "{found:#?}");
        assert_eq!(
            (found[0].0.as_str(), found[0].1),
            ("_layout/page.html", Some(5))
        );
        assert!(
            found[0].2.starts_with("`company.nmae` is not a variable"),
            "{found:#?}"
        );
        assert_eq!(
            (found[1].0.as_str(), found[1].1),
            ("_layout/page.html", Some(6))
        );
        assert!(
            found[1].2.starts_with("`total_balanse` is not a variable"),
            "{found:#?}"
        );
        assert_eq!((found[2].0.as_str(), found[2].1), ("b/en/body.html", None));
        assert_eq!(
            found[2].2,
            "the block `pay` is missing: `_layout/page.html` needs every body that extends it \
             to fill it (`{% block pay %}…{% endblock %}`)"
        );
        let err = templates
            .render("b", "en", &MessageContext::sample())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("body.html: the block `pay` is missing"),
            "{err}"
        );
    }

    #[test]
    fn references_are_the_literal_names_a_template_must_find() {
        let source = "{# {% include \"in-a-comment\" %} #}\n{%- extends '_layout/a.html' -%}\n\
                      {% raw %}{% include \"raw\" %}{% endraw %}\n{{ '{%' }}\n\
                      {% include \"b\" ignore missing %}{% include name %}{% include [\"c\", \"d\"] %}\n\
                      {% import \"m.html\" as m %}{% from \"n.html\" import x %}{% include \"e\" %}";
        assert_eq!(
            references(source),
            vec![
                ("_layout/a.html".to_string(), 2),
                ("m.html".to_string(), 6),
                ("n.html".to_string(), 6),
                ("e".to_string(), 6),
            ]
        );
    }

    #[test]
    fn the_email_bodies_extend_the_layout() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policy/templates");
        let templates = Templates::load(&dir).unwrap();
        assert_eq!(templates.layouts(), ["_layout/email.html"]);
        assert!(!templates.names().iter().any(|n| n == LAYOUT_DIR));
        let ctx = MessageContext::sample();
        for name in templates.names() {
            for lang in templates.languages(&name) {
                let source =
                    std::fs::read_to_string(dir.join(&name).join(&lang).join(HTML)).unwrap();
                // The legal notice is a printed letter with its own markup.
                assert_eq!(
                    source.starts_with("{% extends \"_layout/email.html\" %}\n"),
                    name != "legal-notice",
                    "{name}/{lang}"
                );
                let html = templates.render(&name, &lang, &ctx).unwrap().html;
                assert!(
                    html.starts_with(&format!("<!DOCTYPE html>\n<html lang=\"{lang}\">\n")),
                    "{name}/{lang}: {html}"
                );
                assert!(html.ends_with("</html>"), "{name}/{lang}");
                for invoice in &ctx.invoices {
                    assert!(html.contains(&invoice.number), "{name}/{lang}");
                }
            }
        }
    }
}
