//! Lazy iterators over one namespace: [`Keys`], [`Values`] and [`Items`], the blocking shells
//! of the streams in [`crate::stream`]: each `next` is one bridge call into the stream.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use futures_util::{FutureExt, StreamExt};
use serde::de::DeserializeOwned;

use crate::Result;
use crate::engine::Connection;
use crate::stream::{ItemStream, KeyStream, ValueStream, paging_doc};

/// An iterator over the keys of a [`DynamoDbDict`](crate::DynamoDbDict), from
/// [`keys`](crate::DynamoDbDict::keys); only keys are transferred.
///
#[doc = paging_doc!()]
pub struct Keys {
    inner: BlockingIter<KeyStream, String>,
}

impl Keys {
    pub(crate) fn new(stream: KeyStream, connection: Arc<Connection>) -> Self {
        Keys {
            inner: BlockingIter::new(stream, connection),
        }
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys").finish_non_exhaustive()
    }
}

impl Iterator for Keys {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next()
    }
}

/// An iterator over `(key, value)` pairs of a [`DynamoDbDict`](crate::DynamoDbDict), from
/// [`items`](crate::DynamoDbDict::items).
///
#[doc = paging_doc!()]
pub struct Items<V> {
    inner: BlockingIter<ItemStream<V>, (String, V)>,
}

impl<V> Items<V> {
    pub(crate) fn new(stream: ItemStream<V>, connection: Arc<Connection>) -> Self {
        Items {
            inner: BlockingIter::new(stream, connection),
        }
    }
}

impl<V> fmt::Debug for Items<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Items").finish_non_exhaustive()
    }
}

impl<V: DeserializeOwned + Send> Iterator for Items<V> {
    type Item = Result<(String, V)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next()
    }
}

/// An iterator over the values of a [`DynamoDbDict`](crate::DynamoDbDict), from
/// [`values`](crate::DynamoDbDict::values).
///
#[doc = paging_doc!()]
pub struct Values<V> {
    inner: BlockingIter<ValueStream<V>, V>,
}

impl<V> Values<V> {
    pub(crate) fn new(stream: ValueStream<V>, connection: Arc<Connection>) -> Self {
        Values {
            inner: BlockingIter::new(stream, connection),
        }
    }
}

impl<V> fmt::Debug for Values<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Values").finish_non_exhaustive()
    }
}

impl<V: DeserializeOwned + Send> Iterator for Values<V> {
    type Item = Result<V>;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next()
    }
}

/// Most elements a blocking iterator takes from its stream per bridge call.
const BATCH: usize = 256;

/// Any stream of results, iterated from blocking code. Each bridge call takes the next element
/// and every element after it that is ready at once (up to [`BATCH`]: the rest of the pages
/// already fetched), so a blocking iteration costs one bridge call per batch, not per element.
pub(crate) struct BlockingIter<S, T> {
    stream: S,
    connection: Arc<Connection>,
    ready: VecDeque<Result<T>>,
}

impl<S, T> BlockingIter<S, T> {
    pub(crate) fn new(stream: S, connection: Arc<Connection>) -> Self {
        BlockingIter {
            stream,
            connection,
            ready: VecDeque::new(),
        }
    }
}

impl<T, S> Iterator for BlockingIter<S, T>
where
    T: Send,
    S: futures_util::Stream<Item = Result<T>> + Unpin + Send,
{
    type Item = Result<T>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(next) = self.ready.pop_front() {
            return Some(next);
        }
        let (stream, ready) = (&mut self.stream, &mut self.ready);
        let batch = self.connection.block_on(async move {
            let Some(first) = stream.next().await else {
                return Ok(false);
            };
            ready.push_back(first);
            // Polling a stream's `next` and dropping it when not ready loses nothing: the
            // stream keeps its own state.
            while ready.len() < BATCH {
                match stream.next().now_or_never() {
                    Some(Some(more)) => ready.push_back(more),
                    _ => break,
                }
            }
            Ok(true)
        });
        match batch {
            Ok(_) => self.ready.pop_front(),
            // The blocking runtime could not be started: reported as an element.
            Err(e) => Some(Err(e)),
        }
    }
}
