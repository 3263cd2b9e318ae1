//! What is stored and cannot be used: a damaged item or object
//! ([`CorruptError`]), a policy bundle that is not there
//! ([`NoBundleError`]), and a record that cannot be written
//! ([`EncodeError`]).

/// A stored item or object that could not be read back: its key (or
/// `s3://` location) and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("a stored item could not be read ({key}): {damage}")]
pub struct CorruptError {
    key: String,
    damage: Damage,
}

/// What is wrong with a stored item.
#[derive(Debug, thiserror::Error)]
enum Damage {
    #[error("no `{0}` attribute")]
    NoAttribute(&'static str),
    #[error("{0}")]
    Json(#[source] serde_json::Error),
    #[error("not a map")]
    NotAMap,
    #[error("no `{0}`")]
    NoField(&'static str),
    #[error("`{field}`: {source}")]
    NotADate {
        field: &'static str,
        source: chrono::ParseError,
    },
    #[error("`{field}` `{value}`: {source}")]
    NotANumber {
        field: &'static str,
        value: String,
        source: std::num::ParseFloatError,
    },
    #[error("a mail event needs a message or an action")]
    MailEventWithoutTarget,
    #[error("named by {pointer} but missing")]
    MissingObject { pointer: &'static str },
    #[error("SHA-256 {actual}, the pointer says {expected}")]
    Digest { actual: String, expected: String },
}

impl CorruptError {
    fn new(key: impl Into<String>, damage: Damage) -> CorruptError {
        CorruptError {
            key: key.into(),
            damage,
        }
    }

    /// An item without the attribute `name` (e.g. `doc`).
    pub(crate) fn no_attribute(key: impl Into<String>, name: &'static str) -> CorruptError {
        CorruptError::new(key, Damage::NoAttribute(name))
    }

    /// A document or pointer that is not the JSON it should be.
    pub(crate) fn json(key: impl Into<String>, source: serde_json::Error) -> CorruptError {
        CorruptError::new(key, Damage::Json(source))
    }

    /// A trail line that is not a map.
    pub(crate) fn not_a_map(key: impl Into<String>) -> CorruptError {
        CorruptError::new(key, Damage::NotAMap)
    }

    /// A trail line without its field `name`.
    pub(crate) fn no_field(key: impl Into<String>, name: &'static str) -> CorruptError {
        CorruptError::new(key, Damage::NoField(name))
    }

    pub(crate) fn not_a_date(
        key: impl Into<String>,
        field: &'static str,
        source: chrono::ParseError,
    ) -> CorruptError {
        CorruptError::new(key, Damage::NotADate { field, source })
    }

    pub(crate) fn not_a_number(
        key: impl Into<String>,
        field: &'static str,
        value: impl Into<String>,
        source: std::num::ParseFloatError,
    ) -> CorruptError {
        CorruptError::new(
            key,
            Damage::NotANumber {
                field,
                value: value.into(),
                source,
            },
        )
    }

    /// A mail event that names neither a message nor an action.
    pub(crate) fn mail_event_without_target(event_id: impl Into<String>) -> CorruptError {
        CorruptError::new(event_id, Damage::MailEventWithoutTarget)
    }

    /// An object a pointer names that is not there.
    pub(crate) fn missing_object(
        location: impl Into<String>,
        pointer: &'static str,
    ) -> CorruptError {
        CorruptError::new(location, Damage::MissingObject { pointer })
    }

    /// An object whose SHA-256 is not the one its pointer gives.
    pub(crate) fn digest(
        location: impl Into<String>,
        actual: impl Into<String>,
        expected: impl Into<String>,
    ) -> CorruptError {
        CorruptError::new(
            location,
            Damage::Digest {
                actual: actual.into(),
                expected: expected.into(),
            },
        )
    }

    /// The item's key (`PK/SK`, or `s3://bucket/key`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// What is wrong with it, in words.
    pub fn reason(&self) -> String {
        self.damage.to_string()
    }
}

/// A record that could not be written as JSON: which one, and serde's
/// reason. Our records always serialize; this is a fault of this code.
#[derive(Debug, thiserror::Error)]
#[error("{what} could not be written as JSON: {source}")]
pub struct EncodeError {
    what: String,
    source: serde_json::Error,
}

impl EncodeError {
    pub(crate) fn new(what: impl Into<String>, source: serde_json::Error) -> EncodeError {
        EncodeError {
            what: what.into(),
            source,
        }
    }
}

/// The policy bundle in force is not where the functions look for it: the
/// pointer `bundles/current`, or the bundle it names, does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "policy bundle refused: s3://{bucket}/{key}{} does not exist; {}",
    .named_by.map(|p| format!(" (named by {p})")).unwrap_or_default(),
    if .named_by.is_some() { "publish the bundle again" } else { "publish a bundle first" }
)]
pub struct NoBundleError {
    bucket: String,
    key: String,
    /// The pointer that names the missing bundle (none: the pointer itself
    /// is missing).
    named_by: Option<&'static str>,
}

impl NoBundleError {
    /// The pointer `pointer` itself is missing from `bucket`.
    pub(crate) fn no_pointer(bucket: &str, pointer: &str) -> NoBundleError {
        NoBundleError {
            bucket: bucket.to_string(),
            key: pointer.to_string(),
            named_by: None,
        }
    }

    /// The bundle `key` that `pointer` names is missing from `bucket`.
    pub(crate) fn missing(bucket: &str, key: &str, pointer: &'static str) -> NoBundleError {
        NoBundleError {
            bucket: bucket.to_string(),
            key: key.to_string(),
            named_by: Some(pointer),
        }
    }

    /// The missing object, `s3://bucket/key`.
    pub fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    #[test]
    fn a_missing_bundle_says_what_to_publish() {
        assert_eq!(
            NoBundleError::no_pointer("b", "bundles/current").to_string(),
            "policy bundle refused: s3://b/bundles/current does not exist; publish a bundle first"
        );
        assert_eq!(
            NoBundleError::missing("b", "bundles/r1.tar", "bundles/current").to_string(),
            "policy bundle refused: s3://b/bundles/r1.tar (named by bundles/current) does not \
             exist; publish the bundle again"
        );
    }
}
