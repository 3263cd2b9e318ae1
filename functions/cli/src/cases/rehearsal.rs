//! A case as a one-customer book and the days to sweep, so `collect test`
//! and `collect explain --case` run it through the production sweep
//! ([`collect_delivery::rehearsal`]) rather than the rules alone: the
//! case's facts become invoices, payments, events and past contacts.

use super::{Case, CaseBookError};
use chrono::{Days, NaiveTime};
use collect_delivery::rehearsal::{CaseBook, CaseRun};
use collect_engine::domain::EventKind;
use policy_lang::Contact;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// The currency of the invoices a case adds around the one under test
/// (other open or settled invoices, for the customer's figures): ISO 4217's
/// code for testing, which no policy covers, so they never get actions of
/// their own.
const SIDE_CURRENCY: &str = "XTS";

/// The customer's local time when the sweep sends, unless the case gives
/// one: the local runtime's default send time.
const DEFAULT_LOCAL_TIME: (u32, u32) = (10, 0);

impl Case {
    /// The case as a one-customer book and the days to sweep, for the
    /// production sweep ([`collect_delivery::rehearsal`]). The sweep runs every
    /// day from the invoice's issue date (or the case's first day, if
    /// earlier), as daily production sweeps would have; the case's facts
    /// hold on every one of those days:
    /// - `balance`: a payment of the difference on the issue date;
    /// - `promised_until`, `plan_current`, `plan_defaulted`: a promise or a
    ///   plan accepted on the issue date;
    /// - `history`: contacts recorded as sent on their dates;
    /// - `open_amount`, `open_invoices`, `overdue_invoices`, `late_rate`,
    ///   `avg_days_late`, `first_invoice_on`: other invoices of the
    ///   customer (in `XTS`, which no policy covers) that give these figures.
    pub fn rehearsal(&self) -> Result<(CaseBook, CaseRun), CaseBookError> {
        let inv = &self.invoice;
        let cus = &self.customer;
        let days = self.days();
        let (Some(&first), Some(&last)) = (days.first(), days.last()) else {
            return Err(CaseBookError::NoDay);
        };
        let issue = inv
            .issue_date
            .unwrap_or_else(|| inv.due_date - Days::new(30));
        if issue > inv.due_date {
            return Err(CaseBookError::IssuedAfterDue {
                issue,
                due: inv.due_date,
            });
        }
        let start = issue.min(first);
        let customer = collect_engine::domain::Customer {
            customer_id: cus.id.clone(),
            name: cus.id.clone(),
            email: "customer@policy-test.example".to_string(),
            phone: None,
            language: cus.language.clone(),
            timezone: "UTC".to_string(),
            country: cus.country.clone(),
            industry: cus.industry.clone(),
            annual_revenue: cus.annual_revenue,
            credit_score: cus.credit_score,
            credit_limit: cus.credit_limit,
            tags: cus.tags.clone(),
            do_not_contact: cus.do_not_contact,
            address: Default::default(),
        };
        let invoice = |id: String, issue_date, due_date, amount, currency: &str| {
            collect_engine::domain::Invoice {
                invoice_id: id.clone(),
                customer_id: cus.id.clone(),
                number: id,
                issue_date,
                due_date,
                amount,
                currency: currency.to_string(),
                disputed: false,
                dispute_opened_on: None,
            }
        };
        let mut book = CaseBook {
            customer,
            invoices: vec![collect_engine::domain::Invoice {
                number: if inv.number.is_empty() {
                    inv.id.clone()
                } else {
                    inv.number.clone()
                },
                disputed: inv.disputed,
                dispute_opened_on: inv.dispute_opened_on,
                ..invoice(
                    inv.id.clone(),
                    issue,
                    inv.due_date,
                    inv.amount,
                    &inv.currency,
                )
            }],
            payments: Vec::new(),
            events: Vec::new(),
            actions: Vec::new(),
        };
        let payment =
            |n: usize, invoice_id: &str, paid_on, amount| collect_engine::domain::Payment {
                payment_id: format!("PAY-{n}"),
                invoice_id: invoice_id.to_string(),
                paid_on,
                amount,
            };
        let balance = inv.balance.unwrap_or(inv.amount);
        if balance > inv.amount {
            return Err(CaseBookError::BalanceAboveAmount {
                balance,
                amount: inv.amount,
            });
        }
        if balance < inv.amount {
            book.payments
                .push(payment(0, &inv.id, issue, inv.amount - balance));
        }
        let event = |n: usize, on, kind| collect_engine::domain::Event {
            event_id: format!("EV-{n}"),
            date: on,
            kind,
            invoice_id: Some(inv.id.clone()),
            action_id: None,
            message_id: None,
            by: None,
            reason: None,
        };
        if let Some(until) = inv.promised_until {
            book.events.push(event(
                1,
                issue,
                EventKind::PromiseToPay {
                    promised_until: until,
                },
            ));
        }
        if inv.plan_current || inv.plan_defaulted {
            // Current: the one installment falls after the last day checked.
            // Defaulted: it fell due the day before the issue date, unpaid.
            let (accepted, every_days) = if inv.plan_defaulted {
                (issue - Days::new(2), 1)
            } else {
                (issue, (last - issue).num_days() + 365)
            };
            book.events.push(event(
                2,
                accepted,
                EventKind::PlanAccepted(collect_engine::domain::PlanTerms {
                    installments: 1,
                    every_days,
                    down_payment: Decimal::ZERO,
                }),
            ));
        }
        for (n, c) in self.history.iter().enumerate() {
            book.actions.push(history_action(n, &cus.id, &inv.id, c));
        }

        // The customer's figures, from other invoices.
        let overdue_itself = inv.due_date < first;
        let extra_overdue = cus
            .overdue_invoices
            .saturating_sub(u32::from(overdue_itself));
        let other_amount = match cus.open_amount {
            Some(total) if total < balance => {
                return Err(CaseBookError::OpenBelowBalance { total, balance });
            }
            Some(total) => total - balance,
            None => Decimal::ZERO,
        };
        let extra_open = cus
            .open_invoices
            .saturating_sub(1)
            .max(extra_overdue)
            .max(u32::from(other_amount > Decimal::ZERO));
        let far = last + Days::new(400);
        for n in 0..extra_open {
            let share = if other_amount > Decimal::ZERO {
                let each = (other_amount / Decimal::from(extra_open)).round_dp(2);
                if n + 1 == extra_open {
                    other_amount - each * Decimal::from(extra_open - 1)
                } else {
                    each
                }
            } else {
                Decimal::ONE
            };
            let due = if n < extra_overdue {
                start - Days::new(1)
            } else {
                far
            };
            let issued = (start - Days::new(31)).min(due);
            book.invoices.push(invoice(
                format!("OTHER-OPEN-{n}"),
                issued,
                due,
                share,
                SIDE_CURRENCY,
            ));
        }
        let first_issue = cus.first_invoice_on.unwrap_or(start - Days::new(400));
        if first_issue > issue {
            return Err(CaseBookError::FirstInvoiceAfterIssue {
                first: first_issue,
                issue,
            });
        }
        match (cus.late_rate, cus.avg_days_late) {
            (None, Some(_)) => {
                return Err(CaseBookError::AverageWithoutRate);
            }
            (None, None) => {
                if cus.first_invoice_on.is_some() {
                    // Only the date counts: nothing open, nothing settled.
                    book.invoices.push(invoice(
                        "FIRST".to_string(),
                        first_issue,
                        first_issue,
                        Decimal::ZERO,
                        SIDE_CURRENCY,
                    ));
                }
            }
            (Some(rate), avg) => {
                let (settled, late) =
                    ratio(rate).ok_or(CaseBookError::LateRateNotWhole { rate })?;
                let days_late = spread(avg, late)?;
                for n in 0..settled {
                    let issued = first_issue + Days::new(u64::from(n));
                    let due = issued + Days::new(30);
                    let paid = match days_late.get(n as usize) {
                        Some(d) if n < late => due + Days::new(*d),
                        _ => due,
                    };
                    if paid >= start {
                        return Err(CaseBookError::NoRoomForHistory {
                            first: first_issue,
                            settled,
                            start,
                        });
                    }
                    let id = format!("SETTLED-{n}");
                    book.invoices.push(invoice(
                        id.clone(),
                        issued,
                        due,
                        Decimal::ONE,
                        SIDE_CURRENCY,
                    ));
                    book.payments
                        .push(payment(n as usize + 1, &id, paid, Decimal::ONE));
                }
            }
        }
        let local_time = self.time.unwrap_or_else(|| {
            NaiveTime::from_hms_opt(DEFAULT_LOCAL_TIME.0, DEFAULT_LOCAL_TIME.1, 0)
                .unwrap_or_default()
        });
        Ok((
            book,
            CaseRun {
                invoice_id: inv.id.clone(),
                start,
                checked: days,
                risk: self.risk,
                local_time,
            },
        ))
    }
}

/// A contact of the case's `history`, recorded as sent under a name no
/// policy has, so it counts for the caps and never for a ladder.
fn history_action(
    n: usize,
    customer_id: &str,
    invoice_id: &str,
    c: &Contact,
) -> collect_engine::domain::ActionRecord {
    let id = format!("history-{n}");
    collect_engine::domain::ActionRecord {
        action_id: id.as_str().into(),
        invoice_id: invoice_id.into(),
        customer_id: customer_id.into(),
        decided_on: c.date,
        scheduled_for: c.date,
        status: collect_engine::domain::ActionStatus::Sent,
        channel: c.channel.into(),
        label: format!("{} (history)", c.channel.as_str()),
        target: String::new(),
        step_offset: 0,
        requires_approval: false,
        policy_name: "case history".to_string(),
        policy_revision: String::new(),
        git_revision: None,
        bundle_revision: None,
        rule: String::new(),
        segment: String::new(),
        experiment: None,
        arm: None,
        risk: None,
        scorer: String::new(),
        scorer_version: String::new(),
        note: Some("a contact of the case's history".to_string()),
        message_id: Some(format!("msg-{id}").into()),
        decided_by: None,
        decided_at: None,
        sent_on: Some(c.date),
    }
}

/// `rate` as `(settled, late)` invoices, the fewest settled (up to 100)
/// that give exactly that share.
fn ratio(rate: f64) -> Option<(u32, u32)> {
    (1..=100u32).find_map(|n| {
        let late = rate * f64::from(n);
        let whole = late.round();
        ((late - whole).abs() < 1e-6 && (0.0..=f64::from(n)).contains(&whole))
            .then_some((n, whole as u32))
    })
}

/// Days late of each late invoice, averaging `avg` exactly.
fn spread(avg: Option<Decimal>, late: u32) -> Result<Vec<u64>, CaseBookError> {
    if late == 0 {
        return Ok(Vec::new());
    }
    let avg = avg.unwrap_or(Decimal::from(10));
    let total = avg * Decimal::from(late);
    if avg <= Decimal::ZERO || total.fract() != Decimal::ZERO {
        return Err(CaseBookError::AverageNotWhole { average: avg, late });
    }
    let total = total.to_u64().unwrap_or(0);
    let base = total / u64::from(late);
    let extra = total % u64::from(late);
    Ok((0..u64::from(late))
        .map(|i| base + u64::from(i < extra))
        .collect())
}
