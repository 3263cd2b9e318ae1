//! Aggregates decide exactly what the full history decided (issue 22).
//!
//! A generated book with four years of settled history per customer is
//! swept day after day on the in-memory ledger, each day's payments and
//! events ingested between the sweeps, with a scorer that reads every
//! feature of the model. Every day, from the same records:
//! (a) the full book (`Book::new`, no aggregate),
//! (b) the book folded before the sweep's `since` (`history::fold`), and
//! (c) the memory ledger's `load_book` (which folds at load)
//! must give the same plan (decisions, actions, messages), the same
//! `customer_stats` for every customer and the same feature row, bit for
//! bit, for every open invoice. A proptest does the same over small random
//! books (payments, refunds, disputes, promises, plans, mail events, steps
//! made by sweeping them) and random days.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use chrono::{Duration, NaiveDate};
use collect_delivery::delivery::{RunRequest, Sweeper};
use collect_delivery::ledger::memory::MemoryLedger;
use collect_delivery::ledger::{LeaseHolder, Ledger, Scope};
use collect_engine::book::{Book, CustomerStats};
use collect_engine::domain::{
    ActionRecord, ActionStatus, Customer, Event, EventKind, Invoice, Payment, PlanTerms,
};
use collect_engine::history::fold;
use collect_engine::sweep::{
    RiskScorer, ScoreInput, SweepOptions, SweepPlan, history_since, plan_sweep,
};
use collect_generator::{Mix, Spec, generate, plus};
use collect_model::features::{FEATURES, compute, expand};
use collect_testkit::book::{Clock, Env};
use collect_testkit::mailer::RecordingMailer;
use policy_lang::Policy;
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// Segments and ladders that read the risk (every feature, through the
/// scorer) and the customer's payment history facts.
const POLICY: &str = r#"
policy "history-equivalence" effective 2020-01-01 currency USD
limits
  at most 1 email per customer per 2d
  at most 3 contacts per customer per 14d
  business days only
segment high_risk when risk >= 55%
segment late_payers when customer.late_rate > 30% and customer.avg_days_late > 8
segment new when customer.tenure_days < 400
segment standard otherwise
hold dispute when invoice.disputed
hold promise when invoice.promised_until >= today
hold plan when invoice.plan_current
ladder high_risk
  due - 7d   email "early-heads-up"
  due        email "urgent-notice-firm"
  due + 5d   email "firm-notice"
  due + 10d  call "collections"
  due + 20d  offer plan 3 installments every 30d down 10%
ladder late_payers
  due - 3d   email "friendly-reminder"
  due + 3d   email "firm-notice"
  due + 12d  call "collections"
ladder new
  due        email "urgent-notice"
  due + 14d  letter "legal-notice" requires approval
ladder standard
  due - 3d   email "friendly-reminder"
  due        email "urgent-notice"
  due + 7d   email "firm-notice"
  due + 21d  call "collections"
"#;

/// A risk from every column of the model's row (a fixed linear score), so
/// a feature that differs changes the recorded risk, and often a segment.
struct FeatureScorer;

impl RiskScorer for FeatureScorer {
    fn name(&self) -> &str {
        "every-feature (test)"
    }
    fn version(&self) -> &str {
        "1"
    }
    fn score(&self, input: &ScoreInput<'_>) -> Option<f64> {
        let raw = compute(input.book, input.invoice, input.day);
        let row = expand(&raw, &vec![0.25; FEATURES.len()]);
        let z: f64 = row
            .iter()
            .enumerate()
            .map(|(k, v)| v * (((k * 37) % 11) as f64 - 5.0) / 7.0)
            .sum();
        Some(1.0 / (1.0 + (-z / 4.0).exp()))
    }
}

/// The records as the ERP and the ledger hold them.
#[derive(Default)]
struct Records {
    customers: Vec<Customer>,
    invoices: BTreeMap<String, Invoice>,
    payments: BTreeMap<String, Payment>,
    events: BTreeMap<String, Event>,
}

impl Records {
    fn full_book(&self, actions: Vec<ActionRecord>) -> Book {
        Book::new(
            self.customers.clone(),
            self.invoices.values().cloned().collect(),
            self.payments.values().cloned().collect(),
            self.events.values().cloned().collect(),
            actions,
        )
    }
}

fn plan_text(book: &Book, policy: &Policy, day: NaiveDate) -> String {
    let opts = SweepOptions::default();
    let plan: SweepPlan = plan_sweep(book, policy, &FeatureScorer, day, &opts);
    serde_json::to_string_pretty(&plan).unwrap()
}

fn bits(row: &[Option<f64>]) -> Vec<Option<u64>> {
    row.iter().map(|v| v.map(f64::to_bits)).collect()
}

/// Everything a sweep of `day` decides and reads from a book: every
/// customer's record, the feature row of every open invoice (as bits), and
/// the plan.
#[derive(PartialEq)]
struct Reading {
    stats: Vec<(String, CustomerStats)>,
    features: Vec<(String, Vec<Option<u64>>)>,
    plan: String,
}

/// The reading of `book` for the customers and open invoices of `full`.
fn reading(book: &Book, full: &Book, policy: &Policy, day: NaiveDate) -> Reading {
    let mut customers: Vec<&String> = full.customers.keys().collect();
    customers.sort();
    Reading {
        stats: customers
            .into_iter()
            .map(|c| (c.clone(), book.customer_stats(c, day)))
            .collect(),
        features: full
            .invoices
            .iter()
            .filter(|i| full.is_open(i, day))
            .map(|inv| (inv.invoice_id.clone(), bits(&compute(book, inv, day))))
            .collect(),
        plan: plan_text(book, policy, day),
    }
}

/// The folded book's reading against the full one's, each difference named;
/// returns how many open invoices were compared.
fn assert_same(full: &Reading, folded: &Reading, day: NaiveDate, what: &str) -> usize {
    for ((c, a), (_, b)) in full.stats.iter().zip(&folded.stats) {
        assert_eq!(a, b, "{what}: customer_stats of `{c}` on {day}");
    }
    for ((id, a), (_, b)) in full.features.iter().zip(&folded.features) {
        if a != b {
            let diff: Vec<String> = FEATURES
                .iter()
                .zip(a.iter().zip(b))
                .filter(|(_, (x, y))| x != y)
                .map(|(d, (x, y))| {
                    let f = |v: &Option<u64>| v.map(f64::from_bits);
                    format!("{}: {:?} vs {:?}", d.name, f(x), f(y))
                })
                .collect();
            panic!(
                "{what}: features of `{id}` on {day} differ: {}",
                diff.join("; ")
            );
        }
    }
    if full.plan != folded.plan {
        let (a, b) = (&full.plan, &folded.plan);
        let at = a
            .lines()
            .zip(b.lines())
            .position(|(x, y)| x != y)
            .unwrap_or(0);
        let around = |t: &str| {
            t.lines()
                .skip(at.saturating_sub(5))
                .take(12)
                .collect::<Vec<_>>()
                .join("\n")
        };
        panic!(
            "{what}: the plans of {day} differ at line {at}:\n--- full\n{}\n--- folded\n{}",
            around(a),
            around(b)
        );
    }
    assert!(full == folded, "{what}: the readings of {day} differ");
    full.features.len()
}

/// Mail opened (and now and then answered) the day after an email went
/// out, for some of the actions sent: events the fold must wait for.
fn mail_events(actions: &[ActionRecord], day: NaiveDate) -> Vec<Event> {
    let mut out = Vec::new();
    for a in actions
        .iter()
        .filter(|a| a.status == ActionStatus::Sent && a.sent_on == Some(day))
    {
        let h = a
            .action_id
            .as_str()
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        let kinds: &[EventKind] = match h % 4 {
            0 => &[EventKind::MailOpened, EventKind::MailReplied],
            1 | 2 => &[EventKind::MailOpened],
            _ => &[],
        };
        for kind in kinds {
            out.push(Event {
                event_id: format!("M-{}-{}", a.action_id.as_str(), kind.name()),
                date: plus(day, 1),
                kind: kind.clone(),
                invoice_id: Some(a.invoice_id.to_string()),
                action_id: Some(a.action_id.to_string()),
                message_id: a.message_id.as_ref().map(|m| m.to_string()),
                by: None,
                reason: None,
            });
        }
    }
    out
}

#[test]
fn four_years_of_history_fold_without_changing_a_decision() {
    let env = Env::with_policy(POLICY);
    let policy = &env.policy;
    // Four years of invoices, about one a month per customer, then 140
    // days of sweeps: the first 50 leave steps, opened mail and call
    // tasks behind that later days fold.
    let start = NaiveDate::from_ymd_opt(2027, 1, 4).unwrap();
    let years = 4 * 365;
    let spec = Spec {
        seed: 22,
        customers: 20,
        issue_from: plus(start, -years),
        issue_days: u64::try_from(years).unwrap(),
        invoices: (44, 52),
        strategic_invoices: (44, 52),
        history: (2, 4),
        history_months: 0,
        mix: Mix {
            plan: 0.08,
            ..Mix::default()
        },
    };
    let generated = generate(&spec);
    let snapshot = generated.as_of(start);
    let mut records = Records {
        customers: snapshot.customers.clone(),
        ..Records::default()
    };
    let ledger = MemoryLedger::new();
    for c in &snapshot.customers {
        ledger.upsert_customer(c.clone());
    }
    let ingest = |records: &mut Records,
                  invoices: Vec<Invoice>,
                  payments: Vec<Payment>,
                  events: Vec<Event>| {
        for i in invoices {
            ledger.upsert_invoice(i.clone());
            records.invoices.insert(i.invoice_id.clone(), i);
        }
        for p in payments {
            ledger.upsert_payment(p.clone());
            records.payments.insert(p.payment_id.clone(), p);
        }
        for e in events {
            ledger.insert_event(e.clone());
            records.events.entry(e.event_id.clone()).or_insert(e);
        }
    };
    ingest(
        &mut records,
        snapshot.invoices,
        snapshot.payments,
        snapshot.events,
    );
    let mut later = generated.history(start);
    let mailer = RecordingMailer::default();
    let clock = Clock::at(start);
    let sweeper = Sweeper {
        scorer: &FeatureScorer,
        ..env.sweeper()
    };

    let (mut compared, mut most_folded, mut sent) = (0usize, 0usize, 0usize);
    let mut folded_with_steps = false;
    for k in 1..=140 {
        let day = plus(start, k);
        let changes = later.day(day);
        ingest(
            &mut records,
            changes.invoices,
            changes.payments,
            changes.events,
        );

        let since = history_since(policy, day);
        let full = records.full_book(ledger.actions());
        let folded = fold(full.clone(), since);
        let loaded = pollster::block_on(ledger.load_book(&Scope::All, day, since)).unwrap();
        assert_eq!(folded.history, loaded.history, "{day}: fold and load_book");
        assert_eq!(
            folded.invoices, loaded.invoices,
            "{day}: fold and load_book"
        );
        most_folded = most_folded.max(full.invoices.len() - folded.invoices.len());
        folded_with_steps |= full.invoices.iter().any(|i| {
            !full.steps_of(&i.invoice_id).is_empty() && folded.invoice(&i.invoice_id).is_none()
        });
        let expected = reading(&full, &full, policy, day);
        compared += assert_same(
            &expected,
            &reading(&folded, &full, policy, day),
            day,
            "fold",
        );
        assert_same(
            &expected,
            &reading(&loaded, &full, policy, day),
            day,
            "load_book",
        );

        // The day's sweep on the ledger, then the mail read the next day.
        let now = || clock.now();
        let mut holder = LeaseHolder::this_process(clock.now());
        holder.host = "test".to_string();
        let req = RunRequest {
            scope: Scope::All,
            day,
            dry_run: false,
            holder,
            now: &now,
            faults: None,
            keep_records: usize::MAX,
        };
        pollster::block_on(sweeper.run(&ledger, &mailer, &req)).unwrap();
        clock.advance(Duration::days(1));
        let actions = ledger.actions();
        let events = mail_events(&actions, day);
        sent += actions.iter().filter(|a| a.sent_on == Some(day)).count();
        ingest(&mut records, Vec::new(), Vec::new(), events);
    }
    // The test means something: history folded, steps among it, decisions
    // and messages made on the way.
    let invoices = records.invoices.len();
    eprintln!(
        "{invoices} invoices, at most {most_folded} folded; {compared} open invoices compared; {sent} steps sent"
    );
    assert!(
        most_folded * 2 > invoices,
        "only {most_folded} of {invoices} invoices folded"
    );
    assert!(folded_with_steps, "no invoice with steps folded");
    assert!(compared > 1000, "only {compared} open invoices compared");
    assert!(sent > 50, "only {sent} steps sent");
}

// ----- the proptest: small random books, random days -----

#[derive(Debug, Clone)]
struct InvoiceDraw {
    issue: i64,
    terms: i64,
    amount: u32,
    /// Payments: (days after issue, share of the amount in percent; a
    /// negative share is a refund).
    payments: Vec<(i64, i32)>,
    /// Events: (days after issue, kind 0..6).
    events: Vec<(i64, u8)>,
    disputed_from: Option<i64>,
}

fn invoice_draw() -> impl Strategy<Value = InvoiceDraw> {
    (
        0i64..400,
        prop_oneof![Just(15i64), Just(30), Just(45)],
        1u32..5000,
        proptest::collection::vec(
            (
                0i64..200,
                prop_oneof![Just(100i32), Just(50), Just(30), Just(-20)],
            ),
            0..4,
        ),
        proptest::collection::vec((0i64..200, 0u8..7), 0..3),
        proptest::option::weighted(0.1, 0i64..300),
    )
        .prop_map(
            |(issue, terms, amount, payments, events, disputed_from)| InvoiceDraw {
                issue,
                terms,
                amount,
                payments,
                events,
                disputed_from,
            },
        )
}

fn book_of(draws: &[(u8, InvoiceDraw)], origin: NaiveDate, actions: Vec<ActionRecord>) -> Book {
    let (customers, invoices, payments, events) = records_of(draws, origin);
    Book::new(customers, invoices, payments, events, actions)
}

fn records_of(
    draws: &[(u8, InvoiceDraw)],
    origin: NaiveDate,
) -> (Vec<Customer>, Vec<Invoice>, Vec<Payment>, Vec<Event>) {
    let mut customers: Vec<Customer> = Vec::new();
    let (mut invoices, mut payments, mut events) = (Vec::new(), Vec::new(), Vec::new());
    for (k, (c, d)) in draws.iter().enumerate() {
        let cid = format!("C{c}");
        if !customers.iter().any(|x| x.customer_id == cid) {
            customers.push(collect_testkit::book::customer(&cid));
        }
        let id = format!("I{k:03}");
        let issue = plus(origin, d.issue);
        let amount = Decimal::from(d.amount);
        invoices.push(Invoice {
            invoice_id: id.clone(),
            customer_id: cid,
            number: id.clone(),
            issue_date: issue,
            due_date: plus(issue, d.terms),
            amount,
            currency: "USD".into(),
            disputed: d.disputed_from.is_some(),
            dispute_opened_on: d.disputed_from.map(|x| plus(issue, x)),
        });
        for (j, (after, share)) in d.payments.iter().enumerate() {
            payments.push(Payment {
                payment_id: format!("P-{id}-{j}"),
                invoice_id: id.clone(),
                paid_on: plus(issue, *after),
                amount: amount * Decimal::from(*share) / Decimal::ONE_HUNDRED,
            });
        }
        for (j, (after, kind)) in d.events.iter().enumerate() {
            let on = plus(issue, *after);
            let kind = match kind {
                0 => EventKind::DisputeOpened,
                1 => EventKind::DisputeClosed,
                2 => EventKind::PromiseToPay {
                    promised_until: plus(on, 10),
                },
                3 => EventKind::PlanAccepted(PlanTerms {
                    installments: 3,
                    every_days: 30,
                    down_payment: Decimal::ZERO,
                }),
                4 => EventKind::MailOpened,
                5 => EventKind::MailReplied,
                _ => EventKind::PlanAccepted(PlanTerms {
                    installments: 2,
                    every_days: 20,
                    down_payment: Decimal::TEN,
                }),
            };
            events.push(Event {
                event_id: format!("E-{id}-{j}"),
                date: on,
                kind,
                invoice_id: Some(id.clone()),
                action_id: None,
                message_id: None,
                by: None,
                reason: None,
            });
        }
    }
    (customers, invoices, payments, events)
}

/// Steps as a sweep leaves them: every `every` days from `origin` to
/// `through`, the plan's records kept and its messages marked sent.
fn sweep_steps(
    draws: &[(u8, InvoiceDraw)],
    origin: NaiveDate,
    through: NaiveDate,
    every: i64,
    policy: &Policy,
) -> Vec<ActionRecord> {
    let mut actions: BTreeMap<String, ActionRecord> = BTreeMap::new();
    let mut day = plus(origin, 20);
    while day <= through {
        let book = book_of(draws, origin, actions.values().cloned().collect());
        let plan = plan_sweep(&book, policy, &FeatureScorer, day, &SweepOptions::default());
        for mut r in plan.records {
            if r.status == ActionStatus::Planned && r.message_id.is_some() {
                r.status = ActionStatus::Sent;
                r.sent_on = Some(day);
            }
            actions.insert(r.action_id.to_string(), r);
        }
        day = plus(day, every);
    }
    actions.into_values().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_folded_book_reads_as_the_full_one(
        draws in proptest::collection::vec((0u8..3, invoice_draw()), 1..14),
        every in 3i64..9,
        sweep_until in 150i64..500,
        ahead in 0i64..120,
    ) {
        let policy = &collect_testkit::book::compile(POLICY).unwrap();
        let origin = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
        let through = plus(origin, sweep_until);
        let actions = sweep_steps(&draws, origin, through, every, policy);
        let full = book_of(&draws, origin, actions);
        // Any day whose sweep looks back no further than the fold.
        let day = plus(through, ahead);
        let since = history_since(policy, day);
        for cutoff in [since, plus(since, -30), plus(origin, 200)] {
            if cutoff > since {
                continue;
            }
            let folded = fold(full.clone(), cutoff);
            assert_same(
                &reading(&full, &full, policy, day),
                &reading(&folded, &full, policy, day),
                day,
                &format!("fold before {cutoff}"),
            );
        }
    }
}
