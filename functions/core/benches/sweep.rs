//! Benchmark: one local sweep over a generated book of open invoices
//! (score + decide + record + render/send), on one core.
//!
//! `cargo bench -p collect-core --bench sweep`
//!
//! Environment:
//! - `COLLECT_BENCH_INVOICES`: open invoices (default 1,000,000); customers
//!   are a fifth of that;
//! - `COLLECT_BENCH_OUTBOX=1`: send to a real `.eml` outbox instead of the
//!   `NullMailer` (which still renders and builds every message);
//! - `COLLECT_BENCH_SWEEPS`: how many sweeps (default 2): the first one on
//!   the sweep day, the second the day after (the steady state: only the
//!   steps newly due, over a store that now holds the first sweep's
//!   records), each in its own process; 0 only generates and ingests;
//! - `COLLECT_BENCH_DIR=DIR`: keep the database in DIR. To profile one
//!   sweep alone, ingest with `COLLECT_BENCH_SWEEPS=0`, copy the file, then
//!   run the bench binary with `COLLECT_BENCH_CHILD_DB=FILE` (and
//!   `COLLECT_BENCH_CHILD_DAY=N` for the sweep N days later), e.g. under
//!   `perf record --call-graph dwarf,65528`.
//!
//! The book is generated deterministically (SplitMix64), ingested into a
//! SQLite file in a temporary folder (timed as "ingest"), then the sweep runs
//! in a fresh child process so its peak RSS (`VmHWM`) is the sweep's own and
//! not the generator's.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use chrono::{Days, NaiveDate, NaiveTime};
use collect_core::delivery::{RunReport, RunRequest, Sender, Sweeper};
use collect_core::domain::{ActionStatus, Customer, Event, EventKind, Invoice, Payment, PlanTerms};
use collect_core::ledger::{LeaseHolder, Scope};
use collect_core::message::{LocalMailer, Outbox, PayLinks, Templates};
use collect_core::store::{SqliteStore, Store};
use collect_core::sweep::{PriorLateRate, SweepOptions};
use rust_decimal::Decimal;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const POLICY: &str = include_str!("../../../policy/standard-net30.policy");
const CHILD_ENV: &str = "COLLECT_BENCH_CHILD_DB";
/// Days after [`sweep_day`] the child process sweeps.
const CHILD_DAY_ENV: &str = "COLLECT_BENCH_CHILD_DAY";

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

    println!("# Local sweep benchmark");
    let started = Instant::now();
    let book = generate(invoices, sweep_day());
    let generated = started.elapsed();
    println!(
        "generated: {} customers, {} open invoices, {} history invoices, {} payments, {} events in {}",
        book.customers.len(),
        book.open,
        book.invoices.len() - book.open,
        book.payments.len(),
        book.events.len(),
        secs(generated)
    );
    let started = Instant::now();
    {
        let mut store = SqliteStore::open(&db).unwrap();
        store.upsert_customers(&book.customers).unwrap();
        store.upsert_invoices(&book.invoices).unwrap();
        store.upsert_payments(&book.payments).unwrap();
        store.insert_events(&book.events).unwrap();
    }
    let ingest = started.elapsed();
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
    for later in 0..sweeps {
        let status = Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, &db)
            .env(CHILD_DAY_ENV, later.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "the sweep process failed: {status}");
    }
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
    println!(
        "mailer: {}",
        if use_outbox {
            "Outbox (.eml files)"
        } else {
            "NullMailer (renders and builds every RFC 5322 message, writes nothing)"
        }
    );
    let store = SqliteStore::open(db).unwrap();
    let day = sweep_day() + Days::new(later);
    let what = if later == 0 {
        "first sweep (fresh book: catches up on every step already due)".to_string()
    } else {
        format!("sweep {later} day(s) later (steady state: the steps newly due)")
    };
    run(&sweeper, mailer, &store, day, &what);
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
    describe(what, day, &report, wall, cpu);
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

fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or_else(
            || "unknown".to_string(),
            |kb| format!("{:.0} MiB", kb / 1024.0),
        )
}

/// SplitMix64: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// `lo..=hi`
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    fn pick<'a>(&mut self, weighted: &[(&'a str, u64)]) -> &'a str {
        let total: u64 = weighted.iter().map(|(_, w)| w).sum();
        let mut r = self.below(total);
        for (v, w) in weighted {
            if r < *w {
                return v;
            }
            r -= w;
        }
        weighted[0].0
    }
}

struct Generated {
    customers: Vec<Customer>,
    invoices: Vec<Invoice>,
    payments: Vec<Payment>,
    events: Vec<Event>,
    open: usize,
}

fn plus(d: NaiveDate, days: i64) -> NaiveDate {
    if days >= 0 {
        d + Days::new(days as u64)
    } else {
        d - Days::new(days.unsigned_abs())
    }
}

fn cents(c: i64) -> Decimal {
    Decimal::new(c, 2)
}

/// A book with `open` invoices open on `day` (about five per customer), and
/// a settled history per customer so the prior-late-rate scorer has data.
fn generate(open: usize, day: NaiveDate) -> Generated {
    let mut rng = Rng(0x00C0_11EC_7000_0001);
    let n_customers = (open / 5).max(1);
    let mut customers = Vec::with_capacity(n_customers);
    // 0: pays on time, 1: sometimes late, 2: chronically late.
    let mut payer = Vec::with_capacity(n_customers);
    let zones = [
        ("America/New_York", 35),
        ("America/Chicago", 15),
        ("America/Los_Angeles", 10),
        ("Europe/London", 15),
        ("Europe/Berlin", 15),
        ("UTC", 5),
        ("Asia/Tokyo", 3),
        ("Australia/Sydney", 2),
    ];
    let industries = [
        ("retail", 30),
        ("manufacturing", 25),
        ("construction", 15),
        ("healthcare", 10),
        ("software", 10),
        ("logistics", 10),
    ];
    for c in 0..n_customers {
        let language = rng.pick(&[("en", 90), ("de", 7), ("fr", 3)]);
        let mut tags = Vec::new();
        if rng.chance(20) {
            tags.push("strategic".to_string());
        }
        if rng.chance(100) {
            tags.push("wholesale".to_string());
        }
        if rng.chance(50) {
            tags.push("new".to_string());
        }
        let annual_revenue = match rng.below(100) {
            0..=3 => Some(Decimal::from(rng.between(250_000, 5_000_000))),
            4..=73 => Some(Decimal::from(rng.between(10_000, 240_000))),
            _ => None,
        };
        customers.push(Customer {
            customer_id: format!("C{c:07}"),
            name: format!("Customer {c} Ltd"),
            email: format!("ap{c}@customer{c}.example.com"),
            phone: rng.chance(600).then(|| format!("+1555{:07}", c)),
            language: language.to_string(),
            timezone: rng.pick(&zones).to_string(),
            country: Some(
                rng.pick(&[("US", 60), ("GB", 15), ("DE", 20), ("FR", 5)])
                    .to_string(),
            ),
            industry: rng.chance(800).then(|| rng.pick(&industries).to_string()),
            annual_revenue,
            credit_score: rng
                .chance(500)
                .then(|| Decimal::from(rng.between(300, 850))),
            credit_limit: rng
                .chance(500)
                .then(|| Decimal::from(rng.between(5, 100) * 1000)),
            tags,
            do_not_contact: rng.chance(5),
        });
        payer.push(match rng.below(10) {
            0..=5 => 0u8,
            6..=8 => 1,
            _ => 2,
        });
    }

    let mut invoices = Vec::with_capacity(open + n_customers);
    let mut payments = Vec::new();
    let mut events = Vec::new();
    let mut event_no = 0u64;
    let mut event = |events: &mut Vec<Event>, inv: &str, date: NaiveDate, kind: EventKind| {
        event_no += 1;
        events.push(Event {
            event_id: format!("E{event_no:09}"),
            date,
            kind,
            invoice_id: Some(inv.to_string()),
            action_id: None,
            message_id: None,
        });
    };

    // Settled history: 0 to 2 invoices per customer, paid before the day.
    let mut h = 0u64;
    for (c, kind) in payer.iter().enumerate() {
        for _ in 0..rng.below(3) {
            h += 1;
            let id = format!("H{h:09}");
            let due = plus(day, -rng.between(50, 200));
            let amount = cents(rng.between(5_000, 1_500_000));
            let late = match kind {
                0 => rng.between(-5, 2),
                1 => rng.between(-3, 20),
                _ => rng.between(5, 45),
            };
            invoices.push(Invoice {
                invoice_id: id.clone(),
                customer_id: format!("C{c:07}"),
                number: format!("2026-{h:07}"),
                issue_date: plus(due, -30),
                due_date: due,
                amount,
                currency: "USD".into(),
                disputed: false,
                dispute_opened_on: None,
            });
            payments.push(Payment {
                payment_id: format!("P{h:09}"),
                invoice_id: id,
                paid_on: plus(due, late),
                amount,
            });
        }
    }
    let history = invoices.len();

    // Open invoices, due within ±45 days of the day.
    for k in 0..open {
        let id = format!("INV{k:09}");
        let customer = rng.below(n_customers as u64);
        let due = plus(day, rng.between(-45, 45));
        let issue = if plus(due, -30) <= day {
            plus(due, -30)
        } else {
            plus(day, -rng.between(0, 9))
        };
        let size = rng.below(100);
        let amount = cents(match size {
            0..=39 => rng.between(5_000, 100_000),
            40..=84 => rng.between(100_000, 500_000),
            _ => rng.between(500_000, 5_000_000),
        });
        let currency = if rng.chance(5) { "EUR" } else { "USD" };
        let disputed = rng.chance(15);
        let dispute_opened_on =
            (disputed && rng.chance(500)).then(|| plus(issue, rng.between(0, 20)));
        let inv = Invoice {
            invoice_id: id.clone(),
            customer_id: format!("C{customer:07}"),
            number: format!("2027-{k:07}"),
            issue_date: issue,
            due_date: due,
            amount,
            currency: currency.into(),
            disputed,
            dispute_opened_on,
        };
        let span = (day - issue).num_days().max(0);
        let roll = rng.below(1000);
        if roll < 80 {
            // A partial payment: 10–60 %.
            let share = rng.between(10, 60);
            payments.push(Payment {
                payment_id: format!("P-{id}-1"),
                invoice_id: id.clone(),
                paid_on: plus(issue, rng.between(0, span)),
                amount: (amount * Decimal::from(share) / Decimal::ONE_HUNDRED).round_dp(2),
            });
        } else if roll < 100 {
            // Paid in full, but after the day: invisible to the sweep.
            payments.push(Payment {
                payment_id: format!("P-{id}-1"),
                invoice_id: id.clone(),
                paid_on: plus(day, rng.between(1, 10)),
                amount,
            });
        } else if roll < 110 {
            // A dispute opened by event, closed again for half of them.
            let opened = plus(issue, rng.between(0, span));
            event(&mut events, &id, opened, EventKind::DisputeOpened);
            if rng.chance(500) {
                let closed = plus(opened, rng.between(0, (day - opened).num_days().max(0)));
                event(&mut events, &id, closed, EventKind::DisputeClosed);
            }
        } else if roll < 130 {
            // A promise to pay, kept (future) or broken (past).
            let made = plus(issue, rng.between(0, span));
            let until = plus(day, rng.between(-10, 10));
            event(
                &mut events,
                &id,
                made,
                EventKind::PromiseToPay {
                    promised_until: until,
                },
            );
        } else if roll < 135 && span > 0 {
            // A plan accepted; on time or defaulted.
            let accepted = plus(issue, rng.between(0, span));
            let terms = PlanTerms {
                installments: 3,
                every_days: 30,
                down_payment: (amount / Decimal::TEN).round_dp(2),
            };
            event(
                &mut events,
                &id,
                accepted,
                EventKind::PlanAccepted(terms.clone()),
            );
            if rng.chance(600) {
                payments.push(Payment {
                    payment_id: format!("P-{id}-down"),
                    invoice_id: id.clone(),
                    paid_on: accepted,
                    amount: terms.down_payment,
                });
            }
        }
        invoices.push(inv);
    }
    Generated {
        customers,
        open: invoices.len() - history,
        invoices,
        payments,
        events,
    }
}
