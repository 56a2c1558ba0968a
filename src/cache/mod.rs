//! [`DynamoDbCache`]: HTTP response bookkeeping on top of [`DynamoDbDict`].
//!
//! Responses ([`CachedResponse`]) are stored in one namespace of the table, keyed by
//! [`create_key`]; redirect aliases (the key of a request that was redirected, pointing to the
//! key of the final response) in a second namespace, so they survive a restart. Expiry follows
//! the [`CachePolicy`], and the item's DynamoDB TTL follows the response's expiry (plus an
//! optional grace period during which stale responses can still be read and revalidated), so
//! DynamoDB deletes expired responses by itself.
//!
//! ```
//! use dynamodict::cache::{CachedRequest, CachedResponse, DynamoDbCache, ExpireAfter};
//! use std::time::Duration;
//!
//! let cache = DynamoDbCache::builder("doc-http-cache")
//!     .expire_after(ExpireAfter::After(Duration::from_secs(3600)))
//!     .ignored_parameters(["api_key"])
//!     .local()
//!     .build()?;
//!
//! let request = CachedRequest::new("GET", "https://example.com/data?api_key=SECRET&b=2&a=1");
//! let response = CachedResponse::new(request.clone(), 200, b"hello".to_vec());
//! let key = cache.save_response(&response, None, None)?.expect("200 GET is cacheable");
//! assert_eq!(key, cache.create_key(&request)?);
//!
//! let cached = cache.get_response(&key)?.expect("just saved");
//! assert!(cached.is_from_cache() && !cached.is_expired());
//! assert_eq!(cached.body, b"hello");
//! assert!(!cached.request.url.contains("SECRET")); // ignored parameters are redacted
//! # Ok::<(), dynamodict::Error>(())
//! ```

pub mod key;
pub mod policy;
pub mod response;

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::time::{Duration, SystemTime};

pub use key::{
    KeyOptions, KeySource, MatchHeaders, create_key, normalize_url, redact, redact_response,
};
pub use policy::{
    CacheDirectives, CachePolicy, ExpireAfter, ResponseFilter, UrlPattern, UrlsExpireAfter,
};
pub use response::{CachedRequest, CachedResponse, Headers, HttpVersion};

use crate::config::DictBuilder;
use crate::engine::Timeouts;
use crate::serializer::Serializer;
use crate::{DynamoDbDict, Error, Result};

/// Default salt for signed cache entries.
pub const DEFAULT_SALT: &str = "dynamodict-cache";

/// Builds a [`DynamoDbCache`]. Get one from [`DynamoDbCache::builder`].
pub struct CacheBuilder {
    dict: DictBuilder<CachedResponse>,
    namespace: String,
    policy: CachePolicy,
    key_options: KeyOptions,
    serializer: Serializer,
    secret: Option<(Vec<u8>, Vec<u8>)>,
    ttl_grace: Option<Duration>,
    error: Option<Error>,
}

impl fmt::Debug for CacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("dict", &self.dict)
            .field("namespace", &self.namespace)
            .field("policy", &self.policy)
            .field("key_options", &self.key_options)
            .field("serializer", &self.serializer)
            .field("secret_key", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("ttl_grace", &self.ttl_grace)
            .finish()
    }
}

impl CacheBuilder {
    /// Responses go in namespace `<namespace>.responses`, redirect aliases in
    /// `<namespace>.redirects` (default namespace `http_cache`).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Default expiry of saved responses (default [`ExpireAfter::Never`]).
    pub fn expire_after(mut self, expire_after: ExpireAfter) -> Self {
        self.policy.expire_after = expire_after;
        self
    }

    /// Expiry for URLs matching a glob pattern (scheme omitted, e.g. `"*.example.com/api/*"`);
    /// the first matching rule wins, in the order added.
    pub fn urls_expire_after(mut self, pattern: &str, expire_after: ExpireAfter) -> Self {
        if let Err(e) = self.policy.urls_expire_after.push(pattern, expire_after) {
            self.error.get_or_insert(e);
        }
        self
    }

    /// Status codes whose responses are saved (default `[200]`).
    pub fn allowed_codes(mut self, codes: impl IntoIterator<Item = u16>) -> Self {
        self.policy.allowed_codes = codes.into_iter().collect();
        self
    }

    /// Request methods whose responses are saved (default `GET`, `HEAD`).
    pub fn allowed_methods<S: Into<String>>(
        mut self,
        methods: impl IntoIterator<Item = S>,
    ) -> Self {
        self.policy.allowed_methods = methods.into_iter().map(Into::into).collect();
        self
    }

    /// Which request headers are part of the cache key (default none).
    pub fn match_headers(mut self, match_headers: MatchHeaders) -> Self {
        self.key_options = self.key_options.match_headers(match_headers);
        self
    }

    /// Request parameters (query, JSON/form body, headers) left out of the cache key and
    /// **redacted** from the stored request, so API keys and tokens never reach the table.
    pub fn ignored_parameters<S: Into<String>>(
        mut self,
        names: impl IntoIterator<Item = S>,
    ) -> Self {
        self.key_options = self
            .key_options
            .ignored_parameters(names.into_iter().map(Into::into));
        self
    }

    /// Honour `Cache-Control` (`max-age`, `no-store`, `no-cache`, `immutable`) and `Expires`
    /// response headers (default off, as in requests-cache).
    pub fn cache_control(mut self, enabled: bool) -> Self {
        self.policy.cache_control = enabled;
        self
    }

    /// Save a response only if `filter` returns `true`.
    pub fn filter(
        mut self,
        filter: impl Fn(&CachedResponse) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.policy = self.policy.with_filter(filter);
        self
    }

    /// Sign entries with HMAC-SHA256 (salt [`DEFAULT_SALT`] unless [`salt`](Self::salt) is
    /// set): tampered entries fail with [`Error::BadSignature`].
    pub fn secret_key(mut self, secret: impl AsRef<[u8]>) -> Self {
        let salt = self
            .secret
            .take()
            .map_or_else(|| DEFAULT_SALT.as_bytes().to_vec(), |(_, s)| s);
        self.secret = Some((secret.as_ref().to_vec(), salt));
        self
    }

    /// The salt for [`secret_key`](Self::secret_key).
    pub fn salt(mut self, salt: impl AsRef<[u8]>) -> Self {
        let secret = self.secret.take().map(|(k, _)| k).unwrap_or_default();
        self.secret = Some((secret, salt.as_ref().to_vec()));
        self
    }

    /// The serializer (default [`Serializer::document`]: entries are browsable in the AWS
    /// console; [`Serializer::bincode`] is smaller and faster).
    pub fn serializer(mut self, serializer: Serializer) -> Self {
        self.serializer = serializer;
        self
    }

    /// Keep expired responses readable this long after they expire, so they can be revalidated
    /// (default zero: DynamoDB's TTL equals the response's expiry).
    pub fn ttl_grace(mut self, grace: Duration) -> Self {
        self.ttl_grace = Some(grace);
        self
    }

    /// Any setting of the underlying map (connection, table creation, timeouts, ...).
    pub fn with_dict(
        mut self,
        f: impl FnOnce(DictBuilder<CachedResponse>) -> DictBuilder<CachedResponse>,
    ) -> Self {
        self.dict = f(self.dict);
        self
    }

    /// See [`DictBuilder::region`].
    pub fn region(self, region: impl Into<String>) -> Self {
        self.with_dict(|d| d.region(region))
    }

    /// See [`DictBuilder::endpoint_url`].
    pub fn endpoint_url(self, url: impl Into<String>) -> Self {
        self.with_dict(|d| d.endpoint_url(url))
    }

    /// See [`DictBuilder::sdk_config`].
    pub fn sdk_config(self, config: &aws_config::SdkConfig) -> Self {
        self.with_dict(|d| d.sdk_config(config))
    }

    /// See [`DictBuilder::client`].
    pub fn client(self, client: &aws_sdk_dynamodb::Client) -> Self {
        self.with_dict(|d| d.client(client))
    }

    /// See [`DictBuilder::timeouts`].
    pub fn timeouts(self, timeouts: Timeouts) -> Self {
        self.with_dict(|d| d.timeouts(timeouts))
    }

    /// See [`DictBuilder::local`].
    #[cfg(feature = "local")]
    pub fn local(self) -> Self {
        self.with_dict(DictBuilder::local)
    }

    /// Connects and returns the cache.
    pub fn build(self) -> Result<DynamoDbCache> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self
            .secret
            .as_ref()
            .is_some_and(|(secret, _)| secret.is_empty())
        {
            return Err(Error::Config(
                "the cache's secret key is empty (was `salt()` called without `secret_key()`?): \
                 entries would be signed with a key anyone knows; call `secret_key(..)` with a \
                 long random secret, or drop `salt()`"
                    .into(),
            ));
        }
        let serializer = match &self.secret {
            Some((secret, salt)) => self.serializer.signed(secret, salt),
            None => self.serializer,
        };
        let redirect_serializer = match &self.secret {
            Some((secret, salt)) => Serializer::bincode().signed(secret, salt),
            None => Serializer::bincode(),
        };
        crate::layout::validate_namespace_text(&self.namespace)?;
        let responses = self
            .dict
            .cache_namespace(format!("{}.responses", self.namespace))
            .serializer(serializer)
            .build()?;
        let redirects = responses.sibling(
            &format!("{}.redirects", self.namespace),
            redirect_serializer,
        );
        Ok(DynamoDbCache {
            responses,
            redirects,
            policy: self.policy,
            key_options: self.key_options,
            ttl_grace: self.ttl_grace.unwrap_or_default(),
        })
    }
}

/// What [`DynamoDbCache::delete`] removes: the union of every condition given.
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

/// An HTTP response cache stored in DynamoDB (see the [module docs](self)).
///
/// `Send + Sync`, cheap to clone.
#[derive(Clone)]
pub struct DynamoDbCache {
    responses: DynamoDbDict<CachedResponse>,
    redirects: DynamoDbDict<String>,
    policy: CachePolicy,
    key_options: KeyOptions,
    ttl_grace: Duration,
}

impl fmt::Debug for DynamoDbCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoDbCache")
            .field("responses", &self.responses)
            .field("redirects", &self.redirects)
            .field("policy", &self.policy)
            .field("key_options", &self.key_options)
            .field("ttl_grace", &self.ttl_grace)
            .finish()
    }
}

impl DynamoDbCache {
    /// Starts building a cache stored in `table`.
    pub fn builder(table: impl Into<String>) -> CacheBuilder {
        CacheBuilder {
            dict: DynamoDbDict::builder(table),
            namespace: "http_cache".into(),
            policy: CachePolicy::default(),
            key_options: KeyOptions::default(),
            serializer: Serializer::document(),
            secret: None,
            ttl_grace: None,
            error: None,
        }
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
        &self.policy
    }

    /// The cache key of a request (see [`create_key`]).
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
    pub fn save_response(
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
        self.store(&key, response.clone(), expires)?;
        Ok(Some(key))
    }

    fn store(
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
        self.responses.set_expiring_at(key, &response, at)?;
        for alias in aliases.iter().filter(|a| *a != key) {
            self.redirects.set_expiring_at(alias, &key.to_owned(), at)?;
        }
        Ok(())
    }

    /// The response saved under `key`, following a redirect alias if `key` is one. Expired
    /// responses are returned (check [`CachedResponse::is_expired`]) until their grace period
    /// ends, and not after, to the millisecond (DynamoDB's TTL works in whole seconds).
    pub fn get_response(&self, key: &str) -> Result<Option<CachedResponse>> {
        let found = match self.responses.get(key)? {
            Some(r) => Some(r),
            None => match self.redirects.get(key)? {
                Some(target) => self.responses.get(&target)?,
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
    pub fn get_response_for<R: KeySource + ?Sized>(
        &self,
        request: &R,
    ) -> Result<Option<CachedResponse>> {
        self.get_response(&self.create_key(request)?)
    }

    /// Whether a response (or a redirect alias) is saved under `key`.
    pub fn contains(&self, key: &str) -> Result<bool> {
        Ok(self.responses.contains_key(key)? || self.redirects.contains_key(key)?)
    }

    /// Whether a response to `request` is saved.
    pub fn contains_request<R: KeySource + ?Sized>(&self, request: &R) -> Result<bool> {
        self.contains(&self.create_key(request)?)
    }

    /// Whether a response to `method url` is saved.
    pub fn has_url(&self, url: &str, method: &str) -> Result<bool> {
        self.contains(&self.url_key(url, method)?)
    }

    /// Deletes the response to `method url`.
    pub fn delete_url(&self, url: &str, method: &str) -> Result<()> {
        self.delete_urls([url], method)
    }

    /// Deletes the responses to `method` requests for these URLs.
    pub fn delete_urls<S: AsRef<str>>(
        &self,
        urls: impl IntoIterator<Item = S>,
        method: &str,
    ) -> Result<()> {
        let keys = urls
            .into_iter()
            .map(|u| self.url_key(u.as_ref(), method))
            .collect::<Result<Vec<_>>>()?;
        self.delete(DeleteFilter {
            keys,
            ..DeleteFilter::default()
        })
    }

    /// Deletes every response matching any condition of `filter`, and the redirect aliases
    /// pointing to them. A key (or URL) that is itself a redirect alias deletes only that
    /// alias, never the response it points to. Keys that are not there are not errors.
    pub fn delete(&self, filter: DeleteFilter) -> Result<()> {
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
            for item in self.responses.items() {
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
        for item in self.redirects.items() {
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
        self.responses.bulk_delete(&doomed)?;
        self.redirects.bulk_delete(&aliases)
    }

    /// Lazily iterates over saved responses: `valid` (unexpired), `expired`, `invalid`
    /// (undecodable with the current settings, yielded as an empty response whose URL names
    /// the key), and only those created longer ago than `older_than` when given.
    pub fn filter(
        &self,
        valid: bool,
        expired: bool,
        invalid: bool,
        older_than: Option<Duration>,
    ) -> impl Iterator<Item = Result<CachedResponse>> + use<> {
        let cutoff = older_than.and_then(|d| SystemTime::now().checked_sub(d));
        self.responses.items().filter_map(move |item| match item {
            Ok((_, mut r)) => {
                let wanted = if r.is_expired() { expired } else { valid };
                let old_enough = cutoff.is_none_or(|c| r.created_at < c);
                (wanted && old_enough).then(|| {
                    r.set_from_cache(true);
                    Ok(r)
                })
            }
            Err(e) => match invalid_key(&e) {
                Some(key) if invalid => Some(Ok(CachedResponse {
                    url: key.to_owned(),
                    ..CachedResponse::default()
                })),
                Some(_) => None,
                None => Some(Err(e)),
            },
        })
    }

    /// The distinct URLs of the saved responses, sorted.
    pub fn urls(&self) -> Result<Vec<String>> {
        let mut urls = BTreeSet::new();
        for r in self.filter(true, true, false, None) {
            urls.insert(r?.url);
        }
        Ok(urls.into_iter().collect())
    }

    /// The number of saved responses; with `check_expiry`, only unexpired ones.
    pub fn response_count(&self, check_expiry: bool) -> Result<usize> {
        if check_expiry {
            let mut n = 0;
            for r in self.filter(true, false, false, None) {
                r?;
                n += 1;
            }
            Ok(n)
        } else {
            self.responses.len()
        }
    }

    /// Sets a new expiry, relative to now, on every saved response.
    pub fn reset_expiration(&self, expire_after: ExpireAfter) -> Result<()> {
        let now = SystemTime::now();
        let expires = expire_after.expires_at(now);
        for item in self.responses.items() {
            let (key, r) = item?;
            self.store(&key, r, expires)?;
        }
        Ok(())
    }

    /// Deletes expired and invalid responses; with `expire_after`, first resets every
    /// response's expiry to it (as requests-cache does).
    pub fn remove_expired_responses(&self, expire_after: Option<ExpireAfter>) -> Result<()> {
        if let Some(expire_after) = expire_after {
            self.reset_expiration(expire_after)?;
        }
        self.delete(DeleteFilter {
            expired: true,
            invalid: true,
            ..DeleteFilter::default()
        })
    }

    /// Re-keys every response with the current key settings (after changing `match_headers` or
    /// `ignored_parameters`), keeping its expiry. Returns how many moved.
    pub fn recreate_keys(&self) -> Result<usize> {
        let mut moved = 0;
        let mut old_keys = Vec::new();
        let mut seen = HashSet::new();
        for item in self.responses.items() {
            let (key, r) = item?;
            let new_key = self.create_key(&r.request)?;
            seen.insert(new_key.clone());
            if new_key != key {
                let expires = r.expires;
                self.store(&new_key, r, expires)?;
                old_keys.push(key);
                moved += 1;
            }
        }
        old_keys.retain(|k| !seen.contains(k));
        self.responses.bulk_delete(&old_keys)?;
        Ok(moved)
    }

    /// Copies every response and redirect alias of `other` into this cache.
    pub fn update(&self, other: &DynamoDbCache) -> Result<()> {
        for item in other.responses.items() {
            let (key, r) = item?;
            let expires = r.expires;
            self.store(&key, r, expires)?;
        }
        let aliases: Vec<(String, String)> = other.redirects.items().collect::<Result<_>>()?;
        self.redirects.insert_many(aliases)
    }

    /// Deletes every response and redirect alias.
    pub fn clear(&self) -> Result<()> {
        self.responses.clear()?;
        self.redirects.clear()
    }

    /// Closes the cache. Dropping it does the same; this is for symmetry with requests-cache.
    pub fn close(self) {}
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
