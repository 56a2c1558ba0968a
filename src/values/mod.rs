//! Values: whole values, inline or chunked. The one layer that knows the large-value protocol
//! and its garbage collection; below it, [`crate::engine`] sends requests and knows nothing of
//! values, and above it the façades ([`crate::DynamoDbDict`]) check input, encode, make one call
//! here and decode.
//!
//! - [`chunked`]: the data of large values (generations, chunks, records, manifests);
//! - [`read`]: reading values back, chunks joined in;
//! - [`write`]: `insert`, `set`, `setdefault` and batch writes, and the upload of a large value;
//! - [`delete`]: `remove`, `pop`, batch deletes and `clear`, and reclaiming what they retire;
//! - [`sweep`]: the garbage collector.
//!
//! The protocol, its crash analysis and its costs are in CONTRIBUTING.md, section "Architecture".

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::engine::Engine;
use crate::engine::requests::Condition;
use crate::item::{self, Built, Item, expiry_after, now_secs, read_item};
use crate::layout::{FORMAT, MAX_ITEM_BYTES, PK};
use crate::serializer::Serializer;
use crate::{Error, Result};

pub(crate) mod chunked;
pub(crate) mod delete;
pub(crate) mod read;
pub(crate) mod sweep;
pub(crate) mod write;

pub use sweep::SweepReport;

/// Default grace period: how long an unreferenced generation is kept before the garbage
/// collector may reclaim it.
pub const DEFAULT_SWEEP_GRACE: Duration = Duration::from_secs(15 * 60);

/// A value encoded for writing.
pub(crate) enum Prepared {
    /// One item, value included.
    Inline(Item),
    /// A large value: its item without the value, and the bytes to store in chunks.
    Large { item: Item, payload: Vec<u8> },
}

/// How long a negative answer to "does this namespace hold large values" is trusted.
const MARKER_RECHECK: Duration = Duration::from_secs(60);

/// Most rounds of a read-then-conditional-write loop before giving up with
/// [`Error::Conflict`].
const MAX_ROUNDS: usize = 16;

/// Whole-value operations on one namespace. Shared by every clone of a map.
pub(crate) struct Store {
    pub engine: Engine,
    pub serializer: Serializer,
    pub default_ttl: Option<Duration>,
    /// Largest value; `None` turns large (chunked) values off.
    pub max_value: Option<usize>,
    /// How long an unreferenced generation is kept (longer than any write can take).
    pub grace: Duration,
    /// Reclaim garbage without being asked, at most once per grace period.
    pub auto_sweep: bool,
    /// Whether the namespace is known to hold large values (its marker item exists).
    large_seen: AtomicBool,
    /// When the marker was last found missing.
    marker_missing_at: Mutex<Option<Instant>>,
    /// When this handle last started a sweep by itself.
    last_sweep: Mutex<Option<Instant>>,
}

impl Store {
    pub(crate) fn new(
        engine: Engine,
        serializer: Serializer,
        default_ttl: Option<Duration>,
        max_value: Option<usize>,
        grace: Duration,
        auto_sweep: bool,
    ) -> Self {
        Store {
            engine,
            serializer,
            default_ttl,
            max_value,
            grace,
            auto_sweep,
            large_seen: AtomicBool::new(false),
            marker_missing_at: Mutex::new(None),
            last_sweep: Mutex::new(None),
        }
    }

    /// The stored expiry for a time-to-live (`None`: the map's default), if the layout has an
    /// expiry attribute. `None` means "never".
    pub(crate) fn expires_at(&self, ttl: Option<Duration>) -> Option<u64> {
        self.engine.layout.ttl_attribute.as_ref()?;
        ttl.or(self.default_ttl).and_then(expiry_after)
    }

    /// Encodes `value` for `key`, expiring at `expires_at` (epoch seconds). Checked against
    /// the size limits before any request.
    pub(crate) fn encode<V: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &V,
        expires_at: Option<u64>,
    ) -> Result<Prepared> {
        let expires_at = expires_at.filter(|_| self.engine.layout.ttl_attribute.is_some());
        match item::build_item(
            &self.engine.layout,
            &self.serializer,
            key,
            value,
            expires_at,
        )? {
            Built::Inline(item) => Ok(Prepared::Inline(item)),
            Built::Large {
                item,
                payload,
                inline_size,
            } => match self.max_value {
                None => Err(Error::ItemTooLarge {
                    key: key.to_owned(),
                    size: inline_size,
                    max: MAX_ITEM_BYTES,
                    max_value_size: None,
                }),
                Some(max) if payload.len() > max => Err(Error::ItemTooLarge {
                    key: key.to_owned(),
                    size: payload.len(),
                    max,
                    max_value_size: Some(max),
                }),
                Some(_) => Ok(Prepared::Large { item, payload }),
            },
        }
    }

    /// Decodes an item read at `key` (`None` when absent or expired).
    pub(crate) fn decode<V: DeserializeOwned>(
        &self,
        key: &str,
        item: Option<Item>,
    ) -> Result<Option<V>> {
        match item {
            Some(item) => read_item(&self.engine.layout, &self.serializer, key, item, now_secs()),
            None => Ok(None),
        }
    }

    /// Whether an item is live now.
    pub(crate) fn is_live(&self, item: &Item) -> bool {
        item::is_live(item, &self.engine.layout, now_secs())
    }

    /// Whether an item was written by this map's serializer.
    fn ours(&self, item: &Item) -> bool {
        matches!(item.get(FORMAT), Some(AttributeValue::S(id)) if id == self.serializer.id())
    }

    /// Whether a generation is older than the grace period (ids of another form count as old).
    fn older_than_grace(&self, generation: &str) -> bool {
        chunked::created(generation).is_none_or(|created| {
            created.saturating_add(self.grace.as_secs().saturating_add(1)) < now_secs()
        })
    }

    /// Whether the namespace may hold large values, so that writes that replace items without
    /// reading them should ask for the replaced item, to find its chunks. A marker item is
    /// written before the namespace's first chunk. A "no" is trusted for a minute: a stale
    /// "no" only leaves the chunks of a replaced value to the garbage collector.
    pub(crate) async fn may_hold_large(&self) -> Result<bool> {
        if self.max_value.is_none() {
            return Ok(false);
        }
        if self.large_seen.load(Ordering::Relaxed) {
            return Ok(true);
        }
        if lock(&self.marker_missing_at).is_some_and(|at| at.elapsed() < MARKER_RECHECK) {
            return Ok(false);
        }
        let marker = self.engine.layout.marker_key(crate::layout::LARGE_MARKER);
        let seen = self.engine.get_item(marker, true, None).await?.is_some();
        if seen {
            self.large_seen.store(true, Ordering::Relaxed);
        } else {
            *lock(&self.marker_missing_at) = Some(Instant::now());
        }
        Ok(seen)
    }

    /// Records that the namespace holds large values (before its first chunk is written).
    async fn note_large(&self) -> Result<()> {
        if self.large_seen.load(Ordering::Relaxed) {
            return Ok(());
        }
        let marker = self.engine.layout.marker_key(crate::layout::LARGE_MARKER);
        self.engine.put_item(marker, None, false).await?;
        self.large_seen.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Runs a sweep if this handle has seen large values, automatic sweeps are on, and none
    /// ran within the grace period. Its errors are dropped: what it did not reclaim, a later
    /// sweep will.
    async fn maybe_sweep(&self) {
        if !self.auto_sweep || !self.large_seen.load(Ordering::Relaxed) {
            return;
        }
        {
            let mut last = lock(&self.last_sweep);
            if last.is_some_and(|at| at.elapsed() < self.grace) {
                return;
            }
            *last = Some(Instant::now());
        }
        let _ = self.sweep().await;
    }

    /// `attribute_not_exists(pk) OR expired`: the key holds no live item.
    fn absent_or_expired(&self) -> Condition {
        match &self.engine.layout.ttl_attribute {
            Some(attribute) => {
                let condition =
                    Condition::new(format!("attribute_not_exists(#pk) OR {}", item::EXPIRED))
                        .name("#t", attribute);
                item::expiry_values()
                    .into_iter()
                    .fold(condition, |c, (placeholder, value)| {
                        c.value(placeholder, value)
                    })
            }
            None => Condition::new("attribute_not_exists(#pk)"),
        }
        .name("#pk", PK)
    }
}

/// `attribute_not_exists(g)`: the key does not hold a large value.
fn not_large() -> Condition {
    Condition::new("attribute_not_exists(#g)").name("#g", chunked::GENERATION)
}

/// `g = :g`: the key holds exactly this generation (as stored, whatever its type).
fn holds_generation(generation: AttributeValue) -> Condition {
    Condition::new("#g = :g")
        .name("#g", chunked::GENERATION)
        .value(":g", generation)
}

/// The generation attribute of an item, as stored.
fn raw_generation(item: Option<&Item>) -> Option<AttributeValue> {
    item?.get(chunked::GENERATION).cloned()
}

/// The generation of a manifest item, if it is one.
fn generation_of(item: Option<&Item>) -> Option<String> {
    item.and_then(chunked::manifest_of).map(|m| m.generation)
}

/// Locks a mutex whose data stays valid even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The error of a loop of conditional writes that kept losing races.
fn conflict(key: &str) -> Error {
    Error::Conflict {
        key: key.to_owned(),
        message: format!(
            "the key kept changing under {MAX_ROUNDS} attempts of a conditional write; try again"
        ),
    }
}

/// Maps DynamoDB's own size check to [`Error::ItemTooLarge`] (the local estimate is
/// conservative, but be sure); `max_value` is the map's.
fn too_large(key: &str, max_value: Option<usize>, err: Error) -> Error {
    match err {
        Error::Service { code, message }
            if code == "ValidationException" && message.contains("size") =>
        {
            Error::ItemTooLarge {
                key: key.to_owned(),
                size: MAX_ITEM_BYTES + 1,
                max: MAX_ITEM_BYTES,
                max_value_size: max_value,
            }
        }
        other => other,
    }
}
