//! A synthetic book written as the ERP's exports (`customers.csv`,
//! `invoices.csv`, `payments.csv` of the data contract), for `collect
//! synth`: the policy repository's CI diffs policies on it, where no
//! customer data may go.
//!
//! It is the test kit's seeded generator ([`collect_generator`], the one
//! the demo and the benchmarks use), so the book has what policies decide
//! on: tags (`strategic`, `key-account`, `wholesale`), languages (`en`,
//! `de`), countries, annual revenue, credit scores and limits (some close
//! to their limit), a postal address, and a payment history before the
//! window that spreads customers' risk from punctual to chronically late.
//! A new segment or a changed threshold therefore moves invoices.

use std::fs::File;
use std::path::Path;

use chrono::NaiveDate;
use collect_engine::domain::Customer;
use collect_engine::ingest;
use collect_generator::{Snapshot, Spec, generate};
use rust_decimal::Decimal;

/// How many of each record were written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub customers: usize,
    pub invoices: usize,
    pub payments: usize,
    /// The invoices still open on the day.
    pub open: usize,
}

/// The book of `customers` customers as recorded by the end of `day`:
/// invoices issued over the 90 days before it, their payments by then,
/// and each customer's settled history before that.
pub fn book(seed: u64, customers: usize, day: NaiveDate) -> Snapshot {
    let spec = Spec {
        customers,
        ..Spec::open_book(seed, customers * 40 / 7, day)
    };
    generate(&spec).as_of(day)
}

/// Writes the book into `dir` (created if missing) as the three CSV files.
pub fn write(dir: &Path, book: &Snapshot) -> Result<Written, csv::Error> {
    std::fs::create_dir_all(dir)?;
    let mut c = csv::Writer::from_writer(File::create(dir.join("customers.csv"))?);
    c.write_record(ingest::CUSTOMER_COLUMNS)?;
    for cu in &book.customers {
        c.write_record(customer_row(cu))?;
    }
    c.flush()?;
    let mut i = csv::Writer::from_writer(File::create(dir.join("invoices.csv"))?);
    i.write_record(ingest::INVOICE_COLUMNS)?;
    for inv in &book.invoices {
        i.write_record([
            inv.invoice_id.clone(),
            inv.customer_id.clone(),
            inv.number.clone(),
            inv.issue_date.to_string(),
            inv.due_date.to_string(),
            inv.amount.to_string(),
            inv.currency.clone(),
            inv.disputed.to_string(),
            inv.dispute_opened_on
                .map(|d| d.to_string())
                .unwrap_or_default(),
        ])?;
    }
    i.flush()?;
    let mut p = csv::Writer::from_writer(File::create(dir.join("payments.csv"))?);
    p.write_record(ingest::PAYMENT_COLUMNS)?;
    for pay in &book.payments {
        p.write_record([
            pay.payment_id.clone(),
            pay.invoice_id.clone(),
            pay.paid_on.to_string(),
            pay.amount.to_string(),
        ])?;
    }
    p.flush()?;
    Ok(Written {
        customers: book.customers.len(),
        invoices: book.invoices.len(),
        payments: book.payments.len(),
        open: book.open,
    })
}

fn customer_row(c: &Customer) -> Vec<String> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let dec = |v: Option<Decimal>| v.map(|d| d.to_string()).unwrap_or_default();
    vec![
        c.customer_id.clone(),
        c.name.clone(),
        c.email.clone(),
        opt(&c.phone),
        c.language.clone(),
        c.timezone.clone(),
        opt(&c.country),
        opt(&c.industry),
        dec(c.annual_revenue),
        dec(c.credit_score),
        dec(c.credit_limit),
        c.tags.join(";"),
        c.do_not_contact.to_string(),
        opt(&c.address.line1),
        opt(&c.address.line2),
        opt(&c.address.postal_code),
        opt(&c.address.city),
        opt(&c.address.region),
    ]
}
