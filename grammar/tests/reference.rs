#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Keeps the reference in `policy/README.md` in step with the language: every
//! fact a policy can name and every diagnostic code `collect check` can
//! report must be documented there.

use policy_lang::diagnostic::Code;
use policy_lang::facts::FACTS;

fn readme() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../policy/README.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

#[test]
fn every_fact_is_documented() {
    let text = readme();
    let missing: Vec<&str> = FACTS
        .iter()
        .map(|f| f.name)
        .filter(|name| !text.contains(&format!("`{name}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "facts not documented in policy/README.md (add a row to the facts table, name in backticks): {missing:?}"
    );
}

#[test]
fn every_fact_has_a_row_in_the_facts_table() {
    let text = readme();
    let missing: Vec<&str> = FACTS
        .iter()
        .map(|f| f.name)
        .filter(|name| !text.contains(&format!("| `{name}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "facts without a row `| `name` | …` in the facts table of policy/README.md: {missing:?}"
    );
}

#[test]
fn every_diagnostic_code_is_documented() {
    let text = readme();
    let missing: Vec<&str> = Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|code| !text.contains(code))
        .collect();
    assert!(
        missing.is_empty(),
        "diagnostic codes not documented in policy/README.md: {missing:?}"
    );
}

#[test]
fn every_diagnostic_code_has_a_heading() {
    let text = readme();
    let headings: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
    let missing: Vec<&str> = Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|code| !headings.iter().any(|h| h.contains(code)))
        .collect();
    assert!(
        missing.is_empty(),
        "diagnostic codes without a heading in policy/README.md: {missing:?}"
    );
}
