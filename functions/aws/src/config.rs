//! The SDK clients, built once per container, and the functions' settings
//! from their environment.
//!
//! Credentials and region come from the standard chain (on Lambda: the
//! function's role). `AWS_ENDPOINT_URL` (standard SDK configuration) points
//! every client at another endpoint, e.g. a local one for tests; S3 then
//! uses path-style addressing, which local endpoints need.

use aws_config::{BehaviorVersion, SdkConfig};

use super::error::{AwsError, ConfigError, Service};

/// One client per service, sharing one HTTP stack.
#[derive(Clone, Debug)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub ses: aws_sdk_sesv2::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl Clients {
    /// Clients from the environment (the Lambda's role and region).
    pub async fn from_env() -> Clients {
        let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
        Clients::new(&config)
    }

    /// Clients for an explicit configuration; S3 uses path-style
    /// addressing when an endpoint is set.
    pub fn new(config: &SdkConfig) -> Clients {
        let s3_config = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(config.endpoint_url().is_some())
            .build();
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            ses: aws_sdk_sesv2::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
        }
    }
}

/// A required environment variable, with an error naming it.
pub fn env(name: &'static str) -> Result<String, ConfigError> {
    env_opt(name).ok_or_else(|| ConfigError::not_set(name))
}

/// An optional environment variable.
pub fn env_opt(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A `true`/`false` switch (absent: false).
pub fn switch(name: &'static str) -> Result<bool, ConfigError> {
    match env_opt(name) {
        None => Ok(false),
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(ConfigError::not_a_bool(name, v)),
        },
    }
}

/// A number from `min` to `max` (absent: `default`).
pub fn number(name: &'static str, default: u32, min: u32, max: u32) -> Result<u32, ConfigError> {
    match env_opt(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| ConfigError::not_in_range(name, v, min, max)),
    }
}

/// A secret's text from Secrets Manager (the pay-link key).
pub async fn secret(client: &aws_sdk_secretsmanager::Client, id: &str) -> Result<String, AwsError> {
    let out = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| AwsError::sdk(Service::SecretsManager, "GetSecretValue", e))?;
    out.secret_string
        .ok_or_else(|| ConfigError::secret_without_text(id).into())
}

/// The most shards a table may be spread over (`VIRTUAL_SHARDS`), and the
/// most worker jobs of a day (`SHARDS`).
const MAX_SHARDS: u32 = 4096;

/// What every function reads from its environment (set by the template).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `TABLE_NAME`
    pub table: String,
    /// `BUCKET_NAME`: policy bundles and model artifacts.
    pub bucket: String,
    /// `SHARDS` (default 16): how many worker jobs a day's sweep is cut
    /// into (each a range of virtual shards). May change at any time.
    pub shards: u32,
    /// `VIRTUAL_SHARDS` (default: `SHARDS`, the layout of a stack created
    /// before virtual shards): the index partitions customers hash to
    /// ([`super::keys::shard_of`]), fixed with the table's layout; a
    /// change needs a re-index ([`super::reshard`]).
    pub virtual_shards: u32,
}

impl Settings {
    pub fn from_env() -> Result<Settings, ConfigError> {
        let shards = match env_opt("SHARDS") {
            Some(s) => s
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_SHARDS).contains(n))
                .ok_or_else(|| ConfigError::not_in_range("SHARDS", s, 1, MAX_SHARDS))?,
            None => 16,
        };
        let virtual_shards = match env_opt("VIRTUAL_SHARDS") {
            Some(s) => s
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_SHARDS).contains(n))
                .ok_or_else(|| ConfigError::not_in_range("VIRTUAL_SHARDS", s, 1, MAX_SHARDS))?,
            None => shards,
        };
        Ok(Settings {
            table: env("TABLE_NAME")?,
            bucket: env("BUCKET_NAME")?,
            shards,
            virtual_shards,
        })
    }
}

/// A schedule's `scheduled_time` (EventBridge Scheduler's
/// `<aws.scheduler.scheduled-time>`) that is not an RFC 3339 timestamp.
#[derive(Debug, thiserror::Error)]
#[error("scheduled_time `{value}` is not a timestamp: {source}")]
pub struct ScheduledTimeError {
    value: String,
    source: chrono::ParseError,
}

/// The instant a schedule names in its `scheduled_time`, with its offset
/// (the scheduler writes UTC).
pub fn scheduled_time(
    value: &str,
) -> Result<chrono::DateTime<chrono::FixedOffset>, ScheduledTimeError> {
    chrono::DateTime::parse_from_rfc3339(value).map_err(|source| ScheduledTimeError {
        value: value.to_string(),
        source,
    })
}
