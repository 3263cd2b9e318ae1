//! The queue function's side of the tests: the function as a container
//! starts it over a fixture's stack, and the HTTP API events (payload 2.0)
//! it receives on `/api/…`, with the JWT authorizer's claims in their
//! request context.

use axum::body::{Body, to_bytes};
use axum::http::Response;
use chrono::{DateTime, Utc};
use collect_aws::config::Clients;
use collect_queue::app::Queue;
use collect_queue::backend::SweepSchedule;
use collect_queue::signin::{Pool, PoolHttp, SignInError, Verifier};
use serde_json::{Value, json};

use crate::Fixture;

/// The queue function's clock: Monday 2027-04-12, after the day's sweep.
pub fn clock() -> DateTime<Utc> {
    "2027-04-12T15:00:00Z"
        .parse()
        .unwrap_or_else(|e| panic!("the clock: {e}"))
}

/// `/api/…` never calls the user pool (API Gateway verified the token).
pub struct NoPool;

impl PoolHttp for NoPool {
    async fn get(&self, url: &str) -> Result<Vec<u8>, SignInError> {
        panic!("the user pool was called: {url}")
    }
    async fn post_form(&self, url: &str, _: &[(&str, &str)]) -> Result<Vec<u8>, SignInError> {
        panic!("the user pool was called: {url}")
    }
}

/// The queue function as a container starts it, over the fixture's stack
/// (with `clients`, e.g. a metered DynamoDB client), and the scorer it
/// loaded (`name version`).
pub async fn queue_function(
    w: &Fixture,
    clients: &Clients,
    csrf_key: Vec<u8>,
) -> Result<(Queue<NoPool>, String), String> {
    let started = collect_queue::start::router(
        clients,
        &w.settings(),
        &w.send_settings(),
        SweepSchedule {
            expression: "cron(0 6 ? * MON-FRI *)".into(),
            timezone: "UTC".into(),
        },
        csrf_key,
        clock,
    )
    .await
    .map_err(|e| format!("the queue function does not start: {e}"))?;
    Ok((
        Queue {
            router: started.router,
            verifier: Verifier::new(Pool {
                sign_in_url: "https://collect-test.auth.us-east-1.amazoncognito.com".into(),
                client_id: "queue-client".into(),
                issuer: "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Test".into(),
                queue_url: "https://api.execute-api.us-east-1.amazonaws.com".into(),
            }),
            http: NoPool,
        },
        started.scorer,
    ))
}

/// The claims API Gateway's JWT authorizer passes on: every value a
/// string, the groups as `[a b]`.
pub fn claims(email: &str, group: &str) -> Value {
    json!({"sub": format!("sub-{email}"), "token_use": "id", "email": email,
           "email_verified": "true", "cognito:groups": format!("[{group}]"),
           "aud": "queue-client", "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Test",
           "exp": "1900000000", "iat": "1800000000"})
}

/// An HTTP API (payload 2.0) event of `ANY /api/{proxy+}`, as the function
/// receives it.
pub fn event(
    method: &str,
    path_and_query: &str,
    form: Option<&str>,
    who: &Value,
) -> lambda_http::Request {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let mut headers = serde_json::Map::new();
    headers.insert(
        "host".into(),
        json!("api.execute-api.us-east-1.amazonaws.com"),
    );
    headers.insert("authorization".into(), json!("Bearer eyJ…"));
    headers.insert("accept".into(), json!("text/html"));
    if form.is_some() {
        headers.insert(
            "content-type".into(),
            json!("application/x-www-form-urlencoded"),
        );
    }
    let e = json!({
        "version": "2.0", "routeKey": "ANY /api/{proxy+}", "rawPath": path, "rawQueryString": query,
        "headers": headers,
        "body": form.unwrap_or(""),
        "requestContext": {"accountId": "123456789012", "apiId": "api",
            "authorizer": {"jwt": {"claims": who, "scopes": null}},
            "domainName": "api.execute-api.us-east-1.amazonaws.com", "domainPrefix": "api",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "192.0.2.7", "userAgent": "e2e"},
            "requestId": "req", "routeKey": "ANY /api/{proxy+}", "stage": "$default",
            "time": "12/Apr/2027:15:00:00 +0000", "timeEpoch": 1807542000000i64},
        "pathParameters": {"proxy": path.trim_start_matches("/api/")},
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&e.to_string())
        .unwrap_or_else(|err| panic!("not an HTTP API event: {err}: {e}"))
}

pub async fn body(r: Response<Body>) -> String {
    let bytes = to_bytes(r.into_body(), 8 << 20)
        .await
        .unwrap_or_else(|e| panic!("the response body: {e}"));
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Every `href="…"` of a page that starts with `prefix`.
pub fn links(html: &str, prefix: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|h| h.starts_with(prefix))
        .map(|h| h.replace("&amp;", "&"))
        .collect()
}

/// The page's CSRF token (a form's field, or the page's meta tag, which
/// pages without forms carry too).
pub fn csrf(html: &str) -> String {
    ["name=\"csrf\" value=\"", "name=\"csrf-token\" content=\""]
        .iter()
        .find_map(|m| html.split(m).nth(1))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF token in {html}"))
        .to_string()
}
