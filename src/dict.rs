//! [`DynamoDbDict`]: the blocking, typed map.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure, Select,
};
use futures_util::future::try_join_all;
use futures_util::stream::{StreamExt, TryStreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::batch::{self, Write};
use crate::chunks::{self, Prepared};
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
    /// Largest value; `None` turns large (chunked) values off.
    pub max_value: Option<usize>,
    /// Whether this namespace is known to have held a large value (see
    /// [`Core::may_have_large_values`]).
    pub large_seen: AtomicBool,
}

/// Attributes the batch operations read first, to find the chunks of large values.
const MANIFEST_PROJECTION: (&str, &[(&str, &str)]) = (
    "#pk, #sk, #g, #n",
    &[
        ("#pk", PK),
        ("#sk", layout::SK),
        ("#g", chunks::GENERATION),
        ("#n", chunks::COUNT),
    ],
);

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

    /// `value`'s item for `key`, expiring after `ttl` (`None`: the map's default).
    fn item<V: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &V,
        ttl: Option<Duration>,
    ) -> Result<Prepared> {
        self.item_expiring_at(key, value, self.expires_at(ttl))
    }

    /// `value`'s item for `key`, expiring at `expires_at` (epoch seconds) if the table has a
    /// TTL attribute.
    fn item_expiring_at<V: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &V,
        expires_at: Option<u64>,
    ) -> Result<Prepared> {
        build_item(
            &self.layout,
            &self.serializer,
            key,
            value,
            expires_at.filter(|_| self.layout.ttl_attribute.is_some()),
            self.max_value,
        )
    }

    /// The marker item recording that a namespace has held a large value.
    fn large_marker(&self) -> Item {
        HashMap::from([
            (PK.to_owned(), AttributeValue::S(layout::META_PK.to_owned())),
            (
                layout::SK.to_owned(),
                AttributeValue::S(format!("large#{}", self.layout.namespace)),
            ),
        ])
    }

    /// Whether the namespace may hold large values, so that batch writes and deletes must read
    /// the old items first to find their chunks. A marker item is written before the
    /// namespace's first chunk, so until it exists the (costly) read is skipped; once seen, the
    /// answer is cached.
    async fn may_have_large_values(&self) -> Result<bool> {
        if self.max_value.is_none() {
            return Ok(false);
        }
        if self.large_seen.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(self.large_marker()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(e, self.table()))?;
        let seen = out.item.is_some();
        if seen {
            self.large_seen.store(true, Ordering::Relaxed);
        }
        Ok(seen)
    }

    /// Writes chunks; on failure removes what was written (best effort) and reports the error.
    async fn write_chunks(&self, chunks: Vec<Item>) -> Result<Vec<Item>> {
        if !self.large_seen.load(Ordering::Relaxed) {
            self.client()
                .put_item()
                .table_name(self.table())
                .set_item(Some(self.large_marker()))
                .send()
                .await
                .map_err(|e| sdk_error(e, self.table()))?;
            self.large_seen.store(true, Ordering::Relaxed);
        }
        let keys: Vec<Item> = chunks.iter().map(primary_key).collect();
        let written = batch::write_all(self, chunks.into_iter().map(Write::Put).collect()).await;
        match written {
            Ok(()) => Ok(keys),
            Err(err) => {
                self.forget_chunks(keys).await;
                Err(err)
            }
        }
    }

    /// Deletes chunks nobody points to (best effort: a failure leaves unreachable items that
    /// `clear` removes).
    async fn forget_chunks(&self, keys: Vec<Item>) {
        let _ = batch::write_all(self, keys.into_iter().map(Write::Delete).collect()).await;
    }

    /// Reads `key`'s current item, large values reassembled.
    async fn get_current(&self, key: &str) -> Result<Option<Item>> {
        let item = self.get_item(key, None).await?;
        chunks::resolve_current(self, key, item, || self.get_item(key, None)).await
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

    /// Writes a prepared value; returns the old item (value reassembled when `return_old`).
    async fn put(&self, key: &str, prepared: Prepared, return_old: bool) -> Result<Option<Item>> {
        let (item, chunks) = prepared.into_parts();
        let written = if chunks.is_empty() {
            Vec::new()
        } else {
            self.write_chunks(chunks).await?
        };
        // With large values on, the old item is needed to find the chunks it leaves behind.
        let want_old = return_old || self.max_value.is_some();
        let out = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .return_values(if want_old {
                ReturnValue::AllOld
            } else {
                ReturnValue::None
            })
            .send()
            .await;
        let old = match out {
            Ok(out) => out.attributes,
            Err(err) => {
                self.forget_chunks(written).await;
                return Err(self.put_error(key, err));
            }
        };
        self.retire(key, old, return_old).await
    }

    /// Takes care of an item that was just replaced or deleted: reassembles its value if asked,
    /// then deletes its chunks.
    async fn retire(&self, key: &str, old: Option<Item>, reassemble: bool) -> Result<Option<Item>> {
        let Some(old) = old else { return Ok(None) };
        if !chunks::is_manifest(&old) {
            return Ok(Some(old));
        }
        let value = if reassemble {
            chunks::resolve_old(self, key, Some(old.clone())).await
        } else {
            Ok(Some(old.clone()))
        };
        chunks::delete_chunks(self, key, &old).await?;
        value
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

    pub(crate) async fn get_item(
        &self,
        key: &str,
        projection: Option<&str>,
    ) -> Result<Option<Item>> {
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

    /// Deletes `key`, returning the old item (value reassembled when `reassemble`) and its
    /// chunks removed. With `guard_format`, an item written by another serializer is not
    /// deleted; it is returned as it is for the caller to report.
    async fn delete(
        &self,
        key: &str,
        guard_format: bool,
        reassemble: bool,
    ) -> Result<Option<Item>> {
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
            Ok(out) => self.retire(key, out.attributes, reassemble).await,
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

    /// Stores `prepared` unless `key` holds a live value; returns that value's item if so.
    async fn setdefault_item(&self, key: &str, prepared: Prepared) -> Result<Option<Item>> {
        let (item, chunks) = prepared.into_parts();
        let written = if chunks.is_empty() {
            Vec::new()
        } else {
            self.write_chunks(chunks).await?
        };
        let stored = self.put_if_absent(key, item).await;
        match stored {
            // Stored; an expired item it replaced leaves its chunks to remove.
            Ok(Ok(replaced)) => self.retire(key, replaced, false).await.map(|_| None),
            Ok(Err(existing)) => {
                self.forget_chunks(written).await;
                chunks::resolve_current(self, key, Some(existing), || self.get_item(key, None))
                    .await
            }
            Err(err) => {
                self.forget_chunks(written).await;
                Err(err)
            }
        }
    }

    /// A conditional put: `Ok(replaced expired item)` when stored, `Err(live item)` when the
    /// key is taken.
    async fn put_if_absent(&self, key: &str, item: Item) -> Result<Result<Option<Item>, Item>> {
        let mut request = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .return_values(ReturnValue::AllOld)
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
            Ok(out) => Ok(Ok(out.attributes)),
            Err(err) => {
                let existing = err.as_service_error().and_then(|e| match e {
                    PutItemError::ConditionalCheckFailedException(c) => Some(c.item.clone()),
                    _ => None,
                });
                match existing {
                    // Present and live: the condition failed and handed us the stored item.
                    Some(Some(item)) => Ok(Err(item)),
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
        partition: String,
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
            .expression_attribute_values(":pk", AttributeValue::S(partition))
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

    /// Every page of one partition, handed to `each` as it arrives.
    async fn for_each_page<F, Fut>(
        &self,
        partition: String,
        projection: Projection,
        mut each: F,
    ) -> Result<()>
    where
        F: FnMut(Vec<Item>, usize) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let mut start = None;
        loop {
            let (items, next, count) = self
                .query_page(partition.clone(), projection, start, None)
                .await?;
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
            self.for_each_page(
                self.layout.partition(shard),
                Projection::Count,
                |_, count| {
                    total += count;
                    async { Ok(()) }
                },
            )
            .await?;
            Ok::<_, Error>(total)
        });
        Ok(try_join_all(per_shard).await?.into_iter().sum())
    }

    /// Deletes every item of the namespace's partitions and chunk partitions.
    async fn clear(&self) -> Result<()> {
        let partitions = (0..self.layout.shards).flat_map(|shard| {
            [
                self.layout.partition(shard),
                chunks::shard_chunk_partition(&self.layout, shard),
            ]
        });
        let per_partition = partitions.map(|partition| {
            self.for_each_page(partition, Projection::KeysIncludingExpired, |items, _| {
                batch::write_all(self, items.into_iter().map(Write::Delete).collect())
            })
        });
        try_join_all(per_partition).await.map(|_| ())
    }

    /// The items of `keys` as far as needed to find their chunks (large values only).
    async fn manifests(&self, keys: &[String]) -> Result<Vec<(String, Item)>> {
        if keys.is_empty() || !self.may_have_large_values().await? {
            return Ok(Vec::new());
        }
        let found = batch::get_items(
            self,
            keys.iter().map(|k| self.layout.item_key(k)).collect(),
            Some(MANIFEST_PROJECTION),
        )
        .await?;
        Ok(found
            .into_iter()
            .filter(|(_, item)| chunks::is_manifest(item))
            .collect())
    }

    async fn delete_chunks_of(&self, manifests: Vec<(String, Item)>) -> Result<()> {
        let writes = manifests
            .iter()
            .flat_map(|(key, item)| chunks::chunk_keys(&self.layout, key, item))
            .map(Write::Delete)
            .collect();
        batch::write_all(self, writes).await
    }

    /// Batch write of prepared values (distinct keys), chunks first, old chunks removed after.
    async fn put_many(&self, entries: Vec<(String, Prepared)>) -> Result<()> {
        let keys: Vec<String> = entries.iter().map(|(k, _)| k.clone()).collect();
        let old = self.manifests(&keys).await?;
        let mut items = Vec::with_capacity(entries.len());
        let mut chunks = Vec::new();
        for (_, prepared) in entries {
            let (item, c) = prepared.into_parts();
            items.push(Write::Put(item));
            chunks.extend(c);
        }
        let written = if chunks.is_empty() {
            Vec::new()
        } else {
            self.write_chunks(chunks).await?
        };
        if let Err(err) = batch::write_all(self, items).await {
            self.forget_chunks(written).await;
            return Err(err);
        }
        self.delete_chunks_of(old).await
    }

    async fn delete_many(&self, keys: Vec<String>) -> Result<()> {
        let old = self.manifests(&keys).await?;
        let writes = keys
            .iter()
            .map(|k| Write::Delete(self.layout.item_key(k)))
            .collect();
        batch::write_all(self, writes).await?;
        self.delete_chunks_of(old).await
    }

    /// Reads many keys (distinct), large values reassembled.
    async fn get_many(&self, keys: Vec<String>) -> Result<HashMap<String, Item>> {
        let mut found = batch::get_items(
            self,
            keys.iter().map(|k| self.layout.item_key(k)).collect(),
            None,
        )
        .await?;
        // Only large values (manifests) need more requests; every other item is final. One
        // future per manifest, a few in flight (a future holding an SDK request is kilobytes).
        let manifest_keys: Vec<String> = found
            .iter()
            .filter(|(_, item)| chunks::is_manifest(item))
            .map(|(key, _)| key.clone())
            .collect();
        if manifest_keys.is_empty() {
            return Ok(found);
        }
        let manifests: Vec<(String, Item)> = manifest_keys
            .into_iter()
            .filter_map(|key| found.remove_entry(&key))
            .collect();
        let resolved: Vec<Option<(String, Item)>> =
            futures_util::stream::iter(manifests.into_iter().map(|(key, item)| async move {
                let item =
                    chunks::resolve_current(self, &key, Some(item), || self.get_item(&key, None))
                        .await?;
                Ok::<_, Error>(item.map(|i| (key, i)))
            }))
            .buffer_unordered(self.batch.concurrency)
            .try_collect()
            .await?;
        found.extend(resolved.into_iter().flatten());
        Ok(found)
    }
}

fn primary_key(item: &Item) -> Item {
    item.iter()
        .filter(|(k, _)| *k == PK || *k == layout::SK)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
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
            max_value: self.core.max_value,
            large_seen: AtomicBool::new(false),
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
        let item = core.run(core.get_current(key))?;
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

    /// Stores `value` at `key`, expiring at `expires_at` (epoch seconds) or never, without
    /// reading the previous value. For callers that hold an absolute expiry (the cache).
    pub(crate) fn set_expiring_at(
        &self,
        key: &str,
        value: &V,
        expires_at: Option<u64>,
    ) -> Result<()> {
        let core = &self.core;
        let item = core.item_expiring_at(key, value, expires_at)?;
        core.run(core.put(key, item, false)).map(|_| ())
    }

    /// Stores `value` at `key` without reading the previous value (cheaper than
    /// [`insert`](Self::insert) when the old value is not needed).
    pub fn set(&self, key: &str, value: &V) -> Result<()> {
        self.set_expiring_at(key, value, self.core.expires_at(None))
    }

    /// Removes `key`; returns whether a live value was there. Never decodes the value, so it
    /// also removes values this map cannot read.
    pub fn remove(&self, key: &str) -> Result<bool> {
        layout::validate_key(key)?;
        let core = &self.core;
        let old = core.run(core.delete(key, false, false))?;
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
        let old = core.run(core.delete(key, true, true))?;
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
        let mut by_key: HashMap<String, Prepared> = HashMap::new();
        let mut order = Vec::new();
        for (key, value) in entries {
            let key = key.as_ref();
            let prepared = core.item(key, &value, None)?;
            if by_key.insert(key.to_owned(), prepared).is_none() {
                order.push(key.to_owned());
            }
        }
        let entries = order
            .into_iter()
            .filter_map(|k| by_key.remove(&k).map(|p| (k, p)))
            .collect();
        core.run(core.put_many(entries))
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
        let found = core.run(core.get_many(distinct))?;
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
        core.run(core.delete_many(distinct))
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
