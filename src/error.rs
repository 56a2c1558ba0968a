//! The error type (documented on [`Error`]).

use std::time::Duration;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use crate::engine::connection::Endpoint;

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
///
/// # Errors shared by many calls
///
/// The "Errors" section of each method names the variants particular to it and links here for
/// the lists that many methods share.
///
/// ## Request errors
///
/// Every call that sends requests to DynamoDB can fail with:
///
/// - [`Error::Timeout`]: DynamoDB did not answer within the [`Timeouts`](crate::Timeouts), or
///   the upload of a large value took longer than half the
///   [sweep grace](crate::DictBuilder::sweep_grace);
/// - [`Error::Connection`]: the endpoint could not be reached, or the connection broke;
/// - [`Error::Credentials`]: no credentials were found, or DynamoDB rejected them;
/// - [`Error::AccessDenied`]: the credentials may not make a request the call needs;
/// - [`Error::Throttled`]: DynamoDB still throttled the request after every retry (the SDK's
///   attempts for single requests,
///   [`BatchOptions::max_attempts`](crate::BatchOptions::max_attempts) for batches);
/// - [`Error::TableNotFound`]: the table is gone (deleted after the map was opened), or, for a
///   map opened with [`OpenMode::Trust`](crate::OpenMode::Trust), was never there: that mode
///   sends its first request with the first operation;
/// - [`Error::LayoutMismatch`]: with [`OpenMode::Trust`](crate::OpenMode::Trust), the first
///   operation found the table laid out by an incompatible configuration (key schema, shards);
/// - [`Error::Service`]: any other error DynamoDB reported, with its code;
/// - [`Error::Config`], rarely: the AWS SDK could not build a request from the configuration;
/// - [`Error::Runtime`]: for [`AsyncDynamoDbDict`](crate::AsyncDynamoDbDict) and
///   [`AsyncDynamoDbCache`](crate::cache::AsyncDynamoDbCache), the future was polled outside a
///   tokio runtime; for [`DynamoDbDict`](crate::DynamoDbDict) and
///   [`DynamoDbCache`](crate::DynamoDbCache), the internal runtime, or the helper thread that
///   runs a blocking call made inside an async runtime, could not be started (thread or
///   resource exhaustion).
///
/// [`Error::is_transient`] tells which of them may succeed when tried again later.
///
/// ## Decoding errors
///
/// Every call that reads stored values back fails, naming the key, when one cannot be read:
///
/// - [`Error::Deserialize`]: the value is corrupt or of another type than the map's (or a
///   chunk of a large value is missing);
/// - [`Error::SerializerMismatch`]: the value was written by another serializer pipeline
///   (another format or other stages, signed or not);
/// - [`Error::BadSignature`]: the map's serializer signs, and the value is unsigned, was
///   altered or copied from another key, or was signed with another secret key;
/// - [`Error::Conflict`]: other writers replaced a large value every time the call read it.
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

    /// The encoded value is larger than the storage layer accepts. The message names the
    /// settings that decide the limit ([`large_values`](crate::DictBuilder::large_values) and
    /// [`max_value_size`](crate::DictBuilder::max_value_size)) and their values.
    #[error("{}", too_large_message(.key, .size, .max, .max_value_size))]
    ItemTooLarge {
        /// The key being written.
        key: String,
        /// With large values off: the size of the item as DynamoDB would count it; with large
        /// values on: the size of the encoded value.
        size: usize,
        /// The limit that was exceeded: DynamoDB's 400 KB item limit with large values off,
        /// `max_value_size` with them on.
        max: usize,
        /// The map's `max_value_size`; `None` when large values are off
        /// (`.large_values(false)`).
        max_value_size: Option<usize>,
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
        /// What went wrong. For a value of another type than the map's: that, the serializers
        /// that wrote and read it, what to do, and then what the decoder reported.
        message: String,
    },

    /// A stored value was written by a different serializer pipeline.
    #[error(
        "the value stored at key {key:?} was written with serializer {found:?}, but this map \
         uses {expected:?}: read it with a map using serializer {found:?}, or overwrite or remove \
         the key"
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
    #[error("could not reach DynamoDB{}: {message}", at_endpoint(.endpoint))]
    Connection {
        /// The endpoint's URL, followed by where it came from when that is not the builder,
        /// e.g. `http://127.0.0.1:8000 (from DYNAMODICT_ENDPOINT)`; empty when not known.
        endpoint: String,
        /// What went wrong, as one line: the root cause, e.g. `connection refused`.
        message: String,
    },

    /// No credentials could be found, or they were rejected. The message says which, and what
    /// to set.
    #[error("{message}")]
    Credentials {
        /// What went wrong and what to do (never the credentials themselves).
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
    /// An HTTP request of a `session::CachedSession` (feature `reqwest`) to the origin
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

/// ` at <endpoint>`, or nothing when the endpoint is not known.
fn at_endpoint(endpoint: &str) -> String {
    if endpoint.is_empty() {
        String::new()
    } else {
        format!(" at {endpoint}")
    }
}

/// The message of [`Error::ItemTooLarge`].
fn too_large_message(
    key: &str,
    size: &usize,
    max: &usize,
    max_value_size: &Option<usize>,
) -> String {
    match *max_value_size {
        None => format!(
            "the value for key {key:?} makes an item of {size} bytes, over DynamoDB's 400 KB item \
             limit ({max} bytes), and large values are off (`.large_values(false)`): turn them on \
             with `.large_values(true)` to split such values across several items (up to \
             `max_value_size`, {} by default), or store a smaller value",
            human_size(crate::values::chunked::DEFAULT_MAX_VALUE_BYTES)
        ),
        Some(limit) if limit == *max => format!(
            "the value for key {key:?} encodes to {size} bytes, over this map's `max_value_size` \
             of {limit} bytes ({}; large values are on): raise it with `.max_value_size(..)` (at \
             most {}), or store a smaller value",
            human_size(limit),
            human_size(crate::serializer::MAX_DECODED_SIZE)
        ),
        Some(limit) => format!(
            "DynamoDB refused the item for key {key:?} as larger than its 400 KB item limit ({max} \
             bytes), although it was estimated to fit (large values are on, `max_value_size` \
             {limit} bytes): store a smaller value"
        ),
    }
}

/// `16 MiB`, `400 KiB`, `1.5 MiB`, `100 bytes`.
pub(crate) fn human_size(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    let (unit, name) = match bytes {
        b if b >= MIB => (MIB, "MiB"),
        b if b >= KIB => (KIB, "KiB"),
        _ => return format!("{bytes} bytes"),
    };
    if bytes.is_multiple_of(unit) {
        format!("{} {name}", bytes / unit)
    } else {
        format!("{:.1} {name}", bytes as f64 / unit as f64)
    }
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
/// [`Error::TableNotFound`], `endpoint` the endpoint in [`Error::Connection`].
pub(crate) fn sdk_error<E>(
    err: SdkError<E, HttpResponse>,
    table: &str,
    endpoint: &Endpoint,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::TimeoutError(_) => Error::Timeout { timeout: None },
        SdkError::DispatchFailure(failure) if failure.is_timeout() => {
            Error::Timeout { timeout: None }
        }
        SdkError::ServiceError(service) => {
            let inner = service.err();
            let message = inner.message().unwrap_or_default().to_owned();
            let Some(code) = inner.code() else {
                // Not a DynamoDB error document: a proxy, a load balancer, another service.
                let status = service.raw().status().as_u16();
                return Error::Service {
                    code: format!("HTTP {status}"),
                    message: format!(
                        "the endpoint{} answered HTTP {status} without a DynamoDB error code{}; \
                         check that it is a DynamoDB endpoint",
                        at_endpoint(&endpoint.describe()),
                        if message.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", one_line(&message))
                        }
                    ),
                };
            };
            match code {
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
                | "IncompleteSignatureException" => Error::Credentials {
                    message: rejected_credentials(code, &message),
                },
                "AccessDeniedException" => Error::AccessDenied { message },
                _ => Error::Service {
                    code: code.to_owned(),
                    message,
                },
            }
        }
        _ => {
            if let Some(message) = credentials_problem(&err) {
                return Error::Credentials { message };
            }
            let cause = root_cause(&err);
            if mentions_credentials(&cause) {
                return Error::Credentials {
                    message: format!("the AWS credentials could not be used: {cause}"),
                };
            }
            match &err {
                SdkError::ConstructionFailure(_) => {
                    Error::Config(format!("the request could not be built: {cause}"))
                }
                SdkError::ResponseError(_) => Error::Connection {
                    endpoint: endpoint.describe(),
                    message: format!("its answer could not be read: {cause}"),
                },
                _ => Error::Connection {
                    endpoint: endpoint.describe(),
                    message: cause,
                },
            }
        }
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
    err: SdkError<E, HttpResponse>,
    table: &str,
    endpoint: &Endpoint,
) -> Failed
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
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
        error: sdk_error(err, table, endpoint),
        ambiguous,
        retryable,
    }
}

fn mentions_credentials(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("credential") || lower.contains("identity")
}

/// What to do when no credentials were found.
const HOW_TO_GIVE_CREDENTIALS: &str = "pass them with `.credentials(..)`, set AWS_PROFILE (a \
     profile in ~/.aws/config) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use `.local()` \
     for the embedded DynamoDB Local";

/// The message for credentials DynamoDB refused.
fn rejected_credentials(code: &str, message: &str) -> String {
    let detail = if message.is_empty() {
        code.to_owned()
    } else {
        format!("{code}: {}", one_line(message))
    };
    format!(
        "DynamoDB rejected the AWS credentials ({detail}); check the access key id, the secret \
         key and the session token, or the profile they come from"
    )
}

/// The message for a request that could not be signed for lack of credentials, or whose
/// credentials could not be loaded; `None` for other errors.
fn credentials_problem(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    use aws_credential_types::provider::error::CredentialsError;
    let chain = chain_of(err);
    for (i, level) in chain.iter().enumerate() {
        let Some(problem) = level.downcast_ref::<CredentialsError>() else {
            continue;
        };
        let detail = describe_chain(&chain[i + 1..]);
        let detail = if detail.is_empty() {
            one_line(&problem.to_string())
        } else {
            detail
        };
        return Some(match problem {
            CredentialsError::CredentialsNotLoaded(_) => {
                format!("no AWS credentials were found: {HOW_TO_GIVE_CREDENTIALS}")
            }
            CredentialsError::ProviderTimedOut(_) => format!(
                "loading AWS credentials timed out ({detail}): check that the credentials \
                 provider (e.g. EC2 instance metadata) can be reached, or {HOW_TO_GIVE_CREDENTIALS}"
            ),
            CredentialsError::InvalidConfiguration(_) => {
                format!("the AWS credentials configuration is invalid: {detail}")
            }
            _ => format!("loading AWS credentials failed: {detail}"),
        });
    }
    // A configuration without any credentials provider (an `SdkConfig` or client without one).
    let no_provider = chain.iter().any(|level| {
        let text = level.to_string();
        text.contains("auth scheme") && text.contains("no identity resolver")
    });
    no_provider.then(|| {
        "no AWS credentials were found: the SDK configuration given to `.sdk_config(..)` or \
         `.client(..)` has no credentials provider; give it one, or pass them with \
         `.credentials(..)`"
            .to_owned()
    })
}

/// `err` and its sources, outermost first (at most 32).
fn chain_of<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut chain = vec![err];
    while let Some(next) = chain.last().and_then(|e| e.source()) {
        if chain.len() >= 32 {
            break;
        }
        chain.push(next);
    }
    chain
}

/// The messages of `err` and its sources, one line, each only once.
#[cfg(feature = "reqwest")]
pub(crate) fn chain_message(err: &(dyn std::error::Error + 'static)) -> String {
    describe_chain(&chain_of(err))
}

/// The messages of `chain`, one line, each only once (a level often repeats its source).
fn describe_chain(chain: &[&(dyn std::error::Error + 'static)]) -> String {
    let mut out = String::new();
    for level in chain {
        let text = one_line(&level.to_string());
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// The root cause of a failed request, as a few words: `connection refused`, `the host name
/// could not be resolved (..)`, `TLS handshake failed: ..`, or the innermost error's message.
/// Never the `Debug` form of anything.
pub(crate) fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let chain = chain_of(err);
    let root = chain
        .last()
        .map_or_else(String::new, |e| one_line(&strip_os_error(&e.to_string())));
    let texts: Vec<String> = chain
        .iter()
        .map(|e| e.to_string().to_ascii_lowercase())
        .collect();
    if texts.iter().any(|t| t == "dns error") || root.starts_with("failed to lookup address") {
        return format!("the host name could not be resolved ({root})");
    }
    let io_kind = chain
        .iter()
        .rev()
        .find_map(|e| e.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind);
    if let Some(text) = io_kind.and_then(io_kind_text) {
        return text.to_owned();
    }
    if texts.iter().any(|t| t.contains("tls")) && !root.to_ascii_lowercase().contains("tls") {
        return format!("TLS handshake failed: {root}");
    }
    root
}

/// Words for the I/O errors a connection meets; `None` for the others.
fn io_kind_text(kind: std::io::ErrorKind) -> Option<&'static str> {
    use std::io::ErrorKind;
    Some(match kind {
        ErrorKind::ConnectionRefused => "connection refused",
        ErrorKind::ConnectionReset => "the connection was reset",
        ErrorKind::ConnectionAborted => "the connection was aborted",
        ErrorKind::TimedOut => "the connection timed out",
        ErrorKind::BrokenPipe => "the connection broke (broken pipe)",
        ErrorKind::UnexpectedEof => "the connection was closed early",
        ErrorKind::NotConnected => "not connected",
        ErrorKind::AddrNotAvailable => "the address is not available",
        ErrorKind::HostUnreachable => "the host is unreachable",
        ErrorKind::NetworkUnreachable => "the network is unreachable",
        _ => return None,
    })
}

/// Drops the ` (os error 111)` that `std::io::Error` appends.
fn strip_os_error(text: &str) -> String {
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_owned(),
        _ => text.to_owned(),
    }
}

/// `text` on one line: its lines trimmed and joined with `; `.
pub(crate) fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use std::error::Error as StdError;
    use std::io;

    use aws_credential_types::provider::error::CredentialsError;

    use super::*;

    /// An error with a message and an optional source, like the layers of the SDK's errors.
    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<dyn StdError + Send + Sync>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl StdError for Layer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    /// `dispatch failure` > `io error` > `client error (Connect)` > `what` > `root`.
    fn sdk_like(what: &'static str, root: impl StdError + Send + Sync + 'static) -> Layer {
        Layer(
            "dispatch failure",
            Some(Box::new(Layer(
                "io error",
                Some(Box::new(Layer(
                    "client error (Connect)",
                    Some(Box::new(Layer(what, Some(Box::new(root))))),
                ))),
            ))),
        )
    }

    #[test]
    fn root_causes_are_a_few_words() {
        let refused = sdk_like("tcp connect error", io::Error::from_raw_os_error(111));
        assert_eq!(root_cause(&refused), "connection refused");
        let reset = sdk_like(
            "tcp connect error",
            io::Error::from(io::ErrorKind::ConnectionReset),
        );
        assert_eq!(root_cause(&reset), "the connection was reset");
        let dns = sdk_like(
            "dns error",
            io::Error::other("failed to lookup address information: Name or service not known"),
        );
        assert_eq!(
            root_cause(&dns),
            "the host name could not be resolved (failed to lookup address information: Name or \
             service not known)"
        );
        let tls = sdk_like(
            "TLS handshake failed",
            io::Error::other("received corrupt message of type InvalidContentType"),
        );
        assert_eq!(
            root_cause(&tls),
            "TLS handshake failed: received corrupt message of type InvalidContentType"
        );
        let closed = Layer(
            "dispatch failure",
            Some(Box::new(Layer(
                "connection closed before message completed",
                None,
            ))),
        );
        assert_eq!(
            root_cause(&closed),
            "connection closed before message completed"
        );
        let multi_line = Layer("first line\n  second line\n", None);
        assert_eq!(root_cause(&multi_line), "first line; second line");
        let denied = Layer("x", Some(Box::new(io::Error::from_raw_os_error(13))));
        assert_eq!(root_cause(&denied), "Permission denied");
    }

    #[test]
    fn os_error_numbers_are_dropped() {
        assert_eq!(
            strip_os_error("Connection refused (os error 111)"),
            "Connection refused"
        );
        assert_eq!(strip_os_error("no number (here)"), "no number (here)");
        assert_eq!(one_line("a\n\n b \nc"), "a; b; c");
    }

    #[test]
    fn credential_problems_are_recognised() {
        let missing = Layer(
            "other",
            Some(Box::new(CredentialsError::not_loaded(
                "no provider had any",
            ))),
        );
        assert_eq!(
            credentials_problem(&missing).unwrap(),
            format!("no AWS credentials were found: {HOW_TO_GIVE_CREDENTIALS}")
        );
        let message = credentials_problem(&missing).unwrap();
        for hint in [
            ".credentials(..)",
            "AWS_PROFILE",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            ".local()",
        ] {
            assert!(message.contains(hint), "{hint} in {message}");
        }
        let timed_out = CredentialsError::provider_timed_out(Duration::from_secs(5));
        assert!(credentials_problem(&timed_out).unwrap().starts_with(
            "loading AWS credentials timed out (credentials provider timed out after 5 \
                 seconds): "
        ));
        let invalid = CredentialsError::invalid_configuration(Layer(
            "profile file: unexpected text\non line 3",
            None,
        ));
        assert_eq!(
            credentials_problem(&invalid).unwrap(),
            "the AWS credentials configuration is invalid: profile file: unexpected text; on \
             line 3"
        );
        let failed = CredentialsError::provider_error(Layer("STS answered 503", None));
        assert_eq!(
            credentials_problem(&failed).unwrap(),
            "loading AWS credentials failed: STS answered 503"
        );
        let no_provider = Layer(
            "failed to select an auth scheme to sign the request with. \"sigv4\" wasn't a valid \
             option because there was no identity resolver for it.",
            None,
        );
        assert!(
            credentials_problem(&no_provider)
                .unwrap()
                .contains("has no credentials provider")
        );
        assert_eq!(
            credentials_problem(&sdk_like("tcp connect error", io::Error::other("x"))),
            None
        );
        assert_eq!(
            rejected_credentials("ExpiredTokenException", "The security token has expired."),
            "DynamoDB rejected the AWS credentials (ExpiredTokenException: The security token \
             has expired.); check the access key id, the secret key and the session token, or \
             the profile they come from"
        );
    }

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_size(16 * 1024 * 1024), "16 MiB");
        assert_eq!(human_size(1536 * 1024), "1.5 MiB");
        assert_eq!(human_size(400 * 1024), "400 KiB");
        assert_eq!(human_size(1500), "1.5 KiB");
        assert_eq!(human_size(100), "100 bytes");
    }

    #[test]
    fn too_large_names_the_settings() {
        let off = Error::ItemTooLarge {
            key: "k".into(),
            size: 500_000,
            max: 409_600,
            max_value_size: None,
        };
        assert_eq!(
            off.to_string(),
            "the value for key \"k\" makes an item of 500000 bytes, over DynamoDB's 400 KB item \
             limit (409600 bytes), and large values are off (`.large_values(false)`): turn them \
             on with `.large_values(true)` to split such values across several items (up to \
             `max_value_size`, 16 MiB by default), or store a smaller value"
        );
        let over = Error::ItemTooLarge {
            key: "k".into(),
            size: 17_000_000,
            max: 16 * 1024 * 1024,
            max_value_size: Some(16 * 1024 * 1024),
        };
        assert_eq!(
            over.to_string(),
            "the value for key \"k\" encodes to 17000000 bytes, over this map's `max_value_size` \
             of 16777216 bytes (16 MiB; large values are on): raise it with \
             `.max_value_size(..)` (at most 64 MiB), or store a smaller value"
        );
        let refused = Error::ItemTooLarge {
            key: "k".into(),
            size: 409_601,
            max: 409_600,
            max_value_size: Some(16 * 1024 * 1024),
        };
        assert_eq!(
            refused.to_string(),
            "DynamoDB refused the item for key \"k\" as larger than its 400 KB item limit \
             (409600 bytes), although it was estimated to fit (large values are on, \
             `max_value_size` 16777216 bytes): store a smaller value"
        );
    }

    #[test]
    fn connection_errors_name_the_endpoint_when_known() {
        let known = Error::Connection {
            endpoint: "http://127.0.0.1:1 (from DYNAMODICT_ENDPOINT)".into(),
            message: "connection refused".into(),
        };
        assert_eq!(
            known.to_string(),
            "could not reach DynamoDB at http://127.0.0.1:1 (from DYNAMODICT_ENDPOINT): \
             connection refused"
        );
        let unknown = Error::Connection {
            endpoint: String::new(),
            message: "connection refused".into(),
        };
        assert_eq!(
            unknown.to_string(),
            "could not reach DynamoDB: connection refused"
        );
    }
}
