//! The mail port: what the delivery protocol asks of a mail service, and
//! the local services behind it.
//!
//! A service implements [`Mailer`]: the outbox locally ([`Outbox`], `.eml`
//! files), SES v2 on AWS (`collect-aws`), nothing at all in simulations
//! ([`NullMailer`]). [`LocalMailer`] is the choice `collect` makes between
//! the local two.

pub use crate::message::MailError;
use crate::message::OutgoingMessage;
use crate::message::eml::to_rfc5322;

mod outbox;

pub use outbox::Outbox;

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
}
