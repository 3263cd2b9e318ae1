//! Static checks: everything that can be known wrong about a policy before it
//! touches an invoice. Every problem is collected; nothing stops at the first.

use crate::ast::*;
use crate::diagnostic::{Code, Diagnostic, did_you_mean};
pub use crate::labels::{action_label, offset_text};
use rust_decimal::Decimal;
use std::collections::{HashMap, HashSet};

mod types;

/// Most steps one ladder may hold, and most holds one policy may hold (the
/// evaluator keeps them in 64-bit sets).
pub const MAX_STEPS: usize = 64;
pub const MAX_HOLDS: usize = 64;

/// What templates exist, so that `email "friendly-reminder"` can be checked
/// without the language crate reading files. The command line lists the
/// folders under `policy/templates/`.
pub trait TemplateCatalog {
    fn has_template(&self, name: &str) -> bool;
    fn names(&self) -> Vec<String>;
}

impl TemplateCatalog for HashSet<String> {
    fn has_template(&self, name: &str) -> bool {
        self.contains(name)
    }
    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.iter().cloned().collect();
        v.sort();
        v
    }
}

/// The template every `offer plan` step is sent with (the sweep addresses
/// offers to it; there is no way to name another).
pub const PLAN_OFFER_TEMPLATE: &str = "plan-offer";

/// ISO 4217 codes in use; an unknown one is a warning, not an error, so a
/// new currency never blocks a policy.
const CURRENCIES: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWL";

pub fn check(file: &PolicyFile, catalog: Option<&dyn TemplateCatalog>) -> Vec<Diagnostic> {
    let mut c = Checker {
        currency: file.header.currency.node.clone(),
        header_span: file.header.name.span,
        catalog,
        diags: Vec::new(),
        experiments: HashMap::new(),
    };
    c.header(&file.header);
    c.items(&file.items);
    c.diags
}

struct Checker<'a> {
    currency: String,
    header_span: Span,
    catalog: Option<&'a dyn TemplateCatalog>,
    diags: Vec<Diagnostic>,
    experiments: HashMap<String, Span>,
}

impl<'a> Checker<'a> {
    fn report(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn header(&mut self, h: &Header) {
        if h.name.node.trim().is_empty() {
            self.report(
                Diagnostic::new(
                    Code::OutOfRange,
                    h.name.span,
                    "the policy has an empty name",
                )
                .with_help("name the policy, like `policy \"standard-net30\"`"),
            );
        }
        let cur = &h.currency.node;
        if !CURRENCIES.split(' ').any(|c| c == cur) {
            let mut d = Diagnostic::new(
                Code::UnknownCurrency,
                h.currency.span,
                format!("`{cur}` is not an ISO 4217 currency code I know"),
            );
            if let Some(s) = did_you_mean(cur, CURRENCIES.split(' ')) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            self.report(d);
        }
        if let Some(share) = &h.control_group {
            self.share(share, "the control group", false);
        }
    }

    /// A share of customers: more than 0 % (unless `zero_ok`) and at most 100 %.
    fn share(&mut self, value: &Node<Decimal>, what: &str, zero_ok: bool) {
        let v = value.node;
        let low_bad = if zero_ok {
            v < Decimal::ZERO
        } else {
            v <= Decimal::ZERO
        };
        if low_bad || v > Decimal::ONE_HUNDRED {
            self.report(
                Diagnostic::new(
                    Code::OutOfRange,
                    value.span,
                    format!("`{}%` is not a possible share for {what}", v.normalize()),
                )
                .with_help("a share is more than 0% and at most 100%"),
            );
        }
    }

    fn items(&mut self, items: &[Item]) {
        let mut segments: Vec<&Segment> = Vec::new();
        let mut seg_names: HashMap<&str, Span> = HashMap::new();
        let mut holds: HashMap<&str, Span> = HashMap::new();
        let mut ladders: HashMap<&str, Span> = HashMap::new();
        let mut limits_seen: Option<Span> = None;
        let mut otherwise: Option<&Segment> = None;
        let mut hold_count = 0;

        for item in items {
            match item {
                Item::Segment(s) => {
                    if let Some(prev) = seg_names.get(s.name.node.as_str()) {
                        self.report(
                            Diagnostic::new(
                                Code::DuplicateSegment,
                                s.name.span,
                                format!("segment `{}` is defined twice", s.name.node),
                            )
                            .with_help(format!(
                                "the first definition is on line {}; rename or remove one",
                                prev.line
                            )),
                        );
                    } else {
                        seg_names.insert(&s.name.node, s.name.span);
                    }
                    if let Some(o) = otherwise {
                        self.report(
                            Diagnostic::new(
                                Code::UnreachableSegment,
                                s.name.span,
                                format!("segment `{}` can never match: it comes after `otherwise`", s.name.node),
                            )
                            .with_help(format!(
                                "segments are tried in order and `{}` on line {} takes every invoice left; move `{}` above it",
                                o.name.node, o.span.line, s.name.node
                            )),
                        );
                    } else if s.condition.is_none() {
                        otherwise = Some(s);
                    }
                    if let Some(cond) = &s.condition {
                        self.condition(cond);
                    }
                    segments.push(s);
                }
                Item::Hold(h) => {
                    hold_count += 1;
                    if hold_count == MAX_HOLDS + 1 {
                        self.report(Diagnostic::new(
                            Code::TooMany,
                            h.name.span,
                            format!("a policy can have at most {MAX_HOLDS} holds"),
                        ));
                    }
                    if let Some(prev) = holds.get(h.name.node.as_str()) {
                        self.report(
                            Diagnostic::new(
                                Code::DuplicateHold,
                                h.name.span,
                                format!("hold `{}` is defined twice", h.name.node),
                            )
                            .with_help(format!(
                                "the first definition is on line {}; rename or remove one",
                                prev.line
                            )),
                        );
                    } else {
                        holds.insert(&h.name.node, h.name.span);
                    }
                    self.condition(&h.condition);
                }
                Item::Ladder(l) => {
                    if let Some(prev) = ladders.get(l.segment.node.as_str()) {
                        self.report(
                            Diagnostic::new(
                                Code::DuplicateLadder,
                                l.segment.span,
                                format!("segment `{}` has two ladders", l.segment.node),
                            )
                            .with_help(format!(
                                "the first is on line {}; merge their steps into one",
                                prev.line
                            )),
                        );
                    } else {
                        ladders.insert(&l.segment.node, l.segment.span);
                    }
                    self.ladder(l);
                }
                Item::Limits(l) => {
                    if let Some(prev) = limits_seen {
                        self.report(
                            Diagnostic::new(
                                Code::DuplicateLimits,
                                l.span,
                                "the policy has two `limits` blocks",
                            )
                            .with_help(format!(
                                "merge this block into the one on line {}",
                                prev.line
                            )),
                        );
                    }
                    limits_seen = Some(l.span);
                    self.limits(l);
                }
            }
        }

        // Ladders and segments must pair up.
        for item in items {
            if let Item::Ladder(l) = item
                && !seg_names.contains_key(l.segment.node.as_str())
            {
                let mut d = Diagnostic::new(
                    Code::LadderForUnknownSegment,
                    l.segment.span,
                    format!(
                        "ladder `{}` is for a segment that does not exist",
                        l.segment.node
                    ),
                );
                d = match did_you_mean(&l.segment.node, seg_names.keys().copied()) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(format!(
                        "add `segment {} when …` or rename the ladder",
                        l.segment.node
                    )),
                };
                self.report(d);
            }
        }
        for s in &segments {
            if !ladders.contains_key(s.name.node.as_str()) {
                self.report(
                    Diagnostic::new(
                        Code::SegmentWithoutLadder,
                        s.name.span,
                        format!("segment `{}` has no ladder", s.name.node),
                    )
                    .with_help(format!(
                        "add `ladder {}` with its steps; an empty ladder means no automated contact",
                        s.name.node
                    )),
                );
            }
        }
        if segments.is_empty() {
            self.report(
                Diagnostic::new(
                    Code::NoOtherwise,
                    self.header_span,
                    "the policy has no segments: it acts on no invoice",
                )
                .with_help("add at least `segment standard otherwise` and its ladder"),
            );
        }
        if otherwise.is_none()
            && let Some(last) = segments.last()
        {
            self.report(
                Diagnostic::new(
                    Code::NoOtherwise,
                    last.span,
                    "no `otherwise` segment: invoices that match no segment get no action",
                )
                .with_help("end the segments with `segment standard otherwise`"),
            );
        }
    }

    fn limits(&mut self, l: &Limits) {
        let mut seen: HashMap<String, Span> = HashMap::new();
        let mut business = false;
        let mut holiday_span = None;
        for rule in &l.rules {
            let key = match &rule.node {
                Limit::Cap {
                    count,
                    channel,
                    window_days,
                } => {
                    if *count == 0 || *window_days == 0 {
                        self.report(
                            Diagnostic::new(
                                Code::InvalidCap,
                                rule.span,
                                format!(
                                    "`at most {count} {} per customer per {window_days}d` {}",
                                    if *count == 1 {
                                        channel.as_str()
                                    } else {
                                        channel.plural()
                                    },
                                    if *count == 0 {
                                        "allows no contact at all"
                                    } else {
                                        "has no window"
                                    }
                                ),
                            )
                            .with_help(
                                "a cap needs at least 1 contact and a window of at least `1d`",
                            ),
                        );
                    }
                    format!("the cap on {} per {window_days}d", channel.plural())
                }
                Limit::QuietHours { from, to } => {
                    if from == to {
                        self.report(
                            Diagnostic::new(
                                Code::InvalidTime,
                                rule.span,
                                format!("quiet hours `{from} to {to}` start and end at the same time"),
                            )
                            .with_help("write the start and the end, like `quiet hours 20:00 to 08:00 customer time`"),
                        );
                    }
                    "`quiet hours`".to_string()
                }
                Limit::BusinessDays => {
                    business = true;
                    "`business days only`".to_string()
                }
                Limit::Holidays(_) => {
                    holiday_span = Some(rule.span);
                    "the holiday list".to_string()
                }
            };
            if let Some(prev) = seen.get(&key) {
                self.report(
                    Diagnostic::new(
                        Code::DuplicateLimit,
                        rule.span,
                        format!("{key} is set twice"),
                    )
                    .with_help(format!("keep one of this and line {}", prev.line)),
                );
            } else {
                seen.insert(key, rule.span);
            }
        }
        if let (Some(span), false) = (holiday_span, business) {
            self.report(
                Diagnostic::new(
                    Code::HolidaysWithoutBusinessDays,
                    span,
                    "holidays are listed but `business days only` is not set, so they change nothing",
                )
                .with_help("add `business days only` to the limits"),
            );
        }
    }

    fn ladder(&mut self, l: &Ladder) {
        // An empty ladder with a doc comment is documented as intended.
        if l.steps.is_empty() && l.docs.is_empty() {
            self.report(
                Diagnostic::new(
                    Code::EmptyLadder,
                    l.segment.span,
                    format!(
                        "ladder `{}` has no steps: its invoices are never contacted",
                        l.segment.node
                    ),
                )
                .with_help(
                    "add steps, or say why it is empty in a `##` doc comment above the ladder",
                ),
            );
        }
        if l.steps.len() > MAX_STEPS {
            self.report(Diagnostic::new(
                Code::TooMany,
                l.segment.span,
                format!(
                    "ladder `{}` has {} steps; at most {MAX_STEPS} are allowed",
                    l.segment.node,
                    l.steps.len()
                ),
            ));
        }
        let mut offsets: HashMap<i64, Span> = HashMap::new();
        let mut last: Option<i64> = None;
        for step in &l.steps {
            let off = step.offset.node;
            if let Some(prev) = offsets.get(&off) {
                self.report(
                    Diagnostic::new(
                        Code::DuplicateOffset,
                        step.offset.span,
                        format!("two steps of ladder `{}` fall on `{}`", l.segment.node, offset_text(off)),
                    )
                    .with_help(format!(
                        "the other is on line {}; use one step with an `experiment` or move one to another day",
                        prev.line
                    )),
                );
            } else {
                offsets.insert(off, step.offset.span);
            }
            if last.is_some_and(|p| off < p) {
                self.report(
                    Diagnostic::new(
                        Code::StepsOutOfOrder,
                        step.offset.span,
                        format!("step `{}` is written after a later step", offset_text(off)),
                    )
                    .with_help("write the steps in date order so the ladder reads like a calendar"),
                );
            }
            last = Some(last.map_or(off, |p| p.max(off)));
            self.action(&step.action, step.requires_approval, true);
            if let Some(c) = &step.condition {
                self.condition(c);
            }
        }
    }

    fn action(&mut self, action: &Node<Action>, approval: bool, top: bool) {
        match &action.node {
            Action::Email { template } => self.template(template),
            Action::Letter { template } => {
                self.template(template);
                if !approval {
                    self.report(
                        Diagnostic::new(
                            Code::LetterWithoutApproval,
                            action.span,
                            format!(
                                "letter `{}` is sent without a person approving it",
                                template.node
                            ),
                        )
                        .with_help("add `requires approval` to the step"),
                    );
                }
            }
            Action::Call { queue } => {
                if queue.node.trim().is_empty() {
                    self.report(
                        Diagnostic::new(Code::OutOfRange, queue.span, "the call has no queue name")
                            .with_help("name the team's queue, like `call \"collections\"`"),
                    );
                }
            }
            Action::OfferPlan(plan) => {
                self.plan(plan);
                self.offer_template(action.span);
            }
            Action::Experiment(exp) => {
                if !top {
                    return;
                }
                self.experiment(exp, approval);
            }
        }
    }

    fn experiment(&mut self, exp: &Experiment, approval: bool) {
        if let Some(prev) = self.experiments.get(&exp.name.node) {
            let line = prev.line;
            self.report(
                Diagnostic::new(
                    Code::DuplicateExperiment,
                    exp.name.span,
                    format!("experiment `{}` is run in two steps", exp.name.node),
                )
                .with_help(format!(
                    "the other is on line {line}; give each experiment its own name"
                )),
            );
        } else {
            self.experiments
                .insert(exp.name.node.clone(), exp.name.span);
        }
        let mut total = Decimal::ZERO;
        let mut arms: HashMap<String, Span> = HashMap::new();
        for arm in &exp.arms {
            self.share(&arm.weight, "an experiment arm", false);
            total = total.saturating_add(arm.weight.node);
            let label = arm.action.as_ref().map_or_else(
                || "no action".to_string(),
                |a| crate::labels::action_source(&a.node),
            );
            if let Some(prev) = arms.get(&label) {
                self.report(
                    Diagnostic::new(
                        Code::DuplicateArm,
                        arm.span,
                        format!(
                            "experiment `{}` has two arms that both do `{label}`",
                            exp.name.node
                        ),
                    )
                    .with_help(format!(
                        "merge it with the arm on line {} and add up their weights",
                        prev.line
                    )),
                );
            } else {
                arms.insert(label, arm.span);
            }
            if let Some(a) = &arm.action {
                self.action(a, approval, false);
            }
        }
        if total != Decimal::ONE_HUNDRED {
            self.report(
                Diagnostic::new(
                    Code::WeightsNot100,
                    exp.name.span,
                    format!(
                        "the arms of experiment `{}` add up to `{}%`, not 100%",
                        exp.name.node,
                        total.normalize()
                    ),
                )
                .with_help("adjust the weights so they add up to exactly 100%; use `N% no action` for a control arm"),
            );
        }
    }

    fn plan(&mut self, plan: &PlanOffer) {
        let n = plan.installments.node;
        if n == 0 || n > 120 {
            self.report(
                Diagnostic::new(
                    Code::InvalidPlan,
                    plan.installments.span,
                    format!("a plan of `{n}` installments cannot be offered"),
                )
                .with_help("offer between 1 and 120 installments"),
            );
        }
        if plan.every_days.node == 0 {
            self.report(
                Diagnostic::new(
                    Code::InvalidPlan,
                    plan.every_days.span,
                    "installments `every 0d` all fall on one day",
                )
                .with_help("space installments at least `1d` apart, like `every 30d`"),
            );
        }
        if let Some(down) = &plan.down {
            match &down.node {
                DownPayment::Percent(p) => {
                    if *p < Decimal::ZERO || *p >= Decimal::ONE_HUNDRED {
                        self.report(
                            Diagnostic::new(
                                Code::InvalidPlan,
                                down.span,
                                if *p < Decimal::ZERO {
                                    format!("a down payment of `{}%` is negative", p.normalize())
                                } else {
                                    format!(
                                        "a down payment of `{}%` leaves nothing to pay in installments",
                                        p.normalize()
                                    )
                                },
                            )
                            .with_help("the down payment is at least 0% and less than 100%"),
                        );
                    }
                }
                DownPayment::Money { amount, currency } => {
                    self.money_currency(currency, *amount, down.span);
                    if *amount < Decimal::ZERO {
                        self.report(Diagnostic::new(
                            Code::InvalidPlan,
                            down.span,
                            format!("a down payment of `{amount} {currency}` is negative"),
                        ));
                    }
                }
            }
        }
    }

    fn template(&mut self, t: &Node<String>) {
        let Some(catalog) = self.catalog else { return };
        if catalog.has_template(&t.node) {
            return;
        }
        let names = catalog.names();
        let mut d = Diagnostic::new(
            Code::UnknownTemplate,
            t.span,
            format!("template `{}` has no template files", t.node),
        );
        d = match did_you_mean(&t.node, names.iter().map(String::as_str)) {
            Some(s) => d.with_help(format!("did you mean `{s}`?")),
            None => d.with_help(format!(
                "create `templates/{}/en/subject.txt`, `body.txt` and `body.html` next to the policy",
                t.node
            )),
        };
        self.report(d);
    }

    /// Every payment-plan offer is sent with the one template
    /// [`PLAN_OFFER_TEMPLATE`]; without it the offer fails when it goes out.
    fn offer_template(&mut self, span: Span) {
        let Some(catalog) = self.catalog else { return };
        if catalog.has_template(PLAN_OFFER_TEMPLATE) {
            return;
        }
        self.report(
            Diagnostic::new(
                Code::UnknownTemplate,
                span,
                format!(
                    "an `offer plan` step is sent with the template `{PLAN_OFFER_TEMPLATE}`, \
                     which has no template files"
                ),
            )
            .with_help(format!(
                "create `templates/{PLAN_OFFER_TEMPLATE}/en/subject.txt`, `body.txt` and \
                 `body.html` next to the policy; they can use `plan.down_payment`, \
                 `plan.installments`, `plan.every_days` and `plan.total`"
            )),
        );
    }

    fn money_currency(&mut self, currency: &str, amount: Decimal, span: Span) {
        if currency != self.currency {
            self.report(
                Diagnostic::new(
                    Code::WrongCurrency,
                    span,
                    format!(
                        "`{amount} {currency}` is not in the policy's currency `{}`",
                        self.currency
                    ),
                )
                .with_help(format!(
                    "write amounts in `{}`, like `{amount} {}`",
                    self.currency, self.currency
                )),
            );
        }
    }

    // ------------------------------------------------------------ expressions
}
