//! An outgoing message as RFC 5322 bytes: multipart/alternative (text, then
//! HTML) — inside multipart/mixed, followed by the files, when the message
//! has attachments (the legal letter's PDF) — built with lettre, which encodes every header value (RFC 2047) so
//! subjects cannot inject headers. Control characters in names, subjects,
//! action ids and tags are replaced by spaces beforehand — this is required,
//! not just belt and braces: lettre 0.11 panics when formatting a display
//! name that contains CR or LF.
//!
//! The output is deterministic: the `Date:` is the send time the delivery run
//! was given (`RunRequest::now`), and the MIME boundaries are derived from
//! the content — the clock is never read.
//!
//! The `Message-ID` is `<message_id@domain>`, the domain being the one of
//! the sender's address (`billing@example.com` → `example.com`), as RFC 5322
//! recommends, so the id is unique worldwide and points at the sender.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, NaiveDate, Utc};
use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{
    Attachment as LettreAttachment, Mailbox as LettreMailbox, MultiPart, SinglePart,
};
use sha2::{Digest, Sha256};

use super::MailError;
/// Header listing the actions a message carries, comma-separated.
pub const ACTION_IDS_HEADER: &str = "X-Collect-Action-Ids";
/// Header with the message's tags, `k=v;k=v`.
pub const TAGS_HEADER: &str = "X-Collect-Tags";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// Left part of the `Message-ID` (the right part is the sender's
    /// domain); also the outbox file name. Letters, digits, `.`, `_`, `-`,
    /// `+`, `=`.
    pub message_id: String,
    /// The sweep day the message belongs to (the outbox folder).
    pub date: NaiveDate,
    /// When it is handed to the mail service: the `Date` header.
    pub sent_at: DateTime<Utc>,
    pub from: Mailbox,
    pub to: Mailbox,
    pub reply_to: Option<Mailbox>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub action_ids: Vec<String>,
    pub tags: Vec<(String, String)>,
    /// Files sent with the message (the legal letter's PDF).
    pub attachments: Vec<Attachment>,
}

/// A file attached to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The name the recipient sees (`letter-2027-00880.pdf`).
    pub filename: String,
    /// MIME type, e.g. `application/pdf`.
    pub content_type: String,
    pub content: Vec<u8>,
}

/// The domain of the `Message-ID`: the sender address's.
pub fn message_id_domain(msg: &OutgoingMessage) -> Result<String, MailError> {
    Ok(ours(&msg.from)?.email.domain().to_string())
}

/// The message as RFC 5322 bytes (CRLF line ends).
pub fn to_rfc5322(msg: &OutgoingMessage) -> Result<Vec<u8>, MailError> {
    check_message_id(&msg.message_id)?;
    let mut builder = Message::builder()
        .message_id(Some(format!(
            "<{}@{}>",
            msg.message_id,
            message_id_domain(msg)?
        )))
        .date(system_time(msg)?)
        .from(ours(&msg.from)?)
        .to(mailbox(&msg.to)?)
        .subject(one_line(&msg.subject));
    if let Some(reply_to) = &msg.reply_to {
        builder = builder.reply_to(ours(reply_to)?);
    }
    let action_ids = msg
        .action_ids
        .iter()
        .map(|a| one_line(a))
        .collect::<Vec<_>>()
        .join(",");
    if !action_ids.is_empty() {
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(ACTION_IDS_HEADER),
            action_ids,
        ));
    }
    let tags = msg
        .tags
        .iter()
        .map(|(k, v)| format!("{}={}", one_line(k), one_line(v)))
        .collect::<Vec<_>>()
        .join(";");
    if !tags.is_empty() {
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(TAGS_HEADER),
            tags,
        ));
    }
    let build = |reason: String| MailError::Build {
        message_id: msg.message_id.clone(),
        reason,
    };
    let alternative = MultiPart::alternative()
        .boundary(boundary(msg, "alt"))
        .singlepart(SinglePart::plain(msg.text.clone()))
        .singlepart(SinglePart::html(msg.html.clone()));
    let body = if msg.attachments.is_empty() {
        alternative
    } else {
        let mut mixed = MultiPart::mixed()
            .boundary(boundary(msg, "mix"))
            .multipart(alternative);
        for a in &msg.attachments {
            let content_type = ContentType::parse(&a.content_type)
                .map_err(|e| build(format!("attachment `{}`: {e}", a.filename)))?;
            mixed = mixed.singlepart(
                LettreAttachment::new(one_line(&a.filename)).body(a.content.clone(), content_type),
            );
        }
        mixed
    };
    let message = builder
        .multipart(body)
        .map_err(|err| build(err.to_string()))?;
    Ok(message.formatted())
}

/// Whether a message id is safe as a `Message-ID` left part and a file name.
pub(crate) fn check_message_id(id: &str) -> Result<(), MailError> {
    let ok = !id.is_empty()
        && id.len() <= 200
        && !id.starts_with('.')
        && !id.ends_with('.')
        && !id.contains("..")
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '='));
    if ok {
        Ok(())
    } else {
        Err(MailError::InvalidMessageId {
            message_id: id.to_string(),
        })
    }
}

fn mailbox(m: &Mailbox) -> Result<LettreMailbox, MailError> {
    let address = m
        .email
        .trim()
        .parse()
        .map_err(
            |err: lettre::address::AddressError| MailError::InvalidAddress {
                address: m.email.clone(),
                reason: err.to_string(),
            },
        )?;
    let name = one_line(&m.name);
    Ok(LettreMailbox::new(
        (!name.is_empty()).then_some(name),
        address,
    ))
}

/// One of our own mailboxes (sender, reply-to): an invalid one is the
/// sender's fault, not the recipient's ([`MailError::InvalidSender`]).
fn ours(m: &Mailbox) -> Result<LettreMailbox, MailError> {
    mailbox(m).map_err(|e| match e {
        MailError::InvalidAddress { address, reason } => {
            MailError::InvalidSender { address, reason }
        }
        other => other,
    })
}

fn system_time(msg: &OutgoingMessage) -> Result<SystemTime, MailError> {
    let seconds = msg.sent_at.timestamp();
    u64::try_from(seconds)
        .ok()
        .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)))
        .ok_or(MailError::InvalidDate {
            message_id: msg.message_id.clone(),
            date: msg.sent_at.date_naive(),
        })
}

/// Control characters (CR, LF, tab, …) become spaces; runs of whitespace
/// collapse; the ends are trimmed.
fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A MIME boundary derived from the content, so the output is reproducible
/// (and, being a hash, never occurs in the encoded parts).
fn boundary(msg: &OutgoingMessage, kind: &str) -> String {
    let mut hash = Sha256::new();
    for part in [kind, &msg.message_id, &msg.text, &msg.html] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    for a in &msg.attachments {
        hash.update((a.content.len() as u64).to_be_bytes());
        hash.update(&a.content);
    }
    let hex: String = hash
        .finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("collect-{hex}")
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> OutgoingMessage {
        OutgoingMessage {
            message_id: "msg-0001".into(),
            date: "2025-03-14".parse().unwrap(),
            sent_at: "2025-03-14T09:41:07Z".parse().unwrap(),
            from: Mailbox {
                name: "Example Billing".into(),
                email: "billing@example.com".into(),
            },
            to: Mailbox {
                name: "Acme Widgets".into(),
                email: "ap@acme.example".into(),
            },
            reply_to: Some(Mailbox {
                name: "Collections Team".into(),
                email: "collections@example.com".into(),
            }),
            subject: "Invoice 2025-0042 is due".into(),
            text: "Dear Acme,\nplease pay.\n".into(),
            html: "<p>Dear Acme,</p><p>please pay.</p>".into(),
            action_ids: vec!["act-1".into(), "act-2".into()],
            tags: vec![
                ("policy".into(), "standard-net30".into()),
                ("step".into(), "friendly-reminder".into()),
            ],
            attachments: Vec::new(),
        }
    }

    /// The header section, unfolded, one header per entry.
    fn headers(eml: &str) -> Vec<String> {
        let head = eml.split("\r\n\r\n").next().unwrap();
        let mut out: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with(' ') || line.starts_with('\t') {
                out.last_mut().unwrap().push_str(line);
            } else {
                out.push(line.to_string());
            }
        }
        out
    }

    fn header<'a>(hs: &'a [String], name: &str) -> Option<&'a str> {
        let prefix = format!("{}: ", name.to_ascii_lowercase());
        hs.iter()
            .find(|h| h.to_ascii_lowercase().starts_with(&prefix))
            .map(|h| &h[prefix.len()..])
    }

    #[test]
    fn message_has_headers_and_both_parts() {
        let bytes = to_rfc5322(&sample()).unwrap();
        let eml = String::from_utf8(bytes.clone()).unwrap();
        let hs = headers(&eml);
        assert_eq!(
            header(&hs, "From"),
            Some("\"Example Billing\" <billing@example.com>")
        );
        assert_eq!(
            header(&hs, "To"),
            Some("\"Acme Widgets\" <ap@acme.example>")
        );
        assert_eq!(
            header(&hs, "Reply-To"),
            Some("\"Collections Team\" <collections@example.com>")
        );
        assert_eq!(header(&hs, "Subject"), Some("Invoice 2025-0042 is due"));
        assert_eq!(header(&hs, "Message-ID"), Some("<msg-0001@example.com>"));
        assert_eq!(header(&hs, "Date"), Some("Fri, 14 Mar 2025 09:41:07 +0000"));
        assert_eq!(header(&hs, "X-Collect-Action-Ids"), Some("act-1,act-2"));
        assert_eq!(
            header(&hs, "X-Collect-Tags"),
            Some("policy=standard-net30;step=friendly-reminder")
        );
        assert_eq!(header(&hs, "MIME-Version"), Some("1.0"));
        assert!(
            header(&hs, "Content-Type")
                .unwrap()
                .starts_with("multipart/alternative")
        );
        let plain = eml.find("Content-Type: text/plain; charset=utf-8").unwrap();
        let html = eml.find("Content-Type: text/html; charset=utf-8").unwrap();
        assert!(plain < html);
        assert!(eml.contains("please pay."));
        assert!(eml.contains("<p>Dear Acme,</p>"));
        // Deterministic.
        assert_eq!(bytes, to_rfc5322(&sample()).unwrap());
    }

    #[test]
    fn attachments_go_in_multipart_mixed() {
        let mut msg = sample();
        msg.attachments = vec![Attachment {
            filename: "letter-2025-0042.pdf".into(),
            content_type: "application/pdf".into(),
            content: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3 fake".to_vec(),
        }];
        let eml = String::from_utf8(to_rfc5322(&msg).unwrap()).unwrap();
        let hs = headers(&eml);
        assert!(
            header(&hs, "Content-Type")
                .unwrap()
                .starts_with("multipart/mixed"),
            "{eml}"
        );
        let alt = eml.find("Content-Type: multipart/alternative").unwrap();
        let pdf = eml.find("Content-Type: application/pdf").unwrap();
        assert!(alt < pdf, "{eml}");
        assert!(
            eml.contains("Content-Disposition: attachment; filename=\"letter-2025-0042.pdf\""),
            "{eml}"
        );
        use base64::Engine as _;
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3 fake");
        assert!(eml.contains("Content-Transfer-Encoding: base64"), "{eml}");
        assert!(eml.contains(&encoded), "{eml}");
        assert_eq!(eml, String::from_utf8(to_rfc5322(&msg).unwrap()).unwrap());
    }

    #[test]
    fn header_injection_is_neutralised() {
        let mut msg = sample();
        msg.subject = "Hi\r\nBcc: evil@x.com".into();
        msg.to.name = "Evil\r\nBcc: evil2@x.com".into();
        msg.from.name = "Doe, \"Jane\" & Co".into();
        msg.tags = vec![("k\r\nBcc".into(), "v\nCc: evil3@x.com".into())];
        msg.action_ids = vec!["a\r\nCc: evil4@x.com".into()];
        let eml = String::from_utf8(to_rfc5322(&msg).unwrap()).unwrap();
        let hs = headers(&eml);
        for h in &hs {
            let lower = h.to_ascii_lowercase();
            assert!(
                !lower.starts_with("bcc:") && !lower.starts_with("cc:"),
                "injected header {h:?} in\n{eml}"
            );
        }
        let subject = header(&hs, "Subject").unwrap();
        assert!(
            subject.contains("Hi") && subject.contains("evil@x.com"),
            "{subject}"
        );
        // The name is one encoded word: its comma and quotes cannot split
        // the address list.
        let from = header(&hs, "From").unwrap();
        let encoded = from
            .strip_prefix("=?utf-8?b?")
            .and_then(|f| f.strip_suffix("?= <billing@example.com>"))
            .unwrap_or_else(|| panic!("{from}"));
        use base64::Engine as _;
        let name = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        assert_eq!(String::from_utf8(name).unwrap(), "Doe, \"Jane\" & Co");
        let to = header(&hs, "To").unwrap();
        assert_eq!(to.matches('<').count(), 1, "{to}");
        assert!(to.ends_with("<ap@acme.example>"), "{to}");
    }

    #[test]
    fn non_ascii_names_and_subjects_are_encoded() {
        let mut msg = sample();
        msg.to.name = "Müller & Söhne".into();
        msg.subject = "Zahlungserinnerung für Rechnung 42".into();
        let eml = String::from_utf8(to_rfc5322(&msg).unwrap()).unwrap();
        let head = eml.split("\r\n\r\n").next().unwrap();
        assert!(head.is_ascii(), "{head}");
        assert!(head.contains("=?utf-8?"), "{head}");
    }

    #[test]
    fn invalid_address_is_named() {
        let mut msg = sample();
        msg.to.email = "not an address".into();
        let err = to_rfc5322(&msg).unwrap_err();
        assert!(
            matches!(&err, MailError::InvalidAddress { address, .. } if address == "not an address")
        );
        assert!(err.to_string().contains("`not an address`"), "{err}");
    }

    #[test]
    fn invalid_message_id_is_rejected() {
        for id in ["", "../x", "a b", "a\r\nb", "a@b", "a/b"] {
            let mut msg = sample();
            msg.message_id = id.into();
            assert!(
                matches!(to_rfc5322(&msg), Err(MailError::InvalidMessageId { .. })),
                "{id:?}"
            );
        }
    }
}
