//! The demo's report: the book, what the policy did, the two policies
//! side by side with how each figure is worked out, what worked, and what
//! to explore next; as text for people (`render`) or JSON.

use super::generate::{self, Generated, PayerType, plus};
use super::summary::RunSummary;
use super::uplift::Recovered;
use super::{DSO_FORMULA, ON_TIME_FORMULA, PAST_DUE_FORMULA, REACTIVE_SUMMARY};
use crate::args::DEFAULT_POLICY;
use crate::home::Home;
use chrono::NaiveDate;
use policy_lang::Policy;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

#[derive(Debug, Clone, Serialize)]
struct Period {
    from: NaiveDate,
    to: NaiveDate,
    days: i64,
}

impl Period {
    fn new(from: NaiveDate, to: NaiveDate) -> Period {
        Period {
            from,
            to,
            days: (to - from).num_days() + 1,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct BookSummary {
    customers: usize,
    customers_by_behaviour: BTreeMap<String, usize>,
    strategic_customers: usize,
    german_speaking_customers: usize,
    customers_by_timezone: BTreeMap<String, usize>,
    control_group_customers: usize,
    invoices: usize,
    invoiced: Decimal,
    history_invoices: usize,
    partial_payments: usize,
    disputes: usize,
}

#[derive(Debug, Clone, Serialize)]
struct Formulas {
    past_due_share: &'static str,
    dso: &'static str,
    on_time_payment_rate: &'static str,
}

/// The demo's report, for people ([`DemoReport::render`]) and tools (JSON).
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    seed: u64,
    customers: u32,
    policy: String,
    baseline: &'static str,
    /// When the sweep sends, UTC (`send_time_utc` in config.toml).
    send_time_utc: String,
    quarter: Period,
    run: Period,
    book: BookSummary,
    proactive: RunSummary,
    reactive: RunSummary,
    formulas: Formulas,
    database: String,
    outbox: String,
    outbox_files: usize,
    /// The effectiveness report (`collect report --html`) of the proactive run.
    pub(super) report_html: String,
    /// Its experiments, each arm's measured uplift next to the planted one.
    pub(super) what_worked: Vec<Recovered>,
    explore: Vec<String>,
}

/// A path as a shell argument.
fn arg(path: &Path) -> String {
    let s = path.display().to_string();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./-:".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn count_eml(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .map(|p| {
            if p.is_dir() {
                count_eml(&p)
            } else {
                usize::from(p.extension().is_some_and(|x| x == "eml"))
            }
        })
        .sum()
}

impl DemoReport {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        home: &Home,
        home_root: &Path,
        policy_path: &Path,
        seed: u64,
        customers: u32,
        generated: &Generated,
        policy: &Policy,
        proactive: RunSummary,
        reactive: RunSummary,
    ) -> DemoReport {
        let mut by_behaviour: BTreeMap<String, usize> = BTreeMap::new();
        for p in PayerType::ALL {
            let n = generated.payer.values().filter(|x| **x == p).count();
            by_behaviour.insert(p.describe().to_string(), n);
        }
        let mut by_tz: BTreeMap<String, usize> = BTreeMap::new();
        for c in &generated.customers {
            *by_tz.entry(c.timezone.clone()).or_default() += 1;
        }
        let strategic = generated
            .customers
            .iter()
            .filter(|c| {
                c.annual_revenue
                    .is_some_and(|r| r >= Decimal::from(250_000))
                    || c.tags.iter().any(|t| t.eq_ignore_ascii_case("strategic"))
            })
            .count();
        let book = BookSummary {
            customers: generated.customers.len(),
            customers_by_behaviour: by_behaviour,
            strategic_customers: strategic,
            german_speaking_customers: generated
                .customers
                .iter()
                .filter(|c| c.language == "de")
                .count(),
            customers_by_timezone: by_tz,
            control_group_customers: generated
                .customers
                .iter()
                .filter(|c| policy.in_control_group(&c.customer_id))
                .count(),
            invoices: generated.plans.len(),
            invoiced: generated.plans.iter().map(|p| p.invoice.amount).sum(),
            history_invoices: generated.history_invoices.len(),
            partial_payments: generated.plans.iter().filter(|p| p.parts.len() > 1).count(),
            disputes: generated
                .plans
                .iter()
                .filter(|p| p.dispute.is_some())
                .count(),
        };
        let demo_home = arg(&home_root.join("demo"));
        let policy_arg = if policy_path == Path::new(DEFAULT_POLICY) {
            String::new()
        } else {
            format!(" --policy {}", arg(policy_path))
        };
        // The demo's days are simulated: the tasks are shown on its last
        // day, so a letter's preview says what it would say then, not on
        // the wall clock's day.
        let mut explore = vec![format!(
            "collect --home {demo_home} tasks --date {}",
            generate::run_end()
        )];
        // `explain` replays under the revision the home kept: no --policy.
        if let Some((invoice, day)) = &proactive.letter {
            explore.push(format!(
                "collect --home {demo_home} explain {invoice} --date {day}"
            ));
        }
        explore.push(format!(
            "collect --home {demo_home} run --date {} --dry-run{policy_arg}",
            plus(generate::run_end(), 1)
        ));
        explore.push(format!(
            "collect --home {demo_home} report --from {} --to {} --format csv",
            generate::quarter_start(),
            generate::quarter_end()
        ));
        DemoReport {
            seed,
            customers,
            policy: policy_path.display().to_string(),
            baseline: REACTIVE_SUMMARY,
            send_time_utc: home.settings.send_time_utc.clone(),
            quarter: Period::new(generate::quarter_start(), generate::quarter_end()),
            run: Period::new(generate::quarter_start(), generate::run_end()),
            book,
            proactive,
            reactive,
            formulas: Formulas {
                past_due_share: PAST_DUE_FORMULA,
                dso: DSO_FORMULA,
                on_time_payment_rate: ON_TIME_FORMULA,
            },
            database: home.db_path().display().to_string(),
            outbox: home.outbox_dir().display().to_string(),
            outbox_files: count_eml(&home.outbox_dir()),
            report_html: String::new(),
            what_worked: Vec::new(),
            explore,
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let b = &self.book;
        let p = &self.proactive;
        let r = &self.reactive;
        let _ = writeln!(
            out,
            "Proactive Collections demo (seed {}, {} customers)\n",
            self.seed, self.customers
        );
        let _ = writeln!(
            out,
            "The book (generated; the same seed gives the same book)"
        );
        let _ = writeln!(
            out,
            "  {} customers: {}",
            b.customers,
            b.customers_by_behaviour
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            out,
            "  {} strategic, {} reading German, {} in the policy's control group; time zones: {}",
            b.strategic_customers,
            b.german_speaking_customers,
            b.control_group_customers,
            b.customers_by_timezone
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            out,
            "  {} invoices issued {} to {} for {} USD; {} paid in two parts; {} disputed",
            b.invoices,
            self.quarter.from,
            self.quarter.to,
            money(b.invoiced),
            b.partial_payments,
            b.disputes
        );
        let _ = writeln!(
            out,
            "  {} settled invoices from the previous quarter: the payment history the risk score reads",
            b.history_invoices
        );
        let _ = writeln!(
            out,
            "\nThe policy {} ran every day from {} to {} ({} days), mail to the outbox;\n\
             customers answered reminders with payments and firm notices with promises.\n",
            self.policy, self.run.from, self.run.to, self.run.days
        );
        let _ = writeln!(out, "What the policy did");
        let _ = writeln!(
            out,
            "  Messages sent:        {} ({})",
            p.messages_sent,
            p.messages_by_channel
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            out,
            "  Call tasks created:   {} (the demo's collections team calls the same day)",
            p.call_tasks_created
        );
        let _ = writeln!(
            out,
            "  Approvals waiting:    {} legal letter(s)",
            p.approvals_waiting
        );
        let _ = writeln!(
            out,
            "  Promises to pay:      {}; invoices paid sooner after a contact: {}",
            p.promises_to_pay, p.invoices_paid_sooner
        );
        if p.failed_messages > 0 {
            let _ = writeln!(out, "  FAILED messages:      {}", p.failed_messages);
        }
        let _ = writeln!(out, "\n  Actions by kind (final status):");
        for (label, statuses) in &p.actions_by_kind {
            let _ = writeln!(out, "    {label:<34} {}", statuses_line(statuses));
        }
        let _ = writeln!(out, "\n  Actions by segment (final status):");
        for (segment, statuses) in &p.actions_by_segment {
            let _ = writeln!(out, "    {segment:<34} {}", statuses_line(statuses));
        }
        let _ = writeln!(
            out,
            "    (sent = went out, or call made; skipped = passed over, or paid first)"
        );
        if !p.invoices_held.is_empty() {
            let _ = writeln!(
                out,
                "\n  Invoices held at some point: {}",
                p.invoices_held
                    .iter()
                    .map(|(k, n)| format!("{n} by {k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if !p.deferred_by_reason.is_empty() {
            let _ = writeln!(
                out,
                "  Actions held back by a guardrail (retried daily), by first reason:"
            );
            for (reason, n) in &p.deferred_by_reason {
                let _ = writeln!(out, "    {n:>5}  {reason}");
            }
        }
        if !p.unreached_timezones.is_empty() {
            let _ = writeln!(
                out,
                "  Never reached: customers in {} got none of their {} email(s), offer(s) and \
                 call(s):\n    at the send time ({} UTC) it is inside the quiet hours there. \
                 Letters are posted and not affected.",
                p.unreached_timezones
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" and "),
                p.unreached_timezones.values().sum::<usize>(),
                self.send_time_utc
            );
        }

        let _ = writeln!(
            out,
            "\nProactive vs reactive (the same customers, who pay the same way)"
        );
        let _ = writeln!(out, "  baseline = {}", self.baseline);
        let _ = writeln!(out, "  {:<48} {:>12} {:>12}", "", "proactive", "reactive");
        let row = |out: &mut String, name: &str, a: String, b: String| {
            let _ = writeln!(out, "  {name:<48} {a:>12} {b:>12}");
        };
        let (pf, rf) = (&p.figures, &r.figures);
        row(
            &mut out,
            &format!("Past-due share on {}", self.quarter.to),
            pct(pf.past_due_share_at_quarter_end),
            pct(rf.past_due_share_at_quarter_end),
        );
        row(
            &mut out,
            "Past-due share, daily average over the quarter",
            pct(pf.past_due_share_daily_average),
            pct(rf.past_due_share_daily_average),
        );
        row(
            &mut out,
            "DSO over the quarter (days)",
            crate::report::days(pf.dso_days),
            crate::report::days(rf.dso_days),
        );
        row(
            &mut out,
            "On-time payment rate",
            pct(pf.on_time_payment_rate),
            pct(rf.on_time_payment_rate),
        );
        row(
            &mut out,
            &format!("Past due on {} (USD)", self.quarter.to),
            money(pf.past_due_at_quarter_end),
            money(rf.past_due_at_quarter_end),
        );
        row(
            &mut out,
            &format!("Still unpaid on {} (USD)", self.run.to),
            money(pf.unpaid_at_run_end),
            money(rf.unpaid_at_run_end),
        );
        row(
            &mut out,
            "Messages sent",
            p.messages_sent.to_string(),
            r.messages_sent.to_string(),
        );
        row(
            &mut out,
            "Call tasks created",
            p.call_tasks_created.to_string(),
            r.call_tasks_created.to_string(),
        );
        row(
            &mut out,
            "Letters awaiting approval at the end",
            p.approvals_waiting.to_string(),
            r.approvals_waiting.to_string(),
        );
        let _ = writeln!(out, "\n  How these are worked out:");
        for f in [PAST_DUE_FORMULA, DSO_FORMULA, ON_TIME_FORMULA] {
            let _ = writeln!(out, "    {f}");
        }

        self.render_what_worked(&mut out);

        let _ = writeln!(out, "\nExplore");
        let _ = writeln!(out, "  State (SQLite): {}", self.database);
        let _ = writeln!(
            out,
            "  Outbox:         {} ({} .eml files, one folder per day)",
            self.outbox, self.outbox_files
        );
        for c in &self.explore {
            let _ = writeln!(out, "  $ {c}");
        }
        let _ = writeln!(
            out,
            "\nThe effectiveness report (charts: aging, pay rate by step and segment, uplift,\n\
             timing) is in {}: open it in a browser.",
            self.report_html
        );
        out
    }

    fn render_what_worked(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\nWhat worked: experiments, as `collect report` measures them"
        );
        let _ = writeln!(
            out,
            "  Planted in the generator: a friendly reminder before the due date gets {:.0}% \
             (full) or {:.0}% (short)\n  of the standard customers who would pay late to pay \
             on time; strategic accounts are not moved.",
            generate::heed_rate(generate::FULL_REMINDER) * 100.0,
            generate::heed_rate(generate::SHORT_REMINDER) * 100.0
        );
        if self.what_worked.is_empty() {
            let _ = writeln!(out, "  No experiment ran.");
            return;
        }
        let mut verdicts: Vec<(&str, &str)> = Vec::new();
        for w in &self.what_worked {
            let name = match &w.segment {
                Some(s) => format!("{} ({s})", w.experiment),
                None => w.experiment.clone(),
            };
            let measured = match (w.uplift, w.uplift_ci_low, w.uplift_ci_high) {
                (Some(u), Some(l), Some(h)) => format!(
                    "{:+.1} points [{:+.1}, {:+.1}]{}",
                    u * 100.0,
                    l * 100.0,
                    h * 100.0,
                    match w.significant {
                        Some(true) => ", significant".to_string(),
                        Some(false) => ", not significant".to_string(),
                        None => format!(
                            ", too few customers to judge ({} / {})",
                            w.customers, w.reference_customers
                        ),
                    }
                ),
                _ => "no outcome known".to_string(),
            };
            let _ = writeln!(
                out,
                "  {name}: {} vs {} (n {} / {}): measured {measured}{}",
                w.arm,
                w.reference,
                w.n,
                w.reference_n,
                w.planted_uplift
                    .map(|p| format!("; planted {:+.1}", p * 100.0))
                    .unwrap_or_default()
            );
            if !verdicts.iter().any(|(n, _)| *n == w.experiment.as_str()) && w.segment.is_none() {
                verdicts.push((w.experiment.as_str(), w.verdict.as_str()));
            }
        }
        for (_, v) in verdicts {
            let _ = writeln!(out, "  → {v}");
        }
    }
}

fn statuses_line(statuses: &BTreeMap<String, usize>) -> String {
    statuses
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// `1234567.8` as `1,234,567.80`.
fn money(x: Decimal) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_grouped() {
        assert_eq!(money(Decimal::new(123456789, 2)), "1,234,567.89");
        assert_eq!(money(Decimal::new(15000, 2)), "150.00");
        assert_eq!(money(Decimal::ZERO), "0.00");
    }
}
