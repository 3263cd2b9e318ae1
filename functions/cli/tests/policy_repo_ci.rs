//! The policy repository's CI (`infra/policy-repo-ci.example.yml`) diffs a
//! pull request's policy on a synthetic book made by `collect synth`. A
//! real change — a new segment on tags and country, thresholds on credit
//! data moved — must show there: on the book the workflow used to make
//! (no tags, languages, countries or credit data) it showed nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{ROOT, Temp, collect, text};
use std::fmt::Write as _;
use std::path::Path;

const FROM: &str = "2027-03-01";
const TO: &str = "2027-04-30";

/// The shipped policy with a new segment (German wholesale customers, by
/// tag and country) and the thresholds of two segments moved.
fn changed_policy(dir: &Path) -> std::path::PathBuf {
    let shipped =
        std::fs::read_to_string(Path::new(ROOT).join("policy/standard-net30.policy")).unwrap();
    let old_rule = "segment high_risk when risk >= 60% or customer.credit_utilization > 90%";
    assert!(
        shipped.contains(old_rule),
        "the shipped policy changed: update this test"
    );
    let changed = shipped
        .replace(
            old_rule,
            "segment wholesale_de when \"wholesale\" in customer.tags and customer.country = \"DE\"\n\
             segment high_risk when risk >= 60% or customer.credit_utilization > 75%",
        )
        .replace(
            "customer.annual_revenue >= 250000 USD",
            "customer.annual_revenue >= 150000 USD",
        )
        + "\nladder wholesale_de\n  due        email \"friendly-reminder\"\n  due + 10d  email \"firm-notice\"\n";
    let policy = dir.join("standard-net30.policy");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(&policy, changed).unwrap();
    copy_dir(
        &Path::new(ROOT).join("policy/templates"),
        &dir.join("templates"),
    );
    policy
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// How many invoices `collect diff` says two policies treat differently on
/// the book in `home`.
fn treated_differently(home: &Path, new: &Path) -> usize {
    let out = collect(
        home,
        &[
            "diff",
            "policy/standard-net30.policy",
            new.to_str().unwrap(),
            "--from",
            FROM,
            "--to",
            TO,
            "--format",
            "markdown",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let md = String::from_utf8(out.stdout).unwrap();
    let count = md
        .split("**")
        .nth(1)
        .and_then(|s| s.strip_suffix(" invoice(s)"))
        .unwrap_or_else(|| panic!("no count in:\n{md}"));
    count.parse().unwrap()
}

/// The book the workflow wrote before `collect synth`: 300 customers with a
/// name, an address and a time zone, three invoices each, a third of the
/// older ones paid.
fn bare_book(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let today = chrono::NaiveDate::from_ymd_opt(2027, 3, 1).unwrap();
    let (mut c, mut i, mut p) = (
        String::from("customer_id,name,email,timezone\n"),
        String::from("invoice_id,customer_id,number,issue_date,due_date,amount,currency\n"),
        String::from("payment_id,invoice_id,paid_on,amount\n"),
    );
    let mut x: u64 = 42;
    let mut draw = |n: u64| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) % n
    };
    for n in 0..300 {
        writeln!(c, "S{n},Synthetic {n},s{n}@example.com,UTC").unwrap();
        for k in 0..3 {
            let due = today + chrono::Days::new(draw(121)) - chrono::Days::new(60);
            let issue = due - chrono::Days::new(30);
            let amount = 50 + draw(4950);
            writeln!(i, "S{n}-{k},S{n},N{n}-{k},{issue},{due},{amount}.00,USD").unwrap();
            let paid = due + chrono::Days::new(draw(26)) - chrono::Days::new(5);
            if paid < today && draw(3) == 0 {
                writeln!(p, "SP{n}-{k},S{n}-{k},{paid},{amount}.00").unwrap();
            }
        }
    }
    std::fs::write(dir.join("customers.csv"), c).unwrap();
    std::fs::write(dir.join("invoices.csv"), i).unwrap();
    std::fs::write(dir.join("payments.csv"), p).unwrap();
}

#[test]
fn a_new_segment_and_moved_thresholds_show_on_the_synthetic_book() {
    let tmp = Temp::new("policy-ci");
    let new = changed_policy(&tmp.join("pr"));
    let check = collect(&tmp.join("h"), &["check", new.to_str().unwrap()]);
    assert!(check.status.success(), "{}", text(&check));

    // The book `collect synth` writes, as the workflow makes it.
    let book = tmp.join("book");
    let out = collect(
        &tmp.join("synth"),
        &[
            "synth",
            book.to_str().unwrap(),
            "--today",
            FROM,
            "--customers",
            "150",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let customers = std::fs::read_to_string(book.join("customers.csv")).unwrap();
    for needle in ["strategic", "wholesale", ",de,", ",DE,", ",GB,"] {
        assert!(customers.contains(needle), "no `{needle}` in the book");
    }
    let home = tmp.join("home");
    let out = collect(&home, &["ingest", book.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let moved = treated_differently(&home, &new);
    assert!(moved > 0, "the change shows on the synthetic book");
    eprintln!("{moved} invoice(s) treated differently on the synthetic book");

    // The same change on the bare book the workflow used to make: nothing.
    let bare = tmp.join("bare");
    bare_book(&bare);
    let home = tmp.join("bare-home");
    let out = collect(&home, &["ingest", bare.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        treated_differently(&home, &new),
        0,
        "why the book had to change"
    );
}
