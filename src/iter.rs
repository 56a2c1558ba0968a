//! Lazy iterators over one namespace: [`Keys`], [`Values`] and [`Items`], the blocking shells
//! of the streams in [`crate::stream`]: each `next` is one bridge call into the stream.

use std::fmt;
use std::sync::Arc;

use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::Result;
use crate::engine::Connection;
use crate::stream::{ItemStream, KeyStream, ValueStream, paging_doc};

/// The next element of `stream`, from blocking code.
fn next_blocking<T, S>(connection: &Connection, stream: &mut S) -> Option<Result<T>>
where
    T: Send,
    S: futures_util::Stream<Item = Result<T>> + Unpin + Send,
{
    match connection.block_on(async { Ok(stream.next().await) }) {
        Ok(next) => next,
        // The blocking runtime could not be started: reported as an element.
        Err(e) => Some(Err(e)),
    }
}

/// An iterator over the keys of a [`DynamoDbDict`](crate::DynamoDbDict), from
/// [`keys`](crate::DynamoDbDict::keys); only keys are transferred.
///
#[doc = paging_doc!()]
pub struct Keys {
    stream: KeyStream,
    connection: Arc<Connection>,
}

impl Keys {
    pub(crate) fn new(stream: KeyStream, connection: Arc<Connection>) -> Self {
        Keys { stream, connection }
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
        next_blocking(&self.connection, &mut self.stream)
    }
}

/// An iterator over `(key, value)` pairs of a [`DynamoDbDict`](crate::DynamoDbDict), from
/// [`items`](crate::DynamoDbDict::items).
///
#[doc = paging_doc!()]
pub struct Items<V> {
    stream: ItemStream<V>,
    connection: Arc<Connection>,
}

impl<V> Items<V> {
    pub(crate) fn new(stream: ItemStream<V>, connection: Arc<Connection>) -> Self {
        Items { stream, connection }
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
        next_blocking(&self.connection, &mut self.stream)
    }
}

/// An iterator over the values of a [`DynamoDbDict`](crate::DynamoDbDict), from
/// [`values`](crate::DynamoDbDict::values).
///
#[doc = paging_doc!()]
pub struct Values<V> {
    stream: ValueStream<V>,
    connection: Arc<Connection>,
}

impl<V> Values<V> {
    pub(crate) fn new(stream: ValueStream<V>, connection: Arc<Connection>) -> Self {
        Values { stream, connection }
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
        next_blocking(&self.connection, &mut self.stream)
    }
}

/// Any stream of results, iterated from blocking code (the cache's `filter`).
pub(crate) struct BlockingIter<S> {
    stream: S,
    connection: Arc<Connection>,
}

impl<S> BlockingIter<S> {
    pub(crate) fn new(stream: S, connection: Arc<Connection>) -> Self {
        BlockingIter { stream, connection }
    }
}

impl<T, S> Iterator for BlockingIter<S>
where
    T: Send,
    S: futures_util::Stream<Item = Result<T>> + Unpin + Send,
{
    type Item = Result<T>;

    fn next(&mut self) -> Option<Self::Item> {
        next_blocking(&self.connection, &mut self.stream)
    }
}
