//! Request options: timeouts, and how batches run and retry.

use std::time::Duration;

/// Timeouts applied to every request. On by default: a server that accepts a connection and
/// never answers cannot hang the caller forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing a TCP/TLS connection.
    pub connect: Duration,
    /// One attempt of a request, retries excluded.
    pub attempt: Duration,
    /// A whole call, retries included.
    pub operation: Duration,
}

impl Default for Timeouts {
    /// 3 s to connect, 10 s per attempt, 30 s per operation.
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(3),
            attempt: Duration::from_secs(10),
            operation: Duration::from_secs(30),
        }
    }
}

/// How batch operations run and retry the items DynamoDB hands back unprocessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// Requests kept in flight at once (listing also reads at most this many shards at once).
    ///
    /// The default, 16, is what a 10,000-item `insert_many` needed to run over 3× faster than a
    /// one-batch-at-a-time loop against DynamoDB Local (8 gave 2.7×, see BENCHMARKS.md in the
    /// repository). Against a table with little provisioned write capacity, fewer
    /// requests in flight mean fewer throttled batches to retry.
    pub concurrency: usize,
    /// Attempts per batch before giving up with [`Error::Throttled`](crate::Error::Throttled).
    pub max_attempts: u32,
    /// First backoff delay; doubles each attempt, with full jitter.
    pub initial_backoff: Duration,
    /// Largest backoff delay.
    pub max_backoff: Duration,
}

impl Default for BatchOptions {
    /// 16 requests in flight, 10 attempts, backoff from 25 ms up to 2 s.
    fn default() -> Self {
        BatchOptions {
            concurrency: 16,
            max_attempts: 10,
            initial_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_secs(2),
        }
    }
}

/// How a map opens its table: which requests [`build`](crate::DictBuilder::build) sends, and
/// what it may change. Set with [`DictBuilder::open_mode`](crate::DictBuilder::open_mode).
///
/// Every mode checks the layout (the layout item that records the number of shards) before the
/// first operation, and every mode hides expired values from reads, whether or not DynamoDB's
/// TTL is enabled on the table. Requests sent by `build` on a table that a map has opened
/// before (measured through a counting proxy, see the README's "Opening a table"):
///
/// | mode | at `build` | before the first operation | may change the table |
/// |---|---|---|---|
/// | [`Create`](Self::Create) | 1 `GetItem` | nothing | creates it, enables TTL |
/// | [`Verify`](Self::Verify) | 1 `GetItem` | nothing | never |
/// | [`Trust`](Self::Trust) | nothing | 1 `GetItem`, once | never |
///
/// ```no_run
/// use dynamodict::{DynamoDbDict, OpenMode};
///
/// // A Lambda function whose table is managed elsewhere: no request until the first `get`.
/// let sessions: DynamoDbDict<String> = DynamoDbDict::builder("app-table")
///     .open_mode(OpenMode::Trust)
///     .build()?;
/// let user = sessions.get("session-42")?; // proves the table and checks its layout, once
/// # Ok::<(), dynamodict::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OpenMode {
    /// Create the table if it is missing (on-demand billing, key schema `pk`/`sk`), and enable
    /// DynamoDB's TTL on the map's expiry attribute unless
    /// [`manage_ttl(false)`](crate::DictBuilder::manage_ttl). The default.
    #[default]
    Create,
    /// Check that the table exists with the right key schema and layout, and that DynamoDB's
    /// TTL, if enabled, uses the map's expiry attribute; never create the table or change its
    /// settings. A missing table is [`Error::TableNotFound`](crate::Error::TableNotFound). The
    /// only write it may send is the layout item, once per table, when no map wrote it before.
    Verify,
    /// Send nothing at `build`: the first operation proves the table (a missing one is
    /// [`Error::TableNotFound`](crate::Error::TableNotFound) then), after one `GetItem` that
    /// checks the layout, once per map handle and its clones. For short-lived processes
    /// (Lambda, CLIs) that open a map at every start.
    Trust,
}
