#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `collect tasks` on a home, act by act, as a collections team uses it:
//! the queue with amounts, filters, pages and counts; approve (and when
//! it goes out), reopen, reject with a reason, bulk approve after
//! confirming the count; a call's outcomes; an address to fix; the end of
//! the ladder; roles. Every act goes through the desk
//! (`collect_delivery::work`) on the home's SQLite ledger.
//!
//! The book: two standard customers (a call on day 15, the legal letter
//! awaiting approval on day 30) and one strategic customer (the account
//! manager's calls), invoices due 2027-03-11, swept to 2027-04-12.

mod common;
use common::*;
use serde_json::Value;
use std::path::PathBuf;

const CUSTOMERS: &str = "customer_id,name,email,phone,language,timezone,country,industry,annual_revenue,credit_score,credit_limit,tags,do_not_contact
C1,Acme GmbH,ap@acme.example,,en,UTC,DE,,,,,,false
C2,Globex Inc,billing@globex.example,,en,UTC,US,,,,,,false
C3,Initech,ap@initech.example,+1 555 0100,en,UTC,US,,,,,strategic,false
";

const INVOICES: &str =
    "invoice_id,customer_id,number,issue_date,due_date,amount,currency,disputed,dispute_opened_on
I1,C1,2027-0001,2027-02-09,2027-03-11,1200.00,USD,false,
I2,C2,2027-0002,2027-02-09,2027-03-11,800.00,USD,false,
I3,C3,2027-0003,2027-02-09,2027-03-11,5000.00,USD,false,
";

const DAY: &str = "2027-04-12";

struct Home {
    _t: Temp,
    home: PathBuf,
}

impl Home {
    fn new(label: &str) -> Home {
        let t = Temp::new(label);
        t.write("data/customers.csv", CUSTOMERS);
        t.write("data/invoices.csv", INVOICES);
        t.write(
            "data/payments.csv",
            "payment_id,invoice_id,paid_on,amount\n",
        );
        let home = t.join("home");
        let data = t.join("data");
        ok(collect(&home, &["ingest", data.to_str().unwrap()]));
        for day in ["2027-03-08", "2027-03-11", "2027-03-18", "2027-03-26", DAY] {
            ok(collect(&home, &["run", "--date", day]));
        }
        Home { _t: t, home }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        collect(&self.home, args)
    }

    fn ok(&self, args: &[&str]) -> String {
        ok(self.run(args))
    }

    /// `collect tasks ARGS --date DAY --format json`, parsed.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["tasks"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--date", DAY, "--format", "json"]);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// The open work listed (every page), as JSON rows.
    fn rows(&self, filter: &[&str]) -> Vec<Value> {
        let mut args = vec!["list", "--per-page", "500"];
        args.extend_from_slice(filter);
        self.json(&args)["items"].as_array().unwrap().clone()
    }

    /// The id of the one row of `customer` of `kind`.
    fn task(&self, kind: &str, customer: &str) -> String {
        let rows: Vec<Value> = self
            .rows(&["--kind", kind])
            .into_iter()
            .filter(|r| r["customer_id"] == customer)
            .collect();
        assert_eq!(rows.len(), 1, "{rows:#?}");
        rows[0]["task_id"].as_str().unwrap().to_string()
    }

    /// `collect tasks ACT… --by maria --date DAY`: the refusal's text.
    fn refused(&self, args: &[&str]) -> String {
        let mut all = vec!["tasks"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--date", DAY]);
        let out = self.run(&all);
        assert!(!out.status.success(), "{}", text(&out));
        assert!(out.stdout.is_empty(), "{}", text(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn act(&self, args: &[&str]) -> String {
        let mut all = vec!["tasks"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--by", "maria", "--date", DAY]);
        self.ok(&all)
    }
}

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_queue_shows_amounts_filters_pages_and_counts() {
    let h = Home::new("queue");
    let list = h.ok(&["tasks", "--date", DAY]);
    let letter = list
        .lines()
        .find(|l| l.contains("letter legal-notice") && l.contains("invoice I1 "))
        .unwrap_or_else(|| panic!("{list}"));
    for needle in [
        "Acme GmbH (C1)",
        "1,200.00 USD",
        "32 day(s) overdue",
        "risk ",
        "standard",
        "queue approvals",
        "approve or reject",
    ] {
        assert!(letter.contains(needle), "`{needle}` in {letter}");
    }
    assert!(list.contains("by queue: "), "{list}");
    assert!(list.contains("approvals 2"), "{list}");

    // The default order: risk × balance, largest first.
    let all = h.rows(&[]);
    assert!(all.len() >= 4, "{all:#?}");
    let priority = |r: &Value| {
        r["risk"].as_f64().unwrap_or(0.0) * r["balance"].as_str().unwrap().parse::<f64>().unwrap()
    };
    for pair in all.windows(2) {
        assert!(priority(&pair[0]) >= priority(&pair[1]), "{pair:#?}");
    }

    // Filters.
    let letters = h.rows(&["--kind", "approval"]);
    assert_eq!(letters.len(), 2, "{letters:#?}");
    assert!(letters.iter().all(|r| r["queue"] == "approvals"));
    let large = h.rows(&["--kind", "approval", "--min-balance", "1000"]);
    assert_eq!(large.len(), 1, "{large:#?}");
    assert_eq!(large[0]["customer_id"], "C1");
    let strategic = h.rows(&["--segment", "strategic"]);
    assert!(
        !strategic.is_empty() && strategic.iter().all(|r| r["customer_id"] == "C3"),
        "{strategic:#?}"
    );
    assert!(h.rows(&["--min-days-overdue", "100"]).is_empty());
    let acme = h.rows(&["--customer", "C1"]);
    assert!(acme.iter().all(|r| r["customer_id"] == "C1"), "{acme:#?}");

    // Pages: one row a page, the footer says where the next is.
    let first = h.ok(&["tasks", "list", "--per-page", "1", "--date", DAY]);
    assert!(first.contains("page 1 of "), "{first}");
    assert!(first.contains("(next: --page 2)"), "{first}");
    let page = h.json(&["list", "--per-page", "1", "--page", "2"]);
    assert_eq!(page["page"], 2);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["task_id"], all[1]["task_id"]);

    // A filter value that is not one: the option is named.
    let bad = h.refused(&["list", "--min-balance", "lots"]);
    assert!(
        bad.contains("--min-balance") && bad.contains("not an amount"),
        "{bad}"
    );
    let bad = h.refused(&["list", "--kind", "letters"]);
    assert!(bad.contains("approval, call or fix_contact"), "{bad}");
}

#[test]
fn an_approval_says_when_it_goes_out_and_can_be_reopened_the_same_day() {
    let h = Home::new("approve");
    let id = h.task("approval", "C1");
    let refused = h.refused(&["approve", &id]);
    assert!(refused.contains("--by NAME"), "{refused}");

    let said = h.act(&["approve", &id]);
    assert!(
        said.contains(&format!(
            "{id}: approved by maria on {DAY}; goes out with the next `collect run`"
        )),
        "{said}"
    );
    assert!(
        h.rows(&["--kind", "approval"])
            .iter()
            .all(|r| r["task_id"] != id.as_str())
    );
    let twice = h.refused(&["approve", &id, "--by", "maria"]);
    assert!(twice.contains("approved"), "{twice}");

    // Reopened the same day, with a reason: open again, the trail keeps both.
    let no_reason = h.refused(&["reopen", &id, "--by", "maria"]);
    assert!(no_reason.contains("--reason"), "{no_reason}");
    let reopened = h.act(&[
        "reopen",
        &id,
        "--reason",
        "the customer called: paying today",
    ]);
    assert!(reopened.contains("reopened by maria"), "{reopened}");
    assert!(
        h.rows(&["--kind", "approval"])
            .iter()
            .any(|r| r["task_id"] == id.as_str())
    );
    let shown = h.json(&["show", &id]);
    let trail: Vec<&str> = shown["task"]["trail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert!(
        trail.ends_with(&["approved", "awaiting_approval"]),
        "{trail:?}"
    );

    // A decision of an earlier day is not reopened.
    h.act(&["approve", &id]);
    let later = h.run(&[
        "tasks",
        "reopen",
        &id,
        "--by",
        "maria",
        "--reason",
        "x",
        "--date",
        "2027-04-13",
    ]);
    assert_eq!(later.status.code(), Some(2), "{}", text(&later));
    assert!(
        text(&later).contains("only a decision taken today"),
        "{}",
        text(&later)
    );
}

#[test]
fn a_rejection_needs_a_reason_and_is_in_the_audit_trail() {
    let h = Home::new("reject");
    let id = h.task("approval", "C2");
    let missing = h.refused(&["reject", &id, "--by", "maria"]);
    assert!(missing.contains("--reason"), "{missing}");
    let blank = h.refused(&["reject", &id, "--by", "maria", "--reason", "  "]);
    assert!(blank.contains("--reason: is required"), "{blank}");
    let said = h.act(&[
        "reject",
        &id,
        "--reason",
        "key account: the CFO calls instead",
    ]);
    assert!(
        said.contains("rejected by maria on 2027-04-12: key account"),
        "{said}"
    );
    let audit: Value = serde_json::from_str(&h.ok(&["audit", "--customer", "C2"])).unwrap();
    let action = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action_id"] == id.as_str())
        .unwrap();
    assert_eq!(action["status"], "rejected");
    assert_eq!(action["approved_by"], "maria");
    let last = action["history"].as_array().unwrap().last().unwrap();
    assert_eq!(last["by"], "maria");
    assert!(
        last["note"]
            .as_str()
            .unwrap()
            .contains("the CFO calls instead"),
        "{last}"
    );
}

#[test]
fn bulk_approval_is_refused_when_the_count_differs() {
    let h = Home::new("bulk");
    let wrong = h.refused(&[
        "approve",
        "--all-matching",
        "--expect",
        "5",
        "--by",
        "maria",
    ]);
    assert!(
        wrong.contains("now matches 2 tasks, not the 5 you confirmed"),
        "{wrong}"
    );
    assert_eq!(h.rows(&["--kind", "approval"]).len(), 2);
    let said = h.act(&[
        "approve",
        "--all-matching",
        "--min-balance",
        "1000",
        "--expect",
        "1",
    ]);
    assert!(said.contains("1 approved, 0 refused"), "{said}");
    let left = h.rows(&["--kind", "approval"]);
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(left[0]["customer_id"], "C2");
    let json = h.json(&[
        "approve",
        "--all-matching",
        "--expect",
        "1",
        "--by",
        "maria",
    ]);
    assert_eq!(json["approved"].as_array().unwrap().len(), 1, "{json:#}");
}

#[test]
fn a_calls_outcomes_are_recorded() {
    let h = Home::new("calls");
    let c1 = h.task("call", "C1");
    let c2 = h.task("call", "C2");

    // Nothing said about the call: the choices are named.
    let nothing = h.refused(&["call", &c1, "--by", "maria"]);
    assert!(
        nothing.contains("--promised") && nothing.contains("--no-answer"),
        "{nothing}"
    );
    let past = h.refused(&["call", &c1, "--by", "maria", "--promised", "2027-01-01"]);
    assert!(
        past.contains("--promised: a promise to pay is dated from today"),
        "{past}"
    );

    // A promise to pay: the call is done, the promise holds the invoice.
    let said = h.act(&[
        "call",
        &c1,
        "--promised",
        "2027-04-30",
        "--note",
        "CFO on the phone",
    ]);
    assert!(said.contains("promised to pay by 2027-04-30"), "{said}");
    assert!(
        h.rows(&["--kind", "call"])
            .iter()
            .all(|r| r["task_id"] != c1.as_str())
    );
    let customer = h.ok(&["explain", "I1", "--date", "2027-04-13"]);
    assert!(customer.to_lowercase().contains("promise"), "{customer}");

    // No answer: out of the queue until the call comes back.
    let said = h.act(&["call", &c2, "--no-answer"]);
    assert!(said.contains("call again on 2027-04-14"), "{said}");
    assert!(
        h.rows(&["--kind", "call"])
            .iter()
            .all(|r| r["task_id"] != c2.as_str())
    );
    let later: Value = serde_json::from_str(&h.ok(&[
        "tasks",
        "list",
        "--kind",
        "call",
        "--date",
        "2027-04-14",
        "--format",
        "json",
    ]))
    .unwrap();
    assert!(
        later["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["task_id"] == c2.as_str()),
        "{later:#}"
    );

    // A note: the task stays.
    let said = h.act(&["call", &c2, "--note", "left a voicemail"]);
    assert!(
        said.contains("note by maria on 2027-04-12: left a voicemail"),
        "{said}"
    );

    // Wrong contact: an address to fix, closed once fixed.
    let bad = h.refused(&[
        "call",
        &c2,
        "--by",
        "maria",
        "--wrong-contact",
        "--email",
        "not-an-address",
    ]);
    assert!(
        bad.contains("--email: `not-an-address` is not an email address"),
        "{bad}"
    );
    let said = h.act(&[
        "call",
        &c2,
        "--wrong-contact",
        "--email",
        "ap@globex.example",
    ]);
    assert!(said.starts_with("hold-C2: "), "{said}");
    assert!(said.contains("new email: ap@globex.example"), "{said}");
    let holds = h.rows(&["--kind", "fix_contact"]);
    assert_eq!(holds.len(), 1, "{holds:#?}");
    assert_eq!(holds[0]["task_id"], "hold-C2");
    // `done` on a call already worked (a promise): told who did it.
    let again = h.refused(&["done", &c1, "--by", "maria"]);
    assert!(
        again.contains("cannot be worked as a call") && again.contains("by maria"),
        "{again}"
    );
    let closed = h.act(&["done", "hold-C2", "--note", "ERP corrected"]);
    assert!(
        closed.contains("hold-C2: closed by maria on 2027-04-12"),
        "{closed}"
    );
    assert!(h.rows(&["--kind", "fix_contact"]).is_empty());
}

#[test]
fn the_end_of_the_ladder_is_decided_with_a_reason() {
    let h = Home::new("ladder");
    let missing = h.refused(&["close-account", "C1", "--write-off", "--by", "maria"]);
    assert!(missing.contains("--reason"), "{missing}");
    let neither = h.refused(&["close-account", "C1", "--reason", "x", "--by", "maria"]);
    assert!(
        neither.contains("--agency NAME, --write-off or --keep-working"),
        "{neither}"
    );
    let said = h.act(&[
        "close-account",
        "C1",
        "--write-off",
        "--reason",
        "insolvent",
    ]);
    assert!(said.contains("written off"), "{said}");
    let said = h.act(&[
        "close-account",
        "C2",
        "--invoice",
        "I2",
        "--agency",
        "Acme Collect",
        "--reason",
        "no answer for 60 days",
    ]);
    assert!(said.contains("Acme Collect"), "{said}");
    let unknown = h.refused(&[
        "close-account",
        "C2",
        "--invoice",
        "I9",
        "--keep-working",
        "--reason",
        "x",
        "--by",
        "maria",
    ]);
    assert!(
        unknown.contains("--invoice: `I9` is not an open invoice"),
        "{unknown}"
    );
    // Dunning stopped: the next sweep sends neither customer anything.
    let run = h.ok(&["run", "--date", "2027-04-13"]);
    assert!(
        !run.contains("ap@acme.example") && !run.contains("billing@globex.example"),
        "{run}"
    );
}

#[test]
fn roles_limit_what_a_person_may_do() {
    let h = Home::new("roles");
    let id = h.task("approval", "C1");
    let call = h.task("call", "C1");
    let auditor = h.refused(&["approve", &id, "--by", "audrey", "--role", "auditor"]);
    assert!(
        auditor.contains("a auditor may not approve or reject letters")
            || auditor.contains("an auditor may not"),
        "{auditor}"
    );
    let collector = h.refused(&["approve", &id, "--by", "carl", "--role", "collector"]);
    assert!(collector.contains("may not approve"), "{collector}");
    let approver = h.refused(&[
        "call",
        &call,
        "--no-answer",
        "--by",
        "ann",
        "--role",
        "approver",
    ]);
    assert!(approver.contains("may not record calls"), "{approver}");
    let bad = h.refused(&["list", "--role", "boss"]);
    assert!(
        bad.contains("collector, approver, auditor or admin"),
        "{bad}"
    );
    // An auditor reads.
    let list = h.ok(&["tasks", "--role", "auditor", "--date", DAY]);
    assert!(list.contains(&id), "{list}");
    let said = h.act(&["call", &call, "--no-answer", "--role", "collector"]);
    assert!(said.contains("no answer"), "{said}");
}
