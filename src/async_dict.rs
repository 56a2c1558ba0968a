//! [`AsyncDynamoDbDict`]: the typed map, async. The core of both façades: each method checks
//! its input, encodes, makes one call into the values layer ([`crate::values`]) on the
//! caller's runtime, and decodes. [`DynamoDbDict`] is its blocking shell.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::Client;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Span;
use tracing::field::Empty;

use crate::config::DictBuilder;
use crate::dict::DynamoDbDict;
use crate::engine::paging::{Pager, Projection};
use crate::engine::{Connection, Stats, stats};
use crate::item::{self, StoredValue, key_of, now_secs, read_item};
use crate::layout;
use crate::serializer::Serializer;
use crate::stream::{ItemStream, KeyStream, ValueStream};
use crate::values::{Prepared, Store, SweepReport};
use crate::{Error, Result};

/// A persistent, typed, dictionary-style map stored in a DynamoDB table, with an async API.
///
/// The same map as [`DynamoDbDict`], method for method (same names, semantics and errors),
/// for async code: every method returns a `Send` future that runs on the caller's tokio
/// runtime (multi-thread or current-thread, built with IO and time enabled, as
/// `#[tokio::main]` does) and never blocks it. [`keys`](Self::keys), [`values`](Self::values)
/// and [`items`](Self::items) are [`Stream`](futures_util::Stream)s with the same bounded
/// memory as the blocking iterators.
///
/// Build one with [`DictBuilder::build_async`]. [`to_blocking`](Self::to_blocking) and
/// [`DynamoDbDict::to_async`] convert between the two forms without reconnecting: both share
/// one configuration, one credentials cache and one table check. (Each form keeps its own
/// HTTP connection pool, because a pooled connection is driven by the runtime that opened it.)
///
/// Dropping a future before it completes (a `tokio::time::timeout`, a `select!`) is safe: a
/// value is never left torn or unreadable, and the storage of a large value whose write was
/// cut short is reclaimed like any other garbage (see [`sweep`](Self::sweep)). As with any
/// write whose outcome is unknown, a dropped write may or may not have been applied.
///
/// ```
/// use dynamodict::{AsyncDynamoDbDict, DynamoDbDict};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let scores: AsyncDynamoDbDict<u32> = DynamoDbDict::builder("doc-example")
///     .namespace("async-scores")
///     .local() // the embedded DynamoDB Local; use .region(..) etc. for AWS
///     .build_async()
///     .await?;
/// scores.clear().await?;
///
/// assert_eq!(scores.insert("alice", 10).await?, None);
/// assert_eq!(scores.insert("alice", 12).await?, Some(10));
/// assert_eq!(scores.setdefault("bob", 7).await?, 7);
/// assert_eq!(scores.get("alice").await?, Some(12));
/// assert_eq!(scores.len().await?, 2);
/// assert_eq!(scores.pop("bob").await?, Some(7));
/// assert!(!scores.contains_key("bob").await?);
/// # Ok::<(), dynamodict::Error>(())
/// # }).unwrap();
/// ```
pub struct AsyncDynamoDbDict<V> {
    store: Arc<Store>,
    _value: PhantomData<fn() -> V>,
}

impl<V> Clone for AsyncDynamoDbDict<V> {
    fn clone(&self) -> Self {
        AsyncDynamoDbDict::from_store(Arc::clone(&self.store))
    }
}

impl<V> fmt::Debug for AsyncDynamoDbDict<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.describe(f, "AsyncDynamoDbDict")
    }
}

/// Checks keys and drops repeats, keeping the first occurrence's place.
pub(crate) fn dedupe<'a>(keys: impl IntoIterator<Item = &'a str>) -> Result<Vec<String>> {
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

impl<V> AsyncDynamoDbDict<V> {
    /// Starts building a map stored in `table` (the same builder as [`DynamoDbDict::builder`];
    /// finish it with [`DictBuilder::build_async`]).
    pub fn builder(table: impl Into<String>) -> DictBuilder<V> {
        DictBuilder::new(table)
    }

    pub(crate) fn from_store(store: Arc<Store>) -> Self {
        AsyncDynamoDbDict {
            store,
            _value: PhantomData,
        }
    }

    /// The `tracing` span of one public operation: `operation`, `table`, `namespace`, the
    /// `key` or the number of `keys`, and (recorded when it ends, see [`stats::observe`])
    /// `requests`, `retries`, `throttles`, `rcu`, `wcu`, `bytes_sent`, `bytes_received` and
    /// `error`. At `DEBUG` level, target `dynamodict`.
    fn span(&self, operation: &'static str, key: Option<&str>, keys: Option<usize>) -> Span {
        let layout = &self.store.engine.layout;
        tracing::debug_span!(
            target: "dynamodict",
            "dynamodict",
            operation,
            table = %layout.table,
            namespace = %layout.namespace,
            key,
            keys,
            requests = Empty,
            retries = Empty,
            throttles = Empty,
            rcu = Empty,
            wcu = Empty,
            bytes_sent = Empty,
            bytes_received = Empty,
            error = Empty,
        )
    }

    /// What this map and the maps sharing its connection (its clones, and those made with
    /// [`with_namespace`](Self::with_namespace) or converted with [`to_blocking`](Self::to_blocking))
    /// have sent to DynamoDB so far. See [`Stats`].
    pub fn stats(&self) -> Stats {
        self.store.engine.connection.counters.snapshot()
    }

    /// Every operation starts here: the future must run inside a tokio runtime, and a table
    /// opened with [`OpenMode::Trust`](crate::OpenMode::Trust) has its layout checked first.
    async fn ready(&self) -> Result<()> {
        self.store.engine.ready().await
    }

    pub(crate) fn connection(&self) -> &Connection {
        &self.store.engine.connection
    }

    pub(crate) fn shared_connection(&self) -> Arc<Connection> {
        Arc::clone(&self.store.engine.connection)
    }

    /// The `Debug` form of both façades.
    pub(crate) fn describe(&self, f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
        let layout = &self.store.engine.layout;
        f.debug_struct(name)
            .field("table", &layout.table)
            .field("namespace", &layout.namespace)
            .field("shards", &layout.shards)
            .field("serializer", &self.store.serializer)
            .finish_non_exhaustive()
    }

    /// The blocking form of this map, sharing its configuration and table check.
    pub fn to_blocking(&self) -> DynamoDbDict<V> {
        DynamoDbDict::from(self.clone())
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
    /// sharing this map's clients (no new connection, no table check).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidNamespace`] for a name that is not allowed (see
    /// [`layout::validate_namespace`]); [`Error::Config`] for a serializer that signs with an empty
    /// secret key. Sends no request.
    pub fn with_namespace<W>(
        &self,
        namespace: &str,
        serializer: Serializer,
    ) -> Result<AsyncDynamoDbDict<W>> {
        layout::validate_namespace(namespace)?;
        serializer.check()?;
        Ok(self.sibling(namespace, serializer))
    }

    /// [`with_namespace`](Self::with_namespace) for a namespace already checked (the cache's,
    /// which carry a reserved suffix).
    pub(crate) fn sibling<W>(
        &self,
        namespace: &str,
        serializer: Serializer,
    ) -> AsyncDynamoDbDict<W> {
        let store = &self.store;
        let mut engine = store.engine.clone();
        engine.layout.namespace = namespace.to_owned();
        AsyncDynamoDbDict::from_store(Arc::new(Store::new(
            engine,
            serializer,
            store.default_ttl,
            store.max_value,
            store.grace,
            store.auto_sweep,
        )))
    }

    /// Reclaims the storage of large values that no key refers to any more: values replaced
    /// or deleted while a write's outcome was unknown, or left behind by a crash or a dropped
    /// future. Only generations older than the grace period ([`DictBuilder::sweep_grace`]) are
    /// reclaimed, so a write in flight is never swept.
    ///
    /// Maps run a sweep by themselves (at most once per grace period, after writes that
    /// create or retire large values; see [`DictBuilder::auto_sweep`]), so calling this is
    /// only needed to reclaim storage at a time of your choosing. It reads only the
    /// namespace's generation records (about 100 bytes per large value), never value data.
    ///
    /// # Errors
    ///
    /// The [request errors](Error#request-errors). What a failed sweep leaves, a later one
    /// reclaims.
    pub async fn sweep(&self) -> Result<SweepReport> {
        stats::observe(self.span("sweep", None, None), async {
            self.ready().await?;
            self.store.sweep().await
        })
        .await
    }

    /// The value at `key` as it is stored, not decoded, whatever serializer wrote it (this
    /// map's or another): the pipeline id and the encoded bytes or document, a large value's
    /// chunks joined. `None` if absent or expired. For tools that inspect a table, such as the
    /// `dynamodict` command-line tool; signatures are not checked (decode the value with the
    /// [`Serializer`] that wrote it to check them).
    ///
    /// # Errors
    ///
    /// [`Error::EmptyKey`] or [`Error::KeyTooLong`] for an invalid `key`; [`Error::Deserialize`]
    /// for an item that is not a stored value (no value attribute, a malformed large value or a
    /// missing chunk); [`Error::Conflict`] when other writers replaced a large value every time it
    /// was read; the [request errors](Error#request-errors). Never [`Error::SerializerMismatch`] or
    /// [`Error::BadSignature`]: nothing is decoded or checked.
    ///
    /// ```
    /// use dynamodict::{DynamoDbDict, Encoded, Serializer};
    ///
    /// let json: DynamoDbDict<Vec<u32>> = DynamoDbDict::builder("doc-stored")
    ///     .serializer(Serializer::json())
    ///     .local()
    ///     .build()?;
    /// json.set("primes", vec![2, 3, 5])?;
    /// // Any map of the namespace reads it as stored, whatever its own serializer.
    /// let other: DynamoDbDict<String> = json.with_namespace("default", Serializer::bincode())?;
    /// let stored = other.get_stored("primes")?.expect("just set");
    /// assert_eq!(stored.serializer_id, "json");
    /// assert_eq!(stored.encoded, Encoded::Bytes(b"[2,3,5]".to_vec()));
    /// # Ok::<(), dynamodict::Error>(())
    /// ```
    pub async fn get_stored(&self, key: &str) -> Result<Option<StoredValue>> {
        stats::observe(self.span("get_stored", Some(key), None), async {
            self.ready().await?;
            layout::validate_key(key)?;
            self.store.get_stored(key).await
        })
        .await
    }
}

impl<V: Serialize + DeserializeOwned + Send> AsyncDynamoDbDict<V> {
    /// The value at `key`, or `None` if absent or expired.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyKey`] or [`Error::KeyTooLong`] for an invalid `key`; the
    /// [decoding errors](Error#decoding-errors) for a value this map cannot read; the
    /// [request errors](Error#request-errors).
    pub async fn get(&self, key: &str) -> Result<Option<V>> {
        stats::observe(self.span("get", Some(key), None), async {
            self.ready().await?;
            layout::validate_key(key)?;
            let store = &self.store;
            let item = store.get(key).await?;
            store.decode(key, item)
        })
        .await
    }

    /// Whether `key` holds a live value. Reads only the key and expiry, not the value.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyKey`] or [`Error::KeyTooLong`] for an invalid `key`; the
    /// [request errors](Error#request-errors).
    pub async fn contains_key(&self, key: &str) -> Result<bool> {
        stats::observe(self.span("contains_key", Some(key), None), async {
            self.ready().await?;
            layout::validate_key(key)?;
            self.store.contains(key).await
        })
        .await
    }

    /// Stores `value` at `key` and returns the previous live value, in one round trip
    /// (`PutItem` with `ReturnValues=ALL_OLD`) unless the key holds a large value, which is read
    /// first (then replaced only if it is still the one read).
    ///
    /// If the previous value cannot be decoded (written by another serializer or type), the new
    /// value is still stored and the decoding error is returned.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyKey`] or [`Error::KeyTooLong`] for an invalid `key`; [`Error::Serialize`] when
    /// the serializer cannot encode `value`; [`Error::ItemTooLarge`] when it encodes to more than
    /// the map stores (see [`DictBuilder::max_value_size`]); the
    /// [decoding errors](Error#decoding-errors) for a previous value this map cannot read (the new
    /// value is stored all the same); [`Error::Conflict`] when other writers kept replacing a large
    /// value at `key`; the [request errors](Error#request-errors).
    pub async fn insert(&self, key: &str, value: V) -> Result<Option<V>> {
        self.insert_expiring(key, value, None).await
    }

    /// Like [`insert`](Self::insert), expiring the value after `ttl` (one-second granularity,
    /// rounded up). Needs expiry enabled on the builder (the default). A `ttl` reaching past
    /// the year 9999 (such as `Duration::MAX`) means the value never expires; zero means it is
    /// expired at once.
    ///
    /// # Errors
    ///
    /// The errors of [`insert`](Self::insert), and [`Error::Config`] when expiry is turned off on
    /// this map ([`DictBuilder::ttl`]).
    pub async fn insert_with_ttl(&self, key: &str, value: V, ttl: Duration) -> Result<Option<V>> {
        self.expiry_enabled()?;
        self.insert_expiring(key, value, Some(ttl)).await
    }

    fn expiry_enabled(&self) -> Result<()> {
        if self.store.engine.layout.ttl_attribute.is_none() {
            return Err(Error::Config(
                "expiry is disabled on this map (`ttl(false)`): build it with expiry on to store \
                 values with a time to live"
                    .into(),
            ));
        }
        Ok(())
    }

    async fn insert_expiring(
        &self,
        key: &str,
        value: V,
        ttl: Option<Duration>,
    ) -> Result<Option<V>> {
        stats::observe(self.span("insert", Some(key), None), async {
            self.ready().await?;
            let store = &self.store;
            let prepared = store.encode(key, &value, store.expires_at(ttl))?;
            drop(value);
            let old = store.insert(key, prepared).await?;
            store.decode(key, old)
        })
        .await
    }

    /// Stores `value` at `key` without reading the previous value (cheaper than
    /// [`insert`](Self::insert) when the old value is not needed).
    ///
    /// # Errors
    ///
    /// [`Error::EmptyKey`] or [`Error::KeyTooLong`] for an invalid `key`; [`Error::Serialize`] or
    /// [`Error::ItemTooLarge`] when `value` cannot be encoded or is too large; the
    /// [request errors](Error#request-errors).
    pub async fn set(&self, key: &str, value: V) -> Result<()> {
        stats::observe(self.span("set", Some(key), None), async {
            self.ready().await?;
            let store = &self.store;
            let prepared = store.encode(key, &value, store.expires_at(None))?;
            drop(value);
            store.set(key, prepared).await
        })
        .await
    }

    /// Stores `value` at `key`, expiring at `expires` (`None`: never), without reading the
    /// previous value: for callers that hold an absolute expiry (such as an HTTP cache). An
    /// expiry already past is stored as expired (and deleted by DynamoDB's TTL sweep); one past
    /// the year 9999 means never. Needs expiry enabled on the builder when `expires` is set.
    ///
    /// # Errors
    ///
    /// The errors of [`set`](Self::set), and [`Error::Config`] when `expires` is set and expiry is
    /// turned off on this map ([`DictBuilder::ttl`]).
    pub async fn set_expiring_at(
        &self,
        key: &str,
        value: V,
        expires: Option<SystemTime>,
    ) -> Result<()> {
        stats::observe(self.span("set_expiring_at", Some(key), None), async {
            self.ready().await?;
            if expires.is_some() {
                self.expiry_enabled()?;
            }
            let store = &self.store;
            let prepared = store.encode(key, &value, expires.and_then(item::expiry_at))?;
            drop(value);
            store.set(key, prepared).await
        })
        .await
    }

    /// Removes `key`; returns whether a live value was there. Never decodes the value, so it
    /// also removes values this map cannot read.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyKey`] or [`Error::KeyTooLong`] for an invalid `key`; the
    /// [request errors](Error#request-errors).
    pub async fn remove(&self, key: &str) -> Result<bool> {
        stats::observe(self.span("remove", Some(key), None), async {
            self.ready().await?;
            layout::validate_key(key)?;
            let store = &self.store;
            let old = store.remove(key).await?;
            Ok(old.is_some_and(|i| store.is_live(&i)))
        })
        .await
    }

    /// Removes `key` and returns its value, atomically (one `DeleteItem` returning the old
    /// item; a large value is read first and deleted only if it is still the one read). A
    /// value written by another serializer is left in place and reported as
    /// [`Error::SerializerMismatch`].
    ///
    /// # Errors
    ///
    /// [`Error::EmptyKey`] or [`Error::KeyTooLong`] for an invalid `key`; the
    /// [decoding errors](Error#decoding-errors) (a value of another serializer is left in place);
    /// [`Error::Conflict`] when other writers kept replacing a large value at `key`; the
    /// [request errors](Error#request-errors).
    pub async fn pop(&self, key: &str) -> Result<Option<V>> {
        stats::observe(self.span("pop", Some(key), None), async {
            self.ready().await?;
            layout::validate_key(key)?;
            let store = &self.store;
            // A refused (other-serializer) delete hands back the item, which decodes to
            // `SerializerMismatch`: reported, nothing lost.
            let old = store.pop(key).await?;
            store.decode(key, old)
        })
        .await
    }

    /// Removes and returns some live entry, or `None` when the namespace is empty.
    ///
    /// # Errors
    ///
    /// The errors of [`pop`](Self::pop) for the entry it picks (the
    /// [decoding errors](Error#decoding-errors), [`Error::Conflict`]); the
    /// [request errors](Error#request-errors).
    pub async fn popitem(&self) -> Result<Option<(String, V)>> {
        stats::observe(self.span("popitem", None, None), async {
            self.ready().await?;
            let engine = &self.store.engine;
            let shards = engine.layout.shards;
            let first = fastrand::u16(0..shards);
            for offset in 0..shards {
                let shard = (first + offset) % shards;
                let query = engine.query(engine.layout.partition(shard), Projection::Keys, true);
                let mut pager = Pager::new(engine.clone(), vec![query]);
                while let Some(item) = pager.next_item().await {
                    let item = item?;
                    let Some(key) = key_of(&item) else {
                        continue;
                    };
                    if let Some(value) = self.pop(key).await? {
                        return Ok(Some((key.to_owned(), value)));
                    }
                }
            }
            Ok(None)
        })
        .await
    }

    /// The value at `key`; if there is none, stores `default` and returns it. Atomic and one
    /// round trip: a conditional `PutItem` that, when the key is taken, returns the stored item
    /// instead (`ReturnValuesOnConditionCheckFailure`). Concurrent callers racing on a missing
    /// key all get the same value back. An expired value counts as missing. A large `default`
    /// is uploaded only when the key holds no live value.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyKey`] or [`Error::KeyTooLong`] for an invalid `key`; [`Error::Serialize`] or
    /// [`Error::ItemTooLarge`] when `default` cannot be encoded or is too large (checked even when
    /// the key holds a value); the [decoding errors](Error#decoding-errors) for a stored value this
    /// map cannot read; [`Error::Conflict`] when the key kept changing under the conditional write;
    /// the [request errors](Error#request-errors).
    pub async fn setdefault(&self, key: &str, default: V) -> Result<V> {
        stats::observe(self.span("setdefault", Some(key), None), async {
            self.ready().await?;
            let store = &self.store;
            let prepared = store.encode(key, &default, store.expires_at(None))?;
            let existing = store.setdefault(key, prepared).await?;
            match existing {
                None => Ok(default),
                Some(item) => match store.decode(key, Some(item))? {
                    Some(value) => Ok(value),
                    // Expired between the server's check and ours (clock skew): treat as stored.
                    None => Ok(default),
                },
            }
        })
        .await
    }

    /// [`setdefault`](Self::setdefault) with a default computed only when needed: the key is
    /// read first, and `default` is called (then stored as by `setdefault`, atomically) only
    /// when it holds no live value. One round trip when the key is set, two when it is not.
    ///
    /// # Errors
    ///
    /// The errors of [`get`](Self::get) and [`setdefault`](Self::setdefault); [`Error::Serialize`]
    /// and [`Error::ItemTooLarge`] only when `default` is called.
    pub async fn setdefault_with<F>(&self, key: &str, default: F) -> Result<V>
    where
        F: FnOnce() -> V + Send,
    {
        if let Some(value) = self.get(key).await? {
            return Ok(value);
        }
        self.setdefault(key, default()).await
    }

    /// Stores many entries with `BatchWriteItem` (25 per request, several in flight, unprocessed
    /// items retried with backoff). Every value is encoded and checked before the first request
    /// (when this method is called, before the future is first polled). When a key appears
    /// twice, the last value wins.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyKey`] or [`Error::KeyTooLong`] for an invalid key, [`Error::Serialize`] or
    /// [`Error::ItemTooLarge`] for a value that cannot be encoded or is too large: all checked
    /// before the first request, so nothing is written then; the
    /// [request errors](Error#request-errors) (a batch that fails part-way may have written some
    /// entries).
    pub fn insert_many<K: AsRef<str>>(
        &self,
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> impl Future<Output = Result<()>> + Send + '_ {
        let entries = self.prepare_many(entries);
        let count = entries.as_ref().map_or(0, Vec::len);
        async move {
            stats::observe(self.span("insert_many", None, Some(count)), async {
                self.ready().await?;
                self.store.put_many(entries?).await
            })
            .await
        }
    }

    /// Same as [`insert_many`](Self::insert_many) (named after Python's `dict.update`).
    ///
    /// # Errors
    ///
    /// The errors of [`insert_many`](Self::insert_many).
    pub fn update<K: AsRef<str>>(
        &self,
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> impl Future<Output = Result<()>> + Send + '_ {
        self.insert_many(entries)
    }

    /// Encodes entries for a batch write, the last value of a repeated key winning.
    fn prepare_many<K: AsRef<str>>(
        &self,
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Vec<(String, Prepared)>> {
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
        Ok(order
            .into_iter()
            .filter_map(|k| by_key.remove(&k).map(|p| (k, p)))
            .collect())
    }

    /// The values of many keys, in the order asked (`None` for absent or expired keys), read
    /// with `BatchGetItem` (100 keys per request, several in flight). Takes the same key
    /// collections as [`bulk_delete`](Self::bulk_delete).
    ///
    /// # Errors
    ///
    /// [`Error::EmptyKey`] or [`Error::KeyTooLong`] for an invalid key (before the first request);
    /// the [decoding errors](Error#decoding-errors) for a value this map cannot read; the
    /// [request errors](Error#request-errors).
    pub fn get_many<K: AsRef<str>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> impl Future<Output = Result<Vec<Option<V>>>> + Send + '_ {
        let keys: Vec<String> = keys.into_iter().map(|k| k.as_ref().to_owned()).collect();
        async move {
            let span = self.span("get_many", None, Some(keys.len()));
            stats::observe(span, self.read_many(&keys)).await
        }
    }

    /// The body of [`get_many`](Self::get_many).
    async fn read_many(&self, keys: &[String]) -> Result<Vec<Option<V>>> {
        self.ready().await?;
        let distinct = dedupe(keys.iter().map(String::as_str))?;
        let store = &self.store;
        let found = store.get_many(distinct).await?;
        let now = now_secs();
        keys.iter()
            .map(|k| match found.get(k) {
                Some(item) => read_item(
                    &store.engine.layout,
                    &store.serializer,
                    k,
                    item.clone(),
                    now,
                ),
                None => Ok(None),
            })
            .collect()
    }

    /// Deletes many keys with `BatchWriteItem` (25 per request, several in flight). Missing keys
    /// are not errors.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyKey`] or [`Error::KeyTooLong`] for an invalid key (before the first request);
    /// the [request errors](Error#request-errors) (a batch that fails part-way may have deleted
    /// some keys).
    pub fn bulk_delete<K: AsRef<str>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> impl Future<Output = Result<()>> + Send + '_ {
        let keys: Vec<String> = keys.into_iter().map(|k| k.as_ref().to_owned()).collect();
        async move {
            stats::observe(self.span("bulk_delete", None, Some(keys.len())), async {
                self.ready().await?;
                let distinct = dedupe(keys.iter().map(String::as_str))?;
                self.store.delete_many(distinct).await
            })
            .await
        }
    }

    /// Deletes every item of this namespace (other namespaces are untouched), expired ones too.
    /// The storage of the large values it deletes is reclaimed with them; a large value being
    /// written at the same time is not touched (it stays readable if its write lands after).
    ///
    /// # Errors
    ///
    /// The [request errors](Error#request-errors); a `clear` that fails part-way may have deleted
    /// some items.
    pub async fn clear(&self) -> Result<()> {
        stats::observe(self.span("clear", None, None), async {
            self.ready().await?;
            self.store.clear().await
        })
        .await
    }

    /// The exact number of live entries: a `COUNT` query per shard, run concurrently (not
    /// `DescribeTable`'s estimate, which AWS refreshes about every six hours).
    ///
    /// # Errors
    ///
    /// The [request errors](Error#request-errors).
    pub async fn len(&self) -> Result<usize> {
        stats::observe(self.span("len", None, None), async {
            self.ready().await?;
            self.store.count().await
        })
        .await
    }

    /// Whether the namespace holds no live entry (stops at the first one found).
    ///
    /// # Errors
    ///
    /// The [request errors](Error#request-errors).
    pub async fn is_empty(&self) -> Result<bool> {
        match self.keys().next().await {
            None => Ok(true),
            Some(Ok(_)) => Ok(false),
            Some(Err(e)) => Err(e),
        }
    }

    /// A lazy stream of the keys, in no particular order. Pages through the namespace with
    /// queries (only keys are transferred), holding at most one page per shard in memory.
    pub fn keys(&self) -> KeyStream {
        KeyStream::new(Arc::clone(&self.store))
    }

    /// A lazy stream of the values. See [`ValueStream`].
    pub fn values(&self) -> ValueStream<V> {
        ValueStream::new(Arc::clone(&self.store))
    }

    /// A lazy stream of `(key, value)` pairs. See [`ItemStream`].
    pub fn items(&self) -> ItemStream<V> {
        ItemStream::new(Arc::clone(&self.store))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// Compile-time check: every future and stream of the async map is `Send`, so it can be
    /// spawned on a multi-thread runtime. (Never run: building the futures needs a map.)
    #[allow(dead_code)]
    fn futures_are_send(map: &AsyncDynamoDbDict<String>) {
        assert_send(&map.get("k"));
        assert_send(&map.contains_key("k"));
        assert_send(&map.insert("k", String::new()));
        assert_send(&map.insert_with_ttl("k", String::new(), Duration::ZERO));
        assert_send(&map.set("k", String::new()));
        assert_send(&map.set_expiring_at("k", String::new(), None));
        assert_send(&map.remove("k"));
        assert_send(&map.pop("k"));
        assert_send(&map.popitem());
        assert_send(&map.setdefault("k", String::new()));
        assert_send(&map.setdefault_with("k", String::new));
        assert_send(&map.insert_many(vec![("k", String::new())]));
        assert_send(&map.get_many(["a", "b"]));
        assert_send(&map.bulk_delete(vec!["a".to_owned()]));
        assert_send(&map.clear());
        assert_send(&map.len());
        assert_send(&map.is_empty());
        assert_send(&map.sweep());
        assert_send(&map.keys());
        assert_send(&map.values());
        assert_send(&map.items());
    }

    #[test]
    fn outside_a_runtime_is_an_error_not_a_panic() {
        assert!(matches!(
            crate::engine::bridge::in_runtime(),
            Err(Error::Runtime(_))
        ));
    }
}
