//! A call to an AWS service that failed or was refused ([`ServiceError`]),
//! or could not be put together ([`RequestError`]).

use std::fmt;

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

    /// The service's own message, when its answer had one (SES's
    /// `MessageRejected` says why in it: "Email address is not verified").
    pub fn message(&self) -> Option<&str> {
        match &self.what {
            What::Answered { message, .. }
            | What::Status { message, .. }
            | What::EntriesRefused { message, .. } => message.as_deref(),
            What::AccessDenied { denied, .. } => Some(&denied.message),
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::error::AwsError;
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
}
