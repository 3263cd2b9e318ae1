//! Peak memory of one training run against the number of customers it
//! reads (BENCHMARKS.md, "Training in bounded memory"): a generated book
//! of `N` customers (the demo's quarter: 1–6 invoices each in 90 days, 2–4
//! settled before), trained with the train function's risk model and
//! scored on the evaluation window, as `run_training` does with the sample
//! it read. Measure with `/usr/bin/time -v`:
//!
//!     cargo run -p collect-train --example train_memory -- 20000

use chrono::{Days, NaiveDate};
use collect_aws::train::{ModelKind, ModelTrainer, brier};
use collect_engine::book::Book;
use collect_generator::{Spec, generate};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let customers: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(2_000);
    let from = NaiveDate::from_ymd_opt(2026, 6, 1).ok_or("a date")?;
    let today = from.checked_add_days(Days::new(120)).ok_or("a date")?;
    let snapshot = generate(&Spec::quarter(7, customers, from, 90)).as_of(today);
    let book = Book::new(
        snapshot.customers,
        snapshot.invoices,
        snapshot.payments,
        snapshot.events,
        Vec::new(),
    );
    let until = today.checked_sub_days(Days::new(56)).ok_or("a date")?;
    let started = std::time::Instant::now();
    let trainer = collect_train::RiskModelTrainer::default();
    let artifact = trainer.train(&book, until)?;
    let scorer = trainer.scorer(&artifact)?;
    let score = brier(&book, scorer.as_ref(), until, today, 10);
    println!(
        "{customers} customers, {} invoices: trained and scored in {:.1} s (Brier {score:?})",
        book.invoices.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
