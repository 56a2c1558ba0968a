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
    /// one-batch-at-a-time loop against DynamoDB Local (8 gave 2.7×, see the README's
    /// Performance section). Against a table with little provisioned write capacity, fewer
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
