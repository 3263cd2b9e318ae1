//! The SES v2 adapter: the [`Mailer`] that sends through `SendEmail`, and
//! the reading of SES's events (from SNS or EventBridge) back into mail
//! events matched to messages and actions by their tags, and into the
//! contact holds a permanent bounce or a complaint asks for ([`ses_holds`]).
//!
//! Messages go as raw MIME (the same bytes the local outbox writes, from
//! [`to_rfc5322`]) with a configuration set, whose event destination
//! publishes send, delivery, bounce, complaint, open and click events, and
//! message tags: `message_id` always, `action_id`, `step` and `arm` when
//! the message carries one action, and `channel`/`template`. SES allows
//! only ASCII letters, digits, `_` and `-` in tag names and values (at most
//! 256 characters), so tags are sanitised ([`tag_value`]).
//!
//! A refusal of `SendEmail` is classified by [`failure_class`] (SES's error
//! code and message → transient, this recipient, or the whole service),
//! so the delivery protocol treats SES's failures as it treats the
//! outbox's.

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, MessageTag, RawMessage};
use serde_json::Value;

use super::dynamo::MailEvent;
use super::error::{AwsError, Service, ServiceError};
use collect_delivery::delivery::holds::{MailHoldEvent, MailVerdict};
use collect_delivery::mailer::{Acceptance, FailureClass, MailError, Mailer, SendReceipt};
use collect_delivery::message::{OutgoingMessage, to_rfc5322};

/// The tag names this adapter sets (and reads back from SES's events).
pub const TAG_MESSAGE_ID: &str = "message_id";
pub const TAG_ACTION_ID: &str = "action_id";
pub const TAG_STEP: &str = "step";
pub const TAG_ARM: &str = "arm";

#[derive(Debug, Clone)]
pub struct SesMailer {
    client: Client,
    configuration_set: Option<String>,
}

/// A tag name or value as SES accepts it: ASCII letters, digits, `_` and
/// `-`, 1 to 256 characters; anything else becomes `_`.
pub fn tag_value(raw: &str) -> String {
    let mut out: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(256)
        .collect();
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// The SES message tags of a message: its own tags (sanitised) and the
/// `message_id` tag, without duplicates.
pub fn email_tags(msg: &OutgoingMessage) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> =
        vec![(TAG_MESSAGE_ID.to_string(), tag_value(&msg.message_id))];
    for (k, v) in &msg.tags {
        let name = tag_value(k);
        if tags.iter().any(|(n, _)| *n == name) {
            continue;
        }
        tags.push((name, tag_value(v)));
    }
    // SES takes at most 50 tags; ours are far fewer, but stay within it.
    tags.truncate(50);
    tags
}

impl SesMailer {
    pub fn new(client: Client, configuration_set: Option<String>) -> SesMailer {
        SesMailer {
            client,
            configuration_set,
        }
    }

    /// Sends one message; the receipt holds SES's message id.
    pub async fn send_async(&self, msg: &OutgoingMessage) -> Result<SendReceipt, MailError> {
        let raw = to_rfc5322(msg)?;
        let provider = |source: Box<dyn std::error::Error + Send + Sync>, class: FailureClass| {
            MailError::Provider {
                message_id: msg.message_id.clone(),
                class,
                source,
            }
        };
        // A request this code cannot build fails alike for every message.
        let raw = RawMessage::builder()
            .data(Blob::new(raw))
            .build()
            .map_err(|e| provider(Box::new(e), FailureClass::Service))?;
        let mut tags = Vec::new();
        for (name, value) in email_tags(msg) {
            tags.push(
                MessageTag::builder()
                    .name(name)
                    .value(value)
                    .build()
                    .map_err(|e| provider(Box::new(e), FailureClass::Service))?,
            );
        }
        let out = self
            .client
            .send_email()
            .from_email_address(msg.from.email.trim())
            .destination(
                Destination::builder()
                    .to_addresses(msg.to.email.trim())
                    .build(),
            )
            .content(EmailContent::builder().raw(raw).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .set_email_tags(Some(tags))
            .send()
            .await;
        match out {
            Ok(o) => Ok(SendReceipt {
                provider_message_id: o.message_id.unwrap_or_default(),
            }),
            Err(e) => {
                let err = ServiceError::sdk(Service::Ses, "SendEmail", e);
                let class = failure_class(&err);
                Err(provider(Box::new(AwsError::from(err)), class))
            }
        }
    }
}

/// The class of a refused `SendEmail` (SES v2), from SES's error code and
/// message:
/// - **transient**: throttling (`TooManyRequestsException`, `Throttling…`),
///   the sending rate (`LimitExceededException` "Maximum sending rate
///   exceeded"), SES failing on its side (5xx, `InternalFailure`,
///   `ServiceUnavailable`), and no answer at all (a timeout, a connection
///   that failed);
/// - **this recipient**: `MessageRejected` for the address ("Address
///   blacklisted", "… on the suppression list", an invalid recipient), an
///   address SES cannot use (`BadRequestException` about the address), the
///   account's suppression list;
/// - **the whole service**: `MessageRejected` "Email address is not
///   verified" (the sandbox, or a sender identity not verified),
///   `AccessDenied` (the role may not send as this identity:
///   `ses:FromAddress`, `SenderIdentity` mismatch),
///   `MailFromDomainNotVerifiedException`, `SendingPausedException`,
///   `AccountSuspendedException`, the daily quota (`LimitExceededException`
///   "Daily message quota exceeded"), a missing configuration set
///   (`NotFoundException`), and any code not named here: an unknown
///   refusal stops the run for a person to look at rather than burn steps.
pub fn failure_class(err: &ServiceError) -> FailureClass {
    let message = err.message().unwrap_or_default().to_ascii_lowercase();
    let Some(code) = err.code() else {
        return match err.http_status() {
            Some(s) if s == 429 || s >= 500 => FailureClass::Transient,
            Some(_) => FailureClass::Service,
            // No answer: a timeout or a failed connection is retryable;
            // anything else (a request that could not be sent) is not.
            None if err.retryable() => FailureClass::Transient,
            None => FailureClass::Service,
        };
    };
    let code = code.strip_suffix("Exception").unwrap_or(code);
    let about_the_address = || {
        ["address", "recipient", "mailbox", "domain"]
            .iter()
            .any(|w| message.contains(w))
    };
    match code {
        "TooManyRequests"
        | "Throttling"
        | "ThrottlingException"
        | "RequestThrottled"
        | "InternalFailure"
        | "InternalServiceError"
        | "InternalServerError"
        | "ServiceUnavailable"
        | "RequestTimeout" => FailureClass::Transient,
        "LimitExceeded" if message.contains("daily") || message.contains("quota") => {
            FailureClass::Service
        }
        "LimitExceeded" => FailureClass::Transient,
        // The sandbox (recipient not verified) or the sender's identity:
        // every message would be refused alike.
        "MessageRejected" if message.contains("not verified") => FailureClass::Service,
        "MessageRejected"
            if message.contains("suppression list")
                || message.contains("blacklisted")
                || message.contains("invalid")
                || message.contains("illegal")
                || message.contains("recipient") =>
        {
            FailureClass::Recipient
        }
        "BadRequest" if about_the_address() => FailureClass::Recipient,
        c if c.contains("Suppress") => FailureClass::Recipient,
        c if c.contains("Throttl") => FailureClass::Transient,
        _ => FailureClass::Service,
    }
}

/// The mail port on SES. SES cannot be asked whether it accepted a message
/// by our id: [`SesWithEvents`] answers that from SES's events.
impl Mailer for SesMailer {
    async fn send(&self, msg: &OutgoingMessage) -> Result<SendReceipt, MailError> {
        self.send_async(msg).await
    }

    async fn accepted(&self, _message_id: &str) -> Result<Acceptance, MailError> {
        Ok(Acceptance::Unknown)
    }

    /// On the Lambda's async runtime: never blocks the thread.
    async fn pause(&self, pause: std::time::Duration) {
        tokio::time::sleep(pause).await;
    }
}

/// SES, with the events the `events` function stored in the table: a
/// message that any SES event names was accepted. Without one the answer
/// is "unknown", and the delivery protocol waits for its grace period
/// (events may still be on their way) before it sends again.
pub struct SesWithEvents<'a> {
    pub ses: &'a SesMailer,
    pub dynamo: &'a super::dynamo::Dynamo,
}

impl Mailer for SesWithEvents<'_> {
    async fn send(&self, msg: &OutgoingMessage) -> Result<SendReceipt, MailError> {
        self.ses.send_async(msg).await
    }

    async fn accepted(&self, message_id: &str) -> Result<Acceptance, MailError> {
        let events = self.dynamo.mail_events(message_id).await.map_err(|e| {
            let class = if e.retryable() {
                FailureClass::Transient
            } else {
                FailureClass::Service
            };
            provider_for(message_id, Box::new(e), class)
        })?;
        if events.is_empty() {
            return Ok(Acceptance::Unknown);
        }
        Ok(Acceptance::Accepted {
            provider_message_id: events
                .iter()
                .find_map(|e| e.provider_message_id.clone())
                .unwrap_or_else(|| "(from SES events)".to_string()),
        })
    }

    /// On the Lambda's async runtime: never blocks the thread.
    async fn pause(&self, pause: std::time::Duration) {
        tokio::time::sleep(pause).await;
    }
}

/// [`SesWithEvents`] owning its parts: the mail service of a sweep worker
/// ([`super::sweep::SweepService`]).
#[derive(Debug, Clone)]
pub struct SesAndEvents {
    pub ses: SesMailer,
    pub dynamo: super::dynamo::Dynamo,
}

impl Mailer for SesAndEvents {
    async fn send(&self, msg: &OutgoingMessage) -> Result<SendReceipt, MailError> {
        self.ses.send_async(msg).await
    }

    async fn accepted(&self, message_id: &str) -> Result<Acceptance, MailError> {
        SesWithEvents {
            ses: &self.ses,
            dynamo: &self.dynamo,
        }
        .accepted(message_id)
        .await
    }

    /// On the Lambda's async runtime: never blocks the thread.
    async fn pause(&self, pause: std::time::Duration) {
        tokio::time::sleep(pause).await;
    }
}

fn provider_for(
    message_id: &str,
    source: Box<dyn std::error::Error + Send + Sync>,
    class: FailureClass,
) -> MailError {
    MailError::Provider {
        message_id: message_id.to_string(),
        class,
        source,
    }
}

/// An SES event, read from what SNS or EventBridge delivers.
#[derive(Debug, Clone, PartialEq)]
pub struct SesEvent {
    pub stored: MailEvent,
    /// The event as the engine's JSON contract has it (`mail_delivered`, …),
    /// for the kinds the engine knows; `send`, `reject` and the like have none.
    pub contract: Option<Value>,
}

fn first_tag(mail: &Value, name: &str) -> Option<String> {
    mail.get("tags")
        .and_then(|t| t.get(name))
        .and_then(|v| match v {
            Value::Array(items) => items.first().and_then(Value::as_str).map(str::to_string),
            Value::String(s) => Some(s.clone()),
            _ => None,
        })
}

/// Whether a JSON value looks like an SES event (publishing or notification).
pub fn is_ses_event(v: &Value) -> bool {
    (v.get("eventType").is_some() || v.get("notificationType").is_some()) && v.get("mail").is_some()
}

/// Why a JSON value could not be read as an SES event of this engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SesEventError {
    /// A part every SES event has is missing: `eventType` (or
    /// `notificationType`), `mail`, or a timestamp.
    #[error("an SES event needs {0}")]
    Missing(&'static str),
    /// The message carries neither of the tags this engine sets: another
    /// sender's mail on the same configuration set.
    #[error(
        "the SES `{kind}` event carries neither a `{TAG_MESSAGE_ID}` nor an `{TAG_ACTION_ID}` tag: it was not sent by this engine"
    )]
    NotOurs { kind: String },
    #[error("`{stamp}` is not a timestamp: {source}")]
    BadTimestamp {
        stamp: String,
        source: chrono::ParseError,
    },
}

/// Reads an SES event. The date is the event's own timestamp (the mail's
/// when it has none); the id is derived from SES's message id, the event
/// type and that timestamp, so a re-delivered event gets the same id.
pub fn ses_event(v: &Value) -> Result<SesEvent, SesEventError> {
    let kind = v
        .get("eventType")
        .or_else(|| v.get("notificationType"))
        .and_then(Value::as_str)
        .ok_or(SesEventError::Missing("`eventType`"))?;
    let mail = v.get("mail").ok_or(SesEventError::Missing("`mail`"))?;
    let provider_message_id = mail
        .get("messageId")
        .and_then(Value::as_str)
        .map(str::to_string);
    let message_id = first_tag(mail, TAG_MESSAGE_ID);
    let action_id = first_tag(mail, TAG_ACTION_ID);
    if message_id.is_none() && action_id.is_none() {
        return Err(SesEventError::NotOurs {
            kind: kind.to_string(),
        });
    }
    let detail_key = match kind {
        "Rendering Failure" => "failure".to_string(),
        "DeliveryDelay" => "deliveryDelay".to_string(),
        other => other.to_ascii_lowercase(),
    };
    let stamp = v
        .get(&detail_key)
        .and_then(|d| d.get("timestamp"))
        .or_else(|| mail.get("timestamp"))
        .and_then(Value::as_str)
        .ok_or(SesEventError::Missing("a timestamp"))?;
    let date = chrono::DateTime::parse_from_rfc3339(stamp)
        .map(|t| t.date_naive())
        .map_err(|source| SesEventError::BadTimestamp {
            stamp: stamp.to_string(),
            source,
        })?;
    let event_id = collect_delivery::bundle::sha256_hex(
        format!(
            "ses\u{1f}{}\u{1f}{kind}\u{1f}{stamp}",
            provider_message_id.as_deref().unwrap_or_default()
        )
        .as_bytes(),
    );
    let contract_type = match kind {
        "Delivery" => Some("mail_delivered"),
        "Bounce" => Some("mail_bounced"),
        "Complaint" => Some("mail_complained"),
        "Open" => Some("mail_opened"),
        "Click" => Some("mail_clicked"),
        _ => None,
    };
    let contract = contract_type.map(|t| {
        let mut m = serde_json::Map::new();
        m.insert("type".into(), Value::from(t));
        m.insert("date".into(), Value::from(date.to_string()));
        m.insert("event_id".into(), Value::from(event_id.clone()));
        if let Some(mid) = &message_id {
            m.insert("message_id".into(), Value::from(mid.clone()));
        }
        if let Some(aid) = &action_id {
            m.insert("action_id".into(), Value::from(aid.clone()));
        }
        Value::Object(m)
    });
    Ok(SesEvent {
        stored: MailEvent {
            event_id,
            kind: kind.to_ascii_lowercase().replace(' ', "_"),
            date,
            message_id,
            action_id,
            provider_message_id,
        },
        contract,
    })
}

/// The contact holds an SES event asks for: a `Bounce` whose `bounceType`
/// is `Permanent` holds each bounced recipient's address (SES's diagnostic
/// in the reason); a `Complaint` each complaining recipient's. A transient
/// or undetermined bounce holds nothing (SES retries it, the next message
/// may get through). Without recipients, the customer's current address.
pub fn ses_holds(v: &Value, e: &SesEvent) -> Vec<MailHoldEvent> {
    let (verdict, detail_key, list_key) = match e.stored.kind.as_str() {
        "bounce"
            if v.pointer("/bounce/bounceType").and_then(Value::as_str) == Some("Permanent") =>
        {
            (MailVerdict::HardBounce, "bounce", "bouncedRecipients")
        }
        "complaint" => (MailVerdict::Complaint, "complaint", "complainedRecipients"),
        _ => return Vec::new(),
    };
    let detail = v.get(detail_key);
    let said = |recipient: Option<&Value>| -> String {
        let text = |o: Option<&Value>, k: &str| {
            o.and_then(|o| o.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let words = match verdict {
            MailVerdict::HardBounce => text(recipient, "diagnosticCode")
                .or_else(|| text(detail, "bounceSubType"))
                .unwrap_or_else(|| "permanent bounce".to_string()),
            MailVerdict::Complaint => text(detail, "complaintFeedbackType")
                .map(|t| format!("feedback `{t}`"))
                .unwrap_or_else(|| "complaint".to_string()),
        };
        format!("SES: {words}")
    };
    let hold = |address: Option<String>, recipient: Option<&Value>| MailHoldEvent {
        verdict: verdict.clone(),
        date: e.stored.date,
        customer_id: None,
        message_id: e.stored.message_id.clone(),
        address,
        detail: Some(said(recipient)),
        source: format!("ses:{}", e.stored.event_id),
    };
    let recipients: Vec<&Value> = detail
        .and_then(|d| d.get(list_key))
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let out: Vec<MailHoldEvent> = recipients
        .iter()
        .filter_map(|r| {
            let address = r.get("emailAddress").and_then(Value::as_str)?;
            Some(hold(Some(address.to_string()), Some(r)))
        })
        .collect();
    if out.is_empty() {
        vec![hold(None, None)]
    } else {
        out
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;
    use aws_sdk_sesv2::config::http::HttpResponse;
    use aws_sdk_sesv2::error::{ErrorMetadata, SdkError};
    use aws_sdk_sesv2::operation::send_email::SendEmailError;
    use aws_sdk_sesv2::types::error::{
        AccountSuspendedException, BadRequestException, LimitExceededException,
        MailFromDomainNotVerifiedException, MessageRejected, SendingPausedException,
        TooManyRequestsException,
    };
    use collect_delivery::message::Mailbox;
    use serde_json::json;

    /// `SendEmail` refused as SES answers it, read the way the adapter reads it.
    fn class_of(err: SendEmailError, status: u16) -> FailureClass {
        let raw = HttpResponse::new(status.try_into().unwrap(), "".into());
        let sdk = SdkError::service_error(err, raw);
        failure_class(&ServiceError::sdk(Service::Ses, "SendEmail", sdk))
    }

    fn meta(code: &str, message: &str) -> ErrorMetadata {
        ErrorMetadata::builder().code(code).message(message).build()
    }

    fn rejected(message: &str) -> SendEmailError {
        SendEmailError::MessageRejected(
            MessageRejected::builder()
                .message(message)
                .meta(meta("MessageRejected", message))
                .build(),
        )
    }

    fn limit(message: &str) -> SendEmailError {
        SendEmailError::LimitExceededException(
            LimitExceededException::builder()
                .message(message)
                .meta(meta("LimitExceededException", message))
                .build(),
        )
    }

    #[test]
    fn ses_refusals_are_classed_transient_recipient_or_service() {
        use FailureClass::{Recipient, Service as Whole, Transient};
        let too_many = SendEmailError::TooManyRequestsException(
            TooManyRequestsException::builder()
                .message("Too many requests")
                .meta(meta("TooManyRequestsException", "Too many requests"))
                .build(),
        );
        let cases: Vec<(&str, SendEmailError, u16, FailureClass)> = vec![
            ("throttled", too_many, 429, Transient),
            (
                "throttling (generic)",
                SendEmailError::generic(meta("ThrottlingException", "Rate exceeded")),
                400,
                Transient,
            ),
            (
                "sending rate",
                limit("Maximum sending rate exceeded."),
                400,
                Transient,
            ),
            (
                "SES failing on its side",
                SendEmailError::generic(meta("InternalFailure", "An internal error occurred")),
                500,
                Transient,
            ),
            (
                "a 503 without a code",
                SendEmailError::generic(ErrorMetadata::builder().build()),
                503,
                Transient,
            ),
            (
                "on the suppression list",
                rejected("The email address is on the suppression list for your account."),
                400,
                Recipient,
            ),
            (
                "address blacklisted",
                rejected("Address blacklisted."),
                400,
                Recipient,
            ),
            (
                "an address SES cannot use",
                SendEmailError::BadRequestException(
                    BadRequestException::builder()
                        .message("Missing final '@domain'")
                        .meta(meta("BadRequestException", "Missing final '@domain'"))
                        .build(),
                ),
                400,
                Recipient,
            ),
            (
                "the sandbox",
                rejected(
                    "Email address is not verified. The following identities failed the check in region EU-WEST-1: c1@example.com",
                ),
                400,
                Whole,
            ),
            (
                "access denied (identity mismatch)",
                SendEmailError::generic(meta(
                    "AccessDeniedException",
                    "User is not authorized to perform `ses:SendEmail' on resource `arn:aws:ses:eu-west-1:123456789012:identity/example.com'",
                )),
                403,
                Whole,
            ),
            (
                "MAIL FROM domain not verified",
                SendEmailError::MailFromDomainNotVerifiedException(
                    MailFromDomainNotVerifiedException::builder()
                        .message("not verified")
                        .meta(meta("MailFromDomainNotVerifiedException", "not verified"))
                        .build(),
                ),
                400,
                Whole,
            ),
            (
                "sending paused",
                SendEmailError::SendingPausedException(
                    SendingPausedException::builder()
                        .message("Sending is paused for this account.")
                        .meta(meta(
                            "SendingPausedException",
                            "Sending is paused for this account.",
                        ))
                        .build(),
                ),
                400,
                Whole,
            ),
            (
                "account suspended",
                SendEmailError::AccountSuspendedException(
                    AccountSuspendedException::builder()
                        .message("suspended")
                        .meta(meta("AccountSuspendedException", "suspended"))
                        .build(),
                ),
                400,
                Whole,
            ),
            (
                "daily quota",
                limit("Daily message quota exceeded."),
                400,
                Whole,
            ),
            (
                "a rejection nobody named",
                rejected("Something else entirely"),
                400,
                Whole,
            ),
        ];
        for (what, err, status, want) in cases {
            assert_eq!(class_of(err, status), want, "{what}");
        }
        let timeout: SdkError<SendEmailError, HttpResponse> =
            SdkError::timeout_error("no answer within the timeout");
        assert_eq!(
            failure_class(&ServiceError::sdk(Service::Ses, "SendEmail", timeout)),
            Transient,
            "a timeout"
        );
    }

    #[tokio::test]
    async fn a_refused_send_carries_its_class_and_says_what_ses_said() {
        let err = ServiceError::refused(
            Service::Ses,
            "SendEmail",
            "MessageRejected",
            Some("Email address is not verified.".into()),
        );
        let e = MailError::Provider {
            message_id: "msg-1".into(),
            class: failure_class(&err),
            source: Box::new(AwsError::from(err)),
        };
        assert_eq!(e.class(), FailureClass::Service);
        assert_eq!(
            e.to_string(),
            "message msg-1: the mail service failed: SESv2 SendEmail: MessageRejected: Email address is not verified."
        );
    }

    #[test]
    fn tag_values_keep_to_the_ses_charset() {
        assert_eq!(tag_value("act-0a1b_C"), "act-0a1b_C");
        assert_eq!(tag_value("Arm B (short)"), "Arm_B__short_");
        assert_eq!(tag_value("été"), "_t_");
        assert_eq!(tag_value(""), "_");
        assert_eq!(tag_value(&"x".repeat(300)).len(), 256);
    }

    #[test]
    fn tags_name_the_message_and_its_action() {
        let msg = OutgoingMessage {
            message_id: "msg-1".into(),
            date: chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            sent_at: "2026-03-01T14:00:00Z".parse().unwrap(),
            from: Mailbox {
                name: "A".into(),
                email: "a@example.com".into(),
            },
            to: Mailbox {
                name: "B".into(),
                email: "b@example.com".into(),
            },
            reply_to: None,
            subject: "s".into(),
            text: "t".into(),
            html: "h".into(),
            action_ids: vec!["act-1".into()],
            tags: vec![
                ("channel".into(), "email".into()),
                ("action_id".into(), "act-1".into()),
                ("step".into(), "-3".into()),
                ("arm".into(), "short copy".into()),
                ("message_id".into(), "spoofed".into()),
            ],
            attachments: Vec::new(),
        };
        let tags = email_tags(&msg);
        assert_eq!(
            tags,
            vec![
                ("message_id".to_string(), "msg-1".to_string()),
                ("channel".to_string(), "email".to_string()),
                ("action_id".to_string(), "act-1".to_string()),
                ("step".to_string(), "-3".to_string()),
                ("arm".to_string(), "short_copy".to_string()),
            ]
        );
    }

    #[test]
    fn ses_events_read_back_with_their_tags() {
        let v = json!({
            "eventType": "Delivery",
            "mail": {"timestamp": "2026-03-02T10:00:00.000Z", "messageId": "0100-ses",
                     "tags": {"message_id": ["msg-1"], "action_id": ["act-1"], "ses:configuration-set": ["cs"]}},
            "delivery": {"timestamp": "2026-03-02T10:00:05.000Z"}
        });
        assert!(is_ses_event(&v));
        let e = ses_event(&v).unwrap();
        assert_eq!(e.stored.kind, "delivery");
        assert_eq!(e.stored.message_id.as_deref(), Some("msg-1"));
        assert_eq!(e.stored.provider_message_id.as_deref(), Some("0100-ses"));
        assert_eq!(e.contract.as_ref().unwrap()["type"], "mail_delivered");
        assert_eq!(ses_event(&v).unwrap().stored.event_id, e.stored.event_id);

        let send = json!({"eventType": "Send", "mail": {"timestamp": "2026-03-02T10:00:00Z",
            "messageId": "x", "tags": {"message_id": ["msg-1"]}}, "send": {}});
        let e = ses_event(&send).unwrap();
        assert_eq!(e.stored.kind, "send");
        assert!(e.contract.is_none());

        let foreign =
            json!({"eventType": "Open", "mail": {"timestamp": "2026-03-02T10:00:00Z", "tags": {}}});
        let refused = ses_event(&foreign).unwrap_err();
        assert!(refused.to_string().contains("neither"), "{refused}");
        assert!(matches!(refused, SesEventError::NotOurs { .. }));
    }

    #[test]
    fn a_permanent_bounce_and_a_complaint_hold_the_address_a_transient_bounce_does_not() {
        let mail = json!({"timestamp": "2026-03-02T10:00:00Z", "messageId": "0100-ses",
            "tags": {"message_id": ["msg-1"]}});
        let bounce = |kind: &str| {
            json!({"eventType": "Bounce", "mail": mail,
            "bounce": {"bounceType": kind, "bounceSubType": "General", "timestamp": "2026-03-02T10:00:03Z",
                "bouncedRecipients": [{"emailAddress": "ap@c1.example", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]}})
        };
        let hard = bounce("Permanent");
        let holds = ses_holds(&hard, &ses_event(&hard).unwrap());
        assert_eq!(holds.len(), 1);
        assert_eq!(holds[0].address.as_deref(), Some("ap@c1.example"));
        assert_eq!(holds[0].verdict, MailVerdict::HardBounce);
        assert_eq!(holds[0].message_id.as_deref(), Some("msg-1"));
        assert_eq!(
            holds[0].detail.as_deref(),
            Some("SES: smtp; 550 5.1.1 user unknown")
        );
        let soft = bounce("Transient");
        assert!(ses_holds(&soft, &ses_event(&soft).unwrap()).is_empty());
        let complaint = json!({"eventType": "Complaint", "mail": mail,
            "complaint": {"timestamp": "2026-03-02T11:00:00Z", "complaintFeedbackType": "abuse",
                "complainedRecipients": []}});
        let holds = ses_holds(&complaint, &ses_event(&complaint).unwrap());
        assert_eq!(holds.len(), 1);
        assert_eq!(holds[0].address, None);
        assert_eq!(holds[0].verdict, MailVerdict::Complaint);
        assert_eq!(holds[0].detail.as_deref(), Some("SES: feedback `abuse`"));
    }
}
