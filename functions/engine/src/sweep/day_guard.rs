//! The guard on the day a real sweep is asked to run: no later than
//! tomorrow by the wall clock, unless the person asking says so.
//!
//! A sweep records its actions dated the day it is given, and a home (or an
//! AWS shard) refuses to sweep a day earlier than the last one it swept. So
//! a mistyped year (`2099-06-15` for `2026-06-15`) buries the book: every
//! step due before that day is taken or skipped at once, letters wait for
//! approval, and the real day is then refused. Tomorrow is still allowed,
//! for a runner whose day starts ahead of UTC. Simulations run on their own
//! clock and never ask this guard.
//!
//! The engine reads no clock: `today` is the wall clock's date, read by the
//! caller at the edge (`collect run`, the sweep Lambda's handler).

use chrono::{Days, NaiveDate};

/// A sweep day later than tomorrow by the wall clock.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing to sweep {day}: it is later than tomorrow ({tomorrow}) by the clock. A mistyped \
     date buries the book: every step due before {day} would be taken or skipped at once, and the \
     real day would then be refused as earlier than the last day swept"
)]
pub struct FutureDay {
    /// The day asked for.
    pub day: NaiveDate,
    /// The latest day swept without an explicit override.
    pub tomorrow: NaiveDate,
}

/// Checks a real sweep's `day` against `today` (the wall clock's date, UTC):
/// any day up to tomorrow passes; a later day passes only when `allowed`
/// (the person said so: `--allow-future-date`, `"allow_future_day": true`).
pub fn check_sweep_day(day: NaiveDate, today: NaiveDate, allowed: bool) -> Result<(), FutureDay> {
    let tomorrow = today.checked_add_days(Days::new(1)).unwrap_or(today);
    if day > tomorrow && !allowed {
        return Err(FutureDay { day, tomorrow });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn up_to_tomorrow_passes_and_a_later_day_needs_the_override() {
        let today = d("2026-12-06");
        for ok in ["2020-01-01", "2026-12-06", "2026-12-07"] {
            assert_eq!(check_sweep_day(d(ok), today, false), Ok(()), "{ok}");
        }
        for far in ["2026-12-08", "2099-06-15", "9999-12-31"] {
            let err = check_sweep_day(d(far), today, false).unwrap_err();
            assert_eq!(err.tomorrow, d("2026-12-07"));
            assert!(err.to_string().contains(far), "{err}");
            assert_eq!(check_sweep_day(d(far), today, true), Ok(()), "{far}");
        }
        // The clock's last day: no tomorrow to add, nothing later to refuse.
        assert_eq!(
            check_sweep_day(NaiveDate::MAX, NaiveDate::MAX, false),
            Ok(())
        );
    }
}
