#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `collect ingest` means what the ERP said: partial exports and events
//! leave what they do not mention alone, out-of-bounds values are refused
//! with file, line and field, `rejects.csv` describes the last ingest only
//! and is safe to open in a spreadsheet, and one broken file does not stop
//! the others.

mod common;
use common::*;
use std::path::{Path, PathBuf};

use collect_engine::domain::Customer;
use collect_sqlite::store::{SqliteStore, Store};

struct World {
    home: PathBuf,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let dir = tempfile::Builder::new()
            .prefix("collect-ingest-contract-")
            .tempdir()
            .unwrap();
        World {
            home: dir.path().join("home"),
            data: dir.path().join("data"),
            _dir: dir,
        }
    }

    /// Replaces the export folder with exactly these files.
    fn export(&self, files: &[(&str, &str)]) -> &Path {
        if self.data.exists() {
            std::fs::remove_dir_all(&self.data).unwrap();
        }
        std::fs::create_dir_all(&self.data).unwrap();
        for (name, text) in files {
            std::fs::write(self.data.join(name), text).unwrap();
        }
        &self.data
    }

    fn ingest(&self, files: &[(&str, &str)]) -> (Option<i32>, String) {
        let data = self.export(files).to_path_buf();
        let out = collect(&self.home, &["ingest", data.to_str().unwrap()]);
        (out.status.code(), text(&out))
    }

    fn customer(&self, id: &str) -> Customer {
        let store = SqliteStore::open(&self.home.join("collect.db")).unwrap();
        store.load_book().unwrap().customers[id].clone()
    }

    fn rejects(&self) -> String {
        std::fs::read_to_string(self.home.join("rejects.csv")).unwrap()
    }
}

const CUSTOMERS: &str = "customer_id,name,email,phone,language,timezone,country,industry,annual_revenue,credit_score,credit_limit,tags,do_not_contact
C1,Acme GmbH,ap@acme.example,+49 30 1234,de,Europe/Berlin,DE,manufacturing,120000,640,50000,vip,false
C4,Quiet Corp,ar@quiet.example,+1 555 0100,en,UTC,US,,,,,,true
";

const INVOICES: &str =
    "invoice_id,customer_id,number,issue_date,due_date,amount,currency,disputed,dispute_opened_on
I1,C1,2027-0001,2027-02-09,2027-03-11,1200.00,USD,false,
I4,C4,2027-0004,2027-02-09,2027-03-11,999.00,USD,false,
";

#[test]
fn customers_csv_without_do_not_contact_keeps_the_flag() {
    let w = World::new();
    let (code, all) = w.ingest(&[("customers.csv", CUSTOMERS)]);
    assert_eq!(code, Some(0), "{all}");
    assert!(w.customer("C4").do_not_contact);

    // The same customers from an export that has no do_not_contact (nor
    // phone) column: nothing changed, and nothing is said to have changed.
    let partial = "customer_id,name,email,language\nC1,Acme GmbH,ap@acme.example,de\nC4,Quiet Corp,ar@quiet.example,en\n";
    let (code, all) = w.ingest(&[("customers.csv", partial)]);
    assert_eq!(code, Some(0), "{all}");
    assert!(
        all.contains("customers: 0 new, 0 updated, 2 unchanged"),
        "{all}"
    );
    let c4 = w.customer("C4");
    assert!(
        c4.do_not_contact,
        "an export without the column never clears it"
    );
    assert_eq!(c4.phone.as_deref(), Some("+1 555 0100"));

    // A real change keeps the flag too.
    let renamed = "customer_id,name,email\nC4,Quiet Corporation,ar@quiet.example\n";
    let (_, all) = w.ingest(&[("customers.csv", renamed)]);
    assert!(
        all.contains("customers: 0 new, 1 updated, 0 unchanged"),
        "{all}"
    );
    let c4 = w.customer("C4");
    assert_eq!(c4.name, "Quiet Corporation");
    assert!(c4.do_not_contact);

    // An explicit empty cell clears an optional value (not the flag).
    let cleared =
        "customer_id,name,email,phone,do_not_contact\nC4,Quiet Corporation,ar@quiet.example,,\n";
    w.ingest(&[("customers.csv", cleared)]);
    let c4 = w.customer("C4");
    assert_eq!(c4.phone, None);
    assert!(c4.do_not_contact);
    // Only an explicit `false` lifts it.
    let lifted =
        "customer_id,name,email,do_not_contact\nC4,Quiet Corporation,ar@quiet.example,false\n";
    w.ingest(&[("customers.csv", lifted)]);
    assert!(!w.customer("C4").do_not_contact);
}

#[test]
fn a_customer_event_without_do_not_contact_keeps_the_flag() {
    let w = World::new();
    w.ingest(&[("customers.csv", CUSTOMERS)]);
    let event = "{\"type\":\"customer_upserted\",\"customer_id\":\"C4\",\"name\":\"Quiet Corp\",\"email\":\"billing@quiet.example\"}\n";
    let (code, all) = w.ingest(&[("events.jsonl", event)]);
    assert_eq!(code, Some(0), "{all}");
    assert!(
        all.contains("customers: 0 new, 1 updated, 0 unchanged"),
        "{all}"
    );
    let c4 = w.customer("C4");
    assert_eq!(c4.email, "billing@quiet.example");
    assert!(c4.do_not_contact);
    assert_eq!(c4.phone.as_deref(), Some("+1 555 0100"));
}

#[test]
fn out_of_bounds_values_are_refused_with_file_line_and_field() {
    let w = World::new();
    let customers = "customer_id,name,email
C1,Acme GmbH,ap@acme.example
C4,Four,<c4@x.example>
C7,Seven,c7@seven.example>
";
    let invoices = "invoice_id,customer_id,number,issue_date,due_date,amount,currency
I1,C1,1,2027-02-09,2027-03-11,100.00,USD
I2,C1,2,2027-02-09,2027-03-11,1234567890123456789012345678,USD
I3,C1,3,2027-02-09,2027-03-11,100.00,XYZ
I4,C1,4,2027-02-09,2027-03-11,12.345678901,USD
I5,C1,5,0001-02-09,2027-03-11,100.00,USD
I6,C1,6,2027-02-09,9999-03-11,100.00,USD
";
    let payments = "payment_id,invoice_id,paid_on,amount
P1,I1,2027-03-01,40.00
P2,I1,2027-03-02,1000000.00
P3,I1,2027-01-15,10.00
P4,I1,2027-03-03,9999999999999999999999999999
";
    let (code, all) = w.ingest(&[
        ("customers.csv", customers),
        ("invoices.csv", invoices),
        ("payments.csv", payments),
    ]);
    assert_eq!(code, Some(1), "{all}");
    for expected in [
        "customers.csv:3: column `email`: `<c4@x.example>` is not an email address",
        "customers.csv:4: column `email`: `c7@seven.example>` is not an email address",
        "invoices.csv:3: column `amount`: `1234567890123456789012345678` is out of range",
        "invoices.csv:4: column `currency`: `XYZ` is not an ISO 4217 currency code",
        "invoices.csv:5: column `amount`: `12.345678901` has 9 decimals; USD amounts have at most 2",
        "invoices.csv:6: column `issue_date`: `0001-02-09` is out of range",
        "invoices.csv:7: column `due_date`: `9999-03-11` is out of range",
        "payments.csv:3: column `amount`: `1000000.00` is more than the whole amount 100.00 USD of invoice `I1` (10000×)",
        "payments.csv:4: column `paid_on`: `2027-01-15` is before invoice `I1` was issued on 2027-02-09",
        "payments.csv:5: column `amount`: `9999999999999999999999999999` is out of range",
    ] {
        assert!(all.contains(expected), "missing `{expected}`:\n{all}");
    }
    assert!(all.contains("customers: 1 new"), "{all}");
    assert!(all.contains("invoices:  1 new"), "{all}");
    assert!(all.contains("payments:  1 new"), "{all}");
    let rejects = w.rejects();
    assert_eq!(rejects.lines().count(), 1 + 10, "{rejects}");
}

#[test]
fn rejects_csv_is_rewritten_and_safe_in_a_spreadsheet() {
    let w = World::new();
    let bad = "customer_id,name,email\nC1,Acme,=HYPERLINK(\"http://evil.example\";\"pay here\")\nC2,Bolt,@SUM(A1)\n";
    let (code, all) = w.ingest(&[("customers.csv", bad)]);
    assert_eq!(code, Some(1), "{all}");
    let rejects = w.rejects();
    let mut reader = csv::Reader::from_reader(rejects.as_bytes());
    let values: Vec<String> = reader.records().map(|r| r.unwrap()[3].to_owned()).collect();
    assert_eq!(
        values,
        vec![
            "'=HYPERLINK(\"http://evil.example\";\"pay here\")",
            "'@SUM(A1)"
        ]
    );

    // A clean ingest leaves no reject of the previous one behind.
    let (code, all) = w.ingest(&[(
        "customers.csv",
        "customer_id,name,email\nC1,Acme,ap@acme.example\n",
    )]);
    assert_eq!(code, Some(0), "{all}");
    assert_eq!(w.rejects(), "file,line,column,value,reason\n");
}

#[test]
fn a_broken_file_does_not_stop_the_others() {
    let w = World::new();
    let (code, all) = w.ingest(&[("customers.csv", CUSTOMERS), ("invoices.csv", INVOICES)]);
    assert_eq!(code, Some(0), "{all}");
    // invoices.csv lost its currency column; customers and payments of the
    // same ingest still load.
    let broken = "invoice_id,customer_id,number,issue_date,due_date,amount\nI9,C1,9,2027-02-09,2027-03-11,5.00\n";
    let customers = "customer_id,name,email\nC5,Five,ap@five.example\n";
    let payments = "payment_id,invoice_id,paid_on,amount\nP1,I1,2027-03-01,100.00\n";
    let (code, all) = w.ingest(&[
        ("customers.csv", customers),
        ("invoices.csv", broken),
        ("payments.csv", payments),
    ]);
    assert_eq!(code, Some(1), "{all}");
    assert!(
        all.contains("invoices.csv:1: the header lacks the required column(s) `currency`"),
        "{all}"
    );
    assert!(all.contains("customers: 1 new"), "{all}");
    assert!(all.contains("payments:  1 new"), "{all}");
    assert!(
        all.contains("1 file(s) not loaded (errors above); the other files were loaded"),
        "{all}"
    );
    assert_eq!(w.customer("C5").name, "Five");
    // The refused file is listed in rejects.csv too.
    let rejects = w.rejects();
    let rows: Vec<csv::StringRecord> = csv::Reader::from_reader(rejects.as_bytes())
        .records()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 1, "{rejects}");
    assert!(rows[0][0].ends_with("invoices.csv"), "{rejects}");
    assert_eq!((&rows[0][1], &rows[0][2]), ("1", ""), "{rejects}");
    assert!(
        rows[0][4].starts_with(
            "the file was not loaded: the header lacks the required column(s) `currency`"
        ),
        "{rejects}"
    );
}

#[test]
fn unknown_references_in_events_name_the_events_line() {
    let w = World::new();
    w.ingest(&[("customers.csv", CUSTOMERS), ("invoices.csv", INVOICES)]);
    let events = concat!(
        "{\"type\":\"dispute_opened\",\"date\":\"2027-03-12\",\"invoice_id\":\"I1\"}\n",
        "{\"type\":\"invoice_upserted\",\"invoice_id\":\"I8\",\"customer_id\":\"C9\",\"number\":\"8\",\"issue_date\":\"2027-02-09\",\"due_date\":\"2027-03-11\",\"amount\":\"10.00\",\"currency\":\"USD\"}\n",
        "\n",
        "{\"type\":\"payment_received\",\"payment_id\":\"P9\",\"invoice_id\":\"I404\",\"paid_on\":\"2027-03-01\",\"amount\":\"10.00\"}\n",
    );
    let (code, all) = w.ingest(&[("events.jsonl", events)]);
    assert_eq!(code, Some(1), "{all}");
    assert!(
        all.contains("events.jsonl:2: column `customer_id`"),
        "{all}"
    );
    assert!(
        all.contains("events.jsonl:4: column `invoice_id`: no invoice with this id; send its invoice_upserted event first"),
        "{all}"
    );
    assert!(!all.contains("invoices.csv:0"), "{all}");
    assert!(!all.contains("payments.csv:0"), "{all}");
    assert!(all.contains("events:    1 new"), "{all}");
}

/// Issue 21, item 4: ids out of the safe set, bidi controls and a megabyte
/// in names, zero payments refused with file, line and field; a
/// `dispute_closed` with no open dispute reported; invoices in a currency
/// the policy does not cover named by `collect run` and `collect check --book`.
#[test]
fn unsafe_ids_names_and_zero_payments_are_refused_and_odd_events_reported() {
    let w = World::new();
    let huge = "A".repeat(1_000_000);
    let customers = format!(
        "customer_id,name,email
C1,Acme GmbH,ap@acme.example
../../x,Path,ap@path.example
C\\2,Back Slash,ap@back.example
C3,Acme\u{202e}gnp.exe,ap@bidi.example
C5,{huge},ap@huge.example
"
    );
    let invoices = "invoice_id,customer_id,number,issue_date,due_date,amount,currency
I1,C1,1,2027-02-09,2027-03-11,100.00,USD
I2,C1,2,2027-02-09,2027-03-11,200.00,EUR
I3,C1,3,2027-02-09,2027-03-11,300.00,EUR
";
    let payments = "payment_id,invoice_id,paid_on,amount
P1,I1,2027-03-01,0
P2,I1,2027-03-01,0.00
";
    let events = r#"{"type":"dispute_closed","date":"2027-03-02","invoice_id":"I1"}
{"type":"dispute_opened","date":"2027-03-03","invoice_id":"I2"}
{"type":"dispute_closed","date":"2027-03-04","invoice_id":"I2"}
"#;
    let (code, all) = w.ingest(&[
        ("customers.csv", &customers),
        ("invoices.csv", invoices),
        ("payments.csv", payments),
        ("events.jsonl", events),
    ]);
    assert_eq!(code, Some(1), "{all}");
    for expected in [
        "customers.csv:3: column `customer_id`: `../../x` contains `..`",
        "customers.csv:4: column `customer_id`: `C\\2` contains `\\\\` (U+005C)",
        "customers.csv:5: column `name`: ",
        "invisible text-direction character",
        "customers.csv:6: column `name`: ",
        "has 1000000 characters; this text has at most 200",
        "payments.csv:2: column `amount`: `0` is zero; a payment must be more than zero",
        "payments.csv:3: column `amount`: `0.00` is zero",
        "events.jsonl:1: column `type`: `dispute_closed` on 2027-03-02 closes no open dispute of invoice `I1`",
    ] {
        assert!(all.contains(expected), "missing `{expected}`:\n{all}");
    }
    assert!(all.contains("warning: "), "{all}");
    // The closing of an opened dispute is not reported; no line is lost.
    assert!(!all.contains("events.jsonl:3"), "{all}");
    assert!(all.contains("events:    3 new"), "{all}");
    assert!(all.contains("customers: 1 new"), "{all}");

    // Two EUR invoices the USD policy does not cover: named before a run…
    let out = collect(
        &w.home,
        &["check", "policy/", "--book", w.home.to_str().unwrap()],
    );
    let checked = text(&out);
    assert!(
        checked.contains("2 open invoice(s) in EUR, which policy policy/standard-net30.policy (in USD) does not cover")
            && checked.contains("I2, I3"),
        "{checked}"
    );
    // …and by the run.
    let out = collect(&w.home, &["run", "--date", "2027-03-08", "--dry-run"]);
    let run = text(&out);
    assert!(
        run.contains("not covered by the policy: 2 invoice(s)")
            && run.contains("2 in EUR, the policy covers USD: I2, I3"),
        "{run}"
    );
}

/// Issue 21, item 7: an older export loaded after a newer one does not
/// undo it.
#[test]
fn an_older_export_loaded_late_does_not_overwrite_a_newer_one() {
    let w = World::new();
    let newer = "customer_id,name,email,updated_at
C1,Acme AG,new@acme.example,2027-03-02T10:00:00Z
";
    let older = "customer_id,name,email,updated_at
C1,Acme GmbH,old@acme.example,2027-03-01T10:00:00Z
";
    let (code, all) = w.ingest(&[("customers.csv", newer)]);
    assert_eq!(code, Some(0), "{all}");
    let (code, all) = w.ingest(&[("customers.csv", older)]);
    assert_eq!(code, Some(0), "{all}");
    assert!(
        all.contains(
            "customers: 0 new, 0 updated, 0 unchanged, 1 older than the stored record (not written)"
        ),
        "{all}"
    );
    assert_eq!(w.customer("C1").email, "new@acme.example");
    // A time that is not one is refused with its line.
    let bad = "customer_id,name,email,updated_at
C1,Acme GmbH,old@acme.example,yesterday
";
    let (code, all) = w.ingest(&[("customers.csv", bad)]);
    assert_eq!(code, Some(1), "{all}");
    assert!(
        all.contains("customers.csv:2: column `updated_at`: `yesterday` is not a time"),
        "{all}"
    );
}
