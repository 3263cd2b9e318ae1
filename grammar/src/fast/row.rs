//! Facts into a row: how each fact is encoded (day numbers, scaled
//! integers, order-preserving ratios, text ids, tag bits), and
//! [`Program::row`], the only place that touches text or `Decimal`.

use crate::ast::BinOp;
use crate::compile::{CExpr, Const};
use crate::eval::{bucket_after, eval, truthy};
use crate::facts::{CustomerFacts, FACTS, FactId, Facts, InvoiceFacts, Type, Value};
use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::{
    ABSENT, CONTROL_BIT, DERIVED, Enc, FLAGS, FactRow, Kind, LIMIT, Program, TAGS, TEXT0, VAL0, day,
};

pub(super) fn def(id: FactId) -> Option<&'static crate::facts::FactDef> {
    FACTS.iter().find(|f| f.id == id)
}

pub(super) fn fact_type(id: FactId) -> Option<Type> {
    def(id).map(|d| d.ty)
}

pub(super) fn fact_bit(id: FactId) -> u8 {
    id as u8
}

/// `mask` for a comparison: bit `r` for `r = 2·[v > k] + [v >= k]`.
pub(super) fn cmp_mask(op: BinOp) -> Option<u8> {
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

pub(super) fn has_fact(e: &CExpr) -> bool {
    match e {
        CExpr::Fact(_) | CExpr::FactCmp(..) => true,
        CExpr::Const(_) | CExpr::List(_) => false,
        CExpr::Not(i) | CExpr::IsMissing(i, _) => has_fact(i),
        CExpr::Binary(_, l, r) => has_fact(l) || has_fact(r),
    }
}

pub(super) fn kind(e: &CExpr) -> Kind {
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
pub(super) fn no_facts() -> Facts<'static> {
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
pub(super) fn scale_to(x: Decimal, s: u32) -> Option<(i128, bool)> {
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
pub(super) fn scaled(x: Decimal, s: u32) -> i64 {
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
pub(super) fn decimal_f64(x: Decimal) -> f64 {
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
pub(super) fn fact_value<'a>(f: &Facts<'a>, id: FactId) -> Value<'a> {
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
pub(super) fn ratio_key(x: f64) -> Option<i64> {
    if x.is_nan() {
        return None;
    }
    let x = if x == 0.0 { 0.0 } else { x };
    let b = x.to_bits() as i64;
    Some(b ^ (((b >> 63) as u64) >> 1) as i64)
}

pub(super) fn scale_of(c: &Const) -> Option<u32> {
    match c {
        Const::Number(n) | Const::Money(n) => Some(n.scale()),
        _ => None,
    }
}

impl Program {
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
}
