#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Fixture-driven tests of what `collect check` and `collect test` say about
//! the files beside a policy: its message templates and its test cases.
//!
//! Every folder under `tests/fixtures/diagnostics/` is a small policy folder
//! with one deliberate mistake, named after it: `template_*` folders are
//! checked (`collect check`), `test_*` folders are tested (`collect test`).
//! What the command prints is an insta snapshot, so a change to a message,
//! a line, a column or a suggestion shows up in review. Adding a case is
//! adding a folder. (The policy language's own diagnostics have their
//! fixtures in `grammar/tests/fixtures/`.)

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/diagnostics")
}

/// Runs `collect ARGS FOLDER` from the fixtures folder, so paths print as
/// `template_x/templates/…`, wherever the checkout lives.
fn run(args: &[&str], folder: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_collect"))
        .args(args)
        .arg(folder)
        .current_dir(fixtures())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn folders(prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no `{prefix}*` fixture folders");
    out
}

/// Output lines that change from run to run or machine to machine.
fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(r"bundle revision [0-9a-f]{64}", "bundle revision [hash]");
    s.add_filter(r"· git .*", "· git [revision]");
    s.set_prepend_module_to_snapshot(false);
    s
}

#[test]
fn template_fixtures() {
    for folder in folders("template_") {
        let text = run(&["check"], &folder);
        assert!(
            text.starts_with("exit Some(1)"),
            "{folder} holds a mistake but check passed:\n{text}"
        );
        settings().bind(|| insta::assert_snapshot!(folder.clone(), text));
    }
}

#[test]
fn test_case_fixtures() {
    for folder in folders("test_") {
        let text = run(&["test"], &folder);
        assert!(
            text.starts_with("exit Some(1)"),
            "{folder} holds a mistake but its tests passed:\n{text}"
        );
        settings().bind(|| insta::assert_snapshot!(folder.clone(), text));
    }
}
