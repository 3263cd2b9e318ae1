//! The measures of a group of actions (a policy step, a template, a
//! channel, a segment, an experiment arm, an offset day, a weekday).
//!
//! - **Response rates** (emails only): the share of the emails whose action
//!   or message got at least one `mail_opened`, `mail_clicked`,
//!   `mail_replied` event; each is counted as recorded (a click does not
//!   imply an open).
//! - **Pay rate within N days** (N = 3, 7, 14): among the actions at least N
//!   days old on the report's day, the share after which the invoice was
//!   paid in full within N days *by a payment matched to that action* (no
//!   other action in between: the last touch gets the credit).
//! - **Days to payment**: from the action to the payment that settled the
//!   invoice, over the actions that payment is matched to; **days past due
//!   at payment**: from the due date to that payment (negative: early).

use super::outcomes::{Exposure, Outcome};
use super::stats::wilson_counts;
use crate::domain::Channel;
use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use std::collections::BTreeMap;

/// The windows of the pay rates, in days.
pub const WINDOWS: [i64; 3] = [3, 7, 14];

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Measures {
    pub key: String,
    /// Actions taken (or, in `by_arm`, withheld by design too).
    pub actions: u32,
    pub withheld: u32,
    pub emails: u32,
    pub delivered: u32,
    pub bounced: u32,
    pub complained: u32,
    pub opened: u32,
    pub clicked: u32,
    pub replied: u32,
    pub open_rate: Option<f64>,
    pub click_rate: Option<f64>,
    pub reply_rate: Option<f64>,
    /// Actions whose 3/7/14-day window has ended, and how many paid in it.
    pub known_3d: u32,
    pub paid_3d: u32,
    pub pay_rate_3d: Option<f64>,
    pub known_7d: u32,
    pub paid_7d: u32,
    pub pay_rate_7d: Option<f64>,
    /// The 95% Wilson interval of the 7-day pay rate.
    pub pay_rate_7d_ci_low: Option<f64>,
    pub pay_rate_7d_ci_high: Option<f64>,
    pub known_14d: u32,
    pub paid_14d: u32,
    pub pay_rate_14d: Option<f64>,
    pub avg_days_to_payment: Option<f64>,
    pub avg_days_past_due_at_payment: Option<f64>,
    pub payments: u32,
    pub partial_payments: u32,
    pub promises: u32,
    pub promises_kept: u32,
    pub promises_broken: u32,
    pub plans_accepted: u32,
    pub plans_defaulted: u32,
    pub disputes: u32,
}

fn share(x: u32, n: u32) -> Option<f64> {
    (n > 0).then(|| f64::from(x) / f64::from(n))
}

fn mean(sum: i64, n: u32) -> Option<f64> {
    // Sums of day counts: far inside f64's exact range.
    (n > 0).then(|| sum as f64 / f64::from(n))
}

/// Accumulates one group.
#[derive(Debug, Default)]
struct Acc {
    m: Measures,
    days_to_payment: i64,
    days_past_due: i64,
    settled: u32,
}

impl Acc {
    fn add(&mut self, e: &Exposure<'_>, o: &Outcome, as_of: NaiveDate) {
        let m = &mut self.m;
        m.actions += 1;
        if e.withheld {
            m.withheld += 1;
        }
        if e.action.channel == Channel::Email && !e.withheld {
            m.emails += 1;
            m.delivered += u32::from(o.delivered);
            m.bounced += u32::from(o.bounced);
            m.complained += u32::from(o.complained);
            m.opened += u32::from(o.opened);
            m.clicked += u32::from(o.clicked);
            m.replied += u32::from(o.replied);
        }
        let paid_after = o
            .settled_on
            .filter(|_| o.settled_here)
            .map(|s| (s - e.day).num_days());
        for (window, known, paid) in [
            (3, &mut m.known_3d, &mut m.paid_3d),
            (7, &mut m.known_7d, &mut m.paid_7d),
            (14, &mut m.known_14d, &mut m.paid_14d),
        ] {
            if (as_of - e.day).num_days() >= window {
                *known += 1;
                if paid_after.is_some_and(|d| d <= window) {
                    *paid += 1;
                }
            }
        }
        if let (Some(after), Some(settled)) = (paid_after, o.settled_on) {
            self.settled += 1;
            self.days_to_payment += after;
            self.days_past_due += (settled - e.invoice.due_date).num_days();
        }
        m.payments += o.payments;
        m.partial_payments += o.partial_payments;
        m.promises += o.promises;
        m.promises_kept += o.promises_kept;
        m.promises_broken += o.promises_broken;
        m.plans_accepted += o.plans_accepted;
        m.plans_defaulted += o.plans_defaulted;
        m.disputes += o.disputes;
    }

    fn finish(mut self, key: String) -> Measures {
        let m = &mut self.m;
        m.key = key;
        m.open_rate = share(m.opened, m.emails);
        m.click_rate = share(m.clicked, m.emails);
        m.reply_rate = share(m.replied, m.emails);
        m.pay_rate_3d = share(m.paid_3d, m.known_3d);
        m.pay_rate_7d = share(m.paid_7d, m.known_7d);
        m.pay_rate_14d = share(m.paid_14d, m.known_14d);
        if let Some(i) = wilson_counts(m.paid_7d, m.known_7d) {
            m.pay_rate_7d_ci_low = Some(i.low);
            m.pay_rate_7d_ci_high = Some(i.high);
        }
        m.avg_days_to_payment = mean(self.days_to_payment, self.settled);
        m.avg_days_past_due_at_payment = mean(self.days_past_due, self.settled);
        self.m
    }
}

/// The measures of each group, groups ordered by `K`.
pub fn group_by<'a, 'b: 'a, K: Ord>(
    rows: impl Iterator<Item = &'a (Exposure<'b>, Outcome)>,
    as_of: NaiveDate,
    key: impl Fn(&Exposure<'b>) -> Option<(K, String)>,
) -> Vec<Measures> {
    let mut groups: BTreeMap<K, (String, Acc)> = BTreeMap::new();
    for (e, o) in rows {
        let Some((k, name)) = key(e) else { continue };
        groups
            .entry(k)
            .or_insert_with(|| (name, Acc::default()))
            .1
            .add(e, o, as_of);
    }
    groups
        .into_values()
        .map(|(name, acc)| acc.finish(name))
        .collect()
}

/// A step offset as the policy writes it: `due - 3d`, `due`, `due + 7d`.
pub fn offset_text(offset: i64) -> String {
    match offset {
        0 => "due".to_string(),
        o if o < 0 => format!("due - {}d", o.unsigned_abs()),
        o => format!("due + {o}d"),
    }
}

/// Days from the due date as a label: `-3`, `0`, `+7`.
pub fn days_text(days: i64) -> String {
    if days > 0 {
        format!("+{days}")
    } else {
        days.to_string()
    }
}

pub fn weekday_name(day: NaiveDate) -> &'static str {
    match day.weekday() {
        chrono::Weekday::Mon => "Monday",
        chrono::Weekday::Tue => "Tuesday",
        chrono::Weekday::Wed => "Wednesday",
        chrono::Weekday::Thu => "Thursday",
        chrono::Weekday::Fri => "Friday",
        chrono::Weekday::Sat => "Saturday",
        chrono::Weekday::Sun => "Sunday",
    }
}

/// Optimal reminder timing: the 7-day pay rate of the actions that went
/// out, by the day they went out relative to the due date and by weekday.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timing {
    /// The sweep's send time (UTC), when known: every message goes out then.
    pub send_time_utc: Option<String>,
    pub hour_note: String,
    pub by_days_from_due: Vec<TimingRow>,
    pub by_weekday: Vec<TimingRow>,
    /// Among the rows with at least `min_actions` known outcomes, the one
    /// with the highest 7-day pay rate.
    pub best_days_from_due: Option<String>,
    pub best_weekday: Option<String>,
    pub min_actions: u32,
    pub caution: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TimingRow {
    pub key: String,
    pub days_from_due: Option<i64>,
    pub actions: u32,
    pub known_7d: u32,
    pub paid_7d: u32,
    pub pay_rate_7d: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
}

impl TimingRow {
    fn of(m: &Measures, days_from_due: Option<i64>) -> TimingRow {
        TimingRow {
            key: m.key.clone(),
            days_from_due,
            actions: m.actions,
            known_7d: m.known_7d,
            paid_7d: m.paid_7d,
            pay_rate_7d: m.pay_rate_7d,
            ci_low: m.pay_rate_7d_ci_low,
            ci_high: m.pay_rate_7d_ci_high,
        }
    }
}

fn best(rows: &[TimingRow], min: u32) -> Option<String> {
    rows.iter()
        .filter(|r| r.known_7d >= min)
        .filter_map(|r| r.pay_rate_7d.map(|p| (p, r)))
        .max_by(|(a, _), (b, _)| a.total_cmp(b))
        .map(|(_, r)| r.key.clone())
}

/// Timing over the actions that went out (withheld steps have no timing).
pub fn timing<'a, 'b: 'a>(
    rows: &'a [(Exposure<'b>, Outcome)],
    as_of: NaiveDate,
    send_time_utc: Option<String>,
    min_actions: u32,
) -> Timing {
    let sent = || rows.iter().filter(|(e, _)| !e.withheld);
    let by_days: Vec<TimingRow> = group_by(sent(), as_of, |e| {
        let d = (e.day - e.invoice.due_date).num_days();
        Some((d, days_text(d)))
    })
    .iter()
    .map(|m| TimingRow::of(m, m.key.parse::<i64>().ok()))
    .collect();
    let by_weekday: Vec<TimingRow> = group_by(sent(), as_of, |e| {
        Some((
            e.day.weekday().num_days_from_monday(),
            weekday_name(e.day).to_string(),
        ))
    })
    .iter()
    .map(|m| TimingRow::of(m, None))
    .collect();
    let hour_note = match &send_time_utc {
        Some(t) => format!(
            "Every message goes out at the sweep's send time, {t} UTC (send_time_utc in \
             config.toml), so the hour is the same for all and cannot be compared."
        ),
        None => "Every message goes out at the sweep's send time (send_time_utc in config.toml), \
                 so the hour is the same for all and cannot be compared."
            .to_string(),
    };
    Timing {
        send_time_utc,
        hour_note,
        best_days_from_due: best(&by_days, min_actions),
        best_weekday: best(&by_weekday, min_actions),
        by_days_from_due: by_days,
        by_weekday,
        min_actions,
        caution: "Observational: a later day reaches the invoices still unpaid by then, so \
                  compare days with care; only an experiment proves a timing better."
            .to_string(),
    }
}
