//! What a change of templates does to the letters: for each template and
//! language whose sample message (subject and text body) reads differently
//! between two revisions of a policy folder, the before and after, as a
//! Markdown section for a pull request comment (`collect template-diff`).
//!
//! `collect diff` shows which invoices a policy change moves; a change of
//! wording moves none, so it showed nothing. Here both revisions render
//! every template with the sample context of `collect check` (made-up
//! customer, invoices and plan, US English formats), and the rendered
//! texts are compared, so a change in an included file or a filter shows
//! as well as an edit of the template itself. The HTML part is not
//! compared: it is the text part in a layout.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use collect_delivery::message::templates::{Rendered, Templates};
use collect_delivery::message::{MessageContext, TemplateError};
use similar::{ChangeTag, TextDiff};

/// The templates folder of `dir`: `dir/templates` when there is one (a
/// policy folder), else `dir` itself.
pub fn templates_dir(dir: &Path) -> PathBuf {
    let nested = dir.join("templates");
    if nested.is_dir() {
        nested
    } else {
        dir.to_path_buf()
    }
}

/// One template in one language, as the two revisions render it (`None`
/// where the revision does not have it; an error as its text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub name: String,
    pub language: String,
    pub old: Option<Result<Rendered, String>>,
    pub new: Option<Result<Rendered, String>>,
}

/// Every template and language whose sample renders differently.
pub fn changed(old: &Templates, new: &Templates) -> Vec<Changed> {
    let ctx = MessageContext::sample();
    let pairs = |t: &Templates| -> BTreeSet<(String, String)> {
        t.names()
            .into_iter()
            .flat_map(|n| t.languages(&n).into_iter().map(move |l| (n.clone(), l)))
            .collect()
    };
    let render = |t: &Templates, n: &str, l: &str| {
        pairs(t).contains(&(n.to_string(), l.to_string())).then(|| {
            t.render(n, l, &ctx)
                .map_err(|e: TemplateError| e.to_string())
        })
    };
    let all: BTreeSet<(String, String)> = pairs(old).union(&pairs(new)).cloned().collect();
    all.into_iter()
        .filter_map(|(name, language)| {
            let (o, n) = (render(old, &name, &language), render(new, &name, &language));
            let same = match (&o, &n) {
                (Some(Ok(a)), Some(Ok(b))) => a.subject == b.subject && a.text == b.text,
                (a, b) => a == b,
            };
            (!same).then_some(Changed {
                name,
                language,
                old: o,
                new: n,
            })
        })
        .collect()
}

/// The Markdown section for a pull request; empty when nothing changed.
pub fn markdown(old_label: &str, new_label: &str, changes: &[Changed]) -> String {
    if changes.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Letters: `{old_label}` → `{new_label}`\n\n\
         {} template(s) read differently, rendered with the sample of `collect check` \
         (a made-up customer and invoices).\n",
        changes.len()
    );
    for c in changes {
        let _ = writeln!(out, "#### `{}` (`{}`)\n", c.name, c.language);
        match (&c.old, &c.new) {
            (None, Some(new)) => {
                out.push_str("New template.\n\n");
                shown(&mut out, new);
            }
            (Some(_), None) => out.push_str("Removed.\n\n"),
            (Some(old), Some(new)) => compare(&mut out, old, new),
            (None, None) => {}
        }
    }
    out
}

fn shown(out: &mut String, r: &Result<Rendered, String>) {
    match r {
        Ok(r) => {
            let _ = writeln!(
                out,
                "Subject: {}\n\n```text\n{}\n```\n",
                r.subject,
                r.text.trim_end()
            );
        }
        Err(e) => {
            let _ = writeln!(out, "Does not render: {e}\n");
        }
    }
}

fn compare(out: &mut String, old: &Result<Rendered, String>, new: &Result<Rendered, String>) {
    let (Ok(old), Ok(new)) = (old, new) else {
        out.push_str("Before:\n\n");
        shown(out, old);
        out.push_str("After:\n\n");
        shown(out, new);
        return;
    };
    if old.subject == new.subject {
        let _ = writeln!(out, "Subject (unchanged): {}\n", new.subject);
    } else {
        let _ = writeln!(
            out,
            "Subject before: {}  \nSubject after: {}\n",
            old.subject, new.subject
        );
    }
    if old.text != new.text {
        out.push_str("```diff\n");
        for change in TextDiff::from_lines(&old.text, &new.text).iter_all_changes() {
            let sign = match change.tag() {
                ChangeTag::Delete => '-',
                ChangeTag::Insert => '+',
                ChangeTag::Equal => ' ',
            };
            let _ = writeln!(out, "{sign}{}", change.value().trim_end_matches('\n'));
        }
        out.push_str("```\n\n");
        let _ = writeln!(
            out,
            "<details><summary>The whole letter after the change</summary>\n\n```text\n{}\n```\n\n</details>\n",
            new.text.trim_end()
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn template(dir: &Path, name: &str, lang: &str, subject: &str, text: &str) {
        let d = dir.join(name).join(lang);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("subject.txt"), subject).unwrap();
        std::fs::write(d.join("body.txt"), text).unwrap();
        std::fs::write(d.join("body.html"), format!("<p>{text}</p>")).unwrap();
    }

    #[test]
    fn changed_letters_as_markdown() {
        let tmp = tempfile::tempdir().unwrap();
        let (old, new) = (tmp.path().join("old"), tmp.path().join("new/templates"));
        let body = "Dear {{ customer.name }},\n\nInvoice {{ invoices[0].number }} is due on {{ invoices[0].due_date }}.\n\nThank you.\n";
        template(
            &old,
            "reminder",
            "en",
            "Invoice {{ invoices[0].number }}",
            body,
        );
        template(
            &new,
            "reminder",
            "en",
            "Reminder: invoice {{ invoices[0].number }}",
            &body.replace("Thank you.", "Kind regards,\n{{ company.name }}"),
        );
        // The same in both: not listed.
        template(
            &old,
            "reminder",
            "de",
            "Rechnung",
            "Hallo {{ customer.name }}\n",
        );
        template(
            &new,
            "reminder",
            "de",
            "Rechnung",
            "Hallo {{ customer.name }}\n",
        );
        template(
            &new,
            "thanks",
            "en",
            "Thanks",
            "Paid in full, {{ customer.name }}.\n",
        );
        template(&old, "gone", "en", "Old", "Bye\n");
        let old = Templates::load(&templates_dir(&old)).unwrap();
        let new = Templates::load(&templates_dir(&tmp.path().join("new"))).unwrap();
        let changes = changed(&old, &new);
        assert_eq!(changes.len(), 3, "{changes:?}");
        insta::assert_snapshot!(markdown("main", "pull request", &changes));
        assert_eq!(markdown("a", "b", &changed(&old, &old)), "");
    }
}
