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

use aws_sdk_dynamodb::types::AttributeValue;
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// A DynamoDB item (or primary key): attribute name to value.
pub(crate) type Item = HashMap<String, AttributeValue>;

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
/// Sort key of the layout metadata item.
pub(crate) const META_SK: &str = "layout";
/// The layout version recorded in the metadata item.
pub(crate) const LAYOUT_VERSION: &str = "1";

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

/// Namespace suffixes reserved for [`DynamoDbCache`](crate::DynamoDbCache): cache `x` stores
/// its responses in namespace `x.responses` and its redirect aliases in `x.redirects`.
pub const RESERVED_SUFFIXES: [&str; 2] = [".responses", ".redirects"];

/// Checks a map's namespace name: 1 to 255 bytes of printable characters other than `#`, not
/// ending in a suffix reserved for the response cache ([`RESERVED_SUFFIXES`]), so that a map
/// never shares a cache's items by accident.
pub fn validate_namespace(name: &str) -> Result<()> {
    validate_namespace_text(name)?;
    if RESERVED_SUFFIXES
        .iter()
        .any(|suffix| name.ends_with(suffix))
    {
        return Err(Error::InvalidNamespace {
            name: name.to_owned(),
            reason: "must not end in \".responses\" or \".redirects\": those namespaces belong \
                     to the response cache of the same name; choose another name",
        });
    }
    Ok(())
}

/// Checks a namespace's text (1 to 255 bytes of printable characters other than `#`); the
/// cache's own namespaces, which carry a reserved suffix, are checked with this alone.
pub(crate) fn validate_namespace_text(name: &str) -> Result<()> {
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
    /// The partition key of one shard of the namespace: `<namespace>#<shard hex>`.
    pub fn partition(&self, shard: u16) -> String {
        format!("{}#{:x}", self.namespace, shard)
    }

    pub fn partition_of(&self, key: &str) -> String {
        self.partition(shard_of(key, self.shards))
    }

    /// The partition holding the chunk items of large values of one shard: `<partition>#c`.
    pub fn chunk_partition(&self, shard: u16) -> String {
        format!("{}#c", self.partition(shard))
    }

    /// The partition holding the generation records of one shard: `<partition>#g`.
    pub fn record_partition(&self, shard: u16) -> String {
        format!("{}#g", self.partition(shard))
    }

    /// The primary key of `key`'s item.
    pub fn item_key(&self, key: &str) -> Item {
        primary_key(self.partition_of(key), key.to_owned())
    }

    /// The primary key of the namespace's marker item `name` (in the table's metadata
    /// partition).
    pub fn marker_key(&self, name: &str) -> Item {
        primary_key(META_PK.to_owned(), format!("{name}#{}", self.namespace))
    }
}

/// The one primary-key builder: `pk` and `sk` as strings.
pub(crate) fn primary_key(pk: String, sk: String) -> Item {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(pk)),
        (SK.to_owned(), AttributeValue::S(sk)),
    ])
}

/// The layout unit tests use: table `t`, namespace `ns`, 8 shards, expiry attribute `ttl`.
#[cfg(test)]
pub(crate) fn test_layout() -> Layout {
    Layout {
        table: "t".into(),
        namespace: "ns".into(),
        shards: 8,
        ttl_attribute: Some("ttl".into()),
    }
}

/// The primary key of an item (its `pk` and `sk`), for deleting it.
pub(crate) fn key_of_item(item: &Item) -> Item {
    item.iter()
        .filter(|(name, _)| *name == PK || *name == SK)
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
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
        assert!(validate_namespace("x.responses.v2").is_ok());
        for reserved in ["x.responses", "x.redirects", ".responses"] {
            assert!(
                matches!(
                    validate_namespace(reserved),
                    Err(Error::InvalidNamespace { .. })
                ),
                "{reserved}"
            );
            assert!(validate_namespace_text(reserved).is_ok());
        }
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
}
