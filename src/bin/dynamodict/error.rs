//! The tool's error: one line for stderr, and the exit code.

use std::fmt;

use dynamodict::aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Exit code of every error.
pub const FAILURE: i32 = 1;
/// Exit code of `get` for a key that holds no live value.
pub const NOT_FOUND: i32 = 3;

/// What went wrong, as printed on stderr, and the exit code.
#[derive(Debug)]
pub struct CliError {
    message: String,
    pub code: i32,
}

pub type CliResult<T = ()> = Result<T, CliError>;

impl CliError {
    pub fn new(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code: FAILURE,
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code: NOT_FOUND,
        }
    }

    /// The same error, its message prefixed with `context: `.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// An error of a request this tool sent itself through the SDK.
    pub fn sdk<E, R>(err: SdkError<E, R>, table: Option<&str>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: fmt::Debug + Send + Sync + 'static,
    {
        if let SdkError::ServiceError(service) = &err {
            let inner = service.err();
            let code = inner.code().unwrap_or("Unknown");
            let message = inner.message().unwrap_or_default();
            return match (code, table) {
                ("ResourceNotFoundException", Some(table)) => table_not_found(table),
                _ => CliError::new(format!("DynamoDB error {code}: {message}")),
            };
        }
        CliError::new(DisplayErrorContext(&err).to_string())
    }
}

fn table_not_found(table: &str) -> CliError {
    CliError::new(format!("table {table:?} does not exist"))
}

impl From<dynamodict::Error> for CliError {
    fn from(err: dynamodict::Error) -> Self {
        match err {
            // The library's message advises builder settings; a user of the tool wants the fact.
            dynamodict::Error::TableNotFound { table } => table_not_found(&table),
            err => CliError::new(err.to_string()),
        }
    }
}

impl From<dynamodict::local::LocalError> for CliError {
    fn from(err: dynamodict::local::LocalError) -> Self {
        CliError::new(err.to_string())
    }
}

impl fmt::Display for CliError {
    /// One line: line breaks inside a message become spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words = self.message.split_whitespace();
        if let Some(first) = words.next() {
            f.write_str(first)?;
        }
        for word in words {
            write!(f, " {word}")?;
        }
        Ok(())
    }
}
