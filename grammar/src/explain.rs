//! `explain`: the decision for one invoice on one day with the trace behind
//! it, for auditors — which holds were checked, which segment matched (with
//! its source line and the fact values it saw), and which ladder step fired
//! or why none did.

use crate::compile::{CExpr, Policy, Rule};
use crate::eval::{DayPlan, eval, truthy};
use crate::facts::{FACTS, FactId, Facts};
use chrono::NaiveDate;
use serde::Serialize;
use std::fmt::Write;

#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    pub policy: String,
    pub file: String,
    pub revision: String,
    pub date: NaiveDate,
    pub invoice: String,
    pub customer: String,
    pub due_date: NaiveDate,
    pub in_effect: bool,
    pub holds: Vec<Check>,
    pub segments: Vec<Check>,
    pub control_group: bool,
    pub ladder: Option<LadderTrace>,
    pub plan: DayPlan,
}

/// One condition as evaluated: its rule, result and the facts it read.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub line: u32,
    pub text: String,
    pub docs: Vec<String>,
    /// `None`: not evaluated (a segment after the one that matched).
    pub result: Option<bool>,
    pub facts: Vec<FactValue>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FactValue {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LadderTrace {
    pub segment: String,
    pub line: u32,
    pub steps: Vec<StepTrace>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepTrace {
    pub offset: String,
    pub date: Option<NaiveDate>,
    pub action: String,
    pub line: u32,
    pub docs: Vec<String>,
    pub condition: Option<Check>,
    pub status: String,
}

fn facts_used(e: &CExpr, out: &mut Vec<FactId>) {
    match e {
        CExpr::Fact(id) => {
            if !out.contains(id) {
                out.push(*id);
            }
        }
        CExpr::Not(i) | CExpr::IsMissing(i, _) => facts_used(i, out),
        CExpr::Binary(_, l, r) => {
            facts_used(l, out);
            facts_used(r, out);
        }
        CExpr::FactCmp(_, id, _) => {
            if !out.contains(id) {
                out.push(*id);
            }
        }
        CExpr::Const(_) | CExpr::List(_) => {}
    }
}

impl Policy {
    fn check(
        &self,
        name: &str,
        rule: &Rule,
        text: Option<&str>,
        cond: Option<&CExpr>,
        facts: &Facts<'_>,
        evaluate: bool,
    ) -> Check {
        let mut used = Vec::new();
        if let Some(c) = cond {
            facts_used(c, &mut used);
        }
        Check {
            name: name.to_string(),
            line: rule.line,
            text: text.unwrap_or(&rule.text).to_string(),
            docs: rule.docs.clone(),
            result: evaluate.then(|| cond.is_none_or(|c| truthy(eval(c, facts)))),
            facts: used
                .into_iter()
                .map(|id| FactValue {
                    name: FACTS
                        .iter()
                        .find(|f| f.id == id)
                        .map_or("?", |f| f.name)
                        .to_string(),
                    value: facts.get(id).display(&self.currency),
                })
                .collect(),
        }
    }

    /// The full trace of the decision for one invoice on `facts.today`.
    pub fn explain(&self, facts: &Facts<'_>) -> Trace {
        let decision = self.decide(facts);
        let holds = self
            .holds
            .iter()
            .map(|h| self.check(&h.name, &h.rule, None, Some(&h.condition), facts, true))
            .collect();
        let mut matched = false;
        let segments = self
            .segments
            .iter()
            .map(|s| {
                let c = self.check(
                    &s.name,
                    &s.rule,
                    None,
                    s.condition.as_ref(),
                    facts,
                    !matched,
                );
                matched |= c.result == Some(true);
                c
            })
            .collect();
        let ladder = decision
            .ladder
            .and_then(|l| self.ladders.get(l))
            .map(|l| LadderTrace {
                segment: l.segment.clone(),
                line: l.rule.line,
                steps: l
                    .steps
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let date = self.step_date(facts.invoice.due_date, s.offset);
                        let condition = s.condition.as_ref().map(|c| {
                            self.check(
                                &s.offset_text(),
                                &s.rule,
                                s.condition_text.as_deref(),
                                Some(c),
                                facts,
                                true,
                            )
                        });
                        let bit = 1u64 << i.min(63);
                        let status = match date {
                            _ if decision.control_group && s.offset < 0 => {
                                "skipped: customer is in the control group".to_string()
                            }
                            Some(d) if d > facts.today => {
                                let n = (d - facts.today).num_days();
                                format!("not yet: in {n} day{}", if n == 1 { "" } else { "s" })
                            }
                            _ if decision.today & bit != 0 => "due today".to_string(),
                            _ if decision.due & bit != 0 => "due on an earlier day".to_string(),
                            Some(_) => "condition not met".to_string(),
                            None => "date out of range".to_string(),
                        };
                        StepTrace {
                            offset: s.offset_text(),
                            date,
                            action: if s.requires_approval {
                                format!("{} requires approval", s.action.label())
                            } else {
                                s.action.label()
                            },
                            line: s.rule.line,
                            docs: s.rule.docs.clone(),
                            condition,
                            status,
                        }
                    })
                    .collect(),
            });
        Trace {
            policy: self.name.clone(),
            file: self.file.clone(),
            revision: self.revision.clone(),
            date: facts.today,
            invoice: facts.invoice.id.to_string(),
            customer: facts.customer.id.to_string(),
            due_date: facts.invoice.due_date,
            in_effect: !decision.not_in_effect,
            holds,
            segments,
            control_group: decision.control_group,
            ladder,
            // What the sweep did or would do is the sweep's to say: the
            // caller fills it in (see `DayPlan`).
            plan: DayPlan {
                segment: decision
                    .segment
                    .and_then(|s| self.segments.get(s))
                    .map(|s| s.name.clone()),
                ..DayPlan::default()
            },
        }
    }
}

fn mark(result: Option<bool>) -> &'static str {
    match result {
        Some(true) => "yes",
        Some(false) => "no ",
        None => "-  ",
    }
}

fn write_check(out: &mut String, file: &str, c: &Check, what: &str) {
    let _ = writeln!(
        out,
        "  [{}] {what} `{}`  ({file}:{})",
        mark(c.result),
        c.name,
        c.line
    );
    for d in &c.docs {
        let _ = writeln!(out, "        ## {d}");
    }
    let _ = writeln!(out, "        {}", c.text);
    if c.result.is_some() && !c.facts.is_empty() {
        let vals: Vec<String> = c
            .facts
            .iter()
            .map(|f| format!("{} = {}", f.name, f.value))
            .collect();
        let _ = writeln!(out, "        where {}", vals.join(", "));
    }
}

impl Trace {
    /// The trace as text for a person.
    pub fn render(&self) -> String {
        let mut out = self.render_checks();
        self.render_decision(&mut out);
        out
    }

    /// [`Trace::render`] without its decision: the holds, segments and
    /// ladder, for a caller that shows the decision its own way (`collect
    /// explain` of a recorded action matches it with the record).
    pub fn render_checks(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Invoice {} (customer {}), due {}, on {}",
            self.invoice, self.customer, self.due_date, self.date
        );
        let rev: String = self.revision.chars().take(12).collect();
        let _ = writeln!(
            out,
            "Policy `{}` ({}, revision {rev})",
            self.policy, self.file
        );
        if !self.in_effect {
            let _ = writeln!(out, "\nThe policy is not in effect on this day.");
        }
        let _ = writeln!(out, "\nHolds (any one stops the ladder):");
        if self.holds.is_empty() {
            let _ = writeln!(out, "  (the policy has no holds)");
        }
        for h in &self.holds {
            write_check(&mut out, &self.file, h, "hold");
        }
        let _ = writeln!(out, "\nSegments (first match wins):");
        for s in &self.segments {
            write_check(&mut out, &self.file, s, "segment");
        }
        if self.control_group {
            let _ = writeln!(
                out,
                "\nThe customer is in the control group: no steps before the due date."
            );
        }
        match &self.ladder {
            Some(l) => {
                let _ = writeln!(out, "\nLadder `{}` ({}:{}):", l.segment, self.file, l.line);
                for s in &l.steps {
                    for d in &s.docs {
                        let _ = writeln!(out, "  ## {d}");
                    }
                    let date = s.date.map_or_else(|| "?".to_string(), |d| d.to_string());
                    let _ = writeln!(
                        out,
                        "  {:<11} {date}  {:<40} line {:<4} {}",
                        s.offset, s.action, s.line, s.status
                    );
                    if let Some(c) = &s.condition {
                        let vals: Vec<String> = c
                            .facts
                            .iter()
                            .map(|f| format!("{} = {}", f.name, f.value))
                            .collect();
                        let _ = writeln!(
                            out,
                            "              when {} -> {}{}",
                            c.text,
                            if c.result == Some(true) {
                                "true"
                            } else {
                                "false"
                            },
                            if vals.is_empty() {
                                String::new()
                            } else {
                                format!(" (where {})", vals.join(", "))
                            }
                        );
                    }
                }
            }
            None => {
                let _ = writeln!(out, "\nNo ladder applies.");
            }
        }
        out
    }

    fn render_decision(&self, out: &mut String) {
        let _ = writeln!(out, "\nDecision:");
        if let Some(seg) = &self.plan.segment {
            let _ = writeln!(out, "  segment {seg}");
        }
        for a in &self.plan.actions {
            let arm = match (&a.experiment, &a.arm) {
                (Some(e), Some(arm)) => format!(" (experiment {e}, arm {arm})"),
                _ => String::new(),
            };
            let deferred = a
                .deferred
                .as_ref()
                .map_or_else(String::new, |r| format!("  DEFERRED: {r}"));
            let _ = writeln!(out, "  {}{arm}  (line {}){deferred}", a.describe(), a.line);
        }
        for r in &self.plan.reasons {
            let _ = writeln!(out, "  no action: {r}");
        }
    }
}
