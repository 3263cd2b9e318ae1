//! `collect diff --format markdown`: the invoices two policy revisions
//! would treat differently, as Markdown for a pull request comment (the
//! policy repository's CI posts it, see `infra/policy-repo-ci.example.yml`).
//!
//! The same replay and grouping as the human and JSON formats
//! ([`local::replay`] of each policy over the period, on a copy of the
//! state, sending nothing; [`local::differences`]):
//! first how many actions of each kind each revision takes, then one row
//! per invoice that differs. GitHub refuses comments over 65,536
//! characters, so the rows stop at [`MAX_ROWS`] with a line saying how
//! many were left out.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use chrono::NaiveDate;

use crate::home::Home;
use crate::local::{self, SimAction, differences, line_key};

/// Rows of invoices shown; the rest are counted.
pub const MAX_ROWS: usize = 200;

/// Text for a table cell: no line breaks, `|` escaped, code spans safe.
fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('`', "'")
        .replace(['\r', '\n'], " ")
}

fn cells(items: &[String]) -> String {
    if items.is_empty() {
        "–".to_string()
    } else {
        items
            .iter()
            .map(|x| cell(x))
            .collect::<Vec<_>>()
            .join("<br>")
    }
}

/// The whole comment.
pub fn render(
    old_name: &str,
    new_name: &str,
    from: NaiveDate,
    to: NaiveDate,
    old: &[SimAction],
    new: &[SimAction],
) -> String {
    let diffs = differences(old, new);
    let mut out = String::new();
    out.push_str(&format!(
        "### Policy diff: `{}` → `{}`\n\n",
        cell(old_name),
        cell(new_name)
    ));
    out.push_str(&format!(
        "Replayed from {from} to {to} (nothing sent): **{} invoice(s)** would be treated differently.\n\n",
        diffs.len()
    ));
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for x in old {
        counts.entry(&x.label).or_default().0 += 1;
    }
    for x in new {
        counts.entry(&x.label).or_default().1 += 1;
    }
    if !counts.is_empty() {
        out.push_str("| action | before | after | change |\n|---|---:|---:|---:|\n");
        for (label, (a, b)) in &counts {
            let change = i64::try_from(*b).unwrap_or(i64::MAX) - i64::try_from(*a).unwrap_or(0);
            out.push_str(&format!("| {} | {a} | {b} | {change:+} |\n", cell(label)));
        }
        out.push('\n');
    }
    if diffs.is_empty() {
        return out;
    }
    out.push_str(&format!(
        "| invoice | customer | only before (`{}`) | only after (`{}`) |\n|---|---|---|---|\n",
        cell(old_name),
        cell(new_name)
    ));
    for d in diffs.iter().take(MAX_ROWS) {
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} |\n",
            cell(&d.invoice_id),
            cell(&d.customer_id),
            cells(&d.only_old.iter().map(|x| line_key(x)).collect::<Vec<_>>()),
            cells(&d.only_new.iter().map(|x| line_key(x)).collect::<Vec<_>>())
        ));
    }
    if diffs.len() > MAX_ROWS {
        out.push_str(&format!(
            "\n…and {} more invoice(s); run `collect diff` for all of them.\n",
            diffs.len() - MAX_ROWS
        ));
    }
    out
}

/// `collect diff --format markdown`.
pub fn run(
    home: &Home,
    old: &Path,
    new: &Path,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<ExitCode> {
    let a = local::replay(home, old, from, to, false)?;
    let b = local::replay(home, new, from, to, false)?;
    print!(
        "{}",
        render(
            &old.display().to_string(),
            &new.display().to_string(),
            from,
            to,
            &a,
            &b
        )
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn action(date: &str, invoice: &str, label: &str) -> SimAction {
        SimAction {
            date: date.parse().unwrap(),
            invoice_id: invoice.to_string(),
            customer_id: format!("C-{invoice}"),
            label: label.to_string(),
            status: "planned".to_string(),
            segment: "standard".to_string(),
            step: "s".to_string(),
            channel: "email".to_string(),
        }
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_moved_step_is_one_row_with_both_dates_and_counted_per_action() {
        let old = vec![
            action("2027-03-07", "I1", "email firm-notice"),
            action("2027-03-01", "I2", "email friendly-reminder"),
        ];
        let new = vec![
            action("2027-03-10", "I1", "email firm-notice"),
            action("2027-03-01", "I2", "email friendly-reminder"),
        ];
        let md = render(
            "old.policy",
            "new.policy",
            day("2027-03-01"),
            day("2027-04-01"),
            &old,
            &new,
        );
        assert!(
            md.starts_with("### Policy diff: `old.policy` → `new.policy`\n"),
            "{md}"
        );
        assert!(
            md.contains("**1 invoice(s)** would be treated differently"),
            "{md}"
        );
        assert!(md.contains("| email firm-notice | 1 | 1 | +0 |"), "{md}");
        assert!(
            md.contains(
                "| `I1` | `C-I1` | 2027-03-07 email firm-notice (planned) | 2027-03-10 email firm-notice (planned) |"
            ),
            "{md}"
        );
        assert!(
            !md.contains("`I2`"),
            "an unchanged invoice has no row:\n{md}"
        );
    }

    #[test]
    fn cells_cannot_break_the_table_and_long_diffs_are_cut() {
        let old: Vec<SimAction> = (0..MAX_ROWS + 5)
            .map(|n| {
                action(
                    "2027-03-01",
                    &format!("I{n:04}|x"),
                    "call `collections`\nnow",
                )
            })
            .collect();
        let md = render("a", "b", day("2027-03-01"), day("2027-03-31"), &old, &[]);
        let rows = md.lines().filter(|l| l.starts_with("| `I")).count();
        assert_eq!(rows, MAX_ROWS);
        assert!(md.contains("…and 5 more invoice(s)"), "{md}");
        assert!(md.contains("`I0000\\|x`"), "{md}");
        assert!(md.contains("call 'collections' now"), "{md}");
        assert!(
            md.contains(&format!(
                "| call 'collections' now | {} | 0 | -{} |",
                MAX_ROWS + 5,
                MAX_ROWS + 5
            )),
            "{md}"
        );
        // Every table row has its four cells.
        for l in md.lines().filter(|l| l.starts_with("| `I")) {
            assert_eq!(l.matches(" | ").count(), 3, "{l}");
        }
    }

    #[test]
    fn no_difference_says_so() {
        let same = vec![action("2027-03-01", "I1", "email urgent-notice")];
        let md = render("a", "b", day("2027-03-01"), day("2027-03-31"), &same, &same);
        assert!(md.contains("**0 invoice(s)**"), "{md}");
        assert!(!md.contains("| invoice |"), "{md}");
    }
}
