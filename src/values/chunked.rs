//! The data of large values: generations, chunks, records and manifests. Pure data, no
//! requests (reading chunks back is in [`super::read`]).
//!
//! A value over DynamoDB's 400 KB item limit is written as one *generation*:
//!
//! - a **record** `<namespace>#<shard>#g` / `<generation>` with the key (`k`), chunk count (`n`)
//!   and length (`z`): what the garbage collector reads, a hundred bytes, never the data;
//! - **chunks** `<namespace>#<shard>#c` / `<generation>:<index>`, the bytes in `d`;
//! - the **manifest**: the key's ordinary item, with the generation (`g`), chunk count (`n`)
//!   and length (`z`) instead of a value.
//!
//! A generation id is `t` + its creation time (10 hex digits of epoch seconds) + 64 random
//! bits, so sort order is creation order and "every generation older than T" is one key
//! condition (`sk < t<T>`).

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::layout::{Item, Layout, primary_key, shard_of};

/// Bytes per chunk item (leaving room for keys and attributes under the 400 KB item limit).
pub const CHUNK_BYTES: usize = 350 * 1024;
/// Default largest value, in encoded bytes.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 16 * 1024 * 1024;

/// Manifest and record attribute: generation id (manifest) .
pub(crate) const GENERATION: &str = "g";
/// Manifest and record attribute: number of chunks.
pub(crate) const COUNT: &str = "n";
/// Manifest and record attribute: total length in bytes.
pub(crate) const LENGTH: &str = "z";
/// Record attribute: the key the generation was written for.
pub(crate) const KEY: &str = "k";
/// Chunk attribute: the bytes.
pub(crate) const DATA: &str = "d";

/// Most chunks a value can have.
pub(crate) fn max_chunks() -> usize {
    crate::serializer::MAX_DECODED_SIZE.div_ceil(CHUNK_BYTES)
}

/// A new generation id, created now.
pub(crate) fn new_generation(now_secs: u64) -> String {
    format!("t{:010x}{:016x}", now_secs, fastrand::u64(..))
}

/// When a generation was created (epoch seconds); `None` for an id of another form, which
/// counts as created long ago.
pub(crate) fn created(generation: &str) -> Option<u64> {
    let hex = generation.strip_prefix('t')?;
    if hex.len() != 26 {
        return None;
    }
    // `get`, not indexing: an id read from the table may hold any text.
    u64::from_str_radix(hex.get(..10)?, 16).ok()
}

/// The sort key before which every generation was created before `secs`.
pub(crate) fn created_before(secs: u64) -> String {
    format!("t{secs:010x}")
}

/// A manifest's reference to its generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub generation: String,
    pub count: usize,
    pub length: u64,
}

impl Manifest {
    /// The record of this manifest's generation, written for `key`.
    pub(crate) fn into_record(self, key: String) -> Record {
        Record {
            key,
            generation: self.generation,
            count: self.count,
            length: self.length,
            location: None,
        }
    }
}

/// Whether an item is a manifest.
pub(crate) fn is_manifest(item: &Item) -> bool {
    item.contains_key(GENERATION)
}

fn number<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

/// The generation a manifest refers to; `None` for an ordinary item (or a malformed manifest).
pub(crate) fn manifest_of(item: &Item) -> Option<Manifest> {
    Some(Manifest {
        generation: item.get(GENERATION)?.as_s().ok()?.clone(),
        count: number(item, COUNT)?,
        length: number(item, LENGTH).unwrap_or(0),
    })
}

/// A generation's record, as read back by the garbage collector.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub key: String,
    pub generation: String,
    pub count: usize,
    pub length: u64,
    /// The primary key the record was read at (`None`: where [`record_key`] puts it).
    pub location: Option<Item>,
}

impl Record {
    /// Reads a record item; `None` for a malformed one.
    pub(crate) fn from_item(item: &Item) -> Option<Record> {
        Some(Record {
            key: item.get(KEY)?.as_s().ok()?.clone(),
            generation: item.get(crate::layout::SK)?.as_s().ok()?.clone(),
            count: number(item, COUNT)?,
            length: number(item, LENGTH).unwrap_or(0),
            location: Some(crate::layout::key_of_item(item)),
        })
    }

    /// Where the record is stored.
    pub(crate) fn location(&self, layout: &Layout) -> Item {
        self.location
            .clone()
            .unwrap_or_else(|| record_key(layout, &self.key, &self.generation))
    }
}

/// The chunk partition of `key`.
pub(crate) fn chunk_partition(layout: &Layout, key: &str) -> String {
    layout.chunk_partition(shard_of(key, layout.shards))
}

/// Primary keys of a generation's chunks (at most [`max_chunks`]; none for a generation id
/// too long to be part of a sort key, which foreign data may hold).
pub(crate) fn chunk_keys(layout: &Layout, key: &str, generation: &str, count: usize) -> Vec<Item> {
    if generation.len() + ":00000".len() > crate::layout::MAX_KEY_BYTES {
        return Vec::new();
    }
    let partition = chunk_partition(layout, key);
    (0..count.min(max_chunks()))
        .map(|i| primary_key(partition.clone(), format!("{generation}:{i:05}")))
        .collect()
}

/// Primary key of a generation's record.
pub(crate) fn record_key(layout: &Layout, key: &str, generation: &str) -> Item {
    primary_key(
        layout.record_partition(shard_of(key, layout.shards)),
        generation.to_owned(),
    )
}

/// A large value split for writing: record first, then chunks, then the manifest.
#[derive(Debug)]
pub(crate) struct Split {
    pub generation: String,
    pub record: Item,
    pub chunks: Vec<Item>,
    pub manifest: Item,
}

/// Splits `payload` into a new generation for `key`. `manifest` already holds the key, format,
/// signature and expiry; the expiry is copied onto the record and the chunks, so that an
/// expiring value's items all expire together.
pub(crate) fn split(
    layout: &Layout,
    key: &str,
    mut manifest: Item,
    payload: &[u8],
    now_secs: u64,
) -> Split {
    let expiry =
        crate::item::expiry_of(&manifest, layout).map(|(name, at)| (name.to_owned(), at.clone()));
    let generation = new_generation(now_secs);
    let count = payload.len().div_ceil(CHUNK_BYTES);
    let with_expiry = |mut item: Item| {
        if let Some((attribute, at)) = &expiry {
            item.insert(attribute.clone(), at.clone());
        }
        item
    };
    let chunks: Vec<Item> = chunk_keys(layout, key, &generation, count)
        .into_iter()
        .zip(payload.chunks(CHUNK_BYTES))
        .map(|(mut item, data)| {
            item.insert(DATA.to_owned(), AttributeValue::B(Blob::new(data)));
            with_expiry(item)
        })
        .collect();
    let sizes = [
        (COUNT, AttributeValue::N(count.to_string())),
        (LENGTH, AttributeValue::N(payload.len().to_string())),
    ];
    let mut record = record_key(layout, key, &generation);
    record.insert(KEY.to_owned(), AttributeValue::S(key.to_owned()));
    record.extend(sizes.iter().map(|(n, v)| ((*n).to_owned(), v.clone())));
    manifest.insert(GENERATION.to_owned(), AttributeValue::S(generation.clone()));
    manifest.extend(sizes.into_iter().map(|(n, v)| (n.to_owned(), v)));
    Split {
        generation,
        record: with_expiry(record),
        chunks,
        manifest,
    }
}

/// Joins chunks read back (by sort key) into the payload, in order. `None` when a chunk is
/// missing (the generation was reclaimed: its manifest was replaced meanwhile).
pub(crate) fn join(
    mut found: HashMap<String, Item>,
    keys: &[Item],
    length: usize,
) -> Result<Option<Vec<u8>>, String> {
    let mut payload = Vec::with_capacity(length);
    for key in keys {
        let sort_key = match key.get(crate::layout::SK) {
            Some(AttributeValue::S(sk)) => sk,
            _ => return Err("a chunk key has no sort key".into()),
        };
        let Some(chunk) = found.remove(sort_key) else {
            return Ok(None);
        };
        match chunk.get(DATA) {
            Some(AttributeValue::B(b)) => payload.extend_from_slice(b.as_ref()),
            _ => return Err("a chunk has no data".into()),
        }
    }
    if payload.len() != length {
        return Err(format!(
            "chunks hold {} bytes, manifest says {length}",
            payload.len()
        ));
    }
    Ok(Some(payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{PK, SK};

    fn layout() -> Layout {
        crate::layout::test_layout()
    }

    #[test]
    fn generation_ids_sort_by_creation_time() {
        let a = new_generation(1_700_000_000);
        let b = new_generation(1_700_000_001);
        assert!(a < b);
        assert_eq!(created(&a), Some(1_700_000_000));
        assert!(a < created_before(1_700_000_001));
        assert!(b >= created_before(1_700_000_001));
        // Ids of another form count as old, whatever text they hold.
        assert_eq!(created("0123456789abcdef0123456789abcdef"), None);
        assert_eq!(created("tééééééééééééé"), None);
        assert_eq!(created("t123456789é123456789012345"), None);
        assert!(*"0123456789abcdef0123456789abcdef" < *created_before(0));
    }

    #[test]
    fn split_and_join_round_trip() {
        let l = layout();
        let payload: Vec<u8> = (0..(CHUNK_BYTES * 2 + 5)).map(|i| i as u8).collect();
        let expiry = AttributeValue::N("99".into());
        let mut manifest = l.item_key("key");
        manifest.insert("ttl".into(), expiry.clone());
        let s = split(&l, "key", manifest, &payload, 7);
        assert_eq!(s.chunks.len(), 3);
        assert!(s.chunks.iter().all(|c| c.get("ttl") == Some(&expiry)));
        assert_eq!(s.record.get("ttl"), Some(&expiry));
        let m = manifest_of(&s.manifest).unwrap();
        assert_eq!((m.count, m.length), (3, payload.len() as u64));
        assert_eq!(m.generation, s.generation);
        let r = Record::from_item(&s.record).unwrap();
        assert_eq!((r.key.as_str(), r.count), ("key", 3));
        assert!(s.record[PK].as_s().unwrap().ends_with("#g"));
        assert!(s.chunks[0][PK].as_s().unwrap().ends_with("#c"));
        let keys = chunk_keys(&l, "key", &m.generation, m.count);
        let found: HashMap<String, Item> = s
            .chunks
            .iter()
            .map(|c| (c[SK].as_s().unwrap().clone(), c.clone()))
            .collect();
        assert_eq!(
            join(found.clone(), &keys, payload.len()).unwrap(),
            Some(payload.clone())
        );
        let mut missing = found;
        missing.remove(keys[1][SK].as_s().unwrap());
        assert_eq!(join(missing, &keys, payload.len()).unwrap(), None);
    }
}
