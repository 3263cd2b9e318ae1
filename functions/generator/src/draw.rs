//! Drawing a book: customers, their invoices, and each invoice's plan —
//! how and when it gets paid, with and without a reminder.

use chrono::NaiveDate;
use collect_engine::domain::{Customer, Event, EventKind, Invoice, Payment, PlanTerms};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

use crate::names::{
    INDUSTRIES, KINDS_DE, KINDS_EN, NAMES_DE, NAMES_EN, REGIONS, SUFFIX_DE, SUFFIX_EN, address,
    amount, days, pick, slug, weighted,
};
use crate::{
    Engagement, Generated, Heed, InvoicePlan, Issuer, Mix, PayerType, Pays, Promise, Spec,
    business_after, business_before, plus, rng, stream,
};

/// The stream the postal addresses are drawn from ([`stream`]).
const ADDRESS_STREAM: u64 = 0xADD2E55;

/// Generates the customers of `spec` with their invoices and behaviour.
pub fn generate(spec: &Spec) -> Generated {
    let seed = spec.seed;
    let mix = &spec.mix;
    let mut rng = rng(seed);
    let start = spec.issue_from;
    let mut out = Generated {
        seed,
        customers: Vec::with_capacity(spec.customers),
        payer: BTreeMap::new(),
        engagement: BTreeMap::new(),
        history_invoices: Vec::new(),
        history_payments: Vec::new(),
        plans: Vec::new(),
        spec: spec.clone(),
        issuers: Vec::with_capacity(spec.customers),
        next_invoice: 1,
    };
    let mut next_invoice = 1u32;
    let mut next_history = 1u32;
    // Addresses from a stream of their own, so that the draws of every
    // other value are those of a book without addresses.
    let mut addresses = stream(seed, ADDRESS_STREAM);
    for i in 1..=spec.customers {
        let id = format!("C-{i:04}");
        let payer =
            weighted(&mut rng, &PayerType::ALL, |p| mix.weight(*p)).unwrap_or(PayerType::OnTime);
        let region = weighted(&mut rng, &REGIONS, |r| r.weight);
        let timezone = region.map_or("UTC", |r| r.timezone);
        let country = region
            .and_then(|r| pick(&mut rng, r.countries))
            .copied()
            .unwrap_or("US");
        let german = region.map_or(0, |r| r.german);
        let language = if rng.random_range(0..100) < german {
            "de"
        } else {
            "en"
        };
        let name = if language == "de" {
            format!(
                "{} {} {}",
                pick(&mut rng, &NAMES_DE).copied().unwrap_or("Weber"),
                pick(&mut rng, &KINDS_DE).copied().unwrap_or("Handel"),
                pick(&mut rng, &SUFFIX_DE).copied().unwrap_or("GmbH")
            )
        } else {
            format!(
                "{} {} {}",
                pick(&mut rng, &NAMES_EN).copied().unwrap_or("Atlas"),
                pick(&mut rng, &KINDS_EN).copied().unwrap_or("Supplies"),
                pick(&mut rng, &SUFFIX_EN).copied().unwrap_or("Inc.")
            )
        };
        let domain_tld = if language == "de" { "de" } else { "com" };
        let email = format!("ap@{}-{i:04}.example.{domain_tld}", slug(&name));
        // Strategic: a large account, or one tagged so by sales.
        let roll = rng.random_range(0..100);
        let (annual_revenue, mut tags) = match roll {
            0..8 => (
                Some(Decimal::from(rng.random_range(250..2_000) * 1_000)),
                vec!["key-account".to_string()],
            ),
            8..11 => (
                Some(Decimal::from(rng.random_range(60..240) * 1_000)),
                vec!["strategic".to_string()],
            ),
            11..70 => (
                Some(Decimal::from(rng.random_range(20..240) * 1_000)),
                vec![],
            ),
            _ => (None, vec![]),
        };
        let strategic = roll < 11;
        if rng.random_bool(0.15) {
            tags.push("wholesale".to_string());
        }
        let credit_score = rng
            .random_bool(0.7)
            .then(|| Decimal::from(rng.random_range(380..840)));
        let industry = pick(&mut rng, &INDUSTRIES).map(|s| s.to_string());
        let phone = rng
            .random_bool(0.6)
            .then(|| format!("+1 555 {:04}", rng.random_range(0..10_000)));

        let engagement = Engagement {
            open: rng.random_range(0.25..0.85),
            click: rng.random_range(0.10..0.50),
            reply: rng.random_range(0.0..0.08),
            bounces: rng.random_bool(0.02),
        };

        // The window's invoices.
        let (lo, hi) = if strategic {
            spec.strategic_invoices
        } else {
            spec.invoices
        };
        let count = rng.random_range(lo..=hi);
        let scale = if strategic { 2.5 } else { 1.0 };
        let mut mine: Vec<InvoicePlan> = Vec::new();
        for _ in 0..count {
            let issue = business_before(plus(
                start,
                rng.random_range(0..spec.issue_days.max(1) as i64),
            ));
            let terms = match rng.random_range(0..10) {
                0 => 15,
                1 => 45,
                _ => 30,
            };
            let due = plus(issue, terms);
            let invoice = Invoice {
                invoice_id: format!("INV-27-{next_invoice:05}"),
                customer_id: id.clone(),
                number: format!("2027-{next_invoice:05}"),
                issue_date: issue,
                due_date: due,
                amount: amount(&mut rng, scale),
                currency: "USD".to_string(),
                disputed: false,
                dispute_opened_on: None,
            };
            next_invoice += 1;
            mine.push(behaviour(
                &mut rng,
                mix,
                invoice,
                payer,
                strategic || engagement.bounces,
            ));
        }

        // Close to the credit limit for some: the limit is about what the
        // first invoices add up to, so utilisation passes 90% at times.
        let credit_limit = match rng.random_range(0..100) {
            0..14 => {
                let first: Decimal = mine.iter().take(2).map(|p| p.invoice.amount).sum();
                let factor = Decimal::new(rng.random_range(90..125), 2);
                Some(((first * factor) / Decimal::from(500)).round() * Decimal::from(500))
                    .map(|l| l.max(Decimal::from(500)))
            }
            14..60 => Some(Decimal::from(rng.random_range(5..20) * 10_000)),
            _ => None,
        };

        // Before the window: a few invoices, all settled before it starts,
        // late as often as the customer usually is.
        let settled = if spec.history_months > 0 {
            spec.history_months
        } else {
            rng.random_range(spec.history.0..=spec.history.1)
        };
        for month in 0..settled {
            let back = if spec.history_months > 0 {
                // One a month, the latest settled before the window.
                80 + 30 * i64::from(month) + rng.random_range(0..5)
            } else {
                rng.random_range(80..150)
            };
            let issue = business_before(plus(start, -back));
            let due = plus(issue, 30);
            let late = rng.random_bool(payer.history_late_rate());
            let paid_on = if late {
                business_after(plus(due, days(&mut rng, 3, 40)))
            } else {
                business_before(plus(due, -days(&mut rng, 0, 5)))
            }
            .min(plus(start, -1));
            let invoice = Invoice {
                invoice_id: format!("INV-26-{next_history:05}"),
                customer_id: id.clone(),
                number: format!("2026-{next_history:05}"),
                issue_date: issue,
                due_date: due,
                amount: amount(&mut rng, scale),
                currency: "USD".to_string(),
                disputed: false,
                dispute_opened_on: None,
            };
            next_history += 1;
            out.history_payments.push(Payment {
                payment_id: format!("PAY-{}", invoice.invoice_id),
                invoice_id: invoice.invoice_id.clone(),
                paid_on,
                amount: invoice.amount,
            });
            out.history_invoices.push(invoice);
        }

        out.customers.push(Customer {
            customer_id: id.clone(),
            name,
            email,
            phone,
            language: language.to_string(),
            timezone: timezone.to_string(),
            country: Some(country.to_string()),
            industry,
            annual_revenue,
            credit_score,
            credit_limit,
            tags,
            do_not_contact: payer == PayerType::DoNotContact,
            address: address(&mut addresses, country, language),
        });
        out.issuers.push(Issuer {
            customer_id: id.clone(),
            payer,
            unmoved: strategic || engagement.bounces,
            scale,
        });
        out.payer.insert(id.clone(), payer);
        out.engagement.insert(id, engagement);
        out.plans.extend(mine);
    }
    out.next_invoice = next_invoice;
    out.plans.sort_by(|a, b| {
        (a.invoice.issue_date, &a.invoice.invoice_id)
            .cmp(&(b.invoice.issue_date, &b.invoice.invoice_id))
    });
    out
}

/// Decides, for one invoice, everything its customer will do.
/// `unmoved`: the customer is strategic or its mail bounces, so a reminder
/// before the due date changes nothing.
pub(crate) fn behaviour(
    rng: &mut ChaCha8Rng,
    mix: &Mix,
    invoice: Invoice,
    payer: PayerType,
    unmoved: bool,
) -> InvoicePlan {
    let issue = invoice.issue_date;
    let due = invoice.due_date;
    let responds = |rng: &mut ChaCha8Rng, from: NaiveDate| Pays::Responds {
        from: from.max(due),
        lag: days(rng, 1, 5),
        fallback: business_after(plus(due.max(from), days(rng, 10, 40))),
    };
    let mut dispute = None;
    let pays = match payer {
        PayerType::Early => {
            Pays::On(business_before(plus(due, -days(rng, 2, 7))).max(plus(issue, 1)))
        }
        PayerType::OnTime => {
            if rng.random_bool(0.85) {
                Pays::On(business_before(plus(due, -days(rng, 0, 1))).max(plus(issue, 1)))
            } else {
                Pays::On(business_after(plus(due, days(rng, 1, 3))))
            }
        }
        PayerType::Responsive => responds(rng, due),
        PayerType::ChronicLate => Pays::On(business_after(plus(due, days(rng, 15, 60)))),
        PayerType::Disputer => {
            if rng.random_bool(mix.dispute) {
                let opened = plus(issue, days(rng, 3, 20));
                let closed = plus(opened, days(rng, 5, 20));
                dispute = Some((opened, closed));
                Pays::Responds {
                    from: closed.max(due),
                    lag: days(rng, 1, 5),
                    fallback: business_after(plus(due.max(plus(closed, 3)), days(rng, 0, 10))),
                }
            } else {
                responds(rng, due)
            }
        }
        PayerType::DoNotContact => Pays::On(business_after(plus(due, days(rng, 0, 30)))),
        PayerType::NeverPay => Pays::Never,
    };
    // Drawn only when the mix asks, so the demo's stream stays as it was.
    let pays = match (mix.large_late, pays) {
        (Some((above, chance)), Pays::On(day))
            if invoice.amount > above && rng.random_bool(chance) =>
        {
            Pays::On(day.max(business_after(plus(due, days(rng, 5, 40)))))
        }
        (_, pays) => pays,
    };
    let can_split = matches!(
        payer,
        PayerType::Responsive
            | PayerType::ChronicLate
            | PayerType::Disputer
            | PayerType::DoNotContact
    );
    let parts = if can_split && rng.random_bool(mix.partial) {
        let share = Decimal::new(rng.random_range(30..=70), 2);
        let first = (invoice.amount * share).round_dp(2);
        vec![(0, first), (days(rng, 10, 30), invoice.amount - first)]
    } else {
        vec![(0, invoice.amount)]
    };
    let may_promise = matches!(
        payer,
        PayerType::Responsive | PayerType::ChronicLate | PayerType::Disputer | PayerType::NeverPay
    );
    let promise = (may_promise && rng.random_bool(mix.promise)).then(|| Promise {
        after_days: days(rng, 1, 3),
        kept: payer != PayerType::NeverPay && rng.random_bool(0.75),
        window_days: days(rng, 7, 14),
    });
    // Drawn for every invoice, so the stream of draws does not depend on
    // who heeds.
    let u: f64 = rng.random();
    let lag = days(rng, 1, 2);
    let heeds = !unmoved
        && matches!(
            payer,
            PayerType::Early | PayerType::OnTime | PayerType::Responsive | PayerType::Disputer
        );
    // Drawn last, and only when the mix has plans, so a mix without them
    // draws exactly what it always did.
    let payment_plan = (mix.plan > 0.0
        && matches!(
            payer,
            PayerType::Responsive | PayerType::ChronicLate | PayerType::Disputer
        )
        && rng.random_bool(mix.plan))
    .then(|| {
        let accepted = business_after(plus(due, days(rng, 5, 20)));
        let terms = PlanTerms {
            installments: 3,
            every_days: 30,
            down_payment: (invoice.amount / Decimal::TEN).round_dp(2),
        };
        (accepted, terms)
    });
    InvoicePlan {
        invoice,
        pays,
        parts,
        dispute,
        promise,
        heed: heeds.then_some(Heed { u, lag }),
        payment_plan,
    }
}

/// What the ERP records of an invoice when no reminder changes anything:
/// its payments and events, each on its day.
impl InvoicePlan {
    /// The day of the first payment without any contact: an answer to a
    /// contact never comes, so a responsive customer pays on its fallback.
    fn first_payment(&self) -> Option<NaiveDate> {
        match self.pays {
            Pays::On(day) => Some(day),
            Pays::Responds { fallback, .. } => Some(fallback),
            Pays::Never => None,
        }
    }

    /// The payments (part number, day, amount), without allocating.
    pub(crate) fn payment_days(&self) -> impl Iterator<Item = (usize, NaiveDate, Decimal)> + '_ {
        let first = self.first_payment();
        self.parts
            .iter()
            .enumerate()
            .filter_map(move |(k, (offset, amount))| {
                let first = first?;
                let day = if *offset == 0 {
                    first
                } else {
                    business_after(plus(first, *offset))
                };
                Some((k, day, *amount))
            })
    }

    /// The day a promise to pay is made: after the firm notice (a week or
    /// so after the due date), if the invoice is still unpaid then.
    fn promise_made(&self) -> Option<(NaiveDate, NaiveDate)> {
        let promise = self.promise?;
        let made = business_after(plus(self.invoice.due_date, 7 + promise.after_days));
        let first = self.first_payment();
        if first.is_some_and(|f| f <= made) {
            return None;
        }
        let until = match first {
            Some(f) if promise.kept => f,
            _ => plus(made, promise.window_days),
        };
        Some((made, until))
    }

    fn plan_accepted(&self) -> Option<(NaiveDate, &PlanTerms)> {
        let (accepted, terms) = self.payment_plan.as_ref()?;
        let first = self.first_payment();
        first
            .is_none_or(|f| f > *accepted)
            .then_some((*accepted, terms))
    }

    /// The days of the invoice's events (0: dispute opened, 1: closed,
    /// 2: promise, 3: plan accepted).
    fn event_days(&self) -> [Option<NaiveDate>; 4] {
        [
            self.dispute.map(|(opened, _)| opened),
            self.dispute.map(|(_, closed)| closed),
            self.promise_made().map(|(made, _)| made),
            self.plan_accepted().map(|(accepted, _)| accepted),
        ]
    }

    /// The last day anything happens to the invoice, if anything does.
    pub(crate) fn last_day(&self) -> Option<NaiveDate> {
        self.payment_days()
            .map(|(_, d, _)| d)
            .chain(self.event_days().into_iter().flatten())
            .max()
    }

    /// The payments dated inside `days`.
    pub fn payments_within(&self, days: impl Fn(NaiveDate) -> bool) -> Vec<Payment> {
        let id = &self.invoice.invoice_id;
        self.payment_days()
            .filter(|(_, day, _)| days(*day))
            .map(|(k, day, amount)| Payment {
                payment_id: format!("PAY-{id}-{}", k + 1),
                invoice_id: id.clone(),
                paid_on: day,
                amount,
            })
            .collect()
    }

    /// The events dated inside `days`.
    pub fn events_within(&self, days: impl Fn(NaiveDate) -> bool) -> Vec<Event> {
        let id = &self.invoice.invoice_id;
        let event = |tag: &str, date: NaiveDate, kind: EventKind| Event {
            event_id: format!("EV-{id}-{tag}"),
            date,
            kind,
            invoice_id: Some(id.clone()),
            action_id: None,
            message_id: None,
            by: None,
            reason: None,
        };
        let mut out = Vec::new();
        if let Some((opened, closed)) = self.dispute {
            if days(opened) {
                out.push(event("dispute", opened, EventKind::DisputeOpened));
            }
            if days(closed) {
                out.push(event("settled", closed, EventKind::DisputeClosed));
            }
        }
        if let Some((made, promised_until)) = self.promise_made().filter(|(m, _)| days(*m)) {
            out.push(event(
                "promise",
                made,
                EventKind::PromiseToPay { promised_until },
            ));
        }
        if let Some((accepted, terms)) = self.plan_accepted().filter(|(a, _)| days(*a)) {
            out.push(event(
                "plan",
                accepted,
                EventKind::PlanAccepted(terms.clone()),
            ));
        }
        out
    }
}
