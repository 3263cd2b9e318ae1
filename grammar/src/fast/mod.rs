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

use crate::compile::{CExpr, Policy};
use crate::eval::Decision;
use crate::facts::{FactId, Facts};
use chrono::{Datelike, NaiveDate};

mod lower;
mod row;

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

/// A date as a day number (days from the common era).
fn day(d: NaiveDate) -> i32 {
    d.num_days_from_ce()
}

impl Program {
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
    use super::row::{decimal_f64, ratio_key, scale_to, scaled};
    use super::*;
    use rust_decimal::Decimal;

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
