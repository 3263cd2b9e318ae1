#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `collect report` on data ingested from CSV and JSON events, as a finance
//! person would get there: ingest the ERP's exports, run the policy on a few
//! days, feed back the payments and the mail service's events, report.
//!
//! The book (amounts in USD, all issued 2027-02-09 and due 2027-03-11):
//! I1 (C1) 1000, paid on 03-10; I2 (C2) 600 and I3 (C2) 400, unpaid.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const CUSTOMERS: &str = "customer_id,name,email,phone,language,timezone,country,industry,annual_revenue,credit_score,credit_limit,tags,do_not_contact
C1,Acme Ltd,ap@acme.example,,en,UTC,GB,manufacturing,120000,640,,,false
C2,Globex Inc,billing@globex.example,,en,America/New_York,US,retail,,,,,false
";

const INVOICES: &str =
    "invoice_id,customer_id,number,issue_date,due_date,amount,currency,disputed,dispute_opened_on
I1,C1,2027-0001,2027-02-09,2027-03-11,1000.00,USD,false,
I2,C2,2027-0002,2027-02-09,2027-03-11,600.00,USD,false,
I3,C2,2027-0003,2027-02-09,2027-03-11,400.00,USD,false,
";

/// The header value `name` of every `.eml` under `dir`.
fn headers(dir: &Path, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        for line in text.lines() {
            if let Some(v) = line.strip_prefix(&format!("{name}: ")) {
                out.push(v.trim().to_string());
            }
        }
    }
    out.sort();
    out
}

/// Ingests the exports, runs three sweeps, feeds back a payment, mail
/// events and a promise. Returns the home folder.
fn prepared(t: &Temp) -> PathBuf {
    let home = t.path().join("home");
    t.write("day0/customers.csv", CUSTOMERS);
    t.write("day0/invoices.csv", INVOICES);
    ok(collect(
        &home,
        &["ingest", t.path().join("day0").to_str().unwrap()],
    ));
    // 03-08: the pre-due reminders (one message per customer).
    ok(collect(&home, &["run", "--date", "2027-03-08"]));
    let outbox = home.join("outbox/2027-03-08");
    let actions = headers(&outbox, "X-Collect-Action-Ids");
    let messages: Vec<String> = headers(&outbox, "Message-ID")
        .iter()
        .map(|m| {
            m.trim_start_matches('<')
                .split('@')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(actions.len(), 2, "{actions:?}");
    // C1's message names one action (I1); C2's two (I2, I3).
    let single = actions.iter().find(|a| !a.contains(',')).unwrap();
    let events = format!(
        "{{\"type\":\"mail_delivered\",\"date\":\"2027-03-08\",\"message_id\":\"{m0}\"}}\n\
         {{\"type\":\"mail_delivered\",\"date\":\"2027-03-08\",\"message_id\":\"{m1}\"}}\n\
         {{\"type\":\"mail_opened\",\"date\":\"2027-03-09\",\"action_id\":\"{single}\"}}\n\
         {{\"type\":\"mail_clicked\",\"date\":\"2027-03-09\",\"action_id\":\"{single}\"}}\n\
         {{\"type\":\"mail_opened\",\"date\":\"2027-03-09\",\"message_id\":\"msg-never-sent\"}}\n\
         {{\"type\":\"promise_to_pay\",\"date\":\"2027-03-09\",\"invoice_id\":\"I2\",\"promised_until\":\"2027-03-16\"}}\n",
        m0 = messages[0],
        m1 = messages[1],
    );
    t.write("day2/events.jsonl", &events);
    t.write(
        "day2/payments.csv",
        "payment_id,invoice_id,paid_on,amount\nP1,I1,2027-03-10,1000.00\n",
    );
    ok(collect(
        &home,
        &["ingest", t.path().join("day2").to_str().unwrap()],
    ));
    ok(collect(&home, &["run", "--date", "2027-03-11"]));
    ok(collect(&home, &["run", "--date", "2027-03-18"]));
    home
}

fn close(v: &serde_json::Value, expected: f64) {
    let x = v
        .as_f64()
        .unwrap_or_else(|| panic!("{v} is not a number (expected {expected})"));
    assert!((x - expected).abs() < 1e-9, "{x} vs {expected}");
}

#[test]
fn the_report_on_ingested_csv_data_in_json_csv_human_and_html() {
    let t = Temp::new("csv");
    let home = prepared(&t);

    let v: serde_json::Value =
        serde_json::from_str(&ok(collect(&home, &["report", "--format", "json"]))).unwrap();
    // Everything recorded: 02-09 (issued) to 03-18 (the last sweep), 38 days.
    assert_eq!(v["period"]["from"], "2027-02-09");
    assert_eq!(v["period"]["to"], "2027-03-18");
    assert_eq!(v["period"]["days"], 38);
    // Invoiced 2000; open at the end I2 600 + I3 400 = 1000, all past due.
    assert_eq!(v["receivables"]["invoiced"], "2000.00");
    assert_eq!(v["receivables"]["ending"], "1000.00");
    close(&v["past_due_share"], 1.0);
    // DSO = 1000 / 2000 × 38 = 19.0; best possible 0; ADD = 19.0.
    close(&v["dso"], 19.0);
    close(&v["best_possible_dso"], 0.0);
    close(&v["add"], 19.0);
    // CEI = (0 + 2000 − 1000) / (0 + 2000 − 0) = 0.5.
    close(&v["cei"], 0.5);
    for key in [
        "aging",
        "by_step",
        "by_segment",
        "by_template",
        "by_channel",
        "by_arm",
        "by_offset",
        "experiments",
    ] {
        assert!(v[key].is_array(), "`{key}` is missing");
    }
    let last = v["aging"].as_array().unwrap().last().unwrap();
    assert_eq!(last["date"], "2027-03-18");
    assert_eq!(last["d1_30"], "1000.00");

    // The three pre-due reminders (I1, I2, I3), one message each customer.
    let email = v["by_channel"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == "email")
        .unwrap();
    let pre = v["by_step"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == "standard due - 3d")
        .unwrap();
    assert_eq!(pre["actions"], 3);
    // Only I1 was paid, two days after its reminder (7 days known for all three).
    assert_eq!(pre["known_7d"], 3);
    assert_eq!(pre["paid_7d"], 1);
    close(&pre["pay_rate_7d"], 1.0 / 3.0);
    close(&pre["avg_days_to_payment"], 2.0);
    close(&pre["avg_days_past_due_at_payment"], -1.0);
    // Opened and clicked: C1's reminder, by its action id (1 of 3).
    assert_eq!(pre["opened"], 1);
    assert_eq!(pre["clicked"], 1);
    assert_eq!(pre["delivered"], 3);
    assert!(email["actions"].as_u64().unwrap() >= 3);
    // The promise on I2 answers the reminder on I2.
    assert_eq!(pre["promises"], 1);
    let a = &v["attribution"];
    assert_eq!(a["payments_matched"], 1);
    assert_eq!(a["mail_events_matched"], 4);
    assert_eq!(a["mail_events_unmatched"], 1);

    // The tone experiment: each arm's rate and interval, an uplift when
    // both arms have units, and no winner on three invoices.
    let x = v["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["experiment"] == "pre-due-tone")
        .unwrap();
    assert_eq!(x["winner"], serde_json::Value::Null);
    assert!(
        x["verdict"]
            .as_str()
            .unwrap()
            .starts_with("Nothing can be concluded"),
        "{}",
        x["verdict"]
    );
    for arm in x["arms"].as_array().unwrap() {
        for key in [
            "pay_rate",
            "ci_low",
            "ci_high",
            "n",
            "significant",
            "uplift",
        ] {
            assert!(arm.get(key).is_some(), "arm lacks `{key}`: {arm}");
        }
    }

    // A period without sales: DSO cannot be computed and says so (null).
    let march: serde_json::Value = serde_json::from_str(&ok(collect(
        &home,
        &[
            "report",
            "--from",
            "2027-03-01",
            "--to",
            "2027-03-18",
            "--format",
            "json",
        ],
    )))
    .unwrap();
    assert_eq!(march["receivables"]["beginning"], "2000.00");
    assert_eq!(march["dso"], serde_json::Value::Null);
    // CEI = (2000 + 0 − 1000) / (2000 + 0 − 0) = 0.5.
    close(&march["cei"], 0.5);

    let csv = ok(collect(&home, &["report", "--format", "csv"]));
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("section,group,measure,value"));
    for row in [
        "kpi,,dso,19.0",
        "kpi,,cei,0.5",
        "by_step,standard due - 3d,paid_7d,1",
        "aging,2027-03-18,d1_30,1000.00",
    ] {
        assert!(csv.lines().any(|l| l == row), "no row `{row}` in\n{csv}");
    }
    assert!(
        csv.lines()
            .any(|l| l.starts_with("experiment_arm,pre-due-tone | ")),
        "{csv}"
    );

    let html = t.path().join("out/report.html");
    let human = ok(collect(
        &home,
        &["report", "--html", html.to_str().unwrap()],
    ));
    for line in [
        "Collection effectiveness, 2027-02-09 to 2027-03-18",
        "DSO (days sales outstanding)",
        "19.0 days",
        "CEI (collection effectiveness)",
        "50.0%",
        "By policy step",
        "standard due - 3d",
        "pre-due-tone",
        "Nothing can be concluded",
        "Reminder timing",
        "How these are worked out",
        "HTML report with charts:",
    ] {
        assert!(human.contains(line), "missing `{line}` in\n{human}");
    }
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.matches("<svg").count() >= 4, "charts are inline SVG");
    assert!(!page.contains("<script"), "no script needed");
}

#[test]
fn the_report_on_the_demo_lists_experiments_and_measures() {
    let t = Temp::new("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_collect"))
        .arg("--home")
        .arg(t.path())
        .args(["demo", "--customers", "40", "--format", "json"])
        .current_dir(ROOT)
        .env_remove("COLLECT_HOME")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let demo: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let page = PathBuf::from(demo["report_html"].as_str().unwrap());
    assert!(page.is_file(), "{}", page.display());
    assert!(demo["what_worked"].is_array());

    let home = t.path().join("demo");
    let v: serde_json::Value =
        serde_json::from_str(&ok(collect(&home, &["report", "--format", "json"]))).unwrap();
    assert!(v["dso"].is_number());
    assert!(!v["aging"].as_array().unwrap().is_empty());
    assert!(!v["by_step"].as_array().unwrap().is_empty());
    assert!(
        v["experiments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["experiment"] == "pre-due-tone"),
        "{}",
        v["experiments"]
    );
    // The demo's customers open, click and answer emails.
    let email = v["by_channel"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == "email")
        .unwrap();
    assert!(email["open_rate"].as_f64().unwrap() > 0.0);
    assert_eq!(v["attribution"]["mail_events_unmatched"], 0);
}

#[test]
fn an_empty_home_gets_a_clear_error() {
    let t = Temp::new("empty");
    // No home at all: a hint, and no home created.
    let missing = t.path().join("typo");
    let out = collect(&missing, &["report"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no collect home at"), "{}", text(&out));
    assert!(!missing.exists());
    // A home with nothing recorded in it.
    ok(collect(t.path(), &["run", "--date", "2027-01-01"]));
    let out = collect(t.path(), &["report"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing is recorded yet"),
        "{}",
        text(&out)
    );
}

/// The lines of `text` from the one starting with `first` to the next
/// empty line.
fn section<'a>(text: &'a str, first: &str) -> Vec<&'a str> {
    text.lines()
        .skip_while(|l| !l.starts_with(first))
        .take_while(|l| !l.is_empty())
        .collect()
}

#[test]
fn the_end_of_the_ladder_stops_dunning_and_shows_in_the_recovery_rate() {
    let t = Temp::new("ladder");
    let home = prepared(&t);
    // The ERP writes I2 off and hands I3 to an agency on 03-19; a bad row
    // is refused with its file, line and field, the others still load.
    t.write(
        "day3/events.jsonl",
        "{\"type\":\"written_off\",\"date\":\"2027-03-19\",\"invoice_id\":\"I2\",\"reason\":\"customer insolvent\"}\n\
         {\"type\":\"placed_with_agency\",\"date\":\"2027-03-19\",\"invoice_id\":\"I3\",\"agency\":\"Acme Recovery\",\"by\":\"ana@example.com\"}\n\
         {\"type\":\"placed_with_agency\",\"date\":\"2027-03-19\",\"invoice_id\":\"I3\"}\n",
    );
    let out = collect(&home, &["ingest", t.path().join("day3").to_str().unwrap()]);
    let said = text(&out);
    assert!(
        said.contains("events.jsonl:3: column `agency`: is required but missing"),
        "{said}"
    );
    // No more steps for either: the call at +15d and the legal letter at
    // +30d never come, and every run says why.
    let days = [
        "2027-03-19",
        "2027-03-26",
        "2027-04-01",
        "2027-04-12",
        "2027-04-19",
    ];
    for day in days {
        let run = ok(collect(&home, &["run", "--date", day]));
        assert!(
            run.contains(
                "dunning stopped (written off or placed with an agency): 2 invoice(s): I2, I3"
            ),
            "{run}"
        );
        assert!(
            run.lines().any(|l| l.starts_with("0 message(s) ")
                && l.contains(", 0 task(s), 0 awaiting approval, 0 deferred, 0 skipped, 0 held")),
            "{day}: {run}"
        );
    }
    for day in days {
        assert!(
            !home.join("outbox").join(day).exists(),
            "a message went out on {day}"
        );
    }
    // `collect explain` says who stopped it and why.
    let why = ok(collect(&home, &["explain", "I2", "--date", "2027-03-22"]));
    assert!(
        why.contains("dunning stopped: written off on 2027-03-19 by erp: customer insolvent"),
        "{why}"
    );
    let why = ok(collect(&home, &["explain", "I3", "--date", "2027-03-22"]));
    assert!(
        why.contains(
            "dunning stopped: placed with agency `Acme Recovery` on 2027-03-19 by ana@example.com"
        ),
        "{why}"
    );

    // The report: all three invoices were due on 03-11; I1's 1000 was
    // collected, I2's 600 written off, I3's 400 placed with an agency.
    let v: serde_json::Value =
        serde_json::from_str(&ok(collect(&home, &["report", "--format", "json"]))).unwrap();
    let total = &v["recovery"]["total"];
    assert_eq!(total["invoices"], 3);
    assert_eq!(total["due"], "2000.00");
    assert_eq!(total["collected"], "1000.00");
    close(&total["recovery_rate"], 0.5);
    assert_eq!(total["written_off"], 1);
    assert_eq!(total["written_off_amount"], "600.00");
    assert_eq!(total["placed_with_agency"], 1);
    assert_eq!(total["placed_with_agency_amount"], "400.00");
    assert_eq!(v["recovery"]["by_month"][0]["key"], "2027-03");
    assert!(v["formulas"]["recovery_rate"].is_string());

    let csv = ok(collect(&home, &["report", "--format", "csv"]));
    let rows: Vec<&str> = csv.lines().filter(|l| l.starts_with("recovery")).collect();
    let human = ok(collect(&home, &["report"]));
    let html_path = t.path().join("out/ladder.html");
    ok(collect(
        &home,
        &["report", "--html", html_path.to_str().unwrap()],
    ));
    let page = std::fs::read_to_string(&html_path).unwrap();
    assert!(page.contains("<section id=\"recovery\"><h2>Recovery rate</h2>"));
    assert!(page.contains("<td>2027-03</td><td>3</td><td>2,000.00</td><td>1,000.00</td><td>50.0%</td><td>600.00 (1)</td><td>400.00 (1)</td>"), "{page}");
    insta::assert_snapshot!(
        "report_recovery",
        format!(
            "{}\n\n{}",
            section(&human, "Recovery of the invoices due in the period").join("\n"),
            rows.join("\n")
        )
    );
}
