//! The effectiveness report behind `collect report` (and the demo's): what
//! the collections work brought over a period — the
//! receivables KPIs, aging over time, which steps, templates, channels and
//! segments bring payment, experiments with their measured uplift, and
//! reminder timing.
//!
//! The figures come from `collect_engine::effect` (pure functions over the
//! stored book); this module only chooses the period and prints them: a
//! terminal summary for a finance person, JSON for other tools (keys named
//! after the measures), CSV for spreadsheets (one figure per row:
//! `section,group,measure,value`), and one self-contained HTML file with
//! charts (`--html FILE`).
//!
//! The report's day ("as of") is the last day anything was recorded: facts
//! after the period still count as outcomes of actions taken in it (a
//! payment on 2 February answers a reminder of 30 January), up to that day.

mod charts;
mod html;

use chrono::NaiveDate;
use collect_engine::book::Book;
use collect_engine::effect::{self, EffectReport, Measures, Options, Period, RecoveryRow};
use rust_decimal::Decimal;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub use html::render as html;

/// A report that cannot be made or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(
        "nothing is recorded yet: load data with `collect ingest DIR` and run the policy \
         with `collect run --date D` (or try `collect demo`)"
    )]
    NothingRecorded,
    #[error("the period is empty: --from {from} is after --to {to}")]
    EmptyPeriod { from: NaiveDate, to: NaiveDate },
    #[error("cannot create the folder {}", dir.display())]
    CreateFolder {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the HTML report {}", path.display())]
    WriteHtml {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The report on `book` for the period (by default the 90 days up to the
/// last sale, see [`Period::default_for`]; a lone `--from` runs to the last
/// recorded day, a lone `--to` from the first), as of the last recorded day.
pub fn build(
    book: &Book,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    send_time_utc: Option<String>,
) -> Result<EffectReport, ReportError> {
    let (Some(all), Some(as_of)) = (Period::everything(book), effect::last_recorded_day(book))
    else {
        return Err(ReportError::NothingRecorded);
    };
    let period = match (from, to) {
        (None, None) => Period::default_for(book).unwrap_or(all),
        (from, to) => Period {
            from: from.unwrap_or(all.from),
            to: to.unwrap_or(all.to),
        },
    };
    if period.from > period.to {
        return Err(ReportError::EmptyPeriod {
            from: period.from,
            to: period.to,
        });
    }
    let options = Options {
        send_time_utc,
        ..Options::default()
    };
    // Outcomes are known up to the last recorded day, whatever the period.
    Ok(effect::report(book, period, as_of, &options))
}

pub fn write_html(path: &Path, report: &EffectReport) -> Result<(), ReportError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| ReportError::CreateFolder {
            dir: dir.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, html(report)).map_err(|source| ReportError::WriteHtml {
        path: path.to_path_buf(),
        source,
    })
}

// ---------------------------------------------------------------- formatting

/// The plain-language name of a figure, by its JSON key.
pub fn label(key: &str) -> &str {
    match key {
        "past_due_share" => "Past-due share",
        "dso" => "DSO (days sales outstanding)",
        "best_possible_dso" => "Best possible DSO",
        "add" => "Average days delinquent (ADD)",
        "cei" => "Collection effectiveness index (CEI)",
        "aging" => "Aging",
        "pay_rate_7d" => "Paid within 3, 7 or 14 days of an action",
        "response_rates" => "Opened, clicked and replied",
        "avg_days_to_payment" => "Days to payment and days late at payment",
        "experiment_pay_rate" => "Paid in time (experiments)",
        "intervals" => "95% intervals",
        "significant" => "Significant",
        "recovery_rate" => "Recovery rate",
        "written_off" => "Written off and placed with agencies",
        other => other,
    }
}

pub fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "–".to_string(), |x| format!("{:.1}%", x * 100.0))
}

pub fn days(x: Option<f64>) -> String {
    x.map_or_else(|| "–".to_string(), |x| format!("{x:.1}"))
}

/// `1234567.8` as `1,234,567.80`.
pub fn money(x: Decimal) -> String {
    let s = format!("{:.2}", x.round_dp(2));
    let (int, frac) = s.split_once('.').unwrap_or((&s, "00"));
    let (sign, digits) = match int.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", int),
    };
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{frac}")
}

/// `0.123` as `+12.3`, in points.
pub fn points(x: Option<f64>) -> String {
    x.map_or_else(|| "–".to_string(), |x| format!("{:+.1}", x * 100.0))
}

/// The paid-within-N-days rate with its count: `62.5% of 40`.
fn rate_of(rate: Option<f64>, known: u32) -> String {
    match rate {
        Some(_) => format!("{} of {known}", pct(rate)),
        None => "–".to_string(),
    }
}

fn measures_table(out: &mut String, title: &str, rows: &[Measures]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{title}");
    let _ = writeln!(
        out,
        "  {:<34} {:>7} {:>7} {:>7} {:>13} {:>13} {:>13} {:>7} {:>7}",
        "", "actions", "opened", "clicked", "paid <=3d", "paid <=7d", "paid <=14d", "days", "late"
    );
    for m in rows {
        let _ = writeln!(
            out,
            "  {:<34} {:>7} {:>7} {:>7} {:>13} {:>13} {:>13} {:>7} {:>7}",
            truncate(&m.key, 34),
            m.actions,
            pct(m.open_rate),
            pct(m.click_rate),
            rate_of(m.pay_rate_3d, m.known_3d),
            rate_of(m.pay_rate_7d, m.known_7d),
            rate_of(m.pay_rate_14d, m.known_14d),
            days(m.avg_days_to_payment),
            days(m.avg_days_past_due_at_payment),
        );
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The terminal summary.
pub fn human(r: &EffectReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Collection effectiveness, {} to {} ({} days; facts known up to {})",
        r.period.from, r.period.to, r.period.days, r.as_of
    );
    let other: Vec<String> = r
        .other_currencies
        .iter()
        .map(|(c, n)| format!("{n} in {c}"))
        .collect();
    if other.is_empty() {
        let _ = writeln!(out, "Amounts in {}.", r.currency);
    } else {
        let _ = writeln!(
            out,
            "Amounts in {}; invoices in other currencies ({}) are left out of the amounts.",
            r.currency,
            other.join(", ")
        );
    }

    let rec = &r.receivables;
    let _ = writeln!(out, "\nReceivables at the end of the period");
    let _ = writeln!(
        out,
        "  Past-due share                 {:>10}",
        pct(r.past_due_share)
    );
    let _ = writeln!(
        out,
        "  DSO (days sales outstanding)   {:>10} days",
        days(r.dso)
    );
    let _ = writeln!(
        out,
        "  Best possible DSO              {:>10} days",
        days(r.best_possible_dso)
    );
    let _ = writeln!(
        out,
        "  ADD (average days delinquent)  {:>10} days",
        days(r.add)
    );
    let _ = writeln!(out, "  CEI (collection effectiveness) {:>10}", pct(r.cei));
    let _ = writeln!(
        out,
        "  Open at the start {}; invoiced {}; collected {}; open at the end {} ({} not yet due, {} past due in {} invoice(s)).",
        money(rec.beginning),
        money(rec.invoiced),
        money(rec.collected),
        money(rec.ending),
        money(rec.ending_current),
        money(rec.ending_past_due),
        rec.past_due_invoices
    );

    recovery_text(&mut out, r);

    if !r.aging.is_empty() {
        let _ = writeln!(out, "\nAging (open balance by days past due)");
        let _ = writeln!(
            out,
            "  {:<10} {:>13} {:>12} {:>12} {:>12} {:>12} {:>13} {:>9}",
            "day", "current", "1-30", "31-60", "61-90", "90+", "total", "past due"
        );
        // At most 13 rows here, evenly spread, always the last one.
        let every = r.aging.len().div_ceil(13).max(1);
        let last = r.aging.len().saturating_sub(1);
        for a in r
            .aging
            .iter()
            .enumerate()
            .filter(|(i, _)| i % every == 0 || *i == last)
            .map(|(_, a)| a)
        {
            let _ = writeln!(
                out,
                "  {:<10} {:>13} {:>12} {:>12} {:>12} {:>12} {:>13} {:>9}",
                a.date.to_string(),
                money(a.current),
                money(a.d1_30),
                money(a.d31_60),
                money(a.d61_90),
                money(a.d90_plus),
                money(a.total),
                pct(a.past_due_share)
            );
        }
        if every > 1 {
            let _ = writeln!(
                out,
                "  (one snapshot in {} shown; all {} in --format json, csv and the HTML report)",
                every,
                r.aging.len()
            );
        }
    }

    let _ = writeln!(
        out,
        "\nWhat brings payment. \"paid <=7d\": the invoice was paid in full within 7 days of the action\n\
         by a payment that came after it and before any other action; \"days\": from the action to that\n\
         payment; \"late\": days past due at that payment (negative: early)."
    );
    measures_table(&mut out, "By policy step", &r.by_step);
    measures_table(&mut out, "By segment", &r.by_segment);
    measures_table(&mut out, "By template", &r.by_template);
    measures_table(&mut out, "By channel", &r.by_channel);

    experiments_text(&mut out, r);
    timing_text(&mut out, r);

    let a = &r.attribution;
    let _ = writeln!(out, "\nMatching (nothing is matched by guesswork)");
    let _ = writeln!(
        out,
        "  {} payment(s) in the period: {} after an action on their invoice, {} before any action.",
        a.payments, a.payments_matched, a.payments_before_any_action
    );
    let _ = writeln!(
        out,
        "  {} mail event(s): {} matched by action or message id, {} naming no known action or message.",
        a.mail_events, a.mail_events_matched, a.mail_events_unmatched
    );
    let _ = writeln!(out, "\nHow these are worked out");
    for (key, formula) in &r.formulas {
        let _ = writeln!(out, "  {}: {formula}", label(key));
    }
    out
}

/// One row of the recovery table.
fn recovery_row(out: &mut String, row: &RecoveryRow) {
    let _ = writeln!(
        out,
        "  {:<20} {:>8} {:>15} {:>15} {:>8} {:>18} {:>18}",
        truncate(&row.key, 20),
        row.invoices,
        money(row.due),
        money(row.collected),
        pct(row.recovery_rate),
        format!("{} / {}", row.written_off, money(row.written_off_amount)),
        format!(
            "{} / {}",
            row.placed_with_agency,
            money(row.placed_with_agency_amount)
        ),
    );
}

fn recovery_text(out: &mut String, r: &EffectReport) {
    let rec = &r.recovery;
    let _ = writeln!(
        out,
        "\nRecovery of the invoices due in the period (collected by {} / due; reactive dunning \
         recovers about 50-70%, proactive collections 80-90%)",
        r.as_of
    );
    if rec.total.invoices == 0 {
        let _ = writeln!(out, "  No invoice in {} is due in the period.", r.currency);
        return;
    }
    let _ = writeln!(
        out,
        "  Recovery rate {}: {} collected of {} due on {} invoice(s); written off {} ({} invoice(s)); \
         placed with agencies {} ({} invoice(s)).",
        pct(rec.total.recovery_rate),
        money(rec.total.collected),
        money(rec.total.due),
        rec.total.invoices,
        money(rec.total.written_off_amount),
        rec.total.written_off,
        money(rec.total.placed_with_agency_amount),
        rec.total.placed_with_agency
    );
    for (title, rows) in [
        ("By segment", &rec.by_segment),
        ("By month due", &rec.by_month),
    ] {
        let _ = writeln!(
            out,
            "  {:<20} {:>8} {:>15} {:>15} {:>8} {:>18} {:>18}",
            title, "invoices", "due", "collected", "rate", "written off", "to agencies"
        );
        for row in rows {
            recovery_row(out, row);
        }
    }
}

fn experiments_text(out: &mut String, r: &EffectReport) {
    let _ = writeln!(out, "\nExperiments");
    if r.experiments.is_empty() {
        let _ = writeln!(
            out,
            "  None in this period (policies name them with `experiment` steps and `control group`)."
        );
        return;
    }
    if let Some(x) = r.experiments.first() {
        let _ = writeln!(
            out,
            "  Pay rate = {}.\n  95% intervals; a difference is judged only with at least {} \
             customers per arm, a winner called only with at least {} invoices per arm.",
            x.metric, x.min_customers_per_arm, x.min_per_arm
        );
    }
    for x in &r.experiments {
        let _ = writeln!(out, "\n  {}", x.experiment);
        for a in &x.comparison.arms {
            let _ = writeln!(
                out,
                "    {:<36} {:>7}  [{} – {}]  n = {:<5} {}",
                truncate(
                    &if a.is_reference {
                        format!("{} (reference)", a.arm)
                    } else {
                        a.arm.clone()
                    },
                    36
                ),
                pct(a.pay_rate),
                pct(a.ci_low),
                pct(a.ci_high),
                a.n,
                if a.is_reference {
                    String::new()
                } else {
                    format!(
                        "uplift {} points [{}, {}]{}",
                        points(a.uplift),
                        points(a.uplift_ci_low),
                        points(a.uplift_ci_high),
                        match a.significant {
                            Some(true) => ", significant",
                            Some(false) => ", not significant",
                            None => ", too few customers to judge",
                        }
                    )
                }
            );
        }
        let _ = writeln!(out, "    → {}", x.comparison.verdict);
        if x.segments.len() > 1 {
            for s in &x.segments {
                let arms: Vec<String> = s
                    .comparison
                    .arms
                    .iter()
                    .map(|a| {
                        if a.is_reference {
                            format!("{} {} (n {})", a.arm, pct(a.pay_rate), a.n)
                        } else {
                            format!(
                                "{} {} (n {}, uplift {} [{}, {}])",
                                a.arm,
                                pct(a.pay_rate),
                                a.n,
                                points(a.uplift),
                                points(a.uplift_ci_low),
                                points(a.uplift_ci_high)
                            )
                        }
                    })
                    .collect();
                let _ = writeln!(out, "    {}: {}", s.segment, arms.join("; "));
                let _ = writeln!(out, "      → {}", s.comparison.verdict);
            }
        }
    }
}

fn timing_text(out: &mut String, r: &EffectReport) {
    let t = &r.timing;
    if t.by_days_from_due.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nReminder timing (paid within 7 days, by when the action went out)"
    );
    for (title, rows) in [
        ("Days from the due date", &t.by_days_from_due),
        ("Weekday", &t.by_weekday),
    ] {
        let cells: Vec<String> = rows
            .iter()
            .filter(|row| row.known_7d > 0)
            .map(|row| format!("{}: {} (n {})", row.key, pct(row.pay_rate_7d), row.known_7d))
            .collect();
        // Six to a line.
        for (i, chunk) in cells.chunks(6).enumerate() {
            let head = if i == 0 { title } else { "" };
            let _ = writeln!(out, "  {head:<23} {}", chunk.join(", "));
        }
    }
    if let Some(best) = &t.best_days_from_due {
        let _ = writeln!(
            out,
            "  Highest 7-day pay rate (at least {} actions): {best} days from the due date{}.",
            t.min_actions,
            t.best_weekday
                .as_ref()
                .map(|w| format!("; on {w}s"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(out, "  {}", t.hour_note);
    let _ = writeln!(out, "  {}", t.caution);
}

// ---------------------------------------------------------------- CSV

fn cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some(String::new()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

struct Csv(String);

impl Csv {
    fn row(&mut self, section: &str, group: &str, measure: &str, value: &str) {
        let _ = writeln!(
            self.0,
            "{},{},{},{}",
            cell(section),
            cell(group),
            cell(measure),
            cell(value)
        );
    }

    /// Every scalar field of `v` but `skip`, one row each.
    fn object(&mut self, section: &str, group: &str, v: &Value, skip: &[&str]) {
        let Value::Object(map) = v else { return };
        for (k, x) in map {
            if skip.contains(&k.as_str()) {
                continue;
            }
            if let Some(s) = scalar(x) {
                self.row(section, group, k, &s);
            }
        }
    }
}

/// The report as CSV for spreadsheets: `section,group,measure,value`, one
/// figure per row (a pivot table lays it out).
pub fn csv(r: &EffectReport) -> String {
    let mut c = Csv(String::new());
    c.row("section", "group", "measure", "value");
    let json = serde_json::to_value(r).unwrap_or(Value::Null);
    let get = |k: &str| json.get(k).cloned().unwrap_or(Value::Null);
    c.row("period", "", "from", &r.period.from.to_string());
    c.row("period", "", "to", &r.period.to.to_string());
    c.row("period", "", "days", &r.period.days.to_string());
    c.row("period", "", "as_of", &r.as_of.to_string());
    c.row("period", "", "currency", &r.currency);
    for k in ["past_due_share", "dso", "best_possible_dso", "add", "cei"] {
        c.row("kpi", "", k, &scalar(&get(k)).unwrap_or_default());
    }
    c.object("receivables", "", &get("receivables"), &[]);
    let recovery = get("recovery");
    for (section, rows) in [
        (
            "recovery",
            vec![recovery.get("total").cloned().unwrap_or(Value::Null)],
        ),
        (
            "recovery_by_segment",
            recovery
                .get("by_segment")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        ),
        (
            "recovery_by_month",
            recovery
                .get("by_month")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        ),
    ] {
        for row in &rows {
            let key = row.get("key").and_then(Value::as_str).unwrap_or_default();
            c.object(section, key, row, &["key"]);
        }
    }
    for a in get("aging").as_array().into_iter().flatten() {
        let day = a.get("date").and_then(Value::as_str).unwrap_or_default();
        c.object("aging", day, a, &["date"]);
    }
    for section in [
        "by_step",
        "by_segment",
        "by_template",
        "by_channel",
        "by_arm",
        "by_offset",
    ] {
        for m in get(section).as_array().into_iter().flatten() {
            let key = m.get("key").and_then(Value::as_str).unwrap_or_default();
            c.object(section, key, m, &["key"]);
        }
    }
    let timing = get("timing");
    for (section, k) in [
        ("timing_days_from_due", "by_days_from_due"),
        ("timing_weekday", "by_weekday"),
    ] {
        for row in timing
            .get(k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = row.get("key").and_then(Value::as_str).unwrap_or_default();
            c.object(section, key, row, &["key"]);
        }
    }
    for x in &r.experiments {
        let mut groups = vec![(x.experiment.clone(), &x.comparison)];
        groups.extend(
            x.segments
                .iter()
                .map(|s| (format!("{} | {}", x.experiment, s.segment), &s.comparison)),
        );
        for (group, cmp) in groups {
            c.row("experiment", &group, "reference", &cmp.reference);
            c.row(
                "experiment",
                &group,
                "winner",
                cmp.winner.as_deref().unwrap_or_default(),
            );
            c.row("experiment", &group, "verdict", &cmp.verdict);
            for a in &cmp.arms {
                let v = serde_json::to_value(a).unwrap_or(Value::Null);
                c.object(
                    "experiment_arm",
                    &format!("{group} | {}", a.arm),
                    &v,
                    &["arm"],
                );
            }
        }
    }
    c.object("attribution", "", &get("attribution"), &[]);
    c.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_when_needed() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn money_is_grouped() {
        assert_eq!(money(Decimal::new(123456789, 2)), "1,234,567.89");
        assert_eq!(money(Decimal::new(-5000, 2)), "-50.00");
    }
}
