//! What a template can see: the message context, and money formatting.
//!
//! Every amount and date reaches the template already formatted in the
//! customer's language and country ([`Formats`]: `2.763,63 USD` and
//! `3. April 2027` in German, `USD 2,763.63` and `April 3, 2027` in US
//! English), so templates never do arithmetic, rounding or date formatting.

use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;

use super::locale::Formats;
use collect_engine::domain::Invoice;

/// Everything a template can use. `collect check` renders every template with
/// [`MessageContext::sample`], so a variable missing here is caught before
/// anything is sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageContext {
    pub customer: CustomerCtx,
    pub company: CompanyCtx,
    /// The sending day, as a long date in the customer's locale
    /// (`3. April 2027`).
    pub today: String,
    /// The invoices the message is about (emails consolidate several), in
    /// every state, and the same split by state with the totals: seen by
    /// the template at the top level (`invoices`, `past_due`,
    /// `past_due_total`, …); see [`InvoiceLists`].
    #[serde(flatten)]
    pub lists: InvoiceLists,
    /// Only for payment-plan offers. Absent (not `none`) otherwise, so in
    /// strict mode a template that mentions `plan` without guarding it with
    /// `plan is defined` fails instead of printing nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanCtx>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomerCtx {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompanyCtx {
    pub name: String,
    pub reply_to: String,
    /// The postal address, one line per entry (may be empty): local
    /// `company_address` in the home's config.toml, `COLLECT_COMPANY_ADDRESS`
    /// on AWS.
    pub address: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvoiceCtx {
    pub id: String,
    pub number: String,
    /// Invoice amount, formatted.
    pub amount: String,
    /// Open balance, formatted.
    pub balance: String,
    /// Long date in the customer's locale: `3. April 2027`.
    pub due_date: String,
    /// Medium date, for tables: `03.04.2027`, `Apr 3, 2027`.
    pub due_date_short: String,
    /// Days until the due date; 0 on or after it.
    pub days_to_due: i64,
    /// Days since the due date; 0 on or before it.
    pub days_past_due: i64,
    pub pay_link: String,
    /// Where the invoice stands on the sending day: `not_yet_due`,
    /// `due_today` (due today is not past due) or `past_due`.
    pub state: InvoiceState,
    /// The same as `days_past_due` and `days_to_due`, by the names the
    /// state reads with (`invoice.days_overdue` days past due).
    pub days_overdue: i64,
    pub days_until_due: i64,
    /// The step that put the invoice in this message, as the policy writes
    /// it (`due + 7d`); empty when not known (a preview of a message whose
    /// actions are no longer live).
    pub step: String,
    /// The template of that step: in a merged message the most advanced
    /// step's template renders every invoice, so this is where an invoice
    /// brought in by a gentler step says so.
    pub template: String,
}

/// Where an invoice stands on the day a message is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceState {
    NotYetDue,
    DueToday,
    PastDue,
}

impl InvoiceState {
    /// The state of an invoice due on `due` on the sending day `today`.
    pub fn on(due: NaiveDate, today: NaiveDate) -> InvoiceState {
        match due.cmp(&today) {
            std::cmp::Ordering::Greater => InvoiceState::NotYetDue,
            std::cmp::Ordering::Equal => InvoiceState::DueToday,
            std::cmp::Ordering::Less => InvoiceState::PastDue,
        }
    }
}

/// A message's invoices, each with its open balance, split by state with
/// the totals, formatted: see [`InvoiceLists::of`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvoiceLists {
    /// The invoices the message is about (emails consolidate several), in
    /// every state: a template that lists them all must say, invoice by
    /// invoice, what is true of each (`invoice.state`), never call the
    /// whole list past due.
    pub invoices: Vec<InvoiceCtx>,
    /// Sum of the invoices' open balances, formatted.
    pub total_balance: String,
    /// The invoices past their due date on the sending day, and the sum of
    /// their open balances: what past-due wording may describe.
    pub past_due: Vec<InvoiceCtx>,
    pub past_due_total: String,
    /// The invoices due on the sending day (not past due yet), and their sum.
    pub due_today: Vec<InvoiceCtx>,
    pub due_today_total: String,
    /// The invoices due after the sending day, and their sum.
    pub coming_due: Vec<InvoiceCtx>,
    pub coming_due_total: String,
}

impl InvoiceLists {
    /// The invoices in their order, each list keeping it; the totals are
    /// sums of the open balances (rust_decimal, formatted in `currency` for
    /// the customer).
    pub fn of(items: Vec<(InvoiceCtx, Decimal)>, currency: &str, f: &Formats) -> InvoiceLists {
        let sum = |state: Option<InvoiceState>| {
            let total = items
                .iter()
                .filter(|(i, _)| state.is_none_or(|s| i.state == s))
                .map(|(_, b)| *b)
                .fold(Decimal::ZERO, Decimal::saturating_add);
            f.money(total, currency)
        };
        let list = |state: InvoiceState| -> Vec<InvoiceCtx> {
            items
                .iter()
                .filter(|(i, _)| i.state == state)
                .map(|(i, _)| i.clone())
                .collect()
        };
        InvoiceLists {
            total_balance: sum(None),
            past_due: list(InvoiceState::PastDue),
            past_due_total: sum(Some(InvoiceState::PastDue)),
            due_today: list(InvoiceState::DueToday),
            due_today_total: sum(Some(InvoiceState::DueToday)),
            coming_due: list(InvoiceState::NotYetDue),
            coming_due_total: sum(Some(InvoiceState::NotYetDue)),
            invoices: items.into_iter().map(|(i, _)| i).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanCtx {
    /// Formatted; `0.00 USD` when none.
    pub down_payment: String,
    pub installments: Vec<InstallmentCtx>,
    pub every_days: i64,
    /// Formatted sum of the down payment and the installments.
    pub total: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstallmentCtx {
    /// 1-based.
    pub number: u32,
    /// Long date in the customer's locale.
    pub due_date: String,
    pub amount: String,
}

impl InvoiceCtx {
    /// The context of one invoice on `today`, with its open `balance`,
    /// formatted for the customer.
    pub fn from_invoice(
        invoice: &Invoice,
        balance: Decimal,
        today: NaiveDate,
        pay_link: String,
        formats: &Formats,
    ) -> InvoiceCtx {
        let days = (invoice.due_date - today).num_days();
        InvoiceCtx {
            id: invoice.invoice_id.clone(),
            number: invoice.number.clone(),
            amount: formats.money(invoice.amount, &invoice.currency),
            balance: formats.money(balance, &invoice.currency),
            due_date: formats.date(invoice.due_date),
            due_date_short: formats.date_short(invoice.due_date),
            days_to_due: days.max(0),
            days_past_due: (-days).max(0),
            pay_link,
            state: InvoiceState::on(invoice.due_date, today),
            days_overdue: (-days).max(0),
            days_until_due: days.max(0),
            step: String::new(),
            template: String::new(),
        }
    }

    /// The step that put the invoice in the message, and its template.
    pub fn with_step(mut self, offset: Option<i64>, template: &str) -> InvoiceCtx {
        self.step = offset
            .map(policy_lang::labels::offset_text)
            .unwrap_or_default();
        self.template = template.to_string();
        self
    }
}

impl MessageContext {
    /// A complete context with made-up values, formatted for US English,
    /// sent on March 14, 2025: three invoices, one in each state (30 days
    /// past due by `due + 30d`, due today by `due`, due in 14 days by
    /// `due - 14d`), and a plan. What `check` renders every template with,
    /// so a template that calls every invoice past due says so of the one
    /// that is not.
    pub fn sample() -> MessageContext {
        Self::sample_on(SAMPLE_DAY, &SAMPLE_INVOICES)
    }

    /// The sample about its first `n` invoices only (the first is past
    /// due), the lists and totals agreeing.
    pub fn sample_first(n: usize) -> MessageContext {
        Self::sample_on(
            SAMPLE_DAY,
            SAMPLE_INVOICES.get(..n).unwrap_or(&SAMPLE_INVOICES),
        )
    }

    /// The sample's invoices, every one in `state` (the message sent on
    /// another day), everything else as in the sample, the sending day
    /// (`today`) as printed included: renders of a template with
    /// `PastDue` and with `NotYetDue` differ only by what it says of the
    /// invoices' state. (`DueToday` moves the due dates to the sample's
    /// day.)
    pub fn sample_all(state: InvoiceState) -> MessageContext {
        let mut invoices = SAMPLE_INVOICES;
        let on = match state {
            InvoiceState::PastDue => ymd(2025, 5, 1),
            InvoiceState::NotYetDue => ymd(2025, 2, 1),
            InvoiceState::DueToday => {
                for i in &mut invoices {
                    i.3 = SAMPLE_DAY;
                }
                SAMPLE_DAY
            }
        };
        let mut ctx = Self::sample_on(on, &invoices);
        ctx.today = Self::sample().today;
        ctx
    }

    /// A sample sent on `today` about `invoices`.
    fn sample_on(today: NaiveDate, invoices: &[SampleInvoice]) -> MessageContext {
        let f = Formats::for_customer("en", Some("US"));
        let day = ymd;
        let usd = |cents: i64| f.money(Decimal::new(cents, 2), "USD");
        let invoice = |(id, number, cents, due, template): SampleInvoice| {
            let days = (due - today).num_days();
            let ctx = InvoiceCtx {
                id: id.to_string(),
                number: number.to_string(),
                amount: usd(cents),
                balance: usd(cents),
                due_date: f.date(due),
                due_date_short: f.date_short(due),
                days_to_due: days.max(0),
                days_past_due: (-days).max(0),
                pay_link: format!("https://pay.example.com/i/sample-token-{id}"),
                state: InvoiceState::on(due, today),
                days_overdue: (-days).max(0),
                days_until_due: days.max(0),
                step: String::new(),
                template: String::new(),
            };
            (ctx.with_step(Some(-days), template), Decimal::new(cents, 2))
        };
        let installment = |number: u32, due: NaiveDate| InstallmentCtx {
            number,
            due_date: f.date(due),
            amount: usd(40000),
        };
        let lists = InvoiceLists::of(invoices.iter().copied().map(invoice).collect(), "USD", &f);
        MessageContext {
            customer: CustomerCtx {
                id: "C-1001".to_string(),
                name: "Acme Widgets GmbH".to_string(),
            },
            company: CompanyCtx {
                name: "Example Supplies Inc.".to_string(),
                reply_to: "billing@example.com".to_string(),
                address: vec![
                    "100 Market Street".to_string(),
                    "San Francisco, CA 94105".to_string(),
                ],
            },
            today: f.date(today),
            lists,
            plan: Some(PlanCtx {
                down_payment: usd(34050),
                installments: vec![
                    installment(1, day(2025, 4, 13)),
                    installment(2, day(2025, 5, 13)),
                    installment(3, day(2025, 6, 12)),
                ],
                every_days: 30,
                total: usd(154050),
            }),
        }
    }
}

/// An invoice of the sample: id, number, amount in cents, due date, the
/// template of the step that put it in the message.
type SampleInvoice = (&'static str, &'static str, i64, NaiveDate, &'static str);

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// The sample's sending day.
const SAMPLE_DAY: NaiveDate = date(2025, 3, 14);

/// One invoice in each state on [`SAMPLE_DAY`]: 30 days past due, due
/// that day, due in 14 days.
const SAMPLE_INVOICES: [SampleInvoice; 3] = [
    (
        "INV-1",
        "2025-0042",
        120000,
        date(2025, 2, 12),
        "firm-notice",
    ),
    ("INV-2", "2025-0057", 34050, SAMPLE_DAY, "urgent-notice"),
    (
        "INV-3",
        "2025-0063",
        21000,
        date(2025, 3, 28),
        "early-heads-up",
    ),
];

const fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(y, m, d) {
        Some(d) => d,
        None => NaiveDate::MIN,
    }
}

/// `1,200.00 USD`, the same in every language (for logs, errors and
/// reports; letters use [`Formats::money`]): two decimals (half away from zero), thousands separators,
/// a leading `-` for negative amounts, then the currency code (omitted when
/// empty).
pub fn format_money(amount: Decimal, currency: &str) -> String {
    let rounded = amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    let digits = format!("{:.2}", rounded.abs());
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits.as_str(), "00"));
    let mut grouped = String::with_capacity(int_part.len() + int_part.len() / 3);
    for (i, c) in int_part.chars().enumerate() {
        if i > 0 && (int_part.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if rounded.is_sign_negative() && !rounded.is_zero() {
        "-"
    } else {
        ""
    };
    let currency = currency.trim();
    if currency.is_empty() {
        format!("{sign}{grouped}.{frac_part}")
    } else {
        format!("{sign}{grouped}.{frac_part} {currency}")
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn money_formatting() {
        assert_eq!(format_money(d("1200"), "USD"), "1,200.00 USD");
        assert_eq!(format_money(d("0"), "EUR"), "0.00 EUR");
        assert_eq!(format_money(d("999.999"), "EUR"), "1,000.00 EUR");
        assert_eq!(format_money(d("1234567.891"), "USD"), "1,234,567.89 USD");
        assert_eq!(format_money(d("100000"), "USD"), "100,000.00 USD");
        assert_eq!(format_money(d("-1200.5"), "USD"), "-1,200.50 USD");
        assert_eq!(format_money(d("0.005"), "USD"), "0.01 USD");
        assert_eq!(format_money(d("0.015"), "USD"), "0.02 USD");
        assert_eq!(format_money(d("-0.005"), "USD"), "-0.01 USD");
        assert_eq!(format_money(d("-0.004"), "USD"), "0.00 USD");
        assert_eq!(format_money(d("12.3"), ""), "12.30");
    }

    #[test]
    fn invoice_context_days() {
        let day = |s: &str| NaiveDate::from_str(s).unwrap();
        let inv = Invoice {
            invoice_id: "I1".into(),
            customer_id: "C1".into(),
            number: "N-1".into(),
            issue_date: day("2025-01-01"),
            due_date: day("2025-01-31"),
            amount: d("1500"),
            currency: "EUR".into(),
            disputed: false,
            dispute_opened_on: None,
        };
        let de = Formats::for_customer("de", Some("DE"));
        let early = InvoiceCtx::from_invoice(&inv, d("1000"), day("2025-01-21"), "L".into(), &de);
        assert_eq!((early.days_to_due, early.days_past_due), (10, 0));
        assert_eq!(early.amount, "1.500,00 EUR");
        assert_eq!(early.balance, "1.000,00 EUR");
        assert_eq!(early.due_date, "31. Januar 2025");
        assert_eq!(early.due_date_short, "31.01.2025");
        let late = InvoiceCtx::from_invoice(&inv, d("1000"), day("2025-02-10"), "L".into(), &de);
        assert_eq!((late.days_to_due, late.days_past_due), (0, 10));
    }

    #[test]
    fn plan_is_absent_when_none() {
        let mut ctx = MessageContext::sample();
        ctx.plan = None;
        let v = serde_json::to_value(&ctx).unwrap();
        assert!(v.get("plan").is_none());
        assert!(serde_json::to_value(MessageContext::sample()).unwrap()["plan"].is_object());
    }
}
