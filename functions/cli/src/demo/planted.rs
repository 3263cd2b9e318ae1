#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The report recovers the effect planted in the generator.
//!
//! The generator knows, for every invoice, whether it is paid on time with
//! a given pre-due reminder and without one ([`generate::InvoicePlan::
//! paid_on_time`]), so the true uplift of an experiment arm on the very
//! invoices the report compared is known exactly ([`planted_uplift`]). These
//! tests run the demo's simulation (the proactive run only, in memory) and
//! check that the report's 95% interval for the uplift contains the truth,
//! that a large planted effect is called significant, and that an arm with
//! no effect is not.

use super::generate::{self, Generated};
use super::simulation::simulate;
use super::uplift::{other_emails, outcome_under, planted_uplift};
use super::*;
use collect_engine::book::Book;
use collect_engine::domain::ActionStatus;
use collect_engine::effect::EffectReport;
use collect_engine::effect::experiments::{Unit, paid_in_time, units};
use std::collections::HashMap;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// A fresh folder under the system temp dir, removed on drop.
fn temp(label: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("collect-{label}-"))
        .tempdir()
        .unwrap()
}

struct Run {
    generated: Generated,
    book: Book,
    report: EffectReport,
}

/// The proactive run of the demo with `policy` on a generated book, and the
/// report over the whole run.
fn run(tmp: &tempfile::TempDir, policy: &Path, seed: u64, customers: u32) -> Run {
    let home = Home::open(&tmp.path().join("home")).unwrap();
    let loaded = load_policy(policy).unwrap();
    let generated = generate::generate(seed, customers);
    let pay_links = home.pay_links().unwrap();
    let rt = runtime(
        &home,
        &loaded.policy,
        &loaded.templates,
        &pay_links,
        LocalMailer::Null,
        None,
        None,
    )
    .unwrap();
    let mut store = SqliteStore::in_memory().unwrap();
    simulate(&generated, &mut store, &rt, None).unwrap();
    let book = store.load_book().unwrap();
    let report = crate::report::build(
        &book,
        Some(generate::quarter_start()),
        Some(generate::run_end()),
        None,
    )
    .unwrap();
    Run {
        generated,
        book,
        report,
    }
}

fn arm<'r>(
    r: &'r EffectReport,
    experiment: &str,
    segment: Option<&str>,
    arm: &str,
) -> &'r collect_engine::effect::ArmResult {
    let x = r
        .experiments
        .iter()
        .find(|x| x.experiment == experiment)
        .unwrap_or_else(|| panic!("no experiment {experiment} in the report"));
    let cmp = match segment {
        None => &x.comparison,
        Some(s) => {
            &x.segments
                .iter()
                .find(|c| c.segment == s)
                .unwrap_or_else(|| panic!("no segment {s} in {experiment}"))
                .comparison
        }
    };
    cmp.arms
        .iter()
        .find(|a| a.arm == arm)
        .unwrap_or_else(|| panic!("no arm {arm} in {experiment}"))
}

/// The units of one experiment (and segment) as the report counted them.
fn units_of<'b>(run: &'b Run, experiment: &str, segment: Option<&str>) -> Vec<Unit<'b>> {
    units(
        &run.book,
        run.report.period.from,
        run.report.period.to,
        run.report.as_of,
    )
    .into_iter()
    .filter(|u| u.experiment == experiment && segment.is_none_or(|s| u.segment == s))
    .collect()
}

/// The simulation and the generator agree: every unit's observed outcome
/// is its potential outcome under the arm it was in.
fn outcomes_match_the_generator(run: &Run, units: &[Unit<'_>]) {
    let plans: HashMap<&str, &generate::InvoicePlan> = run
        .generated
        .plans
        .iter()
        .map(|p| (p.invoice.invoice_id.as_str(), p))
        .collect();
    let mut checked = 0;
    for u in units {
        let Some(observed) = paid_in_time(&run.book, u, run.report.as_of) else {
            continue;
        };
        let plan = plans[u.invoice.invoice_id.as_str()];
        let record = run
            .book
            .actions_of(&u.invoice.invoice_id)
            .iter()
            .find(|a| a.action_id == u.action_id)
            .unwrap();
        let sent = (record.status == ActionStatus::Sent)
            .then_some(record.sent_on)
            .flatten();
        let others = other_emails(&run.book, &u.invoice.invoice_id, u.action_id);
        let expected = outcome_under(plan, &others, sent, &u.arm);
        assert_eq!(
            observed,
            expected,
            "{} ({}, {:?}, sent {sent:?}): observed {observed}, the generator says {expected}\n\
             actions: {:#?}\npayments: {:?}\nplan: pays {:?}, parts {:?}, heed {:?}, due {}",
            u.invoice.invoice_id,
            u.arm,
            record.status,
            run.book
                .actions_of(&u.invoice.invoice_id)
                .iter()
                .map(|a| (&a.label, a.status, a.scheduled_for, a.sent_on, &a.segment))
                .collect::<Vec<_>>(),
            run.book.payments.get(&u.invoice.invoice_id),
            plan.pays,
            plan.parts,
            plan.heed,
            plan.invoice.due_date
        );
        checked += 1;
    }
    assert!(checked > 100, "only {checked} units checked");
}

fn contains(a: &collect_engine::effect::ArmResult, truth: f64) -> bool {
    a.uplift_ci_low.unwrap() <= truth && truth <= a.uplift_ci_high.unwrap()
}

#[test]
fn the_report_recovers_the_planted_tone_effect_of_the_standard_policy() {
    let tmp = temp("standard");
    let policy = Path::new(ROOT).join(DEFAULT_POLICY);
    let seed = 42;
    let run = run(&tmp, &policy, seed, 300);
    let tone = units_of(&run, "pre-due-tone", None);
    outcomes_match_the_generator(&run, &tone);

    let full = "email friendly-reminder";
    let short = "email friendly-reminder-short";
    let a = arm(&run.report, "pre-due-tone", None, short);
    let truth = planted_uplift(
        &run.generated,
        &run.book,
        &tone,
        run.report.as_of,
        short,
        full,
    )
    .unwrap();
    let shown = format!(
        "planted {truth:+.4}; measured {:?} [{:?}, {:?}], n {} vs {}",
        a.uplift,
        a.uplift_ci_low,
        a.uplift_ci_high,
        a.n,
        arm(&run.report, "pre-due-tone", None, full).n
    );
    // 20% instead of 80% of the late payers heed the short reminder: a
    // loss of many points of on-time payment.
    println!("seed {seed}, pre-due-tone: {shown}");
    assert!(truth < -0.05, "{shown}");
    assert!(contains(a, truth), "the interval misses the truth: {shown}");
    assert_eq!(a.significant, Some(true), "{shown}");
    let x = run
        .report
        .experiments
        .iter()
        .find(|x| x.experiment == "pre-due-tone")
        .unwrap();
    assert_eq!(x.comparison.winner.as_deref(), Some(full), "{shown}");
}

/// The standard policy with control arms: 20% of standard customers get no
/// pre-due reminder, half the strategic accounts no pre-due call.
fn policy_with_control_arms(dir: &Path) -> PathBuf {
    let root = Path::new(ROOT).join("policy");
    let text = std::fs::read_to_string(root.join("standard-net30.policy")).unwrap();
    let tone = "  due - 3d   experiment \"pre-due-tone\" {\n               50% email \"friendly-reminder\",\n               50% email \"friendly-reminder-short\"\n             }";
    assert!(text.contains(tone), "the standard ladder changed");
    let call = "  due - 7d   call \"account-manager\"";
    assert!(text.contains(call), "the strategic ladder changed");
    let text = text
        .replace(
            tone,
            "  due - 3d   experiment \"pre-due-reminder\" {\n    40% email \"friendly-reminder\",\n    40% email \"friendly-reminder-short\",\n    20% no action\n  }",
        )
        .replace(
            call,
            "  due - 7d   experiment \"account-manager-call\" {\n    50% call \"account-manager\",\n    50% no action\n  }",
        );
    let templates = dir.join("templates");
    for entry in walk(&root.join("templates")) {
        let rel = entry.strip_prefix(root.join("templates")).unwrap();
        let to = templates.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &to).unwrap();
    }
    let path = dir.join("with-control-arms.policy");
    std::fs::write(&path, text).unwrap();
    path
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn reminders_beat_no_reminder_and_a_pre_due_call_does_nothing() {
    let tmp = temp("control-arms");
    let policy = policy_with_control_arms(tmp.path());
    let seed = 7;
    let run = run(&tmp, &policy, seed, 300);

    // The planted effect: the full reminder against no reminder at all.
    let reminder = units_of(&run, "pre-due-reminder", None);
    outcomes_match_the_generator(&run, &reminder);
    let full = "email friendly-reminder";
    let a = arm(&run.report, "pre-due-reminder", None, full);
    let truth = planted_uplift(
        &run.generated,
        &run.book,
        &reminder,
        run.report.as_of,
        full,
        "control",
    )
    .unwrap();
    let shown = format!(
        "planted {truth:+.4}; measured {:?} [{:?}, {:?}], n {} vs {}",
        a.uplift,
        a.uplift_ci_low,
        a.uplift_ci_high,
        a.n,
        arm(&run.report, "pre-due-reminder", None, "control").n
    );
    println!("seed {seed}, pre-due-reminder: {shown}");
    assert!(truth > 0.10, "{shown}");
    assert!(contains(a, truth), "the interval misses the truth: {shown}");
    assert_eq!(a.significant, Some(true), "{shown}");

    // The null effect: strategic accounts are not moved by a call before
    // the due date, so the truth is exactly zero.
    let calls = units_of(&run, "account-manager-call", None);
    let call = "call account-manager";
    let truth = planted_uplift(
        &run.generated,
        &run.book,
        &calls,
        run.report.as_of,
        call,
        "control",
    )
    .unwrap();
    assert_eq!(truth, 0.0);
    let a = arm(&run.report, "account-manager-call", None, call);
    let shown = format!(
        "measured {:?} [{:?}, {:?}], n {}",
        a.uplift, a.uplift_ci_low, a.uplift_ci_high, a.n
    );
    println!("seed {seed}, account-manager-call: {shown}");
    assert!(contains(a, 0.0), "the interval leaves out zero: {shown}");
    // Never called significant; with fewer customers than the minimum in
    // either arm (the strategic accounts are few) not even judged.
    assert_ne!(a.significant, Some(true), "{shown}");
    let control = arm(&run.report, "account-manager-call", None, "control");
    let few = a.customers.min(control.customers) < collect_engine::effect::MIN_CUSTOMERS_PER_ARM;
    assert_eq!(a.significant.is_none(), few, "{shown}");
    let x = run
        .report
        .experiments
        .iter()
        .find(|x| x.experiment == "account-manager-call")
        .unwrap();
    assert_eq!(x.comparison.winner, None, "{}", x.comparison.verdict);
}
