//! Building a map: connection settings, timeouts, retries and map options.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::{RetryConfig, RetryPartition};
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};

use crate::bridge::Bridge;
use crate::dict::{Core, DynamoDbDict};
use crate::layout::{self, Layout};
use crate::serializer::Serializer;
use crate::{Error, Result};

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
    /// Attempts per batch before giving up with [`Error::Throttled`].
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

/// Everything needed to reach DynamoDB. Shared by [`DictBuilder`] and the cache's builder.
#[derive(Clone, Default)]
pub(crate) struct ConnectionOptions {
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub credentials: Option<Credentials>,
    pub sdk_config: Option<SdkConfig>,
    pub client: Option<Client>,
    pub timeouts: Timeouts,
    pub max_attempts: Option<u32>,
    pub local: bool,
}

impl fmt::Debug for ConnectionOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionOptions")
            .field("endpoint_url", &self.endpoint_url)
            .field("region", &self.region)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "sdk_config",
                &self.sdk_config.as_ref().map(|_| "<SdkConfig>"),
            )
            .field("client", &self.client.as_ref().map(|_| "<Client>"))
            .field("timeouts", &self.timeouts)
            .field("max_attempts", &self.max_attempts)
            .field("local", &self.local)
            .finish()
    }
}

/// The runtime and client shared by every clone of a map (and by maps opened from it).
pub(crate) struct Connection {
    // Field order matters: the client (and its connection pool) is dropped before the runtime.
    pub client: Client,
    pub bridge: Bridge,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Connection")
    }
}

fn is_loopback(url: &str) -> bool {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl ConnectionOptions {
    /// Resolves the endpoint of the embedded DynamoDB Local when asked for.
    fn resolve_local(&mut self) -> Result<()> {
        #[cfg(feature = "local")]
        if self.local {
            let server = crate::local::DynamoDbLocal::shared()?;
            self.endpoint_url = Some(server.endpoint().to_owned());
        }
        #[cfg(not(feature = "local"))]
        if self.local {
            return Err(Error::Config(
                "`local()` needs the crate feature \"local\"".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn connect(mut self) -> Result<Arc<Connection>> {
        self.resolve_local()?;
        let bridge = Bridge::new()?;
        let client = bridge.run(self.build_client())?;
        Ok(Arc::new(Connection { client, bridge }))
    }

    async fn build_client(self) -> Result<Client> {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(self.timeouts.connect)
            .operation_attempt_timeout(self.timeouts.attempt)
            .operation_timeout(self.timeouts.operation)
            .build();
        let retry = match self.max_attempts {
            Some(n) => RetryConfig::standard().with_max_attempts(n.max(1)),
            None => RetryConfig::standard(),
        };
        let mut builder = if let Some(client) = self.client {
            client.config().to_builder()
        } else {
            let sdk_config = match self.sdk_config {
                Some(config) => config,
                None => {
                    let local = self.endpoint_url.as_deref().is_some_and(is_loopback);
                    let mut loader = aws_config::defaults(BehaviorVersion::latest());
                    match (self.region, local) {
                        (Some(region), _) => loader = loader.region(Region::new(region)),
                        (None, true) => loader = loader.region(Region::from_static("us-east-1")),
                        (None, false) => {}
                    }
                    match (self.credentials.clone(), local) {
                        (Some(c), _) => loader = loader.credentials_provider(c),
                        // DynamoDB Local accepts any credentials; don't let the default chain
                        // stall on the instance-metadata service.
                        (None, true) => {
                            loader = loader.credentials_provider(Credentials::new(
                                // DynamoDB Local accepts only alphanumeric access key ids.
                                "dynamodictlocal",
                                "dynamodictlocal",
                                None,
                                None,
                                "dynamodict-local",
                            ))
                        }
                        (None, false) => {}
                    }
                    loader.load().await
                }
            };
            aws_sdk_dynamodb::config::Builder::from(&sdk_config)
        };
        if let Some(url) = self.endpoint_url {
            builder = builder.endpoint_url(url);
        }
        if let Some(credentials) = self.credentials {
            builder = builder.credentials_provider(SharedCredentialsProvider::new(credentials));
        }
        // Each connection gets its own retry token bucket: the SDK's default is one bucket per
        // process and region, so one map's failures could switch off retries for every other.
        let config = builder
            .timeout_config(timeouts)
            .retry_config(retry)
            .retry_partition(RetryPartition::custom("dynamodict").build())
            .build();
        if config.region().is_none() {
            return Err(Error::Config(
                "no AWS region is configured: set AWS_REGION, a profile region, or call `.region(..)`"
                    .into(),
            ));
        }
        Ok(Client::from_conf(config))
    }
}

/// Builds a [`DynamoDbDict`]. Get one from [`DynamoDbDict::builder`].
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
    create_table: bool,
    ttl_attribute: Option<String>,
    default_ttl: Option<Duration>,
    consistent_reads: bool,
    shards: u16,
    serializer: Serializer,
    batch: BatchOptions,
    max_value: Option<usize>,
    connection: ConnectionOptions,
    _value: PhantomData<fn() -> V>,
}

impl<V> fmt::Debug for DictBuilder<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DictBuilder")
            .field("table", &self.table)
            .field("namespace", &self.namespace)
            .field("create_table", &self.create_table)
            .field("ttl_attribute", &self.ttl_attribute)
            .field("default_ttl", &self.default_ttl)
            .field("consistent_reads", &self.consistent_reads)
            .field("shards", &self.shards)
            .field("serializer", &self.serializer)
            .field("batch", &self.batch)
            .field("max_value", &self.max_value)
            .field("connection", &self.connection)
            .finish()
    }
}

impl<V> DictBuilder<V> {
    pub(crate) fn new(table: impl Into<String>) -> Self {
        DictBuilder {
            table: table.into(),
            namespace: "default".into(),
            create_table: true,
            ttl_attribute: Some(layout::DEFAULT_TTL_ATTRIBUTE.into()),
            default_ttl: None,
            consistent_reads: true,
            shards: layout::DEFAULT_SHARDS,
            serializer: Serializer::default(),
            batch: BatchOptions::default(),
            max_value: Some(crate::chunks::DEFAULT_MAX_VALUE_BYTES),
            connection: ConnectionOptions::default(),
            _value: PhantomData,
        }
    }

    /// The namespace (default `"default"`). Maps with different namespaces share a table without
    /// seeing each other's keys.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Create the table (on-demand billing, TTL enabled) if it does not exist. Default `true`;
    /// with `false` a missing table is [`Error::TableNotFound`].
    pub fn create_table(mut self, create: bool) -> Self {
        self.create_table = create;
        self
    }

    /// Turn per-item expiry on or off (default on, attribute `ttl`). When on, DynamoDB's TTL is
    /// enabled on the table and reads treat expired items as absent.
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
        self.max_value = enabled.then_some(
            self.max_value
                .unwrap_or(crate::chunks::DEFAULT_MAX_VALUE_BYTES),
        );
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

    /// Attempts per request, first try included (SDK standard retry mode with exponential
    /// backoff; default 3).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.connection.max_attempts = Some(attempts);
        self
    }

    /// Send requests to this endpoint (DynamoDB Local, a proxy, a VPC endpoint). For a loopback
    /// endpoint, dummy credentials and region `us-east-1` are used unless given.
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
    #[cfg(feature = "local")]
    pub fn local(mut self) -> Self {
        self.connection.local = true;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        layout::validate_table_name(&self.table)?;
        layout::validate_namespace(&self.namespace)?;
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
        if self.batch.concurrency == 0 || self.batch.max_attempts == 0 {
            return Err(Error::Config(
                "batch concurrency and max_attempts must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// Connects, checks (or creates) the table and returns the map.
    pub fn build(self) -> Result<DynamoDbDict<V>> {
        self.validate()?;
        let connection = self.connection.clone().connect()?;
        let layout = Layout {
            table: self.table,
            namespace: self.namespace,
            shards: self.shards,
            ttl_attribute: self.ttl_attribute,
        };
        let create = self.create_table;
        connection
            .bridge
            .run(layout::open_table(&connection.client, &layout, create))?;
        Ok(DynamoDbDict::from_core(Arc::new(Core {
            connection,
            layout,
            serializer: self.serializer,
            consistent_reads: self.consistent_reads,
            default_ttl: self.default_ttl,
            batch: self.batch,
            max_value: self.max_value,
            large_seen: std::sync::atomic::AtomicBool::new(false),
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_detection() {
        for url in [
            "http://localhost:8000",
            "http://127.0.0.1:1",
            "http://[::1]:80/",
            "http://LOCALHOST",
        ] {
            assert!(is_loopback(url), "{url}");
        }
        for url in [
            "https://dynamodb.eu-west-1.amazonaws.com",
            "http://10.0.0.1:8000",
            "http://localhost.evil.com",
        ] {
            assert!(!is_loopback(url), "{url}");
        }
    }

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
