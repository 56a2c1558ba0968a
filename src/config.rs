//! Building a map: [`DictBuilder`], with the connection settings and map options.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::Credentials;

use crate::async_dict::AsyncDynamoDbDict;
use crate::dict::DynamoDbDict;
use crate::engine::{
    BatchOptions, Connection, ConnectionOptions, Engine, OpenMode, Timeouts, table,
};
use crate::layout::{self, Layout};
use crate::serializer::Serializer;
use crate::values::chunked::DEFAULT_MAX_VALUE_BYTES;
use crate::values::{DEFAULT_SWEEP_GRACE, Store};
use crate::{Error, Result};

/// Builds a [`DynamoDbDict`] ([`build`](Self::build)) or an [`AsyncDynamoDbDict`]
/// ([`build_async`](Self::build_async)). Get one from [`DynamoDbDict::builder`] or
/// [`AsyncDynamoDbDict::builder`].
///
/// ```no_run
/// use dynamodict::DynamoDbDict;
/// use std::time::Duration;
///
/// let users: DynamoDbDict<String> = DynamoDbDict::builder("app-table")
///     .namespace("users")
///     .region("eu-west-1")
///     .default_ttl(Duration::from_secs(3600))
///     .build()?;
/// # Ok::<(), dynamodict::Error>(())
/// ```
pub struct DictBuilder<V> {
    table: String,
    namespace: String,
    open_mode: OpenMode,
    manage_ttl: bool,
    ttl_attribute: Option<String>,
    default_ttl: Option<Duration>,
    consistent_reads: bool,
    shards: u16,
    serializer: Serializer,
    batch: BatchOptions,
    max_value: Option<usize>,
    sweep_grace: Duration,
    auto_sweep: bool,
    /// Set by the cache: the namespace carries a reserved suffix on purpose.
    cache_namespace: bool,
    connection: ConnectionOptions,
    _value: PhantomData<fn() -> V>,
}

impl<V> fmt::Debug for DictBuilder<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DictBuilder")
            .field("table", &self.table)
            .field("namespace", &self.namespace)
            .field("open_mode", &self.open_mode)
            .field("manage_ttl", &self.manage_ttl)
            .field("ttl_attribute", &self.ttl_attribute)
            .field("default_ttl", &self.default_ttl)
            .field("consistent_reads", &self.consistent_reads)
            .field("shards", &self.shards)
            .field("serializer", &self.serializer)
            .field("batch", &self.batch)
            .field("max_value", &self.max_value)
            .field("sweep_grace", &self.sweep_grace)
            .field("auto_sweep", &self.auto_sweep)
            .field("connection", &self.connection)
            .finish()
    }
}

impl<V> DictBuilder<V> {
    pub(crate) fn new(table: impl Into<String>) -> Self {
        DictBuilder {
            table: table.into(),
            namespace: "default".into(),
            open_mode: OpenMode::Create,
            manage_ttl: true,
            ttl_attribute: Some(layout::DEFAULT_TTL_ATTRIBUTE.into()),
            default_ttl: None,
            consistent_reads: true,
            shards: layout::DEFAULT_SHARDS,
            serializer: Serializer::default(),
            batch: BatchOptions::default(),
            max_value: Some(DEFAULT_MAX_VALUE_BYTES),
            sweep_grace: DEFAULT_SWEEP_GRACE,
            auto_sweep: true,
            cache_namespace: false,
            connection: ConnectionOptions::default(),
            _value: PhantomData,
        }
    }

    /// A namespace of the response cache (with its reserved suffix).
    pub(crate) fn cache_namespace(mut self, namespace: String) -> Self {
        self.namespace = namespace;
        self.cache_namespace = true;
        self
    }

    /// The namespace (default `"default"`). Names ending in `.responses` or `.redirects` are
    /// reserved for [`DynamoDbCache`](crate::DynamoDbCache). Maps with different namespaces share a table without
    /// seeing each other's keys.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// How [`build`](Self::build) opens the table: create it when missing (the default),
    /// verify it without changing anything, or trust it and send no request until the first
    /// operation. See [`OpenMode`] for the requests each sends.
    ///
    /// ```no_run
    /// use dynamodict::{DynamoDbDict, OpenMode};
    ///
    /// // A role that may read and write items but not create tables or change their settings:
    /// let map: DynamoDbDict<u64> = DynamoDbDict::builder("app-table")
    ///     .open_mode(OpenMode::Verify)
    ///     .build()?;
    /// # Ok::<(), dynamodict::Error>(())
    /// ```
    pub fn open_mode(mut self, mode: OpenMode) -> Self {
        self.open_mode = mode;
        self
    }

    /// `true`: [`OpenMode::Create`] (the default); `false`: [`OpenMode::Verify`], where a
    /// missing table is [`Error::TableNotFound`].
    pub fn create_table(mut self, create: bool) -> Self {
        self.open_mode = if create {
            OpenMode::Create
        } else {
            OpenMode::Verify
        };
        self
    }

    /// Whether [`OpenMode::Create`] may enable DynamoDB's TTL on the table (default `true`;
    /// the other modes never change it). TTL management is separate from TTL use: with
    /// `false`, in the other modes, or on a server without TTL (dynalite), expired values are
    /// still hidden from every read; only if DynamoDB's TTL is not enabled on the table, it
    /// does not delete them, and their storage is kept until they are overwritten or removed.
    /// With `true`, credentials that may not call `UpdateTimeToLive` fail the open with
    /// [`Error::AccessDenied`], which says what to do.
    pub fn manage_ttl(mut self, manage: bool) -> Self {
        self.manage_ttl = manage;
        self
    }

    /// Turn per-item expiry on or off (default on, attribute `ttl`). When on, reads treat
    /// expired items as absent, and DynamoDB's TTL is enabled on the table to delete them (see
    /// [`manage_ttl`](Self::manage_ttl)).
    pub fn ttl(mut self, enabled: bool) -> Self {
        self.ttl_attribute = enabled.then(|| layout::DEFAULT_TTL_ATTRIBUTE.into());
        self
    }

    /// Use another attribute name for expiry (turns expiry on).
    pub fn ttl_attribute(mut self, name: impl Into<String>) -> Self {
        self.ttl_attribute = Some(name.into());
        self
    }

    /// Expiry applied by [`insert`](DynamoDbDict::insert), [`set`](DynamoDbDict::set),
    /// [`setdefault`](DynamoDbDict::setdefault) and [`insert_many`](DynamoDbDict::insert_many).
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }

    /// Strongly consistent reads (default `true`: a read sees every write acknowledged before
    /// it). `false` halves read cost on AWS at the price of possibly stale reads.
    pub fn consistent_reads(mut self, consistent: bool) -> Self {
        self.consistent_reads = consistent;
        self
    }

    /// Partition keys per namespace (default 8, at most 256). Recorded in the table: every map
    /// using the table must agree.
    pub fn shards(mut self, shards: u16) -> Self {
        self.shards = shards;
        self
    }

    /// The serializer pipeline (default [`Serializer::bincode`]).
    pub fn serializer(mut self, serializer: Serializer) -> Self {
        self.serializer = serializer;
        self
    }

    /// Largest value, in encoded bytes (default 16 MiB). Values over DynamoDB's 400 KB item
    /// limit are split across several items (see the [`crate::layout`] docs); larger
    /// than this they fail with [`Error::ItemTooLarge`]. At most 64 MiB.
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.max_value = Some(bytes);
        self
    }

    /// Turn large (chunked) values off: values over 400 KB fail with [`Error::ItemTooLarge`],
    /// and batch writes and deletes skip the metadata read that finds the chunks of replaced
    /// large values (about one extra request per 100 keys).
    pub fn large_values(mut self, enabled: bool) -> Self {
        self.max_value = enabled.then_some(self.max_value.unwrap_or(DEFAULT_MAX_VALUE_BYTES));
        self
    }

    /// The grace period of large values (default 15 minutes): the storage of a large value
    /// that no key refers to any more is reclaimed only once the value is older than this. It
    /// must be longer than any write can take: a large value's chunks and manifest are only
    /// sent within the first half of this period after its upload started (a write that takes
    /// longer fails with [`Error::Timeout`] and leaves its chunks to the sweep), and it must be
    /// at least 2 s and four times the operation timeout ([`Timeouts::operation`], which bounds
    /// the SDK's retries), so that no request of a value can land after its storage was
    /// reclaimed. Clocks of the machines sharing a table must agree within a quarter of it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use dynamodict::{DynamoDbDict, Error, Timeouts};
    ///
    /// // Too short for the default 30 s operation timeout: refused before connecting.
    /// let refused = DynamoDbDict::<Vec<u8>>::builder("app-table")
    ///     .sweep_grace(Duration::from_secs(60))
    ///     .build();
    /// assert!(matches!(refused, Err(Error::Config(_))));
    /// ```
    pub fn sweep_grace(mut self, grace: Duration) -> Self {
        self.sweep_grace = grace;
        self
    }

    /// Reclaim unreferenced large-value storage without being asked (default on): at most once
    /// per grace period per map handle, a write that creates or retires a large value also
    /// runs [`DynamoDbDict::sweep`]. Its cost is one query per shard over the namespace's
    /// generation records (about 100 bytes per large value stored) and one consistent
    /// `BatchGetItem` of their keys per 100 records; namespaces that never held a large
    /// value pay nothing. With `false`, call [`DynamoDbDict::sweep`] yourself.
    pub fn auto_sweep(mut self, enabled: bool) -> Self {
        self.auto_sweep = enabled;
        self
    }

    /// Batch concurrency and retry settings.
    pub fn batch_options(mut self, batch: BatchOptions) -> Self {
        self.batch = batch;
        self
    }

    /// Request timeouts (on by default, see [`Timeouts::default`]).
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.connection.timeouts = timeouts;
        self
    }

    /// Whether every item request asks DynamoDB for the capacity it consumed
    /// (`ReturnConsumedCapacity = TOTAL`), counted in [`Stats`](crate::Stats)'s
    /// `read_capacity_units` and `write_capacity_units` and in the operations' spans. Default
    /// `true`. The answer is a few bytes more per request; DynamoDB Local takes longer to
    /// answer writes with it (set, insert: about 10% more latency in the `map_ops`
    /// benchmark, see BENCHMARKS.md), so turn it off where latency matters more than the
    /// figures. Requests, retries, throttles, bytes and chunks are counted either way.
    pub fn capacity_accounting(mut self, enabled: bool) -> Self {
        self.connection.capacity_off = !enabled;
        self
    }

    /// Attempts per request, first try included (SDK standard retry mode with exponential
    /// backoff; default 3).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.connection.max_attempts = Some(attempts);
        self
    }

    /// Send requests to this endpoint (DynamoDB Local, a proxy, a VPC endpoint). For a loopback
    /// endpoint, dummy credentials and region `us-east-1` are used unless given. Cannot be
    /// combined with `local()` (feature `local`): that is [`Error::Config`].
    pub fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.connection.endpoint_url = Some(url.into());
        self
    }

    /// The AWS region (otherwise the default chain: `AWS_REGION`, profile, instance metadata).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.connection.region = Some(region.into());
        self
    }

    /// Static credentials (otherwise the default chain). Never printed by `Debug`.
    pub fn credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> Self {
        self.connection.credentials = Some(Credentials::new(
            access_key_id,
            secret_access_key,
            session_token,
            None,
            "dynamodict",
        ));
        self
    }

    /// Use a loaded SDK configuration (region, credentials, endpoint, retry, ...). Timeouts and
    /// retries set on this builder still apply.
    pub fn sdk_config(mut self, config: &SdkConfig) -> Self {
        self.connection.sdk_config = Some(config.clone());
        self
    }

    /// Reuse an existing client's configuration. The map builds its own client from it (its
    /// requests run on the map's internal runtime), applying this builder's timeouts and retries.
    pub fn client(mut self, client: &Client) -> Self {
        self.connection.client = Some(client.clone());
        self
    }

    /// Use the embedded DynamoDB Local: started on first use (in memory, free loopback port),
    /// or the endpoint in `DYNAMODICT_ENDPOINT`. For tests, examples and benchmarks.
    ///
    /// It sets the endpoint, so it is refused with [`Error::Config`] together with
    /// [`endpoint_url`](Self::endpoint_url), or with an [`sdk_config`](Self::sdk_config) that
    /// names an endpoint. With [`client`](Self::client) it replaces the client's endpoint.
    ///
    /// ```
    /// use dynamodict::{DynamoDbDict, Error};
    ///
    /// let refused = DynamoDbDict::<u8>::builder("app-table")
    ///     .endpoint_url("http://127.0.0.1:8000")
    ///     .local()
    ///     .build();
    /// assert!(matches!(refused, Err(Error::Config(_))));
    /// ```
    #[cfg(feature = "local")]
    pub fn local(mut self) -> Self {
        self.connection.local = true;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        layout::validate_table_name(&self.table)?;
        if self.cache_namespace {
            layout::validate_namespace_text(&self.namespace)?;
        } else {
            layout::validate_namespace(&self.namespace)?;
        }
        if self.shards == 0 || self.shards > layout::MAX_SHARDS {
            return Err(Error::Config(format!(
                "shards must be between 1 and {}, got {}",
                layout::MAX_SHARDS,
                self.shards
            )));
        }
        if let Some(attr) = &self.ttl_attribute
            && (attr.is_empty()
                || [
                    layout::PK,
                    layout::SK,
                    layout::VALUE,
                    layout::FORMAT,
                    layout::SIGNATURE,
                ]
                .contains(&attr.as_str()))
        {
            return Err(Error::Config(format!(
                "the TTL attribute name {attr:?} is empty or used by the layout"
            )));
        }
        if self
            .max_value
            .is_some_and(|m| m > crate::serializer::MAX_DECODED_SIZE)
        {
            return Err(Error::Config(format!(
                "max_value_size is at most {} bytes",
                crate::serializer::MAX_DECODED_SIZE
            )));
        }
        self.serializer.check()?;
        self.connection.validate()?;
        let operation = self.connection.timeouts.operation;
        if self.sweep_grace < operation.saturating_mul(4)
            || self.sweep_grace < Duration::from_secs(2)
        {
            return Err(Error::Config(format!(
                "sweep_grace ({:?}) must be at least 2 s and at least four times the operation \
                 timeout ({operation:?}), so that no write of a large value can land after its \
                 storage was reclaimed; raise sweep_grace or lower Timeouts::operation",
                self.sweep_grace
            )));
        }
        if self.batch.concurrency == 0 || self.batch.max_attempts == 0 {
            return Err(Error::Config(
                "batch concurrency and max_attempts must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// Connects, opens the table as the [`open_mode`](Self::open_mode) says (by default:
    /// checks it, creating it when missing) and returns the blocking map.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidTableName`], [`Error::InvalidNamespace`] or [`Error::Config`], before
    ///   connecting, for settings that cannot work (shards, TTL attribute, sizes, sweep grace,
    ///   batch options, a serializer that signs with an empty secret key, `.local()` together
    ///   with an endpoint);
    /// - [`Error::Config`] when no AWS region is configured;
    /// - `Error::Local` (feature `local`) when the embedded DynamoDB Local cannot be installed or
    ///   started;
    /// - [`Error::TableNotFound`] for a missing table with [`OpenMode::Verify`];
    /// - [`Error::LayoutMismatch`] for a table with another key schema or shard count, or whose
    ///   DynamoDB TTL is enabled on another attribute;
    /// - [`Error::AccessDenied`] when the credentials may not create the table or enable its TTL
    ///   (the message says what to do);
    /// - the [request errors](Error#request-errors).
    ///
    /// With [`OpenMode::Trust`], `build` sends no request: the table's errors come with the
    /// first operation.
    pub fn build(self) -> Result<DynamoDbDict<V>> {
        self.validate()?;
        let connection = self.connection.clone().connect_blocking()?;
        let store = connection.block_on(self.open(Arc::clone(&connection)))?;
        Ok(AsyncDynamoDbDict::from_store(Arc::new(store)).into())
    }

    /// Connects, opens the table as the [`open_mode`](Self::open_mode) says and returns the
    /// async map, on the caller's runtime.
    ///
    /// # Errors
    ///
    /// The errors of [`build`](Self::build). The future must run inside a tokio runtime (with IO
    /// and time enabled).
    pub async fn build_async(self) -> Result<AsyncDynamoDbDict<V>> {
        self.validate()?;
        let connection = self.connection.clone().connect().await?;
        let store = self.open(connection).await?;
        Ok(AsyncDynamoDbDict::from_store(Arc::new(store)))
    }

    /// Checks (or creates) the table over `connection` and assembles the map's store.
    async fn open(self, connection: Arc<Connection>) -> Result<Store> {
        let layout = Layout {
            table: self.table,
            namespace: self.namespace,
            shards: self.shards,
            ttl_attribute: self.ttl_attribute,
        };
        let table_check =
            table::open_table(&connection, &layout, self.open_mode, self.manage_ttl).await?;
        let engine = Engine {
            connection,
            layout,
            consistent_reads: self.consistent_reads,
            batch: self.batch,
            table_check: Arc::new(table_check),
        };
        Ok(Store::new(
            engine,
            self.serializer,
            self.default_ttl,
            self.max_value,
            self.sweep_grace,
            self.auto_sweep,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_credentials() {
        let b = DictBuilder::<u8>::new("table").credentials(
            "AKIDEXAMPLE",
            "very-secret-key",
            Some("session-tok".into()),
        );
        let text = format!("{b:?}");
        assert!(
            !text.contains("very-secret-key")
                && !text.contains("AKIDEXAMPLE")
                && !text.contains("session-tok"),
            "{text}"
        );
    }

    #[test]
    fn validation_happens_before_connecting() {
        assert!(matches!(
            DictBuilder::<u8>::new("x").build(),
            Err(Error::InvalidTableName { .. })
        ));
        assert!(matches!(
            DictBuilder::<u8>::new("table").namespace("a#b").build(),
            Err(Error::InvalidNamespace { .. })
        ));
        assert!(matches!(
            DictBuilder::<u8>::new("table").shards(0).build(),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            DictBuilder::<u8>::new("table").ttl_attribute("pk").build(),
            Err(Error::Config(_))
        ));
    }
}
