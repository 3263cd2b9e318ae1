//! The fast path: a checked [`Policy`] lowered once to a flat program over
//! pre-resolved facts.
//!
//! [`Program::new`] lowers every hold, segment and step condition, with
//! constants folded, to tests over a [`FactRow`]: dates become day numbers,
//! money and numbers scaled integers, percentages order-preserving integers,
//! text small ids, tags a bit set. [`Program::row`] resolves one invoice's
//! [`Facts`] into such a row (the only place that touches text, `Decimal` or
//! the control-group hash), and [`Program::decide`] /
//! [`Program::decide_many`] decide rows without strings, `Decimal`
//! arithmetic or allocation.
//!
//! A decision is branch-light: every distinct test of the policy runs once,
//! the same few instructions whatever it tests (bit tests, then value
//! tests), into one `u64`; each condition is then `a and b` or `a or b` over
//! two of its bits (conditions larger than that run a short postfix
//! program); holds, the first matching segment and the due steps are bit
//! sets, and the reference's early exits become bit tricks. Step dates come
//! from a table of business-day rolls (about 48 bytes a year around the
//! policy's dates).
//!
//! [`Policy::decide`] stays the reference (and the `explain` path): the
//! property tests in `tests/fast.rs` check that both give the same
//! [`Decision`] for random policies and random facts, and the bench
//! `benches/decide.rs` that they agree on 100,000 invoices.
//!
//! Exactness. A money or number fact compared with a constant is stored as
//! `2·⌊v·10ˢ⌋ + [v·10ˢ not whole]` at the largest scale `s` of the constants
//! it is compared with, saturated far beyond any constant: against a
//! constant `k` (stored as `2·k·10ˢ`) that order is exactly the order of `v`
//! and `k`. A condition the program cannot lower exactly (arithmetic on
//! facts, two money or number facts compared, text fact against text fact,
//! more facts than a row has room for) is evaluated by the reference
//! evaluator while the row is built and stored as one bit of the row
//! ([`Program::derived_conditions`] counts them; the standard policy has
//! none). More than 64 such conditions: [`Unsupported`].

use crate::ast::BinOp;
use crate::compile::{CExpr, Const, Policy};
use crate::eval::{Decision, bucket_after, bucket_prefix, eval, truthy};
use crate::facts::{CustomerFacts, FACTS, FactId, Facts, InvoiceFacts, Type, Value};
use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

/// Numeric facts (dates, money, numbers, percentages) a row holds.
const SLOTS: usize = 8;
/// Text facts a row holds as ids.
const TEXT_SLOTS: usize = 4;
/// Bit of the `FLAGS` word of a [`FactRow`]: the customer is in the control group.
const CONTROL_BIT: u32 = 63;
/// Largest `|⌊v·10ˢ⌋|` kept as is; beyond it a value saturates.
const LIMIT: i128 = 1 << 61;
/// Largest scale a money or number fact is kept at.
const MAX_SCALE: u32 = 18;

// Words of a `FactRow`.
const FLAGS: usize = 0;
const ABSENT: usize = 1;
const TAGS: usize = 2;
const DERIVED: usize = 3;
/// First of the [`TEXT_SLOTS`] text words.
const TEXT0: usize = 4;
/// First of the [`SLOTS`] value words.
const VAL0: usize = TEXT0 + TEXT_SLOTS;
const WORDS: usize = VAL0 + SLOTS;

/// One invoice's facts, resolved for one [`Program`]: only what its
/// conditions read, as integers and bits (144 bytes, no lifetime: rows can
/// be kept and decided later). Build it with [`Program::row`]; a row is
/// meaningful only to the program that built it (another program decides
/// it without panicking, but to no purpose).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FactRow {
    /// `today` as a day number (days from the common era).
    today: i32,
    /// The invoice's due date as a day number.
    due: i32,
    /// Bit per fact: comparisons with it are false (missing, or not a number).
    nocmp: u64,
    /// Every condition reads one of these (and maybe a second), so that a
    /// test is the same few instructions whatever it tests:
    /// - `FLAGS`: bit per yes/no fact that holds; bit 63: the customer is in
    ///   the control group;
    /// - `ABSENT`: bit per fact that is missing (for `is missing`);
    /// - `TAGS`: bit per tag constant the customer carries;
    /// - `DERIVED`: bit per condition evaluated while building the row;
    /// - `TEXT0..`: per text fact, bit 0 missing, bit 1 none of the
    ///   constants, bit `2 + i` constant `i`;
    /// - `VAL0..`: numeric facts, as integers ordered like the values.
    words: [u64; WORDS],
}

impl FactRow {
    /// Whether the customer is in the policy's control group.
    pub fn in_control_group(&self) -> bool {
        self.words[FLAGS] >> CONTROL_BIT & 1 != 0
    }
}

/// The policy is beyond what the fast program holds (more than 64
/// conditions that must be evaluated while building rows): decide with
/// [`Policy::decide`]. Checked policies written by people do not come
/// near it; the standard policy has none.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the policy has {0} conditions the fast path cannot lower, more than 64")]
pub struct Unsupported(pub usize);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Word {
    Flags,
    Absent,
    Tags,
    Derived,
}

/// One instruction; each pushes or combines bits on a 64-deep bit stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Push(bool),
    /// Value `slot` against `k`: `mask` bit 0 less, bit 1 equal, bit 3
    /// greater; false when bit `fact` of `nocmp` is set.
    Cmp {
        slot: u8,
        fact: u8,
        mask: u8,
        k: i64,
    },
    /// Two slots of the same encoding.
    CmpSlots {
        a: u8,
        b: u8,
        fa: u8,
        fb: u8,
        mask: u8,
    },
    /// `(word & mask != 0) != invert`.
    Test {
        word: Word,
        mask: u64,
        invert: bool,
    },
    /// The text word of `slot` against `mask` (bits of the constants).
    Text {
        slot: u8,
        mask: u64,
    },
    Not,
    And,
    Or,
}

/// One test, the same few instructions whatever it tests:
/// `v = words[a] & and_a`, `k = k + (words[b] & and_b)` (as integers), then
/// bit `2·[v > k] + [v >= k]` of `rel`, false when `nocmp & nomask != 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Leaf {
    a: u8,
    b: u8,
    rel: u8,
    and_a: u64,
    and_b: u64,
    k: i64,
    nomask: u64,
}

/// `rel` masks of the two word tests.
const REL_EQ: u8 = 0b0010;
const REL_NE: u8 = 0b1001;

impl Leaf {
    fn of(op: Op) -> Option<Leaf> {
        let word = |w: Word| match w {
            Word::Flags => FLAGS,
            Word::Absent => ABSENT,
            Word::Tags => TAGS,
            Word::Derived => DERIVED,
        } as u8;
        let none = Leaf {
            a: 0,
            b: 0,
            rel: 0,
            and_a: 0,
            and_b: 0,
            k: 0,
            nomask: 0,
        };
        Some(match op {
            Op::Push(b) => Leaf {
                rel: if b { REL_EQ } else { 0 },
                ..none
            },
            Op::Cmp {
                slot,
                fact,
                mask,
                k,
            } => Leaf {
                a: VAL0 as u8 + slot,
                rel: mask,
                and_a: !0,
                k,
                nomask: 1 << fact,
                ..none
            },
            Op::CmpSlots { a, b, fa, fb, mask } => Leaf {
                a: VAL0 as u8 + a,
                b: VAL0 as u8 + b,
                rel: mask,
                and_a: !0,
                and_b: !0,
                nomask: 1 << fa | 1 << fb,
                ..none
            },
            Op::Test {
                word: w,
                mask,
                invert,
            } => Leaf {
                a: word(w),
                rel: if invert { REL_EQ } else { REL_NE },
                and_a: mask,
                ..none
            },
            Op::Text { slot, mask } => Leaf {
                a: TEXT0 as u8 + slot,
                rel: REL_NE,
                and_a: mask,
                ..none
            },
            Op::Not | Op::And | Op::Or => return None,
        })
    }

    #[inline(always)]
    fn test(&self, r: &FactRow) -> u64 {
        let word = |i: u8| r.words.get(usize::from(i) % WORDS).copied().unwrap_or(0);
        let v = (word(self.a) & self.and_a) as i64;
        let k = self.k.wrapping_add((word(self.b) & self.and_b) as i64);
        let rel = (u32::from(v > k) << 1) | u32::from(v >= k);
        u64::from((self.rel >> rel) & 1) & u64::from(r.nocmp & self.nomask == 0)
    }
}

/// A [`Leaf`] that tests bits of a word: `(word & mask != 0) ^ invert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BitTest {
    word: u8,
    mask: u64,
    invert: u64,
}

/// A [`Leaf`] that compares a value with a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ValueTest {
    word: u8,
    rel: u8,
    k: i64,
    nomask: u64,
}

impl Leaf {
    fn as_bits(&self) -> Option<BitTest> {
        (self.and_b == 0 && self.k == 0 && self.nomask == 0).then_some(())?;
        let (mask, invert) = match self.rel {
            REL_EQ => (self.and_a, 1),
            REL_NE => (self.and_a, 0),
            0 => (0, 0),
            _ => return None,
        };
        Some(BitTest {
            word: self.a,
            mask,
            invert,
        })
    }

    fn as_value(&self) -> Option<ValueTest> {
        (self.and_b == 0 && self.and_a == !0).then_some(ValueTest {
            word: self.a,
            rel: self.rel,
            k: self.k,
            nomask: self.nomask,
        })
    }
}

/// [`Program::ops`]: a condition too large for [`Cond`], in postfix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Leaf(Leaf),
    Not,
    And,
    Or,
}

/// How a slot stores its fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Enc {
    /// Dates: day number.
    Day,
    /// Money and numbers: `2·⌊v·10ˢ⌋ + frac`.
    Scaled(u32),
    /// Percentages: the `f64`'s order-preserving integer.
    Ratio,
}

/// A lowered condition: tests joined by `and` only (every bit of `mask`
/// set) or by `or` only (`any`: some bit set), over the decision's test
/// bits; or, for anything else, a range of [`Program::ops`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cond {
    mask: u64,
    any: bool,
    ops: Option<(u32, u32)>,
}

#[derive(Debug, Clone, PartialEq)]
struct SegmentP {
    cond: Cond,
    ladder: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct StepP {
    /// Days from the due date when that fits an `i32`, else `i32::MIN`
    /// (never scheduled).
    days: i32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct LadderP {
    /// Range of [`Program::steps`].
    steps: (u32, u32),
    /// Range of [`Program::step_conds`]: `(step index, condition)`.
    conds: (u32, u32),
    /// Steps without a condition.
    always: u64,
    /// Steps before the due date (withheld from the control group).
    before_due: u64,
    /// All steps.
    all: u64,
    /// Smallest and largest `days` of its steps.
    min_days: i32,
    max_days: i32,
}

/// A [`Policy`] compiled for throughput: decides [`FactRow`]s.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    control_bp: u32,
    /// Hash state of the control-group assignment before the customer id.
    control_prefix: u64,
    effective: Option<i32>,
    business_days: bool,
    /// Sorted day numbers.
    holidays: Vec<i32>,
    min_day: i32,
    max_day: i32,
    /// From `calendar_lo` on, per day: how far rolling moves it, backwards
    /// and forwards (business days only).
    calendar: Vec<(i16, i16)>,
    calendar_lo: i32,
    ops: Vec<Node>,
    /// The tests of the inline conditions, each evaluated once a decision:
    /// bits `0..` the bit tests, then the value tests, then the rest.
    bit_tests: Vec<BitTest>,
    value_tests: Vec<ValueTest>,
    leaves: Vec<Leaf>,
    holds: Vec<Cond>,
    segments: Vec<SegmentP>,
    /// Steps of all ladders, sorted by offset within a ladder.
    steps: Vec<StepP>,
    step_conds: Vec<(u8, Cond)>,
    ladders: Vec<LadderP>,
    // Row layout.
    bool_facts: Vec<FactId>,
    missing_facts: Vec<FactId>,
    slots: Vec<(FactId, Enc)>,
    texts: Vec<(FactId, Vec<String>)>,
    tags: Vec<String>,
    derived: Vec<CExpr>,
}

/// Static kind of an expression's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Always `Value::Bool`.
    Bool,
    /// Never `Value::Bool`.
    Other,
    /// Either.
    Maybe,
}

fn def(id: FactId) -> Option<&'static crate::facts::FactDef> {
    FACTS.iter().find(|f| f.id == id)
}

fn fact_type(id: FactId) -> Option<Type> {
    def(id).map(|d| d.ty)
}

fn fact_bit(id: FactId) -> u8 {
    id as u8
}

/// `mask` for a comparison: bit `r` for `r = 2·[v > k] + [v >= k]`.
fn cmp_mask(op: BinOp) -> Option<u8> {
    Some(match op {
        BinOp::Eq => 0b0010,
        BinOp::Ne => 0b1001,
        BinOp::Lt => 0b0001,
        BinOp::Le => 0b0011,
        BinOp::Gt => 0b1000,
        BinOp::Ge => 0b1010,
        _ => return None,
    })
}

fn has_fact(e: &CExpr) -> bool {
    match e {
        CExpr::Fact(_) | CExpr::FactCmp(..) => true,
        CExpr::Const(_) | CExpr::List(_) => false,
        CExpr::Not(i) | CExpr::IsMissing(i, _) => has_fact(i),
        CExpr::Binary(_, l, r) => has_fact(l) || has_fact(r),
    }
}

fn kind(e: &CExpr) -> Kind {
    match e {
        CExpr::Fact(id) => match def(*id) {
            Some(d) if d.ty == Type::Bool && !d.optional => Kind::Bool,
            Some(d) if d.ty == Type::Bool => Kind::Maybe,
            _ => Kind::Other,
        },
        CExpr::Const(Const::Bool(_)) => Kind::Bool,
        CExpr::Const(_) | CExpr::List(_) => Kind::Other,
        CExpr::Not(_) | CExpr::IsMissing(..) | CExpr::FactCmp(..) => Kind::Bool,
        CExpr::Binary(op, ..) => match op {
            BinOp::Add | BinOp::Sub => Kind::Other,
            _ => Kind::Bool,
        },
    }
}

/// Facts for evaluating a condition that names none.
fn no_facts() -> Facts<'static> {
    let day = NaiveDate::MIN;
    Facts {
        today: day,
        risk: None,
        invoice: InvoiceFacts {
            id: "",
            number: "",
            amount: Decimal::ZERO,
            balance: Decimal::ZERO,
            currency: "",
            issue_date: day,
            due_date: day,
            disputed: false,
            dispute_opened_on: None,
            promised_until: None,
            plan_current: false,
            plan_defaulted: false,
        },
        customer: CustomerFacts {
            id: "",
            country: None,
            industry: None,
            language: "",
            tags: &[],
            do_not_contact: false,
            annual_revenue: None,
            credit_score: None,
            credit_limit: None,
            open_amount: Decimal::ZERO,
            open_invoices: 0,
            overdue_invoices: 0,
            late_rate: None,
            avg_days_late: None,
            first_invoice_on: None,
        },
    }
}

/// `⌊x·10ˢ⌋` and whether a fraction was cut, or `None` when `|⌊x·10ˢ⌋|`
/// exceeds [`LIMIT`] (the sign of `x` then tells the side).
fn scale_to(x: Decimal, s: u32) -> Option<(i128, bool)> {
    let m = x.mantissa();
    let e = x.scale();
    // The common case (cents, a few digits) in 64-bit arithmetic.
    if let (Ok(m), Some(p)) = (i64::try_from(m), 10i64.checked_pow(s.abs_diff(e))) {
        let (q, frac) = if s >= e {
            (m.checked_mul(p), false)
        } else {
            (Some(m.div_euclid(p)), m.rem_euclid(p) != 0)
        };
        if let Some(q) = q {
            let q = i128::from(q);
            return (q.abs() < LIMIT).then_some((q, frac));
        }
    }
    let (q, frac) = if s >= e {
        (m.checked_mul(10i128.checked_pow(s - e)?)?, false)
    } else {
        let p = 10i128.checked_pow(e - s)?;
        (m.div_euclid(p), m.rem_euclid(p) != 0)
    };
    (q.abs() < LIMIT).then_some((q, frac))
}

/// The row encoding of a money or number value.
fn scaled(x: Decimal, s: u32) -> i64 {
    let top = (LIMIT as i64) * 2 + 1;
    match scale_to(x, s) {
        Some((q, frac)) => (q as i64) * 2 + i64::from(frac),
        None if x.is_sign_negative() => -top,
        None => top,
    }
}

/// `Decimal::to_f64`, bit for bit (the reference computes credit
/// utilization with it), without its 128-bit division when the mantissa
/// fits 64 bits.
fn decimal_f64(x: Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    let scale = x.scale();
    let (Ok(mantissa), Some(precision)) = (
        u64::try_from(x.mantissa().unsigned_abs()),
        10u64.checked_pow(scale),
    ) else {
        return x.to_f64().unwrap_or(f64::NAN);
    };
    if scale == 0 {
        return x.to_f64().unwrap_or(f64::NAN);
    }
    let integral = (mantissa / precision) as f64;
    let frac = (mantissa % precision) as f64 / precision as f64;
    if frac == 0.0 {
        return if x.is_sign_negative() {
            -integral
        } else {
            integral
        };
    }
    let round_to = 10f64.powi(scale as i32);
    let rounded = ((integral + frac) * round_to).round() / round_to;
    if x.is_sign_negative() {
        -rounded
    } else {
        rounded
    }
}

/// The value of one fact, as [`Facts::get`], faster where that is slow.
fn fact_value<'a>(f: &Facts<'a>, id: FactId) -> Value<'a> {
    match id {
        FactId::CustomerCreditUtilization => match f.customer.credit_limit {
            Some(limit) if !limit.is_zero() => {
                let l = decimal_f64(limit);
                if l != 0.0 {
                    Value::Percent(decimal_f64(f.customer.open_amount) / l)
                } else {
                    Value::Missing
                }
            }
            _ => Value::Missing,
        },
        _ => f.get(id),
    }
}

/// Order-preserving integer of an `f64` (`-0.0` as `0.0`); `None` for NaN.
fn ratio_key(x: f64) -> Option<i64> {
    if x.is_nan() {
        return None;
    }
    let x = if x == 0.0 { 0.0 } else { x };
    let b = x.to_bits() as i64;
    Some(b ^ (((b >> 63) as u64) >> 1) as i64)
}

fn scale_of(c: &Const) -> Option<u32> {
    match c {
        Const::Number(n) | Const::Money(n) => Some(n.scale()),
        _ => None,
    }
}

struct Builder {
    ops: Vec<Op>,
    leaves: Vec<Leaf>,
    bool_facts: Vec<FactId>,
    missing_facts: Vec<FactId>,
    slots: Vec<(FactId, Enc)>,
    texts: Vec<(FactId, Vec<String>)>,
    tags: Vec<String>,
    derived: Vec<CExpr>,
    /// Per fact index: the largest scale of a constant it is compared with.
    scales: [u32; 64],
}

impl Builder {
    fn collect_scales(&mut self, e: &CExpr) {
        match e {
            CExpr::FactCmp(_, id, c) => {
                if let (Some(s), Some(slot)) = (scale_of(c), self.scales.get_mut(*id as usize)) {
                    // At least 4 decimals: cents and basis points need no
                    // division when rows are built.
                    *slot = (*slot).max(s).max(4);
                }
            }
            CExpr::Not(i) | CExpr::IsMissing(i, _) => self.collect_scales(i),
            CExpr::Binary(_, l, r) => {
                self.collect_scales(l);
                self.collect_scales(r);
            }
            CExpr::Fact(_) | CExpr::Const(_) | CExpr::List(_) => {}
        }
    }

    /// Lowers a whole condition (`None` is always true).
    fn cond(&mut self, e: Option<&CExpr>) -> Cond {
        let start = self.ops.len();
        match e {
            None => self.ops.push(Op::Push(true)),
            Some(e) => {
                self.emit(e);
                if max_depth(self.ops.get(start..).unwrap_or(&[])) > 64 {
                    self.ops.truncate(start);
                    self.derive(e);
                }
            }
        }
        let tail: Vec<Op> = self.ops.get(start..).unwrap_or(&[]).to_vec();
        let tests: Vec<Op> = tail
            .iter()
            .copied()
            .filter(|op| !matches!(op, Op::Not | Op::And | Op::Or))
            .collect();
        let joins: Vec<Op> = tail
            .iter()
            .copied()
            .filter(|op| matches!(op, Op::Not | Op::And | Op::Or))
            .collect();
        let any = joins.first() == Some(&Op::Or);
        let flat = joins.len() + 1 == tests.len()
            && joins.iter().all(|j| Some(j) == joins.first())
            && joins.first() != Some(&Op::Not);
        let shape = if flat {
            let mut mask = 0u64;
            let mut fits = true;
            for t in &tests {
                match Leaf::of(*t).and_then(|l| self.leaf(l)) {
                    Some(i) => mask |= 1 << i,
                    None => fits = false,
                }
            }
            fits.then_some(Cond {
                mask,
                any,
                ops: None,
            })
        } else {
            None
        };
        match shape {
            Some(c) => {
                self.ops.truncate(start);
                c
            }
            None => Cond {
                mask: 0,
                any: false,
                ops: Some((start as u32, self.ops.len() as u32)),
            },
        }
    }

    /// Emits ops that push `truthy(eval(e))`.
    fn emit(&mut self, e: &CExpr) {
        if !has_fact(e) {
            let v = truthy(eval(e, &no_facts()));
            self.ops.push(Op::Push(v));
            return;
        }
        match e {
            CExpr::Fact(id) => match kind(e) {
                Kind::Bool => self.flag(*id, false),
                Kind::Other => self.ops.push(Op::Push(false)),
                Kind::Maybe => self.derive(e),
            },
            CExpr::Const(_) | CExpr::List(_) => {
                let v = truthy(eval(e, &no_facts()));
                self.ops.push(Op::Push(v));
            }
            CExpr::Not(inner) => match kind(inner) {
                Kind::Bool => {
                    self.emit(inner);
                    self.ops.push(Op::Not);
                }
                Kind::Other => self.ops.push(Op::Push(false)),
                Kind::Maybe => self.derive(e),
            },
            CExpr::IsMissing(inner, negated) => match inner.as_ref() {
                CExpr::Fact(id) => {
                    if !self.missing_facts.contains(id) {
                        self.missing_facts.push(*id);
                    }
                    self.ops.push(Op::Test {
                        word: Word::Absent,
                        mask: 1 << fact_bit(*id),
                        invert: *negated,
                    });
                }
                _ => self.derive(e),
            },
            CExpr::Binary(BinOp::And | BinOp::Or, l, r) => {
                self.emit(l);
                self.emit(r);
                self.ops.push(match e {
                    CExpr::Binary(BinOp::And, ..) => Op::And,
                    _ => Op::Or,
                });
            }
            CExpr::Binary(BinOp::Add | BinOp::Sub, ..) => self.ops.push(Op::Push(false)),
            CExpr::Binary(BinOp::In, l, r) => self.membership(e, l, r),
            CExpr::Binary(op, l, r) => match (l.as_ref(), r.as_ref()) {
                (CExpr::Fact(a), CExpr::Fact(b)) => self.fact_fact(e, *op, *a, *b),
                (CExpr::Fact(a), CExpr::Const(c)) => self.fact_const(e, *op, *a, c),
                (CExpr::Const(c), CExpr::Fact(a)) => self.fact_const(e, flip(*op), *a, c),
                _ => self.derive(e),
            },
            CExpr::FactCmp(op, id, c) => self.fact_const(e, *op, *id, c),
        }
    }

    /// The bit of a test in [`Program::leaves`], when there is room.
    fn leaf(&mut self, leaf: Leaf) -> Option<u8> {
        match self.leaves.iter().position(|l| *l == leaf) {
            Some(i) => Some(i as u8),
            None if self.leaves.len() < 64 => {
                self.leaves.push(leaf);
                Some((self.leaves.len() - 1) as u8)
            }
            None => None,
        }
    }

    fn derive(&mut self, e: &CExpr) {
        let i = match self.derived.iter().position(|d| d == e) {
            Some(i) => i,
            None => {
                self.derived.push(e.clone());
                self.derived.len() - 1
            }
        };
        // More than 64 is refused by `Program::new`.
        self.ops.push(Op::Test {
            word: Word::Derived,
            mask: 1u64.checked_shl(i as u32).unwrap_or(0),
            invert: false,
        });
    }

    fn flag(&mut self, id: FactId, invert: bool) {
        if !self.bool_facts.contains(&id) {
            self.bool_facts.push(id);
        }
        self.ops.push(Op::Test {
            word: Word::Flags,
            mask: 1 << fact_bit(id),
            invert,
        });
    }

    /// The slot of a numeric fact, added with `enc` when there is room.
    fn slot(&mut self, id: FactId, enc: Enc) -> Option<u8> {
        if let Some(i) = self.slots.iter().position(|(f, _)| *f == id) {
            return (self.slots.get(i).map(|s| s.1) == Some(enc)).then_some(i as u8);
        }
        if self.slots.len() >= SLOTS {
            return None;
        }
        self.slots.push((id, enc));
        Some((self.slots.len() - 1) as u8)
    }

    /// The text slot of a fact and the id of each constant, when there is room.
    fn text_ids(&mut self, id: FactId, consts: &[&str]) -> Option<(u8, Vec<u8>)> {
        let slot = match self.texts.iter().position(|(f, _)| *f == id) {
            Some(i) => i,
            None if self.texts.len() < TEXT_SLOTS => {
                self.texts.push((id, Vec::new()));
                self.texts.len() - 1
            }
            None => return None,
        };
        let list = &mut self.texts.get_mut(slot)?.1;
        let mut ids = Vec::new();
        for c in consts {
            let lower = c.to_ascii_lowercase();
            let i = match list.iter().position(|x| *x == lower) {
                Some(i) => i,
                None if list.len() < 62 => {
                    list.push(lower);
                    list.len() - 1
                }
                None => return None,
            };
            ids.push(i as u8 + 2);
        }
        Some((slot as u8, ids))
    }

    fn fact_const(&mut self, e: &CExpr, op: BinOp, id: FactId, c: &Const) {
        let Some(mask) = cmp_mask(op) else {
            return self.derive(e);
        };
        let Some(ty) = fact_type(id) else {
            return self.derive(e);
        };
        let fact = fact_bit(id);
        match (ty, c) {
            (Type::Date, Const::Date(d)) => match self.slot(id, Enc::Day) {
                Some(slot) => self.ops.push(Op::Cmp {
                    slot,
                    fact,
                    mask,
                    k: i64::from(d.num_days_from_ce()),
                }),
                None => self.derive(e),
            },
            (Type::Number, Const::Number(k)) | (Type::Money, Const::Money(k)) => {
                let s = self.scales.get(id as usize).copied().unwrap_or(0);
                let k = (s <= MAX_SCALE).then(|| scale_to(*k, s)).flatten();
                match (k, self.slot(id, Enc::Scaled(s))) {
                    (Some((k, false)), Some(slot)) => self.ops.push(Op::Cmp {
                        slot,
                        fact,
                        mask,
                        k: (k as i64) * 2,
                    }),
                    _ => self.derive(e),
                }
            }
            (Type::Percent, Const::Percent(p)) => match ratio_key(*p) {
                None => self.ops.push(Op::Push(false)),
                Some(k) => match self.slot(id, Enc::Ratio) {
                    Some(slot) => self.ops.push(Op::Cmp {
                        slot,
                        fact,
                        mask,
                        k,
                    }),
                    None => self.derive(e),
                },
            },
            (Type::Text, Const::Text(t)) => match op {
                BinOp::Eq | BinOp::Ne => match self.text_ids(id, &[t.as_str()]) {
                    Some((slot, ids)) => {
                        let bit = ids.first().map_or(0, |i| 1u64 << i);
                        let mask = if op == BinOp::Eq { bit } else { !(bit | 1) };
                        self.ops.push(Op::Text { slot, mask });
                    }
                    None => self.derive(e),
                },
                _ => self.ops.push(Op::Push(false)),
            },
            (Type::Bool, Const::Bool(b)) => match op {
                BinOp::Eq => self.flag(id, !*b),
                BinOp::Ne => self.flag(id, *b),
                _ => self.ops.push(Op::Push(false)),
            },
            // Different kinds, a missing constant, a list: never equal,
            // never ordered.
            _ => self.ops.push(Op::Push(false)),
        }
    }

    fn fact_fact(&mut self, e: &CExpr, op: BinOp, a: FactId, b: FactId) {
        let (Some(mask), Some(ta), Some(tb)) = (cmp_mask(op), fact_type(a), fact_type(b)) else {
            return self.derive(e);
        };
        if ta != tb || ta == Type::TextList {
            return self.ops.push(Op::Push(false));
        }
        let enc = match ta {
            Type::Date => Enc::Day,
            Type::Percent => Enc::Ratio,
            _ => return self.derive(e),
        };
        match (self.slot(a, enc), self.slot(b, enc)) {
            (Some(sa), Some(sb)) => self.ops.push(Op::CmpSlots {
                a: sa,
                b: sb,
                fa: fact_bit(a),
                fb: fact_bit(b),
                mask,
            }),
            _ => self.derive(e),
        }
    }

    fn membership(&mut self, e: &CExpr, l: &CExpr, r: &CExpr) {
        match (l, r) {
            (CExpr::Const(Const::Text(t)), CExpr::Fact(FactId::CustomerTags)) => {
                let lower = t.to_ascii_lowercase();
                let i = match self.tags.iter().position(|x| *x == lower) {
                    Some(i) => i,
                    None if self.tags.len() < 64 => {
                        self.tags.push(lower);
                        self.tags.len() - 1
                    }
                    None => return self.derive(e),
                };
                self.ops.push(Op::Test {
                    word: Word::Tags,
                    mask: 1 << i,
                    invert: false,
                });
            }
            (CExpr::Const(_), CExpr::Fact(_)) | (CExpr::Fact(_), CExpr::Const(_)) => {
                // Only text in a list is ever true.
                self.ops.push(Op::Push(false));
            }
            (CExpr::Fact(id), CExpr::List(items)) => {
                if fact_type(*id) != Some(Type::Text) {
                    return self.ops.push(Op::Push(false));
                }
                let items: Vec<&str> = items.iter().map(String::as_str).collect();
                match self.text_ids(*id, &items) {
                    Some((slot, ids)) => {
                        let mask = ids.iter().fold(0u64, |m, i| m | 1u64 << i);
                        self.ops.push(Op::Text { slot, mask });
                    }
                    None => self.derive(e),
                }
            }
            _ => self.derive(e),
        }
    }
}

fn flip(op: BinOp) -> BinOp {
    match op {
        BinOp::Lt => BinOp::Gt,
        BinOp::Le => BinOp::Ge,
        BinOp::Gt => BinOp::Lt,
        BinOp::Ge => BinOp::Le,
        other => other,
    }
}

/// The deepest the bit stack gets running `ops`.
fn max_depth(ops: &[Op]) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for op in ops {
        match op {
            Op::Not => {}
            Op::And | Op::Or => depth = depth.saturating_sub(1),
            _ => depth += 1,
        }
        max = max.max(depth);
    }
    max
}

fn day(d: NaiveDate) -> i32 {
    d.num_days_from_ce()
}

impl Program {
    /// Lowers a compiled policy.
    pub fn new(policy: &Policy) -> Result<Program, Unsupported> {
        let mut b = Builder {
            ops: Vec::new(),
            leaves: Vec::new(),
            bool_facts: Vec::new(),
            missing_facts: Vec::new(),
            slots: Vec::new(),
            texts: Vec::new(),
            tags: Vec::new(),
            derived: Vec::new(),
            scales: [0; 64],
        };
        let conditions = policy
            .holds
            .iter()
            .map(|h| Some(&h.condition))
            .chain(policy.segments.iter().map(|s| s.condition.as_ref()))
            .chain(
                policy
                    .ladders
                    .iter()
                    .flat_map(|l| l.steps.iter().map(|s| s.condition.as_ref())),
            );
        for c in conditions.flatten() {
            b.collect_scales(c);
        }
        let holds = policy
            .holds
            .iter()
            .take(64)
            .map(|h| b.cond(Some(&h.condition)))
            .collect();
        let segments = policy
            .segments
            .iter()
            .map(|s| SegmentP {
                cond: b.cond(s.condition.as_ref()),
                ladder: s.ladder,
            })
            .collect();
        let mut steps = Vec::new();
        let mut step_conds = Vec::new();
        let mut ladders = Vec::new();
        for l in &policy.ladders {
            let mut ladder = LadderP {
                steps: (steps.len() as u32, 0),
                conds: (step_conds.len() as u32, 0),
                always: 0,
                before_due: 0,
                all: 0,
                min_days: 0,
                max_days: 0,
            };
            for (i, s) in l.steps.iter().take(64).enumerate() {
                let days = i32::try_from(s.offset)
                    .ok()
                    .filter(|d| *d != i32::MIN)
                    .unwrap_or(i32::MIN);
                steps.push(StepP { days });
                ladder.all |= 1 << i;
                if i == 0 {
                    (ladder.min_days, ladder.max_days) = (days, days);
                }
                ladder.min_days = ladder.min_days.min(days);
                ladder.max_days = ladder.max_days.max(days);
                match &s.condition {
                    None => ladder.always |= 1 << i,
                    Some(c) => step_conds.push((i as u8, b.cond(Some(c)))),
                }
                if s.offset < 0 {
                    ladder.before_due |= 1 << i;
                }
            }
            ladder.steps.1 = steps.len() as u32;
            ladder.conds.1 = step_conds.len() as u32;
            ladders.push(ladder);
        }
        if b.derived.len() > 64 {
            return Err(Unsupported(b.derived.len()));
        }
        let mut holidays: Vec<i32> = policy.limits.holidays.iter().map(|d| day(*d)).collect();
        holidays.sort_unstable();
        holidays.dedup();
        let mut program = Program {
            control_bp: policy.control_bp,
            control_prefix: bucket_prefix("control-group", &policy.name),
            effective: policy.effective.map(day),
            business_days: policy.limits.business_days,
            holidays,
            min_day: day(NaiveDate::MIN),
            max_day: day(NaiveDate::MAX),
            ops: b
                .ops
                .iter()
                .map(|op| match op {
                    Op::Not => Node::Not,
                    Op::And => Node::And,
                    Op::Or => Node::Or,
                    leaf => Leaf::of(*leaf).map_or(Node::Not, Node::Leaf),
                })
                .collect(),
            holds,
            segments,
            steps,
            step_conds,
            ladders,
            bool_facts: b.bool_facts,
            missing_facts: b.missing_facts,
            slots: b.slots,
            texts: b.texts,
            tags: b.tags,
            derived: b.derived,
            bit_tests: Vec::new(),
            value_tests: Vec::new(),
            leaves: Vec::new(),
            calendar: Vec::new(),
            calendar_lo: 0,
        };
        // Tests grouped by kind, so that each kind runs in its own loop.
        let mut order: Vec<usize> = (0..b.leaves.len()).collect();
        let kind = |l: &Leaf| {
            if l.as_bits().is_some() {
                0
            } else if l.as_value().is_some() {
                1
            } else {
                2
            }
        };
        order.sort_by_key(|i| b.leaves.get(*i).map_or(3, kind));
        let mut new_index = vec![0u8; b.leaves.len()];
        for (new, old) in order.iter().enumerate() {
            if let (Some(slot), Some(leaf)) = (new_index.get_mut(*old), b.leaves.get(*old)) {
                *slot = new as u8;
                match (leaf.as_bits(), leaf.as_value()) {
                    (Some(t), _) => program.bit_tests.push(t),
                    (None, Some(t)) => program.value_tests.push(t),
                    (None, None) => program.leaves.push(*leaf),
                }
            }
        }
        let remap = |c: &mut Cond| {
            let old = c.mask;
            c.mask = (0..64)
                .filter(|i| old >> i & 1 != 0)
                .filter_map(|i| new_index.get(i))
                .fold(0, |m, n| m | 1 << n);
        };
        program.holds.iter_mut().for_each(remap);
        program.segments.iter_mut().for_each(|s| remap(&mut s.cond));
        program.step_conds.iter_mut().for_each(|(_, c)| remap(c));
        // Rolling to business days is looked up for about ten years before
        // and twenty after the policy's dates (48 bytes a year).
        if program.business_days {
            let marks = program
                .effective
                .into_iter()
                .chain(program.holidays.first().copied())
                .chain(program.holidays.last().copied());
            let (lo, hi) = marks.fold((i32::MAX, i32::MIN), |(lo, hi), d| (lo.min(d), hi.max(d)));
            let (lo, hi) = if lo > hi {
                (738_000, 738_000)
            } else {
                (lo, hi)
            };
            let lo = lo.saturating_sub(3_700).max(program.min_day);
            let hi = hi.saturating_add(7_400).min(program.max_day);
            if hi >= lo && hi - lo < 100_000 {
                program.calendar = (lo..=hi)
                    .map(|d| {
                        let delta = |to: i32| i16::try_from(to - d).unwrap_or(0);
                        (delta(program.roll(d, -1)), delta(program.roll(d, 1)))
                    })
                    .collect();
                program.calendar_lo = lo;
            }
        }
        Ok(program)
    }

    /// Resolves one invoice's facts into a row for this program.
    pub fn row(&self, f: &Facts<'_>) -> FactRow {
        let mut r = FactRow {
            today: day(f.today),
            due: day(f.invoice.due_date),
            ..FactRow::default()
        };
        for id in &self.bool_facts {
            if matches!(f.get(*id), Value::Bool(true)) {
                r.words[FLAGS] |= 1 << fact_bit(*id);
            }
        }
        for id in &self.missing_facts {
            if matches!(f.get(*id), Value::Missing) {
                r.words[ABSENT] |= 1 << fact_bit(*id);
            }
        }
        let (texts, vals) = r.words.split_at_mut(VAL0);
        for ((id, enc), val) in self.slots.iter().zip(vals.iter_mut()) {
            let v = match (enc, fact_value(f, *id)) {
                (Enc::Day, Value::Date(d)) => Some(i64::from(day(d))),
                (Enc::Scaled(s), Value::Number(x) | Value::Money(x)) => Some(scaled(x, *s)),
                (Enc::Ratio, Value::Percent(p)) => ratio_key(p),
                _ => None,
            };
            match v {
                Some(v) => *val = v as u64,
                None => r.nocmp |= 1 << fact_bit(*id),
            }
        }
        let texts = texts.get_mut(TEXT0..).unwrap_or(&mut []);
        for ((id, consts), val) in self.texts.iter().zip(texts.iter_mut()) {
            *val = 1
                << match f.get(*id) {
                    Value::Text(t) => consts
                        .iter()
                        .position(|c| c.eq_ignore_ascii_case(t))
                        .map_or(1, |i| i + 2),
                    _ => 0,
                };
        }
        if !self.tags.is_empty()
            && let Value::TextList(list) = f.get(FactId::CustomerTags)
        {
            for (i, tag) in self.tags.iter().enumerate() {
                if list.iter().any(|x| x.eq_ignore_ascii_case(tag)) {
                    r.words[TAGS] |= 1 << i;
                }
            }
        }
        for (i, e) in self.derived.iter().enumerate() {
            if truthy(eval(e, f)) {
                r.words[DERIVED] |= 1 << i;
            }
        }
        if self.control_bp > 0 && bucket_after(self.control_prefix, f.customer.id) < self.control_bp
        {
            r.words[FLAGS] |= 1 << CONTROL_BIT;
        }
        r
    }

    /// Same as [`Policy::decide`] on the facts the row was built from.
    ///
    /// Branch-light: every hold, the first 64 segments and every step of the
    /// ladder are evaluated into bit sets, and the reference's early exits
    /// (first matching segment, first step not yet due) become bit tricks.
    pub fn decide(&self, r: &FactRow) -> Decision {
        let mut d = Decision::default();
        if self.effective.is_some_and(|e| r.today < e) {
            d.not_in_effect = true;
            return d;
        }
        // Each loop shifts its results in from the top, last test first:
        // a shift by a constant is cheaper than by a variable.
        let mut leaves = 0u64;
        for l in self.leaves.iter().rev() {
            leaves = (leaves << 1) | l.test(r);
        }
        for t in self.value_tests.iter().rev() {
            let v = r
                .words
                .get(usize::from(t.word) % WORDS)
                .copied()
                .unwrap_or(0) as i64;
            let rel = (u32::from(v > t.k) << 1) | u32::from(v >= t.k);
            let hit = u64::from((t.rel >> rel) & 1) & u64::from(r.nocmp & t.nomask == 0);
            leaves = (leaves << 1) | hit;
        }
        for t in self.bit_tests.iter().rev() {
            let w = r
                .words
                .get(usize::from(t.word) % WORDS)
                .copied()
                .unwrap_or(0);
            leaves = (leaves << 1) | (u64::from(w & t.mask != 0) ^ t.invert);
        }
        for c in self.holds.iter().rev() {
            d.holds = (d.holds << 1) | self.run(*c, leaves, r);
        }
        let mut matched = 0u64;
        let first = self.segments.get(..64).unwrap_or(&self.segments);
        for s in first.iter().rev() {
            matched = (matched << 1) | self.run(s.cond, leaves, r);
        }
        d.segment = if matched != 0 {
            Some(matched.trailing_zeros() as usize)
        } else {
            self.segments
                .iter()
                .skip(64)
                .position(|s| self.run(s.cond, leaves, r) != 0)
                .map(|i| i + 64)
        };
        d.ladder = d
            .segment
            .and_then(|s| self.segments.get(s))
            .and_then(|s| s.ladder);
        let Some(ladder) = d.ladder.and_then(|l| self.ladders.get(l)) else {
            return d;
        };
        d.control_group = r.in_control_group();
        let steps = self
            .steps
            .get(ladder.steps.0 as usize..ladder.steps.1 as usize)
            .unwrap_or(&[]);
        let (valid, late, on) = self.schedule(ladder, steps, r);
        let mut holds = ladder.always;
        for (i, c) in self
            .step_conds
            .get(ladder.conds.0 as usize..ladder.conds.1 as usize)
            .unwrap_or(&[])
        {
            holds |= self.run(*c, leaves, r) << i;
        }
        // The steps before the first one after today (dates never decrease
        // along a ladder: the reference stops there).
        let before_late = (late & late.wrapping_neg()).wrapping_sub(1);
        let hit = before_late & valid & holds;
        let withheld = if d.control_group {
            ladder.before_due
        } else {
            0
        };
        d.held_out = hit & withheld;
        d.due = hit & !withheld;
        d.today = d.due & on;
        d
    }

    /// Per step of the ladder, bit sets: on the calendar, after today,
    /// exactly today.
    #[inline(always)]
    fn schedule(&self, ladder: &LadderP, steps: &[StepP], r: &FactRow) -> (u64, u64, u64) {
        let (mut late, mut on) = (0u64, 0u64);
        let lo = i64::from(r.due) + i64::from(ladder.min_days);
        let hi = i64::from(r.due) + i64::from(ladder.max_days);
        let table =
            i64::from(self.calendar_lo)..i64::from(self.calendar_lo) + self.calendar.len() as i64;
        if self.business_days && table.contains(&lo) && table.contains(&hi) {
            // Every step's day is in the table: no range checks, no rolling.
            let base = r.due.wrapping_sub(self.calendar_lo);
            for step in steps.iter().rev() {
                let (back, forward) = self
                    .calendar
                    .get(base.wrapping_add(step.days) as usize)
                    .copied()
                    .unwrap_or((0, 0));
                let delta = if step.days < 0 { back } else { forward };
                let date = r.due.wrapping_add(step.days).wrapping_add(i32::from(delta));
                late = (late << 1) | u64::from(date > r.today);
                on = (on << 1) | u64::from(date == r.today);
            }
            return (ladder.all, late, on);
        }
        if !self.business_days && lo >= i64::from(self.min_day) && hi <= i64::from(self.max_day) {
            for step in steps.iter().rev() {
                let date = r.due.wrapping_add(step.days);
                late = (late << 1) | u64::from(date > r.today);
                on = (on << 1) | u64::from(date == r.today);
            }
            return (ladder.all, late, on);
        }
        let mut valid = 0u64;
        for (i, step) in steps.iter().enumerate() {
            if let Some(date) = self.step_day(r.due, step.days) {
                valid |= 1 << i;
                late |= u64::from(date > r.today) << i;
                on |= u64::from(date == r.today) << i;
            }
        }
        (valid, late, on)
    }

    /// The day a step falls on, as [`Policy::step_date`], in day numbers.
    fn step_day(&self, due: i32, days: i32) -> Option<i32> {
        let raw = due.checked_add(days)?;
        if days == i32::MIN || raw < self.min_day || raw > self.max_day {
            return None;
        }
        if !self.business_days {
            return Some(raw);
        }
        Some(
            match self
                .calendar
                .get(raw.wrapping_sub(self.calendar_lo) as usize)
            {
                Some(&(back, forward)) => raw + i32::from(if days < 0 { back } else { forward }),
                None => self.roll(raw, if days < 0 { -1 } else { 1 }),
            },
        )
    }

    /// Decides every row, in order, into `out` (cleared first; reuse it to
    /// decide without allocating).
    pub fn decide_many(&self, rows: &[FactRow], out: &mut Vec<Decision>) {
        out.clear();
        out.reserve(rows.len());
        out.extend(rows.iter().map(|r| self.decide(r)));
    }

    /// Builds the row and decides it: [`Policy::decide`]'s answer, faster.
    pub fn decide_facts(&self, f: &Facts<'_>) -> Decision {
        self.decide(&self.row(f))
    }

    /// Number of conditions evaluated by the reference evaluator while
    /// building rows (0 when every condition was lowered).
    pub fn derived_conditions(&self) -> usize {
        self.derived.len()
    }

    #[inline(always)]
    fn run(&self, c: Cond, leaves: u64, r: &FactRow) -> u64 {
        if let Some((start, end)) = c.ops {
            return u64::from(self.run_ops(start, end, r));
        }
        let x = leaves & c.mask;
        u64::from(if c.any { x != 0 } else { x == c.mask })
    }

    #[inline(never)]
    fn run_ops(&self, start: u32, end: u32, r: &FactRow) -> bool {
        let ops = self.ops.get(start as usize..end as usize).unwrap_or(&[]);
        let mut st: u64 = 0;
        for op in ops {
            match op {
                Node::Not => st ^= 1,
                Node::And => {
                    let t = st & 1;
                    st = (st >> 1) & (t | !1);
                }
                Node::Or => {
                    let t = st & 1;
                    st = (st >> 1) | t;
                }
                Node::Leaf(l) => st = (st << 1) | l.test(r),
            }
        }
        st & 1 != 0
    }

    /// As the reference's rolling to business days, in day numbers.
    fn roll(&self, mut d: i32, dir: i32) -> i32 {
        for _ in 0..400 {
            if self.is_business_day(d) {
                return d;
            }
            let next = d + dir;
            if next < self.min_day || next > self.max_day {
                return d;
            }
            d = next;
        }
        d
    }

    fn is_business_day(&self, d: i32) -> bool {
        // Day 1 (0001-01-01) is a Monday.
        (d - 1).rem_euclid(7) < 5 && self.holidays.binary_search(&d).is_err()
    }
}

impl Policy {
    /// This policy lowered for [`Program::decide_many`].
    pub fn program(&self) -> Result<Program, Unsupported> {
        Program::new(self)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn weekday_of_day_numbers() {
        let mut d = NaiveDate::from_ymd_opt(1999, 12, 20).unwrap_or(NaiveDate::MIN);
        for _ in 0..800 {
            let n = day(d);
            assert_eq!(
                (n - 1).rem_euclid(7),
                d.weekday().num_days_from_monday() as i32
            );
            d = d.succ_opt().unwrap_or(d);
        }
    }

    #[test]
    fn rolling_by_table_and_weekday_matches_rolling_day_by_day() {
        let mut holidays: Vec<String> = (0..12)
            .map(|i| {
                (NaiveDate::from_ymd_opt(2027, 3, 1).unwrap() + chrono::Days::new(i)).to_string()
            })
            .collect();
        holidays.push("2026-12-25".into());
        holidays.push("2030-01-01".into());
        let text = format!(
            "policy \"p\"\n  effective 2026-01-01\n  currency USD\n\nlimits\n  business days only\n  holidays {}\n\nsegment s otherwise\n\nladder s\n  due  call \"x\"\n",
            holidays.join(" ")
        );
        let (policy, _) = crate::load(&text, "p", None).unwrap();
        let p = Program::new(&policy).unwrap();
        assert!(!p.calendar.is_empty());
        let dues = (day(NaiveDate::MIN)..day(NaiveDate::MIN) + 40)
            .chain(day(NaiveDate::MAX) - 40..=day(NaiveDate::MAX))
            .chain(p.calendar_lo - 40..p.calendar_lo + 40)
            .chain(
                p.calendar_lo + p.calendar.len() as i32 - 40
                    ..p.calendar_lo + p.calendar.len() as i32 + 40,
            )
            .chain(
                day(NaiveDate::from_ymd_opt(2026, 12, 1).unwrap())
                    ..day(NaiveDate::from_ymd_opt(2030, 2, 1).unwrap()),
            );
        for due in dues {
            let date = NaiveDate::from_num_days_from_ce_opt(due).unwrap();
            for offset in [-30, -15, -3, -1, 0, 1, 2, 7, 30] {
                assert_eq!(
                    p.step_day(due, offset),
                    policy.step_date(date, i64::from(offset)).map(day),
                    "{date} {offset}"
                );
            }
        }
    }

    #[test]
    fn decimal_to_f64_matches_rust_decimal() {
        use rust_decimal::prelude::ToPrimitive;
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let m = match i % 4 {
                0 => (x % 10_000_000) as i64,
                1 => (x % 1_000_000_000_000) as i64,
                2 => (x >> 1) as i64,
                _ => (x % 1000) as i64,
            };
            let m = if i % 3 == 0 { -m } else { m };
            let d = Decimal::new(m, (i % 19) as u32);
            assert_eq!(
                decimal_f64(d).to_bits(),
                d.to_f64().unwrap().to_bits(),
                "{d}"
            );
        }
        for s in [
            "79228162514264337593543950335",
            "-7922816251426433759354.3950335",
            "0.0000000000000000000000000001",
            "-0",
            "0.00",
        ] {
            let d: Decimal = s.parse().unwrap();
            assert_eq!(
                decimal_f64(d).to_bits(),
                d.to_f64().unwrap().to_bits(),
                "{d}"
            );
        }
    }

    #[test]
    fn ratio_keys_keep_order() {
        let xs = [
            f64::NEG_INFINITY,
            -2.5,
            -0.0,
            0.0,
            1e-300,
            0.6,
            0.6000000001,
            1.0,
            f64::INFINITY,
        ];
        for a in xs {
            for b in xs {
                assert_eq!(
                    ratio_key(a).cmp(&ratio_key(b)),
                    a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal)
                );
            }
        }
        assert_eq!(ratio_key(f64::NAN), None);
    }

    #[test]
    fn scaled_money_keeps_order_against_constants() {
        let vals = [
            "-1.5",
            "-1",
            "0",
            "0.004",
            "0.005",
            "999.999",
            "1000",
            "1000.001",
            "79228162514264337593543950335",
            "-79228162514264337593543950335",
        ];
        let consts = ["-1", "0", "0.005", "1000", "1000.00"];
        for v in vals {
            for k in consts {
                let (v, k): (Decimal, Decimal) =
                    (v.parse().unwrap_or_default(), k.parse().unwrap_or_default());
                let s = 3;
                let (kq, frac) = scale_to(k, s).unwrap_or((0, true));
                assert!(!frac);
                assert_eq!(
                    scaled(v, s).cmp(&((kq as i64) * 2)),
                    v.cmp(&k),
                    "{v} vs {k}"
                );
            }
        }
    }
}
