//! The recorded state as it was before a day's actions, from each action's
//! audit trail: what `explain` replays a day on (so a step recorded that
//! day is found due again, and matched with its record, never "no step due
//! today") and what `collect diff` starts both policies from (so neither
//! finds the period's steps already taken).
//!
//! An action whose trail starts on or after the day did not exist before
//! it; one that changed since goes back to its last status before the day,
//! with what that status cannot have had (a later send, message or
//! person's decision) left out. Days are the grain: everything logged on
//! the day itself counts as "that day's", the sweep's records and a
//! person's work alike.

use super::LogEntry;
use chrono::NaiveDate;
use collect_engine::book::Book;
use collect_engine::domain::{ActionRecord, ActionStatus};
use std::collections::HashMap;

/// `record` as it stood at the end of the day before `day`, given its
/// audit trail (oldest first); `None` when it did not exist yet. A record
/// whose trail is empty (an earlier release kept none) is taken as it is
/// when it was decided before `day`.
pub fn as_before(
    record: &ActionRecord,
    trail: &[LogEntry],
    day: NaiveDate,
) -> Option<ActionRecord> {
    if trail.is_empty() {
        return (record.decided_on < day).then(|| record.clone());
    }
    let last = trail.iter().rev().find(|e| e.day < day)?;
    if trail.iter().all(|e| e.day < day) {
        return Some(record.clone());
    }
    let mut r = record.clone();
    if let Some(status) = ActionStatus::parse(&last.status) {
        r.status = status;
    }
    r.note = last.note.clone();
    r.risk = last.risk;
    if r.decided_on >= day {
        r.decided_on = last.day;
    }
    if r.sent_on.is_some_and(|d| d >= day) {
        r.sent_on = None;
    }
    if r.decided_at.is_some_and(|d| d >= day) {
        r.decided_at = None;
        r.decided_by = None;
    }
    let carried = matches!(
        r.status,
        ActionStatus::Planned | ActionStatus::Sending | ActionStatus::Sent | ActionStatus::Failed
    );
    if !carried {
        r.message_id = None;
    }
    Some(r)
}

/// `book` with its actions as they were before `day` ([`as_before`]);
/// `trails` by action id (a missing one counts as empty). The customers,
/// invoices, payments and events are kept whole: what the sweep reads of
/// them is already bounded by the day it is given.
pub fn book_before(book: &Book, trails: &HashMap<String, Vec<LogEntry>>, day: NaiveDate) -> Book {
    let actions: Vec<ActionRecord> = book
        .actions
        .values()
        .flatten()
        .filter_map(|a| {
            let trail = trails
                .get(a.action_id.as_str())
                .map_or(&[][..], Vec::as_slice);
            as_before(a, trail, day)
        })
        .collect();
    Book::new(
        book.customers.values().cloned().collect(),
        book.invoices.clone(),
        book.payments.values().flatten().cloned().collect(),
        book.events
            .values()
            .flatten()
            .chain(&book.mail_events)
            .cloned()
            .collect(),
        actions,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use collect_engine::domain::{ActionId, Channel};

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn record(decided: &str, status: ActionStatus) -> ActionRecord {
        ActionRecord {
            action_id: ActionId::new("act-1"),
            invoice_id: "I1".into(),
            customer_id: "C1".into(),
            decided_on: d(decided),
            scheduled_for: d(decided),
            status,
            channel: Channel::Letter,
            label: "letter legal-notice".to_string(),
            target: "legal-notice".to_string(),
            step_offset: 30,
            requires_approval: true,
            policy_name: "p".to_string(),
            policy_revision: "r".to_string(),
            git_revision: None,
            bundle_revision: None,
            rule: "p.policy:1".to_string(),
            segment: "standard".to_string(),
            experiment: None,
            arm: None,
            risk: None,
            scorer: "s".to_string(),
            scorer_version: "1".to_string(),
            note: None,
            message_id: Some("msg-1".into()),
            decided_by: Some("ann".to_string()),
            decided_at: Some(d("2027-04-14")),
            sent_on: Some(d("2027-04-15")),
        }
    }

    fn entry(day: &str, status: &str) -> LogEntry {
        LogEntry {
            action_id: ActionId::new("act-1"),
            seq: 0,
            day: d(day),
            status: status.to_string(),
            note: None,
            by: None,
            risk: None,
        }
    }

    #[test]
    fn a_letter_is_rewound_through_its_approval_and_sending() {
        let r = record("2027-04-12", ActionStatus::Sent);
        let trail = [
            entry("2027-04-12", "awaiting_approval"),
            entry("2027-04-14", "approved"),
            entry("2027-04-15", "sending"),
            entry("2027-04-15", "sent"),
        ];
        // Before the day it was decided: not there.
        assert_eq!(as_before(&r, &trail, d("2027-04-12")), None);
        // Before the approval: awaiting it, nothing decided by a person.
        let waiting = as_before(&r, &trail, d("2027-04-14")).unwrap();
        assert_eq!(waiting.status, ActionStatus::AwaitingApproval);
        assert_eq!(
            (waiting.decided_by, waiting.sent_on, waiting.message_id),
            (None, None, None)
        );
        // Before the day it was sent: approved, not sent.
        let approved = as_before(&r, &trail, d("2027-04-15")).unwrap();
        assert_eq!(approved.status, ActionStatus::Approved);
        assert_eq!(approved.decided_by.as_deref(), Some("ann"));
        assert_eq!(approved.sent_on, None);
        // After: as recorded.
        assert_eq!(as_before(&r, &trail, d("2027-04-16")), Some(r.clone()));
    }
}
