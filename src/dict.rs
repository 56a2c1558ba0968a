//! [`DynamoDbDict`]: the blocking, typed map. A façade: each method checks its input, encodes,
//! makes one call into the values layer ([`crate::values`]) on the map's runtime, and decodes.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::Client;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::DictBuilder;
use crate::engine::paging::{Pager, Projection};
use crate::item::{self, key_of, now_secs, read_item};
use crate::iter::{Items, Keys, Values};
use crate::layout;
use crate::serializer::Serializer;
use crate::values::{Prepared, Store, SweepReport};
use crate::{Error, Result};

/// A persistent, typed, dictionary-style map stored in a DynamoDB table, with a blocking API.
///
/// Keys are strings (1 to 1024 bytes); values are any `V: Serialize + DeserializeOwned`,
/// encoded by the map's [`Serializer`]. Every method returns [`Result`]; input is checked
/// before any request is sent. The map is `Send + Sync` and cheap to clone: clones share one
/// client and one runtime.
///
/// ```
/// use dynamodict::DynamoDbDict;
///
/// let scores: DynamoDbDict<u32> = DynamoDbDict::builder("doc-example")
///     .namespace("scores")
///     .local() // the embedded DynamoDB Local; use .region(..) etc. for AWS
///     .build()?;
/// scores.clear()?;
///
/// assert_eq!(scores.insert("alice", &10)?, None);
/// assert_eq!(scores.insert("alice", &12)?, Some(10)); // previous value, same round trip
/// assert_eq!(scores.setdefault("bob", 7)?, 7);
/// assert_eq!(scores.get("alice")?, Some(12));
/// assert_eq!(scores.len()?, 2);
/// assert_eq!(scores.pop("bob")?, Some(7));
/// assert!(!scores.contains_key("bob")?);
/// # Ok::<(), dynamodict::Error>(())
/// ```
pub struct DynamoDbDict<V> {
    store: Arc<Store>,
    _value: PhantomData<fn() -> V>,
}

impl<V> Clone for DynamoDbDict<V> {
    fn clone(&self) -> Self {
        DynamoDbDict::from_store(Arc::clone(&self.store))
    }
}

impl<V> fmt::Debug for DynamoDbDict<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let layout = &self.store.engine.layout;
        f.debug_struct("DynamoDbDict")
            .field("table", &layout.table)
            .field("namespace", &layout.namespace)
            .field("shards", &layout.shards)
            .field("serializer", &self.store.serializer)
            .finish_non_exhaustive()
    }
}

impl<V> DynamoDbDict<V> {
    /// Starts building a map stored in `table`.
    pub fn builder(table: impl Into<String>) -> DictBuilder<V> {
        DictBuilder::new(table)
    }

    pub(crate) fn from_store(store: Arc<Store>) -> Self {
        DynamoDbDict {
            store,
            _value: PhantomData,
        }
    }

    /// Runs a values-layer call on the map's runtime.
    fn run<T: Send>(
        &self,
        future: impl std::future::Future<Output = Result<T>> + Send,
    ) -> Result<T> {
        self.store.engine.run(future)
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.store.engine.layout.table
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.store.engine.layout.namespace
    }

    /// The serializer pipeline.
    pub fn serializer(&self) -> &Serializer {
        &self.store.serializer
    }

    /// The underlying SDK client, for requests this crate does not make.
    pub fn client(&self) -> &Client {
        self.store.engine.client()
    }

    /// A map over another namespace of the same table, with another value type and serializer,
    /// sharing this map's client and runtime (no new connection, no table check).
    pub fn with_namespace<W>(
        &self,
        namespace: &str,
        serializer: Serializer,
    ) -> Result<DynamoDbDict<W>> {
        layout::validate_namespace(namespace)?;
        serializer.check()?;
        Ok(self.sibling(namespace, serializer))
    }

    /// [`with_namespace`](Self::with_namespace) for a namespace already checked (the cache's,
    /// which carry a reserved suffix).
    pub(crate) fn sibling<W>(&self, namespace: &str, serializer: Serializer) -> DynamoDbDict<W> {
        let store = &self.store;
        let mut engine = store.engine.clone();
        engine.layout.namespace = namespace.to_owned();
        DynamoDbDict::from_store(Arc::new(Store::new(
            engine,
            serializer,
            store.default_ttl,
            store.max_value,
            store.grace,
            store.auto_sweep,
        )))
    }

    /// Reclaims the storage of large values that no key refers to any more: values replaced
    /// or deleted while a write's outcome was unknown, or left behind by a crash. Only
    /// generations older than the grace period ([`DictBuilder::sweep_grace`]) are reclaimed,
    /// so a write in flight is never swept.
    ///
    /// Maps run a sweep by themselves (at most once per grace period, after writes that
    /// create or retire large values; see [`DictBuilder::auto_sweep`]), so calling this is
    /// only needed to reclaim storage at a time of your choosing. It reads only the
    /// namespace's generation records (about 100 bytes per large value), never value data.
    pub fn sweep(&self) -> Result<SweepReport> {
        let store = &self.store;
        self.run(store.sweep())
    }
}

fn dedupe<'a>(keys: impl IntoIterator<Item = &'a str>) -> Result<Vec<String>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for key in keys {
        layout::validate_key(key)?;
        if seen.insert(key) {
            out.push(key.to_owned());
        }
    }
    Ok(out)
}

impl<V: Serialize + DeserializeOwned> DynamoDbDict<V> {
    /// The value at `key`, or `None` if absent or expired.
    pub fn get(&self, key: &str) -> Result<Option<V>> {
        layout::validate_key(key)?;
        let store = &self.store;
        let item = self.run(store.get(key))?;
        store.decode(key, item)
    }

    /// Whether `key` holds a live value. Reads only the key and expiry, not the value.
    pub fn contains_key(&self, key: &str) -> Result<bool> {
        layout::validate_key(key)?;
        let store = &self.store;
        self.run(store.contains(key))
    }

    /// Stores `value` at `key` and returns the previous live value, in one round trip
    /// (`PutItem` with `ReturnValues=ALL_OLD`) unless the key holds a large value, which is read
    /// first (then replaced only if it is still the one read).
    ///
    /// If the previous value cannot be decoded (written by another serializer or type), the new
    /// value is still stored and the decoding error is returned.
    pub fn insert(&self, key: &str, value: &V) -> Result<Option<V>> {
        self.insert_with_ttl_opt(key, value, None)
    }

    /// Like [`insert`](Self::insert), expiring the value after `ttl` (one-second granularity,
    /// rounded up). Needs expiry enabled on the builder (the default). A `ttl` reaching past
    /// the year 9999 (such as `Duration::MAX`) means the value never expires; zero means it is
    /// expired at once.
    pub fn insert_with_ttl(&self, key: &str, value: &V, ttl: Duration) -> Result<Option<V>> {
        if self.store.engine.layout.ttl_attribute.is_none() {
            return Err(Error::Config(
                "expiry is disabled on this map (`ttl(false)`)".into(),
            ));
        }
        self.insert_with_ttl_opt(key, value, Some(ttl))
    }

    fn insert_with_ttl_opt(
        &self,
        key: &str,
        value: &V,
        ttl: Option<Duration>,
    ) -> Result<Option<V>> {
        let store = &self.store;
        let prepared = store.encode(key, value, store.expires_at(ttl))?;
        let old = self.run(store.insert(key, prepared))?;
        store.decode(key, old)
    }

    /// Stores `value` at `key`, expiring at `expires` (`None`: never), without reading the
    /// previous value. For callers that hold an absolute expiry (the cache). An expiry already
    /// past is stored as expired (and swept by DynamoDB); one past the year 9999 means never.
    pub(crate) fn set_expiring_at(
        &self,
        key: &str,
        value: &V,
        expires: Option<SystemTime>,
    ) -> Result<()> {
        let store = &self.store;
        let prepared = store.encode(key, value, expires.and_then(item::expiry_at))?;
        self.run(store.set(key, prepared))
    }

    /// Stores `value` at `key` without reading the previous value (cheaper than
    /// [`insert`](Self::insert) when the old value is not needed).
    pub fn set(&self, key: &str, value: &V) -> Result<()> {
        let store = &self.store;
        let prepared = store.encode(key, value, store.expires_at(None))?;
        self.run(store.set(key, prepared))
    }

    /// Removes `key`; returns whether a live value was there. Never decodes the value, so it
    /// also removes values this map cannot read.
    pub fn remove(&self, key: &str) -> Result<bool> {
        layout::validate_key(key)?;
        let store = &self.store;
        let old = self.run(store.remove(key))?;
        Ok(old.is_some_and(|i| store.is_live(&i)))
    }

    /// Removes `key` and returns its value, atomically (one `DeleteItem` returning the old
    /// item; a large value is read first and deleted only if it is still the one read). A
    /// value written by another serializer is left in place and reported as
    /// [`Error::SerializerMismatch`].
    pub fn pop(&self, key: &str) -> Result<Option<V>> {
        layout::validate_key(key)?;
        let store = &self.store;
        // A refused (other-serializer) delete hands back the item, which decodes to
        // `SerializerMismatch`: reported, nothing lost.
        let old = self.run(store.pop(key))?;
        store.decode(key, old)
    }

    /// Removes and returns some live entry, or `None` when the namespace is empty.
    pub fn popitem(&self) -> Result<Option<(String, V)>> {
        let engine = &self.store.engine;
        let shards = engine.layout.shards;
        let first = fastrand::u16(0..shards);
        for offset in 0..shards {
            let shard = (first + offset) % shards;
            let query = engine.query(engine.layout.partition(shard), Projection::Keys, true);
            let mut pager = Pager::new(engine.clone(), vec![query]);
            while let Some(item) = pager.next_item() {
                let item = item?;
                let Some(key) = key_of(&item) else {
                    continue;
                };
                if let Some(value) = self.pop(key)? {
                    return Ok(Some((key.to_owned(), value)));
                }
            }
        }
        Ok(None)
    }

    /// The value at `key`; if there is none, stores `default` and returns it. Atomic and one
    /// round trip: a conditional `PutItem` that, when the key is taken, returns the stored item
    /// instead (`ReturnValuesOnConditionCheckFailure`). Concurrent callers racing on a missing
    /// key all get the same value back. An expired value counts as missing. A large `default`
    /// is uploaded only when the key holds no live value.
    pub fn setdefault(&self, key: &str, default: V) -> Result<V> {
        let store = &self.store;
        let prepared = store.encode(key, &default, store.expires_at(None))?;
        let existing = self.run(store.setdefault(key, prepared))?;
        match existing {
            None => Ok(default),
            Some(item) => match store.decode(key, Some(item))? {
                Some(value) => Ok(value),
                // Expired between the server's check and ours (clock skew): treat as stored.
                None => Ok(default),
            },
        }
    }

    /// Stores many entries with `BatchWriteItem` (25 per request, several in flight, unprocessed
    /// items retried with backoff). Every value is encoded and checked before the first request.
    /// When a key appears twice, the last value wins.
    pub fn insert_many<K: AsRef<str>>(
        &self,
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Result<()> {
        let store = &self.store;
        let expires_at = store.expires_at(None);
        let mut by_key: HashMap<String, Prepared> = HashMap::new();
        let mut order = Vec::new();
        for (key, value) in entries {
            let key = key.as_ref();
            let prepared = store.encode(key, &value, expires_at)?;
            if by_key.insert(key.to_owned(), prepared).is_none() {
                order.push(key.to_owned());
            }
        }
        let entries = order
            .into_iter()
            .filter_map(|k| by_key.remove(&k).map(|p| (k, p)))
            .collect();
        self.run(store.put_many(entries))
    }

    /// Same as [`insert_many`](Self::insert_many) (named after Python's `dict.update`).
    pub fn update<K: AsRef<str>>(&self, entries: impl IntoIterator<Item = (K, V)>) -> Result<()> {
        self.insert_many(entries)
    }

    /// The values of many keys, in the order asked (`None` for absent or expired keys), read
    /// with `BatchGetItem` (100 keys per request, several in flight).
    pub fn get_many<K: AsRef<str>>(&self, keys: &[K]) -> Result<Vec<Option<V>>> {
        let distinct = dedupe(keys.iter().map(AsRef::as_ref))?;
        let store = &self.store;
        let found = self.run(store.get_many(distinct))?;
        let now = now_secs();
        keys.iter()
            .map(|k| {
                let k = k.as_ref();
                match found.get(k) {
                    Some(item) => read_item(
                        &store.engine.layout,
                        &store.serializer,
                        k,
                        item.clone(),
                        now,
                    ),
                    None => Ok(None),
                }
            })
            .collect()
    }

    /// Deletes many keys with `BatchWriteItem` (25 per request, several in flight). Missing keys
    /// are not errors.
    pub fn bulk_delete<K: AsRef<str>>(&self, keys: impl IntoIterator<Item = K>) -> Result<()> {
        let keys: Vec<K> = keys.into_iter().collect();
        let distinct = dedupe(keys.iter().map(AsRef::as_ref))?;
        let store = &self.store;
        self.run(store.delete_many(distinct))
    }

    /// Deletes every item of this namespace (other namespaces are untouched), expired ones too.
    /// The storage of the large values it deletes is reclaimed with them; a large value being
    /// written at the same time is not touched (it stays readable if its write lands after).
    pub fn clear(&self) -> Result<()> {
        let store = &self.store;
        self.run(store.clear())
    }

    /// The exact number of live entries: a `COUNT` query per shard, run concurrently (not
    /// `DescribeTable`'s estimate, which AWS refreshes about every six hours).
    pub fn len(&self) -> Result<usize> {
        let store = &self.store;
        self.run(store.count())
    }

    /// Whether the namespace holds no live entry (stops at the first one found).
    pub fn is_empty(&self) -> Result<bool> {
        match self.keys().next() {
            None => Ok(true),
            Some(Ok(_)) => Ok(false),
            Some(Err(e)) => Err(e),
        }
    }

    /// A lazy iterator over the keys, in no particular order. Pages through the namespace with
    /// queries (only keys are transferred), holding at most one page per shard in memory.
    pub fn keys(&self) -> Keys {
        Keys::new(Arc::clone(&self.store))
    }

    /// A lazy iterator over the values. See [`Values`].
    pub fn values(&self) -> Values<V> {
        Values::new(Arc::clone(&self.store))
    }

    /// A lazy iterator over `(key, value)` pairs. See [`Items`].
    pub fn items(&self) -> Items<V> {
        Items::new(Arc::clone(&self.store))
    }
}
