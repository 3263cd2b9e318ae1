#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The operator's reproductions, with the real binary: `collect run` killed
//! with SIGKILL while it sends, then the ERP changes, then a rerun (the same
//! day, or the next); two `collect run` of one home at the same moment.
//! Never a message to a do-not-contact customer or for a paid invoice,
//! never the same message twice, no half-written file left behind.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const KEY: &str = "test-key-test-key-test-key-test-key-0123";
const DAY: &str = "2027-03-10";
const NEXT: &str = "2027-03-11";
const CUSTOMERS: usize = 1500;

fn command(home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_collect"));
    c.arg("--home")
        .arg(home)
        .args(args)
        .current_dir(ROOT)
        .env("NO_COLOR", "1")
        // The tests' books are dated 2027: the clock of the future-date guard.
        .env("COLLECT_TODAY", "2027-12-31")
        .env("COLLECT_PAY_LINK_KEY", KEY);
    c
}

fn collect(home: &Path, args: &[&str]) -> Output {
    command(home, args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A book where every customer is due a reminder on [`DAY`].
fn write_book(dir: &Path, do_not_contact: bool) {
    let mut customers = String::from(
        "customer_id,name,email,phone,language,timezone,country,industry,annual_revenue,credit_score,credit_limit,tags,do_not_contact\n",
    );
    let mut invoices = String::from(
        "invoice_id,customer_id,number,issue_date,due_date,amount,currency,disputed,dispute_opened_on\n",
    );
    for k in 0..CUSTOMERS {
        customers.push_str(&format!(
            "C{k},Customer {k},ap{k}@example.com,,en,UTC,US,,,,,,{do_not_contact}\n"
        ));
        invoices.push_str(&format!(
            "I{k},C{k},2027-{k:05},2027-02-08,2027-03-10,{}.00,USD,false,\n",
            100 + k
        ));
    }
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("customers.csv"), customers).unwrap();
    std::fs::write(dir.join("invoices.csv"), invoices).unwrap();
}

fn write_payments(dir: &Path) {
    let mut payments = String::from("payment_id,invoice_id,paid_on,amount\n");
    for k in 0..CUSTOMERS {
        payments.push_str(&format!("P{k},I{k},{DAY},{}.00\n", 100 + k));
    }
    std::fs::write(dir.join("payments.csv"), payments).unwrap();
}

/// Every file under the outbox: (path relative to it, message id).
fn outbox(home: &Path) -> Vec<(PathBuf, String)> {
    let root = home.join("outbox");
    let mut out = Vec::new();
    let Ok(days) = std::fs::read_dir(&root) else {
        return out;
    };
    for d in days.filter_map(Result::ok) {
        for f in std::fs::read_dir(d.path()).unwrap().filter_map(Result::ok) {
            let name = f.file_name().to_string_lossy().to_string();
            out.push((
                f.path().strip_prefix(&root).unwrap().to_path_buf(),
                name.trim_end_matches(".eml").to_string(),
            ));
        }
    }
    out
}

fn assert_clean_outbox(home: &Path) -> usize {
    let files = outbox(home);
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (path, id) in &files {
        assert!(
            path.extension().is_some_and(|x| x == "eml"),
            "a half-written file stayed behind: {}",
            path.display()
        );
        *ids.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "written twice: {twice:?}");
    files.len()
}

/// Starts `collect run`, kills it (SIGKILL) as soon as it has written a few
/// messages; returns how many it had written by then.
fn run_and_kill(home: &Path, date: &str) -> usize {
    let mut child: Child = command(home, &["run", "--date", date])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let written = outbox(home).len();
        if written >= 20 || started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            // What it had written whole by the time it died.
            return outbox(home)
                .iter()
                .filter(|(p, _)| p.extension().is_some_and(|x| x == "eml"))
                .count();
        }
        if child.try_wait().unwrap().is_some() {
            return outbox(home).len();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn setup(label: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::Builder::new().prefix(label).tempdir().unwrap();
    let home = tmp.path().join("home");
    let data = tmp.path().join("data");
    write_book(&data, false);
    let out = collect(&home, &["ingest", data.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    (tmp, home, data)
}

#[test]
fn killed_while_sending_then_everyone_do_not_contact() {
    let (_tmp, home, data) = setup("crash-dnc");
    let before = run_and_kill(&home, DAY);
    assert!(
        before < CUSTOMERS,
        "the run ended before it could be killed"
    );
    write_book(&data, true);
    let out = collect(&home, &["ingest", data.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let out = collect(&home, &["run", "--date", DAY]);
    assert!(out.status.success(), "{}", text(&out));
    // Nothing more went out: what was left over was checked again.
    assert_eq!(assert_clean_outbox(&home), before, "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("do-not-contact"),
        "{}",
        text(&out)
    );
}

#[test]
fn killed_while_sending_then_everything_paid() {
    let (_tmp, home, data) = setup("crash-paid");
    let before = run_and_kill(&home, DAY);
    write_payments(&data);
    let out = collect(&home, &["ingest", data.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let out = collect(&home, &["run", "--date", DAY]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(assert_clean_outbox(&home), before, "{}", text(&out));
}

#[test]
fn killed_while_sending_then_the_next_day() {
    let (_tmp, home, _data) = setup("crash-next");
    run_and_kill(&home, DAY);
    let out = collect(&home, &["run", "--date", NEXT]);
    assert!(out.status.success(), "{}", text(&out));
    // Every customer got the reminder once, under one Message-ID, on
    // whichever day it went out.
    assert_eq!(assert_clean_outbox(&home), CUSTOMERS, "{}", text(&out));
    let out = collect(&home, &["run", "--date", NEXT]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(assert_clean_outbox(&home), CUSTOMERS);
}

#[test]
fn two_runs_at_once() {
    let (_tmp, home, _data) = setup("two-runs");
    let spawn = || {
        command(&home, &["run", "--date", DAY])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let refused: Vec<&Output> = outs.iter().filter(|o| !o.status.success()).collect();
    for o in &refused {
        assert!(
            String::from_utf8_lossy(&o.stderr)
                .contains("another sweep of this home is running (pid"),
            "{}",
            text(o)
        );
    }
    assert!(refused.len() <= 1, "{}\n{}", text(&outs[0]), text(&outs[1]));
    assert_eq!(assert_clean_outbox(&home), CUSTOMERS);

    // With --wait, a second run waits for the first and then finds nothing to do.
    let (a, b) = (
        spawn(),
        command(&home, &["run", "--date", DAY, "--wait"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(b.status.success(), "{}", text(&b));
    let _ = a;
    assert_eq!(assert_clean_outbox(&home), CUSTOMERS);
}
