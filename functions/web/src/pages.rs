//! One handler per page and form.

use crate::App;
use crate::backend::Backend;
use crate::guard::Signed;
use crate::view::{CSS, JS, asset};
use axum::Router;
use axum::extract::{Extension, State};
use axum::response::Response;
use axum::routing::get;
use minijinja::context;
use std::sync::Arc;

pub(crate) fn routes<B: Backend>(app: Arc<App<B>>) -> Router {
    Router::new()
        .route("/", get(queue::<B>))
        .route(
            "/static/app.css",
            get(|| async { asset(CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/static/app.js",
            get(|| async { asset(JS, "text/javascript; charset=utf-8") }),
        )
        .with_state(app)
}

async fn queue<B: Backend>(
    State(app): State<Arc<App<B>>>,
    Extension(who): Extension<Signed>,
) -> Response {
    app.view.page("queue.html", &who, context! {})
}
