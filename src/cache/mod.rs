//! [`DynamoDbCache`] and [`AsyncDynamoDbCache`]: HTTP response bookkeeping on top of
//! [`DynamoDbDict`](crate::DynamoDbDict) and [`AsyncDynamoDbDict`](crate::AsyncDynamoDbDict).
//!
//! Every type of the cache is reachable at one path: `dynamodict::cache::<Type>`.
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

mod async_cache;
mod blocking;
mod builder;
mod key;
mod policy;
mod response;

pub use async_cache::{AsyncDynamoDbCache, DeleteFilter, ResponseStream, Selection};
pub use blocking::DynamoDbCache;
pub use builder::{CacheBuilder, DEFAULT_SALT};
pub use key::{
    KeyOptions, KeySource, MatchHeaders, REDACTED, create_key, normalize_url, redact,
    redact_response,
};
pub use policy::{
    CacheDirectives, CachePolicy, ExpireAfter, ResponseFilter, UrlPattern, UrlsExpireAfter,
};
#[cfg(feature = "reqwest")]
pub(crate) use policy::{for_each_directive, parse_delta_seconds};
#[cfg(feature = "reqwest")]
pub(crate) use response::epoch_millis;
pub use response::{CacheInfo, CachedRequest, CachedResponse, HeaderIter, Headers, HttpVersion};
