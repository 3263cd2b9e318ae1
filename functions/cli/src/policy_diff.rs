//! What two policy revisions would do differently over a period, for
//! `collect diff`: both replayed from the same copy of the state as it was
//! before the period ([`crate::replay`]),
//! then the invoices they treat differently, each line with its reason
//! (e.g. "the new policy is not in effect until 2027-06-01"), and a note
//! when a policy decides nothing in the period. Shown for people
//! ([`Reasoned::human`]), for tools ([`Reasoned::json`]) or as Markdown
//! for a pull request comment ([`markdown`]; the policy repository's CI
//! posts it, see `infra/policy-repo-ci.example.yml`).
//!
//! The Markdown gives first how many actions of each kind each revision
//! takes, then one row per invoice that differs. GitHub refuses comments
//! over 65,536 characters, so the rows stop at [`MAX_ROWS`] with a line
//! saying how many were left out.

use crate::home::Home;
use crate::policy_files::{self, PolicyFileError};
use crate::replay::{ReplayError, SimAction, differences, line_key, replay_from, starting_state};
use chrono::NaiveDate;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// The two replays compared.
pub struct Replays {
    pub old: Vec<SimAction>,
    pub new: Vec<SimAction>,
}

/// Replays the period with the old policy, then with the new one, both
/// from the same starting state: the home as it was before `from`
/// ([`starting_state`]), so on a home with history each side decides the
/// period's steps itself and both sides' actions appear.
pub fn replay_both(
    home: &Home,
    old: &Path,
    new: &Path,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Replays, ReplayError> {
    if to < from {
        return Err(ReplayError::Backwards { from, to });
    }
    let start = starting_state(home, from)?;
    Ok(Replays {
        old: replay_from(home, &start, old, from, to, false)?,
        new: replay_from(home, &start, new, from, to, false)?,
    })
}

/// One replayed action only one policy takes, and why.
type Lines = Vec<(String, String)>;

/// The differences with their reasons and notes.
pub struct Reasoned<'p> {
    old: &'p Path,
    new: &'p Path,
    from: NaiveDate,
    to: NaiveDate,
    old_effective: Option<NaiveDate>,
    new_effective: Option<NaiveDate>,
    notes: Vec<String>,
    /// Per invoice that differs: the lines only the old policy has, and
    /// those only the new one has.
    differing: Vec<(String, Lines, Lines)>,
}

/// The invoices the two replays treat differently, each line with its
/// reason. A policy decides nothing before its `effective` day: that is
/// said, rather than every invoice listed as "only with" the other one.
pub fn reasoned<'p>(
    old: &'p Path,
    new: &'p Path,
    from: NaiveDate,
    to: NaiveDate,
    replays: &Replays,
) -> Result<Reasoned<'p>, PolicyFileError> {
    let effective = |p: &Path| -> Result<Option<NaiveDate>, PolicyFileError> {
        Ok(policy_files::load(p)?.effective)
    };
    let (old_from, new_from) = (effective(old)?, effective(new)?);
    let not_in_effect = |side: &str, path: &Path, e: Option<NaiveDate>| {
        e.filter(|e| *e > from).map(|e| {
            let whole = e > to;
            format!(
                "the {side} policy {} is not in effect until {e}{}",
                path.display(),
                if whole {
                    ": it decides nothing in the whole period".to_string()
                } else {
                    format!(
                        ": it decides nothing from {from} to {}",
                        e.pred_opt().unwrap_or(e)
                    )
                }
            )
        })
    };
    let notes: Vec<String> = [
        not_in_effect("old", old, old_from),
        not_in_effect("new", new, new_from),
    ]
    .into_iter()
    .flatten()
    .collect();
    // Why one line is there with one policy only.
    let reason = |x: &SimAction, only_old: bool| -> String {
        let (other, other_from) = if only_old {
            ("new", new_from)
        } else {
            ("old", old_from)
        };
        match other_from {
            Some(e) if x.date < e => format!("the {other} policy is not in effect until {e}"),
            _ => format!("the {other} policy decides otherwise on {}", x.date),
        }
    };
    let differing: Vec<(String, Lines, Lines)> = differences(&replays.old, &replays.new)
        .into_iter()
        .map(|d| {
            let lines = |xs: &[&SimAction], only_old: bool| -> Lines {
                xs.iter()
                    .map(|x| (line_key(x), reason(x, only_old)))
                    .collect()
            };
            (
                d.invoice_id,
                lines(&d.only_old, true),
                lines(&d.only_new, false),
            )
        })
        .collect();
    Ok(Reasoned {
        old,
        new,
        from,
        to,
        old_effective: old_from,
        new_effective: new_from,
        notes,
        differing,
    })
}

impl Reasoned<'_> {
    /// `--format json`: the invoices with their lines and reasons.
    pub fn json(&self) -> serde_json::Value {
        let keys = |v: &Lines| -> Vec<String> { v.iter().map(|(k, _)| k.clone()).collect() };
        let lines = |v: &Lines| -> Vec<serde_json::Value> {
            v.iter()
                .map(|(k, r)| serde_json::json!({"action": k, "reason": r}))
                .collect()
        };
        let v: Vec<serde_json::Value> = self
            .differing
            .iter()
            .map(|(id, o, n)| {
                let mut reasons: Vec<&String> = o.iter().chain(n.iter()).map(|(_, r)| r).collect();
                reasons.sort();
                reasons.dedup();
                serde_json::json!({
                    "invoice_id": id,
                    "only_old": keys(o),
                    "only_new": keys(n),
                    "reasons": reasons,
                    "old_lines": lines(o),
                    "new_lines": lines(n),
                })
            })
            .collect();
        serde_json::json!({
            "old": self.old.display().to_string(),
            "new": self.new.display().to_string(),
            "from": self.from,
            "to": self.to,
            "old_effective": self.old_effective,
            "new_effective": self.new_effective,
            "notes": self.notes,
            "invoices": v,
        })
    }

    /// For people: a headline, the notes, then each invoice with a `-`
    /// line for what only the old policy does and a `+` line for the new.
    pub fn human(&self) -> String {
        let (old, new) = (self.old.display(), self.new.display());
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{old} vs {new} from {} to {}: {} invoice(s) would be treated differently",
            self.from,
            self.to,
            self.differing.len()
        );
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        for (id, o, n) in &self.differing {
            let _ = writeln!(out, "\ninvoice {id}");
            for (x, why) in o {
                let _ = writeln!(out, "  - {x}   (only with {old}: {why})");
            }
            for (x, why) in n {
                let _ = writeln!(out, "  + {x}   (only with {new}: {why})");
            }
        }
        out
    }
}

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
pub fn markdown(
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
        let md = markdown(
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
        let md = markdown("a", "b", day("2027-03-01"), day("2027-03-31"), &old, &[]);
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
        let md = markdown("a", "b", day("2027-03-01"), day("2027-03-31"), &same, &same);
        assert!(md.contains("**0 invoice(s)**"), "{md}");
        assert!(!md.contains("| invoice |"), "{md}");
    }
}
