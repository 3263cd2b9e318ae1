//! What an AWS adapter could not do: [`AwsError`], one variant per kind of
//! failure, each carrying a struct that keeps the facts (which service and
//! call, the service's error code, the setting that is wrong) as fields and
//! the underlying error as its [`source`](std::error::Error::source).
//!
//! The messages are written for the operator who reads a function's log or
//! alarm: what happened, where, and, when there is one, what to do. Callers
//! decide with the fields ([`AwsError::retryable`], [`ServiceError::code`]),
//! never by parsing a message.

use std::fmt;

use collect_delivery::delivery::RunError;
use collect_delivery::message::PayLinkError;

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
    /// The lease was refused, then found free, twice in a row: another run
    /// takes and drops it at the same time. The next run tries again.
    #[error("DynamoDB PutItem: the lease `{name}` was refused, then found free, twice")]
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
    /// The history could not be read from a ledger.
    #[error(transparent)]
    Ledger(#[from] collect_delivery::ledger::LedgerError),
}

impl AwsError {
    /// Whether trying again later may succeed: the SQS message of a shard
    /// or an event is then delivered again.
    pub fn retryable(&self) -> bool {
        match self {
            AwsError::Service(e) => e.retryable(),
            AwsError::Task { .. } | AwsError::LeaseRace { .. } | AwsError::Sweep(_) => true,
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

// ---------------------------------------------------------------- services

/// The AWS services the adapters call, named as their APIs are (and as
/// IAM policies and CloudTrail name them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    DynamoDb,
    S3,
    Ses,
    Sqs,
    SecretsManager,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::DynamoDb => "DynamoDB",
            Service::S3 => "S3",
            Service::Ses => "SESv2",
            Service::Sqs => "SQS",
            Service::SecretsManager => "SecretsManager",
        })
    }
}

/// The SDK's error type, boxed: the source of a [`ServiceError`].
type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A call to an AWS service that failed or was refused: the service, the
/// operation (`GetItem`, `SendEmail`), what happened, and whether trying
/// again later may succeed. The SDK's own error is the
/// [`source`](std::error::Error::source) when there is one; the message
/// already carries what it says (the service's code and message).
#[derive(Debug)]
pub struct ServiceError {
    service: Service,
    operation: &'static str,
    what: What,
    retryable: bool,
    source: Option<Source>,
}

/// What happened to a call (the part of the message after the operation).
#[derive(Debug)]
enum What {
    /// The service answered with an error code (and usually a message).
    Answered {
        code: String,
        message: Option<String>,
    },
    /// The service answered with an error the SDK could not read a code
    /// from (another protocol's answer, e.g. a 403 of a proxy).
    Status {
        status: u16,
        message: Option<String>,
    },
    /// No answer: a timeout, a connection that failed, an answer that was
    /// not understood. The source says which.
    NoAnswer,
    /// A read-merge-write of a record lost to other writers every time.
    KeptChanging {
        record: &'static str,
        id: String,
        attempts: u32,
    },
    /// A batch request left part of its work unprocessed every time.
    Unprocessed {
        count: usize,
        unit: &'static str,
        attempts: u32,
    },
    /// A batch was accepted, but some of its entries were refused.
    EntriesRefused {
        refused: usize,
        code: String,
        message: Option<String>,
    },
    /// S3 refused to read an object (403).
    AccessDenied { location: String, denied: Denied },
    /// An object's body broke off while it was read.
    Unreadable { location: String },
}

/// S3's answer to a read it refused: its code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// `AccessDenied`, as S3 says it.
    pub code: String,
    pub message: String,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Error codes that mean "not now": the service is busy or failed on its
/// side, and the same call may succeed later.
fn retryable_code(code: &str) -> bool {
    [
        "Throttl",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
        "InternalServer",
        "ServiceUnavailable",
        "TooManyRequests",
    ]
    .iter()
    .any(|c| code.contains(c))
}

impl ServiceError {
    /// Maps an SDK error, keeping the service's own code and message (and
    /// the SDK error as the source). When the service's answer has no
    /// error code the SDK could read (an answer in another protocol's
    /// format, e.g. a 403 of a proxy or a local endpoint), the HTTP status
    /// stands in for it. Timeouts, failed connections, answers that could
    /// not be read and throttling or 5xx codes are retryable.
    pub(crate) fn sdk<E>(
        service: Service,
        operation: &'static str,
        err: aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    ) -> ServiceError
    where
        E: std::error::Error
            + aws_sdk_dynamodb::error::ProvideErrorMetadata
            + Send
            + Sync
            + 'static,
    {
        use aws_sdk_dynamodb::error::SdkError;
        let (what, retryable) = match &err {
            SdkError::ServiceError(e) => {
                let meta = e.err();
                let message = meta.message().map(str::to_string);
                match meta.code() {
                    Some(code) => (
                        What::Answered {
                            code: code.to_string(),
                            message,
                        },
                        retryable_code(code),
                    ),
                    None => (
                        What::Status {
                            status: e.raw().status().as_u16(),
                            message,
                        },
                        false,
                    ),
                }
            }
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => (What::NoAnswer, true),
            _ => (What::NoAnswer, false),
        };
        ServiceError {
            service,
            operation,
            what,
            retryable,
            source: Some(Box::new(err)),
        }
    }

    /// The service refused a call with `code` (for stand-ins of a service
    /// in tests, and answers read from a batch's entries); retryable when
    /// the code says the service is busy or failed on its side.
    pub fn refused(
        service: Service,
        operation: &'static str,
        code: impl Into<String>,
        message: Option<String>,
    ) -> ServiceError {
        let code = code.into();
        ServiceError {
            service,
            operation,
            retryable: retryable_code(&code),
            what: What::Answered { code, message },
            source: None,
        }
    }

    /// A read-merge-write of `record` `id` that lost to another writer on
    /// every one of its `attempts`: retryable (the writers will be done).
    pub(crate) fn kept_changing(record: &'static str, id: &str, attempts: u32) -> ServiceError {
        ServiceError {
            service: Service::DynamoDb,
            operation: "PutItem",
            what: What::KeptChanging {
                record,
                id: id.to_string(),
                attempts,
            },
            retryable: true,
            source: None,
        }
    }

    /// `count` items (`unit`s) of a batch request still unprocessed after
    /// `attempts`: the table is busy, retryable.
    pub(crate) fn unprocessed(
        operation: &'static str,
        count: usize,
        unit: &'static str,
        attempts: u32,
    ) -> ServiceError {
        ServiceError {
            service: Service::DynamoDb,
            operation,
            what: What::Unprocessed {
                count,
                unit,
                attempts,
            },
            retryable: true,
            source: None,
        }
    }

    /// Entries of an accepted batch refused: `refused` of them, the first
    /// with `code`; retryable unless the fault is the sender's.
    pub(crate) fn entries_refused(
        service: Service,
        operation: &'static str,
        refused: usize,
        code: impl Into<String>,
        message: Option<String>,
        sender_fault: bool,
    ) -> ServiceError {
        ServiceError {
            service,
            operation,
            what: What::EntriesRefused {
                refused,
                code: code.into(),
                message,
            },
            retryable: !sender_fault,
            source: None,
        }
    }

    /// S3 refused to read `location` (`s3://bucket/key`): not retryable,
    /// the role's grants decide.
    pub(crate) fn access_denied(location: String, denied: Denied) -> ServiceError {
        ServiceError {
            service: Service::S3,
            operation: "GetObject",
            what: What::AccessDenied { location, denied },
            retryable: false,
            source: None,
        }
    }

    /// The body of `location` broke off while it was read: retryable.
    pub(crate) fn unreadable(
        location: String,
        source: aws_sdk_s3::primitives::ByteStreamError,
    ) -> ServiceError {
        ServiceError {
            service: Service::S3,
            operation: "GetObject",
            what: What::Unreadable { location },
            retryable: true,
            source: Some(Box::new(source)),
        }
    }

    pub fn service(&self) -> Service {
        self.service
    }

    /// The API operation, e.g. `PutItem`.
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The service's error code (`ThrottlingException`, `AccessDenied`),
    /// when its answer had one.
    pub fn code(&self) -> Option<&str> {
        match &self.what {
            What::Answered { code, .. } | What::EntriesRefused { code, .. } => Some(code),
            What::AccessDenied { denied, .. } => Some(&denied.code),
            _ => None,
        }
    }

    /// The HTTP status of an answer the SDK could read no code from.
    pub fn http_status(&self) -> Option<u16> {
        match &self.what {
            What::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether trying again later may succeed.
    pub fn retryable(&self) -> bool {
        self.retryable
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: ", self.service, self.operation)?;
        match &self.what {
            What::Answered { code, message } => {
                write!(f, "{code}: {}", message.as_deref().unwrap_or("no message"))
            }
            What::Status { status, message } => write!(
                f,
                "HTTP {status}: {}",
                message
                    .as_deref()
                    .unwrap_or("no error code or message in the answer")
            ),
            What::NoAnswer => match &self.source {
                Some(source) => write!(
                    f,
                    "{}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(source.as_ref())
                ),
                None => f.write_str("no answer"),
            },
            What::KeptChanging {
                record,
                id,
                attempts,
            } => write!(
                f,
                "{record} `{id}` kept changing while it was being updated ({attempts} attempts)"
            ),
            What::Unprocessed {
                count,
                unit,
                attempts,
            } => write!(
                f,
                "{count} {unit}(s) still unprocessed after {attempts} attempts"
            ),
            What::EntriesRefused {
                refused,
                code,
                message,
            } => write!(
                f,
                "{refused} message(s) refused, e.g. {code}: {}",
                message.as_deref().unwrap_or("")
            ),
            What::AccessDenied { location, denied } => write!(f, "{location}: {denied}"),
            What::Unreadable { location } => match &self.source {
                Some(source) => write!(f, "reading {location}: {source}"),
                None => write!(f, "reading {location}"),
            },
        }
    }
}

impl std::error::Error for ServiceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

// ---------------------------------------------------------------- stored items

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

// ---------------------------------------------------------------- settings

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
            | Setting::PayLinkPattern { variable, .. } => variable,
            Setting::SecretWithoutText { secret } | Setting::PayLinkKey { secret, .. } => secret,
        }
    }
}

// ---------------------------------------------------------------- artifacts

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

// ---------------------------------------------------------------- requests

/// A request this code could not put together (the SDK's builder found a
/// required part missing): a fault of this code, not of the data.
#[derive(Debug, thiserror::Error)]
#[error("{service} {operation}: the request could not be built: {source}")]
pub struct RequestError {
    service: Service,
    operation: &'static str,
    source: aws_sdk_dynamodb::error::BuildError,
}

impl RequestError {
    pub(crate) fn new(
        service: Service,
        operation: &'static str,
        source: aws_sdk_dynamodb::error::BuildError,
    ) -> RequestError {
        RequestError {
            service,
            operation,
            source,
        }
    }
}

// ---------------------------------------------------------------- the sweep

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

    /// What the delivery protocol said.
    pub fn run_error(&self) -> &RunError {
        &self.source
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_call_and_the_code_and_knows_when_to_retry() {
        let e = ServiceError::refused(
            Service::DynamoDb,
            "PutItem",
            "ThrottlingException",
            Some("slow down".into()),
        );
        assert_eq!(
            e.to_string(),
            "DynamoDB PutItem: ThrottlingException: slow down"
        );
        assert!(e.retryable());
        assert_eq!(e.code(), Some("ThrottlingException"));
        let e = ServiceError::refused(Service::Sqs, "SendMessageBatch", "AccessDenied", None);
        assert_eq!(
            e.to_string(),
            "SQS SendMessageBatch: AccessDenied: no message"
        );
        assert!(!AwsError::from(e).retryable());
    }

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
