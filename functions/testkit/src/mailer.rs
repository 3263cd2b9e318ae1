//! A mail service that keeps what it is handed, answers truthfully whether
//! it accepted a message id, and can be told to refuse.

use collect_delivery::mailer::{Acceptance, MailError, Mailer, SendReceipt};
use collect_delivery::message::{OutgoingMessage, to_rfc5322};
use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};

/// How the recording mail service answers `send`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Refuse {
    /// Accept everything.
    #[default]
    Nothing,
    /// Refuse for now (throttling): the protocol retries on a later run.
    ForNow,
    /// Refuse for good.
    ForGood,
}

#[derive(Debug, Default)]
struct Inner {
    /// Every hand-over, in order, and whether it was accepted.
    handed: Vec<(OutgoingMessage, bool)>,
    accepted: HashSet<String>,
    refuse: Refuse,
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
}

impl Mailer for RecordingMailer {
    async fn send(&self, msg: &OutgoingMessage) -> Result<SendReceipt, MailError> {
        to_rfc5322(msg)?;
        let mut inner = self.lock();
        let refuse = inner.refuse.clone();
        inner.handed.push((msg.clone(), refuse == Refuse::Nothing));
        match refuse {
            Refuse::Nothing => {
                inner.accepted.insert(msg.message_id.clone());
                Ok(SendReceipt {
                    provider_message_id: format!("rec:{}", msg.message_id),
                })
            }
            Refuse::ForNow | Refuse::ForGood => Err(MailError::Provider {
                message_id: msg.message_id.clone(),
                retryable: refuse == Refuse::ForNow,
                source: Box::new(RefusedByTest),
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
}

/// The refusal of [`RecordingMailer`] when a test tells it to refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("refused by the test")]
pub struct RefusedByTest;
