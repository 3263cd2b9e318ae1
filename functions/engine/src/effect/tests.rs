#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Every figure of the report pinned on a small book worked out by hand.
//!
//! The book (USD unless said; the period is March 2027, 30 days; the report's
//! day is 2027-03-30; 2027-03-01 is a Monday):
//!
//! | invoice | customer | issued     | due        | amount | paid                         |
//! |---------|----------|------------|------------|--------|------------------------------|
//! | I0      | C0       | 2027-02-01 | 2027-03-03 | 1000   | 1000 on 03-08                |
//! | I1      | C1       | 2027-03-02 | 2027-04-01 | 2000   | 500 on 03-20 (partial)       |
//! | I2      | C2       | 2027-03-05 | 2027-03-20 | 400    | —                            |
//! | I3      | C3       | 2027-01-10 | 2027-01-25 | 600    | —                            |
//! | I4      | C4       | 2027-03-10 | 2027-03-25 | 1000   | 1000 on 03-24                |
//! | I5      | C6       | 2027-03-03 | 2027-04-02 | 999    | — (EUR: left out of KPIs)    |
//! | I6      | C6       | 2026-11-01 | 2026-12-01 | 300    | —                            |
//! | I7      | C5       | 2027-03-01 | 2027-03-16 | 800    | 800 on 03-16                 |
//!
//! Actions (policy `p`):
//! - A1: I0, `email urgent-notice`, standard, due, sent 03-03 in message m1;
//! - A3: I2, `email friendly-reminder`, standard, due − 3d, sent 03-17,
//!   experiment `pre-due-tone` arm `email friendly-reminder`;
//! - A4: I4, `email friendly-reminder-short`, standard, due − 3d, sent 03-22,
//!   arm `email friendly-reminder-short`;
//! - A5: I1, `email friendly-reminder`, standard, due − 3d, sent 03-29, arm
//!   `email friendly-reminder`;
//! - A6: I3, `call collections`, high_risk, due + 30d, made 03-02;
//! - A7: I7, withheld: C5 is in the control group (experiment
//!   `control-group`, arm `control`), due − 3d, recorded 03-12.
//!
//! Events: a promise on I3 made 03-04 for 03-15 (broken); m1 opened and
//! clicked on 03-04 (by message id); A3 opened on 03-18 (by action id); an
//! open for an unknown message on 03-05.

use super::*;
use crate::domain::{
    ActionRecord, ActionStatus, Channel, Customer, Event, EventKind, Invoice, Payment,
};
use rust_decimal::Decimal;

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn customer(id: &str) -> Customer {
    Customer {
        customer_id: id.to_string(),
        name: id.to_string(),
        email: format!("{id}@example.com"),
        phone: None,
        language: "en".to_string(),
        timezone: "UTC".to_string(),
        country: None,
        industry: None,
        annual_revenue: None,
        credit_score: None,
        credit_limit: None,
        tags: vec![],
        do_not_contact: false,
        address: Default::default(),
    }
}

fn invoice(id: &str, customer: &str, issued: &str, due: &str, amount: i64, cur: &str) -> Invoice {
    Invoice {
        invoice_id: id.to_string(),
        customer_id: customer.to_string(),
        number: id.to_string(),
        issue_date: d(issued),
        due_date: d(due),
        amount: Decimal::from(amount),
        currency: cur.to_string(),
        disputed: false,
        dispute_opened_on: None,
    }
}

fn payment(id: &str, invoice: &str, on: &str, amount: i64) -> Payment {
    Payment {
        payment_id: id.to_string(),
        invoice_id: invoice.to_string(),
        paid_on: d(on),
        amount: Decimal::from(amount),
    }
}

#[allow(clippy::too_many_arguments)]
fn action(
    id: &str,
    invoice: &str,
    customer: &str,
    label: &str,
    segment: &str,
    offset: i64,
    day: &str,
    arm: Option<(&str, &str)>,
) -> ActionRecord {
    let (channel, target) = label.split_once(' ').unwrap();
    ActionRecord {
        action_id: id.into(),
        invoice_id: invoice.into(),
        customer_id: customer.into(),
        decided_on: d(day),
        scheduled_for: d(day),
        status: ActionStatus::Sent,
        channel: Channel::parse(channel).unwrap(),
        label: label.to_string(),
        target: target.to_string(),
        step_offset: offset,
        requires_approval: false,
        policy_name: "p".to_string(),
        policy_revision: "r".to_string(),
        git_revision: None,
        bundle_revision: None,
        rule: "p.policy:1".to_string(),
        segment: segment.to_string(),
        experiment: arm.map(|(e, _)| e.into()),
        arm: arm.map(|(_, a)| a.into()),
        risk: None,
        scorer: "s".to_string(),
        scorer_version: "1".to_string(),
        note: None,
        message_id: Some(format!("msg-{id}").into()),
        decided_by: None,
        decided_at: None,
        sent_on: Some(d(day)),
    }
}

fn event(id: &str, on: &str, kind: EventKind) -> Event {
    Event {
        event_id: id.to_string(),
        date: d(on),
        kind,
        invoice_id: None,
        action_id: None,
        message_id: None,
        by: None,
        reason: None,
    }
}

const TONE: &str = "pre-due-tone";
const FULL: &str = "email friendly-reminder";
const SHORT: &str = "email friendly-reminder-short";

fn book() -> Book {
    let customers = ["C0", "C1", "C2", "C3", "C4", "C5", "C6"]
        .map(customer)
        .to_vec();
    let invoices = vec![
        invoice("I0", "C0", "2027-02-01", "2027-03-03", 1000, "USD"),
        invoice("I1", "C1", "2027-03-02", "2027-04-01", 2000, "USD"),
        invoice("I2", "C2", "2027-03-05", "2027-03-20", 400, "USD"),
        invoice("I3", "C3", "2027-01-10", "2027-01-25", 600, "USD"),
        invoice("I4", "C4", "2027-03-10", "2027-03-25", 1000, "USD"),
        invoice("I5", "C6", "2027-03-03", "2027-04-02", 999, "EUR"),
        invoice("I6", "C6", "2026-11-01", "2026-12-01", 300, "USD"),
        invoice("I7", "C5", "2027-03-01", "2027-03-16", 800, "USD"),
    ];
    let payments = vec![
        payment("P0", "I0", "2027-03-08", 1000),
        payment("P1", "I1", "2027-03-20", 500),
        payment("P4", "I4", "2027-03-24", 1000),
        payment("P7", "I7", "2027-03-16", 800),
    ];
    let mut a1 = action(
        "A1",
        "I0",
        "C0",
        "email urgent-notice",
        "standard",
        0,
        "2027-03-03",
        None,
    );
    a1.message_id = Some("m1".into());
    let a6 = action(
        "A6",
        "I3",
        "C3",
        "call collections",
        "high_risk",
        30,
        "2027-03-02",
        None,
    );
    let mut a7 = action(
        "A7",
        "I7",
        "C5",
        "email friendly-reminder",
        "standard",
        -3,
        "2027-03-12",
        Some((CONTROL_GROUP, "control")),
    );
    a7.status = ActionStatus::Skipped;
    a7.sent_on = None;
    a7.message_id = None;
    let actions = vec![
        a1,
        action(
            "A3",
            "I2",
            "C2",
            FULL,
            "standard",
            -3,
            "2027-03-17",
            Some((TONE, FULL)),
        ),
        action(
            "A4",
            "I4",
            "C4",
            SHORT,
            "standard",
            -3,
            "2027-03-22",
            Some((TONE, SHORT)),
        ),
        action(
            "A5",
            "I1",
            "C1",
            FULL,
            "standard",
            -3,
            "2027-03-29",
            Some((TONE, FULL)),
        ),
        a6,
        a7,
    ];
    let mut promise = event(
        "E1",
        "2027-03-04",
        EventKind::PromiseToPay {
            promised_until: d("2027-03-15"),
        },
    );
    promise.invoice_id = Some("I3".to_string());
    let mut opened_m1 = event("E2", "2027-03-04", EventKind::MailOpened);
    opened_m1.message_id = Some("m1".into());
    let mut clicked_m1 = event("E3", "2027-03-04", EventKind::MailClicked);
    clicked_m1.message_id = Some("m1".into());
    let mut opened_a3 = event("E4", "2027-03-18", EventKind::MailOpened);
    opened_a3.action_id = Some("A3".to_string());
    let mut unknown = event("E5", "2027-03-05", EventKind::MailOpened);
    unknown.message_id = Some("msg-unknown".into());
    Book::new(
        customers,
        invoices,
        payments,
        vec![promise, opened_m1, clicked_m1, opened_a3, unknown],
        actions,
    )
}

fn march() -> EffectReport {
    let period = Period {
        from: d("2027-03-01"),
        to: d("2027-03-30"),
    };
    report(&book(), period, d("2027-03-30"), &Options::default())
}

fn close(actual: Option<f64>, expected: f64) {
    let a = actual.unwrap_or_else(|| panic!("missing; expected {expected}"));
    assert!((a - expected).abs() < 1e-6, "{a} vs {expected}");
}

fn money(x: i64) -> Decimal {
    Decimal::from(x)
}

#[test]
fn the_receivables_kpis_match_the_hand_computation() {
    let r = march();
    assert_eq!(r.currency, "USD");
    assert_eq!(r.other_currencies.get("EUR"), Some(&1));
    assert_eq!(r.period.days, 30);
    let rec = &r.receivables;
    // Beginning (end of 02-28): I0 1000 + I3 600 + I6 300 = 1900.
    assert_eq!(rec.beginning, money(1900));
    // Invoiced in March: I1 2000 + I2 400 + I4 1000 + I7 800 = 4200.
    assert_eq!(rec.invoiced, money(4200));
    // Collected in March: 1000 + 500 + 1000 + 800 = 3300.
    assert_eq!(rec.collected, money(3300));
    // Ending (03-30): I1 1500 (due 04-01: current) + I2 400 + I3 600 + I6
    // 300 (past due) = 2800; check: 1900 + 4200 − 3300 = 2800.
    assert_eq!(rec.ending, money(2800));
    assert_eq!(rec.ending_current, money(1500));
    assert_eq!(rec.ending_past_due, money(1300));
    // Past-due share = 1300 / 2800 = 0.464286.
    close(r.past_due_share, 1300.0 / 2800.0);
    // DSO = 2800 / 4200 × 30 = 20.0 days.
    close(r.dso, 20.0);
    // Best possible DSO = 1500 / 4200 × 30 = 10.714286.
    close(r.best_possible_dso, 1500.0 / 4200.0 * 30.0);
    // ADD = DSO − BPDSO = 20 − 10.714286 = 9.285714 (= 1300 / 4200 × 30).
    close(r.add, 9.285_714_285_714);
    // CEI = (1900 + 4200 − 2800) / (1900 + 4200 − 1500) = 3300 / 4600 = 0.717391.
    close(r.cei, 3300.0 / 4600.0);
}

#[test]
fn aging_buckets_over_time_match_the_hand_computation() {
    let r = march();
    let days: Vec<String> = r.aging.iter().map(|a| a.date.to_string()).collect();
    // Weekly from 03-01, then the period's last day.
    assert_eq!(
        days,
        [
            "2027-03-01",
            "2027-03-08",
            "2027-03-15",
            "2027-03-22",
            "2027-03-29",
            "2027-03-30"
        ]
    );
    let row = |i: usize| -> [Decimal; 6] {
        let a = &r.aging[i];
        [a.current, a.d1_30, a.d31_60, a.d61_90, a.d90_plus, a.total]
    };
    // 03-01: I0 current (due 03-03) 1000, I7 current 800; I3 35 days → 31–60
    // 600; I6 90 days (Dec 31 + Jan 31 + Feb 28) → 61–90 300. Total 2700.
    assert_eq!(row(0), [1800, 0, 600, 300, 0, 2700].map(money));
    close(r.aging[0].past_due_share, 900.0 / 2700.0);
    // 03-08: I0 paid that day; I1 2000 + I2 400 + I7 800 current; I3 42
    // days 600; I6 97 days → 90+ 300. Total 4100.
    assert_eq!(row(1), [3200, 0, 600, 0, 300, 4100].map(money));
    // 03-22: I1 1500 (500 paid 03-20) + I4 1000 current; I2 2 days 400; I3
    // 56 days 600; I6 300; I7 paid 03-16. Total 3800.
    assert_eq!(row(3), [2500, 400, 600, 0, 300, 3800].map(money));
    // 03-30: I1 1500 current; I2 10 days 400; I3 64 days → 61–90 600; I6 300.
    assert_eq!(row(5), [1500, 400, 0, 600, 300, 2800].map(money));
    assert_eq!(r.aging[5].open_invoices, 4);
}

#[test]
fn pay_and_response_rates_match_the_hand_computation() {
    let r = march();
    let email = r.by_channel.iter().find(|m| m.key == "email").unwrap();
    // Emails A1, A3, A4, A5 (the withheld A7 is no email sent).
    assert_eq!((email.actions, email.emails), (4, 4));
    // Opened: A1 (its message m1) and A3 (by action id) → 2 / 4; clicked:
    // A1 → 1 / 4; replied: none.
    close(email.open_rate, 0.5);
    close(email.click_rate, 0.25);
    close(email.reply_rate, 0.0);
    // 3-day window ended by 03-30 for A1 (03-03), A3 (03-17), A4 (03-22);
    // not A5 (03-29). Paid within 3 days by a payment matched to it: A4
    // (03-24, 2 days); A1's payment came after 5 days → 1 / 3.
    assert_eq!((email.known_3d, email.paid_3d), (3, 1));
    close(email.pay_rate_3d, 1.0 / 3.0);
    // 7 days: A1, A3, A4 known (A4: 03-29 ≤ 03-30); A1 (5 days) and A4
    // paid → 2 / 3.
    assert_eq!((email.known_7d, email.paid_7d), (3, 2));
    close(email.pay_rate_7d, 2.0 / 3.0);
    // Wilson, n = 3, p = 2/3, z² = 3.841459: centre = (0.666667 + 0.640243)
    // / 2.280486 = 0.573080; half = 1.959964 / 2.280486 × √(0.074074 +
    // 0.106708) = 0.365420 → 0.207660 to 0.938508.
    close(email.pay_rate_7d_ci_low, 0.207_659_600_802);
    close(email.pay_rate_7d_ci_high, 0.938_508_055_280);
    // 14 days: only A1 (03-17 ≤ 03-30) is known, and it paid → 1 / 1.
    assert_eq!((email.known_14d, email.paid_14d), (1, 1));
    close(email.pay_rate_14d, 1.0);
    // Days to payment: A1 5 (03-03 → 03-08), A4 2 (03-22 → 03-24) → 3.5;
    // days past due at payment: A1 +5 (due 03-03), A4 −1 (due 03-25) → 2.0.
    close(email.avg_days_to_payment, 3.5);
    close(email.avg_days_past_due_at_payment, 2.0);

    let call = r.by_channel.iter().find(|m| m.key == "call").unwrap();
    // A6: no payment; the promise made after it (03-04, for 03-15) is broken.
    assert_eq!(call.actions, 1);
    close(call.pay_rate_7d, 0.0);
    assert_eq!(
        (call.promises, call.promises_kept, call.promises_broken),
        (1, 0, 1)
    );
    assert_eq!(call.emails, 0);
    assert_eq!(call.open_rate, None);

    // By step: `standard due - 3d` = A3, A4, A5; 7 days known for A3 and
    // A4, A4 paid → 1 / 2.
    let keys: Vec<&str> = r.by_step.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(
        keys,
        ["high_risk due + 30d", "standard due - 3d", "standard due"]
    );
    let pre = &r.by_step[1];
    assert_eq!((pre.actions, pre.known_7d, pre.paid_7d), (3, 2, 1));
    close(pre.pay_rate_7d, 0.5);
    let segments: Vec<(&str, u32)> = r
        .by_segment
        .iter()
        .map(|m| (m.key.as_str(), m.actions))
        .collect();
    assert_eq!(segments, [("high_risk", 1), ("standard", 4)]);
    // By template (label): friendly-reminder = A3, A5 → 7 days known for
    // A3 only, unpaid → 0 / 1.
    let full = r.by_template.iter().find(|m| m.key == FULL).unwrap();
    assert_eq!((full.actions, full.known_7d, full.paid_7d), (2, 1, 0));
    // By arm: the control arm's withheld step counts there, and I7's
    // payment on 03-16 (4 days after it) is matched to it → 1 / 1.
    let control = r
        .by_arm
        .iter()
        .find(|m| m.key == "control-group: control")
        .unwrap();
    assert_eq!(
        (control.actions, control.withheld, control.paid_7d),
        (1, 1, 1)
    );
    // By offset.
    let offsets: Vec<&str> = r.by_offset.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(offsets, ["due - 3d", "due", "due + 30d"]);
}

#[test]
fn attribution_matches_payments_by_invoice_and_mail_by_id() {
    let r = march();
    let a = &r.attribution;
    // March payments: P0 (after A1), P4 (after A4), P7 (after the withheld
    // A7) are matched; P1 (03-20) came before I1's only action (03-29).
    assert_eq!(
        (a.payments, a.payments_matched, a.payments_before_any_action),
        (4, 3, 1)
    );
    // Mail: two for m1, one for A3, one for a message the book never sent.
    assert_eq!(
        (
            a.mail_events,
            a.mail_events_matched,
            a.mail_events_unmatched
        ),
        (4, 3, 1)
    );
}

#[test]
fn timing_groups_by_day_from_due_and_weekday() {
    let r = march();
    let keys: Vec<(&str, u32)> = r
        .timing
        .by_days_from_due
        .iter()
        .map(|t| (t.key.as_str(), t.actions))
        .collect();
    // A3, A4, A5 at −3; A1 at 0; A6 on 03-02 for a 01-25 due date: +36.
    assert_eq!(keys, [("-3", 3), ("0", 1), ("+36", 1)]);
    let weekdays: Vec<(&str, u32)> = r
        .timing
        .by_weekday
        .iter()
        .map(|t| (t.key.as_str(), t.actions))
        .collect();
    // 03-02 Tue (A6), 03-03 Wed (A1), 03-17 Wed (A3), 03-22 Mon (A4), 03-29 Mon (A5).
    assert_eq!(weekdays, [("Monday", 2), ("Tuesday", 1), ("Wednesday", 2)]);
}

#[test]
fn experiments_match_the_hand_computation() {
    let r = march();
    let names: Vec<&str> = r
        .experiments
        .iter()
        .map(|e| e.experiment.as_str())
        .collect();
    assert_eq!(names, [CONTROL_GROUP, TONE]);

    // pre-due-tone: A3 (I2, due 03-20, unpaid → 0), A4 (I4, paid 03-24 by
    // its due date 03-25 → 1), A5 (I1, due 04-01 after the report's day →
    // pending). Reference: the first arm by name, `email friendly-reminder`.
    let tone = &r.experiments[1];
    assert_eq!(tone.comparison.reference, FULL);
    let full = &tone.comparison.arms[0];
    let short = &tone.comparison.arms[1];
    assert_eq!(
        (full.arm.as_str(), full.n, full.paid, full.pending),
        (FULL, 1, 0, 1)
    );
    assert_eq!((short.arm.as_str(), short.n, short.paid), (SHORT, 1, 1));
    // Wilson 0/1: centre = 1.920729 / 4.841459 = 0.396725 = half → 0 to 0.793451.
    close(full.ci_low, 0.0);
    close(full.ci_high, 0.793_450_685_623);
    // Wilson 1/1: 1 − 0.793451 = 0.206549 to 1.
    close(short.ci_low, 0.206_549_314_377);
    close(short.ci_high, 1.0);
    // Uplift = 1 − 0 = +1.0; Newcombe: 1 − √((1 − 0.206549)² + (0.793451 −
    // 0)²) = 1 − 1.122109 = −0.122109; 1 + √(0² + 0²) = 1.
    close(short.uplift, 1.0);
    close(short.uplift_ci_low, -0.122_108_720_682);
    close(short.uplift_ci_high, 1.0);
    // One customer per arm: too few to judge, whatever the interval says.
    assert_eq!(short.significant, None);
    assert!(!short.enough_customers);
    assert!(!short.enough_data);
    assert_eq!(tone.comparison.winner, None);
    assert!(
        tone.comparison
            .verdict
            .contains("1 customer(s) with a known outcome; at least 30 per arm are needed"),
        "{}",
        tone.comparison.verdict
    );

    // control-group: control = A7 (I7 paid 03-16 by its due date 03-16 →
    // 1 / 1); treatment = the other customers' pre-due steps: I2 (0), I4
    // (1), I1 (pending) → 1 / 2.
    let cg = &r.experiments[0];
    assert_eq!(cg.comparison.reference, "control");
    let control = &cg.comparison.arms[0];
    let treatment = &cg.comparison.arms[1];
    assert_eq!((control.n, control.paid), (1, 1));
    assert_eq!(
        (
            treatment.arm.as_str(),
            treatment.n,
            treatment.paid,
            treatment.pending
        ),
        ("treatment", 2, 1, 1)
    );
    // Wilson 1/2: centre 0.5, half = 1.959964 / 2.920729 × √(0.125 +
    // 0.240091) = 0.405469 → 0.094531 to 0.905469.
    close(treatment.ci_low, 0.094_531_205_734);
    close(treatment.ci_high, 0.905_468_794_266);
    close(treatment.design_effect, 1.0);
    // Uplift = 0.5 − 1 = −0.5; Newcombe: −0.5 − √((0.5 − 0.094531)² + (1 −
    // 1)²) = −0.905469; −0.5 + √((0.905469 − 0.5)² + (1 − 0.206549)²) =
    // −0.5 + 0.891049 = 0.391049.
    close(treatment.uplift, -0.5);
    close(treatment.uplift_ci_low, -0.905_468_794_266);
    close(treatment.uplift_ci_high, 0.391_049_344_110);
    assert_eq!(treatment.significant, None);
    assert_eq!(cg.segments.len(), 1);
    assert_eq!(cg.segments[0].segment, "standard");
}

#[test]
fn a_clear_difference_with_enough_data_is_called() {
    // 120 customers per arm, one invoice each, the due date on 03-20 and a
    // reminder on 03-17: arm B pays 90 of 120 in time, arm A 60 of 120.
    let mut customers = Vec::new();
    let mut invoices = Vec::new();
    let mut payments = Vec::new();
    let mut actions = Vec::new();
    for i in 0..240 {
        let c = format!("K{i:03}");
        let inv = format!("J{i:03}");
        let arm = if i < 120 { "a" } else { "b" };
        let pays = if i < 120 { i < 60 } else { i < 210 };
        customers.push(customer(&c));
        invoices.push(invoice(&inv, &c, "2027-03-01", "2027-03-20", 100, "USD"));
        if pays {
            payments.push(payment(&format!("P{i}"), &inv, "2027-03-19", 100));
        }
        actions.push(action(
            &format!("A{i}"),
            &inv,
            &c,
            FULL,
            "standard",
            -3,
            "2027-03-17",
            Some(("x", arm)),
        ));
    }
    let book = Book::new(customers, invoices, payments, vec![], actions);
    let period = Period {
        from: d("2027-03-01"),
        to: d("2027-03-30"),
    };
    let r = report(&book, period, d("2027-03-30"), &Options::default());
    let x = &r.experiments[0];
    let b = &x.comparison.arms[1];
    // 0.75 − 0.5 = +25 points; each arm has 120 ≥ 100 invoices.
    close(b.uplift, 0.25);
    assert_eq!(b.significant, Some(true));
    assert!(b.enough_data);
    assert_eq!(x.comparison.winner.as_deref(), Some("b"));
    assert!(x.comparison.verdict.starts_with("b wins x"));
}

/// A null effect with one control customer: the control group is one
/// customer whose six invoices all went unpaid, against 60 treated
/// customers of whom half paid. With invoices counted as independent the
/// uplift's interval leaves out zero (+50 points, roughly +9 to +63); but
/// one customer is one observation, so nothing may be called significant.
#[test]
fn one_control_customer_never_makes_a_difference_significant() {
    let mut customers = vec![customer("ONE")];
    let mut invoices = Vec::new();
    let mut payments = Vec::new();
    let mut actions = Vec::new();
    for i in 0..6 {
        let inv = format!("CTL{i}");
        invoices.push(invoice(&inv, "ONE", "2027-03-01", "2027-03-20", 100, "USD"));
        let mut a = action(
            &format!("W{i}"),
            &inv,
            "ONE",
            FULL,
            "strategic",
            -3,
            "2027-03-17",
            Some((CONTROL_GROUP, "control")),
        );
        a.status = ActionStatus::Skipped;
        a.sent_on = None;
        actions.push(a);
    }
    for i in 0..60 {
        let c = format!("T{i:02}");
        let inv = format!("TI{i:02}");
        customers.push(customer(&c));
        invoices.push(invoice(&inv, &c, "2027-03-01", "2027-03-20", 100, "USD"));
        if i % 2 == 0 {
            payments.push(payment(&format!("TP{i}"), &inv, "2027-03-19", 100));
        }
        actions.push(action(
            &format!("S{i}"),
            &inv,
            &c,
            FULL,
            "strategic",
            -3,
            "2027-03-17",
            None,
        ));
    }
    let book = Book::new(customers, invoices, payments, vec![], actions);
    let period = Period {
        from: d("2027-03-01"),
        to: d("2027-03-30"),
    };
    let r = report(&book, period, d("2027-03-30"), &Options::default());
    let cg = r
        .experiments
        .iter()
        .find(|x| x.experiment == CONTROL_GROUP)
        .unwrap();
    let control = &cg.comparison.arms[0];
    let treatment = &cg.comparison.arms[1];
    assert_eq!((control.n, control.customers, control.paid), (6, 1, 0));
    assert_eq!(
        (treatment.n, treatment.customers, treatment.paid),
        (60, 60, 30)
    );
    // The interval alone would call it: it leaves out zero.
    assert!(treatment.uplift_ci_low.unwrap() > 0.0);
    assert_eq!(treatment.significant, None);
    assert!(!treatment.enough_customers);
    assert!(
        treatment.statement.contains("too few customers to judge")
            && !treatment.statement.contains("significant"),
        "{}",
        treatment.statement
    );
    assert_eq!(cg.comparison.winner, None);
    assert!(
        cg.comparison
            .verdict
            .starts_with("Nothing can be concluded")
            && !cg.comparison.verdict.contains("significant"),
        "{}",
        cg.comparison.verdict
    );
    for s in &cg.segments {
        assert!(
            s.comparison
                .arms
                .iter()
                .all(|a| a.significant != Some(true))
        );
    }
    assert_eq!(cg.min_customers_per_arm, 30);
}

// ------------------------------------------------ recovery rate

#[test]
fn march_recovers_what_was_paid_on_the_invoices_due_in_march() {
    let r = march();
    // Due in March (USD): I0 1000, I2 400, I4 1000, I7 800 = 3200; paid
    // on them by 03-30: 1000 + 1000 + 800 = 2800 (I2 unpaid).
    let t = &r.recovery.total;
    assert_eq!(t.key, "all");
    assert_eq!(t.invoices, 4);
    assert_eq!(t.due, money(3200));
    assert_eq!(t.collected, money(2800));
    close(t.recovery_rate, 2800.0 / 3200.0);
    assert_eq!((t.written_off, t.placed_with_agency), (0, 0));
    let keys: Vec<&str> = r.recovery.by_month.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(keys, ["2027-03"]);
    let keys: Vec<&str> = r
        .recovery
        .by_segment
        .iter()
        .map(|m| m.key.as_str())
        .collect();
    assert_eq!(keys, ["standard"]);
}

/// | invoice | due        | amount | paid (by 05-15)            | end of the ladder                      | segment   |
/// |---------|------------|--------|----------------------------|----------------------------------------|-----------|
/// | R1      | 2027-03-10 | 1000   | 400 on 03-20, 200 on 04-01 | written off 04-15 (the balance: 400)   | high_risk |
/// | R2      | 2027-03-20 | 500    | 300 on 05-01 (the agency)  | placed with an agency 04-10 (500)      | standard  |
/// | R3      | 2027-04-05 | 2000   | 2500 on 04-04 (overpaid)   | —                                      | no step   |
/// | R4      | 2027-04-20 | 800    | —                          | 200 written off 04-25, kept 04-28      | standard  |
/// | R5      | 2027-05-02 | 900    | —                          | written off 05-10 (due after the period) | —       |
fn recovery_book() -> Book {
    let invoices = vec![
        invoice("R1", "C1", "2027-02-08", "2027-03-10", 1000, "USD"),
        invoice("R2", "C2", "2027-02-18", "2027-03-20", 500, "USD"),
        invoice("R3", "C3", "2027-03-06", "2027-04-05", 2000, "USD"),
        invoice("R4", "C4", "2027-03-21", "2027-04-20", 800, "USD"),
        invoice("R5", "C5", "2027-04-02", "2027-05-02", 900, "USD"),
    ];
    let payments = vec![
        payment("P1a", "R1", "2027-03-20", 400),
        payment("P1b", "R1", "2027-04-01", 200),
        payment("P2", "R2", "2027-05-01", 300),
        payment("P3", "R3", "2027-04-04", 2500),
    ];
    let on = |id: &str, inv: &str, day: &str, kind: EventKind| Event {
        invoice_id: Some(inv.to_string()),
        by: Some("ana@example.com".to_string()),
        reason: Some("end of the ladder".to_string()),
        ..event(id, day, kind)
    };
    let events = vec![
        on(
            "W1",
            "R1",
            "2027-04-15",
            EventKind::WrittenOff { amount: None },
        ),
        on(
            "G2",
            "R2",
            "2027-04-10",
            EventKind::PlacedWithAgency {
                agency: "Acme Recovery".to_string(),
            },
        ),
        on(
            "W4",
            "R4",
            "2027-04-25",
            EventKind::WrittenOff {
                amount: Some(money(200)),
            },
        ),
        on("K4", "R4", "2027-04-28", EventKind::KeptWorking),
        on(
            "W5",
            "R5",
            "2027-05-10",
            EventKind::WrittenOff { amount: None },
        ),
    ];
    let actions = vec![
        action(
            "S1",
            "R1",
            "C1",
            "email urgent-notice",
            "standard",
            0,
            "2027-03-10",
            None,
        ),
        action(
            "H1",
            "R1",
            "C1",
            "email firm-notice",
            "high_risk",
            5,
            "2027-03-15",
            None,
        ),
        action(
            "S2",
            "R2",
            "C2",
            "call collections",
            "standard",
            15,
            "2027-04-05",
            None,
        ),
        action(
            "S4",
            "R4",
            "C4",
            "email urgent-notice",
            "standard",
            0,
            "2027-04-20",
            None,
        ),
    ];
    Book::new(
        ["C1", "C2", "C3", "C4", "C5"].map(customer).to_vec(),
        invoices,
        payments,
        events,
        actions,
    )
}

#[test]
fn recovery_counts_partial_payments_write_offs_and_agencies_by_segment_and_month() {
    let book = recovery_book();
    let period = Period {
        from: d("2027-03-01"),
        to: d("2027-04-30"),
    };
    let r = report(&book, period, d("2027-05-15"), &Options::default()).recovery;
    let row = |key: &str,
               invoices: u32,
               due: i64,
               collected: i64,
               off: (u32, i64),
               agency: (u32, i64)| RecoveryRow {
        key: key.to_string(),
        invoices,
        due: money(due),
        collected: money(collected),
        recovery_rate: Some(collected as f64 / due as f64),
        written_off: off.0,
        written_off_amount: money(off.1),
        placed_with_agency: agency.0,
        placed_with_agency_amount: money(agency.1),
    };
    let rounded = |mut r: RecoveryRow| {
        r.recovery_rate = r.recovery_rate.map(|x| (x * 1e9).round() / 1e9);
        r
    };
    let same = |got: &[RecoveryRow], want: Vec<RecoveryRow>| {
        let got: Vec<RecoveryRow> = got.iter().cloned().map(rounded).collect();
        let want: Vec<RecoveryRow> = want.into_iter().map(rounded).collect();
        assert_eq!(got, want);
    };
    // R1 600 (partly paid, the rest written off), R2 300 (collected by
    // the agency after placement), R3 2000 (overpaid: counted up to its
    // amount), R4 0 (the write-off undone by keeping it worked); R5 is
    // due after the period.
    same(
        std::slice::from_ref(&r.total),
        vec![row("all", 4, 4300, 2900, (1, 400), (1, 500))],
    );
    same(
        &r.by_month,
        vec![
            row("2027-03", 2, 1500, 900, (1, 400), (1, 500)),
            row("2027-04", 2, 2800, 2000, (0, 0), (0, 0)),
        ],
    );
    same(
        &r.by_segment,
        vec![
            row("high_risk", 1, 1000, 600, (1, 400), (0, 0)),
            row("no step", 1, 2000, 2000, (0, 0), (0, 0)),
            row("standard", 2, 1300, 300, (0, 0), (1, 500)),
        ],
    );
    // Known only up to the report's day: on 04-12 R1 is not written off
    // yet and R2's agency has collected nothing.
    let early = report(&book, period, d("2027-04-12"), &Options::default()).recovery;
    assert_eq!(early.total.collected, money(2600));
    assert_eq!(early.total.written_off, 0);
    assert_eq!(early.total.placed_with_agency, 1);
    // Nothing due: the rate is unknown, not zero.
    let none = report(
        &book,
        Period {
            from: d("2027-06-01"),
            to: d("2027-06-30"),
        },
        d("2027-07-01"),
        &Options::default(),
    )
    .recovery;
    assert_eq!(none.total.recovery_rate, None);
    assert!(none.by_month.is_empty() && none.by_segment.is_empty());
}
