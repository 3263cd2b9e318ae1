//! A setting of a function that is missing or cannot be used
//! ([`ConfigError`]): an environment variable, or a secret.

use collect_delivery::message::PayLinkError;

/// A setting of a function that is missing or cannot be used: which one
/// ([`ConfigError::setting`]: the environment variable, or the secret),
/// and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ConfigError(Setting);

#[derive(Debug, thiserror::Error)]
enum Setting {
    #[error(
        "the environment variable {variable} is not set; the function's template sets it \
         (infra/template.yaml)"
    )]
    NotSet { variable: &'static str },
    #[error("{variable} `{value}` is not a number from {min} to {max}")]
    NotInRange {
        variable: &'static str,
        value: String,
        min: u32,
        max: u32,
    },
    #[error("{variable} `{value}` is not a time like 14:00")]
    NotATime {
        variable: &'static str,
        value: String,
    },
    #[error("{variable} `{value}` is neither true nor false")]
    NotABool {
        variable: &'static str,
        value: String,
    },
    #[error("the secret {secret} has no text value; store the key as the secret's text")]
    SecretWithoutText { secret: String },
    #[error("pay links: the key in the secret {secret}: {source}")]
    PayLinkKey {
        secret: String,
        #[source]
        source: PayLinkError,
    },
    #[error("pay links: {variable}: {source}")]
    PayLinkPattern {
        variable: &'static str,
        #[source]
        source: PayLinkError,
    },
}

impl ConfigError {
    /// A required environment variable that is not set (or only blanks).
    pub fn not_set(variable: &'static str) -> ConfigError {
        ConfigError(Setting::NotSet { variable })
    }

    /// A number outside `min..=max` (or not a number) in `variable`.
    pub fn not_in_range(
        variable: &'static str,
        value: impl Into<String>,
        min: u32,
        max: u32,
    ) -> ConfigError {
        ConfigError(Setting::NotInRange {
            variable,
            value: value.into(),
            min,
            max,
        })
    }

    /// A time of day that is not `HH:MM` in `variable`.
    pub fn not_a_time(variable: &'static str, value: impl Into<String>) -> ConfigError {
        ConfigError(Setting::NotATime {
            variable,
            value: value.into(),
        })
    }

    /// A switch that is neither `true` nor `false` in `variable`.
    pub fn not_a_bool(variable: &'static str, value: impl Into<String>) -> ConfigError {
        ConfigError(Setting::NotABool {
            variable,
            value: value.into(),
        })
    }

    /// A secret stored as binary, or empty.
    pub fn secret_without_text(secret: impl Into<String>) -> ConfigError {
        ConfigError(Setting::SecretWithoutText {
            secret: secret.into(),
        })
    }

    /// The pay links cannot be made from the key in `secret` and the URL
    /// pattern in `pattern_variable`: the error says which is wrong.
    pub fn pay_links(
        secret: impl Into<String>,
        pattern_variable: &'static str,
        source: PayLinkError,
    ) -> ConfigError {
        ConfigError(match source {
            PayLinkError::BadPattern { .. } => Setting::PayLinkPattern {
                variable: pattern_variable,
                source,
            },
            _ => Setting::PayLinkKey {
                secret: secret.into(),
                source,
            },
        })
    }

    /// The setting that is wrong: an environment variable's name, or a
    /// secret's id.
    pub fn setting(&self) -> &str {
        match &self.0 {
            Setting::NotSet { variable }
            | Setting::NotInRange { variable, .. }
            | Setting::NotATime { variable, .. }
            | Setting::NotABool { variable, .. }
            | Setting::PayLinkPattern { variable, .. } => variable,
            Setting::SecretWithoutText { secret } | Setting::PayLinkKey { secret, .. } => secret,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    #[test]
    fn a_setting_is_named_with_what_is_wrong() {
        let e = ConfigError::not_set("TABLE_NAME");
        assert_eq!(e.setting(), "TABLE_NAME");
        assert!(
            e.to_string()
                .starts_with("the environment variable TABLE_NAME is not set"),
            "{e}"
        );
        let e = ConfigError::not_in_range("SHARDS", "0", 1, 4096);
        assert_eq!(e.to_string(), "SHARDS `0` is not a number from 1 to 4096");
        let e = ConfigError::pay_links(
            "pay-link-key",
            "PAY_URL_PATTERN",
            PayLinkError::BadPattern {
                pattern: "https://pay.example.com/".into(),
            },
        );
        assert_eq!(e.setting(), "PAY_URL_PATTERN");
        assert!(e.to_string().starts_with("pay links: PAY_URL_PATTERN: "));
        let e = ConfigError::pay_links("pay-link-key", "PAY_URL_PATTERN", PayLinkError::BlankKey);
        assert_eq!(e.setting(), "pay-link-key");
        assert!(std::error::Error::source(&e).is_some());
    }
}
