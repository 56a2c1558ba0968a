//! Cache policy: which responses are saved and when they expire.
//!
//! Everything here is pure logic over [`CachedResponse`] values and the current time, with no
//! storage involved, modelled on requests-cache's settings:
//!
//! * [`ExpireAfter`]: an expiration setting (never, immediately, after a duration, at a time,
//!   or "do not cache");
//! * [`UrlPattern`] / [`UrlsExpireAfter`]: per-URL expiration with requests-cache's glob
//!   patterns (`"*.example.com/api"`, `"httpbin.org/get"`), first match wins;
//! * [`CacheDirectives`]: the parts of `Cache-Control`, `Expires`, `Date` and `Age` headers
//!   that matter for storing a response;
//! * [`CachePolicy`]: the bundle (`expire_after`, `urls_expire_after`, `allowed_codes`,
//!   `allowed_methods`, `cache_control`, `filter`) with [`CachePolicy::should_save`] and
//!   [`CachePolicy::expires_for`].

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use url::Url;

use crate::cache::response::{CachedResponse, Headers};
use crate::{Error, Result};

/// The largest delta-seconds value honoured (2^31 s, about 68 years), as RFC 9111 §1.2.2
/// prescribes for larger or overflowing values.
const MAX_DELTA_SECONDS: u64 = 1 << 31;

// ---- ExpireAfter -----------------------------------------------------------------------------

/// When a newly saved response expires.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use dynamodict::cache::ExpireAfter;
///
/// let now = SystemTime::now();
/// assert_eq!(ExpireAfter::Never.expires_at(now), None);
/// assert_eq!(ExpireAfter::Immediately.expires_at(now), Some(now));
/// assert_eq!(
///     ExpireAfter::After(Duration::from_secs(60)).expires_at(now),
///     Some(now + Duration::from_secs(60))
/// );
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ExpireAfter {
    /// Never expires (the default).
    #[default]
    Never,
    /// Saved, but already expired (stale) when saved: usable only after revalidation.
    Immediately,
    /// Expires this long after it was saved.
    After(Duration),
    /// Expires at this time (which may be in the past).
    At(SystemTime),
    /// Not saved at all (requests-cache's `DO_NOT_CACHE`); useful in
    /// [`UrlsExpireAfter`] to exclude URLs, e.g. `("*", DoNotCache)` as the last rule.
    DoNotCache,
}

impl ExpireAfter {
    /// The absolute expiry time for a response saved at `now`; `None` means it never expires.
    ///
    /// `Immediately` and `DoNotCache` give `now`; a duration too large to add to `now` gives
    /// `None` (never).
    pub fn expires_at(&self, now: SystemTime) -> Option<SystemTime> {
        match self {
            ExpireAfter::Never => None,
            ExpireAfter::Immediately | ExpireAfter::DoNotCache => Some(now),
            ExpireAfter::After(duration) => now.checked_add(*duration),
            ExpireAfter::At(time) => Some(*time),
        }
    }

    /// `After(seconds)`, or `Immediately` for zero.
    pub fn from_secs(seconds: u64) -> Self {
        if seconds == 0 {
            ExpireAfter::Immediately
        } else {
            ExpireAfter::After(Duration::from_secs(seconds))
        }
    }

    /// Whether this is [`ExpireAfter::DoNotCache`].
    pub fn is_do_not_cache(&self) -> bool {
        matches!(self, ExpireAfter::DoNotCache)
    }
}

impl From<Duration> for ExpireAfter {
    fn from(duration: Duration) -> Self {
        ExpireAfter::After(duration)
    }
}

impl From<SystemTime> for ExpireAfter {
    fn from(time: SystemTime) -> Self {
        ExpireAfter::At(time)
    }
}

// ---- URL patterns ----------------------------------------------------------------------------

/// A requests-cache URL glob pattern.
///
/// Semantics (those of requests-cache's `url_match`, which uses Python's `fnmatch`):
///
/// * A scheme in the pattern (`https://`) is removed; URLs are matched without their scheme,
///   user info and fragment, as `host[:port]/path[?query]` (host lower-cased and default port
///   dropped, as the `url` crate normalizes them).
/// * The pattern is a **prefix**: trailing `*`s are removed and one `*` is appended, so
///   `"httpbin.org/get"` also matches `httpbin.org/get?x=1` and `httpbin.org/getter`, and
///   `"example.com"` also matches `example.com.evil.test`; end the host with `/` to anchor it.
/// * `*` matches any run of characters, including `/` (so `**` means the same as `*`); `?`
///   matches one character; `[abc]`, `[a-z]` and `[!abc]` match a character class (`[[]`
///   matches a literal `[`). There is no backslash escape.
/// * Matching is case-sensitive, except that the host part of the pattern (up to the first
///   `/` or `?`) is lower-cased, since hosts are case-insensitive.
///
/// ```
/// use dynamodict::cache::UrlPattern;
///
/// let api = UrlPattern::new("*.example.com/api")?;
/// assert!(api.matches("https://www.example.com/api/v1/items?page=2"));
/// assert!(!api.matches("https://www.example.com/static/logo.png"));
/// let stream = UrlPattern::new("httpbin.org/*/1")?;
/// assert!(stream.matches("https://httpbin.org/stream/1"));
/// assert!(!stream.matches("https://httpbin.org/stream/2"));
/// # Ok::<(), dynamodict::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct UrlPattern {
    source: String,
    glob: glob::Pattern,
}

impl UrlPattern {
    const OPTIONS: glob::MatchOptions = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: false,
        require_literal_leading_dot: false,
    };

    /// Compiles a pattern.
    ///
    /// # Errors
    /// [`Error::Config`] when the pattern is empty or not a valid glob (e.g. an unclosed `[`).
    pub fn new(pattern: &str) -> Result<Self> {
        if pattern.is_empty() {
            return Err(Error::Config(
                "a URL pattern must not be empty (use \"*\" to match every URL)".to_owned(),
            ));
        }
        let without_scheme = pattern.split_once("://").map_or(pattern, |(_, rest)| rest);
        let host_end = without_scheme
            .find(['/', '?'])
            .unwrap_or(without_scheme.len());
        let mut text = String::with_capacity(without_scheme.len() + 1);
        text.push_str(&without_scheme[..host_end].to_ascii_lowercase());
        text.push_str(&without_scheme[host_end..]);
        let trimmed_len = text.trim_end_matches('*').len();
        text.truncate(trimmed_len);
        text.push('*');
        // `**` means the same as `*` here; collapse runs so the glob crate does not apply its
        // path-component rules for `**`.
        let mut collapsed = String::with_capacity(text.len());
        for c in text.chars() {
            if !(c == '*' && collapsed.ends_with('*')) {
                collapsed.push(c);
            }
        }
        let glob = glob::Pattern::new(&collapsed)
            .map_err(|e| Error::Config(format!("invalid URL pattern {pattern:?}: {e}")))?;
        Ok(Self {
            source: pattern.to_owned(),
            glob,
        })
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `url` matches.
    pub fn matches(&self, url: &str) -> bool {
        self.glob.matches_with(&match_target(url), Self::OPTIONS)
    }
}

impl PartialEq for UrlPattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for UrlPattern {}

impl fmt::Display for UrlPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// The text a URL pattern is matched against: `host[:port]/path[?query]`.
fn match_target(url: &str) -> String {
    if let Ok(parsed) = Url::parse(url)
        && let Some(host) = parsed.host_str()
    {
        let mut out = String::with_capacity(url.len());
        out.push_str(host);
        if let Some(port) = parsed.port() {
            out.push(':');
            out.push_str(&port.to_string());
        }
        out.push_str(parsed.path());
        if let Some(query) = parsed.query() {
            out.push('?');
            out.push_str(query);
        }
        return out;
    }
    // Not an absolute URL with a host: fall back to plain text, as requests-cache does.
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split('#').next().unwrap_or(rest).to_owned()
}

/// An ordered list of `(URL pattern, expiration)` rules; the first matching rule wins.
///
/// ```
/// use std::time::Duration;
/// use dynamodict::cache::{ExpireAfter, UrlsExpireAfter};
///
/// let rules = UrlsExpireAfter::from_rules([
///     ("*.site_1.com", ExpireAfter::After(Duration::from_secs(30 * 86_400))),
///     ("site_2.com/static", ExpireAfter::Never),
///     ("*", ExpireAfter::DoNotCache),
/// ])?;
/// assert_eq!(rules.get("https://site_2.com/static/img.png"), Some(&ExpireAfter::Never));
/// assert_eq!(rules.get("https://other.test/"), Some(&ExpireAfter::DoNotCache));
/// # Ok::<(), dynamodict::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UrlsExpireAfter {
    rules: Vec<(UrlPattern, ExpireAfter)>,
}

impl UrlsExpireAfter {
    /// No rules.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds from `(pattern, expiration)` pairs, in order.
    ///
    /// # Errors
    /// [`Error::Config`] for the first invalid pattern.
    pub fn from_rules<I, P>(rules: I) -> Result<Self>
    where
        I: IntoIterator<Item = (P, ExpireAfter)>,
        P: AsRef<str>,
    {
        let mut out = Self::new();
        for (pattern, expire_after) in rules {
            out.push(pattern.as_ref(), expire_after)?;
        }
        Ok(out)
    }

    /// Appends a rule (it applies only when no earlier rule matches).
    ///
    /// # Errors
    /// [`Error::Config`] when the pattern is invalid.
    pub fn push(&mut self, pattern: &str, expire_after: ExpireAfter) -> Result<()> {
        self.rules.push((UrlPattern::new(pattern)?, expire_after));
        Ok(())
    }

    /// The expiration of the first rule whose pattern matches `url`.
    pub fn get(&self, url: &str) -> Option<&ExpireAfter> {
        if self.rules.is_empty() {
            return None;
        }
        let target = match_target(url);
        self.rules
            .iter()
            .find(|(pattern, _)| pattern.glob.matches_with(&target, UrlPattern::OPTIONS))
            .map(|(_, expire_after)| expire_after)
    }

    /// The rules, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&UrlPattern, &ExpireAfter)> + '_ {
        self.rules.iter().map(|(p, e)| (p, e))
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

// ---- Cache-Control ---------------------------------------------------------------------------

/// The caching-related facts of a header set (a response's or a request's).
///
/// Parsing follows RFC 9111 where it matters for a private client cache:
///
/// * `Cache-Control` directives from every `Cache-Control` field are combined; names are
///   case-insensitive; quoted values may contain commas; unknown directives are ignored.
/// * `max-age`: the first occurrence counts; a value that is not all digits (or missing) is
///   *invalid* and read as `0` (RFC 9111 §4.2.1: treat as stale); a value above 2^31 is
///   read as 2^31 seconds.
/// * `s-maxage`, `private`, `public`, `proxy-revalidate`, `must-revalidate` are not recorded:
///   this is a private cache (`s-maxage` applies to shared caches only), as in requests-cache.
/// * `Expires`: the first field, as an HTTP date (IMF-fixdate, RFC 850 or asctime); an invalid
///   date such as `0` or `-1` means "already expired" (RFC 9111 §5.3) and is read as the Unix
///   epoch.
/// * `Date` and `Age`: the first field; invalid values are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheDirectives {
    /// `Cache-Control: no-store`.
    pub no_store: bool,
    /// `Cache-Control: no-cache` (with or without a field list).
    pub no_cache: bool,
    /// `Cache-Control: immutable`.
    pub immutable: bool,
    /// `Cache-Control: max-age=N`, in seconds.
    pub max_age: Option<u64>,
    /// The `Expires` header.
    pub expires: Option<SystemTime>,
    /// The `Date` header.
    pub date: Option<SystemTime>,
    /// The `Age` header, in seconds.
    pub age: Option<u64>,
}

impl CacheDirectives {
    /// Reads the directives of a header set.
    ///
    /// ```
    /// use dynamodict::cache::CacheDirectives;
    /// use dynamodict::cache::Headers;
    ///
    /// let headers: Headers = [("Cache-Control", "public, max-age=600, no-cache=\"Set-Cookie, X\"")]
    ///     .into_iter()
    ///     .collect();
    /// let d = CacheDirectives::from_headers(&headers);
    /// assert_eq!(d.max_age, Some(600));
    /// assert!(d.no_cache && !d.no_store);
    /// ```
    pub fn from_headers(headers: &Headers) -> Self {
        let mut out = Self::default();
        for value in headers.get_all("cache-control") {
            let text = String::from_utf8_lossy(value);
            for_each_directive(&text, |name, argument| {
                if name.eq_ignore_ascii_case("no-store") {
                    out.no_store = true;
                } else if name.eq_ignore_ascii_case("no-cache") {
                    out.no_cache = true;
                } else if name.eq_ignore_ascii_case("immutable") {
                    out.immutable = true;
                } else if name.eq_ignore_ascii_case("max-age") && out.max_age.is_none() {
                    out.max_age = Some(argument.and_then(parse_delta_seconds).unwrap_or(0));
                }
            });
        }
        out.expires = headers
            .get("expires")
            .map(|value| parse_http_date(value).unwrap_or(SystemTime::UNIX_EPOCH));
        out.date = headers.get("date").and_then(parse_http_date);
        out.age = headers
            .get("age")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| parse_delta_seconds(v.trim()));
        out
    }

    /// The expiration these *response* directives call for, if any, in this order:
    ///
    /// 1. `no-store` → [`ExpireAfter::DoNotCache`];
    /// 2. `no-cache` → [`ExpireAfter::Immediately`];
    /// 3. `immutable` → [`ExpireAfter::Never`] (as in requests-cache);
    /// 4. `max-age=N` → `N - Age` seconds from now ([`ExpireAfter::Immediately`] when that
    ///    is zero or less);
    /// 5. `Expires` → with a valid `Date`, the freshness lifetime `Expires - Date - Age`
    ///    counted from now (so server/client clock skew does not matter); without one, the
    ///    absolute `Expires` time. A lifetime of zero or less, or an invalid `Expires`, gives
    ///    [`ExpireAfter::Immediately`].
    ///
    /// `None` when none of these is present.
    pub fn response_expire_after(&self) -> Option<ExpireAfter> {
        let age = self.age.unwrap_or(0);
        if self.no_store {
            Some(ExpireAfter::DoNotCache)
        } else if self.no_cache {
            Some(ExpireAfter::Immediately)
        } else if self.immutable {
            Some(ExpireAfter::Never)
        } else if let Some(max_age) = self.max_age {
            Some(ExpireAfter::from_secs(max_age.saturating_sub(age)))
        } else if let Some(expires) = self.expires {
            if expires == SystemTime::UNIX_EPOCH {
                return Some(ExpireAfter::Immediately);
            }
            Some(match self.date {
                Some(date) => {
                    let lifetime = expires.duration_since(date).unwrap_or(Duration::ZERO);
                    let left = lifetime.saturating_sub(Duration::from_secs(age));
                    if left.is_zero() {
                        ExpireAfter::Immediately
                    } else {
                        ExpireAfter::After(left)
                    }
                }
                None => ExpireAfter::At(expires),
            })
        } else {
            None
        }
    }
}

/// Calls `f(name, argument)` for each directive of a `Cache-Control` value. Arguments may be
/// tokens or quoted strings (whose `\`-escapes are resolved); commas inside quotes do not split.
pub(crate) fn for_each_directive(value: &str, mut f: impl FnMut(&str, Option<&str>)) {
    let bytes = value.as_bytes();
    let mut i = 0;
    let mut argument = String::new();
    while i < bytes.len() {
        // Skip separators and whitespace.
        while i < bytes.len() && (bytes[i] == b',' || bytes[i].is_ascii_whitespace()) {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let name_start = i;
        while i < bytes.len() && bytes[i] != b',' && bytes[i] != b'=' {
            i += 1;
        }
        // Delimiters are ASCII, so these are char boundaries.
        let name = value[name_start..i].trim();
        let mut has_argument = false;
        argument.clear();
        if i < bytes.len() && bytes[i] == b'=' {
            has_argument = true;
            i += 1;
            while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
                i += 1;
            }
            if i < bytes.len() && bytes[i] == b'"' {
                i += 1;
                let mut chunk_start = i;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' && i + 1 < bytes.len() {
                        argument.push_str(&value[chunk_start..i]);
                        chunk_start = i + 1;
                        i += 2;
                        // The escaped character may be multi-byte: move to its end.
                        while i < bytes.len() && !value.is_char_boundary(i) {
                            i += 1;
                        }
                    } else {
                        i += 1;
                    }
                }
                argument.push_str(&value[chunk_start..i.min(bytes.len())]);
                // Skip the closing quote and anything up to the next comma.
                while i < bytes.len() && bytes[i] != b',' {
                    i += 1;
                }
            } else {
                let start = i;
                while i < bytes.len() && bytes[i] != b',' {
                    i += 1;
                }
                argument.push_str(value[start..i].trim());
            }
        }
        if !name.is_empty() {
            f(name, has_argument.then_some(argument.as_str()));
        }
    }
}

/// Parses RFC 9111 delta-seconds: one or more ASCII digits; overflow gives 2^31.
pub(crate) fn parse_delta_seconds(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        text.parse::<u64>()
            .map_or(MAX_DELTA_SECONDS, |n| n.min(MAX_DELTA_SECONDS)),
    )
}

fn parse_http_date(value: &[u8]) -> Option<SystemTime> {
    let text = std::str::from_utf8(value).ok()?;
    httpdate::parse_http_date(text.trim()).ok()
}

// ---- CachePolicy -----------------------------------------------------------------------------

/// A user callback deciding whether a response may be saved (`true` = save).
pub type ResponseFilter = Arc<dyn Fn(&CachedResponse) -> bool + Send + Sync>;

/// Which responses are saved, and when they expire.
///
/// # Expiration precedence
///
/// [`expire_after_for`](Self::expire_after_for) takes the first of:
///
/// 1. `Cache-Control: no-store` in the **request** headers → [`ExpireAfter::DoNotCache`]
///    (request headers are always honoured, as in requests-cache);
/// 2. when [`cache_control`](Self::cache_control) is on, the **response** headers, per
///    [`CacheDirectives::response_expire_after`]: `no-store` (do not save), `no-cache`
///    (save, expired), `immutable` (never expires), `max-age` minus `Age`, then `Expires`;
/// 3. `Cache-Control: max-age=N` in the **request** headers (`0` → immediately);
/// 4. the first matching rule of [`urls_expire_after`](Self::urls_expire_after);
/// 5. [`expire_after`](Self::expire_after).
///
/// "The request" is the one the user made: for a redirected response, the first hop's request
/// ([`CachedResponse::original_request`]), whose URL and method the cache key is built from.
///
/// # Saving
///
/// [`should_save`](Self::should_save) is true when the original request's method is in
/// [`allowed_methods`](Self::allowed_methods) (ASCII case-insensitive), the status is in
/// [`allowed_codes`](Self::allowed_codes), the expiration above is not
/// [`ExpireAfter::DoNotCache`], and the [`filter`](Self::filter), if any, returns `true`.
/// Responses that expire immediately are saved (stale; a later request may revalidate them).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use dynamodict::cache::{CachePolicy, ExpireAfter};
/// use dynamodict::cache::{CachedRequest, CachedResponse};
///
/// let policy = CachePolicy::default()
///     .with_expire_after(ExpireAfter::After(Duration::from_secs(60)))
///     .with_url_expire_after("example.com/static", ExpireAfter::Never)?
///     .with_cache_control(true);
///
/// let mut response = CachedResponse::new(CachedRequest::new("GET", "https://example.com/api"), 200, vec![]);
/// let now = SystemTime::now();
/// assert!(policy.should_save(&response));
/// assert_eq!(policy.expires_for(&response, now), Some(now + Duration::from_secs(60)));
///
/// response.headers.append("Cache-Control", "max-age=5");
/// assert_eq!(policy.expires_for(&response, now), Some(now + Duration::from_secs(5)));
///
/// response.headers.insert("Cache-Control", "no-store");
/// assert!(!policy.should_save(&response));
/// # Ok::<(), dynamodict::Error>(())
/// ```
#[derive(Clone)]
pub struct CachePolicy {
    /// Default expiration (default: [`ExpireAfter::Never`]).
    pub expire_after: ExpireAfter,
    /// Per-URL expiration, first match wins (default: none).
    pub urls_expire_after: UrlsExpireAfter,
    /// Status codes that may be saved (default: `[200]`).
    pub allowed_codes: Vec<u16>,
    /// Request methods whose responses may be saved, compared ignoring ASCII case (default:
    /// `["GET", "HEAD"]`).
    pub allowed_methods: Vec<String>,
    /// Whether response `Cache-Control` / `Expires` headers are honoured (default: `false`, as
    /// in requests-cache). Request `Cache-Control` headers are always honoured.
    pub cache_control: bool,
    /// Optional user callback; a response is saved only if it returns `true`.
    pub filter: Option<ResponseFilter>,
}

impl Default for CachePolicy {
    fn default() -> Self {
        Self {
            expire_after: ExpireAfter::Never,
            urls_expire_after: UrlsExpireAfter::new(),
            allowed_codes: vec![200],
            allowed_methods: vec!["GET".to_owned(), "HEAD".to_owned()],
            cache_control: false,
            filter: None,
        }
    }
}

impl fmt::Debug for CachePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachePolicy")
            .field("expire_after", &self.expire_after)
            .field("urls_expire_after", &self.urls_expire_after)
            .field("allowed_codes", &self.allowed_codes)
            .field("allowed_methods", &self.allowed_methods)
            .field("cache_control", &self.cache_control)
            .field("filter", &self.filter.as_ref().map(|_| "<fn>"))
            .finish()
    }
}

impl CachePolicy {
    /// The default policy (see the field docs).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`expire_after`](Self::expire_after).
    #[must_use]
    pub fn with_expire_after(mut self, expire_after: ExpireAfter) -> Self {
        self.expire_after = expire_after;
        self
    }

    /// Appends a rule to [`urls_expire_after`](Self::urls_expire_after).
    ///
    /// # Errors
    /// [`Error::Config`] when the pattern is invalid.
    pub fn with_url_expire_after(
        mut self,
        pattern: &str,
        expire_after: ExpireAfter,
    ) -> Result<Self> {
        self.urls_expire_after.push(pattern, expire_after)?;
        Ok(self)
    }

    /// Sets [`allowed_codes`](Self::allowed_codes).
    #[must_use]
    pub fn with_allowed_codes(mut self, codes: impl IntoIterator<Item = u16>) -> Self {
        self.allowed_codes = codes.into_iter().collect();
        self
    }

    /// Sets [`allowed_methods`](Self::allowed_methods).
    #[must_use]
    pub fn with_allowed_methods<I, S>(mut self, methods: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_methods = methods.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`cache_control`](Self::cache_control).
    #[must_use]
    pub fn with_cache_control(mut self, cache_control: bool) -> Self {
        self.cache_control = cache_control;
        self
    }

    /// Sets [`filter`](Self::filter).
    #[must_use]
    pub fn with_filter(
        mut self,
        filter: impl Fn(&CachedResponse) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.filter = Some(Arc::new(filter));
        self
    }

    /// Whether responses to `method` may be saved (ASCII case-insensitive).
    pub fn is_method_allowed(&self, method: &str) -> bool {
        self.allowed_methods
            .iter()
            .any(|m| m.eq_ignore_ascii_case(method))
    }

    /// Whether responses with `status` may be saved.
    pub fn is_status_allowed(&self, status: u16) -> bool {
        self.allowed_codes.contains(&status)
    }

    /// Whether `response` should be saved (see the [type docs](Self#saving)).
    pub fn should_save(&self, response: &CachedResponse) -> bool {
        self.is_method_allowed(&response.original_request().method)
            && self.is_status_allowed(response.status)
            && !self.expire_after_for(response).is_do_not_cache()
            && self.filter.as_ref().is_none_or(|keep| keep(response))
    }

    /// The expiration rule that applies to `response` (see the
    /// [precedence](Self#expiration-precedence)).
    pub fn expire_after_for(&self, response: &CachedResponse) -> ExpireAfter {
        let request = response.original_request();
        let request_directives = CacheDirectives::from_headers(&request.headers);
        if request_directives.no_store {
            return ExpireAfter::DoNotCache;
        }
        if self.cache_control {
            let directives = CacheDirectives::from_headers(&response.headers);
            if let Some(expire_after) = directives.response_expire_after() {
                return expire_after;
            }
        }
        if let Some(max_age) = request_directives.max_age {
            return ExpireAfter::from_secs(max_age);
        }
        if let Some(expire_after) = self.urls_expire_after.get(&request.url) {
            return *expire_after;
        }
        self.expire_after
    }

    /// When `response`, saved at `now`, expires; `None` means never.
    pub fn expires_for(&self, response: &CachedResponse, now: SystemTime) -> Option<SystemTime> {
        self.expire_after_for(response).expires_at(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::response::CachedRequest;
    use std::time::UNIX_EPOCH;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn response(url: &str, response_headers: &[(&str, &str)]) -> CachedResponse {
        let mut r = CachedResponse::new(CachedRequest::new("GET", url), 200, b"ok".to_vec());
        for (name, value) in response_headers {
            r.headers.append(*name, *value);
        }
        r
    }

    fn directives(headers: &[(&str, &str)]) -> CacheDirectives {
        let h: Headers = headers.iter().copied().collect();
        CacheDirectives::from_headers(&h)
    }

    // ---- ExpireAfter --------------------------------------------------------------------

    #[test]
    fn expire_after_to_time() {
        let t = now();
        assert_eq!(ExpireAfter::Never.expires_at(t), None);
        assert_eq!(ExpireAfter::Immediately.expires_at(t), Some(t));
        assert_eq!(ExpireAfter::DoNotCache.expires_at(t), Some(t));
        assert_eq!(
            ExpireAfter::After(secs(10)).expires_at(t),
            Some(t + secs(10))
        );
        assert_eq!(ExpireAfter::At(UNIX_EPOCH).expires_at(t), Some(UNIX_EPOCH));
        assert_eq!(ExpireAfter::After(Duration::MAX).expires_at(t), None);
        assert_eq!(ExpireAfter::from_secs(0), ExpireAfter::Immediately);
        assert_eq!(ExpireAfter::from_secs(5), ExpireAfter::After(secs(5)));
        assert_eq!(ExpireAfter::from(secs(5)), ExpireAfter::After(secs(5)));
        assert_eq!(ExpireAfter::from(t), ExpireAfter::At(t));
        assert_eq!(ExpireAfter::default(), ExpireAfter::Never);
    }

    // ---- URL patterns -------------------------------------------------------------------

    #[test]
    fn url_patterns_follow_requests_cache() {
        let cases: &[(&str, &str, bool)] = &[
            // requests-cache's own doc examples
            ("httpbin.org/delay", "https://httpbin.org/delay/1", true),
            ("httpbin.org/*/1", "https://httpbin.org/stream/1", true),
            ("httpbin.org/*/1", "https://httpbin.org/stream/2", false),
            // scheme in the pattern is ignored
            (
                "https://httpbin.org/get",
                "http://httpbin.org/get?x=1",
                true,
            ),
            // wildcard subdomains
            (
                "*.example.com/api/*",
                "https://www.example.com/api/v1",
                true,
            ),
            (
                "*.example.com/api/*",
                "https://www.example.com/static/a",
                false,
            ),
            ("*.example.com", "https://example.com/", false),
            ("*example.com", "https://example.com/", true),
            // `*` crosses `/`; `**` is the same as `*`
            ("example.com/*/c", "https://example.com/a/b/c", true),
            ("example.com/**/c", "https://example.com/a/b/c", true),
            ("example.com/a**", "https://example.com/abc/d", true),
            // prefix semantics, including the host
            ("example.com", "https://example.com.evil.test/", true),
            ("example.com/", "https://example.com.evil.test/", false),
            // host is case-insensitive, path is not
            ("EXAMPLE.com/Path", "https://example.COM/Path", true),
            ("example.com/Path", "https://example.com/path", false),
            // ports, default ports, fragments, user info
            ("example.com:8080/", "http://example.com:8080/x", true),
            ("example.com/", "http://example.com:80/x", true),
            ("example.com/x", "http://user:pw@example.com/x#frag", true),
            // `?` and classes
            ("example.com/v?/", "https://example.com/v2/items", true),
            ("example.com/v[0-9]/", "https://example.com/vX/items", false),
            ("example.com/v[!0-9]/", "https://example.com/vX/items", true),
            // match everything
            ("*", "https://anything.test/at/all?x", true),
            // not a URL: plain text matching
            ("some/thing", "some/thing/else", true),
        ];
        for (pattern, url, expected) in cases {
            let p = UrlPattern::new(pattern).unwrap();
            assert_eq!(p.matches(url), *expected, "{pattern:?} vs {url:?}");
        }
    }

    #[test]
    fn invalid_url_patterns_are_config_errors() {
        assert!(matches!(UrlPattern::new(""), Err(Error::Config(_))));
        assert!(matches!(
            UrlPattern::new("example.com/[abc"),
            Err(Error::Config(_))
        ));
        let p = UrlPattern::new("Example.com/x").unwrap();
        assert_eq!(p.as_str(), "Example.com/x");
        assert_eq!(p.to_string(), "Example.com/x");
        assert_eq!(p, UrlPattern::new("Example.com/x").unwrap());
    }

    #[test]
    fn first_matching_rule_wins() {
        let rules = UrlsExpireAfter::from_rules([
            ("example.com/api/slow", ExpireAfter::After(secs(3600))),
            ("example.com/api", ExpireAfter::After(secs(60))),
            ("*", ExpireAfter::DoNotCache),
        ])
        .unwrap();
        assert_eq!(rules.len(), 3);
        assert!(!rules.is_empty());
        assert_eq!(
            rules.get("https://example.com/api/slow/1"),
            Some(&ExpireAfter::After(secs(3600)))
        );
        assert_eq!(
            rules.get("https://example.com/api/fast"),
            Some(&ExpireAfter::After(secs(60)))
        );
        assert_eq!(
            rules.get("https://other.test/"),
            Some(&ExpireAfter::DoNotCache)
        );
        assert_eq!(UrlsExpireAfter::new().get("https://x.test/"), None);
        let patterns: Vec<&str> = rules.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(patterns, ["example.com/api/slow", "example.com/api", "*"]);
        assert!(UrlsExpireAfter::from_rules([("[", ExpireAfter::Never)]).is_err());
    }

    // ---- directives ---------------------------------------------------------------------

    #[test]
    fn parses_cache_control() {
        let d = directives(&[("Cache-Control", "Public, MAX-AGE=60, No-Store")]);
        assert!(d.no_store && !d.no_cache && !d.immutable);
        assert_eq!(d.max_age, Some(60));

        // Several fields, quoted strings with commas, escapes.
        let d = directives(&[
            ("cache-control", r#"private="a, b", no-cache="x\"y, z""#),
            ("Cache-Control", "immutable,max-age = 7"),
        ]);
        assert!(d.no_cache && d.immutable && !d.no_store);
        // "max-age = 7": the name is trimmed, the argument starts after the spaces.
        assert_eq!(d.max_age, Some(7));

        // First max-age wins; invalid means stale; huge values saturate.
        assert_eq!(
            directives(&[("Cache-Control", "max-age=10, max-age=20")]).max_age,
            Some(10)
        );
        assert_eq!(
            directives(&[("Cache-Control", "max-age=abc")]).max_age,
            Some(0)
        );
        assert_eq!(directives(&[("Cache-Control", "max-age")]).max_age, Some(0));
        assert_eq!(
            directives(&[("Cache-Control", "max-age=-5")]).max_age,
            Some(0)
        );
        assert_eq!(
            directives(&[("Cache-Control", "max-age=99999999999999999999999")]).max_age,
            Some(1 << 31)
        );
        assert_eq!(
            directives(&[("Cache-Control", "max-age=\"30\"")]).max_age,
            Some(30)
        );
        // s-maxage is not max-age.
        assert_eq!(
            directives(&[("Cache-Control", "s-maxage=30")]).max_age,
            None
        );
        assert_eq!(directives(&[]), CacheDirectives::default());
    }

    #[test]
    fn parses_dates_and_age() {
        let d = directives(&[
            ("Expires", "Thu, 01 Jan 2015 00:00:10 GMT"),
            ("Date", "Thu, 01 Jan 2015 00:00:00 GMT"),
            ("Age", " 3 "),
        ]);
        assert_eq!(d.expires, Some(UNIX_EPOCH + secs(1_420_070_410)));
        assert_eq!(d.date, Some(UNIX_EPOCH + secs(1_420_070_400)));
        assert_eq!(d.age, Some(3));
        // Invalid Expires means already expired; invalid Date/Age are ignored.
        let d = directives(&[("Expires", "0"), ("Date", "yesterday"), ("Age", "-1")]);
        assert_eq!(d.expires, Some(UNIX_EPOCH));
        assert_eq!(d.date, None);
        assert_eq!(d.age, None);
        // Other HTTP date formats.
        assert!(
            directives(&[("Expires", "Sunday, 06-Nov-94 08:49:37 GMT")]).expires > Some(UNIX_EPOCH)
        );
        assert!(directives(&[("Expires", "Sun Nov  6 08:49:37 1994")]).expires > Some(UNIX_EPOCH));
    }

    #[test]
    fn odd_cache_control_values_do_not_panic() {
        for value in [
            "",
            ",,,",
            "=",
            "=5",
            "max-age=\"",
            "no-cache=\"\\",
            "\"",
            "a=\"é\\é\", max-age=1",
            "max-age=\"1\\",
            "x=\"\\\u{1F600}\",max-age=4",
            "\u{1F600}=\u{1F600}",
        ] {
            let _ = directives(&[("Cache-Control", value)]);
        }
        let d = directives(&[("Cache-Control", "x=\"\\\u{1F600}\",max-age=4")]);
        assert_eq!(d.max_age, Some(4));
        let mut h = Headers::new();
        h.append(
            "Cache-Control",
            vec![0xFF, b',', b'n', b'o', b'-', b's', b't', b'o', b'r', b'e'],
        );
        h.append("Expires", vec![0xFF]);
        h.append("Age", vec![0xFF]);
        let d = CacheDirectives::from_headers(&h);
        assert!(d.no_store);
        assert_eq!(d.expires, Some(UNIX_EPOCH));
    }

    #[test]
    fn response_directive_precedence() {
        use ExpireAfter::*;
        let date = "Thu, 01 Jan 2015 00:00:00 GMT";
        let expires = "Thu, 01 Jan 2015 00:01:40 GMT"; // Date + 100 s
        type Case<'a> = (Vec<(&'a str, &'a str)>, Option<ExpireAfter>);
        let cases: Vec<Case<'_>> = vec![
            (vec![], None),
            (vec![("Cache-Control", "public")], None),
            (
                vec![("Cache-Control", "no-store, max-age=60")],
                Some(DoNotCache),
            ),
            (
                vec![("Cache-Control", "no-cache, max-age=60, immutable")],
                Some(Immediately),
            ),
            (
                vec![("Cache-Control", "immutable, max-age=60")],
                Some(Never),
            ),
            (vec![("Cache-Control", "max-age=60")], Some(After(secs(60)))),
            (vec![("Cache-Control", "max-age=0")], Some(Immediately)),
            (
                vec![("Cache-Control", "max-age=60"), ("Age", "50")],
                Some(After(secs(10))),
            ),
            (
                vec![("Cache-Control", "max-age=60"), ("Age", "70")],
                Some(Immediately),
            ),
            // max-age beats Expires.
            (
                vec![
                    ("Cache-Control", "max-age=60"),
                    ("Expires", expires),
                    ("Date", date),
                ],
                Some(After(secs(60))),
            ),
            // Expires with Date: a lifetime, clock skew does not matter.
            (
                vec![("Expires", expires), ("Date", date)],
                Some(After(secs(100))),
            ),
            (
                vec![("Expires", expires), ("Date", date), ("Age", "40")],
                Some(After(secs(60))),
            ),
            (
                vec![("Expires", date), ("Date", expires)],
                Some(Immediately),
            ),
            // Expires without Date: absolute.
            (
                vec![("Expires", expires)],
                Some(At(UNIX_EPOCH + secs(1_420_070_500))),
            ),
            // Invalid Expires: already expired.
            (vec![("Expires", "-1")], Some(Immediately)),
        ];
        for (headers, expected) in cases {
            assert_eq!(
                directives(&headers).response_expire_after(),
                expected,
                "{headers:?}"
            );
        }
    }

    // ---- CachePolicy --------------------------------------------------------------------

    #[test]
    fn defaults_match_requests_cache() {
        let p = CachePolicy::default();
        assert_eq!(p.expire_after, ExpireAfter::Never);
        assert_eq!(p.allowed_codes, [200]);
        assert_eq!(p.allowed_methods, ["GET", "HEAD"]);
        assert!(!p.cache_control);
        assert!(p.filter.is_none());
        assert!(p.urls_expire_after.is_empty());
        let r = response("https://e.test/", &[]);
        assert!(p.should_save(&r));
        assert_eq!(p.expires_for(&r, now()), None);
    }

    #[test]
    fn methods_and_codes() {
        let p = CachePolicy::new();
        let mut r = response("https://e.test/", &[]);
        r.request.method = "head".to_owned();
        assert!(p.should_save(&r));
        r.request.method = "POST".to_owned();
        assert!(!p.should_save(&r));
        let p = p
            .with_allowed_methods(["GET", "POST"])
            .with_allowed_codes([200, 404]);
        assert!(p.should_save(&r));
        r.status = 404;
        assert!(p.should_save(&r));
        r.status = 500;
        assert!(!p.should_save(&r));
        assert!(p.is_method_allowed("post") && !p.is_method_allowed("PUT"));
        assert!(p.is_status_allowed(404) && !p.is_status_allowed(201));
    }

    #[test]
    fn redirects_use_the_original_request() {
        let p = CachePolicy::new()
            .with_url_expire_after("old.test", ExpireAfter::After(secs(1)))
            .unwrap()
            .with_url_expire_after("new.test", ExpireAfter::After(secs(2)))
            .unwrap();
        let mut r = response("https://new.test/", &[]);
        let mut hop =
            CachedResponse::new(CachedRequest::new("POST", "https://old.test/"), 303, vec![]);
        hop.request.headers.append("Cache-Control", "no-store");
        r.history.push(hop.clone());
        // The original request was a POST with no-store.
        assert!(!p.should_save(&r));
        assert_eq!(p.expire_after_for(&r), ExpireAfter::DoNotCache);
        r.history[0].request.headers = Headers::new();
        assert_eq!(p.expire_after_for(&r), ExpireAfter::After(secs(1)));
        assert!(!p.should_save(&r), "POST is not an allowed method");
        r.history.clear();
        assert_eq!(p.expire_after_for(&r), ExpireAfter::After(secs(2)));
    }

    #[test]
    fn full_precedence_chain() {
        let p = CachePolicy::new()
            .with_expire_after(ExpireAfter::After(secs(1000)))
            .with_url_expire_after("e.test/urls", ExpireAfter::After(secs(500)))
            .unwrap()
            .with_cache_control(true);
        let t = now();

        // 5. session default
        let r = response("https://e.test/other", &[]);
        assert_eq!(p.expires_for(&r, t), Some(t + secs(1000)));
        // 4. URL rule beats the default
        let mut r = response("https://e.test/urls/1", &[]);
        assert_eq!(p.expires_for(&r, t), Some(t + secs(500)));
        // 3. request max-age beats URL rules
        r.request.headers.append("Cache-Control", "max-age=100");
        assert_eq!(p.expires_for(&r, t), Some(t + secs(100)));
        // 2. response headers beat request max-age
        r.headers.append("Cache-Control", "max-age=10");
        assert_eq!(p.expires_for(&r, t), Some(t + secs(10)));
        // 1. request no-store beats everything
        r.request.headers.append("Cache-Control", "no-store");
        assert_eq!(p.expire_after_for(&r), ExpireAfter::DoNotCache);
        assert!(!p.should_save(&r));

        // Without cache_control, response headers are ignored, request headers are not.
        let p = p.with_cache_control(false);
        let mut r = response(
            "https://e.test/urls/1",
            &[("Cache-Control", "no-store, max-age=10")],
        );
        assert!(p.should_save(&r));
        assert_eq!(p.expires_for(&r, t), Some(t + secs(500)));
        r.request.headers.append("Cache-Control", "max-age=0");
        assert_eq!(p.expires_for(&r, t), Some(t));
        assert!(p.should_save(&r));
    }

    #[test]
    fn cache_control_on_responses() {
        let p = CachePolicy::new()
            .with_expire_after(ExpireAfter::After(secs(1000)))
            .with_cache_control(true);
        let t = now();
        let no_store = response("https://e.test/", &[("Cache-Control", "no-store")]);
        assert!(!p.should_save(&no_store));
        let no_cache = response("https://e.test/", &[("Cache-Control", "no-cache")]);
        assert!(p.should_save(&no_cache));
        assert_eq!(p.expires_for(&no_cache, t), Some(t));
        let immutable = response("https://e.test/", &[("Cache-Control", "immutable")]);
        assert_eq!(p.expires_for(&immutable, t), None);
        let absolute = response(
            "https://e.test/",
            &[("Expires", "Thu, 01 Jan 2015 00:00:00 GMT")],
        );
        assert_eq!(
            p.expires_for(&absolute, t),
            Some(UNIX_EPOCH + secs(1_420_070_400))
        );
        // No caching headers: fall through to the default.
        let plain = response("https://e.test/", &[("Content-Type", "text/plain")]);
        assert_eq!(p.expires_for(&plain, t), Some(t + secs(1000)));
    }

    #[test]
    fn do_not_cache_rules() {
        let p = CachePolicy::new()
            .with_url_expire_after("keep.test", ExpireAfter::Never)
            .unwrap()
            .with_url_expire_after("*", ExpireAfter::DoNotCache)
            .unwrap();
        assert!(p.should_save(&response("https://keep.test/a", &[])));
        assert!(!p.should_save(&response("https://drop.test/a", &[])));
        let p = CachePolicy::new().with_expire_after(ExpireAfter::DoNotCache);
        assert!(!p.should_save(&response("https://x.test/", &[])));
    }

    #[test]
    fn filter_callback() {
        let p = CachePolicy::new().with_filter(|r: &CachedResponse| !r.body.is_empty());
        let r = response("https://e.test/", &[]);
        assert!(p.should_save(&r));
        let mut empty = r.clone();
        empty.body.clear();
        assert!(!p.should_save(&empty));
        let cloned = p.clone();
        assert!(!cloned.should_save(&empty));
        let debug = format!("{p:?}");
        assert!(debug.contains("filter: Some(\"<fn>\")"), "{debug}");
        assert!(format!("{:?}", CachePolicy::new()).contains("filter: None"));
    }

    #[test]
    fn policy_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<CachePolicy>();
        assert_send_sync::<UrlsExpireAfter>();
    }
}
