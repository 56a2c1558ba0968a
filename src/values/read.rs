//! Reading values back: an item as stored, with a large value's chunks joined in.

use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::Store;
use super::chunked::{self, chunk_keys, is_manifest, manifest_of};
use crate::engine::batch;
use crate::item::{Item, StoredValue};
use crate::layout::{FORMAT, SIGNATURE, VALUE};
use crate::serializer::{Format, from_canonical_bytes};
use crate::{Error, Result};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

/// What reading a manifest's chunks gave.
pub(crate) enum Resolved {
    /// The item, value joined in where it was a live manifest of this map's serializer.
    Done(Option<Item>),
    /// A chunk is missing: the manifest was replaced or deleted meanwhile; read it again.
    Replaced,
}

/// The error for a large value whose chunks are gone while its manifest is current.
fn missing_chunk(key: &str) -> Error {
    Error::Deserialize {
        key: key.to_owned(),
        message: "a chunk of the large value is missing".into(),
    }
}

/// How many times a read follows a large value that keeps being replaced.
const MAX_REREADS: usize = 5;

/// Whose large values a read joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Joining {
    /// Only those of this map's serializer (others are reported when decoded); a large
    /// document's signature is checked before it is parsed.
    Ours,
    /// Those of any serializer, checking nothing: the value as stored
    /// ([`Store::get_stored`]).
    Any,
}

impl Store {
    /// Reads `key`'s current item, a large value's chunks joined in.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Item>> {
        let item = self.read_item(key).await?;
        self.current(key, item).await
    }

    /// `key`'s item as stored, read as the map's reads are (consistent unless turned off).
    async fn read_item(&self, key: &str) -> Result<Option<Item>> {
        self.engine
            .get_item(
                self.engine.layout.item_key(key),
                self.engine.consistent_reads,
                None,
            )
            .await
    }

    /// Reads `key`'s live value as stored, whatever serializer wrote it, a large value's
    /// chunks joined in; `None` when absent or expired.
    pub(crate) async fn get_stored(&self, key: &str) -> Result<Option<StoredValue>> {
        let item = self.read_item(key).await?;
        match self.current_as(key, item, Joining::Any).await? {
            Some(item) if self.is_live(&item) => StoredValue::from_item(key, item).map(Some),
            _ => Ok(None),
        }
    }

    /// Whether `key` holds a live value (reads only the key and expiry).
    pub(crate) async fn contains(&self, key: &str) -> Result<bool> {
        let layout = &self.engine.layout;
        let mut attributes = vec![crate::layout::PK];
        if let Some(attribute) = &layout.ttl_attribute {
            attributes.push(attribute);
        }
        let item = self
            .engine
            .get_item(
                layout.item_key(key),
                self.engine.consistent_reads,
                Some(&attributes),
            )
            .await?;
        Ok(item.is_some_and(|i| self.is_live(&i)))
    }

    /// Joins the chunks of `item`, just read at `key`; when they are gone (replaced
    /// meanwhile), reads the key again (consistently) and tries again.
    pub(crate) async fn current(&self, key: &str, item: Option<Item>) -> Result<Option<Item>> {
        self.current_as(key, item, Joining::Ours).await
    }

    /// [`current`](Self::current), joining the large values `joining` says.
    async fn current_as(
        &self,
        key: &str,
        mut item: Option<Item>,
        joining: Joining,
    ) -> Result<Option<Item>> {
        for _ in 0..MAX_REREADS {
            let generation = super::raw_generation(item.as_ref());
            match self.resolve_as(key, item, joining).await? {
                Resolved::Done(item) => return Ok(item),
                Resolved::Replaced => {
                    item = self
                        .engine
                        .get_item(self.engine.layout.item_key(key), true, None)
                        .await?;
                    if super::raw_generation(item.as_ref()) == generation {
                        // Still the same value, and its chunks are gone: not a race.
                        return Err(missing_chunk(key));
                    }
                }
            }
        }
        Err(Error::Conflict {
            key: key.to_owned(),
            message: "the large value was replaced every time it was read; try again".into(),
        })
    }

    /// Joins a manifest's chunks into it. Items that are not manifests, expired ones and those
    /// written by another serializer (reported as such when decoded) come back as they are.
    pub(crate) async fn resolve(&self, key: &str, item: Option<Item>) -> Result<Resolved> {
        self.resolve_as(key, item, Joining::Ours).await
    }

    /// [`resolve`](Self::resolve), joining the large values `joining` says.
    async fn resolve_as(
        &self,
        key: &str,
        item: Option<Item>,
        joining: Joining,
    ) -> Result<Resolved> {
        let Some(mut item) = item else {
            return Ok(Resolved::Done(None));
        };
        let wanted = joining == Joining::Any || self.ours(&item);
        if !is_manifest(&item) || !self.is_live(&item) || !wanted {
            return Ok(Resolved::Done(Some(item)));
        }
        if self.join_chunks(key, &mut item, joining).await? {
            Ok(Resolved::Done(Some(item)))
        } else {
            Ok(Resolved::Replaced)
        }
    }

    /// [`resolve`](Self::resolve), for an item read by a write that will act on it: when its
    /// chunks are missing, the key is read again, and if it still holds the same generation,
    /// the value is damaged (a `Deserialize` error) rather than replaced meanwhile.
    pub(crate) async fn resolve_checked(&self, key: &str, item: Option<Item>) -> Result<Resolved> {
        let generation = super::raw_generation(item.as_ref());
        match self.resolve(key, item).await? {
            Resolved::Replaced => {
                let now = self.read_consistent(key).await?;
                if super::raw_generation(now.as_ref()) == generation {
                    return Err(missing_chunk(key));
                }
                Ok(Resolved::Replaced)
            }
            done => Ok(done),
        }
    }

    /// Reads the value of a large value that an unguarded write of this call just replaced or
    /// deleted (its namespace held no large value a minute before), then retires it. Its
    /// chunks are still there unless it was older than the grace period and a sweep reclaimed
    /// it in between: then the write stands and the error says the old value is gone.
    pub(crate) async fn read_retired(
        &self,
        key: &str,
        old: Option<Item>,
        ours: Option<&str>,
    ) -> Result<Option<Item>> {
        let read = match self.resolve(key, old.clone()).await? {
            Resolved::Done(read) => Ok(read),
            Resolved::Replaced => Err(missing_chunk(key)),
        };
        self.retire(key, old.as_ref(), ours).await;
        read
    }

    /// Reads a manifest's chunks (consistently) and puts the value into it. `Ok(false)` when a
    /// chunk is missing.
    async fn join_chunks(&self, key: &str, item: &mut Item, joining: Joining) -> Result<bool> {
        let corrupt = |message: String| Error::Deserialize {
            key: key.to_owned(),
            message,
        };
        let manifest =
            manifest_of(item).ok_or_else(|| corrupt("malformed large-value manifest".into()))?;
        let length = usize::try_from(manifest.length).unwrap_or(usize::MAX);
        if manifest.count > chunked::max_chunks()
            || length > crate::serializer::MAX_DECODED_SIZE
            || length > manifest.count.saturating_mul(chunked::CHUNK_BYTES)
        {
            return Err(corrupt(format!(
                "large-value manifest claims {} chunks / {length} bytes",
                manifest.count
            )));
        }
        let keys = chunk_keys(
            &self.engine.layout,
            key,
            &manifest.generation,
            manifest.count,
        );
        let found = batch::get_items(&self.engine, keys.clone(), true, None).await?;
        let Some(payload) = chunked::join(found, &keys, length).map_err(corrupt)? else {
            return Ok(false);
        };
        let format = match joining {
            Joining::Ours => Some(self.serializer.format()),
            Joining::Any => match item.get(FORMAT) {
                Some(AttributeValue::S(id)) => Format::of_pipeline(id),
                _ => None,
            },
        };
        let value = match format {
            Some(Format::Document) => {
                if joining == Joining::Ours {
                    let signature = match item.get(SIGNATURE) {
                        Some(AttributeValue::B(b)) => Some(b.as_ref()),
                        _ => None,
                    };
                    self.serializer
                        .verify_document_bytes(key, &payload, signature)?;
                }
                from_canonical_bytes(&payload).map_err(corrupt)?
            }
            _ => AttributeValue::B(Blob::new(payload)),
        };
        item.insert(VALUE.to_owned(), value);
        Ok(true)
    }

    /// Reads many keys (distinct), large values joined in. Returns the items found, by key.
    pub(crate) async fn get_many(
        &self,
        keys: Vec<String>,
    ) -> Result<std::collections::HashMap<String, Item>> {
        let layout = &self.engine.layout;
        let mut found = batch::get_items(
            &self.engine,
            keys.iter().map(|k| layout.item_key(k)).collect(),
            self.engine.consistent_reads,
            None,
        )
        .await?;
        // Only large values (manifests) need more requests; every other item is final. One
        // future per manifest, a few in flight (a future holding an SDK request is kilobytes).
        let manifest_keys: Vec<String> = found
            .iter()
            .filter(|(_, item)| is_manifest(item))
            .map(|(key, _)| key.clone())
            .collect();
        let manifests: Vec<(String, Item)> = manifest_keys
            .into_iter()
            .filter_map(|key| found.remove_entry(&key))
            .collect();
        let resolved: Vec<Option<(String, Item)>> =
            stream::iter(manifests.into_iter().map(|(key, item)| async move {
                let item = self.current(&key, Some(item)).await?;
                Ok::<_, Error>(item.map(|i| (key, i)))
            }))
            .buffer_unordered(self.engine.batch.concurrency)
            .try_collect()
            .await?;
        found.extend(resolved.into_iter().flatten());
        Ok(found)
    }
}

impl Store {
    /// The number of live items: a `COUNT` query per shard, run concurrently.
    pub(crate) async fn count(&self) -> Result<usize> {
        let engine = &self.engine;
        let per_shard = (0..engine.layout.shards).map(|shard| async move {
            let mut total = 0usize;
            let query = engine.query(
                engine.layout.partition(shard),
                crate::engine::paging::Projection::Count,
                true,
            );
            engine
                .for_each_page(query, |page| {
                    total += page.count;
                    async { Ok(()) }
                })
                .await?;
            Ok::<_, Error>(total)
        });
        Ok(futures_util::future::try_join_all(per_shard)
            .await?
            .into_iter()
            .sum())
    }
}
