//! Lazy streams over one namespace: [`KeyStream`], [`ValueStream`] and [`ItemStream`], the
//! async core of the blocking iterators ([`crate::Keys`], [`crate::Values`], [`crate::Items`]).
//!
//! They page through the namespace with one `Query` per shard, fetching the next page of up to
//! [`BatchOptions::concurrency`](crate::BatchOptions) shards at once, so memory stays bounded by
//! that many pages (DynamoDB caps a page at 1 MB) however large the namespace is. Expired items
//! are filtered out by the server.
//!
//! Each stream yields `Result`s. A value that cannot be decoded yields an error naming its key
//! and the stream goes on with the next item; a failed request yields its error once and ends
//! the stream (so skipping errors cannot spin forever on a dead server).

use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::stream::{self, BoxStream, Stream, StreamExt};
use serde::de::DeserializeOwned;

use crate::engine::paging::{Pager, Projection};
use crate::item::{Item, key_of};
use crate::values::Store;
use crate::values::chunked::is_manifest;
use crate::{Error, Result};

/// How every stream and iterator over a namespace behaves, for their docs.
macro_rules! paging_doc {
    () => {
        "It pages through the namespace with one `Query` per shard, fetching the next page of \
         up to [`BatchOptions::concurrency`](crate::BatchOptions) shards at once, so memory \
         stays bounded by that many pages (DynamoDB caps a page at 1 MB) however large the \
         namespace is. Expired items are filtered out by the server.\n\n\
         It yields `Result`s. A value that cannot be decoded yields an error naming its key and \
         the next item follows; a failed request yields its error once and ends the sequence \
         (so skipping errors cannot spin forever on a dead server)."
    };
}
pub(crate) use paging_doc;

/// A pager over every shard of the store's namespace, live items only.
fn pager(store: &Store, projection: Projection) -> Pager {
    let engine = &store.engine;
    let queries = (0..engine.layout.shards)
        .map(|shard| engine.query(engine.layout.partition(shard), projection, true))
        .collect();
    Pager::new(engine.clone(), queries)
}

fn key_string(item: &Item) -> Result<String> {
    key_of(item)
        .map(str::to_owned)
        .ok_or_else(|| Error::Deserialize {
            key: String::new(),
            message: "an item in the namespace has no string sort key".into(),
        })
}

/// Every live `(key, item)` of the namespace, large values' chunks joined in.
fn raw_items(store: Arc<Store>) -> BoxStream<'static, Result<(String, Item)>> {
    let pager = pager(&store, Projection::All);
    stream::unfold((pager, store), |(mut pager, store)| async move {
        loop {
            let next = match pager.next_item().await? {
                Ok(item) => next_entry(&store, item).await,
                Err(e) => Some(Err(e)),
            };
            if let Some(next) = next {
                return Some((next, (pager, store)));
            }
        }
    })
    // Fused: polled again after its end, it ends again (never panics).
    .fuse()
    .boxed()
}

/// The entry for a listed item: a large value is read whole (`None` if deleted since).
async fn next_entry(store: &Store, item: Item) -> Option<Result<(String, Item)>> {
    let key = match key_string(&item) {
        Ok(key) => key,
        Err(e) => return Some(Err(e)),
    };
    if !is_manifest(&item) {
        return Some(Ok((key, item)));
    }
    match store.current(&key, Some(item)).await {
        Ok(Some(item)) => Some(Ok((key, item))),
        Ok(None) => None,
        Err(e) => Some(Err(e)),
    }
}

/// A stream of the keys of an [`AsyncDynamoDbDict`](crate::AsyncDynamoDbDict), from
/// [`keys`](crate::AsyncDynamoDbDict::keys); only keys are transferred.
///
#[doc = paging_doc!()]
pub struct KeyStream {
    inner: BoxStream<'static, Result<String>>,
}

impl KeyStream {
    pub(crate) fn new(store: Arc<Store>) -> Self {
        let pager = pager(&store, Projection::Keys);
        let inner = stream::unfold(pager, |mut pager| async move {
            let next = pager.next_item().await?;
            Some((next.and_then(|item| key_string(&item)), pager))
        })
        .fuse()
        .boxed();
        KeyStream { inner }
    }

    /// The next key (`None` at the end), without needing [`StreamExt`] in scope.
    pub async fn next(&mut self) -> Option<Result<String>> {
        self.inner.next().await
    }
}

impl fmt::Debug for KeyStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStream").finish_non_exhaustive()
    }
}

impl Stream for KeyStream {
    type Item = Result<String>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

/// A stream of `(key, value)` pairs of an [`AsyncDynamoDbDict`](crate::AsyncDynamoDbDict),
/// from [`items`](crate::AsyncDynamoDbDict::items).
///
#[doc = paging_doc!()]
pub struct ItemStream<V> {
    inner: BoxStream<'static, Result<(String, Item)>>,
    store: Arc<Store>,
    _value: PhantomData<fn() -> V>,
}

impl<V> ItemStream<V> {
    pub(crate) fn new(store: Arc<Store>) -> Self {
        ItemStream {
            inner: raw_items(Arc::clone(&store)),
            store,
            _value: PhantomData,
        }
    }
}

impl<V: DeserializeOwned> ItemStream<V> {
    /// The next entry (`None` at the end), without needing [`StreamExt`] in scope.
    pub async fn next(&mut self) -> Option<Result<(String, V)>> {
        StreamExt::next(self).await
    }
}

impl<V> fmt::Debug for ItemStream<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ItemStream").finish_non_exhaustive()
    }
}

impl<V: DeserializeOwned> Stream for ItemStream<V> {
    type Item = Result<(String, V)>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let (key, item) = match self.inner.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(entry))) => entry,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            };
            match self.store.decode(&key, Some(item)) {
                Ok(Some(value)) => return Poll::Ready(Some(Ok((key, value)))),
                // Expired since the server filtered it.
                Ok(None) => continue,
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
        }
    }
}

/// A stream of the values of an [`AsyncDynamoDbDict`](crate::AsyncDynamoDbDict), from
/// [`values`](crate::AsyncDynamoDbDict::values).
///
#[doc = paging_doc!()]
pub struct ValueStream<V> {
    items: ItemStream<V>,
}

impl<V> ValueStream<V> {
    pub(crate) fn new(store: Arc<Store>) -> Self {
        ValueStream {
            items: ItemStream::new(store),
        }
    }
}

impl<V: DeserializeOwned> ValueStream<V> {
    /// The next value (`None` at the end), without needing [`StreamExt`] in scope.
    pub async fn next(&mut self) -> Option<Result<V>> {
        StreamExt::next(self).await
    }
}

impl<V> fmt::Debug for ValueStream<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValueStream").finish_non_exhaustive()
    }
}

impl<V: DeserializeOwned> Stream for ValueStream<V> {
    type Item = Result<V>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.items
            .poll_next_unpin(cx)
            .map(|next| next.map(|r| r.map(|(_, v)| v)))
    }
}
