//! Wiring only: clients, the trainer and the service once per container.

use collect_aws::artifacts::Artifacts;
use collect_aws::config::{Clients, Settings, env_opt};
use collect_aws::dynamo::Dynamo;
use collect_aws::train::Sample;
use collect_train::{TrainService, default_trainer, handler};
use lambda_runtime::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let clients = Clients::from_env().await;
    let settings = Settings::from_env()?;
    let svc = TrainService {
        dynamo: Dynamo::new(
            clients.dynamodb.clone(),
            &settings.table,
            settings.virtual_shards,
        ),
        artifacts: Artifacts::new(clients.s3.clone(), &settings.bucket),
        trainer: default_trainer(),
        window_days: env_opt("EVALUATION_DAYS")
            .and_then(|d| d.parse().ok())
            .unwrap_or(56),
        sample: Sample::from_env(),
    };
    lambda_runtime::run(service_fn(|ev| handler(&svc, ev))).await
}
