//! Messages: templates, pay links, the printable letter and RFC 5322 messages.
//!
//! - `templates`: the policy's message templates (`<name>/<lang>/{subject.txt,
//!   body.txt, body.html}`, and the layout the HTML bodies extend in
//!   `_layout/`), compiled with MiniJinja in strict mode, HTML parts
//!   auto-escaped, and checked against [`MessageContext::sample`];
//! - `paylink`: signed, expiring pay links (HMAC-SHA256);
//! - `locale`: money and dates in the customer's language and country (ICU4X);
//! - `pdf`: the printable letter (PDF) attached to legal letters, with the
//!   QR code of its pay link when the `qr` feature is on;
//! - `postal`: the recipient's address block in their country's layout;
//! - `eml`: an [`OutgoingMessage`] as RFC 5322 bytes (multipart/alternative,
//!   inside multipart/mixed when it has attachments).
//!
//! How a message is handed to a mail service is [`crate::mailer`]'s.

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

mod context;
pub mod eml;
pub mod locale;
pub mod paylink;
pub mod pdf;
pub mod postal;
pub mod templates;

pub use context::{
    CompanyCtx, CustomerCtx, InstallmentCtx, InvoiceCtx, InvoiceLists, InvoiceState,
    MessageContext, PlanCtx, format_money,
};
pub use eml::{Attachment, Mailbox, OutgoingMessage, to_rfc5322};
pub use locale::Formats;
pub use paylink::{PayLinks, VerifiedLink};
pub use templates::{ProblemKind, Rendered, TemplateProblem, Templates};

/// `file:line`, or `file` when the line is not known.
pub(crate) fn at(file: &Path, line: &Option<usize>) -> String {
    match line {
        Some(line) => format!("{}:{line}", file.display()),
        None => file.display().to_string(),
    }
}

/// Loading or rendering templates failed.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A template that does not parse: where (line and column when
    /// MiniJinja knows the spot), what, and the file's text as loaded so
    /// `check` can underline it like the policy's own diagnostics.
    #[error("{problem}")]
    Syntax {
        problem: Box<TemplateProblem>,
        source_text: String,
    },
    #[error("{}: {message}", at(.file, .line))]
    Render {
        file: PathBuf,
        line: Option<usize>,
        message: String,
    },
    #[error("there is no template `{name}`; the templates are: {}", known.join(", "))]
    UnknownTemplate { name: String, known: Vec<String> },
    #[error("template `{name}` has neither a `{language}` nor an `en` version")]
    NoLanguage { name: String, language: String },
    #[error("{} is missing", file.display())]
    MissingPart { file: PathBuf },
    /// A file or folder of the templates that is a symbolic link: it may
    /// read a file from outside the policy folder (`body.txt` →
    /// `/etc/passwd`), which would then be mailed and bundled.
    #[error(
        "{} is a symbolic link{}: a policy folder's files must be in it, so that what is \
         reviewed is what is sent; replace the link with the file itself",
        path.display(),
        target.as_ref().map(|t| format!(" (to {})", t.display())).unwrap_or_default()
    )]
    Link {
        path: PathBuf,
        /// Where it points, when that can be read.
        target: Option<PathBuf>,
    },
    /// A template extends or includes (`{% extends "_layout/email.html" %}`)
    /// a file that is not there: it could never be sent.
    #[error("{}: {message}", at(.file, .line))]
    MissingLayout {
        /// The template that names it.
        file: PathBuf,
        line: Option<usize>,
        /// The name as the template writes it.
        layout: String,
        /// What is wrong, with the path where the file was looked for.
        message: String,
    },
}

/// Making or checking a pay link failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayLinkError {
    #[error("the pay link key must be at least {min} bytes long, it is {len}")]
    KeyTooShort { len: usize, min: usize },
    #[error("the pay link key is only spaces or other blanks; use a random secret")]
    BlankKey,
    #[error("the pay link pattern `{pattern}` must contain `{{token}}`")]
    BadPattern { pattern: String },
    #[error("malformed pay link token")]
    Malformed,
    #[error("pay link token has a bad signature (forged or altered)")]
    BadSignature,
    #[error("pay link for invoice {invoice_id} expired on {expired_on}")]
    Expired {
        invoice_id: String,
        expired_on: NaiveDate,
    },
}

/// Building or sending a message failed.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The recipient's address cannot be used.
    #[error("invalid email address `{address}`: {reason}")]
    InvalidAddress { address: String, reason: String },
    /// Our own address (the sender or reply-to) cannot be used: every
    /// message would fail alike, so it stops the run.
    #[error(
        "the sender's address `{address}` is invalid: {reason}; fix the sender address in the settings"
    )]
    InvalidSender { address: String, reason: String },
    #[error(
        "invalid message id `{message_id}`: only letters, digits, `.`, `_`, `-`, `+` and `=` are allowed"
    )]
    InvalidMessageId { message_id: String },
    #[error("message {message_id}: date {date} cannot be represented")]
    InvalidDate { message_id: String, date: NaiveDate },
    #[error("message {message_id}: {reason}")]
    Build { message_id: String, reason: String },
    /// The outbox could not be written (see [`crate::mailer::io_class`]).
    #[error("message {message_id}: the outbox cannot be written at {}: {source}", path.display())]
    Io {
        message_id: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// For mail service adapters: the service refused or failed. Its own
    /// error (SES's code and message, a refusal of a test) is the source.
    #[error("message {message_id}: the mail service failed: {source}")]
    Provider {
        message_id: String,
        /// What the refusal means for the message and the run.
        class: crate::mailer::FailureClass,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl fmt::Display for TemplateProblem {
    /// `file:line:col: message (help)` on one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.col {
            Some(col) => write!(f, "{}:{col}: {}", at(&self.file, &self.line), self.message)?,
            None => write!(f, "{}: {}", at(&self.file, &self.line), self.message)?,
        }
        match &self.help {
            Some(help) => write!(f, " ({help})"),
            None => Ok(()),
        }
    }
}
