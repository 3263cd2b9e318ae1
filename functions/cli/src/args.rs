//! What the commands' arguments share: the output formats, the default
//! policy and how a date is written on the command line. Every command
//! file under `commands/` builds its arguments from these; nothing here
//! knows about any one command.

use chrono::NaiveDate;
use clap::ValueEnum;

/// The policy used when `--policy` is not given.
pub const DEFAULT_POLICY: &str = "policy/standard-net30.policy";

/// How every date argument is written, for help texts and errors.
pub const DATE_FORMAT: &str = "YYYY-MM-DD, e.g. 2027-03-31";

/// A date argument that is not written YYYY-MM-DD (clap puts it after
/// "invalid value … for '--date <DATE>'").
#[derive(Debug, thiserror::Error)]
#[error("`{input}` is not a date ({reason}): write it as {DATE_FORMAT}")]
pub struct DateArgError {
    /// What was typed.
    pub input: String,
    /// Why chrono refused it (shown, not a source: clap prints one line).
    pub reason: chrono::ParseError,
}

/// Parses a date argument; the error says the format.
pub fn parse_date(s: &str) -> Result<NaiveDate, DateArgError> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|reason| DateArgError {
        input: s.to_string(),
        reason,
    })
}

/// The output of most commands: text for people or JSON for tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}
