//! The explanation of a stored decision, for `collect explain WHAT`: for
//! an invoice on a day, the production sweep's plan and the trace behind
//! it, the risk and its top factors, and every recorded action with its
//! audit trail; for an action or a message, the same for each invoice it
//! concerns. An action recorded under another revision than the policy
//! given gets a warning saying where to find the one it was recorded under.

use crate::home::{Home, HomeError};
use crate::lookup::{self, LookupError, Target, TrailError, describe_action, with_history};
use crate::policy_load::{LoadError, Loaded, load_policy};
use crate::revisions::Revisions;
use crate::scorer::{ScorerError, scorer};
use chrono::NaiveDate;
use collect_delivery::ledger::LedgerError;
use collect_engine::book::Book;
use collect_engine::domain::ActionRecord;
use collect_engine::sweep;
use collect_sqlite::store::{SqliteStore, Store, StoreError};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Why a stored decision cannot be explained.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("no invoice `{invoice_id}` in {}; ingest it first", db.display())]
    NoInvoice { invoice_id: String, db: PathBuf },
    #[error("invoice `{invoice_id}` names customer `{customer_id}`, who is not in the book")]
    UnknownCustomer {
        invoice_id: String,
        customer_id: String,
    },
    #[error(
        "invoice `{invoice_id}` has no recorded action yet; say which day to \
         explain with --date YYYY-MM-DD"
    )]
    NoDay { invoice_id: String },
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Home(#[from] HomeError),
    #[error(transparent)]
    Scorer(#[from] ScorerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Trail(#[from] TrailError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// An explanation, for tools (`json`) and for people (`text`).
pub struct Explained {
    pub json: serde_json::Value,
    pub text: String,
}

/// The explanation of a stored invoice on a day: the decision the
/// production sweep makes, the risk behind it, and the recorded actions
/// with their audit trail.
pub struct InvoiceExplanation {
    pub json: serde_json::Value,
    pub text: String,
}

pub fn explain_stored_invoice(
    home: &Home,
    loaded: &Loaded,
    store: &SqliteStore,
    book: &Book,
    invoice_id: &str,
    date: NaiveDate,
) -> Result<InvoiceExplanation, ExplainError> {
    let Some(invoice) = book.invoice(invoice_id) else {
        return Err(ExplainError::NoInvoice {
            invoice_id: invoice_id.to_string(),
            db: home.db_path(),
        });
    };
    let Some(customer) = book.customers.get(&invoice.customer_id) else {
        return Err(ExplainError::UnknownCustomer {
            invoice_id: invoice_id.to_string(),
            customer_id: invoice.customer_id.to_string(),
        });
    };
    let stats = book.customer_stats(&customer.customer_id, date);
    let scorer = scorer(home)?;
    let input = sweep::ScoreInput {
        book,
        invoice,
        day: date,
        stats: &stats,
    };
    let risk = scorer.as_dyn().score(&input);
    let why = scorer.explain(&input, 3);
    let facts = sweep::facts(book, customer, invoice, &stats, risk, date);
    let opts = home.sweep_options(None, None)?;
    let mut trace = loaded.policy.explain(&facts);
    // The decision shown is the production sweep's plan for that day, given
    // what is recorded now (the checks made at sending come on top).
    let customer_book = pollster::block_on(collect_delivery::ledger::Ledger::customer_book(
        store,
        &customer.customer_id,
    ))?;
    let plan = sweep::plan_sweep(&customer_book, &loaded.policy, scorer.as_dyn(), date, &opts);
    trace.plan =
        collect_delivery::rehearsal::planned_outcome(&plan, invoice_id, trace.plan.segment.clone())
            .into_day_plan();
    let recorded: Vec<&ActionRecord> = book.actions_of(invoice_id).iter().collect();
    let json = serde_json::json!({
        "invoice_id": invoice.invoice_id,
        "invoice_number": invoice.number,
        "customer_id": invoice.customer_id,
        "date": date,
        "trace": trace,
        "balance": book.balance(invoice, date),
        "open": book.is_open(invoice, date),
        "risk": risk,
        "scorer": scorer.as_dyn().name(),
        "scorer_version": scorer.as_dyn().version(),
        "risk_factors": why,
        "recorded_actions": with_history(store, &recorded)?,
    });
    let mut text = String::new();
    let _ = writeln!(
        text,
        "Invoice {} (number {}, customer {})",
        invoice.invoice_id, invoice.number, invoice.customer_id
    );
    let _ = writeln!(
        text,
        "Balance on {date}: {} {} of {} {}{}",
        book.balance(invoice, date),
        invoice.currency,
        invoice.amount,
        invoice.currency,
        if book.is_open(invoice, date) {
            ""
        } else {
            " (not open: nothing to do)"
        }
    );
    let _ = writeln!(
        text,
        "Risk: {} (scorer: {})",
        risk.map_or_else(|| "missing".to_string(), |r| format!("{:.1}%", r * 100.0)),
        scorer.describe()
    );
    if !why.is_empty() {
        let _ = writeln!(
            text,
            "  top risk factors: {}",
            why.iter()
                .map(|(n, c)| format!("{n} ({c:+.3})"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    text.push_str(&trace.render());
    text.push_str(&describe_recorded(store, &recorded)?);
    Ok(InvoiceExplanation { json, text })
}

fn describe_recorded(
    store: &SqliteStore,
    recorded: &[&ActionRecord],
) -> Result<String, StoreError> {
    let mut out = String::new();
    let _ = writeln!(out, "\nRecorded actions for this invoice:");
    if recorded.is_empty() {
        let _ = writeln!(out, "  none yet");
    }
    for r in recorded {
        out.push_str(&describe_action(store, r)?);
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
) -> Result<InvoiceExplanation, ExplainError> {
    let mut e = explain_stored_invoice(home, loaded, store, book, invoice_id, date)?;
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

pub fn explain_what(
    home: &Home,
    policy: &Path,
    what: &str,
    date: Option<NaiveDate>,
) -> Result<Explained, ExplainError> {
    let loaded = load_policy(policy)?;
    let given = Revisions::of(policy);
    let store = home.store()?;
    let book = Store::load_book(&store)?;
    let target = lookup::resolve(home, &store, &book, what)?;
    let (json, text) = match target {
        Target::Invoice { invoice_id, via } => {
            let day = match date.or_else(|| {
                book.actions_of(&invoice_id)
                    .iter()
                    .map(|a| a.decided_on)
                    .max()
            }) {
                Some(d) => d,
                None => return Err(ExplainError::NoDay { invoice_id }),
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
    Ok(Explained { json, text })
}
