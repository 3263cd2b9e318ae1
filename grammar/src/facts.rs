//! The facts a policy can test, and the values they take for one invoice on
//! one day.
//!
//! [`FACTS`] is the single list: the checker resolves names against it, the
//! compiler turns names into [`FactId`]s, the reference in `policy/README.md`
//! documents each entry (a test keeps the two in step), and [`Facts`] is what
//! the engine fills in for each invoice.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;

/// The type of a fact, a literal or an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Type {
    Bool,
    Number,
    Money,
    Percent,
    Date,
    Days,
    Text,
    TextList,
}

impl Type {
    /// How the type is named in messages.
    pub fn describe(self) -> &'static str {
        match self {
            Type::Bool => "yes/no",
            Type::Number => "number",
            Type::Money => "money",
            Type::Percent => "percentage",
            Type::Date => "date",
            Type::Days => "duration in days",
            Type::Text => "text",
            Type::TextList => "list of text",
        }
    }
}

/// One entry of the fact catalogue.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FactDef {
    pub name: &'static str,
    pub ty: Type,
    /// Whether the fact can be missing (an empty optional CSV column, no score
    /// yet). Comparisons with a missing fact are false.
    pub optional: bool,
    pub doc: &'static str,
    #[serde(skip)]
    pub id: FactId,
}

/// Compiled handle of a fact; evaluation matches on it directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactId {
    Today,
    Risk,
    InvoiceId,
    InvoiceNumber,
    InvoiceAmount,
    InvoiceBalance,
    InvoiceCurrency,
    InvoiceIssueDate,
    InvoiceDueDate,
    InvoiceTermsDays,
    InvoiceDaysToDue,
    InvoiceDaysPastDue,
    InvoiceDisputed,
    InvoiceDisputeOpenedOn,
    InvoicePromisedUntil,
    InvoicePlanCurrent,
    InvoicePlanDefaulted,
    CustomerId,
    CustomerCountry,
    CustomerIndustry,
    CustomerLanguage,
    CustomerTags,
    CustomerDoNotContact,
    CustomerAnnualRevenue,
    CustomerCreditScore,
    CustomerCreditLimit,
    CustomerCreditUtilization,
    CustomerOpenAmount,
    CustomerOpenInvoices,
    CustomerOverdueInvoices,
    CustomerLateRate,
    CustomerAvgDaysLate,
    CustomerTenureDays,
}

const fn fact(
    name: &'static str,
    ty: Type,
    optional: bool,
    id: FactId,
    doc: &'static str,
) -> FactDef {
    FactDef {
        name,
        ty,
        optional,
        doc,
        id,
    }
}

/// Every fact a condition may name.
pub const FACTS: &[FactDef] = &[
    fact(
        "today",
        Type::Date,
        false,
        FactId::Today,
        "The day the sweep runs for.",
    ),
    fact(
        "risk",
        Type::Percent,
        true,
        FactId::Risk,
        "The model's probability that the invoice will be paid after its due date (0% to 100%). Missing when no score could be made.",
    ),
    fact(
        "invoice.id",
        Type::Text,
        false,
        FactId::InvoiceId,
        "The invoice's identifier in the ERP.",
    ),
    fact(
        "invoice.number",
        Type::Text,
        false,
        FactId::InvoiceNumber,
        "The invoice number printed on the document.",
    ),
    fact(
        "invoice.amount",
        Type::Money,
        false,
        FactId::InvoiceAmount,
        "The invoice's original amount.",
    ),
    fact(
        "invoice.balance",
        Type::Money,
        false,
        FactId::InvoiceBalance,
        "What is still open today: the amount less the payments dated on or before today.",
    ),
    fact(
        "invoice.currency",
        Type::Text,
        false,
        FactId::InvoiceCurrency,
        "The invoice's ISO 4217 currency code.",
    ),
    fact(
        "invoice.issue_date",
        Type::Date,
        false,
        FactId::InvoiceIssueDate,
        "The day the invoice was issued.",
    ),
    fact(
        "invoice.due_date",
        Type::Date,
        false,
        FactId::InvoiceDueDate,
        "The day payment is due.",
    ),
    fact(
        "invoice.terms_days",
        Type::Number,
        false,
        FactId::InvoiceTermsDays,
        "Payment terms in days: due date less issue date (30 for Net-30).",
    ),
    fact(
        "invoice.days_to_due",
        Type::Number,
        false,
        FactId::InvoiceDaysToDue,
        "Days from today to the due date; negative once the invoice is past due.",
    ),
    fact(
        "invoice.days_past_due",
        Type::Number,
        false,
        FactId::InvoiceDaysPastDue,
        "Days since the due date; 0 until the invoice is past due.",
    ),
    fact(
        "invoice.disputed",
        Type::Bool,
        false,
        FactId::InvoiceDisputed,
        "A dispute is open on the invoice today.",
    ),
    fact(
        "invoice.dispute_opened_on",
        Type::Date,
        true,
        FactId::InvoiceDisputeOpenedOn,
        "The day the open dispute was opened; missing when there is none.",
    ),
    fact(
        "invoice.promised_until",
        Type::Date,
        true,
        FactId::InvoicePromisedUntil,
        "The date the customer promised to pay by; missing when there is no promise.",
    ),
    fact(
        "invoice.plan_current",
        Type::Bool,
        false,
        FactId::InvoicePlanCurrent,
        "The invoice is under an accepted payment plan whose installments are paid on time.",
    ),
    fact(
        "invoice.plan_defaulted",
        Type::Bool,
        false,
        FactId::InvoicePlanDefaulted,
        "The invoice was under a payment plan and an installment was missed.",
    ),
    fact(
        "customer.id",
        Type::Text,
        false,
        FactId::CustomerId,
        "The customer's identifier in the ERP.",
    ),
    fact(
        "customer.country",
        Type::Text,
        true,
        FactId::CustomerCountry,
        "The customer's country code.",
    ),
    fact(
        "customer.industry",
        Type::Text,
        true,
        FactId::CustomerIndustry,
        "The customer's industry.",
    ),
    fact(
        "customer.language",
        Type::Text,
        false,
        FactId::CustomerLanguage,
        "The language messages are written in (default `en`).",
    ),
    fact(
        "customer.tags",
        Type::TextList,
        false,
        FactId::CustomerTags,
        "The customer's tags, e.g. `\"strategic\" in customer.tags`.",
    ),
    fact(
        "customer.do_not_contact",
        Type::Bool,
        false,
        FactId::CustomerDoNotContact,
        "The customer must not be contacted.",
    ),
    fact(
        "customer.annual_revenue",
        Type::Money,
        true,
        FactId::CustomerAnnualRevenue,
        "The customer's annual revenue, in the policy's currency.",
    ),
    fact(
        "customer.credit_score",
        Type::Number,
        true,
        FactId::CustomerCreditScore,
        "The customer's credit score as supplied by the ERP.",
    ),
    fact(
        "customer.credit_limit",
        Type::Money,
        true,
        FactId::CustomerCreditLimit,
        "The customer's credit limit, in the policy's currency.",
    ),
    fact(
        "customer.credit_utilization",
        Type::Percent,
        true,
        FactId::CustomerCreditUtilization,
        "Open amount as a share of the credit limit; missing without a credit limit.",
    ),
    fact(
        "customer.open_amount",
        Type::Money,
        false,
        FactId::CustomerOpenAmount,
        "Total still open today over all the customer's invoices.",
    ),
    fact(
        "customer.open_invoices",
        Type::Number,
        false,
        FactId::CustomerOpenInvoices,
        "Number of the customer's invoices open today.",
    ),
    fact(
        "customer.overdue_invoices",
        Type::Number,
        false,
        FactId::CustomerOverdueInvoices,
        "Number of the customer's invoices open and past due today.",
    ),
    fact(
        "customer.late_rate",
        Type::Percent,
        true,
        FactId::CustomerLateRate,
        "Share of the customer's invoices settled before today that were paid late; missing with no history.",
    ),
    fact(
        "customer.avg_days_late",
        Type::Number,
        true,
        FactId::CustomerAvgDaysLate,
        "Average days late over the customer's late invoices settled before today.",
    ),
    fact(
        "customer.tenure_days",
        Type::Number,
        true,
        FactId::CustomerTenureDays,
        "Days since the customer's first invoice.",
    ),
];

/// Looks a fact up by the name written in a policy.
pub fn lookup(name: &str) -> Option<&'static FactDef> {
    FACTS.iter().find(|f| f.name == name)
}

/// The facts about one open invoice on one day, as the engine knows them.
/// Borrowed so that building one costs no allocation.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub today: NaiveDate,
    /// Probability of late payment, `0.0..=1.0`.
    pub risk: Option<f64>,
    pub invoice: InvoiceFacts<'a>,
    pub customer: CustomerFacts<'a>,
}

#[derive(Debug, Clone)]
pub struct InvoiceFacts<'a> {
    pub id: &'a str,
    pub number: &'a str,
    pub amount: Decimal,
    pub balance: Decimal,
    pub currency: &'a str,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub disputed: bool,
    pub dispute_opened_on: Option<NaiveDate>,
    pub promised_until: Option<NaiveDate>,
    pub plan_current: bool,
    pub plan_defaulted: bool,
}

#[derive(Debug, Clone)]
pub struct CustomerFacts<'a> {
    pub id: &'a str,
    pub country: Option<&'a str>,
    pub industry: Option<&'a str>,
    pub language: &'a str,
    pub tags: &'a [String],
    pub do_not_contact: bool,
    pub annual_revenue: Option<Decimal>,
    pub credit_score: Option<Decimal>,
    pub credit_limit: Option<Decimal>,
    pub open_amount: Decimal,
    pub open_invoices: u32,
    pub overdue_invoices: u32,
    /// Share late, `0.0..=1.0`.
    pub late_rate: Option<f64>,
    pub avg_days_late: Option<Decimal>,
    pub first_invoice_on: Option<NaiveDate>,
}

/// A runtime value. Borrowed: evaluating a condition never allocates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Bool(bool),
    Number(Decimal),
    Money(Decimal),
    /// A ratio: 60 % is `0.6`.
    Percent(f64),
    Date(NaiveDate),
    Days(i64),
    Text(&'a str),
    TextList(&'a [String]),
    Missing,
}

impl<'a> Value<'a> {
    /// Renders the value the way a policy author writes it (for `explain`).
    pub fn display(&self, currency: &str) -> String {
        match self {
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.normalize().to_string(),
            Value::Money(m) => format!("{} {currency}", m.round_dp(2)),
            Value::Percent(p) => format!("{}%", (p * 1000.0).round() / 10.0),
            Value::Date(d) => d.to_string(),
            Value::Days(d) => format!("{d}d"),
            Value::Text(t) => format!("{t:?}"),
            Value::TextList(l) => format!("{l:?}"),
            Value::Missing => "missing".to_string(),
        }
    }
}

fn days(n: i64) -> Value<'static> {
    Value::Number(Decimal::from(n))
}

impl<'a> Facts<'a> {
    /// The value of one fact.
    pub fn get(&self, id: FactId) -> Value<'a> {
        let inv = &self.invoice;
        let cus = &self.customer;
        match id {
            FactId::Today => Value::Date(self.today),
            FactId::Risk => self.risk.map_or(Value::Missing, Value::Percent),
            FactId::InvoiceId => Value::Text(inv.id),
            FactId::InvoiceNumber => Value::Text(inv.number),
            FactId::InvoiceAmount => Value::Money(inv.amount),
            FactId::InvoiceBalance => Value::Money(inv.balance),
            FactId::InvoiceCurrency => Value::Text(inv.currency),
            FactId::InvoiceIssueDate => Value::Date(inv.issue_date),
            FactId::InvoiceDueDate => Value::Date(inv.due_date),
            FactId::InvoiceTermsDays => days((inv.due_date - inv.issue_date).num_days()),
            FactId::InvoiceDaysToDue => days((inv.due_date - self.today).num_days()),
            FactId::InvoiceDaysPastDue => days((self.today - inv.due_date).num_days().max(0)),
            FactId::InvoiceDisputed => Value::Bool(inv.disputed),
            FactId::InvoiceDisputeOpenedOn => {
                inv.dispute_opened_on.map_or(Value::Missing, Value::Date)
            }
            FactId::InvoicePromisedUntil => inv.promised_until.map_or(Value::Missing, Value::Date),
            FactId::InvoicePlanCurrent => Value::Bool(inv.plan_current),
            FactId::InvoicePlanDefaulted => Value::Bool(inv.plan_defaulted),
            FactId::CustomerId => Value::Text(cus.id),
            FactId::CustomerCountry => cus.country.map_or(Value::Missing, Value::Text),
            FactId::CustomerIndustry => cus.industry.map_or(Value::Missing, Value::Text),
            FactId::CustomerLanguage => Value::Text(cus.language),
            FactId::CustomerTags => Value::TextList(cus.tags),
            FactId::CustomerDoNotContact => Value::Bool(cus.do_not_contact),
            FactId::CustomerAnnualRevenue => {
                cus.annual_revenue.map_or(Value::Missing, Value::Money)
            }
            FactId::CustomerCreditScore => cus.credit_score.map_or(Value::Missing, Value::Number),
            FactId::CustomerCreditLimit => cus.credit_limit.map_or(Value::Missing, Value::Money),
            FactId::CustomerCreditUtilization => match cus.credit_limit {
                // A ratio, not money: f64 is exact enough and much faster.
                Some(limit) if !limit.is_zero() => match (cus.open_amount.to_f64(), limit.to_f64())
                {
                    (Some(open), Some(l)) if l != 0.0 => Value::Percent(open / l),
                    _ => Value::Missing,
                },
                _ => Value::Missing,
            },
            FactId::CustomerOpenAmount => Value::Money(cus.open_amount),
            FactId::CustomerOpenInvoices => Value::Number(Decimal::from(cus.open_invoices)),
            FactId::CustomerOverdueInvoices => Value::Number(Decimal::from(cus.overdue_invoices)),
            FactId::CustomerLateRate => cus.late_rate.map_or(Value::Missing, Value::Percent),
            FactId::CustomerAvgDaysLate => cus.avg_days_late.map_or(Value::Missing, Value::Number),
            FactId::CustomerTenureDays => cus
                .first_invoice_on
                .map_or(Value::Missing, |d| days((self.today - d).num_days().max(0))),
        }
    }
}
