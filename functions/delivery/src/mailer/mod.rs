//! The mail port: what the delivery protocol asks of a mail service, and
//! the local services behind it.
//!
//! A service implements [`Mailer`]: the outbox locally ([`Outbox`], `.eml`
//! files), SES v2 on AWS (`collect-aws`), nothing at all in simulations
//! ([`NullMailer`]). [`LocalMailer`] is the choice `collect` makes between
//! the local two.
//!
//! A failure to send is classified once, here, for every service
//! ([`FailureClass`], [`MailError::class`]): the delivery protocol decides
//! what becomes of the message from the class alone, whichever service
//! refused it.

pub use crate::message::MailError;
use crate::message::OutgoingMessage;
use crate::message::eml::to_rfc5322;

mod outbox;

pub use outbox::Outbox;

use std::time::Duration;

/// What a failed hand-over says about what to do next. Every mail service
/// maps its own errors to one of these (the outbox's I/O errors in
/// [`io_class`], SES's error codes in `collect-aws`), and the delivery
/// protocol acts on the class alone. No class counts the step as taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// Not now: throttling, a timeout, a 5xx answer, a full disk. The
    /// message is handed over again within the run after a short pause (a
    /// few times); then it goes back to `planned` with the reason and the
    /// next sweep sends it.
    Transient,
    /// This recipient: the address is rejected or on a suppression list.
    /// Nothing went out; the message's steps are deferred with the reason
    /// (never failed, never taken), and go out once the address is fixed.
    Recipient,
    /// The whole service: the outbox cannot be written, SES refuses the
    /// account or the sender (sandbox, access denied, identity mismatch,
    /// sending paused, account suspended, daily quota). The run stops
    /// sending at once; the message in hand and everything not yet sent
    /// stay `planned`; the run fails so that a person fixes the cause.
    Service,
    /// This message, on our side: its template does not render, it cannot
    /// be built. Nothing went out; its steps are deferred with the reason
    /// and go out once the template or data is fixed.
    Message,
}

impl FailureClass {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Transient => "transient",
            FailureClass::Recipient => "recipient",
            FailureClass::Service => "service",
            FailureClass::Message => "message",
        }
    }
}

impl std::fmt::Display for FailureClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl MailError {
    /// The class of this failure: what the delivery protocol does with the
    /// message (see [`FailureClass`]).
    pub fn class(&self) -> FailureClass {
        match self {
            MailError::InvalidAddress { .. } => FailureClass::Recipient,
            MailError::InvalidSender { .. } => FailureClass::Service,
            MailError::InvalidMessageId { .. }
            | MailError::InvalidDate { .. }
            | MailError::Build { .. } => FailureClass::Message,
            MailError::Io { source, .. } => io_class(source),
            MailError::Provider { class, .. } => *class,
        }
    }
}

/// The class of an I/O error of a mail service writing files (the
/// outbox): a full disk or quota, an interrupted call or a timeout may
/// pass (transient); anything else — permission denied, a file where a
/// folder should be, a read-only file system, a folder gone — needs a
/// person (the whole service: nothing more can be written).
pub fn io_class(e: &std::io::Error) -> FailureClass {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::StorageFull | K::QuotaExceeded | K::Interrupted | K::TimedOut | K::WouldBlock => {
            FailureClass::Transient
        }
        _ => FailureClass::Service,
    }
}

/// How long to wait before handing a message over again after a
/// transient failure: one pause per retry, so at most `len() + 1`
/// attempts per message. Short: a longer outage is left to the next sweep.
pub const RETRY_PAUSES: [Duration; 3] = [
    Duration::from_millis(200),
    Duration::from_secs(1),
    Duration::from_secs(3),
];

/// The most a run waits in retry pauses, all messages together: once
/// spent, a transient failure sends the message straight back to
/// `planned` (a service that keeps failing does not hold the run for
/// long; the next sweep sends what is left).
pub const RETRY_BUDGET: Duration = Duration::from_secs(30);

/// What the mail service answers when it accepts a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReceipt {
    pub provider_message_id: String,
}

/// What the mail service says of a message id, when asked after a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acceptance {
    /// It accepted the message: it must not be handed over again.
    Accepted { provider_message_id: String },
    /// It never accepted it: handing it over again delivers it once.
    NotAccepted,
    /// The service cannot tell (yet): SES's events may still be on their way.
    Unknown,
}

/// The port a mail service implements (the outbox locally, SES v2 on AWS).
#[allow(async_fn_in_trait)]
pub trait Mailer {
    /// Hands a message over. Sending the same `message_id` twice must not
    /// deliver twice where the service allows it (the outbox does not).
    async fn send(&self, msg: &OutgoingMessage) -> Result<SendReceipt, MailError>;

    /// Whether a message with this id was accepted: asked by the delivery
    /// protocol for a message a crash left `sending`.
    async fn accepted(&self, message_id: &str) -> Result<Acceptance, MailError>;

    /// Called once per run, by the run that holds the lease, before anything
    /// is sent: clear what a killed run left half-done (temp files).
    async fn recover(&self) -> Result<(), MailError> {
        Ok(())
    }

    /// Waits `pause` before a message is handed over again after a
    /// transient failure. The default blocks the thread, which is what the
    /// local runner (one thread) wants; a service on an async runtime
    /// (SES on Lambda) overrides it, and test doubles return at once.
    async fn pause(&self, pause: Duration) {
        std::thread::sleep(pause);
    }

    /// Whether this is a service in shadow mode ([`Shadow`]): the protocol
    /// then renders each message and reports it, hands nothing over, and
    /// records the message cancelled with its steps skipped.
    fn shadow(&self) -> bool {
        false
    }
}

/// What a message recorded in shadow mode, and its steps, are noted with.
pub const SHADOW_NOTE: &str = "shadow mode: rendered and reported, not sent; \
     the step counts as passed over, so a normal run never sends it later";

/// A mail service in **shadow mode** (the first production days on AWS,
/// the stack's `ShadowMode`): the delivery protocol checks and renders
/// every message as it would send it, lists it in the run's report
/// ([`RunReport::shadowed`](crate::delivery::RunReport::shadowed)), and
/// hands nothing to the service. The message is recorded `cancelled` and
/// its steps `skipped`, both with [`SHADOW_NOTE`]: a skipped step counts as
/// taken (the ladder moves past it) but not as a contact, so a normal run
/// after shadow days sends only what is due on its own day, and never a
/// message recorded in shadow mode. What a crash left `sending` is still
/// asked of the wrapped service.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shadow<M>(pub M);

impl<M: Mailer> Mailer for Shadow<M> {
    /// Never called by the protocol in shadow mode; if it is, nothing is
    /// handed over and the message is refused as not built.
    async fn send(&self, msg: &OutgoingMessage) -> Result<SendReceipt, MailError> {
        to_rfc5322(msg)?;
        Err(MailError::Build {
            message_id: msg.message_id.clone(),
            reason: "shadow mode: nothing is handed to the mail service".to_string(),
        })
    }

    async fn accepted(&self, message_id: &str) -> Result<Acceptance, MailError> {
        self.0.accepted(message_id).await
    }

    async fn recover(&self) -> Result<(), MailError> {
        self.0.recover().await
    }

    fn shadow(&self) -> bool {
        true
    }
}

/// Sends nothing and records nothing; still checks that the message builds.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullMailer;

impl Mailer for NullMailer {
    async fn send(&self, msg: &OutgoingMessage) -> Result<SendReceipt, MailError> {
        to_rfc5322(msg)?;
        Ok(SendReceipt {
            provider_message_id: format!("null:{}", msg.message_id),
        })
    }

    async fn accepted(&self, _message_id: &str) -> Result<Acceptance, MailError> {
        Ok(Acceptance::NotAccepted)
    }
}

/// The local mail services behind one type: the outbox of `collect run`,
/// or nothing (simulations, the demo's baseline).
#[derive(Debug, Clone, Copy)]
pub enum LocalMailer<'a> {
    Outbox(&'a Outbox),
    Null,
}

impl Mailer for LocalMailer<'_> {
    async fn send(&self, msg: &OutgoingMessage) -> Result<SendReceipt, MailError> {
        match self {
            LocalMailer::Outbox(o) => o.send(msg).await,
            LocalMailer::Null => NullMailer.send(msg).await,
        }
    }

    async fn accepted(&self, message_id: &str) -> Result<Acceptance, MailError> {
        match self {
            LocalMailer::Outbox(o) => o.accepted(message_id).await,
            LocalMailer::Null => NullMailer.accepted(message_id).await,
        }
    }

    async fn recover(&self) -> Result<(), MailError> {
        match self {
            LocalMailer::Outbox(o) => o.recover().await,
            LocalMailer::Null => Ok(()),
        }
    }

    async fn pause(&self, pause: Duration) {
        match self {
            LocalMailer::Outbox(o) => o.pause(pause).await,
            // Nothing is sent, so nothing fails for now: never waits.
            LocalMailer::Null => {}
        }
    }
}
