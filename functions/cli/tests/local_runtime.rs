#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The local runtime end to end, as a finance person would use it: ingest
//! CSV exports (with a bad row), run sweeps, read the outbox, explain an
//! invoice, approve a letter, simulate and diff policies.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

struct Temp {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Temp {
    fn new(label: &str) -> Temp {
        let dir = tempfile::Builder::new()
            .prefix(&format!("collect-{label}-"))
            .tempdir()
            .unwrap();
        Temp {
            path: dir.path().to_path_buf(),
            _dir: dir,
        }
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }
}

fn collect(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_collect"))
        .arg("--home")
        .arg(home)
        .args(args)
        .current_dir(ROOT)
        .env("NO_COLOR", "1")
        .env(
            "COLLECT_PAY_LINK_KEY",
            "test-key-test-key-test-key-test-key-0123",
        )
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const CUSTOMERS: &str = "customer_id,name,email,phone,language,timezone,country,industry,annual_revenue,credit_score,credit_limit,tags,do_not_contact
C1,Acme GmbH,ap@acme.example,,de,Europe/Berlin,DE,manufacturing,120000,640,50000,,false
C2,Globex Inc,billing@globex.example,,en,America/New_York,US,retail,,,,,false
C3,Initech,,,,,,,,,,,false
C4,Quiet Corp,ar@quiet.example,,en,UTC,US,,,,,,true
";

const INVOICES: &str =
    "invoice_id,customer_id,number,issue_date,due_date,amount,currency,disputed,dispute_opened_on
I1,C1,2027-0001,2027-02-09,2027-03-11,1200.00,USD,false,
I2,C2,2027-0002,2027-02-09,2027-03-11,800.00,USD,false,
I3,C2,2027-0003,2027-02-09,2027-03-11,350.50,USD,false,
I4,C4,2027-0004,2027-02-09,2027-03-11,999.00,USD,false,
I5,C9,2027-0005,2027-02-09,2027-03-11,10.00,USD,false,
I6,C1,2027-0006,2027-02-09,2027-03-11,12.5.0,USD,false,
";

const PAYMENTS: &str = "payment_id,invoice_id,paid_on,amount
P1,I3,2027-03-01,350.50
";

fn book(dir: &Temp) -> PathBuf {
    dir.write("data/customers.csv", CUSTOMERS);
    dir.write("data/invoices.csv", INVOICES);
    dir.write("data/payments.csv", PAYMENTS);
    dir.write(
        "data/events.jsonl",
        "{\"type\":\"promise_to_pay\",\"date\":\"2027-03-12\",\"invoice_id\":\"I2\",\"promised_until\":\"2027-03-16\"}\n{\"type\":\"nonsense\",\"date\":\"2027-03-12\"}\n",
    );
    dir.path.join("data")
}

#[test]
fn ingest_keeps_good_rows_and_reports_every_bad_one() {
    let t = Temp::new("ingest");
    let home = t.path.join("home");
    let data = book(&t);
    let out = collect(&home, &["ingest", data.to_str().unwrap()]);
    let all = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "rejects make ingest exit 1:\n{all}"
    );
    assert!(all.contains("customers.csv:4: column `email`"), "{all}");
    assert!(
        all.contains("invoices.csv:6: column `customer_id`"),
        "{all}"
    );
    assert!(all.contains("invoices.csv:7: column `amount`"), "{all}");
    assert!(all.contains("events.jsonl:2"), "{all}");
    assert!(
        all.contains("invoices:  4 new"),
        "the valid rows load:\n{all}"
    );
    let rejects = std::fs::read_to_string(home.join("rejects.csv")).unwrap();
    assert!(rejects.starts_with("file,line,column,value,reason"));
    assert_eq!(rejects.lines().count(), 1 + 4, "{rejects}");

    // Re-ingesting changes nothing new.
    let again = collect(&home, &["ingest", data.to_str().unwrap()]);
    assert!(
        text(&again).contains("invoices:  0 new, 0 updated, 4 unchanged"),
        "{}",
        text(&again)
    );
}

#[test]
fn a_month_of_sweeps_sends_mail_waits_for_approval_and_explains_itself() {
    let t = Temp::new("run");
    let home = t.path.join("home");
    let data = book(&t);
    collect(&home, &["ingest", data.to_str().unwrap()]);

    // 2027-03-08 is three business days before the due date.
    let dry = collect(&home, &["run", "--date", "2027-03-08", "--dry-run"]);
    assert!(text(&dry).contains("dry run"), "{}", text(&dry));
    assert!(!home.join("outbox").exists(), "a dry run sends nothing");

    let run = collect(&home, &["run", "--date", "2027-03-08"]);
    let all = text(&run);
    assert!(run.status.success(), "{all}");
    let emls: Vec<PathBuf> = std::fs::read_dir(home.join("outbox/2027-03-08"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        emls.len(),
        2,
        "one message each for C1 and C2 (not the do-not-contact C4):\n{all}"
    );
    let mail: Vec<String> = emls
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(
        mail.iter()
            .any(|m| m.contains("To: \"Acme GmbH\" <ap@acme.example>")),
        "{mail:?}"
    );
    assert!(
        mail.iter().all(|m| m.contains("X-Collect-Action-Ids:")),
        "every message carries its action ids"
    );
    assert!(
        !mail.iter().any(|m| m.contains("quiet.example")),
        "do-not-contact is never contacted"
    );

    // Re-running the day sends nothing twice.
    collect(&home, &["run", "--date", "2027-03-08"]);
    assert_eq!(
        std::fs::read_dir(home.join("outbox/2027-03-08"))
            .unwrap()
            .count(),
        2
    );

    // Run on to the legal letter (due + 30d = Sat 04-10 → Mon 04-12).
    let sim = collect(
        &home,
        &["simulate", "--from", "2027-03-09", "--to", "2027-04-13"],
    );
    assert!(text(&sim).contains("letter legal-notice"), "{}", text(&sim));
    for day in ["2027-03-11", "2027-03-18", "2027-03-26", "2027-04-12"] {
        let out = collect(&home, &["run", "--date", day]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let tasks = collect(&home, &["tasks", "list"]);
    let listing = text(&tasks);
    assert!(listing.contains("letter legal-notice"), "{listing}");
    let id = listing
        .lines()
        .find(|l| l.contains("letter legal-notice") && l.contains("I1"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let refused = collect(&home, &["tasks", "approve", &id]);
    assert!(!refused.status.success(), "approval needs --by");
    let ok = collect(
        &home,
        &[
            "tasks",
            "approve",
            &id,
            "--by",
            "maria",
            "--date",
            "2027-04-12",
        ],
    );
    assert!(ok.status.success(), "{}", text(&ok));
    let sent = collect(&home, &["run", "--date", "2027-04-13"]);
    assert!(
        text(&sent).contains("letter `legal-notice`"),
        "{}",
        text(&sent)
    );

    let why = collect(&home, &["explain", "I1", "--date", "2027-04-13"]);
    let w = text(&why);
    assert!(why.status.success(), "{w}");
    for needle in [
        "segment `standard`",
        "Recorded actions",
        "letter legal-notice",
        "approved",
        "(by maria)",
        "policy/standard-net30.policy:",
    ] {
        assert!(w.contains(needle), "explain shows `{needle}`:\n{w}");
    }
}

#[test]
fn diff_names_the_invoices_a_policy_change_affects() {
    let t = Temp::new("diff");
    let home = t.path.join("home");
    let data = book(&t);
    collect(&home, &["ingest", data.to_str().unwrap()]);
    let standard =
        std::fs::read_to_string(Path::new(ROOT).join("policy/standard-net30.policy")).unwrap();
    let changed = standard.replace(
        "due + 7d   email \"firm-notice\"",
        "due + 10d  email \"firm-notice\"",
    );
    assert_ne!(standard, changed);
    let new = t.write("alt/standard-net30.policy", &changed);
    // The templates sit beside the policy.
    let copy = Command::new("cp")
        .args([
            "-r",
            &format!("{ROOT}/policy/templates"),
            t.path.join("alt").to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(copy.success());
    let out = collect(
        &home,
        &[
            "diff",
            "policy/standard-net30.policy",
            new.to_str().unwrap(),
            "--from",
            "2027-03-01",
            "--to",
            "2027-04-01",
        ],
    );
    let d = text(&out);
    assert!(out.status.success(), "{d}");
    assert!(d.contains("invoice I1"), "{d}");
    assert!(d.contains("email firm-notice"), "{d}");

    // The same as Markdown, for a pull request comment.
    let out = collect(
        &home,
        &[
            "diff",
            "policy/standard-net30.policy",
            new.to_str().unwrap(),
            "--from",
            "2027-03-01",
            "--to",
            "2027-04-01",
            "--format",
            "markdown",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let md = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        md.starts_with("### Policy diff: `policy/standard-net30.policy`"),
        "{md}"
    );
    assert!(md.contains("| action | before | after | change |"), "{md}");
    assert!(md.contains("| `I1` |"), "{md}");
    assert!(md.contains("email firm-notice ("), "{md}");
}
