//! The audit export behind `collect audit`, of the home or (through the
//! `Ledger` port) of a deployed stack's table:
//! every recorded action with its whole audit trail, who approved it, the
//! revisions it was decided under (policy, bundle, Git), and the risk model
//! and score behind it — for an auditor's spreadsheet or script.
//!
//! An action is in the period when it was decided in it or any line of
//! its trail falls in it. JSON gives one object per action with its
//! `history`; CSV gives one row per line of the trail (the action's columns
//! repeated), one row with empty trail columns for an action without one.

use crate::home::{Home, HomeError};
use chrono::NaiveDate;
use collect_delivery::ledger::{Ledger, LedgerError, LogEntry, Scope};
use collect_engine::book::Book;
use collect_engine::domain::{
    ActionId, ActionRecord, Arm, Channel, CustomerId, Experiment, InvoiceId, MessageId,
};
use collect_sqlite::store::{Store, StoreError};
use serde::Serialize;

/// An export that cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("--to {to} is before --from {from}")]
    Backwards { from: NaiveDate, to: NaiveDate },
    #[error(transparent)]
    Home(#[from] HomeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{}", crate::task_view::chain(.0))]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Csv(#[from] csv::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// One action as exported.
#[derive(Debug, Serialize)]
pub struct AuditedAction {
    pub action_id: ActionId,
    pub invoice_id: InvoiceId,
    pub invoice_number: Option<String>,
    pub customer_id: CustomerId,
    pub decided_on: NaiveDate,
    pub scheduled_for: NaiveDate,
    pub status: String,
    pub channel: Channel,
    pub label: String,
    /// The template (or the call queue).
    pub template: String,
    pub step_offset: i64,
    pub segment: String,
    pub rule: String,
    pub experiment: Option<Experiment>,
    pub arm: Option<Arm>,
    pub policy_name: String,
    pub policy_revision: String,
    pub bundle_revision: Option<String>,
    pub git_revision: Option<String>,
    pub scorer: String,
    pub scorer_version: String,
    pub risk: Option<f64>,
    pub message_id: Option<MessageId>,
    pub requires_approval: bool,
    pub approved_by: Option<String>,
    pub approved_on: Option<NaiveDate>,
    pub sent_on: Option<NaiveDate>,
    pub note: Option<String>,
    pub history: Vec<LogEntry>,
}

/// Who approved (or rejected) it and when: the trail's line, else the
/// record's decision.
fn approval(r: &ActionRecord, history: &[LogEntry]) -> (Option<String>, Option<NaiveDate>) {
    if let Some(e) = history
        .iter()
        .find(|e| e.status == "approved" || e.status == "rejected")
    {
        return (e.by.clone().or_else(|| r.decided_by.clone()), Some(e.day));
    }
    if r.requires_approval && r.decided_by.is_some() {
        return (r.decided_by.clone(), r.decided_at);
    }
    (None, None)
}

/// The export of the home's actions.
pub fn audited(
    home: &Home,
    customer: Option<&str>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<Vec<AuditedAction>, AuditError> {
    check_period(from, to)?;
    let store = home.store()?;
    let book = Store::load_book(&store)?;
    let mut out = Vec::new();
    for r in store.actions()? {
        if customer.is_some_and(|c| c != r.customer_id) {
            continue;
        }
        let history = store.action_log(&r.action_id)?;
        out.extend(exported(&book, r, history, from, to));
    }
    Ok(out)
}

/// The export of a ledger's actions through the port (a deployed stack's
/// DynamoDB table): every customer's book, or one customer's, and each
/// action's trail, by day of decision then id.
pub async fn audited_on<L: Ledger + ?Sized>(
    ledger: &L,
    customer: Option<&str>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    today: NaiveDate,
) -> Result<Vec<AuditedAction>, AuditError> {
    check_period(from, to)?;
    let book = match customer {
        Some(c) => ledger.customer_book(c).await?,
        None => ledger.load_book(&Scope::All, today, NaiveDate::MIN).await?,
    };
    let mut actions: Vec<ActionRecord> = book.actions.values().flatten().cloned().collect();
    actions.sort_by(|a, b| (a.decided_on, &a.action_id).cmp(&(b.decided_on, &b.action_id)));
    let mut out = Vec::new();
    for r in actions {
        let history = ledger.trail(&r).await?;
        out.extend(exported(&book, r, history, from, to));
    }
    Ok(out)
}

fn check_period(from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<(), AuditError> {
    match (from, to) {
        (Some(from), Some(to)) if to < from => Err(AuditError::Backwards { from, to }),
        _ => Ok(()),
    }
}

/// One action as exported, if it is in the period: decided in it, or a
/// line of its trail is.
fn exported(
    book: &Book,
    r: ActionRecord,
    history: Vec<LogEntry>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Option<AuditedAction> {
    let in_period = |d: NaiveDate| from.is_none_or(|f| d >= f) && to.is_none_or(|t| d <= t);
    if !(in_period(r.decided_on) || history.iter().any(|e| in_period(e.day))) {
        return None;
    }
    let (approved_by, approved_on) = approval(&r, &history);
    Some(AuditedAction {
        invoice_number: book.invoice(&r.invoice_id).map(|i| i.number.clone()),
        status: r.status.as_str().to_string(),
        approved_by,
        approved_on,
        history,
        action_id: r.action_id,
        invoice_id: r.invoice_id,
        customer_id: r.customer_id,
        decided_on: r.decided_on,
        scheduled_for: r.scheduled_for,
        channel: r.channel,
        label: r.label,
        template: r.target,
        step_offset: r.step_offset,
        segment: r.segment,
        rule: r.rule,
        experiment: r.experiment,
        arm: r.arm,
        policy_name: r.policy_name,
        policy_revision: r.policy_revision,
        bundle_revision: r.bundle_revision,
        git_revision: r.git_revision,
        scorer: r.scorer,
        scorer_version: r.scorer_version,
        risk: r.risk,
        message_id: r.message_id,
        requires_approval: r.requires_approval,
        sent_on: r.sent_on,
        note: r.note,
    })
}

const CSV_HEADER: [&str; 34] = [
    "action_id",
    "invoice_id",
    "invoice_number",
    "customer_id",
    "decided_on",
    "scheduled_for",
    "status",
    "channel",
    "label",
    "template",
    "step_offset",
    "segment",
    "rule",
    "experiment",
    "arm",
    "policy_name",
    "policy_revision",
    "bundle_revision",
    "git_revision",
    "scorer",
    "scorer_version",
    "risk",
    "message_id",
    "requires_approval",
    "approved_by",
    "approved_on",
    "sent_on",
    "note",
    "history_seq",
    "history_day",
    "history_status",
    "history_note",
    "history_by",
    "history_risk",
];

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// A risk as every other output shows it (`70.6%`, one decimal), empty when
/// none was recorded. The JSON export keeps the probability (`0.7058…`) for
/// scripts; the CSV is read by people in a spreadsheet.
fn risk_percent(risk: Option<f64>) -> String {
    risk.map(|r| format!("{:.1}%", r * 100.0))
        .unwrap_or_default()
}

pub fn write_csv<W: std::io::Write>(actions: &[AuditedAction], w: W) -> Result<(), AuditError> {
    let mut out = csv::Writer::from_writer(w);
    out.write_record(CSV_HEADER)?;
    for a in actions {
        let head = vec![
            a.action_id.to_string(),
            a.invoice_id.to_string(),
            opt(&a.invoice_number),
            a.customer_id.to_string(),
            a.decided_on.to_string(),
            a.scheduled_for.to_string(),
            a.status.clone(),
            a.channel.to_string(),
            a.label.clone(),
            a.template.clone(),
            a.step_offset.to_string(),
            a.segment.clone(),
            a.rule.clone(),
            opt(&a.experiment),
            opt(&a.arm),
            a.policy_name.clone(),
            a.policy_revision.clone(),
            opt(&a.bundle_revision),
            opt(&a.git_revision),
            a.scorer.clone(),
            a.scorer_version.clone(),
            risk_percent(a.risk),
            opt(&a.message_id),
            a.requires_approval.to_string(),
            opt(&a.approved_by),
            opt(&a.approved_on),
            opt(&a.sent_on),
            opt(&a.note),
        ];
        if a.history.is_empty() {
            let mut row = head.clone();
            row.extend(std::iter::repeat_n(String::new(), 6));
            out.write_record(&row)?;
        }
        for e in &a.history {
            let mut row = head.clone();
            row.extend([
                e.seq.to_string(),
                e.day.to_string(),
                e.status.clone(),
                opt(&e.note),
                opt(&e.by),
                risk_percent(e.risk),
            ]);
            out.write_record(&row)?;
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use collect_engine::domain::ActionStatus;

    #[test]
    fn the_csv_writes_risk_as_a_percentage() {
        let day = NaiveDate::from_ymd_opt(2027, 3, 8).unwrap();
        let action = AuditedAction {
            action_id: ActionId::from("act-1"),
            invoice_id: InvoiceId::from("I1"),
            invoice_number: Some("2027-00001".to_string()),
            customer_id: CustomerId::from("C1"),
            decided_on: day,
            scheduled_for: day,
            status: "sent".to_string(),
            channel: Channel::Email,
            label: "email firm-notice".to_string(),
            template: "firm-notice".to_string(),
            step_offset: 7,
            segment: "standard".to_string(),
            rule: "standard-net30.policy:40".to_string(),
            experiment: None,
            arm: None,
            policy_name: "standard".to_string(),
            policy_revision: "abc".to_string(),
            bundle_revision: None,
            git_revision: None,
            scorer: "prior".to_string(),
            scorer_version: "1".to_string(),
            risk: Some(12.0 / 17.0),
            message_id: None,
            requires_approval: false,
            approved_by: None,
            approved_on: None,
            sent_on: Some(day),
            note: None,
            history: vec![LogEntry {
                action_id: ActionId::from("act-1"),
                seq: 1,
                day,
                status: ActionStatus::Sent.as_str().to_string(),
                note: None,
                by: None,
                risk: Some(0.25),
            }],
        };
        let mut out = Vec::new();
        write_csv(&[action], &mut out).unwrap();
        let csv = String::from_utf8(out).unwrap();
        let row = csv.lines().nth(1).unwrap();
        assert!(row.contains(",70.6%,"), "{row}");
        assert!(row.ends_with(",25.0%"), "{row}");
        assert!(!csv.contains("0.70588"), "{csv}");
    }

    #[test]
    fn risk_is_written_as_a_percentage_with_one_decimal() {
        assert_eq!(risk_percent(Some(12.0 / 17.0)), "70.6%");
        assert_eq!(risk_percent(Some(0.0)), "0.0%");
        assert_eq!(risk_percent(Some(1.0)), "100.0%");
        assert_eq!(risk_percent(None), "");
    }
}
