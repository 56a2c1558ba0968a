//! [`DynamoDbDict`]: the blocking, typed map.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure, Select,
};
use futures_util::future::try_join_all;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::batch::{self, Write};
use crate::config::{BatchOptions, Connection, DictBuilder};
use crate::error::sdk_error;
use crate::item::{self, Item, build_item, expiry_after, is_live, now_secs, read_item};
use crate::iter::{Items, Keys, Pager, Projection, Values};
use crate::layout::{self, FORMAT, Layout, PK};
use crate::serializer::Serializer;
use crate::{Error, Result};

/// What every clone of one map shares.
pub(crate) struct Core {
    pub connection: Arc<Connection>,
    pub layout: Layout,
    pub serializer: Serializer,
    pub consistent_reads: bool,
    pub default_ttl: Option<Duration>,
    pub batch: BatchOptions,
}

impl Core {
    pub(crate) fn client(&self) -> &Client {
        &self.connection.client
    }

    pub(crate) fn run<T: Send>(&self, future: impl Future<Output = Result<T>> + Send) -> Result<T> {
        self.connection.bridge.run(future)
    }

    fn table(&self) -> &str {
        &self.layout.table
    }

    fn expires_at(&self, ttl: Option<Duration>) -> Option<u64> {
        self.layout.ttl_attribute.as_ref()?;
        ttl.or(self.default_ttl).map(expiry_after)
    }

    fn item<V: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &V,
        ttl: Option<Duration>,
    ) -> Result<Item> {
        build_item(
            &self.layout,
            &self.serializer,
            key,
            value,
            self.expires_at(ttl),
        )
    }

    fn decode<V: DeserializeOwned>(&self, key: &str, item: Option<Item>) -> Result<Option<V>> {
        match item {
            Some(item) => read_item(&self.layout, &self.serializer, key, item, now_secs()),
            None => Ok(None),
        }
    }

    /// `(#t <= :now)` bindings for conditions that treat expired items as absent.
    fn expiry_names(&self) -> Option<(HashMap<String, String>, HashMap<String, AttributeValue>)> {
        let attr = self.layout.ttl_attribute.as_ref()?;
        Some((
            HashMap::from([("#t".to_owned(), attr.clone())]),
            HashMap::from([(":now".to_owned(), AttributeValue::N(now_secs().to_string()))]),
        ))
    }

    async fn put(&self, key: &str, item: Item, return_old: bool) -> Result<Option<Item>> {
        let out = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .return_values(if return_old {
                ReturnValue::AllOld
            } else {
                ReturnValue::None
            })
            .send()
            .await
            .map_err(|e| self.put_error(key, e))?;
        Ok(out.attributes)
    }

    fn put_error(
        &self,
        key: &str,
        err: aws_sdk_dynamodb::error::SdkError<
            PutItemError,
            aws_sdk_dynamodb::config::http::HttpResponse,
        >,
    ) -> Error {
        match sdk_error(err, self.table()) {
            // The server's own size check (our estimate is conservative, but be sure).
            Error::Service { code, message }
                if code == "ValidationException" && message.contains("size") =>
            {
                Error::ItemTooLarge {
                    key: key.to_owned(),
                    size: layout::MAX_ITEM_BYTES + 1,
                    max: layout::MAX_ITEM_BYTES,
                }
            }
            other => other,
        }
    }

    async fn get_item(&self, key: &str, projection: Option<&str>) -> Result<Option<Item>> {
        let mut request = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(self.layout.item_key(key)))
            .consistent_read(self.consistent_reads);
        if let Some(projection) = projection {
            request = request.projection_expression(projection);
            if let Some(attr) = &self.layout.ttl_attribute {
                request = request.expression_attribute_names("#t", attr);
            }
        }
        let out = request
            .send()
            .await
            .map_err(|e| sdk_error(e, self.table()))?;
        Ok(out.item)
    }

    /// Deletes `key`, returning the old item. With `guard_format`, an item written by another
    /// serializer is not deleted; its old item is returned for the caller to report.
    async fn delete(&self, key: &str, guard_format: bool) -> Result<Option<Item>> {
        let mut request = self
            .client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(self.layout.item_key(key)))
            .return_values(ReturnValue::AllOld);
        if guard_format {
            request = request
                .condition_expression("attribute_not_exists(#pk) OR #f = :f")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#f", FORMAT)
                .expression_attribute_values(
                    ":f",
                    AttributeValue::S(self.serializer.id().to_owned()),
                )
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
        }
        match request.send().await {
            Ok(out) => Ok(out.attributes),
            Err(err) => {
                if let Some(item) = err
                    .as_service_error()
                    .filter(|e| e.is_conditional_check_failed_exception())
                    .and_then(|e| match e {
                        aws_sdk_dynamodb::operation::delete_item::DeleteItemError::ConditionalCheckFailedException(c) => c.item.clone(),
                        _ => None,
                    })
                {
                    return Ok(Some(item));
                }
                Err(sdk_error(err, self.table()))
            }
        }
    }

    async fn setdefault_item(&self, key: &str, item: Item) -> Result<Option<Item>> {
        let mut request = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .expression_attribute_names("#pk", PK)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        request = match self.expiry_names() {
            Some((names, values)) => request
                .condition_expression("attribute_not_exists(#pk) OR #t <= :now")
                .set_expression_attribute_names(Some(
                    names
                        .into_iter()
                        .chain([("#pk".to_owned(), PK.to_owned())])
                        .collect(),
                ))
                .set_expression_attribute_values(Some(values)),
            None => request.condition_expression("attribute_not_exists(#pk)"),
        };
        match request.send().await {
            Ok(_) => Ok(None),
            Err(err) => {
                let existing = err.as_service_error().and_then(|e| match e {
                    PutItemError::ConditionalCheckFailedException(c) => Some(c.item.clone()),
                    _ => None,
                });
                match existing {
                    // Present and live: the condition failed and handed us the stored item.
                    Some(Some(item)) => Ok(Some(item)),
                    Some(None) => Err(Error::Service {
                        code: "ConditionalCheckFailedException".into(),
                        message: "the server did not return the existing item".into(),
                    }),
                    None => Err(self.put_error(key, err)),
                }
            }
        }
    }

    pub(crate) async fn query_page(
        &self,
        shard: u16,
        projection: Projection,
        start: Option<Item>,
        limit: Option<i32>,
    ) -> Result<(Vec<Item>, Option<Item>, usize)> {
        let mut request = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", AttributeValue::S(self.layout.partition(shard)))
            .consistent_read(self.consistent_reads)
            .set_exclusive_start_key(start)
            .set_limit(limit);
        let filter_expired = projection != Projection::KeysIncludingExpired;
        if filter_expired && let Some((names, values)) = self.expiry_names() {
            for (k, v) in names {
                request = request.expression_attribute_names(k, v);
            }
            for (k, v) in values {
                request = request.expression_attribute_values(k, v);
            }
            request = request.filter_expression("attribute_not_exists(#t) OR #t > :now");
        }
        request = match projection {
            Projection::Count => request.select(Select::Count),
            Projection::Keys | Projection::KeysIncludingExpired => request
                .projection_expression("#pk, #sk")
                .expression_attribute_names("#sk", layout::SK),
            Projection::All => request,
        };
        let out = request
            .send()
            .await
            .map_err(|e| sdk_error(e, self.table()))?;
        let count = usize::try_from(out.count).unwrap_or(0);
        Ok((out.items.unwrap_or_default(), out.last_evaluated_key, count))
    }

    /// Every page of one shard, handed to `each` as it arrives.
    async fn for_each_page<F, Fut>(
        &self,
        shard: u16,
        projection: Projection,
        mut each: F,
    ) -> Result<()>
    where
        F: FnMut(Vec<Item>, usize) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let mut start = None;
        loop {
            let (items, next, count) = self.query_page(shard, projection, start, None).await?;
            each(items, count).await?;
            match next {
                Some(next) => start = Some(next),
                None => return Ok(()),
            }
        }
    }

    async fn count(&self) -> Result<usize> {
        let per_shard = (0..self.layout.shards).map(|shard| async move {
            let mut total = 0usize;
            self.for_each_page(shard, Projection::Count, |_, count| {
                total += count;
                async { Ok(()) }
            })
            .await?;
            Ok::<_, Error>(total)
        });
        Ok(try_join_all(per_shard).await?.into_iter().sum())
    }

    async fn clear(&self) -> Result<()> {
        let per_shard = (0..self.layout.shards).map(|shard| {
            self.for_each_page(
                shard,
                Projection::KeysIncludingExpired,
                move |items, _| async move {
                    let deletes = items
                        .into_iter()
                        .filter_map(|item| {
                            item::key_of(&item).map(|k| Write::Delete(self.layout.item_key(k)))
                        })
                        .collect();
                    batch::write_all(self, deletes).await
                },
            )
        });
        try_join_all(per_shard).await.map(|_| ())
    }
}

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
    core: Arc<Core>,
    _value: PhantomData<fn() -> V>,
}

impl<V> Clone for DynamoDbDict<V> {
    fn clone(&self) -> Self {
        DynamoDbDict::from_core(Arc::clone(&self.core))
    }
}

impl<V> fmt::Debug for DynamoDbDict<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoDbDict")
            .field("table", &self.core.layout.table)
            .field("namespace", &self.core.layout.namespace)
            .field("shards", &self.core.layout.shards)
            .field("serializer", &self.core.serializer)
            .finish_non_exhaustive()
    }
}

impl<V> DynamoDbDict<V> {
    /// Starts building a map stored in `table`.
    pub fn builder(table: impl Into<String>) -> DictBuilder<V> {
        DictBuilder::new(table)
    }

    pub(crate) fn from_core(core: Arc<Core>) -> Self {
        DynamoDbDict {
            core,
            _value: PhantomData,
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.core.layout.table
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.core.layout.namespace
    }

    /// The serializer pipeline.
    pub fn serializer(&self) -> &Serializer {
        &self.core.serializer
    }

    /// The underlying SDK client, for requests this crate does not make.
    pub fn client(&self) -> &Client {
        self.core.client()
    }

    /// A map over another namespace of the same table, with another value type and serializer,
    /// sharing this map's client and runtime (no new connection, no table check).
    pub fn with_namespace<W>(
        &self,
        namespace: &str,
        serializer: Serializer,
    ) -> Result<DynamoDbDict<W>> {
        layout::validate_namespace(namespace)?;
        let mut layout = self.core.layout.clone();
        layout.namespace = namespace.to_owned();
        Ok(DynamoDbDict::from_core(Arc::new(Core {
            connection: Arc::clone(&self.core.connection),
            layout,
            serializer,
            consistent_reads: self.core.consistent_reads,
            default_ttl: self.core.default_ttl,
            batch: self.core.batch,
        })))
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
        let core = &self.core;
        let item = core.run(core.get_item(key, None))?;
        core.decode(key, item)
    }

    /// Whether `key` holds a live value. Reads only the key and expiry, not the value.
    pub fn contains_key(&self, key: &str) -> Result<bool> {
        layout::validate_key(key)?;
        let core = &self.core;
        let projection = if core.layout.ttl_attribute.is_some() {
            "pk, #t"
        } else {
            "pk"
        };
        let item = core.run(core.get_item(key, Some(projection)))?;
        Ok(item.is_some_and(|i| is_live(&i, &core.layout, now_secs())))
    }

    /// Stores `value` at `key` and returns the previous live value, in one round trip
    /// (`PutItem` with `ReturnValues=ALL_OLD`).
    ///
    /// If the previous value cannot be decoded (written by another serializer or type), the new
    /// value is still stored and the decoding error is returned.
    pub fn insert(&self, key: &str, value: &V) -> Result<Option<V>> {
        self.insert_with_ttl_opt(key, value, None)
    }

    /// Like [`insert`](Self::insert), expiring the value after `ttl` (one-second granularity,
    /// rounded up). Needs expiry enabled on the builder (the default).
    pub fn insert_with_ttl(&self, key: &str, value: &V, ttl: Duration) -> Result<Option<V>> {
        if self.core.layout.ttl_attribute.is_none() {
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
        let core = &self.core;
        let item = core.item(key, value, ttl)?;
        let old = core.run(core.put(key, item, true))?;
        core.decode(key, old)
    }

    /// Stores `value` at `key` without reading the previous value (cheaper than
    /// [`insert`](Self::insert) when the old value is not needed).
    pub fn set(&self, key: &str, value: &V) -> Result<()> {
        let core = &self.core;
        let item = core.item(key, value, None)?;
        core.run(core.put(key, item, false)).map(|_| ())
    }

    /// Removes `key`; returns whether a live value was there. Never decodes the value, so it
    /// also removes values this map cannot read.
    pub fn remove(&self, key: &str) -> Result<bool> {
        layout::validate_key(key)?;
        let core = &self.core;
        let old = core.run(core.delete(key, false))?;
        Ok(old.is_some_and(|i| is_live(&i, &core.layout, now_secs())))
    }

    /// Removes `key` and returns its value, atomically (one `DeleteItem` returning the old
    /// item). A value written by another serializer is left in place and reported as
    /// [`Error::SerializerMismatch`].
    pub fn pop(&self, key: &str) -> Result<Option<V>> {
        layout::validate_key(key)?;
        let core = &self.core;
        // A refused (other-serializer) delete hands back the item, which decodes to
        // `SerializerMismatch`: reported, nothing lost.
        let old = core.run(core.delete(key, true))?;
        core.decode(key, old)
    }

    /// Removes and returns some live entry, or `None` when the namespace is empty.
    pub fn popitem(&self) -> Result<Option<(String, V)>> {
        let shards = self.core.layout.shards;
        let first = fastrand::u16(0..shards);
        for offset in 0..shards {
            let shard = (first + offset) % shards;
            let mut pager = Pager::one_shard(Arc::clone(&self.core), shard, Projection::Keys);
            while let Some(item) = pager.next_item() {
                let item = item?;
                let Some(key) = item::key_of(&item) else {
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
    /// key all get the same value back. An expired value counts as missing.
    pub fn setdefault(&self, key: &str, default: V) -> Result<V> {
        let core = &self.core;
        let item = core.item(key, &default, None)?;
        let existing = core.run(core.setdefault_item(key, item))?;
        match existing {
            None => Ok(default),
            Some(item) => match core.decode(key, Some(item))? {
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
        let core = &self.core;
        let mut by_key: HashMap<String, Item> = HashMap::new();
        let mut order = Vec::new();
        for (key, value) in entries {
            let key = key.as_ref();
            let item = core.item(key, &value, None)?;
            if by_key.insert(key.to_owned(), item).is_none() {
                order.push(key.to_owned());
            }
        }
        let writes = order
            .into_iter()
            .filter_map(|k| by_key.remove(&k))
            .map(Write::Put)
            .collect();
        core.run(batch::write_all(core, writes))
    }

    /// Same as [`insert_many`](Self::insert_many) (named after Python's `dict.update`).
    pub fn update<K: AsRef<str>>(&self, entries: impl IntoIterator<Item = (K, V)>) -> Result<()> {
        self.insert_many(entries)
    }

    /// The values of many keys, in the order asked (`None` for absent or expired keys), read
    /// with `BatchGetItem` (100 keys per request, several in flight).
    pub fn get_many<K: AsRef<str>>(&self, keys: &[K]) -> Result<Vec<Option<V>>> {
        let distinct = dedupe(keys.iter().map(AsRef::as_ref))?;
        let core = &self.core;
        let found = core.run(batch::get_all(core, distinct))?;
        let now = now_secs();
        keys.iter()
            .map(|k| {
                let k = k.as_ref();
                match found.get(k) {
                    Some(item) => read_item(&core.layout, &core.serializer, k, item.clone(), now),
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
        let core = &self.core;
        let writes = distinct
            .iter()
            .map(|k| Write::Delete(core.layout.item_key(k)))
            .collect();
        core.run(batch::write_all(core, writes))
    }

    /// Deletes every item of this namespace (other namespaces are untouched), expired ones too.
    pub fn clear(&self) -> Result<()> {
        let core = &self.core;
        core.run(core.clear())
    }

    /// The exact number of live entries: a `COUNT` query per shard, run concurrently (not
    /// `DescribeTable`'s estimate, which AWS refreshes about every six hours).
    pub fn len(&self) -> Result<usize> {
        let core = &self.core;
        core.run(core.count())
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
        Keys::new(Arc::clone(&self.core))
    }

    /// A lazy iterator over the values. See [`Values`].
    pub fn values(&self) -> Values<V> {
        Values::new(Arc::clone(&self.core))
    }

    /// A lazy iterator over `(key, value)` pairs. See [`Items`].
    pub fn items(&self) -> Items<V> {
        Items::new(Arc::clone(&self.core))
    }
}
