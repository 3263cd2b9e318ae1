//! `collect check`: every problem in the policy files and their templates,
//! with file:line:col and a fix ([`crate::policy_check`]).

use crate::args::Format;
use crate::home::Home;
use crate::policy_check::check;
use crate::policy_files;
use anyhow::Result;
use collect_engine::ingest::LAST_DAY;
use collect_sqlite::store::Store;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Check policy files and report every problem with its line and a fix.
#[derive(clap::Args)]
pub struct Args {
    /// Policy files or folders holding them (searched recursively).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Output: `human` for people, `json` for tools.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
    /// Treat warnings as errors.
    #[arg(long)]
    deny_warnings: bool,
    /// Languages your customers use, comma-separated (`de,fr`): a
    /// warning for each template they would get in `en` instead. The
    /// languages some template has are always checked.
    #[arg(long, value_delimiter = ',', value_parser = language_tag)]
    languages: Vec<String>,
    /// A home (the folder `collect ingest` loads into): also count its open
    /// invoices in currencies a policy does not cover, by currency; the
    /// sweep leaves them alone. A warning each.
    #[arg(long, value_name = "HOME")]
    book: Option<PathBuf>,
}

/// A language of `--languages`, held to the rule of customers' `language`
/// and of template folders: `german` is refused with `did you mean `de`?`.
fn language_tag(value: &str) -> Result<String, String> {
    let value = value.trim();
    match collect_delivery::message::locale::language_folder(value) {
        Ok(()) => Ok(value.to_string()),
        Err(e) => Err(match e.suggestion {
            Some(tag) => format!("`{value}` is not a language tag; did you mean `{tag}`?"),
            None => format!("`{value}` is not a language tag (e.g. `de`, `fr`, `pt-BR`)"),
        }),
    }
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let checked = check(&args.paths, &args.languages)?;
    let mut failed = checked.print(args.format, args.deny_warnings)?;
    if let Some(home) = &args.book {
        let uncovered = uncovered_currencies(home, checked.files())?;
        for (policy, currency, invoices) in &uncovered {
            eprintln!(
                "warning: {}: {} open invoice(s) in {currency}, which policy {} (in {}) does not \
                 cover: the sweep leaves them alone ({}{})",
                home.display(),
                invoices.len(),
                policy.0.display(),
                policy.1,
                invoices
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                if invoices.len() > 5 { ", …" } else { "" }
            );
        }
        if uncovered.is_empty() {
            println!(
                "book {}: every open invoice is in a currency its policy covers",
                home.display()
            );
        }
        failed |= args.deny_warnings && !uncovered.is_empty();
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// For each policy file (that loads), the currencies of the home's open
/// invoices it does not cover, with those invoices' ids.
type Uncovered = Vec<((PathBuf, String), String, Vec<String>)>;

fn uncovered_currencies(home: &Path, files: &[PathBuf]) -> Result<Uncovered> {
    let home = Home::open_existing(home)?;
    let book = home.store()?.load_book()?;
    let mut out = Vec::new();
    for file in files {
        let Ok(policy) = policy_files::load(file) else {
            continue;
        };
        let mut by_currency: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for invoice in &book.invoices {
            if invoice.currency != policy.currency && book.is_open(invoice, LAST_DAY) {
                by_currency
                    .entry(&invoice.currency)
                    .or_default()
                    .push(invoice.invoice_id.clone());
            }
        }
        for (currency, invoices) in by_currency {
            out.push((
                (file.clone(), policy.currency.clone()),
                currency.to_string(),
                invoices,
            ));
        }
    }
    Ok(out)
}
