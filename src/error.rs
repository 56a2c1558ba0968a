//! The error type (documented on [`Error`]).

use std::time::Duration;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `dynamodict`.
///
/// ```
/// use dynamodict::Error;
///
/// fn describe(err: &Error) -> &'static str {
///     match err {
///         Error::EmptyKey | Error::KeyTooLong { .. } => "fix the key",
///         Error::Timeout { .. } | Error::Connection { .. } | Error::Throttled { .. } => "retry later",
///         Error::BadSignature { .. } => "someone tampered with the table",
///         _ => "see the message",
///     }
/// }
/// assert_eq!(describe(&Error::EmptyKey), "fix the key");
/// ```
///
/// The crate's error type.
///
/// Every fallible call in `dynamodict` returns [`Result<T>`](crate::Result), whose error is
/// [`Error`]. The variants are stable and meant to be matched on: input problems are caught
/// before any request is sent, server problems are classified (timeout, connection, throttling,
/// missing table, ...), and data that cannot be decoded names the key it was read from.
///
/// No variant ever carries a credential, a secret key or a signature.
///
/// A transient error ([`Error::is_transient`]) from a write does not prove that nothing was
/// written: the request may have reached DynamoDB and only the answer been lost, and a batch
/// may have applied some of its requests. Repeating the call is safe.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- input, checked before any request -------------------------------------------------
    /// A key was the empty string; DynamoDB cannot store empty key attributes.
    #[error("the key is empty; keys must be at least one byte long")]
    EmptyKey,

    /// A key is longer than DynamoDB allows for a sort key.
    #[error("the key is {len} bytes long; at most {max} bytes (UTF-8) are allowed")]
    KeyTooLong {
        /// Length of the key in bytes.
        len: usize,
        /// The largest allowed length in bytes.
        max: usize,
    },

    /// A table name does not follow DynamoDB's naming rules.
    #[error("invalid table name {name:?}: {reason}")]
    InvalidTableName {
        /// The name that was given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A namespace name is not allowed.
    #[error("invalid namespace {name:?}: {reason}")]
    InvalidNamespace {
        /// The name that was given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The encoded value is larger than the storage layer accepts.
    #[error("the value for key {key:?} encodes to {size} bytes; at most {max} bytes are supported")]
    ItemTooLarge {
        /// The key being written.
        key: String,
        /// The size of the item as DynamoDB would count it.
        size: usize,
        /// The limit that was exceeded.
        max: usize,
    },

    /// A URL could not be parsed (cache keys, URL filters).
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The text that was given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A builder was given settings that cannot work together.
    #[error("invalid configuration: {0}")]
    Config(String),

    // ---- data ----------------------------------------------------------------------------------
    /// A value could not be encoded by the serializer.
    #[error("could not serialize the value for key {key:?}: {message}")]
    Serialize {
        /// The key being written.
        key: String,
        /// What the encoder reported.
        message: String,
    },

    /// A stored value could not be decoded: it is corrupt, or of another type than the map's.
    #[error("could not deserialize the value stored at key {key:?}: {message}")]
    Deserialize {
        /// The key the value was read from.
        key: String,
        /// What the decoder reported.
        message: String,
    },

    /// A stored value was written by a different serializer pipeline.
    #[error(
        "the value stored at key {key:?} was written with serializer {found:?}, but this map uses {expected:?}"
    )]
    SerializerMismatch {
        /// The key the value was read from.
        key: String,
        /// This map's pipeline id.
        expected: String,
        /// The pipeline id recorded with the item (empty when none was recorded).
        found: String,
    },

    /// A signed value failed verification: it was altered, signed with another key, or unsigned.
    #[error("the value stored at key {key:?} has a missing or invalid signature")]
    BadSignature {
        /// The key the value was read from.
        key: String,
    },

    // ---- table ---------------------------------------------------------------------------------
    /// The table does not exist and the builder was told not to create it.
    #[error(
        "table {table:?} does not exist: create it, or build the map with \
         `.open_mode(OpenMode::Create)` (the default) to have it created"
    )]
    TableNotFound {
        /// The table name.
        table: String,
    },

    /// The table exists but was laid out by an incompatible configuration.
    #[error("table {table:?} has an incompatible layout: {detail}")]
    LayoutMismatch {
        /// The table name.
        table: String,
        /// What differs.
        detail: String,
    },

    // ---- service -------------------------------------------------------------------------------
    /// The call did not complete within the configured timeout.
    #[error("DynamoDB did not answer within {}", fmt_timeout(.timeout))]
    Timeout {
        /// The timeout that expired, when known.
        timeout: Option<Duration>,
    },

    /// The endpoint could not be reached, or the connection broke.
    #[error("could not reach DynamoDB: {message}")]
    Connection {
        /// What went wrong.
        message: String,
    },

    /// No credentials could be found, or they were rejected.
    #[error("AWS credentials are missing or invalid: {message}")]
    Credentials {
        /// What went wrong (never the credentials themselves).
        message: String,
    },

    /// The credentials are not allowed to do this (`AccessDeniedException`): the message names
    /// the action refused and, where there is one, a way around it.
    #[error("access denied: {message}")]
    AccessDenied {
        /// The service's message, and what to do.
        message: String,
    },

    /// DynamoDB kept throttling the request after every retry.
    #[error("DynamoDB throttled the request and retries were exhausted: {message}")]
    Throttled {
        /// The service's message.
        message: String,
    },

    /// Any other error reported by DynamoDB.
    #[error("DynamoDB error {code}: {message}")]
    Service {
        /// The service's error code, e.g. `ValidationException`.
        code: String,
        /// The service's message.
        message: String,
    },

    /// A conditional write kept losing races with other writers of the same key (the large-value
    /// protocol reads a large value, then replaces exactly what it read). Nothing was lost;
    /// try again.
    #[error("could not write key {key:?}: {message}")]
    Conflict {
        /// The key being written.
        key: String,
        /// What happened.
        message: String,
    },

    /// The internal runtime could not start or run a call (thread or resource exhaustion), or a
    /// blocking call was made where it cannot block.
    #[error("runtime error: {0}")]
    Runtime(String),

    // ---- HTTP origin (the caching session) -------------------------------------------------
    /// An HTTP request of a [`CachedSession`](crate::session::CachedSession) to the origin
    /// server failed: it could not connect, timed out, broke off, or redirected too often. No
    /// usable cached response existed (with `stale_if_error`, a stale one is served instead).
    #[error("HTTP request to {url} failed: {message}")]
    Http {
        /// The URL that was requested.
        url: String,
        /// What went wrong, as one line.
        message: String,
        /// Whether trying again later may succeed (a connection or timeout problem, not a
        /// malformed request or a redirect loop).
        transient: bool,
    },

    /// The embedded DynamoDB Local server could not be installed or started.
    #[cfg(feature = "local")]
    #[error(transparent)]
    Local(#[from] crate::local::LocalError),
}

fn fmt_timeout(timeout: &Option<Duration>) -> String {
    match timeout {
        Some(t) => format!("the timeout ({t:?})"),
        None => "the configured timeouts".to_owned(),
    }
}

impl Error {
    /// Whether retrying the same call later may succeed (timeouts, connection problems,
    /// throttling).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Timeout { .. }
                | Error::Connection { .. }
                | Error::Throttled { .. }
                | Error::Http {
                    transient: true,
                    ..
                }
        )
    }
}

/// Classifies an SDK error into an [`Error`] variant. `table` names the table in
/// [`Error::TableNotFound`].
pub(crate) fn sdk_error<E, R>(err: aws_sdk_dynamodb::error::SdkError<E, R>, table: &str) -> Error
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
    let message = || DisplayErrorContext(&err).to_string();
    match &err {
        SdkError::TimeoutError(_) => Error::Timeout { timeout: None },
        SdkError::DispatchFailure(failure) if failure.is_timeout() => {
            Error::Timeout { timeout: None }
        }
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            let message = message();
            if mentions_credentials(&message) {
                Error::Credentials { message }
            } else {
                Error::Connection { message }
            }
        }
        SdkError::ConstructionFailure(_) => {
            let message = message();
            if mentions_credentials(&message) {
                Error::Credentials { message }
            } else {
                Error::Config(message)
            }
        }
        SdkError::ServiceError(service) => {
            let inner = service.err();
            let code = inner.code().unwrap_or("Unknown").to_owned();
            let message = inner.message().unwrap_or_default().to_owned();
            match code.as_str() {
                "ResourceNotFoundException" => Error::TableNotFound {
                    table: table.to_owned(),
                },
                "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded" => Error::Throttled { message },
                "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "MissingAuthenticationToken"
                | "MissingAuthenticationTokenException"
                | "ExpiredTokenException"
                | "IncompleteSignatureException" => Error::Credentials { message },
                "AccessDeniedException" => Error::AccessDenied { message },
                _ => Error::Service { code, message },
            }
        }
        _ => Error::Connection { message: message() },
    }
}

/// How one attempt of a request failed.
#[derive(Debug)]
pub(crate) struct Failed {
    pub error: Error,
    /// The request may have been applied, or may still be applied later (a lost answer, a
    /// timeout, a broken connection, a server error).
    pub ambiguous: bool,
    /// Trying again may succeed (the ambiguous failures, and throttling).
    pub retryable: bool,
}

/// Classifies one failed attempt: the error, and whether it is ambiguous or retryable.
pub(crate) fn sdk_failure<E>(
    err: aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    table: &str,
) -> Failed
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use aws_sdk_dynamodb::error::SdkError;
    let (ambiguous, retryable) = match &err {
        SdkError::ConstructionFailure(_) => (false, false),
        SdkError::ServiceError(service) => {
            let throttled = matches!(
                service.err().code(),
                Some(
                    "ProvisionedThroughputExceededException"
                        | "ThrottlingException"
                        | "RequestLimitExceeded"
                )
            );
            let server_error = service.raw().status().is_server_error();
            (server_error, throttled || server_error)
        }
        _ => (true, true),
    };
    Failed {
        error: sdk_error(err, table),
        ambiguous,
        retryable,
    }
}

fn mentions_credentials(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("credential") || lower.contains("identity")
}
