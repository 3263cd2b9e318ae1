#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! A new user's first steps, outside a checkout: `collect demo` in an empty
//! folder (the standard policy is built into the binary), `collect init`,
//! a mistyped home, a mistyped date, a task looked at and approved late, a
//! diff against a policy not yet in effect.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `collect ARGS` run from `cwd`, with no COLLECT_HOME.
fn collect_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_collect"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        // The tests' books are dated 2027: the clock of the future-date guard.
        .env("COLLECT_TODAY", "2027-12-31")
        .env(
            "COLLECT_PAY_LINK_KEY",
            "test-key-test-key-test-key-test-key-0123",
        )
        .env_remove("COLLECT_HOME")
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_demo_runs_in_an_empty_folder_and_claims_no_unsupported_significance() {
    let t = Temp::new("empty");
    // No policy/ here: the binary's own standard policy is used.
    let demo: serde_json::Value = serde_json::from_str(&ok(collect_in(
        t.path(),
        &["demo", "--customers", "60", "--format", "json"],
    )))
    .unwrap();
    let written = t.path().join(".collect/demo/policy/standard-net30.policy");
    assert!(written.is_file(), "the embedded policy is written out");
    // Paths are printed relative to the folder the demo ran in.
    let page_path = t.path().join(demo["report_html"].as_str().unwrap());
    assert!(page_path.is_file(), "{}", page_path.display());

    // One DSO: the demo's figure is the report's over the same quarter.
    let home = t.path().join(".collect/demo");
    let (from, to) = (
        demo["quarter"]["from"].as_str().unwrap(),
        demo["quarter"]["to"].as_str().unwrap(),
    );
    let report: serde_json::Value = serde_json::from_str(&ok(collect_in(
        t.path(),
        &[
            "--home",
            home.to_str().unwrap(),
            "report",
            "--from",
            from,
            "--to",
            to,
            "--format",
            "json",
        ],
    )))
    .unwrap();
    let dso = report["dso"].as_f64().unwrap();
    let demo_dso = demo["proactive"]["figures"]["dso_days"].as_f64().unwrap();
    assert!(
        (demo_dso - (dso * 10.0).round() / 10.0).abs() < 1e-9,
        "demo {demo_dso} vs report {dso}"
    );

    // No arm with fewer than 30 customers is called significant, in the
    // report or in the demo's summary.
    for x in report["experiments"].as_array().unwrap() {
        assert_eq!(x["min_customers_per_arm"], 30);
        let mut comparisons = vec![x];
        comparisons.extend(x["segments"].as_array().unwrap());
        for c in comparisons {
            let arms = c["arms"].as_array().unwrap();
            let customers = |a: &serde_json::Value| a["customers"].as_u64().unwrap();
            let reference = arms.iter().find(|a| a["is_reference"] == true).unwrap();
            let few = arms.iter().any(|a| customers(a) < 30);
            for a in arms {
                if customers(a) < 30 || customers(reference) < 30 {
                    assert_eq!(a["significant"], serde_json::Value::Null, "{a}");
                }
            }
            if few {
                assert_eq!(c["winner"], serde_json::Value::Null);
                assert!(
                    !c["verdict"].as_str().unwrap().contains("significant"),
                    "{}",
                    c["verdict"]
                );
            }
        }
    }
    for w in demo["what_worked"].as_array().unwrap() {
        if w["customers"].as_u64().unwrap() < 30 || w["reference_customers"].as_u64().unwrap() < 30
        {
            assert_eq!(w["significant"], serde_json::Value::Null, "{w}");
        }
    }
    let page = std::fs::read_to_string(&page_path).unwrap();
    assert!(
        !page.contains("avg_days_to_payment"),
        "internal ids on the page"
    );
}

#[test]
fn init_writes_the_standard_policy_as_a_starting_point() {
    let t = Temp::new("init");
    let dir = t.path().join("my-policy");
    let out = ok(collect_in(t.path(), &["init", dir.to_str().unwrap()]));
    assert!(out.contains("collect check"), "{out}");
    let policy = dir.join("standard-net30.policy");
    assert_eq!(
        std::fs::read_to_string(&policy).unwrap(),
        std::fs::read_to_string(Path::new(ROOT).join("policy/standard-net30.policy")).unwrap()
    );
    assert!(dir.join("templates/legal-notice/de/body.txt").is_file());
    ok(collect_in(t.path(), &["check", dir.to_str().unwrap()]));
    ok(collect_in(t.path(), &["test", dir.to_str().unwrap()]));
    // Never over a user's files without --force.
    let again = collect_in(t.path(), &["init", dir.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(text(&again).contains("--force"), "{}", text(&again));
    ok(collect_in(
        t.path(),
        &["init", dir.to_str().unwrap(), "--force"],
    ));
}

#[test]
fn read_only_commands_refuse_a_missing_home_with_a_hint() {
    let t = Temp::new("nohome");
    let home = t.path().join("typo");
    for args in [
        &["report"][..],
        &["tasks"][..],
        &["tasks", "list"][..],
        &["score", "--date", "2027-03-01"][..],
        &["explain", "I1", "--date", "2027-03-01"][..],
    ] {
        let mut all = vec!["--home", home.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = collect_in(Path::new(ROOT), &all);
        let msg = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {msg}");
        assert!(
            msg.contains("no collect home at") && msg.contains("help: check --home"),
            "{args:?}: {msg}"
        );
        assert!(!home.exists(), "{args:?} created the home");
    }
}

#[test]
fn a_mistyped_date_says_the_format() {
    let t = Temp::new("date");
    for args in [
        &["run", "--date", "31.03.2027"][..],
        &["report", "--from", "2027/01/01"][..],
        &["tasks", "--date", "tomorrow"][..],
    ] {
        let out = collect_in(t.path(), args);
        let msg = text(&out);
        assert_eq!(out.status.code(), Some(2), "{msg}");
        assert!(
            msg.contains("YYYY-MM-DD, e.g. 2027-03-31"),
            "{args:?}: {msg}"
        );
    }
    let help = ok(collect_in(t.path(), &["run", "--help"]));
    assert!(help.contains("YYYY-MM-DD, e.g. 2027-03-31"), "{help}");
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    let t = Temp::new("compl");
    for shell in ["bash", "zsh", "fish"] {
        let out = ok(collect_in(t.path(), &["completions", shell]));
        assert!(out.contains("collect") && out.contains("report"), "{shell}");
    }
}

const CUSTOMERS: &str = "customer_id,name,email,phone,language,timezone,country,industry,annual_revenue,credit_score,credit_limit,tags,do_not_contact
C1,Acme GmbH,ap@acme.example,,en,UTC,DE,,,,,,false
C2,Globex Inc,billing@globex.example,,en,UTC,US,,,,,,false
";

const INVOICES: &str =
    "invoice_id,customer_id,number,issue_date,due_date,amount,currency,disputed,dispute_opened_on
I1,C1,2027-0001,2027-02-09,2027-03-11,1200.00,USD,false,
I2,C2,2027-0002,2027-02-09,2027-03-11,800.00,USD,false,
";

fn home_with_letters(t: &Temp) -> PathBuf {
    let home = t.path().join("home");
    let data = t.path().join("data");
    t.write("data/customers.csv", CUSTOMERS);
    t.write("data/invoices.csv", INVOICES);
    t.write(
        "data/payments.csv",
        "payment_id,invoice_id,paid_on,amount\n",
    );
    let h = home.to_str().unwrap();
    ok(collect_in(
        Path::new(ROOT),
        &["--home", h, "ingest", data.to_str().unwrap()],
    ));
    for day in [
        "2027-03-08",
        "2027-03-11",
        "2027-03-18",
        "2027-03-26",
        "2027-04-12",
    ] {
        ok(collect_in(
            Path::new(ROOT),
            &["--home", h, "run", "--date", day],
        ));
    }
    home
}

fn letter_of(listing: &str, invoice: &str) -> String {
    listing
        .lines()
        .find(|l| l.contains("letter legal-notice") && l.contains(&format!("invoice {invoice} ")))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no letter for {invoice} in\n{listing}"))
        .to_string()
}

#[test]
fn a_task_is_shown_with_its_facts_and_approval_rechecks_them() {
    let t = Temp::new("tasks");
    let home = home_with_letters(&t);
    let h = home.to_str().unwrap();
    let listing = ok(collect_in(Path::new(ROOT), &["--home", h, "tasks"]));
    let (l1, l2) = (letter_of(&listing, "I1"), letter_of(&listing, "I2"));

    let shown = ok(collect_in(
        Path::new(ROOT),
        &["--home", h, "tasks", "show", &l1, "--date", "2027-04-12"],
    ));
    for needle in [
        "Acme GmbH",
        "2027-0001",
        "amount 1,200.00 USD",
        "32 day(s) overdue",
        "letter legal-notice",
        "--- the letter as it would go out on 2027-04-12 ---",
        "To: Acme GmbH <ap@acme.example>",
        "Subject: ",
    ] {
        assert!(shown.contains(needle), "`{needle}` in\n{shown}");
    }

    // A hold the policy now has (here: a new one for C1) stops the approval.
    let mine = t.path().join("mine");
    ok(collect_in(t.path(), &["init", mine.to_str().unwrap()]));
    let policy = mine.join("standard-net30.policy");
    let text_of = std::fs::read_to_string(&policy).unwrap();
    let with_hold = text_of.replacen(
        "hold dispute when invoice.disputed",
        "hold key_account when customer.id = \"C1\"\n\nhold dispute when invoice.disputed",
        1,
    );
    assert_ne!(text_of, with_hold);
    std::fs::write(&policy, with_hold).unwrap();
    let held = collect_in(
        Path::new(ROOT),
        &[
            "--home",
            h,
            "tasks",
            "approve",
            &l1,
            "--by",
            "maria",
            "--date",
            "2027-04-12",
            "--policy",
            policy.to_str().unwrap(),
        ],
    );
    assert_eq!(held.status.code(), Some(2), "{}", text(&held));
    assert!(
        text(&held).contains("the policy's hold `key_account` applies on 2027-04-12"),
        "{}",
        text(&held)
    );

    // I1 is paid in full before anyone approves its letter: refused.
    t.write(
        "pay/payments.csv",
        "payment_id,invoice_id,paid_on,amount\nP1,I1,2027-04-13,1200.00\n",
    );
    ok(collect_in(
        Path::new(ROOT),
        &[
            "--home",
            h,
            "ingest",
            t.path().join("pay").to_str().unwrap(),
        ],
    ));
    let refused = collect_in(
        Path::new(ROOT),
        &[
            "--home",
            h,
            "tasks",
            "approve",
            &l1,
            "--by",
            "maria",
            "--date",
            "2027-04-14",
        ],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains("is settled"), "{}", text(&refused));

    // I2's letter, decided on 04-12, approved three weeks later: a warning.
    let late = collect_in(
        Path::new(ROOT),
        &[
            "--home",
            h,
            "tasks",
            "approve",
            &l2,
            "--by",
            "maria",
            "--date",
            "2027-05-03",
        ],
    );
    assert!(late.status.success(), "{}", text(&late));
    let err = String::from_utf8_lossy(&late.stderr);
    assert!(
        err.contains("warning") && err.contains("21 days ago"),
        "{}",
        text(&late)
    );
}

#[test]
fn diff_says_when_a_policy_is_not_in_effect_yet() {
    let t = Temp::new("diff");
    let home = t.path().join("home");
    t.write("data/customers.csv", CUSTOMERS);
    t.write("data/invoices.csv", INVOICES);
    let h = home.to_str().unwrap();
    ok(collect_in(
        Path::new(ROOT),
        &[
            "--home",
            h,
            "ingest",
            t.path().join("data").to_str().unwrap(),
        ],
    ));
    let standard =
        std::fs::read_to_string(Path::new(ROOT).join("policy/standard-net30.policy")).unwrap();
    let later = standard.replace("effective 2026-12-01", "effective 2027-06-01");
    assert_ne!(standard, later);
    let new = t.write("alt/standard-net30.policy", &later);
    ok(collect_in(
        Path::new(ROOT),
        &["init", t.path().join("alt").to_str().unwrap(), "--force"],
    ));
    std::fs::write(&new, &later).unwrap();
    let args = [
        "--home",
        h,
        "diff",
        "policy/standard-net30.policy",
        new.to_str().unwrap(),
        "--from",
        "2027-03-01",
        "--to",
        "2027-03-31",
    ];
    let human = ok(collect_in(Path::new(ROOT), &args));
    assert!(
        human.contains("is not in effect until 2027-06-01: it decides nothing in the whole period"),
        "{human}"
    );
    assert!(
        human.contains("the new policy is not in effect until 2027-06-01"),
        "{human}"
    );
    let mut json_args = args.to_vec();
    json_args.extend(["--format", "json"]);
    let v: serde_json::Value =
        serde_json::from_str(&ok(collect_in(Path::new(ROOT), &json_args))).unwrap();
    assert_eq!(v["new_effective"], "2027-06-01");
    let invoices = v["invoices"].as_array().unwrap();
    assert!(!invoices.is_empty(), "{v}");
    for inv in invoices {
        assert_eq!(
            inv["reasons"],
            serde_json::json!(["the new policy is not in effect until 2027-06-01"]),
            "{inv}"
        );
    }
}
