//! The mail-service double: keeps what it is handed, answers truthfully
//! whether it accepted a message id, and fails on demand with a chosen
//! [`FailureClass`] — for every message ([`RecordingMailer::refuse`]) or for
//! chosen recipients, after so many accepted sends, so many times
//! ([`RecordingMailer::fail`] with a [`Fault`]). Its pauses before retries
//! return at once (and are counted), so tests never wait.

use collect_delivery::mailer::{Acceptance, FailureClass, MailError, Mailer, SendReceipt};
use collect_delivery::message::{OutgoingMessage, to_rfc5322};
use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// How the recording mail service answers `send`, for every message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Refuse {
    /// Accept everything (the faults set with [`RecordingMailer::fail`]
    /// still apply).
    #[default]
    Nothing,
    /// Refuse for now (throttling): a transient failure.
    ForNow,
    /// Refuse every message with a failure of this class.
    Always(FailureClass),
}

/// A failure the double returns: of `class`, to the messages it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub class: FailureClass,
    /// Only messages to this address (any, when `None`).
    pub to: Option<String>,
    /// Only once this many messages were accepted.
    pub after: usize,
    /// How many hand-overs it refuses before it lets them through (`None`:
    /// every one).
    pub times: Option<usize>,
}

impl Fault {
    /// A failure of `class` for every message, every time.
    pub fn new(class: FailureClass) -> Fault {
        Fault {
            class,
            to: None,
            after: 0,
            times: None,
        }
    }

    /// Only for messages to `address`.
    pub fn to(mut self, address: &str) -> Fault {
        self.to = Some(address.to_string());
        self
    }

    /// Only once `n` messages were accepted.
    pub fn after(mut self, n: usize) -> Fault {
        self.after = n;
        self
    }

    /// Only the first `n` hand-overs it matches.
    pub fn times(mut self, n: usize) -> Fault {
        self.times = Some(n);
        self
    }

    fn matches(&self, msg: &OutgoingMessage, accepted: usize) -> bool {
        self.to.as_deref().is_none_or(|t| t == msg.to.email)
            && accepted >= self.after
            && self.times.is_none_or(|n| n > 0)
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// Every hand-over, in order, and whether it was accepted.
    handed: Vec<(OutgoingMessage, bool)>,
    accepted: HashSet<String>,
    refuse: Refuse,
    faults: Vec<Fault>,
    pauses: Vec<Duration>,
}

/// Keeps every message handed to it. Unlike the outbox it does not hide a
/// second hand-over of the same id: the conformance suite counts them.
#[derive(Debug, Default)]
pub struct RecordingMailer {
    inner: Mutex<Inner>,
}

impl RecordingMailer {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn refuse(&self, how: Refuse) {
        self.lock().refuse = how;
    }

    /// Adds a failure (checked after [`refuse`](RecordingMailer::refuse)).
    pub fn fail(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Removes every failure set with [`fail`](RecordingMailer::fail) and
    /// [`refuse`](RecordingMailer::refuse): the service is healthy again.
    pub fn heal(&self) {
        let mut inner = self.lock();
        inner.faults.clear();
        inner.refuse = Refuse::Nothing;
    }

    /// The messages accepted, in order.
    pub fn accepted_messages(&self) -> Vec<OutgoingMessage> {
        let inner = self.lock();
        let mut seen = HashSet::new();
        inner
            .handed
            .iter()
            .filter(|(m, ok)| *ok && seen.insert(m.message_id.clone()))
            .map(|(m, _)| m.clone())
            .collect()
    }

    /// Message ids handed over more than once *after* being accepted: what
    /// a real mail service would have delivered twice.
    pub fn duplicates(&self) -> Vec<String> {
        let inner = self.lock();
        let mut accepted_once = HashSet::new();
        let mut dup = Vec::new();
        for (m, ok) in &inner.handed {
            if *ok && !accepted_once.insert(m.message_id.clone()) {
                dup.push(m.message_id.clone());
            }
        }
        dup
    }

    pub fn handed_count(&self) -> usize {
        self.lock().handed.len()
    }

    /// The pauses the delivery protocol asked for before retries.
    pub fn pauses(&self) -> Vec<Duration> {
        self.lock().pauses.clone()
    }
}

impl Mailer for RecordingMailer {
    async fn send(&self, msg: &OutgoingMessage) -> Result<SendReceipt, MailError> {
        to_rfc5322(msg)?;
        let mut inner = self.lock();
        let accepted = inner.accepted.len();
        let refused = match inner.refuse {
            Refuse::Nothing => inner
                .faults
                .iter_mut()
                .find(|f| f.matches(msg, accepted))
                .map(|f| {
                    if let Some(n) = &mut f.times {
                        *n -= 1;
                    }
                    f.class
                }),
            Refuse::ForNow => Some(FailureClass::Transient),
            Refuse::Always(class) => Some(class),
        };
        inner.handed.push((msg.clone(), refused.is_none()));
        match refused {
            None => {
                inner.accepted.insert(msg.message_id.clone());
                Ok(SendReceipt {
                    provider_message_id: format!("rec:{}", msg.message_id),
                })
            }
            Some(class) => Err(MailError::Provider {
                message_id: msg.message_id.clone(),
                class,
                source: Box::new(RefusedByTest(class)),
            }),
        }
    }

    async fn accepted(&self, message_id: &str) -> Result<Acceptance, MailError> {
        Ok(if self.lock().accepted.contains(message_id) {
            Acceptance::Accepted {
                provider_message_id: format!("rec:{message_id}"),
            }
        } else {
            Acceptance::NotAccepted
        })
    }

    async fn pause(&self, pause: Duration) {
        self.lock().pauses.push(pause);
    }
}

/// The refusal of [`RecordingMailer`] when a test tells it to refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("refused by the test ({0} failure)")]
pub struct RefusedByTest(pub FailureClass);
