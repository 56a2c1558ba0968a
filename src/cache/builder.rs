//! [`CacheBuilder`]: the settings of a response cache and of the map under it.

use std::fmt;
use std::time::Duration;

use super::async_cache::AsyncDynamoDbCache;
use super::blocking::DynamoDbCache;
use super::key::{KeyOptions, MatchHeaders};
use super::policy::{CachePolicy, ExpireAfter};
use super::response::CachedResponse;
use crate::config::DictBuilder;
use crate::engine::Timeouts;
use crate::serializer::Serializer;
use crate::{AsyncDynamoDbDict, Error, Result};

/// Default salt for signed cache entries.
pub const DEFAULT_SALT: &str = "dynamodict-cache";

/// Builds a [`DynamoDbCache`] ([`build`](Self::build)) or an [`AsyncDynamoDbCache`]
/// ([`build_async`](Self::build_async)). Get one from [`DynamoDbCache::builder`] or
/// [`AsyncDynamoDbCache::builder`].
///
/// ```
/// use std::time::Duration;
/// use dynamodict::cache::{CachedRequest, CachedResponse, DynamoDbCache, ExpireAfter};
///
/// let cache = DynamoDbCache::builder("doc-http-cache")
///     .namespace("doc-builder") // namespaces "doc-builder.responses" and "doc-builder.redirects"
///     .expire_after(ExpireAfter::After(Duration::from_secs(600)))
///     .urls_expire_after("*.example.com/static/", ExpireAfter::Never) // the first match wins
///     .urls_expire_after("*.example.com/private/", ExpireAfter::DoNotCache)
///     .allowed_codes([200, 404])
///     .secret_key("a long random secret") // entries are signed: tampering is detected
///     .local()
///     .build()?;
///
/// let save = |url: &str, status| {
///     let response = CachedResponse::new(CachedRequest::new("GET", url), status, b"..".to_vec());
///     cache.save_response(&response, None, None)
/// };
/// let expires = |key: &str| cache.get_response(key).map(|r| r.expect("saved").expires);
///
/// let css = save("https://cdn.example.com/static/app.css", 200)?.expect("saved");
/// assert_eq!(expires(&css)?, None); // never expires
/// let missing = save("https://www.example.com/missing", 404)?.expect("404 is allowed");
/// assert!(expires(&missing)?.is_some()); // in 10 minutes
/// assert_eq!(save("https://www.example.com/oops", 500)?, None); // 500 is not
/// assert_eq!(save("https://www.example.com/private/me", 200)?, None); // DoNotCache
/// # Ok::<(), dynamodict::Error>(())
/// ```
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
    pub(super) fn new(table: impl Into<String>) -> Self {
        CacheBuilder {
            dict: DictBuilder::new(table),
            namespace: "http_cache".into(),
            policy: CachePolicy::default(),
            key_options: KeyOptions::default(),
            serializer: Serializer::document(),
            secret: None,
            ttl_grace: None,
            error: None,
        }
    }

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

    /// `ttl_grace(grace)` unless it was set.
    #[cfg(feature = "reqwest")]
    pub(crate) fn ttl_grace_unless_set(mut self, grace: Duration) -> Self {
        self.ttl_grace.get_or_insert(grace);
        self
    }

    /// Any setting of the underlying map (connection, table creation, timeouts, ...).
    pub fn dict(
        mut self,
        f: impl FnOnce(DictBuilder<CachedResponse>) -> DictBuilder<CachedResponse>,
    ) -> Self {
        self.dict = f(self.dict);
        self
    }

    /// See [`DictBuilder::region`].
    pub fn region(self, region: impl Into<String>) -> Self {
        self.dict(|d| d.region(region))
    }

    /// See [`DictBuilder::endpoint_url`].
    pub fn endpoint_url(self, url: impl Into<String>) -> Self {
        self.dict(|d| d.endpoint_url(url))
    }

    /// See [`DictBuilder::sdk_config`].
    pub fn sdk_config(self, config: &aws_config::SdkConfig) -> Self {
        self.dict(|d| d.sdk_config(config))
    }

    /// See [`DictBuilder::client`].
    pub fn client(self, client: &aws_sdk_dynamodb::Client) -> Self {
        self.dict(|d| d.client(client))
    }

    /// See [`DictBuilder::open_mode`].
    pub fn open_mode(self, mode: crate::OpenMode) -> Self {
        self.dict(|d| d.open_mode(mode))
    }

    /// See [`DictBuilder::timeouts`].
    pub fn timeouts(self, timeouts: Timeouts) -> Self {
        self.dict(|d| d.timeouts(timeouts))
    }

    /// See [`DictBuilder::local`].
    #[cfg(feature = "local")]
    pub fn local(self) -> Self {
        self.dict(DictBuilder::local)
    }

    /// Connects, opens the table as [`open_mode`](Self::open_mode) says and returns the
    /// blocking cache.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a URL pattern given to [`urls_expire_after`](Self::urls_expire_after)
    /// that is not a valid glob, or for a [`salt`](Self::salt) without a
    /// [`secret_key`](Self::secret_key); [`Error::InvalidNamespace`] for a namespace that is not
    /// allowed; then the errors of the map's [`DictBuilder::build`].
    pub fn build(self) -> Result<DynamoDbCache> {
        let (dict, finish) = self.split()?;
        let responses = dict.build()?;
        Ok(DynamoDbCache::from(finish.assemble(responses.to_async())))
    }

    /// Connects, opens the table as [`open_mode`](Self::open_mode) says and returns the async cache, on the caller's
    /// runtime.
    ///
    /// # Errors
    ///
    /// The errors of [`build`](Self::build). The future must run inside a tokio runtime (with IO
    /// and time enabled).
    pub async fn build_async(self) -> Result<AsyncDynamoDbCache> {
        let (dict, finish) = self.split()?;
        let responses = dict.build_async().await?;
        Ok(finish.assemble(responses))
    }

    /// Checks the settings; returns the responses map's builder and what the cache is
    /// assembled from once that map is open.
    fn split(self) -> Result<(DictBuilder<CachedResponse>, Finish)> {
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
        let dict = self
            .dict
            .cache_namespace(format!("{}.responses", self.namespace))
            .serializer(serializer);
        let finish = Finish {
            redirects_namespace: format!("{}.redirects", self.namespace),
            redirect_serializer,
            policy: self.policy,
            key_options: self.key_options,
            ttl_grace: self.ttl_grace.unwrap_or_default(),
        };
        Ok((dict, finish))
    }
}

/// The rest of a cache, once its responses map is open.
struct Finish {
    redirects_namespace: String,
    redirect_serializer: Serializer,
    policy: CachePolicy,
    key_options: KeyOptions,
    ttl_grace: Duration,
}

impl Finish {
    fn assemble(self, responses: AsyncDynamoDbDict<CachedResponse>) -> AsyncDynamoDbCache {
        let redirects = responses.sibling(&self.redirects_namespace, self.redirect_serializer);
        AsyncDynamoDbCache {
            responses,
            redirects,
            policy: self.policy,
            key_options: self.key_options,
            ttl_grace: self.ttl_grace,
        }
    }
}
