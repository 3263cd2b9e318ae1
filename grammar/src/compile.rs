//! The compiled policy: a checked syntax tree turned into the form the
//! evaluator runs, with facts resolved to [`FactId`]s, ladder steps sorted by
//! date, experiment weights turned into cumulative basis points, and the
//! policy's revision (SHA-256 of its text) fixed.

use crate::ast::{
    self, Action, BinOp, Channel, ClockTime, DownPayment, Expr, Item, Limit, Literal, Span,
};
use crate::facts::{self, FactId};
use crate::labels::{action_label, offset_text};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// A policy ready to decide invoices.
#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    pub name: String,
    /// The file it came from, as given to [`crate::load`].
    pub file: String,
    pub effective: Option<NaiveDate>,
    pub currency: String,
    pub description: Option<String>,
    pub docs: Vec<String>,
    /// SHA-256 of the policy text, hex: the revision recorded on every action.
    pub revision: String,
    /// Control-group share in basis points (0–10 000).
    pub control_bp: u32,
    pub segments: Vec<CSegment>,
    pub holds: Vec<CHold>,
    pub ladders: Vec<CLadder>,
    pub limits: CLimits,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    /// 1-based line of the rule in the policy file.
    pub line: u32,
    pub col: u32,
    /// The rule's text as written, for explanations.
    pub text: String,
    pub docs: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CSegment {
    pub name: String,
    #[serde(skip)]
    pub condition: Option<CExpr>,
    /// Index into [`Policy::ladders`].
    pub ladder: Option<usize>,
    pub rule: Rule,
}

#[derive(Debug, Clone, Serialize)]
pub struct CHold {
    pub name: String,
    #[serde(skip)]
    pub condition: CExpr,
    pub rule: Rule,
}

#[derive(Debug, Clone, Serialize)]
pub struct CLadder {
    pub segment: String,
    /// Sorted by offset.
    pub steps: Vec<CStep>,
    pub rule: Rule,
}

#[derive(Debug, Clone, Serialize)]
pub struct CStep {
    /// Days from the due date; negative is before it.
    pub offset: i64,
    pub action: CAction,
    #[serde(skip)]
    pub condition: Option<CExpr>,
    pub condition_text: Option<String>,
    pub requires_approval: bool,
    pub rule: Rule,
}

impl CStep {
    /// `due - 3d`, `due`, `due + 7d`.
    pub fn offset_text(&self) -> String {
        offset_text(self.offset)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum CAction {
    Email { template: String },
    Call { queue: String },
    Letter { template: String },
    OfferPlan(PlanTerms),
    Experiment { name: String, arms: Vec<CArm> },
}

impl CAction {
    pub fn channel(&self) -> Option<Channel> {
        match self {
            CAction::Email { .. } => Some(Channel::Email),
            CAction::Call { .. } => Some(Channel::Call),
            CAction::Letter { .. } => Some(Channel::Letter),
            CAction::OfferPlan(_) => Some(Channel::Offer),
            CAction::Experiment { .. } => None,
        }
    }

    /// `email friendly-reminder`, `call collections`, `offer plan`.
    pub fn label(&self) -> String {
        match self {
            CAction::Email { template } => format!("email {template}"),
            CAction::Call { queue } => format!("call {queue}"),
            CAction::Letter { template } => format!("letter {template}"),
            CAction::OfferPlan(_) => "offer plan".to_string(),
            CAction::Experiment { name, .. } => format!("experiment {name}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanTerms {
    pub installments: u32,
    pub every_days: i64,
    pub down: Option<DownPayment>,
}

/// The name of an experiment's arm with `no action`, in records and reports.
pub const CONTROL_ARM: &str = "control";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CArm {
    /// The arm's name in records and reports: the action's label, or
    /// [`CONTROL_ARM`] for `no action`.
    pub name: String,
    /// Cumulative upper bound in basis points: a customer whose bucket is
    /// below it (and at or above the previous arm's) is in this arm.
    pub upto_bp: u32,
    pub weight_bp: u32,
    /// `None` is the control arm: no action.
    pub action: Option<Box<CAction>>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CLimits {
    pub caps: Vec<Cap>,
    pub quiet_hours: Option<(ClockTime, ClockTime)>,
    pub business_days: bool,
    /// Sorted.
    pub holidays: Vec<NaiveDate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Cap {
    pub count: u32,
    pub channel: Channel,
    pub window_days: i64,
}

/// A condition ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub enum CExpr {
    Fact(FactId),
    Const(Const),
    List(Vec<String>),
    Not(Box<CExpr>),
    IsMissing(Box<CExpr>, bool),
    Binary(BinOp, Box<CExpr>, Box<CExpr>),
    /// A fact compared with a constant, the commonest condition
    /// (`risk >= 60%`), evaluated without walking a subtree.
    FactCmp(BinOp, FactId, Const),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Const {
    Bool(bool),
    Number(Decimal),
    Money(Decimal),
    Percent(f64),
    Date(NaiveDate),
    Days(i64),
    Text(String),
    Missing,
}

/// Compiles a policy that passed [`crate::check::check`] without errors.
pub fn compile(file: &ast::PolicyFile, source: &str, file_name: &str) -> Policy {
    // A rule is shown by the source line it starts on (after its doc
    // comments), so explanations quote what the author wrote.
    let rule = |anchor: Span, docs: &[String]| Rule {
        line: anchor.line,
        col: anchor.col,
        text: source
            .get(..anchor.start)
            .and_then(|before| before.rfind('\n'))
            .map_or(Some(source), |i| source.get(i + 1..))
            .and_then(|rest| rest.lines().next())
            .unwrap_or("")
            .trim()
            .to_string(),
        docs: docs.iter().map(|d| d.trim().to_string()).collect(),
    };
    let text = |span: Span| {
        source
            .get(span.start..span.end)
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };

    let mut segments = Vec::new();
    let mut holds = Vec::new();
    let mut ladders: Vec<CLadder> = Vec::new();
    let mut limits = CLimits::default();
    for item in &file.items {
        match item {
            Item::Segment(s) => segments.push(CSegment {
                name: s.name.node.clone(),
                condition: s.condition.as_ref().map(|c| expr(&c.node)),
                ladder: None,
                rule: rule(s.name.span, &s.docs),
            }),
            Item::Hold(h) => holds.push(CHold {
                name: h.name.node.clone(),
                condition: expr(&h.condition.node),
                rule: rule(h.name.span, &h.docs),
            }),
            Item::Ladder(l) => {
                let mut steps: Vec<CStep> = l
                    .steps
                    .iter()
                    .map(|s| CStep {
                        offset: s.offset.node,
                        action: action(&s.action.node),
                        condition: s.condition.as_ref().map(|c| expr(&c.node)),
                        condition_text: s.condition.as_ref().map(|c| text(c.span)),
                        requires_approval: s.requires_approval,
                        rule: rule(s.offset.span, &s.docs),
                    })
                    .collect();
                steps.sort_by_key(|s| s.offset);
                ladders.push(CLadder {
                    segment: l.segment.node.clone(),
                    steps,
                    rule: rule(l.segment.span, &l.docs),
                });
            }
            Item::Limits(l) => {
                for r in &l.rules {
                    match &r.node {
                        Limit::Cap {
                            count,
                            channel,
                            window_days,
                        } => limits.caps.push(Cap {
                            count: *count,
                            channel: *channel,
                            window_days: *window_days,
                        }),
                        Limit::QuietHours { from, to } => limits.quiet_hours = Some((*from, *to)),
                        Limit::BusinessDays => limits.business_days = true,
                        Limit::Holidays(days) => {
                            limits.holidays.extend(days.iter().filter_map(|d| d.node))
                        }
                    }
                }
            }
        }
    }
    limits.holidays.sort();
    limits.holidays.dedup();
    for seg in &mut segments {
        seg.ladder = ladders.iter().position(|l| l.segment == seg.name);
    }
    let h = &file.header;
    Policy {
        name: h.name.node.clone(),
        file: file_name.to_string(),
        effective: h.effective.node,
        currency: h.currency.node.clone(),
        description: h.description.as_ref().map(|d| d.node.clone()),
        docs: h.docs.iter().map(|d| d.trim().to_string()).collect(),
        revision: revision(source),
        control_bp: h.control_group.as_ref().map_or(0, |p| basis_points(p.node)),
        segments,
        holds,
        ladders,
        limits,
    }
}

/// SHA-256 of the policy text, lower-case hex.
pub fn revision(source: &str) -> String {
    let digest = Sha256::digest(source.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn basis_points(percent: Decimal) -> u32 {
    percent
        .checked_mul(Decimal::ONE_HUNDRED)
        .unwrap_or(Decimal::MAX)
        .round()
        .to_u32()
        .unwrap_or(0)
        .min(10_000)
}

fn action(a: &Action) -> CAction {
    match a {
        Action::Email { template } => CAction::Email {
            template: template.node.clone(),
        },
        Action::Call { queue } => CAction::Call {
            queue: queue.node.clone(),
        },
        Action::Letter { template } => CAction::Letter {
            template: template.node.clone(),
        },
        Action::OfferPlan(p) => CAction::OfferPlan(PlanTerms {
            installments: p.installments.node,
            every_days: p.every_days.node,
            down: p.down.as_ref().map(|d| d.node.clone()),
        }),
        Action::Experiment(e) => {
            let mut upto = 0;
            let arms = e
                .arms
                .iter()
                .map(|arm| {
                    let weight_bp = basis_points(arm.weight.node);
                    upto += weight_bp;
                    CArm {
                        name: arm
                            .action
                            .as_ref()
                            .map_or_else(|| CONTROL_ARM.to_string(), |a| action_label(&a.node)),
                        upto_bp: upto,
                        weight_bp,
                        action: arm.action.as_ref().map(|a| Box::new(action(&a.node))),
                    }
                })
                .collect();
            CAction::Experiment {
                name: e.name.node.clone(),
                arms,
            }
        }
    }
}

fn expr(e: &Expr) -> CExpr {
    match e {
        Expr::Fact { name } => match facts::lookup(name) {
            Some(f) => CExpr::Fact(f.id),
            None => CExpr::Const(Const::Missing),
        },
        Expr::Literal { value } => CExpr::Const(match value {
            Literal::Bool(b) => Const::Bool(*b),
            Literal::Number(n) => Const::Number(*n),
            Literal::Money { amount, .. } => Const::Money(*amount),
            Literal::Percent(p) => {
                Const::Percent((*p / Decimal::ONE_HUNDRED).to_f64().unwrap_or(0.0))
            }
            Literal::Date(d) => Const::Date(*d),
            Literal::Days(d) => Const::Days(*d),
            Literal::Text(t) => Const::Text(t.clone()),
        }),
        Expr::List { items } => CExpr::List(
            items
                .iter()
                .filter_map(|i| match &i.node {
                    Expr::Literal {
                        value: Literal::Text(t),
                    } => Some(t.clone()),
                    _ => None,
                })
                .collect(),
        ),
        Expr::Not { operand } => CExpr::Not(Box::new(expr(&operand.node))),
        Expr::IsMissing { operand, negated } => {
            CExpr::IsMissing(Box::new(expr(&operand.node)), *negated)
        }
        Expr::Binary { op, left, right } => {
            let (l, r) = (expr(&left.node), expr(&right.node));
            match (l, r) {
                (CExpr::Fact(id), CExpr::Const(k)) if op.is_comparison() && *op != BinOp::In => {
                    CExpr::FactCmp(*op, id, k)
                }
                (CExpr::Const(k), CExpr::Fact(id)) if op.is_comparison() && *op != BinOp::In => {
                    CExpr::FactCmp(flip(*op), id, k)
                }
                (l, r) => CExpr::Binary(*op, Box::new(l), Box::new(r)),
            }
        }
        Expr::Invalid => CExpr::Const(Const::Missing),
    }
}

/// The same comparison with its sides swapped: `60% <= risk` is `risk >= 60%`.
fn flip(op: BinOp) -> BinOp {
    match op {
        BinOp::Lt => BinOp::Gt,
        BinOp::Le => BinOp::Ge,
        BinOp::Gt => BinOp::Lt,
        BinOp::Ge => BinOp::Le,
        other => other,
    }
}
