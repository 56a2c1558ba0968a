//! [`DynamoDbCache`]: the response cache for blocking code, a thin shell over
//! [`AsyncDynamoDbCache`]: each method is one bridge call into the async method of the same
//! name.

use std::fmt;
use std::future::Future;
use std::time::SystemTime;

use super::async_cache::{AsyncDynamoDbCache, DeleteFilter, Selection};
use super::builder::CacheBuilder;
use super::key::KeySource;
use super::policy::{CachePolicy, ExpireAfter};
use super::response::CachedResponse;
use crate::iter::BlockingIter;
use crate::{DynamoDbDict, Result};

/// An HTTP response cache stored in DynamoDB (see the [module docs](super)), with a blocking
/// API. [`AsyncDynamoDbCache`] is the same cache for async code.
///
/// `Send + Sync`, cheap to clone.
///
/// ```
/// use dynamodict::DynamoDbCache;
/// use dynamodict::cache::{CachedRequest, CachedResponse};
///
/// let cache = DynamoDbCache::builder("doc-http-cache")
///     .namespace("doc-blocking")
///     .local() // the embedded DynamoDB Local; see the README for AWS
///     .build()?;
///
/// let request = CachedRequest::new("GET", "https://example.com/users/1");
/// let mut response = CachedResponse::new(request.clone(), 200, br#"{"name":"Ada"}"#.to_vec());
/// response.headers.insert("Content-Type", "application/json");
/// cache.save_response(&response, None, None)?;
///
/// // Later, in this process or another one: look the request up before sending it.
/// let cached = cache.get_response_for(&request)?.expect("saved above");
/// assert!(cached.is_from_cache());
/// assert_eq!(cached.status, 200);
/// assert_eq!(cached.headers.get_str("content-type"), Some("application/json"));
/// assert_eq!(cached.body, response.body);
///
/// cache.delete_url("https://example.com/users/1", "GET")?;
/// assert!(!cache.contains_request(&request)?);
/// # Ok::<(), dynamodict::Error>(())
/// ```
#[derive(Clone)]
pub struct DynamoDbCache {
    inner: AsyncDynamoDbCache,
    responses: DynamoDbDict<CachedResponse>,
    redirects: DynamoDbDict<String>,
}

impl fmt::Debug for DynamoDbCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.describe(f, "DynamoDbCache")
    }
}

impl From<AsyncDynamoDbCache> for DynamoDbCache {
    fn from(inner: AsyncDynamoDbCache) -> Self {
        DynamoDbCache {
            responses: inner.responses().to_blocking(),
            redirects: inner.redirects().to_blocking(),
            inner,
        }
    }
}

impl From<DynamoDbCache> for AsyncDynamoDbCache {
    fn from(cache: DynamoDbCache) -> Self {
        cache.inner
    }
}

impl DynamoDbCache {
    /// Starts building a cache stored in `table`.
    pub fn builder(table: impl Into<String>) -> CacheBuilder {
        CacheBuilder::new(table)
    }

    /// Runs one call of the async cache to completion.
    fn block_on<T: Send>(&self, future: impl Future<Output = Result<T>> + Send) -> Result<T> {
        self.inner.responses().connection().block_on(future)
    }

    /// The async form of this cache, sharing its configuration and table check.
    pub fn to_async(&self) -> AsyncDynamoDbCache {
        self.inner.clone()
    }

    /// The async cache this shell drives.
    pub fn as_async(&self) -> &AsyncDynamoDbCache {
        &self.inner
    }

    /// The map holding the responses.
    pub fn responses(&self) -> &DynamoDbDict<CachedResponse> {
        &self.responses
    }

    /// The map holding redirect aliases (request key -> response key).
    pub fn redirects(&self) -> &DynamoDbDict<String> {
        &self.redirects
    }

    /// The cache policy.
    pub fn policy(&self) -> &CachePolicy {
        self.inner.policy()
    }

    /// How long an entry is kept past its expiry (see [`CacheBuilder::ttl_grace`]).
    pub fn ttl_grace(&self) -> std::time::Duration {
        self.inner.ttl_grace()
    }

    /// What the cache (both its namespaces share one connection) has sent to DynamoDB so far.
    /// See [`Stats`](crate::Stats).
    pub fn stats(&self) -> crate::Stats {
        self.inner.stats()
    }

    /// Stores `response` under `key` until `expires` (`None`: never), without a policy check.
    #[cfg(feature = "reqwest")]
    pub(crate) fn store(
        &self,
        key: &str,
        response: CachedResponse,
        expires: Option<SystemTime>,
    ) -> Result<()> {
        self.block_on(self.inner.store(key, response, expires))
    }

    /// The cache key of a request (see [`create_key`](super::create_key)).
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbCache::create_key`]: [`Error::InvalidUrl`](crate::Error::InvalidUrl) when
    /// the request URL is not absolute.
    pub fn create_key<R: KeySource + ?Sized>(&self, request: &R) -> Result<String> {
        self.inner.create_key(request)
    }

    /// Saves `response` under `cache_key` (default: the key of its request) if the policy
    /// allows it (method, status, filter, `no-store`), expiring at `expires` (default: from the
    /// policy). Ignored parameters are redacted from the stored copy. Each redirect in its
    /// history gets an alias to the key. Returns the key, or `None` when not saved.
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbCache::save_response`]: a URL that is not absolute, an invalid
    /// `cache_key`, a response that cannot be encoded or is too large, the
    /// [request errors](crate::Error#request-errors).
    pub fn save_response(
        &self,
        response: &CachedResponse,
        cache_key: Option<&str>,
        expires: Option<SystemTime>,
    ) -> Result<Option<String>> {
        self.block_on(self.inner.save_response(response, cache_key, expires))
    }

    /// The response saved under `key`, following a redirect alias if `key` is one. Expired
    /// responses are returned (check [`CachedResponse::is_expired`]) until their grace period
    /// ends, and not after, to the millisecond (DynamoDB's TTL works in whole seconds).
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbCache::get_response`]: an invalid `key`, the
    /// [decoding errors](crate::Error#decoding-errors), the
    /// [request errors](crate::Error#request-errors).
    pub fn get_response(&self, key: &str) -> Result<Option<CachedResponse>> {
        self.block_on(self.inner.get_response(key))
    }

    /// The cached response to `request`, if any.
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbCache::get_response_for`]:
    /// [`Error::InvalidUrl`](crate::Error::InvalidUrl), the
    /// [decoding errors](crate::Error#decoding-errors), the
    /// [request errors](crate::Error#request-errors).
    pub fn get_response_for<R: KeySource + ?Sized>(
        &self,
        request: &R,
    ) -> Result<Option<CachedResponse>> {
        self.block_on(self.inner.get_response_for(request))
    }

    /// Whether a response (or a redirect alias) is saved under `key`.
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbCache::contains`]: an invalid `key`, the
    /// [request errors](crate::Error#request-errors).
    pub fn contains(&self, key: &str) -> Result<bool> {
        self.block_on(self.inner.contains(key))
    }

    /// Whether a response to `request` is saved.
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbCache::contains_request`]:
    /// [`Error::InvalidUrl`](crate::Error::InvalidUrl), the
    /// [request errors](crate::Error#request-errors).
    pub fn contains_request<R: KeySource + ?Sized>(&self, request: &R) -> Result<bool> {
        self.block_on(self.inner.contains_request(request))
    }

    /// Whether a response to `method url` is saved.
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbCache::has_url`]: [`Error::InvalidUrl`](crate::Error::InvalidUrl), the
    /// [request errors](crate::Error#request-errors).
    pub fn has_url(&self, url: &str, method: &str) -> Result<bool> {
        self.block_on(self.inner.has_url(url, method))
    }

    /// Deletes the response to `method url` (only that URL's own entry: if it is a redirect
    /// alias, the alias, never the response another URL redirected to).
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbCache::delete_url`]: [`Error::InvalidUrl`](crate::Error::InvalidUrl), the
    /// [request errors](crate::Error#request-errors).
    pub fn delete_url(&self, url: &str, method: &str) -> Result<()> {
        self.block_on(self.inner.delete_url(url, method))
    }

    /// Deletes the responses to `method` requests for these URLs.
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbCache::delete_urls`]: [`Error::InvalidUrl`](crate::Error::InvalidUrl), the
    /// [request errors](crate::Error#request-errors).
    pub fn delete_urls<S: AsRef<str>>(
        &self,
        urls: impl IntoIterator<Item = S>,
        method: &str,
    ) -> Result<()> {
        self.block_on(self.inner.delete_urls(urls, method))
    }

    /// Deletes every response matching any condition of `filter`, and the redirect aliases
    /// pointing to them. A key (or URL) that is itself a redirect alias deletes only that
    /// alias, never the response it points to. Keys that are not there are not errors.
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbCache::delete`]: a URL that is not absolute, an invalid key,
    /// [`Error::Conflict`](crate::Error::Conflict), the
    /// [request errors](crate::Error#request-errors).
    pub fn delete(&self, filter: DeleteFilter) -> Result<()> {
        self.block_on(self.inner.delete(filter))
    }

    /// Lazily iterates over the saved responses that `filter` selects.
    pub fn filter(
        &self,
        filter: Selection,
    ) -> impl Iterator<Item = Result<CachedResponse>> + use<> {
        BlockingIter::new(
            self.inner.filter(filter),
            self.inner.responses().shared_connection(),
        )
    }

    /// The distinct URLs of the saved responses, sorted.
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbCache::urls`]: [`Error::Conflict`](crate::Error::Conflict), the
    /// [request errors](crate::Error#request-errors).
    pub fn urls(&self) -> Result<Vec<String>> {
        self.block_on(self.inner.urls())
    }

    /// The number of saved responses that `filter` selects. The default filter (every readable
    /// response) is a `COUNT` query that transfers no response; any other reads them all.
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbCache::response_count`]: the
    /// [request errors](crate::Error#request-errors), [`Error::Conflict`](crate::Error::Conflict).
    pub fn response_count(&self, filter: Selection) -> Result<usize> {
        self.block_on(self.inner.response_count(filter))
    }

    /// Sets a new expiry, relative to now, on every saved response.
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbCache::reset_expiration`]: the
    /// [decoding errors](crate::Error#decoding-errors), the
    /// [request errors](crate::Error#request-errors).
    pub fn reset_expiration(&self, expire_after: ExpireAfter) -> Result<()> {
        self.block_on(self.inner.reset_expiration(expire_after))
    }

    /// Deletes expired and invalid responses; with `expire_after`, first resets every
    /// response's expiry to it (as requests-cache does).
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbCache::remove_expired_responses`]: the
    /// [decoding errors](crate::Error#decoding-errors) (with `expire_after`),
    /// [`Error::Conflict`](crate::Error::Conflict), the
    /// [request errors](crate::Error#request-errors).
    pub fn remove_expired_responses(&self, expire_after: Option<ExpireAfter>) -> Result<()> {
        self.block_on(self.inner.remove_expired_responses(expire_after))
    }

    /// Re-keys every response with the current key settings (after changing `match_headers` or
    /// `ignored_parameters`), keeping its expiry. Returns how many moved.
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbCache::recreate_keys`]: the
    /// [decoding errors](crate::Error#decoding-errors),
    /// [`Error::InvalidUrl`](crate::Error::InvalidUrl), the
    /// [request errors](crate::Error#request-errors).
    pub fn recreate_keys(&self) -> Result<usize> {
        self.block_on(self.inner.recreate_keys())
    }

    /// Copies every response and redirect alias of `other` into this cache.
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbCache::update`]: the [decoding errors](crate::Error#decoding-errors), the
    /// [request errors](crate::Error#request-errors).
    pub fn update(&self, other: &DynamoDbCache) -> Result<()> {
        self.block_on(self.inner.update(&other.inner))
    }

    /// Deletes every response and redirect alias.
    ///
    /// # Errors
    ///
    /// As [`AsyncDynamoDbCache::clear`]: the [request errors](crate::Error#request-errors).
    pub fn clear(&self) -> Result<()> {
        self.block_on(self.inner.clear())
    }
}
