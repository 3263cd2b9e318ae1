//! The customers' side of the demo's simulation: the payments they make,
//! how they answer reminders, notices and calls (a payment a few days
//! later, a promise after a firm notice), and the mail service's events
//! about what they were sent — each fact stored on its own day.

use super::generate::{self, Generated, Pays, business_after, plus};
use super::simulation::Tally;
use chrono::NaiveDate;
use collect_delivery::delivery::RunReport;
use collect_engine::domain::{ActionStatus, Channel, Event, EventKind, InvoiceId, Payment};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// The customers' side of the simulation: what they pay and say, and when.
pub(super) struct Customers<'g> {
    book: &'g Generated,
    index: HashMap<&'g str, usize>,
    /// Per invoice: the day of the (first) payment, if it will ever come.
    first_pay: Vec<Option<NaiveDate>>,
    /// Per invoice: how many of its payments are stored.
    paid_parts: Vec<usize>,
    /// Per invoice: whether the customer already answered a contact.
    answered: Vec<bool>,
    /// Per invoice: whether the customer made a promise.
    promised: Vec<bool>,
    /// Per invoice: whether the customer pays it whole (a heeded reminder).
    in_full: Vec<bool>,
    /// Events waiting for their day.
    pub events: BTreeMap<NaiveDate, Vec<Event>>,
}

impl<'g> Customers<'g> {
    pub(super) fn new(book: &'g Generated) -> Customers<'g> {
        let n = book.plans.len();
        let mut events: BTreeMap<NaiveDate, Vec<Event>> = BTreeMap::new();
        for p in &book.plans {
            if let Some((opened, closed)) = p.dispute {
                for (day, kind, what) in [
                    (opened, EventKind::DisputeOpened, "opened"),
                    (closed, EventKind::DisputeClosed, "closed"),
                ] {
                    events.entry(day).or_default().push(Event {
                        event_id: format!("EV-{}-dispute-{what}", p.invoice.invoice_id),
                        date: day,
                        kind,
                        invoice_id: Some(p.invoice.invoice_id.clone()),
                        action_id: None,
                        message_id: None,
                        by: None,
                        reason: None,
                    });
                }
            }
        }
        Customers {
            book,
            index: book
                .plans
                .iter()
                .enumerate()
                .map(|(i, p)| (p.invoice.invoice_id.as_str(), i))
                .collect(),
            first_pay: book
                .plans
                .iter()
                .map(|p| match p.pays {
                    Pays::On(day) => Some(day),
                    Pays::Responds { fallback, .. } => Some(fallback),
                    Pays::Never => None,
                })
                .collect(),
            paid_parts: vec![0; n],
            answered: vec![false; n],
            promised: vec![false; n],
            in_full: vec![false; n],
            events,
        }
    }

    /// The payments made on `day`, marked as stored.
    pub(super) fn payments(&mut self, day: NaiveDate) -> Vec<Payment> {
        let mut out = Vec::new();
        for (i, p) in self.book.plans.iter().enumerate() {
            let (Some(Some(first)), Some(done)) =
                (self.first_pay.get(i), self.paid_parts.get_mut(i))
            else {
                continue;
            };
            if *done == 0 && *first <= day && self.in_full.get(i).copied().unwrap_or(false) {
                *done = p.parts.len();
                out.push(Payment {
                    payment_id: format!("PAY-{}-1", p.invoice.invoice_id),
                    invoice_id: p.invoice.invoice_id.clone(),
                    paid_on: day,
                    amount: p.invoice.amount,
                });
                continue;
            }
            while let Some((offset, amount)) = p.parts.get(*done) {
                let on = if *done == 0 {
                    *first
                } else {
                    business_after(plus(*first, *offset))
                };
                if on > day {
                    break;
                }
                *done += 1;
                out.push(Payment {
                    payment_id: format!("PAY-{}-{}", p.invoice.invoice_id, *done),
                    invoice_id: p.invoice.invoice_id.clone(),
                    // Always `day`: nothing is ever stored backdated.
                    paid_on: day,
                    amount: *amount,
                });
            }
        }
        out
    }

    /// A reminder, notice, offer, letter or call about `invoice` on `day`:
    /// a responsive customer pays a few days later. Returns whether the
    /// payment came sooner because of it.
    fn contacted(&mut self, invoice: &str, day: NaiveDate) -> bool {
        let Some(&i) = self.index.get(invoice) else {
            return false;
        };
        let Some(plan) = self.book.plans.get(i) else {
            return false;
        };
        let Pays::Responds { from, lag, .. } = plan.pays else {
            return false;
        };
        if day < from
            || self.answered.get(i).copied().unwrap_or(true)
            || self.paid_parts.get(i).copied().unwrap_or(1) > 0
        {
            return false;
        }
        if let Some(a) = self.answered.get_mut(i) {
            *a = true;
        }
        let when = business_after(plus(day, lag));
        match self.first_pay.get_mut(i) {
            Some(slot) if slot.is_none_or(|f| when < f) => {
                *slot = Some(when);
                true
            }
            _ => false,
        }
    }

    /// A friendly reminder with `template` about `invoice` went out on
    /// `day`: a customer who heeds it pays the whole invoice a day or two
    /// later (the planted effect, see
    /// [`collect_generator::Heed`]). Returns whether the
    /// payment came sooner because of it.
    fn reminded(&mut self, invoice: &str, template: &str, day: NaiveDate) -> bool {
        let Some(&i) = self.index.get(invoice) else {
            return false;
        };
        let Some(when) = self
            .book
            .plans
            .get(i)
            .and_then(|p| p.heeded_on(day, template))
        else {
            return false;
        };
        if self.paid_parts.get(i).copied().unwrap_or(1) > 0 {
            return false;
        }
        match (self.first_pay.get_mut(i), self.in_full.get_mut(i)) {
            (Some(slot), Some(full)) if slot.is_none_or(|f| when < f) => {
                *slot = Some(when);
                *full = true;
                true
            }
            _ => false,
        }
    }

    /// What the mail service reports about the emails sent on `day`: each
    /// delivered (or bounced), and then opened, clicked and answered as the
    /// customer tends to. Stored the next morning, dated as they happened.
    fn mail_events(&mut self, report: &RunReport, day: NaiveDate) {
        let seed = self.book.seed;
        for m in report.sent.iter().filter(|m| m.channel == Channel::Email) {
            let Some(e) = self.book.engagement.get(m.customer_id.as_str()).copied() else {
                continue;
            };
            let actions: Vec<&str> = report
                .plan
                .records
                .iter()
                .filter(|r| r.message_id.as_deref() == Some(m.message_id.as_str()))
                .map(|r| r.action_id.as_str())
                .collect();
            // As SES tags: the message always, the action when it is the only one.
            let action_id = match actions.as_slice() {
                [only] => Some((*only).to_string()),
                _ => None,
            };
            let draw = |q: &str| generate::message_draw(seed, &m.message_id, q);
            let opened = !e.bounces && draw("open") < e.open;
            let next = plus(day, 1);
            let mut kinds = vec![(
                day,
                if e.bounces {
                    EventKind::MailBounced
                } else {
                    EventKind::MailDelivered
                },
            )];
            if opened {
                let on = if draw("open-day") < 0.6 { day } else { next };
                kinds.push((on, EventKind::MailOpened));
                if draw("click") < e.click {
                    kinds.push((on, EventKind::MailClicked));
                }
            }
            if !e.bounces && draw("reply") < e.reply {
                kinds.push((next, EventKind::MailReplied));
            }
            for (date, kind) in kinds {
                self.events.entry(next).or_default().push(Event {
                    event_id: format!("EV-{}-{}", m.message_id, kind.name()),
                    date,
                    kind,
                    invoice_id: None,
                    action_id: action_id.clone(),
                    message_id: Some(m.message_id.to_string()),
                    by: None,
                    reason: None,
                });
            }
        }
    }

    /// The firm notice about an unpaid invoice went out on `day`: some
    /// customers promise a date. Returns whether they did.
    fn firm_notice(&mut self, invoice: &str, day: NaiveDate) -> bool {
        let Some(&i) = self.index.get(invoice) else {
            return false;
        };
        let (Some(plan), Some(first), Some(promised), Some(paid)) = (
            self.book.plans.get(i),
            self.first_pay.get(i).copied(),
            self.promised.get_mut(i),
            self.paid_parts.get(i),
        ) else {
            return false;
        };
        let Some(promise) = plan.promise else {
            return false;
        };
        if *promised || *paid > 0 {
            return false;
        }
        let on = business_after(plus(day, promise.after_days));
        if first.is_some_and(|f| f <= on) {
            return false;
        }
        let until = match (promise.kept, first) {
            // The customer promises the day it means to pay.
            (true, Some(f)) => f,
            (true, None) => return false,
            (false, _) => plus(on, promise.window_days),
        };
        *promised = true;
        self.events.entry(on).or_default().push(Event {
            event_id: format!("EV-{invoice}-promise"),
            date: on,
            kind: EventKind::PromiseToPay {
                promised_until: until,
            },
            invoice_id: Some(invoice.to_string()),
            action_id: None,
            message_id: None,
            by: None,
            reason: None,
        });
        true
    }

    /// How the customers answer what one day's sweep did.
    pub(super) fn answer(&mut self, report: &RunReport, day: NaiveDate, tally: &mut Tally) {
        let sent: HashSet<&str> = report.sent.iter().map(|m| m.message_id.as_str()).collect();
        let mut contacted: BTreeSet<&str> = report
            .sent
            .iter()
            .flat_map(|m| m.invoices.iter().map(InvoiceId::as_str))
            .collect();
        // A call task is worked the day it is created (see `make_calls`).
        contacted.extend(
            report
                .plan
                .records
                .iter()
                .filter(|r| r.channel == Channel::Call && r.status == ActionStatus::Planned)
                .map(|r| r.invoice_id.as_str()),
        );
        for invoice in contacted {
            if self.contacted(invoice, day) {
                tally.paid_sooner += 1;
            }
        }
        for r in &report.plan.records {
            if r.channel == Channel::Email
                && r.message_id.as_deref().is_some_and(|m| sent.contains(m))
                && self.reminded(&r.invoice_id, &r.target, day)
            {
                tally.paid_sooner += 1;
            }
        }
        self.mail_events(report, day);
        for r in &report.plan.records {
            if r.target == "firm-notice"
                && r.message_id.as_deref().is_some_and(|m| sent.contains(m))
                && self.firm_notice(&r.invoice_id, day)
            {
                tally.promises += 1;
            }
        }
    }
}
