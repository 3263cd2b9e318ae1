//! The pages' templates (minijinja, embedded in the binary with
//! `include_str!`, every value auto-escaped: each template's name ends in
//! `.html`) and the two static files, the stylesheet and the small script.

use crate::guard::Signed;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, Value, context};
use serde::Serialize;

pub(crate) const CSS: &str = include_str!("../static/app.css");
pub(crate) const JS: &str = include_str!("../static/app.js");

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("problem.html", include_str!("../templates/problem.html")),
    ("queue.html", include_str!("../templates/queue.html")),
    ("customer.html", include_str!("../templates/customer.html")),
    ("task.html", include_str!("../templates/task.html")),
    ("explain.html", include_str!("../templates/explain.html")),
    ("bulk.html", include_str!("../templates/bulk.html")),
    ("done.html", include_str!("../templates/done.html")),
    ("audit.html", include_str!("../templates/audit.html")),
];

/// What went wrong, for the person who sees it: a title and one or more
/// sentences of what happened and what to do.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Problem {
    pub title: String,
    pub text: String,
    /// Reasons listed under the text (an approval's refused re-checks).
    pub reasons: Vec<String>,
    /// Where to go back to (the task, the list with its filter).
    pub back: Option<String>,
}

impl Problem {
    pub fn new(title: &str, text: impl Into<String>) -> Problem {
        Problem {
            title: title.to_string(),
            text: text.into(),
            reasons: Vec::new(),
            back: None,
        }
    }
}

pub(crate) struct View {
    env: Environment<'static>,
}

impl View {
    pub fn new() -> View {
        let mut env = Environment::new();
        for (name, src) in TEMPLATES {
            // The templates are part of the binary and checked by the
            // tests; one that does not parse shows as a page error.
            if let Err(e) = env.add_template(name, src) {
                tracing::error!(template = name, error = %e, "template does not parse");
            }
        }
        View { env }
    }

    /// A page for the signed-in person.
    pub fn page(&self, name: &str, who: &Signed, ctx: Value) -> Response {
        let whole = context! {
            me => context! { id => who.person.id, role => who.person.role.as_str() },
            csrf => who.csrf,
            ..ctx
        };
        match self.env.get_template(name).and_then(|t| t.render(whole)) {
            Ok(html) => Html(html).into_response(),
            Err(e) => {
                tracing::error!(template = name, error = %e, "page does not render");
                self.problem(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &Problem::new(
                        "This page could not be shown",
                        "The work queue could not draw this page. Nothing was changed. \
                         Tell whoever runs the work queue; its log names the page.",
                    ),
                    Some(who),
                )
            }
        }
    }

    /// A page saying what went wrong, with its status.
    pub fn problem(&self, status: StatusCode, p: &Problem, who: Option<&Signed>) -> Response {
        let ctx = context! {
            problem => p,
            status => status.as_u16(),
            me => who.map(|w| context! { id => w.person.id, role => w.person.role.as_str() }),
            csrf => who.map(|w| w.csrf.clone()),
        };
        let html = self
            .env
            .get_template("problem.html")
            .and_then(|t| t.render(ctx))
            .unwrap_or_else(|_| format!("<!doctype html><title>{0}</title><h1>{0}</h1>", status));
        (status, Html(html)).into_response()
    }
}

/// A static file with its type.
pub(crate) fn asset(body: &'static str, kind: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    r
}
