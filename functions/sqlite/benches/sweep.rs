//! Benchmark: one local sweep over a generated book of open invoices
//! (score + decide + record + render/send), on one core.
//!
//! `cargo bench -p collect-sqlite --bench sweep`
//!
//! Environment:
//! - `COLLECT_BENCH_INVOICES`: open invoices (default 1,000,000); customers
//!   are a fifth of that;
//! - `COLLECT_BENCH_OUTBOX=1`: send to a real `.eml` outbox instead of the
//!   `NullMailer` (which still renders and builds every message);
//! - `COLLECT_BENCH_SWEEPS`: how many sweeps (default 2): the first one on
//!   the sweep day, the second the day after (the steady state: only the
//!   steps newly due, over a store that now holds the first sweep's
//!   records), each in its own process; 0 only generates and ingests.
//!   With more than 2, a history run: before each sweep after the first,
//!   that day's ERP changes (payments, new invoices, disputes, promises,
//!   plans) are ingested, one line per day is printed, and a summary
//!   compares the first next-day sweep with the last (issue 9: within
//!   ±20 % after 90 days of history);
//! - `COLLECT_BENCH_SEED`: the generator's seed (default 1);
//! - `COLLECT_BENCH_HISTORY_MONTHS=N`: each customer's settled history is
//!   one invoice a month for N months before the window (48: four years)
//!   instead of one to three invoices;
//! - `COLLECT_BENCH_CUSTOMERS=C` with `COLLECT_BENCH_PER_CUSTOMER=K`: the
//!   flat book, C customers each issuing K invoices over the 90 days
//!   (`COLLECT_BENCH_INVOICES` is then ignored; the open count is printed);
//! - `COLLECT_BENCH_DIR=DIR`: keep the database in DIR. To profile one
//!   sweep alone, ingest with `COLLECT_BENCH_SWEEPS=0`, copy the file, then
//!   run the bench binary with `COLLECT_BENCH_CHILD_DB=FILE` (and
//!   `COLLECT_BENCH_CHILD_DAY=N` for the sweep N days later), e.g. under
//!   `perf record --call-graph dwarf,65528`.
//!
//! The book comes from the test kit's seeded generator
//! (`collect_generator`, `Spec::open_book`: about five open
//! invoices per customer, issued over the 90 days before the sweep day, the
//! demo's mix of payer types plus payment plans), read as the ERP has it on
//! the sweep day, ingested into a SQLite file in a temporary folder (timed
//! as "ingest"); then each sweep runs in a fresh child process so its peak
//! RSS (`VmHWM`) is the sweep's own and not the generator's.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use chrono::{Days, NaiveDate, NaiveTime};
use collect_delivery::delivery::{RunReport, RunRequest, Sender, Sweeper};
use collect_delivery::ledger::{LeaseHolder, Scope};
use collect_delivery::mailer::{LocalMailer, Outbox};
use collect_delivery::message::{PayLinks, Templates};
use collect_engine::domain::ActionStatus;
use collect_engine::sweep::{PriorLateRate, SweepOptions};
use collect_generator::{Spec, generate};
use collect_sqlite::store::{SqliteStore, Store};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The allocator of `collect` (functions/cli/src/main.rs): the bench
/// measures what `collect run` does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const POLICY: &str = include_str!("../../../policy/standard-net30.policy");
const CHILD_ENV: &str = "COLLECT_BENCH_CHILD_DB";
/// Days after [`sweep_day`] the child process sweeps.
const CHILD_DAY_ENV: &str = "COLLECT_BENCH_CHILD_DAY";
/// Set for the sweeps of the history run: one line per sweep.
const BRIEF_ENV: &str = "COLLECT_BENCH_CHILD_BRIEF";

/// The sweep day: a Wednesday, the policy in effect since 2026-12-01.
fn sweep_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2027, 3, 10).unwrap()
}

fn main() {
    if let Ok(db) = std::env::var(CHILD_ENV) {
        let later: u64 = std::env::var(CHILD_DAY_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        sweep(Path::new(&db), later);
        return;
    }
    let invoices: usize = std::env::var("COLLECT_BENCH_INVOICES")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let temp = tempfile::tempdir().unwrap();
    let dir =
        std::env::var("COLLECT_BENCH_DIR").map_or_else(|_| temp.path().to_path_buf(), Into::into);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("collect.db");
    for stale in ["collect.db", "collect.db-wal", "collect.db-shm"] {
        let _ = std::fs::remove_file(dir.join(stale));
    }

    let seed: u64 = std::env::var("COLLECT_BENCH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);

    println!("# Local sweep benchmark");
    let started = Instant::now();
    let generated = generate(&spec(seed, invoices));
    let book = generated.as_of(sweep_day());
    let generated_in = started.elapsed();
    println!(
        "generated: {} customers, {} open invoices, {} settled invoices, {} payments, {} events in {}",
        book.customers.len(),
        book.open,
        book.invoices.len() - book.open,
        book.payments.len(),
        book.events.len(),
        secs(generated_in)
    );
    let started = Instant::now();
    // The CPU of each kind of record apart (the ingest target is
    // for invoices): this process's user + system time around each step.
    let mut ingest_cpu: Vec<(&str, f64)> = Vec::new();
    {
        let mut store = SqliteStore::open(&db).unwrap();
        let mut step = |what: &'static str, f: &mut dyn FnMut()| {
            let before = cpu_seconds();
            f();
            ingest_cpu.push((what, cpu_seconds() - before));
        };
        step("customers", &mut || {
            store.upsert_customers(&book.customers).unwrap();
        });
        step("invoices", &mut || {
            store.upsert_invoices(&book.invoices).unwrap();
        });
        step("payments", &mut || {
            store.upsert_payments(&book.payments).unwrap();
        });
        step("events", &mut || {
            store.insert_events(&book.events).unwrap();
        });
    }
    let ingest = started.elapsed();
    println!(
        "ingest CPU (user + system): {}",
        ingest_cpu
            .iter()
            .map(|(what, s)| format!("{what} {s:.2} s"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let total_invoices = book.invoices.len();
    drop(book);
    println!(
        "ingest: {} ({:.0} invoices/s), database {:.0} MiB, generator peak RSS {}",
        secs(ingest),
        total_invoices as f64 / ingest.as_secs_f64(),
        file_mib(&db),
        peak_rss()
    );

    println!(
        "machine load average (1, 5, 15 min) before the sweep: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Each sweep in a fresh process: its peak RSS is its own.
    let sweeps: u64 = std::env::var("COLLECT_BENCH_SWEEPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    if sweeps <= 2 {
        drop(generated);
        for later in 0..sweeps {
            child(&db, later, false);
        }
        return;
    }

    // The history run: day after day, the ERP's changes, then the sweep.
    let mut history = generated.history(sweep_day());
    let mut days = Vec::new();
    child(&db, 0, false);
    println!("## history: {} days after the first sweep", sweeps - 1);
    for later in 1..sweeps {
        let day = sweep_day() + Days::new(later);
        let changes = history.day(day);
        let started = Instant::now();
        {
            let mut store = SqliteStore::open(&db).unwrap();
            store.upsert_invoices(&changes.invoices).unwrap();
            store.upsert_payments(&changes.payments).unwrap();
            store.insert_events(&changes.events).unwrap();
        }
        let ingest = started.elapsed();
        print!(
            "day {later:>3} {day}: +{} invoices, {} payments ({} settled), {} events, ingest {}; ",
            changes.invoices.len(),
            changes.payments.len(),
            changes.settled,
            changes.events.len(),
            secs(ingest)
        );
        std::io::stdout().flush().unwrap();
        days.push(child(&db, later, true));
    }
    let (first, last) = (&days[0], &days[days.len() - 1]);
    let change = |a: f64, b: f64| (b - a) / a * 100.0;
    println!(
        "## history summary: first next-day sweep (day 1) against the last (day {})",
        sweeps - 1
    );
    println!(
        "run_day {:.2} s -> {:.2} s ({:+.1} %); cpu {:.2} s -> {:.2} s ({:+.1} %); peak RSS {:.0} MiB -> {:.0} MiB ({:+.1} %); open invoices {} -> {}; database {:.0} MiB",
        first.wall,
        last.wall,
        change(first.wall, last.wall),
        first.cpu,
        last.cpu,
        change(first.cpu, last.cpu),
        first.rss_mib,
        last.rss_mib,
        change(first.rss_mib, last.rss_mib),
        first.open,
        last.open,
        file_mib(&db)
    );
    // One day can be a Monday with a weekend's payments: the first and the
    // last week's means as well.
    let week = days.len().min(7);
    let mean = |ds: &[DayFigures]| ds.iter().map(|d| d.wall).sum::<f64>() / ds.len() as f64;
    let (early, late) = (mean(&days[..week]), mean(&days[days.len() - week..]));
    println!(
        "run_day, mean of the first {week} next-day sweeps {early:.2} s, of the last {week} {late:.2} s ({:+.1} %)",
        change(early, late)
    );
    let within = change(first.wall, last.wall).abs() <= 20.0;
    println!(
        "issue 9 (next-day run_day within ±20 % after {} days of history): {}",
        sweeps - 1,
        if within { "yes" } else { "no" }
    );
}

/// The book to generate: the bench's (`Spec::open_book`), or the flat one
/// (`COLLECT_BENCH_CUSTOMERS` customers each issuing
/// `COLLECT_BENCH_PER_CUSTOMER` invoices over the 90 days), with
/// `COLLECT_BENCH_HISTORY_MONTHS` monthly settled invoices per customer
/// before the window when set.
fn spec(seed: u64, invoices: usize) -> Spec {
    let var = |name: &str| -> Option<u32> {
        std::env::var(name)
            .ok()
            .and_then(|v| v.replace('_', "").parse().ok())
    };
    let mut spec = Spec::open_book(seed, invoices, sweep_day());
    if let (Some(customers), Some(each)) = (
        var("COLLECT_BENCH_CUSTOMERS"),
        var("COLLECT_BENCH_PER_CUSTOMER"),
    ) {
        spec.customers = customers as usize;
        spec.invoices = (each, each);
        spec.strategic_invoices = (each, each);
    }
    if let Some(months) = var("COLLECT_BENCH_HISTORY_MONTHS") {
        spec.history_months = months;
    }
    spec
}

/// One sweep's figures, as its child process reports them.
struct DayFigures {
    wall: f64,
    cpu: f64,
    rss_mib: f64,
    open: u64,
}

const FIGURES: &str = "figures:";

/// Runs the sweep `later` days after the sweep day in a fresh process and
/// reads its figures; `brief` prints one line instead of the full report.
fn child(db: &Path, later: u64, brief: bool) -> DayFigures {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(CHILD_ENV, db).env(CHILD_DAY_ENV, later.to_string());
    if brief {
        cmd.env(BRIEF_ENV, "1");
    }
    let out = cmd.stderr(Stdio::inherit()).output().unwrap();
    assert!(
        out.status.success(),
        "the sweep process failed: {}",
        out.status
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut figures = None;
    for line in text.lines() {
        match line.strip_prefix(FIGURES) {
            Some(f) => {
                let v: Vec<f64> = f.split_whitespace().map(|x| x.parse().unwrap()).collect();
                figures = Some(DayFigures {
                    wall: v[0],
                    cpu: v[1],
                    rss_mib: v[2],
                    open: v[3] as u64,
                });
            }
            None => println!("{line}"),
        }
    }
    figures.expect("the sweep process printed its figures")
}

/// One sweep, `later` days after the sweep day, in a child process.
fn sweep(db: &Path, later: u64) {
    let (policy, _) = policy_lang::load(POLICY, "standard-net30.policy", None)
        .map_err(|d| format!("{d:?}"))
        .unwrap();
    let templates =
        Templates::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policy/templates"))
            .unwrap();
    let pay_links = PayLinks::new(&[42u8; 32], "https://pay.example.com/i/{token}").unwrap();
    let outbox_dir = db.with_file_name("outbox");
    let outbox = Outbox::new(outbox_dir.clone());
    let use_outbox = std::env::var("COLLECT_BENCH_OUTBOX").is_ok_and(|v| v == "1");
    let mailer = if use_outbox {
        LocalMailer::Outbox(&outbox)
    } else {
        LocalMailer::Null
    };
    let sweeper = Sweeper {
        policy: &policy,
        scorer: &PriorLateRate,
        templates: &templates,
        pay_links: &pay_links,
        sender: Sender {
            company: "Example Supplies Inc.".into(),
            email: "ar@example.com".into(),
            reply_to: Some("collections@example.com".into()),
            address: Vec::new(),
            country: None,
        },
        options: SweepOptions {
            git_revision: Some("bench".into()),
            bundle_revision: None,
            send_time_utc: NaiveTime::from_hms_opt(14, 0, 0).unwrap(),
            customer_local_time: None,
        },
        pay_link_days: 30,
        grace: chrono::Duration::zero(),
        lease_ttl: chrono::Duration::minutes(30),
    };
    let brief = std::env::var(BRIEF_ENV).is_ok();
    if !brief {
        println!(
            "mailer: {}",
            if use_outbox {
                "Outbox (.eml files)"
            } else {
                "NullMailer (renders and builds every RFC 5322 message, writes nothing)"
            }
        );
    }
    let store = SqliteStore::open(db).unwrap();
    let day = sweep_day() + Days::new(later);
    let what = if later == 0 {
        "first sweep (fresh book: catches up on every step already due)".to_string()
    } else {
        format!("sweep {later} day(s) later (steady state: the steps newly due)")
    };
    run(&sweeper, mailer, &store, day, &what, brief);
    if use_outbox {
        let _ = std::fs::remove_dir_all(outbox_dir);
    }
}

fn run(
    sweeper: &Sweeper<'_>,
    mailer: LocalMailer<'_>,
    store: &SqliteStore,
    day: NaiveDate,
    what: &str,
    brief: bool,
) {
    let cpu_before = cpu_time();
    let started = Instant::now();
    let now = chrono::Utc::now;
    let req = RunRequest {
        scope: Scope::All,
        day,
        dry_run: false,
        holder: LeaseHolder::this_process(chrono::Utc::now()),
        now: &now,
        faults: None,
        keep_records: 0,
    };
    let report = sweeper.run_blocking(store, &mailer, &req).unwrap();
    let wall = started.elapsed();
    let cpu = cpu_time()
        .zip(cpu_before)
        .map(|((u1, s1), (u0, s0))| (u1 - u0, s1 - s0));
    if brief {
        let t = &report.timings;
        println!(
            "run_day {} (load_book {}, plan_sweep {}, save_actions {}, sending {}), cpu {}, peak RSS {}, open {}, records {}, sent {}",
            secs(wall),
            secs(t.load_book),
            secs(t.plan_sweep),
            secs(t.save_actions),
            secs(t.sending),
            cpu.map_or_else(|| "unknown".into(), |(u, s)| format!("{:.2} s", u + s)),
            peak_rss(),
            report.plan.open_invoices,
            report.plan.record_count(),
            report.sent.len()
        );
    } else {
        describe(what, day, &report, wall, cpu);
    }
    // For the parent's summary (not shown).
    println!(
        "{FIGURES} {} {} {} {}",
        wall.as_secs_f64(),
        cpu.map_or(0.0, |(u, s)| u + s),
        peak_rss_kib().map_or(0.0, |kb| kb / 1024.0),
        report.plan.open_invoices
    );
}

/// User + system CPU time of this process so far, in seconds.
fn cpu_seconds() -> f64 {
    cpu_time().map_or(0.0, |(user, system)| user + system)
}

/// User and system CPU time of this process so far, in seconds.
fn cpu_time() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command (which is in parentheses).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, in clock
    // ticks (100 per second on Linux).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime / 100.0, stime / 100.0))
}

fn describe(
    what: &str,
    day: NaiveDate,
    report: &RunReport,
    wall: Duration,
    cpu: Option<(f64, f64)>,
) {
    let plan = &report.plan;
    let t = &report.timings;
    println!("## {what} {day}");
    println!(
        "run_day: {} total; load_book {}, plan_sweep {}, save_actions {}, sending {}",
        secs(wall),
        secs(t.load_book),
        secs(t.plan_sweep),
        secs(t.save_actions),
        secs(t.sending)
    );
    if let Some((user, sys)) = cpu {
        println!("cpu: {user:.2} s user + {sys:.2} s system");
    }
    println!(
        "throughput: {:.0} open invoices/s (run_day), {:.0} open invoices/s (plan_sweep alone)",
        plan.open_invoices as f64 / wall.as_secs_f64(),
        plan.open_invoices as f64 / t.plan_sweep.as_secs_f64()
    );
    let by_status: Vec<String> = ActionStatus::ALL
        .iter()
        .map(|s| (s.as_str(), plan.count(*s)))
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{s} {n}"))
        .collect();
    println!(
        "open invoices {}, held {}, not covered {}; action records {} ({}); messages planned {}, sent {}, failed {}",
        plan.open_invoices,
        plan.held.len(),
        plan.not_covered.len(),
        plan.record_count(),
        by_status.join(", "),
        plan.messages.len(),
        report.sent.len(),
        report.failed.len()
    );
    println!("peak RSS (VmHWM) of the sweep process: {}", peak_rss());
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn file_mib(p: &Path) -> f64 {
    std::fs::metadata(p).map_or(0.0, |m| m.len() as f64 / 1_048_576.0)
}

fn peak_rss_kib() -> Option<f64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
}

fn peak_rss() -> String {
    peak_rss_kib().map_or_else(
        || "unknown".to_string(),
        |kb| format!("{:.0} MiB", kb / 1024.0),
    )
}
