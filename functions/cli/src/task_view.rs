//! What `collect tasks` prints: the queue a page at a time with its counts,
//! one task with the facts a person decides on and its letter as it would
//! go out, and what an act did — for people, or as JSON for tools (the
//! desk's own types, [`crate::task_queue::Answer`]).

use crate::args::Format;
use crate::report::money;
use crate::task_queue::{Answer, Letter, Said};
use chrono::NaiveDate;
use collect_delivery::ledger::note_after_status;
use collect_delivery::work::{Act, BulkOutcome, TaskView, WorkItem, WorkKind, WorkPage};
use collect_engine::domain::Invoice;
use rust_decimal::Decimal;
use std::fmt::Write as _;

/// An error and its causes on one line, `what: why: why`.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        // An error that shows its source as its own text says it once.
        let text = c.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// Prints an answer: warnings to standard error, the rest to standard
/// output.
pub fn print(a: &Answer, format: Format) -> Result<(), serde_json::Error> {
    for w in &a.warnings {
        eprintln!("warning: {w}");
    }
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(a)?);
        return Ok(());
    }
    print!("{}", render(&a.what));
    Ok(())
}

/// An answer for people.
pub fn render(said: &Said) -> String {
    match said {
        Said::Page(p) => page(p),
        Said::Task {
            task,
            invoices,
            letter,
            as_of,
        } => task_text(task, invoices, letter.as_ref(), *as_of),
        Said::Did(o) => format!("{}: {}\n", o.task_id, o.said),
        Said::Bulk(b) => bulk(b),
    }
}

fn amount(x: Decimal, currency: &str) -> String {
    format!("{} {currency}", money(x))
}

fn percent(risk: Option<f64>) -> String {
    risk.map_or_else(|| "–".to_string(), |r| format!("{:.1}%", r * 100.0))
}

/// What a person does with a row.
fn next_step(item: &WorkItem) -> String {
    match item.kind {
        WorkKind::Approval => "approve or reject".to_string(),
        WorkKind::Call => match item.call_again_on {
            Some(d) => format!("call again on {d}, then record the outcome"),
            None => "call, then record the outcome".to_string(),
        },
        WorkKind::FixContact => format!(
            "correct the address in the ERP's next export, or once it is fixed `collect tasks \
             done {}`",
            item.task_id
        ),
    }
}

fn row(item: &WorkItem) -> String {
    let mut out = format!(
        "{}  {}  {} ({})",
        item.task_id, item.label, item.customer_name, item.customer_id
    );
    if !item.invoice_ids.is_empty() {
        let _ = write!(out, "  invoice {}", item.invoice_ids.join(", "));
    }
    match item.kind {
        WorkKind::FixContact => {
            let _ = write!(out, "  open {}", amount(item.balance, &item.currency));
        }
        _ => {
            let _ = write!(
                out,
                "  {}  {} day(s) overdue  risk {}",
                amount(item.balance, &item.currency),
                item.days_overdue,
                percent(item.risk)
            );
        }
    }
    if !item.segment.is_empty() {
        let _ = write!(out, "  {}", item.segment);
    }
    let _ = write!(
        out,
        "  queue {}  decided {} ({} day(s) ago): {}",
        item.queue,
        item.decided_on,
        item.age_days,
        next_step(item)
    );
    out
}

/// A page of the queue, with where the others are and the queues' counts.
pub fn page(p: &WorkPage) -> String {
    let mut out = String::new();
    if p.total == 0 {
        out.push_str("no open tasks\n");
    }
    for item in &p.items {
        out.push_str(&row(item));
        out.push('\n');
    }
    if p.total > 0 {
        let pages = p.total.div_ceil(p.per_page.max(1));
        let _ = write!(
            out,
            "{} open task(s); page {} of {pages}, {} shown",
            p.total,
            p.page,
            p.items.len()
        );
        if p.page < pages {
            let _ = write!(out, " (next: --page {})", p.page + 1);
        }
        out.push('\n');
    }
    if !p.counts.is_empty() {
        let counts: Vec<String> = p.counts.iter().map(|(q, n)| format!("{q} {n}")).collect();
        let _ = writeln!(out, "by queue: {}", counts.join(", "));
    }
    out
}

fn task_text(
    v: &TaskView,
    invoices: &[Invoice],
    letter: Option<&Letter>,
    as_of: NaiveDate,
) -> String {
    let mut out = String::new();
    let status = v.action.as_ref().map_or("open", |a| a.status.as_str());
    let _ = writeln!(out, "task {} ({}, {status})", v.task_id, v.kind.as_str());
    if let Some(a) = &v.action {
        let _ = writeln!(
            out,
            "  what:      {} ({} step, rule {})",
            a.label, a.segment, a.rule
        );
    }
    if let Some(h) = &v.hold {
        let _ = writeln!(out, "  what:      fix the address: {}", h.describe());
    }
    match &v.customer {
        Some(c) => {
            let _ = writeln!(
                out,
                "  customer:  {} <{}> ({}){}",
                c.name,
                c.email,
                c.customer_id,
                c.phone
                    .as_deref()
                    .map(|p| format!(", phone {p}"))
                    .unwrap_or_default()
            );
        }
        None => {
            let _ = writeln!(out, "  customer:  ? (not in the book)");
        }
    }
    for i in invoices {
        let _ = writeln!(
            out,
            "  invoice:   {} ({}), amount {}, due {}",
            i.number,
            i.invoice_id,
            amount(i.amount, &i.currency),
            i.due_date
        );
    }
    let _ = writeln!(
        out,
        "  open:      {} on {as_of}, {} day(s) overdue",
        amount(v.balance, &v.currency),
        v.days_overdue
    );
    if let Some(a) = &v.action {
        let _ = writeln!(
            out,
            "  decided:   {} by policy {} (revision {}), risk {}",
            a.decided_on,
            a.policy_name,
            a.policy_revision,
            percent(a.risk)
        );
    }
    for e in &v.trail {
        let _ = writeln!(
            out,
            "  trail:     {} {}{}{}",
            e.day,
            e.status,
            e.by.as_deref()
                .map(|b| format!(" by {b}"))
                .unwrap_or_default(),
            e.note
                .as_deref()
                .map(|n| format!(": {}", note_after_status(&e.status, n)))
                .unwrap_or_default()
        );
    }
    for b in &v.blockers {
        let _ = writeln!(out, "  cannot be approved: {b}");
    }
    for w in &v.warnings {
        let _ = writeln!(out, "  warning:   {w}");
    }
    if !v.may.is_empty() {
        let acts: Vec<&str> = v.may.iter().map(|a: &Act| a.as_str()).collect();
        let _ = writeln!(out, "  you may:   {}", acts.join("; "));
    }
    if v.reopenable {
        let _ = writeln!(
            out,
            "  decided today: `collect tasks reopen {} --reason TEXT` undoes it",
            v.task_id
        );
    }
    match letter {
        Some(Letter::Shown(l)) => {
            let _ = writeln!(out, "\n--- the letter as it would go out on {as_of} ---");
            let _ = writeln!(
                out,
                "To: {}\nSubject: {}\n\n{}",
                l.to,
                l.subject,
                l.text.trim_end()
            );
            if l.pdf.is_some() {
                let _ = writeln!(out, "(and its printable PDF letter)");
            }
            let _ = writeln!(out, "--- end of letter ---");
        }
        Some(Letter::NotShown(why)) => {
            let _ = writeln!(out, "\n(the letter cannot be shown: {why})");
        }
        None => {}
    }
    out
}

fn bulk(b: &BulkOutcome) -> String {
    let mut out = String::new();
    for o in &b.approved {
        let _ = writeln!(out, "{}: {}", o.task_id, o.said);
    }
    for (id, why) in &b.refused {
        let _ = writeln!(out, "{id}: not approved: {why}");
    }
    let _ = writeln!(
        out,
        "{} approved, {} refused",
        b.approved.len(),
        b.refused.len()
    );
    out
}
