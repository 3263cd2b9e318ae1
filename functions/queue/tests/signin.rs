#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Signing in on AWS, end to end inside the function: the browser's trip to
//! the user pool and back (state, PKCE, the token exchange), the session
//! cookie's ID token verified against the pool's keys, the JWT authorizer's
//! claims on `/api/…`, and who reaches the router. The user pool is a fake
//! that signs with a test key (tests/fixtures); the router is a stub that
//! says who asked.

use std::sync::Mutex;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::Extension;
use axum::http::{Response, StatusCode, header};
use axum::routing::{get, post};
use collect_queue::app::Queue;
use collect_queue::signin::{self, Pool, PoolHttp, SignInError, Verifier};
use collect_web::Person;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Test";
const CLIENT: &str = "queue-client";

fn pool() -> Pool {
    Pool {
        sign_in_url: "https://collect-x.auth.eu-west-1.amazoncognito.com".into(),
        client_id: CLIENT.into(),
        issuer: ISSUER.into(),
        queue_url: "https://abc.execute-api.eu-west-1.amazonaws.com".into(),
    }
}

fn keys() -> JwkSet {
    let n = include_str!("fixtures/test-signing-key.n").trim();
    serde_json::from_value(json!({"keys": [
        {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "k1", "n": n, "e": "AQAB"}
    ]}))
    .unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims(groups: &[&str]) -> Value {
    json!({"sub": "5f1c", "token_use": "id", "email": "ana@example.com",
           "email_verified": true, "cognito:groups": groups, "aud": CLIENT,
           "iss": ISSUER, "exp": now() + 3600, "iat": now()})
}

fn token(claims: &Value, kid: &str) -> String {
    let key = EncodingKey::from_rsa_pem(include_bytes!("fixtures/test-signing-key.pem")).unwrap();
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.into());
    jsonwebtoken::encode(&h, claims, &key).unwrap()
}

/// The user pool's endpoints: the keys, and a token endpoint answering
/// with `id_token` (and recording what it was sent).
struct FakePool {
    id_token: String,
    posted: Mutex<Vec<Vec<(String, String)>>>,
}

impl PoolHttp for FakePool {
    async fn get(&self, url: &str) -> Result<Vec<u8>, SignInError> {
        assert_eq!(url, format!("{ISSUER}/.well-known/jwks.json"));
        Ok(serde_json::to_vec(&keys()).unwrap())
    }
    async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<Vec<u8>, SignInError> {
        assert_eq!(url, format!("{}/oauth2/token", pool().sign_in_url));
        self.posted.lock().unwrap().push(
            form.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        Ok(
            serde_json::to_vec(&json!({"id_token": self.id_token, "access_token": "a",
            "token_type": "Bearer", "expires_in": 3600}))
            .unwrap(),
        )
    }
}

fn fake(id_token: String) -> FakePool {
    FakePool {
        id_token,
        posted: Mutex::new(Vec::new()),
    }
}

fn stub_router() -> Router {
    async fn who(Extension(p): Extension<Person>) -> String {
        format!("{} as {}", p.id, p.role.as_str())
    }
    Router::new()
        .route("/", get(who))
        .route("/tasks/{id}", get(who))
        .route("/tasks/{id}/approve", post(who))
}

fn queue(id_token: String) -> Queue<FakePool> {
    Queue {
        router: stub_router(),
        verifier: Verifier::new(pool()),
        http: fake(id_token),
    }
}

/// An API Gateway HTTP API (payload 2.0) event, as the function receives it.
fn event(
    method: &str,
    path: &str,
    query: &str,
    cookie: Option<&str>,
    jwt: Option<Value>,
) -> lambda_http::Request {
    let mut ctx = json!({"accountId": "123456789012", "apiId": "abc", "domainName": "abc.execute-api.eu-west-1.amazonaws.com",
        "domainPrefix": "abc", "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
        "sourceIp": "192.0.2.1", "userAgent": "test"}, "requestId": "r1",
        "routeKey": "$default", "stage": "$default", "time": "06/Dec/2026:08:00:00 +0000", "timeEpoch": 0});
    if let Some(claims) = jwt {
        ctx["authorizer"] = json!({"jwt": {"claims": claims, "scopes": null}});
        ctx["routeKey"] = json!("ANY /api/{proxy+}");
    }
    let mut e = json!({"version": "2.0", "routeKey": ctx["routeKey"], "rawPath": path,
        "rawQueryString": query, "headers": {"host": "abc.execute-api.eu-west-1.amazonaws.com"},
        "requestContext": ctx, "isBase64Encoded": false});
    if let Some(c) = cookie {
        e["cookies"] = json!([c]);
    }
    lambda_http::request::from_str(&e.to_string()).unwrap()
}

async fn text(r: Response<Body>) -> String {
    String::from_utf8(to_bytes(r.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap()
}

fn location(r: &Response<Body>) -> String {
    r.headers()[header::LOCATION].to_str().unwrap().to_string()
}

fn set_cookies(r: &Response<Body>) -> Vec<String> {
    r.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_browser_signs_in_with_the_code_flow_and_its_cookie_reaches_the_pages() {
    let id = token(&claims(&["approver"]), "k1");
    let q = queue(id.clone());
    // A page without a session: to the sign-in, remembering the page.
    let r = q.handle(event("GET", "/tasks/t1", "x=1", None, None)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/auth/login?next=%2Ftasks%2Ft1%3Fx%3D1");
    // The sign-in: to the pool's page with a state and a PKCE challenge.
    let r = q
        .handle(event(
            "GET",
            "/auth/login",
            "next=%2Ftasks%2Ft1",
            None,
            None,
        ))
        .await;
    let to = location(&r);
    assert!(
        to.starts_with("https://collect-x.auth.eu-west-1.amazoncognito.com/oauth2/authorize?"),
        "{to}"
    );
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(to.split_once('?').unwrap().1).unwrap();
    let get = |k: &str| query.iter().find(|(n, _)| n == k).unwrap().1.clone();
    assert_eq!(get("client_id"), CLIENT);
    assert_eq!(get("response_type"), "code");
    assert_eq!(get("code_challenge_method"), "S256");
    assert_eq!(
        get("redirect_uri"),
        "https://abc.execute-api.eu-west-1.amazonaws.com/auth/callback"
    );
    let flow = set_cookies(&r).pop().unwrap();
    assert!(
        flow.contains("HttpOnly") && flow.contains("Secure") && flow.contains("SameSite=Lax"),
        "{flow}"
    );
    let flow_value = flow.split(';').next().unwrap().to_string();
    // Back from the pool with a code and the state: tokens, the cookie, the page.
    let r = q
        .handle(event(
            "GET",
            "/auth/callback",
            &format!("code=c0de&state={}", get("state")),
            Some(&flow_value),
            None,
        ))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", text(r).await);
    assert_eq!(location(&r), "/tasks/t1");
    let posted = q.http.posted.lock().unwrap().pop().unwrap();
    let verifier = posted
        .iter()
        .find(|(k, _)| k == "code_verifier")
        .unwrap()
        .1
        .clone();
    // The verifier sent is the one the challenge was made of.
    use base64::Engine as _;
    use sha2::Digest as _;
    assert_eq!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes())),
        get("code_challenge")
    );
    let session = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("collect_id="))
        .unwrap();
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(attr), "{session}");
    }
    // The pages answer the cookie's person.
    let cookie = format!("{}={id}", signin::ID_COOKIE);
    let r = q
        .handle(event("GET", "/tasks/t1", "", Some(&cookie), None))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(text(r).await, "ana@example.com as approver");
}

#[tokio::test]
async fn a_callback_with_another_state_or_an_error_is_refused() {
    let q = queue(token(&claims(&["approver"]), "k1"));
    let r = q
        .handle(event(
            "GET",
            "/auth/callback",
            "code=c&state=forged",
            Some("collect_signin=real.v.Lw"),
            None,
        ))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(text(r).await.contains("not started here"));
    assert!(
        q.http.posted.lock().unwrap().is_empty(),
        "no code was exchanged"
    );
    let r = q
        .handle(event(
            "GET",
            "/auth/callback",
            "error=access_denied&error_description=no",
            None,
            None,
        ))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn cookies_that_are_not_the_pools_valid_id_tokens_are_refused() {
    let q = queue(String::new());
    let mut expired = claims(&["admin"]);
    expired["exp"] = json!(now() - 600);
    let mut other_client = claims(&["admin"]);
    other_client["aud"] = json!("another-client");
    let mut other_pool = claims(&["admin"]);
    other_pool["iss"] = json!("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Other");
    let valid = token(&claims(&["admin"]), "k1");
    let tampered = {
        let mut parts: Vec<String> = valid.split('.').map(str::to_string).collect();
        parts[1] = token(&claims(&["admin", "x"]), "k1")
            .split('.')
            .nth(1)
            .unwrap()
            .to_string();
        parts.join(".")
    };
    for (what, t) in [
        ("expired", token(&expired, "k1")),
        ("another client", token(&other_client, "k1")),
        ("another pool", token(&other_pool, "k1")),
        ("an unknown key", token(&claims(&["admin"]), "k2")),
        ("tampered", tampered),
        ("garbage", "not.a.token".to_string()),
    ] {
        let cookie = format!("{}={t}", signin::ID_COOKIE);
        let r = q.handle(event("GET", "/", "", Some(&cookie), None)).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{what}");
        assert!(location(&r).starts_with("/auth/login"), "{what}");
        // A form sent with it does nothing and says so.
        let r = q
            .handle(event("POST", "/tasks/t1/approve", "", Some(&cookie), None))
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert!(text(r).await.contains("nothing was done"), "{what}");
    }
    let cookie = format!("{}={valid}", signin::ID_COOKIE);
    let r = q.handle(event("GET", "/", "", Some(&cookie), None)).await;
    assert_eq!(text(r).await, "ana@example.com as admin");
}

#[tokio::test]
async fn the_authorizers_claims_on_api_routes_make_the_person() {
    let q = queue(String::new());
    // As API Gateway hands them over: every value a string.
    let claims = json!({"token_use": "id", "email": "Bo@Example.com", "email_verified": "true",
        "cognito:groups": "[auditor collector]", "aud": CLIENT, "iss": ISSUER});
    let r = q
        .handle(event(
            "GET",
            "/api/tasks/t9",
            "",
            None,
            Some(claims.clone()),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(text(r).await, "bo@example.com as collector");
    // No group: refused, with what to do.
    let mut none = claims.clone();
    none["cognito:groups"] = json!("[guests]");
    let r = q
        .handle(event("GET", "/api/tasks/t9", "", None, Some(none)))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let page = text(r).await;
    assert!(
        page.contains("in none of the groups admin, approver, collector, auditor"),
        "{page}"
    );
}

#[tokio::test]
async fn signing_out_clears_the_cookie_and_ends_the_pools_session() {
    let q = queue(String::new());
    let r = q.handle(event("GET", "/auth/logout", "", None, None)).await;
    let to = location(&r);
    assert!(to.starts_with("https://collect-x.auth.eu-west-1.amazoncognito.com/logout?client_id=queue-client&logout_uri="), "{to}");
    assert!(
        set_cookies(&r)
            .iter()
            .any(|c| c.starts_with("collect_id=;") && c.contains("Max-Age=0"))
    );
    assert_eq!(signin::local_path(Some("//evil.example")), "/");
    assert_eq!(signin::local_path(Some("https://evil.example")), "/");
    assert_eq!(signin::local_path(Some("/tasks?x=1")), "/tasks?x=1");
}
