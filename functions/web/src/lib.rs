//! collect-web: the work queue of the collections team in the browser.
//!
//! One axum [`Router`] ([`router`]) over the `Ledger` port, served two
//! ways by the same code: locally by `collect serve` on the SQLite home
//! (hyper on 127.0.0.1), on AWS by the queue Lambda (`lambda_http`) on
//! DynamoDB. The host gives it a [`Backend`] (how to reach the ledger, the
//! kept bundles, the sweeper previews compose with, the desk's settings,
//! today) and a [`Config`] (how people sign in: [`Auth`]).
//!
//! What lives here:
//! - [`auth`]: sign-in (local token → session cookie, or a person the host
//!   verified), CSRF tokens;
//! - `guard`: the middleware every request passes (authentication, the CSRF
//!   check of every POST, the security headers of every response);
//! - `pages`: one handler per page and form, each calling the desk
//!   (`collect_delivery::work`) or the explanation model
//!   (`collect_delivery::explain`), never the ledger's records directly;
//! - `view`: the minijinja templates (embedded, auto-escaped) and the
//!   CSS and script served from `/static/` (no CDN, no build step).
//!
//! Every page works without script; the script only adds conveniences
//! (a confirmation before a bulk approval is submitted, …).

pub mod auth;
pub mod backend;
mod guard;
mod pages;
mod view;

pub use auth::{Auth, Config, person_from_claims};
pub use backend::{Backend, BackendError};
pub use collect_delivery::work::{Person, Role};

use axum::Router;
use std::sync::Arc;

/// What every handler shares: the host's backend, its configuration, the
/// templates and the local sessions.
pub(crate) struct App<B> {
    pub backend: B,
    pub config: Config,
    pub view: view::View,
    pub sessions: auth::Sessions,
}

/// The one router: every page, form, download and static file, behind
/// the sign-in, CSRF and header middleware. `collect serve` serves it with
/// `axum::serve`; the queue Lambda with `lambda_http::run`.
pub fn router<B: Backend>(backend: B, config: Config) -> Router {
    let app = Arc::new(App {
        backend,
        config,
        view: view::View::new(),
        sessions: auth::Sessions::default(),
    });
    pages::routes(app.clone()).layer(axum::middleware::from_fn_with_state(app, guard::guard::<B>))
}
