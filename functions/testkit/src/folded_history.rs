//! The conformance cases of the folded payment history (issue 22), through
//! the ledger port alone: an adapter's sweep book leaves out a customer's
//! invoices settled wholly before the sweep's look-back, and answers every
//! customer's stats exactly as the full records do — after a crash at any
//! point of the run that folded them, and after late data on a folded
//! invoice (a corrected amount, a payment, an event), which brings the
//! invoice's truth back.

use super::Harness;
use super::book::{day, event, invoice, payment, payment_of};
use super::conformance::{DAY, World, assert_promises, the_book};
use chrono::{Days, NaiveDate};
use collect_delivery::delivery::{CrashPoint, RunError};
use collect_delivery::ledger::{Ledger, Scope};
use collect_engine::book::Book;
use collect_engine::domain::{Customer, Event, EventKind, Invoice, Payment};
use collect_engine::sweep::history_since;

/// Every record the ERP gave, so the full book can be built beside the
/// adapter's.
#[derive(Default)]
struct Records {
    customers: Vec<Customer>,
    invoices: Vec<Invoice>,
    payments: Vec<Payment>,
    events: Vec<Event>,
}

impl Records {
    fn book(&self) -> Book {
        Book::new(
            self.customers.clone(),
            self.invoices.clone(),
            self.payments.clone(),
            self.events.clone(),
            Vec::new(),
        )
    }

    async fn put<H: Harness>(&mut self, h: &H, invoices: &[Invoice], payments: &[Payment]) {
        for i in invoices {
            h.put_invoice(i).await;
            self.invoices.retain(|x| x.invoice_id != i.invoice_id);
            self.invoices.push(i.clone());
        }
        for p in payments {
            h.put_payment(p).await;
            self.payments.retain(|x| x.payment_id != p.payment_id);
            self.payments.push(p.clone());
        }
    }

    async fn put_event<H: Harness>(&mut self, h: &H, e: Event) {
        h.put_event(&e).await;
        self.events.push(e);
    }
}

/// The suite's book, and C1's history: six invoices of 2026, each paid
/// four days later than the one before (the first on its due date), the
/// second disputed and closed again.
async fn start<H: Harness>(h: &H) -> (World, Records) {
    let w = World::start(h).await;
    let (customers, invoices) = the_book();
    let mut records = Records {
        customers,
        invoices,
        ..Records::default()
    };
    let mut history = Vec::new();
    let mut paid = Vec::new();
    for k in 0..6u64 {
        let due = day("2026-07-30") + Days::new(30 * k);
        let mut i = invoice(&format!("H{}", k + 1), "C1", &due.to_string(), "120.00");
        i.issue_date = due - Days::new(30);
        paid.push(payment(&i, due + Days::new(4 * k)));
        history.push(i);
    }
    records.put(h, &history, &paid).await;
    records
        .put_event(h, event("H2", day("2026-08-20"), EventKind::DisputeOpened))
        .await;
    records
        .put_event(h, event("H2", day("2026-09-02"), EventKind::DisputeClosed))
        .await;
    (w, records)
}

/// The sweep's book of `on` answers every customer's stats as the full
/// records do; the invoices settled long ago (`gone`) are not in it.
async fn check<H: Harness>(h: &H, w: &World, records: &Records, on: NaiveDate, gone: &[&str]) {
    let who = h.name();
    let since = history_since(&w.env.policy, on);
    let book = h
        .ledger()
        .load_book(&Scope::All, on, since)
        .await
        .unwrap_or_else(|e| panic!("[{who}] the book of {on}: {e}"));
    let full = records.book();
    for c in full.customers.keys() {
        assert_eq!(
            book.customer_stats(c, on),
            full.customer_stats(c, on),
            "[{who}] {on}: the stats of {c}"
        );
    }
    for id in gone {
        assert!(
            book.invoice(id).is_none(),
            "[{who}] {on}: {id}, settled long ago, is still read"
        );
    }
    if !gone.is_empty() {
        assert!(
            book.history.contains_key("C1"),
            "[{who}] {on}: C1 has no folded history"
        );
    }
}

/// A run killed at `point` after its book folded C1's history, then the
/// same day again: the history is read as before, and every promise of the
/// protocol holds.
pub async fn a_crash_after_the_fold_changes_nothing<H: Harness>(h: &H, point: CrashPoint) {
    let (w, records) = start(h).await;
    let first = w.crash(h, day(DAY), point, 0).await;
    assert!(
        matches!(first, Err(RunError::Crashed(_)) | Ok(_)),
        "[{}] {first:?}",
        h.name()
    );
    check(h, &w, &records, day(DAY), &["H1", "H2", "H3"]).await;
    w.run(h, day(DAY)).await;
    check(h, &w, &records, day(DAY), &["H1", "H2", "H3"]).await;
    assert_promises(h, &w.mailer).await;
}

/// Late data on folded invoices: a corrected amount and a payment that
/// settles it later, then an event dated after the look-back. Each counts
/// from the next sweep on, exactly as in the full records.
pub async fn late_data_on_a_folded_invoice_counts<H: Harness>(h: &H) {
    let (w, mut records) = start(h).await;
    let today = day(DAY);
    w.run(h, today).await;
    check(h, &w, &records, today, &["H1", "H2", "H3"]).await;
    // H1 was 130.00, not 120.00: the rest was paid late, in September.
    let mut h1 = records
        .invoices
        .iter()
        .find(|i| i.invoice_id == "H1")
        .cloned()
        .unwrap();
    h1.amount = "130.00".parse().unwrap();
    let rest = payment_of("H1", day("2026-09-15"), "10.00");
    records.put(h, &[h1], &[rest]).await;
    let next = today + Days::new(1);
    check(h, &w, &records, next, &["H1", "H2", "H3"]).await;
    w.run(h, next).await;
    check(h, &w, &records, next, &["H1", "H2", "H3"]).await;
    // A dispute of H2 reopened today: it is read again, for good.
    records
        .put_event(h, event("H2", next, EventKind::DisputeOpened))
        .await;
    check(h, &w, &records, next, &["H1", "H3"]).await;
    let book = h
        .ledger()
        .load_book(&Scope::All, next, history_since(&w.env.policy, next))
        .await
        .unwrap_or_else(|e| panic!("[{}] {e}", h.name()));
    assert!(book.invoice("H2").is_some(), "[{}] H2 is read", h.name());
    let later = next + Days::new(1);
    w.run(h, later).await;
    check(h, &w, &records, later, &["H1", "H3"]).await;
    assert_promises(h, &w.mailer).await;
}

/// Every case, each on a fresh harness.
pub async fn run_all<H: Harness, F, Fut>(make: &F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = H>,
{
    for point in [
        CrashPoint::AfterMessagesRecorded,
        CrashPoint::AfterMarkedSent,
    ] {
        a_crash_after_the_fold_changes_nothing(&make().await, point).await;
    }
    late_data_on_a_folded_invoice_counts(&make().await).await;
}
