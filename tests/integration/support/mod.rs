//! Shared helpers for the integration tests: every test talks to the embedded DynamoDB Local
//! (or `DYNAMODICT_ENDPOINT`), each in its own namespace or table.

#![allow(dead_code)]

pub mod facade;
pub mod origin;
pub mod proxy;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use dynamodict::aws_sdk_dynamodb::Client;
use dynamodict::aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use dynamodict::aws_sdk_dynamodb::types::AttributeValue;
use dynamodict::local::{DynamoDbLocal, LocalEngine};
use dynamodict::{DictBuilder, DynamoDbDict};

/// A raw DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// The table most tests share (each test uses its own namespace).
pub const TABLE: &str = "dynamodict-tests";

/// A name no other test (or test process) uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The DynamoDB Local endpoint for this process.
pub fn endpoint() -> String {
    DynamoDbLocal::shared()
        .expect("DynamoDB Local must start for the integration tests")
        .endpoint()
        .to_owned()
}

/// The engine this run of the suite talks to (`DYNAMODICT_LOCAL_ENGINE`; DynamoDB Local by
/// default).
pub fn engine() -> LocalEngine {
    LocalEngine::from_env().expect("DYNAMODICT_LOCAL_ENGINE names an engine")
}

/// For tests that depend on one engine's behaviour: `true` (after saying why, in the test's
/// output) when the suite runs on one of `engines`, so the test returns at once.
pub fn skip_on(engines: &[LocalEngine], reason: &str) -> bool {
    let engine = engine();
    let skip = engines.contains(&engine);
    if skip {
        eprintln!("skipped on {engine}: {reason}");
    }
    skip
}

/// For tests whose large values must be written, read and swept within a 1 s operation
/// timeout (to keep a 4 s grace period short enough to wait for): moto (a Python server) and
/// dynalite (LevelDB in memory) sometimes need more than that for requests carrying 400 KB
/// items under the suite's load. `true` (after saying so) on those two.
pub fn skip_if_large_items_are_slow() -> bool {
    skip_on(
        &[LocalEngine::Moto, LocalEngine::Dynalite],
        "the server sometimes needs over a second for a request carrying 400 KB items under \
         load; this test writes and sweeps large values within a 1 s operation timeout",
    )
}

/// A region of its own for a test's SDK clients. The SDK's retry budget (a token bucket per
/// retry partition, "dynamodb-<region>") is shared by every client of the process with the
/// same region, so fault tests keep theirs apart. DynamoDB Local and dynalite ignore the
/// region; moto keeps tables per region and knows only AWS's, so there every test shares
/// `us-east-1` (and its retry budget).
pub fn region_of_its_own(label: &str) -> String {
    if engine() == LocalEngine::Moto {
        "us-east-1".to_owned()
    } else {
        label.to_owned()
    }
}

/// A builder on the shared test table, in a fresh namespace.
pub fn builder<V>(label: &str) -> DictBuilder<V> {
    DynamoDbDict::builder(TABLE)
        .namespace(unique(label))
        .local()
}

/// A map on the shared test table, in exactly this namespace (for tests that share one).
pub fn in_namespace<V: serde::Serialize + serde::de::DeserializeOwned>(
    namespace: impl Into<String>,
) -> DynamoDbDict<V> {
    DynamoDbDict::builder(TABLE)
        .namespace(namespace)
        .local()
        .build()
        .expect("building a test map")
}

/// A map on the shared test table, in a fresh namespace.
pub fn dict<V: serde::Serialize + serde::de::DeserializeOwned>(label: &str) -> DynamoDbDict<V> {
    builder(label).build().expect("building a test map")
}

/// A raw async SDK client for checking what is really stored, with its own runtime.
pub struct Raw {
    pub client: Client,
    pub rt: tokio::runtime::Runtime,
}

impl Raw {
    pub fn new() -> Raw {
        Raw::at(&endpoint())
    }

    pub fn at(endpoint: &str) -> Raw {
        let config = dynamodict::aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::from_static("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .build();
        Raw {
            client: Client::from_conf(config),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
        }
    }

    pub fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// The primary key of a map's `key` in `namespace` (8 shards, the default layout).
    pub fn item_key(namespace: &str, key: &str) -> Item {
        HashMap::from([
            (
                "pk".to_owned(),
                AttributeValue::S(format!(
                    "{namespace}#{:x}",
                    dynamodict::layout::shard_of(key, 8)
                )),
            ),
            ("sk".to_owned(), AttributeValue::S(key.to_owned())),
        ])
    }

    /// The raw item stored for a map's `key` in `namespace` of the test table.
    pub fn get(&self, namespace: &str, key: &str) -> Option<Item> {
        self.get_in(TABLE, namespace, key)
    }

    /// The raw item stored for a map's `key` in `namespace` of `table`.
    pub fn get_in(&self, table: &str, namespace: &str, key: &str) -> Option<Item> {
        self.block(
            self.client
                .get_item()
                .table_name(table)
                .set_key(Some(Raw::item_key(namespace, key)))
                .send(),
        )
        .expect("raw GetItem")
        .item
    }

    /// Creates `table` directly (on-demand, string key attributes, no TTL, no layout item), as
    /// infrastructure tooling would; `keys` are `(attribute, is_partition_key)`.
    pub fn create_table(&self, table: &str, keys: &[(&str, bool)]) {
        use dynamodict::aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        let mut request = self
            .client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest);
        for (name, partition) in keys {
            let key_type = if *partition {
                KeyType::Hash
            } else {
                KeyType::Range
            };
            request = request
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(*name)
                        .key_type(key_type)
                        .build()
                        .expect("key schema"),
                )
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(*name)
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .expect("attribute definition"),
                );
        }
        self.block(request.send()).expect("raw CreateTable");
    }

    /// Writes a raw item into the test table.
    pub fn put(&self, item: Item) {
        self.block(
            self.client
                .put_item()
                .table_name(TABLE)
                .set_item(Some(item))
                .send(),
        )
        .expect("raw PutItem");
    }
}

/// A command that runs one test of this very binary (normally an `#[ignore]`d helper) in a
/// child process, with `envs` set and `DYNAMODICT_ENDPOINT` pointing at this process's DynamoDB
/// Local (so the child never starts a server of its own).
pub fn child_command(test: &str, envs: &[(&str, String)]) -> std::process::Command {
    let exe = std::env::current_exe().expect("the path of the test binary");
    let mut command = std::process::Command::new(exe);
    command
        .args([
            test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(dynamodict::local::ENDPOINT_ENV, endpoint())
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null());
    command
}

/// Runs [`child_command`] to completion and returns what it printed and how it ended.
pub fn run_child(test: &str, envs: &[(&str, String)]) -> std::process::Output {
    child_command(test, envs)
        .output()
        .expect("starting the child test process")
}
