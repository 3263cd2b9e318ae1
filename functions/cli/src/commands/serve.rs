//! `collect serve`: the work queue in the browser, on this home — the same
//! pages the queue Lambda serves on AWS (`collect_web::router`), here on
//! the SQLite home ([`crate::web_home`]), bound to 127.0.0.1 only.

use crate::args::{DEFAULT_POLICY, parse_date};
use crate::home::Home;
use crate::web_home::HomeBackend;
use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use collect_delivery::work::{DeskSettings, NextSweep, Person, Role};
use collect_web::{Auth, Config};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Serve the work queue on 127.0.0.1: letters awaiting approval, calls,
/// addresses to fix, with previews, explanations and every act.
///
/// The first line printed is the address to open, with a random token
/// (`http://127.0.0.1:PORT/?token=…`); without it every request is refused.
/// Every act is recorded in the trail as NAME (`--as`).
#[derive(clap::Args)]
pub struct Args {
    /// The port on 127.0.0.1; 0 picks a free one (the printed address says which).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Who you are: the name recorded in the trail of everything you do.
    #[arg(long = "as", value_name = "NAME")]
    who: String,
    /// Your role: collector (calls), approver (letters), auditor (read
    /// only, audit downloads) or admin (everything).
    #[arg(long, default_value = "admin", value_parser = parse_role)]
    role: Role,
    /// The policy file whose templates compose the previews (as `collect run`).
    #[arg(long, default_value = DEFAULT_POLICY)]
    policy: PathBuf,
    /// The day acts are dated, YYYY-MM-DD; defaults to today.
    #[arg(value_parser = parse_date, long)]
    date: Option<NaiveDate>,
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s)
        .ok_or_else(|| format!("`{s}` is not a role; use collector, approver, auditor or admin"))
}

pub fn run(home: &Path, args: &Args) -> Result<ExitCode> {
    let who = args.who.trim();
    if who.is_empty() {
        bail!("--as: say who you are (a name or email); it is written in the trail of every act");
    }
    let home = Home::open_existing(home)?;
    let backend = HomeBackend {
        bundles: home.bundles(),
        home,
        policy: args.policy.clone(),
        settings: DeskSettings {
            next_sweep: NextSweep::Local,
            ..DeskSettings::default()
        },
        date: args.date,
    };
    let config = Config::local(Person {
        id: who.to_string(),
        role: args.role,
    });
    let Auth::LocalToken { token, .. } = &config.auth else {
        bail!("a local server signs in with a token");
    };
    let token = token.clone();
    // Pages that fail say so to the person; the why goes to stderr.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the server's runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
        let port = listener.local_addr()?.port();
        // The address alone on stdout (a script reads its first line); the
        // hint for people on stderr.
        let mut out = std::io::stdout().lock();
        writeln!(out, "http://127.0.0.1:{port}/?token={token}")?;
        out.flush()?;
        drop(out);
        eprintln!(
            "Open the address above in your browser: it signs you in as {who} ({}). \
             Stop with Ctrl-C.",
            args.role
        );
        let app = collect_web::router(backend, config);
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("the server stopped")
    })?;
    Ok(ExitCode::SUCCESS)
}
