//! Evaluation: one invoice's facts on one day to a [`Decision`].
//!
//! [`Policy::decide`] is the hot path the sweep runs for every open invoice:
//! it allocates nothing and returns bit sets; [`Policy::explain`] records
//! the whole trace for people. What a sweep *does* with a decision (catch-up,
//! do-not-contact, consolidation, caps) is the sweep's, in `collect-engine`:
//! `collect test` runs its cases through that sweep, not through a second
//! reading of the policy here.

use crate::ast::BinOp;
use crate::ast::Channel;
use crate::compile::{CAction, CArm, CExpr, CStep, Cap, Const, Policy};
use crate::facts::{FactId, Facts, Value};
use chrono::{Datelike, Days, NaiveDate, NaiveTime, Timelike, Weekday};
use serde::Serialize;

/// What the policy says about one invoice on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decision {
    /// Index of the first segment that matched.
    pub segment: Option<usize>,
    /// Bit `i` set: hold `i` applies.
    pub holds: u64,
    /// The customer is in the policy's control group (no pre-due steps).
    pub control_group: bool,
    /// Index of the segment's ladder.
    pub ladder: Option<usize>,
    /// Bit `i` set: step `i` of the ladder is scheduled on or before today and
    /// its condition holds (control-group customers have no pre-due steps).
    pub due: u64,
    /// The subset of `due` scheduled exactly today.
    pub today: u64,
    /// Pre-due steps that would be due but are withheld because the
    /// customer is in the control group (recorded, so the hold-out can be
    /// measured).
    pub held_out: u64,
    /// The policy is not yet in effect on this day.
    pub not_in_effect: bool,
}

impl Decision {
    pub fn is_held(&self) -> bool {
        self.holds != 0
    }

    /// The latest due step: where the ladder stands today.
    pub fn latest_due(&self) -> Option<usize> {
        (self.due != 0).then(|| 63 - self.due.leading_zeros() as usize)
    }
}

/// Iterates the set bits of a step or hold set.
pub fn bits(mut set: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (set != 0).then(|| {
            let i = set.trailing_zeros() as usize;
            set &= set - 1;
            i
        })
    })
}

/// FNV-1a, 64-bit: stable across versions and platforms, so the same customer
/// lands in the same experiment arm forever. Changing it reassigns arms.
fn stable_hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            h ^= 0x1f;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h = fnv_continue(h, part);
    }
    h
}

fn fnv_continue(mut h: u64, part: &str) -> u64 {
    for b in part.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A customer's bucket in `0..10_000` for a named assignment.
pub fn bucket(kind: &str, name: &str, customer_id: &str) -> u32 {
    bucket_after(bucket_prefix(kind, name), customer_id)
}

/// The hash state after `kind ␟ name ␟`, for [`bucket_after`]: the same
/// bucket as [`bucket`] without hashing the constant prefix every time.
pub(crate) fn bucket_prefix(kind: &str, name: &str) -> u64 {
    let h = stable_hash(&[kind, name]) ^ 0x1f;
    h.wrapping_mul(0x0100_0000_01b3)
}

pub(crate) fn bucket_after(prefix: u64, customer_id: &str) -> u32 {
    (fnv_continue(prefix, customer_id) % 10_000) as u32
}

impl Policy {
    /// The decision for one invoice on `facts.today`. No allocation.
    pub fn decide(&self, facts: &Facts<'_>) -> Decision {
        let mut d = Decision::default();
        if self.effective.is_some_and(|e| facts.today < e) {
            d.not_in_effect = true;
            return d;
        }
        for (i, h) in self.holds.iter().enumerate().take(64) {
            if truthy(eval(&h.condition, facts)) {
                d.holds |= 1 << i;
            }
        }
        d.segment = self
            .segments
            .iter()
            .position(|s| s.condition.as_ref().is_none_or(|c| truthy(eval(c, facts))));
        d.ladder = d
            .segment
            .and_then(|s| self.segments.get(s))
            .and_then(|s| s.ladder);
        let Some(ladder) = d.ladder.and_then(|l| self.ladders.get(l)) else {
            return d;
        };
        d.control_group = self.in_control_group(facts.customer.id);
        for (i, step) in ladder.steps.iter().enumerate().take(64) {
            let Some(date) = self.step_date(facts.invoice.due_date, step.offset) else {
                continue;
            };
            if date > facts.today {
                // Steps are sorted by offset, and rolling to business days
                // keeps that order (steps before the due date roll back,
                // the others forward), so no later step is due either.
                break;
            }
            if step
                .condition
                .as_ref()
                .is_none_or(|c| truthy(eval(c, facts)))
            {
                if d.control_group && step.offset < 0 {
                    d.held_out |= 1 << i;
                    continue;
                }
                d.due |= 1 << i;
                if date == facts.today {
                    d.today |= 1 << i;
                }
            }
        }
        d
    }

    /// The day a step falls on: due date plus offset. When the policy keeps
    /// to business days, a step before the due date moves to the previous
    /// business day (a heads-up must arrive before the due date, not on it)
    /// and a step on or after the due date moves to the next business day.
    pub fn step_date(&self, due_date: NaiveDate, offset: i64) -> Option<NaiveDate> {
        let date = if offset >= 0 {
            due_date.checked_add_days(Days::new(offset.unsigned_abs()))?
        } else {
            due_date.checked_sub_days(Days::new(offset.unsigned_abs()))?
        };
        Some(if offset < 0 {
            self.roll(date, NaiveDate::pred_opt)
        } else {
            self.roll(date, NaiveDate::succ_opt)
        })
    }

    /// `date` itself when contact is allowed that day, else the next day that
    /// is neither a weekend nor a listed holiday.
    pub fn next_business_day(&self, date: NaiveDate) -> NaiveDate {
        self.roll(date, NaiveDate::succ_opt)
    }

    fn roll(&self, mut date: NaiveDate, step: fn(&NaiveDate) -> Option<NaiveDate>) -> NaiveDate {
        if !self.limits.business_days {
            return date;
        }
        for _ in 0..400 {
            if self.is_business_day(date) {
                return date;
            }
            match step(&date) {
                Some(next) => date = next,
                None => return date,
            }
        }
        date
    }

    pub fn is_business_day(&self, date: NaiveDate) -> bool {
        !self.limits.business_days
            || (!matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
                && self.limits.holidays.binary_search(&date).is_err())
    }

    pub fn in_control_group(&self, customer_id: &str) -> bool {
        self.control_bp > 0 && bucket("control-group", &self.name, customer_id) < self.control_bp
    }

    /// The arm of an experiment a customer is in.
    pub fn arm<'p>(
        &self,
        arms: &'p [CArm],
        experiment: &str,
        customer_id: &str,
    ) -> Option<&'p CArm> {
        let b = bucket("experiment", experiment, customer_id);
        arms.iter().find(|a| b < a.upto_bp).or(arms.last())
    }

    /// The action a step takes for a customer, with experiments resolved:
    /// `(action, Some((experiment, arm)))`, and `None` as action for a control arm.
    pub fn resolve<'p>(&self, step: &'p CStep, customer_id: &str) -> Resolved<'p> {
        match &step.action {
            CAction::Experiment { name, arms } => {
                let arm = self.arm(arms, name, customer_id);
                Resolved {
                    action: arm.and_then(|a| a.action.as_deref()),
                    experiment: Some(name),
                    arm: arm.map(|a| a.name.as_str()),
                }
            }
            other => Resolved {
                action: Some(other),
                experiment: None,
                arm: None,
            },
        }
    }
}

/// A contact already made with a customer, for contact caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Contact {
    pub date: NaiveDate,
    pub channel: Channel,
}

/// What the guardrails need to know beyond the invoice's facts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'h> {
    /// The customer's past contacts (any invoice).
    pub history: &'h [Contact],
    /// The customer's local time when the sweep would send; `None` skips
    /// the quiet-hours check.
    pub local_time: Option<NaiveTime>,
}

impl Policy {
    /// The first contact cap that one more contact on `channel` on `today`
    /// would break, given the customer's contacts so far. A cap counts the
    /// contacts of its channel (`contact` counts all) in the `window_days`
    /// days ending today.
    pub fn cap_reached(
        &self,
        channel: Channel,
        today: NaiveDate,
        history: &[Contact],
    ) -> Option<&Cap> {
        self.limits.caps.iter().find(|cap| {
            let applies = |c: Channel| cap.channel == Channel::Contact || cap.channel == c;
            if !applies(channel) {
                return false;
            }
            let used = history
                .iter()
                .filter(|c| {
                    applies(c.channel)
                        && c.date <= today
                        && (today - c.date).num_days() < cap.window_days
                })
                .count();
            used >= cap.count as usize
        })
    }

    /// Whether `time` (the customer's local time) falls in the quiet hours.
    /// Quiet hours may wrap midnight (`20:00 to 08:00`).
    pub fn is_quiet(&self, time: NaiveTime) -> bool {
        let Some((from, to)) = self.limits.quiet_hours else {
            return false;
        };
        let minutes = |c: crate::ast::ClockTime| c.hour * 60 + c.minute;
        let t = time.hour() * 60 + time.minute();
        let (f, e) = (minutes(from), minutes(to));
        if f < e {
            f <= t && t < e
        } else {
            t >= f || t < e
        }
    }

    /// Why a contact on `channel` must wait, if it must: not a business day,
    /// quiet hours (emails and offers: letters are posted, and a call task waits
    /// in a person's queue until working hours), or a cap.
    pub fn guardrail(
        &self,
        channel: Channel,
        today: NaiveDate,
        local_time: Option<NaiveTime>,
        history: &[Contact],
    ) -> Option<String> {
        if !self.is_business_day(today) {
            return Some("not a business day".to_string());
        }
        if !matches!(channel, Channel::Letter | Channel::Call)
            && let Some(t) = local_time
            && self.is_quiet(t)
            && let Some((from, to)) = self.limits.quiet_hours
        {
            return Some(format!("quiet hours {from} to {to} customer time"));
        }
        self.cap_reached(channel, today, history).map(|cap| {
            format!(
                "at most {} {} per customer per {}d",
                cap.count,
                if cap.count == 1 {
                    cap.channel.as_str()
                } else {
                    cap.channel.plural()
                },
                cap.window_days
            )
        })
    }
}

/// A step's action with its experiment arm resolved.
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'p> {
    pub action: Option<&'p CAction>,
    pub experiment: Option<&'p str>,
    pub arm: Option<&'p str>,
}

/// The actions of one day, or why there are none, as the sweep decided
/// them (filled in by the caller of [`Policy::explain`]).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DayPlan {
    pub segment: Option<String>,
    pub actions: Vec<PlannedAction>,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedAction {
    /// Index of the step in its (sorted) ladder.
    pub step: usize,
    pub offset: i64,
    /// `email friendly-reminder`, `letter legal-notice`, …
    pub label: String,
    pub requires_approval: bool,
    pub experiment: Option<String>,
    pub arm: Option<String>,
    /// Line of the step in the policy file.
    pub line: u32,
    /// Why a guardrail holds the action back today (it is retried on the
    /// next sweep, not dropped); `None` when it may go out.
    pub deferred: Option<String>,
}

impl PlannedAction {
    /// The label with ` requires approval` when it does.
    pub fn describe(&self) -> String {
        if self.requires_approval {
            format!("{} requires approval", self.label)
        } else {
            self.label.clone()
        }
    }

    pub fn is_deferred(&self) -> bool {
        self.deferred.is_some()
    }
}

// ---------------------------------------------------------------- conditions

pub(crate) fn truthy(v: Value<'_>) -> bool {
    matches!(v, Value::Bool(true))
}

fn text_eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Evaluates a condition. A comparison with a missing fact is false;
/// arithmetic with a missing fact is missing.
pub fn eval<'a>(e: &'a CExpr, facts: &Facts<'a>) -> Value<'a> {
    match e {
        CExpr::Fact(id) => fact(*id, facts),
        CExpr::Const(c) => constant(c),
        CExpr::List(items) => Value::TextList(items),
        CExpr::Not(inner) => match eval(inner, facts) {
            Value::Bool(b) => Value::Bool(!b),
            _ => Value::Bool(false),
        },
        CExpr::IsMissing(inner, negated) => {
            let missing = matches!(eval(inner, facts), Value::Missing);
            Value::Bool(missing != *negated)
        }
        CExpr::Binary(op, l, r) => binary(*op, l, r, facts),
        CExpr::FactCmp(op, id, c) => Value::Bool(compare(*op, facts.get(*id), constant(c))),
    }
}

fn constant(c: &Const) -> Value<'_> {
    match c {
        Const::Bool(b) => Value::Bool(*b),
        Const::Number(n) => Value::Number(*n),
        Const::Money(m) => Value::Money(*m),
        Const::Percent(p) => Value::Percent(*p),
        Const::Date(d) => Value::Date(*d),
        Const::Days(d) => Value::Days(*d),
        Const::Text(t) => Value::Text(t),
        Const::Missing => Value::Missing,
    }
}

fn fact<'a>(id: FactId, facts: &Facts<'a>) -> Value<'a> {
    facts.get(id)
}

fn binary<'a>(op: BinOp, l: &'a CExpr, r: &'a CExpr, facts: &Facts<'a>) -> Value<'a> {
    match op {
        BinOp::And => Value::Bool(truthy(eval(l, facts)) && truthy(eval(r, facts))),
        BinOp::Or => Value::Bool(truthy(eval(l, facts)) || truthy(eval(r, facts))),
        BinOp::In => match (eval(l, facts), eval(r, facts)) {
            (Value::Text(t), Value::TextList(list)) => {
                Value::Bool(list.iter().any(|x| text_eq(x, t)))
            }
            _ => Value::Bool(false),
        },
        BinOp::Add | BinOp::Sub => arith(op == BinOp::Add, eval(l, facts), eval(r, facts)),
        _ => Value::Bool(compare(op, eval(l, facts), eval(r, facts))),
    }
}

fn arith<'a>(add: bool, l: Value<'a>, r: Value<'a>) -> Value<'a> {
    let days = |d: NaiveDate, n: i64, forward: bool| {
        let n = if forward { n } else { -n };
        let r = if n >= 0 {
            d.checked_add_days(Days::new(n.unsigned_abs()))
        } else {
            d.checked_sub_days(Days::new(n.unsigned_abs()))
        };
        r.map_or(Value::Missing, Value::Date)
    };
    let dec = |a: rust_decimal::Decimal, b: rust_decimal::Decimal| {
        if add {
            a.checked_add(b)
        } else {
            a.checked_sub(b)
        }
    };
    match (l, r) {
        (Value::Date(d), Value::Days(n)) => days(d, n, add),
        (Value::Days(n), Value::Date(d)) if add => days(d, n, true),
        (Value::Number(a), Value::Number(b)) => dec(a, b).map_or(Value::Missing, Value::Number),
        (Value::Money(a), Value::Money(b)) => dec(a, b).map_or(Value::Missing, Value::Money),
        (Value::Percent(a), Value::Percent(b)) => Value::Percent(if add { a + b } else { a - b }),
        (Value::Days(a), Value::Days(b)) => Value::Days(if add {
            a.saturating_add(b)
        } else {
            a.saturating_sub(b)
        }),
        _ => Value::Missing,
    }
}

fn compare(op: BinOp, l: Value<'_>, r: Value<'_>) -> bool {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (l, r) {
        (Value::Number(a), Value::Number(b)) | (Value::Money(a), Value::Money(b)) => {
            Some(a.cmp(&b))
        }
        (Value::Percent(a), Value::Percent(b)) => a.partial_cmp(&b),
        (Value::Date(a), Value::Date(b)) => Some(a.cmp(&b)),
        (Value::Days(a), Value::Days(b)) => Some(a.cmp(&b)),
        (Value::Text(a), Value::Text(b)) => {
            return match op {
                BinOp::Eq => text_eq(a, b),
                BinOp::Ne => !text_eq(a, b),
                _ => false,
            };
        }
        (Value::Bool(a), Value::Bool(b)) => {
            return match op {
                BinOp::Eq => a == b,
                BinOp::Ne => a != b,
                _ => false,
            };
        }
        _ => None,
    };
    let Some(ord) = ord else { return false };
    match op {
        BinOp::Eq => ord == Ordering::Equal,
        BinOp::Ne => ord != Ordering::Equal,
        BinOp::Lt => ord == Ordering::Less,
        BinOp::Le => ord != Ordering::Greater,
        BinOp::Gt => ord == Ordering::Greater,
        BinOp::Ge => ord != Ordering::Less,
        _ => false,
    }
}
