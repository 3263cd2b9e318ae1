//! `collect pay-link verify TOKEN`: checks a pay-link token the way the
//! payment page does (`PayLinks::verify_link`), with this home's key.

use crate::args::{Format, parse_date};
use crate::home::Home;
use anyhow::Result;
use chrono::NaiveDate;
use collect_delivery::message::PayLinkError;
use serde::Serialize;
use std::path::Path;
use std::process::ExitCode;

/// Pay links: check a token as the payment page does.
#[derive(clap::Args)]
pub struct Args {
    /// What to do with a pay link.
    #[command(subcommand)]
    action: PayLinkAction,
}

#[derive(clap::Subcommand)]
enum PayLinkAction {
    /// Check a token (the last part of a "pay now" link) with this home's
    /// key: prints the invoice and the last valid day, or why it is
    /// invalid (then exits 1).
    Verify {
        /// The token: the last part of the "pay now" link.
        token: String,
        /// The day to check on, YYYY-MM-DD, e.g. 2027-03-31; defaults to today.
        #[arg(value_parser = parse_date, long)]
        date: Option<NaiveDate>,
        /// Output: `human` for people, `json` for tools.
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
}

pub fn run(home: &Path, args: &Args) -> Result<ExitCode> {
    let PayLinkAction::Verify {
        token,
        date,
        format,
    } = &args.action;
    // The command line is the edge where "today" may come from the clock.
    let day = date.unwrap_or_else(|| chrono::Local::now().date_naive());
    verify(&Home::open(home)?, token, day, *format)
}

#[derive(Serialize)]
struct Verdict {
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    invoice_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    checked_on: NaiveDate,
    key: String,
}

/// Exit 0 when the token is genuine and not expired on `day`, 1 otherwise.
fn verify(home: &Home, token: &str, day: NaiveDate, format: Format) -> Result<ExitCode> {
    let links = home.pay_links()?;
    let key = home.pay_link_key_source().to_string();
    let token = token_of(token, &home.settings.pay_url);
    let verdict = match links.verify_link(token, day) {
        Ok(link) => Verdict {
            valid: true,
            invoice_id: Some(link.invoice_id),
            expires: Some(link.expires),
            reason: None,
            checked_on: day,
            key,
        },
        Err(e) => Verdict {
            valid: false,
            invoice_id: match &e {
                PayLinkError::Expired { invoice_id, .. } => Some(invoice_id.clone()),
                _ => None,
            },
            expires: match &e {
                PayLinkError::Expired { expired_on, .. } => Some(*expired_on),
                _ => None,
            },
            reason: Some(match e {
                PayLinkError::BadSignature => format!(
                    "{e}, or signed with another key than {}",
                    home.pay_link_key_source()
                ),
                other => other.to_string(),
            }),
            checked_on: day,
            key,
        },
    };
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&verdict)?),
        Format::Human => match (&verdict.reason, &verdict.invoice_id, verdict.expires) {
            (None, Some(id), Some(expires)) => println!(
                "valid: invoice {id}, link valid through {expires} (checked on {day} with {})",
                verdict.key
            ),
            (reason, _, _) => eprintln!(
                "invalid: {} (checked on {day} with {})",
                reason.as_deref().unwrap_or("unknown reason"),
                verdict.key
            ),
        },
    }
    Ok(if verdict.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The token of a whole "pay now" link made with `pattern` (config.toml's
/// `pay_url`), or the text itself when it is not such a link.
fn token_of<'a>(text: &'a str, pattern: &str) -> &'a str {
    let text = text.trim();
    pattern
        .split_once("{token}")
        .and_then(|(before, after)| text.strip_prefix(before)?.strip_suffix(after))
        .filter(|t| !t.is_empty())
        .unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::token_of;

    #[test]
    fn a_whole_link_or_a_token() {
        let pattern = "https://pay.example.com/invoice/{token}?src=mail";
        assert_eq!(
            token_of("https://pay.example.com/invoice/AbC-_9?src=mail", pattern),
            "AbC-_9"
        );
        assert_eq!(token_of(" AbC-_9\n", pattern), "AbC-_9");
        assert_eq!(
            token_of("https://other.example/AbC", pattern),
            "https://other.example/AbC"
        );
    }
}
