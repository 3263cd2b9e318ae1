//! The collections policy language.
//!
//! Finance ops write policies as text; this crate reads them (`syntax`),
//! finds every mistake it can before an invoice is touched (`check`), lays
//! them out canonically (`format`), compiles them (`compile`) and evaluates
//! one invoice's facts to a decision (`eval`, the reference), with a trace
//! for auditors (`explain`); `fast` lowers a compiled policy once more to a
//! flat program that decides batches of pre-resolved fact rows. It is pure: no files, no clock, no network — callers pass
//! the text, the list of templates and "today".

pub mod ast;
pub mod check;
pub mod compile;
pub mod diagnostic;
pub mod eval;
pub mod explain;
pub mod facts;
pub mod fast;
pub mod format;
pub mod labels;
pub mod syntax;

pub use check::{PLAN_OFFER_TEMPLATE, TemplateCatalog};
pub use compile::Policy;
pub use diagnostic::{Diagnostic, Severity};
pub use eval::{Contact, Context, DayPlan, Decision, PlannedAction};
pub use facts::{CustomerFacts, Facts, InvoiceFacts};
pub use fast::{FactRow, Program};

/// Parses and checks a policy: its tree when it parses, and every diagnostic
/// (syntax, then static checks), each naming `file_name`.
pub fn check_source(
    source: &str,
    file_name: &str,
    catalog: Option<&dyn TemplateCatalog>,
) -> (Option<ast::PolicyFile>, Vec<Diagnostic>) {
    let (file, mut diags) = syntax::parse(source);
    if let Some(f) = &file {
        // A value the parser already refused (a date not in the calendar,
        // a number too large) is not reported again by the checks of the
        // rule around it: one mistake, one message.
        let refused: Vec<ast::Span> = diags
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.span)
            .collect();
        diags.extend(check::check(f, catalog).into_iter().filter(|d| {
            !refused.iter().any(|r| {
                r.start < d.span.end.max(d.span.start + 1) && d.span.start < r.end.max(r.start + 1)
            })
        }));
    }
    diags.sort_by_key(|d| (d.span.start, d.code));
    for d in &mut diags {
        d.file = file_name.to_string();
    }
    (file, diags)
}

/// Reads a policy for use: the compiled policy and its warnings, or every
/// diagnostic when there is at least one error.
pub fn load(
    source: &str,
    file_name: &str,
    catalog: Option<&dyn TemplateCatalog>,
) -> Result<(Policy, Vec<Diagnostic>), Vec<Diagnostic>> {
    let (file, diags) = check_source(source, file_name, catalog);
    match file {
        Some(f) if !diags.iter().any(Diagnostic::is_error) => {
            Ok((compile::compile(&f, source, file_name), diags))
        }
        _ => Err(diags),
    }
}
