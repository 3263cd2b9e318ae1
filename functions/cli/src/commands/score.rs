//! `collect score`: the open invoices due in 7-14 days (or all of them),
//! riskiest first, each with the three features that pushed its score most.

use crate::args::{Format, parse_date};
use crate::home::Home;
use crate::scorer::{LocalScorer, scorer};
use anyhow::Result;
use chrono::NaiveDate;
use collect_engine::sweep::{PriorLateRate, RiskScorer, ScoreInput};
use collect_model::dataset;
use collect_sqlite::store::Store;
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;

/// Score open invoices with the current model, riskiest first, with why.
#[derive(clap::Args)]
pub struct Args {
    /// The day to score on, YYYY-MM-DD, e.g. 2027-03-31.
    #[arg(value_parser = parse_date, long)]
    date: NaiveDate,
    /// Every open invoice, not only those due in 7-14 days.
    #[arg(long)]
    all_open: bool,
    /// Output: `human` for people, `json` for tools.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

pub fn run(home: &Path, args: &Args) -> Result<ExitCode> {
    let home = &Home::open_existing(home)?;
    let Args {
        date,
        all_open,
        format,
    } = *args;
    let book = home.store()?.load_book()?;
    let chosen = scorer(home)?;
    let window = if all_open { None } else { Some((7, 14)) };
    let rows = dataset::scoring_rows(&book, date, window);
    let mut scored = Vec::with_capacity(rows.len());
    for r in &rows {
        let Some(invoice) = book
            .invoices_of(&r.customer_id)
            .iter()
            .find(|i| i.invoice_id == r.invoice_id)
        else {
            continue;
        };
        let (risk, top) = match &chosen {
            LocalScorer::Model(m, _) => {
                let x = m.model().row(&r.raw);
                let top: Vec<(String, f64, f64)> = m
                    .explain_row(&x)
                    .into_iter()
                    .take(3)
                    .map(|(name, c)| {
                        let pos = m
                            .model()
                            .content
                            .schema
                            .names
                            .iter()
                            .position(|n| *n == name);
                        let value = pos.and_then(|p| x.get(p)).copied().unwrap_or(f64::NAN);
                        (name, c, value)
                    })
                    .collect();
                (Some(m.model().predict_row(&x)), top)
            }
            LocalScorer::Fallback => {
                let stats = book.customer_stats(&r.customer_id, date);
                let risk = PriorLateRate.score(&ScoreInput {
                    book: &book,
                    invoice,
                    day: date,
                    stats: &stats,
                });
                (risk, Vec::new())
            }
        };
        scored.push((r, invoice, risk, top));
    }
    scored.sort_by(|a, b| {
        b.2.unwrap_or(-1.0)
            .total_cmp(&a.2.unwrap_or(-1.0))
            .then(a.0.invoice_id.cmp(&b.0.invoice_id))
    });
    let unit = match &chosen {
        LocalScorer::Model(m, _) => m.contribution_unit(),
        LocalScorer::Fallback => "",
    };
    match format {
        Format::Json => {
            let v: Vec<serde_json::Value> = scored
                .iter()
                .map(|(r, inv, risk, top)| {
                    json!({
                        "invoice_id": r.invoice_id,
                        "customer_id": r.customer_id,
                        "due_date": r.due_date,
                        "days_to_due": (r.due_date - date).num_days(),
                        "balance": book.balance(inv, date),
                        "currency": inv.currency,
                        "risk": risk,
                        "model_id": chosen.model_id(),
                        "scorer": chosen.as_dyn().name(),
                        "top_features": top.iter().map(|(n, c, v)| json!({
                            "feature": n, "contribution": c, "value": v, "unit": unit
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Human => {
            println!(
                "Scores on {date}: {} open invoice(s){}",
                scored.len(),
                if all_open {
                    String::new()
                } else {
                    " due in 7-14 days (--all-open for every open invoice)".to_string()
                }
            );
            println!("scorer: {}", chosen.describe());
            if let LocalScorer::Model(..) = chosen {
                println!("why: the top 3 contributions ({unit} units; + pushes towards late)");
            }
            for (r, inv, risk, top) in &scored {
                let why = top
                    .iter()
                    .map(|(n, c, v)| format!("{n}={} ({c:+.3})", short(*v)))
                    .collect::<Vec<_>>()
                    .join(", ");
                println!(
                    "  {:>6}  {:<14} {:<12} due {} ({:>2}d)  {} {}  {}",
                    risk.map_or_else(|| "n/a".to_string(), |p| format!("{:.1}%", p * 100.0)),
                    r.invoice_id,
                    r.customer_id,
                    r.due_date,
                    (r.due_date - date).num_days(),
                    book.balance(inv, date),
                    inv.currency,
                    why
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn short(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e9 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}
