//! Who is asking, and may they: every request is signed in before any page
//! runs.
//!
//! - [`Auth::LocalToken`] (`collect serve`): the URL printed at start
//!   carries `?token=…`; the first request with it gets a session cookie
//!   (`HttpOnly; SameSite=Strict`, `Secure` when the host says so) and is
//!   redirected to the same page without the token. A request with neither
//!   is refused with 401 and a page saying how to sign in.
//! - [`Auth::Trusted`] (the queue Lambda): the host verified the person
//!   (API Gateway's JWT authorizer; the claims' email and
//!   `cognito:groups`, see [`person_from_claims`]) and inserts the
//!   [`Person`] as a request extension. A request without one is refused.
//!
//! Every form carries a CSRF token: an HMAC of the session (locally) or of
//! the person's id (AWS) with the host's key, checked on every POST.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use collect_delivery::work::{Person, Role};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashSet;
use std::sync::Mutex;

/// The prefix of the session cookie's name (`collect serve`).
pub const SESSION_COOKIE: &str = "collect_session";

/// The session cookie's name for this key: `collect_session_<8 chars>`.
/// Browsers share cookies between the ports of one host, so two `collect
/// serve` on one machine (say an approver's and an auditor's) each need
/// their own name.
pub(crate) fn session_cookie_name(key: &[u8]) -> String {
    let tag = csrf_token(key, "session cookie name");
    format!("{SESSION_COOKIE}_{}", tag.get(..8).unwrap_or("0"))
}

/// How people sign in.
#[derive(Debug, Clone)]
pub enum Auth {
    /// One person on one machine: the token of the printed URL, then a
    /// session cookie.
    LocalToken { token: String, person: Person },
    /// The host has verified the person and inserted a [`Person`] as a
    /// request extension (the Lambda, from verified JWT claims).
    Trusted,
}

/// What the host decides about the router.
#[derive(Debug, Clone)]
pub struct Config {
    pub auth: Auth,
    /// Cookies carry `Secure` (served over HTTPS: on AWS).
    pub secure_cookies: bool,
    /// The key CSRF tokens (and local sessions) are signed with: random per
    /// `collect serve`; on AWS the same for every instance of the function.
    pub key: Vec<u8>,
}

impl Config {
    /// `collect serve`: a local token for `person`, a random key, no
    /// `Secure` cookies (plain HTTP on 127.0.0.1).
    pub fn local(person: Person) -> Config {
        Config {
            auth: Auth::LocalToken {
                token: random_token(),
                person,
            },
            secure_cookies: false,
            key: random_token().into_bytes(),
        }
    }
}

/// A random URL-safe token of 256 bits.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The person the verified claims of an identity provider name: `email` is
/// the identity written in trails; the role is the strongest of the
/// groups (`admin` > `approver` > `collector` > `auditor`; group names
/// compared without case). `None` when there is no email or no known group:
/// such a person is refused (403), never given a default role.
pub fn person_from_claims(email: Option<&str>, groups: &[String]) -> Option<Person> {
    let email = email.map(str::trim).filter(|e| !e.is_empty())?;
    let rank = |r: &Role| match r {
        Role::Admin => 3,
        Role::Approver => 2,
        Role::Collector => 1,
        Role::Auditor => 0,
    };
    let role = groups
        .iter()
        .filter_map(|g| Role::parse(&g.trim().to_ascii_lowercase()))
        .max_by_key(rank)?;
    Some(Person {
        id: email.to_string(),
        role,
    })
}

/// The local sessions (ids given out after the token was shown).
#[derive(Default)]
pub(crate) struct Sessions {
    ids: Mutex<HashSet<String>>,
}

impl Sessions {
    pub(crate) fn open(&self) -> String {
        let id = random_token();
        if let Ok(mut ids) = self.ids.lock() {
            ids.insert(id.clone());
        }
        id
    }

    pub(crate) fn knows(&self, id: &str) -> bool {
        self.ids.lock().map(|ids| ids.contains(id)).unwrap_or(false)
    }
}

/// The CSRF token of a session (or of a person on AWS).
pub(crate) fn csrf_token(key: &[u8], subject: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(b"csrf\0");
    mac.update(subject.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Whether `given` is the CSRF token of `subject` (compared in constant time).
pub(crate) fn csrf_ok(key: &[u8], subject: &str, given: &str) -> bool {
    let Ok(given) = URL_SAFE_NO_PAD.decode(given.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return false;
    };
    mac.update(b"csrf\0");
    mac.update(subject.as_bytes());
    mac.verify_slice(&given).is_ok()
}

/// The value of cookie `name` in a `Cookie` header.
pub(crate) fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// Constant-time comparison of two tokens.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_is_tied_to_its_subject() {
        let key = b"k".repeat(32);
        let t = csrf_token(&key, "session-a");
        assert!(csrf_ok(&key, "session-a", &t));
        assert!(!csrf_ok(&key, "session-b", &t));
        assert!(!csrf_ok(&key, "session-a", ""));
        assert!(!csrf_ok(b"another key", "session-a", &t));
    }

    #[test]
    fn claims_give_the_strongest_group_and_the_email() {
        let p = person_from_claims(
            Some("ana@example.com"),
            &["Auditor".to_string(), "approver".to_string()],
        );
        assert_eq!(
            p.map(|p| (p.id, p.role)),
            Some(("ana@example.com".to_string(), Role::Approver))
        );
        assert!(person_from_claims(Some("x@y"), &["guests".to_string()]).is_none());
        assert!(person_from_claims(None, &["admin".to_string()]).is_none());
    }

    #[test]
    fn cookie_header_is_read_by_name() {
        assert_eq!(
            cookie("a=1; collect_session=xyz; b=2", SESSION_COOKIE),
            Some("xyz")
        );
        assert_eq!(cookie("a=1", SESSION_COOKIE), None);
    }
}
