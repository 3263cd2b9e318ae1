//! When the next scheduled sweep runs: what the page says after an
//! approval ("goes out with the next scheduled sweep, Tue 3 Mar 06:00
//! UTC").
//!
//! The template passes the sweep's EventBridge Scheduler expression and
//! its time zone (`SWEEP_SCHEDULE`, `SCHEDULE_TIMEZONE`). A `cron(…)`
//! expression's next run is computed here (minutes, hours, day of month,
//! month, day of week, year; `*`, `?`, lists, ranges, `/` steps, day and
//! month names, and the day rules `L`, `LW`, `15W`, `6L` and `2#1`). The
//! template accepts only `cron(…)` for the sweep: a `rate(…)` has no time of
//! day to tell people, and the function refuses to start with one.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A schedule expression this module cannot compute a next run for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "the sweep's schedule `{0}` is not a cron(…) expression: a rate(…) has no time of day to tell people when an approved letter goes out"
    )]
    NotCron(String),
    #[error("the sweep's schedule `{expr}`: {reason}")]
    Field { expr: String, reason: String },
    #[error("the sweep's time zone `{0}` is not an IANA time zone name")]
    TimeZone(String),
    #[error("the sweep's schedule `{0}` has no run in the next five years")]
    NoRun(String),
}

/// One field's allowed values.
#[derive(Debug, Clone)]
struct Set(Vec<u32>);

impl Set {
    fn has(&self, v: u32) -> bool {
        self.0.contains(&v)
    }
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
/// AWS numbers the days of the week 1 (Sunday) to 7 (Saturday).
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn value(v: &str, lo: u32, names: &[&str]) -> Option<u32> {
    let upper = v.to_ascii_uppercase();
    if let Some(i) = names.iter().position(|n| *n == upper) {
        return u32::try_from(i).ok().map(|i| i + lo);
    }
    v.parse().ok()
}

/// `*`, `?`, `5`, `1-5`, `MON-FRI`, `0/15`, `10-50/10`, lists of these.
fn field(text: &str, lo: u32, hi: u32, names: &[&str]) -> Result<Set, String> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().ok().filter(|s| *s > 0).ok_or(part)?),
            None => (part, 1),
        };
        let (from, to) = match range {
            "*" | "?" => (lo, hi),
            r => match r.split_once('-') {
                Some((a, b)) => (
                    value(a, lo, names).ok_or(part)?,
                    value(b, lo, names).ok_or(part)?,
                ),
                None => {
                    let v = value(r, lo, names).ok_or(part)?;
                    (v, if step > 1 { hi } else { v })
                }
            },
        };
        if from < lo || to > hi || from > to {
            return Err(part.to_string());
        }
        out.extend((from..=to).step_by(step as usize));
    }
    out.sort_unstable();
    out.dedup();
    Ok(Set(out))
}

/// The day-of-month field.
#[derive(Debug, Clone)]
enum Days {
    Set(Set),
    /// `L`: the month's last day.
    Last,
    /// `LW`: the month's last weekday.
    LastWeekday,
    /// `15W`: the weekday nearest the 15th, within the month.
    NearestWeekday(u32),
}

/// The day-of-week field.
#[derive(Debug, Clone)]
enum Weekdays {
    Set(Set),
    /// `6L`: the month's last Friday.
    Last(u32),
    /// `2#1`: the month's first Monday.
    Nth(u32, u32),
}

/// A parsed `cron(…)` expression.
#[derive(Debug, Clone)]
pub struct Cron {
    minutes: Set,
    hours: Set,
    days: Days,
    months: Set,
    weekdays: Weekdays,
    years: Set,
    expr: String,
}

fn last_day(d: NaiveDate) -> u32 {
    (28..=31)
        .rev()
        .find(|n| NaiveDate::from_ymd_opt(d.year(), d.month(), *n).is_some())
        .unwrap_or(28)
}

/// Saturday and Sunday are not weekdays.
fn is_weekday(d: NaiveDate) -> bool {
    d.weekday().number_from_monday() <= 5
}

/// The weekday nearest the `n`th within `d`'s month (AWS's `nW`).
fn nearest_weekday(d: NaiveDate, n: u32) -> Option<u32> {
    let target = NaiveDate::from_ymd_opt(d.year(), d.month(), n.min(last_day(d)))?;
    if is_weekday(target) {
        return Some(target.day());
    }
    let before = target
        .pred_opt()
        .filter(|p| p.month() == d.month() && is_weekday(*p));
    let after = target
        .succ_opt()
        .filter(|a| a.month() == d.month() && is_weekday(*a));
    let after2 = target
        .succ_opt()
        .and_then(|a| a.succ_opt())
        .filter(|a| a.month() == d.month() && is_weekday(*a));
    let before2 = target
        .pred_opt()
        .and_then(|b| b.pred_opt())
        .filter(|b| b.month() == d.month() && is_weekday(*b));
    // Saturday: Friday, or Monday at the month's start; Sunday: Monday, or
    // Friday at the month's end.
    match target.weekday() {
        chrono::Weekday::Sat => before.or(after2),
        _ => after.or(before2),
    }
    .map(|x| x.day())
}

fn days_field(text: &str) -> Result<Days, String> {
    match text {
        "L" => Ok(Days::Last),
        "LW" => Ok(Days::LastWeekday),
        t if t.ends_with('W') => t
            .trim_end_matches('W')
            .parse()
            .ok()
            .filter(|n| (1..=31).contains(n))
            .map(Days::NearestWeekday)
            .ok_or_else(|| t.to_string()),
        t => field(t, 1, 31, &[]).map(Days::Set),
    }
}

fn weekdays_field(text: &str) -> Result<Weekdays, String> {
    if let Some(d) = text.strip_suffix('L').filter(|d| !d.is_empty()) {
        return value(d, 1, &DAYS)
            .filter(|d| (1..=7).contains(d))
            .map(Weekdays::Last)
            .ok_or_else(|| text.to_string());
    }
    if let Some((d, n)) = text.split_once('#') {
        let d = value(d, 1, &DAYS).filter(|d| (1..=7).contains(d));
        let n = n.parse().ok().filter(|n| (1..=5).contains(n));
        return match (d, n) {
            (Some(d), Some(n)) => Ok(Weekdays::Nth(d, n)),
            _ => Err(text.to_string()),
        };
    }
    field(text, 1, 7, &DAYS).map(Weekdays::Set)
}

impl Cron {
    pub fn parse(expr: &str) -> Result<Cron, ScheduleError> {
        let inner = expr
            .trim()
            .strip_prefix("cron(")
            .and_then(|r| r.strip_suffix(')'))
            .ok_or_else(|| ScheduleError::NotCron(expr.to_string()))?;
        let fields: Vec<&str> = inner.split_whitespace().collect();
        let [mi, h, dom, mo, dow, y] = fields.as_slice() else {
            return Err(ScheduleError::Field {
                expr: expr.to_string(),
                reason: "a cron expression has six fields".into(),
            });
        };
        let bad = |part: String| ScheduleError::Field {
            expr: expr.to_string(),
            reason: format!("`{part}` is not a value, range, step or day rule of its field"),
        };
        Ok(Cron {
            minutes: field(mi, 0, 59, &[]).map_err(bad)?,
            hours: field(h, 0, 23, &[]).map_err(bad)?,
            days: days_field(dom).map_err(bad)?,
            months: field(mo, 1, 12, &MONTHS).map_err(bad)?,
            weekdays: weekdays_field(dow).map_err(bad)?,
            years: field(y, 1970, 2199, &[]).map_err(bad)?,
            expr: expr.to_string(),
        })
    }

    fn runs_on(&self, d: NaiveDate) -> bool {
        let weekday = d.weekday().num_days_from_sunday() + 1;
        let day_ok = match &self.days {
            Days::Set(s) => s.has(d.day()),
            Days::Last => d.day() == last_day(d),
            Days::LastWeekday => {
                is_weekday(d)
                    && (d.day() + 1..=last_day(d)).all(|n| {
                        NaiveDate::from_ymd_opt(d.year(), d.month(), n)
                            .is_some_and(|x| !is_weekday(x))
                    })
            }
            Days::NearestWeekday(n) => nearest_weekday(d, *n) == Some(d.day()),
        };
        let weekday_ok = match &self.weekdays {
            Weekdays::Set(s) => s.has(weekday),
            Weekdays::Last(w) => *w == weekday && d.day() + 7 > last_day(d),
            Weekdays::Nth(w, n) => *w == weekday && (d.day() - 1) / 7 + 1 == *n,
        };
        u32::try_from(d.year()).is_ok_and(|y| self.years.has(y))
            && self.months.has(d.month())
            && day_ok
            && weekday_ok
    }

    /// The first run strictly after `now`, in the schedule's time zone.
    pub fn next_after(&self, now: DateTime<Utc>, tz: Tz) -> Result<DateTime<Utc>, ScheduleError> {
        let start = now.with_timezone(&tz).date_naive();
        for d in start.iter_days().take(5 * 366) {
            if !self.runs_on(d) {
                continue;
            }
            for h in &self.hours.0 {
                for m in &self.minutes.0 {
                    let Some(t) = NaiveTime::from_hms_opt(*h, *m, 0) else {
                        continue;
                    };
                    // A time a clock change skips does not run.
                    let Some(at) = tz.from_local_datetime(&d.and_time(t)).earliest() else {
                        continue;
                    };
                    let at = at.with_timezone(&Utc);
                    if at > now {
                        return Ok(at);
                    }
                }
            }
        }
        Err(ScheduleError::NoRun(self.expr.clone()))
    }
}

/// The next run of `expr` (EventBridge Scheduler syntax) in `timezone`
/// after `now`.
pub fn next_run(
    expr: &str,
    timezone: &str,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, ScheduleError> {
    let tz: Tz = timezone
        .trim()
        .parse()
        .map_err(|_| ScheduleError::TimeZone(timezone.to_string()))?;
    Cron::parse(expr)?.next_after(now, tz)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_default_schedule_runs_at_six_on_weekdays() {
        let cron = "cron(0 6 ? * MON-FRI *)";
        // Monday 2027-03-01, before six: today at six.
        assert_eq!(
            next_run(cron, "UTC", at("2027-03-01T05:59:00Z")).unwrap(),
            at("2027-03-01T06:00:00Z")
        );
        // Monday at six exactly: the run has started; the next is Tuesday's.
        assert_eq!(
            next_run(cron, "UTC", at("2027-03-01T06:00:00Z")).unwrap(),
            at("2027-03-02T06:00:00Z")
        );
        // Friday afternoon: Monday.
        assert_eq!(
            next_run(cron, "UTC", at("2027-03-05T15:00:00Z")).unwrap(),
            at("2027-03-08T06:00:00Z")
        );
    }

    #[test]
    fn a_time_zone_moves_the_run_with_its_clock_changes() {
        let cron = "cron(30 7 ? * 2-6 *)";
        // Berlin in winter is UTC+1, in summer UTC+2 (from 2027-03-28).
        assert_eq!(
            next_run(cron, "Europe/Berlin", at("2027-03-26T12:00:00Z")).unwrap(),
            at("2027-03-29T05:30:00Z")
        );
        assert_eq!(
            next_run(cron, "Europe/Berlin", at("2027-03-25T12:00:00Z")).unwrap(),
            at("2027-03-26T06:30:00Z")
        );
    }

    #[test]
    fn lists_steps_and_month_names() {
        assert_eq!(
            next_run(
                "cron(0/20 8,16 1 JAN,JUL ? *)",
                "UTC",
                at("2027-01-01T08:41:00Z")
            )
            .unwrap(),
            at("2027-01-01T16:00:00Z")
        );
        assert_eq!(
            next_run(
                "cron(0/20 8,16 1 JAN,JUL ? *)",
                "UTC",
                at("2027-01-01T17:00:00Z")
            )
            .unwrap(),
            at("2027-07-01T08:00:00Z")
        );
    }

    #[test]
    fn the_day_rules_l_w_and_hash() {
        let now = at("2027-02-10T00:00:00Z");
        let next = |e: &str| next_run(e, "UTC", now).unwrap();
        // L: 28 February 2027.
        assert_eq!(next("cron(0 6 L * ? *)"), at("2027-02-28T06:00:00Z"));
        // LW: Friday 26 February (the 27th and 28th are a weekend).
        assert_eq!(next("cron(0 6 LW * ? *)"), at("2027-02-26T06:00:00Z"));
        // 13W: Saturday the 13th, so Friday the 12th.
        assert_eq!(next("cron(0 6 13W * ? *)"), at("2027-02-12T06:00:00Z"));
        // 6L: the last Friday, 26 February; MON#1: the first Monday of March.
        assert_eq!(next("cron(0 6 ? * 6L *)"), at("2027-02-26T06:00:00Z"));
        assert_eq!(next("cron(0 6 ? * MON#1 *)"), at("2027-03-01T06:00:00Z"));
        // Names with an L or a W in them are names.
        assert_eq!(next("cron(0 6 ? JUL WED *)"), at("2027-07-07T06:00:00Z"));
    }

    #[test]
    fn what_is_not_computed_says_so() {
        let now = at("2027-03-01T00:00:00Z");
        assert!(matches!(
            next_run("rate(1 day)", "UTC", now),
            Err(ScheduleError::NotCron(_))
        ));
        let e = next_run("cron(0 6 32W * ? *)", "UTC", now).unwrap_err();
        assert!(e.to_string().contains("`32W` is not a value"), "{e}");
        assert!(matches!(
            next_run("cron(0 6 ? * MON-FRI *)", "Mars/Base", now),
            Err(ScheduleError::TimeZone(_))
        ));
        assert!(matches!(
            next_run("cron(0 6 ? * MON-FRI 2020)", "UTC", now),
            Err(ScheduleError::NoRun(_))
        ));
        assert!(matches!(
            next_run("cron(0 6 * *)", "UTC", now),
            Err(ScheduleError::Field { .. })
        ));
    }
}
