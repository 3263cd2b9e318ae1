//! JSON events: the lines of `events.jsonl` locally, the event payloads on
//! AWS. One parser for both, so that an event behaves the same wherever it
//! arrives.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::Incoming;
use super::record::{self, Check, Fields, Problem};
use super::rules;
use crate::domain::{Event, EventKind, PlanTerms};

/// Every `type` an event may have, in the order they are documented.
pub(super) const TYPES: [&str; 16] = [
    "customer_upserted",
    "invoice_upserted",
    "payment_received",
    "dispute_opened",
    "dispute_closed",
    "promise_to_pay",
    "plan_accepted",
    "mail_delivered",
    "mail_bounced",
    "mail_complained",
    "mail_opened",
    "mail_clicked",
    "mail_replied",
    "written_off",
    "placed_with_agency",
    "kept_working",
];

/// Who decided an end-of-ladder outcome that arrives without `by`: the
/// ERP reported it.
pub const REPORTED_BY_ERP: &str = "erp";

/// The fields of a JSON object, read with the CSV column names.
struct JsonFields<'a>(&'a Map<String, Value>);

/// A JSON value that is not text, a number or a boolean.
fn not_text(column: &str, value: &Value, expected: &str) -> Problem {
    let what = match value {
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
        _ => "not text",
    };
    let text = value.to_string();
    Problem::new(
        column,
        &text,
        format!("{} is {what}, expected {expected}", rules::quote(&text)),
    )
}

/// A scalar as the text a CSV cell would hold. Numbers keep serde_json's
/// shortest form, so `12.5` reads `12.5` and `1e21` reads `1e21` (which the
/// amount rule then refuses, as in a CSV file). `null` is given as empty,
/// like an empty cell: it clears an optional value, while a field left out
/// keeps the stored one.
fn scalar_text(value: &Value) -> Option<Option<String>> {
    match value {
        Value::Null => Some(Some(String::new())),
        Value::String(s) => Some(Some(s.trim().to_owned())),
        Value::Number(n) => Some(Some(n.to_string())),
        Value::Bool(b) => Some(Some(b.to_string())),
        Value::Array(_) | Value::Object(_) => None,
    }
}

impl Fields for JsonFields<'_> {
    fn text(&self, column: &str) -> Result<Option<String>, Problem> {
        match self.0.get(column) {
            None => Ok(None),
            Some(value) => {
                scalar_text(value).ok_or_else(|| not_text(column, value, "text or a number"))
            }
        }
    }

    /// Tags as a JSON array of strings, or as `;`-separated text.
    fn list(&self, column: &str) -> Result<Vec<String>, Problem> {
        match self.0.get(column) {
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(not_text(column, other, "a list of text")),
                })
                .collect(),
            Some(Value::String(s)) => Ok(s.split(';').map(str::to_owned).collect()),
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(other) => Err(not_text(column, other, "a list of text")),
        }
    }
}

/// The JSON text of a value with object keys sorted at every level, which
/// is what `serde_json::to_string` writes with its default (sorted) map; it
/// is spelled out so that the ids stay stable even if a dependency turns on
/// serde_json's `preserve_order`.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let body: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), canonical(v)))
                .collect();
            format!("{{{}}}", body.join(","))
        }
        Value::Array(items) => {
            let body: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", body.join(","))
        }
        scalar => scalar.to_string(),
    }
}

/// The id of an event that came without one: the hex SHA-256 of its
/// canonical JSON, so that the same event delivered twice (SES and
/// EventBridge deliver at least once) gets the same id and is applied once.
pub(super) fn content_id(value: &Value) -> String {
    Sha256::digest(canonical(value).as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn known_types() -> String {
    TYPES.join(", ")
}

/// Parses one event into what it carries, or every problem found in it.
pub(super) fn incoming(value: &Value) -> Result<Incoming, Vec<Problem>> {
    let Value::Object(map) = value else {
        let text = value.to_string();
        return Err(vec![Problem::new(
            "json",
            &text,
            format!("{} is not a JSON object with a `type`", rules::quote(&text)),
        )]);
    };
    let fields = JsonFields(map);
    let kind = match map.get("type") {
        Some(Value::String(kind)) => kind.trim(),
        None | Some(Value::Null) => {
            return Err(vec![Problem::new(
                "type",
                "",
                format!("is required but missing; known types: {}", known_types()),
            )]);
        }
        Some(other) => return Err(vec![not_text("type", other, "one of the known types")]),
    };
    match kind {
        "customer_upserted" => record::customer(&fields).map(Incoming::Customer),
        "invoice_upserted" => record::invoice(&fields).map(Incoming::Invoice),
        "payment_received" => record::payment(&fields).map(Incoming::Payment),
        _ if TYPES.contains(&kind) => event(kind, &fields, value).map(Incoming::Event),
        _ => Err(vec![Problem::new(
            "type",
            kind,
            format!(
                "{} is not a known type; known types: {}",
                rules::quote(kind),
                known_types()
            ),
        )]),
    }
}

/// An event about an invoice or a message, of a known `kind`.
fn event(kind: &str, fields: &JsonFields<'_>, value: &Value) -> Result<Event, Vec<Problem>> {
    let mut c = Check::new(fields);
    let date = c.required("date", rules::date);
    let event_id = c.optional("event_id", rules::id);
    let is_mail = kind.starts_with("mail_");
    let invoice_id = if is_mail {
        c.optional("invoice_id", rules::id)
    } else {
        c.required("invoice_id", rules::id)
    };
    let action_id = c.optional("action_id", rules::id);
    let message_id = c.optional("message_id", rules::message_id);
    let by = c.optional("by", rules::text);
    let reason = c.optional("reason", rules::text);
    if is_mail
        && action_id.is_none()
        && message_id.is_none()
        && !c.has_problem("action_id")
        && !c.has_problem("message_id")
    {
        c.problem(
            "action_id",
            "",
            "a mail event needs `action_id` or `message_id`".to_owned(),
        );
    }
    let event_kind = match kind {
        "dispute_opened" => Some(EventKind::DisputeOpened),
        "dispute_closed" => Some(EventKind::DisputeClosed),
        "promise_to_pay" => {
            let until = c.required("promised_until", rules::date);
            if let (Some(until), Some(date)) = (until, date) {
                if let Err(reason) =
                    rules::not_before(&until.to_string(), until, date, "event date")
                {
                    c.problem("promised_until", &until.to_string(), reason);
                }
            }
            until.map(|promised_until| EventKind::PromiseToPay { promised_until })
        }
        "plan_accepted" => {
            let installments = c.required("installments", rules::installments);
            let every_days = c.required("every_days", rules::every_days);
            let down_payment = c.optional("down_payment", rules::not_negative);
            match (installments, every_days) {
                (Some(installments), Some(every_days)) => {
                    Some(EventKind::PlanAccepted(PlanTerms {
                        installments,
                        every_days,
                        down_payment: down_payment.unwrap_or_default(),
                    }))
                }
                _ => None,
            }
        }
        "mail_delivered" => Some(EventKind::MailDelivered),
        "mail_bounced" => Some(EventKind::MailBounced),
        "mail_complained" => Some(EventKind::MailComplained),
        "mail_opened" => Some(EventKind::MailOpened),
        "mail_clicked" => Some(EventKind::MailClicked),
        "mail_replied" => Some(EventKind::MailReplied),
        "written_off" => {
            let amount = c.optional("amount", rules::written_off_amount);
            (!c.has_problem("amount")).then_some(EventKind::WrittenOff { amount })
        }
        "placed_with_agency" => c
            .required("agency", rules::text)
            .map(|agency| EventKind::PlacedWithAgency { agency }),
        "kept_working" => Some(EventKind::KeptWorking),
        other => {
            c.problem(
                "type",
                other,
                format!(
                    "{} is not a known type; known types: {}",
                    rules::quote(other),
                    known_types()
                ),
            );
            None
        }
    };
    // An end-of-ladder outcome always says who decided: the ERP, unless
    // the event names someone.
    let by = match &event_kind {
        Some(k) if k.is_end_of_ladder() && !c.has_problem("by") => {
            by.or_else(|| Some(REPORTED_BY_ERP.to_owned()))
        }
        _ => by,
    };
    let record = match (date, event_kind) {
        (Some(date), Some(kind)) => Some(Event {
            event_id: event_id.unwrap_or_else(|| content_id(value)),
            date,
            kind,
            invoice_id,
            action_id,
            message_id,
            by,
            reason,
        }),
        _ => None,
    };
    c.finish(record)
}
