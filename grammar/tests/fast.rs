#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The fast path ([`Program`]) against the reference evaluator
//! ([`Policy::decide`]): random policies built from the grammar's constructs
//! (every kind of fact and literal, comparisons, `in`, `is missing`, `not`,
//! `and`/`or`, arithmetic, fact against fact, business days and holidays,
//! control groups, effective dates) and random facts (boundary values, more
//! decimals than any constant, missing values, NaN, mixed-case text), and
//! both must give the same decision every time.
//!
//! `FAST_CASES=100000` for a longer hunt.

use chrono::{Days, NaiveDate};
use policy_lang::{CustomerFacts, Decision, Facts, InvoiceFacts, Policy, Program};
use proptest::prelude::*;
use proptest::test_runner::Config;
use rust_decimal::Decimal;

fn config() -> Config {
    Config {
        cases: std::env::var("FAST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(512),
        failure_persistence: None,
        ..Config::default()
    }
}

fn base() -> NaiveDate {
    NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()
}

fn shift(d: NaiveDate, n: i64) -> NaiveDate {
    if n >= 0 {
        d.checked_add_days(Days::new(n as u64)).unwrap()
    } else {
        d.checked_sub_days(Days::new(n.unsigned_abs())).unwrap()
    }
}

// ---------------------------------------------------------------- policies

const MONEY_FACTS: &[&str] = &[
    "invoice.amount",
    "invoice.balance",
    "customer.annual_revenue",
    "customer.credit_limit",
    "customer.open_amount",
];
const NUMBER_FACTS: &[&str] = &[
    "invoice.terms_days",
    "invoice.days_to_due",
    "invoice.days_past_due",
    "customer.credit_score",
    "customer.open_invoices",
    "customer.overdue_invoices",
    "customer.avg_days_late",
    "customer.tenure_days",
];
const PERCENT_FACTS: &[&str] = &["risk", "customer.credit_utilization", "customer.late_rate"];
const DATE_FACTS: &[&str] = &[
    "today",
    "invoice.issue_date",
    "invoice.due_date",
    "invoice.dispute_opened_on",
    "invoice.promised_until",
];
const TEXT_FACTS: &[&str] = &[
    "invoice.id",
    "invoice.number",
    // `invoice.currency` is in the catalogue, but `currency` is a keyword
    // and the parser refuses it after `invoice.`.
    "customer.id",
    "customer.country",
    "customer.industry",
    "customer.language",
];
const BOOL_FACTS: &[&str] = &[
    "invoice.disputed",
    "invoice.plan_current",
    "invoice.plan_defaulted",
    "customer.do_not_contact",
];
const MONEY_LITS: &[&str] = &[
    "0 USD",
    "-5 USD",
    "0.01 USD",
    "999.995 USD",
    "1000 USD",
    "1000.00 USD",
    "250000 USD",
    "12.3456789 USD",
];
const NUMBER_LITS: &[&str] = &["0", "1", "12.5", "30", "-3", "600", "0.0001"];
const PERCENT_LITS: &[&str] = &["0%", "33.3%", "50%", "60%", "80%", "90%", "100%"];
const TEXTS: &[&str] = &[
    "DE",
    "fr",
    "US",
    "strategic",
    "Strategic",
    "key-account",
    "en",
    "USD",
    "retail",
    "INV-1",
    "C-1",
    "x",
];
const CMP: &[&str] = &["=", "!=", "<", "<=", ">", ">="];

fn pick(xs: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    proptest::sample::select(xs)
}

fn date_lit() -> impl Strategy<Value = String> {
    (-40i64..40).prop_map(|n| shift(base(), n).to_string())
}

fn text_lit() -> impl Strategy<Value = String> {
    pick(TEXTS).prop_map(|t| format!("{t:?}"))
}

fn leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        (pick(MONEY_FACTS), pick(CMP), pick(MONEY_LITS))
            .prop_map(|(f, o, l)| format!("{f} {o} {l}")),
        (pick(MONEY_LITS), pick(CMP), pick(MONEY_FACTS))
            .prop_map(|(l, o, f)| format!("{l} {o} {f}")),
        (pick(NUMBER_FACTS), pick(CMP), pick(NUMBER_LITS))
            .prop_map(|(f, o, l)| format!("{f} {o} {l}")),
        (pick(PERCENT_FACTS), pick(CMP), pick(PERCENT_LITS))
            .prop_map(|(f, o, l)| format!("{f} {o} {l}")),
        (pick(DATE_FACTS), pick(CMP), date_lit()).prop_map(|(f, o, l)| format!("{f} {o} {l}")),
        (pick(DATE_FACTS), pick(CMP), pick(DATE_FACTS))
            .prop_map(|(f, o, g)| format!("{f} {o} {g}")),
        (pick(PERCENT_FACTS), pick(CMP), pick(PERCENT_FACTS))
            .prop_map(|(f, o, g)| format!("{f} {o} {g}")),
        (pick(MONEY_FACTS), pick(CMP), pick(MONEY_FACTS))
            .prop_map(|(f, o, g)| format!("{f} {o} {g}")),
        (pick(NUMBER_FACTS), pick(CMP), pick(NUMBER_FACTS))
            .prop_map(|(f, o, g)| format!("{f} {o} {g}")),
        (pick(TEXT_FACTS), pick(&["=", "!="]), text_lit())
            .prop_map(|(f, o, l)| format!("{f} {o} {l}")),
        (pick(TEXT_FACTS), pick(&["=", "!="]), pick(TEXT_FACTS))
            .prop_map(|(f, o, g)| format!("{f} {o} {g}")),
        text_lit().prop_map(|t| format!("{t} in customer.tags")),
        (
            pick(TEXT_FACTS),
            proptest::collection::vec(text_lit(), 1..4)
        )
            .prop_map(|(f, l)| format!("{f} in [{}]", l.join(", "))),
        pick(BOOL_FACTS).prop_map(str::to_string),
        (
            pick(BOOL_FACTS),
            pick(&["=", "!="]),
            pick(&["true", "false"])
        )
            .prop_map(|(f, o, b)| format!("{f} {o} {b}")),
        (
            prop_oneof![
                pick(MONEY_FACTS),
                pick(NUMBER_FACTS),
                pick(PERCENT_FACTS),
                pick(DATE_FACTS),
                pick(TEXT_FACTS)
            ],
            any::<bool>()
        )
            .prop_map(|(f, not)| format!("{f} is {}missing", if not { "not " } else { "" })),
        // Arithmetic.
        (
            pick(DATE_FACTS),
            pick(&["+", "-"]),
            0i64..20,
            pick(CMP),
            pick(DATE_FACTS)
        )
            .prop_map(|(f, s, n, o, g)| format!("{f} {s} {n}d {o} {g}")),
        (
            pick(MONEY_FACTS),
            pick(&["+", "-"]),
            pick(MONEY_FACTS),
            pick(CMP),
            pick(MONEY_LITS)
        )
            .prop_map(|(f, s, g, o, l)| format!("{f} {s} {g} {o} {l}")),
        (
            pick(PERCENT_FACTS),
            pick(&["+", "-"]),
            pick(PERCENT_LITS),
            pick(CMP),
            pick(PERCENT_LITS)
        )
            .prop_map(|(f, s, p, o, l)| format!("{f} {s} {p} {o} {l}")),
        (
            pick(NUMBER_FACTS),
            pick(&["+", "-"]),
            pick(NUMBER_LITS),
            pick(CMP),
            pick(NUMBER_LITS)
        )
            .prop_map(|(f, s, p, o, l)| format!("{f} {s} {p} {o} {l}")),
        // Constants only: folded.
        (pick(MONEY_LITS), pick(CMP), pick(MONEY_LITS))
            .prop_map(|(a, o, b)| format!("{a} {o} {b}")),
        (
            date_lit(),
            pick(&["+", "-"]),
            0i64..10,
            pick(CMP),
            date_lit()
        )
            .prop_map(|(a, s, n, o, b)| format!("{a} {s} {n}d {o} {b}")),
        pick(&["true", "false"]).prop_map(str::to_string),
    ]
}

fn condition() -> impl Strategy<Value = String> {
    leaf().prop_recursive(3, 10, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) and ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) or ({b})")),
            inner.prop_map(|a| format!("not ({a})")),
        ]
    })
}

const ACTIONS: &[&str] = &[
    "email \"friendly-reminder\"",
    "call \"collections\"",
    "letter \"legal-notice\" requires approval",
    "offer plan 3 installments every 30d down 10%",
    "experiment \"tone-N\" { 50% email \"a\", 50% no action }",
];

fn ladder(segment: String) -> impl Strategy<Value = String> {
    proptest::collection::btree_set(-20i64..35, 1..7).prop_flat_map(move |offsets| {
        let segment = segment.clone();
        let n = offsets.len();
        (
            proptest::collection::vec(
                (pick(ACTIONS), proptest::option::weighted(0.5, condition())),
                n,
            ),
            Just(offsets),
        )
            .prop_map(move |(steps, offsets)| {
                let mut s = format!("ladder {segment}\n");
                for (off, (action, cond)) in offsets.iter().zip(steps) {
                    let at = match off {
                        0 => "due".to_string(),
                        o if *o < 0 => format!("due - {}d", -o),
                        o => format!("due + {o}d"),
                    };
                    let when = cond.map(|c| format!(" when {c}")).unwrap_or_default();
                    // `requires approval` comes after the condition.
                    let (action, approval) = match action.strip_suffix(" requires approval") {
                        Some(a) => (a, " requires approval"),
                        None => (action, ""),
                    };
                    let action = action.replace("tone-N", &format!("tone-{segment}-{off}"));
                    s.push_str(&format!("  {at}  {action}{when}{approval}\n"));
                }
                s
            })
    })
}

fn policy() -> impl Strategy<Value = String> {
    (
        -30i64..30,
        proptest::option::of(pick(&["5%", "50%", "12.5%", "0.01%"])),
        any::<bool>(),
        proptest::collection::vec(-10i64..50, 0..4),
        proptest::collection::vec(condition(), 1..4),
        any::<bool>(),
        proptest::collection::vec(condition(), 0..4),
    )
        .prop_flat_map(
            |(effective, control, business, holidays, segments, otherwise, holds)| {
                let names: Vec<String> = (0..segments.len() + usize::from(otherwise))
                    .map(|i| format!("s{i}"))
                    .collect();
                let ladders: Vec<_> = names.iter().map(|n| ladder(n.clone())).collect();
                (
                    ladders,
                    Just((
                        effective, control, business, holidays, segments, otherwise, holds,
                    )),
                )
            },
        )
        .prop_map(
            |(ladders, (effective, control, business, holidays, segments, otherwise, holds))| {
                let mut s = format!(
                    "policy \"p\"\n  effective {}\n  currency USD\n",
                    shift(base(), effective)
                );
                if let Some(c) = control {
                    s.push_str(&format!("  control group {c}\n"));
                }
                if business || !holidays.is_empty() {
                    s.push_str("\nlimits\n");
                    if business {
                        s.push_str("  business days only\n");
                    }
                    if !holidays.is_empty() {
                        let days: Vec<String> = holidays
                            .iter()
                            .map(|h| shift(base(), *h).to_string())
                            .collect();
                        s.push_str(&format!("  holidays {}\n", days.join(" ")));
                    }
                }
                s.push('\n');
                let n = segments.len();
                for (i, c) in segments.iter().enumerate() {
                    s.push_str(&format!("segment s{i} when {c}\n"));
                }
                if otherwise {
                    s.push_str(&format!("segment s{n} otherwise\n"));
                }
                for (i, c) in holds.iter().enumerate() {
                    s.push_str(&format!("hold h{i} when {c}\n"));
                }
                for l in ladders {
                    s.push('\n');
                    s.push_str(&l);
                }
                s
            },
        )
}

// ---------------------------------------------------------------- facts

#[derive(Debug, Clone)]
struct Owned {
    today: NaiveDate,
    risk: Option<f64>,
    id: String,
    number: String,
    currency: String,
    amount: Decimal,
    balance: Decimal,
    issue: NaiveDate,
    due: NaiveDate,
    disputed: bool,
    dispute_opened_on: Option<NaiveDate>,
    promised: Option<NaiveDate>,
    plan_current: bool,
    plan_defaulted: bool,
    customer: String,
    country: Option<String>,
    industry: Option<String>,
    language: String,
    tags: Vec<String>,
    dnc: bool,
    revenue: Option<Decimal>,
    score: Option<Decimal>,
    limit: Option<Decimal>,
    open: Decimal,
    open_invoices: u32,
    overdue: u32,
    late_rate: Option<f64>,
    avg_late: Option<Decimal>,
    first: Option<NaiveDate>,
}

impl Owned {
    fn facts(&self) -> Facts<'_> {
        Facts {
            today: self.today,
            risk: self.risk,
            invoice: InvoiceFacts {
                id: &self.id,
                number: &self.number,
                amount: self.amount,
                balance: self.balance,
                currency: &self.currency,
                issue_date: self.issue,
                due_date: self.due,
                disputed: self.disputed,
                dispute_opened_on: self.dispute_opened_on,
                promised_until: self.promised,
                plan_current: self.plan_current,
                plan_defaulted: self.plan_defaulted,
            },
            customer: CustomerFacts {
                id: &self.customer,
                country: self.country.as_deref(),
                industry: self.industry.as_deref(),
                language: &self.language,
                tags: &self.tags,
                do_not_contact: self.dnc,
                annual_revenue: self.revenue,
                credit_score: self.score,
                credit_limit: self.limit,
                open_amount: self.open,
                open_invoices: self.open_invoices,
                overdue_invoices: self.overdue,
                late_rate: self.late_rate,
                avg_days_late: self.avg_late,
                first_invoice_on: self.first,
            },
        }
    }
}

/// Money or numbers: the literals' boundaries, values with more decimals
/// than any literal, huge and negative ones.
fn decimal() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        pick(&[
            "0",
            "-0",
            "0.01",
            "-5",
            "-5.0000001",
            "999.995",
            "999.9949999",
            "999.9950001",
            "1000",
            "1000.000000000000000000001",
            "250000",
            "249999.99",
            "12.3456789",
            "12.34567890000",
            "12.5",
            "30",
            "600",
            "0.0001",
            "79228162514264337593543950335",
            "-79228162514264337593543950335",
            "7922816251426433759354.3950335",
        ])
        .prop_map(|s| s.parse::<Decimal>().unwrap()),
        (-2_000_000i64..2_000_000, 0u32..8).prop_map(|(m, s)| Decimal::new(m, s)),
    ]
}

fn ratio() -> impl Strategy<Value = f64> {
    prop_oneof![
        pick(&[
            "0", "-0", "0.333", "0.5", "0.6", "0.8", "0.9", "1", "1.2", "NaN", "inf", "-0.1"
        ])
        .prop_map(|s| s.parse::<f64>().unwrap()),
        Just(0.6 - f64::EPSILON),
        Just(0.8 + f64::EPSILON),
        0.0f64..1.3,
    ]
}

fn date() -> impl Strategy<Value = NaiveDate> {
    prop_oneof![
        8 => (-70i64..70).prop_map(|n| shift(base(), n)),
        1 => Just(NaiveDate::MIN),
        1 => Just(NaiveDate::MAX),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        pick(TEXTS).prop_map(str::to_string),
        pick(&["de", "Fr", "usd", "STRATEGIC", "Key-Account", "", "other"])
            .prop_map(str::to_string),
    ]
}

prop_compose! {
    fn invoice_part()(
        today in date(),
        due in date(),
        risk in proptest::option::of(ratio()),
        id in text(),
        number in text(),
        currency in text(),
        amount in decimal(),
        balance in decimal(),
        issue in date(),
        disputed in any::<bool>(),
        dispute_opened_on in proptest::option::of(date()),
        promised in proptest::option::of(date()),
        plans in (any::<bool>(), any::<bool>()),
    ) -> (NaiveDate, NaiveDate, Option<f64>, [String; 3], [Decimal; 2], NaiveDate, bool, Option<NaiveDate>, Option<NaiveDate>, (bool, bool)) {
        (today, due, risk, [id, number, currency], [amount, balance], issue, disputed, dispute_opened_on, promised, plans)
    }
}

prop_compose! {
    fn owned()(
        inv in invoice_part(),
        near in (-25i64..40, any::<bool>()),
        customer in text(),
        country in proptest::option::of(text()),
        industry in proptest::option::of(text()),
        language in text(),
        tags in proptest::collection::vec(text(), 0..4),
        dnc in any::<bool>(),
        revenue in proptest::option::of(decimal()),
        score in proptest::option::of(decimal()),
        limit in proptest::option::of(decimal()),
        open in decimal(),
        counts in (0u32..50, 0u32..50),
        late_rate in proptest::option::of(ratio()),
        avg_late in proptest::option::of(decimal()),
        first in proptest::option::of(date()),
    ) -> Owned {
        let (today, due, risk, [id, number, currency], [amount, balance], issue, disputed, dispute_opened_on, promised, (plan_current, plan_defaulted)) = inv;
        // Mostly a sweep day near the due date, so that steps fall due.
        let today = if near.1 && due != NaiveDate::MIN && due != NaiveDate::MAX {
            shift(due, near.0)
        } else {
            today
        };
        Owned {
            today, risk, id, number, currency, amount, balance, issue, due, disputed,
            dispute_opened_on, promised, plan_current, plan_defaulted, customer, country,
            industry, language, tags, dnc, revenue, score, limit, open,
            open_invoices: counts.0, overdue: counts.1, late_rate, avg_late, first,
        }
    }
}

fn load(text: &str) -> Option<Policy> {
    policy_lang::load(text, "random.policy", None)
        .ok()
        .map(|(p, _)| p)
}

fn same(policy: &Policy, program: &Program, facts: &[Owned]) -> Result<(), TestCaseError> {
    let rows: Vec<_> = facts.iter().map(|o| program.row(&o.facts())).collect();
    let mut many = Vec::new();
    program.decide_many(&rows, &mut many);
    prop_assert_eq!(many.len(), facts.len());
    for ((o, row), batch) in facts.iter().zip(&rows).zip(&many) {
        let f = o.facts();
        let reference: Decision = policy.decide(&f);
        prop_assert_eq!(program.decide(row), reference, "facts {:?}", o);
        prop_assert_eq!(*batch, reference);
        prop_assert_eq!(program.decide_facts(&f), reference);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fast_path_decides_as_the_reference(
        text in policy(),
        facts in proptest::collection::vec(owned(), 1..24),
    ) {
        let policy = load(&text);
        prop_assume!(policy.is_some());
        let policy = policy.unwrap();
        let program = policy.program().map_err(|e| TestCaseError::fail(e.to_string()))?;
        same(&policy, &program, &facts).map_err(|e| TestCaseError::fail(format!("{e}\npolicy:\n{text}")))?;
    }
}

/// Most random policies must load, or the property tests little.
#[test]
fn random_policies_mostly_load() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = policy();
    let (mut ok, mut first_error) = (0, None);
    for _ in 0..200 {
        let text = strategy.new_tree(&mut runner).unwrap().current();
        match policy_lang::load(&text, "random.policy", None) {
            Ok(_) => ok += 1,
            Err(d) => {
                let e = d.iter().find(|d| d.is_error()).map(|d| d.message.clone());
                first_error.get_or_insert((text, e));
            }
        }
    }
    assert!(
        ok >= 150,
        "only {ok} of 200 random policies load; first error: {first_error:#?}"
    );
}

const STANDARD: &str = include_str!("../../policy/standard-net30.policy");

/// The standard policy lowers completely: no condition is left to the
/// reference evaluator.
#[test]
fn standard_policy_lowers_every_condition() {
    let (policy, _) = policy_lang::load(STANDARD, "standard-net30.policy", None).unwrap();
    let program = policy.program().unwrap();
    assert_eq!(program.derived_conditions(), 0);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn standard_policy_decides_as_the_reference(facts in proptest::collection::vec(owned(), 1..32)) {
        let (policy, _) = policy_lang::load(STANDARD, "standard-net30.policy", None).unwrap();
        let program = policy.program().unwrap();
        same(&policy, &program, &facts)?;
    }
}

/// Beyond 64 conditions that only the reference evaluator can decide, the
/// fast path says so instead of deciding wrongly; the reference still works.
#[test]
fn too_many_unlowerable_conditions_are_refused() {
    let text = |n: usize| {
        let holds: String = (0..n.min(40))
            .map(|i| format!("hold h{i} when invoice.amount - invoice.balance > {i} USD\n"))
            .collect();
        let steps: String = (40..n.max(40))
            .map(|i| {
                format!(
                    "  due + {i}d  call \"x\" when invoice.amount - invoice.balance > {i} USD\n"
                )
            })
            .collect();
        format!(
            "policy \"p\"\n  effective 2027-01-01\n  currency USD\n\nsegment s otherwise\n{holds}\nladder s\n  due  call \"x\"\n{steps}"
        )
    };
    let (policy, _) = policy_lang::load(&text(70), "many.policy", None).unwrap();
    assert_eq!(policy.program().unwrap_err().0, 70);
    let (policy, _) = policy_lang::load(&text(60), "sixty.policy", None).unwrap();
    let program = policy.program().unwrap();
    assert_eq!(program.derived_conditions(), 60);
}

/// A row built by one program and decided by another is nonsense, but it
/// must not panic; nor may a default row.
#[test]
fn foreign_and_default_rows_do_not_panic() {
    let (standard, _) = policy_lang::load(STANDARD, "standard-net30.policy", None).unwrap();
    let standard = standard.program().unwrap();
    let other = "policy \"p\"\n  effective 2027-01-01\n  currency USD\n\nlimits\n  business days only\n  holidays 2027-01-01\n\nsegment s when customer.country in [\"DE\"] and risk is missing and invoice.promised_until < invoice.due_date\nsegment t otherwise\n\nladder s\n  due - 36600d  call \"x\"\n  due + 36600d  call \"x\"\nladder t\n  due  call \"x\"\n";
    let (other, _) = policy_lang::load(other, "other.policy", None).unwrap();
    let other = other.program().unwrap();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    use proptest::strategy::ValueTree;
    for _ in 0..200 {
        let o = owned().new_tree(&mut runner).unwrap().current();
        let row = standard.row(&o.facts());
        let _ = other.decide(&row);
        let row = other.row(&o.facts());
        let _ = standard.decide(&row);
    }
    let _ = standard.decide(&policy_lang::FactRow::default());
    let _ = other.decide(&policy_lang::FactRow::default());
}
