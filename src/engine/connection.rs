//! The connection: one SDK client and the runtime that drives its requests, shared by every
//! clone of a map and by the maps opened from it.

use std::fmt;
use std::sync::Arc;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::{RetryConfig, RetryPartition};
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};

use super::bridge::Bridge;
use super::options::Timeouts;
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
    /// The same client with the SDK's retries off, for requests retried by this crate (which
    /// must know whether an earlier attempt may have been applied).
    pub client_once: Client,
    pub bridge: Bridge,
    /// Attempts per request, first try included (for the requests retried by this crate).
    pub max_attempts: u32,
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
        let max_attempts = self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS).max(1);
        let client = bridge.run(self.build_client())?;
        let client_once = Client::from_conf(
            client
                .config()
                .to_builder()
                .retry_config(RetryConfig::disabled())
                .build(),
        );
        Ok(Arc::new(Connection {
            client,
            client_once,
            bridge,
            max_attempts,
        }))
    }

    async fn build_client(self) -> Result<Client> {
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
}
