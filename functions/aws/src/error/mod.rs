//! What an AWS adapter could not do: [`AwsError`], one variant per kind of
//! failure, each carrying a struct that keeps the facts (which service and
//! call, the service's error code, the setting that is wrong) as fields and
//! the underlying error as its [`source`](std::error::Error::source).
//!
//! The messages are written for the operator who reads a function's log or
//! alarm: what happened, where, and, when there is one, what to do. Callers
//! decide with the fields ([`AwsError::retryable`], [`ServiceError::code`]),
//! never by parsing a message.
//!
//! The structs live by what failed: `service` (a call to a service, or one
//! that could not be built), `setting` (an environment variable or a
//! secret), `stored` (a damaged item, a missing bundle, a record that
//! cannot be written); [`SweepError`] is here.

use collect_delivery::delivery::RunError;

mod service;
mod setting;
mod stored;

pub use service::{Denied, RequestError, Service, ServiceError};
pub use setting::ConfigError;
pub use stored::{CorruptError, EncodeError, NoBundleError};

/// Something an AWS adapter could not do.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// An AWS service failed or refused a call; whether trying again later
    /// may succeed (throttling, a timeout, a 5xx) is
    /// [`ServiceError::retryable`].
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A stored item or object could not be read back: the run stops
    /// before acting on it, and it stays as it is for a person to look at.
    #[error(transparent)]
    Corrupt(#[from] CorruptError),
    /// A record could not be written as JSON (a fault of this code).
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A setting of the function (an environment variable, a secret) is
    /// missing or wrong: the function cannot start until it is fixed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No policy bundle is published where the functions look for it: the
    /// sweep fails closed until CI publishes one.
    #[error(transparent)]
    NoBundle(#[from] NoBundleError),
    /// A request could not be put together (a required part was missing):
    /// a fault of this code, never of the data.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The sweep of a shard stopped: its lease is held by another worker
    /// or was lost, or a step of the delivery protocol failed. What it
    /// recorded is kept; the shard's job is delivered again.
    #[error(transparent)]
    Sweep(#[from] SweepError),
    #[error(transparent)]
    Bundle(#[from] collect_delivery::bundle::BundleError),
    /// A task of parallel requests did not finish (it panicked or was
    /// cancelled); what it wrote is conditional, so the run can be retried.
    #[error("DynamoDB {operation}: a task of parallel requests did not finish: {source}")]
    Task {
        operation: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    /// The lease changed between reading and writing it, three times in a
    /// row: other runs take and give it back at the same time. The next
    /// run tries again.
    #[error(
        "DynamoDB PutItem: the lease `{name}` changed between reading and writing it, three times in a row"
    )]
    LeaseRace { name: String },
    /// The current model's artifact is one this build cannot read: the
    /// function fails (and alarms) rather than score another way.
    #[error("a stored item could not be read ({key}): {source}")]
    UnreadableModel {
        key: String,
        #[source]
        source: super::train::UnknownModel,
    },
    /// Training the challenger failed (e.g. not enough history yet).
    #[error("training failed: {0}")]
    Training(#[source] collect_model::ModelError),
    /// The model just trained does not load back.
    #[error("the new model does not load: {0}")]
    ModelDoesNotLoad(#[source] collect_model::ModelError),
    /// The preflight found a blocking problem (SES in the sandbox, sending
    /// paused, the sender identity not verified, no bundle): the sweep
    /// stops before it records or sends anything.
    #[error(transparent)]
    NotReady(#[from] super::preflight::NotReady),
    /// The history could not be read from a ledger.
    #[error(transparent)]
    Ledger(#[from] collect_delivery::ledger::LedgerError),
    /// A fold of a customer's settled invoices stopped part way because a
    /// test asked it to (a crash point: `Dynamo::with_fold_fault`); what
    /// it wrote is finished or undone by the next sweep.
    #[error("DynamoDB: the fold of customer `{customer}` stopped {step} (a crash point of a test)")]
    FoldInterrupted {
        customer: String,
        step: crate::dynamo::FoldStep,
    },
}

impl AwsError {
    /// Whether trying again later may succeed: the SQS message of a shard
    /// or an event is then delivered again.
    pub fn retryable(&self) -> bool {
        match self {
            AwsError::Service(e) => e.retryable(),
            AwsError::Task { .. }
            | AwsError::LeaseRace { .. }
            | AwsError::Sweep(_)
            | AwsError::FoldInterrupted { .. } => true,
            AwsError::Ledger(e) => e.retryable(),
            _ => false,
        }
    }

    /// Maps an SDK error: see [`ServiceError::sdk`].
    pub(crate) fn sdk<E>(
        service: Service,
        operation: &'static str,
        err: aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    ) -> AwsError
    where
        E: std::error::Error
            + aws_sdk_dynamodb::error::ProvideErrorMetadata
            + Send
            + Sync
            + 'static,
    {
        ServiceError::sdk(service, operation, err).into()
    }
}

/// The delivery protocol stopped the sweep of a shard: its lease is held
/// by another worker or was lost (`sweep lease: …`), or a step failed
/// (`sweep run: …`). Both are retried: the shard's job comes back.
#[derive(Debug, thiserror::Error)]
#[error("sweep {}: {source}", step(.source))]
pub struct SweepError {
    source: RunError,
}

fn step(e: &RunError) -> &'static str {
    match e {
        RunError::Busy { .. } | RunError::LostLease(_) => "lease",
        _ => "run",
    }
}

impl SweepError {
    pub(crate) fn new(source: RunError) -> SweepError {
        SweepError { source }
    }

    /// Whether another worker holds the shard, or this run lost it.
    pub fn is_lease(&self) -> bool {
        step(&self.source) == "lease"
    }

    /// Whether the mail service failed as a whole (SES refuses the account
    /// or the sender): the worker's invocation fails, so its alarm fires.
    pub fn is_mail_service(&self) -> bool {
        matches!(self.source, RunError::MailService { .. })
    }

    /// What the delivery protocol said.
    pub fn run_error(&self) -> &RunError {
        &self.source
    }
}
