//! Diagnostics: what `collect check` reports, as text for people and JSON for
//! tools. Every diagnostic has a stable code documented in the reference
//! (`policy/README.md`), a one-line message that names the user's value in
//! backticks, and where possible a `help:` line with the fix.

use crate::ast::Span;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

/// Every diagnostic the language can report. The code is stable: it is
/// printed, documented and searched for, so never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Code {
    /// E0001 the text does not follow the grammar.
    Syntax,
    /// E0002 expressions nested too deeply.
    TooDeep,
    /// E0003 a fact that does not exist.
    UnknownFact,
    /// E0004 the two sides of a comparison have different types.
    TypeMismatch,
    /// E0005 money in another currency than the policy's.
    WrongCurrency,
    /// E0006 a condition that is not yes/no.
    NotACondition,
    /// E0007 a segment after `otherwise` can never match.
    UnreachableSegment,
    /// E0008 a segment without a ladder.
    SegmentWithoutLadder,
    /// E0009 a ladder for a segment that does not exist.
    LadderForUnknownSegment,
    /// E0010 two steps of one ladder on the same day.
    DuplicateOffset,
    /// E0011 a template with no template files.
    UnknownTemplate,
    /// E0012 experiment weights that do not add up to 100 %.
    WeightsNot100,
    /// E0013 a percentage or threshold outside its range.
    OutOfRange,
    /// E0014 two segments with the same name.
    DuplicateSegment,
    /// E0015 two holds with the same name.
    DuplicateHold,
    /// E0016 two ladders for the same segment.
    DuplicateLadder,
    /// E0017 a date that does not exist in the calendar.
    InvalidDate,
    /// E0018 a clock time that does not exist.
    InvalidTime,
    /// E0019 more than one `limits` block.
    DuplicateLimits,
    /// E0020 a contact cap that allows nothing or has no window.
    InvalidCap,
    /// E0021 an impossible payment-plan offer.
    InvalidPlan,
    /// E0022 two experiments with the same name.
    DuplicateExperiment,
    /// E0023 two arms of one experiment doing the same thing.
    DuplicateArm,
    /// E0024 arithmetic between values that cannot be added or subtracted.
    InvalidArithmetic,
    /// E0025 `in` without a list on its right.
    InvalidMembership,
    /// E0026 too many steps in a ladder or holds in a policy.
    TooMany,
    /// E0027 the same limit written twice.
    DuplicateLimit,
    /// W0001 a letter sent without a person approving it.
    LetterWithoutApproval,
    /// W0002 no `otherwise` segment.
    NoOtherwise,
    /// W0003 steps not written in date order.
    StepsOutOfOrder,
    /// W0004 `is missing` on a fact that is never missing.
    NeverMissing,
    /// W0005 a ladder with no steps.
    EmptyLadder,
    /// W0006 a currency code that is not a known ISO 4217 code.
    UnknownCurrency,
    /// W0007 holidays listed without `business days only`: they change nothing.
    HolidaysWithoutBusinessDays,
}

impl Code {
    pub const ALL: &'static [Code] = &[
        Code::Syntax,
        Code::TooDeep,
        Code::UnknownFact,
        Code::TypeMismatch,
        Code::WrongCurrency,
        Code::NotACondition,
        Code::UnreachableSegment,
        Code::SegmentWithoutLadder,
        Code::LadderForUnknownSegment,
        Code::DuplicateOffset,
        Code::UnknownTemplate,
        Code::WeightsNot100,
        Code::OutOfRange,
        Code::DuplicateSegment,
        Code::DuplicateHold,
        Code::DuplicateLadder,
        Code::InvalidDate,
        Code::InvalidTime,
        Code::DuplicateLimits,
        Code::InvalidCap,
        Code::InvalidPlan,
        Code::DuplicateExperiment,
        Code::DuplicateArm,
        Code::InvalidArithmetic,
        Code::InvalidMembership,
        Code::TooMany,
        Code::DuplicateLimit,
        Code::LetterWithoutApproval,
        Code::NoOtherwise,
        Code::StepsOutOfOrder,
        Code::NeverMissing,
        Code::EmptyLadder,
        Code::UnknownCurrency,
        Code::HolidaysWithoutBusinessDays,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::Syntax => "E0001",
            Code::TooDeep => "E0002",
            Code::UnknownFact => "E0003",
            Code::TypeMismatch => "E0004",
            Code::WrongCurrency => "E0005",
            Code::NotACondition => "E0006",
            Code::UnreachableSegment => "E0007",
            Code::SegmentWithoutLadder => "E0008",
            Code::LadderForUnknownSegment => "E0009",
            Code::DuplicateOffset => "E0010",
            Code::UnknownTemplate => "E0011",
            Code::WeightsNot100 => "E0012",
            Code::OutOfRange => "E0013",
            Code::DuplicateSegment => "E0014",
            Code::DuplicateHold => "E0015",
            Code::DuplicateLadder => "E0016",
            Code::InvalidDate => "E0017",
            Code::InvalidTime => "E0018",
            Code::DuplicateLimits => "E0019",
            Code::InvalidCap => "E0020",
            Code::InvalidPlan => "E0021",
            Code::DuplicateExperiment => "E0022",
            Code::DuplicateArm => "E0023",
            Code::InvalidArithmetic => "E0024",
            Code::InvalidMembership => "E0025",
            Code::TooMany => "E0026",
            Code::DuplicateLimit => "E0027",
            Code::LetterWithoutApproval => "W0001",
            Code::NoOtherwise => "W0002",
            Code::StepsOutOfOrder => "W0003",
            Code::NeverMissing => "W0004",
            Code::EmptyLadder => "W0005",
            Code::UnknownCurrency => "W0006",
            Code::HolidaysWithoutBusinessDays => "W0007",
        }
    }

    pub fn severity(self) -> Severity {
        if self.as_str().starts_with('W') {
            Severity::Warning
        } else {
            Severity::Error
        }
    }
}

/// One problem found in a policy file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    pub code: &'static str,
    pub severity: Severity,
    pub file: String,
    pub line: u32,
    pub col: u32,
    #[serde(skip)]
    pub span: Span,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(code: Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            code: code.as_str(),
            severity: code.severity(),
            file: String::new(),
            line: span.line,
            col: span.col,
            span,
            message: message.into(),
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:col: error[E0003]: message` on one line, as compilers and
    /// editors print it.
    pub fn headline(&self) -> String {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        format!(
            "{}:{}:{}: {kind}[{}]: {}",
            self.file, self.line, self.col, self.code, self.message
        )
    }
}

/// Renders diagnostics for a person: the headline, the source line with the
/// spot underlined, and the help line.
pub fn render(diagnostics: &[Diagnostic], source: &str, color: bool) -> String {
    use ariadne::{CharSet, Config, IndexType, Label, Report, ReportKind, Source};
    let mut out = Vec::new();
    for d in diagnostics {
        let kind = match d.severity {
            Severity::Error => ReportKind::Error,
            Severity::Warning => ReportKind::Warning,
        };
        let file = d.file.as_str();
        let end = d.span.end.max(d.span.start).min(source.len());
        let start = d.span.start.min(end);
        let mut report = Report::build(kind, (file, start..end))
            .with_config(
                Config::default()
                    .with_color(color)
                    .with_char_set(CharSet::Ascii)
                    .with_index_type(IndexType::Byte),
            )
            .with_code(d.code)
            .with_message(format!("{}:{}:{}: {}", d.file, d.line, d.col, d.message))
            .with_label(Label::new((file, start..end)).with_message(short_label(d)));
        if let Some(help) = &d.help {
            report = report.with_help(help);
        }
        // Writing to a Vec cannot fail; a failure would only lose the picture,
        // and the JSON/headline forms still carry everything.
        let _ = report
            .finish()
            .write((file, Source::from(source)), &mut out);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn short_label(d: &Diagnostic) -> String {
    match d.severity {
        Severity::Error => "here".to_string(),
        Severity::Warning => "this".to_string(),
    }
}

/// The closest candidate by edit distance, when it is close enough to be a
/// plausible typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    // Edit distance relative to length: a slip of a letter or two (or two
    // swapped letters) in a word, not a different word sharing a prefix.
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let score = strsim::normalized_damerau_levenshtein(word, c);
        let close = score >= 0.7 || strsim::damerau_levenshtein(word, c) <= 1;
        if close && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}
