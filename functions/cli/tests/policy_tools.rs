#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! End-to-end tests of the policy tools: `collect check`, `fmt`, `test` and
//! `explain`, run as a finance person or CI would run them, from the
//! workspace root.

use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::Temp;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const STANDARD_POLICY: &str = "policy/standard-net30.policy";

/// Runs `collect` with `args` from the workspace root.
fn collect(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_collect"))
        .args(args)
        .current_dir(ROOT)
        .env("NO_COLOR", "1")
        // The tests' books are dated 2027: the clock of the future-date guard.
        .env("COLLECT_TODAY", "2027-12-31")
        .output()
        .expect("run collect")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Everything the command printed, for failure messages.
fn show(out: &Output) -> String {
    format!(
        "exit: {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    )
}

/// What these tests do with a policy folder.
trait PolicyFolder {
    /// Creates the template files for `name` beside the policies.
    fn template(&self, name: &str);
    fn arg(&self) -> String;
}

impl PolicyFolder for Temp {
    fn template(&self, name: &str) {
        for file in ["subject.txt", "body.txt", "body.html"] {
            self.write(
                &format!("templates/{name}/en/{file}"),
                "{{ customer.name }}",
            );
        }
    }

    fn arg(&self) -> String {
        self.path().display().to_string()
    }
}

/// A policy with only a warning: a letter that no person approves.
const WARNING_ONLY_POLICY: &str = r#"policy "warn"
  effective 2026-12-01
  currency USD

segment everyone otherwise

ladder everyone
  due        email "reminder"
  due + 30d  letter "final"
"#;

/// A small, clean policy for case files.
const SMALL_POLICY: &str = r#"policy "small"
  effective 2026-12-01
  currency USD

segment everyone otherwise

ladder everyone
  due        email "reminder"
  due + 30d  letter "final" requires approval
"#;

fn small_policy_folder(label: &str) -> Temp {
    let dir = Temp::new(label);
    dir.write("small.policy", SMALL_POLICY);
    dir.template("reminder");
    dir.template("final");
    dir
}

// ---------------------------------------------------------------- the standard policy

#[test]
fn check_passes_on_the_standard_policy() {
    let out = collect(&["check", "policy/"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        stdout(&out).contains("0 error(s), 0 warning(s)"),
        "{}",
        show(&out)
    );
}

#[test]
fn the_standard_policy_is_formatted() {
    let out = collect(&["fmt", "--check", "policy/"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(!stdout(&out).contains("not formatted"), "{}", show(&out));
}

#[test]
fn the_standard_policy_tests_pass() {
    let out = collect(&["test", "policy/"]);
    assert!(out.status.success(), "{}", show(&out));
    let text = stdout(&out);
    let last = text.lines().last().unwrap_or_default();
    let (passed, rest) = last
        .split_once(" passed, ")
        .unwrap_or_else(|| panic!("last line is not a summary: `{last}`\n{}", show(&out)));
    let passed: usize = passed.parse().unwrap();
    assert_eq!(rest, "0 failed", "{}", show(&out));
    assert!(passed >= 20, "only {passed} cases ran\n{}", show(&out));
    assert!(!text.contains("FAIL"), "{}", show(&out));
}

#[test]
fn the_standard_policy_tests_report_json() {
    let out = collect(&["test", "--format", "json", "policy/"]);
    assert!(out.status.success(), "{}", show(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["failed"], 0, "{}", show(&out));
    assert_eq!(json["broken_files"], 0, "{}", show(&out));
    assert!(json["passed"].as_u64().unwrap() >= 20, "{}", show(&out));
    let cases = json["cases"].as_array().unwrap();
    assert!(cases.iter().all(|c| c["passed"] == true), "{}", show(&out));
    assert!(
        cases.iter().all(|c| c["file"]
            .as_str()
            .unwrap()
            .ends_with("standard-net30.tests.toml")),
        "{}",
        show(&out)
    );
}

// ---------------------------------------------------------------- check

#[test]
fn check_json_reports_every_error_with_code_file_line_and_col() {
    let dir = Temp::new("check-json");
    dir.template("reminder");
    let policy = dir.write(
        "bad.policy",
        r#"policy "bad"
  effective 2026-12-01
  currency USD

segment big when customer.anual_revenue >= 1000 USD
segment rest when risk >= 50 EUR
segment everyone otherwise

ladder big
  due email "reminder"
ladder rest
  due email "reminder"
ladder everyone
  due email "remindr"
"#,
    );
    let out = collect(&["check", "--format", "json", &dir.arg()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON: {e}\n{}", show(&out)));
    assert_eq!(json["errors"], 4, "{}", show(&out));
    assert_eq!(json["warnings"], 0, "{}", show(&out));
    let file = policy.display().to_string();
    let diags = json["diagnostics"].as_array().unwrap();
    let found: Vec<(String, u64, u64)> = diags
        .iter()
        .map(|d| {
            assert_eq!(d["file"].as_str(), Some(file.as_str()), "{d}");
            (
                d["code"].as_str().unwrap().to_string(),
                d["line"].as_u64().unwrap(),
                d["col"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [
        // unknown fact `customer.anual_revenue`
        ("E0003", 5, 18),
        // `risk >= 50 EUR` compares a percentage with money
        ("E0004", 6, 19),
        // `50 EUR` in a USD policy
        ("E0005", 6, 27),
        // template `remindr` does not exist
        ("E0011", 14, 13),
    ];
    for (code, line, col) in expected {
        assert!(
            found.contains(&(code.to_string(), line, col)),
            "missing {code} at {line}:{col}; found {found:?}"
        );
    }
    let unknown_fact = diags.iter().find(|d| d["code"] == "E0003").unwrap();
    assert!(
        unknown_fact["help"]
            .as_str()
            .unwrap()
            .contains("customer.annual_revenue"),
        "{unknown_fact}"
    );
    assert_eq!(unknown_fact["severity"], "error");
    let template = diags.iter().find(|d| d["code"] == "E0011").unwrap();
    assert!(
        template["help"].as_str().unwrap().contains("`reminder`"),
        "{template}"
    );
}

#[test]
fn check_human_output_names_file_line_and_col() {
    let dir = Temp::new("check-human");
    dir.template("reminder");
    let policy = dir.write(
        "syntax.policy",
        "policy \"s\"\n  effective 2026-12-01\n  currency USD\n\nsegment everyone otherwise\n\nladder everyone\n  due + 3 email \"reminder\"\n",
    );
    let out = collect(&["check", &dir.arg()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}:8:9:", policy.display())),
        "{}",
        show(&out)
    );
    assert!(err.contains("E0001"), "{}", show(&out));
    assert!(err.contains("7d"), "{}", show(&out));
    assert!(
        stdout(&out).contains("1 error(s), 0 warning(s)"),
        "{}",
        show(&out)
    );
}

#[test]
fn deny_warnings_turns_a_warning_into_failure() {
    let dir = Temp::new("deny-warnings");
    dir.template("reminder");
    dir.template("final");
    dir.write("warn.policy", WARNING_ONLY_POLICY);

    let out = collect(&["check", &dir.arg()]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        stdout(&out).contains("0 error(s), 1 warning(s)"),
        "{}",
        show(&out)
    );
    assert!(stderr(&out).contains("W0001"), "{}", show(&out));

    let out = collect(&["check", "--deny-warnings", &dir.arg()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));

    let out = collect(&["check", "--deny-warnings", "--format", "json", &dir.arg()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["errors"], 0, "{}", show(&out));
    assert_eq!(json["warnings"], 1, "{}", show(&out));
    let d = &json["diagnostics"][0];
    assert_eq!(d["code"], "W0001", "{d}");
    assert_eq!(d["severity"], "warning", "{d}");
    assert_eq!(d["line"], 9, "{d}");
}

#[test]
fn check_on_a_folder_without_policies_fails() {
    let dir = Temp::new("check-empty");
    let out = collect(&["check", &dir.arg()]);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        stderr(&out).contains("no `.policy` files"),
        "{}",
        show(&out)
    );
}

// ---------------------------------------------------------------- fmt

const MESSY_POLICY: &str = r#"# Top comment stays.
policy    "messy"  effective 2026-12-01 currency USD
segment everyone otherwise   # trailing comment
ladder everyone
      due    email "reminder"  # on the due date
  due+30d letter "final" requires approval
"#;

#[test]
fn fmt_check_names_a_messy_file_and_changes_nothing() {
    let dir = Temp::new("fmt-check");
    dir.template("reminder");
    dir.template("final");
    let messy = dir.write("messy.policy", MESSY_POLICY);
    let out = collect(&["fmt", "--check", &dir.arg()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stdout(&out).contains(&format!("not formatted: {}", messy.display())),
        "{}",
        show(&out)
    );
    assert_eq!(std::fs::read_to_string(&messy).unwrap(), MESSY_POLICY);
}

#[test]
fn fmt_rewrites_a_messy_file_and_keeps_its_comments() {
    let dir = Temp::new("fmt-write");
    dir.template("reminder");
    dir.template("final");
    let messy = dir.write("messy.policy", MESSY_POLICY);
    let out = collect(&["fmt", &dir.arg()]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(stdout(&out).contains("formatted"), "{}", show(&out));

    let formatted = std::fs::read_to_string(&messy).unwrap();
    assert_ne!(formatted, MESSY_POLICY);
    for comment in [
        "# Top comment stays.",
        "# trailing comment",
        "# on the due date",
    ] {
        assert!(
            formatted.contains(comment),
            "lost `{comment}`:\n{formatted}"
        );
    }
    assert!(
        formatted.contains("policy \"messy\"\n  effective 2026-12-01\n  currency USD\n"),
        "{formatted}"
    );
    assert!(
        formatted.contains("  due + 30d  letter \"final\" requires approval"),
        "{formatted}"
    );

    // Formatting is stable, and the result still checks clean.
    let out = collect(&["fmt", "--check", &dir.arg()]);
    assert!(out.status.success(), "{}", show(&out));
    let out = collect(&["check", &dir.arg()]);
    assert!(out.status.success(), "{}", show(&out));
    let out = collect(&["fmt", &dir.arg()]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(std::fs::read_to_string(&messy).unwrap(), formatted);
}

// ---------------------------------------------------------------- test

#[test]
fn test_without_test_files_fails_and_says_no_test_ran() {
    let dir = small_policy_folder("test-none");
    let out = collect(&["test", &dir.arg()]);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(stderr(&out).contains("no test ran"), "{}", show(&out));
}

#[test]
fn test_with_a_file_without_cases_fails_and_says_no_test_ran() {
    let dir = small_policy_folder("test-empty");
    dir.write("small.tests.toml", "policy = \"small.policy\"\n");
    let out = collect(&["test", &dir.arg()]);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(stderr(&out).contains("no test ran"), "{}", show(&out));
}

#[test]
fn a_failing_case_fails_the_run_with_its_file_and_line() {
    let dir = small_policy_folder("test-fail");
    let tests = dir.write(
        "small.tests.toml",
        r#"policy = "small.policy"

[defaults]
invoice = { amount = "100 USD", due_date = 2026-12-17 }

[[case]]
name = "reminder on the due date"
date = 2026-12-17
expect = ["email reminder"]

[[case]]
name = "wrongly expects a letter on the due date"
date = 2026-12-17
expect = ["letter final requires approval"]
"#,
    );
    let out = collect(&["test", &dir.arg()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let text = stdout(&out);
    assert!(
        text.contains("ok    reminder on the due date"),
        "{}",
        show(&out)
    );
    assert!(
        text.contains(&format!(
            "FAIL  wrongly expects a letter on the due date  ({}:11)",
            tests.display()
        )),
        "{}",
        show(&out)
    );
    assert!(
        text.contains("expected sent: letter final requires approval; got email reminder"),
        "{}",
        show(&out)
    );
    assert_eq!(
        text.lines().last(),
        Some("1 passed, 1 failed"),
        "{}",
        show(&out)
    );
}

#[test]
fn a_never_case_fails_on_each_day_the_action_happens() {
    let dir = small_policy_folder("test-never");
    let tests = dir.write(
        "small.tests.toml",
        r#"[[case]]
name = "never a letter"
from = 2026-12-01
to = 2027-02-28
invoice = { amount = "100 USD", due_date = 2026-12-17 }
never = ["letter"]
"#,
    );
    let out = collect(&["test", &dir.arg()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("FAIL  never a letter  ({}:1)", tests.display())),
        "{}",
        show(&out)
    );
    // due + 30d is Sat 16 Jan 2027; the policy has no business days, so it stays there.
    assert!(
        text.contains("on 2027-01-16: `letter final requires approval` must never happen here"),
        "{}",
        show(&out)
    );
}

#[test]
fn a_label_no_step_can_produce_is_an_error_naming_the_labels_there_are() {
    // `never = ["emails"]` used to pass over days on which emails went out:
    // a safety test that tested nothing.
    for (label, line) in [("emails", 1), ("Email", 8), ("email urgent-notise", 15)] {
        let dir = small_policy_folder("test-never-typo");
        let cases = r#"[[case]]
name = "never emails"
from = 2026-12-10
to = 2026-12-20
invoice = { amount = "100 USD", due_date = 2026-12-17 }
never = ["emails"]

[[case]]
name = "never Email"
from = 2026-12-10
to = 2026-12-20
invoice = { amount = "100 USD", due_date = 2026-12-17 }
never = ["Email"]

[[case]]
name = "never a misspelt notice"
from = 2026-12-10
to = 2026-12-20
invoice = { amount = "100 USD", due_date = 2026-12-17 }
never = ["email urgent-notise"]
"#;
        let tests = dir.write("small.tests.toml", cases);
        let out = collect(&["test", &dir.arg()]);
        assert_eq!(out.status.code(), Some(1), "{}", show(&out));
        let text = stdout(&out);
        assert!(text.contains("0 passed, 3 failed"), "{}", show(&out));
        assert!(
            text.contains(&format!("({}:{line})", tests.display())),
            "{label}: {}",
            show(&out)
        );
        assert!(
            text.contains(&format!(
                "never: `{label}` is not something policy `small` can do; it can do: email, email reminder, letter, letter final"
            )),
            "{label}: {}",
            show(&out)
        );
    }
}

#[test]
fn cases_run_through_the_production_sweep() {
    // The policy has no do-not-contact hold: the sweep never contacts such
    // a customer anyway, and the test says so (the policy alone would send).
    let dir = small_policy_folder("test-production");
    dir.write(
        "small.tests.toml",
        r#"[[case]]
name = "a do-not-contact customer gets nothing, whatever the policy says"
from = 2026-12-01
to = 2027-02-28
customer = { do_not_contact = true }
invoice = { amount = "100 USD", due_date = 2026-12-17 }
never = ["email", "letter"]

[[case]]
name = "on the due date it is held as a do-not-contact customer"
date = 2026-12-17
customer = { do_not_contact = true }
invoice = { amount = "100 USD", due_date = 2026-12-17 }
no_action = "held by do-not-contact customer"

[[case]]
name = "the reminder goes out on the due date"
date = 2026-12-17
invoice = { amount = "100 USD", due_date = 2026-12-17 }
expect = ["email reminder"]
"#,
    );
    let out = collect(&["test", &dir.arg()]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        stdout(&out).contains("3 passed, 0 failed"),
        "{}",
        show(&out)
    );

    // What fails at run time fails the test: the reminder's subject names
    // a value that does not exist, so the sweep cannot compose the email.
    dir.write(
        "templates/reminder/en/subject.txt",
        "{{ customer.nickname }}",
    );
    let out = collect(&["test", &dir.arg()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let text = stdout(&out);
    assert!(text.contains("2 passed, 1 failed"), "{}", show(&out));
    assert!(
        text.contains("on 2026-12-17: `email reminder` failed in the sweep"),
        "{}",
        show(&out)
    );
}

#[test]
fn a_case_with_an_unknown_field_names_file_line_field_and_a_fix() {
    let dir = small_policy_folder("test-typo");
    let tests = dir.write(
        "small.tests.toml",
        r#"policy = "small.policy"

[[case]]
name = "typo in the invoice"
date = 2026-12-17
invoice = { amount = "100 USD", due_date = 2026-12-17, dispted = true }
expect = ["email reminder"]
"#,
    );
    let out = collect(&["test", &dir.arg()]);
    assert!(!out.status.success(), "{}", show(&out));
    // A case that cannot be read fails on its own; the others still run.
    let err = stdout(&out);
    assert!(err.contains("0 passed, 1 failed"), "{}", show(&out));
    assert!(
        err.contains(&format!("{}:3)", tests.display())),
        "{}",
        show(&out)
    );
    assert!(
        err.contains("unknown field `invoice.dispted`"),
        "{}",
        show(&out)
    );
    assert!(err.contains("did you mean `disputed`?"), "{}", show(&out));
}

#[test]
fn a_case_with_a_misspelled_check_suggests_the_right_one() {
    let dir = small_policy_folder("test-typo-top");
    let tests = dir.write(
        "small.tests.toml",
        r#"policy = "small.policy"

[[case]]
name = "expected instead of expect"
date = 2026-12-17
invoice = { amount = "100 USD", due_date = 2026-12-17 }
expected = ["email reminder"]
"#,
    );
    let out = collect(&[
        "explain",
        "--policy",
        &dir.join("small.policy").display().to_string(),
        "--case",
        &tests.display().to_string(),
    ]);
    assert!(!out.status.success(), "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}:3:", tests.display())),
        "{}",
        show(&out)
    );
    assert!(err.contains("unknown field `expected`"), "{}", show(&out));
    assert!(err.contains("did you mean `expect`?"), "{}", show(&out));
}

// ---------------------------------------------------------------- explain

/// The line of the first line of `text` that starts with `prefix`.
fn line_of(text: &str, prefix: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(prefix))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("no line starts with `{prefix}`"))
}

#[test]
fn explain_shows_the_matched_segment_with_its_line_and_the_decision() {
    let dir = Temp::new("explain");
    let case = dir.write(
        "strategic.tests.toml",
        r#"[[case]]
name = "strategic customer a week before due"
date = 2027-01-14
risk = "85%"
customer = { id = "C-0004", tags = ["strategic"] }
invoice = { id = "INV-77", amount = "48000 USD", due_date = 2027-01-21 }
expect = ["call account-manager"]
"#,
    );
    let out = collect(&[
        "explain",
        "--policy",
        STANDARD_POLICY,
        "--case",
        &case.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let text = stdout(&out);

    let source = std::fs::read_to_string(Path::new(ROOT).join(STANDARD_POLICY)).unwrap();
    let segment_line = line_of(&source, "segment strategic");
    let ladder_line = line_of(&source, "ladder strategic");
    assert!(
        text.contains("Invoice INV-77 (customer C-0004), due 2027-01-21, on 2027-01-14"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "[yes] segment `strategic`  ({STANDARD_POLICY}:{segment_line})"
        )),
        "{text}"
    );
    assert!(
        text.contains("where customer.annual_revenue = missing, customer.tags = [\"strategic\"]"),
        "{text}"
    );
    // Segments after the match are not evaluated, even at 85% risk.
    assert!(text.contains("[-  ] segment `high_risk`"), "{text}");
    assert!(
        text.contains(&format!(
            "Ladder `strategic` ({STANDARD_POLICY}:{ladder_line})"
        )),
        "{text}"
    );
    let decision = text
        .split_once("Decision:\n")
        .map(|(_, d)| d)
        .unwrap_or_else(|| panic!("no decision:\n{text}"));
    assert!(decision.contains("  segment strategic\n"), "{text}");
    assert!(
        decision.contains(&format!(
            "  call account-manager  (line {})",
            ladder_line + 1
        )),
        "{text}"
    );
}

#[test]
fn explain_shows_the_experiment_arm_and_holds() {
    let dir = Temp::new("explain-arm");
    let case = dir.write(
        "cases.tests.toml",
        r#"[defaults]
risk = "20%"
invoice = { amount = "1200 USD", due_date = 2026-12-17 }

[[case]]
name = "arm A"
date = 2026-12-14
customer = { id = "C-0001" }
expect = ["email friendly-reminder"]

[[case]]
name = "disputed"
date = 2026-12-17
invoice = { disputed = true }
no_action = "held by dispute"
"#,
    );
    let case = case.display().to_string();
    let explain = |name: &str| {
        collect(&[
            "explain",
            "--policy",
            STANDARD_POLICY,
            "--case",
            &case,
            "--name",
            name,
        ])
    };

    let out = explain("arm A");
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        stdout(&out).contains(
            "email friendly-reminder (experiment pre-due-tone, arm email friendly-reminder)"
        ),
        "{}",
        show(&out)
    );

    let out = explain("disputed");
    assert!(out.status.success(), "{}", show(&out));
    let text = stdout(&out);
    assert!(text.contains("[yes] hold `dispute`"), "{text}");
    assert!(text.contains("no action: held by dispute"), "{text}");

    // Without --name, a file with two cases asks for one.
    let out = collect(&["explain", "--policy", STANDARD_POLICY, "--case", &case]);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(stderr(&out).contains("--name"), "{}", show(&out));
}

// ---------------------------------------------------------------- check: what would fail at run time

/// A policy that offers a payment plan and sends `reminder`.
const OFFER_POLICY: &str = r#"policy "offers"
  effective 2026-12-01
  currency USD

segment everyone otherwise

ladder everyone
  due - 7d  offer plan 3 installments every 30d
  due       email "reminder"
"#;

/// The diagnostics and template problems of `collect check --format json`.
fn check_json(args: &[&str]) -> (Output, serde_json::Value) {
    let mut all = vec!["check", "--format", "json"];
    all.extend_from_slice(args);
    let out = collect(&all);
    let json =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{}", show(&out)));
    (out, json)
}

#[test]
fn check_fails_an_offer_without_the_plan_offer_template() {
    let dir = Temp::new("offer-no-template");
    dir.write("offers.policy", OFFER_POLICY);
    dir.template("reminder");
    let out = collect(&["check", &dir.arg()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("[E0011]")
            && err.contains("offers.policy:8:")
            && err.contains("the template `plan-offer`"),
        "{}",
        show(&out)
    );
    // The policy cannot be run either (it would fail when the offer goes out).
    let home = Temp::new("offer-no-template-home");
    let out = collect(&[
        "--home",
        &home.arg(),
        "run",
        "--date",
        "2026-12-01",
        "--policy",
        &dir.join("offers.policy").display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(stderr(&out).contains("E0011"), "{}", show(&out));

    dir.template("plan-offer");
    let out = collect(&["check", &dir.arg()]);
    assert!(out.status.success(), "{}", show(&out));
}

#[test]
fn check_renders_templates_as_they_are_sent() {
    let dir = Temp::new("render-as-sent");
    dir.write("offers.policy", OFFER_POLICY);
    dir.template("reminder");
    dir.template("plan-offer");
    // Fine with the three-invoice sample; fails for a message about one invoice.
    dir.write(
        "templates/reminder/en/body.txt",
        "Hello {{ customer.name }}\nAlso {{ invoices[1].number }} ({{ invoices[1].state }})",
    );
    // Fails for a plan of one installment.
    dir.write(
        "templates/plan-offer/en/body.html",
        "{{ plan.down_payment }} then {{ plan.installments[1].amount }}",
    );
    let (out, json) = check_json(&[&dir.arg()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let problems = json["template_problems"].as_array().unwrap();
    let found: Vec<(String, String, Option<u64>)> = problems
        .iter()
        .map(|p| {
            (
                p["code"].as_str().unwrap().to_string(),
                p["file"].as_str().unwrap().replace('\\', "/"),
                p["line"].as_u64(),
            )
        })
        .collect();
    assert_eq!(found.len(), 2, "{json:#}");
    assert!(
        found[0].1.ends_with("templates/plan-offer/en/body.html") && found[0].0 == "T0001",
        "{found:?}"
    );
    assert!(
        found[1].1.ends_with("templates/reminder/en/body.txt")
            && found[1].2 == Some(2)
            && found[1].0 == "T0001",
        "{found:?}"
    );
    assert!(
        problems[1]["message"].as_str().unwrap().starts_with(
            "fails for a message about one invoice: `invoices[1].number` is not defined"
        ),
        "{json:#}"
    );
    assert_eq!(json["errors"], 2, "{json:#}");
}

#[test]
fn check_requires_every_part_of_every_template() {
    let dir = Temp::new("missing-part");
    dir.write("small.policy", SMALL_POLICY);
    dir.template("reminder");
    dir.template("final");
    std::fs::remove_file(dir.join("templates/final/en/body.html")).unwrap();
    let out = collect(&["check", &dir.arg()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("final/en/body.html: error[T0001]: missing"),
        "{}",
        show(&out)
    );
}

#[test]
fn check_warns_when_a_customer_language_falls_back_to_english() {
    let dir = small_policy_folder("languages");
    // German for one template: German customers exist, so the other one
    // they receive falls back to English.
    for file in ["subject.txt", "body.txt", "body.html"] {
        dir.write(
            &format!("templates/reminder/de/{file}"),
            "{{ customer.name }}",
        );
    }
    let out = collect(&["check", &dir.arg()]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        stdout(&out).contains("0 error(s), 1 warning(s)")
            && stdout(&out).contains("languages checked: de, en"),
        "{}",
        show(&out)
    );
    assert!(
        stderr(&out).contains(
            "warning[T0002]: template `final` has no `de` version: customers whose language is `de` get the `en` one"
        ),
        "{}",
        show(&out)
    );

    // The customers' languages, named: French falls back for both; de-AT
    // uses the German version of `reminder`.
    let (out, json) = check_json(&["--languages", "fr,de-AT", &dir.arg()]);
    assert!(out.status.success(), "{}", show(&out));
    let warned: Vec<String> = json["template_problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["code"], "T0002", "{p}");
            assert_eq!(p["severity"], "warning", "{p}");
            p["message"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(warned.len(), 4, "{warned:#?}");
    for expected in [
        "template `final` has no `de` version",
        "template `final` has no `de-at` version",
        "template `final` has no `fr` version",
        "template `reminder` has no `fr` version",
    ] {
        assert!(
            warned.iter().any(|w| w.starts_with(expected)),
            "{expected}: {warned:#?}"
        );
    }
    assert_eq!(json["warnings"], 4, "{json:#}");

    // A language's name is not a language: refused, with the tag meant.
    let out = collect(&["check", "--languages", "fr,german", &dir.arg()]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        stderr(&out).contains("`german` is not a language tag; did you mean `de`?"),
        "{}",
        show(&out)
    );
    assert_eq!(json["errors"], 0, "{json:#}");

    let out = collect(&["check", "--deny-warnings", &dir.arg()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
}

#[test]
fn check_and_bundle_know_the_layout_the_bodies_extend() {
    let dir = small_policy_folder("layout");
    dir.write(
        "templates/_layout/email.html",
        "<html lang=\"{% block lang required %}{% endblock %}\">{% for i in invoices %}{{ i.number }} {{ i.state }} {% endfor %}</html>",
    );
    for name in ["reminder", "final"] {
        dir.write(
            &format!("templates/{name}/en/body.html"),
            "{% extends \"_layout/email.html\" %}\n{% block lang %}en{% endblock %}\n",
        );
    }
    let out = collect(&["check", &dir.arg()]);
    assert!(out.status.success(), "{}", show(&out));
    // The layout folder is neither a template nor a language.
    assert!(
        stdout(&out).contains("languages checked: en (")
            && stdout(&out).contains("0 error(s), 0 warning(s)"),
        "{}",
        show(&out)
    );
    let bundles = Temp::new("layout-bundles");
    let good = bundles.join("good.tar");
    let out = collect(&[
        "bundle",
        &dir.arg(),
        "--revision",
        "r1",
        "--out",
        &good.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let tar = std::fs::read(&good).unwrap();
    assert!(
        tar.windows(b"templates/_layout/email.html".len())
            .any(|w| w == b"templates/_layout/email.html"),
        "the bundle holds the layout"
    );

    // A body that extends a layout that is not there: its file and line,
    // and where the layout was looked for.
    dir.write(
        "templates/final/en/body.html",
        "{# the letter #}\n{% extends \"_layout/letter.html\" %}\n",
    );
    let (out, json) = check_json(&[&dir.arg()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let problems = json["template_problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{json:#}");
    let p = &problems[0];
    assert_eq!(p["code"], "T0001", "{p}");
    assert!(
        p["file"]
            .as_str()
            .unwrap()
            .replace('\\', "/")
            .ends_with("templates/final/en/body.html"),
        "{p}"
    );
    assert_eq!(p["line"], 2, "{p}");
    let missing = dir.join("templates").join("_layout").join("letter.html");
    assert_eq!(
        p["message"].as_str().unwrap(),
        format!(
            "`_layout/letter.html` does not exist: there is no file {} to extend or include \
             (the layouts are: `_layout/email.html`)",
            missing.display()
        ),
        "{p}"
    );
    let out = collect(&["check", &dir.arg()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains(
            "final/en/body.html:2: error[T0001]: `_layout/letter.html` does not exist: there is no file "
        ),
        "{}",
        show(&out)
    );
    // ... and nothing is bundled.
    let bad = bundles.join("bad.tar");
    let out = collect(&[
        "bundle",
        &dir.arg(),
        "--revision",
        "r2",
        "--out",
        &bad.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(!bad.exists(), "{}", show(&out));
}

#[test]
fn check_warns_about_a_template_that_calls_every_invoice_past_due() {
    let dir = Temp::new("state-blind");
    dir.template("reminder");
    dir.template("final");
    dir.write("warn.policy", WARNING_ONLY_POLICY);
    // As the firm notice read before issue 19: the whole list under
    // past-due words, whatever each invoice's state.
    dir.write(
        "templates/final/en/subject.txt",
        "Overdue: {{ invoices|length }} invoices ({{ total_balance }})",
    );
    dir.write(
        "templates/final/en/body.txt",
        "The following invoices are past due:\n{% for i in invoices %}- {{ i.number }}\n{% endfor %}",
    );
    let (out, json) = check_json(&[&dir.arg()]);
    assert!(out.status.success(), "warnings only: {}", show(&out));
    let found: Vec<(String, String, String)> = json["template_problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["code"].as_str().unwrap().to_string(),
                p["severity"].as_str().unwrap().to_string(),
                p["file"].as_str().unwrap().replace('\\', "/"),
            )
        })
        .collect();
    assert_eq!(found.len(), 2, "{json:#}");
    for ((code, severity, file), part) in found.iter().zip(["body.txt", "subject.txt"]) {
        assert_eq!((code.as_str(), severity.as_str()), ("T0004", "warning"));
        assert!(
            file.ends_with(&format!("templates/final/en/{part}")),
            "{file}"
        );
    }
    let out = collect(&["check", "--deny-warnings", &dir.arg()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
}
