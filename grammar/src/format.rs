//! `collect fmt`: one canonical layout for every policy.
//!
//! The grammar drops `#` comments, so a separate token pass collects them
//! (the trivia) and the printer puts each one back next to the code it stood
//! beside. The formatter then proves itself: it parses its own output and
//! refuses to return it unless the tree and the comments are unchanged.

use crate::ast::*;
use crate::diagnostic::Diagnostic;
use crate::labels::{action_source, offset_text};
use crate::syntax::{LineIndex, comment_start, parse, quote};

#[derive(Debug)]
pub enum FormatError {
    /// The file does not parse; format only what parses.
    Syntax(Vec<Diagnostic>),
    /// The formatter's output would change the policy's meaning or lose a
    /// comment. A bug in the formatter; the file is left as it was.
    NotEquivalent(String),
}

/// A `#` comment found by the token pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Comment {
    pub line: u32,
    pub text: String,
    /// Nothing but spaces before it on its line.
    pub own_line: bool,
}

/// Collects `#` comments (not `##` doc comments, which are part of the tree).
pub fn comments(source: &str) -> Vec<Comment> {
    source
        .lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let pos = comment_start(line)?;
            Some(Comment {
                line: i as u32 + 1,
                text: line.get(pos..).unwrap_or("").trim_end().to_string(),
                own_line: line.get(..pos).is_some_and(|p| p.trim().is_empty()),
            })
        })
        .collect()
}

struct Line {
    /// The source line the printed line came from.
    tag: Option<u32>,
    /// The last source line of the node it prints (a condition may span
    /// several lines).
    end: u32,
    /// A `##` doc line: nothing may be appended to it.
    doc: bool,
    indent: usize,
    text: String,
}

struct Printer<'s> {
    lines: Vec<Line>,
    src: &'s str,
    index: LineIndex,
}

impl Printer<'_> {
    fn push(&mut self, tag: u32, indent: usize, text: String) {
        self.lines.push(Line {
            tag: Some(tag),
            end: tag,
            doc: false,
            indent,
            text,
        });
    }

    /// A printed line for a node that may span several source lines.
    fn push_node(&mut self, tag: u32, span: Span, indent: usize, text: String) {
        let end = self.end_line(span).max(tag);
        self.lines.push(Line {
            tag: Some(tag),
            end,
            doc: false,
            indent,
            text,
        });
    }

    fn end_line(&self, span: Span) -> u32 {
        self.index
            .locate(self.src, span.end.saturating_sub(1).max(span.start))
            .0
    }

    fn blank(&mut self) {
        if self.lines.last().is_some_and(|l| !l.text.is_empty()) {
            self.lines.push(Line {
                tag: None,
                end: 0,
                doc: false,
                indent: 0,
                text: String::new(),
            });
        }
    }

    fn docs(&mut self, docs: &[String], line: u32, indent: usize) {
        for (k, d) in docs.iter().enumerate() {
            self.push(line + k as u32, indent, format!("##{d}"));
            if let Some(last) = self.lines.last_mut() {
                last.doc = true;
            }
        }
    }

    /// The first line of a node that holds code: past its doc comments and
    /// any comment or blank line between them and the keyword.
    fn code_line(&self, span: Span) -> u32 {
        let mut line = span.line;
        for text in self.src.get(span.start..span.end).unwrap_or("").lines() {
            let t = text.trim_start();
            if !(t.is_empty() || t.starts_with('#')) {
                break;
            }
            line += 1;
        }
        line
    }
}

/// Formats a policy in the canonical layout, keeping every comment.
pub fn format(source: &str) -> Result<String, FormatError> {
    let (file, diags) = parse(source);
    let Some(file) = file else {
        return Err(FormatError::Syntax(diags));
    };
    if diags.iter().any(Diagnostic::is_error) {
        return Err(FormatError::Syntax(diags));
    }
    let trivia = comments(source);
    let out = print(&file, &trivia, source);
    let (again, _) = parse(&out);
    let kept: Vec<String> = comments(&out).into_iter().map(|c| c.text).collect();
    let had: Vec<String> = trivia.iter().map(|c| c.text.clone()).collect();
    match again {
        Some(f) if f == file && kept == had => Ok(out),
        Some(f) if f == file => {
            let first = had
                .iter()
                .zip(kept.iter().chain(std::iter::repeat(&String::new())))
                .find(|(a, b)| a != b)
                .map_or_else(String::new, |(a, _)| a.clone());
            Err(FormatError::NotEquivalent(format!(
                "the formatted text would lose or reorder the comment `{first}`"
            )))
        }
        Some(_) => Err(FormatError::NotEquivalent(
            "the formatted text would not mean the same as the original".into(),
        )),
        None => Err(FormatError::NotEquivalent(
            "the formatted text would not parse".into(),
        )),
    }
}

fn print(file: &PolicyFile, trivia: &[Comment], source: &str) -> String {
    let mut p = Printer {
        lines: Vec::new(),
        src: source,
        index: LineIndex::new(source),
    };
    header(&mut p, &file.header);
    let mut prev: Option<&Item> = None;
    for item in &file.items {
        let compact = match (prev, item) {
            (Some(Item::Segment(_)), Item::Segment(s)) => s.docs.is_empty(),
            (Some(Item::Hold(_)), Item::Hold(h)) => h.docs.is_empty(),
            _ => false,
        };
        if !compact {
            p.blank();
        }
        match item {
            Item::Limits(l) => limits(&mut p, l),
            Item::Segment(s) => {
                p.docs(&s.docs, s.span.line, 0);
                let text = match &s.condition {
                    Some(c) => format!("segment {} when {}", s.name.node, expr(&c.node)),
                    None => format!("segment {} otherwise", s.name.node),
                };
                p.push_node(p.code_line(s.span), s.span, 0, text);
            }
            Item::Hold(h) => {
                p.docs(&h.docs, h.span.line, 0);
                p.push_node(
                    p.code_line(h.span),
                    h.span,
                    0,
                    format!("hold {} when {}", h.name.node, expr(&h.condition.node)),
                );
            }
            Item::Ladder(l) => ladder(&mut p, l),
        }
        prev = Some(item);
    }
    if let Some(docs) = &file.trailing_docs {
        p.blank();
        p.docs(&docs.node, docs.span.line, 0);
    }
    weave(p.lines, trivia)
}

/// Puts the comments back: own-line comments before the first line that
/// came from a later source line, end-of-line comments after the last line
/// that came from their line or an earlier one.
fn weave(lines: Vec<Line>, trivia: &[Comment]) -> String {
    // Every comment gets a slot: own-line before printed line `i` is slot
    // `2i`, at the end of line `i` is slot `2i + 1`. Slots never decrease in
    // source order, so the comments come out in the order they were written.
    let n = lines.len();
    let mut before: Vec<Vec<&Comment>> = (0..=n).map(|_| Vec::new()).collect();
    let mut trailing: Vec<Option<&Comment>> = (0..=n).map(|_| None).collect();
    let mut floor = 0usize;
    for c in trivia {
        let wanted = if c.own_line {
            // Inside a node printed on one line: before that line; else
            // before the first line printed from later source.
            let at = lines
                .iter()
                .position(|l| l.tag.is_some_and(|t| t < c.line && c.line <= l.end))
                .or_else(|| lines.iter().position(|l| l.tag.is_some_and(|t| t > c.line)))
                .unwrap_or(n);
            2 * at
        } else {
            match lines
                .iter()
                .rposition(|l| !l.doc && l.tag.is_some_and(|t| t <= c.line))
            {
                Some(at) => 2 * at + 1,
                None => {
                    2 * lines
                        .iter()
                        .position(|l| l.tag.is_some_and(|t| t > c.line))
                        .unwrap_or(n)
                }
            }
        };
        let mut slot = wanted.max(floor);
        if slot % 2 == 1
            && (c.own_line
                || lines
                    .get(slot / 2)
                    .is_none_or(|l| l.doc || l.text.is_empty()))
        {
            slot += 1;
        }
        let i = slot / 2;
        if slot % 2 == 1 {
            if let Some(prev) = trailing.get_mut(i).and_then(Option::take)
                && let Some(b) = before.get_mut(i)
            {
                b.push(prev);
            }
            if let Some(t) = trailing.get_mut(i) {
                *t = Some(c);
            }
        } else if let Some(b) = before.get_mut(i) {
            b.push(c);
        }
        floor = slot;
    }
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        for c in before.get(i).into_iter().flatten() {
            out.push_str(&" ".repeat(line.indent));
            out.push_str(&c.text);
            out.push('\n');
        }
        if !line.text.is_empty() {
            out.push_str(&" ".repeat(line.indent));
            out.push_str(&line.text);
        }
        if let Some(c) = trailing.get(i).copied().flatten() {
            out.push_str("  ");
            out.push_str(&c.text);
        }
        out.push('\n');
    }
    for c in before.get(n).into_iter().flatten() {
        out.push_str(&c.text);
        out.push('\n');
    }
    out
}

fn header(p: &mut Printer<'_>, h: &Header) {
    p.docs(&h.docs, h.span.line, 0);
    p.push(
        p.code_line(h.span),
        0,
        format!("policy {}", quote(&h.name.node)),
    );
    let date = h.effective.node.map_or_else(String::new, |d| d.to_string());
    p.push(h.effective.span.line, 2, format!("effective {date}"));
    p.push(
        h.currency.span.line,
        2,
        format!("currency {}", h.currency.node),
    );
    if let Some(d) = &h.description {
        p.push(d.span.line, 2, format!("description {}", quote(&d.node)));
    }
    if let Some(c) = &h.control_group {
        p.push(c.span.line, 2, format!("control group {}%", c.node));
    }
}

fn limits(p: &mut Printer<'_>, l: &Limits) {
    p.docs(&l.docs, l.span.line, 0);
    p.push(p.code_line(l.span), 0, "limits".to_string());
    for r in &l.rules {
        let text = match &r.node {
            Limit::Cap {
                count,
                channel,
                window_days,
            } => format!(
                "at most {count} {} per customer per {window_days}d",
                if *count == 1 {
                    channel.as_str()
                } else {
                    channel.plural()
                }
            ),
            Limit::QuietHours { from, to } => format!("quiet hours {from} to {to} customer time"),
            Limit::BusinessDays => "business days only".to_string(),
            Limit::Holidays(days) => {
                let ds: Vec<String> = days
                    .iter()
                    .filter_map(|d| d.node)
                    .map(|d| d.to_string())
                    .collect();
                format!("holidays {}", ds.join(" "))
            }
        };
        p.push_node(r.span.line, r.span, 2, text);
    }
}

fn ladder(p: &mut Printer<'_>, l: &Ladder) {
    p.docs(&l.docs, l.span.line, 0);
    p.push(p.code_line(l.span), 0, format!("ladder {}", l.segment.node));
    let width = l
        .steps
        .iter()
        .map(|s| offset_text(s.offset.node).len())
        .max()
        .unwrap_or(0);
    for s in &l.steps {
        p.docs(&s.docs, s.span.line, 2);
        let off = offset_text(s.offset.node);
        let pad = width + 2;
        let mut tail = String::new();
        if let Some(c) = &s.condition {
            tail.push_str(&format!(" when {}", expr(&c.node)));
        }
        if s.requires_approval {
            tail.push_str(" requires approval");
        }
        match &s.action.node {
            Action::Experiment(e) => {
                p.push(
                    s.offset.span.line,
                    2,
                    format!("{off:<pad$}experiment {} {{", quote(&e.name.node)),
                );
                let n = e.arms.len();
                for (i, arm) in e.arms.iter().enumerate() {
                    let what = arm
                        .action
                        .as_ref()
                        .map_or_else(|| "no action".to_string(), |a| action_source(&a.node));
                    let comma = if i + 1 < n { "," } else { "" };
                    p.push(
                        arm.span.line,
                        2 + pad + 2,
                        format!("{}% {what}{comma}", arm.weight.node),
                    );
                }
                p.lines.push(Line {
                    tag: None,
                    end: 0,
                    doc: false,
                    indent: 2 + pad,
                    text: format!("}}{tail}"),
                });
            }
            a => p.push_node(
                s.offset.span.line,
                s.span,
                2,
                format!("{off:<pad$}{}{tail}", action_source(a)),
            ),
        }
    }
}

const ATOM: u8 = 7;

fn precedence(e: &Expr) -> u8 {
    match e {
        Expr::Binary { op, .. } => op.precedence(),
        Expr::Not { .. } => 3,
        Expr::IsMissing { .. } => 6,
        _ => ATOM,
    }
}

/// Prints an expression with only the parentheses its meaning needs.
pub fn expr(e: &Expr) -> String {
    match e {
        Expr::Fact { name } => name.clone(),
        Expr::Literal { value } => literal(value),
        Expr::List { items } => {
            let parts: Vec<String> = items.iter().map(|i| expr(&i.node)).collect();
            format!("[{}]", parts.join(", "))
        }
        Expr::Not { operand } => format!("not {}", child(&operand.node, 3)),
        Expr::IsMissing { operand, negated } => format!(
            "{} is {}missing",
            child(&operand.node, ATOM),
            if *negated { "not " } else { "" }
        ),
        Expr::Binary { op, left, right } => {
            let prec = op.precedence();
            format!(
                "{} {} {}",
                child(&left.node, prec),
                op.symbol(),
                child(&right.node, prec + 1)
            )
        }
        Expr::Invalid => "?".to_string(),
    }
}

fn child(e: &Expr, min: u8) -> String {
    if precedence(e) < min {
        format!("({})", expr(e))
    } else {
        expr(e)
    }
}

fn literal(l: &Literal) -> String {
    match l {
        Literal::Bool(b) => b.to_string(),
        Literal::Number(n) => n.to_string(),
        Literal::Money { amount, currency } => format!("{amount} {currency}"),
        Literal::Percent(p) => format!("{p}%"),
        Literal::Date(d) => d.to_string(),
        Literal::Days(d) => format!("{d}d"),
        Literal::Text(t) => quote(t),
    }
}
