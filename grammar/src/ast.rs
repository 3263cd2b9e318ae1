//! The typed syntax tree of a policy file.
//!
//! Every node carries a [`Span`] so that the checker, `explain` and every
//! recorded action can point at the exact line of the rule. Spans never take
//! part in equality: two parses of the same meaning compare equal, which is
//! how the formatter proves that it changed layout and nothing else.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

/// Where a node sits in its source file: byte range plus the 1-based line and
/// column of its first character.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub line: u32,
    pub col: u32,
}

impl PartialEq for Span {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// A value with its location in the source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node<T> {
    pub node: T,
    pub span: Span,
}

impl<T> Node<T> {
    pub fn new(node: T, span: Span) -> Self {
        Node { node, span }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyFile {
    pub header: Header,
    pub items: Vec<Item>,
    /// `##` lines after the last item: they belong to nothing, and are kept
    /// so that `collect fmt` prints them back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trailing_docs: Option<Node<Vec<String>>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Header {
    pub docs: Vec<String>,
    pub name: Node<String>,
    pub effective: Node<Option<NaiveDate>>,
    pub currency: Node<String>,
    pub description: Option<Node<String>>,
    /// Share of customers held out of proactive (pre-due) steps, in percent.
    pub control_group: Option<Node<Decimal>>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Item {
    Limits(Limits),
    Segment(Segment),
    Hold(Hold),
    Ladder(Ladder),
}

impl Item {
    pub fn span(&self) -> Span {
        match self {
            Item::Limits(l) => l.span,
            Item::Segment(s) => s.span,
            Item::Hold(h) => h.span,
            Item::Ladder(l) => l.span,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limits {
    pub docs: Vec<String>,
    pub rules: Vec<Node<Limit>>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Call,
    Letter,
    Offer,
    /// Any contact at all, whatever the channel.
    Contact,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Call => "call",
            Channel::Letter => "letter",
            Channel::Offer => "offer",
            Channel::Contact => "contact",
        }
    }
    pub fn plural(self) -> &'static str {
        match self {
            Channel::Email => "emails",
            Channel::Call => "calls",
            Channel::Letter => "letters",
            Channel::Offer => "offers",
            Channel::Contact => "contacts",
        }
    }
}

/// A clock time of day, minutes since midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ClockTime {
    pub hour: u32,
    pub minute: u32,
}

impl std::fmt::Display for ClockTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Limit {
    /// `at most N <channel> per customer per Wd`
    Cap {
        count: u32,
        channel: Channel,
        window_days: i64,
    },
    /// `quiet hours 20:00 to 08:00 customer time`
    QuietHours { from: ClockTime, to: ClockTime },
    /// `business days only`
    BusinessDays,
    /// `holidays 2026-12-25 2027-01-01`
    Holidays(Vec<Node<Option<NaiveDate>>>),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    pub docs: Vec<String>,
    pub name: Node<String>,
    /// `None` is `otherwise`.
    pub condition: Option<Node<Expr>>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hold {
    pub docs: Vec<String>,
    pub name: Node<String>,
    pub condition: Node<Expr>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ladder {
    pub docs: Vec<String>,
    pub segment: Node<String>,
    pub steps: Vec<Step>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub docs: Vec<String>,
    /// Days from the due date; negative is before it.
    pub offset: Node<i64>,
    pub action: Node<Action>,
    pub condition: Option<Node<Expr>>,
    pub requires_approval: bool,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Action {
    Email { template: Node<String> },
    Call { queue: Node<String> },
    Letter { template: Node<String> },
    OfferPlan(PlanOffer),
    Experiment(Experiment),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanOffer {
    pub installments: Node<u32>,
    pub every_days: Node<i64>,
    pub down: Option<Node<DownPayment>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DownPayment {
    /// Percent of the open balance, e.g. `10` for 10 %.
    Percent(Decimal),
    Money {
        amount: Decimal,
        currency: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Experiment {
    pub name: Node<String>,
    pub arms: Vec<Arm>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Arm {
    /// Weight in percent.
    pub weight: Node<Decimal>,
    /// `None` is `no action` (a control arm).
    pub action: Option<Node<Action>>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
    Sub,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Eq => "=",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
            BinOp::Add => "+",
            BinOp::Sub => "-",
        }
    }

    /// Binding strength; higher binds tighter. `not` sits between `and` and
    /// the comparisons.
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And => 2,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::In => 4,
            BinOp::Add | BinOp::Sub => 5,
        }
    }

    pub fn is_comparison(self) -> bool {
        self.precedence() == 4
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Expr {
    Fact {
        name: String,
    },
    Literal {
        value: Literal,
    },
    List {
        items: Vec<Node<Expr>>,
    },
    Not {
        operand: Box<Node<Expr>>,
    },
    IsMissing {
        operand: Box<Node<Expr>>,
        negated: bool,
    },
    Binary {
        op: BinOp,
        left: Box<Node<Expr>>,
        right: Box<Node<Expr>>,
    },
    /// A part that could not be built (already reported); checking skips it.
    Invalid,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "value")]
pub enum Literal {
    Bool(bool),
    Number(Decimal),
    Money {
        amount: Decimal,
        currency: String,
    },
    /// Percent as written: `60%` is `60`.
    Percent(Decimal),
    Date(NaiveDate),
    Days(i64),
    Text(String),
}
