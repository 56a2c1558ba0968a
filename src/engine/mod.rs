//! The engine: everything that talks to DynamoDB, one request at a time or in batches, and
//! nothing about values. Values, chunks and their garbage collection live one layer up, in
//! [`crate::values`].
//!
//! - [`connection`]: the SDK clients, and the runtime that drives blocking calls
//!   ([`bridge`]), with the request [`options`];
//! - [`table`]: opening a table (schema, TTL setting, layout metadata), as the [`OpenMode`]
//!   says;
//! - [`requests`]: single-item reads, writes and deletes, with conditions;
//! - [`batch`]: batch writes and reads within DynamoDB's request limits, retried;
//! - [`paging`]: queries over one partition, page by page;
//! - [`stats`]: what the requests cost (an SDK interceptor), per connection and per operation.

use std::sync::Arc;

use aws_sdk_dynamodb::Client;

use crate::layout::Layout;

pub(crate) mod batch;
pub(crate) mod bridge;
pub(crate) mod connection;
pub(crate) mod options;
pub(crate) mod paging;
pub(crate) mod requests;
pub(crate) mod stats;
pub(crate) mod table;

pub(crate) use connection::{Connection, ConnectionOptions};
pub use options::{BatchOptions, OpenMode, Timeouts};
pub use stats::Stats;

/// One namespace of one table, reached through one connection.
#[derive(Clone)]
pub(crate) struct Engine {
    pub connection: Arc<Connection>,
    pub layout: Layout,
    /// Strongly consistent reads for the map's own reads (the large-value protocol always
    /// reads consistently where it decides on deletions).
    pub consistent_reads: bool,
    pub batch: BatchOptions,
    /// The table's layout check, done at open or before the first operation.
    pub table_check: Arc<table::TableCheck>,
}

impl Engine {
    /// The client for the calling context (see [`Connection`]).
    pub(crate) fn client(&self) -> &Client {
        self.connection.client()
    }

    pub(crate) fn table(&self) -> &str {
        &self.layout.table
    }

    /// Checks the table's layout if opening deferred that ([`OpenMode::Trust`]); free after
    /// the first time. Fails first with [`Error::Runtime`](crate::Error::Runtime) outside a
    /// tokio runtime.
    pub(crate) async fn ready(&self) -> crate::Result<()> {
        bridge::in_runtime()?;
        self.table_check
            .ensure(&self.connection, &self.layout)
            .await
    }
}
