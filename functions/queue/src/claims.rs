//! Who is asking: the signed-in person from a Cognito ID token's claims.
//!
//! On the `/api/` routes API Gateway's JWT authorizer has verified the
//! token (signature, issuer, audience, expiry) and hands its claims to the
//! function in the request context (`requestContext.authorizer.jwt.claims`,
//! every value a string: an array claim such as `cognito:groups` arrives as
//! `"[approver admin]"`). On the browser's routes the function verifies the
//! session cookie's token itself ([`crate::signin`]) and reads the same
//! claims from it (there an array is a JSON array). Either way the same
//! rules apply here: an ID token (`token_use` = `id`), a verified email (the
//! identity written in every trail line), and one of the user pool's groups
//! (the role); no group, no access.

use serde_json::Value;

/// The user pool's groups, one per role (the template creates them).
pub const GROUPS: [&str; 4] = ["admin", "approver", "collector", "auditor"];

/// A signed-in person: the email the trail records and the group that
/// gives the role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub email: String,
    /// One of [`GROUPS`]: with several, the first of admin, approver,
    /// collector, auditor.
    pub group: &'static str,
}

/// Why a token's claims do not make a person who may use the queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error(
        "the token is not an ID token (`token_use` is `{0}`): sign in again, or send the ID token, not the access token, as `Authorization: Bearer …`"
    )]
    NotAnIdToken(String),
    #[error(
        "the token carries no email address: the user pool must have `email` as a required, readable attribute"
    )]
    NoEmail,
    #[error(
        "the email address `{0}` is not verified in the user pool: an administrator marks it verified (README, \"Adding the first users\")"
    )]
    EmailNotVerified(String),
    #[error(
        "`{0}` is in none of the groups admin, approver, collector, auditor: an administrator adds the user to one (README, \"Adding the first users\")"
    )]
    NoGroup(String),
}

/// The groups of a `cognito:groups` claim in any of the forms it arrives
/// in: a JSON array (the token itself), API Gateway's `"[a b]"`, or a
/// comma-separated or single value.
pub fn groups(claim: Option<&Value>) -> Vec<String> {
    match claim {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::String(s)) => s
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|g| !g.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn text(claims: &Value, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The work queue's person (collect-web's [`Person`](collect_web::Person):
/// the email as the id, the group's role), or why the claims are refused.
pub fn person(claims: &Value) -> Result<collect_web::Person, Refused> {
    let s = signed_in(claims)?;
    collect_web::person_from_claims(Some(&s.email), &[s.group.to_string()])
        .ok_or(Refused::NoGroup(s.email))
}

/// The person the claims name, or why they are refused.
pub fn signed_in(claims: &Value) -> Result<SignedIn, Refused> {
    match text(claims, "token_use").as_deref() {
        Some("id") => {}
        other => return Err(Refused::NotAnIdToken(other.unwrap_or("absent").to_string())),
    }
    let email = text(claims, "email")
        .filter(|e| !e.is_empty())
        .ok_or(Refused::NoEmail)?
        .to_ascii_lowercase();
    if text(claims, "email_verified").as_deref() != Some("true") {
        return Err(Refused::EmailNotVerified(email));
    }
    let member = groups(claims.get("cognito:groups"));
    let group = GROUPS
        .iter()
        .find(|g| member.iter().any(|m| m == *g))
        .ok_or_else(|| Refused::NoGroup(email.clone()))?;
    Ok(SignedIn { email, group })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(groups: Value) -> Value {
        json!({"sub": "5f1c", "token_use": "id", "email": "Ana@Example.com",
               "email_verified": "true", "cognito:groups": groups,
               "aud": "client", "iss": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_X"})
    }

    #[test]
    fn api_gateway_flattens_the_groups_into_a_bracketed_string() {
        let p = signed_in(&claims(json!("[auditor approver]"))).unwrap();
        assert_eq!(p.email, "ana@example.com");
        assert_eq!(p.group, "approver");
    }

    #[test]
    fn the_token_itself_carries_a_json_array() {
        let p = signed_in(&claims(json!(["collector"]))).unwrap();
        assert_eq!(p.group, "collector");
        let p = signed_in(&claims(json!(["collector", "admin"]))).unwrap();
        assert_eq!(p.group, "admin");
        assert_eq!(groups(Some(&json!("auditor"))), vec!["auditor"]);
        assert_eq!(groups(Some(&json!("a,b"))), vec!["a", "b"]);
    }

    #[test]
    fn no_group_is_refused_with_the_fix() {
        let e = signed_in(&claims(json!("[other]"))).unwrap_err();
        assert_eq!(e, Refused::NoGroup("ana@example.com".into()));
        assert!(e.to_string().contains("adds the user to one"));
        let mut c = claims(json!("[admin]"));
        c.as_object_mut().unwrap().remove("cognito:groups");
        assert!(matches!(signed_in(&c), Err(Refused::NoGroup(_))));
    }

    #[test]
    fn an_access_token_or_an_unverified_email_is_refused() {
        let mut c = claims(json!("[admin]"));
        c["token_use"] = json!("access");
        assert_eq!(signed_in(&c), Err(Refused::NotAnIdToken("access".into())));
        let mut c = claims(json!("[admin]"));
        c["email_verified"] = json!("false");
        assert!(matches!(signed_in(&c), Err(Refused::EmailNotVerified(_))));
        // The token's own boolean, as the cookie's verified token has it.
        c["email_verified"] = json!(true);
        assert!(signed_in(&c).is_ok());
        c.as_object_mut().unwrap().remove("email");
        assert_eq!(signed_in(&c), Err(Refused::NoEmail));
    }
}
