//! `collect explain WHAT`: from what an auditor holds to its explanation.
//!
//! WHAT may be an invoice id (`INV-27-00880`), the invoice number printed
//! on the letter (`2027-00880`; several invoices with that number are
//! listed to pick from), the letter's Message-ID as the `.eml` header shows
//! it (`<msg-…@domain>`, with or without the brackets and the domain), or
//! an action id (`act-…`, as in `X-Collect-Action-Ids`). A message is
//! explained action by action, each with its audit trail; every recorded
//! action recorded under another revision than the policy given gets a
//! warning saying where to find the one it was recorded under.

use crate::Format;
use crate::home::Home;
use crate::local::{self, InvoiceExplanation, Loaded};
use crate::revisions::Revisions;
use anyhow::{Result, bail};
use chrono::NaiveDate;
use collect_delivery::ledger::{Ledger, StoredMessage, note_after_status};
use collect_delivery::revision::short;
use collect_engine::book::Book;
use collect_engine::domain::ActionRecord;
use collect_sqlite::store::{SqliteStore, Store};
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// What WHAT named.
#[derive(Debug)]
pub enum Target {
    /// An invoice, by its id or by the number on the letter.
    Invoice {
        invoice_id: String,
        via: &'static str,
    },
    Action(Box<ActionRecord>),
    /// A message and the actions it carried.
    Message {
        message_id: String,
        stored: Option<Box<StoredMessage>>,
        actions: Vec<ActionRecord>,
    },
}

/// The message id of a Message-ID header value: `<msg-1@example.com>`,
/// `msg-1@example.com` and `msg-1` all name `msg-1`.
pub fn message_key(what: &str) -> &str {
    let w = what.trim();
    let w = w.strip_prefix('<').unwrap_or(w);
    let w = w.strip_suffix('>').unwrap_or(w);
    w.split('@').next().unwrap_or(w).trim()
}

pub fn resolve(home: &Home, store: &SqliteStore, book: &Book, what: &str) -> Result<Target> {
    let w = what.trim();
    if let Some(a) = store.action(w)? {
        return Ok(Target::Action(Box::new(a)));
    }
    let key = message_key(w);
    let looks_like_message = key.starts_with("msg-") || w.contains('@') || w.starts_with('<');
    if looks_like_message {
        let stored = pollster::block_on(Ledger::message(store, key))?;
        let mut actions: Vec<ActionRecord> = store
            .actions()?
            .into_iter()
            .filter(|a| {
                a.message_id.as_deref() == Some(key)
                    || stored
                        .as_ref()
                        .is_some_and(|m| m.action_ids.contains(&a.action_id))
            })
            .collect();
        actions.sort_by(|a, b| (&a.invoice_id, a.step_offset).cmp(&(&b.invoice_id, b.step_offset)));
        if stored.is_some() || !actions.is_empty() {
            return Ok(Target::Message {
                message_id: key.to_string(),
                stored: stored.map(Box::new),
                actions,
            });
        }
        bail!(
            "no message `{key}` in {}: the Message-ID of a letter sent from this home \
             (the `.eml` header `Message-ID: <msg-…@…>`) names one",
            home.db_path().display()
        );
    }
    if book.invoice(w).is_some() {
        return Ok(Target::Invoice {
            invoice_id: w.to_string(),
            via: "invoice id",
        });
    }
    let numbered: Vec<_> = book.invoices.iter().filter(|i| i.number == w).collect();
    match numbered.as_slice() {
        [one] => Ok(Target::Invoice {
            invoice_id: one.invoice_id.clone(),
            via: "invoice number",
        }),
        [] => bail!(
            "no invoice, invoice number, Message-ID or action id `{w}` in {}; \
             give an invoice id (`INV-…`), the number on the letter, the `.eml`'s \
             Message-ID or an action id (`act-…`, as in `X-Collect-Action-Ids`)",
            home.db_path().display()
        ),
        many => {
            let list: Vec<String> = many
                .iter()
                .map(|i| {
                    let name = book
                        .customers
                        .get(&i.customer_id)
                        .map_or("", |c| c.name.as_str());
                    format!(
                        "  {}  customer {} {name}  issued {}  {} {}",
                        i.invoice_id, i.customer_id, i.issue_date, i.amount, i.currency
                    )
                })
                .collect();
            bail!(
                "{} invoices have the number `{w}`; explain one by its id:\n{}",
                many.len(),
                list.join("\n")
            )
        }
    }
}

/// Records as JSON, each with its audit trail (`history`).
pub fn with_history(
    store: &SqliteStore,
    records: &[&ActionRecord],
) -> Result<Vec<serde_json::Value>> {
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let mut v = serde_json::to_value(r)?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert(
                "history".to_string(),
                serde_json::to_value(store.action_log(&r.action_id)?)?,
            );
        }
        out.push(v);
    }
    Ok(out)
}

fn percent(risk: Option<f64>) -> String {
    risk.map_or_else(|| "missing".to_string(), |x| format!("{:.1}%", x * 100.0))
}

/// One recorded action and its audit trail, for people.
pub fn describe_action(store: &SqliteStore, r: &ActionRecord) -> Result<String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  {}  {} `{}` {} (rule {}, policy {} rev {}, bundle {}, git {}, segment {}, risk {}, scorer {} v{}{})",
        r.decided_on,
        r.action_id,
        r.label,
        r.status.as_str(),
        r.rule,
        r.policy_name,
        short(&r.policy_revision),
        r.bundle_revision.as_deref().map_or("(not recorded)", short),
        r.git_revision.as_deref().unwrap_or("(not recorded)"),
        r.segment,
        percent(r.risk),
        r.scorer,
        r.scorer_version,
        r.message_id
            .as_deref()
            .map(|m| format!(", message {m}"))
            .unwrap_or_default()
    );
    for e in store.action_log(&r.action_id)? {
        let _ = writeln!(
            out,
            "      {} {}{}{} [risk {}]",
            e.day,
            e.status,
            e.note
                .as_deref()
                .map(|n| format!(": {}", note_after_status(&e.status, n)))
                .unwrap_or_default(),
            e.by.map(|b| format!(" (by {b})")).unwrap_or_default(),
            percent(e.risk)
        );
    }
    Ok(out)
}

/// A warning when `r` was recorded under another revision than the policy
/// given, saying where to find the one it was recorded under.
pub fn revision_warning(r: &ActionRecord, loaded: &Loaded, given: &Revisions) -> Option<String> {
    let differs = match (&r.bundle_revision, &given.bundle_revision) {
        (Some(recorded), Some(now)) => recorded != now,
        _ => r.policy_revision != loaded.policy.revision,
    };
    if !differs {
        return None;
    }
    let recorded = match &r.bundle_revision {
        Some(b) => format!("bundle revision {b}"),
        None => format!(
            "policy revision {} (SHA-256 of the policy text; recorded before bundle revisions)",
            r.policy_revision
        ),
    };
    let now = match &given.bundle_revision {
        Some(b) if r.bundle_revision.is_some() => format!("bundle revision {b}"),
        _ => format!("policy revision {}", loaded.policy.revision),
    };
    let git = match r.git_revision.as_deref() {
        Some(g) if g.ends_with("-dirty") => format!(
            " It was run from Git commit {} with changes not committed: only a bundle \
             (`collect bundle` output, or the bundle in S3) with that revision holds it.",
            g.trim_end_matches("-dirty")
        ),
        Some(g) => format!(
            " Find it at Git commit {g}: `git show {g}:<policy folder>` or `git log` on the \
             release tag, then run `collect explain` with `--policy` from that checkout; \
             `collect bundle` of that commit prints the same bundle revision."
        ),
        None => " No Git commit was recorded: look for the `collect bundle` output (or the \
                 bundle in S3) that prints that revision."
            .to_string(),
    };
    Some(format!(
        "warning: action {} was recorded under {recorded}, but the policy given ({}) is {now}; \
         the explanation below follows the policy given, the recorded fields are as recorded.{git}",
        r.action_id, given.policy
    ))
}

/// The explanation of `invoice_id` on `date`, with revision warnings for
/// its recorded actions.
fn explain_one(
    home: &Home,
    loaded: &Loaded,
    given: &Revisions,
    store: &SqliteStore,
    book: &Book,
    invoice_id: &str,
    date: NaiveDate,
) -> Result<InvoiceExplanation> {
    let mut e = local::explain_stored_invoice(home, loaded, store, book, invoice_id, date)?;
    let warnings: Vec<String> = book
        .actions_of(invoice_id)
        .iter()
        .filter_map(|r| revision_warning(r, loaded, given))
        .collect();
    if let Some(obj) = e.json.as_object_mut() {
        obj.insert("revision_warnings".to_string(), serde_json::json!(warnings));
    }
    if !warnings.is_empty() {
        e.text = format!("{}\n{}", warnings.join("\n"), e.text);
    }
    Ok(e)
}

pub fn explain(
    home: &Home,
    policy: &Path,
    what: &str,
    date: Option<NaiveDate>,
    format: Format,
) -> Result<ExitCode> {
    let loaded = local::load_policy(policy)?;
    let given = Revisions::of(policy);
    let store = home.store()?;
    let book = Store::load_book(&store)?;
    let target = resolve(home, &store, &book, what)?;
    let (json, text) = match target {
        Target::Invoice { invoice_id, via } => {
            let day = match date.or_else(|| {
                book.actions_of(&invoice_id)
                    .iter()
                    .map(|a| a.decided_on)
                    .max()
            }) {
                Some(d) => d,
                None => bail!(
                    "invoice `{invoice_id}` has no recorded action yet; say which day to \
                     explain with --date YYYY-MM-DD"
                ),
            };
            let e = explain_one(home, &loaded, &given, &store, &book, &invoice_id, day)?;
            let mut json = e.json;
            if let Some(obj) = json.as_object_mut() {
                obj.insert(
                    "resolved".to_string(),
                    serde_json::json!({"input": what, "as": via}),
                );
                obj.insert("revisions".to_string(), serde_json::to_value(&given)?);
            }
            let head = if via == "invoice number" {
                format!("`{what}` is the number of invoice {invoice_id}\n")
            } else {
                String::new()
            };
            (json, format!("{head}{}", e.text))
        }
        Target::Action(r) => {
            let day = date.unwrap_or(r.decided_on);
            let e = explain_one(home, &loaded, &given, &store, &book, &r.invoice_id, day)?;
            let json = serde_json::json!({
                "resolved": {"input": what, "as": "action id"},
                "action": with_history(&store, &[&*r])?.pop(),
                "revisions": given,
                "invoice": e.json,
            });
            let mut text = format!("Action {} of invoice {}:\n", r.action_id, r.invoice_id);
            text.push_str(&describe_action(&store, &r)?);
            let _ = writeln!(text, "\nIts invoice on {day}:");
            text.push_str(&e.text);
            (json, text)
        }
        Target::Message {
            message_id,
            stored,
            actions,
        } => {
            let mut text = String::new();
            match &stored {
                Some(m) => {
                    let _ = writeln!(
                        text,
                        "Message {message_id}: {} `{}` to customer {}, planned {}, {}{}; it carried {} action(s)",
                        m.channel,
                        m.template,
                        m.customer_id,
                        m.planned_on,
                        m.status.as_str(),
                        m.sent_on.map(|d| format!(" on {d}")).unwrap_or_default(),
                        actions.len()
                    );
                }
                None => {
                    let _ = writeln!(
                        text,
                        "Message {message_id} (not recorded as a message; named by {} action(s))",
                        actions.len()
                    );
                }
            }
            let mut per_action = Vec::with_capacity(actions.len());
            for r in &actions {
                let day = date.unwrap_or(r.decided_on);
                let e = explain_one(home, &loaded, &given, &store, &book, &r.invoice_id, day)?;
                let _ = writeln!(
                    text,
                    "\n=== action {} (invoice {}), on {day}",
                    r.action_id, r.invoice_id
                );
                text.push_str(&describe_action(&store, r)?);
                text.push('\n');
                text.push_str(&e.text);
                per_action.push(serde_json::json!({
                    "action": with_history(&store, &[r])?.pop(),
                    "invoice": e.json,
                }));
            }
            let json = serde_json::json!({
                "resolved": {"input": what, "as": "message id"},
                "message": stored,
                "revisions": given,
                "actions": per_action,
            });
            (json, text)
        }
    };
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&json)?),
        Format::Human => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::message_key;

    #[test]
    fn a_message_id_is_found_in_every_form_the_eml_shows() {
        for form in [
            "<msg-1a2b@proactive-collections>",
            "msg-1a2b@mail.example.com",
            "msg-1a2b",
            " <msg-1a2b> ",
        ] {
            assert_eq!(message_key(form), "msg-1a2b", "{form}");
        }
    }
}
