//! [`CachedSession`]: every request goes through the cache (look up, judge, ask the origin,
//! store), in that order, once per request.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use reqwest::blocking::Client;

use super::builder::SessionBuilder;
use super::fetch::fetch;
use super::freshness::{
    Ask, Freshness, Verdict, add_validators, expires_for, has_own_validators, judge,
    may_serve_on_error, may_store, merge_not_modified, vary_matches,
};
use super::inflight::Inflight;
use super::request::{RequestBuilder, RequestOptions};
use super::response::{CacheStatus, SessionResponse, StaleReason};
use crate::cache::{CachedRequest, CachedResponse, DynamoDbCache};
use crate::{Error, Result};

/// A blocking HTTP client that caches its responses in DynamoDB, transparently, following
/// RFC 9111 as a private cache (see the [module docs](super)).
///
/// `Send + Sync`, cheap to clone (clones share the client, the cache and the in-flight
/// requests).
#[derive(Clone)]
pub struct CachedSession {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    cache: DynamoDbCache,
    freshness: Freshness,
    max_redirects: usize,
    inflight: Inflight,
}

impl fmt::Debug for CachedSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedSession")
            .field("cache", &self.inner.cache)
            .field("freshness", &self.inner.freshness)
            .field("max_redirects", &self.inner.max_redirects)
            .finish_non_exhaustive()
    }
}

/// Fails with [`Error::Runtime`] inside an async runtime, where reqwest's blocking client
/// would panic.
pub(super) fn outside_async(what: &str) -> Result<()> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::Runtime(format!(
            "{what} was called inside an async runtime, where reqwest's blocking client cannot \
             run; call it from `tokio::task::spawn_blocking`, or use the `http-cache` backend \
             with an async client"
        )));
    }
    Ok(())
}

impl CachedSession {
    /// Starts building a session whose cache is stored in `table` (see [`SessionBuilder`]).
    pub fn builder(table: impl Into<String>) -> SessionBuilder {
        SessionBuilder::new(table)
    }

    /// Starts building a session over an open cache (its settings, including
    /// [`ttl_grace`](DynamoDbCache::ttl_grace), are used as they are).
    pub fn from_cache(cache: DynamoDbCache) -> SessionBuilder {
        SessionBuilder::from_cache(cache)
    }

    pub(super) fn assemble(
        client: Client,
        cache: DynamoDbCache,
        freshness: Freshness,
        max_redirects: usize,
    ) -> Self {
        CachedSession {
            inner: Arc::new(Inner {
                client,
                cache,
                freshness,
                max_redirects,
                inflight: Inflight::default(),
            }),
        }
    }

    /// The cache (to list, delete or inspect what is stored).
    pub fn cache(&self) -> &DynamoDbCache {
        &self.inner.cache
    }

    /// The HTTP client.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// A request with any method (e.g. `"OPTIONS"`).
    pub fn request(&self, method: &str, url: &str) -> RequestBuilder {
        RequestBuilder::new(self.clone(), method, url)
    }

    /// A `GET` request.
    pub fn get(&self, url: &str) -> RequestBuilder {
        self.request("GET", url)
    }

    /// A `HEAD` request.
    pub fn head(&self, url: &str) -> RequestBuilder {
        self.request("HEAD", url)
    }

    /// A `POST` request (not cached unless `allowed_methods` includes it).
    pub fn post(&self, url: &str) -> RequestBuilder {
        self.request("POST", url)
    }

    /// A `PUT` request.
    pub fn put(&self, url: &str) -> RequestBuilder {
        self.request("PUT", url)
    }

    /// A `PATCH` request.
    pub fn patch(&self, url: &str) -> RequestBuilder {
        self.request("PATCH", url)
    }

    /// A `DELETE` request.
    pub fn delete(&self, url: &str) -> RequestBuilder {
        self.request("DELETE", url)
    }

    /// Runs one request through the cache.
    pub(super) fn execute(
        &self,
        request: CachedRequest,
        options: RequestOptions,
    ) -> Result<SessionResponse> {
        outside_async("CachedSession::send")?;
        let cache = &self.inner.cache;
        if !cache.policy().is_method_allowed(&request.method) {
            let response = self.fetch(request.clone(), &options)?;
            self.invalidate_after_unsafe(&request, &response);
            return Ok(SessionResponse::new(
                response,
                CacheStatus::Fetched { stored: false },
                None,
            ));
        }
        let mut ask = Ask::from_headers(&request.headers);
        ask.no_cache |= options.refresh;
        ask.only_if_cached |= options.only_if_cached;
        let key = cache.create_key(&request)?;
        let inflight = &self.inner.inflight;
        let released = inflight.released();
        let cached = match options.force_refresh {
            true => None,
            false => self.lookup(&key, &request)?,
        };
        if let Some(entry) = &cached {
            match self.judge(entry, &ask, &options) {
                Verdict::Fresh => return Ok(hit(entry, CacheStatus::Fresh, &key)),
                Verdict::StaleAccepted => {
                    return Ok(hit(entry, CacheStatus::Stale(StaleReason::MaxStale), &key));
                }
                Verdict::Validate { background: true } if !ask.only_if_cached => {
                    self.revalidate_in_background(&key, &request, entry, ask, options, released);
                    let status = CacheStatus::Stale(StaleReason::WhileRevalidate);
                    return Ok(hit(entry, status, &key));
                }
                Verdict::Validate { .. } => {}
            }
        }
        if ask.only_if_cached {
            let gateway_timeout = CachedResponse::new(request, 504, Vec::new());
            return Ok(SessionResponse::new(
                gateway_timeout,
                CacheStatus::Unavailable,
                Some(key),
            ));
        }
        // One origin request per key at a time.
        let _claim = inflight.claim(&key);
        let cached = match self.reread(&key, &request, &ask, &options, released)? {
            Reread::Fresh(entry) => return Ok(hit(&entry, CacheStatus::Fresh, &key)),
            Reread::Now(entry) => entry,
            Reread::Unchanged => cached,
        };
        self.ask_origin(&key, request, cached, &options)
    }

    fn judge(&self, entry: &CachedResponse, ask: &Ask, options: &RequestOptions) -> Verdict {
        let now = SystemTime::now();
        judge(entry, ask, &self.inner.freshness, options.expire_after, now)
    }

    /// After claiming `key`: reads the entry again if any claim ended since the first read
    /// (`released` was the count then), since another request may have stored it meanwhile.
    fn reread(
        &self,
        key: &str,
        request: &CachedRequest,
        ask: &Ask,
        options: &RequestOptions,
        released: u64,
    ) -> Result<Reread> {
        if options.force_refresh || self.inner.inflight.released() == released {
            return Ok(Reread::Unchanged);
        }
        let again = self.lookup(key, request)?;
        Ok(match again {
            Some(entry) if self.judge(&entry, ask, options) == Verdict::Fresh => {
                Reread::Fresh(entry)
            }
            other => Reread::Now(other),
        })
    }

    /// The stored response for `key` if its `Vary` headers match `request`.
    fn lookup(&self, key: &str, request: &CachedRequest) -> Result<Option<CachedResponse>> {
        Ok(self
            .inner
            .cache
            .get_response(key)?
            .filter(|entry| vary_matches(entry, request)))
    }

    fn fetch(&self, request: CachedRequest, options: &RequestOptions) -> Result<CachedResponse> {
        fetch(
            &self.inner.client,
            request,
            self.inner.max_redirects,
            options.timeout,
        )
    }

    /// Asks the origin (conditionally when a stored response has validators), then stores or
    /// refreshes the entry, or serves the stored response if the origin fails and
    /// `stale-if-error` allows it.
    fn ask_origin(
        &self,
        key: &str,
        request: CachedRequest,
        cached: Option<CachedResponse>,
        options: &RequestOptions,
    ) -> Result<SessionResponse> {
        let freshness = &self.inner.freshness;
        let conditional = cached.is_some() && !has_own_validators(&request);
        let mut outgoing = request.clone();
        if let Some(entry) = cached.as_ref().filter(|_| conditional) {
            add_validators(&mut outgoing, entry);
        }
        let fetched = self.fetch(outgoing, options);
        let now = SystemTime::now();
        let serve_stale = |entry: &CachedResponse| {
            may_serve_on_error(entry, freshness, options.expire_after, now)
        };
        let failed = match &fetched {
            Ok(response) => response.status >= 500,
            Err(_) => true,
        };
        if failed && let Some(entry) = cached.as_ref().filter(|e| serve_stale(e)) {
            return Ok(hit(entry, CacheStatus::Stale(StaleReason::Error), key));
        }
        let mut response = fetched?;
        if response.status == 304
            && conditional
            && let Some(entry) = &cached
        {
            match merge_not_modified(entry, &response, freshness.heuristic, now) {
                Some(merged) => {
                    return self.keep(key, merged, options, CacheStatus::Revalidated, now);
                }
                // The 304's validators are not those of the stored response: it cannot
                // be used, so ask again without validators.
                None => response = self.fetch(request, options)?,
            }
        }
        let stored = may_store(self.inner.cache.policy(), &response, options.expire_after);
        self.keep(key, response, options, CacheStatus::Fetched { stored }, now)
    }

    /// Stores `response` under `key` (unless it is a fetched response that may not be stored)
    /// with the expiry the rules give it, and returns it.
    fn keep(
        &self,
        key: &str,
        mut response: CachedResponse,
        options: &RequestOptions,
        status: CacheStatus,
        now: SystemTime,
    ) -> Result<SessionResponse> {
        let cache = &self.inner.cache;
        let expires = expires_for(
            cache.policy(),
            &response,
            options.expire_after,
            self.inner.freshness.heuristic,
            now,
        );
        let store = match status {
            CacheStatus::Fetched { stored } => stored,
            _ => may_store(cache.policy(), &response, options.expire_after),
        };
        response.expires = expires;
        if store {
            cache.store(key, response.clone(), expires)?;
        } else if status == CacheStatus::Revalidated {
            // Revalidated into something that may no longer be stored (e.g. now `no-store`):
            // the stale entry must not be served again.
            cache.responses().remove(key)?;
        }
        Ok(SessionResponse::new(response, status, Some(key.to_owned())))
    }

    /// Serves a stale response now and refreshes it on a background thread (at most one per
    /// key: if a request for it is already at the origin, nothing more is sent).
    fn revalidate_in_background(
        &self,
        key: &str,
        request: &CachedRequest,
        entry: &CachedResponse,
        ask: Ask,
        options: RequestOptions,
        released: u64,
    ) {
        let session = self.clone();
        let (key, request, entry) = (key.to_owned(), request.clone(), entry.clone());
        let spawned = std::thread::Builder::new()
            .name("dynamodict-revalidate".to_owned())
            .spawn(move || {
                let Some(_claim) = session.inner.inflight.try_claim(&key) else {
                    return; // a request for this key is at the origin already
                };
                // Nobody waits for this answer; the next request sees what it stored.
                let entry = match session.reread(&key, &request, &ask, &options, released) {
                    Ok(Reread::Unchanged) => Some(entry),
                    Ok(Reread::Now(now)) => now,
                    Ok(Reread::Fresh(_)) | Err(_) => return,
                };
                let _ = session.ask_origin(&key, request, entry, &options);
            });
        // Without a thread the stale response is still served; the next request revalidates.
        drop(spawned);
    }

    /// After a successful unsafe request (`POST`, `PUT`, `DELETE`, ...), the stored `GET`
    /// response for its URL is removed (RFC 9111 §4.4). Best effort: the origin already
    /// applied the request, so a failure here must not turn its answer into an error.
    fn invalidate_after_unsafe(&self, request: &CachedRequest, response: &CachedResponse) {
        let safe = ["GET", "HEAD", "OPTIONS", "TRACE"];
        if safe.iter().any(|m| request.method.eq_ignore_ascii_case(m)) || response.status >= 400 {
            return;
        }
        let mut get = CachedRequest::new("GET", request.url.clone());
        get.headers = request.headers.clone();
        get.headers
            .retain(|name, _| !name.eq_ignore_ascii_case("content-type"));
        if let Ok(key) = self.inner.cache.create_key(&get) {
            let _ = self.inner.cache.responses().remove(&key);
        }
    }
}

/// What a second read of the cache found.
enum Reread {
    /// Nothing ended since the first read: it stands.
    Unchanged,
    /// The entry is fresh now (another request refreshed it).
    Fresh(CachedResponse),
    /// The entry as it is now, still to be validated (or gone).
    Now(Option<CachedResponse>),
}

/// A stored response served with `status`.
fn hit(entry: &CachedResponse, status: CacheStatus, key: &str) -> SessionResponse {
    SessionResponse::new(entry.clone(), status, Some(key.to_owned()))
}
