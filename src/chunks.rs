//! Values larger than one DynamoDB item (400 KB), split across several items.
//!
//! A large value is stored as *chunks* plus a *manifest*:
//!
//! - chunk items live in a partition of their own, `<namespace>#<shard>#c` (never seen by the
//!   namespace's listing queries), with sort key `<generation>:<index>` and the bytes in `d`;
//!   the generation is a random 128-bit id, new for every write;
//! - the manifest is the key's ordinary item, with the generation (`g`), chunk count (`n`) and
//!   total length (`z`) instead of a value.
//!
//! Chunks are written first and the manifest last, so a reader never sees a half-written value:
//! it sees the old manifest (whose chunks are deleted only after the new manifest replaced it;
//! a reader that loses that race re-reads the manifest) or the new one. Deleting or replacing
//! the manifest removes its chunks. Documents are chunked as their canonical byte encoding.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::batch::{self, Write};
use crate::dict::Core;
use crate::item::Item;
use crate::layout::{FORMAT, Layout, PK, SIGNATURE, SK, VALUE};
use crate::serializer::{Format, from_canonical_bytes};
use crate::{Error, Result};

/// Bytes per chunk item (leaving room for keys and attributes under the 400 KB item limit).
pub const CHUNK_BYTES: usize = 350 * 1024;
/// Default largest value, in encoded bytes.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 16 * 1024 * 1024;

/// Manifest attribute: generation id.
pub(crate) const GENERATION: &str = "g";
/// Manifest attribute: number of chunks.
pub(crate) const COUNT: &str = "n";
/// Manifest attribute: total length in bytes.
pub(crate) const LENGTH: &str = "z";
/// Chunk attribute: the bytes.
const DATA: &str = "d";

/// An item ready to be written: one item, or a manifest and its chunks.
pub(crate) enum Prepared {
    Inline(Item),
    Chunked { manifest: Item, chunks: Vec<Item> },
}

impl Prepared {
    pub(crate) fn into_parts(self) -> (Item, Vec<Item>) {
        match self {
            Prepared::Inline(item) => (item, Vec::new()),
            Prepared::Chunked { manifest, chunks } => (manifest, chunks),
        }
    }
}

fn chunk_partition(layout: &Layout, key: &str) -> String {
    format!("{}#c", layout.partition_of(key))
}

/// The chunk partition of a shard (for clearing a namespace).
pub(crate) fn shard_chunk_partition(layout: &Layout, shard: u16) -> String {
    format!("{}#c", layout.partition(shard))
}

fn chunk_key(partition: &str, generation: &str, index: usize) -> Item {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(partition.to_owned())),
        (
            SK.to_owned(),
            AttributeValue::S(format!("{generation}:{index:05}")),
        ),
    ])
}

/// Splits `payload` into chunks; `manifest` already holds the key, format and expiry.
pub(crate) fn split(
    layout: &Layout,
    key: &str,
    mut manifest: Item,
    payload: &[u8],
    ttl: Option<(&str, AttributeValue)>,
) -> Prepared {
    let generation = format!("{:032x}", fastrand::u128(..));
    let partition = chunk_partition(layout, key);
    let chunks: Vec<Item> = payload
        .chunks(CHUNK_BYTES)
        .enumerate()
        .map(|(i, data)| {
            let mut item = chunk_key(&partition, &generation, i);
            item.insert(DATA.to_owned(), AttributeValue::B(Blob::new(data)));
            if let Some((attr, at)) = &ttl {
                item.insert((*attr).to_owned(), at.clone());
            }
            item
        })
        .collect();
    manifest.insert(GENERATION.to_owned(), AttributeValue::S(generation));
    manifest.insert(
        COUNT.to_owned(),
        AttributeValue::N(chunks.len().to_string()),
    );
    manifest.insert(
        LENGTH.to_owned(),
        AttributeValue::N(payload.len().to_string()),
    );
    Prepared::Chunked { manifest, chunks }
}

/// The generation and chunk count of a manifest, `None` for an ordinary item.
fn manifest_of(item: &Item) -> Option<(String, usize)> {
    let generation = item.get(GENERATION)?.as_s().ok()?.clone();
    let count = item.get(COUNT)?.as_n().ok()?.parse().ok()?;
    Some((generation, count))
}

/// Whether an item is a manifest.
pub(crate) fn is_manifest(item: &Item) -> bool {
    item.contains_key(GENERATION)
}

/// Keys of the chunks a manifest points to.
pub(crate) fn chunk_keys(layout: &Layout, key: &str, manifest: &Item) -> Vec<Item> {
    match manifest_of(manifest) {
        Some((generation, count)) => {
            let partition = chunk_partition(layout, key);
            (0..count.min(max_chunks()))
                .map(|i| chunk_key(&partition, &generation, i))
                .collect()
        }
        None => Vec::new(),
    }
}

fn max_chunks() -> usize {
    crate::serializer::MAX_DECODED_SIZE.div_ceil(CHUNK_BYTES)
}

/// Deletes the chunks of a replaced or deleted manifest.
pub(crate) async fn delete_chunks(core: &Core, key: &str, manifest: &Item) -> Result<()> {
    let writes = chunk_keys(&core.layout, key, manifest)
        .into_iter()
        .map(Write::Delete)
        .collect();
    batch::write_all(core, writes).await
}

/// Reads a manifest's chunks and puts the reassembled value into it. `Ok(false)` when a chunk
/// is missing (the value was replaced meanwhile).
async fn assemble(core: &Core, key: &str, item: &mut Item) -> Result<bool> {
    let corrupt = |message: String| Error::Deserialize {
        key: key.to_owned(),
        message,
    };
    let (_, count) =
        manifest_of(item).ok_or_else(|| corrupt("malformed large-value manifest".into()))?;
    let length: usize = item
        .get(LENGTH)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| corrupt("malformed large-value manifest".into()))?;
    if count > max_chunks()
        || length > crate::serializer::MAX_DECODED_SIZE
        || length > count * CHUNK_BYTES
    {
        return Err(corrupt(format!(
            "large-value manifest claims {count} chunks / {length} bytes"
        )));
    }
    let keys = chunk_keys(&core.layout, key, item);
    let mut found = batch::get_items(core, keys.clone(), None).await?;
    let mut payload = Vec::with_capacity(length);
    for chunk_key in &keys {
        let Some(chunk) = found.remove(&chunk_key[SK].as_s().cloned().unwrap_or_default()) else {
            return Ok(false);
        };
        match chunk.get(DATA) {
            Some(AttributeValue::B(b)) => payload.extend_from_slice(b.as_ref()),
            _ => return Err(corrupt("a chunk has no data".into())),
        }
    }
    if payload.len() != length {
        return Err(corrupt(format!(
            "chunks hold {} bytes, manifest says {length}",
            payload.len()
        )));
    }
    let value = match core.serializer.format() {
        Format::Document => {
            let signature = match item.get(SIGNATURE) {
                Some(AttributeValue::B(b)) => Some(b.as_ref()),
                _ => None,
            };
            core.serializer
                .verify_document_bytes(key, &payload, signature)?;
            from_canonical_bytes(&payload).map_err(corrupt)?
        }
        _ => AttributeValue::B(Blob::new(payload)),
    };
    item.insert(VALUE.to_owned(), value);
    Ok(true)
}

fn ours(core: &Core, item: &Item) -> bool {
    matches!(item.get(FORMAT), Some(AttributeValue::S(id)) if id == core.serializer.id())
}

/// Fills in the value of a manifest that is no longer current (replaced or deleted by this
/// call, so its chunks are still there). Items that are not manifests, or were written by
/// another serializer (reported later as such), are returned as they are.
pub(crate) async fn resolve_old(
    core: &Core,
    key: &str,
    item: Option<Item>,
) -> Result<Option<Item>> {
    match item {
        Some(mut item) if is_manifest(&item) && ours(core, &item) => {
            if assemble(core, key, &mut item).await? {
                Ok(Some(item))
            } else {
                Err(Error::Deserialize {
                    key: key.to_owned(),
                    message: "a chunk of the large value is missing".into(),
                })
            }
        }
        other => Ok(other),
    }
}

/// Fills in the value of a manifest just read as the current one. If a chunk is missing, the
/// value was replaced meanwhile: `reread` fetches the key's current item and it is tried again.
pub(crate) async fn resolve_current<F, Fut>(
    core: &Core,
    key: &str,
    mut item: Option<Item>,
    mut reread: F,
) -> Result<Option<Item>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<Item>>>,
{
    for _ in 0..5 {
        match item {
            Some(mut current) if is_manifest(&current) && ours(core, &current) => {
                if assemble(core, key, &mut current).await? {
                    return Ok(Some(current));
                }
                item = reread().await?;
            }
            other => return Ok(other),
        }
    }
    Err(Error::Deserialize {
        key: key.to_owned(),
        message: "the large value kept changing while it was read".into(),
    })
}
