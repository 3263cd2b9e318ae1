//! The type checker of conditions: every fact, operator and constant of a
//! condition, segment rule or hold has the type it needs (money against
//! money in the policy's currency, dates against dates, text against the
//! values a fact can take), with a did-you-mean for a mistyped fact.

use crate::ast::*;
use crate::diagnostic::{Code, Diagnostic, did_you_mean};
use crate::facts::{self, FACTS, Type};
use rust_decimal::Decimal;

use super::Checker;

impl Checker<'_> {
    pub(super) fn condition(&mut self, cond: &Node<Expr>) {
        if let Some(t) = self.ty(cond)
            && t != Type::Bool
        {
            self.report(
                Diagnostic::new(
                    Code::NotACondition,
                    cond.span,
                    format!("this condition is a {}, not a yes/no test", t.describe()),
                )
                .with_help("compare it with something, like `risk >= 60%`"),
            );
        }
    }

    /// The type of an expression; `None` once an error has been reported
    /// inside it, so one mistake is reported once.
    fn ty(&mut self, e: &Node<Expr>) -> Option<Type> {
        match &e.node {
            Expr::Invalid => None,
            Expr::Fact { name } => match facts::lookup(name) {
                Some(f) => Some(f.ty),
                None => {
                    let mut d = Diagnostic::new(
                        Code::UnknownFact,
                        e.span,
                        format!("unknown fact `{name}`"),
                    );
                    d = match did_you_mean(name, FACTS.iter().map(|f| f.name)) {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                        None => d.with_help("see the list of facts in policy/README.md"),
                    };
                    self.report(d);
                    None
                }
            },
            Expr::Literal { value } => Some(match value {
                Literal::Bool(_) => Type::Bool,
                Literal::Number(_) => Type::Number,
                Literal::Money { amount, currency } => {
                    self.money_currency(currency, *amount, e.span);
                    Type::Money
                }
                Literal::Percent(_) => Type::Percent,
                Literal::Date(_) => Type::Date,
                Literal::Days(_) => Type::Days,
                Literal::Text(_) => Type::Text,
            }),
            Expr::List { items } => {
                let mut ok = true;
                for item in items {
                    if !matches!(
                        item.node,
                        Expr::Literal {
                            value: Literal::Text(_)
                        } | Expr::Invalid
                    ) {
                        ok = false;
                        self.report(
                            Diagnostic::new(
                                Code::InvalidMembership,
                                item.span,
                                "list items are written as text in quotes",
                            )
                            .with_help(
                                "put the fact on the left: `customer.country in [\"DE\", \"FR\"]`",
                            ),
                        );
                        continue;
                    }
                    match self.ty(item) {
                        Some(Type::Text) => {}
                        Some(t) => {
                            ok = false;
                            self.report(
                                Diagnostic::new(
                                    Code::InvalidMembership,
                                    item.span,
                                    format!("lists hold text, and this is a {}", t.describe()),
                                )
                                .with_help(
                                    "write list items in double quotes, like `[\"DE\", \"FR\"]`",
                                ),
                            );
                        }
                        None => ok = false,
                    }
                }
                ok.then_some(Type::TextList)
            }
            Expr::Not { operand } => {
                let t = self.ty(operand)?;
                if t != Type::Bool {
                    self.report(
                        Diagnostic::new(
                            Code::NotACondition,
                            operand.span,
                            format!("`not` needs a yes/no test, and this is a {}", t.describe()),
                        )
                        .with_help("put a comparison after `not`, like `not (risk >= 60%)`"),
                    );
                    return None;
                }
                Some(Type::Bool)
            }
            Expr::IsMissing { operand, .. } => {
                self.ty(operand)?;
                if let Expr::Fact { name } = &operand.node
                    && facts::lookup(name).is_some_and(|f| !f.optional)
                {
                    self.report(
                        Diagnostic::new(
                            Code::NeverMissing,
                            e.span,
                            format!("`{name}` is never missing, so this test is always the same"),
                        )
                        .with_help("remove the test, or test a fact that can be missing"),
                    );
                }
                Some(Type::Bool)
            }
            Expr::Binary { op, left, right } => self.binary(*op, left, right, e.span),
        }
    }

    fn binary(
        &mut self,
        op: BinOp,
        left: &Node<Expr>,
        right: &Node<Expr>,
        span: Span,
    ) -> Option<Type> {
        let lt = self.ty(left);
        let rt = self.ty(right);
        let (lt, rt) = (lt?, rt?);
        match op {
            BinOp::And | BinOp::Or => {
                for (t, side) in [(lt, left), (rt, right)] {
                    if t != Type::Bool {
                        self.report(
                            Diagnostic::new(
                                Code::NotACondition,
                                side.span,
                                format!(
                                    "`{}` joins yes/no tests, and this is a {}",
                                    op.symbol(),
                                    t.describe()
                                ),
                            )
                            .with_help(
                                "compare it with something, like `invoice.amount >= 1000 USD`",
                            ),
                        );
                    }
                }
                (lt == Type::Bool && rt == Type::Bool).then_some(Type::Bool)
            }
            BinOp::In => {
                if lt != Type::Text || rt != Type::TextList {
                    self.report(
                        Diagnostic::new(
                            Code::InvalidMembership,
                            span,
                            format!(
                                "`in` tests text against a list, not a {} against a {}",
                                lt.describe(),
                                rt.describe()
                            ),
                        )
                        .with_help("write it like `\"strategic\" in customer.tags` or `customer.country in [\"DE\", \"FR\"]`"),
                    );
                    return None;
                }
                Some(Type::Bool)
            }
            BinOp::Add | BinOp::Sub => {
                let result = match (lt, rt) {
                    (Type::Date, Type::Days) => Some(Type::Date),
                    (Type::Days, Type::Date) if op == BinOp::Add => Some(Type::Date),
                    (a, b)
                        if a == b
                            && matches!(
                                a,
                                Type::Number | Type::Money | Type::Percent | Type::Days
                            ) =>
                    {
                        Some(a)
                    }
                    _ => None,
                };
                if result.is_none() {
                    let help = if lt == Type::Date && rt == Type::Number {
                        "add days to a date with `d`, like `today - 30d`"
                    } else {
                        "you can add days to a date, and add or subtract two values of the same kind"
                    };
                    self.report(
                        Diagnostic::new(
                            Code::InvalidArithmetic,
                            span,
                            format!(
                                "cannot {} a {} and a {}",
                                if op == BinOp::Add { "add" } else { "subtract" },
                                lt.describe(),
                                rt.describe()
                            ),
                        )
                        .with_help(help),
                    );
                }
                result
            }
            _ => self.comparison(op, left, right, lt, rt),
        }
    }

    fn comparison(
        &mut self,
        op: BinOp,
        left: &Node<Expr>,
        right: &Node<Expr>,
        lt: Type,
        rt: Type,
    ) -> Option<Type> {
        if lt != rt {
            let mut d = Diagnostic::new(
                Code::TypeMismatch,
                join_spans(left.span, right.span),
                format!(
                    "`{}` compares a {} with a {}",
                    op.symbol(),
                    lt.describe(),
                    rt.describe()
                ),
            );
            if let Some(help) = mismatch_help(left, right, lt, rt, &self.currency) {
                d = d.with_help(help);
            }
            self.report(d);
            return None;
        }
        let ordered = !matches!(op, BinOp::Eq | BinOp::Ne);
        if lt == Type::TextList {
            self.report(
                Diagnostic::new(
                    Code::TypeMismatch,
                    join_spans(left.span, right.span),
                    format!("`{}` cannot compare lists", op.symbol()),
                )
                .with_help("test membership with `in`, like `\"vip\" in customer.tags`"),
            );
            return None;
        }
        if ordered && matches!(lt, Type::Bool | Type::Text) {
            self.report(
                Diagnostic::new(
                    Code::TypeMismatch,
                    join_spans(left.span, right.span),
                    format!("`{}` cannot order {} values", op.symbol(), lt.describe()),
                )
                .with_help("use `=` or `!=` for yes/no and text"),
            );
            return None;
        }
        // A threshold on a probability must be a probability.
        for (fact, lit) in [(left, right), (right, left)] {
            if let (
                Expr::Fact { name },
                Expr::Literal {
                    value: Literal::Percent(p),
                },
            ) = (&fact.node, &lit.node)
                && (name == "risk" || name == "customer.late_rate")
                && (*p < Decimal::ZERO || *p > Decimal::ONE_HUNDRED)
            {
                self.report(
                    Diagnostic::new(
                        Code::OutOfRange,
                        lit.span,
                        format!(
                            "`{}%` is outside the range of `{name}`, which is 0% to 100%",
                            p.normalize()
                        ),
                    )
                    .with_help(format!("a threshold on `{name}` is between 0% and 100%")),
                );
            }
        }
        Some(Type::Bool)
    }
}

pub(super) fn mismatch_help(
    left: &Node<Expr>,
    right: &Node<Expr>,
    lt: Type,
    rt: Type,
    currency: &str,
) -> Option<String> {
    let number_side = if rt == Type::Number { right } else { left };
    let number = match &number_side.node {
        Expr::Literal {
            value: Literal::Number(n),
        } => Some(*n),
        _ => None,
    };
    match (lt, rt) {
        (Type::Percent, Type::Number) | (Type::Number, Type::Percent) => Some(match number {
            Some(n) if n >= Decimal::ZERO && n <= Decimal::ONE => {
                format!(
                    "percentages are written with `%`: `{}%`",
                    (n * Decimal::ONE_HUNDRED).normalize()
                )
            }
            Some(n) => format!("percentages are written with `%`: `{}%`", n.normalize()),
            None => "percentages are written with `%`, like `60%`".to_string(),
        }),
        (Type::Money, Type::Number) | (Type::Number, Type::Money) => Some(match number {
            Some(n) => format!(
                "amounts carry their currency: `{} {currency}`",
                n.normalize()
            ),
            None => format!("amounts carry their currency, like `1000 {currency}`"),
        }),
        (Type::Date, Type::Text) | (Type::Text, Type::Date) => {
            Some("dates are written without quotes, like `2026-12-01`".to_string())
        }
        (Type::Bool, Type::Text) | (Type::Text, Type::Bool) => {
            Some("yes/no values are written `true` or `false`, without quotes".to_string())
        }
        (Type::Days, Type::Number) | (Type::Number, Type::Days) => {
            Some("day-count facts are plain numbers: compare with `7`, not `7d`".to_string())
        }
        (Type::Text, Type::TextList) | (Type::TextList, Type::Text) => {
            Some("test membership with `in`, like `\"strategic\" in customer.tags`".to_string())
        }
        _ => Some(format!(
            "both sides must be of the same kind: compare a {} with another {}",
            lt.describe(),
            lt.describe()
        )),
    }
}

pub(super) fn join_spans(a: Span, b: Span) -> Span {
    Span {
        start: a.start.min(b.start),
        end: a.end.max(b.end),
        line: a.line,
        col: a.col,
    }
}
