//! Scenario tests: a calendar of invoices, payments and events in, the exact
//! actions out, day by day, through the real local runtime (SQLite store,
//! templates from `policy/templates`, a mailer that keeps what it sends).
//!
//! Each test gives its book with the test kit's builders
//! ([`collect_testkit::book`]: `customer_in`, `invoice`, `payment_of`,
//! `event`), runs days, and reads what each day did as `INVOICE action
//! status` lines: `on("2027-03-08", &["A email friendly-reminder sent"])`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use chrono::NaiveTime;
use collect_delivery::delivery::{RunRequest, Sweeper};
use collect_delivery::ledger::{LeaseHolder, Scope};
use collect_delivery::message::{OutgoingMessage, Templates};
use collect_engine::domain::{ActionStatus, Customer, EventKind, PlanTerms};
use collect_engine::sweep::SweepOptions;
use collect_sqlite::store::{SqliteStore, Store};
use collect_testkit::book::{
    Env, Record, customer_in, day, event, invoice, money, payment_of, policy_dir,
};
use collect_testkit::mailer::RecordingMailer;
use proptest::prelude::*;
use std::path::Path;

const POLICY: &str = r#"
policy "scenario" effective 2027-01-01 currency USD
limits
  at most 1 email per customer per 2d
  quiet hours 20:00 to 08:00 customer time
  business days only
segment standard otherwise
hold dispute when invoice.disputed
hold promise when invoice.promised_until >= today
hold plan when invoice.plan_current
ladder standard
  due - 3d   email "friendly-reminder"
  due        email "urgent-notice"
  due + 7d   email "firm-notice"
  due + 14d  offer plan 3 installments every 30d down 10%
  due + 21d  call "collections"
  due + 30d  letter "legal-notice" requires approval
"#;

/// Where the scenarios' customers are, unless a test says otherwise: the
/// sending time, 14:00 UTC, is 09:00 or 10:00 there.
const NEW_YORK: &str = "America/New_York";

/// One book in a private SQLite database, the kit's policy, templates and
/// pay links, and a mail service that keeps what it is handed.
struct Scenario {
    store: SqliteStore,
    env: Env,
    mailer: RecordingMailer,
    /// The sending time, in UTC (quiet hours are checked against it).
    send_time: NaiveTime,
}

impl Scenario {
    fn new() -> Scenario {
        Scenario::with_policy(POLICY)
    }

    fn with_policy(src: &str) -> Scenario {
        Scenario {
            store: SqliteStore::in_memory().unwrap(),
            env: Env::with_policy_file(src, "scenario.policy"),
            mailer: RecordingMailer::default(),
            send_time: NaiveTime::from_hms_opt(14, 0, 0).unwrap(),
        }
    }

    /// Puts a customer, invoice, payment or event in the book, as an
    /// ingest would (a customer given again replaces the stored one).
    fn given(&mut self, record: impl Into<Record>) -> &mut Self {
        record.into().put_in(&mut self.store).unwrap();
        self
    }

    /// The kit's sweeper, with the scenarios' revisions and sending time.
    fn sweeper(&self) -> Sweeper<'_> {
        let mut sweeper = self.env.sweeper();
        sweeper.options = SweepOptions {
            git_revision: Some("abc123".into()),
            bundle_revision: Some("bundle-abc".into()),
            send_time_utc: self.send_time,
            customer_local_time: None,
        };
        sweeper
    }

    /// Runs one day and returns what it did, one line per action, sorted:
    /// `INVOICE label status`.
    fn run(&mut self, day: &str) -> Vec<String> {
        let report = self.report(day);
        let mut out: Vec<String> = report
            .plan
            .records
            .iter()
            .map(|r| {
                let status = self.store.action(&r.action_id).unwrap().unwrap().status;
                format!("{} {} {}", r.invoice_id, r.label, status.as_str())
            })
            .collect();
        out.sort();
        out
    }

    /// Runs one day and returns its report.
    fn report(&mut self, on: &str) -> collect_delivery::delivery::RunReport {
        let now = || chrono::Utc::now();
        let req = RunRequest {
            scope: Scope::All,
            day: day(on),
            dry_run: false,
            holder: LeaseHolder::this_process(chrono::Utc::now()),
            now: &now,
            faults: None,
            keep_records: usize::MAX,
        };
        self.sweeper()
            .run_blocking(&self.store, &self.mailer, &req)
            .unwrap()
    }

    /// Runs every day of a range; returns the days on which something happened.
    fn run_range(&mut self, from: &str, to: &str) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        for d in day(from).iter_days().take_while(|x| *x <= day(to)) {
            let lines = self.run(&d.to_string());
            if !lines.is_empty() {
                out.push((d.to_string(), lines));
            }
        }
        out
    }

    fn sent(&self) -> Vec<OutgoingMessage> {
        self.mailer.accepted_messages()
    }

    /// A person approves (or rejects) an action awaiting approval.
    fn decide(&mut self, id: &str, approve: bool, on: &str) {
        let mut r = self.store.action(id).unwrap().unwrap();
        r.status = if approve {
            ActionStatus::Approved
        } else {
            ActionStatus::Rejected
        };
        r.decided_by = Some("maria".into());
        r.decided_at = Some(day(on));
        self.store
            .transition(
                &r,
                &[ActionStatus::AwaitingApproval],
                day(on),
                Some("maria"),
            )
            .unwrap();
    }
}

/// What a day did: its date and its lines (see [`Scenario::run`]).
fn on(date: &str, lines: &[&str]) -> (String, Vec<String>) {
    (
        date.to_string(),
        lines.iter().map(|s| s.to_string()).collect(),
    )
}

// Invoice A is due Thursday 2027-03-11. Its steps fall on Mon 03-08 (due - 3d),
// Thu 03-11, Thu 03-18, Thu 03-25, Thu 04-01 and Sat 04-10 → Mon 04-12.

#[test]
fn pre_due_reminder_three_days_before() {
    let mut s = Scenario::new();
    s.given(customer_in("C1", NEW_YORK))
        .given(invoice("A", "C1", "2027-03-11", "1000.00"));
    assert!(s.run("2027-03-07").is_empty());
    assert_eq!(s.run("2027-03-08"), ["A email friendly-reminder sent"]);
    let sent = s.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to.email, "c1@example.com");
    assert!(
        sent[0].text.contains("N-A"),
        "the message names the invoice"
    );
    assert!(
        sent[0].text.contains("https://pay.example.com/"),
        "the message carries a pay link"
    );
}

#[test]
fn the_full_standard_ladder() {
    let mut s = Scenario::new();
    s.given(customer_in("C1", NEW_YORK))
        .given(invoice("A", "C1", "2027-03-11", "1000.00"));
    assert_eq!(
        s.run_range("2027-03-01", "2027-04-30"),
        vec![
            on("2027-03-08", &["A email friendly-reminder sent"]),
            on("2027-03-11", &["A email urgent-notice sent"]),
            on("2027-03-18", &["A email firm-notice sent"]),
            on("2027-03-25", &["A offer plan sent"]),
            on("2027-04-01", &["A call collections planned"]),
            on("2027-04-12", &["A letter legal-notice awaiting_approval"]),
        ]
    );
    let offer = s
        .sent()
        .into_iter()
        .find(|m| m.text.contains("USD 100.00"))
        .expect("plan offer");
    assert!(
        offer.text.contains("USD 300.00"),
        "installments of 300.00 after a 10% down payment"
    );
}

#[test]
fn a_missed_sweep_takes_only_the_latest_step_and_records_the_skipped_one() {
    let mut s = Scenario::new();
    s.given(customer_in("C1", NEW_YORK))
        .given(invoice("A", "C1", "2027-03-11", "1000.00"));
    s.run("2027-03-08");
    assert_eq!(
        s.run("2027-03-19"),
        ["A email firm-notice sent", "A email urgent-notice skipped"]
    );
    assert_eq!(s.sent().len(), 2, "no burst of late messages");
}

#[test]
fn a_dispute_holds_the_ladder_and_it_resumes_where_it_stood() {
    let mut s = Scenario::new();
    s.given(customer_in("C1", NEW_YORK))
        .given(invoice("A", "C1", "2027-03-11", "1000.00"))
        .given(event("A", day("2027-03-12"), EventKind::DisputeOpened))
        .given(event("A", day("2027-03-29"), EventKind::DisputeClosed));
    assert_eq!(
        s.run_range("2027-03-01", "2027-04-05"),
        vec![
            on("2027-03-08", &["A email friendly-reminder sent"]),
            on("2027-03-11", &["A email urgent-notice sent"]),
            on(
                "2027-03-29",
                &["A email firm-notice skipped", "A offer plan sent"]
            ),
            on("2027-04-01", &["A call collections planned"]),
        ]
    );
}

#[test]
fn a_partial_payment_reduces_the_balance_and_a_full_one_ends_the_ladder() {
    let mut s = Scenario::new();
    s.given(customer_in("C1", NEW_YORK))
        .given(invoice("A", "C1", "2027-03-11", "1000.00"))
        .given(payment_of("A", day("2027-03-09"), "400.00"))
        .given(payment_of("A", day("2027-03-15"), "600.00"));
    assert_eq!(
        s.run_range("2027-03-01", "2027-04-30"),
        vec![
            on("2027-03-08", &["A email friendly-reminder sent"]),
            on("2027-03-11", &["A email urgent-notice sent"]),
        ]
    );
    let urgent = &s.sent()[1];
    assert!(
        urgent.text.contains("USD 600.00"),
        "the notice shows the open balance:\n{}",
        urgent.text
    );
}

#[test]
fn a_promise_to_pay_kept_ends_the_ladder() {
    let mut s = Scenario::new();
    s.given(customer_in("C1", NEW_YORK))
        .given(invoice("A", "C1", "2027-03-11", "1000.00"))
        .given(event(
            "A",
            day("2027-03-12"),
            EventKind::PromiseToPay {
                promised_until: day("2027-03-20"),
            },
        ))
        .given(payment_of("A", day("2027-03-19"), "1000.00"));
    assert_eq!(
        s.run_range("2027-03-01", "2027-04-30"),
        vec![
            on("2027-03-08", &["A email friendly-reminder sent"]),
            on("2027-03-11", &["A email urgent-notice sent"]),
        ]
    );
}

#[test]
fn a_promise_to_pay_broken_resumes_the_ladder_the_day_after() {
    let mut s = Scenario::new();
    s.given(customer_in("C1", NEW_YORK))
        .given(invoice("A", "C1", "2027-03-11", "1000.00"))
        .given(event(
            "A",
            day("2027-03-12"),
            EventKind::PromiseToPay {
                promised_until: day("2027-03-20"),
            },
        ));
    // Promised until Sat 03-20 and not paid: the hold ends on Sunday 03-21,
    // a weekend, so the firm notice waits for Monday.
    let days = s.run_range("2027-03-12", "2027-03-24");
    assert_eq!(
        days,
        vec![
            on(
                "2027-03-21",
                &[
                    "A email firm-notice deferred",
                    "A email friendly-reminder skipped",
                    "A email urgent-notice skipped"
                ]
            ),
            on("2027-03-22", &["A email firm-notice sent"]),
        ]
    );
}

#[test]
fn a_plan_holds_while_paid_and_the_ladder_resumes_when_it_defaults() {
    let mut s = Scenario::new();
    s.given(customer_in("C1", NEW_YORK))
        .given(invoice("A", "C1", "2027-03-11", "1000.00"))
        .given(event(
            "A",
            day("2027-03-26"),
            EventKind::PlanAccepted(PlanTerms {
                installments: 3,
                every_days: 30,
                down_payment: money("100.00"),
            }),
        ))
        .given(payment_of("A", day("2027-03-26"), "100.00"));
    // Down payment paid; the first installment (300.00) falls due on 04-25
    // and is never paid: from 04-26 the plan is in default.
    assert_eq!(
        s.run_range("2027-03-19", "2027-04-30"),
        vec![
            on(
                "2027-03-19",
                &[
                    "A email firm-notice sent",
                    "A email friendly-reminder skipped",
                    "A email urgent-notice skipped"
                ]
            ),
            on("2027-03-25", &["A offer plan sent"]),
            on(
                "2027-04-26",
                &[
                    "A call collections skipped",
                    "A letter legal-notice awaiting_approval"
                ]
            ),
        ]
    );
}

#[test]
fn a_capped_customer_is_deferred_not_dropped() {
    let mut s = Scenario::new();
    s.given(customer_in("C1", NEW_YORK))
        .given(invoice("A", "C1", "2027-03-11", "1000.00"))
        .given(invoice("B", "C1", "2027-03-12", "500.00"));
    // A's reminder goes out Mon 03-08; B's (Tue 03-09) waits a day for the
    // 1-email-per-2-days cap; then A's urgent notice (Thu 03-11) waits for
    // B's reminder, and on Fri 03-12 goes out in one message with B's.
    assert_eq!(
        s.run_range("2027-03-08", "2027-03-12"),
        vec![
            on("2027-03-08", &["A email friendly-reminder sent"]),
            on("2027-03-09", &["B email friendly-reminder deferred"]),
            on("2027-03-10", &["B email friendly-reminder sent"]),
            on("2027-03-11", &["A email urgent-notice deferred"]),
            on(
                "2027-03-12",
                &["A email urgent-notice sent", "B email urgent-notice sent"]
            ),
        ]
    );
    let log = s.store.actions().unwrap();
    let deferred = log
        .iter()
        .find(|a| a.invoice_id == "B" && a.label == "email friendly-reminder")
        .unwrap();
    let log = s.store.action_log(&deferred.action_id).unwrap();
    let trail: Vec<&str> = log.iter().map(|e| e.status.as_str()).collect();
    assert_eq!(
        trail,
        ["deferred", "planned", "sending", "sent"],
        "the deferral is recorded"
    );
    // Each line keeps its own note: the retry is not noted as a deferral.
    let notes: Vec<Option<&str>> = log.iter().map(|e| e.note.as_deref()).collect();
    assert_eq!(
        notes,
        [
            Some("deferred: at most 1 email per customer per 2d; retried on the next sweep"),
            None,
            None,
            None
        ]
    );
}

#[test]
fn quiet_hours_follow_each_customers_time_zone() {
    let mut s = Scenario::new();
    s.given(customer_in("NY", "America/New_York"))
        .given(customer_in("TK", "Asia/Tokyo"))
        .given(invoice("A", "NY", "2027-03-11", "1000.00"))
        .given(invoice("B", "TK", "2027-03-11", "1000.00"));
    // 14:00 UTC is 09:00 in New York and 23:00 in Tokyo.
    assert_eq!(
        s.run("2027-03-08"),
        [
            "A email friendly-reminder sent",
            "B email friendly-reminder deferred"
        ]
    );
    // The same day again at 01:00 UTC: 10:00 in Tokyo, 20:00 (quiet) in New York.
    s.send_time = NaiveTime::from_hms_opt(1, 0, 0).unwrap();
    assert_eq!(s.run("2027-03-08"), ["B email friendly-reminder sent"]);
}

#[test]
fn a_weekend_due_date_moves_the_due_step_to_monday() {
    let mut s = Scenario::new();
    // Due Saturday 2027-03-13: `due` moves to Monday 03-15; `due - 3d`
    // (Wednesday 03-10) stays.
    s.given(customer_in("C1", NEW_YORK))
        .given(invoice("A", "C1", "2027-03-13", "1000.00"));
    assert_eq!(
        s.run_range("2027-03-08", "2027-03-16"),
        vec![
            on("2027-03-10", &["A email friendly-reminder sent"]),
            on("2027-03-15", &["A email urgent-notice sent"]),
        ]
    );
}

#[test]
fn three_invoices_due_together_go_out_in_one_message() {
    let mut s = Scenario::new();
    s.given(customer_in("C1", NEW_YORK))
        .given(invoice("A", "C1", "2027-03-11", "1000.00"))
        .given(invoice("B", "C1", "2027-03-11", "250.00"))
        .given(invoice("C", "C1", "2027-03-11", "75.50"));
    assert_eq!(
        s.run("2027-03-08"),
        [
            "A email friendly-reminder sent",
            "B email friendly-reminder sent",
            "C email friendly-reminder sent"
        ]
    );
    let sent = s.sent();
    assert_eq!(sent.len(), 1, "one message per customer per day");
    for n in ["N-A", "N-B", "N-C"] {
        assert!(sent[0].text.contains(n), "the message lists {n}");
    }
    assert_eq!(sent[0].action_ids.len(), 3);
}

#[test]
fn a_letter_waits_for_approval_and_goes_out_only_when_approved() {
    let mut s = Scenario::new();
    s.given(customer_in("C1", NEW_YORK))
        .given(invoice("A", "C1", "2027-03-11", "1000.00"))
        .given(invoice("B", "C1", "2027-03-11", "1000.00"));
    s.run_range("2027-03-01", "2027-04-12");
    let letters: Vec<_> = s
        .store
        .actions()
        .unwrap()
        .into_iter()
        .filter(|a| a.status == ActionStatus::AwaitingApproval)
        .collect();
    assert_eq!(letters.len(), 2);
    let before = s.sent().len();
    let (a, b) = if letters[0].invoice_id == "A" {
        (&letters[0], &letters[1])
    } else {
        (&letters[1], &letters[0])
    };
    s.decide(&a.action_id, true, "2027-04-12");
    s.decide(&b.action_id, false, "2027-04-12");
    assert_eq!(s.run("2027-04-13"), ["A letter legal-notice sent"]);
    let after = s.sent();
    assert_eq!(after.len(), before + 1, "only the approved letter is sent");
    assert!(after.last().unwrap().text.contains("N-A"));
    let rejected = s.store.action(&b.action_id).unwrap().unwrap();
    assert_eq!(rejected.status, ActionStatus::Rejected);
    assert_eq!(rejected.decided_by.as_deref(), Some("maria"));
    assert!(
        s.run_range("2027-04-14", "2027-05-30").is_empty(),
        "a rejected letter is never sent"
    );
}

#[test]
fn re_running_a_day_records_and_sends_nothing_twice() {
    let mut s = Scenario::new();
    s.given(customer_in("C1", NEW_YORK))
        .given(invoice("A", "C1", "2027-03-11", "1000.00"));
    assert_eq!(
        s.run("2027-03-11"),
        [
            "A email friendly-reminder skipped",
            "A email urgent-notice sent"
        ]
    );
    let actions = s.store.actions().unwrap();
    assert!(s.run("2027-03-11").is_empty());
    assert_eq!(s.store.actions().unwrap(), actions);
    assert_eq!(s.sent().len(), 1);
}

#[test]
fn every_record_says_why() {
    let mut s = Scenario::new();
    s.given(customer_in("C1", NEW_YORK))
        .given(invoice("A", "C1", "2027-03-11", "1000.00"));
    s.run("2027-03-08");
    let r = &s.store.actions().unwrap()[0];
    assert_eq!(r.policy_name, "scenario");
    assert_eq!(r.policy_revision, s.env.policy.revision);
    assert_eq!(r.git_revision.as_deref(), Some("abc123"));
    assert_eq!(r.rule, "scenario.policy:12");
    assert_eq!(r.segment, "standard");
    assert_eq!(r.scorer, "prior-late-rate (fallback, no trained model)");
    assert_eq!(r.sent_on, Some(day("2027-03-08")));
    let log = s.store.action_log(&r.action_id).unwrap();
    let statuses: Vec<&str> = log.iter().map(|e| e.status.as_str()).collect();
    assert_eq!(statuses, ["planned", "sending", "sent"]);
}

// ---------------------------------------------------------------- property

fn arb_book() -> impl Strategy<Value = Vec<(bool, u8, u16, bool)>> {
    // Per customer: do-not-contact?, invoice count, amount, disputed?
    prop::collection::vec((any::<bool>(), 1u8..4, 50u16..5000, any::<bool>()), 1..6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn a_do_not_contact_customer_is_never_contacted(book in arb_book(), due_day in 1u32..20) {
        let mut s = Scenario::with_policy(POLICY);
        for (i, (dnc, n, amount, disputed)) in book.iter().enumerate() {
            let cid = format!("C{i}");
            s.given(Customer { do_not_contact: *dnc, ..customer_in(&cid, NEW_YORK) });
            for k in 0..*n {
                let due = day("2027-03-01") + chrono::Days::new(u64::from(due_day) + u64::from(k) * 3);
                s.given(invoice(&format!("{cid}-{k}"), &cid, &due.to_string(), &format!("{amount}.00")));
                if *disputed && k == 0 {
                    s.given(event(&format!("{cid}-{k}"), day("2027-03-05"), EventKind::DisputeOpened));
                }
            }
        }
        s.run_range("2027-02-20", "2027-05-15");
        let dnc: Vec<String> = book
            .iter()
            .enumerate()
            .filter(|(_, b)| b.0)
            .map(|(i, _)| format!("c{i}@example.com"))
            .collect();
        for m in s.sent() {
            prop_assert!(!dnc.contains(&m.to.email), "{} was contacted", m.to.email);
        }
        for a in s.store.actions().unwrap() {
            let i: usize = a.customer_id.trim_start_matches('C').parse().unwrap();
            prop_assert!(!book[i].0, "an action was recorded for do-not-contact customer {}", a.customer_id);
        }
    }
}

// ---------------------------------------------------------------- segment changes

/// Two ladders with the same actions at other offsets, and one with none
/// of them; the segment follows the customer's tags, changed mid-ladder.
const SEGMENTS: &str = r#"
policy "segments" effective 2027-01-01 currency USD
limits
  business days only
segment watch when "watch" in customer.tags
segment strategic when "strategic" in customer.tags
segment standard otherwise
ladder watch
  due        email "urgent-notice"
  due + 5d   email "firm-notice"
  due + 10d  call "collections"
  due + 21d  letter "legal-notice" requires approval
ladder strategic
  due + 7d   call "account-manager"
ladder standard
  due        email "urgent-notice"
  due + 7d   email "firm-notice"
  due + 15d  call "collections"
  due + 30d  letter "legal-notice" requires approval
"#;

// Invoice A is due Thursday 2027-03-11. Standard: urgent 03-11, firm 03-18,
// call Fri 03-26, letter Sat 04-10 → Mon 04-12. Watch: urgent 03-11, firm
// Tue 03-16, call Sun 03-21 → Mon 03-22, letter Thu 04-01.

fn segments() -> Scenario {
    let mut s = Scenario::with_policy(SEGMENTS);
    s.given(customer_in("C1", NEW_YORK))
        .given(invoice("A", "C1", "2027-03-11", "1000.00"));
    s
}

/// C1 is given again with these tags (and nothing else changed).
fn tag(s: &mut Scenario, tags: &[&str]) {
    s.given(Customer {
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..customer_in("C1", NEW_YORK)
    });
}

#[test]
fn a_letter_awaiting_approval_carries_over_to_a_segment_whose_ladder_has_it() {
    // Issue 10, case 3: the letter awaiting approval since the 12th was
    // cancelled when risk rose, and nothing was ever proposed again.
    let mut s = segments();
    s.run_range("2027-03-01", "2027-04-16");
    let letter = s
        .store
        .actions()
        .unwrap()
        .into_iter()
        .find(|a| a.label == "letter legal-notice")
        .unwrap();
    assert_eq!(letter.status, ActionStatus::AwaitingApproval);
    tag(&mut s, &["watch"]);
    let later = s.run_range("2027-04-19", "2027-05-31");
    assert!(later.is_empty(), "nothing closed, nothing new: {later:?}");
    let still = s.store.action(&letter.action_id).unwrap().unwrap();
    assert_eq!(still.status, ActionStatus::AwaitingApproval);
    // A person approves it under the new segment: it goes out.
    s.decide(&letter.action_id, true, "2027-06-01");
    assert_eq!(s.run("2027-06-01"), ["A letter legal-notice sent"]);
}

#[test]
fn a_letter_awaiting_approval_is_closed_with_its_reason_when_the_new_ladder_has_no_letter() {
    let mut s = segments();
    s.run_range("2027-03-01", "2027-04-16");
    tag(&mut s, &["strategic"]);
    assert_eq!(
        s.run("2027-04-19"),
        [
            "A call collections skipped",
            "A letter legal-notice skipped"
        ],
        "the strategic ladder has neither letters nor collections calls"
    );
    let letter = s
        .store
        .actions()
        .unwrap()
        .into_iter()
        .find(|a| a.label == "letter legal-notice")
        .unwrap();
    assert!(
        letter.note.as_deref().unwrap().contains(
            "moved from segment `standard` to `strategic`, whose ladder has no `letter legal-notice`"
        ),
        "{:?}",
        letter.note
    );
}

#[test]
fn the_same_reminder_never_goes_twice_across_segments() {
    // Issue 10, case 4: firm notice at watch +5d, then again at standard +7d.
    let mut s = segments();
    tag(&mut s, &["watch"]);
    let before = s.run_range("2027-03-01", "2027-03-16");
    assert_eq!(
        before,
        [
            on("2027-03-11", &["A email urgent-notice sent"]),
            on("2027-03-16", &["A email firm-notice sent"]),
        ]
    );
    tag(&mut s, &[]);
    assert_eq!(s.run("2027-03-18"), ["A email firm-notice skipped"]);
    let notes: Vec<String> = s
        .store
        .actions()
        .unwrap()
        .into_iter()
        .filter(|a| a.segment == "standard")
        .filter_map(|a| a.note)
        .collect();
    assert!(
        notes.iter().any(|n| n.contains(
            "`email firm-notice` was already done for this invoice under segment `watch`"
        )),
        "{notes:?}"
    );
    // The ladder goes on: the standard call on Fri 26 Mar.
    assert_eq!(s.run("2027-03-26"), ["A call collections planned"]);
}

#[test]
fn an_open_call_task_carries_over_and_is_not_created_twice() {
    let mut s = segments();
    tag(&mut s, &["watch"]);
    s.run_range("2027-03-01", "2027-03-22");
    let call = s
        .store
        .actions()
        .unwrap()
        .into_iter()
        .find(|a| a.label == "call collections")
        .unwrap();
    assert_eq!(call.status, ActionStatus::Planned);
    tag(&mut s, &[]);
    let after = s.run_range("2027-03-23", "2027-04-09");
    assert_eq!(
        after,
        [on("2027-03-26", &["A call collections skipped"])],
        "the open task stays, the standard ladder's call is not a second one"
    );
    assert_eq!(
        s.store.action(&call.action_id).unwrap().unwrap().status,
        ActionStatus::Planned
    );
}

#[test]
fn a_deferred_step_closed_by_a_segment_change_is_proposed_by_the_new_ladder() {
    // The watch firm notice waits for the email cap (one a week), then the
    // invoice moves to standard, whose firm notice at +7d goes out: the
    // closed step did not count as taken.
    let mut s = Scenario::with_policy(&SEGMENTS.replace(
        "  business days only",
        "  business days only\n  at most 1 email per customer per 7d",
    ));
    s.given(customer_in("C1", NEW_YORK))
        .given(invoice("A", "C1", "2027-03-11", "1000.00"));
    tag(&mut s, &["watch"]);
    let watch = s.run_range("2027-03-01", "2027-03-16");
    assert_eq!(
        watch,
        [
            on("2027-03-11", &["A email urgent-notice sent"]),
            on("2027-03-16", &["A email firm-notice deferred"]),
        ]
    );
    tag(&mut s, &[]);
    assert_eq!(
        s.run("2027-03-17"),
        ["A email firm-notice skipped"],
        "the watch step is closed"
    );
    assert_eq!(s.run("2027-03-18"), ["A email firm-notice sent"]);
}

// ---------------------------------------------------------------- one bad customer

#[test]
fn a_customer_with_absurd_amounts_is_set_aside_and_everyone_else_is_swept() {
    // Issue 10, case 7: ten 28-digit payments on one customer made the whole
    // run panic ("Addition overflowed"): no mail for anyone.
    let huge = "9999999999999999999999999999";
    let mut s = Scenario::new();
    s.given(customer_in("C1", NEW_YORK))
        .given(invoice("A", "C1", "2027-03-11", "1000.00"))
        .given(customer_in("C2", NEW_YORK))
        .given(invoice("B", "C2", "2027-03-11", huge));
    for n in 1..=10 {
        s.given(payment_of(
            "B",
            day(&format!("2027-03-0{}", n % 9 + 1)),
            huge,
        ));
    }
    s.given(customer_in("C3", NEW_YORK))
        .given(invoice("C", "C3", "2027-03-11", "500.00"));
    let report = s.report("2027-03-11");
    assert_eq!(
        report.plan.unprocessable.len(),
        1,
        "{:?}",
        report.plan.unprocessable
    );
    let (who, why) = &report.plan.unprocessable[0];
    assert_eq!(who, "C2");
    assert!(why.contains("beyond the limit"), "{why}");
    let to: Vec<&str> = report.sent.iter().map(|m| m.customer_id.as_str()).collect();
    assert_eq!(to, ["C1", "C3"], "everyone else got their urgent notice");
}

#[test]
fn an_invalid_address_holds_the_step_and_it_goes_out_once_corrected() {
    // Issue 10, case 7: `<c4@x.example>` failed on the send day and the
    // ladder moved on without it.
    let mut s = Scenario::new();
    s.given(Customer {
        email: "<c4@x.example>".into(),
        ..customer_in("C4", NEW_YORK)
    })
    .given(invoice("A", "C4", "2027-03-11", "1000.00"));
    assert_eq!(s.run("2027-03-08"), ["A email friendly-reminder deferred"]);
    let held = s.store.actions().unwrap();
    assert!(
        held[0]
            .note
            .as_deref()
            .unwrap()
            .contains("is not a valid email address"),
        "{:?}",
        held[0].note
    );
    assert!(s.sent().is_empty());
    s.given(Customer {
        email: "c4@x.example".into(),
        ..customer_in("C4", NEW_YORK)
    });
    assert_eq!(s.run("2027-03-09"), ["A email friendly-reminder sent"]);
    assert_eq!(s.sent().len(), 1);
}

#[test]
fn a_message_that_cannot_be_composed_waits_and_goes_out_once_the_template_is_fixed() {
    // Issue 10, case 5: a failed offer counted as taken and was never
    // retried.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&policy_dir().join("templates"), dir.path());
    let subject = dir.path().join("urgent-notice/en/subject.txt");
    let good = std::fs::read_to_string(&subject).unwrap();
    std::fs::write(&subject, "{{ no_such_value }}").unwrap();
    let mut s = Scenario::new();
    s.env.templates = Templates::load(dir.path()).unwrap();
    s.given(customer_in("C1", NEW_YORK))
        .given(invoice("A", "C1", "2027-03-11", "1000.00"));
    let report = s.report("2027-03-11");
    assert_eq!(
        report.failed.len(),
        1,
        "reported, so the run exits non-zero"
    );
    assert!(report.failed[0].1.contains("could not be composed"));
    let urgent = s
        .store
        .actions()
        .unwrap()
        .into_iter()
        .find(|a| a.label == "email urgent-notice")
        .unwrap();
    assert_eq!(urgent.status, ActionStatus::Deferred);
    std::fs::write(&subject, good).unwrap();
    s.env.templates = Templates::load(dir.path()).unwrap();
    assert_eq!(s.run("2027-03-12"), ["A email urgent-notice sent"]);
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
