//! Signing in with a browser: the OAuth 2.0 authorization code flow with
//! PKCE against the user pool's sign-in pages (Cognito's managed login),
//! and the session cookie every page request carries.
//!
//! Browsers send no `Authorization` header on a link or a form, and an
//! HTTP API's JWT authorizer reads its token only from a header or a query
//! parameter (never from one cookie of the `Cookie` header), so the pages
//! cannot sit behind it. What is verified where:
//! - `/auth/login`, `/auth/callback`, `/auth/logout`, `/auth/signed-out`
//!   are public routes: they send the browser to the user pool's sign-in
//!   page and back, exchange the code for tokens at the pool's token
//!   endpoint (with the PKCE verifier, so a stolen code is worthless), and
//!   set the ID token as a cookie (`HttpOnly; Secure; SameSite=Lax`, for the
//!   token's lifetime, one hour);
//! - every other page route: this function verifies the cookie's ID token
//!   against the pool's published keys (JWKS: RS256 signature, issuer,
//!   audience = the app client, expiry, `token_use` = `id`) on every
//!   request, then [`crate::claims`] makes the person;
//! - `/api/…`: API Gateway's JWT authorizer verifies an
//!   `Authorization: Bearer <ID token>` header (same pool, same client)
//!   before the function runs; the function reads the verified claims from
//!   the request context.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The cookie that carries the ID token.
pub const ID_COOKIE: &str = "collect_id";
/// The short-lived cookie of a sign-in under way (state, PKCE verifier,
/// the page to return to).
pub const FLOW_COOKIE: &str = "collect_signin";

/// The user pool and app client the queue signs people in with.
#[derive(Debug, Clone)]
pub struct Pool {
    /// The pool's sign-in domain, e.g.
    /// `https://collect-….auth.eu-west-1.amazoncognito.com` (`SIGN_IN_URL`).
    pub sign_in_url: String,
    /// The app client (`USER_POOL_CLIENT_ID`): the tokens' audience.
    pub client_id: String,
    /// `https://cognito-idp.<region>.amazonaws.com/<pool id>`: the tokens'
    /// issuer; its keys are at `<issuer>/.well-known/jwks.json`.
    pub issuer: String,
    /// The queue's own address (`QUEUE_URL`), for the callback.
    pub queue_url: String,
}

impl Pool {
    fn callback(&self) -> String {
        format!("{}/auth/callback", self.queue_url.trim_end_matches('/'))
    }
}

/// Why a sign-in or a session cookie was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("the session's token is not valid: {0}")]
    Token(#[from] jsonwebtoken::errors::Error),
    #[error("the session's token was signed with a key the user pool does not publish")]
    UnknownKey,
    #[error("the user pool's keys or tokens could not be fetched: {0}")]
    Fetch(String),
    #[error("the sign-in page answered: {0}")]
    Denied(String),
    #[error("this sign-in was not started here or took longer than 10 minutes: start again")]
    State,
}

/// HTTPS calls to the user pool (its keys, its token endpoint).
#[allow(async_fn_in_trait)]
pub trait PoolHttp: Send + Sync {
    async fn get(&self, url: &str) -> Result<Vec<u8>, SignInError>;
    async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<Vec<u8>, SignInError>;
}

/// Verifies ID tokens against the pool's keys, fetched on first use and
/// again when a token names a key not seen yet (the pool rotated).
pub struct Verifier {
    pool: Pool,
    keys: Mutex<Option<(Arc<JwkSet>, Instant)>>,
}

impl Verifier {
    pub fn new(pool: Pool) -> Verifier {
        Verifier {
            pool,
            keys: Mutex::new(None),
        }
    }

    /// A verifier with the keys given (tests).
    pub fn with_keys(pool: Pool, keys: JwkSet) -> Verifier {
        Verifier {
            pool,
            keys: Mutex::new(Some((Arc::new(keys), Instant::now()))),
        }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    fn cached(&self) -> Option<(Arc<JwkSet>, Instant)> {
        self.keys.lock().ok().and_then(|k| k.clone())
    }

    async fn fetch(&self, http: &impl PoolHttp) -> Result<Arc<JwkSet>, SignInError> {
        let url = format!("{}/.well-known/jwks.json", self.pool.issuer);
        let bytes = http.get(&url).await?;
        let keys: JwkSet = serde_json::from_slice(&bytes)
            .map_err(|e| SignInError::Fetch(format!("{url}: {e}")))?;
        let keys = Arc::new(keys);
        if let Ok(mut k) = self.keys.lock() {
            *k = Some((keys.clone(), Instant::now()));
        }
        Ok(keys)
    }

    /// The claims of a valid ID token of this pool and client.
    pub async fn verify(&self, token: &str, http: &impl PoolHttp) -> Result<Value, SignInError> {
        let kid = jsonwebtoken::decode_header(token)?
            .kid
            .ok_or(SignInError::UnknownKey)?;
        let keys = match self.cached() {
            Some((keys, _)) if keys.find(&kid).is_some() => keys,
            // A key not seen: fetch again, at most once a minute.
            Some((keys, at)) if at.elapsed() < Duration::from_secs(60) => keys,
            _ => self.fetch(http).await?,
        };
        let jwk = keys.find(&kid).ok_or(SignInError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.pool.issuer]);
        validation.set_audience(&[&self.pool.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk)?, &validation)?;
        Ok(data.claims)
    }
}

fn random(n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
    URL_SAFE_NO_PAD.encode(bytes)
}

fn redirect(to: &str) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn set_cookie(r: &mut Response<Body>, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// A page to return to after signing in: a path on this site only.
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_string(),
        _ => "/".to_string(),
    }
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|h| h.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
}

/// `/auth/login?next=/task/…`: to the pool's sign-in page, with a fresh
/// state and PKCE challenge kept in a cookie for the callback.
pub fn login(pool: &Pool, next: Option<&str>) -> Response<Body> {
    let state = random(16);
    let verifier = random(32);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let next = URL_SAFE_NO_PAD.encode(local_path(next));
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", pool.client_id.as_str()),
        ("redirect_uri", pool.callback().as_str()),
        ("scope", "openid email"),
        ("state", state.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ])
    .unwrap_or_default();
    let mut r = redirect(&format!(
        "{}/oauth2/authorize?{query}",
        pool.sign_in_url.trim_end_matches('/')
    ));
    set_cookie(
        &mut r,
        &format!(
            "{FLOW_COOKIE}={state}.{verifier}.{next}; Path=/auth/; HttpOnly; Secure; SameSite=Lax; Max-Age=600"
        ),
    );
    r
}

#[derive(serde::Deserialize)]
struct Tokens {
    id_token: String,
}

/// `/auth/callback?code=…&state=…`: the code exchanged for tokens, the ID
/// token verified and set as the session cookie, back to the page asked for.
pub async fn callback(
    verifier: &Verifier,
    http: &impl PoolHttp,
    query: &[(String, String)],
    flow_cookie: Option<&str>,
) -> Result<(Response<Body>, Value), SignInError> {
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if let Some(e) = get("error") {
        return Err(SignInError::Denied(format!(
            "{e}: {}",
            get("error_description").unwrap_or("")
        )));
    }
    let mut parts = flow_cookie.unwrap_or("").splitn(3, '.');
    let (Some(state), Some(pkce), Some(next)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(SignInError::State);
    };
    let (Some(code), Some(given)) = (get("code"), get("state")) else {
        return Err(SignInError::State);
    };
    if state.is_empty() || given != state {
        return Err(SignInError::State);
    }
    let pool = verifier.pool();
    let token_url = format!("{}/oauth2/token", pool.sign_in_url.trim_end_matches('/'));
    let body = http
        .post_form(
            &token_url,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &pool.client_id),
                ("code", code),
                ("redirect_uri", &pool.callback()),
                ("code_verifier", pkce),
            ],
        )
        .await?;
    let tokens: Tokens = serde_json::from_slice(&body)
        .map_err(|e| SignInError::Fetch(format!("{token_url}: {e}")))?;
    let claims = verifier.verify(&tokens.id_token, http).await?;
    let next = URL_SAFE_NO_PAD
        .decode(next)
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let mut r = redirect(&local_path(next.as_deref()));
    let max_age = claims
        .get("exp")
        .and_then(Value::as_i64)
        .map(|exp| exp - chrono::Utc::now().timestamp())
        .unwrap_or(0)
        .max(0);
    set_cookie(
        &mut r,
        &format!(
            "{ID_COOKIE}={}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age={max_age}",
            tokens.id_token
        ),
    );
    set_cookie(&mut r, &clear(FLOW_COOKIE, "/auth/"));
    Ok((r, claims))
}

fn clear(name: &str, path: &str) -> String {
    format!("{name}=; Path={path}; HttpOnly; Secure; SameSite=Lax; Max-Age=0")
}

/// `/auth/logout`: the cookie cleared, and the pool's own session ended.
pub fn logout(pool: &Pool) -> Response<Body> {
    let query = serde_urlencoded::to_string([
        ("client_id", pool.client_id.as_str()),
        (
            "logout_uri",
            format!("{}/auth/signed-out", pool.queue_url.trim_end_matches('/')).as_str(),
        ),
    ])
    .unwrap_or_default();
    let mut r = redirect(&format!(
        "{}/logout?{query}",
        pool.sign_in_url.trim_end_matches('/')
    ));
    set_cookie(&mut r, &clear(ID_COOKIE, "/"));
    r
}

/// HTTPS to the user pool with hyper and rustls (the system's roots), the
/// stack the AWS SDK already links.
pub struct HyperHttp {
    client: hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        http_body_util::Full<bytes::Bytes>,
    >,
}

impl HyperHttp {
    pub fn new() -> Result<HyperHttp, SignInError> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| SignInError::Fetch(format!("the system's root certificates: {e}")))?
            .https_only()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(https);
        Ok(HyperHttp { client })
    }

    async fn send(
        &self,
        req: axum::http::Request<http_body_util::Full<bytes::Bytes>>,
    ) -> Result<Vec<u8>, SignInError> {
        use http_body_util::BodyExt as _;
        let url = req.uri().to_string();
        let fail = |e: String| SignInError::Fetch(format!("{url}: {e}"));
        let resp = tokio::time::timeout(Duration::from_secs(10), self.client.request(req))
            .await
            .map_err(|_| fail("no answer in 10 s".into()))?
            .map_err(|e| fail(e.to_string()))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| fail(e.to_string()))?
            .to_bytes()
            .to_vec();
        if !status.is_success() {
            return Err(fail(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(300)
                    .collect::<String>()
            )));
        }
        Ok(body)
    }
}

impl PoolHttp for HyperHttp {
    async fn get(&self, url: &str) -> Result<Vec<u8>, SignInError> {
        let req = axum::http::Request::get(url)
            .body(http_body_util::Full::default())
            .map_err(|e| SignInError::Fetch(format!("{url}: {e}")))?;
        self.send(req).await
    }

    async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<Vec<u8>, SignInError> {
        let body = serde_urlencoded::to_string(form).unwrap_or_default();
        let req = axum::http::Request::post(url)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(http_body_util::Full::from(body))
            .map_err(|e| SignInError::Fetch(format!("{url}: {e}")))?;
        self.send(req).await
    }
}
