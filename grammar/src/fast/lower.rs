//! Lowering a checked policy to the flat program: every distinct test once,
//! conditions as two-bit operations or short postfix programs, constants
//! folded, the calendar of business-day rolls.

use crate::ast::BinOp;
use crate::compile::{CExpr, Const, Policy};
use crate::eval::{bucket_prefix, eval, truthy};
use crate::facts::{FactId, Type};
use chrono::{Datelike, NaiveDate};

use super::row::{
    cmp_mask, fact_bit, fact_type, has_fact, kind, no_facts, ratio_key, scale_of, scale_to,
};
use super::{
    Cond, Enc, Kind, LadderP, Leaf, MAX_SCALE, Node, Op, Program, SLOTS, SegmentP, StepP,
    TEXT_SLOTS, Unsupported, Word, day,
};

pub(super) struct Builder {
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

pub(super) fn flip(op: BinOp) -> BinOp {
    match op {
        BinOp::Lt => BinOp::Gt,
        BinOp::Le => BinOp::Ge,
        BinOp::Gt => BinOp::Lt,
        BinOp::Ge => BinOp::Le,
        other => other,
    }
}

/// The deepest the bit stack gets running `ops`.
pub(super) fn max_depth(ops: &[Op]) -> usize {
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
}
