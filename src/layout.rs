//! The table layout: how keys, namespaces and values map onto DynamoDB items.
//!
//! | attribute | type | holds |
//! |---|---|---|
//! | `pk` (partition key) | S | `<namespace>#<shard>`, the shard being `0..shards` in hex |
//! | `sk` (sort key) | S | the map key |
//! | `v` | B, or any type for documents | the encoded value |
//! | `f` | S | the serializer pipeline id that wrote `v` |
//! | `s` | B | the signature of a signed document |
//! | `ttl` (configurable) | N | expiry, epoch seconds; DynamoDB's TTL deletes the item later |
//!
//! The shard of a key is the first 8 bytes of `SHA-256(key)`, read as a big-endian `u64`,
//! modulo the table's shard count. That gives the two properties the layout is built for:
//!
//! 1. **Writes spread across partitions.** One namespace has `shards` partition keys, so a busy
//!    namespace is not one hot partition (the mistake requests-cache fixed in its 1.0).
//! 2. **One namespace is read without touching the others.** Listing, counting and clearing a
//!    namespace is one `Query` per shard (run concurrently), never a `Scan` of the whole table
//!    with a filter (what aiohttp-client-cache does).
//!
//! The shard count is recorded in a metadata item (`pk = "#meta"`, `sk = "layout"`) when the
//! table is first used; opening the table with another shard count, or opening a table whose key
//! schema is not `pk`/`sk`, fails with [`Error::LayoutMismatch`] instead of silently missing keys.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use sha2::{Digest, Sha256};

use crate::error::sdk_error;
use crate::{Error, Result};

/// Partition key attribute name.
pub const PK: &str = "pk";
/// Sort key attribute name.
pub const SK: &str = "sk";
/// Value attribute name.
pub const VALUE: &str = "v";
/// Serializer id attribute name.
pub const FORMAT: &str = "f";
/// Document signature attribute name.
pub const SIGNATURE: &str = "s";
/// Default TTL attribute name.
pub const DEFAULT_TTL_ATTRIBUTE: &str = "ttl";

/// Default number of shards (partition keys) per namespace.
pub const DEFAULT_SHARDS: u16 = 8;
/// Most shards a table may have.
pub const MAX_SHARDS: u16 = 256;
/// Longest key, in bytes: DynamoDB's limit for a sort key.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest item DynamoDB stores, in bytes.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// Longest namespace name, in bytes.
pub const MAX_NAMESPACE_BYTES: usize = 255;

/// Partition key of the table's metadata items (layout, namespaces holding large values).
pub(crate) const META_PK: &str = "#meta";
const META_SK: &str = "layout";
const LAYOUT_VERSION: &str = "1";

/// Checks a key before any request.
pub fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::EmptyKey);
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::KeyTooLong {
            len: key.len(),
            max: MAX_KEY_BYTES,
        });
    }
    Ok(())
}

/// Checks a table name against DynamoDB's rules: 3 to 255 characters of `a-z A-Z 0-9 _ - .`.
pub fn validate_table_name(name: &str) -> Result<()> {
    let err = |reason| Error::InvalidTableName {
        name: name.to_owned(),
        reason,
    };
    if name.len() < 3 || name.len() > 255 {
        return Err(err("must be 3 to 255 characters long"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(err("may only contain a-z, A-Z, 0-9, '_', '-' and '.'"));
    }
    Ok(())
}

/// Checks a namespace name: 1 to 255 bytes of printable characters other than `#`.
pub fn validate_namespace(name: &str) -> Result<()> {
    let err = |reason| Error::InvalidNamespace {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(err("must not be empty"));
    }
    if name.len() > MAX_NAMESPACE_BYTES {
        return Err(err("must be at most 255 bytes long"));
    }
    if name.contains('#') {
        return Err(err("must not contain '#', the layout's separator"));
    }
    if name.chars().any(char::is_control) {
        return Err(err("must not contain control characters"));
    }
    Ok(())
}

/// The shard (`0..shards`) a key is stored in.
pub fn shard_of(key: &str, shards: u16) -> u16 {
    let digest = Sha256::digest(key.as_bytes());
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(head) % u64::from(shards.max(1))) as u16
}

/// Where one namespace's items live.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub table: String,
    pub namespace: String,
    pub shards: u16,
    /// `None` when expiry is off.
    pub ttl_attribute: Option<String>,
}

impl Layout {
    pub fn partition(&self, shard: u16) -> String {
        format!("{}#{:x}", self.namespace, shard)
    }

    pub fn partition_of(&self, key: &str) -> String {
        self.partition(shard_of(key, self.shards))
    }

    /// The primary key of `key`'s item.
    pub fn item_key(&self, key: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (PK.to_owned(), AttributeValue::S(self.partition_of(key))),
            (SK.to_owned(), AttributeValue::S(key.to_owned())),
        ])
    }
}

/// Makes sure the table exists with a compatible layout, creating it when allowed.
pub(crate) async fn open_table(client: &Client, layout: &Layout, create: bool) -> Result<()> {
    let table = layout.table.as_str();
    let described = client.describe_table().table_name(table).send().await;
    let description = match described {
        Ok(out) => out.table,
        Err(err) => match sdk_error(err, table) {
            Error::TableNotFound { .. } if create => {
                create_table(client, layout).await?;
                None
            }
            other => return Err(other),
        },
    };
    if let Some(description) = description {
        check_key_schema(table, description.key_schema())?;
    }
    if let Some(attribute) = &layout.ttl_attribute {
        ensure_ttl(client, table, attribute).await?;
    }
    check_meta(client, layout).await
}

async fn create_table(client: &Client, layout: &Layout) -> Result<()> {
    let table = layout.table.as_str();
    let key = |name: &str, key_type| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .map_err(|e| Error::Config(e.to_string()))
    };
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| Error::Config(e.to_string()))
    };
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .attribute_definitions(attr(PK)?)
        .attribute_definitions(attr(SK)?)
        .send()
        .await;
    match created {
        Ok(_) => {}
        // Someone else created it at the same time: fine.
        Err(err) => match sdk_error(err, table) {
            Error::Service { code, .. } if code == "ResourceInUseException" => {}
            other => return Err(other),
        },
    }
    wait_active(client, table).await
}

async fn wait_active(client: &Client, table: &str) -> Result<()> {
    let mut delay = std::time::Duration::from_millis(50);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error(e, table))?;
        let status = out.table.and_then(|t| t.table_status);
        if status == Some(TableStatus::Active) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(Error::Timeout {
                timeout: Some(std::time::Duration::from_secs(120)),
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(std::time::Duration::from_secs(2));
    }
}

fn check_key_schema(table: &str, schema: &[KeySchemaElement]) -> Result<()> {
    let has = |name: &str, key_type: KeyType| {
        schema
            .iter()
            .any(|k| k.attribute_name() == name && *k.key_type() == key_type)
    };
    if schema.len() == 2 && has(PK, KeyType::Hash) && has(SK, KeyType::Range) {
        return Ok(());
    }
    let found: Vec<String> = schema
        .iter()
        .map(|k| format!("{} ({})", k.attribute_name(), k.key_type().as_str()))
        .collect();
    Err(Error::LayoutMismatch {
        table: table.to_owned(),
        detail: format!(
            "key schema is [{}], expected [pk (HASH), sk (RANGE)]",
            found.join(", ")
        ),
    })
}

async fn ensure_ttl(client: &Client, table: &str, attribute: &str) -> Result<()> {
    let out = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| sdk_error(e, table))?;
    let current = out.time_to_live_description;
    let status = current.as_ref().and_then(|d| d.time_to_live_status.clone());
    let current_attr = current.as_ref().and_then(|d| d.attribute_name.clone());
    match status {
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling) => {
            if current_attr.as_deref() == Some(attribute) {
                Ok(())
            } else {
                Err(Error::LayoutMismatch {
                    table: table.to_owned(),
                    detail: format!(
                        "DynamoDB TTL is enabled on attribute {:?}, but this map uses {attribute:?}",
                        current_attr.unwrap_or_default()
                    ),
                })
            }
        }
        _ => {
            let spec = TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(attribute)
                .build()
                .map_err(|e| Error::Config(e.to_string()))?;
            match client
                .update_time_to_live()
                .table_name(table)
                .time_to_live_specification(spec)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(err) => match sdk_error(err, table) {
                    // Enabled concurrently by another client.
                    Error::Service { code, message }
                        if code == "ValidationException" && message.contains("already enabled") =>
                    {
                        Ok(())
                    }
                    other => Err(other),
                },
            }
        }
    }
}

async fn check_meta(client: &Client, layout: &Layout) -> Result<()> {
    let table = layout.table.as_str();
    let key = HashMap::from([
        (PK.to_owned(), AttributeValue::S(META_PK.to_owned())),
        (SK.to_owned(), AttributeValue::S(META_SK.to_owned())),
    ]);
    for _ in 0..3 {
        let out = client
            .get_item()
            .table_name(table)
            .set_key(Some(key.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(e, table))?;
        if let Some(item) = out.item {
            return compare_meta(layout, &item);
        }
        let mut item = key.clone();
        item.insert(
            "version".into(),
            AttributeValue::N(LAYOUT_VERSION.to_owned()),
        );
        item.insert(
            "shards".into(),
            AttributeValue::N(layout.shards.to_string()),
        );
        let put = client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => return Ok(()),
            Err(err) => match sdk_error(err, table) {
                // Written concurrently: read it back and compare.
                Error::Service { code, .. } if code == "ConditionalCheckFailedException" => {}
                other => return Err(other),
            },
        }
    }
    Err(Error::LayoutMismatch {
        table: table.to_owned(),
        detail: "the layout metadata item could not be read or written".into(),
    })
}

fn compare_meta(layout: &Layout, item: &HashMap<String, AttributeValue>) -> Result<()> {
    let number = |name: &str| match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse::<u64>().ok(),
        _ => None,
    };
    let mismatch = |detail: String| Error::LayoutMismatch {
        table: layout.table.clone(),
        detail,
    };
    match number("version") {
        Some(1) => {}
        Some(v) => {
            return Err(mismatch(format!(
                "layout version {v} is not supported (expected 1)"
            )));
        }
        None => return Err(mismatch("the layout metadata item is malformed".into())),
    }
    match number("shards") {
        Some(s) if s == u64::from(layout.shards) => Ok(()),
        Some(s) => Err(mismatch(format!(
            "the table was created with {s} shards per namespace, this map is configured with {}",
            layout.shards
        ))),
        None => Err(mismatch("the layout metadata item is malformed".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_validated() {
        assert!(matches!(validate_key(""), Err(Error::EmptyKey)));
        assert!(validate_key("a").is_ok());
        assert!(validate_key(&"x".repeat(MAX_KEY_BYTES)).is_ok());
        assert!(matches!(
            validate_key(&"é".repeat(513)),
            Err(Error::KeyTooLong {
                len: 1026,
                max: 1024
            })
        ));
    }

    #[test]
    fn names_are_validated() {
        assert!(validate_table_name("my_table-1.x").is_ok());
        for bad in ["ab", "has space", "ümlaut", &"t".repeat(256)] {
            assert!(
                matches!(
                    validate_table_name(bad),
                    Err(Error::InvalidTableName { .. })
                ),
                "{bad}"
            );
        }
        assert!(validate_namespace("users:v2").is_ok());
        for bad in ["", "a#b", "tab\there", &"n".repeat(256)] {
            assert!(
                matches!(validate_namespace(bad), Err(Error::InvalidNamespace { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn shards_are_stable_and_spread() {
        // Pinned: changing the hash would orphan every stored item.
        assert_eq!(shard_of("hello", 8), shard_of("hello", 8));
        let pinned: Vec<u16> = ["a", "b", "c", "hello", "world"]
            .iter()
            .map(|k| shard_of(k, 8))
            .collect();
        assert_eq!(pinned, vec![2, 2, 2, 6, 7]);
        let mut counts = [0u32; 8];
        for i in 0..8000 {
            counts[shard_of(&format!("key-{i}"), 8) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
        assert_eq!(shard_of("anything", 1), 0);
    }

    #[test]
    fn meta_comparison() {
        let layout = Layout {
            table: "t".into(),
            namespace: "n".into(),
            shards: 8,
            ttl_attribute: None,
        };
        let meta = |v: &str, s: &str| {
            HashMap::from([
                ("version".to_owned(), AttributeValue::N(v.into())),
                ("shards".to_owned(), AttributeValue::N(s.into())),
            ])
        };
        assert!(compare_meta(&layout, &meta("1", "8")).is_ok());
        assert!(matches!(
            compare_meta(&layout, &meta("1", "16")),
            Err(Error::LayoutMismatch { .. })
        ));
        assert!(matches!(
            compare_meta(&layout, &meta("2", "8")),
            Err(Error::LayoutMismatch { .. })
        ));
        assert!(matches!(
            compare_meta(&layout, &HashMap::new()),
            Err(Error::LayoutMismatch { .. })
        ));
    }
}
