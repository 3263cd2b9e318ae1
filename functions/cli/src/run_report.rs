//! The text report of one day's sweep, as `collect run` prints it: what
//! was sent (or would be, in a dry run), the tasks and letters awaiting a
//! person, what was deferred, skipped or held and why, what a crash left
//! and how it was finished, and one line of totals.

use crate::home::Home;
use chrono::NaiveDate;
use collect_delivery::delivery::RunReport;
use collect_engine::domain::{ActionStatus, Channel};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The report of `report`, the sweep of `date` in `home`.
pub fn describe_run(report: &RunReport, date: NaiveDate, home: &Home) -> String {
    let plan = &report.plan;
    let mut out = String::new();
    let verb = if report.dry_run { "would send" } else { "sent" };
    let _ = writeln!(
        out,
        "Sweep of {date}{}: {} open invoice(s)",
        if report.dry_run {
            " (dry run: nothing recorded or sent)"
        } else {
            ""
        },
        plan.open_invoices
    );
    if report.dry_run {
        for m in &plan.messages {
            let _ = writeln!(
                out,
                "  {verb} {} `{}` to customer {} for {}",
                m.channel,
                m.template,
                m.customer_id,
                m.invoice_ids.join(", ")
            );
        }
    } else {
        for m in &report.sent {
            let _ = writeln!(
                out,
                "  {verb} {} `{}` to {} ({}) for {}",
                m.channel,
                m.template,
                m.customer_id,
                m.to,
                m.invoices.join(", ")
            );
        }
    }
    for r in &plan.records {
        match r.status {
            ActionStatus::AwaitingApproval => {
                let _ = writeln!(
                    out,
                    "  awaiting approval: {} for {} ({})",
                    r.label, r.invoice_id, r.action_id
                );
            }
            ActionStatus::Planned if r.channel == Channel::Call => {
                let _ = writeln!(
                    out,
                    "  call task: {} for {} ({})",
                    r.label, r.invoice_id, r.action_id
                );
            }
            ActionStatus::Deferred | ActionStatus::Skipped => {
                // The note already says "deferred: …" or "skipped: …".
                let _ = writeln!(
                    out,
                    "  {} for {}: {}",
                    r.label,
                    r.invoice_id,
                    r.note.as_deref().unwrap_or(r.status.as_str())
                );
            }
            _ => {}
        }
    }
    if !plan.records_complete() {
        let _ = writeln!(
            out,
            "  {} action(s) recorded: too many to list one by one here; \
             `collect tasks` lists the call tasks and the letters awaiting approval, \
             `collect audit` every action",
            plan.record_count()
        );
    }
    let mut held: BTreeMap<String, usize> = BTreeMap::new();
    for h in &plan.held {
        *held.entry(h.holds.join(" + ")).or_default() += 1;
    }
    for (why, n) in &held {
        let _ = writeln!(out, "  held: {n} invoice(s) by {why}");
    }
    if !plan.stopped.is_empty() {
        let shown: Vec<&str> = plan
            .stopped
            .iter()
            .take(5)
            .map(|(id, _)| id.as_str())
            .collect();
        let more = plan.stopped.len() - shown.len();
        let _ = writeln!(
            out,
            "  dunning stopped (written off or placed with an agency): {} invoice(s): {}{}; \
             `collect explain INVOICE` says who decided and why",
            plan.stopped.len(),
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
    }
    for (id, reason) in &plan.approved_waiting {
        let _ = writeln!(out, "  approved, waiting: {id}: {reason}");
    }
    for id in &report.reconciled {
        let _ = writeln!(
            out,
            "  already sent before an interrupted run: {id} (recorded as sent, not sent again)"
        );
    }
    for d in &report.dropped {
        let _ = writeln!(
            out,
            "  checked before sending: {} for {} taken out of message {}: {}",
            d.action_id, d.invoice_id, d.message_id, d.reason
        );
    }
    for (id, reason) in &report.cancelled {
        let _ = writeln!(out, "  not sent: message {id}: {reason}");
    }
    for (id, reason) in &report.retry_later {
        let _ = writeln!(
            out,
            "  not sent yet: message {id}: {reason}; the next run sends it"
        );
    }
    for id in &report.in_doubt {
        let _ = writeln!(
            out,
            "  in doubt: message {id} was being sent when a run stopped; checked again on the next run"
        );
    }
    for (id, reason) in &report.failed {
        let _ = writeln!(out, "  FAILED: message {id}: {reason}");
    }
    for h in &report.contact_holds {
        let _ = writeln!(
            out,
            "  address held: customer {}: {}; a task to fix it: `collect tasks` ({})",
            h.customer_id,
            h.describe(),
            collect_engine::contact::hold_task_id(&h.customer_id)
        );
    }
    for (customer, reason) in &plan.unprocessable {
        let _ = writeln!(
            out,
            "  SET ASIDE: customer {customer}: {reason}; everyone else was swept"
        );
    }
    if !plan.not_covered.is_empty() {
        let _ = writeln!(
            out,
            "  not covered by the policy: {} invoice(s)",
            plan.not_covered.len()
        );
        // By reason, so each currency the policy does not cover is named
        // with its count and the first invoices (`collect check --book`
        // lists them before a run).
        let mut by_reason: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for (invoice, reason) in &plan.not_covered {
            by_reason.entry(reason).or_default().push(invoice);
        }
        for (reason, invoices) in by_reason {
            let shown: Vec<&str> = invoices.iter().take(5).copied().collect();
            let more = invoices.len() - shown.len();
            let _ = writeln!(
                out,
                "    {} {reason}: {}{}",
                invoices.len(),
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            );
        }
    }
    let _ = writeln!(
        out,
        "{} message(s) {verb}, {} task(s), {} awaiting approval, {} deferred, {} skipped, {} held",
        if report.dry_run {
            plan.messages.len()
        } else {
            report.sent.len()
        },
        plan.tally.call_tasks,
        plan.count(ActionStatus::AwaitingApproval),
        plan.count(ActionStatus::Deferred),
        plan.count(ActionStatus::Skipped),
        plan.held.len()
    );
    if !report.dry_run && !report.sent.is_empty() {
        let _ = writeln!(out, "messages are in {}", home.outbox_dir().display());
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use collect_engine::domain::ActionRecord;

    fn record(status: ActionStatus, n: usize) -> ActionRecord {
        let mut r: ActionRecord = serde_json::from_value(serde_json::json!({
            "action_id": format!("act-{n}"), "invoice_id": format!("INV-{n}"),
            "customer_id": "C1", "decided_on": "2027-03-10", "scheduled_for": "2027-03-10",
            "status": "planned", "channel": "letter", "label": "letter legal-notice",
            "target": "legal-notice", "step_offset": 30, "requires_approval": true,
            "policy_name": "p", "policy_revision": "r", "git_revision": null, "rule": "p:1",
            "segment": "s", "experiment": null, "arm": null, "risk": null, "scorer": "s",
            "scorer_version": "1", "note": null, "message_id": null, "decided_by": null,
            "decided_at": null, "sent_on": null
        }))
        .unwrap();
        r.status = status;
        r
    }

    #[test]
    fn a_run_too_large_to_list_reports_counts_and_where_to_look() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::open(dir.path()).unwrap();
        let date: NaiveDate = "2027-03-10".parse().unwrap();
        // A plan absorbed part by part, as a run builds it: the tally is kept
        // whether the records are or not.
        let planner_day = |records: Vec<ActionRecord>, keep: usize| {
            let mut whole = collect_engine::sweep::SweepPlan::default();
            for r in records {
                let mut one = collect_engine::sweep::SweepPlan::default();
                one.tally.by_status.insert(r.status, 1);
                one.records.push(r);
                whole.absorb(one, keep);
            }
            whole
        };
        let records: Vec<ActionRecord> = (0..3)
            .map(|n| record(ActionStatus::AwaitingApproval, n))
            .collect();
        let listed = RunReport {
            plan: planner_day(records.clone(), usize::MAX),
            ..RunReport::default()
        };
        let text = describe_run(&listed, date, &home);
        assert!(
            text.contains("awaiting approval: letter legal-notice for INV-2"),
            "{text}"
        );
        assert!(!text.contains("too many"), "{text}");
        assert!(text.contains("3 awaiting approval"), "{text}");

        let counted = RunReport {
            plan: planner_day(records, 2),
            ..RunReport::default()
        };
        let text = describe_run(&counted, date, &home);
        assert!(!text.contains("awaiting approval: "), "{text}");
        assert!(
            text.contains("3 action(s) recorded: too many to list"),
            "{text}"
        );
        assert!(text.contains("`collect tasks`"), "{text}");
        assert!(text.contains("3 awaiting approval"), "{text}");
    }
}
