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

/// Partition key of the table's metadata items: the layout item ([`META_SK`]) and the markers
/// of namespaces ([`namespace_marker_keys`]). It starts with `#`, which namespaces may not
/// contain, so it never collides with a namespace's partitions.
pub const META_PK: &str = "#meta";
/// Sort key of the layout item, which records the shard count (see [`TableLayout`]).
pub const META_SK: &str = "layout";
/// The layout version recorded in the metadata item.
pub(crate) const LAYOUT_VERSION: &str = "1";
/// Layout item attribute: the layout version (a number).
pub(crate) const META_VERSION: &str = "version";
/// Layout item attribute: shards per namespace (a number).
pub(crate) const META_SHARDS: &str = "shards";
/// Layout item attribute: the expiry attribute DynamoDB's TTL was seen enabled on (a string).
pub(crate) const META_TTL: &str = "ttl_attribute";
/// The marker a namespace gets in the metadata partition before its first large value.
pub(crate) const LARGE_MARKER: &str = "large";
/// Every marker a namespace may have in the metadata partition.
const MARKERS: [&str; 1] = [LARGE_MARKER];

/// Checks a key before any request.
///
/// # Errors
///
/// [`Error::EmptyKey`] for an empty key; [`Error::KeyTooLong`] for a key over [`MAX_KEY_BYTES`]
/// bytes.
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
///
/// # Errors
///
/// [`Error::InvalidTableName`], saying which rule the name breaks.
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
///
/// # Errors
///
/// [`Error::InvalidNamespace`], saying which rule the name breaks.
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

/// What a table's layout item (`pk = "#meta"`, `sk = "layout"`) records: read it with a
/// `GetItem` of [`layout_item_key`] to open the namespaces of a table whose shard count you do
/// not know (the `dynamodict` command-line tool does).
///
/// ```
/// use dynamodict::aws_sdk_dynamodb::types::AttributeValue;
/// use dynamodict::layout::{TableLayout, layout_item_key};
///
/// let mut item = layout_item_key();
/// item.insert("version".into(), AttributeValue::N("1".into()));
/// item.insert("shards".into(), AttributeValue::N("16".into()));
/// let layout = TableLayout::from_item(&item).expect("a layout item");
/// assert_eq!((layout.shards, layout.ttl_attribute), (16, None));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableLayout {
    /// Shards (partition keys) per namespace.
    pub shards: u16,
    /// The expiry attribute DynamoDB's TTL was seen enabled on, once a map saw it; `None`
    /// until then (maps use [`DEFAULT_TTL_ATTRIBUTE`] unless configured otherwise).
    pub ttl_attribute: Option<String>,
}

impl TableLayout {
    /// Reads a layout item; `None` when it is not one (no version 1, no valid shard count).
    pub fn from_item(item: &HashMap<String, AttributeValue>) -> Option<TableLayout> {
        let number = |name: &str| item.get(name)?.as_n().ok()?.parse::<u64>().ok();
        if number(META_VERSION)? != 1 {
            return None;
        }
        let shards = u16::try_from(number(META_SHARDS)?).ok()?;
        if shards == 0 || shards > MAX_SHARDS {
            return None;
        }
        Some(TableLayout {
            shards,
            ttl_attribute: item.get(META_TTL).and_then(|a| a.as_s().ok()).cloned(),
        })
    }
}

/// The primary key of the table's layout item (`pk = "#meta"`, `sk = "layout"`).
pub fn layout_item_key() -> HashMap<String, AttributeValue> {
    primary_key(META_PK.to_owned(), META_SK.to_owned())
}

/// Every partition key that holds items of `namespace` in a table with `shards` shards: for
/// each shard, its entries' (`<namespace>#<shard>`), its large values' chunks'
/// (`<namespace>#<shard>#c`) and their generation records' (`<namespace>#<shard>#g`). With
/// the namespace's markers ([`namespace_marker_keys`]), a `Query` of each of these is every
/// item of the namespace, exactly as stored (what `dynamodict export` writes).
///
/// ```
/// let partitions = dynamodict::layout::namespace_partitions("users", 2);
/// assert_eq!(partitions, ["users#0", "users#0#c", "users#0#g", "users#1", "users#1#c", "users#1#g"]);
/// ```
pub fn namespace_partitions(namespace: &str, shards: u16) -> Vec<String> {
    let layout = Layout {
        table: String::new(),
        namespace: namespace.to_owned(),
        shards,
        ttl_attribute: None,
    };
    (0..shards)
        .flat_map(|shard| {
            [
                layout.partition(shard),
                layout.chunk_partition(shard),
                layout.record_partition(shard),
            ]
        })
        .collect()
}

/// The namespace a partition key belongs to: `Some` for an entry, chunk or generation-record
/// partition (`<namespace>#<shard hex>`, optionally followed by `#c` or `#g`), `None` for the
/// metadata partition and for keys this layout never writes.
///
/// ```
/// use dynamodict::layout::namespace_of_partition;
///
/// assert_eq!(namespace_of_partition("users#1f#c"), Some("users"));
/// assert_eq!(namespace_of_partition("#meta"), None);
/// assert_eq!(namespace_of_partition("users"), None);
/// ```
pub fn namespace_of_partition(pk: &str) -> Option<&str> {
    let (namespace, rest) = pk.split_once('#')?;
    let shard = rest
        .strip_suffix("#c")
        .or_else(|| rest.strip_suffix("#g"))
        .unwrap_or(rest);
    let is_shard = !shard.is_empty()
        && shard.len() <= 4
        && shard
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (!namespace.is_empty() && is_shard).then_some(namespace)
}

/// The primary keys of the marker items `namespace` may have in the metadata partition (today
/// one: written before the namespace's first large value, so that writes know to look for the
/// chunks of the values they replace). Part of the namespace's items with
/// [`namespace_partitions`].
pub fn namespace_marker_keys(namespace: &str) -> Vec<HashMap<String, AttributeValue>> {
    MARKERS
        .iter()
        .map(|name| marker_key(name, namespace))
        .collect()
}

/// The primary key of marker `name` of `namespace`.
fn marker_key(name: &str, namespace: &str) -> Item {
    primary_key(META_PK.to_owned(), format!("{name}#{namespace}"))
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
        marker_key(name, &self.namespace)
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
    fn every_partition_of_a_namespace_is_recognized() {
        let layout = test_layout();
        let partitions = namespace_partitions("ns", 256);
        assert_eq!(partitions.len(), 3 * 256);
        for shard in [0, 9, 10, 255] {
            for pk in [
                layout.partition(shard),
                layout.chunk_partition(shard),
                layout.record_partition(shard),
            ] {
                assert!(partitions.contains(&pk), "{pk}");
                assert_eq!(namespace_of_partition(&pk), Some("ns"), "{pk}");
            }
        }
        for foreign in [
            "#meta", "ns", "ns#", "ns#x", "#0", "ns#0#d", "ns#0#c#g", "ns#12345",
        ] {
            assert_eq!(namespace_of_partition(foreign), None, "{foreign}");
        }
        assert_eq!(
            namespace_marker_keys("ns"),
            vec![layout.marker_key(LARGE_MARKER)]
        );
    }

    #[test]
    fn layout_items_are_read() {
        let item = |pairs: &[(&str, &str)]| -> HashMap<String, AttributeValue> {
            let mut item = layout_item_key();
            for (name, value) in pairs {
                let value = if *name == META_TTL {
                    AttributeValue::S((*value).into())
                } else {
                    AttributeValue::N((*value).into())
                };
                item.insert((*name).into(), value);
            }
            item
        };
        assert_eq!(
            TableLayout::from_item(&item(&[
                ("version", "1"),
                ("shards", "8"),
                (META_TTL, "exp")
            ])),
            Some(TableLayout {
                shards: 8,
                ttl_attribute: Some("exp".into())
            })
        );
        for bad in [
            item(&[("version", "2"), ("shards", "8")]),
            item(&[("version", "1"), ("shards", "0")]),
            item(&[("version", "1"), ("shards", "257")]),
            item(&[("version", "1")]),
            item(&[]),
        ] {
            assert_eq!(TableLayout::from_item(&bad), None, "{bad:?}");
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
