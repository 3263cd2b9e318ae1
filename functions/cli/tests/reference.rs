#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Every diagnostic code the code base can emit is documented in the
//! reference (policy/README.md, "Diagnostics"), with a heading of its own.
//!
//! The codes are found where they are emitted: every string literal like
//! `"E0011"`, `"W0003"` or `"T0001"` in the sources of the language and of
//! the functions. A new code is therefore documented or this test fails.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `"X0000"` literal (X one of E, W, T) in a text.
fn codes_in(text: &str, out: &mut BTreeSet<String>) {
    let bytes = text.as_bytes();
    for (i, w) in bytes.windows(7).enumerate() {
        let is_code = w[0] == b'"'
            && matches!(w[1], b'E' | b'W' | b'T')
            && w[2..6].iter().all(u8::is_ascii_digit)
            && w[6] == b'"';
        if is_code {
            out.insert(text[i + 1..i + 6].to_string());
        }
    }
}

fn emitted() -> BTreeSet<String> {
    let mut files = Vec::new();
    for dir in ["grammar/src", "functions"] {
        rust_files(&root().join(dir), &mut files);
    }
    // Tests may quote codes they expect; only product code emits them.
    files.retain(|f| !f.components().any(|c| c.as_os_str() == "tests"));
    let mut codes = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        // Unit tests at the end of a file quote codes too; stop there.
        let product = text.split("mod tests {").next().unwrap_or("");
        codes_in(product, &mut codes);
    }
    codes
}

#[test]
fn every_emitted_code_has_a_heading_in_the_reference() {
    let codes = emitted();
    for expected in [
        "E0001", "E0011", "W0001", "T0001", "T0002", "T0003", "T0004", "T0005",
    ] {
        assert!(
            codes.contains(expected),
            "{expected} not found in {codes:?}"
        );
    }
    let readme = std::fs::read_to_string(root().join("policy/README.md")).unwrap();
    let headings: Vec<&str> = readme.lines().filter(|l| l.starts_with("####")).collect();
    let missing: Vec<&String> = codes
        .iter()
        .filter(|c| !headings.iter().any(|h| h.contains(&format!("`{c}`"))))
        .collect();
    assert!(
        missing.is_empty(),
        "codes the code base emits without a `#### `CODE` …` heading in policy/README.md: {missing:?}"
    );
}

#[test]
fn every_documented_code_is_emitted() {
    let codes = emitted();
    let readme = std::fs::read_to_string(root().join("policy/README.md")).unwrap();
    let mut documented = BTreeSet::new();
    for h in readme.lines().filter(|l| l.starts_with("#### `")) {
        codes_in(&h.replace('`', "\""), &mut documented);
    }
    let stale: Vec<&String> = documented.difference(&codes).collect();
    assert!(
        stale.is_empty(),
        "codes documented in policy/README.md that nothing emits: {stale:?}"
    );
}
