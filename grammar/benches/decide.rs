//! Policy decisions on the standard policy (`policy/standard-net30.policy`)
//! and 100,000 varied invoices, three ways in the same run:
//!
//! - **hand-written**: the same policy as a Rust `if`/`match` chain over
//!   [`Facts`] (what an engineer would write without the language);
//! - **reference**: [`Policy::decide`], the tree evaluator (also `explain`);
//! - **fast**: [`Program::decide_many`] over [`FactRow`]s built once with
//!   [`Program::row`], and, separately, row building plus deciding per
//!   invoice ([`Program::decide_facts`]), which is what a caller that starts
//!   from `Facts` pays.
//!
//! Before measuring, every invoice is decided all ways and the bench
//! asserts zero mismatches. Then a comparison table (time per decision,
//! interleaved rounds, ratios against the hand-written code) is printed,
//! followed by criterion's measurements, the cost of reading the policy
//! (`policy_lang::load`: parse, check, compile) and of lowering it
//! (`Policy::program`).
//!
//! Run: `cargo bench -p policy-lang --bench decide -- --warm-up-time 1 --measurement-time 5`
//! (`DECIDE_INVOICES=1000000` for a million invoices). Results and the target
//! (≥ 20 million decisions/s on one core, within 3.5× of the hand-written
//! code) are recorded in `BENCHMARKS.md` at the workspace root.
//!
//! The invoices are generated deterministically (ChaCha8, fixed seed) and
//! owned outside the measured loop; the loop only builds the borrowed
//! [`Facts`] and decides, as the engine does.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use chrono::{Datelike, Days, NaiveDate, Weekday};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group};
use policy_lang::{CustomerFacts, Decision, FactRow, Facts, InvoiceFacts, Policy, Program};
use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
// `criterion::black_box` is deprecated in criterion 0.7 in favour of this one
// (it is the same function), and `-D warnings` rejects the deprecated path.
use std::hint::black_box;
use std::time::{Duration, Instant};

const SOURCE: &str = include_str!("../../policy/standard-net30.policy");
/// Invoices decided per pass: `DECIDE_INVOICES`, default 100,000.
fn invoice_count() -> usize {
    std::env::var("DECIDE_INVOICES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000)
}
const CUSTOMERS: usize = 20_000;

/// The test kit's generator (ChaCha8, seeded: the same data on every
/// platform) with the few draws this bench needs. The language crate sits
/// below collect-generator, so it uses the same crate rather than the generator.
struct Rng(ChaCha8Rng);

impl Rng {
    fn seeded(seed: u64) -> Rng {
        Rng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.0.random_range(0..n.max(1))
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        self.0.random_range(lo..=hi)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        self.0.random()
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        self.0.random_bool(p.clamp(0.0, 1.0))
    }

    /// Money with cents, uniform in `lo..hi` whole units.
    fn money(&mut self, lo: i64, hi: i64) -> Decimal {
        Decimal::new(self.range(lo * 100, hi * 100), 2)
    }
}

fn shift(date: NaiveDate, days: i64) -> NaiveDate {
    if days >= 0 {
        date.checked_add_days(Days::new(days.unsigned_abs()))
    } else {
        date.checked_sub_days(Days::new(days.unsigned_abs()))
    }
    .unwrap()
}

/// What the engine owns for one customer; `Facts` borrows from it.
struct Customer {
    id: String,
    country: Option<String>,
    industry: Option<String>,
    language: String,
    tags: Vec<String>,
    do_not_contact: bool,
    annual_revenue: Option<Decimal>,
    credit_score: Option<Decimal>,
    credit_limit: Option<Decimal>,
    open_amount: Decimal,
    open_invoices: u32,
    overdue_invoices: u32,
    late_rate: Option<f64>,
    avg_days_late: Option<Decimal>,
    first_invoice_on: Option<NaiveDate>,
}

/// One open invoice on the day of one sweep.
struct Invoice {
    customer: usize,
    today: NaiveDate,
    risk: Option<f64>,
    id: String,
    number: String,
    amount: Decimal,
    balance: Decimal,
    currency: String,
    issue_date: NaiveDate,
    due_date: NaiveDate,
    disputed: bool,
    dispute_opened_on: Option<NaiveDate>,
    promised_until: Option<NaiveDate>,
    plan_current: bool,
    plan_defaulted: bool,
}

fn customers(rng: &mut Rng) -> Vec<Customer> {
    const COUNTRIES: [&str; 6] = ["US", "CA", "GB", "DE", "FR", "MX"];
    const INDUSTRIES: [&str; 5] = ["retail", "manufacturing", "software", "logistics", "health"];
    const LANGUAGES: [&str; 4] = ["en", "en", "fr", "de"];
    const TAGS: [&str; 5] = ["key-account", "reseller", "public-sector", "new", "eu"];
    let pick = |rng: &mut Rng, xs: &[&str]| xs[rng.below(xs.len() as u64) as usize].to_string();
    let since = NaiveDate::from_ymd_opt(2018, 1, 1).unwrap();
    (0..CUSTOMERS)
        .map(|i| {
            let mut tags: Vec<String> = (0..rng.below(3)).map(|_| pick(rng, &TAGS)).collect();
            if rng.chance(0.06) {
                // Mixed case on purpose: `in` compares text case-insensitively.
                let tag = if rng.chance(0.5) {
                    "strategic"
                } else {
                    "Strategic"
                };
                tags.insert(rng.below(tags.len() as u64 + 1) as usize, tag.to_string());
            }
            let annual_revenue = if rng.chance(0.15) {
                None
            } else if rng.chance(0.15) {
                Some(rng.money(250_000, 5_000_000))
            } else {
                Some(rng.money(10_000, 249_999))
            };
            // Utilization 10% to 120% of the limit; some customers have none.
            let credit_limit = (!rng.chance(0.10)).then(|| rng.money(5_000, 200_000));
            let open_amount = match credit_limit {
                Some(limit) => {
                    let utilization = Decimal::new(rng.range(1_000, 12_000), 4);
                    (limit * utilization).round_dp(2)
                }
                None => rng.money(100, 150_000),
            };
            let open_invoices = 1 + rng.below(40) as u32;
            Customer {
                id: format!("CUST-{i:06}"),
                country: (!rng.chance(0.05)).then(|| pick(rng, &COUNTRIES)),
                industry: (!rng.chance(0.20)).then(|| pick(rng, &INDUSTRIES)),
                language: pick(rng, &LANGUAGES),
                tags,
                do_not_contact: rng.chance(0.02),
                annual_revenue,
                credit_score: (!rng.chance(0.25)).then(|| Decimal::from(rng.range(300, 850))),
                credit_limit,
                open_amount,
                open_invoices,
                overdue_invoices: rng.below(u64::from(open_invoices) + 1) as u32,
                late_rate: (!rng.chance(0.10)).then(|| rng.unit()),
                avg_days_late: (!rng.chance(0.30)).then(|| Decimal::new(rng.range(0, 600), 1)),
                first_invoice_on: (!rng.chance(0.05)).then(|| shift(since, rng.range(0, 3_000))),
            }
        })
        .collect()
}

fn invoices(rng: &mut Rng, customers: usize) -> Vec<Invoice> {
    // Due dates over the first quarter of 2027 (the policy is effective
    // from 2026-12-01), so steps hit weekends, holidays and business days.
    let quarter = NaiveDate::from_ymd_opt(2027, 1, 1).unwrap();
    (0..invoice_count())
        .map(|i| {
            let due_date = shift(quarter, rng.range(0, 89));
            let terms = [30, 30, 30, 45, 60, 15][rng.below(6) as usize];
            // Sweep days from 20 days before to 40 days after the due date:
            // every step of every ladder (-14d … +30d) falls in that window.
            let today = shift(due_date, rng.range(-20, 40));
            let amount = if rng.chance(0.5) {
                rng.money(50, 999)
            } else {
                rng.money(1_000, 80_000)
            };
            let balance = if rng.chance(0.8) {
                amount
            } else {
                (amount * Decimal::new(rng.range(1, 99), 2)).round_dp(2)
            };
            let disputed = rng.chance(0.04);
            let promised_until = rng.chance(0.06).then(|| shift(today, rng.range(-10, 14)));
            let plan_current = rng.chance(0.03);
            Invoice {
                customer: rng.below(customers as u64) as usize,
                today,
                risk: (!rng.chance(0.10)).then(|| rng.unit()),
                id: format!("INV-{i:07}"),
                number: format!("2027-{i:06}"),
                amount,
                balance,
                currency: "USD".to_string(),
                issue_date: shift(due_date, -terms),
                due_date,
                disputed,
                dispute_opened_on: disputed.then(|| shift(today, -rng.range(0, 30))),
                promised_until,
                plan_current,
                plan_defaulted: !plan_current && rng.chance(0.02),
            }
        })
        .collect()
}

fn facts<'a>(inv: &'a Invoice, cus: &'a Customer) -> Facts<'a> {
    Facts {
        today: inv.today,
        risk: inv.risk,
        invoice: InvoiceFacts {
            id: &inv.id,
            number: &inv.number,
            amount: inv.amount,
            balance: inv.balance,
            currency: &inv.currency,
            issue_date: inv.issue_date,
            due_date: inv.due_date,
            disputed: inv.disputed,
            dispute_opened_on: inv.dispute_opened_on,
            promised_until: inv.promised_until,
            plan_current: inv.plan_current,
            plan_defaulted: inv.plan_defaulted,
        },
        customer: CustomerFacts {
            id: &cus.id,
            country: cus.country.as_deref(),
            industry: cus.industry.as_deref(),
            language: &cus.language,
            tags: &cus.tags,
            do_not_contact: cus.do_not_contact,
            annual_revenue: cus.annual_revenue,
            credit_score: cus.credit_score,
            credit_limit: cus.credit_limit,
            open_amount: cus.open_amount,
            open_invoices: cus.open_invoices,
            overdue_invoices: cus.overdue_invoices,
            late_rate: cus.late_rate,
            avg_days_late: cus.avg_days_late,
            first_invoice_on: cus.first_invoice_on,
        },
    }
}

struct Data {
    policy: Policy,
    program: Program,
    hand: HandWritten,
    customers: Vec<Customer>,
    invoices: Vec<Invoice>,
    rows: Vec<FactRow>,
}

fn data() -> Data {
    let (policy, _warnings) = policy_lang::load(SOURCE, "standard-net30.policy", None)
        .unwrap_or_else(|diags| panic!("the standard policy does not load: {diags:?}"));
    let mut rng = Rng::seeded(0x5eed_c011_ec75_2027);
    let customers = customers(&mut rng);
    let mut invoices = invoices(&mut rng, customers.len());
    // Stored and decided customer by customer, as the sweep does
    // (`plan_sweep` walks the book's invoices chunked by customer).
    invoices.sort_by_key(|inv| inv.customer);
    let program = policy
        .program()
        .unwrap_or_else(|e| panic!("the standard policy does not lower: {e}"));
    assert_eq!(
        program.derived_conditions(),
        0,
        "every condition of the standard policy lowers"
    );
    let rows = invoices
        .iter()
        .map(|inv| program.row(&facts(inv, &customers[inv.customer])))
        .collect();
    let data = Data {
        policy,
        program,
        hand: HandWritten::new(),
        customers,
        invoices,
        rows,
    };
    coverage(&data);
    agree(&data);
    data
}

/// Proves the data exercises the whole policy: every segment, every hold and
/// every step of every ladder (both taken and, where conditional, skipped),
/// and the control group. Prints the mix once, before measuring.
fn coverage(data: &Data) {
    let p = &data.policy;
    let mut segments = vec![0usize; p.segments.len()];
    let mut holds = vec![0usize; p.holds.len()];
    let mut steps_due: Vec<Vec<usize>> = p.ladders.iter().map(|l| vec![0; l.steps.len()]).collect();
    let mut steps_today = steps_due.clone();
    let (mut held, mut control, mut nothing_due) = (0, 0, 0);
    for inv in &data.invoices {
        let d: Decision = p.decide(&facts(inv, &data.customers[inv.customer]));
        assert!(
            !d.not_in_effect,
            "sweep dates must be after the effective date"
        );
        if let Some(s) = d.segment {
            segments[s] += 1;
        }
        for (i, n) in holds.iter_mut().enumerate() {
            *n += usize::from(d.holds & (1 << i) != 0);
        }
        held += usize::from(d.is_held());
        control += usize::from(d.control_group);
        nothing_due += usize::from(d.due == 0);
        if let Some(l) = d.ladder {
            for (i, n) in steps_due[l].iter_mut().enumerate() {
                *n += usize::from(d.due & (1 << i) != 0);
            }
            for (i, n) in steps_today[l].iter_mut().enumerate() {
                *n += usize::from(d.today & (1 << i) != 0);
            }
        }
    }
    eprintln!(
        "decide data: {} invoices, {} customers; held {held}, control group {control}, nothing due {nothing_due}",
        data.invoices.len(),
        data.customers.len()
    );
    for (s, n) in p.segments.iter().zip(&segments) {
        eprintln!("  segment {:<10} {n}", s.name);
        assert!(*n > 0, "segment {} never matched", s.name);
    }
    for (h, n) in p.holds.iter().zip(&holds) {
        eprintln!("  hold {:<14} {n}", h.name);
        assert!(*n > 0, "hold {} never applied", h.name);
    }
    for (l, ladder) in p.ladders.iter().enumerate() {
        for (i, step) in ladder.steps.iter().enumerate() {
            let (due, today) = (steps_due[l][i], steps_today[l][i]);
            eprintln!(
                "  ladder {:<10} {:<10} due {due:>6}  today {today:>5}",
                ladder.segment,
                step.offset_text()
            );
            assert!(
                today > 0,
                "{} {} never fell due",
                ladder.segment,
                step.offset_text()
            );
        }
    }
    assert!(control > 0, "no customer in the control group");
}

fn bench_decide(c: &mut Criterion) {
    let data = data();
    comparison(&data);
    let n = data.invoices.len();
    let mut group = c.benchmark_group("decide");
    group.throughput(Throughput::Elements(n as u64));
    // One iteration decides all invoices (up to tens of milliseconds): flat
    // sampling keeps 20 samples inside a 5 s measurement.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(20);
    group.bench_function("standard-net30/hand-written", |b| {
        b.iter(|| pass_hand(&data))
    });
    group.bench_function("standard-net30/reference", |b| {
        b.iter(|| pass_reference(&data))
    });
    let mut out = Vec::with_capacity(n);
    group.bench_function("standard-net30/fast-rows", |b| {
        b.iter(|| pass_fast(&data, &mut out))
    });
    group.bench_function("standard-net30/fast-from-facts", |b| {
        b.iter(|| pass_fast_facts(&data))
    });
    group.finish();
}

// ---------------------------------------------------------------- the passes

fn pass_hand(data: &Data) {
    for inv in &data.invoices {
        let cus = &data.customers[inv.customer];
        let facts = facts(black_box(inv), black_box(cus));
        black_box(data.hand.decide(black_box(&facts)));
    }
}

fn pass_reference(data: &Data) {
    for inv in &data.invoices {
        let cus = &data.customers[inv.customer];
        let facts = facts(black_box(inv), black_box(cus));
        black_box(data.policy.decide(black_box(&facts)));
    }
}

fn pass_fast(data: &Data, out: &mut Vec<Decision>) {
    data.program.decide_many(black_box(&data.rows), out);
    black_box(out);
}

fn pass_fast_facts(data: &Data) {
    for inv in &data.invoices {
        let cus = &data.customers[inv.customer];
        let facts = facts(black_box(inv), black_box(cus));
        black_box(data.program.decide_facts(black_box(&facts)));
    }
}

/// Every invoice, decided every way, gives the same decision.
fn agree(data: &Data) {
    let mut batch = Vec::new();
    data.program.decide_many(&data.rows, &mut batch);
    let mut mismatches = [0usize; 4];
    for ((inv, row), fast) in data.invoices.iter().zip(&data.rows).zip(&batch) {
        let f = facts(inv, &data.customers[inv.customer]);
        let reference = data.policy.decide(&f);
        mismatches[0] += usize::from(data.hand.decide(&f) != reference);
        mismatches[1] += usize::from(*fast != reference);
        mismatches[2] += usize::from(data.program.decide(row) != reference);
        mismatches[3] += usize::from(data.program.decide_facts(&f) != reference);
    }
    eprintln!(
        "mismatches against the reference over {} invoices: hand-written {}, fast (decide_many) {}, fast (decide) {}, fast (from facts) {}",
        data.invoices.len(),
        mismatches[0],
        mismatches[1],
        mismatches[2],
        mismatches[3]
    );
    assert_eq!(mismatches, [0; 4], "decisions differ");
}

/// Interleaved rounds of one pass per variant, time per decision, and each
/// variant's ratio to the hand-written code within the same round (so that
/// load on the machine hits numerator and denominator alike). Wall time:
/// the thread's CPU time (`/proc/thread-self/schedstat`) only moves at
/// scheduler ticks, too coarse for one pass, and reading a precise CPU
/// clock takes `unsafe` (forbidden here); the median of many interleaved
/// rounds keeps the effect of other processes small.
fn comparison(data: &Data) {
    let rounds: usize = std::env::var("DECIDE_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(31);
    let n = data.invoices.len() as f64;
    let mut out = Vec::with_capacity(data.invoices.len());
    let names = [
        "hand-written match (Facts)",
        "reference Policy::decide (Facts)",
        "fast decide_many (pre-built rows)",
        "fast row + decide (Facts)",
    ];
    let mut ns: [Vec<f64>; 4] = Default::default();
    for _ in 0..rounds {
        for (v, times) in ns.iter_mut().enumerate() {
            let t0 = Instant::now();
            match v {
                0 => pass_hand(data),
                1 => pass_reference(data),
                2 => pass_fast(data, &mut out),
                _ => pass_fast_facts(data),
            }
            times.push(t0.elapsed().as_nanos() as f64 / n);
        }
    }
    let median = |xs: &[f64]| {
        let mut v = xs.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let best = |xs: &[f64]| xs.iter().copied().fold(f64::INFINITY, f64::min);
    eprintln!(
        "\ncomparison: {} invoices, {rounds} interleaved rounds, wall time per decision",
        data.invoices.len()
    );
    eprintln!(
        "  {:<36} {:>10} {:>10} {:>14} {:>14}",
        "variant", "median ns", "best ns", "median M/s", "× hand-written"
    );
    for (v, name) in names.iter().enumerate() {
        let ratios: Vec<f64> = ns[v].iter().zip(&ns[0]).map(|(a, h)| a / h).collect();
        eprintln!(
            "  {:<36} {:>10.1} {:>10.1} {:>14.2} {:>14.2}",
            name,
            median(&ns[v]),
            best(&ns[v]),
            1e3 / median(&ns[v]),
            median(&ratios)
        );
    }
    eprintln!();
}

// ---------------------------------------------------------------- by hand

/// `policy/standard-net30.policy` written by hand: the baseline. Same
/// decisions as the policy (the bench asserts it), written the way an
/// engineer would: `Decimal` and `f64` comparisons on the facts, `chrono`
/// dates, the control-group hash continued from a precomputed prefix.
struct HandWritten {
    effective: NaiveDate,
    holidays: [NaiveDate; 2],
    strategic_revenue: Decimal,
    plan_amount: Decimal,
    /// FNV-1a state after `"control-group" ␟ "standard-net30" ␟`.
    control_prefix: u64,
}

#[derive(Clone, Copy)]
enum When {
    Always,
    RiskAtLeast80,
    AmountAtLeast1000,
}

const STANDARD_STEPS: [(i64, When); 5] = [
    (-3, When::Always),
    (0, When::Always),
    (7, When::Always),
    (15, When::Always),
    (30, When::Always),
];
const HIGH_RISK_STEPS: [(i64, When); 7] = [
    (-14, When::RiskAtLeast80),
    (-7, When::AmountAtLeast1000),
    (-3, When::Always),
    (0, When::Always),
    (5, When::Always),
    (10, When::Always),
    (21, When::Always),
];
const STRATEGIC_STEPS: [(i64, When); 2] = [(-7, When::Always), (15, When::Always)];

const FNV_PRIME: u64 = 0x0100_0000_01b3;

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

impl HandWritten {
    fn new() -> HandWritten {
        let mut h = fnv(0xcbf2_9ce4_8422_2325, b"control-group");
        h = fnv(h, &[0x1f]);
        h = fnv(h, b"standard-net30");
        h = fnv(h, &[0x1f]);
        HandWritten {
            effective: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            holidays: [
                NaiveDate::from_ymd_opt(2026, 12, 25).unwrap(),
                NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(),
            ],
            strategic_revenue: Decimal::from(250_000),
            plan_amount: Decimal::from(1_000),
            control_prefix: h,
        }
    }

    fn business_day(&self, d: NaiveDate) -> bool {
        !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && !self.holidays.contains(&d)
    }

    fn step_date(&self, due: NaiveDate, offset: i64) -> Option<NaiveDate> {
        let mut d = if offset >= 0 {
            due.checked_add_days(Days::new(offset as u64))?
        } else {
            due.checked_sub_days(Days::new(offset.unsigned_abs()))?
        };
        while !self.business_day(d) {
            d = if offset < 0 {
                d.pred_opt()?
            } else {
                d.succ_opt()?
            };
        }
        Some(d)
    }

    fn decide(&self, f: &Facts<'_>) -> Decision {
        let mut d = Decision::default();
        if f.today < self.effective {
            d.not_in_effect = true;
            return d;
        }
        let (inv, cus) = (&f.invoice, &f.customer);
        d.holds = u64::from(inv.disputed)
            | u64::from(inv.promised_until.is_some_and(|p| p >= f.today)) << 1
            | u64::from(inv.plan_current) << 2
            | u64::from(cus.do_not_contact) << 3;
        let strategic = cus
            .annual_revenue
            .is_some_and(|r| r >= self.strategic_revenue)
            || cus.tags.iter().any(|t| t.eq_ignore_ascii_case("strategic"));
        let utilization = match cus.credit_limit {
            Some(limit) if !limit.is_zero() => match (cus.open_amount.to_f64(), limit.to_f64()) {
                (Some(open), Some(l)) if l != 0.0 => Some(open / l),
                _ => None,
            },
            _ => None,
        };
        let (segment, ladder, steps): (usize, usize, &[(i64, When)]) = if strategic {
            (0, 2, &STRATEGIC_STEPS)
        } else if f.risk.is_some_and(|r| r >= 0.6) || utilization.is_some_and(|u| u > 0.9) {
            (1, 1, &HIGH_RISK_STEPS)
        } else {
            (2, 0, &STANDARD_STEPS)
        };
        d.segment = Some(segment);
        d.ladder = Some(ladder);
        d.control_group = fnv(self.control_prefix, cus.id.as_bytes()) % 10_000 < 500;
        for (i, (offset, when)) in steps.iter().enumerate() {
            let Some(date) = self.step_date(inv.due_date, *offset) else {
                continue;
            };
            if date > f.today {
                break;
            }
            let applies = match when {
                When::Always => true,
                When::RiskAtLeast80 => f.risk.is_some_and(|r| r >= 0.8),
                When::AmountAtLeast1000 => inv.amount >= self.plan_amount,
            };
            if !applies {
                continue;
            }
            if d.control_group && *offset < 0 {
                d.held_out |= 1 << i;
                continue;
            }
            d.due |= 1 << i;
            if date == f.today {
                d.today |= 1 << i;
            }
        }
        d
    }
}

fn bench_load(c: &mut Criterion) {
    let mut group = c.benchmark_group("check_and_compile");
    group.throughput(Throughput::Bytes(SOURCE.len() as u64));
    group.sample_size(20);
    group.bench_function("standard-net30", |b| {
        b.iter(|| {
            black_box(policy_lang::load(
                black_box(SOURCE),
                "standard-net30.policy",
                None,
            ))
        })
    });
    group.finish();
    let (policy, _) = policy_lang::load(SOURCE, "standard-net30.policy", None)
        .unwrap_or_else(|diags| panic!("the standard policy does not load: {diags:?}"));
    let mut group = c.benchmark_group("lower");
    group.sample_size(20);
    group.bench_function("standard-net30", |b| {
        b.iter(|| black_box(black_box(&policy).program()))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = bench_decide, bench_load
}
fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
