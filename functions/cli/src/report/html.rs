//! The report as one self-contained HTML page: inline CSS, inline SVG
//! charts (see `charts`), no script, nothing loaded from elsewhere, so it
//! can be mailed, archived or opened from a file share as it is.

use super::charts::{self, BUCKET_COLOURS, Bar, Uplift};
use super::{days, money, pct, points};
use collect_engine::effect::{ArmResult, EffectReport, Experiment, Measures};
use std::fmt::Write as _;

/// Days with fewer actions than this are left out of the timing chart.
const MIN_TIMING_BAR: u32 = 10;

/// Text for HTML: `&`, `<`, `>` and quotes escaped.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { --ink: #212121; --muted: #6e6e6e; --line: #e3e3e3; --good: #2e7d32; --bad: #c62828; --accent: #1565c0; }
* { box-sizing: border-box; }
body { margin: 0; background: #f5f6f8; color: var(--ink);
  font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 28px 24px 48px; }
header h1 { margin: 0 0 4px; font-size: 28px; }
header p { margin: 0; color: var(--muted); }
section { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 20px 24px; margin-top: 22px; }
h2 { margin: 0 0 6px; font-size: 20px; }
h3 { margin: 18px 0 6px; font-size: 16px; }
p.lead { margin: 0 0 12px; color: var(--muted); }
.tiles { display: grid; grid-template-columns: repeat(5, 1fr); gap: 12px; background: none; border: 0; padding: 0; }
.tile { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px; }
.tile .label { color: var(--muted); font-size: 13px; }
.tile .value { font-size: 26px; font-weight: 600; margin: 2px 0; white-space: nowrap; }
.tile .value small { font-size: 15px; font-weight: 500; color: var(--muted); }
.tile .hint { color: var(--muted); font-size: 12px; }
svg.chart { display: block; max-width: 100%; height: auto; margin: 8px 0; }
.legend { display: flex; gap: 18px; flex-wrap: wrap; font-size: 13px; color: var(--muted); }
.legend span::before { content: ""; display: inline-block; width: 12px; height: 12px; border-radius: 2px;
  margin-right: 6px; vertical-align: -1px; background: var(--c); }
table { width: 100%; border-collapse: collapse; font-size: 13.5px; margin: 8px 0; }
th, td { padding: 6px 7px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th { color: var(--muted); font-weight: 600; white-space: normal; vertical-align: bottom; font-size: 12.5px; }
th:first-child, td:first-child { text-align: left; white-space: normal; min-width: 180px; }
.scroll { overflow-x: auto; }
.verdict { border-left: 4px solid var(--muted); background: #fafafa; padding: 10px 14px; margin: 10px 0; }
.verdict.win { border-color: var(--good); }
.verdict.none { border-color: #f9a825; }
.good { color: var(--good); font-weight: 600; }
.bad { color: var(--bad); font-weight: 600; }
.note { color: var(--muted); font-size: 13px; }
dl { margin: 0; } dt { font-weight: 600; margin-top: 8px; } dd { margin: 2px 0 0 0; color: var(--muted); }
.cols { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
@media (max-width: 900px) { .tiles { grid-template-columns: repeat(3, 1fr); } }
@media (max-width: 600px) {
  main { padding: 14px 10px 32px; }
  header h1 { font-size: 22px; }
  section { padding: 14px 12px; }
  .tiles { grid-template-columns: repeat(2, 1fr); gap: 8px; }
  .tile .value { font-size: 21px; white-space: normal; }
  .cols { grid-template-columns: 1fr; }
  th:first-child, td:first-child { min-width: 110px; }
}
"#;

fn tile(out: &mut String, label: &str, value: &str, unit: &str, hint: &str) {
    let _ = write!(
        out,
        "<div class=\"tile\"><div class=\"label\">{}</div><div class=\"value\">{}\
         <small>{}</small></div><div class=\"hint\">{}</div></div>",
        esc(label),
        esc(value),
        esc(unit),
        esc(hint)
    );
}

fn bars(rows: &[Measures]) -> Vec<Bar> {
    rows.iter()
        .map(|m| Bar {
            label: m.key.clone(),
            value: m.pay_rate_7d,
            low: m.pay_rate_7d_ci_low,
            high: m.pay_rate_7d_ci_high,
            n: m.known_7d,
        })
        .collect()
}

fn measures_table(out: &mut String, first: &str, rows: &[Measures]) {
    let _ = write!(
        out,
        "<div class=\"scroll\"><table><thead><tr><th>{}</th><th>actions</th><th>opened</th><th>clicked</th>\
         <th>replied</th><th>paid ≤ 3 days</th><th>paid ≤ 7 days</th><th>paid ≤ 14 days</th>\
         <th>days to pay</th><th>days late at payment</th><th>promises (kept)</th></tr></thead><tbody>",
        esc(first)
    );
    for m in rows {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{} ({})</td></tr>",
            esc(&m.key),
            m.actions,
            pct(m.open_rate),
            pct(m.click_rate),
            pct(m.reply_rate),
            pct(m.pay_rate_3d),
            pct(m.pay_rate_7d),
            pct(m.pay_rate_14d),
            days(m.avg_days_to_payment),
            days(m.avg_days_past_due_at_payment),
            m.promises,
            m.promises_kept
        );
    }
    out.push_str("</tbody></table></div>");
}

fn arm_label(x: &Experiment, a: &ArmResult, segment: Option<&str>) -> String {
    match segment {
        Some(s) => format!("{}: {} ({s})", x.experiment, a.arm),
        None => format!("{}: {}", x.experiment, a.arm),
    }
}

fn significance(a: &ArmResult) -> String {
    match (a.significant, a.uplift) {
        (Some(true), Some(u)) if u > 0.0 => {
            "<span class=\"good\">significant, better</span>".into()
        }
        (Some(true), Some(_)) => "<span class=\"bad\">significant, worse</span>".into(),
        (Some(false), _) => "not significant".into(),
        _ if a.is_reference => "reference".into(),
        _ => "too few customers to judge".into(),
    }
}

fn arms_table(out: &mut String, arms: &[ArmResult]) {
    out.push_str(
        "<div class=\"scroll\"><table><thead><tr><th>arm</th><th>invoices</th><th>customers</th><th>paid in time</th>\
         <th>95% interval</th><th>uplift (points)</th><th>95% interval</th><th></th>\
         <th>pending</th></tr></thead><tbody>",
    );
    for a in arms {
        let _ = write!(
            out,
            "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} – {}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.arm),
            if a.is_reference { " (reference)" } else { "" },
            a.n,
            a.customers,
            pct(a.pay_rate),
            pct(a.ci_low),
            pct(a.ci_high),
            points(a.uplift),
            if a.is_reference {
                "–".to_string()
            } else {
                format!(
                    "{} to {}",
                    points(a.uplift_ci_low),
                    points(a.uplift_ci_high)
                )
            },
            significance(a),
            a.pending
        );
    }
    out.push_str("</tbody></table></div>");
}

fn verdict(out: &mut String, winner: bool, text: &str) {
    let _ = write!(
        out,
        "<div class=\"verdict {}\">{}</div>",
        if winner { "win" } else { "none" },
        esc(text)
    );
}

/// The page.
pub fn render(r: &EffectReport) -> String {
    let mut out = String::new();
    let title = format!(
        "Collection effectiveness, {} to {}",
        r.period.from, r.period.to
    );
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\"><title>{}</title><style>{STYLE}</style></head><body><main>",
        esc(&title)
    );
    let other: Vec<String> = r
        .other_currencies
        .iter()
        .map(|(c, n)| format!("{n} invoice(s) in {c}"))
        .collect();
    let _ = write!(
        out,
        "<header><h1>Collection effectiveness</h1><p>{} to {} ({} days) · facts known up to {} · \
         amounts in {}{}</p></header>",
        r.period.from,
        r.period.to,
        r.period.days,
        r.as_of,
        esc(&r.currency),
        if other.is_empty() {
            String::new()
        } else {
            esc(&format!(" ({} left out)", other.join(", ")))
        }
    );

    // Headline KPIs.
    out.push_str("<section class=\"tiles\">");
    tile(
        &mut out,
        "Past-due share",
        &pct(r.past_due_share),
        "",
        &format!(
            "{} of {} open is past due",
            money(r.receivables.ending_past_due),
            money(r.receivables.ending)
        ),
    );
    tile(
        &mut out,
        "DSO",
        &days(r.dso),
        " days",
        &format!("best possible {} days", days(r.best_possible_dso)),
    );
    tile(
        &mut out,
        "Average days delinquent",
        &days(r.add),
        " days",
        "DSO − best possible DSO",
    );
    tile(
        &mut out,
        "Collection effectiveness",
        &pct(r.cei),
        "",
        "CEI: share of what could be collected",
    );
    tile(
        &mut out,
        "Collected",
        &super::charts::compact(
            rust_decimal::prelude::ToPrimitive::to_f64(&r.receivables.collected).unwrap_or(0.0),
        ),
        &format!(" {}", r.currency),
        &format!(
            "{} of {} invoiced",
            money(r.receivables.collected),
            money(r.receivables.invoiced)
        ),
    );
    out.push_str("</section>");

    recovery_section(&mut out, r);

    // Aging over time.
    out.push_str(
        "<section id=\"aging\"><h2>Aging over time</h2><p class=\"lead\">Open balance at the end of each \
         week, by days past due.</p><div class=\"legend\">",
    );
    for (name, colour) in [
        "current (not yet due)",
        "1–30 days",
        "31–60",
        "61–90",
        "over 90",
    ]
    .iter()
    .zip(BUCKET_COLOURS)
    {
        let _ = write!(
            out,
            "<span style=\"--c: {}\">{}</span>",
            charts::css(&colour),
            esc(name)
        );
    }
    out.push_str("</div>");
    out.push_str(&charts::aging(&r.aging, &r.currency));
    out.push_str("</section>");

    // What brings payment.
    out.push_str(
        "<section id=\"payment\"><h2>What brings payment</h2><p class=\"lead\">Share of actions after which the \
         invoice was paid in full within 7 days, by a payment that came after the action and \
         before any other (the bar), with its 95% interval (the whisker) and the number of \
         actions old enough to tell.</p><h3>By policy step</h3>",
    );
    out.push_str(&charts::rate_bars(
        "Pay rate within 7 days by policy step",
        &bars(&r.by_step),
        "paid within 7 days of the action",
    ));
    out.push_str("<h3>By segment</h3>");
    out.push_str(&charts::rate_bars(
        "Pay rate within 7 days by segment",
        &bars(&r.by_segment),
        "paid within 7 days of the action",
    ));
    out.push_str("<h3>Every step in figures</h3>");
    measures_table(&mut out, "policy step", &r.by_step);
    out.push_str("</section>");

    // Experiments.
    experiments_section(&mut out, r);

    // Timing.
    timing_section(&mut out, r);

    // Templates and channels.
    out.push_str("<section id=\"templates\"><h2>Templates and channels</h2>");
    measures_table(&mut out, "template", &r.by_template);
    measures_table(&mut out, "channel", &r.by_channel);
    measures_table(&mut out, "segment", &r.by_segment);
    out.push_str(
        "<p class=\"note\">Response rates count emails with a recorded open, click or reply \
         event, matched by action or message id.</p></section>",
    );

    // Formulas and matching.
    let a = &r.attribution;
    let _ = write!(
        out,
        "<section id=\"formulas\"><h2>How the figures are worked out</h2><p class=\"lead\">{} payment(s) in the \
         period: {} after an action on their invoice, {} before any action. {} mail event(s): {} \
         matched by action or message id, {} naming no known action or message. Nothing is \
         matched by guesswork.</p><dl>",
        a.payments,
        a.payments_matched,
        a.payments_before_any_action,
        a.mail_events,
        a.mail_events_matched,
        a.mail_events_unmatched
    );
    for (k, f) in &r.formulas {
        let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", esc(super::label(k)), esc(f));
    }
    out.push_str("</dl></section></main></body></html>\n");
    out
}

/// The recovery rate of the invoices due in the period, and what was
/// written off or placed with agencies.
fn recovery_section(out: &mut String, r: &EffectReport) {
    let rec = &r.recovery;
    let _ = write!(
        out,
        "<section id=\"recovery\"><h2>Recovery rate</h2><p class=\"lead\">Collected by {} of what \
         was due on the invoices due in the period. Reactive dunning recovers about 50–70%, \
         proactive collections 80–90%. A write-off stays due and is never collected.</p>",
        r.as_of
    );
    if rec.total.invoices == 0 {
        let _ = write!(
            out,
            "<p>No invoice in {} is due in the period.</p></section>",
            esc(&r.currency)
        );
        return;
    }
    out.push_str("<section class=\"tiles\">");
    tile(
        out,
        "Recovery rate",
        &pct(rec.total.recovery_rate),
        "",
        &format!(
            "{} of {} due",
            money(rec.total.collected),
            money(rec.total.due)
        ),
    );
    tile(
        out,
        "Written off",
        &money(rec.total.written_off_amount),
        &format!(" {}", r.currency),
        &format!("{} invoice(s)", rec.total.written_off),
    );
    tile(
        out,
        "Placed with agencies",
        &money(rec.total.placed_with_agency_amount),
        &format!(" {}", r.currency),
        &format!("{} invoice(s)", rec.total.placed_with_agency),
    );
    out.push_str("</section>");
    for (first, rows) in [("segment", &rec.by_segment), ("month due", &rec.by_month)] {
        let _ = write!(
            out,
            "<div class=\"scroll\"><table><thead><tr><th>{}</th><th>invoices</th><th>due</th>\
             <th>collected</th><th>recovery rate</th><th>written off</th><th>placed with agencies</th>\
             </tr></thead><tbody>",
            esc(first)
        );
        for row in rows {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ({})</td><td>{} ({})</td></tr>",
                esc(&row.key),
                row.invoices,
                money(row.due),
                money(row.collected),
                pct(row.recovery_rate),
                money(row.written_off_amount),
                row.written_off,
                money(row.placed_with_agency_amount),
                row.placed_with_agency
            );
        }
        out.push_str("</tbody></table></div>");
    }
    out.push_str("</section>");
}

fn experiments_section(out: &mut String, r: &EffectReport) {
    out.push_str("<section id=\"experiments\"><h2>Experiments</h2>");
    let Some(first) = r.experiments.first() else {
        out.push_str(
            "<p class=\"lead\">No experiment ran in this period. Policies name them with \
             <code>experiment</code> steps and a <code>control group</code>.</p></section>",
        );
        return;
    };
    let _ = write!(
        out,
        "<p class=\"lead\">Pay rate = {}. Each arm's rate has a 95% interval (Wilson); the uplift \
         is the difference to the reference arm in points, with Newcombe's 95% interval. \
         Significant = the interval leaves out zero, judged only with at least {} customers in \
         each arm (one customer's invoices are paid alike, so a handful of customers cannot \
         show a difference). No winner is called with fewer than {} invoices per arm.</p>",
        esc(first.metric),
        first.min_customers_per_arm,
        first.min_per_arm
    );
    let mut rows: Vec<Uplift> = Vec::new();
    for x in &r.experiments {
        let cut = x.segments.len() > 1;
        for a in x.comparison.arms.iter().filter(|a| !a.is_reference) {
            if let (Some(e), Some(l), Some(h)) = (a.uplift, a.uplift_ci_low, a.uplift_ci_high) {
                rows.push(Uplift {
                    label: format!("{} vs {}", arm_label(x, a, None), x.comparison.reference),
                    estimate: e,
                    low: l,
                    high: h,
                    significant: a.significant == Some(true),
                });
            }
        }
        if cut {
            for s in &x.segments {
                for a in s.comparison.arms.iter().filter(|a| !a.is_reference) {
                    if let (Some(e), Some(l), Some(h)) =
                        (a.uplift, a.uplift_ci_low, a.uplift_ci_high)
                    {
                        rows.push(Uplift {
                            label: format!("  {}", arm_label(x, a, Some(&s.segment))),
                            estimate: e,
                            low: l,
                            high: h,
                            significant: a.significant == Some(true),
                        });
                    }
                }
            }
        }
    }
    if !rows.is_empty() {
        out.push_str(&charts::uplift(&rows));
        out.push_str(
            "<p class=\"note\">Green: significantly better than the reference; red: \
             significantly worse; grey: the interval includes zero, or too few customers to judge.</p>",
        );
    }
    for x in &r.experiments {
        let _ = write!(out, "<h3>{}</h3>", esc(&x.experiment));
        verdict(out, x.comparison.winner.is_some(), &x.comparison.verdict);
        arms_table(out, &x.comparison.arms);
        if x.segments.len() > 1 {
            for s in &x.segments {
                let _ = write!(out, "<p><b>{}</b></p>", esc(&s.segment));
                verdict(out, s.comparison.winner.is_some(), &s.comparison.verdict);
                arms_table(out, &s.comparison.arms);
            }
        }
    }
    out.push_str("</section>");
}

fn timing_section(out: &mut String, r: &EffectReport) {
    let t = &r.timing;
    out.push_str(
        "<section id=\"timing\"><h2>Reminder timing</h2><p class=\"lead\">Share of actions paid within 7 \
         days, by the day they went out relative to the due date, and by weekday.</p>",
    );
    // Days with too few actions only add noise to the picture.
    let (days_at, days_rows): (Vec<i64>, Vec<Bar>) = t
        .by_days_from_due
        .iter()
        .filter(|row| row.known_7d >= MIN_TIMING_BAR)
        .filter_map(|row| {
            let day: i64 = row.key.trim_start_matches('+').parse().ok()?;
            Some((
                day,
                Bar {
                    label: row.key.clone(),
                    value: row.pay_rate_7d,
                    low: row.ci_low,
                    high: row.ci_high,
                    n: row.known_7d,
                },
            ))
        })
        .unzip();
    if days_rows.is_empty() {
        out.push_str("<p class=\"note\">No action is old enough to tell yet.</p>");
    } else {
        out.push_str(&charts::day_rates(
            "Pay rate within 7 days by day sent relative to the due date",
            &days_rows,
            &days_at,
            &format!(
                "days from the due date when the action went out, to scale (days with at least \
                 {MIN_TIMING_BAR} actions; n = actions old enough to tell)"
            ),
        ));
    }
    let week: Vec<Bar> = t
        .by_weekday
        .iter()
        .map(|row| Bar {
            label: row.key.clone(),
            value: row.pay_rate_7d,
            low: row.ci_low,
            high: row.ci_high,
            n: row.known_7d,
        })
        .collect();
    if !week.is_empty() {
        out.push_str(&charts::column_rates(
            "Pay rate within 7 days by weekday sent",
            &week,
            "weekday the action went out",
        ));
    }
    let best = match (&t.best_days_from_due, &t.best_weekday) {
        (Some(d), Some(w)) => format!(
            "Highest 7-day pay rate among days with at least {} actions: {d} days from the due \
             date; among weekdays: {w}. ",
            t.min_actions
        ),
        _ => String::new(),
    };
    let _ = write!(
        out,
        "<p class=\"note\">{}{} {}</p></section>",
        esc(&best),
        esc(&t.hour_note),
        esc(&t.caution)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<b>\"A&B\"</b>"),
            "&lt;b&gt;&quot;A&amp;B&quot;&lt;/b&gt;"
        );
    }
}
