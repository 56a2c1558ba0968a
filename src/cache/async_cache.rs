//! [`AsyncDynamoDbCache`]: the response cache, async, built only on the public API of
//! [`AsyncDynamoDbDict`]. [`DynamoDbCache`](super::DynamoDbCache) is its blocking shell.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::future::Future;
use std::time::{Duration, SystemTime};

use futures_util::stream::{BoxStream, StreamExt};

use super::builder::CacheBuilder;
use super::key::{KeyOptions, KeySource, create_key, redact_response};
use super::policy::{CachePolicy, ExpireAfter};
use super::response::{CachedRequest, CachedResponse};
use crate::{AsyncDynamoDbDict, Error, Result};

/// What [`AsyncDynamoDbCache::delete`] (and [`DynamoDbCache::delete`](super::DynamoDbCache::delete))
/// removes: the union of every condition given.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use dynamodict::cache::{CachedRequest, CachedResponse, DeleteFilter, DynamoDbCache};
///
/// let cache = DynamoDbCache::builder("doc-http-cache")
///     .namespace("doc-delete")
///     .ttl_grace(Duration::from_secs(3600)) // expired responses stay stored for an hour
///     .local()
///     .build()?;
/// cache.clear()?;
/// let save = |url: &str, expires: Option<SystemTime>| {
///     let response = CachedResponse::new(CachedRequest::new("GET", url), 200, b"..".to_vec());
///     cache.save_response(&response, None, expires)
/// };
/// let a = save("https://example.com/a", None)?.expect("saved");
/// save("https://example.com/b", None)?;
/// save("https://example.com/stale", Some(SystemTime::now() - Duration::from_secs(60)))?;
/// save("https://example.com/kept", None)?;
///
/// // Deletes what any condition selects: a key, a URL, every expired response.
/// cache.delete(DeleteFilter {
///     keys: vec![a],
///     urls: vec!["https://example.com/b".to_owned()],
///     expired: true,
///     ..DeleteFilter::default()
/// })?;
/// assert_eq!(cache.urls()?, ["https://example.com/kept"]);
/// # Ok::<(), dynamodict::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct DeleteFilter {
    /// These cache keys (responses or redirect aliases).
    pub keys: Vec<String>,
    /// Responses past their expiry.
    pub expired: bool,
    /// Entries that cannot be decoded with the current settings.
    pub invalid: bool,
    /// Responses created longer ago than this.
    pub older_than: Option<Duration>,
    /// Responses to these requests.
    pub requests: Vec<CachedRequest>,
    /// Responses to `GET` requests for these URLs.
    pub urls: Vec<String>,
}

/// Which saved responses [`filter`](AsyncDynamoDbCache::filter) and
/// [`response_count`](AsyncDynamoDbCache::response_count) select (requests-cache's
/// `filter(valid, expired, invalid, older_than)`). The default selects every readable
/// response, expired or not.
///
/// ```
/// use dynamodict::cache::Selection;
///
/// let unexpired = Selection { expired: false, ..Selection::default() };
/// assert!(unexpired.valid && !unexpired.invalid);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    /// Responses not yet expired (default `true`).
    pub valid: bool,
    /// Responses past their expiry, still stored (default `true`).
    pub expired: bool,
    /// Entries that cannot be decoded with the current settings, yielded as an empty response
    /// whose URL names the key (default `false`).
    pub invalid: bool,
    /// Only responses created longer ago than this (default `None`: any age).
    pub older_than: Option<Duration>,
}

impl Default for Selection {
    fn default() -> Self {
        Selection {
            valid: true,
            expired: true,
            invalid: false,
            older_than: None,
        }
    }
}

impl Selection {
    /// Unexpired responses only.
    pub fn unexpired() -> Self {
        Selection {
            expired: false,
            ..Selection::default()
        }
    }
}

/// A stream of saved responses, from [`AsyncDynamoDbCache::filter`].
pub type ResponseStream = BoxStream<'static, Result<CachedResponse>>;

/// An HTTP response cache stored in DynamoDB (see the [module docs](super)), with an async
/// API. [`DynamoDbCache`](super::DynamoDbCache) is the same cache for blocking code.
///
/// `Send + Sync`, cheap to clone; every future is `Send` and runs on the caller's runtime.
///
/// ```
/// use dynamodict::cache::{AsyncDynamoDbCache, CachedRequest, CachedResponse};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let cache = AsyncDynamoDbCache::builder("doc-http-cache")
///     .namespace("async-doc")
///     .local()
///     .build_async()
///     .await?;
/// let request = CachedRequest::new("GET", "https://example.com/a");
/// let response = CachedResponse::new(request.clone(), 200, b"hello".to_vec());
/// let key = cache.save_response(&response, None, None).await?.expect("cacheable");
/// let cached = cache.get_response(&key).await?.expect("just saved");
/// assert_eq!(cached.body, b"hello");
/// # Ok::<(), dynamodict::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct AsyncDynamoDbCache {
    pub(super) responses: AsyncDynamoDbDict<CachedResponse>,
    pub(super) redirects: AsyncDynamoDbDict<String>,
    pub(super) policy: CachePolicy,
    pub(super) key_options: KeyOptions,
    pub(super) ttl_grace: Duration,
}

impl fmt::Debug for AsyncDynamoDbCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.describe(f, "AsyncDynamoDbCache")
    }
}

impl AsyncDynamoDbCache {
    /// Starts building a cache stored in `table` (finish it with
    /// [`CacheBuilder::build_async`]).
    pub fn builder(table: impl Into<String>) -> CacheBuilder {
        CacheBuilder::new(table)
    }

    /// The `Debug` form of both façades.
    pub(super) fn describe(&self, f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
        f.debug_struct(name)
            .field("responses", &self.responses)
            .field("redirects", &self.redirects)
            .field("policy", &self.policy)
            .field("key_options", &self.key_options)
            .field("ttl_grace", &self.ttl_grace)
            .finish()
    }

    /// The blocking form of this cache, sharing its configuration and table check.
    pub fn to_blocking(&self) -> super::DynamoDbCache {
        super::DynamoDbCache::from(self.clone())
    }

    /// The map holding the responses.
    pub fn responses(&self) -> &AsyncDynamoDbDict<CachedResponse> {
        &self.responses
    }

    /// The map holding redirect aliases (request key -> response key).
    pub fn redirects(&self) -> &AsyncDynamoDbDict<String> {
        &self.redirects
    }

    /// The cache policy.
    pub fn policy(&self) -> &CachePolicy {
        &self.policy
    }

    /// What the cache (both its namespaces share one connection) has sent to DynamoDB so far.
    /// See [`Stats`](crate::Stats).
    pub fn stats(&self) -> crate::Stats {
        self.responses.stats()
    }

    /// How long an entry is kept past its expiry (see [`CacheBuilder::ttl_grace`]).
    pub fn ttl_grace(&self) -> Duration {
        self.ttl_grace
    }

    /// The cache key of a request (see [`create_key`]).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] when the request URL is not an absolute URL. Sends no request.
    pub fn create_key<R: KeySource + ?Sized>(&self, request: &R) -> Result<String> {
        create_key(request, &self.key_options)
    }

    fn url_key(&self, url: &str, method: &str) -> Result<String> {
        self.create_key(&CachedRequest::new(method, url))
    }

    /// When DynamoDB may delete an entry expiring at `expires` (`None`: never, also when the
    /// grace period reaches past what a `SystemTime` holds).
    fn storage_expiry(&self, expires: Option<SystemTime>) -> Option<SystemTime> {
        expires?.checked_add(self.ttl_grace)
    }

    /// Whether a response is past its expiry plus the grace period (exact, unlike the storage
    /// layer's whole seconds).
    fn is_gone(&self, response: &CachedResponse, now: SystemTime) -> bool {
        response
            .expires
            .and_then(|e| e.checked_add(self.ttl_grace))
            .is_some_and(|until| until <= now)
    }

    /// Saves `response` under `cache_key` (default: the key of its request) if the policy
    /// allows it (method, status, filter, `no-store`), expiring at `expires` (default: from the
    /// policy). Ignored parameters are redacted from the stored copy. Each redirect in its
    /// history gets an alias to the key. Returns the key, or `None` when not saved.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] when a key is computed from a URL that is not absolute (the request's,
    /// without `cache_key`, or a redirect's in `history`); [`Error::EmptyKey`] or
    /// [`Error::KeyTooLong`] for an invalid `cache_key`; [`Error::Serialize`] or
    /// [`Error::ItemTooLarge`] when the response cannot be encoded or is too large;
    /// [`Error::Config`] when a response expires and expiry is turned off on the cache's map
    /// (`ttl(false)` through [`CacheBuilder::dict`]); the [request errors](Error#request-errors). A
    /// response the policy does not save is `Ok(None)`, not an error.
    pub async fn save_response(
        &self,
        response: &CachedResponse,
        cache_key: Option<&str>,
        expires: Option<SystemTime>,
    ) -> Result<Option<String>> {
        if !self.policy.should_save(response) {
            return Ok(None);
        }
        let key = match cache_key {
            Some(k) => k.to_owned(),
            None => self.create_key(&response.request)?,
        };
        let expires = expires.or_else(|| self.policy.expires_for(response, SystemTime::now()));
        self.store(&key, response.clone(), expires).await?;
        Ok(Some(key))
    }

    /// Stores `response` under `key` expiring at `expires` (`None`: never), with no policy
    /// check: the caller decided. Redacts, and aliases every redirect hop to `key`.
    pub(crate) async fn store(
        &self,
        key: &str,
        mut response: CachedResponse,
        expires: Option<SystemTime>,
    ) -> Result<()> {
        response.expires = expires;
        response.from_cache = false;
        redact_response(&mut response, &self.key_options.ignored_parameters);
        let aliases: Vec<String> = response
            .history
            .iter()
            .map(|r| self.create_key(&r.request))
            .collect::<Result<_>>()?;
        let at = self.storage_expiry(expires);
        self.responses.set_expiring_at(key, response, at).await?;
        for alias in aliases.iter().filter(|a| *a != key) {
            self.redirects
                .set_expiring_at(alias, key.to_owned(), at)
                .await?;
        }
        Ok(())
    }

    /// The response saved under `key`, following a redirect alias if `key` is one. Expired
    /// responses are returned (check [`CachedResponse::is_expired`]) until their grace period
    /// ends, and not after, to the millisecond (DynamoDB's TTL works in whole seconds).
    ///
    /// # Errors
    ///
    /// [`Error::EmptyKey`] or [`Error::KeyTooLong`] for an invalid `key`; the
    /// [decoding errors](Error#decoding-errors) for an entry (response or redirect alias) that
    /// cannot be read with the cache's settings; the [request errors](Error#request-errors).
    pub async fn get_response(&self, key: &str) -> Result<Option<CachedResponse>> {
        let found = match self.responses.get(key).await? {
            Some(r) => Some(r),
            None => match self.redirects.get(key).await? {
                Some(target) => self.responses.get(&target).await?,
                None => None,
            },
        };
        let now = SystemTime::now();
        Ok(found.filter(|r| !self.is_gone(r, now)).map(|mut r| {
            r.set_from_cache(true);
            r
        }))
    }

    /// The cached response to `request`, if any.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] when the request URL is not an absolute URL; the
    /// [decoding errors](Error#decoding-errors) and the [request errors](Error#request-errors), as
    /// [`get_response`](Self::get_response).
    pub fn get_response_for<R: KeySource + ?Sized>(
        &self,
        request: &R,
    ) -> impl Future<Output = Result<Option<CachedResponse>>> + Send + '_ {
        let key = self.create_key(request);
        async move { self.get_response(&key?).await }
    }

    /// Whether a response (or a redirect alias) is saved under `key`.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyKey`] or [`Error::KeyTooLong`] for an invalid `key`; the
    /// [request errors](Error#request-errors).
    pub async fn contains(&self, key: &str) -> Result<bool> {
        Ok(self.responses.contains_key(key).await? || self.redirects.contains_key(key).await?)
    }

    /// Whether a response to `request` is saved.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] when the request URL is not an absolute URL; the
    /// [request errors](Error#request-errors).
    pub fn contains_request<R: KeySource + ?Sized>(
        &self,
        request: &R,
    ) -> impl Future<Output = Result<bool>> + Send + '_ {
        let key = self.create_key(request);
        async move { self.contains(&key?).await }
    }

    /// Whether a response to `method url` is saved.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] when `url` is not an absolute URL; the
    /// [request errors](Error#request-errors).
    pub async fn has_url(&self, url: &str, method: &str) -> Result<bool> {
        self.contains(&self.url_key(url, method)?).await
    }

    /// Deletes the response to `method url`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] when `url` is not an absolute URL; the
    /// [request errors](Error#request-errors).
    pub async fn delete_url(&self, url: &str, method: &str) -> Result<()> {
        self.delete_urls([url], method).await
    }

    /// Deletes the responses to `method` requests for these URLs.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] when a URL is not absolute (before any request); the
    /// [request errors](Error#request-errors).
    pub fn delete_urls<S: AsRef<str>>(
        &self,
        urls: impl IntoIterator<Item = S>,
        method: &str,
    ) -> impl Future<Output = Result<()>> + Send + '_ {
        let keys = urls
            .into_iter()
            .map(|u| self.url_key(u.as_ref(), method))
            .collect::<Result<Vec<_>>>();
        async move {
            self.delete(DeleteFilter {
                keys: keys?,
                ..DeleteFilter::default()
            })
            .await
        }
    }

    /// Deletes every response matching any condition of `filter`, and the redirect aliases
    /// pointing to them. A key (or URL) that is itself a redirect alias deletes only that
    /// alias, never the response it points to. Keys that are not there are not errors.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] for a URL of `filter.requests` or `filter.urls` that is not absolute;
    /// [`Error::EmptyKey`] or [`Error::KeyTooLong`] for an invalid key in `filter.keys`;
    /// [`Error::Conflict`] when other writers kept replacing a large response while it was read;
    /// the [request errors](Error#request-errors). Entries that cannot be decoded are never an
    /// error here: they are skipped, or deleted with `filter.invalid`.
    pub async fn delete(&self, filter: DeleteFilter) -> Result<()> {
        let mut doomed: BTreeSet<String> = filter.keys.iter().cloned().collect();
        for request in &filter.requests {
            doomed.insert(self.create_key(request)?);
        }
        for url in &filter.urls {
            doomed.insert(self.url_key(url, "GET")?);
        }
        // A key that is a redirect alias deletes that alias only: an alias resolves lookups,
        // it never widens a delete to the response another URL redirected to.
        if filter.expired || filter.invalid || filter.older_than.is_some() {
            let cutoff = filter
                .older_than
                .and_then(|d| SystemTime::now().checked_sub(d));
            let mut items = self.responses.items();
            while let Some(item) = items.next().await {
                match item {
                    Ok((key, r)) => {
                        let old = cutoff.is_some_and(|c| r.created_at < c);
                        if (filter.expired && r.is_expired()) || old {
                            doomed.insert(key);
                        }
                    }
                    Err(e) if filter.invalid => match invalid_key(&e) {
                        Some(key) => {
                            doomed.insert(key.to_owned());
                        }
                        None => return Err(e),
                    },
                    Err(e) if invalid_key(&e).is_some() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if doomed.is_empty() {
            return Ok(());
        }
        let mut aliases = Vec::new();
        let mut items = self.redirects.items();
        while let Some(item) = items.next().await {
            match item {
                Ok((alias, target)) if doomed.contains(&target) || doomed.contains(&alias) => {
                    aliases.push(alias)
                }
                Ok(_) => {}
                Err(e) if filter.invalid && invalid_key(&e).is_some() => {
                    aliases.extend(invalid_key(&e).map(str::to_owned));
                }
                Err(e) if invalid_key(&e).is_some() => {}
                Err(e) => return Err(e),
            }
        }
        self.responses.bulk_delete(&doomed).await?;
        self.redirects.bulk_delete(&aliases).await
    }

    /// A lazy stream of the saved responses that `filter` selects.
    pub fn filter(&self, filter: Selection) -> ResponseStream {
        let cutoff = filter
            .older_than
            .and_then(|d| SystemTime::now().checked_sub(d));
        self.responses
            .items()
            .filter_map(move |item| {
                let selected = match item {
                    Ok((_, mut r)) => {
                        let wanted = if r.is_expired() {
                            filter.expired
                        } else {
                            filter.valid
                        };
                        let old_enough = cutoff.is_none_or(|c| r.created_at < c);
                        (wanted && old_enough).then(|| {
                            r.set_from_cache(true);
                            Ok(r)
                        })
                    }
                    Err(e) => match invalid_key(&e) {
                        Some(key) if filter.invalid => Some(Ok(CachedResponse {
                            url: key.to_owned(),
                            ..CachedResponse::default()
                        })),
                        Some(_) => None,
                        None => Some(Err(e)),
                    },
                };
                std::future::ready(selected)
            })
            .boxed()
    }

    /// The distinct URLs of the saved responses, sorted.
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`] when other writers kept replacing a large response while it was read;
    /// the [request errors](Error#request-errors). Entries that cannot be decoded are skipped.
    pub async fn urls(&self) -> Result<Vec<String>> {
        let mut urls = BTreeSet::new();
        let mut responses = self.filter(Selection::default());
        while let Some(r) = responses.next().await {
            urls.insert(r?.url);
        }
        Ok(urls.into_iter().collect())
    }

    /// The number of saved responses that `filter` selects. The default filter (every readable
    /// response) is a `COUNT` query that transfers no response; any other reads them all.
    ///
    /// # Errors
    ///
    /// The [request errors](Error#request-errors); with a filter other than the default,
    /// [`Error::Conflict`] when other writers kept replacing a large response while it was read.
    /// Entries that cannot be decoded are counted only when `filter.invalid` selects them.
    pub async fn response_count(&self, filter: Selection) -> Result<usize> {
        if filter == Selection::default() {
            return self.responses.len().await;
        }
        let mut n = 0;
        let mut responses = self.filter(filter);
        while let Some(r) = responses.next().await {
            r?;
            n += 1;
        }
        Ok(n)
    }

    /// Sets a new expiry, relative to now, on every saved response.
    ///
    /// # Errors
    ///
    /// The [decoding errors](Error#decoding-errors) for the first response that cannot be read (the
    /// responses before it have their new expiry); [`Error::Config`] when a response expires and
    /// expiry is turned off on the cache's map (`ttl(false)` through [`CacheBuilder::dict`]); the
    /// [request errors](Error#request-errors).
    pub async fn reset_expiration(&self, expire_after: ExpireAfter) -> Result<()> {
        let now = SystemTime::now();
        let expires = expire_after.expires_at(now);
        let mut items = self.responses.items();
        while let Some(item) = items.next().await {
            let (key, r) = item?;
            self.store(&key, r, expires).await?;
        }
        Ok(())
    }

    /// Deletes expired and invalid responses; with `expire_after`, first resets every
    /// response's expiry to it (as requests-cache does).
    ///
    /// # Errors
    ///
    /// With `expire_after`, the errors of [`reset_expiration`](Self::reset_expiration) (which stops
    /// at an entry that cannot be decoded, before anything is deleted); then [`Error::Conflict`]
    /// when other writers kept replacing a large response while it was read; the
    /// [request errors](Error#request-errors).
    pub async fn remove_expired_responses(&self, expire_after: Option<ExpireAfter>) -> Result<()> {
        if let Some(expire_after) = expire_after {
            self.reset_expiration(expire_after).await?;
        }
        self.delete(DeleteFilter {
            expired: true,
            invalid: true,
            ..DeleteFilter::default()
        })
        .await
    }

    /// Re-keys every response with the current key settings (after changing `match_headers` or
    /// `ignored_parameters`), keeping its expiry. Returns how many moved.
    ///
    /// # Errors
    ///
    /// The [decoding errors](Error#decoding-errors) for the first response that cannot be read;
    /// [`Error::InvalidUrl`] for a stored request whose URL is not absolute (saved under an
    /// explicit key); [`Error::Config`] when a response expires and expiry is turned off on the
    /// cache's map (`ttl(false)` through [`CacheBuilder::dict`]); the
    /// [request errors](Error#request-errors). Responses moved before the error stay moved, under
    /// both keys.
    pub async fn recreate_keys(&self) -> Result<usize> {
        let mut moved = 0;
        let mut old_keys = Vec::new();
        let mut seen = HashSet::new();
        let mut items = self.responses.items();
        while let Some(item) = items.next().await {
            let (key, r) = item?;
            let new_key = self.create_key(&r.request)?;
            seen.insert(new_key.clone());
            if new_key != key {
                let expires = r.expires;
                self.store(&new_key, r, expires).await?;
                old_keys.push(key);
                moved += 1;
            }
        }
        old_keys.retain(|k| !seen.contains(k));
        self.responses.bulk_delete(&old_keys).await?;
        Ok(moved)
    }

    /// Copies every response and redirect alias of `other` into this cache.
    ///
    /// # Errors
    ///
    /// The [decoding errors](Error#decoding-errors) for the first entry of `other` that cannot be
    /// read with `other`'s settings; [`Error::Config`] when a response expires and expiry is turned
    /// off on the cache's map (`ttl(false)` through [`CacheBuilder::dict`]); the
    /// [request errors](Error#request-errors).
    pub async fn update(&self, other: &AsyncDynamoDbCache) -> Result<()> {
        let mut items = other.responses.items();
        while let Some(item) = items.next().await {
            let (key, r) = item?;
            let expires = r.expires;
            self.store(&key, r, expires).await?;
        }
        let mut aliases = Vec::new();
        let mut items = other.redirects.items();
        while let Some(item) = items.next().await {
            aliases.push(item?);
        }
        self.redirects.insert_many(aliases).await
    }

    /// Deletes every response and redirect alias.
    ///
    /// # Errors
    ///
    /// The [request errors](Error#request-errors).
    pub async fn clear(&self) -> Result<()> {
        self.responses.clear().await?;
        self.redirects.clear().await
    }
}

/// The key named by a decoding error, if it is one.
fn invalid_key(err: &Error) -> Option<&str> {
    match err {
        Error::Deserialize { key, .. }
        | Error::SerializerMismatch { key, .. }
        | Error::BadSignature { key } => Some(key),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// Compile-time check: the cache's futures are `Send`. (Never run.)
    #[allow(dead_code)]
    fn futures_are_send(cache: &AsyncDynamoDbCache, response: &CachedResponse) {
        let request = CachedRequest::new("GET", "https://example.com/");
        assert_send(&cache.save_response(response, None, None));
        assert_send(&cache.get_response("k"));
        assert_send(&cache.get_response_for(&request));
        assert_send(&cache.contains_request(&request));
        assert_send(&cache.delete_urls(["https://example.com/"], "GET"));
        assert_send(&cache.delete(DeleteFilter::default()));
        assert_send(&cache.filter(Selection::default()));
        assert_send(&cache.response_count(Selection::unexpired()));
        assert_send(&cache.recreate_keys());
        assert_send(&cache.update(cache));
        assert_send(&cache.clear());
    }
}
