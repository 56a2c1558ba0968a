//! What a [`CachedSession`](super::CachedSession) request returns: the response and where it
//! came from.

use std::ops::Deref;
use std::time::SystemTime;

use crate::Result;
use crate::cache::CachedResponse;

/// Why a stale response was served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StaleReason {
    /// The origin could not be reached or answered with a server error (5xx), and
    /// `stale-if-error` (the response's directive or the session setting) allowed it.
    Error,
    /// `stale-while-revalidate` allowed it; a background request is refreshing the entry.
    WhileRevalidate,
    /// The request accepted a stale response (`Cache-Control: max-stale`).
    MaxStale,
}

/// Where a [`SessionResponse`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CacheStatus {
    /// Received from the origin; `stored` says whether it was saved in the cache.
    Fetched {
        /// Whether the cache now holds it.
        stored: bool,
    },
    /// From the cache, fresh; the origin was not asked.
    Fresh,
    /// From the cache after the origin confirmed it with `304 Not Modified`; its headers and
    /// expiry were updated.
    Revalidated,
    /// From the cache although stale, for this reason.
    Stale(StaleReason),
    /// Made by the session: `504 Gateway Timeout`, because the request allowed only the cache
    /// (`only_if_cached` / `Cache-Control: only-if-cached`) and it held nothing usable.
    Unavailable,
}

impl CacheStatus {
    /// Whether the body came from the cache (fresh, revalidated or stale).
    pub fn from_cache(self) -> bool {
        matches!(
            self,
            CacheStatus::Fresh | CacheStatus::Revalidated | CacheStatus::Stale(_)
        )
    }
}

/// A response from a [`CachedSession`](super::CachedSession): the [`CachedResponse`] (to which
/// it dereferences: `status`, `headers`, `body`, `text()`, ...), where it came from, and its
/// cache key.
///
/// ```
/// use dynamodict::cache::{CachedRequest, CachedResponse};
/// use dynamodict::session::{CacheStatus, SessionResponse};
///
/// let response = SessionResponse::new(
///     CachedResponse::new(CachedRequest::new("GET", "https://example.com/"), 200, b"hi".to_vec()),
///     CacheStatus::Fresh,
///     Some("3f2a".to_owned()),
/// );
/// assert!(response.from_cache() && !response.is_stale());
/// assert_eq!((response.status, response.text()), (200, Some("hi")));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionResponse {
    response: CachedResponse,
    cache_status: CacheStatus,
    cache_key: Option<String>,
}

impl SessionResponse {
    /// Wraps a response (its `from_cache` flag is set from `cache_status`).
    pub fn new(
        mut response: CachedResponse,
        cache_status: CacheStatus,
        cache_key: Option<String>,
    ) -> Self {
        response.set_from_cache(cache_status.from_cache());
        Self {
            response,
            cache_status,
            cache_key,
        }
    }

    /// Where the response came from.
    pub fn cache_status(&self) -> CacheStatus {
        self.cache_status
    }

    /// Whether the body came from the cache (fresh, revalidated or stale).
    pub fn from_cache(&self) -> bool {
        self.cache_status.from_cache()
    }

    /// Whether the origin confirmed the cached response (`304 Not Modified`).
    pub fn is_revalidated(&self) -> bool {
        self.cache_status == CacheStatus::Revalidated
    }

    /// Whether a stale cached response was served (see [`StaleReason`]).
    pub fn is_stale(&self) -> bool {
        matches!(self.cache_status, CacheStatus::Stale(_))
    }

    /// The cache key of the request (`None` when its method is not cached).
    pub fn cache_key(&self) -> Option<&str> {
        self.cache_key.as_deref()
    }

    /// When the response stops being fresh (`None`: never, or not cached).
    pub fn expires(&self) -> Option<SystemTime> {
        self.response.expires
    }

    /// The response itself.
    pub fn into_cached(self) -> CachedResponse {
        self.response
    }

    /// An [`http::Response`] with a [`CacheInfo`](crate::cache::CacheInfo) extension.
    ///
    /// # Errors
    /// As [`CachedResponse::into_http`].
    pub fn into_http(self) -> Result<http::Response<Vec<u8>>> {
        self.response.into_http()
    }
}

impl Deref for SessionResponse {
    type Target = CachedResponse;

    fn deref(&self) -> &CachedResponse {
        &self.response
    }
}
