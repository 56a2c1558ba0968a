//! Deleting values: `remove`, `pop`, batch deletes and `clear`, and reclaiming the large
//! values they (and replacing writes) retire.

use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::future::try_join_all;

use super::chunked::{self, Manifest, is_manifest, manifest_of};
use super::read::Resolved;
use super::{MAX_ROUNDS, Store, conflict, raw_generation};
use crate::Result;
use crate::engine::batch::{self, Write};
use crate::engine::paging::Projection;
use crate::engine::requests::{Condition, Written};
use crate::item::{Item, key_of, now_secs};
use crate::layout::{FORMAT, PK, SK, key_of_item};

/// The attributes a batch operation reads to find the chunks of the values it replaces.
const MANIFEST_ATTRIBUTES: &[&str] = &[chunked::GENERATION, chunked::COUNT, chunked::LENGTH];

impl Store {
    /// Deletes `key`; returns the item deleted.
    pub(crate) async fn remove(&self, key: &str) -> Result<Option<Item>> {
        let key_item = self.engine.layout.item_key(key);
        let Written::Applied(old) = self.engine.delete_item(key_item, None, true).await? else {
            return Ok(None);
        };
        self.retire(key, old.as_ref(), None).await;
        Ok(old)
    }

    /// Deletes `key` and returns the item deleted, a large value's chunks joined in (read
    /// before the delete, which then removes exactly the value read). An item written by
    /// another serializer is not deleted: it is returned as it is, for the caller to report.
    pub(crate) async fn pop(&self, key: &str) -> Result<Option<Item>> {
        // In a namespace that never held a large value, the first delete only guards the
        // format (as cheap as a raw `DeleteItem`); a large value it meets anyway is read after.
        let mut guarded = self.may_hold_large().await?;
        let mut generation: Option<AttributeValue> = None;
        let mut previous: Option<Item> = None;
        for _ in 0..MAX_ROUNDS {
            let condition = self.pop_condition(generation.clone(), guarded);
            let key_item = self.engine.layout.item_key(key);
            let sent = self
                .engine
                .delete_item_watched(&key_item, Some(&condition))
                .await?;
            let found = match sent.written {
                Written::Applied(old) if !guarded && old.as_ref().is_some_and(is_manifest) => {
                    return self.read_retired(key, old, None).await;
                }
                Written::Applied(old) => {
                    if let Some(doubt) = sent.doubt
                        && old.is_none()
                        && previous.is_none()
                    {
                        // An earlier attempt, whose answer was lost, may have deleted the
                        // value: what it held is unknown.
                        return Err(doubt);
                    }
                    self.retire(key, old.as_ref(), None).await;
                    return Ok(if previous.is_some() { previous } else { old });
                }
                Written::Refused(Some(found)) => Some(found),
                Written::Refused(None) => self.read_consistent(key).await?,
            };
            if sent.doubt.is_some()
                && previous.is_some()
                && raw_generation(found.as_ref()) != generation
            {
                // The large value read is gone, deleted by the earlier attempt whose answer was
                // lost (or by another writer meanwhile): it is what this call popped.
                self.retire(key, previous.as_ref(), None).await;
                return Ok(previous);
            }
            (generation, previous, guarded) = (None, None, true);
            let Some(found) = found else { continue };
            if !self.ours(&found) {
                return Ok(Some(found));
            }
            let Some(raw) = raw_generation(Some(&found)) else {
                continue;
            };
            // A large value: read it (a malformed one is reported, and left in place), then
            // delete exactly it.
            if let Resolved::Done(item) = self.resolve_checked(key, Some(found)).await? {
                (generation, previous) = (Some(raw), item);
            }
        }
        Err(conflict(key))
    }

    /// `pop`'s condition: the item is this map's (or absent), and (when `guarded`) is not a
    /// large value, or is exactly the large value read.
    fn pop_condition(&self, generation: Option<AttributeValue>, guarded: bool) -> Condition {
        const OURS: &str = "(attribute_not_exists(#pk) OR #f = :f)";
        let condition = match (generation, guarded) {
            (None, false) => Condition::new(OURS).name("#pk", PK),
            (None, true) => Condition::new(format!("{OURS} AND attribute_not_exists(#g)"))
                .name("#pk", PK)
                .name("#g", chunked::GENERATION),
            (Some(generation), _) => Condition::new("#f = :f AND #g = :g")
                .name("#g", chunked::GENERATION)
                .value(":g", generation),
        };
        condition
            .name("#f", FORMAT)
            .value(":f", AttributeValue::S(self.serializer.id().to_owned()))
    }

    /// Deletes many keys (distinct) with `BatchWriteItem`.
    pub(crate) async fn delete_many(&self, keys: Vec<String>) -> Result<()> {
        let replaced = self.manifests(&keys).await?;
        let layout = &self.engine.layout;
        let writes = keys
            .iter()
            .map(|k| Write::Delete(layout.item_key(k)))
            .collect();
        batch::write_all(&self.engine, writes).await?;
        self.retire_all(replaced).await;
        self.maybe_sweep().await;
        Ok(())
    }

    /// Deletes every item of the namespace, expired ones too, and reclaims the large values
    /// it deletes. Large values being written at the same time are not touched: their
    /// manifests land after `clear` and stay readable.
    pub(crate) async fn clear(&self) -> Result<()> {
        let started = now_secs();
        let engine = &self.engine;
        let per_shard = (0..engine.layout.shards).map(|shard| {
            let mut query = engine.query(
                engine.layout.partition(shard),
                Projection::Attributes(MANIFEST_ATTRIBUTES),
                false,
            );
            query.consistent = true;
            engine.for_each_page(query, |page| async move {
                let manifests = page
                    .items
                    .iter()
                    .filter_map(|item| Some((key_of(item)?.to_owned(), manifest_of(item)?)))
                    .collect();
                let deletes = page.items.iter().map(|i| Write::Delete(key_of_item(i)));
                batch::write_all(engine, deletes.collect()).await?;
                self.retire_all(manifests).await;
                Ok(())
            })
        });
        try_join_all(per_shard).await?;
        self.clear_old_generations(started).await?;
        self.maybe_sweep().await;
        Ok(())
    }

    /// After `clear` deleted every manifest it found, deletes every chunk and record of a
    /// generation created more than the grace period before `clear` started (or of an id of
    /// another form): no manifest can refer to one any more, since every write creates a new
    /// generation and sends its manifest within half the grace period. Younger generations
    /// may belong to writes still in flight; the sweep reclaims those that end unreferenced.
    ///
    /// All chunks go first, then the records: a generation's record is what lets the sweep find
    /// its chunks, so it must outlive them even if this call is cut short (a crash, a dropped
    /// future). A record whose chunks are gone is reclaimed by the sweep like any other.
    async fn clear_old_generations(&self, started: u64) -> Result<()> {
        let engine = &self.engine;
        let shards = 0..engine.layout.shards;
        let chunks = shards.clone().map(|s| engine.layout.chunk_partition(s));
        self.delete_generations_before(started, chunks.collect())
            .await?;
        let records = shards.map(|s| engine.layout.record_partition(s));
        self.delete_generations_before(started, records.collect())
            .await
    }

    /// Deletes the items of `partitions` (chunks or records) whose generation was created more
    /// than the grace period before `started`.
    async fn delete_generations_before(&self, started: u64, partitions: Vec<String>) -> Result<()> {
        let engine = &self.engine;
        let cutoff = started.saturating_sub(self.grace.as_secs().saturating_add(1));
        let per_partition = partitions.into_iter().map(|partition| {
            let mut query = engine.query(partition, Projection::Keys, false);
            query.consistent = true;
            engine.for_each_page(query, move |page| async move {
                let old = page.items.iter().filter(|item| {
                    let generation = key_of(item).map_or("", |sk| {
                        sk.split_once(':').map_or(sk, |(generation, _)| generation)
                    });
                    chunked::created(generation).is_none_or(|created| created < cutoff)
                });
                let deletes = old.map(|item| Write::Delete(key_of_item(item))).collect();
                batch::write_all(engine, deletes).await
            })
        });
        try_join_all(per_partition).await.map(|_| ())
    }

    /// The large values among `keys` (read consistently), for a batch operation to reclaim
    /// after it replaced or deleted them. Empty where the namespace never held one.
    pub(crate) async fn manifests(&self, keys: &[String]) -> Result<Vec<(String, Manifest)>> {
        if keys.is_empty() || !self.may_hold_large().await? {
            return Ok(Vec::new());
        }
        let layout = &self.engine.layout;
        let found = batch::get_items(
            &self.engine,
            keys.iter().map(|k| layout.item_key(k)).collect(),
            true,
            Some((
                "#pk, #sk, #g, #n, #z",
                &[
                    ("#pk", PK),
                    ("#sk", SK),
                    ("#g", chunked::GENERATION),
                    ("#n", chunked::COUNT),
                    ("#z", chunked::LENGTH),
                ],
            )),
        )
        .await?;
        Ok(found
            .into_iter()
            .filter_map(|(key, item)| Some((key, manifest_of(&item)?)))
            .collect())
    }

    /// Takes care of an item just replaced or deleted by a write of this call (never `ours`,
    /// the generation the call wrote): if it was a large value, its generation is no longer
    /// referenced. It is reclaimed now if it is older than the grace period (no copy of any
    /// request that wrote it can still land); otherwise the sweep reclaims it later.
    pub(crate) async fn retire(&self, key: &str, old: Option<&Item>, ours: Option<&str>) {
        let Some(manifest) = old.and_then(manifest_of) else {
            return;
        };
        if Some(manifest.generation.as_str()) != ours {
            self.retire_all(vec![(key.to_owned(), manifest)]).await;
        }
    }

    /// [`retire`](Self::retire) for many: the manifests were read before a write that
    /// replaced or deleted their keys. Each is unreferenced after that write whatever
    /// happened in between, so the same rule holds.
    pub(crate) async fn retire_all(&self, retired: Vec<(String, Manifest)>) {
        let (now, later): (Vec<_>, Vec<_>) = retired
            .into_iter()
            .partition(|(_, m)| self.older_than_grace(&m.generation));
        let records = now.into_iter().map(|(key, m)| m.into_record(key)).collect();
        // Best effort: what is not reclaimed now, the sweep reclaims.
        let _ = self.reclaim(records).await;
        if !later.is_empty() {
            self.maybe_sweep().await;
        }
    }
}
