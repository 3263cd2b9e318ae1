//! `collect demo`: a quarter of collections on a generated book, in a
//! minute, for a newcomer.
//!
//! 1. A fresh state in `<home>/demo/` (its own `collect.db` and outbox;
//!    nothing else in the home folder is touched).
//! 2. A seeded book ([`generate`]): customers who pay early, on time, when
//!    reminded, late whatever happens, after a dispute, never, or who asked
//!    not to be contacted; a quarter of invoices and last quarter's history.
//! 3. The policy runs every day from the quarter's first day to 60 days
//!    after its last, exactly as `collect run` would, mail going to the
//!    outbox. Customers answer: a payment a day or two after a friendly
//!    reminder they heed, 1–5 days after a notice or call past the due
//!    date, a promise after the firm notice. Every fact is stored on its
//!    own day, before that day's sweep, so the engine never sees the future.
//! 4. The same book and the same customers under a reactive policy that
//!    only chases after the due date (`demo/reactive.policy`), in memory.
//! 5. What happened, and the two policies side by side.
//! 6. The effectiveness report of the proactive run over the quarter
//!    (`collect report`), written to `<home>/demo/report.html`, with each
//!    experiment arm's measured uplift next to the effect the generator
//!    planted ([`collect_generator::Heed`]): the full
//!    friendly reminder gets more standard customers to pay on time than the short one; strategic
//!    accounts are not moved. The mail service's events (delivered, opened,
//!    clicked, replied, bounced) are simulated too, tagged with the message
//!    and action ids as SES would.

mod generate;
#[cfg(test)]
mod planted;

use crate::Format;
use crate::home::Home;
use crate::local;
use crate::policy_files::TemplateDir;
use crate::runtime::Runtime;
use anyhow::{Context, Result, anyhow};
use chrono::NaiveDate;
use collect_delivery::delivery::{RunReport, Sweeper};
use collect_delivery::mailer::LocalMailer;
use collect_delivery::message::{PayLinks, Templates};
use collect_engine::book::Book;
use collect_engine::domain::{
    ActionRecord, ActionStatus, Channel, Event, EventKind, InvoiceId, Payment,
};
use collect_engine::sweep::{PriorLateRate, SweepOptions};
use collect_sqlite::store::{SqliteStore, Store};
use generate::{Generated, PayerType, Pays, business_after, plus};
use policy_lang::Policy;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The baseline the demo compares with: chase only once an invoice is late.
const REACTIVE: &str = include_str!("demo/reactive.policy");
const REACTIVE_FILE: &str = "demo/reactive.policy";
const REACTIVE_SUMMARY: &str = "reactive: nothing before the due date; firm notice at due + 7d, \
                                call at due + 15d, legal letter (with approval) at due + 30d";

const PAST_DUE_FORMULA: &str =
    "past-due share = balance past its due date / total open balance (invoices of the quarter)";
/// The one DSO definition (`collect_engine::effect::kpi::dso`), as the report
/// prints it.
const DSO_FORMULA: &str = "DSO = open receivables at the end of the quarter / amount invoiced in \
                           the quarter x days in the quarter (as in `collect report`)";
const ON_TIME_FORMULA: &str =
    "on-time payment rate = invoices of the quarter paid in full by their due date / all of them";

pub fn run(
    home_root: &Path,
    policy: &Path,
    seed: u64,
    customers: u32,
    format: Format,
) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let mut home = Home::open(&home_root.join("demo"))?;
    clean(&home)?;
    // The demo company's letterhead, for the PDF of legal letters (a real
    // home sets `company_address` in its config.toml).
    if home.settings.company_address.is_empty() {
        home.settings.company_address = vec![
            "Example Supplies Ltd".to_string(),
            "1 Market Street".to_string(),
            "Springfield 12345".to_string(),
        ];
    }
    // Outside a checkout the standard policy is not on disk: the one
    // embedded in the binary is written beside the demo's state and used.
    let embedded;
    let policy = if !policy.exists() && policy == Path::new(crate::DEFAULT_POLICY) {
        embedded = crate::standard::write_out(&home.dir.join("policy"), true)?;
        embedded.as_path()
    } else {
        policy
    };
    let loaded = local::load_policy(policy)?;
    let reactive = reactive_policy(policy)?;
    let generated = generate::generate(seed, customers);
    let pay_links = home.pay_links()?;
    let bar = progress(format);

    if let Some(b) = &bar {
        b.set_message("simulating");
    }
    // The two runs share nothing but read-only inputs: one thread each.
    let mut store = home.store()?;
    let (proactive, (memory, baseline)) = std::thread::scope(|scope| -> Result<_> {
        let reactive_run = scope.spawn(|| -> Result<(SqliteStore, Tally)> {
            let mut memory = SqliteStore::in_memory()?;
            let rt = runtime(
                &home,
                &reactive,
                &loaded.templates,
                &pay_links,
                LocalMailer::Null,
                None,
                None,
            )?;
            let tally = simulate(&generated, &mut memory, &rt, bar.as_ref())?;
            Ok((memory, tally))
        });
        let outbox = home.outbox();
        let rt = runtime(
            &home,
            &loaded.policy,
            &loaded.templates,
            &pay_links,
            LocalMailer::Outbox(&outbox),
            loaded.revision.clone(),
            loaded.bundle.clone(),
        )?;
        let proactive = simulate(&generated, &mut store, &rt, bar.as_ref())?;
        let baseline = reactive_run
            .join()
            .map_err(|_| anyhow!("the reactive run stopped unexpectedly"))??;
        Ok((proactive, baseline))
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }

    let failed = proactive.failed + baseline.failed;
    // The effectiveness report on the proactive run, as `collect report`
    // would write it, and the planted effect next to what it measured.
    let book = store.load_book()?;
    // The quarter's actions and KPIs, their outcomes followed to the run's end.
    let effect = crate::report::build(
        &book,
        Some(generate::quarter_start()),
        Some(generate::quarter_end()),
        Some(home.settings.send_time_utc.clone()),
    )?;
    let html = home.dir.join(REPORT_FILE);
    crate::report::write_html(&html, &effect)?;
    let worked = what_worked(&generated, &book, &effect);
    let mut report = DemoReport::new(
        &home,
        home_root,
        policy,
        seed,
        customers,
        &generated,
        &loaded.policy,
        summarize(&store, &generated, proactive)?,
        summarize(&memory, &generated, baseline)?,
    );
    report.report_html = html.display().to_string();
    report.what_worked = worked;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Human => {
            print!("{}", report.render());
            eprintln!("(the demo took {:.1} s)", started.elapsed().as_secs_f64());
        }
    }
    // As `collect run`: a message the mail port refused fails the command.
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The effectiveness report the demo leaves in its home folder.
const REPORT_FILE: &str = "report.html";

/// Removes the previous demo's database, outbox and report, and nothing else.
fn clean(home: &Home) -> Result<()> {
    remove(&home.dir.join(REPORT_FILE))?;
    let db = home.db_path();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = db.clone().into_os_string();
        name.push(suffix);
        remove(&PathBuf::from(name))?;
    }
    remove(&home.outbox_dir())
}

fn remove(path: &Path) -> Result<()> {
    let removed = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
    };
    removed.with_context(|| format!("cannot remove the previous demo's {}", path.display()))
}

/// The reactive baseline, using the templates beside the main policy.
fn reactive_policy(main: &Path) -> Result<Policy> {
    let catalog = TemplateDir::beside(main);
    policy_lang::load(REACTIVE, REACTIVE_FILE, Some(&catalog))
        .map(|(p, _)| p)
        .map_err(|diags| {
            anyhow!(
                "the demo's reactive policy does not load with the templates beside {}:\n{}",
                main.display(),
                policy_lang::diagnostic::render(&diags, REACTIVE, false)
            )
        })
}

fn runtime<'a>(
    home: &Home,
    policy: &'a Policy,
    templates: &'a Templates,
    pay_links: &'a PayLinks,
    mailer: LocalMailer<'a>,
    revision: Option<String>,
    bundle: Option<String>,
) -> Result<Runtime<'a>> {
    let mut options: SweepOptions = home.sweep_options(revision, None)?;
    options.bundle_revision = bundle;
    Ok(Runtime {
        sweeper: Sweeper {
            policy,
            scorer: &PriorLateRate,
            templates,
            pay_links,
            sender: home.sender(),
            options,
            pay_link_days: home.settings.pay_link_days,
            grace: crate::home::GRACE,
            lease_ttl: crate::home::LEASE_TTL,
        },
        mailer,
        keep_records: usize::MAX,
    })
}

fn progress(format: Format) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if format != Format::Human || !std::io::stderr().is_terminal() {
        return None;
    }
    let days = (generate::run_end() - generate::quarter_start()).num_days() + 1;
    let bar = indicatif::ProgressBar::new(2 * days.unsigned_abs());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:20} [{bar:30}] {pos}/{len} days")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}

// ---------------------------------------------------------------- the simulation

/// The customers' side of the simulation: what they pay and say, and when.
struct Customers<'g> {
    book: &'g Generated,
    index: HashMap<&'g str, usize>,
    /// Per invoice: the day of the (first) payment, if it will ever come.
    first_pay: Vec<Option<NaiveDate>>,
    /// Per invoice: how many of its payments are stored.
    paid_parts: Vec<usize>,
    /// Per invoice: whether the customer already answered a contact.
    answered: Vec<bool>,
    /// Per invoice: whether the customer made a promise.
    promised: Vec<bool>,
    /// Per invoice: whether the customer pays it whole (a heeded reminder).
    in_full: Vec<bool>,
    /// Events waiting for their day.
    events: BTreeMap<NaiveDate, Vec<Event>>,
}

impl<'g> Customers<'g> {
    fn new(book: &'g Generated) -> Customers<'g> {
        let n = book.plans.len();
        let mut events: BTreeMap<NaiveDate, Vec<Event>> = BTreeMap::new();
        for p in &book.plans {
            if let Some((opened, closed)) = p.dispute {
                for (day, kind, what) in [
                    (opened, EventKind::DisputeOpened, "opened"),
                    (closed, EventKind::DisputeClosed, "closed"),
                ] {
                    events.entry(day).or_default().push(Event {
                        event_id: format!("EV-{}-dispute-{what}", p.invoice.invoice_id),
                        date: day,
                        kind,
                        invoice_id: Some(p.invoice.invoice_id.clone()),
                        action_id: None,
                        message_id: None,
                    });
                }
            }
        }
        Customers {
            book,
            index: book
                .plans
                .iter()
                .enumerate()
                .map(|(i, p)| (p.invoice.invoice_id.as_str(), i))
                .collect(),
            first_pay: book
                .plans
                .iter()
                .map(|p| match p.pays {
                    Pays::On(day) => Some(day),
                    Pays::Responds { fallback, .. } => Some(fallback),
                    Pays::Never => None,
                })
                .collect(),
            paid_parts: vec![0; n],
            answered: vec![false; n],
            promised: vec![false; n],
            in_full: vec![false; n],
            events,
        }
    }

    /// The payments made on `day`, marked as stored.
    fn payments(&mut self, day: NaiveDate) -> Vec<Payment> {
        let mut out = Vec::new();
        for (i, p) in self.book.plans.iter().enumerate() {
            let (Some(Some(first)), Some(done)) =
                (self.first_pay.get(i), self.paid_parts.get_mut(i))
            else {
                continue;
            };
            if *done == 0 && *first <= day && self.in_full.get(i).copied().unwrap_or(false) {
                *done = p.parts.len();
                out.push(Payment {
                    payment_id: format!("PAY-{}-1", p.invoice.invoice_id),
                    invoice_id: p.invoice.invoice_id.clone(),
                    paid_on: day,
                    amount: p.invoice.amount,
                });
                continue;
            }
            while let Some((offset, amount)) = p.parts.get(*done) {
                let on = if *done == 0 {
                    *first
                } else {
                    business_after(plus(*first, *offset))
                };
                if on > day {
                    break;
                }
                *done += 1;
                out.push(Payment {
                    payment_id: format!("PAY-{}-{}", p.invoice.invoice_id, *done),
                    invoice_id: p.invoice.invoice_id.clone(),
                    // Always `day`: nothing is ever stored backdated.
                    paid_on: day,
                    amount: *amount,
                });
            }
        }
        out
    }

    /// A reminder, notice, offer, letter or call about `invoice` on `day`:
    /// a responsive customer pays a few days later. Returns whether the
    /// payment came sooner because of it.
    fn contacted(&mut self, invoice: &str, day: NaiveDate) -> bool {
        let Some(&i) = self.index.get(invoice) else {
            return false;
        };
        let Some(plan) = self.book.plans.get(i) else {
            return false;
        };
        let Pays::Responds { from, lag, .. } = plan.pays else {
            return false;
        };
        if day < from
            || self.answered.get(i).copied().unwrap_or(true)
            || self.paid_parts.get(i).copied().unwrap_or(1) > 0
        {
            return false;
        }
        if let Some(a) = self.answered.get_mut(i) {
            *a = true;
        }
        let when = business_after(plus(day, lag));
        match self.first_pay.get_mut(i) {
            Some(slot) if slot.is_none_or(|f| when < f) => {
                *slot = Some(when);
                true
            }
            _ => false,
        }
    }

    /// A friendly reminder with `template` about `invoice` went out on
    /// `day`: a customer who heeds it pays the whole invoice a day or two
    /// later (the planted effect, see
    /// [`collect_generator::Heed`]). Returns whether the
    /// payment came sooner because of it.
    fn reminded(&mut self, invoice: &str, template: &str, day: NaiveDate) -> bool {
        let Some(&i) = self.index.get(invoice) else {
            return false;
        };
        let Some(when) = self
            .book
            .plans
            .get(i)
            .and_then(|p| p.heeded_on(day, template))
        else {
            return false;
        };
        if self.paid_parts.get(i).copied().unwrap_or(1) > 0 {
            return false;
        }
        match (self.first_pay.get_mut(i), self.in_full.get_mut(i)) {
            (Some(slot), Some(full)) if slot.is_none_or(|f| when < f) => {
                *slot = Some(when);
                *full = true;
                true
            }
            _ => false,
        }
    }

    /// What the mail service reports about the emails sent on `day`: each
    /// delivered (or bounced), and then opened, clicked and answered as the
    /// customer tends to. Stored the next morning, dated as they happened.
    fn mail_events(&mut self, report: &RunReport, day: NaiveDate) {
        let seed = self.book.seed;
        for m in report.sent.iter().filter(|m| m.channel == Channel::Email) {
            let Some(e) = self.book.engagement.get(m.customer_id.as_str()).copied() else {
                continue;
            };
            let actions: Vec<&str> = report
                .plan
                .records
                .iter()
                .filter(|r| r.message_id.as_deref() == Some(m.message_id.as_str()))
                .map(|r| r.action_id.as_str())
                .collect();
            // As SES tags: the message always, the action when it is the only one.
            let action_id = match actions.as_slice() {
                [only] => Some((*only).to_string()),
                _ => None,
            };
            let draw = |q: &str| generate::message_draw(seed, &m.message_id, q);
            let opened = !e.bounces && draw("open") < e.open;
            let next = plus(day, 1);
            let mut kinds = vec![(
                day,
                if e.bounces {
                    EventKind::MailBounced
                } else {
                    EventKind::MailDelivered
                },
            )];
            if opened {
                let on = if draw("open-day") < 0.6 { day } else { next };
                kinds.push((on, EventKind::MailOpened));
                if draw("click") < e.click {
                    kinds.push((on, EventKind::MailClicked));
                }
            }
            if !e.bounces && draw("reply") < e.reply {
                kinds.push((next, EventKind::MailReplied));
            }
            for (date, kind) in kinds {
                self.events.entry(next).or_default().push(Event {
                    event_id: format!("EV-{}-{}", m.message_id, kind.name()),
                    date,
                    kind,
                    invoice_id: None,
                    action_id: action_id.clone(),
                    message_id: Some(m.message_id.to_string()),
                });
            }
        }
    }

    /// The firm notice about an unpaid invoice went out on `day`: some
    /// customers promise a date. Returns whether they did.
    fn firm_notice(&mut self, invoice: &str, day: NaiveDate) -> bool {
        let Some(&i) = self.index.get(invoice) else {
            return false;
        };
        let (Some(plan), Some(first), Some(promised), Some(paid)) = (
            self.book.plans.get(i),
            self.first_pay.get(i).copied(),
            self.promised.get_mut(i),
            self.paid_parts.get(i),
        ) else {
            return false;
        };
        let Some(promise) = plan.promise else {
            return false;
        };
        if *promised || *paid > 0 {
            return false;
        }
        let on = business_after(plus(day, promise.after_days));
        if first.is_some_and(|f| f <= on) {
            return false;
        }
        let until = match (promise.kept, first) {
            // The customer promises the day it means to pay.
            (true, Some(f)) => f,
            (true, None) => return false,
            (false, _) => plus(on, promise.window_days),
        };
        *promised = true;
        self.events.entry(on).or_default().push(Event {
            event_id: format!("EV-{invoice}-promise"),
            date: on,
            kind: EventKind::PromiseToPay {
                promised_until: until,
            },
            invoice_id: Some(invoice.to_string()),
            action_id: None,
            message_id: None,
        });
        true
    }

    /// How the customers answer what one day's sweep did.
    fn answer(&mut self, report: &RunReport, day: NaiveDate, tally: &mut Tally) {
        let sent: HashSet<&str> = report.sent.iter().map(|m| m.message_id.as_str()).collect();
        let mut contacted: BTreeSet<&str> = report
            .sent
            .iter()
            .flat_map(|m| m.invoices.iter().map(InvoiceId::as_str))
            .collect();
        // A call task is worked the day it is created (see `make_calls`).
        contacted.extend(
            report
                .plan
                .records
                .iter()
                .filter(|r| r.channel == Channel::Call && r.status == ActionStatus::Planned)
                .map(|r| r.invoice_id.as_str()),
        );
        for invoice in contacted {
            if self.contacted(invoice, day) {
                tally.paid_sooner += 1;
            }
        }
        for r in &report.plan.records {
            if r.channel == Channel::Email
                && r.message_id.as_deref().is_some_and(|m| sent.contains(m))
                && self.reminded(&r.invoice_id, &r.target, day)
            {
                tally.paid_sooner += 1;
            }
        }
        self.mail_events(report, day);
        for r in &report.plan.records {
            if r.target == "firm-notice"
                && r.message_id.as_deref().is_some_and(|m| sent.contains(m))
                && self.firm_notice(&r.invoice_id, day)
            {
                tally.promises += 1;
            }
        }
    }
}

/// What one simulated run did, day by day.
#[derive(Debug, Default)]
struct Tally {
    messages: usize,
    messages_by_channel: BTreeMap<String, usize>,
    call_tasks: usize,
    failed: usize,
    /// Action → the reason a guardrail first held it back.
    deferred: BTreeMap<String, String>,
    /// Hold → the invoices it stopped at least once.
    held: BTreeMap<String, BTreeSet<String>>,
    promises: usize,
    paid_sooner: usize,
}

impl Tally {
    fn record(&mut self, report: &RunReport) {
        self.messages += report.sent.len();
        for m in &report.sent {
            *self
                .messages_by_channel
                .entry(m.channel.to_string())
                .or_default() += 1;
        }
        self.failed += report.failed.len();
        for r in &report.plan.records {
            match r.status {
                ActionStatus::Planned if r.channel == Channel::Call => self.call_tasks += 1,
                ActionStatus::Deferred => {
                    let reason = r
                        .note
                        .as_deref()
                        .unwrap_or("deferred")
                        .trim_start_matches("deferred: ")
                        .trim_end_matches("; retried on the next sweep")
                        .to_string();
                    self.deferred
                        .entry(r.action_id.to_string())
                        .or_insert(reason);
                }
                _ => {}
            }
        }
        for h in &report.plan.held {
            for name in &h.holds {
                self.held
                    .entry(name.clone())
                    .or_default()
                    .insert(h.invoice_id.clone());
            }
        }
    }
}

/// Runs the policy every day of the demo period on `store`, storing each
/// invoice, payment and event on its own day before that day's sweep.
fn simulate(
    book: &Generated,
    store: &mut SqliteStore,
    rt: &Runtime<'_>,
    bar: Option<&indicatif::ProgressBar>,
) -> Result<Tally> {
    store.upsert_customers(&book.customers)?;
    store.upsert_invoices(&book.history_invoices)?;
    store.upsert_payments(&book.history_payments)?;
    let mut issued: BTreeMap<NaiveDate, Vec<collect_engine::domain::Invoice>> = BTreeMap::new();
    for p in &book.plans {
        issued
            .entry(p.invoice.issue_date)
            .or_default()
            .push(p.invoice.clone());
    }
    let mut customers = Customers::new(book);
    let mut tally = Tally::default();
    let end = generate::run_end();
    for day in generate::quarter_start()
        .iter_days()
        .take_while(|d| *d <= end)
    {
        if let Some(invoices) = issued.get(&day) {
            store.upsert_invoices(invoices)?;
        }
        let payments = customers.payments(day);
        if !payments.is_empty() {
            store.upsert_payments(&payments)?;
        }
        if let Some(events) = customers.events.remove(&day) {
            store.insert_events(&events)?;
        }
        let report = rt.run_day(store, day, false)?;
        tally.record(&report);
        make_calls(store, &report, day)?;
        customers.answer(&report, day, &mut tally);
        if let Some(b) = bar {
            b.inc(1);
        }
    }
    Ok(tally)
}

/// Who works the call tasks in the demo, as recorded in the audit trail.
const CALLER: &str = "demo collections team";

/// The demo's collections team makes every call the day its task is
/// created and marks it done, as `collect tasks done` would.
fn make_calls(store: &mut SqliteStore, report: &RunReport, day: NaiveDate) -> Result<()> {
    for r in &report.plan.records {
        if r.channel != Channel::Call || r.status != ActionStatus::Planned {
            continue;
        }
        let Some(mut task) = store.action(&r.action_id)? else {
            continue;
        };
        if task.status != ActionStatus::Planned {
            continue;
        }
        task.status = ActionStatus::Sent;
        task.sent_on = Some(day);
        task.decided_by = Some(CALLER.to_string());
        task.decided_at = Some(day);
        task.note = Some(format!(
            "done by {CALLER} on {day} (simulated by `collect demo`)"
        ));
        store.transition(&task, &[ActionStatus::Planned], day, Some(CALLER))?;
    }
    Ok(())
}

// ---------------------------------------------------------------- the figures

/// The receivables figures of one run, over the quarter's invoices.
#[derive(Debug, Clone, Serialize)]
struct Figures {
    /// Past-due balance / open balance at the end of the quarter's last day.
    past_due_share_at_quarter_end: f64,
    /// The same share, averaged over the quarter's days.
    past_due_share_daily_average: f64,
    /// Days sales outstanding over the quarter, the report's definition
    /// (`collect_engine::effect::dso`): open receivables at the end of the
    /// quarter / amount invoiced in it × its days; `None` when nothing was
    /// invoiced.
    dso_days: Option<f64>,
    /// Invoices paid in full on or before their due date / all invoices.
    on_time_payment_rate: f64,
    open_at_quarter_end: Decimal,
    past_due_at_quarter_end: Decimal,
    /// Still unpaid on the last day the policy ran.
    unpaid_at_run_end: Decimal,
}

fn round(x: f64, places: i32) -> f64 {
    let k = 10f64.powi(places);
    (x * k).round() / k
}

fn ratio(a: Decimal, b: Decimal) -> f64 {
    if b.is_zero() {
        return 0.0;
    }
    (a / b).to_f64().unwrap_or(0.0)
}

fn figures(book: &Book, generated: &Generated) -> Figures {
    let invoices: Vec<&collect_engine::domain::Invoice> =
        generated.plans.iter().map(|p| &p.invoice).collect();
    let start = generate::quarter_start();
    let end = generate::quarter_end();
    let mut shares = 0.0;
    let mut days_with_balance = 0u32;
    let (mut open_end, mut past_due_end) = (Decimal::ZERO, Decimal::ZERO);
    for day in start.iter_days().take_while(|d| *d <= end) {
        let (mut open, mut past_due) = (Decimal::ZERO, Decimal::ZERO);
        for inv in invoices.iter().filter(|i| i.issue_date <= day) {
            let balance = book.balance(inv, day);
            open += balance;
            if inv.due_date < day {
                past_due += balance;
            }
        }
        if !open.is_zero() {
            shares += ratio(past_due, open);
            days_with_balance += 1;
        }
        (open_end, past_due_end) = (open, past_due);
    }
    let on_time = invoices
        .iter()
        .filter(|i| book.settled_on(i).is_some_and(|s| s <= i.due_date))
        .count();
    let run_end = generate::run_end();
    Figures {
        past_due_share_at_quarter_end: round(ratio(past_due_end, open_end), 4),
        past_due_share_daily_average: round(shares / f64::from(days_with_balance.max(1)), 4),
        dso_days: collect_engine::effect::dso(
            book,
            collect_engine::effect::Period {
                from: start,
                to: end,
            },
            None,
        )
        .map(|x| round(x, 1)),
        on_time_payment_rate: round(on_time as f64 / invoices.len().max(1) as f64, 4),
        open_at_quarter_end: open_end,
        past_due_at_quarter_end: past_due_end,
        unpaid_at_run_end: invoices.iter().map(|i| book.balance(i, run_end)).sum(),
    }
}

/// One policy's run, summed up.
#[derive(Debug, Clone, Serialize)]
struct RunSummary {
    policy: String,
    messages_sent: usize,
    messages_by_channel: BTreeMap<String, usize>,
    call_tasks_created: usize,
    /// Letters still waiting for a person at the end.
    approvals_waiting: usize,
    /// Final status of every recorded action, by label.
    actions_by_kind: BTreeMap<String, BTreeMap<String, usize>>,
    /// Final status of every recorded action, by segment.
    actions_by_segment: BTreeMap<String, BTreeMap<String, usize>>,
    /// Actions a guardrail held back at least once, by the first reason.
    deferred_by_reason: BTreeMap<String, usize>,
    /// Time zones whose customers were due emails, offers or calls and got
    /// none: their local time is inside the quiet hours at the send time.
    unreached_timezones: BTreeMap<String, usize>,
    /// Invoices a hold stopped at least once, by hold.
    invoices_held: BTreeMap<String, usize>,
    promises_to_pay: usize,
    /// Invoices paid sooner because a contact reached the customer.
    invoices_paid_sooner: usize,
    failed_messages: usize,
    figures: Figures,
    /// An invoice that got a legal letter, and the day, for `explain`.
    #[serde(skip)]
    letter: Option<(String, NaiveDate)>,
}

/// Time zones where no email, offer or call went out though some were due,
/// with the number of such actions.
fn unreached(actions: &[ActionRecord], generated: &Generated) -> BTreeMap<String, usize> {
    let zone: HashMap<&str, &str> = generated
        .customers
        .iter()
        .map(|c| (c.customer_id.as_str(), c.timezone.as_str()))
        .collect();
    let mut due: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for a in actions
        .iter()
        .filter(|a| matches!(a.channel, Channel::Email | Channel::Offer | Channel::Call))
    {
        let Some(tz) = zone.get(a.customer_id.as_str()) else {
            continue;
        };
        let e = due.entry((*tz).to_string()).or_default();
        e.0 += 1;
        if a.status == ActionStatus::Sent {
            e.1 += 1;
        }
    }
    due.into_iter()
        .filter(|(_, (n, sent))| *n > 0 && *sent == 0)
        .map(|(tz, (n, _))| (tz, n))
        .collect()
}

fn summarize(store: &SqliteStore, generated: &Generated, tally: Tally) -> Result<RunSummary> {
    let book = store.load_book()?;
    let actions: Vec<ActionRecord> = store.actions()?;
    let mut by_kind: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut by_segment: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for a in &actions {
        let status = a.status.as_str().to_string();
        *by_kind
            .entry(a.label.clone())
            .or_default()
            .entry(status.clone())
            .or_default() += 1;
        *by_segment
            .entry(a.segment.clone())
            .or_default()
            .entry(status)
            .or_default() += 1;
    }
    let letters = || actions.iter().filter(|a| a.channel == Channel::Letter);
    let letter = letters()
        .find(|a| a.status == ActionStatus::AwaitingApproval)
        .or_else(|| letters().next())
        .map(|a| (a.invoice_id.to_string(), a.decided_on));
    Ok(RunSummary {
        policy: actions
            .first()
            .map(|a| a.policy_name.clone())
            .unwrap_or_default(),
        messages_sent: tally.messages,
        messages_by_channel: tally.messages_by_channel,
        call_tasks_created: tally.call_tasks,
        approvals_waiting: actions
            .iter()
            .filter(|a| a.status == ActionStatus::AwaitingApproval)
            .count(),
        actions_by_kind: by_kind,
        actions_by_segment: by_segment,
        deferred_by_reason: tally.deferred.into_values().fold(
            BTreeMap::new(),
            |mut m: BTreeMap<String, usize>, reason| {
                *m.entry(reason).or_default() += 1;
                m
            },
        ),
        unreached_timezones: unreached(&actions, generated),
        invoices_held: tally.held.into_iter().map(|(k, v)| (k, v.len())).collect(),
        promises_to_pay: tally.promises,
        invoices_paid_sooner: tally.paid_sooner,
        failed_messages: tally.failed,
        figures: figures(&book, generated),
        letter,
    })
}

// ---------------------------------------------------------------- what worked

/// One arm of an experiment as the report measured it, next to the effect
/// the generator planted on the same invoices.
#[derive(Debug, Clone, Serialize)]
pub struct Recovered {
    pub experiment: String,
    /// `None` for the whole experiment, else one segment of it.
    pub segment: Option<String>,
    pub arm: String,
    pub reference: String,
    pub n: u32,
    pub reference_n: u32,
    /// Customers with a known outcome in the arm and in the reference: a
    /// difference is judged only with enough of them in both.
    pub customers: u32,
    pub reference_customers: u32,
    pub pay_rate: Option<f64>,
    pub reference_pay_rate: Option<f64>,
    pub uplift: Option<f64>,
    pub uplift_ci_low: Option<f64>,
    pub uplift_ci_high: Option<f64>,
    pub significant: Option<bool>,
    /// The true uplift on these invoices, from the generator's two potential
    /// outcomes of each; `None` when the arms are not something the
    /// generator models (see [`planted_uplift`]).
    pub planted_uplift: Option<f64>,
    pub verdict: String,
}

/// The reminder an arm sends: `Some(template)` for an email, `None` for
/// the control arm and for calls, offers and letters (which, before the
/// due date, move nobody in the generated book).
fn arm_template(arm: &str) -> Option<&str> {
    arm.strip_prefix("email ")
}

/// The emails about an invoice that went out, but `except` (day, template).
fn other_emails(book: &Book, invoice_id: &str, except: &str) -> Vec<(NaiveDate, String)> {
    book.actions_of(invoice_id)
        .iter()
        .filter(|a| a.action_id != except && a.channel == Channel::Email)
        .filter_map(|a| match (a.status, a.sent_on) {
            (ActionStatus::Sent, Some(d)) => Some((d, a.target.clone())),
            _ => None,
        })
        .collect()
}

/// Whether an invoice is paid on time when its experiment step sends
/// `arm`'s reminder on `day` (if any), its other emails going out as they did.
fn outcome_under(
    plan: &generate::InvoicePlan,
    others: &[(NaiveDate, String)],
    day: Option<NaiveDate>,
    arm: &str,
) -> bool {
    let mut emails: Vec<(NaiveDate, &str)> = others.iter().map(|(d, t)| (*d, t.as_str())).collect();
    if let (Some(d), Some(t)) = (day, arm_template(arm)) {
        emails.push((d, t));
    }
    plan.paid_on_time(&emails)
}

/// The uplift the generator planted for `arm` against `reference`, over the
/// invoices the report compared (both arms, outcome known): the mean, over
/// those invoices, of "paid on time with this arm's reminder" minus "with
/// the reference's", both known in advance for every invoice
/// ([`generate::InvoicePlan::paid_on_time`]; the invoice's other emails go
/// out as they did). A reminder goes out on the day it really went out; a
/// withheld step's reminder would have gone out the day it was withheld.
/// Only for steps before the due date, and not for the control group (whose
/// members would have got different reminders).
pub fn planted_uplift(
    generated: &Generated,
    book: &Book,
    units: &[collect_engine::effect::experiments::Unit<'_>],
    as_of: NaiveDate,
    arm: &str,
    reference: &str,
) -> Option<f64> {
    use collect_engine::effect::experiments::paid_in_time;
    use collect_engine::effect::outcomes::withheld_by_design;
    let plans: HashMap<&str, &generate::InvoicePlan> = generated
        .plans
        .iter()
        .map(|p| (p.invoice.invoice_id.as_str(), p))
        .collect();
    let (mut sum, mut n) = (0i64, 0i64);
    for u in units.iter().filter(|u| u.arm == arm || u.arm == reference) {
        if u.experiment == collect_engine::effect::CONTROL_GROUP || u.day >= u.invoice.due_date {
            return None;
        }
        if paid_in_time(book, u, as_of).is_none() {
            continue;
        }
        let plan = plans.get(u.invoice.invoice_id.as_str())?;
        let record = book
            .actions_of(&u.invoice.invoice_id)
            .iter()
            .find(|a| a.action_id == u.action_id)?;
        let day = match (record.status, record.sent_on) {
            (ActionStatus::Sent, Some(d)) => Some(d),
            _ if withheld_by_design(record) => Some(record.decided_on),
            _ => None,
        };
        let others = other_emails(book, &u.invoice.invoice_id, u.action_id);
        let outcome = |a: &str| outcome_under(plan, &others, day, a);
        sum += i64::from(outcome(arm)) - i64::from(outcome(reference));
        n += 1;
    }
    (n > 0).then(|| sum as f64 / n as f64)
}

/// Every non-reference arm of every experiment (and of each of its segments)
/// with its measured and planted uplift.
fn what_worked(
    generated: &Generated,
    book: &Book,
    effect: &collect_engine::effect::EffectReport,
) -> Vec<Recovered> {
    let units = collect_engine::effect::experiments::units(
        book,
        effect.period.from,
        effect.period.to,
        effect.as_of,
    );
    let mut out = Vec::new();
    for x in &effect.experiments {
        let mut parts = vec![(None, &x.comparison)];
        if x.segments.len() > 1 {
            parts.extend(
                x.segments
                    .iter()
                    .map(|s| (Some(s.segment.clone()), &s.comparison)),
            );
        }
        for (segment, cmp) in parts {
            let mine: Vec<_> = units
                .iter()
                .filter(|u| {
                    u.experiment == x.experiment && segment.as_ref().is_none_or(|s| *s == u.segment)
                })
                .cloned()
                .collect();
            let reference = cmp.arms.iter().find(|a| a.is_reference);
            for a in cmp.arms.iter().filter(|a| !a.is_reference) {
                out.push(Recovered {
                    experiment: x.experiment.clone(),
                    segment: segment.clone(),
                    arm: a.arm.clone(),
                    reference: cmp.reference.clone(),
                    n: a.n,
                    reference_n: reference.map_or(0, |r| r.n),
                    customers: a.customers,
                    reference_customers: reference.map_or(0, |r| r.customers),
                    pay_rate: a.pay_rate,
                    reference_pay_rate: reference.and_then(|r| r.pay_rate),
                    uplift: a.uplift,
                    uplift_ci_low: a.uplift_ci_low,
                    uplift_ci_high: a.uplift_ci_high,
                    significant: a.significant,
                    planted_uplift: planted_uplift(
                        generated,
                        book,
                        &mine,
                        effect.as_of,
                        &a.arm,
                        &cmp.reference,
                    ),
                    verdict: cmp.verdict.clone(),
                });
            }
        }
    }
    out
}

// ---------------------------------------------------------------- the report

#[derive(Debug, Clone, Serialize)]
struct Period {
    from: NaiveDate,
    to: NaiveDate,
    days: i64,
}

impl Period {
    fn new(from: NaiveDate, to: NaiveDate) -> Period {
        Period {
            from,
            to,
            days: (to - from).num_days() + 1,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct BookSummary {
    customers: usize,
    customers_by_behaviour: BTreeMap<String, usize>,
    strategic_customers: usize,
    german_speaking_customers: usize,
    customers_by_timezone: BTreeMap<String, usize>,
    control_group_customers: usize,
    invoices: usize,
    invoiced: Decimal,
    history_invoices: usize,
    partial_payments: usize,
    disputes: usize,
}

#[derive(Debug, Clone, Serialize)]
struct Formulas {
    past_due_share: &'static str,
    dso: &'static str,
    on_time_payment_rate: &'static str,
}

#[derive(Debug, Clone, Serialize)]
struct DemoReport {
    seed: u64,
    customers: u32,
    policy: String,
    baseline: &'static str,
    /// When the sweep sends, UTC (`send_time_utc` in config.toml).
    send_time_utc: String,
    quarter: Period,
    run: Period,
    book: BookSummary,
    proactive: RunSummary,
    reactive: RunSummary,
    formulas: Formulas,
    database: String,
    outbox: String,
    outbox_files: usize,
    /// The effectiveness report (`collect report --html`) of the proactive run.
    report_html: String,
    /// Its experiments, each arm's measured uplift next to the planted one.
    what_worked: Vec<Recovered>,
    explore: Vec<String>,
}

/// A path as a shell argument.
fn arg(path: &Path) -> String {
    let s = path.display().to_string();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./-:".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn count_eml(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .map(|p| {
            if p.is_dir() {
                count_eml(&p)
            } else {
                usize::from(p.extension().is_some_and(|x| x == "eml"))
            }
        })
        .sum()
}

impl DemoReport {
    #[allow(clippy::too_many_arguments)]
    fn new(
        home: &Home,
        home_root: &Path,
        policy_path: &Path,
        seed: u64,
        customers: u32,
        generated: &Generated,
        policy: &Policy,
        proactive: RunSummary,
        reactive: RunSummary,
    ) -> DemoReport {
        let mut by_behaviour: BTreeMap<String, usize> = BTreeMap::new();
        for p in PayerType::ALL {
            let n = generated.payer.values().filter(|x| **x == p).count();
            by_behaviour.insert(p.describe().to_string(), n);
        }
        let mut by_tz: BTreeMap<String, usize> = BTreeMap::new();
        for c in &generated.customers {
            *by_tz.entry(c.timezone.clone()).or_default() += 1;
        }
        let strategic = generated
            .customers
            .iter()
            .filter(|c| {
                c.annual_revenue
                    .is_some_and(|r| r >= Decimal::from(250_000))
                    || c.tags.iter().any(|t| t.eq_ignore_ascii_case("strategic"))
            })
            .count();
        let book = BookSummary {
            customers: generated.customers.len(),
            customers_by_behaviour: by_behaviour,
            strategic_customers: strategic,
            german_speaking_customers: generated
                .customers
                .iter()
                .filter(|c| c.language == "de")
                .count(),
            customers_by_timezone: by_tz,
            control_group_customers: generated
                .customers
                .iter()
                .filter(|c| policy.in_control_group(&c.customer_id))
                .count(),
            invoices: generated.plans.len(),
            invoiced: generated.plans.iter().map(|p| p.invoice.amount).sum(),
            history_invoices: generated.history_invoices.len(),
            partial_payments: generated.plans.iter().filter(|p| p.parts.len() > 1).count(),
            disputes: generated
                .plans
                .iter()
                .filter(|p| p.dispute.is_some())
                .count(),
        };
        let demo_home = arg(&home_root.join("demo"));
        let policy_arg = if policy_path == Path::new(crate::DEFAULT_POLICY) {
            String::new()
        } else {
            format!(" --policy {}", arg(policy_path))
        };
        let mut explore = vec![format!("collect --home {demo_home} tasks")];
        if let Some((invoice, day)) = &proactive.letter {
            explore.push(format!(
                "collect --home {demo_home} explain {invoice} --date {day}{policy_arg}"
            ));
        }
        explore.push(format!(
            "collect --home {demo_home} run --date {} --dry-run{policy_arg}",
            plus(generate::run_end(), 1)
        ));
        explore.push(format!(
            "collect --home {demo_home} report --from {} --to {} --format csv",
            generate::quarter_start(),
            generate::quarter_end()
        ));
        DemoReport {
            seed,
            customers,
            policy: policy_path.display().to_string(),
            baseline: REACTIVE_SUMMARY,
            send_time_utc: home.settings.send_time_utc.clone(),
            quarter: Period::new(generate::quarter_start(), generate::quarter_end()),
            run: Period::new(generate::quarter_start(), generate::run_end()),
            book,
            proactive,
            reactive,
            formulas: Formulas {
                past_due_share: PAST_DUE_FORMULA,
                dso: DSO_FORMULA,
                on_time_payment_rate: ON_TIME_FORMULA,
            },
            database: home.db_path().display().to_string(),
            outbox: home.outbox_dir().display().to_string(),
            outbox_files: count_eml(&home.outbox_dir()),
            report_html: String::new(),
            what_worked: Vec::new(),
            explore,
        }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let b = &self.book;
        let p = &self.proactive;
        let r = &self.reactive;
        let _ = writeln!(
            out,
            "Proactive Collections demo (seed {}, {} customers)\n",
            self.seed, self.customers
        );
        let _ = writeln!(
            out,
            "The book (generated; the same seed gives the same book)"
        );
        let _ = writeln!(
            out,
            "  {} customers: {}",
            b.customers,
            b.customers_by_behaviour
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            out,
            "  {} strategic, {} reading German, {} in the policy's control group; time zones: {}",
            b.strategic_customers,
            b.german_speaking_customers,
            b.control_group_customers,
            b.customers_by_timezone
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            out,
            "  {} invoices issued {} to {} for {} USD; {} paid in two parts; {} disputed",
            b.invoices,
            self.quarter.from,
            self.quarter.to,
            money(b.invoiced),
            b.partial_payments,
            b.disputes
        );
        let _ = writeln!(
            out,
            "  {} settled invoices from the previous quarter: the payment history the risk score reads",
            b.history_invoices
        );
        let _ = writeln!(
            out,
            "\nThe policy {} ran every day from {} to {} ({} days), mail to the outbox;\n\
             customers answered reminders with payments and firm notices with promises.\n",
            self.policy, self.run.from, self.run.to, self.run.days
        );
        let _ = writeln!(out, "What the policy did");
        let _ = writeln!(
            out,
            "  Messages sent:        {} ({})",
            p.messages_sent,
            p.messages_by_channel
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            out,
            "  Call tasks created:   {} (the demo's collections team calls the same day)",
            p.call_tasks_created
        );
        let _ = writeln!(
            out,
            "  Approvals waiting:    {} legal letter(s)",
            p.approvals_waiting
        );
        let _ = writeln!(
            out,
            "  Promises to pay:      {}; invoices paid sooner after a contact: {}",
            p.promises_to_pay, p.invoices_paid_sooner
        );
        if p.failed_messages > 0 {
            let _ = writeln!(out, "  FAILED messages:      {}", p.failed_messages);
        }
        let _ = writeln!(out, "\n  Actions by kind (final status):");
        for (label, statuses) in &p.actions_by_kind {
            let _ = writeln!(out, "    {label:<34} {}", statuses_line(statuses));
        }
        let _ = writeln!(out, "\n  Actions by segment (final status):");
        for (segment, statuses) in &p.actions_by_segment {
            let _ = writeln!(out, "    {segment:<34} {}", statuses_line(statuses));
        }
        let _ = writeln!(
            out,
            "    (sent = went out, or call made; skipped = passed over, or paid first)"
        );
        if !p.invoices_held.is_empty() {
            let _ = writeln!(
                out,
                "\n  Invoices held at some point: {}",
                p.invoices_held
                    .iter()
                    .map(|(k, n)| format!("{n} by {k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if !p.deferred_by_reason.is_empty() {
            let _ = writeln!(
                out,
                "  Actions held back by a guardrail (retried daily), by first reason:"
            );
            for (reason, n) in &p.deferred_by_reason {
                let _ = writeln!(out, "    {n:>5}  {reason}");
            }
        }
        if !p.unreached_timezones.is_empty() {
            let _ = writeln!(
                out,
                "  Never reached: customers in {} got none of their {} email(s), offer(s) and \
                 call(s):\n    at the send time ({} UTC) it is inside the quiet hours there. \
                 Letters are posted and not affected.",
                p.unreached_timezones
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" and "),
                p.unreached_timezones.values().sum::<usize>(),
                self.send_time_utc
            );
        }

        let _ = writeln!(
            out,
            "\nProactive vs reactive (the same customers, who pay the same way)"
        );
        let _ = writeln!(out, "  baseline = {}", self.baseline);
        let _ = writeln!(out, "  {:<48} {:>12} {:>12}", "", "proactive", "reactive");
        let row = |out: &mut String, name: &str, a: String, b: String| {
            let _ = writeln!(out, "  {name:<48} {a:>12} {b:>12}");
        };
        let (pf, rf) = (&p.figures, &r.figures);
        row(
            &mut out,
            &format!("Past-due share on {}", self.quarter.to),
            pct(pf.past_due_share_at_quarter_end),
            pct(rf.past_due_share_at_quarter_end),
        );
        row(
            &mut out,
            "Past-due share, daily average over the quarter",
            pct(pf.past_due_share_daily_average),
            pct(rf.past_due_share_daily_average),
        );
        row(
            &mut out,
            "DSO over the quarter (days)",
            crate::report::days(pf.dso_days),
            crate::report::days(rf.dso_days),
        );
        row(
            &mut out,
            "On-time payment rate",
            pct(pf.on_time_payment_rate),
            pct(rf.on_time_payment_rate),
        );
        row(
            &mut out,
            &format!("Past due on {} (USD)", self.quarter.to),
            money(pf.past_due_at_quarter_end),
            money(rf.past_due_at_quarter_end),
        );
        row(
            &mut out,
            &format!("Still unpaid on {} (USD)", self.run.to),
            money(pf.unpaid_at_run_end),
            money(rf.unpaid_at_run_end),
        );
        row(
            &mut out,
            "Messages sent",
            p.messages_sent.to_string(),
            r.messages_sent.to_string(),
        );
        row(
            &mut out,
            "Call tasks created",
            p.call_tasks_created.to_string(),
            r.call_tasks_created.to_string(),
        );
        row(
            &mut out,
            "Letters awaiting approval at the end",
            p.approvals_waiting.to_string(),
            r.approvals_waiting.to_string(),
        );
        let _ = writeln!(out, "\n  How these are worked out:");
        for f in [PAST_DUE_FORMULA, DSO_FORMULA, ON_TIME_FORMULA] {
            let _ = writeln!(out, "    {f}");
        }

        self.render_what_worked(&mut out);

        let _ = writeln!(out, "\nExplore");
        let _ = writeln!(out, "  State (SQLite): {}", self.database);
        let _ = writeln!(
            out,
            "  Outbox:         {} ({} .eml files, one folder per day)",
            self.outbox, self.outbox_files
        );
        for c in &self.explore {
            let _ = writeln!(out, "  $ {c}");
        }
        let _ = writeln!(
            out,
            "\nThe effectiveness report (charts: aging, pay rate by step and segment, uplift,\n\
             timing) is in {}: open it in a browser.",
            self.report_html
        );
        out
    }

    fn render_what_worked(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\nWhat worked: experiments, as `collect report` measures them"
        );
        let _ = writeln!(
            out,
            "  Planted in the generator: a friendly reminder before the due date gets {:.0}% \
             (full) or {:.0}% (short)\n  of the standard customers who would pay late to pay \
             on time; strategic accounts are not moved.",
            generate::heed_rate(generate::FULL_REMINDER) * 100.0,
            generate::heed_rate(generate::SHORT_REMINDER) * 100.0
        );
        if self.what_worked.is_empty() {
            let _ = writeln!(out, "  No experiment ran.");
            return;
        }
        let mut verdicts: Vec<(&str, &str)> = Vec::new();
        for w in &self.what_worked {
            let name = match &w.segment {
                Some(s) => format!("{} ({s})", w.experiment),
                None => w.experiment.clone(),
            };
            let measured = match (w.uplift, w.uplift_ci_low, w.uplift_ci_high) {
                (Some(u), Some(l), Some(h)) => format!(
                    "{:+.1} points [{:+.1}, {:+.1}]{}",
                    u * 100.0,
                    l * 100.0,
                    h * 100.0,
                    match w.significant {
                        Some(true) => ", significant".to_string(),
                        Some(false) => ", not significant".to_string(),
                        None => format!(
                            ", too few customers to judge ({} / {})",
                            w.customers, w.reference_customers
                        ),
                    }
                ),
                _ => "no outcome known".to_string(),
            };
            let _ = writeln!(
                out,
                "  {name}: {} vs {} (n {} / {}): measured {measured}{}",
                w.arm,
                w.reference,
                w.n,
                w.reference_n,
                w.planted_uplift
                    .map(|p| format!("; planted {:+.1}", p * 100.0))
                    .unwrap_or_default()
            );
            if !verdicts.iter().any(|(n, _)| *n == w.experiment.as_str()) && w.segment.is_none() {
                verdicts.push((w.experiment.as_str(), w.verdict.as_str()));
            }
        }
        for (_, v) in verdicts {
            let _ = writeln!(out, "  → {v}");
        }
    }
}

fn statuses_line(statuses: &BTreeMap<String, usize>) -> String {
    statuses
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// `1234567.8` as `1,234,567.80`.
fn money(x: Decimal) -> String {
    let s = format!("{:.2}", x.round_dp(2));
    let (int, frac) = s.split_once('.').unwrap_or((&s, "00"));
    let (sign, digits) = match int.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", int),
    };
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_grouped() {
        assert_eq!(money(Decimal::new(123456789, 2)), "1,234,567.89");
        assert_eq!(money(Decimal::new(15000, 2)), "150.00");
        assert_eq!(money(Decimal::ZERO), "0.00");
    }

    #[test]
    fn the_reactive_policy_loads_with_the_standard_templates() {
        let main = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policy/standard-net30.policy");
        assert!(reactive_policy(&main).is_ok());
    }
}
