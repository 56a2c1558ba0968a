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

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use futures_util::future::try_join_all;
use serde::de::DeserializeOwned;

use crate::chunks::{is_manifest, resolve_current};
use crate::dict::Core;
use crate::item::{Item, key_of, now_secs, read_item};
use crate::{Error, Result};

/// What a query returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Projection {
    /// Keys of live items.
    Keys,
    /// Keys of all items, expired included.
    KeysIncludingExpired,
    /// Whole live items.
    All,
    /// Only the count of live items.
    Count,
}

struct Cursor {
    shard: u16,
    start: Option<Item>,
}

/// Pages through shards, a page from several shards at a time.
pub(crate) struct Pager {
    core: Arc<Core>,
    cursors: VecDeque<Cursor>,
    buffer: VecDeque<Item>,
    projection: Projection,
    failed: bool,
}

impl Pager {
    pub(crate) fn all_shards(core: Arc<Core>, projection: Projection) -> Self {
        let shards = core.layout.shards;
        Self::over(core, (0..shards).collect(), projection)
    }

    pub(crate) fn one_shard(core: Arc<Core>, shard: u16, projection: Projection) -> Self {
        Self::over(core, vec![shard], projection)
    }

    fn over(core: Arc<Core>, shards: Vec<u16>, projection: Projection) -> Self {
        Pager {
            core,
            cursors: shards
                .into_iter()
                .map(|shard| Cursor { shard, start: None })
                .collect(),
            buffer: VecDeque::new(),
            projection,
            failed: false,
        }
    }

    pub(crate) fn next_item(&mut self) -> Option<Result<Item>> {
        loop {
            if let Some(item) = self.buffer.pop_front() {
                return Some(Ok(item));
            }
            if self.failed || self.cursors.is_empty() {
                return None;
            }
            if let Err(err) = self.fetch() {
                self.failed = true;
                return Some(Err(err));
            }
        }
    }

    fn fetch(&mut self) -> Result<()> {
        let n = self.cursors.len().min(self.core.batch.concurrency);
        let core = &self.core;
        let projection = self.projection;
        let requests = self.cursors.iter().take(n).map(|c| {
            core.query_page(
                core.layout.partition(c.shard),
                projection,
                c.start.clone(),
                None,
            )
        });
        let pages = core.run(try_join_all(requests))?;
        for (mut cursor, (items, next, _)) in self
            .cursors
            .drain(..n)
            .collect::<Vec<_>>()
            .into_iter()
            .zip(pages)
        {
            self.buffer.extend(items);
            if next.is_some() {
                cursor.start = next;
                self.cursors.push_back(cursor);
            }
        }
        Ok(())
    }
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
    pub(crate) fn new(core: Arc<Core>) -> Self {
        Keys {
            pager: Pager::all_shards(core, Projection::Keys),
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
    _value: PhantomData<fn() -> V>,
}

impl<V> Items<V> {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        Items {
            pager: Pager::all_shards(core, Projection::All),
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
            let core = &self.pager.core;
            let item = if is_manifest(&item) {
                let resolved = core.run(resolve_current(core, &key, Some(item), || {
                    core.get_item(&key, None)
                }));
                match resolved {
                    Ok(Some(item)) => item,
                    // Deleted since it was listed.
                    Ok(None) => continue,
                    Err(e) => return Some(Err(e)),
                }
            } else {
                item
            };
            match read_item(&core.layout, &core.serializer, &key, item, now_secs()) {
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
    pub(crate) fn new(core: Arc<Core>) -> Self {
        Values {
            items: Items::new(core),
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
