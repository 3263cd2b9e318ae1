//! The checks made just before a message is handed over, against the
//! customer's current state (do-not-contact, a held or invalid address,
//! settled, written off or placed with an agency, holds, caps).

use crate::ledger::StoredMessage;
use chrono::NaiveDate;
use collect_engine::book::Book;
use collect_engine::contact::{ContactHold, HoldReason};
use collect_engine::domain::{ActionRecord, ActionStatus, Channel as AuditChannel, Customer};
use collect_engine::sweep::facts;
use policy_lang::ast::Channel;
use policy_lang::eval::{Contact, bits};
use rust_decimal::Decimal;

use super::{Checked, Sweeper};

impl Sweeper<'_> {
    /// The checks made just before a message is handed over, against the
    /// customer's current state.
    pub(super) fn check(
        &self,
        fresh: &Book,
        m: &StoredMessage,
        actions: Vec<ActionRecord>,
        making: &[Contact],
        day: NaiveDate,
    ) -> Checked {
        let mut out = Checked {
            keep: Vec::new(),
            drop: Vec::new(),
            hold: None,
        };
        let all = |out: &mut Checked, actions: Vec<ActionRecord>, status, why: String| {
            for a in actions {
                out.drop.push((a, status, why.clone()));
            }
        };
        let Some(customer) = fresh.customers.get(m.customer_id.as_str()) else {
            all(
                &mut out,
                actions,
                ActionStatus::Deferred,
                format!(
                    "held when it was about to go out: customer `{}` is no longer in the book",
                    m.customer_id
                ),
            );
            return out;
        };
        if customer.do_not_contact {
            all(
                &mut out,
                actions,
                ActionStatus::Deferred,
                "held when it was about to go out: the customer is marked do-not-contact"
                    .to_string(),
            );
            return out;
        }
        if m.channel != AuditChannel::Call {
            // A held address (bounced, complained, refused, invalid): the
            // email steps wait for a person; calls are not blocked.
            let hold = fresh.contact_hold(customer).cloned().or_else(|| {
                let e = customer.email.trim().parse::<lettre::Address>().err()?;
                Some(ContactHold {
                    customer_id: customer.customer_id.as_str().into(),
                    address: customer.email.clone(),
                    reason: HoldReason::InvalidAddress {
                        words: e.to_string(),
                    },
                    since: day,
                    source: format!("sweep:{}", m.message_id),
                    ended: None,
                })
            });
            if let Some(hold) = hold {
                all(
                    &mut out,
                    actions,
                    ActionStatus::Deferred,
                    hold.deferral_note(),
                );
                if hold.ended.is_none() && fresh.contact_hold(customer).is_none() {
                    out.hold = Some(hold);
                }
                return out;
            }
        }
        let stats = fresh.customer_stats(&customer.customer_id, day);
        let mut left = Vec::new();
        for a in actions {
            match self.invoice_check(fresh, customer, &stats, m, &a, day) {
                Some((status, why)) => out.drop.push((a, status, why)),
                None => left.push(a),
            }
        }
        if left.is_empty() {
            return out;
        }
        // Caps and one email a day, against the contacts recorded now (this
        // message is not among them: it is not sent).
        let mut history = fresh.contacts(&customer.customer_id, day);
        history.extend_from_slice(making);
        let ch = m.channel.contact();
        let local = self.options.local_time_for(&customer.timezone, day);
        let why = match ch {
            Some(Channel::Email)
                if history
                    .iter()
                    .any(|c| c.date == day && c.channel == Channel::Email) =>
            {
                Some("the customer already got an email today".to_string())
            }
            Some(c) => self.policy.guardrail(c, day, Some(local), &history),
            None => None,
        };
        match why {
            Some(reason) => all(
                &mut out,
                left,
                ActionStatus::Deferred,
                format!(
                    "deferred when it was about to go out: {reason}; retried on the next sweep"
                ),
            ),
            None => out.keep = left,
        }
        out
    }

    /// Why one invoice's action must not go out now, if it must not.
    fn invoice_check(
        &self,
        fresh: &Book,
        customer: &Customer,
        stats: &collect_engine::book::CustomerStats,
        m: &StoredMessage,
        a: &ActionRecord,
        day: NaiveDate,
    ) -> Option<(ActionStatus, String)> {
        let Some(inv) = fresh.invoice(&a.invoice_id) else {
            return Some((
                ActionStatus::Skipped,
                format!(
                    "skipped when it was about to go out: invoice `{}` is no longer in the book",
                    a.invoice_id
                ),
            ));
        };
        if !fresh.is_open(inv, day) {
            return Some((
                ActionStatus::Skipped,
                "skipped when it was about to go out: the invoice was settled".to_string(),
            ));
        }
        if let Some(stop) = collect_engine::ladder::stop(fresh, inv, day) {
            return Some((
                ActionStatus::Skipped,
                format!(
                    "skipped when it was about to go out: dunning stopped, {}",
                    stop.why()
                ),
            ));
        }
        let d = self
            .policy
            .decide(&facts(fresh, customer, inv, stats, a.risk, day));
        if d.not_in_effect {
            return Some((
                ActionStatus::Deferred,
                "held when it was about to go out: the policy is not in effect".to_string(),
            ));
        }
        if d.is_held() {
            let holds: Vec<&str> = bits(d.holds)
                .filter_map(|i| self.policy.holds.get(i))
                .map(|h| h.name.as_str())
                .collect();
            return Some((
                ActionStatus::Deferred,
                format!(
                    "held when it was about to go out: {}",
                    if holds.is_empty() {
                        "a hold of the policy".to_string()
                    } else {
                        format!("hold `{}`", holds.join("`, `"))
                    }
                ),
            ));
        }
        if m.channel == AuditChannel::Offer {
            let balance = fresh.balance(inv, day);
            let offered: Option<Decimal> = m.plan.as_ref().map(|items| {
                items
                    .iter()
                    .map(|(_, amount)| *amount)
                    .fold(Decimal::ZERO, Decimal::saturating_add)
            });
            if offered != Some(balance) {
                return Some((
                    ActionStatus::Deferred,
                    "deferred when it was about to go out: the balance changed since the plan was worked out; the next sweep offers it again".to_string(),
                ));
            }
        }
        None
    }
}
