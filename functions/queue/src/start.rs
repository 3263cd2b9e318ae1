//! The container's start: the settings the template passes, the stack's
//! bundle, model and keys loaded once, the router built.
//!
//! Environment (set by `infra/template.yaml`): `TABLE_NAME`, `BUCKET_NAME`,
//! `SHARDS` and the sweep worker's composing settings (`SENDER_ADDRESS`,
//! `COMPANY_*`, `PAY_URL_PATTERN`, `PAY_LINK_SECRET_ID`, `SEND_TIME_UTC`:
//! a preview is what the worker would send); `SWEEP_SCHEDULE` and
//! `SCHEDULE_TIMEZONE` (when approved letters go out); `QUEUE_KEY_SECRET_ID`
//! (the key forms' CSRF tokens are signed with, the same in every
//! container); `USER_POOL_ISSUER`, `USER_POOL_CLIENT_ID`, `SIGN_IN_URL` and
//! `QUEUE_URL` (sign-in).

use chrono::{DateTime, Utc};
use collect_aws::artifacts::Artifacts;
use collect_aws::config::{Clients, Settings, env, env_opt, secret};
use collect_aws::sweep::{SendSettings, SweepService};
use collect_web::{Auth, Config};

use crate::app::Queue;
use crate::backend::{AwsBackend, SweepSchedule};
use crate::signin::{HyperHttp, Pool, Verifier};

/// Why the container could not start (the init error in the log).
pub type StartError = Box<dyn std::error::Error + Send + Sync>;

/// The sign-in settings from the environment.
pub fn pool_from_env() -> Result<Pool, StartError> {
    Ok(Pool {
        sign_in_url: env("SIGN_IN_URL")?,
        client_id: env("USER_POOL_CLIENT_ID")?,
        issuer: env("USER_POOL_ISSUER")?,
        queue_url: env("QUEUE_URL")?,
    })
}

/// The sweep's schedule from the environment.
pub fn schedule_from_env() -> Result<SweepSchedule, StartError> {
    Ok(SweepSchedule {
        expression: env("SWEEP_SCHEDULE")?,
        timezone: env_opt("SCHEDULE_TIMEZONE").unwrap_or_else(|| "UTC".to_string()),
    })
}

/// A started router, and the risk scorer it explains with (the promoted
/// model, or the prior late rate before the first one), as
/// `name version`.
pub struct Started {
    pub router: axum::Router,
    pub scorer: String,
}

/// The router over the stack's table and bucket (the tests build it on
/// the local endpoint with their own clients).
pub async fn router(
    clients: &Clients,
    settings: &Settings,
    send: &SendSettings,
    schedule: SweepSchedule,
    csrf_key: Vec<u8>,
    clock: fn() -> DateTime<Utc>,
) -> Result<Started, StartError> {
    let scratch = std::env::temp_dir();
    let service = SweepService::load(clients, settings, send, &scratch).await?;
    let scorer = format!("{} {}", service.scorer.name(), service.scorer.version());
    let artifacts = Artifacts::new(clients.s3.clone(), &settings.bucket);
    let backend = AwsBackend::load(
        service,
        artifacts,
        scratch.join("bundle-revisions"),
        schedule,
        clock,
    )
    .await?;
    let router = collect_web::router(
        backend,
        Config {
            auth: Auth::Trusted,
            secure_cookies: true,
            key: csrf_key,
        },
    );
    Ok(Started { router, scorer })
}

/// Everything from the function's environment and role.
pub async fn from_env(clock: fn() -> DateTime<Utc>) -> Result<Queue<HyperHttp>, StartError> {
    let clients = Clients::from_env().await;
    let settings = Settings::from_env()?;
    let send = SendSettings::from_env()?;
    let key = secret(&clients.secrets, &env("QUEUE_KEY_SECRET_ID")?).await?;
    let started = router(
        &clients,
        &settings,
        &send,
        schedule_from_env()?,
        key.trim().as_bytes().to_vec(),
        clock,
    )
    .await?;
    tracing::info!(scorer = %started.scorer, "work queue started");
    Ok(Queue {
        router: started.router,
        verifier: Verifier::new(pool_from_env()?),
        http: HyperHttp::new()?,
    })
}
