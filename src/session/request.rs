//! [`RequestBuilder`]: one request of a [`CachedSession`], built in the shape of reqwest's.

use std::time::Duration;

use super::CachedSession;
use super::response::SessionResponse;
use crate::cache::{CachedRequest, ExpireAfter};
use crate::{Error, Result};

/// Per-request cache options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RequestOptions {
    pub refresh: bool,
    pub force_refresh: bool,
    pub only_if_cached: bool,
    pub expire_after: Option<ExpireAfter>,
    pub timeout: Option<Duration>,
}

/// A request being built; [`send`](Self::send) runs it through the cache.
///
/// Invalid input (a URL, header name or value) is reported by `send`, like reqwest does.
#[must_use = "a request does nothing until `send()` is called"]
#[derive(Debug)]
pub struct RequestBuilder {
    session: CachedSession,
    request: Result<CachedRequest>,
    options: RequestOptions,
}

impl RequestBuilder {
    pub(super) fn new(session: CachedSession, method: &str, url: &str) -> Self {
        let request = match url::Url::parse(url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {
                Ok(CachedRequest::new(method, parsed.as_str()))
            }
            Ok(parsed) => Err(Error::InvalidUrl {
                url: url.to_owned(),
                reason: format!("scheme {:?} is not http or https", parsed.scheme()),
            }),
            Err(e) => Err(Error::InvalidUrl {
                url: url.to_owned(),
                reason: e.to_string(),
            }),
        };
        Self {
            session,
            request,
            options: RequestOptions::default(),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut CachedRequest) -> Result<()>) -> Self {
        if let Ok(request) = &mut self.request
            && let Err(e) = f(request)
        {
            self.request = Err(e);
        }
        self
    }

    /// Adds a header (a second value for a name already there is appended).
    pub fn header(self, name: impl AsRef<str>, value: impl AsRef<[u8]>) -> Self {
        let (name, value) = (name.as_ref(), value.as_ref());
        self.edit(|request| {
            http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| Error::Config(format!("invalid header name {name:?}: {e}")))?;
            http::HeaderValue::from_bytes(value)
                .map_err(|e| Error::Config(format!("invalid value for header {name:?}: {e}")))?;
            request.headers.append(name, value);
            Ok(())
        })
    }

    /// Adds every header of `headers`.
    pub fn headers(self, headers: &http::HeaderMap) -> Self {
        self.edit(|request| {
            for (name, value) in headers {
                request.headers.append(name.as_str(), value.as_bytes());
            }
            Ok(())
        })
    }

    /// Appends query parameters to the URL.
    pub fn query<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Self {
        self.edit(|request| {
            let mut url = url::Url::parse(&request.url).map_err(|e| Error::InvalidUrl {
                url: request.url.clone(),
                reason: e.to_string(),
            })?;
            url.query_pairs_mut()
                .extend_pairs(pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())));
            request.url = url.into();
            Ok(())
        })
    }

    /// Sets the body.
    pub fn body(self, body: impl Into<Vec<u8>>) -> Self {
        let body = body.into();
        self.edit(|request| {
            request.body = body;
            Ok(())
        })
    }

    /// Revalidates a cached response with the origin before using it, even when fresh
    /// (requests-cache's `refresh`; like `Cache-Control: no-cache`). A fresh `immutable`
    /// response is used as it is.
    pub fn refresh(mut self) -> Self {
        self.options.refresh = true;
        self
    }

    /// Ignores the cache for this request: always asks the origin, without validators, and
    /// stores what it answers (requests-cache's `force_refresh`).
    pub fn force_refresh(mut self) -> Self {
        self.options.force_refresh = true;
        self
    }

    /// Answers from the cache only: on a miss (or a stale entry the request does not accept),
    /// a `504 Gateway Timeout` made by the session, [`CacheStatus::Unavailable`](super::CacheStatus::Unavailable).
    pub fn only_if_cached(mut self) -> Self {
        self.options.only_if_cached = true;
        self
    }

    /// The lifetime to use for this request, instead of the session's and the response
    /// headers': for judging a cached response (counted from when it was received) and for
    /// storing a new one. [`ExpireAfter::DoNotCache`] fetches without storing.
    pub fn expire_after(mut self, expire_after: impl Into<ExpireAfter>) -> Self {
        self.options.expire_after = Some(expire_after.into());
        self
    }

    /// Shorthand for `expire_after(ExpireAfter::After(duration))`.
    pub fn expire_after_secs(self, seconds: u64) -> Self {
        self.expire_after(ExpireAfter::from_secs(seconds))
    }

    /// A timeout for this request's exchanges with the origin (each hop of a redirect), instead
    /// of the client's.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = Some(timeout);
        self
    }

    /// The request as it will be sent (before cache validators are added).
    ///
    /// # Errors
    /// The first invalid input given to this builder.
    pub fn build(self) -> Result<CachedRequest> {
        self.request
    }

    /// Sends the request through the cache.
    ///
    /// # Errors
    /// Invalid input ([`Error::InvalidUrl`], [`Error::Config`]); [`Error::Http`] when the
    /// origin cannot be reached and no stale response may be served; the cache's errors
    /// (DynamoDB); [`Error::Runtime`] when called inside an async runtime (reqwest's blocking
    /// client cannot run there: use `tokio::task::spawn_blocking`, or the `http-cache`
    /// backend with an async client).
    pub fn send(self) -> Result<SessionResponse> {
        let request = self.request?;
        self.session.execute(request, self.options)
    }
}
