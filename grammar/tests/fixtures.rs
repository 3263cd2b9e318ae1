#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Fixture-driven tests of the parser, the checker and the formatter.
//!
//! Every file under `tests/fixtures/valid/` is a realistic policy that must
//! check without errors and format idempotently; every file under
//! `tests/fixtures/invalid/` holds one deliberate mistake, named after it.
//! The rendered diagnostics (and the formatted text of valid files) are
//! insta snapshots, so any change to a message, a line or a column shows up
//! in review. A meta-test makes sure every diagnostic code has a fixture.

use policy_lang::diagnostic::{Code, render};
use policy_lang::format::{FormatError, format};
use policy_lang::{Diagnostic, check_source};
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

/// Templates that exist for the fixtures: the standard ones under
/// `policy/templates/` plus the ones the valid fixtures use.
const TEMPLATES: &[&str] = &[
    "friendly-reminder",
    "friendly-reminder-short",
    "urgent-notice",
    "urgent-notice-firm",
    "firm-notice",
    "legal-notice",
    "early-heads-up",
    "plan-offer",
    "final-demand",
    "zahlungserinnerung",
    "mahnung",
    "relance-amiable",
];

fn catalog() -> HashSet<String> {
    TEMPLATES.iter().map(|t| (*t).to_string()).collect()
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

/// The fixture's path relative to `tests/fixtures/` (`invalid/foo.policy`),
/// with `/` separators, as it appears in diagnostics. Built from the last
/// two components so that it does not depend on where the checkout lives.
fn display_name(path: &Path) -> String {
    let file = path.file_name().map(|f| f.to_string_lossy().into_owned());
    let dir = path
        .parent()
        .and_then(Path::file_name)
        .map(|d| d.to_string_lossy().into_owned());
    match (dir, file) {
        (Some(dir), Some(file)) => format!("{dir}/{file}"),
        _ => path.display().to_string(),
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn check(path: &Path) -> (String, String, Vec<Diagnostic>) {
    let source = read(path);
    let name = display_name(path);
    let catalog = catalog();
    let (_, diags) = check_source(&source, &name, Some(&catalog));
    (source, name, diags)
}

/// The diagnostics as a person sees them, then one headline per diagnostic.
fn report(diags: &[Diagnostic], source: &str) -> String {
    let mut out = render(diags, source, false);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("--- headlines ---\n");
    if diags.is_empty() {
        out.push_str("(no diagnostics)\n");
    }
    for d in diags {
        out.push_str(&d.headline());
        out.push('\n');
    }
    out
}

fn format_ok(source: &str, name: &str) -> String {
    match format(source) {
        Ok(text) => text,
        Err(FormatError::Syntax(diags)) => panic!(
            "{name}: the formatter reports syntax errors:\n{}",
            report(&diags, source)
        ),
        Err(FormatError::NotEquivalent(why)) => {
            panic!("{name}: the formatter refused its own output: {why}")
        }
    }
}

#[test]
fn valid_fixtures() {
    insta::glob!("fixtures/valid/*.policy", |path| {
        let (source, name, diags) = check(path);
        let errors: Vec<String> = diags
            .iter()
            .filter(|d| d.is_error())
            .map(Diagnostic::headline)
            .collect();
        assert!(
            errors.is_empty(),
            "{name} should check without errors, got:\n{}",
            errors.join("\n")
        );
        insta::assert_snapshot!("valid_diagnostics", report(&diags, &source));

        let formatted = format_ok(&source, &name);
        let again = format_ok(&formatted, &name);
        assert_eq!(
            formatted, again,
            "{name}: formatting the formatted text changed it again"
        );

        // The formatted text checks exactly like the original.
        let catalog = catalog();
        let (_, after) = check_source(&formatted, &name, Some(&catalog));
        let codes = |ds: &[Diagnostic]| ds.iter().map(|d| d.code).collect::<Vec<_>>();
        assert_eq!(
            codes(&diags),
            codes(&after),
            "{name}: the formatted text checks differently"
        );

        insta::assert_snapshot!("valid_formatted", formatted);
    });
}

#[test]
fn invalid_fixtures() {
    insta::glob!("fixtures/invalid/*.policy", |path| {
        let (source, name, diags) = check(path);
        assert!(
            !diags.is_empty(),
            "{name} holds a deliberate mistake but produced no diagnostic"
        );
        for d in &diags {
            assert_eq!(d.file, name, "diagnostics name the file they are about");
            assert!(
                d.span.start <= d.span.end && d.span.end <= source.len(),
                "{name}: span {}..{} is outside the file",
                d.span.start,
                d.span.end
            );
        }
        insta::assert_snapshot!("invalid", report(&diags, &source));
    });
}

/// Every diagnostic code must be shown by at least one invalid fixture, so a
/// new code cannot be added without a fixture that demonstrates it.
#[test]
fn every_code_has_an_invalid_fixture() {
    let dir = fixtures_dir().join("invalid");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "policy"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no invalid fixtures found");

    let mut seen: BTreeSet<&'static str> = BTreeSet::new();
    for path in &paths {
        let (_, _, diags) = check(path);
        seen.extend(diags.iter().map(|d| d.code));
    }
    let missing: Vec<&str> = Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| !seen.contains(c))
        .collect();
    assert!(
        missing.is_empty(),
        "no invalid fixture produces {}; add one under tests/fixtures/invalid/",
        missing.join(", ")
    );
    // And no fixture produces a code that `Code::ALL` does not list.
    let known: HashSet<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
    let unknown: Vec<&&str> = seen.iter().filter(|c| !known.contains(**c)).collect();
    assert!(
        unknown.is_empty(),
        "codes missing from Code::ALL: {unknown:?}"
    );
}
