//! The local runtime's commands: ingest, run, simulate, diff, explain an
//! invoice, and the human task queue. State lives in the home folder's
//! SQLite file; mail goes to its outbox.

use crate::Format;
use crate::home::{self, Home};
use crate::policy_files;
use crate::runtime::Runtime;
use anyhow::{Context, Result, bail};
use chrono::{NaiveDate, NaiveTime};
use collect_delivery::delivery::{RunReport, Sweeper};
use collect_delivery::mailer::LocalMailer;
use collect_engine::domain::{
    ActionRecord, ActionStatus, Channel, Customer, Event, Invoice, Payment,
};
use collect_engine::ingest::{self, Incoming, Patch, Reject};
use collect_engine::sweep::{self, RiskScorer};
use collect_sqlite::store::{SqliteStore, Store};
use policy_lang::Policy;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

// ---------------------------------------------------------------- ingest

/// Reads one file of the data contract if `dir` has it. A problem with the
/// file as a whole (unreadable, not UTF-8, a header without a required
/// column) is recorded in `file_errors` and the other files still load.
fn read_export<T>(
    dir: &Path,
    name: &str,
    parse: impl FnOnce(std::fs::File, &str) -> Result<ingest::Parsed<T>, ingest::IngestError>,
    found: &mut usize,
    file_errors: &mut Vec<ingest::IngestError>,
) -> Option<(ingest::Parsed<T>, String)> {
    let path = dir.join(name);
    if !path.exists() {
        return None;
    }
    *found += 1;
    let label = path.display().to_string();
    let parsed = std::fs::File::open(&path)
        .map_err(|source| ingest::IngestError::Read {
            file: label.clone(),
            source,
        })
        .and_then(|file| parse(file, &label));
    match parsed {
        Ok(parsed) => Some((parsed, label)),
        Err(e) => {
            file_errors.push(e);
            None
        }
    }
}

/// A record with the file and line it came from.
struct Sourced<T> {
    record: T,
    file: String,
    line: u64,
}

fn with_origin<T>(parsed: ingest::Parsed<T>, file: &str) -> Vec<Sourced<T>> {
    parsed
        .records
        .into_iter()
        .zip(parsed.lines)
        .map(|(record, line)| Sourced {
            record,
            file: file.to_owned(),
            line,
        })
        .collect()
}

/// Why a record naming an unknown customer or invoice is refused, with the
/// fix for where it came from.
fn unknown_reason(kind: &str, file: &str) -> String {
    if file.ends_with(".jsonl") {
        format!("no {kind} with this id; send its {kind}_upserted event first")
    } else {
        format!("no {kind} with this id; add it to {kind}s.csv")
    }
}

/// Loads the CSV files (and `events.jsonl`) found in `dir`.
///
/// Customers and invoices are merged with what is stored (a column the
/// file lacks keeps its stored value); references must resolve against
/// this batch or the store; payments are checked against their invoices.
/// A file that cannot be read as a whole is reported and the other files
/// still load; `rejects.csv` is rewritten every time. Exits non-zero when
/// anything was refused.
pub fn ingest(home: &Home, dir: &Path, format: Format) -> Result<ExitCode> {
    let mut store = home.store()?;
    let mut rejects: Vec<Reject> = Vec::new();
    let mut file_errors: Vec<ingest::IngestError> = Vec::new();
    let mut found = 0;
    let mut customers: Vec<Sourced<Patch<Customer>>> = Vec::new();
    let mut invoices: Vec<Sourced<Patch<Invoice>>> = Vec::new();
    let mut payments: Vec<Sourced<Payment>> = Vec::new();
    let mut events: Vec<Sourced<Event>> = Vec::new();
    if let Some((mut p, file)) = read_export(
        dir,
        "customers.csv",
        ingest::customers,
        &mut found,
        &mut file_errors,
    ) {
        rejects.append(&mut p.rejects);
        customers.extend(with_origin(p, &file));
    }
    if let Some((mut p, file)) = read_export(
        dir,
        "invoices.csv",
        ingest::invoices,
        &mut found,
        &mut file_errors,
    ) {
        rejects.append(&mut p.rejects);
        invoices.extend(with_origin(p, &file));
    }
    if let Some((mut p, file)) = read_export(
        dir,
        "payments.csv",
        ingest::payments,
        &mut found,
        &mut file_errors,
    ) {
        rejects.append(&mut p.rejects);
        payments.extend(with_origin(p, &file));
    }
    if let Some((mut p, file)) = read_export(
        dir,
        "events.jsonl",
        ingest::events,
        &mut found,
        &mut file_errors,
    ) {
        rejects.append(&mut p.rejects);
        for Sourced { record, file, line } in with_origin(p, &file) {
            match record {
                Incoming::Customer(record) => customers.push(Sourced { record, file, line }),
                Incoming::Invoice(record) => invoices.push(Sourced { record, file, line }),
                Incoming::Payment(record) => payments.push(Sourced { record, file, line }),
                Incoming::Event(record) => events.push(Sourced { record, file, line }),
            }
        }
    }
    if found == 0 {
        bail!(
            "{} holds none of customers.csv, invoices.csv, payments.csv or events.jsonl",
            dir.display()
        );
    }

    // References must resolve, against this batch or what is already stored.
    let book = store.load_book()?;
    let known_customers: HashSet<String> = book
        .customers
        .keys()
        .cloned()
        .chain(
            customers
                .iter()
                .map(|c| c.record.record.customer_id.clone()),
        )
        .collect();
    let mut kept_invoices = Vec::new();
    for inv in invoices {
        let customer_id = &inv.record.record.customer_id;
        if known_customers.contains(customer_id) {
            kept_invoices.push(inv.record);
        } else {
            rejects.push(Reject {
                reason: unknown_reason("customer", &inv.file),
                file: inv.file,
                line: inv.line,
                column: "customer_id".to_string(),
                value: customer_id.clone(),
            });
        }
    }
    // The invoices payments are checked against: the stored ones, replaced
    // by this batch's.
    let mut known_invoices: std::collections::HashMap<&str, &Invoice> = book
        .invoices
        .iter()
        .map(|i| (i.invoice_id.as_str(), i))
        .collect();
    for patch in &kept_invoices {
        known_invoices.insert(patch.record.invoice_id.as_str(), &patch.record);
    }
    let mut kept_payments = Vec::new();
    for p in payments {
        match known_invoices.get(p.record.invoice_id.as_str()) {
            Some(invoice) => {
                let refusals = ingest::check_payment(&p.record, invoice);
                if refusals.is_empty() {
                    kept_payments.push(p.record);
                } else {
                    rejects.extend(refusals.into_iter().map(|r| r.at(&p.file, p.line)));
                }
            }
            None => rejects.push(Reject {
                reason: unknown_reason("invoice", &p.file),
                file: p.file,
                line: p.line,
                column: "invoice_id".to_string(),
                value: p.record.invoice_id.clone(),
            }),
        }
    }
    let mut kept_events = Vec::new();
    for e in events {
        match &e.record.invoice_id {
            Some(inv) if !known_invoices.contains_key(inv.as_str()) => rejects.push(Reject {
                file: e.file,
                line: e.line,
                column: "invoice_id".to_string(),
                value: inv.clone(),
                reason: "no invoice with this id".to_string(),
            }),
            _ => kept_events.push(e.record),
        }
    }
    rejects.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));

    let customers: Vec<Patch<Customer>> = customers.into_iter().map(|c| c.record).collect();
    let c = store.merge_customers(&customers)?;
    let i = store.merge_invoices(&kept_invoices)?;
    let p = store.upsert_payments(&kept_payments)?;
    let e = store.insert_events(&kept_events)?;
    // Rewritten on every ingest (header only when nothing was refused), so
    // it never shows the rejects of an earlier one; files refused as a
    // whole are listed first.
    let rejects_path = home.dir.join("rejects.csv");
    let rows: Vec<Reject> = file_errors
        .iter()
        .map(ingest::IngestError::reject)
        .chain(rejects.iter().cloned())
        .collect();
    ingest::write_rejects(&rejects_path, &rows)
        .with_context(|| format!("cannot write {}", rejects_path.display()))?;
    let file_errors: Vec<String> = file_errors.iter().map(ToString::to_string).collect();
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "customers": c, "invoices": i, "payments": p, "events_new": e,
                "rejected": rejects.len(),
                "rejects_file": (!rows.is_empty()).then(|| rejects_path.display().to_string()),
                "file_errors": file_errors,
            }))?
        ),
        Format::Human => {
            for err in &file_errors {
                eprintln!("error: {err}");
            }
            println!(
                "customers: {} new, {} updated, {} unchanged",
                c.inserted, c.updated, c.unchanged
            );
            println!(
                "invoices:  {} new, {} updated, {} unchanged",
                i.inserted, i.updated, i.unchanged
            );
            println!(
                "payments:  {} new, {} updated, {} unchanged",
                p.inserted, p.updated, p.unchanged
            );
            println!("events:    {e} new");
            for r in &rejects {
                eprintln!("rejected: {r}");
            }
            if !rejects.is_empty() {
                println!(
                    "{} row(s) rejected and kept in {}; fix them and ingest again",
                    rejects.len(),
                    rejects_path.display()
                );
            }
            if !file_errors.is_empty() {
                println!(
                    "{} file(s) not loaded (errors above); the other files were loaded",
                    file_errors.len()
                );
            }
        }
    }
    Ok(if rejects.is_empty() && file_errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

// ---------------------------------------------------------------- run

pub struct Loaded {
    pub policy: Policy,
    pub templates: collect_delivery::message::Templates,
    /// The Git revision (`-dirty` when the policy folder has changes).
    pub revision: Option<String>,
    /// The bundle revision of the policy folder (policy + templates +
    /// manifest), recorded on every action.
    pub bundle: Option<String>,
}

pub fn load_policy(policy: &Path) -> Result<Loaded> {
    let compiled = policy_files::load(policy)?;
    let templates = home::templates_for(policy)?;
    let revisions = crate::revisions::Revisions::of(policy);
    Ok(Loaded {
        policy: compiled,
        templates,
        revision: revisions.git_recorded(),
        bundle: revisions.bundle_revision,
    })
}

fn runtime<'a>(
    home: &Home,
    loaded: &'a Loaded,
    scorer: &'a dyn RiskScorer,
    mailer: LocalMailer<'a>,
    pay_links: &'a collect_delivery::message::PayLinks,
    at: Option<NaiveTime>,
) -> Result<Runtime<'a>> {
    let mut options = home.sweep_options(loaded.revision.clone(), at)?;
    options.bundle_revision = loaded.bundle.clone();
    Ok(Runtime {
        sweeper: Sweeper {
            policy: &loaded.policy,
            scorer,
            templates: &loaded.templates,
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

/// How many of a run's records `collect run` keeps to list them.
const RUN_KEEP_RECORDS: usize = 20_000;

/// How `collect run` runs its day (its flags).
pub struct RunFlags {
    pub dry_run: bool,
    pub at: Option<NaiveTime>,
    pub wait: bool,
    pub backfill: bool,
}

pub fn run(
    home: &Home,
    policy: &Path,
    date: NaiveDate,
    flags: &RunFlags,
    format: Format,
) -> Result<ExitCode> {
    let RunFlags {
        dry_run,
        at,
        wait,
        backfill,
    } = *flags;
    let loaded = load_policy(policy)?;
    let store = home.store()?;
    if let Some(last) = crate::runtime::last_swept_day(&store)?
        && date < last
        && !backfill
    {
        bail!(
            "refusing to sweep {date}: this home was last swept on {last}, and a sweep of an \
             earlier day would record (and send) actions dated {date} after those of later days. \
             To go on, sweep {last} or a later day (running {last} again finishes anything it \
             left). To re-decide {date} anyway, add --backfill (README: \"Backfilling a past day\")"
        );
    }
    let outbox = home.outbox();
    let pay_links = home.pay_links()?;
    let scorer = crate::model_cmd::scorer(home)?;
    let mut rt = runtime(
        home,
        &loaded,
        scorer.as_dyn(),
        LocalMailer::Outbox(&outbox),
        &pay_links,
        at,
    )?;
    // The report lists tasks and approvals one by one up to this many
    // records; a larger sweep reports their counts (`collect tasks` lists
    // them), so its memory does not grow with the book.
    rt.keep_records = RUN_KEEP_RECORDS;
    let report = rt.run_day_waiting(&store, date, dry_run, wait)?;
    match format {
        Format::Json => {
            eprintln!("scorer: {}", scorer.describe());
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Format::Human => {
            print!("{}", describe_run(&report, date, home));
            println!("scorer: {}", scorer.describe());
        }
    }
    Ok(
        if report.failed.is_empty() && report.plan.unprocessable.is_empty() {
            ExitCode::SUCCESS
        } else {
            if matches!(format, Format::Human) {
                eprintln!(
                    "error: {} message(s) failed and {} customer(s) were set aside; the rest of the sweep is done (see above)",
                    report.failed.len(),
                    report.plan.unprocessable.len()
                );
            }
            ExitCode::FAILURE
        },
    )
}

fn describe_run(report: &RunReport, date: NaiveDate, home: &Home) -> String {
    let plan = &report.plan;
    let mut out = String::new();
    let verb = if report.dry_run { "would send" } else { "sent" };
    let _ = writeln!(
        out,
        "Sweep of {date}{}: {} open invoice(s)",
        if report.dry_run {
            " (dry run: nothing recorded or sent)"
        } else {
            ""
        },
        plan.open_invoices
    );
    if report.dry_run {
        for m in &plan.messages {
            let _ = writeln!(
                out,
                "  {verb} {} `{}` to customer {} for {}",
                m.channel,
                m.template,
                m.customer_id,
                m.invoice_ids.join(", ")
            );
        }
    } else {
        for m in &report.sent {
            let _ = writeln!(
                out,
                "  {verb} {} `{}` to {} ({}) for {}",
                m.channel,
                m.template,
                m.customer_id,
                m.to,
                m.invoices.join(", ")
            );
        }
    }
    for r in &plan.records {
        match r.status {
            ActionStatus::AwaitingApproval => {
                let _ = writeln!(
                    out,
                    "  awaiting approval: {} for {} ({})",
                    r.label, r.invoice_id, r.action_id
                );
            }
            ActionStatus::Planned if r.channel == Channel::Call => {
                let _ = writeln!(
                    out,
                    "  call task: {} for {} ({})",
                    r.label, r.invoice_id, r.action_id
                );
            }
            ActionStatus::Deferred | ActionStatus::Skipped => {
                // The note already says "deferred: …" or "skipped: …".
                let _ = writeln!(
                    out,
                    "  {} for {}: {}",
                    r.label,
                    r.invoice_id,
                    r.note.as_deref().unwrap_or(r.status.as_str())
                );
            }
            _ => {}
        }
    }
    if !plan.records_complete() {
        let _ = writeln!(
            out,
            "  {} action(s) recorded: too many to list one by one here; \
             `collect tasks` lists the call tasks and the letters awaiting approval, \
             `collect audit` every action",
            plan.record_count()
        );
    }
    let mut held: BTreeMap<String, usize> = BTreeMap::new();
    for h in &plan.held {
        *held.entry(h.holds.join(" + ")).or_default() += 1;
    }
    for (why, n) in &held {
        let _ = writeln!(out, "  held: {n} invoice(s) by {why}");
    }
    for (id, reason) in &plan.approved_waiting {
        let _ = writeln!(out, "  approved, waiting: {id}: {reason}");
    }
    for id in &report.reconciled {
        let _ = writeln!(
            out,
            "  already sent before an interrupted run: {id} (recorded as sent, not sent again)"
        );
    }
    for d in &report.dropped {
        let _ = writeln!(
            out,
            "  checked before sending: {} for {} taken out of message {}: {}",
            d.action_id, d.invoice_id, d.message_id, d.reason
        );
    }
    for (id, reason) in &report.cancelled {
        let _ = writeln!(out, "  not sent: message {id}: {reason}");
    }
    for (id, reason) in &report.retry_later {
        let _ = writeln!(
            out,
            "  not sent yet: message {id}: {reason}; the next run sends it"
        );
    }
    for id in &report.in_doubt {
        let _ = writeln!(
            out,
            "  in doubt: message {id} was being sent when a run stopped; checked again on the next run"
        );
    }
    for (id, reason) in &report.failed {
        let _ = writeln!(out, "  FAILED: message {id}: {reason}");
    }
    for (customer, reason) in &plan.unprocessable {
        let _ = writeln!(
            out,
            "  SET ASIDE: customer {customer}: {reason}; everyone else was swept"
        );
    }
    if !plan.not_covered.is_empty() {
        let _ = writeln!(
            out,
            "  not covered by the policy: {} invoice(s)",
            plan.not_covered.len()
        );
    }
    let _ = writeln!(
        out,
        "{} message(s) {verb}, {} task(s), {} awaiting approval, {} deferred, {} skipped, {} held",
        if report.dry_run {
            plan.messages.len()
        } else {
            report.sent.len()
        },
        plan.tally.call_tasks,
        plan.count(ActionStatus::AwaitingApproval),
        plan.count(ActionStatus::Deferred),
        plan.count(ActionStatus::Skipped),
        plan.held.len()
    );
    if !report.dry_run && !report.sent.is_empty() {
        let _ = writeln!(out, "messages are in {}", home.outbox_dir().display());
    }
    out
}

// ---------------------------------------------------------------- simulate & diff

/// One day's actions in a simulation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SimAction {
    pub date: NaiveDate,
    pub invoice_id: String,
    pub customer_id: String,
    pub label: String,
    pub status: String,
    pub segment: String,
    pub step: String,
    pub channel: String,
}

/// Replays every day in the range against an in-memory copy of the state,
/// recording actions in the copy so ladders progress, sending nothing.
pub fn replay(
    home: &Home,
    policy: &Path,
    from: NaiveDate,
    to: NaiveDate,
    progress: bool,
) -> Result<Vec<SimAction>> {
    if to < from {
        bail!("--to {to} is before --from {from}");
    }
    let loaded = load_policy(policy)?;
    let real = home.store()?;
    let store = real.copy_in_memory()?;
    let pay_links = home.pay_links()?;
    let scorer = crate::model_cmd::scorer(home)?;
    let rt = runtime(
        home,
        &loaded,
        scorer.as_dyn(),
        LocalMailer::Null,
        &pay_links,
        None,
    )?;
    let days: Vec<NaiveDate> = from.iter_days().take_while(|d| *d <= to).collect();
    let bar = if progress && days.len() > 14 {
        let bar = indicatif::ProgressBar::new(days.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} days")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_message("simulating");
        Some(bar)
    } else {
        None
    };
    let mut out = Vec::new();
    for day in days {
        let report = rt.run_day(&store, day, false)?;
        for r in &report.plan.records {
            out.push(SimAction {
                date: day,
                invoice_id: r.invoice_id.to_string(),
                customer_id: r.customer_id.to_string(),
                label: r.label.clone(),
                status: match r.status {
                    ActionStatus::Planned if r.message_id.is_some() => "sent".to_string(),
                    s => s.as_str().to_string(),
                },
                segment: r.segment.clone(),
                step: policy_lang::check::offset_text(r.step_offset),
                channel: r.channel.to_string(),
            });
        }
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(out)
}

pub fn simulate(
    home: &Home,
    policy: &Path,
    from: NaiveDate,
    to: NaiveDate,
    format: Format,
) -> Result<ExitCode> {
    use std::io::IsTerminal;
    let actions = replay(home, policy, from, to, std::io::stderr().is_terminal())?;
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&actions)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut per_day: BTreeMap<NaiveDate, BTreeMap<String, usize>> = BTreeMap::new();
    let mut per_step: BTreeMap<(String, String, String), BTreeMap<String, usize>> = BTreeMap::new();
    let mut per_channel: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for a in &actions {
        *per_day
            .entry(a.date)
            .or_default()
            .entry(a.status.clone())
            .or_default() += 1;
        *per_step
            .entry((a.segment.clone(), a.step.clone(), a.label.clone()))
            .or_default()
            .entry(a.status.clone())
            .or_default() += 1;
        *per_channel
            .entry(a.channel.clone())
            .or_default()
            .entry(a.status.clone())
            .or_default() += 1;
    }
    let fmt = |m: &BTreeMap<String, usize>| {
        m.iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("Simulation {from} to {to} (nothing sent; the real state is unchanged)");
    println!("scorer: {}", crate::model_cmd::scorer(home)?.describe());
    println!("\nPer day:");
    for (d, m) in &per_day {
        println!("  {d}  {}", fmt(m));
    }
    println!("\nPer segment and step:");
    for ((seg, step, label), m) in &per_step {
        println!("  {seg:<12} {step:<10} {label:<32} {}", fmt(m));
    }
    println!("\nPer channel:");
    for (ch, m) in &per_channel {
        println!("  {ch:<8} {}", fmt(m));
    }
    println!(
        "\n{} action(s) over {} day(s)",
        actions.len(),
        (to - from).num_days() + 1
    );
    Ok(ExitCode::SUCCESS)
}

/// One invoice two policy revisions treat differently: the replayed
/// actions only one of them takes.
#[derive(Debug, Clone)]
pub struct Difference<'a> {
    pub invoice_id: String,
    pub customer_id: String,
    pub only_old: Vec<&'a SimAction>,
    pub only_new: Vec<&'a SimAction>,
}

/// `<date> <action> (<status>)`: how a replayed action is compared and shown.
pub fn line_key(x: &SimAction) -> String {
    format!("{} {} ({})", x.date, x.label, x.status)
}

/// The invoices whose replayed actions differ, in invoice order (for every
/// format of `collect diff`).
pub fn differences<'a>(old: &'a [SimAction], new: &'a [SimAction]) -> Vec<Difference<'a>> {
    type Side<'a> = Vec<(String, &'a SimAction)>;
    let mut by_invoice: BTreeMap<&str, (&str, Side<'a>, Side<'a>)> = BTreeMap::new();
    for x in old {
        by_invoice
            .entry(&x.invoice_id)
            .or_insert_with(|| (&x.customer_id, Vec::new(), Vec::new()))
            .1
            .push((line_key(x), x));
    }
    for x in new {
        by_invoice
            .entry(&x.invoice_id)
            .or_insert_with(|| (&x.customer_id, Vec::new(), Vec::new()))
            .2
            .push((line_key(x), x));
    }
    let has = |side: &Side<'_>, k: &str| side.iter().any(|(key, _)| key == k);
    by_invoice
        .into_iter()
        .filter(|(_, (_, o, n))| {
            o.len() != n.len() || o.iter().zip(n).any(|((a, _), (b, _))| a != b)
        })
        .map(|(id, (customer, o, n))| Difference {
            invoice_id: id.to_string(),
            customer_id: customer.to_string(),
            only_old: o
                .iter()
                .filter(|(k, _)| !has(&n, k))
                .map(|(_, x)| *x)
                .collect(),
            only_new: n
                .iter()
                .filter(|(k, _)| !has(&o, k))
                .map(|(_, x)| *x)
                .collect(),
        })
        .collect()
}

pub fn diff(
    home: &Home,
    old: &Path,
    new: &Path,
    from: NaiveDate,
    to: NaiveDate,
    format: Format,
) -> Result<ExitCode> {
    let a = replay(home, old, from, to, false)?;
    let b = replay(home, new, from, to, false)?;
    // A policy decides nothing before its `effective` day: say so, rather
    // than list every invoice as "only with" the other one.
    let effective =
        |p: &Path| -> Result<Option<NaiveDate>> { Ok(policy_files::load(p)?.effective) };
    let (old_from, new_from) = (effective(old)?, effective(new)?);
    let not_in_effect = |side: &str, path: &Path, e: Option<NaiveDate>| {
        e.filter(|e| *e > from).map(|e| {
            let whole = e > to;
            format!(
                "the {side} policy {} is not in effect until {e}{}",
                path.display(),
                if whole {
                    ": it decides nothing in the whole period".to_string()
                } else {
                    format!(
                        ": it decides nothing from {from} to {}",
                        e.pred_opt().unwrap_or(e)
                    )
                }
            )
        })
    };
    let notes: Vec<String> = [
        not_in_effect("old", old, old_from),
        not_in_effect("new", new, new_from),
    ]
    .into_iter()
    .flatten()
    .collect();
    // Why one line is there with one policy only.
    let reason = |x: &SimAction, only_old: bool| -> String {
        let (other, other_from) = if only_old {
            ("new", new_from)
        } else {
            ("old", old_from)
        };
        match other_from {
            Some(e) if x.date < e => format!("the {other} policy is not in effect until {e}"),
            _ => format!("the {other} policy decides otherwise on {}", x.date),
        }
    };
    type Lines = Vec<(String, String)>;
    let differing: Vec<(String, Lines, Lines)> = differences(&a, &b)
        .into_iter()
        .map(|d| {
            let lines = |xs: &[&SimAction], only_old: bool| -> Lines {
                xs.iter()
                    .map(|x| (line_key(x), reason(x, only_old)))
                    .collect()
            };
            (
                d.invoice_id,
                lines(&d.only_old, true),
                lines(&d.only_new, false),
            )
        })
        .collect();
    let keys = |v: &Lines| -> Vec<String> { v.iter().map(|(k, _)| k.clone()).collect() };
    if format == Format::Json {
        let lines = |v: &Lines| -> Vec<serde_json::Value> {
            v.iter()
                .map(|(k, r)| serde_json::json!({"action": k, "reason": r}))
                .collect()
        };
        let v: Vec<serde_json::Value> = differing
            .iter()
            .map(|(id, o, n)| {
                let mut reasons: Vec<&String> = o.iter().chain(n.iter()).map(|(_, r)| r).collect();
                reasons.sort();
                reasons.dedup();
                serde_json::json!({
                    "invoice_id": id,
                    "only_old": keys(o),
                    "only_new": keys(n),
                    "reasons": reasons,
                    "old_lines": lines(o),
                    "new_lines": lines(n),
                })
            })
            .collect();
        let out = serde_json::json!({
            "old": old.display().to_string(),
            "new": new.display().to_string(),
            "from": from,
            "to": to,
            "old_effective": old_from,
            "new_effective": new_from,
            "notes": notes,
            "invoices": v,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} vs {} from {from} to {to}: {} invoice(s) would be treated differently",
        old.display(),
        new.display(),
        differing.len()
    );
    for n in &notes {
        println!("note: {n}");
    }
    for (id, o, n) in &differing {
        println!("\ninvoice {id}");
        for (x, why) in o {
            println!("  - {x}   (only with {}: {why})", old.display());
        }
        for (x, why) in n {
            println!("  + {x}   (only with {}: {why})", new.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------- explain an invoice

/// `collect explain WHAT`: WHAT is what an auditor holds (an invoice id or
/// the number on the letter, a Message-ID, an action id); see
/// [`crate::lookup`].
pub fn explain_invoice(
    home: &Home,
    policy: &Path,
    what: &str,
    date: Option<NaiveDate>,
    format: Format,
) -> Result<ExitCode> {
    crate::lookup::explain(home, policy, what, date, format)
}

/// The explanation of a stored invoice on a day: the decision the
/// production sweep makes, the risk behind it, and the recorded actions
/// with their audit trail.
pub struct InvoiceExplanation {
    pub json: serde_json::Value,
    pub text: String,
}

pub fn explain_stored_invoice(
    home: &Home,
    loaded: &Loaded,
    store: &SqliteStore,
    book: &collect_engine::book::Book,
    invoice_id: &str,
    date: NaiveDate,
) -> Result<InvoiceExplanation> {
    let Some(invoice) = book.invoice(invoice_id) else {
        bail!(
            "no invoice `{invoice_id}` in {}; ingest it first",
            home.db_path().display()
        );
    };
    let Some(customer) = book.customers.get(&invoice.customer_id) else {
        bail!(
            "invoice `{invoice_id}` names customer `{}`, who is not in the book",
            invoice.customer_id
        );
    };
    let stats = book.customer_stats(&customer.customer_id, date);
    let scorer = crate::model_cmd::scorer(home)?;
    let input = sweep::ScoreInput {
        book,
        invoice,
        day: date,
        stats: &stats,
    };
    let risk = scorer.as_dyn().score(&input);
    let why = scorer.explain(&input, 3);
    let facts = sweep::facts(book, customer, invoice, &stats, risk, date);
    let opts = home.sweep_options(None, None)?;
    let mut trace = loaded.policy.explain(&facts);
    // The decision shown is the production sweep's plan for that day, given
    // what is recorded now (the checks made at sending come on top).
    let customer_book = pollster::block_on(collect_delivery::ledger::Ledger::customer_book(
        store,
        &customer.customer_id,
    ))?;
    let plan = sweep::plan_sweep(&customer_book, &loaded.policy, scorer.as_dyn(), date, &opts);
    trace.plan =
        collect_delivery::rehearsal::planned_outcome(&plan, invoice_id, trace.plan.segment.clone())
            .into_day_plan();
    let recorded: Vec<&ActionRecord> = book.actions_of(invoice_id).iter().collect();
    let json = serde_json::json!({
        "invoice_id": invoice.invoice_id,
        "invoice_number": invoice.number,
        "customer_id": invoice.customer_id,
        "date": date,
        "trace": trace,
        "balance": book.balance(invoice, date),
        "open": book.is_open(invoice, date),
        "risk": risk,
        "scorer": scorer.as_dyn().name(),
        "scorer_version": scorer.as_dyn().version(),
        "risk_factors": why,
        "recorded_actions": crate::lookup::with_history(store, &recorded)?,
    });
    let mut text = String::new();
    let _ = writeln!(
        text,
        "Invoice {} (number {}, customer {})",
        invoice.invoice_id, invoice.number, invoice.customer_id
    );
    let _ = writeln!(
        text,
        "Balance on {date}: {} {} of {} {}{}",
        book.balance(invoice, date),
        invoice.currency,
        invoice.amount,
        invoice.currency,
        if book.is_open(invoice, date) {
            ""
        } else {
            " (not open: nothing to do)"
        }
    );
    let _ = writeln!(
        text,
        "Risk: {} (scorer: {})",
        risk.map_or_else(|| "missing".to_string(), |r| format!("{:.1}%", r * 100.0)),
        scorer.describe()
    );
    if !why.is_empty() {
        let _ = writeln!(
            text,
            "  top risk factors: {}",
            why.iter()
                .map(|(n, c)| format!("{n} ({c:+.3})"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    text.push_str(&trace.render());
    text.push_str(&describe_recorded(store, &recorded)?);
    Ok(InvoiceExplanation { json, text })
}

fn describe_recorded(store: &SqliteStore, recorded: &[&ActionRecord]) -> Result<String> {
    let mut out = String::new();
    let _ = writeln!(out, "\nRecorded actions for this invoice:");
    if recorded.is_empty() {
        let _ = writeln!(out, "  none yet");
    }
    for r in recorded {
        out.push_str(&crate::lookup::describe_action(store, r)?);
    }
    Ok(out)
}

// ---------------------------------------------------------------- tasks

/// The holds of `policy` that apply to the action's invoice on `day`, as
/// the sweep would evaluate them.
fn policy_holds(
    home: &Home,
    policy: &Path,
    book: &collect_engine::book::Book,
    record: &ActionRecord,
    day: NaiveDate,
) -> Result<Vec<String>> {
    let loaded = load_policy(policy)?;
    let (Some(invoice), Some(customer)) = (
        book.invoice(&record.invoice_id),
        book.customers.get(record.customer_id.as_str()),
    ) else {
        return Ok(vec![]);
    };
    let stats = book.customer_stats(&customer.customer_id, day);
    let scorer = crate::model_cmd::scorer(home)?;
    let input = sweep::ScoreInput {
        book,
        invoice,
        day,
        stats: &stats,
    };
    let risk = scorer.as_dyn().score(&input);
    let facts = sweep::facts(book, customer, invoice, &stats, risk, day);
    let decision = loaded.policy.decide(&facts);
    Ok(policy_lang::eval::bits(decision.holds)
        .filter_map(|i| loaded.policy.holds.get(i))
        .map(|h| format!("the policy's hold `{}` applies on {day}", h.name))
        .collect())
}

/// The message of an action as it would go out on `day`, rendered with the
/// templates beside `policy`: subject and text, or why it cannot be shown.
fn render_letter(
    home: &Home,
    policy: &Path,
    book: &collect_engine::book::Book,
    record: &ActionRecord,
    day: NaiveDate,
) -> Result<crate::task_view::Letter, String> {
    let loaded = load_policy(policy).map_err(|e| format!("{e:#}"))?;
    let pay_links = home.pay_links().map_err(|e| format!("{e:#}"))?;
    let rt = runtime(
        home,
        &loaded,
        &collect_engine::sweep::PriorLateRate,
        LocalMailer::Null,
        &pay_links,
        None,
    )
    .map_err(|e| format!("{e:#}"))?;
    let customer = book
        .customers
        .get(record.customer_id.as_str())
        .ok_or_else(|| format!("customer {} is not in the book", record.customer_id))?;
    let planned = collect_engine::sweep::PlannedMessage {
        message_id: record.message_id.clone().unwrap_or_default(),
        customer_id: record.customer_id.clone(),
        channel: record.channel,
        template: record.target.clone(),
        action_ids: vec![record.action_id.clone()],
        invoice_ids: vec![record.invoice_id.clone()],
        plan: None,
        tags: vec![],
    };
    let msg = rt
        .sweeper
        .compose(book, customer, &planned, day)
        .map_err(|e| e.to_string())?;
    Ok(crate::task_view::Letter {
        to: format!("{} <{}>", msg.to.name, msg.to.email),
        subject: msg.subject,
        text: msg.text,
    })
}

pub enum TaskCommand {
    List,
    /// The task, and its letter rendered with the templates beside this policy.
    Show(String, std::path::PathBuf),
    /// Approve, re-checking the holds of this policy first.
    Approve(String, std::path::PathBuf),
    Reject(String),
    Done(String),
}

pub fn tasks(
    home: &Home,
    cmd: TaskCommand,
    by: Option<&str>,
    date: NaiveDate,
    format: Format,
) -> Result<ExitCode> {
    let mut store = home.store()?;
    let approve_policy = match &cmd {
        TaskCommand::Approve(_, p) => Some(p.clone()),
        _ => None,
    };
    let (id, expected, next, verb) = match cmd {
        TaskCommand::List => {
            let open: Vec<ActionRecord> = store
                .actions()?
                .into_iter()
                .filter(|a| {
                    a.status == ActionStatus::AwaitingApproval
                        || (a.status == ActionStatus::Planned && a.channel == Channel::Call)
                })
                .collect();
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&open)?);
            } else if open.is_empty() {
                println!("no open tasks");
            } else {
                for a in &open {
                    let what = if a.status == ActionStatus::AwaitingApproval {
                        "approve or reject"
                    } else {
                        "call, then mark done"
                    };
                    println!(
                        "{}  {}  {}  invoice {} (customer {}), decided {}: {what}",
                        a.action_id, a.label, a.segment, a.invoice_id, a.customer_id, a.decided_on
                    );
                }
                println!("{} open task(s)", open.len());
            }
            return Ok(ExitCode::SUCCESS);
        }
        TaskCommand::Show(id, policy) => {
            let Some(record) = store.action(&id)? else {
                bail!("no task `{id}`; `collect tasks list` shows the open ones");
            };
            let book = store.load_book()?;
            let mut view = crate::task_view::view(&book, &record, date);
            if record.channel != Channel::Call {
                view.letter = Some(render_letter(home, &policy, &book, &record, date));
            }
            crate::task_view::print(&view, format)?;
            return Ok(ExitCode::SUCCESS);
        }
        TaskCommand::Approve(id, _) => (
            id,
            ActionStatus::AwaitingApproval,
            ActionStatus::Approved,
            "approved",
        ),
        TaskCommand::Reject(id) => (
            id,
            ActionStatus::AwaitingApproval,
            ActionStatus::Rejected,
            "rejected",
        ),
        TaskCommand::Done(id) => (id, ActionStatus::Planned, ActionStatus::Sent, "done"),
    };
    let Some(by) = by else {
        bail!("say who decides with --by NAME; it is recorded for the audit trail");
    };
    let Some(mut record) = store.action(&id)? else {
        bail!("no task `{id}`; `collect tasks list` shows the open ones");
    };
    if record.status != expected {
        bail!(
            "task `{id}` is {}, so it cannot be {verb}",
            record.status.as_str()
        );
    }
    if next == ActionStatus::Sent && record.channel != Channel::Call {
        bail!(
            "task `{id}` is a {}; only call tasks are marked done",
            record.channel
        );
    }
    if next == ActionStatus::Approved {
        // Re-check what may have changed since the sweep decided it.
        let book = store.load_book()?;
        let mut view = crate::task_view::view(&book, &record, date);
        if let Some(policy) = &approve_policy {
            match policy_holds(home, policy, &book, &record, date) {
                Ok(holds) => view.blockers.extend(holds),
                Err(e) => view.warnings.push(format!(
                    "the policy's holds were not re-checked ({e:#}); pass --policy FILE"
                )),
            }
        }
        if !view.blockers.is_empty() {
            bail!(
                "task `{id}` is not approved: {}; reject it with `collect tasks reject {id}`",
                view.blockers.join("; ")
            );
        }
        for w in &view.warnings {
            eprintln!("warning: task `{id}`: {w}");
        }
    }
    record.status = next;
    record.decided_by = Some(by.to_string());
    record.decided_at = Some(date);
    if next == ActionStatus::Sent {
        record.sent_on = Some(date);
    }
    record.note = Some(format!("{verb} by {by} on {date}"));
    store.transition(&record, &[expected], date, Some(by))?;
    println!("{id}: {verb} by {by} on {date}");
    if next == ActionStatus::Approved {
        println!("the next `collect run` sends it");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use collect_engine::domain::ActionRecord;

    fn record(status: ActionStatus, n: usize) -> ActionRecord {
        let mut r: ActionRecord = serde_json::from_value(serde_json::json!({
            "action_id": format!("act-{n}"), "invoice_id": format!("INV-{n}"),
            "customer_id": "C1", "decided_on": "2027-03-10", "scheduled_for": "2027-03-10",
            "status": "planned", "channel": "letter", "label": "letter legal-notice",
            "target": "legal-notice", "step_offset": 30, "requires_approval": true,
            "policy_name": "p", "policy_revision": "r", "git_revision": null, "rule": "p:1",
            "segment": "s", "experiment": null, "arm": null, "risk": null, "scorer": "s",
            "scorer_version": "1", "note": null, "message_id": null, "decided_by": null,
            "decided_at": null, "sent_on": null
        }))
        .unwrap();
        r.status = status;
        r
    }

    #[test]
    fn a_run_too_large_to_list_reports_counts_and_where_to_look() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::open(dir.path()).unwrap();
        let date: NaiveDate = "2027-03-10".parse().unwrap();
        // A plan absorbed part by part, as a run builds it: the tally is kept
        // whether the records are or not.
        let planner_day = |records: Vec<ActionRecord>, keep: usize| {
            let mut whole = collect_engine::sweep::SweepPlan::default();
            for r in records {
                let mut one = collect_engine::sweep::SweepPlan::default();
                one.tally.by_status.insert(r.status, 1);
                one.records.push(r);
                whole.absorb(one, keep);
            }
            whole
        };
        let records: Vec<ActionRecord> = (0..3)
            .map(|n| record(ActionStatus::AwaitingApproval, n))
            .collect();
        let listed = RunReport {
            plan: planner_day(records.clone(), usize::MAX),
            ..RunReport::default()
        };
        let text = describe_run(&listed, date, &home);
        assert!(
            text.contains("awaiting approval: letter legal-notice for INV-2"),
            "{text}"
        );
        assert!(!text.contains("too many"), "{text}");
        assert!(text.contains("3 awaiting approval"), "{text}");

        let counted = RunReport {
            plan: planner_day(records, 2),
            ..RunReport::default()
        };
        let text = describe_run(&counted, date, &home);
        assert!(!text.contains("awaiting approval: "), "{text}");
        assert!(
            text.contains("3 action(s) recorded: too many to list"),
            "{text}"
        );
        assert!(text.contains("`collect tasks`"), "{text}");
        assert!(text.contains("3 awaiting approval"), "{text}");
    }
}
