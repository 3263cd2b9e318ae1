//! Wiring only: read the settings, build the clients, the backend and the
//! router once per container, hand each request to [`Queue::handle`].

use std::convert::Infallible;
use std::sync::Arc;

use collect_queue::start;
use lambda_http::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let queue = Arc::new(start::from_env(chrono::Utc::now).await?);
    lambda_http::run(service_fn(move |req| {
        let queue = queue.clone();
        async move { Ok::<_, Infallible>(queue.handle(req).await) }
    }))
    .await
}
