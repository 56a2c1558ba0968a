//! One test body, both façades: [`Map`] drives either the blocking [`DynamoDbDict`] or the
//! async [`AsyncDynamoDbDict`] (awaited on a current-thread or a multi-thread runtime of the
//! test's own, the "caller's runtime"), with the same method names. Tests written against
//! `Map` run once per [`Facade`]; only this adapter knows there are two.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use dynamodict::cache::{
    AsyncDynamoDbCache, CacheBuilder, CachedRequest, CachedResponse, DeleteFilter, DynamoDbCache,
    Selection,
};
use dynamodict::{AsyncDynamoDbDict, DictBuilder, DynamoDbDict, Result, SweepReport};
use futures_util::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::builder;

/// Which API a test drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facade {
    /// `DynamoDbDict`, called from plain threads.
    Blocking,
    /// `AsyncDynamoDbDict` on a current-thread runtime.
    AsyncCurrentThread,
    /// `AsyncDynamoDbDict` on a multi-thread runtime.
    AsyncMultiThread,
}

impl Facade {
    pub const ALL: [Facade; 3] = [
        Facade::Blocking,
        Facade::AsyncCurrentThread,
        Facade::AsyncMultiThread,
    ];

    /// A runtime of the caller's kind (for the async façades).
    pub fn runtime(self) -> Option<Arc<tokio::runtime::Runtime>> {
        let runtime = match self {
            Facade::Blocking => return None,
            Facade::AsyncCurrentThread => tokio::runtime::Builder::new_current_thread(),
            Facade::AsyncMultiThread => {
                let mut b = tokio::runtime::Builder::new_multi_thread();
                b.worker_threads(2);
                b
            }
        }
        .enable_all()
        .build()
        .expect("a test runtime");
        Some(Arc::new(runtime))
    }
}

#[derive(Clone)]
enum Kind<V> {
    Blocking(DynamoDbDict<V>),
    Async(AsyncDynamoDbDict<V>, Arc<tokio::runtime::Runtime>),
}

/// A map under test, through one façade.
#[derive(Clone)]
pub struct Map<V> {
    kind: Kind<V>,
    pub facade: Facade,
}

impl<V> fmt::Debug for Map<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Map({:?})", self.facade)
    }
}

/// Calls the method of the same name on whichever façade the map wraps.
macro_rules! call {
    ($map:expr, $method:ident ( $($arg:expr),* )) => {
        call!($map, Kind, $method($($arg),*))
    };
    ($map:expr, $kind:ident, $method:ident ( $($arg:expr),* )) => {
        match &$map.kind {
            $kind::Blocking(d) => d.$method($($arg),*),
            $kind::Async(d, rt) => rt.block_on(d.$method($($arg),*)),
        }
    };
}

impl<V: Serialize + DeserializeOwned + Send + 'static> Map<V> {
    /// A fresh namespace of the shared test table, through `facade`.
    pub fn open(label: &str, facade: Facade) -> Self {
        Self::build(builder(label), facade)
    }

    /// A map from a builder, through `facade` (`build` or `build_async`).
    pub fn build(builder: DictBuilder<V>, facade: Facade) -> Self {
        let kind = match facade.runtime() {
            None => Kind::Blocking(builder.build().expect("building a test map")),
            Some(rt) => {
                let d = rt
                    .block_on(builder.build_async())
                    .expect("building a test map");
                Kind::Async(d, rt)
            }
        };
        Map { kind, facade }
    }

    /// An async map already built on `rt` (a multi-thread runtime).
    pub fn wrap(map: AsyncDynamoDbDict<V>, rt: tokio::runtime::Runtime) -> Self {
        Map {
            kind: Kind::Async(map, Arc::new(rt)),
            facade: Facade::AsyncMultiThread,
        }
    }

    /// The blocking form (for helpers that inspect the table).
    pub fn blocking(&self) -> DynamoDbDict<V> {
        match &self.kind {
            Kind::Blocking(d) => d.clone(),
            Kind::Async(d, _) => d.to_blocking(),
        }
    }

    pub fn namespace(&self) -> String {
        match &self.kind {
            Kind::Blocking(d) => d.namespace().to_owned(),
            Kind::Async(d, _) => d.namespace().to_owned(),
        }
    }

    pub fn get(&self, key: &str) -> Result<Option<V>> {
        call!(self, get(key))
    }
    pub fn contains_key(&self, key: &str) -> Result<bool> {
        call!(self, contains_key(key))
    }
    pub fn insert(&self, key: &str, value: V) -> Result<Option<V>> {
        call!(self, insert(key, value))
    }
    pub fn set(&self, key: &str, value: V) -> Result<()> {
        call!(self, set(key, value))
    }
    pub fn remove(&self, key: &str) -> Result<bool> {
        call!(self, remove(key))
    }
    pub fn pop(&self, key: &str) -> Result<Option<V>> {
        call!(self, pop(key))
    }
    pub fn popitem(&self) -> Result<Option<(String, V)>> {
        call!(self, popitem())
    }
    pub fn setdefault(&self, key: &str, default: V) -> Result<V> {
        call!(self, setdefault(key, default))
    }
    pub fn setdefault_with(&self, key: &str, default: impl FnOnce() -> V + Send) -> Result<V> {
        call!(self, setdefault_with(key, default))
    }
    pub fn insert_many<K: AsRef<str>>(
        &self,
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Result<()> {
        call!(self, insert_many(entries))
    }
    pub fn update<K: AsRef<str>>(&self, entries: impl IntoIterator<Item = (K, V)>) -> Result<()> {
        call!(self, update(entries))
    }
    pub fn get_many<K: AsRef<str>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Option<V>>> {
        call!(self, get_many(keys))
    }
    pub fn bulk_delete<K: AsRef<str>>(&self, keys: impl IntoIterator<Item = K>) -> Result<()> {
        call!(self, bulk_delete(keys))
    }
    pub fn clear(&self) -> Result<()> {
        call!(self, clear())
    }
    pub fn len(&self) -> Result<usize> {
        call!(self, len())
    }
    pub fn is_empty(&self) -> Result<bool> {
        call!(self, is_empty())
    }
    pub fn sweep(&self) -> Result<SweepReport> {
        call!(self, sweep())
    }

    /// Every key, as the façade's iterator or stream yields them.
    pub fn keys(&self) -> Vec<Result<String>> {
        match &self.kind {
            Kind::Blocking(d) => d.keys().collect(),
            Kind::Async(d, rt) => rt.block_on(d.keys().collect()),
        }
    }

    /// Every value, as the façade's iterator or stream yields them.
    pub fn values(&self) -> Vec<Result<V>> {
        match &self.kind {
            Kind::Blocking(d) => d.values().collect(),
            Kind::Async(d, rt) => rt.block_on(d.values().collect()),
        }
    }

    /// Every entry, as the façade's iterator or stream yields them.
    pub fn items(&self) -> Vec<Result<(String, V)>> {
        match &self.kind {
            Kind::Blocking(d) => d.items().collect(),
            Kind::Async(d, rt) => rt.block_on(d.items().collect()),
        }
    }
}

/// Runs `body` once per façade, each on a fresh namespace labelled `label`.
pub fn each_facade<V: Serialize + DeserializeOwned + Send + 'static>(
    label: &str,
    body: impl Fn(&Map<V>),
) {
    for facade in Facade::ALL {
        let map = Map::open(label, facade);
        body(&map);
    }
}

#[derive(Clone)]
enum CacheKind {
    Blocking(DynamoDbCache),
    Async(AsyncDynamoDbCache, Arc<tokio::runtime::Runtime>),
}

/// A response cache under test, through one façade (see [`Map`]).
#[derive(Clone)]
pub struct Cache {
    kind: CacheKind,
    pub facade: Facade,
}

impl Cache {
    /// A cache from a builder, through `facade` (`build` or `build_async`).
    pub fn build(builder: CacheBuilder, facade: Facade) -> Self {
        let kind = match facade.runtime() {
            None => CacheKind::Blocking(builder.build().expect("building a test cache")),
            Some(rt) => {
                let c = rt
                    .block_on(builder.build_async())
                    .expect("building a test cache");
                CacheKind::Async(c, rt)
            }
        };
        Cache { kind, facade }
    }

    /// The blocking form (for helpers that inspect the table).
    pub fn blocking(&self) -> DynamoDbCache {
        match &self.kind {
            CacheKind::Blocking(c) => c.clone(),
            CacheKind::Async(c, _) => c.to_blocking(),
        }
    }

    pub fn create_key(&self, request: &CachedRequest) -> Result<String> {
        match &self.kind {
            CacheKind::Blocking(c) => c.create_key(request),
            CacheKind::Async(c, _) => c.create_key(request),
        }
    }
    pub fn save_response(
        &self,
        response: &CachedResponse,
        key: Option<&str>,
        expires: Option<SystemTime>,
    ) -> Result<Option<String>> {
        call!(self, CacheKind, save_response(response, key, expires))
    }
    pub fn get_response(&self, key: &str) -> Result<Option<CachedResponse>> {
        call!(self, CacheKind, get_response(key))
    }
    pub fn get_response_for(&self, request: &CachedRequest) -> Result<Option<CachedResponse>> {
        call!(self, CacheKind, get_response_for(request))
    }
    pub fn contains(&self, key: &str) -> Result<bool> {
        call!(self, CacheKind, contains(key))
    }
    pub fn contains_request(&self, request: &CachedRequest) -> Result<bool> {
        call!(self, CacheKind, contains_request(request))
    }
    pub fn has_url(&self, url: &str, method: &str) -> Result<bool> {
        call!(self, CacheKind, has_url(url, method))
    }
    pub fn delete_url(&self, url: &str, method: &str) -> Result<()> {
        call!(self, CacheKind, delete_url(url, method))
    }
    pub fn delete_urls<S: AsRef<str>>(
        &self,
        urls: impl IntoIterator<Item = S>,
        method: &str,
    ) -> Result<()> {
        call!(self, CacheKind, delete_urls(urls, method))
    }
    pub fn delete(&self, filter: DeleteFilter) -> Result<()> {
        call!(self, CacheKind, delete(filter))
    }
    pub fn urls(&self) -> Result<Vec<String>> {
        call!(self, CacheKind, urls())
    }
    pub fn response_count(&self, selection: Selection) -> Result<usize> {
        call!(self, CacheKind, response_count(selection))
    }
    pub fn recreate_keys(&self) -> Result<usize> {
        call!(self, CacheKind, recreate_keys())
    }
    pub fn clear(&self) -> Result<()> {
        call!(self, CacheKind, clear())
    }
    pub fn update(&self, other: &Cache) -> Result<()> {
        match (&self.kind, &other.kind) {
            (CacheKind::Blocking(c), _) => c.update(&other.blocking()),
            (CacheKind::Async(c, rt), CacheKind::Async(o, _)) => rt.block_on(c.update(o)),
            (CacheKind::Async(c, rt), CacheKind::Blocking(o)) => {
                rt.block_on(c.update(o.as_async()))
            }
        }
    }

    /// The responses `selection` picks, as the façade's iterator or stream yields them.
    pub fn filter(&self, selection: Selection) -> Vec<Result<CachedResponse>> {
        match &self.kind {
            CacheKind::Blocking(c) => c.filter(selection).collect(),
            CacheKind::Async(c, rt) => rt.block_on(c.filter(selection).collect()),
        }
    }
}
