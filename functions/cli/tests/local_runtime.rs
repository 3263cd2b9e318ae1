#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The local runtime end to end, as a finance person would use it: ingest
//! CSV exports (with a bad row), run sweeps, read the outbox, explain an
//! invoice, approve a letter, simulate and diff policies.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CUSTOMERS: &str = "customer_id,name,email,phone,language,timezone,country,industry,annual_revenue,credit_score,credit_limit,tags,do_not_contact,address_line1,address_line2,postal_code,city,region
C1,Acme GmbH,ap@acme.example,,de,Europe/Berlin,DE,manufacturing,120000,640,50000,,false,Industriestraße 12,Buchhaltung,50667,Köln,
C2,Globex Inc,billing@globex.example,,en,America/New_York,US,retail,,,,,false,1 Market St,,10001,New York,NY
C3,Initech,,,,,,,,,,,false,,,,,
C4,Quiet Corp,ar@quiet.example,,en,UTC,US,,,,,,true,,,,,
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
    dir.path().join("data")
}

#[test]
fn ingest_keeps_good_rows_and_reports_every_bad_one() {
    let t = Temp::new("ingest");
    let home = t.path().join("home");
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
    let home = t.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join("config.toml"),
        "company_address = [\"Am Hafen 7\", \"20457 Hamburg\"]\ncompany_country = \"AT\"\n",
    )
    .unwrap();
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
    // The letter to Acme (German) is also a PDF, beside its .eml, with the
    // company's address from config.toml and German money.
    let day_dir = home.join("outbox/2027-04-13");
    let pdfs: Vec<PathBuf> = std::fs::read_dir(&day_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pdf"))
        .collect();
    assert_eq!(pdfs.len(), 1, "{pdfs:?}");
    let pdf = std::fs::read(&pdfs[0]).unwrap();
    let has = |needle: &str| pdf.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(pdf.starts_with(b"%PDF-"));
    // The customer's address in the window, German layout, with the
    // country's name (the company is in Austria); the pay link whole, as a
    // link, and as a QR code.
    for needle in [
        "(Am Hafen 7)",
        "(20457 Hamburg)",
        "2027-0001",
        "1.200,00 USD",
        "(Acme GmbH)",
        "(Industriestra)",
        "(Buchhaltung)",
        "(50667 K)",
        "(GERMANY)",
        "/URI (https://pay.example.com/invoice/",
    ] {
        assert!(has(needle), "`{needle}` is not in {}", pdfs[0].display());
    }
    let squares = pdf.windows(4).filter(|w| w == b" re\n").count();
    assert!(squares > 100, "a QR code: {squares} squares");
    assert!(!has("POSTAL ADDRESS"), "the address is known");
    let eml = std::fs::read_to_string(pdfs[0].with_extension("eml")).unwrap();
    assert!(eml.contains("Content-Type: application/pdf"), "{eml}");
    assert!(
        eml.contains("@example.com>\r\n"),
        "Message-ID domain: {eml}"
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
    let home = t.path().join("home");
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
            t.path().join("alt").to_str().unwrap(),
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

// ---------------------------------------------------------------- time: no sweep of a day already passed

fn outbox_day(home: &Path, day: &str) -> usize {
    std::fs::read_dir(home.join("outbox").join(day)).map_or(0, Iterator::count)
}

#[test]
fn a_day_before_the_last_sweep_is_refused_unless_backfilled() {
    let t = Temp::new("backfill");
    let home = t.path().join("home");
    let data = book(&t);
    collect(&home, &["ingest", data.to_str().unwrap()]);

    let out = collect(&home, &["run", "--date", "2027-03-10"]);
    assert!(out.status.success(), "{}", text(&out));

    // An earlier day: refused, nothing recorded or sent, and it says what
    // to do (also for a dry run, whose answer would not be what happened).
    for args in [
        &["run", "--date", "2027-03-08"][..],
        &["run", "--date", "2027-03-08", "--dry-run"][..],
    ] {
        let out = collect(&home, args);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{all}");
        for needle in [
            "refusing to sweep 2027-03-08",
            "last swept on 2027-03-10",
            "--backfill",
        ] {
            assert!(all.contains(needle), "`{needle}`:\n{all}");
        }
    }
    assert_eq!(outbox_day(&home, "2027-03-08"), 0);

    // The same day again is fine (it finishes what a run left), and so is a
    // later one.
    let out = collect(&home, &["run", "--date", "2027-03-10"]);
    assert!(out.status.success(), "{}", text(&out));

    // With --backfill the past day is decided (what is still due that day
    // is recorded and sent dated that day); the last swept day stays.
    let out = collect(&home, &["run", "--date", "2027-03-08", "--backfill"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Sweep of 2027-03-08"), "{}", text(&out));
    let out = collect(&home, &["run", "--date", "2027-03-09"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("last swept on 2027-03-10"),
        "{}",
        text(&out)
    );

    // Simulations replay earlier days on a copy: never refused.
    let sim = collect(
        &home,
        &["simulate", "--from", "2027-03-01", "--to", "2027-03-12"],
    );
    assert!(sim.status.success(), "{}", text(&sim));
    let out = collect(&home, &["run", "--date", "2027-03-11"]);
    assert!(out.status.success(), "{}", text(&out));
}

/// `collect ARGS` on `home` with the clock's date set to `today`.
fn collect_on(today: &str, home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_collect"))
        .arg("--home")
        .arg(home)
        .args(args)
        .current_dir(ROOT)
        .env("NO_COLOR", "1")
        .env("COLLECT_TODAY", today)
        .env("COLLECT_PAY_LINK_KEY", KEY)
        .env_remove("COLLECT_HOME")
        .output()
        .unwrap()
}

#[test]
fn a_day_later_than_tomorrow_is_refused_unless_asked_for() {
    let t = Temp::new("future");
    let home = t.path().join("home");
    let data = book(&t);
    collect(&home, &["ingest", data.to_str().unwrap()]);
    let today = "2027-03-09";

    // A mistyped year: refused, nothing recorded or sent, and it says why
    // and how to go on.
    for far in ["2099-06-15", "9999-12-31", "2027-03-11"] {
        let out = collect_on(today, &home, &["run", "--date", far]);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{all}");
        for needle in [
            format!("refusing to sweep {far}"),
            "later than tomorrow (2027-03-10)".to_string(),
            "buries the book".to_string(),
            "--allow-future-date".to_string(),
        ] {
            assert!(all.contains(&needle), "`{needle}`:\n{all}");
        }
        assert_eq!(outbox_day(&home, far), 0);
    }
    // A dry run records nothing: it may look ahead.
    let out = collect_on(today, &home, &["run", "--date", "2099-06-15", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    // Tomorrow is allowed, and the refused days left the book as it was:
    // the real next day is not refused as earlier than a swept one.
    let out = collect_on(today, &home, &["run", "--date", "2027-03-10"]);
    assert!(out.status.success(), "{}", text(&out));
    // Simulations run on their own clock.
    let sim = collect_on(
        today,
        &home,
        &["simulate", "--from", "2027-03-01", "--to", "2027-04-30"],
    );
    assert!(sim.status.success(), "{}", text(&sim));
    // Asked for explicitly, a later day is swept.
    let out = collect_on(
        today,
        &home,
        &["run", "--date", "2027-03-12", "--allow-future-date"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Sweep of 2027-03-12"), "{}", text(&out));
    // A clock date that is not a date is an error naming the variable.
    let out = collect_on("yesterday", &home, &["run", "--date", "2027-03-12"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("COLLECT_TODAY"), "{}", text(&out));
}

// ---------------------------------------------------------------- the policy folder's own files only

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

/// `body.txt` → a file outside the policy folder (`/etc/passwd` in the
/// issue): `check` reports it, `run` refuses to start (nothing mailed),
/// `bundle` packs nothing.
#[cfg(unix)]
#[test]
fn a_template_part_that_is_a_symbolic_link_is_refused_by_check_run_and_bundle() {
    let t = Temp::new("symlink");
    let home = t.path().join("home");
    let data = book(&t);
    collect(&home, &["ingest", data.to_str().unwrap()]);
    let secret = t.write("outside/passwd", "root:x:0:0:root:/root:/bin/bash\n");
    let folder = t.path().join("policy");
    copy_dir(&Path::new(ROOT).join("policy"), &folder);
    let body = folder.join("templates/friendly-reminder/en/body.txt");
    std::fs::remove_file(&body).unwrap();
    std::os::unix::fs::symlink(&secret, &body).unwrap();
    let policy = folder.join("standard-net30.policy");

    let out = collect(&home, &["check", folder.to_str().unwrap()]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("error[T0005]") && all.contains("friendly-reminder/en/body.txt"),
        "{all}"
    );

    for day in ["2027-03-08", "2027-03-10", "2027-03-12"] {
        let out = collect(
            &home,
            &["run", "--date", day, "--policy", policy.to_str().unwrap()],
        );
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{all}");
        assert!(all.contains("is a symbolic link"), "{all}");
        assert_eq!(outbox_day(&home, day), 0, "{all}");
    }

    let bundle = t.path().join("bundle.tar");
    let out = collect(
        &home,
        &[
            "bundle",
            folder.to_str().unwrap(),
            "--revision",
            "abc",
            "--out",
            bundle.to_str().unwrap(),
        ],
    );
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!bundle.exists(), "{}", text(&out));
}

// ---------------------------------------------------------------- the pay-link key and tokens

const KEY: &str = "test-key-test-key-test-key-test-key-0123";

/// `collect` with `COLLECT_PAY_LINK_KEY` set to `key`, or unset.
fn collect_with_key(home: &Path, key: Option<&std::ffi::OsStr>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_collect"));
    cmd.arg("--home")
        .arg(home)
        .args(args)
        .current_dir(ROOT)
        .env("NO_COLOR", "1")
        // The tests' books are dated 2027: the clock of the future-date guard.
        .env("COLLECT_TODAY", "2027-12-31");
    match key {
        Some(k) => cmd.env("COLLECT_PAY_LINK_KEY", k),
        None => cmd.env_remove("COLLECT_PAY_LINK_KEY"),
    };
    cmd.output().unwrap()
}

fn day(s: &str) -> chrono::NaiveDate {
    s.parse().unwrap()
}

#[cfg(unix)]
#[test]
fn a_key_that_is_not_utf8_or_only_blanks_is_an_error_naming_the_variable() {
    use std::os::unix::ffi::OsStrExt;
    let t = Temp::new("bad-key");
    let home = t.path().join("home");
    let mut bytes = KEY.as_bytes().to_vec();
    bytes[3] = 0xff;
    let not_utf8 = std::ffi::OsStr::from_bytes(&bytes);
    let spaces = " ".repeat(32);
    for (key, needle) in [
        (not_utf8, "is not valid UTF-8"),
        (std::ffi::OsStr::new(&spaces), "only spaces"),
        (std::ffi::OsStr::new("short"), "at least 32 characters"),
    ] {
        let out = collect_with_key(&home, Some(key), &["pay-link", "verify", "AAAA"]);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{all}");
        assert!(
            all.contains("the environment variable COLLECT_PAY_LINK_KEY") && all.contains(needle),
            "{needle}:\n{all}"
        );
        assert!(
            !home.join("pay-link.key").exists(),
            "no silent switch to a local key"
        );
    }
}

#[cfg(unix)]
#[test]
fn the_local_key_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let t = Temp::new("key-file");
    let home = t.path().join("home");
    let key_file = home.join("pay-link.key");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;

    let out = collect_with_key(&home, None, &["pay-link", "verify", "AAAA"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(mode(&key_file), 0o600);
    assert!(
        text(&out).contains(&format!("the pay-link key file {}", key_file.display())),
        "names where the key came from:\n{}",
        text(&out)
    );
    // The key file is used as it is: a token it signed verifies.
    let key = std::fs::read(&key_file).unwrap();
    let links = collect_delivery::message::PayLinks::new(&key, "https://x/{token}").unwrap();
    let token = links.token("I1", day("2027-04-30"));
    let out = collect_with_key(
        &home,
        None,
        &["pay-link", "verify", &token, "--date", "2027-04-01"],
    );
    assert!(out.status.success(), "{}", text(&out));

    // A file an earlier release left readable by everyone is tightened.
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = collect_with_key(
        &home,
        None,
        &["pay-link", "verify", &token, "--date", "2027-04-01"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(mode(&key_file), 0o600);
    assert!(
        text(&out).contains("was readable by other users (mode 644)"),
        "{}",
        text(&out)
    );
    // A blank key file is an error naming the file.
    std::fs::write(&key_file, " ".repeat(40)).unwrap();
    let out = collect_with_key(&home, None, &["pay-link", "verify", &token]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "the pay-link key file {}: the key is only spaces",
            key_file.display()
        )),
        "{}",
        text(&out)
    );
}

#[test]
fn pay_link_verify_checks_a_token_as_the_payment_page_does() {
    let t = Temp::new("verify");
    let home = t.path().join("home");
    let links =
        collect_delivery::message::PayLinks::new(KEY.as_bytes(), "https://x/{token}").unwrap();
    let token = links.token("INV-1001", day("2027-04-30"));
    let key = Some(std::ffi::OsStr::new(KEY));

    let out = collect_with_key(
        &home,
        key,
        &["pay-link", "verify", &token, "--date", "2027-04-30"],
    );
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("valid: invoice INV-1001, link valid through 2027-04-30")
            && all.contains("COLLECT_PAY_LINK_KEY"),
        "{all}"
    );
    // The whole link, as the customer clicked it (config.toml's pay_url).
    let link = format!("https://pay.example.com/invoice/{token}");
    let out = collect_with_key(
        &home,
        key,
        &[
            "pay-link",
            "verify",
            &link,
            "--date",
            "2027-04-01",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["valid"], true);
    assert_eq!(json["invoice_id"], "INV-1001");
    assert_eq!(json["expires"], "2027-04-30");

    for (token, date, needle) in [
        (token.as_str(), "2027-05-01", "expired on 2027-04-30"),
        ("not-a-token", "2027-04-01", "malformed"),
    ] {
        let out = collect_with_key(&home, key, &["pay-link", "verify", token, "--date", date]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains(needle), "{needle}:\n{}", text(&out));
    }
    // Signed with another key.
    let other = "another-key-another-key-another-key-42";
    let out = collect_with_key(
        &home,
        Some(std::ffi::OsStr::new(other)),
        &["pay-link", "verify", &token, "--date", "2027-04-01"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("bad signature"), "{}", text(&out));
}

// ---------------------------------------------------------------- failures: an outbox that cannot be written

#[test]
fn an_outbox_that_cannot_be_written_fails_the_run_and_burns_nothing() {
    let t = Temp::new("outbox-blocked");
    let home = t.path().join("home");
    let data = book(&t);
    collect(&home, &["ingest", data.to_str().unwrap()]);
    // A file where the outbox folder should be (permissions would not stop
    // a test run as root).
    std::fs::write(home.join("outbox"), "not a folder").unwrap();
    let out = collect(&home, &["run", "--date", "2027-03-08"]);
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    for needle in [
        "the mail service failed, so the run stopped sending",
        "the outbox cannot be written at",
        "nothing more was sent",
        "the 2 message(s) not sent stay planned",
        "Fix the cause and run again",
    ] {
        assert!(all.contains(needle), "`{needle}`:\n{all}");
    }
    assert!(!all.contains("FAILED"), "{all}");

    // Healthy again: the same day sends everything, once.
    std::fs::remove_file(home.join("outbox")).unwrap();
    let out = collect(&home, &["run", "--date", "2027-03-08"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(outbox_day(&home, "2027-03-08"), 2, "{}", text(&out));
    // And nothing twice, that day or the next.
    let out = collect(&home, &["run", "--date", "2027-03-09"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(outbox_day(&home, "2027-03-08"), 2);
    assert_eq!(outbox_day(&home, "2027-03-09"), 0, "{}", text(&out));
}
