//! [`DynamoDbDict`]: the blocking, typed map. A thin shell over [`AsyncDynamoDbDict`]: each
//! method is one bridge call into the async method of the same name.

use std::fmt;
use std::future::Future;
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::Client;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Result;
use crate::async_dict::AsyncDynamoDbDict;
use crate::config::DictBuilder;
use crate::item::StoredValue;
use crate::iter::{Items, Keys, Values};
use crate::serializer::Serializer;
use crate::values::SweepReport;

/// A persistent, typed, dictionary-style map stored in a DynamoDB table, with a blocking API.
///
/// Keys are strings (1 to 1024 bytes); values are any `V: Serialize + DeserializeOwned`,
/// encoded by the map's [`Serializer`]. Every method returns [`Result`]; input is checked
/// before any request is sent. The map is `Send + Sync` and cheap to clone: clones share one
/// client and one runtime.
///
/// The blocking shell of [`AsyncDynamoDbDict`]: same methods, same semantics, same errors.
/// Calls are driven by the calling thread itself (no thread hop); they may also be made from
/// inside an async runtime, where each call runs on a helper thread instead of blocking the
/// runtime's own (prefer [`AsyncDynamoDbDict`] there).
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
/// assert_eq!(scores.insert("alice", 10)?, None);
/// assert_eq!(scores.insert("alice", 12)?, Some(10)); // previous value, same round trip
/// assert_eq!(scores.setdefault("bob", 7)?, 7);
/// assert_eq!(scores.get("alice")?, Some(12));
/// assert_eq!(scores.len()?, 2);
/// assert_eq!(scores.pop("bob")?, Some(7));
/// assert!(!scores.contains_key("bob")?);
/// # Ok::<(), dynamodict::Error>(())
/// ```
pub struct DynamoDbDict<V> {
    inner: AsyncDynamoDbDict<V>,
}

impl<V> Clone for DynamoDbDict<V> {
    fn clone(&self) -> Self {
        DynamoDbDict {
            inner: self.inner.clone(),
        }
    }
}

impl<V> fmt::Debug for DynamoDbDict<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.describe(f, "DynamoDbDict")
    }
}

impl<V> From<AsyncDynamoDbDict<V>> for DynamoDbDict<V> {
    fn from(inner: AsyncDynamoDbDict<V>) -> Self {
        DynamoDbDict { inner }
    }
}

impl<V> From<DynamoDbDict<V>> for AsyncDynamoDbDict<V> {
    fn from(dict: DynamoDbDict<V>) -> Self {
        dict.inner
    }
}

impl<V> DynamoDbDict<V> {
    /// Starts building a map stored in `table`.
    pub fn builder(table: impl Into<String>) -> DictBuilder<V> {
        DictBuilder::new(table)
    }

    /// Runs one call of the async map to completion.
    fn block_on<T: Send>(&self, future: impl Future<Output = Result<T>> + Send) -> Result<T> {
        self.inner.connection().block_on(future)
    }

    /// The async form of this map, sharing its configuration and table check.
    pub fn to_async(&self) -> AsyncDynamoDbDict<V> {
        self.inner.clone()
    }

    /// The async map this shell drives.
    pub fn as_async(&self) -> &AsyncDynamoDbDict<V> {
        &self.inner
    }

    /// The table name.
    pub fn table(&self) -> &str {
        self.inner.table()
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        self.inner.namespace()
    }

    /// What this map and the maps sharing its connection (its clones, those made with
    /// [`with_namespace`](Self::with_namespace), its async form) have sent to DynamoDB so far:
    /// requests, capacity units, retries, throttles, bytes, chunks. See [`Stats`](crate::Stats).
    ///
    /// ```
    /// use dynamodict::DynamoDbDict;
    ///
    /// let map: DynamoDbDict<u32> = DynamoDbDict::builder("stats-doc").local().build()?;
    /// map.set("k", 1)?; // a map's first write also looks for large values (one GetItem)
    /// let before = map.stats();
    /// map.set("k", 2)?;
    /// let after = map.stats();
    /// assert_eq!(after.requests - before.requests, 1); // one PutItem
    /// assert!(after.write_capacity_units > before.write_capacity_units);
    /// # Ok::<(), dynamodict::Error>(())
    /// ```
    pub fn stats(&self) -> crate::Stats {
        self.inner.stats()
    }

    /// The serializer pipeline.
    pub fn serializer(&self) -> &Serializer {
        self.inner.serializer()
    }

    /// The underlying SDK client, for requests this crate does not make.
    pub fn client(&self) -> &Client {
        self.inner.client()
    }

    /// A map over another namespace of the same table, with another value type and serializer,
    /// sharing this map's clients and runtime (no new connection, no table check).
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbDict::with_namespace`]: an invalid namespace, or a serializer that signs
    /// with an empty secret key.
    pub fn with_namespace<W>(
        &self,
        namespace: &str,
        serializer: Serializer,
    ) -> Result<DynamoDbDict<W>> {
        self.inner
            .with_namespace(namespace, serializer)
            .map(DynamoDbDict::from)
    }

    /// Reclaims the storage of large values that no key refers to any more. See
    /// [`AsyncDynamoDbDict::sweep`].
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbDict::sweep`]: the [request errors](crate::Error#request-errors).
    pub fn sweep(&self) -> Result<SweepReport> {
        self.block_on(self.inner.sweep())
    }

    /// The value at `key` as it is stored, not decoded, whatever serializer wrote it. See
    /// [`AsyncDynamoDbDict::get_stored`].
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbDict::get_stored`]: an invalid `key`, a malformed item
    /// ([`Error::Deserialize`](crate::Error::Deserialize)),
    /// [`Error::Conflict`](crate::Error::Conflict), the
    /// [request errors](crate::Error#request-errors).
    pub fn get_stored(&self, key: &str) -> Result<Option<StoredValue>> {
        self.block_on(self.inner.get_stored(key))
    }
}

impl<V: Serialize + DeserializeOwned + Send> DynamoDbDict<V> {
    /// The value at `key`, or `None` if absent or expired.
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbDict::get`]: an invalid `key`, the
    /// [decoding errors](crate::Error#decoding-errors), the
    /// [request errors](crate::Error#request-errors).
    pub fn get(&self, key: &str) -> Result<Option<V>> {
        self.block_on(self.inner.get(key))
    }

    /// Whether `key` holds a live value. Reads only the key and expiry, not the value.
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbDict::contains_key`]: an invalid `key`, the
    /// [request errors](crate::Error#request-errors).
    pub fn contains_key(&self, key: &str) -> Result<bool> {
        self.block_on(self.inner.contains_key(key))
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
    /// As [`AsyncDynamoDbDict::insert`]: an invalid `key`, a `value` that cannot be encoded or is
    /// too large, the [decoding errors](crate::Error#decoding-errors) of the previous value,
    /// [`Error::Conflict`](crate::Error::Conflict), the
    /// [request errors](crate::Error#request-errors).
    pub fn insert(&self, key: &str, value: V) -> Result<Option<V>> {
        self.block_on(self.inner.insert(key, value))
    }

    /// Like [`insert`](Self::insert), expiring the value after `ttl` (one-second granularity,
    /// rounded up). Needs expiry enabled on the builder (the default). A `ttl` reaching past
    /// the year 9999 (such as `Duration::MAX`) means the value never expires; zero means it is
    /// expired at once.
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbDict::insert_with_ttl`]: those of [`insert`](Self::insert), and
    /// [`Error::Config`](crate::Error::Config) when expiry is turned off on this map.
    pub fn insert_with_ttl(&self, key: &str, value: V, ttl: Duration) -> Result<Option<V>> {
        self.block_on(self.inner.insert_with_ttl(key, value, ttl))
    }

    /// Stores `value` at `key` without reading the previous value (cheaper than
    /// [`insert`](Self::insert) when the old value is not needed).
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbDict::set`]: an invalid `key`, a `value` that cannot be encoded or is too
    /// large, the [request errors](crate::Error#request-errors).
    pub fn set(&self, key: &str, value: V) -> Result<()> {
        self.block_on(self.inner.set(key, value))
    }

    /// Stores `value` at `key`, expiring at `expires` (`None`: never), without reading the
    /// previous value. See [`AsyncDynamoDbDict::set_expiring_at`].
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbDict::set_expiring_at`]: those of [`set`](Self::set), and
    /// [`Error::Config`](crate::Error::Config) when `expires` is set and expiry is turned off on
    /// this map.
    pub fn set_expiring_at(&self, key: &str, value: V, expires: Option<SystemTime>) -> Result<()> {
        self.block_on(self.inner.set_expiring_at(key, value, expires))
    }

    /// Removes `key`; returns whether a live value was there. Never decodes the value, so it
    /// also removes values this map cannot read.
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbDict::remove`]: an invalid `key`, the
    /// [request errors](crate::Error#request-errors).
    pub fn remove(&self, key: &str) -> Result<bool> {
        self.block_on(self.inner.remove(key))
    }

    /// Removes `key` and returns its value, atomically (one `DeleteItem` returning the old
    /// item; a large value is read first and deleted only if it is still the one read). A
    /// value written by another serializer is left in place and reported as
    /// [`Error::SerializerMismatch`](crate::Error::SerializerMismatch).
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbDict::pop`]: an invalid `key`, the
    /// [decoding errors](crate::Error#decoding-errors),
    /// [`Error::Conflict`](crate::Error::Conflict), the
    /// [request errors](crate::Error#request-errors).
    pub fn pop(&self, key: &str) -> Result<Option<V>> {
        self.block_on(self.inner.pop(key))
    }

    /// Removes and returns some live entry, or `None` when the namespace is empty.
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbDict::popitem`]: the [decoding errors](crate::Error#decoding-errors),
    /// [`Error::Conflict`](crate::Error::Conflict), the
    /// [request errors](crate::Error#request-errors).
    pub fn popitem(&self) -> Result<Option<(String, V)>> {
        self.block_on(self.inner.popitem())
    }

    /// The value at `key`; if there is none, stores `default` and returns it. Atomic and one
    /// round trip: a conditional `PutItem` that, when the key is taken, returns the stored item
    /// instead (`ReturnValuesOnConditionCheckFailure`). Concurrent callers racing on a missing
    /// key all get the same value back. An expired value counts as missing. A large `default`
    /// is uploaded only when the key holds no live value.
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbDict::setdefault`]: an invalid `key`, a `default` that cannot be encoded
    /// or is too large, the [decoding errors](crate::Error#decoding-errors),
    /// [`Error::Conflict`](crate::Error::Conflict), the
    /// [request errors](crate::Error#request-errors).
    pub fn setdefault(&self, key: &str, default: V) -> Result<V> {
        self.block_on(self.inner.setdefault(key, default))
    }

    /// [`setdefault`](Self::setdefault) with a default computed only when needed: the key is
    /// read first, and `default` is called (then stored as by `setdefault`, atomically) only
    /// when it holds no live value. One round trip when the key is set, two when it is not.
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbDict::setdefault_with`]: those of [`get`](Self::get) and
    /// [`setdefault`](Self::setdefault).
    pub fn setdefault_with<F>(&self, key: &str, default: F) -> Result<V>
    where
        F: FnOnce() -> V + Send,
    {
        self.block_on(self.inner.setdefault_with(key, default))
    }

    /// Stores many entries with `BatchWriteItem` (25 per request, several in flight, unprocessed
    /// items retried with backoff). Every value is encoded and checked before the first request.
    /// When a key appears twice, the last value wins.
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbDict::insert_many`]: an invalid key, or a value that cannot be encoded or
    /// is too large (before the first request), the [request errors](crate::Error#request-errors).
    pub fn insert_many<K: AsRef<str>>(
        &self,
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Result<()> {
        self.block_on(self.inner.insert_many(entries))
    }

    /// Same as [`insert_many`](Self::insert_many) (named after Python's `dict.update`).
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbDict::update`]: those of [`insert_many`](Self::insert_many).
    pub fn update<K: AsRef<str>>(&self, entries: impl IntoIterator<Item = (K, V)>) -> Result<()> {
        self.insert_many(entries)
    }

    /// The values of many keys, in the order asked (`None` for absent or expired keys), read
    /// with `BatchGetItem` (100 keys per request, several in flight). Takes the same key
    /// collections as [`bulk_delete`](Self::bulk_delete).
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbDict::get_many`]: an invalid key (before the first request), the
    /// [decoding errors](crate::Error#decoding-errors), the
    /// [request errors](crate::Error#request-errors).
    pub fn get_many<K: AsRef<str>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Option<V>>> {
        self.block_on(self.inner.get_many(keys))
    }

    /// Deletes many keys with `BatchWriteItem` (25 per request, several in flight). Missing keys
    /// are not errors.
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbDict::bulk_delete`]: an invalid key (before the first request), the
    /// [request errors](crate::Error#request-errors).
    pub fn bulk_delete<K: AsRef<str>>(&self, keys: impl IntoIterator<Item = K>) -> Result<()> {
        self.block_on(self.inner.bulk_delete(keys))
    }

    /// Deletes every item of this namespace (other namespaces are untouched), expired ones too.
    /// The storage of the large values it deletes is reclaimed with them; a large value being
    /// written at the same time is not touched (it stays readable if its write lands after).
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbDict::clear`]: the [request errors](crate::Error#request-errors).
    pub fn clear(&self) -> Result<()> {
        self.block_on(self.inner.clear())
    }

    /// The exact number of live entries: a `COUNT` query per shard, run concurrently (not
    /// `DescribeTable`'s estimate, which AWS refreshes about every six hours).
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbDict::len`]: the [request errors](crate::Error#request-errors).
    pub fn len(&self) -> Result<usize> {
        self.block_on(self.inner.len())
    }

    /// Whether the namespace holds no live entry (stops at the first one found).
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbDict::is_empty`]: the [request errors](crate::Error#request-errors).
    pub fn is_empty(&self) -> Result<bool> {
        self.block_on(self.inner.is_empty())
    }

    /// A lazy iterator over the keys, in no particular order. Pages through the namespace with
    /// queries (only keys are transferred), holding at most one page per shard in memory.
    pub fn keys(&self) -> Keys {
        Keys::new(self.inner.keys(), self.inner.shared_connection())
    }

    /// A lazy iterator over the values. See [`Values`].
    pub fn values(&self) -> Values<V> {
        Values::new(self.inner.values(), self.inner.shared_connection())
    }

    /// A lazy iterator over `(key, value)` pairs. See [`Items`].
    pub fn items(&self) -> Items<V> {
        Items::new(self.inner.items(), self.inner.shared_connection())
    }
}
