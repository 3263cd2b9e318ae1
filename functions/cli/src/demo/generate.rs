//! The demo's calendar and book: a quarter of invoices from the test kit's
//! seeded generator ([`collect_generator`], the same one the
//! sweep benchmark and the model tests use), with the demo's mix of payer
//! types and its planted effect ([`collect_generator::Heed`]),
//! and the per-message draws of the simulation ([`message_draw`]).

use chrono::NaiveDate;
use collect_generator::{self as shared, Spec};
pub use collect_generator::{
    FULL_REMINDER, Generated, InvoicePlan, PayerType, Pays, SHORT_REMINDER, business_after,
    heed_rate, message_draw, plus,
};

/// The first day of the demo quarter: a Monday.
pub fn quarter_start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2027, 1, 4).unwrap_or_default()
}

/// Invoices are issued over this many days from [`quarter_start`].
pub const QUARTER_DAYS: u64 = 90;

/// The policy keeps running this many days after the quarter's last day.
pub const AFTER_DAYS: u64 = 60;

/// The last day of the quarter.
pub fn quarter_end() -> NaiveDate {
    plus(quarter_start(), QUARTER_DAYS as i64 - 1)
}

/// The last day the policy runs.
pub fn run_end() -> NaiveDate {
    plus(quarter_end(), AFTER_DAYS as i64)
}

/// `n` customers with their quarter's invoices and behaviour.
pub fn generate(seed: u64, n: u32) -> Generated {
    shared::generate(&Spec::quarter(
        seed,
        n as usize,
        quarter_start(),
        QUARTER_DAYS,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    #[test]
    fn invoices_fall_in_the_quarter_and_history_before_it() {
        let g = generate(42, 60);
        for p in &g.plans {
            assert!(p.invoice.issue_date >= quarter_start());
            assert!(p.invoice.issue_date <= quarter_end());
            let total: Decimal = p.parts.iter().map(|(_, a)| *a).sum();
            assert_eq!(total, p.invoice.amount);
        }
        for pay in &g.history_payments {
            assert!(pay.paid_on < quarter_start());
        }
    }
}
