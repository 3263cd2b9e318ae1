#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The router's guard, without a browser: sign-in (token → session cookie,
//! 401 otherwise), the CSRF check of every POST, the role check of every
//! act, the security headers of every response, a trusted host's person,
//! and a bad filter named on the page. On a real SQLite file.

mod common;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Request, StatusCode, header};
use collect_web::{Auth, Config, Person, Role, router};
use common::{host, local};
use tower::ServiceExt as _;

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn send(app: &Router, req: Request<Body>) -> Answer {
    let r = app.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let body = to_bytes(r.into_body(), usize::MAX).await.unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn get(uri: &str, cookie: Option<&str>) -> Request<Body> {
    let mut b = Request::get(uri);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::empty()).unwrap()
}

fn post(uri: &str, cookie: &str, form: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_string()))
        .unwrap()
}

fn token_of(c: &Config) -> String {
    match &c.auth {
        Auth::LocalToken { token, .. } => token.clone(),
        Auth::Trusted => panic!("a local config"),
    }
}

/// Signs in with the token; the session cookie (`name=value`).
async fn sign_in(app: &Router, token: &str) -> String {
    let a = send(app, get(&format!("/?token={token}&kind=call"), None)).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(
        a.headers[header::LOCATION],
        "/?kind=call",
        "the token leaves the address, the rest of it stays"
    );
    let cookie = a.headers[header::SET_COOKIE].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP on 127.0.0.1: {cookie}"
    );
    cookie.split(';').next().unwrap().to_string()
}

fn csrf_in(page: &str) -> String {
    let key = "name=\"csrf-token\" content=\"";
    let start = page.find(key).expect("the page carries its CSRF token") + key.len();
    page[start..].split('"').next().unwrap().to_string()
}

fn assert_secure_headers(a: &Answer) {
    let csp = a.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("form-action 'self'"), "{csp}");
    assert_eq!(a.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(a.headers[header::REFERRER_POLICY], "no-referrer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_signed_in_and_every_post_carries_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let config = local(Role::Admin);
    let token = token_of(&config);
    let app = router(host(dir.path(), 10), config);

    for uri in ["/", "/customers/C1", "/static/app.css", "/audit.csv"] {
        let a = send(&app, get(uri, None)).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{uri}");
        assert!(a.body.contains("Sign in to the work queue"), "{}", a.body);
        assert_secure_headers(&a);
    }
    let a = send(&app, get("/?token=not-the-token", None)).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(
        a.body.contains("This sign-in link is not valid"),
        "{}",
        a.body
    );
    let a = send(&app, get("/", Some("collect_session=made-up"))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "an unknown session");

    let cookie = sign_in(&app, &token).await;
    let a = send(&app, get("/", Some(&cookie))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_secure_headers(&a);
    assert!(a.body.contains("10 items match"), "{}", a.body);
    assert!(a.body.contains("approvals: 5"), "{}", a.body);

    // A POST without the token, or with a token of another session.
    let act = "/customers/C1/tasks/act-000001-legal-notice/approve";
    let a = send(&app, post(act, &cookie, "")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body.contains("This form was refused"), "{}", a.body);
    let other = sign_in(&app, &token).await;
    let theirs = csrf_in(&send(&app, get("/", Some(&other))).await.body);
    let a = send(&app, post(act, &cookie, &format!("csrf={theirs}"))).await;
    assert_eq!(
        a.status,
        StatusCode::FORBIDDEN,
        "a token is tied to its session"
    );

    // With its token the act goes through.
    let mine = csrf_in(&send(&app, get("/", Some(&cookie))).await.body);
    let a = send(&app, post(act, &cookie, &format!("csrf={mine}"))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains("approved by ana@example.com"), "{}", a.body);
    assert!(
        a.body.contains("collect run"),
        "says when it goes out: {}",
        a.body
    );

    // A reason is required to reject; the page names the field.
    let reject = "/customers/C3/tasks/act-000003-legal-notice/reject";
    let a = send(
        &app,
        post(reject, &cookie, &format!("csrf={mine}&reason=+")),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.body.contains("Reason: this field is required"),
        "{}",
        a.body
    );

    // A bad filter is named, with the value given.
    let a = send(&app, get("/?min_balance=lots", Some(&cookie))).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.body.contains("Minimum balance: `lots` is not an amount"),
        "{}",
        a.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_reads_and_exports_but_cannot_act() {
    let dir = tempfile::tempdir().unwrap();
    let config = local(Role::Auditor);
    let token = token_of(&config);
    let app = router(host(dir.path(), 4), config);
    let cookie = sign_in(&app, &token).await;
    let page = send(&app, get("/", Some(&cookie))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("Approve the"), "{}", page.body);
    let csrf = csrf_in(&page.body);
    let a = send(
        &app,
        post(
            "/customers/C1/tasks/act-000001-legal-notice/approve",
            &cookie,
            &format!("csrf={csrf}"),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert!(a.body.contains("Your role may not do this"), "{}", a.body);
    let a = send(&app, get("/bulk", Some(&cookie))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);

    let a = send(
        &app,
        get(
            "/audit.csv?from=2027-03-01&through=2027-04-12",
            Some(&cookie),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    assert_eq!(a.body.lines().count(), 1 + 4, "{}", a.body);
    let a = send(
        &app,
        get(
            "/audit.json?from=2027-03-01&through=2027-04-12",
            Some(&cookie),
        ),
    )
    .await;
    let rows: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 4);
    let a = send(
        &app,
        get(
            "/audit.csv?from=2027-04-12&through=2027-03-01",
            Some(&cookie),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.body.contains("Through: 2027-03-01 is before 2027-04-12"),
        "{}",
        a.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_host_names_the_person() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        auth: Auth::Trusted,
        secure_cookies: true,
        key: b"the key of every instance of the function".to_vec(),
    };
    let app = router(host(dir.path(), 2), config);
    let a = send(&app, get("/", None)).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "no person, no page");

    let person =
        collect_web::person_from_claims(Some("ana@example.com"), &["collector".to_string()])
            .unwrap();
    assert_eq!(
        person,
        Person {
            id: "ana@example.com".to_string(),
            role: Role::Collector
        }
    );
    let mut req = get("/", None);
    req.extensions_mut().insert(person.clone());
    let a = send(&app, req).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains("ana@example.com"), "{}", a.body);
    let csrf = csrf_in(&a.body);
    let mut req = post(
        "/customers/C1/tasks/act-000001-legal-notice/approve",
        "",
        &format!("csrf={csrf}"),
    );
    req.extensions_mut().insert(person);
    let a = send(&app, req).await;
    assert_eq!(
        a.status,
        StatusCode::FORBIDDEN,
        "a collector does not approve letters"
    );
}
