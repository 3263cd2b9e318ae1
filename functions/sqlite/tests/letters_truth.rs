#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! What a letter says is true of every invoice it lists, on a book of the
//! test kit's generator: the standard policy and templates run every day
//! of a quarter and more on SQLite, each invoice, payment and event stored
//! on its own day, and every message the mail service accepted (English and
//! German; subject, text and HTML) is read back by
//! `collect_testkit::letters`: no invoice is called past due unless it is
//! past due on the day the message went out (due today is not). The demo's
//! outbox gets the same reading in `collect-cli`'s `tests/letters_truth.rs`.

use chrono::{Days, NaiveDate};
use collect_delivery::delivery::RunRequest;
use collect_delivery::ledger::{LeaseHolder, Scope};
use collect_generator::{Spec, generate};
use collect_sqlite::store::{SqliteStore, Store};
use collect_testkit::book::{Env, policy_dir};
use collect_testkit::letters::{Listed, Sent, Tally};
use collect_testkit::mailer::RecordingMailer;
use std::collections::{HashMap, HashSet};

#[test]
fn no_letter_of_a_generated_book_calls_an_invoice_past_due_that_is_not() {
    let start = NaiveDate::from_ymd_opt(2027, 1, 4).unwrap();
    let book = generate(&Spec::quarter(7, 160, start, 60));
    let source = std::fs::read_to_string(policy_dir().join("standard-net30.policy")).unwrap();
    let env = Env::with_policy_file(&source, "standard-net30.policy");
    let sweeper = env.sweeper();
    let mailer = RecordingMailer::default();
    let mut store = SqliteStore::in_memory().unwrap();
    store.upsert_customers(&book.customers).unwrap();

    let (mut invoices, mut payments, mut events) = (HashSet::new(), HashSet::new(), HashSet::new());
    let end = start.checked_add_days(Days::new(110)).unwrap();
    for day in start.iter_days().take_while(|d| *d <= end) {
        // What the ERP knows by the end of the day, stored before its sweep.
        let known = book.as_of(day);
        let new_invoices: Vec<_> = known
            .invoices
            .into_iter()
            .filter(|i| invoices.insert(i.invoice_id.clone()))
            .collect();
        store.upsert_invoices(&new_invoices).unwrap();
        let new_payments: Vec<_> = known
            .payments
            .into_iter()
            .filter(|p| payments.insert(format!("{p:?}")))
            .collect();
        store.upsert_payments(&new_payments).unwrap();
        let new_events: Vec<_> = known
            .events
            .into_iter()
            .filter(|e| events.insert(format!("{e:?}")))
            .collect();
        store.insert_events(&new_events).unwrap();
        let sent_at = day.and_hms_opt(14, 0, 0).unwrap().and_utc();
        let now = move || sent_at;
        let req = RunRequest {
            scope: Scope::All,
            day,
            dry_run: false,
            holder: LeaseHolder::this_process(sent_at),
            now: &now,
            faults: None,
            keep_records: 0,
        };
        sweeper.run_blocking(&store, &mailer, &req).unwrap();
    }

    let ledger = store.load_book().unwrap();
    let by_id: HashMap<&str, Listed> = ledger
        .invoices
        .iter()
        .map(|i| {
            let listed = Listed {
                number: i.number.clone(),
                due: i.due_date,
            };
            (i.invoice_id.as_str(), listed)
        })
        .collect();
    let language: HashMap<&str, &str> = ledger
        .customers
        .values()
        .map(|c| (c.email.as_str(), c.language.as_str()))
        .collect();
    let mut tally = Tally::default();
    for m in mailer.accepted_messages() {
        let mut listed: Vec<Listed> = Vec::new();
        for action in &m.action_ids {
            let a = store.action(action).unwrap().unwrap();
            let l = by_id[a.invoice_id.as_str()].clone();
            if !listed.contains(&l) {
                listed.push(l);
            }
        }
        let sent = Sent {
            name: m.message_id.clone(),
            day: m.date,
            subject: m.subject.clone(),
            text: m.text.clone(),
            html: m.html.clone(),
            invoices: listed,
        };
        tally.add(
            &sent,
            language.get(m.to.email.as_str()).copied().unwrap_or("?"),
        );
    }
    tally.assert_all_true("the generated book");
}
