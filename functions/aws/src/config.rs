//! The SDK clients, built once per container, and the functions' settings
//! from their environment.
//!
//! Credentials and region come from the standard chain (on Lambda: the
//! function's role). `AWS_ENDPOINT_URL` (standard SDK configuration) points
//! every client at another endpoint, e.g. a local one for tests; S3 then
//! uses path-style addressing, which local endpoints need.

use aws_config::{BehaviorVersion, SdkConfig};

use super::AwsError;

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
pub fn env(name: &str) -> Result<String, AwsError> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| AwsError::Config(format!("the environment variable {name} is not set")))
}

/// An optional environment variable.
pub fn env_opt(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A secret's text from Secrets Manager (the pay-link key).
pub async fn secret(client: &aws_sdk_secretsmanager::Client, id: &str) -> Result<String, AwsError> {
    let out = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| AwsError::sdk("SecretsManager", "GetSecretValue", e))?;
    out.secret_string
        .ok_or_else(|| AwsError::Config(format!("the secret {id} has no text value")))
}

/// What every function reads from its environment (set by the template).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `TABLE_NAME`
    pub table: String,
    /// `BUCKET_NAME`: policy bundles and model artifacts.
    pub bucket: String,
    /// `SHARDS` (default 16).
    pub shards: u32,
}

impl Settings {
    pub fn from_env() -> Result<Settings, AwsError> {
        let shards = match env_opt("SHARDS") {
            Some(s) => s
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=4096).contains(n))
                .ok_or_else(|| {
                    AwsError::Config(format!("SHARDS `{s}` is not a number from 1 to 4096"))
                })?,
            None => 16,
        };
        Ok(Settings {
            table: env("TABLE_NAME")?,
            bucket: env("BUCKET_NAME")?,
            shards,
        })
    }
}
