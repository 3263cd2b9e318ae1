//! Wiring only: read the settings, build the clients and the service once
//! per container, hand the handler to the Lambda runtime.

use collect_aws::artifacts::Artifacts;
use collect_aws::config::{Clients, Settings, env, env_opt};
use collect_aws::preflight::{AccountSource, Checker, PreflightSettings};
use collect_aws::queue::Queue;
use collect_aws::sweep::DEFAULT_MARGIN_PERCENT;
use collect_aws::sweep::{SendSettings, SweepService};
use collect_sweep::{Continuations, Coordinator, coordinator, worker_continuing};
use lambda_runtime::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let clients = Clients::from_env().await;
    let settings = Settings::from_env()?;
    if std::env::var("SWEEP_ROLE").as_deref() == Ok("coordinator") {
        let queue = Queue::new(clients.sqs.clone(), env("SHARD_QUEUE_URL")?);
        let send = PreflightSettings::from_env()?;
        let c = Coordinator {
            queue,
            shards: settings.shards,
            virtual_shards: settings.virtual_shards,
            preflight: Some(Checker {
                ses: clients.ses.clone(),
                account: AccountSource::Ses(clients.ses.clone()),
                artifacts: Artifacts::new(clients.s3.clone(), &settings.bucket),
                sender: send.sender,
                identity: send.identity,
                check: send.check,
            }),
        };
        return lambda_runtime::run(service_fn(|ev| coordinator(&c, ev))).await;
    }
    let send = SendSettings::from_env()?;
    let svc = SweepService::load(&clients, &settings, &send, &std::env::temp_dir()).await?;
    // A job's rest goes back on the shard queue before the invocation's
    // time runs out (`SWEEP_MARGIN_PERCENT` of it kept free).
    let continuations = Continuations {
        queue: Queue::new(clients.sqs.clone(), env("SHARD_QUEUE_URL")?),
        margin_percent: env_opt("SWEEP_MARGIN_PERCENT")
            .and_then(|p| p.parse().ok())
            .filter(|p| (1..=90).contains(p))
            .unwrap_or(DEFAULT_MARGIN_PERCENT),
    };
    lambda_runtime::run(service_fn(|ev| {
        worker_continuing(&svc, Some(&continuations), ev)
    }))
    .await
}
