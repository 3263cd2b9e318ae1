//! The demo's days: the policy runs every day of the period as `collect
//! run` would, each invoice, payment and event stored on its own day
//! before that day's sweep; the demo's collections team makes the calls;
//! [`Tally`] counts what each run did.

use super::customers::Customers;
use super::generate::{self, Generated};
use crate::runtime::Runtime;
use chrono::NaiveDate;
use collect_delivery::delivery::{RunError, RunReport};
use collect_engine::domain::{ActionStatus, Channel};
use collect_engine::sweep::DO_NOT_CONTACT_HOLD;
use collect_sqlite::store::{SqliteStore, Store, StoreError};
use std::collections::{BTreeMap, BTreeSet};

/// A simulated day that could not be stored or swept.
#[derive(Debug, thiserror::Error)]
pub enum SimulationError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Run(#[from] RunError),
}

/// What one simulated run did, day by day.
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub messages: usize,
    pub messages_by_channel: BTreeMap<String, usize>,
    pub call_tasks: usize,
    pub failed: usize,
    /// Action → the reason a guardrail first held it back.
    pub deferred: BTreeMap<String, String>,
    /// Hold → the invoices it stopped at least once.
    pub held: BTreeMap<String, BTreeSet<String>>,
    pub promises: usize,
    pub paid_sooner: usize,
}

impl Tally {
    pub(super) fn record(&mut self, report: &RunReport) {
        self.messages += report.sent.len();
        for m in &report.sent {
            *self
                .messages_by_channel
                .entry(m.channel.to_string())
                .or_default() += 1;
        }
        self.failed += report.failed.len();
        for r in &report.plan.records {
            match r.status {
                ActionStatus::Planned if r.channel == Channel::Call => self.call_tasks += 1,
                ActionStatus::Deferred => {
                    let reason = r
                        .note
                        .as_deref()
                        .unwrap_or("deferred")
                        .trim_start_matches("deferred: ")
                        .trim_end_matches("; retried on the next sweep")
                        .to_string();
                    self.deferred
                        .entry(r.action_id.to_string())
                        .or_insert(reason);
                }
                _ => {}
            }
        }
        for h in &report.plan.held {
            // A do-not-contact customer's invoice is held by the sweep's own
            // guarantee and, usually, by the policy's hold for the same
            // thing: counted once, under the policy's name when it has one.
            let by_policy = h.holds.iter().any(|n| n != DO_NOT_CONTACT_HOLD);
            for name in h
                .holds
                .iter()
                .filter(|n| !(by_policy && *n == DO_NOT_CONTACT_HOLD))
            {
                self.held
                    .entry(name.clone())
                    .or_default()
                    .insert(h.invoice_id.clone());
            }
        }
    }
}

/// Runs the policy every day of the demo period on `store`, storing each
/// invoice, payment and event on its own day before that day's sweep.
pub(super) fn simulate(
    book: &Generated,
    store: &mut SqliteStore,
    rt: &Runtime<'_>,
    bar: Option<&indicatif::ProgressBar>,
) -> Result<Tally, SimulationError> {
    store.upsert_customers(&book.customers)?;
    store.upsert_invoices(&book.history_invoices)?;
    store.upsert_payments(&book.history_payments)?;
    let mut issued: BTreeMap<NaiveDate, Vec<collect_engine::domain::Invoice>> = BTreeMap::new();
    for p in &book.plans {
        issued
            .entry(p.invoice.issue_date)
            .or_default()
            .push(p.invoice.clone());
    }
    let mut customers = Customers::new(book);
    let mut tally = Tally::default();
    let end = generate::run_end();
    for day in generate::quarter_start()
        .iter_days()
        .take_while(|d| *d <= end)
    {
        if let Some(invoices) = issued.get(&day) {
            store.upsert_invoices(invoices)?;
        }
        let payments = customers.payments(day);
        if !payments.is_empty() {
            store.upsert_payments(&payments)?;
        }
        if let Some(events) = customers.events.remove(&day) {
            store.insert_events(&events)?;
        }
        let report = rt.run_day(store, day, false)?;
        tally.record(&report);
        make_calls(store, &report, day)?;
        customers.answer(&report, day, &mut tally);
        if let Some(b) = bar {
            b.inc(1);
        }
    }
    Ok(tally)
}

/// Who works the call tasks in the demo, as recorded in the audit trail.
const CALLER: &str = "demo collections team";

/// The demo's collections team makes every call the day its task is
/// created and marks it done, as `collect tasks done` would.
fn make_calls(
    store: &mut SqliteStore,
    report: &RunReport,
    day: NaiveDate,
) -> Result<(), StoreError> {
    for r in &report.plan.records {
        if r.channel != Channel::Call || r.status != ActionStatus::Planned {
            continue;
        }
        let Some(mut task) = store.action(&r.action_id)? else {
            continue;
        };
        if task.status != ActionStatus::Planned {
            continue;
        }
        task.status = ActionStatus::Sent;
        task.sent_on = Some(day);
        task.decided_by = Some(CALLER.to_string());
        task.decided_at = Some(day);
        task.note = Some(format!(
            "done by {CALLER} on {day} (simulated by `collect demo`)"
        ));
        store.transition(&task, &[ActionStatus::Planned], day, Some(CALLER))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use collect_engine::sweep::Held;

    fn held(invoice: &str, holds: &[&str]) -> Held {
        Held {
            invoice_id: invoice.to_string(),
            customer_id: "C1".to_string(),
            holds: holds.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_do_not_contact_invoice_is_counted_once_under_the_policys_hold() {
        let mut report = RunReport::default();
        report.plan.held = vec![
            held("I1", &["do_not_contact", DO_NOT_CONTACT_HOLD]),
            held("I2", &["dispute", "do_not_contact", DO_NOT_CONTACT_HOLD]),
            // A policy without a hold of its own for it: the sweep's name.
            held("I3", &[DO_NOT_CONTACT_HOLD]),
        ];
        let mut tally = Tally::default();
        tally.record(&report);
        let counts: Vec<(&str, usize)> = tally
            .held
            .iter()
            .map(|(k, v)| (k.as_str(), v.len()))
            .collect();
        assert_eq!(
            counts,
            [
                ("dispute", 1),
                (DO_NOT_CONTACT_HOLD, 1),
                ("do_not_contact", 2)
            ]
        );
    }
}
