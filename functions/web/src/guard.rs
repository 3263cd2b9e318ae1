//! The middleware every request passes, in this order: sign-in
//! ([`crate::auth`]), the CSRF check of every POST, then the page; and on
//! every response the security headers (a Content-Security-Policy with no
//! inline script, `nosniff`, no referrer — the local URL carries a token).

use crate::App;
use crate::auth::{self, Auth};
use crate::backend::Backend;
use crate::view::Problem;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use collect_delivery::work::Person;
use std::sync::Arc;

/// The policy of every page: scripts and styles only from `/static/`, forms
/// only to this site, never framed (the letter preview sets its own).
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; \
     base-uri 'none'";

/// The largest form accepted (a note, a reason, a filter: a few KiB).
const MAX_FORM: usize = 64 * 1024;

/// The signed-in person of a request, and the CSRF token its forms carry.
#[derive(Debug, Clone)]
pub(crate) struct Signed {
    pub person: Person,
    pub csrf: String,
}

pub(crate) async fn guard<B: Backend>(
    State(app): State<Arc<App<B>>>,
    req: Request,
    next: Next,
) -> Response {
    let mut resp = match sign_in(&app, req, next).await {
        Ok(r) | Err(r) => r,
    };
    let h = resp.headers_mut();
    let set = |h: &mut HeaderMap, name: header::HeaderName, v: &'static str| {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(v));
        }
    };
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::CACHE_CONTROL, "no-store");
    resp
}

async fn sign_in<B: Backend>(app: &App<B>, req: Request, next: Next) -> Result<Response, Response> {
    let refused = |status, title: &str, text: String| {
        app.view
            .problem(status, &Problem::new(title, text), None)
            .into_response()
    };
    let (person, subject) = match &app.config.auth {
        Auth::LocalToken { token, person } => {
            if let Some(given) = query_value(req.uri().query(), "token") {
                if !auth::same(&given, token) {
                    return Err(refused(
                        StatusCode::UNAUTHORIZED,
                        "This sign-in link is not valid",
                        "Open the link `collect serve` printed when it started (its first line, \
                         http://127.0.0.1:…/?token=…). A link of an earlier `collect serve` no \
                         longer works."
                            .to_string(),
                    ));
                }
                // The token is shown once: a session cookie from now on,
                // and the same page without the token in its address.
                let session = app.sessions.open();
                let name = auth::session_cookie_name(&app.config.key);
                let mut cookie = format!("{name}={session}; Path=/; HttpOnly; SameSite=Strict");
                if app.config.secure_cookies {
                    cookie.push_str("; Secure");
                }
                let rest = without_query_value(req.uri().query(), "token");
                let to = match rest {
                    Some(q) => format!("{}?{q}", req.uri().path()),
                    None => req.uri().path().to_string(),
                };
                let mut r = Redirect::to(&to).into_response();
                if let Ok(v) = HeaderValue::from_str(&cookie) {
                    r.headers_mut().insert(header::SET_COOKIE, v);
                }
                return Err(r);
            }
            let name = auth::session_cookie_name(&app.config.key);
            let session = req
                .headers()
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(|h| auth::cookie(h, &name))
                .filter(|s| app.sessions.knows(s))
                .map(str::to_string);
            match session {
                Some(s) => (person.clone(), s),
                None => {
                    return Err(refused(
                        StatusCode::UNAUTHORIZED,
                        "Sign in to the work queue",
                        "This work queue only answers the person who started it. Open the link \
                         `collect serve` printed when it started (its first line, \
                         http://127.0.0.1:…/?token=…) in this browser."
                            .to_string(),
                    ));
                }
            }
        }
        Auth::Trusted => match req.extensions().get::<Person>() {
            Some(p) => (p.clone(), p.id.clone()),
            None => {
                return Err(refused(
                    StatusCode::UNAUTHORIZED,
                    "Sign in to the work queue",
                    "You are not signed in, or your account is in no group of the work queue \
                     (collector, approver, auditor, admin). Sign in through your company's \
                     sign-in page; if it keeps sending you here, ask an administrator to add you \
                     to a group."
                        .to_string(),
                ));
            }
        },
    };
    let csrf = auth::csrf_token(&app.config.key, &subject);
    let mut req = req;
    if req.method() == Method::POST {
        let (parts, body) = req.into_parts();
        let bytes = to_bytes(body, MAX_FORM).await.map_err(|_| {
            refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                "This form is too long",
                "What was sent is longer than a form of the work queue can be (64 KiB). \
                 Shorten the note or reason and send it again."
                    .to_string(),
            )
        })?;
        let given = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
            .ok()
            .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "csrf").map(|(_, v)| v));
        let ok = given.is_some_and(|g| auth::csrf_ok(&app.config.key, &subject, &g));
        if !ok {
            return Err(refused(
                StatusCode::FORBIDDEN,
                "This form was refused",
                "The form did not carry this session's security token, so nothing was done. \
                 It may come from another site, or from a page opened before the work queue \
                 was restarted: go back, reload the page and send the form again."
                    .to_string(),
            ));
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    req.extensions_mut().insert(Signed { person, csrf });
    Ok(next.run(req).await)
}

/// The first value of `name` in a query string.
fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query?)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The query string without `name` (None when nothing is left).
fn without_query_value(query: Option<&str>, name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query?).ok()?;
    let rest: Vec<_> = pairs.into_iter().filter(|(k, _)| k != name).collect();
    if rest.is_empty() {
        return None;
    }
    serde_urlencoded::to_string(rest).ok()
}
