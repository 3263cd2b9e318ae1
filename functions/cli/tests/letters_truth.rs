#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! What the demo's letters say is true of every invoice they list: every
//! message of `collect demo`'s outbox (English and German, subject, text
//! and HTML) is read back and no invoice is called past due unless it is
//! past due on the day the message went out (due today is not). The
//! reading is `collect_testkit::letters`; the same check runs on a
//! generated book in `collect-sqlite`'s `tests/letters_truth.rs`.
//!
//! The messages are also dated on the day they went out in the
//! simulation (`Date:`), not on the day the demo was played.

use collect_sqlite::store::{SqliteStore, Store};
use collect_testkit::letters::{Eml, Listed, Sent, Tally};
use std::collections::HashMap;
use std::process::Command;

mod common;
use common::{Temp, text};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

#[test]
fn no_demo_letter_calls_an_invoice_past_due_that_is_not() {
    let home = Temp::new("letters-truth");
    let out = Command::new(env!("CARGO_BIN_EXE_collect"))
        .arg("--home")
        .arg(home.path())
        .args(["demo", "--format", "json"])
        .current_dir(ROOT)
        .env("NO_COLOR", "1")
        .env_remove("COLLECT_HOME")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let demo = home.path().join("demo");
    let store = SqliteStore::open(&demo.join("collect.db")).unwrap();
    let book = store.load_book().unwrap();
    let by_id: HashMap<&str, Listed> = book
        .invoices
        .iter()
        .map(|i| {
            (
                i.invoice_id.as_str(),
                Listed {
                    number: i.number.clone(),
                    due: i.due_date,
                },
            )
        })
        .collect();
    let invoice_of: HashMap<String, String> = store
        .actions()
        .unwrap()
        .into_iter()
        .map(|a| (a.action_id.to_string(), a.invoice_id.to_string()))
        .collect();

    let mut tally = Tally::default();
    let mut dates = Vec::new();
    for day_dir in std::fs::read_dir(demo.join("outbox")).unwrap() {
        let day_dir = day_dir.unwrap().path();
        // `.tmp` holds the files being written (atomically).
        if !day_dir.is_dir() || day_dir.file_name().is_some_and(|n| n == ".tmp") {
            continue;
        }
        let name = day_dir.file_name().unwrap().to_str().unwrap();
        let day: chrono::NaiveDate = name
            .parse()
            .unwrap_or_else(|e| panic!("outbox/{name}: not a day: {e}"));
        for file in std::fs::read_dir(&day_dir).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_none_or(|x| x != "eml") {
                continue;
            }
            let eml = Eml::parse(&std::fs::read_to_string(&file).unwrap());
            let mut invoices: Vec<Listed> = Vec::new();
            for action in eml.header("X-Collect-Action-Ids").unwrap().split(',') {
                let invoice = &invoice_of[action.trim()];
                let listed = by_id[invoice.as_str()].clone();
                if !invoices.contains(&listed) {
                    invoices.push(listed);
                }
            }
            let lang = eml
                .html
                .split("lang=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("?")
                .to_string();
            let sent = Sent {
                name: file
                    .strip_prefix(&demo)
                    .unwrap_or(&file)
                    .display()
                    .to_string(),
                day,
                subject: eml.header("Subject").unwrap().to_string(),
                text: eml.text.clone(),
                html: eml.html.clone(),
                invoices,
            };
            tally.add(&sent, &lang);
            let date = chrono::DateTime::parse_from_rfc2822(eml.header("Date").unwrap()).unwrap();
            if date.date_naive() != day {
                dates.push(format!("{}: Date: {date}", sent.name));
            }
        }
    }
    tally.assert_all_true("the demo");
    assert!(
        dates.is_empty(),
        "messages not dated on the simulated day they were sent:\n{}",
        dates.join("\n")
    );
}
