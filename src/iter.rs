//! Lazy iterators over one namespace: [`Keys`], [`Values`] and [`Items`].
//!
//! They page through the namespace with one `Query` per shard, fetching the next page of up to
//! [`BatchOptions::concurrency`](crate::BatchOptions) shards at once, so memory stays bounded by
//! that many pages (DynamoDB caps a page at 1 MB) however large the namespace is. Expired items
//! are filtered out by the server.
//!
//! Each iterator yields `Result`s. A value that cannot be decoded yields an error naming its key
//! and iteration goes on with the next item; a failed request yields its error once and ends the
//! iteration (so `filter_map(Result::ok)` cannot spin forever on a dead server).

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::engine::paging::{Pager, Projection};
use crate::item::{Item, key_of};
use crate::values::Store;
use crate::values::chunked::is_manifest;
use crate::{Error, Result};

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

/// Iterator over the keys of a [`DynamoDbDict`](crate::DynamoDbDict). See the module docs.
pub struct Keys {
    pager: Pager,
}

impl Keys {
    pub(crate) fn new(store: Arc<Store>) -> Self {
        Keys {
            pager: pager(&store, Projection::Keys),
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
        self.pager
            .next_item()
            .map(|r| r.and_then(|item| key_string(&item)))
    }
}

/// Iterator over `(key, value)` pairs of a [`DynamoDbDict`](crate::DynamoDbDict).
pub struct Items<V> {
    pager: Pager,
    store: Arc<Store>,
    _value: PhantomData<fn() -> V>,
}

impl<V> Items<V> {
    pub(crate) fn new(store: Arc<Store>) -> Self {
        Items {
            pager: pager(&store, Projection::All),
            store,
            _value: PhantomData,
        }
    }
}

impl<V> fmt::Debug for Items<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Items").finish_non_exhaustive()
    }
}

impl<V: DeserializeOwned> Iterator for Items<V> {
    type Item = Result<(String, V)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let item = match self.pager.next_item()? {
                Ok(item) => item,
                Err(e) => return Some(Err(e)),
            };
            let key = match key_string(&item) {
                Ok(key) => key,
                Err(e) => return Some(Err(e)),
            };
            let store = &self.store;
            let item = if is_manifest(&item) {
                match store.engine.run(store.current(&key, Some(item))) {
                    Ok(Some(item)) => item,
                    // Deleted since it was listed.
                    Ok(None) => continue,
                    Err(e) => return Some(Err(e)),
                }
            } else {
                item
            };
            match store.decode(&key, Some(item)) {
                Ok(Some(value)) => return Some(Ok((key, value))),
                // Expired since the server filtered it.
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// Iterator over the values of a [`DynamoDbDict`](crate::DynamoDbDict).
pub struct Values<V> {
    items: Items<V>,
}

impl<V> Values<V> {
    pub(crate) fn new(store: Arc<Store>) -> Self {
        Values {
            items: Items::new(store),
        }
    }
}

impl<V> fmt::Debug for Values<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Values").finish_non_exhaustive()
    }
}

impl<V: DeserializeOwned> Iterator for Values<V> {
    type Item = Result<V>;

    fn next(&mut self) -> Option<Self::Item> {
        self.items.next().map(|r| r.map(|(_, v)| v))
    }
}
