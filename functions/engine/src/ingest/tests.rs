#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;
use crate::domain::{EventKind, PlanTerms, PostalAddress};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::json;
use std::str::FromStr;

fn day(s: &str) -> NaiveDate {
    NaiveDate::from_str(s).unwrap()
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

const CUSTOMERS_HEADER: &str = "customer_id,name,email,phone,language,timezone,country,industry,annual_revenue,credit_score,credit_limit,tags,do_not_contact";

fn customers_csv(rows: &[&str]) -> String {
    let mut text = format!("{CUSTOMERS_HEADER}\n");
    for row in rows {
        text.push_str(row);
        text.push('\n');
    }
    text
}

/// The rejects as `line column` pairs, for compact assertions.
fn spots(rejects: &[Reject]) -> Vec<(u64, &str)> {
    rejects
        .iter()
        .map(|r| (r.line, r.column.as_str()))
        .collect()
}

#[test]
fn a_good_customers_file_loads() {
    let text = customers_csv(&[
        "C1,Acme GmbH,ap@acme.example,+49 30 1234,de,Europe/Berlin,DE,manufacturing,1200000.00,712,50000.00,vip;net30,false",
        "C2,Bolt Ltd,ar@bolt.example,,,,,,,,,,",
    ]);
    let parsed = customers(text.as_bytes(), "customers.csv").unwrap();
    assert_eq!(parsed.rejects, vec![]);
    assert_eq!(parsed.records.len(), 2);
    let acme = &parsed.records[0].record;
    assert_eq!(acme.customer_id, "C1");
    assert_eq!(acme.language, "de");
    assert_eq!(acme.timezone, "Europe/Berlin");
    assert_eq!(acme.annual_revenue, Some(dec("1200000.00")));
    assert_eq!(acme.credit_score, Some(dec("712")));
    assert_eq!(acme.credit_limit, Some(dec("50000.00")));
    assert_eq!(acme.tags, vec!["vip", "net30"]);
    assert!(!acme.do_not_contact);
}

#[test]
fn empty_optionals_are_missing_not_zero() {
    let text = customers_csv(&["C2,Bolt Ltd,ar@bolt.example,,,,,,,,,,"]);
    let bolt = customers(text.as_bytes(), "customers.csv")
        .unwrap()
        .records
        .remove(0)
        .record;
    assert_eq!(bolt.phone, None);
    assert_eq!(bolt.language, "en");
    assert_eq!(bolt.timezone, "UTC");
    assert_eq!(bolt.country, None);
    assert_eq!(bolt.industry, None);
    assert_eq!(bolt.annual_revenue, None);
    assert_eq!(bolt.credit_score, None);
    assert_eq!(bolt.credit_limit, None);
    assert!(bolt.tags.is_empty());
    assert!(!bolt.do_not_contact);
}

#[test]
fn optional_columns_may_be_absent_and_order_is_free() {
    let text = "email , customer_id,name,erp_note\nap@acme.example,C1,Acme,whatever\n";
    let parsed = customers(text.as_bytes(), "customers.csv").unwrap();
    assert_eq!(parsed.rejects, vec![]);
    assert_eq!(parsed.records[0].record.email, "ap@acme.example");
    assert_eq!(parsed.records[0].record.phone, None);
}

#[test]
fn surrounding_spaces_are_trimmed() {
    let text =
        customers_csv(&[" C1 ,  Acme GmbH , ap@acme.example ,, DE-x ,,,,,,, vip ; net30 , TRUE "]);
    let parsed = customers(text.as_bytes(), "customers.csv").unwrap();
    // `DE-x` is not a language; everything else is fine once trimmed.
    assert_eq!(spots(&parsed.rejects), vec![(2, "language")]);
    let text =
        customers_csv(&[" C1 ,  Acme GmbH , ap@acme.example ,, en ,,,,,,, vip ; net30 , TRUE "]);
    let acme = customers(text.as_bytes(), "customers.csv")
        .unwrap()
        .records
        .remove(0)
        .record;
    assert_eq!(acme.customer_id, "C1");
    assert_eq!(acme.name, "Acme GmbH");
    assert_eq!(acme.tags, vec!["vip", "net30"]);
    assert!(acme.do_not_contact);
}

#[test]
fn quoted_fields_keep_their_commas_and_quotes() {
    let text = customers_csv(&[
        r#"C1,"Acme, Inc.",ap@acme.example,,,,,,"1200000.00",,,"a;b",false"#,
        r#"C2,"The ""Best"" Ltd",ar@best.example,,,,,,,,,,"#,
    ]);
    let parsed = customers(text.as_bytes(), "customers.csv").unwrap();
    assert_eq!(parsed.rejects, vec![]);
    assert_eq!(parsed.records[0].record.name, "Acme, Inc.");
    assert_eq!(parsed.records[1].record.name, r#"The "Best" Ltd"#);
}

#[test]
fn each_bad_customer_value_is_a_reject_and_the_rest_loads() {
    let text = customers_csv(&[
        "C1,Acme,ap@acme.example,,,,,,,,,,",
        "C2,Bolt,ar@bolt,,,,,,,,,,",
        "C3,Core,ar@core.example,,english,,,,,,,,",
        "C4,Dyn,ar@dyn.example,,,Mars/Olympus,,,,,,,",
        "C5,Echo,ar@echo.example,,,,,,,,12,5k,,",
        "C6,Echo,ar@echo.example,,,,,,,,\"12,5k\",,",
        "C7,Fox,ar@fox.example,,,,,,-5,,,,",
        "C8,Gulf,ar@gulf.example,,,,,,,1e3,,,",
        "C9,Hut,ar@hut.example,,,,,,,,,,yes",
        "C10,,ar@hut.example,,,,,,,,,,",
        "C1,Acme again,ap@acme.example,,,,,,,,,,",
        "C11,Ivy,ivy@ivy.example,,,,,,,,,,",
    ]);
    let parsed = customers(text.as_bytes(), "customers.csv").unwrap();
    assert_eq!(
        spots(&parsed.rejects),
        vec![
            (3, "email"),
            (4, "language"),
            (5, "timezone"),
            (6, ""),
            (7, "credit_limit"),
            (8, "annual_revenue"),
            (9, "credit_score"),
            (10, "do_not_contact"),
            (11, "name"),
            (12, "customer_id"),
        ]
    );
    let ids: Vec<&str> = parsed
        .records
        .iter()
        .map(|c| c.record.customer_id.as_str())
        .collect();
    assert_eq!(ids, vec!["C1", "C11"]);
    let limit = &parsed.rejects[4];
    assert_eq!(limit.value, "12,5k");
    assert_eq!(
        limit.to_string(),
        "customers.csv:7: column `credit_limit`: `12,5k` is not an amount like `12500.00` (`.` for decimals, no thousands separators)"
    );
    assert!(
        parsed.rejects[3]
            .reason
            .contains("14 fields but the header has 13")
    );
    assert!(
        parsed.rejects[3]
            .to_string()
            .starts_with("customers.csv:6: the row")
    );
    assert_eq!(parsed.rejects[8].reason, "is required but empty");
    let duplicate = &parsed.rejects[9];
    assert_eq!(duplicate.value, "C1");
    assert!(
        duplicate.reason.contains("on line 2"),
        "{}",
        duplicate.reason
    );
}

#[test]
fn a_row_reports_each_of_its_problems() {
    let text = customers_csv(&["C1,,not-an-address,,xx-yyyy,Nowhere,,,,,abc,,maybe"]);
    let parsed = customers(text.as_bytes(), "customers.csv").unwrap();
    assert!(parsed.records.is_empty());
    assert_eq!(
        spots(&parsed.rejects),
        vec![
            (2, "name"),
            (2, "email"),
            (2, "language"),
            (2, "timezone"),
            (2, "credit_limit"),
            (2, "do_not_contact"),
        ]
    );
}

#[test]
fn lines_are_physical_lines() {
    // A quoted value spanning two lines and a blank line: the bad row
    // after them is still reported on its line in the file.
    let text = "payment_id,invoice_id,paid_on,amount\nP1,\"I\n1\",2026-01-05,10.00\n\nP2,I2,2026-01-32,10.00\n,,,\nP3,I3,2026-01-05,-1\n";
    let parsed = payments(text.as_bytes(), "payments.csv").unwrap();
    assert_eq!(
        spots(&parsed.rejects),
        vec![(2, "invoice_id"), (5, "paid_on"), (7, "amount")]
    );
    assert_eq!(
        parsed.rejects[1].to_string(),
        "payments.csv:5: column `paid_on`: `2026-01-32` is not a date like 2026-12-01"
    );
    // The same with Windows line ends, leading blank lines and a lone
    // `\r` (old Mac) line end.
    let text = "\r\n\r\npayment_id,invoice_id,paid_on,amount\r\nP1,\"I\r\n1\",2026-01-05,10.00\r\n\r\nP2,I2,2026-01-32,10.00\rP3,I3,2026-01-05,-1\r\n";
    let parsed = payments(text.as_bytes(), "payments.csv").unwrap();
    assert_eq!(
        spots(&parsed.rejects),
        vec![(4, "invoice_id"), (7, "paid_on"), (8, "amount")]
    );
    let err = payments("\n\npayment_id\n".as_bytes(), "payments.csv").unwrap_err();
    assert!(err.to_string().starts_with("payments.csv:3: "), "{err}");
}

#[test]
fn invoices_load_and_bad_ones_are_rejected() {
    let text = "\u{feff}invoice_id,customer_id,number,issue_date,due_date,amount,currency,disputed,dispute_opened_on\n\
        I1,C1,INV-1,2026-01-01,2026-01-31,1190.00,EUR,,\n\
        I2,C1,INV-2,2026-01-01,2026-01-31,1190.00,EUR,true,2026-01-10\n\
        I3,C1,INV-3,2026-01-31,2026-01-01,10.00,EUR,false,\n\
        I4,C1,INV-4,2026-01-01,2026-01-31,0.00,EUR,,\n\
        I5,C1,INV-5,2026-01-01,2026-01-31,-10.00,EUR,,\n\
        I6,C1,INV-6,2026-01-01,2026-01-31,€10,eur,,\n\
        I7,C1,INV-7,01/01/2026,2026-01-31,10,USD,no,2026-02-30\n\
        I8,,,,,,,,\n";
    let parsed = invoices(text.as_bytes(), "invoices.csv").unwrap();
    assert_eq!(
        spots(&parsed.rejects),
        vec![
            (4, "due_date"),
            (5, "amount"),
            (6, "amount"),
            (7, "amount"),
            (7, "currency"),
            (8, "issue_date"),
            (8, "disputed"),
            (8, "dispute_opened_on"),
            (9, "customer_id"),
            (9, "number"),
            (9, "issue_date"),
            (9, "due_date"),
            (9, "amount"),
            (9, "currency"),
        ]
    );
    assert_eq!(parsed.records.len(), 2);
    let i1 = &parsed.records[0].record;
    assert_eq!(i1.amount, dec("1190.00"));
    assert!(!i1.disputed);
    assert_eq!(i1.dispute_opened_on, None);
    let i2 = &parsed.records[1].record;
    assert!(i2.disputed);
    assert_eq!(i2.dispute_opened_on, Some(day("2026-01-10")));
    assert!(
        parsed.rejects[0]
            .reason
            .contains("before the issue date 2026-01-31")
    );
    assert!(parsed.rejects[1].reason.contains("is zero"));
    assert!(parsed.rejects[2].reason.contains("is negative"));
}

#[test]
fn payments_are_more_than_zero() {
    let text = "paid_on,amount,payment_id,invoice_id\n2026-01-05,0,P1,I1\n2026-01-05,12.5,P2,I1\n2026-01-05,-0.01,P3,I1\n2026-01-05,1.2e2,P4,I1\n2026-01-05,0.00,P5,I1\n";
    let parsed = payments(text.as_bytes(), "payments.csv").unwrap();
    assert_eq!(
        spots(&parsed.rejects),
        vec![(2, "amount"), (4, "amount"), (5, "amount"), (6, "amount")]
    );
    assert_eq!(
        parsed.rejects[0].to_string(),
        "payments.csv:2: column `amount`: `0` is zero; a payment must be more than zero (leave a zero clearing entry out of the export)"
    );
    assert!(parsed.rejects[2].reason.contains("exponent"));
    assert_eq!(parsed.records.len(), 1);
    assert_eq!(parsed.records[0].amount, dec("12.5"));
    assert_eq!(parsed.records[0].paid_on, day("2026-01-05"));
    // The same rule for a `payment_received` event.
    let err = incoming_from_json(&json!({
        "type": "payment_received", "payment_id": "P9", "invoice_id": "I1",
        "paid_on": "2026-01-05", "amount": 0
    }))
    .unwrap_err();
    assert!(err.to_string().contains("is zero"), "{err}");
}

/// Ids are held to letters, digits and `- _ . : / @ +`, at most 100
/// characters, never `..` nor a leading `/`: what real ERP ids look like
/// passes, a path or a hidden character does not.
#[test]
fn ids_are_limited_to_a_safe_set() {
    for good in [
        "C-0001",
        "INV/2027/00012",
        "SO:4711",
        "10000123",
        "acme:eu:42",
        "0100018c-5e5d-4a1b-9c3e-0123456789ab",
        "ar+billing@acme",
        "v1.2",
    ] {
        assert_eq!(rules::id(good), Ok(good.to_owned()), "{good}");
    }
    let long = "A".repeat(101);
    for (bad, says) in [
        ("../../x", "`..`"),
        ("/etc/passwd", "starts with `/`"),
        ("a..b", "`..`"),
        ("C\\1", "`\\\\` (U+005C)"),
        ("C 1", "a space"),
        ("SO#4711", "`#` (U+0023)"),
        ("C\u{202e}1", "U+202E"),
        ("Kunde-\u{e4}", "U+00E4"),
        ("C\"1", "U+0022"),
        (long.as_str(), "has 101 characters; an id has at most 100"),
    ] {
        let reason = rules::id(bad).unwrap_err();
        assert!(reason.contains(says), "{bad}: {reason}");
    }
    // In a file: the file, the line and the column of each.
    let text = "invoice_id,customer_id,number,issue_date,due_date,amount,currency,disputed,dispute_opened_on\n\
        ../../x,C1,INV-1,2026-01-01,2026-01-31,10.00,EUR,,\n\
        I2,C\\1,INV-2,2026-01-01,2026-01-31,10.00,EUR,,\n\
        I3,C1,INV-3,2026-01-01,2026-01-31,10.00,EUR,,\n";
    let parsed = invoices(text.as_bytes(), "invoices.csv").unwrap();
    assert_eq!(
        spots(&parsed.rejects),
        vec![(2, "invoice_id"), (3, "customer_id")]
    );
    assert_eq!(parsed.records.len(), 1);
    // And in an event.
    let err = incoming_from_json(&json!({
        "type": "dispute_opened", "date": "2026-01-05", "invoice_id": "..\\x"
    }))
    .unwrap_err();
    assert!(err.to_string().starts_with("field `invoice_id`:"), "{err}");
}

/// Names (and every free text) refuse invisible text-direction characters
/// and a megabyte pasted into a cell; emails refuse more than RFC 5321's 254.
#[test]
fn names_refuse_bidi_controls_and_are_of_a_sane_length() {
    let huge = "A".repeat(1_000_000);
    let long_email = format!("{}@acme.example", "a".repeat(250));
    let rows = [
        "C1,Acme\u{202e}gnp.exe,ap@acme.example,,,,,,,,,,".to_string(),
        "C2,\u{2066}Acme\u{2069},ap@acme.example,,,,,,,,,,".to_string(),
        format!("C3,{huge},ap@acme.example,,,,,,,,,,"),
        format!("C4,Acme,{long_email},,,,,,,,,,"),
        "C5,Acme,ap@acme.example,,,,,,,,,vip\u{200f},".to_string(),
        "C6,أكمي للتجارة,ap@acme.example,,ar,,,,,,,,".to_string(),
    ];
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let parsed = customers(customers_csv(&rows).as_bytes(), "customers.csv").unwrap();
    assert_eq!(
        spots(&parsed.rejects),
        vec![
            (2, "name"),
            (3, "name"),
            (4, "name"),
            (5, "email"),
            (6, "tags")
        ]
    );
    assert!(parsed.rejects[0].reason.contains("text-direction"));
    assert!(
        parsed.rejects[2]
            .reason
            .contains("has 1000000 characters; this text has at most 200")
    );
    // The message quotes the value shortened; the reject keeps it whole.
    assert!(parsed.rejects[2].reason.len() < 200);
    assert_eq!(parsed.rejects[2].value.len(), 1_000_000);
    assert!(
        parsed.rejects[3].reason.contains("at most 254"),
        "{}",
        parsed.rejects[3].reason
    );
    // Right-to-left names themselves are welcome.
    assert_eq!(parsed.records.len(), 1);
    assert_eq!(parsed.records[0].record.name, "أكمي للتجارة");
}

fn dispute_event(id: &str, date: &str, kind: EventKind) -> Event {
    Event {
        event_id: id.into(),
        date: day(date),
        kind,
        invoice_id: Some("I1".into()),
        action_id: None,
        message_id: None,
        by: None,
        reason: None,
    }
}

#[test]
fn a_dispute_closed_with_no_open_dispute_is_reported() {
    let invoice = invoice_of("100.00", "EUR");
    let close = dispute_event("e2", "2026-03-10", EventKind::DisputeClosed);
    let reason = check_dispute_closed(&invoice, &[], &close).unwrap();
    assert!(
        reason.contains("closes no open dispute of invoice `I1`"),
        "{reason}"
    );
    // Opened before: fine; opened after it (or closed twice): reported.
    let open = dispute_event("e1", "2026-03-05", EventKind::DisputeOpened);
    assert_eq!(check_dispute_closed(&invoice, &[&open], &close), None);
    let late = dispute_event("e3", "2026-03-20", EventKind::DisputeOpened);
    assert!(check_dispute_closed(&invoice, &[&late], &close).is_some());
    let closed = dispute_event("e0", "2026-03-07", EventKind::DisputeClosed);
    assert!(check_dispute_closed(&invoice, &[&open, &closed], &close).is_some());
    // An invoice the export marks disputed has its dispute open.
    let mut disputed = invoice.clone();
    disputed.disputed = true;
    disputed.dispute_opened_on = Some(day("2026-03-02"));
    assert_eq!(check_dispute_closed(&disputed, &[], &close), None);
    // Other kinds are not its business.
    assert_eq!(check_dispute_closed(&invoice, &[], &open), None);
}

#[test]
fn missing_header_columns_are_all_named() {
    let text = "customer_id,mail,phone\nC1,ap@acme.example,\n";
    let err = customers(text.as_bytes(), "customers.csv").unwrap_err();
    match &err {
        IngestError::MissingColumns { missing, .. } => {
            assert_eq!(missing, &vec!["name".to_owned(), "email".to_owned()]);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "customers.csv:1: the header lacks the required column(s) `name`, `email`; it has `customer_id`, `mail`, `phone`"
    );
    let err = invoices("invoice_id\n".as_bytes(), "invoices.csv").unwrap_err();
    assert!(
        err.to_string()
            .contains("`customer_id`, `number`, `issue_date`, `due_date`, `amount`, `currency`"),
        "{err}"
    );
}

#[test]
fn whole_file_problems_are_errors() {
    assert!(matches!(
        customers("".as_bytes(), "customers.csv"),
        Err(IngestError::Empty { .. })
    ));
    assert!(matches!(
        payments(" \n\n".as_bytes(), "payments.csv"),
        Err(IngestError::Empty { .. })
    ));
    let latin1: &[u8] = b"customer_id,name,email\nC1,M\xfcller,ap@m.example\n";
    let err = customers(latin1, "customers.csv").unwrap_err();
    assert!(matches!(err, IngestError::NotUtf8 { line: 2, .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("customers.csv:2: the file is not UTF-8")
    );
    let err = payments(
        "payment_id,invoice_id,paid_on,amount,amount\n".as_bytes(),
        "payments.csv",
    )
    .unwrap_err();
    assert!(matches!(err, IngestError::DuplicateColumn { .. }), "{err}");

    struct Broken;
    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
    }
    let err = customers(Broken, "customers.csv").unwrap_err();
    assert!(err.to_string().contains("disk on fire"));
    // A header and no rows is a valid, empty file.
    let parsed = payments("payment_id,invoice_id,paid_on,amount\n".as_bytes(), "p.csv").unwrap();
    assert!(parsed.records.is_empty() && parsed.rejects.is_empty());
}

#[test]
fn rejects_are_written_as_csv() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rejects.csv");
    std::fs::write(&path, "old content that must go\n").unwrap();
    let text = customers_csv(&["C1,\"Acme, Inc.\",bad address,,,,,,,,,,"]);
    let parsed = customers(text.as_bytes(), "customers.csv").unwrap();
    write_rejects(&path, &parsed.rejects).unwrap();
    let mut reader = csv::Reader::from_path(&path).unwrap();
    assert_eq!(
        reader.headers().unwrap(),
        vec!["file", "line", "column", "value", "reason"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][0], "customers.csv");
    assert_eq!(&rows[0][1], "2");
    assert_eq!(&rows[0][2], "email");
    assert_eq!(&rows[0][3], "bad address");
    write_rejects(&path, &[]).unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "file,line,column,value,reason\n"
    );
}

fn event_of(value: serde_json::Value) -> Event {
    match incoming_from_json(&value) {
        Ok(Incoming::Event(event)) => event,
        other => panic!("not an event: {other:?}"),
    }
}

#[test]
fn json_records() {
    let customer = incoming_from_json(&json!({
        "type": "customer_upserted", "customer_id": "C1", "name": "Acme",
        "email": "ap@acme.example", "annual_revenue": 1200000, "credit_limit": "50000.00",
        "credit_score": 0.82, "tags": ["vip", " net30 "], "do_not_contact": true,
        "phone": null
    }))
    .unwrap();
    let Incoming::Customer(Patch {
        record: customer, ..
    }) = customer
    else {
        panic!("{customer:?}")
    };
    assert_eq!(customer.annual_revenue, Some(dec("1200000")));
    assert_eq!(customer.credit_limit, Some(dec("50000.00")));
    assert_eq!(customer.credit_score, Some(dec("0.82")));
    assert_eq!(customer.tags, vec!["vip", "net30"]);
    assert!(customer.do_not_contact);
    assert_eq!(customer.phone, None);
    assert_eq!(customer.language, "en");

    let tags_as_text = incoming_from_json(&json!({
        "type": "customer_upserted", "customer_id": "C1", "name": "Acme",
        "email": "ap@acme.example", "tags": "a;b"
    }));
    assert!(matches!(tags_as_text, Ok(Incoming::Customer(c)) if c.record.tags == vec!["a", "b"]));

    let invoice = incoming_from_json(&json!({
        "type": "invoice_upserted", "invoice_id": "I1", "customer_id": "C1", "number": "INV-1",
        "issue_date": "2026-01-01", "due_date": "2026-01-31", "amount": 1190.5, "currency": "EUR",
        "disputed": false
    }))
    .unwrap();
    assert!(
        matches!(&invoice, Incoming::Invoice(i) if i.record.amount == dec("1190.5") && !i.record.disputed)
    );

    let payment = incoming_from_json(&json!({
        "type": "payment_received", "payment_id": "P1", "invoice_id": "I1",
        "paid_on": "2026-01-20", "amount": "1190.50"
    }))
    .unwrap();
    assert!(matches!(&payment, Incoming::Payment(p) if p.amount == dec("1190.50")));
}

#[test]
fn json_events_of_each_type() {
    let invoice_kinds = [
        ("dispute_opened", EventKind::DisputeOpened),
        ("dispute_closed", EventKind::DisputeClosed),
    ];
    for (name, kind) in invoice_kinds {
        let event = event_of(json!({"type": name, "date": "2026-02-01", "invoice_id": "I1"}));
        assert_eq!(event.kind, kind);
        assert_eq!(event.kind.name(), name);
        assert_eq!(event.invoice_id.as_deref(), Some("I1"));
        assert_eq!(event.date, day("2026-02-01"));
    }
    let promise = event_of(json!({
        "type": "promise_to_pay", "date": "2026-02-01", "invoice_id": "I1",
        "promised_until": "2026-02-15"
    }));
    assert_eq!(
        promise.kind,
        EventKind::PromiseToPay {
            promised_until: day("2026-02-15")
        }
    );
    let plan = event_of(json!({
        "type": "plan_accepted", "date": "2026-02-01", "invoice_id": "I1",
        "installments": 3, "every_days": "30", "down_payment": "100.00"
    }));
    assert_eq!(
        plan.kind,
        EventKind::PlanAccepted(PlanTerms {
            installments: 3,
            every_days: 30,
            down_payment: dec("100.00")
        })
    );
    let plan = event_of(json!({
        "type": "plan_accepted", "date": "2026-02-01", "invoice_id": "I1",
        "installments": "6", "every_days": 14
    }));
    assert!(matches!(plan.kind, EventKind::PlanAccepted(t) if t.down_payment.is_zero()));

    let mail_kinds = [
        ("mail_delivered", EventKind::MailDelivered),
        ("mail_bounced", EventKind::MailBounced),
        ("mail_complained", EventKind::MailComplained),
        ("mail_opened", EventKind::MailOpened),
        ("mail_clicked", EventKind::MailClicked),
        ("mail_replied", EventKind::MailReplied),
    ];
    for (name, kind) in mail_kinds {
        let event = event_of(json!({"type": name, "date": "2026-02-01", "message_id": "<m1@x>"}));
        assert_eq!(event.kind.name(), name);
        assert_eq!(event.kind, kind);
        assert!(event.kind.is_mail());
        assert_eq!(event.message_id.as_deref(), Some("<m1@x>"));
        let event = event_of(json!({"type": name, "date": "2026-02-01", "action_id": "A1"}));
        assert_eq!(event.action_id.as_deref(), Some("A1"));
    }
    // Every known type parses to something: the list and the parser agree.
    for name in json::TYPES {
        let err = incoming_from_json(&json!({"type": name}))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("not a known type"), "{name}: {err}");
    }
}

#[test]
fn event_ids_are_given_or_derived_from_content() {
    let given = event_of(json!({
        "type": "dispute_opened", "date": "2026-02-01", "invoice_id": "I1", "event_id": "E-7"
    }));
    assert_eq!(given.event_id, "E-7");
    let a = json!({"type": "dispute_opened", "date": "2026-02-01", "invoice_id": "I1"});
    let b: serde_json::Value =
        serde_json::from_str(r#"{"invoice_id":"I1","date":"2026-02-01","type":"dispute_opened"}"#)
            .unwrap();
    let id = event_of(a.clone()).event_id;
    assert_eq!(id.len(), 64);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(event_of(b).event_id, id);
    let text = serde_json::to_string(&a).unwrap();
    use sha2::{Digest, Sha256};
    let expected: String = Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(id, expected);
    let other =
        event_of(json!({"type": "dispute_opened", "date": "2026-02-02", "invoice_id": "I1"}));
    assert_ne!(other.event_id, id);
}

#[test]
fn json_errors_name_the_field() {
    let err = incoming_from_json(&json!({
        "type": "dispute_opened", "date": "2026-13-01", "invoice_id": "I1"
    }))
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "field `date`: `2026-13-01` is not a date like 2026-12-01"
    );

    let err = incoming_from_json(&json!({"type": "invoice_paid", "date": "2026-01-01"}))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("field `type`: `invoice_paid` is not a known type; known types: customer_upserted, invoice_upserted"), "{err}");
    assert!(err.contains("mail_replied"));

    let err = incoming_from_json(&json!({"date": "2026-01-01"}))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("field `type`: is required"), "{err}");

    let err = incoming_from_json(&json!([1, 2])).unwrap_err().to_string();
    assert!(err.contains("not a JSON object"), "{err}");

    let err = incoming_from_json(&json!({"type": "mail_opened", "date": "2026-01-01"}))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "field `action_id`: a mail event needs `action_id` or `message_id`"
    );

    let err = incoming_from_json(&json!({"type": "promise_to_pay", "date": "2026-01-10", "invoice_id": "I1", "promised_until": "2026-01-01"})).unwrap_err().to_string();
    assert!(
        err.contains("field `promised_until`: `2026-01-01` is before the event date 2026-01-10"),
        "{err}"
    );

    let err = incoming_from_json(&json!({"type": "plan_accepted", "date": "2026-01-10"}))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "field `invoice_id`: is required but missing; field `installments`: is required but missing; field `every_days`: is required but missing"
    );

    let err = incoming_from_json(&json!({
        "type": "invoice_upserted", "invoice_id": "I1", "customer_id": {"id": "C1"}, "number": "1",
        "issue_date": "2026-01-01", "due_date": "2026-01-31", "amount": 1e21, "currency": "EUR",
        "disputed": "yes"
    }))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("field `customer_id`: `{\"id\":\"C1\"}` is an object"),
        "{err}"
    );
    assert!(
        err.contains("field `amount`: `1e+21` is not an amount"),
        "{err}"
    );
    assert!(
        err.contains("field `disputed`: `yes` is not true or false"),
        "{err}"
    );

    let err = incoming_from_json(&json!({
        "type": "customer_upserted", "customer_id": "C1", "name": "Acme", "email": "ap@acme.example",
        "tags": [1, {"x": 1}]
    }))
    .unwrap_err().to_string();
    assert!(err.contains("field `tags`"), "{err}");
}

#[test]
fn events_file_keeps_good_lines_and_rejects_bad_ones() {
    let text = concat!(
        "{\"type\":\"dispute_opened\",\"date\":\"2026-02-01\",\"invoice_id\":\"I1\"}\n",
        "\n",
        "not json\n",
        "{\"type\":\"mail_bounced\",\"date\":\"2026-02-01\"}\n",
        "{\"type\":\"payment_received\",\"payment_id\":\"P1\",\"invoice_id\":\"I1\",\"paid_on\":\"2026-02-03\",\"amount\":10}\r\n",
        "{\"type\":\"promise_to_pay\",\"date\":\"2026-02-30\",\"invoice_id\":\"I1\"}\n",
        "{\"type\":\"unheard_of\"}\n",
        "   \n",
    );
    let parsed = events(text.as_bytes(), "events.jsonl").unwrap();
    assert_eq!(parsed.records.len(), 2);
    assert!(matches!(parsed.records[1], Incoming::Payment(_)));
    assert_eq!(
        spots(&parsed.rejects),
        vec![
            (3, "json"),
            (4, "action_id"),
            (6, "date"),
            (6, "promised_until"),
            (7, "type"),
        ]
    );
    assert_eq!(parsed.rejects[2].value, "2026-02-30");
    assert_eq!(
        parsed.rejects[2].to_string(),
        "events.jsonl:6: column `date`: `2026-02-30` is not a date like 2026-12-01"
    );
    let empty = events("".as_bytes(), "events.jsonl").unwrap();
    assert!(empty.records.is_empty() && empty.rejects.is_empty());
}

// ------------------------------------------------ partial updates

fn stored_customer() -> Customer {
    Customer {
        customer_id: "C1".into(),
        name: "Acme".into(),
        email: "ap@acme.example".into(),
        phone: Some("+49 30 1234".into()),
        language: "de".into(),
        timezone: "Europe/Berlin".into(),
        country: Some("DE".into()),
        industry: Some("manufacturing".into()),
        annual_revenue: Some(dec("1200000")),
        credit_score: Some(dec("712")),
        credit_limit: Some(dec("50000")),
        tags: vec!["vip".into()],
        do_not_contact: true,
        address: PostalAddress {
            line1: Some("Hauptstraße 5".into()),
            line2: None,
            postal_code: Some("10115".into()),
            city: Some("Berlin".into()),
            region: None,
        },
    }
}

fn one_customer(text: &str) -> Patch<Customer> {
    let parsed = customers(text.as_bytes(), "customers.csv").unwrap();
    assert_eq!(parsed.rejects, vec![]);
    assert_eq!(parsed.records.len(), 1);
    parsed.records.into_iter().next().unwrap()
}

#[test]
fn a_customers_file_without_do_not_contact_keeps_the_flag() {
    let stored = stored_customer();
    let patch = one_customer("customer_id,name,email\nC1,Acme AG,ap@acme.example\n");
    assert!(patch.kept.contains(&"do_not_contact"), "{:?}", patch.kept);
    let merged = patch.apply(Some(&stored));
    assert!(
        merged.do_not_contact,
        "an export without the column never clears it"
    );
    assert_eq!(
        merged.name, "Acme AG",
        "given values replace the stored ones"
    );
    // Every optional column the file lacks keeps its value.
    assert_eq!(
        merged,
        Customer {
            name: "Acme AG".into(),
            ..stored.clone()
        }
    );
    // A customer not stored yet gets the defaults.
    let new = patch.apply(None);
    assert!(!new.do_not_contact);
    assert_eq!(
        (new.language.as_str(), new.timezone.as_str()),
        ("en", "UTC")
    );
    assert_eq!(new.phone, None);
}

#[test]
fn an_empty_cell_clears_an_optional_value_but_never_a_flag() {
    let stored = stored_customer();
    let header = "customer_id,name,email,phone,language,timezone,country,industry,annual_revenue,credit_score,credit_limit,tags,do_not_contact";
    let merged = one_customer(&format!("{header}\nC1,Acme,ap@acme.example,,,,,,,,,,\n"))
        .apply(Some(&stored));
    assert_eq!(merged.phone, None);
    assert_eq!(merged.language, "en");
    assert_eq!(merged.timezone, "UTC");
    assert_eq!(merged.country, None);
    assert_eq!(merged.annual_revenue, None);
    assert_eq!(merged.credit_limit, None);
    assert!(merged.tags.is_empty());
    assert!(
        merged.do_not_contact,
        "a blank do_not_contact is not a `false` anybody gave"
    );
    let cleared = one_customer(&format!(
        "{header}\nC1,Acme,ap@acme.example,,,,,,,,,,false\n"
    ))
    .apply(Some(&stored));
    assert!(!cleared.do_not_contact, "an explicit false clears it");
    // Only the columns present are replaced.
    let merged = one_customer("customer_id,name,email,phone,tags\nC1,Acme,ap@acme.example,,a;b\n")
        .apply(Some(&stored));
    assert_eq!(merged.phone, None);
    assert_eq!(merged.tags, vec!["a", "b"]);
    assert_eq!(merged.credit_limit, stored.credit_limit);
    assert!(merged.do_not_contact);
}

#[test]
fn a_customer_event_without_do_not_contact_keeps_the_flag() {
    let stored = stored_customer();
    let Incoming::Customer(patch) = incoming_from_json(&json!({
        "type": "customer_upserted", "customer_id": "C1", "name": "Acme",
        "email": "ap@acme.example", "phone": null, "credit_limit": "100.00"
    }))
    .unwrap() else {
        panic!()
    };
    let merged = patch.apply(Some(&stored));
    assert!(merged.do_not_contact);
    assert_eq!(merged.phone, None, "null clears, like an empty cell");
    assert_eq!(merged.credit_limit, Some(dec("100.00")));
    assert_eq!(merged.tags, stored.tags, "a field left out keeps its value");
    assert_eq!(merged.language, "de");
    // null on the flag keeps it too; an explicit false clears it.
    for (value, expected) in [
        (json!(null), true),
        (json!(false), false),
        (json!(true), true),
    ] {
        let Incoming::Customer(patch) = incoming_from_json(&json!({
            "type": "customer_upserted", "customer_id": "C1", "name": "Acme",
            "email": "ap@acme.example", "do_not_contact": value
        }))
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            patch.apply(Some(&stored)).do_not_contact,
            expected,
            "{value}"
        );
    }
}

#[test]
fn an_invoice_without_dispute_columns_keeps_the_dispute() {
    let stored = Invoice {
        invoice_id: "I1".into(),
        customer_id: "C1".into(),
        number: "INV-1".into(),
        issue_date: day("2026-01-01"),
        due_date: day("2026-01-31"),
        amount: dec("100.00"),
        currency: "EUR".into(),
        disputed: true,
        dispute_opened_on: Some(day("2026-02-03")),
    };
    let text = "invoice_id,customer_id,number,issue_date,due_date,amount,currency\nI1,C1,INV-1,2026-01-01,2026-02-15,100.00,EUR\n";
    let patch = invoices(text.as_bytes(), "invoices.csv")
        .unwrap()
        .records
        .remove(0);
    let merged = patch.apply(Some(&stored));
    assert!(merged.disputed);
    assert_eq!(merged.dispute_opened_on, Some(day("2026-02-03")));
    assert_eq!(merged.due_date, day("2026-02-15"));
    let text = "invoice_id,customer_id,number,issue_date,due_date,amount,currency,disputed,dispute_opened_on\nI1,C1,INV-1,2026-01-01,2026-02-15,100.00,EUR,false,\n";
    let patch = invoices(text.as_bytes(), "invoices.csv")
        .unwrap()
        .records
        .remove(0);
    let merged = patch.apply(Some(&stored));
    assert!(!merged.disputed);
    assert_eq!(merged.dispute_opened_on, None);
}

// ------------------------------------------------ validation

const INVOICES_HEADER: &str =
    "invoice_id,customer_id,number,issue_date,due_date,amount,currency,disputed,dispute_opened_on";

#[test]
fn invoices_out_of_bounds_are_rejected_with_file_line_and_field() {
    let text = [
        INVOICES_HEADER,
        "I1,C1,1,2026-01-01,2026-01-31,1234567890123456789012345678,USD,false,",
        "I2,C1,2,2026-01-01,2026-01-31,100.00,XYZ,false,",
        "I3,C1,3,2026-01-01,2026-01-31,12.345678901,USD,false,",
        "I4,C1,4,0001-01-01,2026-01-31,100.00,USD,false,",
        "I5,C1,5,2026-01-01,9999-12-31,100.00,USD,false,",
        "I6,C1,6,2026-01-01,2026-01-31,100.5,JPY,false,",
        "I7,C1,7,2026-01-01,2026-01-31,100,JPY,false,",
        "I8,C1,8,2026-01-01,2026-01-31,1000000000000.00,USD,false,",
    ]
    .join("\n");
    let parsed = invoices(text.as_bytes(), "invoices.csv").unwrap();
    assert_eq!(
        spots(&parsed.rejects),
        vec![
            (2, "amount"),
            (3, "currency"),
            (4, "amount"),
            (5, "issue_date"),
            (6, "due_date"),
            (7, "amount"),
        ]
    );
    let messages: Vec<String> = parsed.rejects.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        vec![
            "invoices.csv:2: column `amount`: `1234567890123456789012345678` is out of range: at most 1000000000000 (10^12) either way",
            "invoices.csv:3: column `currency`: `XYZ` is not an ISO 4217 currency code like EUR or USD",
            "invoices.csv:4: column `amount`: `12.345678901` has 9 decimals; USD amounts have at most 2",
            "invoices.csv:5: column `issue_date`: `0001-01-01` is out of range: dates are from 1990-01-01 to 2100-12-31",
            "invoices.csv:6: column `due_date`: `9999-12-31` is out of range: dates are from 1990-01-01 to 2100-12-31",
            "invoices.csv:7: column `amount`: `100.5` has 1 decimals; JPY amounts have at most 0",
        ]
    );
    let ids: Vec<&str> = parsed
        .records
        .iter()
        .map(|p| p.record.invoice_id.as_str())
        .collect();
    assert_eq!(ids, vec!["I7", "I8"]);
}

#[test]
fn malformed_addresses_are_rejected_at_ingest() {
    let text = customers_csv(&[
        "C4,Four,<c4@x.example>,,,,,,,,,,",
        "C7,Seven,c7@seven.example>,,,,,,,,,,",
        "C8,Eight,c8@eight.example,,,,,,,,,,",
    ]);
    let parsed = customers(text.as_bytes(), "customers.csv").unwrap();
    assert_eq!(spots(&parsed.rejects), vec![(2, "email"), (3, "email")]);
    assert_eq!(parsed.rejects[1].value, "c7@seven.example>");
    assert_eq!(parsed.records.len(), 1);
    // The same rule on the JSON path.
    let err = incoming_from_json(&json!({
        "type": "customer_upserted", "customer_id": "C4", "name": "Four",
        "email": "<c4@x.example>"
    }))
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("field `email`: `<c4@x.example>` is not an email address"),
        "{err}"
    );
}

#[test]
fn events_out_of_bounds_are_rejected() {
    let err = incoming_from_json(&json!({
        "type": "payment_received", "payment_id": "P1", "invoice_id": "I1",
        "paid_on": "9999-01-01", "amount": "1234567890123456789012345678"
    }))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("field `paid_on`: `9999-01-01` is out of range"),
        "{err}"
    );
    assert!(
        err.contains("field `amount`: `1234567890123456789012345678` is out of range"),
        "{err}"
    );
    let err = incoming_from_json(&json!({
        "type": "invoice_upserted", "invoice_id": "I1", "customer_id": "C1", "number": "1",
        "issue_date": "2026-01-01", "due_date": "2026-01-31", "amount": "12.345678901",
        "currency": "USD"
    }))
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "field `amount`: `12.345678901` has 9 decimals; USD amounts have at most 2"
    );
}

fn invoice_of(amount: &str, currency: &str) -> Invoice {
    Invoice {
        invoice_id: "I1".into(),
        customer_id: "C1".into(),
        number: "INV-1".into(),
        issue_date: day("2026-03-01"),
        due_date: day("2026-03-31"),
        amount: dec(amount),
        currency: currency.into(),
        disputed: false,
        dispute_opened_on: None,
    }
}

fn payment_of(paid_on: &str, amount: &str) -> Payment {
    Payment {
        payment_id: "P1".into(),
        invoice_id: "I1".into(),
        paid_on: day(paid_on),
        amount: dec(amount),
    }
}

#[test]
fn payments_are_checked_against_their_invoice() {
    let invoice = invoice_of("100.00", "USD");
    assert_eq!(
        check_payment(&payment_of("2026-03-01", "100.00"), &invoice),
        vec![]
    );
    assert_eq!(
        check_payment(&payment_of("2026-04-10", "40"), &invoice),
        vec![]
    );

    let before = check_payment(&payment_of("2026-02-27", "100.00"), &invoice);
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].column, "paid_on");
    assert_eq!(
        before[0].clone().at("payments.csv", 4).to_string(),
        "payments.csv:4: column `paid_on`: `2026-02-27` is before invoice `I1` was issued on 2026-03-01"
    );

    let huge = check_payment(&payment_of("2026-03-10", "1000000.00"), &invoice);
    assert_eq!(huge.len(), 1);
    assert_eq!(huge[0].column, "amount");
    assert_eq!(
        huge[0].reason,
        "`1000000.00` is more than the whole amount 100.00 USD of invoice `I1` (10000×)"
    );
    assert!(!check_payment(&payment_of("2026-03-10", "100.01"), &invoice).is_empty());

    let decimals = check_payment(&payment_of("2026-03-10", "1.001"), &invoice);
    assert_eq!(decimals.len(), 1);
    assert!(decimals[0].reason.contains("USD amounts have at most 2"));
    let yen = invoice_of("1000", "JPY");
    assert_eq!(
        check_payment(&payment_of("2026-03-10", "999.5"), &yen).len(),
        1
    );
}

// ------------------------------------------------ rejects.csv

#[test]
fn a_file_refused_as_a_whole_is_a_row_of_rejects() {
    let err = invoices("invoice_id,customer_id\nI1,C1\n".as_bytes(), "invoices.csv").unwrap_err();
    let row = err.reject();
    assert_eq!(
        (row.file.as_str(), row.line, row.column.as_str()),
        ("invoices.csv", 1, "")
    );
    assert!(
        row.reason.starts_with(
            "the file was not loaded: the header lacks the required column(s) `number`"
        ),
        "{}",
        row.reason
    );
    let empty = customers("".as_bytes(), "customers.csv")
        .unwrap_err()
        .reject();
    assert_eq!(empty.line, 1);
    assert!(
        empty
            .reason
            .starts_with("the file was not loaded: the file is empty"),
        "{}",
        empty.reason
    );
}

#[test]
fn rejects_file_escapes_formulas_and_is_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rejects.csv");
    let reject = |value: &str| Reject {
        file: "customers.csv".into(),
        line: 2,
        column: "name".into(),
        value: value.into(),
        reason: format!("{} is bad", rules::quote(value)),
    };
    let values = [
        "=HYPERLINK(\"http://evil.example\",\"click\")",
        "+1",
        "-2+3",
        "@SUM(A1)",
        "\tx",
        "\rx",
        "plain",
    ];
    let rejects: Vec<Reject> = values.iter().map(|v| reject(v)).collect();
    write_rejects(&path, &rejects).unwrap();
    let mut reader = csv::Reader::from_path(&path).unwrap();
    let cells: Vec<String> = reader
        .records()
        .map(|r| r.unwrap().get(3).unwrap().to_owned())
        .collect();
    let expected: Vec<String> = values
        .iter()
        .map(|v| {
            if *v == "plain" {
                (*v).to_owned()
            } else {
                format!("'{v}")
            }
        })
        .collect();
    assert_eq!(
        cells, expected,
        "the original value stays visible after the `'`"
    );
    assert_eq!(spreadsheet_safe("a=b"), "a=b");

    // A clean ingest leaves a header only, nothing from before.
    write_rejects(&path, &[]).unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "file,line,column,value,reason\n"
    );
}

mod never_panic {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            ".{0,12}".prop_map(serde_json::Value::from),
            "[0-9]{4}-[0-9]{2}-[0-9]{2}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("type".to_owned()),
                        Just("date".to_owned()),
                        Just("amount".to_owned()),
                        Just("tags".to_owned()),
                        "[a-z_]{1,12}",
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Events with a known type and arbitrary other fields, to reach
    /// past the type check.
    fn typed_event() -> impl Strategy<Value = serde_json::Value> {
        (
            prop::sample::select(json::TYPES.to_vec()),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "date",
                    "invoice_id",
                    "action_id",
                    "message_id",
                    "promised_until",
                    "installments",
                    "every_days",
                    "down_payment",
                    "customer_id",
                    "name",
                    "email",
                    "amount",
                    "currency",
                    "issue_date",
                    "due_date",
                    "tags",
                    "paid_on",
                    "payment_id",
                    "number",
                    "timezone",
                    "language",
                    "event_id",
                ]),
                json_value(),
                0..12,
            ),
        )
            .prop_map(|(kind, fields)| {
                let mut map = serde_json::Map::new();
                map.insert("type".to_owned(), serde_json::Value::from(kind));
                for (k, v) in fields {
                    map.insert(k.to_owned(), v);
                }
                serde_json::Value::Object(map)
            })
    }

    proptest! {
        #[test]
        fn csv_parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let _ = customers(bytes.as_slice(), "c.csv");
            let _ = invoices(bytes.as_slice(), "i.csv");
            let _ = payments(bytes.as_slice(), "p.csv");
            let _ = events(bytes.as_slice(), "e.jsonl");
        }

        #[test]
        fn csv_rows_never_panic(rows in prop::collection::vec("[ -~\"\n,;é€]{0,60}", 0..8)) {
            let body = rows.join("\n");
            let text = format!("{CUSTOMERS_HEADER}\n{body}");
            let _ = customers(text.as_bytes(), "c.csv");
            let text = format!("invoice_id,customer_id,number,issue_date,due_date,amount,currency,disputed,dispute_opened_on\n{body}");
            let _ = invoices(text.as_bytes(), "i.csv");
            let text = format!("payment_id,invoice_id,paid_on,amount\n{body}");
            let parsed = payments(text.as_bytes(), "p.csv");
            if let Ok(parsed) = parsed {
                let lines = u64::try_from(text.lines().count()).unwrap();
                for r in &parsed.rejects {
                    prop_assert!(r.line >= 2 && r.line <= lines, "{r}");
                    let _ = r.to_string();
                }
            }
        }

        #[test]
        fn json_parser_never_panics(value in json_value()) {
            let _ = incoming_from_json(&value);
        }

        #[test]
        fn typed_events_never_panic(value in typed_event()) {
            let _ = incoming_from_json(&value);
            let line = serde_json::to_string(&value).unwrap();
            let _ = events(line.as_bytes(), "e.jsonl");
        }

        #[test]
        fn event_lines_never_panic(text in "[ -~\n{}\":,\\[\\]]{0,200}") {
            let _ = events(text.as_bytes(), "e.jsonl");
        }
    }
}

// ------------------------------------------------ postal address

#[test]
fn a_postal_address_loads_and_is_optional() {
    let text = "customer_id,name,email,country,address_line1,address_line2,postal_code,city,region\n\
        C1,Acme Inc,ap@acme.example,US,1 Market St,Suite 400,94105,San Francisco,CA\n\
        C2,Bolt Ltd,ar@bolt.example,GB,,,,,\n";
    let parsed = customers(text.as_bytes(), "customers.csv").unwrap();
    assert_eq!(parsed.rejects, vec![]);
    let acme = &parsed.records[0].record;
    assert_eq!(
        acme.address,
        PostalAddress {
            line1: Some("1 Market St".into()),
            line2: Some("Suite 400".into()),
            postal_code: Some("94105".into()),
            city: Some("San Francisco".into()),
            region: Some("CA".into()),
        }
    );
    assert!(parsed.records[1].record.address.is_empty());
    // A file without the address columns loads, and keeps a stored address.
    let patch = one_customer("customer_id,name,email\nC1,Acme,ap@acme.example\n");
    assert!(patch.kept.contains(&"address_line1"), "{:?}", patch.kept);
    let stored = stored_customer();
    assert_eq!(patch.apply(Some(&stored)).address, stored.address);
    // An empty cell clears the part it stands for.
    let merged = one_customer("customer_id,name,email,address_line1\nC1,Acme,ap@acme.example,\n")
        .apply(Some(&stored));
    assert_eq!(merged.address.line1, None);
    assert_eq!(merged.address.city.as_deref(), Some("Berlin"));
}

#[test]
fn bad_address_parts_are_rejected_with_file_line_and_column() {
    let header = "customer_id,name,email,address_line1,postal_code,city,region";
    let long_city = "x".repeat(61);
    let text = format!(
        "{header}\n\
         C1,Acme,ap@acme.example,\"Main St 1{rlo}9\",,,\n\
         C2,Bolt,ar@bolt.example,,12345678901234567,{long_city},\n\
         C3,Core,ap@core.example,\"Line{bell}Bell\",,,\n\
         C4,Dash,ap@dash.example,Ring 2,1010,Wien,{isolate}W\n\
         C5,Fine,ap@fine.example,Ring 3,1010,Wien,W\n",
        isolate = '\u{2067}',
        rlo = '\u{202e}',
        bell = '\u{7}',
    );
    let parsed = customers(text.as_bytes(), "customers.csv").unwrap();
    assert_eq!(
        spots(&parsed.rejects),
        vec![
            (2, "address_line1"),
            (3, "postal_code"),
            (3, "city"),
            (4, "address_line1"),
            (5, "region"),
        ]
    );
    assert_eq!(parsed.records.len(), 1, "the good row still loads");
    assert_eq!(
        parsed.rejects[0].to_string(),
        "customers.csv:2: column `address_line1`: `Main St 1\u{202e}9` contains an invisible \
         text-direction character (U+200E, U+202A–U+202E, U+2066–U+2069, …); retype the value"
    );
    assert_eq!(
        parsed.rejects[1].to_string(),
        "customers.csv:3: column `postal_code`: `12345678901234567` has 17 characters; \
         an address part has at most 16"
    );
    assert!(parsed.rejects[3].reason.contains("control character"));
}

#[test]
fn a_customer_event_carries_the_address() {
    let value = json!({"type": "customer_upserted", "customer_id": "C1", "name": "Acme",
        "email": "ap@acme.example", "country": "DE", "address_line1": "Hauptstraße 5",
        "postal_code": "10115", "city": "Berlin"});
    let Ok(Incoming::Customer(patch)) = incoming_from_json(&value) else {
        panic!("a customer");
    };
    assert_eq!(patch.record.address, stored_customer().address);
    let bad = json!({"type": "customer_upserted", "customer_id": "C1", "name": "Acme",
        "email": "ap@acme.example", "city": "B\u{202d}erlin"});
    let refused = incoming_from_json(&bad).err().unwrap();
    assert!(
        refused.to_string().starts_with("field `city`: "),
        "{refused}"
    );
}

// ------------------------------------------------ end of the ladder

#[test]
fn erp_reported_write_offs_and_agency_placements_are_read() {
    let text = concat!(
        "{\"type\":\"written_off\",\"date\":\"2027-04-02\",\"invoice_id\":\"I1\"}\n",
        "{\"type\":\"written_off\",\"date\":\"2027-04-02\",\"invoice_id\":\"I2\",\"amount\":\"120.50\",\"reason\":\"short payment\"}\n",
        "{\"type\":\"placed_with_agency\",\"date\":\"2027-04-03\",\"invoice_id\":\"I3\",\"agency\":\"Acme Recovery\",\"by\":\"ana@example.com\",\"reason\":\"no answer\"}\n",
        "{\"type\":\"kept_working\",\"date\":\"2027-04-04\",\"invoice_id\":\"I4\",\"by\":\"bo\"}\n",
    );
    let parsed = events(text.as_bytes(), "events.jsonl").unwrap();
    assert!(parsed.rejects.is_empty(), "{:?}", parsed.rejects);
    let got: Vec<Event> = parsed
        .records
        .into_iter()
        .map(|r| match r {
            Incoming::Event(e) => e,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got[0].kind, EventKind::WrittenOff { amount: None });
    // The ERP decided, unless the event names someone.
    assert_eq!(got[0].by.as_deref(), Some("erp"));
    assert_eq!(got[0].reason, None);
    assert_eq!(
        got[1].kind,
        EventKind::WrittenOff {
            amount: Some(dec("120.50"))
        }
    );
    assert_eq!(got[1].reason.as_deref(), Some("short payment"));
    assert_eq!(
        got[2].kind,
        EventKind::PlacedWithAgency {
            agency: "Acme Recovery".into()
        }
    );
    assert_eq!(got[2].by.as_deref(), Some("ana@example.com"));
    assert_eq!(got[2].reason.as_deref(), Some("no answer"));
    assert_eq!(got[3].kind, EventKind::KeptWorking);
    assert_eq!(got[3].by.as_deref(), Some("bo"));
    assert_eq!(got[3].invoice_id.as_deref(), Some("I4"));
    // Other events carry no `by` unless given.
    let e = event_of(json!({"type":"dispute_opened","date":"2027-04-01","invoice_id":"I1"}));
    assert_eq!(e.by, None);
}

#[test]
fn bad_end_of_ladder_rows_are_rejected_with_line_and_field() {
    let text = concat!(
        "{\"type\":\"written_off\",\"date\":\"2027-04-02\"}\n",
        "{\"type\":\"written_off\",\"date\":\"2027-04-02\",\"invoice_id\":\"I1\",\"amount\":\"-5\"}\n",
        "{\"type\":\"written_off\",\"date\":\"2027-04-02\",\"invoice_id\":\"I1\",\"amount\":\"0\"}\n",
        "{\"type\":\"written_off\",\"date\":\"2027-04-02\",\"invoice_id\":\"I1\",\"amount\":\"lots\"}\n",
        "{\"type\":\"placed_with_agency\",\"date\":\"2027-04-02\",\"invoice_id\":\"I1\"}\n",
        "{\"type\":\"placed_with_agency\",\"date\":\"2027-04-02\",\"invoice_id\":\"I1\",\"agency\":\"\"}\n",
        "{\"type\":\"kept_working\",\"invoice_id\":\"I1\",\"reason\":\"line one\\nline two\"}\n",
        "{\"type\":\"placed_with_agency\",\"date\":\"2027-04-02\",\"invoice_id\":\"I1\",\"agency\":[\"A\"]}\n",
        "{\"type\":\"written_off\",\"date\":\"2027-04-02\",\"invoice_id\":\"I9\",\"amount\":\"10\"}\n",
    );
    let parsed = events(text.as_bytes(), "erp/events.jsonl").unwrap();
    assert_eq!(parsed.records.len(), 1, "only the last line is good");
    assert_eq!(parsed.lines, vec![9]);
    assert_eq!(
        spots(&parsed.rejects),
        vec![
            (1, "invoice_id"),
            (2, "amount"),
            (3, "amount"),
            (4, "amount"),
            (5, "agency"),
            (6, "agency"),
            (7, "date"),
            (7, "reason"),
            (8, "agency"),
        ]
    );
    let said: Vec<String> = parsed.rejects.iter().map(ToString::to_string).collect();
    assert_eq!(
        said[1],
        "erp/events.jsonl:2: column `amount`: `-5` is not more than zero; a write-off amount \
         must be more than zero (leave `amount` out to write off the whole balance)"
    );
    assert_eq!(
        said[4],
        "erp/events.jsonl:5: column `agency`: is required but missing"
    );
    assert!(said[3].contains("`lots`"), "{}", said[3]);
}

/// A reader that sees a file in parts (a CSV drop's chunks) refuses a
/// duplicate in the reader's own words.
#[test]
fn a_duplicate_found_elsewhere_reads_as_the_readers_own() {
    let text =
        "payment_id,invoice_id,paid_on,amount\nP1,I1,2026-01-02,1.00\nP1,I1,2026-01-03,2.00\n";
    let parsed = payments(text.as_bytes(), "payments.csv").unwrap();
    assert_eq!(parsed.rejects.len(), 1, "{:?}", parsed.rejects);
    assert_eq!(
        parsed.rejects[0],
        duplicate("payments.csv", 3, "payment_id", "P1", 2)
    );
}
