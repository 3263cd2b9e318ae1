//! A sweep planned part by part (whole customers at a time) is the sweep of
//! the whole book.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use collect_engine::book::Book;
use collect_engine::domain::{Customer, Invoice};
use collect_engine::sweep::{Planner, PriorLateRate, SweepOptions, SweepPlan, plan_sweep};

fn parts_book() -> Book {
    use collect_testkit::book::{customer, invoice};
    let customers: Vec<Customer> = (0..7).map(|c| customer(&format!("C{c}"))).collect();
    // Customers with 1 to 4 invoices, due over a month before and after
    // the sweep day: a backlog of steps, some due today.
    let mut invoices = Vec::new();
    for c in 0..7 {
        for k in 0..=(c % 4) {
            let due = collect_testkit::book::day("2027-02-01")
                + chrono::Duration::days(i64::from(c * 9 + k * 5));
            invoices.push(invoice(
                &format!("I{c}-{k}"),
                &format!("C{c}"),
                &due.to_string(),
                "1200.00",
            ));
        }
    }
    Book::new(customers, invoices, Vec::new(), Vec::new(), Vec::new())
}

#[test]
fn a_sweep_planned_part_by_part_is_the_sweep_of_the_whole_book() {
    let book = parts_book();
    let policy = collect_testkit::book::compile(collect_testkit::book::POLICY).unwrap();
    let day = collect_testkit::book::day("2027-03-02");
    let opts = SweepOptions::default();
    let whole = plan_sweep(&book, &policy, &PriorLateRate, day, &opts);
    assert!(whole.record_count() > 10, "the book makes records");
    assert_eq!(whole.record_count(), whole.records.len());
    assert!(whole.records_complete());
    let planner = Planner::new(&policy, &PriorLateRate, day, &opts);
    for size in [1, 2, 3, 5, 100] {
        let parts: Vec<&[Invoice]> = Planner::parts(&book, size).collect();
        // Whole customers, in order, every invoice once.
        assert_eq!(parts.concat(), book.invoices, "size {size}");
        for w in parts.windows(2) {
            assert_ne!(
                w[0].last().map(|i| &i.customer_id),
                w[1].first().map(|i| &i.customer_id),
                "a customer cut in two at size {size}"
            );
        }
        let mut kept = planner.empty();
        let mut counted = planner.empty();
        for part in parts {
            let mut p = planner.empty();
            planner.plan(&book, part, &mut p);
            kept.absorb(p.clone(), usize::MAX);
            counted.absorb(p, 3);
        }
        let json = |p: &SweepPlan| serde_json::to_value(p).unwrap();
        assert_eq!(json(&kept), json(&whole), "size {size}");
        // Beyond the limit, only the counts are kept; they are the same.
        assert!(counted.records.is_empty() && !counted.records_complete());
        assert_eq!(counted.tally.by_status, whole.tally.by_status);
        assert_eq!(counted.tally.call_tasks, whole.tally.call_tasks);
        assert_eq!(counted.record_count(), whole.record_count());
        assert_eq!(counted.messages, whole.messages);
    }
}
