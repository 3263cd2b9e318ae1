//! One request of the HTTP API: sign-in routes, then the signed-in person
//! (from the JWT authorizer's claims on `/api/…`, from the verified session
//! cookie elsewhere), then `collect-web`'s router with that person.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, Response, StatusCode, header};
use collect_web::Person;
use lambda_http::RequestExt as _;
use lambda_http::request::RequestContext;
use serde_json::Value;
use tower::ServiceExt as _;

use crate::claims::{self, Refused};
use crate::signin::{self, PoolHttp, SignInError, Verifier};

/// Routes under this prefix sit behind the HTTP API's JWT authorizer; the
/// router sees the path without it.
pub const API_PREFIX: &str = "/api";

/// What the function serves with, built once per container.
pub struct Queue<H> {
    pub router: Router,
    pub verifier: Verifier,
    pub http: H,
}

/// The claims API Gateway's JWT authorizer verified, if the route has it.
fn authorizer_claims(req: &lambda_http::Request) -> Option<Value> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => {
            let jwt = ctx.authorizer.as_ref()?.jwt.as_ref()?;
            let claims: serde_json::Map<String, Value> = jwt
                .claims
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                .collect();
            Some(Value::Object(claims))
        }
        _ => None,
    }
}

fn page(status: StatusCode, title: &str, text: &str, link: Option<(&str, &str)>) -> Response<Body> {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let link = link
        .map(|(href, label)| format!("<p><a href=\"{}\">{}</a></p>", esc(href), esc(label)))
        .unwrap_or_default();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} · Work queue</title></head><body><main><h1>{t}</h1><p>{x}</p>{link}</main></body></html>",
        t = esc(title),
        x = esc(text)
    );
    let mut r = Response::new(Body::from(html));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'; base-uri 'none'"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn refused(e: &Refused) -> Response<Body> {
    page(
        StatusCode::FORBIDDEN,
        "You cannot use the work queue yet",
        &e.to_string(),
        Some(("/auth/logout", "Sign out")),
    )
}

fn query_pairs(req: &lambda_http::Request) -> Vec<(String, String)> {
    req.uri()
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default()
}

impl<H: PoolHttp> Queue<H> {
    /// Serves one request; every failure is a page for the person.
    pub async fn handle(&self, req: lambda_http::Request) -> Response<Body> {
        let path = req.uri().path().to_string();
        if let Some(route) = path.strip_prefix("/auth/") {
            return self.auth(route, &req).await;
        }
        let person = if let Some(claims) = authorizer_claims(&req) {
            claims::person(&claims)
        } else {
            match signin::cookie(req.headers(), signin::ID_COOKIE) {
                Some(token) => match self.verifier.verify(&token, &self.http).await {
                    Ok(claims) => claims::person(&claims),
                    Err(e) => {
                        tracing::info!(error = %e, "session cookie refused");
                        return self.sign_in_first(&req);
                    }
                },
                None => return self.sign_in_first(&req),
            }
        };
        let person = match person {
            Ok(p) => p,
            Err(e) => return refused(&e),
        };
        self.serve(req, person).await
    }

    /// Runs the router for `person` (the path without [`API_PREFIX`]).
    pub async fn serve(&self, req: lambda_http::Request, person: Person) -> Response<Body> {
        let (mut parts, body) = req.into_parts();
        if let Some(rest) = parts.uri.path().strip_prefix(API_PREFIX) {
            let rest = if rest.is_empty() { "/" } else { rest };
            let uri = match parts.uri.query() {
                Some(q) => format!("{rest}?{q}"),
                None => rest.to_string(),
            };
            if let Ok(uri) = uri.parse() {
                parts.uri = uri;
            }
        }
        let mut req = Request::from_parts(parts, Body::from(body.to_vec()));
        req.extensions_mut().insert(person);
        match self.router.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }

    fn sign_in_first(&self, req: &lambda_http::Request) -> Response<Body> {
        let here = match req.uri().query() {
            Some(q) => format!("{}?{q}", req.uri().path()),
            None => req.uri().path().to_string(),
        };
        let login = format!(
            "/auth/login?{}",
            serde_urlencoded::to_string([("next", here.as_str())]).unwrap_or_default()
        );
        if req.method() == Method::GET || req.method() == Method::HEAD {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::SEE_OTHER;
            if let Ok(v) = HeaderValue::from_str(&login) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            return r;
        }
        page(
            StatusCode::UNAUTHORIZED,
            "Sign in again",
            "Your session ended (sessions last an hour), so nothing was done. Sign in again, \
             then send the form again.",
            Some((login.as_str(), "Sign in")),
        )
    }

    async fn auth(&self, route: &str, req: &lambda_http::Request) -> Response<Body> {
        let pool = self.verifier.pool();
        let query = query_pairs(req);
        match route {
            "login" => {
                let next = query
                    .iter()
                    .find(|(k, _)| k == "next")
                    .map(|(_, v)| v.as_str());
                signin::login(pool, next)
            }
            "callback" => {
                let flow = signin::cookie(req.headers(), signin::FLOW_COOKIE);
                match signin::callback(&self.verifier, &self.http, &query, flow.as_deref()).await {
                    Ok((r, claims)) => match claims::person(&claims) {
                        Ok(p) => {
                            tracing::info!(role = p.role.as_str(), "signed in");
                            r
                        }
                        Err(e) => refused(&e),
                    },
                    Err(e @ (SignInError::State | SignInError::Denied(_))) => page(
                        StatusCode::BAD_REQUEST,
                        "Signing in did not finish",
                        &e.to_string(),
                        Some(("/auth/login", "Sign in again")),
                    ),
                    Err(e) => {
                        tracing::error!(error = %e, "sign-in failed");
                        page(
                            StatusCode::BAD_GATEWAY,
                            "Signing in failed",
                            "The user pool could not be reached to finish signing in. Try \
                             again in a minute; if it keeps failing, the cloud team finds the \
                             reason in the queue function's log.",
                            Some(("/auth/login", "Sign in again")),
                        )
                    }
                }
            }
            "logout" => signin::logout(pool),
            "signed-out" => page(
                StatusCode::OK,
                "You are signed out",
                "You are signed out of the work queue.",
                Some(("/auth/login", "Sign in again")),
            ),
            _ => page(
                StatusCode::NOT_FOUND,
                "No such page",
                "This sign-in address does not exist.",
                Some(("/", "The work queue")),
            ),
        }
    }
}
