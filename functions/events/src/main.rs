//! Wiring only: clients and the service once per container, then the runtime.

use collect_aws::config::{Clients, Settings, env, env_opt};
use collect_aws::drops::ChunkSettings;
use collect_aws::dynamo::Dynamo;
use collect_aws::events::EventsService;
use collect_aws::queue::Queue;
use collect_events::handler;
use lambda_runtime::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let clients = Clients::from_env().await;
    let settings = Settings::from_env()?;
    let svc = EventsService {
        dynamo: Dynamo::new(
            clients.dynamodb.clone(),
            &settings.table,
            settings.virtual_shards,
        ),
        dead_letters: Queue::new(clients.sqs.clone(), env("DEAD_LETTER_QUEUE_URL")?),
        events_queue: env_opt("EVENTS_QUEUE_URL").map(|url| Queue::new(clients.sqs.clone(), url)),
        s3: clients.s3.clone(),
        chunks: ChunkSettings::from_env()?,
    };
    lambda_runtime::run(service_fn(|ev| handler(&svc, ev))).await
}
