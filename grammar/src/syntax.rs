//! From text to the typed syntax tree: the pest parser, one builder function
//! per grammar rule, human names for grammar rules in syntax errors, and
//! recovery so that one run reports the syntax errors of every item.
//!
//! One piece on purpose (over 800 lines): pairs become the typed tree in
//! one place, one builder function per rule of `collections.pest`, in the
//! grammar's order, so a change to the grammar has exactly one place to
//! change here and a reader can hold the two side by side.

use crate::ast::*;
use crate::diagnostic::{Code, Diagnostic};
use chrono::NaiveDate;
use pest::Parser;
use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};
use rust_decimal::Decimal;
use std::cell::RefCell;
use std::str::FromStr;
use std::sync::LazyLock;

#[derive(pest_derive::Parser)]
#[grammar = "../collections.pest"]
struct PolicyParser;

/// Deepest nesting of parentheses and lists a condition may have.
pub const MAX_NESTING: usize = 32;
/// Most operators one condition may hold; keeps every tree walk shallow.
pub const MAX_OPERATORS: usize = 256;
/// Upper bound on parser work for one file, so hostile input ends quickly.
const CALL_LIMIT: usize = 20_000_000;

static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PrattParser::new()
        .op(Op::infix(Rule::op_or, Assoc::Left))
        .op(Op::infix(Rule::op_and, Assoc::Left))
        .op(Op::prefix(Rule::op_not))
        .op(Op::infix(Rule::op_eq, Assoc::Left)
            | Op::infix(Rule::op_ne, Assoc::Left)
            | Op::infix(Rule::op_lt, Assoc::Left)
            | Op::infix(Rule::op_le, Assoc::Left)
            | Op::infix(Rule::op_gt, Assoc::Left)
            | Op::infix(Rule::op_ge, Assoc::Left)
            | Op::infix(Rule::op_in, Assoc::Left))
        .op(Op::infix(Rule::op_add, Assoc::Left) | Op::infix(Rule::op_sub, Assoc::Left))
        .op(Op::postfix(Rule::op_is_missing) | Op::postfix(Rule::op_is_not_missing))
});

/// Line starts of a source text, to turn byte offsets into line and column.
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(source: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn locate(&self, source: &str, offset: usize) -> (u32, u32) {
        let offset = offset.min(source.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts.get(line - 1).copied().unwrap_or(0);
        let col = source.get(start..offset).map_or(0, |s| s.chars().count()) + 1;
        (line as u32, col as u32)
    }

    pub fn span(&self, source: &str, start: usize, end: usize) -> Span {
        let (line, col) = self.locate(source, start);
        Span {
            start,
            end,
            line,
            col,
        }
    }
}

/// Parses a policy file. Returns the tree when the text follows the grammar
/// (possibly with diagnostics about invalid dates or times inside it), and
/// every syntax error otherwise.
pub fn parse(source: &str) -> (Option<PolicyFile>, Vec<Diagnostic>) {
    let index = LineIndex::new(source);
    if let Some(diag) = nesting_guard(source, &index) {
        return (None, vec![diag]);
    }
    pest::set_call_limit(std::num::NonZeroUsize::new(CALL_LIMIT));
    match PolicyParser::parse(Rule::file, source) {
        Ok(mut pairs) => {
            let builder = Builder {
                src: source,
                index: &index,
                diags: RefCell::new(Vec::new()),
            };
            let file = pairs.next().and_then(|p| builder.file(p));
            let diags = builder.diags.into_inner();
            match file {
                Some(f) => (Some(f), diags),
                None => (None, internal_error(diags, source, &index)),
            }
        }
        Err(err) => (None, recover(source, &index, &err)),
    }
}

fn internal_error(mut diags: Vec<Diagnostic>, source: &str, index: &LineIndex) -> Vec<Diagnostic> {
    if diags.is_empty() {
        diags.push(Diagnostic::new(
            Code::Syntax,
            index.span(source, 0, 0),
            "the policy could not be read",
        ));
    }
    diags
}

/// Refuses text nested deeper than [`MAX_NESTING`] before pest sees it, so
/// no input can exhaust the stack.
fn nesting_guard(source: &str, index: &LineIndex) -> Option<Diagnostic> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut in_comment = false;
    let mut escaped = false;
    for (i, c) in source.char_indices() {
        if in_comment {
            in_comment = c != '\n';
            continue;
        }
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' | '\n' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '#' => in_comment = true,
            '"' => in_string = true,
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(
                        Diagnostic::new(
                            Code::TooDeep,
                            index.span(source, i, i + 1),
                            format!("conditions are nested more than {MAX_NESTING} levels deep"),
                        )
                        .with_help("split the condition into simpler segments or holds"),
                    );
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

// ---------------------------------------------------------------- syntax errors

/// Reports the first syntax error of the file and then, item by item, the
/// first syntax error of every later item, so one run shows them all.
fn recover(source: &str, index: &LineIndex, first: &pest::error::Error<Rule>) -> Vec<Diagnostic> {
    let first_pos = error_offset(first);
    let mut diags = vec![syntax_diagnostic(source, index, first, 0)];
    for (start, end) in item_chunks(source) {
        if end <= first_pos || start <= first_pos {
            continue;
        }
        let Some(chunk) = source.get(start..end) else {
            continue;
        };
        if let Err(err) = PolicyParser::parse(Rule::lone_item, chunk) {
            diags.push(syntax_diagnostic(source, index, &err, start));
        }
    }
    diags
}

fn error_offset(err: &pest::error::Error<Rule>) -> usize {
    match err.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    }
}

/// Byte ranges of top-level items: each starts at a line that begins (in
/// column 1) with an item keyword, together with the doc comments above it.
fn item_chunks(source: &str) -> Vec<(usize, usize)> {
    const KEYWORDS: [&str; 5] = ["policy", "limits", "segment", "hold", "ladder"];
    let mut starts = Vec::new();
    let mut offset = 0;
    let mut doc_start: Option<usize> = None;
    for line in source.split_inclusive('\n') {
        let starts_item = KEYWORDS.iter().any(|k| {
            line.strip_prefix(k).is_some_and(|rest| {
                !rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            })
        });
        if starts_item {
            starts.push(doc_start.unwrap_or(offset));
            doc_start = None;
        } else if line.starts_with("##") {
            doc_start.get_or_insert(offset);
        } else {
            doc_start = None;
        }
        offset += line.len();
    }
    let mut chunks = Vec::new();
    for (i, &s) in starts.iter().enumerate() {
        let e = starts.get(i + 1).copied().unwrap_or(source.len());
        chunks.push((s, e));
    }
    chunks
}

fn syntax_diagnostic(
    source: &str,
    index: &LineIndex,
    err: &pest::error::Error<Rule>,
    base: usize,
) -> Diagnostic {
    let pos = base + error_offset(err);
    let found = found_at(source, pos);
    let span_end = pos + found.as_ref().map_or(0, |f| f.len());
    let span = index.span(source, pos, span_end);
    let found_text = match &found {
        Some(tok) if tok == "end of line" => "the end of the line".to_string(),
        Some(tok) => format!("`{tok}`"),
        None => "the end of the file".to_string(),
    };
    let (message, help) = match &err.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. }
            if positives.contains(&Rule::fact) =>
        {
            let after_eq = pos > 0 && source.get(pos - 1..pos) == Some("=");
            let help = hint(&[], found.as_deref(), after_eq).unwrap_or_else(|| {
                "a condition compares a fact with a value, like `risk >= 60%` or `invoice.amount >= 1000 USD`".to_string()
            });
            (
                format!("expected a fact or a value, found {found_text}"),
                Some(help),
            )
        }
        pest::error::ErrorVariant::ParsingError { positives, .. } => {
            let mut names: Vec<&str> = Vec::new();
            for r in positives {
                let n = describe(*r);
                if !names.contains(&n) {
                    names.push(n);
                }
            }
            let expected = join_or(&names);
            let message = if expected.is_empty() {
                format!("unexpected {found_text}")
            } else {
                format!("expected {expected}, found {found_text}")
            };
            let after_eq = pos > 0 && source.get(pos - 1..pos) == Some("=");
            (message, hint(positives, found.as_deref(), after_eq))
        }
        pest::error::ErrorVariant::CustomError { .. } => {
            return Diagnostic::new(
                Code::TooDeep,
                index.span(source, base, base),
                "the policy is too large or too complex to read",
            )
            .with_help("split long conditions into several segments or holds");
        }
    };
    // A misspelled keyword (`segmnet`, `aproval`): the keywords the grammar
    // accepts here, closest first, beat a generic hint.
    let help = match &err.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => {
            keyword_suggestion(positives, found.as_deref()).or(help)
        }
        pest::error::ErrorVariant::CustomError { .. } => help,
    };
    let d = Diagnostic::new(Code::Syntax, span, message);
    match help {
        Some(h) => d.with_help(h),
        None => d,
    }
}

/// "did you mean `segment`?" when the word found is a slip of one of the
/// keywords the grammar would accept at that position.
fn keyword_suggestion(positives: &[Rule], found: Option<&str>) -> Option<String> {
    let word = found?;
    if !word.starts_with(|c: char| c.is_ascii_alphabetic())
        || !word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return None;
    }
    let mut candidates: Vec<&'static str> = Vec::new();
    for rule in positives {
        for k in keywords(*rule) {
            if !candidates.contains(k) {
                candidates.push(k);
            }
        }
    }
    // A keyword in the wrong place is not a typo of another one.
    if candidates.contains(&word) {
        return None;
    }
    // Keywords are short and few at any position, so two slips in a longer
    // one (`ladr` for `ladder`) are still plainly that keyword.
    let lower = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|k| (strsim::damerau_levenshtein(&lower, k), *k))
        .filter(|(d, k)| *d <= 1 || (*d <= 2 && k.len() >= 5 && lower.len() >= 3))
        .min_by_key(|(d, _)| *d)
        .or_else(|| {
            crate::diagnostic::did_you_mean(&lower, candidates.iter().copied()).map(|k| (0, k))
        })
        .map(|(_, k)| format!("did you mean `{k}`?"))
}

/// The keywords a rule starts with: what a misspelled word at a position
/// where the rule was expected is compared with. Every rule is listed, so a
/// new rule must say whether it starts with a keyword.
fn keywords(rule: Rule) -> &'static [&'static str] {
    match rule {
        Rule::file | Rule::header | Rule::kw_policy => &["policy"],
        Rule::lone_item => &["policy", "limits", "segment", "hold", "ladder"],
        Rule::item => &["limits", "segment", "hold", "ladder"],
        Rule::description | Rule::kw_description => &["description"],
        Rule::control_group | Rule::kw_control => &["control"],
        Rule::kw_group => &["group"],
        Rule::limits | Rule::kw_limits => &["limits"],
        Rule::limit => &["at", "quiet", "business", "holidays"],
        Rule::cap | Rule::kw_at => &["at"],
        Rule::kw_most => &["most"],
        Rule::channel => &[
            "email", "emails", "call", "calls", "letter", "letters", "offer", "offers", "contact",
            "contacts",
        ],
        Rule::quiet_hours | Rule::kw_quiet => &["quiet"],
        Rule::kw_hours => &["hours"],
        Rule::kw_to => &["to"],
        Rule::kw_time => &["time"],
        Rule::business_days | Rule::kw_business => &["business"],
        Rule::kw_days => &["days"],
        Rule::kw_only => &["only"],
        Rule::holidays | Rule::kw_holidays => &["holidays"],
        Rule::segment | Rule::kw_segment => &["segment"],
        Rule::otherwise | Rule::kw_otherwise => &["otherwise"],
        Rule::hold | Rule::kw_hold => &["hold"],
        Rule::condition | Rule::kw_when => &["when"],
        Rule::ladder | Rule::kw_ladder => &["ladder"],
        Rule::step | Rule::offset | Rule::kw_due => &["due"],
        Rule::approval | Rule::kw_requires => &["requires"],
        Rule::kw_approval => &["approval"],
        Rule::action => &["email", "call", "letter", "offer", "experiment"],
        Rule::simple_action => &["email", "call", "letter", "offer"],
        Rule::email | Rule::kw_email => &["email"],
        Rule::call | Rule::kw_call => &["call"],
        Rule::letter | Rule::kw_letter => &["letter"],
        Rule::offer_plan | Rule::kw_offer => &["offer"],
        Rule::kw_plan => &["plan"],
        Rule::kw_installments => &["installments"],
        Rule::kw_every => &["every"],
        Rule::down_payment | Rule::kw_down => &["down"],
        Rule::experiment | Rule::kw_experiment => &["experiment"],
        Rule::no_action | Rule::kw_no => &["no"],
        Rule::kw_action => &["action"],
        Rule::infix => &["or", "and", "in"],
        Rule::op_or => &["or"],
        Rule::op_and => &["and"],
        Rule::prefix | Rule::op_not => &["not"],
        Rule::op_in => &["in"],
        Rule::postfix | Rule::op_is_missing | Rule::op_is_not_missing | Rule::kw_is => &["is"],
        Rule::kw_missing => &["missing"],
        Rule::boolean => &["true", "false"],
        Rule::kw_currency => &["currency"],
        Rule::kw_effective => &["effective"],
        Rule::kw_customer => &["customer"],
        Rule::kw_per => &["per"],
        // Facts are suggested by the checker (E0003), names are the
        // user's own: neither is a keyword.
        Rule::EOI
        | Rule::docs
        | Rule::doc
        | Rule::doc_text
        | Rule::sign
        | Rule::arm
        | Rule::expr
        | Rule::primary
        | Rule::paren
        | Rule::list
        | Rule::op_eq
        | Rule::op_ne
        | Rule::op_le
        | Rule::op_ge
        | Rule::op_lt
        | Rule::op_gt
        | Rule::op_add
        | Rule::op_sub
        | Rule::fact
        | Rule::ident
        | Rule::literal
        | Rule::date
        | Rule::money
        | Rule::percent
        | Rule::duration
        | Rule::number
        | Rule::integer
        | Rule::currency
        | Rule::clock
        | Rule::string
        | Rule::string_inner
        | Rule::name
        | Rule::keyword
        | Rule::WHITESPACE
        | Rule::COMMENT
        | Rule::ident_char => &[],
    }
}

/// The word or symbol at a position, for "found `…`".
fn found_at(source: &str, pos: usize) -> Option<String> {
    let rest = source.get(pos..)?;
    let first = rest.chars().next()?;
    let tok: String = if first.is_alphanumeric() || first == '_' {
        rest.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.' || *c == '%')
            .collect()
    } else if first == '"' {
        // The quoted text, up to its closing quote or the end of the line.
        let inner: String = rest
            .chars()
            .skip(1)
            .take_while(|c| *c != '"' && *c != '\n')
            .take(40)
            .collect();
        let closed = rest.chars().nth(inner.chars().count() + 1) == Some('"');
        format!("\"{inner}{}", if closed { "\"" } else { "" })
    } else if first == '\n' || first == '\r' {
        "end of line".to_string()
    } else {
        first.to_string()
    };
    Some(tok)
}

fn join_or(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// One help line for the most common slips.
fn hint(positives: &[Rule], found: Option<&str>, after_eq: bool) -> Option<String> {
    let wants = |r: Rule| positives.contains(&r);
    if after_eq && found == Some("=") {
        return Some("compare with a single `=`".into());
    }
    if let Some(f) = found
        && f.starts_with(|c: char| c.is_ascii_digit())
        && f.ends_with(|c: char| c.is_ascii_uppercase())
    {
        let digits: String = f
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let cur = f.get(digits.len()..).unwrap_or("");
        return Some(format!(
            "put a space between the amount and its currency: `{digits} {cur}`"
        ));
    }
    if wants(Rule::duration) {
        return Some("durations are a whole number of days followed by `d`, like `7d`".into());
    }
    if (wants(Rule::offset) || wants(Rule::kw_due)) && !wants(Rule::kw_limits) {
        return Some("a step starts with its day: `due`, `due - 3d` or `due + 7d`".into());
    }
    if wants(Rule::kw_policy) || wants(Rule::header) || wants(Rule::file) {
        return Some(
            "a policy file starts with its header: `policy \"standard-net30\" effective 2026-12-01 currency USD`".into(),
        );
    }
    if found == Some("-")
        && (wants(Rule::kw_when)
            || wants(Rule::otherwise)
            || wants(Rule::kw_otherwise)
            || wants(Rule::condition))
    {
        return Some("names use letters, digits and `_` (no `-`), like `high_risk`".into());
    }
    if wants(Rule::name) {
        return Some(
            "names use letters, digits and `_` and cannot be a keyword like `when` or `due`".into(),
        );
    }
    if wants(Rule::string) {
        return Some("put the name in double quotes, like `\"friendly-reminder\"`".into());
    }
    if wants(Rule::currency) {
        return Some("currencies are three capital letters, like `USD`".into());
    }
    if wants(Rule::clock) {
        return Some("times are written `HH:MM` on a 24-hour clock, like `20:00`".into());
    }
    if wants(Rule::kw_segment) || wants(Rule::kw_ladder) {
        return Some("each item starts with `limits`, `segment`, `hold` or `ladder`".into());
    }
    None
}

/// Human names of grammar rules, used in "expected …".
fn describe(rule: Rule) -> &'static str {
    match rule {
        Rule::EOI => "the end of the file",
        Rule::file | Rule::header | Rule::kw_policy => {
            "the policy header `policy \"name\" effective DATE currency CODE`"
        }
        Rule::lone_item | Rule::item => "`limits`, `segment`, `hold` or `ladder`",
        Rule::docs | Rule::doc | Rule::doc_text => "a doc comment `## …`",
        Rule::description | Rule::kw_description => "`description`",
        Rule::control_group | Rule::kw_control => "`control group`",
        Rule::kw_group => "`group`",
        Rule::limits | Rule::kw_limits => "`limits`",
        Rule::limit => "a limit",
        Rule::cap | Rule::kw_at => "`at most`",
        Rule::kw_most => "`most`",
        Rule::channel => "`email`, `call`, `letter`, `offer` or `contact`",
        Rule::quiet_hours | Rule::kw_quiet => "`quiet hours`",
        Rule::kw_hours => "`hours`",
        Rule::kw_to => "`to`",
        Rule::kw_time => "`time`",
        Rule::business_days | Rule::kw_business => "`business days`",
        Rule::kw_days => "`days`",
        Rule::kw_only => "`only`",
        Rule::holidays | Rule::kw_holidays => "`holidays`",
        Rule::segment | Rule::kw_segment => "`segment`",
        Rule::otherwise | Rule::kw_otherwise => "`otherwise`",
        Rule::hold | Rule::kw_hold => "`hold`",
        Rule::condition | Rule::kw_when => "`when`",
        Rule::ladder | Rule::kw_ladder => "`ladder`",
        Rule::step => "a step like `due - 3d email \"friendly-reminder\"`",
        Rule::offset | Rule::kw_due => "`due`",
        Rule::sign => "`+` or `-`",
        Rule::approval | Rule::kw_requires => "`requires approval`",
        Rule::kw_approval => "`approval`",
        Rule::action | Rule::simple_action => {
            "an action (`email`, `call`, `letter`, `offer plan` or `experiment`)"
        }
        Rule::email | Rule::kw_email => "`email`",
        Rule::call | Rule::kw_call => "`call`",
        Rule::letter | Rule::kw_letter => "`letter`",
        Rule::offer_plan | Rule::kw_offer => "`offer plan`",
        Rule::kw_plan => "`plan`",
        Rule::kw_installments => "`installments`",
        Rule::kw_every => "`every`",
        Rule::down_payment | Rule::kw_down => "`down`",
        Rule::experiment | Rule::kw_experiment => "`experiment`",
        Rule::arm => "an arm like `50% email \"friendly-reminder\"`",
        Rule::no_action | Rule::kw_no => "`no action`",
        Rule::kw_action => "`action`",
        Rule::expr | Rule::primary | Rule::prefix => "a condition",
        Rule::infix => "an operator",
        Rule::postfix => "`is missing`",
        Rule::paren => "`(`",
        Rule::list => "a list like `[\"a\", \"b\"]`",
        Rule::op_or => "`or`",
        Rule::op_and => "`and`",
        Rule::op_not => "`not`",
        Rule::op_in => "`in`",
        Rule::op_eq => "`=`",
        Rule::op_ne => "`!=`",
        Rule::op_le => "`<=`",
        Rule::op_ge => "`>=`",
        Rule::op_lt => "`<`",
        Rule::op_gt => "`>`",
        Rule::op_add => "`+`",
        Rule::op_sub => "`-`",
        Rule::op_is_missing | Rule::op_is_not_missing | Rule::kw_is => "`is missing`",
        Rule::kw_missing => "`missing`",
        Rule::fact | Rule::ident => "a fact like `invoice.amount`",
        Rule::literal => "a value",
        Rule::boolean => "`true` or `false`",
        Rule::date => "a date like `2026-12-01`",
        Rule::money => "an amount like `1000 USD`",
        Rule::percent => "a percentage like `60%`",
        Rule::duration => "a number of days like `7d`",
        Rule::number => "a number",
        Rule::integer => "a whole number",
        Rule::currency => "a currency code like `USD`",
        Rule::kw_currency => "`currency`",
        Rule::kw_effective => "`effective`",
        Rule::clock => "a time like `20:00`",
        Rule::string | Rule::string_inner => "text in double quotes",
        Rule::name => "a name like `high_risk`",
        Rule::keyword => "a keyword",
        Rule::kw_customer => "`customer`",
        Rule::kw_per => "`per`",
        Rule::WHITESPACE | Rule::COMMENT | Rule::ident_char => "a space",
    }
}

// ---------------------------------------------------------------- tree building

struct Builder<'s> {
    src: &'s str,
    index: &'s LineIndex,
    diags: RefCell<Vec<Diagnostic>>,
}

impl<'s> Builder<'s> {
    /// The pair's span without the whitespace it may have swallowed at its
    /// end, so underlines stop at the last character of code.
    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let s = pair.as_span();
        let end = s.start() + code_len(s.as_str());
        self.index.span(self.src, s.start(), end.max(s.start()))
    }

    fn report(&self, d: Diagnostic) {
        self.diags.borrow_mut().push(d);
    }

    fn file(&self, pair: Pair<'_, Rule>) -> Option<PolicyFile> {
        let mut header = None;
        let mut items = Vec::new();
        let mut trailing_docs = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::header => header = self.header(p),
                Rule::docs => {
                    let span = self.span(&p);
                    let docs = self.docs(p);
                    if !docs.is_empty() {
                        trailing_docs = Some(Node::new(docs, span));
                    }
                }
                Rule::limits => items.push(Item::Limits(self.limits(p))),
                Rule::segment => items.extend(self.segment(p).map(Item::Segment)),
                Rule::hold => items.extend(self.hold(p).map(Item::Hold)),
                Rule::ladder => items.extend(self.ladder(p).map(Item::Ladder)),
                _ => {}
            }
        }
        Some(PolicyFile {
            header: header?,
            items,
            trailing_docs,
        })
    }

    fn docs(&self, pair: Pair<'_, Rule>) -> Vec<String> {
        pair.into_inner()
            .filter(|d| d.as_rule() == Rule::doc)
            .map(|d| {
                d.as_str()
                    .strip_prefix("##")
                    .unwrap_or("")
                    .trim_end()
                    .to_string()
            })
            .collect()
    }

    fn header(&self, pair: Pair<'_, Rule>) -> Option<Header> {
        let span = self.span(&pair);
        let mut docs = Vec::new();
        let mut name = None;
        let mut effective = None;
        let mut currency = None;
        let mut description = None;
        let mut control_group = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::docs => docs = self.docs(p),
                Rule::string => name = Some(self.string(p)),
                Rule::date => effective = Some(self.date(p)),
                Rule::currency => currency = Some(Node::new(p.as_str().to_string(), self.span(&p))),
                Rule::description => {
                    description = p
                        .into_inner()
                        .find(|q| q.as_rule() == Rule::string)
                        .map(|q| self.string(q))
                }
                Rule::control_group => {
                    control_group = p
                        .into_inner()
                        .find(|q| q.as_rule() == Rule::percent)
                        .map(|q| self.percent(q))
                }
                _ => {}
            }
        }
        Some(Header {
            docs,
            name: name?,
            effective: effective?,
            currency: currency?,
            description,
            control_group,
            span,
        })
    }

    fn string(&self, pair: Pair<'_, Rule>) -> Node<String> {
        let span = self.span(&pair);
        let raw = pair.into_inner().next().map_or("", |p| p.as_str());
        Node::new(unescape(raw), span)
    }

    fn date(&self, pair: Pair<'_, Rule>) -> Node<Option<NaiveDate>> {
        let span = self.span(&pair);
        let text = pair.as_str();
        let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok();
        if date.is_none() {
            self.report(
                Diagnostic::new(
                    Code::InvalidDate,
                    span,
                    format!("`{text}` is not a date in the calendar"),
                )
                .with_help("dates are written YYYY-MM-DD, like `2026-12-01`"),
            );
        }
        Node::new(date, span)
    }

    fn decimal(&self, text: &str, span: Span) -> Decimal {
        match Decimal::from_str(text) {
            Ok(d) => d,
            Err(_) => {
                self.report(Diagnostic::new(
                    Code::OutOfRange,
                    span,
                    format!("`{text}` is too large a number"),
                ));
                Decimal::ZERO
            }
        }
    }

    fn percent(&self, pair: Pair<'_, Rule>) -> Node<Decimal> {
        let span = self.span(&pair);
        let text = pair.as_str().trim_end_matches('%');
        Node::new(self.decimal(text, span), span)
    }

    fn integer(&self, pair: Pair<'_, Rule>) -> Node<u32> {
        let span = self.span(&pair);
        let value = pair.as_str().parse::<u32>().unwrap_or_else(|_| {
            self.report(Diagnostic::new(
                Code::OutOfRange,
                span,
                format!("`{}` is too large a number", pair.as_str()),
            ));
            0
        });
        Node::new(value, span)
    }

    fn duration(&self, pair: Pair<'_, Rule>) -> Node<i64> {
        let span = self.span(&pair);
        let text = pair.as_str().trim_end_matches('d');
        let value = text
            .parse::<i64>()
            .ok()
            .filter(|d| *d <= 36_600)
            .unwrap_or_else(|| {
                self.report(
                    Diagnostic::new(
                        Code::OutOfRange,
                        span,
                        format!("`{}` is more than a century", pair.as_str()),
                    )
                    .with_help("durations are at most `36600d`"),
                );
                0
            });
        Node::new(value, span)
    }

    fn money(&self, pair: Pair<'_, Rule>) -> (Decimal, String) {
        let span = self.span(&pair);
        let mut amount = Decimal::ZERO;
        let mut currency = String::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::number => amount = self.decimal(p.as_str(), span),
                Rule::currency => currency = p.as_str().to_string(),
                _ => {}
            }
        }
        (amount, currency)
    }

    fn clock(&self, pair: Pair<'_, Rule>) -> Option<ClockTime> {
        let span = self.span(&pair);
        let text = pair.as_str();
        let (h, m) = text.split_once(':')?;
        let (hour, minute) = (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
        if hour > 23 || minute > 59 {
            self.report(
                Diagnostic::new(
                    Code::InvalidTime,
                    span,
                    format!("`{text}` is not a time of day"),
                )
                .with_help("times are written `HH:MM` on a 24-hour clock, from `00:00` to `23:59`"),
            );
            return None;
        }
        Some(ClockTime { hour, minute })
    }

    fn limits(&self, pair: Pair<'_, Rule>) -> Limits {
        let span = self.span(&pair);
        let mut docs = Vec::new();
        let mut rules = Vec::new();
        for p in pair.into_inner() {
            let pspan = self.span(&p);
            match p.as_rule() {
                Rule::docs => docs = self.docs(p),
                Rule::cap => {
                    let mut count = 0;
                    let mut channel = Channel::Contact;
                    let mut window_days = 0;
                    for q in p.into_inner() {
                        match q.as_rule() {
                            Rule::integer => count = self.integer(q).node,
                            Rule::channel => channel = parse_channel(q.as_str()),
                            Rule::duration => window_days = self.duration(q).node,
                            _ => {}
                        }
                    }
                    rules.push(Node::new(
                        Limit::Cap {
                            count,
                            channel,
                            window_days,
                        },
                        pspan,
                    ));
                }
                Rule::quiet_hours => {
                    let times: Vec<Option<ClockTime>> = p
                        .into_inner()
                        .filter(|q| q.as_rule() == Rule::clock)
                        .map(|q| self.clock(q))
                        .collect();
                    if let [Some(from), Some(to)] = times.as_slice() {
                        rules.push(Node::new(
                            Limit::QuietHours {
                                from: *from,
                                to: *to,
                            },
                            pspan,
                        ));
                    }
                }
                Rule::business_days => rules.push(Node::new(Limit::BusinessDays, pspan)),
                Rule::holidays => {
                    let days = p
                        .into_inner()
                        .filter(|q| q.as_rule() == Rule::date)
                        .map(|q| self.date(q))
                        .collect();
                    rules.push(Node::new(Limit::Holidays(days), pspan));
                }
                _ => {}
            }
        }
        Limits { docs, rules, span }
    }

    fn segment(&self, pair: Pair<'_, Rule>) -> Option<Segment> {
        let span = self.span(&pair);
        let mut docs = Vec::new();
        let mut name = None;
        let mut condition = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::docs => docs = self.docs(p),
                Rule::name => name = Some(Node::new(p.as_str().to_string(), self.span(&p))),
                Rule::condition => condition = self.condition(p),
                _ => {}
            }
        }
        Some(Segment {
            docs,
            name: name?,
            condition,
            span,
        })
    }

    fn hold(&self, pair: Pair<'_, Rule>) -> Option<Hold> {
        let span = self.span(&pair);
        let mut docs = Vec::new();
        let mut name = None;
        let mut condition = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::docs => docs = self.docs(p),
                Rule::name => name = Some(Node::new(p.as_str().to_string(), self.span(&p))),
                Rule::condition => condition = self.condition(p),
                _ => {}
            }
        }
        Some(Hold {
            docs,
            name: name?,
            condition: condition?,
            span,
        })
    }

    fn condition(&self, pair: Pair<'_, Rule>) -> Option<Node<Expr>> {
        let expr = pair.into_inner().find(|p| p.as_rule() == Rule::expr)?;
        let operators = expr
            .clone()
            .into_inner()
            .flatten()
            .filter(|p| is_operator(p.as_rule()))
            .count();
        if operators > MAX_OPERATORS {
            let span = self.span(&expr);
            self.report(
                Diagnostic::new(
                    Code::TooDeep,
                    span,
                    format!("this condition has {operators} operators, more than the {MAX_OPERATORS} allowed"),
                )
                .with_help("split the condition into simpler segments or holds"),
            );
            return Some(Node::new(Expr::Invalid, span));
        }
        Some(self.expr(expr))
    }

    fn ladder(&self, pair: Pair<'_, Rule>) -> Option<Ladder> {
        let span = self.span(&pair);
        let mut docs = Vec::new();
        let mut segment = None;
        let mut steps = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::docs => docs = self.docs(p),
                Rule::name => segment = Some(Node::new(p.as_str().to_string(), self.span(&p))),
                Rule::step => steps.extend(self.step(p)),
                _ => {}
            }
        }
        Some(Ladder {
            docs,
            segment: segment?,
            steps,
            span,
        })
    }

    fn step(&self, pair: Pair<'_, Rule>) -> Option<Step> {
        let span = self.span(&pair);
        let mut docs = Vec::new();
        let mut offset = None;
        let mut action = None;
        let mut condition = None;
        let mut requires_approval = false;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::docs => docs = self.docs(p),
                Rule::offset => offset = Some(self.offset(p)),
                Rule::condition => condition = self.condition(p),
                Rule::approval => requires_approval = true,
                _ => action = action.or_else(|| self.action(p)),
            }
        }
        Some(Step {
            docs,
            offset: offset?,
            action: action?,
            condition,
            requires_approval,
            span,
        })
    }

    fn offset(&self, pair: Pair<'_, Rule>) -> Node<i64> {
        let span = self.span(&pair);
        let mut negative = false;
        let mut days = 0;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::sign => negative = p.as_str() == "-",
                Rule::duration => days = self.duration(p).node,
                _ => {}
            }
        }
        Node::new(if negative { -days } else { days }, span)
    }

    fn action(&self, pair: Pair<'_, Rule>) -> Option<Node<Action>> {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner();
        let action = match rule {
            Rule::email | Rule::call | Rule::letter => {
                let s = self.string(inner.find(|p| p.as_rule() == Rule::string)?);
                match rule {
                    Rule::email => Action::Email { template: s },
                    Rule::call => Action::Call { queue: s },
                    _ => Action::Letter { template: s },
                }
            }
            Rule::offer_plan => {
                let mut installments = None;
                let mut every_days = None;
                let mut down = None;
                for p in inner {
                    match p.as_rule() {
                        Rule::integer => installments = Some(self.integer(p)),
                        Rule::duration => every_days = Some(self.duration(p)),
                        Rule::down_payment => down = self.down_payment(p),
                        _ => {}
                    }
                }
                Action::OfferPlan(PlanOffer {
                    installments: installments?,
                    every_days: every_days?,
                    down,
                })
            }
            Rule::experiment => {
                let mut name = None;
                let mut arms = Vec::new();
                for p in inner {
                    match p.as_rule() {
                        Rule::string => name = Some(self.string(p)),
                        Rule::arm => arms.extend(self.arm(p)),
                        _ => {}
                    }
                }
                Action::Experiment(Experiment { name: name?, arms })
            }
            _ => return None,
        };
        Some(Node::new(action, span))
    }

    fn down_payment(&self, pair: Pair<'_, Rule>) -> Option<Node<DownPayment>> {
        let span = self.span(&pair);
        let p = pair
            .into_inner()
            .find(|p| matches!(p.as_rule(), Rule::money | Rule::percent))?;
        let down = if p.as_rule() == Rule::money {
            let (amount, currency) = self.money(p);
            DownPayment::Money { amount, currency }
        } else {
            DownPayment::Percent(self.percent(p).node)
        };
        Some(Node::new(down, span))
    }

    fn arm(&self, pair: Pair<'_, Rule>) -> Option<Arm> {
        let span = self.span(&pair);
        let mut weight = None;
        let mut action = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::percent => weight = Some(self.percent(p)),
                Rule::no_action => {}
                _ => action = self.action(p),
            }
        }
        Some(Arm {
            weight: weight?,
            action,
            span,
        })
    }

    // ------------------------------------------------------------ expressions

    fn expr(&self, pair: Pair<'_, Rule>) -> Node<Expr> {
        self.expr_pairs(pair.into_inner())
    }

    fn expr_pairs(&self, pairs: Pairs<'_, Rule>) -> Node<Expr> {
        PRATT
            .map_primary(|p| self.primary(p))
            .map_prefix(|op, operand| {
                let span = join(self.span(&op), operand.span);
                Node::new(
                    Expr::Not {
                        operand: Box::new(operand),
                    },
                    span,
                )
            })
            .map_postfix(|operand, op| {
                let span = join(operand.span, self.span(&op));
                let negated = op.as_rule() == Rule::op_is_not_missing;
                Node::new(
                    Expr::IsMissing {
                        operand: Box::new(operand),
                        negated,
                    },
                    span,
                )
            })
            .map_infix(|left, op, right| {
                let op = match op.as_rule() {
                    Rule::op_or => BinOp::Or,
                    Rule::op_and => BinOp::And,
                    Rule::op_eq => BinOp::Eq,
                    Rule::op_ne => BinOp::Ne,
                    Rule::op_lt => BinOp::Lt,
                    Rule::op_le => BinOp::Le,
                    Rule::op_gt => BinOp::Gt,
                    Rule::op_ge => BinOp::Ge,
                    Rule::op_in => BinOp::In,
                    Rule::op_add => BinOp::Add,
                    _ => BinOp::Sub,
                };
                let span = join(left.span, right.span);
                Node::new(
                    Expr::Binary {
                        op,
                        left: Box::new(left),
                        right: Box::new(right),
                    },
                    span,
                )
            })
            .parse(pairs)
    }

    fn primary(&self, pair: Pair<'_, Rule>) -> Node<Expr> {
        let span = self.span(&pair);
        let expr = match pair.as_rule() {
            Rule::paren => match pair.into_inner().find(|p| p.as_rule() == Rule::expr) {
                Some(e) => return self.expr(e).with_span(span),
                None => Expr::Invalid,
            },
            Rule::list => Expr::List {
                items: pair
                    .into_inner()
                    .filter(|p| p.as_rule() == Rule::expr)
                    .map(|p| self.expr(p))
                    .collect(),
            },
            Rule::fact => Expr::Fact {
                name: pair.as_str().to_string(),
            },
            Rule::boolean => Expr::Literal {
                value: Literal::Bool(pair.as_str() == "true"),
            },
            Rule::date => match self.date(pair).node {
                Some(d) => Expr::Literal {
                    value: Literal::Date(d),
                },
                None => Expr::Invalid,
            },
            Rule::money => {
                let (amount, currency) = self.money(pair);
                Expr::Literal {
                    value: Literal::Money { amount, currency },
                }
            }
            Rule::percent => Expr::Literal {
                value: Literal::Percent(self.percent(pair).node),
            },
            Rule::duration => Expr::Literal {
                value: Literal::Days(self.duration(pair).node),
            },
            Rule::number => Expr::Literal {
                value: Literal::Number(self.decimal(pair.as_str(), span)),
            },
            Rule::string => Expr::Literal {
                value: Literal::Text(self.string(pair).node),
            },
            _ => Expr::Invalid,
        };
        Node::new(expr, span)
    }
}

impl<T> Node<T> {
    fn with_span(mut self, span: Span) -> Self {
        self.span = span;
        self
    }
}

/// The length of `text` without the spaces and `#` comments at its end: a
/// rule's span from pest includes the trivia skipped after its last token.
fn code_len(text: &str) -> usize {
    let mut t = text.trim_end();
    loop {
        let line_start = t.rfind('\n').map_or(0, |i| i + 1);
        let line = t.get(line_start..).unwrap_or("");
        match comment_start(line) {
            Some(p) => t = t.get(..line_start + p).unwrap_or("").trim_end(),
            None => return t.len(),
        }
    }
}

/// Where a `#` comment (not a `##` doc comment) starts on a line, outside strings.
pub(crate) fn comment_start(line: &str) -> Option<usize> {
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if c == '#' {
            return (!line.get(i..).is_some_and(|r| r.starts_with("##"))).then_some(i);
        }
    }
    None
}

fn join(a: Span, b: Span) -> Span {
    Span {
        start: a.start.min(b.start),
        end: a.end.max(b.end),
        line: a.line,
        col: a.col,
    }
}

fn is_operator(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::op_or
            | Rule::op_and
            | Rule::op_not
            | Rule::op_in
            | Rule::op_eq
            | Rule::op_ne
            | Rule::op_le
            | Rule::op_ge
            | Rule::op_lt
            | Rule::op_gt
            | Rule::op_add
            | Rule::op_sub
            | Rule::op_is_missing
            | Rule::op_is_not_missing
    )
}

fn parse_channel(text: &str) -> Channel {
    match text.trim_end_matches('s') {
        "email" => Channel::Email,
        "call" => Channel::Call,
        "letter" => Channel::Letter,
        "offer" => Channel::Offer,
        _ => Channel::Contact,
    }
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Quotes a string the way the grammar reads it back.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// True when `text` parses as one complete policy file; used by tests.
pub fn is_valid_syntax(text: &str) -> bool {
    PolicyParser::parse(Rule::file, text).is_ok()
}
