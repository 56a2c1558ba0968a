//! [`SessionBuilder`]: the settings of a [`CachedSession`].

use std::fmt;
use std::time::Duration;

use reqwest::blocking::Client;

use super::cached_session::{CachedSession, outside_async};
use super::freshness::Freshness;
use crate::cache::{CacheBuilder, DynamoDbCache};
use crate::{Error, Result};

/// How long a session's cache keeps an entry past its expiry by default, so that it can be
/// revalidated (a `304` costs no body) or served under `stale-if-error`.
pub const DEFAULT_SESSION_GRACE: Duration = Duration::from_secs(24 * 3600);

/// At most this many redirects are followed by default (as reqwest and browsers do).
pub const DEFAULT_MAX_REDIRECTS: usize = 10;

/// Parameters a session leaves out of cache keys and redacts from what it stores, unless the
/// cache closure sets `ignored_parameters` itself: credentials must not reach the table in
/// plain text (requests-cache's defaults, plus `Cookie` and `Proxy-Authorization`).
pub const DEFAULT_IGNORED_PARAMETERS: &[&str] = &[
    "Authorization",
    "Proxy-Authorization",
    "Cookie",
    "X-API-KEY",
    "access_token",
    "api_key",
];

enum CacheSource {
    Build(Box<CacheBuilder>),
    Open(Box<DynamoDbCache>),
}

/// Builds a [`CachedSession`].
///
/// Defaults differ from a bare [`CacheBuilder`] in three ways: response `Cache-Control`
/// headers are honoured (`cache_control(true)`); entries are kept [`DEFAULT_SESSION_GRACE`] (or
/// the longest stale window, if longer) past their expiry, unless the cache closure sets
/// `ttl_grace` itself; and credentials ([`DEFAULT_IGNORED_PARAMETERS`]) are redacted from what
/// is stored and left out of keys, unless the closure sets `ignored_parameters`. A response
/// that varies on a redacted header (`Vary: Authorization`) is then never reused, which is the
/// safe side.
///
/// ```no_run
/// use std::time::Duration;
/// use dynamodict::cache::ExpireAfter;
/// use dynamodict::session::CachedSession;
///
/// let session = CachedSession::builder("http-cache")
///     .cache(|c| c.namespace("api").expire_after(ExpireAfter::After(Duration::from_secs(300))))
///     .stale_if_error(Duration::from_secs(3600))
///     .build()?;
/// let response = session.get("https://example.com/").send()?;
/// println!("{} from cache: {}", response.status, response.from_cache());
/// # Ok::<(), dynamodict::Error>(())
/// ```
#[must_use = "a builder does nothing until `build()` is called"]
pub struct SessionBuilder {
    cache: CacheSource,
    client: Option<Client>,
    freshness: Freshness,
    max_redirects: usize,
    error: Option<Error>,
}

impl fmt::Debug for SessionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SessionBuilder");
        match &self.cache {
            CacheSource::Build(b) => d.field("cache", b),
            CacheSource::Open(c) => d.field("cache", c),
        };
        d.field("client", &self.client.as_ref().map(|_| "<given>"))
            .field("freshness", &self.freshness)
            .field("max_redirects", &self.max_redirects)
            .finish()
    }
}

impl SessionBuilder {
    /// A session whose cache is stored in `table`.
    pub fn new(table: impl Into<String>) -> Self {
        Self::with(CacheSource::Build(Box::new(
            DynamoDbCache::builder(table)
                .cache_control(true)
                .ignored_parameters(DEFAULT_IGNORED_PARAMETERS.iter().copied()),
        )))
    }

    /// A session over an open cache, used with its own settings.
    pub fn from_cache(cache: DynamoDbCache) -> Self {
        Self::with(CacheSource::Open(Box::new(cache)))
    }

    fn with(cache: CacheSource) -> Self {
        Self {
            cache,
            client: None,
            freshness: Freshness::default(),
            max_redirects: DEFAULT_MAX_REDIRECTS,
            error: None,
        }
    }

    /// Configures the cache: namespace, `expire_after`, `urls_expire_after`, allowed codes and
    /// methods, `match_headers`, `ignored_parameters`, `filter`, serializer, secret key,
    /// `ttl_grace`, and the AWS settings (ignored for a session made with
    /// [`CachedSession::from_cache`]).
    pub fn cache(mut self, configure: impl FnOnce(CacheBuilder) -> CacheBuilder) -> Self {
        if let CacheSource::Build(builder) = self.cache {
            self.cache = CacheSource::Build(Box::new(configure(*builder)));
        }
        self
    }

    /// Uses the embedded DynamoDB Local (see [`CacheBuilder::local`]).
    #[cfg(feature = "local")]
    pub fn local(self) -> Self {
        self.cache(CacheBuilder::local)
    }

    /// The HTTP client (default: reqwest's, with redirects left to the session).
    ///
    /// Build it with `.redirect(reqwest::redirect::Policy::none())` so that the session
    /// follows redirects itself and records every hop as a cache alias; a client that follows
    /// redirects on its own still works, but only the first URL and the final response are
    /// seen.
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Serves a stale response when the origin cannot be reached or answers with a server
    /// error (5xx), if it is stale by at most `window` (`Duration::MAX`: any). A response's
    /// own `Cache-Control: stale-if-error=N` applies without this; `must-revalidate` turns
    /// this setting off for that response.
    pub fn stale_if_error(mut self, window: Duration) -> Self {
        self.freshness.stale_if_error = Some(window);
        self
    }

    /// Serves a response stale by at most `window` at once and revalidates it on a background
    /// thread. A response's own `Cache-Control: stale-while-revalidate=N` applies without
    /// this; `must-revalidate` turns both off.
    pub fn stale_while_revalidate(mut self, window: Duration) -> Self {
        self.freshness.stale_while_revalidate = Some(window);
        self
    }

    /// Heuristic freshness (RFC 9111 §4.2.2), off by default: a response without an explicit
    /// lifetime but with `Last-Modified` stays fresh for `fraction` (e.g. `0.1`) of the time
    /// since that modification.
    pub fn heuristic_freshness(mut self, fraction: f32) -> Self {
        if fraction.is_finite() && (0.0..=1.0).contains(&fraction) {
            self.freshness.heuristic = Some(fraction);
        } else {
            self.error.get_or_insert(Error::Config(format!(
                "heuristic_freshness({fraction}) must be a fraction between 0 and 1 (0.1 is usual)"
            )));
        }
        self
    }

    /// Revalidates every cached response before using it, fresh or not (requests-cache's
    /// `always_revalidate`). Cheap when the origin answers `304`.
    pub fn always_revalidate(mut self, always: bool) -> Self {
        self.freshness.always_revalidate = always;
        self
    }

    /// Follows at most this many redirects (default [`DEFAULT_MAX_REDIRECTS`]); more is
    /// [`Error::Http`]. `0` returns redirects as they are.
    pub fn max_redirects(mut self, max: usize) -> Self {
        self.max_redirects = max;
        self
    }

    /// Opens the cache (connecting to DynamoDB) and returns the session.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid settings; the cache's errors (see [`CacheBuilder::build`]);
    /// [`Error::Runtime`] inside an async runtime.
    pub fn build(self) -> Result<CachedSession> {
        outside_async("SessionBuilder::build")?;
        if let Some(e) = self.error {
            return Err(e);
        }
        let windows = [
            self.freshness.stale_if_error,
            self.freshness.stale_while_revalidate,
        ];
        let grace = windows
            .into_iter()
            .flatten()
            .fold(DEFAULT_SESSION_GRACE, Duration::max);
        let cache = match self.cache {
            CacheSource::Build(builder) => builder.ttl_grace_unless_set(grace).build()?,
            CacheSource::Open(cache) => *cache,
        };
        let client = match self.client {
            Some(client) => client,
            None => Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| Error::Config(format!("could not build the HTTP client: {e}")))?,
        };
        Ok(CachedSession::assemble(
            client,
            cache,
            self.freshness,
            self.max_redirects,
        ))
    }
}
