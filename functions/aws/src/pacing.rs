//! Sending through SES at the account's pace and within its daily quota.
//!
//! SES gives an account a maximum send rate (`SendQuota.MaxSendRate`,
//! messages a second, often 14) and a quota per rolling 24 hours
//! (`Max24HourSend`, of which `SentLast24Hours` are used), both read with
//! `GetAccount` at the start of each shard's run ([`super::preflight`]). Up
//! to `WORKER_CONCURRENCY` workers send at the same time (the shard queue's
//! maximum concurrency, `WorkerMaxConcurrency` in the template), so each run
//! takes an equal share ([`SendLimits::share`]):
//!
//! - **rate**: `MaxSendRate / workers` messages a second, one message every
//!   `workers / MaxSendRate` seconds ([`Pacer`]): together the workers
//!   never exceed the account's rate, and SES does not throttle them;
//! - **quota**: of what remains below `Max24HourSend` less a margin
//!   (`SES_QUOTA_MARGIN_PERCENT`, default 10), `1 / workers` per run. A run
//!   that has handed its share to SES stops: every message it did not hand
//!   over stays `planned` for the next sweep, and the run's report says so
//!   (`quota_held`; the log line carries [`QUOTA_STOP_MARKER`], which the
//!   `SesQuotaStop` alarm counts).
//!
//! A worker that starts after others finished reads `SentLast24Hours`
//! again, so it shares what they left. Workers that overlap each hold at
//! most an eighth (with 8 workers) of what remained when they started, so
//! together they can overshoot what is left by a fraction of one share;
//! the margin absorbs that, and SES's own refusal past the quota is the
//! last guard (the whole service's failure: the run stops sending, what
//! it did not hand over stays planned).
//!
//! The pacing is a schedule over an injectable [`Clock`], so tests check
//! it with a clock that only moves when slept on ([`Paced`] is the mail
//! service wrapper the worker sends through).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;

use collect_delivery::mailer::{Acceptance, FailureClass, MailError, Mailer, SendReceipt};
use collect_delivery::message::OutgoingMessage;

/// Logged (and counted by the `SesQuotaStop` alarm's metric filter) when a
/// run stops sending because its share of the daily quota is used.
pub const QUOTA_STOP_MARKER: &str = "SES_QUOTA_STOP";

/// The account's sending limits, as `GetAccount` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SesQuota {
    /// Messages a second.
    pub max_send_rate: f64,
    /// Messages per rolling 24 hours.
    pub max_24_hour_send: f64,
    pub sent_last_24_hours: f64,
}

impl SesQuota {
    /// What may still be sent today, keeping `margin_percent` of the quota
    /// in reserve.
    pub fn usable(&self, margin_percent: u32) -> u64 {
        let keep = 1.0 - f64::from(margin_percent.min(100)) / 100.0;
        let left = self.max_24_hour_send * keep - self.sent_last_24_hours;
        if left.is_finite() && left > 0.0 {
            // Whole messages, rounded down; far below u64::MAX.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let whole = left.floor() as u64;
            whole
        } else {
            0
        }
    }
}

/// One run's share of the account's limits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SendLimits {
    /// Messages a second this run may send.
    pub per_second: f64,
    /// Messages this run may hand to SES.
    pub budget: u64,
}

impl SendLimits {
    /// The share of one of `workers` concurrent runs.
    pub fn share(quota: &SesQuota, workers: u32, margin_percent: u32) -> SendLimits {
        let workers = workers.max(1);
        let rate = if quota.max_send_rate.is_finite() && quota.max_send_rate > 0.0 {
            quota.max_send_rate
        } else {
            // SES never reports less than 1 a second; a nonsense answer
            // is taken as the slowest rate it could mean.
            1.0
        };
        SendLimits {
            per_second: rate / f64::from(workers),
            budget: quota.usable(margin_percent) / u64::from(workers),
        }
    }

    /// The time between two messages of this run.
    pub fn interval(&self) -> Duration {
        if self.per_second > 0.0 {
            Duration::from_secs_f64(1.0 / self.per_second)
        } else {
            Duration::from_secs(1)
        }
    }
}

/// Time for the pacer: where it is, and waiting.
#[allow(async_fn_in_trait)]
pub trait Clock {
    /// Time since some fixed origin (monotonic).
    fn now(&self) -> Duration;
    async fn sleep(&self, for_: Duration);
}

/// The real clock (tokio's).
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: tokio::time::Instant,
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    async fn sleep(&self, for_: Duration) {
        tokio::time::sleep(for_).await;
    }
}

/// Spaces messages evenly: the first goes at once, each next one
/// `interval` after the slot of the one before (or at once, if the run was
/// busy for longer than that).
#[derive(Debug)]
pub struct Pacer<C> {
    clock: C,
    interval: Duration,
    next: Mutex<Option<Duration>>,
}

impl<C: Clock> Pacer<C> {
    pub fn new(clock: C, interval: Duration) -> Pacer<C> {
        Pacer {
            clock,
            interval,
            next: Mutex::new(None),
        }
    }

    /// Waits for this message's slot.
    pub async fn wait(&self) {
        let now = self.clock.now();
        let slot = {
            let mut next = match self.next.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        if slot > now {
            self.clock.sleep(slot - now).await;
        }
    }
}

/// A message refused before SES because the run's share of the daily quota
/// is used (the protocol puts it back to `planned`).
#[derive(Debug, thiserror::Error)]
#[error(
    "this run's share of the SES daily sending quota is used ({budget} messages): \
     the message stays planned for the next sweep"
)]
pub struct QuotaReached {
    pub budget: u64,
}

/// A mail service sent through at a pace, within a budget (no limits: as
/// is). What it counts is read back by the worker for its report.
pub struct Paced<'a, M, C = TokioClock> {
    inner: &'a M,
    pacer: Option<Pacer<C>>,
    budget: Option<u64>,
    handed: AtomicU64,
    held: AtomicUsize,
    /// The message refused last: the protocol's retries of one message
    /// (a refusal for now is retried) count once.
    last_held: Mutex<Option<String>>,
}

impl<'a, M: Mailer, C: Clock> Paced<'a, M, C> {
    pub fn new(inner: &'a M, limits: Option<SendLimits>, clock: C) -> Paced<'a, M, C> {
        Paced {
            inner,
            pacer: limits.map(|l| Pacer::new(clock, l.interval())),
            budget: limits.map(|l| l.budget),
            handed: AtomicU64::new(0),
            held: AtomicUsize::new(0),
            last_held: Mutex::new(None),
        }
    }

    /// Messages refused because the budget was used.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

impl<M: Mailer, C: Clock> Mailer for Paced<'_, M, C> {
    async fn send(&self, msg: &OutgoingMessage) -> Result<SendReceipt, MailError> {
        if let Some(budget) = self.budget {
            if self.handed.fetch_add(1, Ordering::Relaxed) >= budget {
                let again = self.last_held.lock().is_ok_and(|mut last| {
                    let again = last.as_deref() == Some(msg.message_id.as_str());
                    *last = Some(msg.message_id.clone());
                    again
                });
                if again {
                    // The protocol's retry of the message just refused.
                } else if self.held.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!(
                        budget,
                        "{QUOTA_STOP_MARKER}: this run's share of the SES daily quota is used; \
                         what it has not sent stays planned for the next sweep"
                    );
                }
                // A refusal for now: the message stays planned for the
                // next sweep (the protocol's retries are not waited for:
                // see `pause`).
                return Err(MailError::Provider {
                    message_id: msg.message_id.clone(),
                    class: FailureClass::Transient,
                    source: Box::new(QuotaReached { budget }),
                });
            }
        }
        if let Some(pacer) = &self.pacer {
            pacer.wait().await;
        }
        self.inner.send(msg).await
    }

    async fn accepted(&self, message_id: &str) -> Result<Acceptance, MailError> {
        self.inner.accepted(message_id).await
    }

    async fn recover(&self) -> Result<(), MailError> {
        self.inner.recover().await
    }

    /// Once the run's share of the quota is used, a retry is refused again
    /// at once: it is not waited for.
    async fn pause(&self, pause: Duration) {
        let used = self
            .budget
            .is_some_and(|b| self.handed.load(Ordering::Relaxed) >= b);
        if !used {
            self.inner.pause(pause).await;
        }
    }

    fn shadow(&self) -> bool {
        self.inner.shadow()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// A clock that moves only when slept on (or told to), recording each
    /// sleep: the pacer's schedule, with no time passing in the test.
    #[derive(Default)]
    struct FakeClock {
        now: Mutex<Duration>,
        slept: Mutex<Vec<Duration>>,
    }

    impl FakeClock {
        fn advance(&self, by: Duration) {
            *self.now.lock().unwrap() += by;
        }
    }

    impl Clock for &FakeClock {
        fn now(&self) -> Duration {
            *self.now.lock().unwrap()
        }
        async fn sleep(&self, for_: Duration) {
            self.slept.lock().unwrap().push(for_);
            self.advance(for_);
        }
    }

    fn quota(rate: f64, max: f64, sent: f64) -> SesQuota {
        SesQuota {
            max_send_rate: rate,
            max_24_hour_send: max,
            sent_last_24_hours: sent,
        }
    }

    #[test]
    fn each_worker_gets_its_share_of_the_rate_and_of_what_is_left_of_the_quota() {
        let q = quota(14.0, 50_000.0, 5_000.0);
        let l = SendLimits::share(&q, 8, 10);
        assert_eq!(l.per_second, 1.75);
        // 50,000 less 10% is 45,000; 5,000 used: 40,000 among 8.
        assert_eq!(l.budget, 5_000);
        assert_eq!(l.interval(), Duration::from_secs_f64(1.0 / 1.75));
        // The sandbox: 200 a day, 1 a second.
        let sandbox = SendLimits::share(&quota(1.0, 200.0, 0.0), 8, 10);
        assert_eq!((sandbox.per_second, sandbox.budget), (0.125, 22));
        // Used up, or past the margin: nothing.
        assert_eq!(SendLimits::share(&q, 8, 100).budget, 0);
        assert_eq!(quota(14.0, 100.0, 95.0).usable(10), 0);
        // A nonsense rate is taken as 1 a second.
        assert_eq!(
            SendLimits::share(&quota(0.0, 10.0, 0.0), 2, 0).per_second,
            0.5
        );
    }

    #[tokio::test]
    async fn messages_go_one_interval_apart_and_a_busy_run_does_not_catch_up_in_a_burst() {
        let clock = FakeClock::default();
        let pacer = Pacer::new(&clock, Duration::from_millis(500));
        pacer.wait().await; // at 0: at once
        pacer.wait().await; // slot 0.5
        pacer.wait().await; // slot 1.0
        assert_eq!(
            *clock.slept.lock().unwrap(),
            vec![Duration::from_millis(500), Duration::from_millis(500)]
        );
        // The run was busy 2 s (rendering, the ledger): the next slot has
        // passed, so it goes at once, and the one after waits a full interval.
        clock.advance(Duration::from_secs(2));
        pacer.wait().await;
        pacer.wait().await;
        assert_eq!(
            clock.slept.lock().unwrap().last(),
            Some(&Duration::from_millis(500))
        );
        assert_eq!(clock.slept.lock().unwrap().len(), 3);
        assert_eq!(*clock.now.lock().unwrap(), Duration::from_millis(3500));
    }

    #[tokio::test]
    async fn eight_workers_at_their_share_stay_under_the_account_rate() {
        // Each worker's schedule over one simulated minute: 14/s shared by
        // 8 is 1.75/s each, 105 a minute; all eight 840, the account's 14/s.
        let limits = SendLimits::share(&quota(14.0, 1e9, 0.0), 8, 10);
        let clock = FakeClock::default();
        let pacer = Pacer::new(&clock, limits.interval());
        let mut sent = 0;
        while (&clock).now() < Duration::from_secs(60) {
            pacer.wait().await;
            if (&clock).now() < Duration::from_secs(60) {
                sent += 1;
            }
        }
        assert!((104..=106).contains(&sent), "{sent}");
        assert!(sent * 8 <= 14 * 60 + 8);
    }
}
