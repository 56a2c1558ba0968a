//! Writing values: `insert`, `set`, `setdefault`, batch writes, and the upload of a large
//! value (record, chunks, then manifest).

use std::sync::atomic::AtomicBool;

use tokio::time::Instant;

use super::chunked::{self, is_manifest, mark_unclean};
use super::read::Resolved;
use super::{
    MAX_ROUNDS, Prepared, Store, conflict, generation_of, holds_generation, not_large,
    raw_generation, too_large,
};
use crate::Result;
use crate::engine::batch::{self, Write, backoff};
use crate::engine::requests::{Condition, Written};
use crate::error::Error;
use crate::item::{self, Item, now_secs};

/// A large value whose record and chunks are written; its manifest is next.
pub(crate) struct Upload {
    pub manifest: Item,
    pub generation: String,
    /// The manifest must be sent before this: the generation is then still well within the
    /// grace period, so the garbage collector cannot have reclaimed it.
    pub deadline: Instant,
    /// The first failure whose outcome was unknown, if any (the generation is then unclean).
    pub ambiguity: Option<Error>,
}

impl Upload {
    /// Whether `item` is this upload's own manifest.
    fn is_own(&self, item: Option<&Item>) -> bool {
        generation_of(item).as_deref() == Some(self.generation.as_str())
    }
}

/// Marks a manifest (not an inline item) written again after an unknown outcome.
fn mark_manifest_unclean(item: &mut Item) {
    if is_manifest(item) {
        mark_unclean(item);
    }
}

impl Store {
    /// Writes a large value's record, then its chunks, and returns the manifest to write.
    pub(crate) async fn upload(&self, key: &str, item: Item, payload: Vec<u8>) -> Result<Upload> {
        self.note_large().await?;
        let started = Instant::now();
        let layout = &self.engine.layout;
        let expiry = item::expiry_of(&item, layout).map(|(name, at)| (name.to_owned(), at.clone()));
        let expiry = expiry
            .as_ref()
            .map(|(name, at)| (name.as_str(), at.clone()));
        let split = chunked::split(layout, key, item, &payload, expiry, now_secs());
        drop(payload);
        let deadline = started + self.grace / 2;
        // A stray copy of the record is harmless: the sweep reclaims unreferenced records.
        self.engine.put_item(split.record, None, false).await?;
        let ambiguous = AtomicBool::new(false);
        let chunks = split.chunks.into_iter().map(Write::Put).collect();
        batch::write_all_tracked(&self.engine, chunks, &ambiguous, mark_unclean, deadline).await?;
        let mut manifest = split.manifest;
        let ambiguity = if ambiguous.into_inner() {
            mark_unclean(&mut manifest);
            Some(Error::Timeout { timeout: None })
        } else {
            None
        };
        Ok(Upload {
            manifest,
            generation: split.generation,
            deadline,
            ambiguity,
        })
    }

    /// Writes an upload's manifest, each attempt sent once and retried here. After an attempt
    /// with an unknown outcome, the manifest is marked unclean before it is sent again, and a
    /// refusal caused by the earlier attempt itself (the key already holds this generation) is
    /// reported as applied, with the manifest itself as the "replaced" item.
    async fn put_manifest(
        &self,
        key: &str,
        upload: &mut Upload,
        condition: Option<&Condition>,
    ) -> Result<Written> {
        let mut last_error = None;
        for attempt in 1..=self.engine.connection.max_attempts {
            if Instant::now() >= upload.deadline {
                break;
            }
            if attempt > 1 {
                tokio::time::sleep(backoff(&self.engine.batch, attempt - 1)).await;
            }
            let sent = self
                .engine
                .put_item_once(upload.manifest.clone(), condition, true)
                .await;
            match sent {
                Ok(Written::Refused(found)) if upload.ambiguity.is_some() => {
                    let found = match found {
                        Some(found) => Some(found),
                        None => self.read_consistent(key).await?,
                    };
                    if upload.is_own(found.as_ref()) {
                        return Ok(Written::Applied(found));
                    }
                    return Ok(Written::Refused(found));
                }
                Ok(written) => return Ok(written),
                Err(failed) => {
                    if failed.ambiguous && upload.ambiguity.is_none() {
                        mark_unclean(&mut upload.manifest);
                        upload.ambiguity = Some(failed.error.clone_message());
                    }
                    if !failed.retryable {
                        return Err(too_large(key, failed.error));
                    }
                    last_error = Some(failed.error);
                }
            }
        }
        Err(last_error.unwrap_or(Error::Timeout {
            timeout: Some(self.grace / 2),
        }))
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
        let (inline, mut upload) = match value {
            Prepared::Inline(item) => (Some(item), None),
            Prepared::Large { item, payload } => {
                (None, Some(self.upload(key, item, payload).await?))
            }
        };
        let mut condition = not_large();
        // The large value read before the write that replaces exactly it (or why it could
        // not be read: reported once it is replaced).
        let mut previous: Option<Result<Option<Item>>> = None;
        for _ in 0..MAX_ROUNDS {
            let written = match (&inline, &mut upload) {
                (Some(item), _) => self
                    .engine
                    .put_item(item.clone(), Some(&condition), true)
                    .await
                    .map_err(|e| too_large(key, e))?,
                (None, Some(upload)) => self.put_manifest(key, upload, Some(&condition)).await?,
                (None, None) => unreachable!("a value is inline or uploaded"),
            };
            let ours = upload.as_ref().map(|u| u.generation.clone());
            let ours = ours.as_deref();
            let found = match written {
                Written::Applied(old) => {
                    let own = upload.as_ref().is_some_and(|u| u.is_own(old.as_ref()));
                    if own && previous.is_none() {
                        // An earlier attempt was applied and its answer lost, and the key held
                        // no large value: what it replaced is unknown.
                        let ambiguity = upload.as_mut().and_then(|u| u.ambiguity.take());
                        return Err(ambiguity.unwrap_or(Error::Timeout { timeout: None }));
                    }
                    match &previous {
                        // Replaced exactly the large value read (by this attempt or an
                        // earlier one whose answer was lost).
                        Some(Ok(read)) => self.retire(key, read.as_ref(), ours).await,
                        _ => self.retire(key, old.as_ref(), ours).await,
                    }
                    if upload.is_some() {
                        self.maybe_sweep().await;
                    }
                    return previous.unwrap_or(Ok(old));
                }
                Written::Refused(Some(found)) => Some(found),
                Written::Refused(None) => self.read_consistent(key).await?,
            };
            (previous, condition) = (None, not_large());
            let Some(generation) = raw_generation(found.as_ref()) else {
                continue;
            };
            // The key holds a large value: read it while it is current, then replace exactly it.
            match self.resolve_checked(key, found).await {
                Ok(Resolved::Replaced) => continue,
                Ok(Resolved::Done(item)) => previous = Some(Ok(item)),
                Err(err) => previous = Some(Err(err)),
            }
            condition = holds_generation(generation);
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
                    .map_err(|e| too_large(key, e))?;
                if let Written::Applied(old) = written {
                    self.retire(key, old.as_ref(), None).await;
                }
            }
            Prepared::Large { item, payload } => {
                let mut upload = self.upload(key, item, payload).await?;
                if let Written::Applied(old) = self.put_manifest(key, &mut upload, None).await? {
                    self.retire(key, old.as_ref(), Some(&upload.generation))
                        .await;
                }
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
                        Err(err) => return Err(too_large(key, err)),
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
                let mut upload = self.upload(key, item, payload).await?;
                let stored = self.setdefault_manifest(key, &mut upload).await;
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

    async fn setdefault_manifest(&self, key: &str, upload: &mut Upload) -> Result<Option<Item>> {
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
                // Another value won. This generation is referenced by no manifest, and with
                // every attempt answered, none can still arrive: reclaim it now.
                if upload.ambiguity.is_none() {
                    let _ = self.reclaim_generation(key, &upload.manifest).await;
                }
                return Ok(Some(existing));
            }
        }
        Err(conflict(key))
    }

    /// Writes many values (distinct keys) with `BatchWriteItem`; large values are uploaded
    /// first, the large values they replace are reclaimed after.
    pub(crate) async fn put_many(&self, entries: Vec<(String, Prepared)>) -> Result<()> {
        let keys: Vec<String> = entries.iter().map(|(k, _)| k.clone()).collect();
        let replaced = self.manifests(&keys).await?;
        let mut writes = Vec::with_capacity(entries.len());
        let mut deadline: Option<Instant> = None;
        for (key, prepared) in entries {
            match prepared {
                Prepared::Inline(item) => writes.push(Write::Put(item)),
                Prepared::Large { item, payload } => {
                    let upload = self.upload(&key, item, payload).await?;
                    deadline = Some(deadline.map_or(upload.deadline, |d| d.min(upload.deadline)));
                    writes.push(Write::Put(upload.manifest));
                }
            }
        }
        match deadline {
            None => batch::write_all(&self.engine, writes).await?,
            Some(deadline) => {
                let ambiguous = AtomicBool::new(false);
                batch::write_all_tracked(
                    &self.engine,
                    writes,
                    &ambiguous,
                    mark_manifest_unclean,
                    deadline,
                )
                .await?;
            }
        }
        self.retire_all(replaced).await;
        self.maybe_sweep().await;
        Ok(())
    }
}

impl Error {
    /// A copy of a transient error for keeping (errors are not `Clone`: the service variants
    /// are rebuilt from their message).
    fn clone_message(&self) -> Error {
        match self {
            Error::Timeout { timeout } => Error::Timeout { timeout: *timeout },
            Error::Throttled { message } => Error::Throttled {
                message: message.clone(),
            },
            other => Error::Connection {
                message: other.to_string(),
            },
        }
    }
}
