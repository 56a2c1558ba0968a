//! The connection: one SDK client and the runtime that drives its requests, shared by every
//! clone of a map and by the maps opened from it.

use std::fmt;
use std::sync::{Arc, OnceLock};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::retry::{RetryConfig, RetryPartition};
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{
    ConfigBag, Credentials, Intercept, RuntimeComponents, SharedCredentialsProvider,
};
use aws_sdk_dynamodb::error::BoxError;

use super::bridge::{self, Bridge};
use super::options::Timeouts;
use super::stats::{Accounting, Counters};
use crate::{Error, Result};

/// The SDK's standard retry mode's default number of attempts.
const DEFAULT_MAX_ATTEMPTS: u32 = 3;

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
    /// Don't ask DynamoDB for the capacity each request consumed (see
    /// `DictBuilder::capacity_accounting`).
    pub capacity_off: bool,
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
            .field("capacity_off", &self.capacity_off)
            .finish()
    }
}

/// The SDK clients shared by every clone of a map (and by maps opened from it), in its
/// blocking and its async form.
///
/// There are two sets of clients, built from one configuration (so one credentials cache),
/// each with its own HTTP connection pool: a pooled connection is driven by the runtime that
/// opened it, and the blocking side's runtime ([`Bridge`]) only runs while a blocking call is in
/// progress. Async calls therefore use connections opened on the caller's runtime, blocking
/// calls connections opened on the bridge, and neither ever waits on the other's runtime.
pub(crate) struct Connection {
    // Field order matters: the clients (and their pools) are dropped before the runtime.
    /// For async calls, on the caller's runtime.
    on_caller: Clients,
    /// For blocking calls, on the bridge's runtime.
    on_bridge: Clients,
    /// Created by the first blocking call (or by a blocking build).
    bridge: OnceLock<Bridge>,
    /// Attempts per request, first try included (for the requests retried by this crate).
    pub max_attempts: u32,
    /// What every client of this connection sent and received.
    pub counters: Arc<Counters>,
    /// Where the requests go, for error messages.
    pub endpoint: Arc<Endpoint>,
}

/// The endpoint a connection sends its requests to, as error messages name it: the URL of the
/// first request sent (exactly what the SDK resolved: an explicit endpoint, `AWS_ENDPOINT_URL`,
/// or the region's default such as `https://dynamodb.eu-west-1.amazonaws.com`), and where it
/// came from when that is not obvious from the code.
#[derive(Debug, Default)]
pub(crate) struct Endpoint {
    url: OnceLock<String>,
    /// E.g. `"DYNAMODICT_ENDPOINT"` when `.local()` found its endpoint in that variable.
    source: Option<&'static str>,
}

impl Endpoint {
    fn new(url: Option<&str>, source: Option<&'static str>) -> Self {
        let endpoint = Endpoint {
            url: OnceLock::new(),
            source,
        };
        if let Some(url) = url {
            endpoint.record(url);
        }
        endpoint
    }

    /// Records the URL, unless one is known already.
    fn record(&self, url: &str) {
        if self.url.get().is_none() {
            let _ = self.url.set(base_url(url));
        }
    }

    /// `http://127.0.0.1:8000`, with its source when there is one:
    /// `http://127.0.0.1:8000 (from DYNAMODICT_ENDPOINT)`; empty when no request was sent yet.
    pub(crate) fn describe(&self) -> String {
        match (self.url.get(), self.source) {
            (None, _) => String::new(),
            (Some(url), None) => url.clone(),
            (Some(url), Some(source)) => format!("{url} (from {source})"),
        }
    }
}

/// A request URI without its query, without the root path and without any user information
/// (`user:password@`): what a user would have written as the endpoint, and nothing secret.
fn base_url(uri: &str) -> String {
    let uri = uri.split(['?', '#']).next().unwrap_or(uri);
    let uri = uri.trim_end_matches('/');
    let (scheme, rest) = uri.split_once("://").unwrap_or(("", uri));
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    }
}

/// Records the URL of the first request in the connection's [`Endpoint`].
#[derive(Debug)]
struct RecordEndpoint(Arc<Endpoint>);

impl Intercept for RecordEndpoint {
    fn name(&self) -> &'static str {
        "dynamodict::RecordEndpoint"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.0.url.get().is_none() {
            self.0.record(context.request().uri());
        }
        Ok(())
    }
}

/// A client, and the same client with the SDK's retries off.
struct Clients {
    client: Client,
    /// For requests retried by this crate (which must know whether an earlier attempt may
    /// have been applied).
    once: Client,
}

impl Clients {
    /// Clients with their own connection pool (unless the configuration names an HTTP client,
    /// which the user then chose to share).
    fn new(config: &aws_sdk_dynamodb::Config) -> Self {
        Clients {
            client: Client::from_conf(config.clone()),
            once: Client::from_conf(
                config
                    .to_builder()
                    .retry_config(RetryConfig::disabled())
                    .build(),
            ),
        }
    }
}

impl Connection {
    fn new(
        config: aws_sdk_dynamodb::Config,
        max_attempts: u32,
        counters: Arc<Counters>,
        endpoint: Arc<Endpoint>,
    ) -> Self {
        Connection {
            on_caller: Clients::new(&config),
            on_bridge: Clients::new(&config),
            bridge: OnceLock::new(),
            max_attempts,
            counters,
            endpoint,
        }
    }

    fn clients(&self) -> &Clients {
        if bridge::on_bridge() {
            &self.on_bridge
        } else {
            &self.on_caller
        }
    }

    /// The client for the calling context (SDK retries on).
    pub(crate) fn client(&self) -> &Client {
        &self.clients().client
    }

    /// The client for the calling context, SDK retries off.
    pub(crate) fn client_once(&self) -> &Client {
        &self.clients().once
    }

    /// The runtime for blocking calls, started on first use.
    pub(crate) fn bridge(&self) -> Result<&Bridge> {
        if let Some(bridge) = self.bridge.get() {
            return Ok(bridge);
        }
        // Two threads may race here; the loser's runtime is shut down at once.
        let _ = self.bridge.set(Bridge::new()?);
        self.bridge
            .get()
            .ok_or_else(|| Error::Runtime("the blocking runtime could not be kept".into()))
    }

    /// Runs `future` to completion from blocking code, on the bridge.
    pub(crate) fn block_on<T: Send>(
        &self,
        future: impl std::future::Future<Output = Result<T>> + Send,
    ) -> Result<T> {
        self.bridge()?.run(future)
    }
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
    /// Refuses settings that name two endpoints: `.local()` with `.endpoint_url(..)`, or with
    /// an SDK configuration that has an endpoint (a client's endpoint cannot be seen; `.local()`
    /// replaces it).
    pub(crate) fn validate(&self) -> Result<()> {
        if !self.local {
            return Ok(());
        }
        if let Some(url) = self.endpoint_url.as_deref().map(base_url) {
            return Err(Error::Config(format!(
                "both `.endpoint_url({url:?})` and `.local()` set the endpoint: choose one \
                 (`.local()` starts the embedded DynamoDB Local, or uses DYNAMODICT_ENDPOINT \
                 when that is set)"
            )));
        }
        if let Some(url) = self
            .sdk_config
            .as_ref()
            .and_then(SdkConfig::endpoint_url)
            .map(base_url)
        {
            return Err(Error::Config(format!(
                "the SDK configuration given to `.sdk_config(..)` has the endpoint {url:?}, and \
                 `.local()` sets another: choose one (remove the endpoint from the SdkConfig, \
                 or drop `.local()`)"
            )));
        }
        Ok(())
    }

    /// Resolves the endpoint of the embedded DynamoDB Local when asked for (starting it is
    /// blocking work, done off the caller's runtime). Returns where the endpoint came from when
    /// that is an environment variable.
    async fn resolve_local(&mut self) -> Result<Option<&'static str>> {
        #[cfg(feature = "local")]
        if self.local {
            let server = tokio::task::spawn_blocking(crate::local::DynamoDbLocal::shared)
                .await
                .map_err(|e| Error::Runtime(format!("starting DynamoDB Local failed: {e}")))??;
            self.endpoint_url = Some(server.endpoint().to_owned());
            return Ok(server.is_external().then_some(crate::local::ENDPOINT_ENV));
        }
        #[cfg(not(feature = "local"))]
        if self.local {
            return Err(Error::Config(
                "`local()` needs the crate feature \"local\"".into(),
            ));
        }
        Ok(None)
    }

    /// Builds the connection from async code, on the caller's runtime.
    pub(crate) async fn connect(mut self) -> Result<Arc<Connection>> {
        self.validate()?;
        let source = self.resolve_local().await?;
        let max_attempts = self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS).max(1);
        let counters = Arc::new(Counters::default());
        let endpoint = Arc::new(Endpoint::new(self.endpoint_url.as_deref(), source));
        let config = self
            .build_config(Arc::clone(&counters), Arc::clone(&endpoint))
            .await?;
        Ok(Arc::new(Connection::new(
            config,
            max_attempts,
            counters,
            endpoint,
        )))
    }

    /// Builds the connection from blocking code: the bridge is started first, and the
    /// configuration is loaded on it.
    pub(crate) fn connect_blocking(self) -> Result<Arc<Connection>> {
        let bridge = Bridge::new()?;
        let connection = bridge.run(self.connect())?;
        let _ = connection.bridge.set(bridge);
        Ok(connection)
    }

    async fn build_config(
        self,
        counters: Arc<Counters>,
        endpoint: Arc<Endpoint>,
    ) -> Result<aws_sdk_dynamodb::Config> {
        let capacity_off = self.capacity_off;
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(self.timeouts.connect)
            .operation_attempt_timeout(self.timeouts.attempt)
            .operation_timeout(self.timeouts.operation)
            .build();
        let retry = RetryConfig::standard()
            .with_max_attempts(self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS).max(1));
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
            .interceptor(RecordEndpoint(endpoint))
            .timeout_config(timeouts)
            .retry_config(retry)
            .retry_partition(RetryPartition::custom("dynamodict").build())
            .interceptor(Accounting {
                counters,
                ask_capacity: !capacity_off,
            })
            .build();
        if config.region().is_none() {
            return Err(Error::Config(
                "no AWS region is configured: set AWS_REGION, a profile region, or call `.region(..)`"
                    .into(),
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_described_with_their_source() {
        assert_eq!(base_url("http://127.0.0.1:8000/"), "http://127.0.0.1:8000");
        assert_eq!(
            base_url("https://dynamodb.eu-west-1.amazonaws.com/?x=1"),
            "https://dynamodb.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            base_url("http://proxy:80/dynamodb/"),
            "http://proxy:80/dynamodb"
        );
        let unknown = Endpoint::default();
        assert_eq!(unknown.describe(), "");
        unknown.record("https://dynamodb.us-east-1.amazonaws.com/");
        unknown.record("http://ignored:1/");
        assert_eq!(
            unknown.describe(),
            "https://dynamodb.us-east-1.amazonaws.com"
        );
        let from_env = Endpoint::new(Some("http://127.0.0.1:1"), Some("DYNAMODICT_ENDPOINT"));
        assert_eq!(
            from_env.describe(),
            "http://127.0.0.1:1 (from DYNAMODICT_ENDPOINT)"
        );
    }

    #[test]
    fn local_and_another_endpoint_are_refused() {
        let options =
            |endpoint: Option<&str>, sdk_endpoint: Option<&str>, local: bool| ConnectionOptions {
                endpoint_url: endpoint.map(str::to_owned),
                sdk_config: sdk_endpoint.map(|url| {
                    SdkConfig::builder()
                        .endpoint_url(url)
                        .behavior_version(BehaviorVersion::latest())
                        .build()
                }),
                local,
                ..ConnectionOptions::default()
            };
        assert!(options(Some("http://a:1"), None, false).validate().is_ok());
        assert!(options(None, Some("http://a:1"), false).validate().is_ok());
        assert!(options(None, None, true).validate().is_ok());
        for refused in [
            options(Some("http://a:1"), None, true),
            options(None, Some("http://a:1"), true),
        ] {
            match refused.validate() {
                Err(Error::Config(message)) => {
                    assert!(message.contains("choose one"), "{message}")
                }
                other => panic!("{other:?}"),
            }
        }
    }

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
}
