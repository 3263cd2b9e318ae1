#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! What people read, as reviewed snapshots (`tests/snapshots/output__*.snap`):
//! the text of `collect run`, `collect explain` (by invoice id, by action
//! id, by the `.eml`'s Message-ID), `collect tasks show` and `collect diff`
//! (for people and as Markdown), each on a small home the test builds.
//!
//! The home: the standard policy copied into a temporary folder (so no Git
//! revision is recorded), two customers — Acme GmbH with invoice I1
//! (1,200.00 USD), Globex Inc with I2 (800.00 USD), I3 (350.50 USD, paid
//! on 2027-03-01) and I4 (120.00 USD) — all due Thursday 2027-03-11, and
//! the pay-link key of the tests. Swept on 2027-03-08 (three days before the due date), then on
//! the due date, a week after, on the day of the call, and on 2027-04-12,
//! when the legal letters wait for a person.
//!
//! Commands run inside the temporary folder, as finance ops run them in
//! their policy repository: `--home home`, `--policy
//! policy/standard-net30.policy`. Revision hashes (SHA-256 of the policy
//! files, which change with every edit of the standard policy) are shown
//! as `[revision]`, and the temporary folder, should it appear, as
//! `[tmp]`; everything else is as `collect` prints it.
//! After a change in what `collect` prints, review the new snapshots with
//! `cargo insta review` (or `INSTA_UPDATE=always cargo test -p
//! collect-cli --test output` and `git diff`).

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Output};

const CUSTOMERS: &str = "customer_id,name,email,phone,language,timezone,country,industry,annual_revenue,credit_score,credit_limit,tags,do_not_contact
C1,Acme GmbH,ap@acme.example,,en,UTC,DE,manufacturing,120000,640,50000,,false
C2,Globex Inc,billing@globex.example,,en,UTC,US,retail,,,,,false
";

const INVOICES: &str =
    "invoice_id,customer_id,number,issue_date,due_date,amount,currency,disputed,dispute_opened_on
I1,C1,2027-0001,2027-02-09,2027-03-11,1200.00,USD,false,
I2,C2,2027-0002,2027-02-09,2027-03-11,800.00,USD,false,
I3,C2,2027-0003,2027-02-09,2027-03-11,350.50,USD,false,
I4,C2,2027-0004,2027-02-09,2027-03-11,120.00,USD,false,
";

const PAYMENTS: &str = "payment_id,invoice_id,paid_on,amount
P1,I3,2027-03-01,350.50
";

/// The days the home is swept, in order.
const SWEEPS: [&str; 5] = [
    "2027-03-08",
    "2027-03-11",
    "2027-03-18",
    "2027-03-26",
    "2027-04-12",
];

/// A folder with the data, a copy of the standard policy and the home.
struct World {
    dir: Temp,
    /// The policy, relative to the folder.
    policy: &'static str,
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

impl World {
    /// Ingested, not swept yet.
    fn new(label: &str) -> World {
        let dir = Temp::new(label);
        copy(&Path::new(ROOT).join("policy"), &dir.join("policy"));
        dir.write("data/customers.csv", CUSTOMERS);
        dir.write("data/invoices.csv", INVOICES);
        dir.write("data/payments.csv", PAYMENTS);
        let world = World {
            dir,
            policy: "policy/standard-net30.policy",
        };
        world.ok(&["ingest", "data"]);
        world
    }

    /// Swept on every day of [`SWEEPS`]; returns what each run printed.
    fn swept(label: &str) -> (World, Vec<String>) {
        let world = World::new(label);
        let reports = SWEEPS
            .iter()
            .map(|day| world.ok(&["run", "--date", day, "--policy", world.policy]))
            .collect();
        (world, reports)
    }

    /// `collect --home home ARGS` in the folder, with the tests' pay-link
    /// key; what it printed on stdout, which must be all it printed.
    fn ok(&self, args: &[&str]) -> String {
        let out: Output = Command::new(env!("CARGO_BIN_EXE_collect"))
            .args(["--home", "home"])
            .args(args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            // The tests' books are dated 2027: the clock of the future-date guard.
            .env("COLLECT_TODAY", "2027-12-31")
            .env("COLLECT_PAY_LINK_KEY", KEY)
            .env_remove("COLLECT_HOME")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        assert!(out.stderr.is_empty(), "{}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    /// The id of the one task `collect tasks` lists with every needle.
    fn task(&self, needles: &[&str]) -> String {
        let list = self.ok(&["tasks", "list"]);
        let lines: Vec<&str> = list
            .lines()
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .collect();
        assert_eq!(lines.len(), 1, "{list}");
        lines[0].split_whitespace().next().unwrap().to_string()
    }

    /// The Message-ID header of the `.eml` sent on `day` to `to`, as the
    /// auditor copies it (`<msg-…@…>`).
    fn message_id(&self, day: &str, to: &str) -> String {
        for e in std::fs::read_dir(self.dir.join("home/outbox").join(day)).unwrap() {
            let path = e.unwrap().path();
            if path.extension().is_none_or(|x| x != "eml") {
                continue;
            }
            let mail = std::fs::read_to_string(&path).unwrap();
            if mail.contains(to) {
                return mail
                    .lines()
                    .find_map(|l| l.strip_prefix("Message-ID: "))
                    .unwrap()
                    .trim()
                    .to_string();
            }
        }
        panic!("no message to {to} on {day}");
    }

    /// Asserts `text` against the snapshot `name`, with the temporary
    /// folder and revision hashes filtered out.
    fn snapshot(&self, name: &str, description: &str, text: &str) {
        let tmp = regex_escape(&self.dir.path().display().to_string());
        insta::with_settings!({
            description => description,
            omit_expression => true,
            filters => vec![
                (tmp.as_str(), "[tmp]"),
                (r"\b[0-9a-f]{64}\b", "[revision]"),
                (r"\b[0-9a-f]{12}\b", "[revision]"),
            ],
        }, {
            insta::assert_snapshot!(name, text);
        });
    }
}

/// `text` as a regular expression matching itself.
fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '/' || c == '-' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

#[test]
fn run_reports_each_day_of_the_sweep() {
    let (world, reports) = World::swept("snap-run");
    world.snapshot(
        "run_three_days_before_due",
        "collect run --date 2027-03-08: the pre-due reminders (one message per customer)",
        &reports[0],
    );
    world.snapshot(
        "run_legal_letters_await_approval",
        "collect run --date 2027-04-12: due + 30d (a Saturday, moved to Monday) is the legal letter, which waits for a person",
        &reports[4],
    );
}

#[test]
fn explain_an_invoice_by_its_id() {
    let (world, _) = World::swept("snap-explain-invoice");
    let text = world.ok(&["explain", "I1"]);
    world.snapshot(
        "explain_by_invoice_id",
        "collect explain I1: on the day of its latest action, with every recorded action and its trail",
        &text,
    );
}

#[test]
fn explain_an_action_by_its_id() {
    let (world, _) = World::swept("snap-explain-action");
    let id = world.task(&["letter legal-notice", "invoice I1 "]);
    let text = world.ok(&["explain", &id]);
    world.snapshot(
        "explain_by_action_id",
        "collect explain act-…: the legal letter to Acme awaiting approval",
        &text,
    );
}

#[test]
fn explain_a_letter_by_its_message_id() {
    let (world, _) = World::swept("snap-explain-message");
    let message_id = world.message_id("2027-03-08", "billing@globex.example");
    assert!(message_id.starts_with("<msg-"), "{message_id}");
    let text = world.ok(&["explain", &message_id]);
    world.snapshot(
        "explain_by_message_id",
        "collect explain '<msg-…@…>': the reminder of 2027-03-08 to Globex, one message for I2 and I4 (I3 was paid)",
        &text,
    );
}

#[test]
fn a_task_shows_its_letter_as_it_would_go_out() {
    let (world, _) = World::swept("snap-task");
    let id = world.task(&["letter legal-notice", "invoice I1 "]);
    let text = world.ok(&[
        "tasks",
        "show",
        &id,
        "--policy",
        world.policy,
        "--date",
        "2027-04-12",
    ]);
    world.snapshot(
        "tasks_show_legal_letter",
        "collect tasks show act-… --date 2027-04-12: the legal letter to Acme awaiting approval",
        &text,
    );
}

#[test]
fn diff_shows_what_moving_a_step_changes() {
    let world = World::new("snap-diff");
    // The firm notice three days later, with the same templates beside it.
    let standard = std::fs::read_to_string(world.dir.join(world.policy)).unwrap();
    let later = standard.replace(
        "due + 7d   email \"firm-notice\"",
        "due + 10d  email \"firm-notice\"",
    );
    assert_ne!(standard, later);
    world.dir.write("later/standard-net30.policy", &later);
    copy(
        &world.dir.join("policy/templates"),
        &world.dir.join("later/templates"),
    );
    let args = |format: &str| {
        world.ok(&[
            "diff",
            world.policy,
            "later/standard-net30.policy",
            "--from",
            "2027-03-01",
            "--to",
            "2027-04-01",
            "--format",
            format,
        ])
    };
    world.snapshot(
        "diff_human",
        "collect diff policy/… later/… --from 2027-03-01 --to 2027-04-01: the firm notice moved from due + 7d to due + 10d",
        &args("human"),
    );
    world.snapshot(
        "diff_markdown",
        "collect diff … --format markdown: the same, as a pull request comment",
        &args("markdown"),
    );
}

#[test]
fn a_bounced_address_is_a_task_until_a_person_closes_it() {
    let world = World::new("snap-hold");
    world.ok(&["run", "--date", "2027-03-08", "--policy", world.policy]);
    // The ERP reports that the reminder to Acme bounced for good.
    let header = world.message_id("2027-03-08", "ap@acme.example");
    let message_id = header
        .trim_start_matches('<')
        .split('@')
        .next()
        .unwrap()
        .to_string();
    world.dir.write(
        "bounces/events.jsonl",
        &format!(
            "{{\"type\":\"mail_bounced\",\"date\":\"2027-03-09\",\"event_id\":\"bounce-1\",\"message_id\":\"{message_id}\"}}\n"
        ),
    );
    let ingested = world.ok(&["ingest", "bounces"]);
    assert!(
        ingested.contains(
            "held:      customer C1: mail to ap@acme.example bounced permanently on 2027-03-09"
        ),
        "{ingested}"
    );
    // Held: the due-date notice waits, Globex's goes out.
    let run = world.ok(&["run", "--date", "2027-03-11", "--policy", world.policy]);
    assert!(run.contains("bounced permanently"), "{run}");
    let list = world.ok(&["tasks", "list", "--date", "2027-03-11"]);
    world.snapshot(
        "tasks_list_fix_the_address",
        "collect tasks list after a permanent bounce of Acme's reminder: a task to fix the address, in the contacts queue, with the customer's open balance and how to close it",
        &list,
    );
    // The same bounce ingested again holds nothing new.
    let again = world.ok(&["ingest", "bounces"]);
    assert!(!again.contains("held:"), "{again}");
    let closed = world.ok(&[
        "tasks",
        "done",
        "hold-C1",
        "--by",
        "maria",
        "--note",
        "confirmed by phone",
        "--date",
        "2027-03-11",
    ]);
    assert!(
        closed.contains("hold-C1: closed by maria on 2027-03-11"),
        "{closed}"
    );
    let list = world.ok(&["tasks", "list", "--date", "2027-03-11"]);
    assert!(!list.contains("hold-C1"), "{list}");
    // The next sweep sends the step that waited, once.
    world.ok(&["run", "--date", "2027-03-12", "--policy", world.policy]);
    world.message_id("2027-03-12", "ap@acme.example");
}
