//! The letter preview: a task's message composed exactly as the sweep
//! would send it ([`Sweeper::compose`]), with the legal letter's PDF.

use crate::delivery::Sweeper;
use crate::message::TemplateError;
use chrono::NaiveDate;
use collect_engine::book::Book;
use collect_engine::domain::ActionRecord;
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
    #[error("not built yet")]
    NotBuilt,
}

/// The message of `record` as it would go out on `day`.
pub fn preview(
    sweeper: &Sweeper<'_>,
    book: &Book,
    record: &ActionRecord,
    day: NaiveDate,
) -> Result<Preview, PreviewError> {
    let _ = (sweeper, book, record, day);
    Err(PreviewError::NotBuilt)
}
