//! `collect explain WHAT` for a home: WHAT resolved ([`crate::lookup`]),
//! each invoice and day explained by the one model of
//! `collect_delivery::explain` (the day replayed on the state before its
//! actions, under the bundle revision the actions recorded, kept in the
//! home's `bundles/`), and that model rendered for people ([`render`]).
//! The JSON output is the model itself ([`Explained`]).
//!
//! With `--policy FILE` every day is replayed with FILE instead: a
//! what-if, said as such, with the recorded decision beside it.
//!
//! With `--table/--bucket` the records are a deployed stack's, read through
//! the same `Ledger` port, and the revisions those its bucket keeps
//! ([`explain_on_stack`]).

use crate::home::{Home, HomeError};
use crate::lookup::{self, LookupError, Target};
use crate::policy_load::{LoadError, load_policy};
use crate::scorer::{ScorerError, scorer};
use crate::stack::{Stack, StackError};
use chrono::NaiveDate;
use collect_aws::artifacts::Artifacts;
use collect_delivery::bundle_store::{BundleDir, RevisionError};
use collect_delivery::explain::{
    self, Basis, DecidedStep, ExplainError as ModelError, Explanation, InForce, Match,
    PolicySource, Recorded, Request, WhatIf,
};
use collect_delivery::ledger::{Ledger, LedgerError, LogEntry, StoredMessage, note_after_status};
use collect_delivery::revision::short;
use collect_engine::domain::ActionRecord;
use collect_engine::sweep::SweepOptions;
use collect_sqlite::store::{Store, StoreError};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;
use std::rc::Rc;

/// Why a stored decision cannot be explained.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error(
        "invoice `{invoice_id}` has no recorded action yet; say which day to \
         explain with --date YYYY-MM-DD"
    )]
    NoDay { invoice_id: String },
    /// The recorded revision is not in the home: say which, and the way out.
    #[error(
        "action {action_id} was decided under bundle revision {revision}, which this home does \
         not keep ({source}).\n\
         help: homes of releases before bundle revisions were kept hold none. Explain it with \
         the policy as it was, as a what-if: `collect explain {action_id} --policy FILE`, FILE \
         from {where_}"
    )]
    NotKept {
        action_id: String,
        revision: String,
        where_: String,
        source: Box<RevisionError>,
    },
    #[error(
        "no action of invoice `{invoice_id}` records the bundle revision it was decided under \
         (recorded by an earlier release), so {day} cannot be replayed as it was.\n\
         help: explain it with the policy as it was, as a what-if: add --policy FILE"
    )]
    NoRevision { invoice_id: String, day: NaiveDate },
    /// On a stack: WHAT names nothing in its table.
    #[error(
        "no invoice id, Message-ID or action `{what}` in the table {table}; on a stack give an \
         invoice id (`INV-…`; the number on the letter is looked up on a home only), the \
         `.eml`'s Message-ID, or an action id with --customer C"
    )]
    NotOnStack { what: String, table: String },
    #[error(
        "a stack keeps action {action_id} in its customer's partition: name the customer with \
         --customer C (the queue and the audit export show it)"
    )]
    ActionNeedsCustomer { action_id: String },
    #[error(transparent)]
    Stack(#[from] StackError),
    #[error(transparent)]
    Aws(#[from] collect_aws::AwsError),
    #[error(transparent)]
    Model(Box<ModelError>),
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
}

impl From<ModelError> for ExplainError {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::Revision {
                revision,
                action_id,
                git_revision,
                source,
            } => ExplainError::NotKept {
                where_: match git_revision.as_deref() {
                    Some(g) if g.ends_with("-dirty") => format!(
                        "the bundle of that revision (it was run from Git commit {} with \
                         changes not committed, so only a bundle holds it)",
                        g.trim_end_matches("-dirty")
                    ),
                    Some(g) => format!(
                        "Git commit {g} (`git show {g}:<policy folder>`; `collect bundle` of \
                         that commit prints the same bundle revision)"
                    ),
                    None => "the `collect bundle` output (or the bundle in S3) that prints \
                             that revision"
                        .to_string(),
                },
                action_id,
                revision,
                source: Box::new(source),
            },
            ModelError::NoRevision { invoice_id, day } => {
                ExplainError::NoRevision { invoice_id, day }
            }
            other => ExplainError::Model(Box::new(other)),
        }
    }
}

/// What WHAT was taken as.
#[derive(Debug, Clone, Serialize)]
pub struct Resolved {
    pub input: String,
    #[serde(rename = "as")]
    pub kind: &'static str,
}

/// The answer to `collect explain WHAT`: the model `--format json` prints
/// and [`render`] shows.
#[derive(Debug, Serialize)]
pub struct Explained {
    pub resolved: Resolved,
    /// The policy file given with `--policy`: every explanation is then a
    /// what-if, its recorded decision beside it.
    pub what_if: Option<String>,
    /// The message id, when WHAT named a message.
    pub message_id: Option<String>,
    /// The message as recorded (`None` when only its actions name it).
    pub message: Option<StoredMessage>,
    /// The actions WHAT named (an action id; a message's actions).
    pub action_ids: Vec<String>,
    /// One per action named (in that order), or one for an invoice.
    pub explanations: Vec<Explanation>,
}

/// The policies a day is replayed with: as recorded (kept by the home, or
/// by the stack's bucket), or the one given.
enum Policies<'a> {
    Recorded(Recorded<'a, BundleDir>),
    Stack(Recorded<'a, Artifacts>),
    WhatIf(WhatIf),
}

impl PolicySource for Policies<'_> {
    async fn policy_for(&self, recorded: Option<&ActionRecord>) -> Result<Rc<InForce>, ModelError> {
        match self {
            Policies::Recorded(r) => r.policy_for(recorded).await,
            Policies::Stack(r) => r.policy_for(recorded).await,
            Policies::WhatIf(w) => w.policy_for(recorded).await,
        }
    }
}

/// The policy file given with `--policy`, as a what-if.
fn what_if(p: &Path) -> Result<WhatIf, ExplainError> {
    let loaded = load_policy(p)?;
    Ok(WhatIf(Rc::new(InForce {
        policy: loaded.policy,
        bundle_revision: loaded.bundle,
        basis: Basis::WhatIf,
        source: p.display().to_string(),
    })))
}

/// `collect explain WHAT --table T --bucket B`: the same explanation, read
/// through the `Ledger` port from a deployed stack's table, replayed with
/// the bundle revisions its bucket keeps. WHAT is an invoice id, a
/// Message-ID or (with `--customer`, as a stack finds actions in their
/// customer's partition) an action id.
pub fn explain_on_stack(
    stack: &Stack,
    policy: Option<&Path>,
    customer: Option<&str>,
    what: &str,
    date: Option<NaiveDate>,
) -> Result<Explained, ExplainError> {
    let artifacts = stack.artifacts()?;
    let policies = match policy {
        Some(p) => Policies::WhatIf(what_if(p)?),
        None => Policies::Stack(Recorded::new(artifacts, stack.scratch())),
    };
    let scorer = stack.scorer()?;
    let opts = SweepOptions::default();
    let ledger = &stack.dynamo;
    let w = what.trim();
    let resolved = |kind| Resolved {
        input: what.to_string(),
        kind,
    };
    let what_if = policy.map(|p| p.display().to_string());
    stack.block_on(async {
        let one = |customer_id: String, invoice_id: String, day: NaiveDate| {
            let (policies, scorer, opts) = (&policies, &scorer, &opts);
            async move {
                explain::explain_invoice(
                    ledger,
                    policies,
                    scorer,
                    opts,
                    &Request {
                        customer_id: &customer_id,
                        invoice_id: &invoice_id,
                        day,
                    },
                )
                .await
                .map_err(ExplainError::from)
            }
        };
        let key = lookup::message_key(w);
        if key.starts_with("msg-") || w.contains('@') || w.starts_with('<') {
            let Some(m) = Ledger::message(ledger, key).await? else {
                return Err(ExplainError::NotOnStack {
                    what: w.to_string(),
                    table: ledger.table().to_string(),
                });
            };
            let book = Ledger::customer_book(ledger, &m.customer_id).await?;
            let mut actions: Vec<ActionRecord> = book
                .actions
                .values()
                .flatten()
                .filter(|a| m.action_ids.contains(&a.action_id))
                .cloned()
                .collect();
            actions.sort_by(|a, b| {
                (&a.invoice_id, a.step_offset).cmp(&(&b.invoice_id, b.step_offset))
            });
            let mut explanations = Vec::with_capacity(actions.len());
            for r in &actions {
                explanations.push(
                    one(
                        r.customer_id.to_string(),
                        r.invoice_id.to_string(),
                        date.unwrap_or(r.decided_on),
                    )
                    .await?,
                );
            }
            return Ok(Explained {
                resolved: resolved("message id"),
                what_if,
                message_id: Some(key.to_string()),
                action_ids: actions.iter().map(|a| a.action_id.to_string()).collect(),
                message: Some(m),
                explanations,
            });
        }
        if w.starts_with("act-") {
            let Some(c) = customer else {
                return Err(ExplainError::ActionNeedsCustomer {
                    action_id: w.to_string(),
                });
            };
            let Some(r) = Ledger::customer_action(ledger, c, w).await? else {
                return Err(ExplainError::NotOnStack {
                    what: w.to_string(),
                    table: ledger.table().to_string(),
                });
            };
            return Ok(Explained {
                resolved: resolved("action id"),
                what_if,
                message_id: None,
                message: None,
                action_ids: vec![r.action_id.to_string()],
                explanations: vec![
                    one(
                        r.customer_id.to_string(),
                        r.invoice_id.to_string(),
                        date.unwrap_or(r.decided_on),
                    )
                    .await?,
                ],
            });
        }
        let Some(c) = ledger.customer_of_invoice(w).await? else {
            return Err(ExplainError::NotOnStack {
                what: w.to_string(),
                table: ledger.table().to_string(),
            });
        };
        let book = Ledger::customer_book(ledger, &c).await?;
        let day = date
            .or_else(|| book.actions_of(w).iter().map(|a| a.decided_on).max())
            .ok_or_else(|| ExplainError::NoDay {
                invoice_id: w.to_string(),
            })?;
        Ok(Explained {
            resolved: resolved("invoice id"),
            what_if,
            message_id: None,
            message: None,
            action_ids: Vec::new(),
            explanations: vec![one(c, w.to_string(), day).await?],
        })
    })
}

pub fn explain_what(
    home: &Home,
    policy: Option<&Path>,
    what: &str,
    date: Option<NaiveDate>,
) -> Result<Explained, ExplainError> {
    let store = home.store()?;
    let book = Store::load_book(&store)?;
    let bundles = home.bundles();
    let policies = match policy {
        Some(p) => Policies::WhatIf(what_if(p)?),
        None => Policies::Recorded(Recorded::new(&bundles, home.bundle_scratch())),
    };
    let scorer = scorer(home)?;
    let opts = home.sweep_options(None, None)?;
    let one = |customer_id: &str, invoice_id: &str, day: NaiveDate| {
        pollster::block_on(explain::explain_invoice(
            &store,
            &policies,
            &scorer,
            &opts,
            &Request {
                customer_id,
                invoice_id,
                day,
            },
        ))
        .map_err(ExplainError::from)
    };
    let resolved = |kind| Resolved {
        input: what.to_string(),
        kind,
    };
    let what_if = policy.map(|p| p.display().to_string());
    let target = lookup::resolve(home, &store, &book, what)?;
    Ok(match target {
        Target::Invoice { invoice_id, via } => {
            let day = date
                .or_else(|| {
                    book.actions_of(&invoice_id)
                        .iter()
                        .map(|a| a.decided_on)
                        .max()
                })
                .ok_or_else(|| ExplainError::NoDay {
                    invoice_id: invoice_id.clone(),
                })?;
            let customer = book
                .invoice(&invoice_id)
                .map(|i| i.customer_id.to_string())
                .unwrap_or_default();
            Explained {
                resolved: resolved(via),
                what_if,
                message_id: None,
                message: None,
                action_ids: Vec::new(),
                explanations: vec![one(&customer, &invoice_id, day)?],
            }
        }
        Target::Action(r) => Explained {
            resolved: resolved("action id"),
            what_if,
            message_id: None,
            message: None,
            action_ids: vec![r.action_id.to_string()],
            explanations: vec![one(
                &r.customer_id,
                &r.invoice_id,
                date.unwrap_or(r.decided_on),
            )?],
        },
        Target::Message {
            message_id,
            stored,
            actions,
        } => {
            let mut explanations = Vec::with_capacity(actions.len());
            for r in &actions {
                explanations.push(one(
                    &r.customer_id,
                    &r.invoice_id,
                    date.unwrap_or(r.decided_on),
                )?);
            }
            Explained {
                resolved: resolved("message id"),
                what_if,
                message_id: Some(message_id),
                message: stored.map(|m| *m),
                action_ids: actions.iter().map(|a| a.action_id.to_string()).collect(),
                explanations,
            }
        }
    })
}

fn percent(risk: Option<f64>) -> String {
    risk.map_or_else(|| "missing".to_string(), |x| format!("{:.1}%", x * 100.0))
}

/// `explain` for people: a rendering of [`Explained`], nothing more.
pub fn render(e: &Explained) -> String {
    let mut out = String::new();
    if let Some(file) = &e.what_if {
        let _ = writeln!(
            out,
            "WHAT-IF: every day below is replayed with the policy given ({file}), not with the \
             bundle revision its actions recorded; the recorded decision is shown beside it.\n"
        );
    }
    match e.resolved.kind {
        "action id" => {
            if let (Some(id), Some(x)) = (e.action_ids.first(), e.explanations.first()) {
                out.push_str(&action_head(id, x));
                let _ = writeln!(out, "\nIts invoice on {}:", x.day);
                out.push_str(&render_one(x));
            }
        }
        "message id" => {
            let id = e.message_id.as_deref().unwrap_or_default();
            match &e.message {
                Some(m) => {
                    let _ = writeln!(
                        out,
                        "Message {id}: {} `{}` to customer {}, planned {}, {}{}; it carried {} action(s)",
                        m.channel,
                        m.template,
                        m.customer_id,
                        m.planned_on,
                        m.status.as_str(),
                        m.sent_on.map(|d| format!(" on {d}")).unwrap_or_default(),
                        e.action_ids.len()
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "Message {id} (not recorded as a message; named by {} action(s))",
                        e.action_ids.len()
                    );
                }
            }
            for (id, x) in e.action_ids.iter().zip(&e.explanations) {
                let _ = writeln!(
                    out,
                    "\n=== action {id} (invoice {}), on {}",
                    x.invoice.invoice_id, x.day
                );
                out.push_str(&action_head(id, x));
                out.push('\n');
                out.push_str(&render_one(x));
            }
        }
        via => {
            for x in &e.explanations {
                if via == "invoice number" {
                    let _ = writeln!(
                        out,
                        "`{}` is the number of invoice {}",
                        e.resolved.input, x.invoice.invoice_id
                    );
                }
                out.push_str(&render_one(x));
            }
        }
    }
    out
}

/// What an action is and why it was recorded, in two lines.
fn action_head(id: &str, x: &Explanation) -> String {
    let mut out = String::new();
    let Some(a) = x
        .recorded_actions
        .iter()
        .find(|a| a.record.action_id == *id)
    else {
        let _ = writeln!(out, "Action {id} of invoice {}", x.invoice.invoice_id);
        return out;
    };
    let r = &a.record;
    let _ = writeln!(
        out,
        "Action {id} of invoice {}: `{}`, recorded on {}, {}",
        r.invoice_id,
        r.label,
        r.decided_on,
        r.status.as_str()
    );
    let _ = writeln!(
        out,
        "  why: step {} of the `{}` ladder (rule {}), {} {}, risk {} (scorer {} v{}), policy {} \
         rev {}, bundle {}, git {}",
        policy_lang::labels::offset_text(r.step_offset),
        r.segment,
        r.rule,
        target_word(&r.label),
        r.target,
        percent(r.risk),
        r.scorer,
        r.scorer_version,
        r.policy_name,
        short(&r.policy_revision),
        r.bundle_revision.as_deref().map_or("(not recorded)", short),
        r.git_revision.as_deref().unwrap_or("(not recorded)"),
    );
    match x.recorded_step(id).map(|s| s.matched) {
        Some(Match::Recorded) => {
            let _ = writeln!(
                out,
                "  {}",
                if x.policy.basis == Basis::WhatIf {
                    "the policy given takes this step that day too"
                } else {
                    "replayed under the revision it records, that day decides this step again"
                }
            );
        }
        Some(Match::RecordedNotReplayed) => {
            let _ = writeln!(
                out,
                "  {}",
                if x.policy.basis == Basis::WhatIf {
                    "the policy given would NOT take this step that day"
                } else {
                    "the replay does not take this step again: the book has changed since \
                     (see the decision below)"
                }
            );
        }
        _ => {}
    }
    out
}

fn target_word(label: &str) -> &'static str {
    if label.starts_with("call ") {
        "queue"
    } else {
        "template"
    }
}

/// One invoice on one day.
fn render_one(x: &Explanation) -> String {
    let mut out = String::new();
    let inv = &x.invoice;
    let _ = writeln!(
        out,
        "Invoice {} (number {}, customer {})",
        inv.invoice_id, inv.number, inv.customer_id
    );
    let _ = writeln!(
        out,
        "Balance on {}: {} {} of {} {}{}",
        x.day,
        inv.balance,
        inv.currency,
        inv.amount,
        inv.currency,
        if inv.open {
            ""
        } else {
            " (not open: nothing to do)"
        }
    );
    let _ = writeln!(
        out,
        "Risk: {} (scorer: {})",
        percent(x.risk.value),
        x.risk.described
    );
    if !x.risk.factors.is_empty() {
        let _ = writeln!(
            out,
            "  top risk factors: {}",
            x.risk
                .factors
                .iter()
                .map(|f| format!("{} ({:+.3})", f.name, f.contribution))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let p = &x.policy;
    let bundle = p.bundle_revision.as_deref().map_or("(none)", short);
    match p.basis {
        Basis::Recorded => {
            let _ = writeln!(
                out,
                "Replayed under bundle revision {bundle}, as recorded (kept at {})",
                p.source
            );
        }
        Basis::WhatIf => {
            let recorded: Vec<&str> = p
                .recorded_bundle_revisions
                .iter()
                .map(|r| short(r))
                .collect();
            let _ = writeln!(
                out,
                "WHAT-IF: replayed with {} (bundle revision {bundle}); the actions recorded that \
                 day name {}",
                p.source,
                if recorded.is_empty() {
                    "no bundle revision".to_string()
                } else {
                    format!("bundle revision {}", recorded.join(", "))
                }
            );
        }
    }
    out.push_str(&x.trace.render_checks());
    let _ = writeln!(
        out,
        "\nDecision on {} (the day replayed on the state before its actions{}):",
        x.day,
        if p.basis == Basis::WhatIf {
            ", with the policy given"
        } else {
            ""
        }
    );
    if let Some(seg) = &x.decision.segment {
        let _ = writeln!(out, "  segment {seg}");
    }
    for s in &x.decision.steps {
        out.push_str(&render_step(s, p.basis));
    }
    for r in &x.decision.reasons {
        let _ = writeln!(out, "  no action: {r}");
    }
    let _ = writeln!(out, "\nRecorded actions for this invoice (by date):");
    if x.recorded_actions.is_empty() {
        let _ = writeln!(out, "  none yet");
    }
    for a in &x.recorded_actions {
        let r = &a.record;
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
        render_trail(&mut out, &a.trail);
    }
    out
}

fn render_step(s: &DecidedStep, basis: Basis) -> String {
    let what_if = basis == Basis::WhatIf;
    let mut out = String::new();
    let why = format!(
        "step {} (rule {}), {} {}, segment {}, risk {}",
        s.step,
        s.rule,
        target_word(&s.label),
        s.template,
        s.segment,
        percent(s.risk)
    );
    let status = |st: Option<collect_engine::domain::ActionStatus>| {
        st.map_or("-", collect_engine::domain::ActionStatus::as_str)
    };
    let head = match s.matched {
        Match::Recorded => format!(
            "recorded that day: {} `{}` {}: {why}; {} takes it too ({})",
            s.action_id,
            s.label,
            status(s.recorded_status),
            if what_if {
                "the policy given"
            } else {
                "the replay"
            },
            status(s.replayed_status)
        ),
        Match::RecordedNotReplayed => format!(
            "recorded that day: {} `{}` {}: {why}; {} does NOT take it",
            s.action_id,
            s.label,
            status(s.recorded_status),
            if what_if {
                "the policy given"
            } else {
                "the replay"
            }
        ),
        Match::Changed => format!(
            "recorded earlier, changed that day: {} `{}` {}: {why}",
            s.action_id,
            s.label,
            status(s.recorded_status)
        ),
        Match::ReplayedNotRecorded => format!(
            "{}: {} `{}` {}: {why}; the ledger holds no such action that day{}",
            if what_if {
                "the policy given would take"
            } else {
                "the replay takes"
            },
            s.action_id,
            s.label,
            status(s.replayed_status),
            s.replayed_note
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        ),
    };
    let _ = writeln!(out, "  {head}");
    render_trail(&mut out, &s.trail);
    out
}

fn render_trail(out: &mut String, trail: &[LogEntry]) {
    for e in trail {
        let _ = writeln!(
            out,
            "      {} {}{}{} [risk {}]",
            e.day,
            e.status,
            e.note
                .as_deref()
                .map(|n| format!(": {}", note_after_status(&e.status, n)))
                .unwrap_or_default(),
            e.by.as_deref()
                .map(|b| format!(" (by {b})"))
                .unwrap_or_default(),
            percent(e.risk)
        );
    }
}
