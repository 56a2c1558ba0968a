//! Connecting: the SDK configuration every command shares, the table's recorded layout, and
//! the maps and caches opened on it.

use dynamodict::aws_config::{self, BehaviorVersion, Region, SdkConfig};
use dynamodict::aws_sdk_dynamodb::Client;
use dynamodict::aws_sdk_dynamodb::config::Credentials;
use dynamodict::cache::{AsyncDynamoDbCache, CacheBuilder};
use dynamodict::layout::{self, TableLayout};
use dynamodict::{AsyncDynamoDbDict, DictBuilder, OpenMode, Serializer};

use crate::args::{CacheArgs, ConnectionArgs, SerializerArg};
use crate::error::{CliError, CliResult};

/// Where the `--local` flag points: DYNAMODICT_ENDPOINT, or an embedded DynamoDB Local started
/// now (blocking: call it before entering the runtime).
pub fn local_endpoint(args: &ConnectionArgs) -> CliResult<Option<String>> {
    if args.local {
        let server = dynamodict::local::DynamoDbLocal::shared()?;
        return Ok(Some(server.endpoint().to_owned()));
    }
    Ok(args.endpoint.clone())
}

/// One SDK configuration, used for the tool's own requests and handed to every map and cache.
pub struct Connection {
    pub config: SdkConfig,
    pub client: Client,
}

impl Connection {
    /// Loads the configuration: the default chain, with the region, profile and endpoint
    /// given. A loopback endpoint (DynamoDB Local) gets region us-east-1 and dummy
    /// credentials unless given, as the library's `endpoint_url` does.
    pub async fn new(args: &ConnectionArgs, endpoint: Option<String>) -> CliResult<Self> {
        let local = endpoint.as_deref().is_some_and(is_loopback);
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(profile) = &args.profile {
            loader = loader.profile_name(profile);
        }
        match (&args.region, local) {
            (Some(region), _) => loader = loader.region(Region::new(region.clone())),
            (None, true) => loader = loader.region(Region::from_static("us-east-1")),
            (None, false) => {}
        }
        let own_credentials =
            args.profile.is_some() || std::env::var_os("AWS_ACCESS_KEY_ID").is_some();
        if local && !own_credentials {
            // DynamoDB Local accepts any (alphanumeric) access key.
            loader = loader.credentials_provider(Credentials::new(
                "dynamodictcli",
                "dynamodictcli",
                None,
                None,
                "dynamodict-cli",
            ));
        }
        if let Some(endpoint) = endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let config = loader.load().await;
        if config.region().is_none() {
            return Err(CliError::new(
                "no AWS region is configured: pass --region, set AWS_REGION, or use a profile \
                 with a region",
            ));
        }
        let client = Client::new(&config);
        Ok(Connection { config, client })
    }

    /// What the table's layout item records (one consistent GetItem).
    pub async fn table_layout(&self, table: &str) -> CliResult<TableLayout> {
        layout::validate_table_name(table)?;
        let out = self
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(layout::layout_item_key()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| CliError::sdk(e, Some(table)))?;
        let item = out.item.ok_or_else(|| {
            CliError::new(format!(
                "table {table:?} holds no dynamodict data: it has no layout item \
                 (pk = {:?}, sk = {:?})",
                layout::META_PK,
                layout::META_SK
            ))
        })?;
        TableLayout::from_item(&item).ok_or_else(|| {
            CliError::new(format!(
                "table {table:?} has a layout item this version of dynamodict does not know"
            ))
        })
    }

    /// `builder` with this connection and the table's recorded layout, never creating or
    /// changing the table (`OpenMode::Verify`).
    pub fn configure<V>(&self, builder: DictBuilder<V>, layout: &TableLayout) -> DictBuilder<V> {
        let builder = builder
            .sdk_config(&self.config)
            .open_mode(OpenMode::Verify)
            .shards(layout.shards);
        match &layout.ttl_attribute {
            Some(attribute) => builder.ttl_attribute(attribute),
            None => builder,
        }
    }

    /// The map of one namespace. Its value type is never decoded by the commands that use it
    /// (`count`, `keys`, `get_stored`, `rm`, `clear`, `sweep`).
    pub async fn open_map(
        &self,
        table: &str,
        namespace: &str,
    ) -> CliResult<AsyncDynamoDbDict<serde_json::Value>> {
        layout::validate_namespace(namespace)?;
        let layout = self.table_layout(table).await?;
        Ok(self
            .configure(AsyncDynamoDbDict::builder(table), &layout)
            .namespace(namespace)
            .build_async()
            .await?)
    }

    /// The response cache the arguments name.
    pub async fn open_cache(&self, args: &CacheArgs) -> CliResult<AsyncDynamoDbCache> {
        let layout = self.table_layout(&args.table).await?;
        let serializer = match args.serializer {
            SerializerArg::Document => Serializer::document(),
            SerializerArg::Json => Serializer::json(),
            SerializerArg::Bincode => Serializer::bincode(),
        };
        let mut builder: CacheBuilder = AsyncDynamoDbCache::builder(args.table.as_str())
            .namespace(args.namespace.as_str())
            .serializer(serializer)
            .dict(|d| self.configure(d, &layout));
        if let Some(secret) = &args.secret_key {
            builder = builder.secret_key(secret).salt(&args.salt);
        }
        Ok(builder.build_async().await?)
    }
}

/// Whether an endpoint is on this machine (`localhost` or a loopback address).
fn is_loopback(endpoint: &str) -> bool {
    let Ok(url) = url::Url::parse(endpoint) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
