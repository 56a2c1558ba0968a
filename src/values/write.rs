//! Writing values: `insert`, `set`, `setdefault`, batch writes, and the upload of a large
//! value (record, chunks, then manifest).

use tokio::time::Instant;

use super::chunked::{self, is_manifest};
use super::read::Resolved;
use super::{
    MAX_ROUNDS, Prepared, Store, conflict, generation_of, holds_generation, not_large,
    raw_generation, too_large,
};
use crate::Result;
use crate::engine::batch::{self, Write};
use crate::engine::requests::{Condition, Written};
use crate::error::Error;
use crate::item::{Item, now_secs};

/// A large value whose record and chunks are written; its manifest is next.
pub(crate) struct Upload {
    pub manifest: Item,
    pub generation: String,
    /// The manifest (and every chunk) must be sent before this: every copy of every request
    /// of the generation, retries included, then lands well within the grace period, before
    /// the generation can be reclaimed.
    pub deadline: Instant,
}

/// What `insert` writes: an inline item, or an uploaded large value's manifest.
enum Pending {
    Inline(Item),
    Large(Upload),
}

impl Upload {
    /// Whether `item` is this upload's own manifest.
    fn is_own(&self, item: Option<&Item>) -> bool {
        generation_of(item).as_deref() == Some(self.generation.as_str())
    }
}

impl Store {
    /// Writes a large value's record, then its chunks, and returns the manifest to write.
    pub(crate) async fn upload(&self, key: &str, item: Item, payload: Vec<u8>) -> Result<Upload> {
        self.note_large().await?;
        let started = Instant::now();
        let layout = &self.engine.layout;
        let split = chunked::split(layout, key, item, &payload, now_secs());
        drop(payload);
        let deadline = started + self.grace / 2;
        // A stray copy of the record is harmless: the sweep reclaims unreferenced records.
        self.engine.put_item(split.record, None, false).await?;
        let chunks: Vec<Write> = split.chunks.into_iter().map(Write::Put).collect();
        let count = chunks.len() as u64;
        tracing::debug!(
            target: "dynamodict",
            key,
            chunks = count,
            generation = %split.generation,
            "writing a large value in chunks"
        );
        batch::write_all_until(&self.engine, chunks, deadline).await?;
        self.engine.connection.counters.chunks_written(count);
        Ok(Upload {
            manifest: split.manifest,
            generation: split.generation,
            deadline,
        })
    }

    /// Writes an upload's manifest, returning the item it replaced. A refusal caused by an
    /// earlier attempt of the same write (the SDK retried after a lost answer, and the key
    /// already holds this generation) is reported as applied, with the manifest itself as the
    /// "replaced" item.
    async fn put_manifest(
        &self,
        key: &str,
        upload: &Upload,
        condition: Option<&Condition>,
    ) -> Result<Written> {
        if Instant::now() >= upload.deadline {
            return Err(deadline_passed(self.grace));
        }
        let written = self
            .engine
            .put_item(upload.manifest.clone(), condition, true)
            .await
            .map_err(|e| too_large(key, self.max_value, e))?;
        match written {
            Written::Refused(found) => {
                let found = match found {
                    Some(found) => Some(found),
                    None => self.read_consistent(key).await?,
                };
                if upload.is_own(found.as_ref()) {
                    return Ok(Written::Applied(found));
                }
                Ok(Written::Refused(found))
            }
            applied => Ok(applied),
        }
    }

    /// Reads `key`'s item consistently, as stored.
    pub(crate) async fn read_consistent(&self, key: &str) -> Result<Option<Item>> {
        self.engine
            .get_item(self.engine.layout.item_key(key), true, None)
            .await
    }

    /// Stores `value` at `key` and returns the item it replaced, a large value's chunks joined
    /// in. A large value held by the key is read first and replaced only if it is still the
    /// one read, so the value returned is exactly the one replaced.
    pub(crate) async fn insert(&self, key: &str, value: Prepared) -> Result<Option<Item>> {
        let pending = match value {
            Prepared::Inline(item) => Pending::Inline(item),
            Prepared::Large { item, payload } => {
                Pending::Large(self.upload(key, item, payload).await?)
            }
        };
        self.replace(key, &pending).await
    }

    /// The loop of [`insert`](Self::insert).
    async fn replace(&self, key: &str, pending: &Pending) -> Result<Option<Item>> {
        let ours = match pending {
            Pending::Inline(_) => None,
            Pending::Large(upload) => Some(upload.generation.as_str()),
        };
        // In a namespace that never held a large value, the first write is the plain one (as
        // cheap as a raw `PutItem`); a large value it meets anyway is read after it.
        let guarded = ours.is_some() || self.may_hold_large().await?;
        let mut condition = guarded.then(not_large);
        // The large value read before the write that replaces exactly it (or why it could
        // not be decoded: reported once it is replaced).
        let mut previous: Option<Result<Option<Item>>> = None;
        for _ in 0..MAX_ROUNDS {
            // `own`: the answer shows this call's own earlier attempt (whose answer was lost):
            // the value is stored, and replaced what the condition allowed.
            let (written, own) = match pending {
                Pending::Inline(item) => {
                    let sent = self
                        .engine
                        .put_item_watched(item, condition.as_ref())
                        .await
                        .map_err(|e| too_large(key, self.max_value, e))?;
                    let shows_own = match &sent.written {
                        Written::Applied(Some(shown)) | Written::Refused(Some(shown)) => {
                            shown == item
                        }
                        _ => false,
                    };
                    let own = sent.doubt.filter(|_| shows_own);
                    (sent.written, own)
                }
                Pending::Large(upload) => {
                    let written = self.put_manifest(key, upload, condition.as_ref()).await?;
                    let own =
                        matches!(&written, Written::Applied(old) if upload.is_own(old.as_ref()))
                            .then_some(Error::Timeout { timeout: None });
                    (written, own)
                }
            };
            if let Some(doubt) = own {
                return match previous {
                    // It replaced exactly the large value read.
                    Some(Ok(read)) => {
                        self.retire(key, read.as_ref(), ours).await;
                        Ok(read)
                    }
                    Some(Err(err)) => Err(err),
                    // What it replaced is unknown: report the lost answer's error.
                    None => Err(doubt),
                };
            }
            let found = match written {
                Written::Applied(old)
                    if condition.is_none() && old.as_ref().is_some_and(is_manifest) =>
                {
                    return self.read_retired(key, old, ours).await;
                }
                Written::Applied(old) => {
                    match &previous {
                        Some(Ok(read)) => self.retire(key, read.as_ref(), ours).await,
                        _ => self.retire(key, old.as_ref(), ours).await,
                    }
                    if ours.is_some() {
                        self.maybe_sweep().await;
                    }
                    return previous.unwrap_or(Ok(old));
                }
                Written::Refused(Some(found)) => Some(found),
                Written::Refused(None) => self.read_consistent(key).await?,
            };
            (previous, condition) = (None, Some(not_large()));
            let Some(generation) = raw_generation(found.as_ref()) else {
                continue;
            };
            // The key holds a large value: read it while it is current, then replace exactly it.
            match self.resolve_checked(key, found).await {
                Ok(Resolved::Replaced) => continue,
                Ok(Resolved::Done(item)) => previous = Some(Ok(item)),
                // Damaged data is replaced, and reported; any other error stops here.
                Err(err @ (Error::Deserialize { .. } | Error::BadSignature { .. })) => {
                    previous = Some(Err(err));
                }
                Err(err) => return Err(err),
            }
            condition = Some(holds_generation(generation));
        }
        Err(conflict(key))
    }

    /// Stores `value` at `key`, without returning the previous value.
    pub(crate) async fn set(&self, key: &str, value: Prepared) -> Result<()> {
        match value {
            Prepared::Inline(item) => {
                // Only a namespace that may hold large values needs the replaced item back.
                let return_old = self.may_hold_large().await?;
                let written = self
                    .engine
                    .put_item(item, None, return_old)
                    .await
                    .map_err(|e| too_large(key, self.max_value, e))?;
                if let Written::Applied(old) = written {
                    self.retire(key, old.as_ref(), None).await;
                }
            }
            Prepared::Large { item, payload } => {
                let upload = self.upload(key, item, payload).await?;
                self.put_large(key, &upload).await?;
                self.maybe_sweep().await;
            }
        }
        Ok(())
    }

    /// Stores `value` unless `key` holds a live value. Returns `None` when stored, or the
    /// live item (a large value's chunks joined in).
    pub(crate) async fn setdefault(&self, key: &str, value: Prepared) -> Result<Option<Item>> {
        match value {
            Prepared::Inline(item) => {
                for _ in 0..MAX_ROUNDS {
                    let condition = self.absent_or_expired();
                    let found = match self
                        .engine
                        .put_item(item.clone(), Some(&condition), true)
                        .await
                    {
                        Ok(Written::Applied(replaced)) => {
                            self.retire(key, replaced.as_ref(), None).await;
                            return Ok(None);
                        }
                        Ok(Written::Refused(Some(found))) => Some(found),
                        Ok(Written::Refused(None)) => self.read_consistent(key).await?,
                        Err(err) => return Err(too_large(key, self.max_value, err)),
                    };
                    if let Resolved::Done(Some(item)) = self.resolve_checked(key, found).await? {
                        return Ok(Some(item));
                    }
                }
                Err(conflict(key))
            }
            Prepared::Large { item, payload } => {
                // Don't upload what the answer will not use: a live value wins.
                if let Some(existing) = self.live_value(key).await? {
                    return Ok(Some(existing));
                }
                let upload = self.upload(key, item, payload).await?;
                // Whatever happens, an unreferenced upload is left to the sweep: an attempt
                // of its manifest may still land.
                let stored = self.setdefault_manifest(key, &upload).await;
                self.maybe_sweep().await;
                stored
            }
        }
    }

    /// The live value at `key`, chunks joined in, or `None`.
    async fn live_value(&self, key: &str) -> Result<Option<Item>> {
        for _ in 0..MAX_ROUNDS {
            let current = self.read_consistent(key).await?;
            if !current.as_ref().is_some_and(|c| self.is_live(c)) {
                return Ok(None);
            }
            if let Resolved::Done(item) = self.resolve_checked(key, current).await? {
                return Ok(item);
            }
        }
        Err(conflict(key))
    }

    async fn setdefault_manifest(&self, key: &str, upload: &Upload) -> Result<Option<Item>> {
        for _ in 0..MAX_ROUNDS {
            let condition = self.absent_or_expired();
            let found = match self.put_manifest(key, upload, Some(&condition)).await? {
                Written::Applied(replaced) => {
                    if !upload.is_own(replaced.as_ref()) {
                        self.retire(key, replaced.as_ref(), Some(&upload.generation))
                            .await;
                    }
                    return Ok(None);
                }
                Written::Refused(found) => found,
            };
            if let Resolved::Done(Some(existing)) = self.resolve_checked(key, found).await? {
                return Ok(Some(existing));
            }
        }
        Err(conflict(key))
    }

    /// Writes an upload's manifest unconditionally and retires what it replaced.
    async fn put_large(&self, key: &str, upload: &Upload) -> Result<()> {
        if let Written::Applied(old) = self.put_manifest(key, upload, None).await? {
            self.retire(key, old.as_ref(), Some(&upload.generation))
                .await;
        }
        Ok(())
    }

    /// Writes many values (distinct keys): small ones with `BatchWriteItem`, large ones each
    /// uploaded and its manifest written at once (so each is sent well within its own
    /// deadline). The large values the batch replaces are read first and retired after.
    pub(crate) async fn put_many(&self, entries: Vec<(String, Prepared)>) -> Result<()> {
        let mut small = Vec::with_capacity(entries.len());
        let mut large = Vec::new();
        for (key, prepared) in entries {
            match prepared {
                Prepared::Inline(item) => small.push((key, item)),
                Prepared::Large { item, payload } => large.push((key, item, payload)),
            }
        }
        let small_keys: Vec<String> = small.iter().map(|(k, _)| k.clone()).collect();
        let replaced = self.manifests(&small_keys).await?;
        batch::write_all(
            &self.engine,
            small
                .into_iter()
                .map(|(_, item)| Write::Put(item))
                .collect(),
        )
        .await?;
        self.retire_all(replaced).await;
        for (key, item, payload) in large {
            let upload = self.upload(&key, item, payload).await?;
            self.put_large(&key, &upload).await?;
        }
        self.maybe_sweep().await;
        Ok(())
    }
}

/// The error of a large write that could not send its manifest in time.
fn deadline_passed(grace: std::time::Duration) -> Error {
    Error::Timeout {
        timeout: Some(grace / 2),
    }
}
