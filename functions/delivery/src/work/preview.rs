//! The letter preview: a task's message composed exactly as the sweep
//! would send it ([`Sweeper::compose`]), with the legal letter's PDF.

use crate::delivery::Sweeper;
use crate::message::TemplateError;
use chrono::NaiveDate;
use collect_engine::book::Book;
use collect_engine::domain::{ActionRecord, Channel};
use collect_engine::sweep::{PlannedMessage, message_id};
use serde::Serialize;

/// What would be sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preview {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// The printable letter of a legal notice.
    #[serde(skip)]
    pub pdf: Option<Vec<u8>>,
}

/// Why there is no preview.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("task `{0}` is a call; there is no message to preview")]
    NoMessage(String),
    #[error("customer `{0}` is not in the book")]
    NoCustomer(String),
    #[error(transparent)]
    Template(#[from] TemplateError),
}

/// The message of `record` as it would go out on `day`: composed by the
/// sweep's own [`Sweeper::compose`] from the customer's `book` (read it
/// fresh: [`crate::ledger::Ledger::customer_book`]), in the customer's
/// language, with the PDF a letter carries.
pub fn preview(
    sweeper: &Sweeper<'_>,
    book: &Book,
    record: &ActionRecord,
    day: NaiveDate,
) -> Result<Preview, PreviewError> {
    if matches!(record.channel, Channel::Call | Channel::NoContact) {
        return Err(PreviewError::NoMessage(record.action_id.to_string()));
    }
    let customer = book
        .customers
        .get(record.customer_id.as_str())
        .ok_or_else(|| PreviewError::NoCustomer(record.customer_id.to_string()))?;
    let action_ids = vec![record.action_id.clone()];
    let planned = PlannedMessage {
        message_id: record
            .message_id
            .clone()
            .unwrap_or_else(|| message_id(&action_ids)),
        customer_id: record.customer_id.clone(),
        channel: record.channel,
        template: record.target.clone(),
        action_ids,
        invoice_ids: vec![record.invoice_id.clone()],
        plan: None,
        tags: vec![],
    };
    let msg = sweeper.compose(book, customer, &planned, day)?;
    let pdf = msg
        .attachments
        .into_iter()
        .find(|a| a.content_type == "application/pdf")
        .map(|a| a.content);
    Ok(Preview {
        to: format!("{} <{}>", msg.to.name, msg.to.email),
        subject: msg.subject,
        text: msg.text,
        html: Some(msg.html).filter(|h| !h.trim().is_empty()),
        pdf,
    })
}
