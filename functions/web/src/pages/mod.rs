//! One handler per page and form. Each reads what it shows through the
//! desk (`collect_delivery::work::Desk`) or the explanation model, on a
//! blocking thread with the request's ledger ([`with_desk!`]): the
//! `Ledger` futures are not `Send`, so they are driven by
//! `Handle::block_on` there, for SQLite and DynamoDB alike.
//!
//! - `queue`: the queue, its filters, paging and the bulk approval;
//! - `task`: a task, its letter preview (HTML in a sandboxed frame, PDF)
//!   and the forms of every act;
//! - `customer`: a customer's context and the end-of-ladder decision;
//! - `explain`: the explanation of an invoice's day;
//! - `audit`: the audit downloads (CSV, JSON).

mod audit;
mod customer;
mod explain;
mod fields;
mod queue;
mod task;

use crate::App;
use crate::backend::{Backend, BackendError};
use crate::guard::Signed;
use crate::view::{CSS, JS, Problem, asset};
use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use collect_delivery::work::DeskError;
use std::sync::Arc;

pub(crate) type Shared<B> = Arc<App<B>>;

pub(crate) fn routes<B: Backend>(app: Shared<B>) -> Router {
    Router::new()
        .route("/", get(queue::list::<B>))
        .route(
            "/bulk",
            get(queue::confirm::<B>).post(queue::approve_all::<B>),
        )
        .route("/customers/{cid}", get(customer::show::<B>))
        .route("/customers/{cid}/decide", post(customer::decide::<B>))
        .route("/customers/{cid}/tasks/{tid}", get(task::show::<B>))
        .route(
            "/customers/{cid}/tasks/{tid}/preview.html",
            get(task::preview_html::<B>),
        )
        .route(
            "/customers/{cid}/tasks/{tid}/letter.pdf",
            get(task::letter_pdf::<B>),
        )
        .route("/customers/{cid}/tasks/{tid}/{act}", post(task::act::<B>))
        .route(
            "/customers/{cid}/invoices/{iid}/why",
            get(explain::show::<B>),
        )
        .route("/audit", get(audit::page::<B>))
        .route("/audit.csv", get(audit::csv::<B>))
        .route("/audit.json", get(audit::json::<B>))
        .route(
            "/static/app.css",
            get(|| async { asset(CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/static/app.js",
            get(|| async { asset(JS, "text/javascript; charset=utf-8") }),
        )
        .fallback(not_found::<B>)
        .with_state(app)
}

async fn not_found<B: Backend>(
    axum::extract::State(app): axum::extract::State<Shared<B>>,
    axum::extract::Extension(who): axum::extract::Extension<Signed>,
) -> Response {
    app.view.problem(
        StatusCode::NOT_FOUND,
        &Problem::new(
            "There is no such page",
            "The address does not name a page of the work queue. Start again from the queue.",
        ),
        Some(&who),
    )
}

/// Why a page or an act did not happen, said to the person.
#[derive(Debug)]
pub(crate) enum Failure {
    Desk(DeskError),
    Backend(BackendError),
    /// A page of its own: a title, text, status.
    Said(StatusCode, Problem),
}

impl From<DeskError> for Failure {
    fn from(e: DeskError) -> Self {
        Failure::Desk(e)
    }
}

impl From<BackendError> for Failure {
    fn from(e: BackendError) -> Self {
        Failure::Backend(e)
    }
}

impl Failure {
    /// A form field that is wrong: names the field, says what it needs.
    pub fn field(field: &str, reason: impl Into<String>) -> Failure {
        Failure::Said(
            StatusCode::BAD_REQUEST,
            Problem::new(
                "Nothing was done: a field needs a fix",
                format!("{field}: {}", reason.into()),
            ),
        )
    }

    pub fn status_and_problem(&self) -> (StatusCode, Problem) {
        match self {
            Failure::Said(s, p) => (*s, p.clone()),
            Failure::Backend(e) => {
                tracing::error!(error = %e, "backend");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Problem::new(
                        "The work queue cannot reach its data",
                        "Nothing was changed. Try again in a minute; if it keeps happening, \
                         tell whoever runs the work queue (its log says what failed).",
                    ),
                )
            }
            Failure::Desk(e) => desk_problem(e),
        }
    }
}

fn desk_problem(e: &DeskError) -> (StatusCode, Problem) {
    let text = e.to_string();
    match e {
        DeskError::NoTask { .. } | DeskError::NoCustomer { .. } => {
            (StatusCode::NOT_FOUND, Problem::new("Not found", text))
        }
        DeskError::NotAllowed { .. } => (
            StatusCode::FORBIDDEN,
            Problem::new(
                "Your role may not do this",
                format!("Nothing was done: {text}."),
            ),
        ),
        DeskError::WrongStatus { .. } | DeskError::NotToday { .. } => (
            StatusCode::CONFLICT,
            Problem::new(
                "Nothing was done",
                format!("{text}. Someone may have acted on it already; look at the task again."),
            ),
        ),
        DeskError::Blocked { reasons, .. } => {
            let mut p = Problem::new(
                "The letter was not approved",
                "The re-check before approving found reasons not to send it now. It stays \
                 in the queue; reject it, or wait until these change:",
            );
            p.reasons = reasons.clone();
            (StatusCode::CONFLICT, p)
        }
        DeskError::Invalid { field, reason } => (
            StatusCode::BAD_REQUEST,
            Problem::new(
                "Nothing was done: a field needs a fix",
                format!("{}: {reason}", fields::label(field)),
            ),
        ),
        DeskError::CountChanged { .. } => (
            StatusCode::CONFLICT,
            Problem::new("Nothing was approved", text),
        ),
        DeskError::Policy(_) | DeskError::Ledger(_) => {
            tracing::error!(error = %e, "desk");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Problem::new(
                    "The work queue cannot reach its data",
                    format!("Nothing was changed: {text}. Try again in a minute."),
                ),
            )
        }
    }
}

/// The page of a failure, with a way back.
pub(crate) fn failed<B>(app: &App<B>, who: &Signed, f: &Failure, back: Option<String>) -> Response {
    let (status, mut p) = f.status_and_problem();
    if let Some(b) = back {
        p.back = Some(b);
    }
    app.view.problem(status, &p, Some(who))
}

/// Runs `$body` on a blocking thread with `$ledger` (the request's ledger),
/// `$desk` (the desk over it, for today) and `$h` (the runtime handle, to
/// `block_on` the ledger's futures). Evaluates to `Result<_, Failure>`.
macro_rules! with_desk {
    ($app:expr, |$a:ident, $ledger:ident, $desk:ident, $h:ident| $body:expr) => {{
        let app = $app.clone();
        let handle = tokio::runtime::Handle::current();
        match tokio::task::spawn_blocking(move || {
            let $a = &*app;
            let $h = &handle;
            let ledger = $a.backend.ledger()?;
            let $ledger = &ledger;
            let policy = collect_delivery::explain::Recorded::new(
                $a.backend.bundles(),
                $a.backend.bundle_scratch(),
            );
            let settings = $a.backend.desk_settings();
            let $desk =
                collect_delivery::work::Desk::new($ledger, &policy, &settings, $a.backend.today());
            let _ = (&$desk, $h, $ledger);
            $body
        })
        .await
        {
            Ok(r) => r,
            Err(e) => Err($crate::pages::Failure::Said(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                $crate::view::Problem::new(
                    "This page could not be shown",
                    format!("The work queue stopped while drawing it ({e}). Nothing was changed."),
                ),
            )),
        }
    }};
}
pub(crate) use with_desk;

/// A path segment, escaped for a link.
pub(crate) fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
