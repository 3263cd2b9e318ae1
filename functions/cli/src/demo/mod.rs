//! The demo behind `collect demo`: a quarter of collections on a generated
//! book, in a minute, for a newcomer.
//!
//! 1. A fresh state in `<home>/demo/` (its own `collect.db`, outbox and
//!    `bundles/`, the bundle revision its actions record;
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
//!
//! The modules: [`generate`] the book, [`customers`] their answers,
//! [`simulation`] the days, [`summary`] each run's figures, [`uplift`] the
//! experiments against the planted effect, [`render`] the report.

mod customers;
mod generate;
#[cfg(test)]
mod planted;
mod render;
mod simulation;
mod summary;
mod uplift;

pub use render::DemoReport;

use crate::args::DEFAULT_POLICY;
use crate::home::{self, Home, HomeError};
use crate::policy_files::TemplateDir;
use crate::policy_load::{LoadError, load_policy};
use crate::report::{self, ReportError};
use crate::runtime::Runtime;
use crate::standard::{self, WriteOutError};
use collect_delivery::delivery::Sweeper;
use collect_delivery::mailer::LocalMailer;
use collect_delivery::message::{PayLinks, Templates};
use collect_engine::sweep::{PriorLateRate, SweepOptions};
use collect_sqlite::store::{SqliteStore, Store, StoreError};
use policy_lang::Policy;
use simulation::{SimulationError, Tally, simulate};
use std::path::{Path, PathBuf};
use summary::summarize;
use uplift::what_worked;

/// Why the demo could not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot remove the previous demo's {}", path.display())]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The reactive baseline needs templates the main policy's folder lacks.
    #[error(
        "the demo's reactive policy does not load with the templates beside {}:\n{rendered}",
        main.display()
    )]
    Reactive { main: PathBuf, rendered: String },
    #[error("the reactive run stopped unexpectedly")]
    ReactiveRunStopped,
    #[error(transparent)]
    Home(#[from] HomeError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    WriteOut(#[from] WriteOutError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Simulation(#[from] SimulationError),
    #[error(transparent)]
    Report(#[from] ReportError),
}

/// The baseline the demo compares with: chase only once an invoice is late.
const REACTIVE: &str = include_str!("reactive.policy");
const REACTIVE_FILE: &str = "demo/reactive.policy";
pub(super) const REACTIVE_SUMMARY: &str = "reactive: nothing before the due date; firm notice at due + 7d, \
                                call at due + 15d, legal letter (with approval) at due + 30d";

pub(super) const PAST_DUE_FORMULA: &str =
    "past-due share = balance past its due date / total open balance (invoices of the quarter)";
/// The one DSO definition (`collect_engine::effect::kpi::dso`), as the report
/// prints it.
pub(super) const DSO_FORMULA: &str = "DSO = open receivables at the end of the quarter / amount invoiced in \
                           the quarter x days in the quarter (as in `collect report`)";
pub(super) const ON_TIME_FORMULA: &str =
    "on-time payment rate = invoices of the quarter paid in full by their due date / all of them";

/// What the demo did: its report, and how many messages failed (as with
/// `collect run`, a message the mail port refused fails the command).
pub struct Played {
    pub report: DemoReport,
    pub failed: usize,
}

/// The whole demo in `<home_root>/demo/`: steps 1 to 6 above. With
/// `progress`, a progress bar on a terminal.
pub fn play(
    home_root: &Path,
    policy: &Path,
    seed: u64,
    customers: u32,
    progress: bool,
) -> Result<Played, DemoError> {
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
    let policy = if !policy.exists() && policy == Path::new(DEFAULT_POLICY) {
        embedded = standard::write_out(&home.dir.join("policy"), true)?;
        embedded.as_path()
    } else {
        policy
    };
    let loaded = load_policy(policy)?;
    crate::policy_load::keep_bundle(&home, policy, &loaded);
    let reactive = reactive_policy(policy)?;
    let generated = generate::generate(seed, customers);
    let pay_links = home.pay_links()?;
    let bar = progress.then(progress_bar).flatten();

    if let Some(b) = &bar {
        b.set_message("simulating");
    }
    // The two runs share nothing but read-only inputs: one thread each.
    let mut store = home.store()?;
    let (proactive, (memory, baseline)) = std::thread::scope(|scope| -> Result<_, DemoError> {
        let reactive_run = scope.spawn(|| -> Result<(SqliteStore, Tally), DemoError> {
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
            .map_err(|_| DemoError::ReactiveRunStopped)??;
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
    let effect = report::build(
        &book,
        Some(generate::quarter_start()),
        Some(generate::quarter_end()),
        Some(home.settings.send_time_utc.clone()),
    )?;
    let html = home.dir.join(REPORT_FILE);
    report::write_html(&html, &effect)?;
    let worked = what_worked(&generated, &book, &effect);
    let mut demo = DemoReport::new(
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
    demo.report_html = html.display().to_string();
    demo.what_worked = worked;
    Ok(Played {
        report: demo,
        failed,
    })
}

/// The effectiveness report the demo leaves in its home folder.
const REPORT_FILE: &str = "report.html";

/// Removes the previous demo's database, outbox, kept bundle revisions and
/// report, and nothing else.
fn clean(home: &Home) -> Result<(), DemoError> {
    remove(&home.dir.join(REPORT_FILE))?;
    let db = home.db_path();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = db.clone().into_os_string();
        name.push(suffix);
        remove(&PathBuf::from(name))?;
    }
    remove(&home.outbox_dir())?;
    remove(&home.dir.join("bundles"))
}

fn remove(path: &Path) -> Result<(), DemoError> {
    let removed = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
    };
    removed.map_err(|source| DemoError::Remove {
        path: path.to_path_buf(),
        source,
    })
}

/// The reactive baseline, using the templates beside the main policy.
fn reactive_policy(main: &Path) -> Result<Policy, DemoError> {
    let catalog = TemplateDir::beside(main);
    policy_lang::load(REACTIVE, REACTIVE_FILE, Some(&catalog))
        .map(|(p, _)| p)
        .map_err(|diags| DemoError::Reactive {
            main: main.to_path_buf(),
            rendered: policy_lang::diagnostic::render(&diags, REACTIVE, false),
        })
}

pub(super) fn runtime<'a>(
    home: &Home,
    policy: &'a Policy,
    templates: &'a Templates,
    pay_links: &'a PayLinks,
    mailer: LocalMailer<'a>,
    revision: Option<String>,
    bundle: Option<String>,
) -> Result<Runtime<'a>, HomeError> {
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
            grace: home::GRACE,
            lease_ttl: home::LEASE_TTL,
        },
        mailer,
        keep_records: usize::MAX,
        simulated: true,
    })
}

/// A progress bar of both runs' days, on a terminal only.
fn progress_bar() -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reactive_policy_loads_with_the_standard_templates() {
        let main = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policy/standard-net30.policy");
        assert!(reactive_policy(&main).is_ok());
    }
}
