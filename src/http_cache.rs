//! DynamoDB as storage for the [`http-cache`](https://docs.rs/http-cache) family (cargo
//! feature `http-cache`): [`HttpCacheManager`] implements its `CacheManager` trait, so that
//! `reqwest-middleware` + `http-cache-reqwest` (or any other `http-cache` front end) store
//! their responses in a DynamoDB table.
//!
//! This is the `http-cache` **1.0** line (`1.0.0-alpha.9`, pinned exactly because alphas may
//! change the trait), which uses reqwest 0.13 and `http-cache-semantics` 3, as the rest of this
//! crate does. The 0.21 line needs reqwest 0.12.
//!
//! Each entry is one map item: the response and its `http-cache-semantics` policy, encoded with
//! the map's serializer (bincode by default). Bodies over DynamoDB's item size go through the
//! map's large-value chunking. An entry's DynamoDB TTL is the policy's time to live plus a
//! grace period ([`HttpCacheManager::grace`], default a day): `http-cache` needs stale entries
//! to revalidate them. Keys longer than a map key may be (1024 bytes) are stored under their
//! SHA-256.
//!
//! ```no_run
//! use dynamodict::AsyncDynamoDbDict;
//! use dynamodict::http_cache::{HttpCacheEntry, HttpCacheManager};
//! use http_cache_reqwest::{Cache, CacheMode, HttpCache, HttpCacheOptions};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let entries = AsyncDynamoDbDict::<HttpCacheEntry>::builder("http-cache")
//!     .namespace("reqwest")
//!     .build_async()
//!     .await?;
//! let client = reqwest_middleware::ClientBuilder::new(reqwest_middleware::reqwest::Client::new())
//!     .with(Cache(HttpCache {
//!         mode: CacheMode::Default,
//!         manager: HttpCacheManager::new(entries),
//!         options: HttpCacheOptions::default(),
//!     }))
//!     .build();
//! let body = client.get("https://example.com/").send().await?.text().await?;
//! # let _ = body; Ok(()) }
//! ```

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, SystemTime};

use http_cache::{CacheManager, HttpResponse};
use http_cache_semantics::CachePolicy;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::AsyncDynamoDbDict;
use crate::layout::MAX_KEY_BYTES;

/// How long an entry is kept past its policy's time to live by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);

/// One stored response: what `http-cache` hands to [`CacheManager::put`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HttpCacheEntry {
    /// The response, body included.
    pub response: HttpResponse,
    /// Its RFC 9111 policy (freshness, validators, `Vary`).
    pub policy: CachePolicy,
}

/// An `http-cache` [`CacheManager`] storing in a DynamoDB map (see the [module docs](self)).
///
/// Cheap to clone; clones share the map.
#[derive(Clone)]
pub struct HttpCacheManager {
    entries: AsyncDynamoDbDict<HttpCacheEntry>,
    grace: Duration,
}

impl fmt::Debug for HttpCacheManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpCacheManager")
            .field("entries", &self.entries)
            .field("grace", &self.grace)
            .finish()
    }
}

impl HttpCacheManager {
    /// A manager storing in `entries` (its namespace should hold nothing else).
    pub fn new(entries: AsyncDynamoDbDict<HttpCacheEntry>) -> Self {
        Self {
            entries,
            grace: DEFAULT_GRACE,
        }
    }

    /// Keeps entries this long past their time to live (default [`DEFAULT_GRACE`]), so that
    /// stale ones can still be revalidated.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The map holding the entries, keyed by `http-cache`'s cache key.
    pub fn entries(&self) -> &AsyncDynamoDbDict<HttpCacheEntry> {
        &self.entries
    }

    /// The map key for an `http-cache` key: itself, or its SHA-256 when too long for a key.
    pub fn map_key(cache_key: &str) -> String {
        if cache_key.len() <= MAX_KEY_BYTES && !cache_key.is_empty() {
            return cache_key.to_owned();
        }
        let digest = Sha256::digest(cache_key.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }

    /// When DynamoDB may delete an entry stored `now` with `policy` (`None`: never).
    fn delete_after(&self, policy: &CachePolicy, now: SystemTime) -> Option<SystemTime> {
        // `time_to_live` adds a response's `Age` unchecked; a hostile value must not panic.
        let ttl = catch_unwind(AssertUnwindSafe(|| policy.time_to_live(now))).unwrap_or_default();
        now.checked_add(ttl)?.checked_add(self.grace)
    }
}

impl CacheManager for HttpCacheManager {
    async fn get(
        &self,
        cache_key: &str,
    ) -> http_cache::Result<Option<(HttpResponse, CachePolicy)>> {
        let entry = self.entries.get(&Self::map_key(cache_key)).await?;
        Ok(entry.map(|e| (e.response, e.policy)))
    }

    async fn put(
        &self,
        cache_key: String,
        response: HttpResponse,
        policy: CachePolicy,
    ) -> http_cache::Result<HttpResponse> {
        let until = self.delete_after(&policy, SystemTime::now());
        let entry = HttpCacheEntry {
            response: response.clone(),
            policy,
        };
        self.entries
            .set_expiring_at(&Self::map_key(&cache_key), entry, until)
            .await?;
        Ok(response)
    }

    async fn delete(&self, cache_key: &str) -> http_cache::Result<()> {
        self.entries.remove(&Self::map_key(cache_key)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_keys_are_hashed_and_short_ones_kept() {
        assert_eq!(
            HttpCacheManager::map_key("GET:https://a.test/"),
            "GET:https://a.test/"
        );
        let long = format!("GET:https://a.test/{}", "x".repeat(2000));
        let mapped = HttpCacheManager::map_key(&long);
        assert!(mapped.starts_with("sha256:") && mapped.len() == 7 + 64);
        assert_ne!(mapped, HttpCacheManager::map_key(&format!("{long}y")));
        assert!(HttpCacheManager::map_key("").starts_with("sha256:"));
    }
}
