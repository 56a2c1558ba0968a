//! Sending a request to the origin with `reqwest::blocking`, following redirects hop by hop so
//! that every hop is recorded in the response's history (and becomes a cache alias).

use std::time::Duration;

use reqwest::blocking::Client;

use crate::cache::{CachedRequest, CachedResponse};
use crate::error::chain_message;
use crate::{Error, Result};

/// Headers that must not follow a redirect to another origin (as browsers and reqwest do).
const SENSITIVE: &[&str] = &[
    "authorization",
    "cookie",
    "proxy-authorization",
    "www-authenticate",
];

/// Sends `request`, following up to `max_redirects` redirects itself. The returned response's
/// `request` is the last hop's; `history` holds the redirect responses, oldest first.
///
/// A client that follows redirects on its own (reqwest's default) hands back only the last
/// response; it is then recorded as the answer to `request`, without hops.
pub(crate) fn fetch(
    client: &Client,
    request: CachedRequest,
    max_redirects: usize,
    timeout: Option<Duration>,
) -> Result<CachedResponse> {
    let mut history: Vec<CachedResponse> = Vec::new();
    let mut current = request;
    loop {
        let response = send_one(client, &current, timeout)?;
        let next = match redirect_target(&current, &response) {
            Some(next) if max_redirects > 0 => next,
            _ => {
                let mut response = response;
                response.history = history;
                return Ok(response);
            }
        };
        if history.len() >= max_redirects {
            return Err(Error::Http {
                url: history
                    .first()
                    .map_or(&current.url, |h| &h.request.url)
                    .clone(),
                message: format!(
                    "more than {max_redirects} redirects (the last to {}); raise \
                     `max_redirects` if this is expected",
                    next.url
                ),
                transient: false,
            });
        }
        history.push(response);
        current = next;
    }
}

/// One request, one response (no redirects followed here unless the client does so itself).
fn send_one(
    client: &Client,
    request: &CachedRequest,
    timeout: Option<Duration>,
) -> Result<CachedResponse> {
    let method = reqwest::Method::from_bytes(request.method.as_bytes())
        .map_err(|e| Error::Config(format!("invalid HTTP method {:?}: {e}", request.method)))?;
    let url = reqwest::Url::parse(&request.url).map_err(|e| Error::InvalidUrl {
        url: request.url.clone(),
        reason: e.to_string(),
    })?;
    let mut outgoing = client
        .request(method, url)
        .headers(request.headers.to_header_map()?);
    if !request.body.is_empty() {
        outgoing = outgoing.body(request.body.clone());
    }
    if let Some(timeout) = timeout {
        outgoing = outgoing.timeout(timeout);
    }
    let response = outgoing.send().map_err(|e| http_error(&request.url, &e))?;
    CachedResponse::from_reqwest(request.clone(), response).map_err(|e| match e {
        Error::Connection { message, .. } => Error::Http {
            url: request.url.clone(),
            message,
            transient: true,
        },
        other => other,
    })
}

/// A reqwest failure as [`Error::Http`], its causes on one line.
fn http_error(url: &str, error: &reqwest::Error) -> Error {
    Error::Http {
        url: url.to_owned(),
        message: chain_message(error),
        transient: error.is_connect()
            || error.is_timeout()
            || error.is_request()
            || error.is_body(),
    }
}

/// The request a redirect response leads to, or `None` when `response` is not a redirect to
/// follow (not 301/302/303/307/308, no usable `Location`, or not to http(s)).
fn redirect_target(request: &CachedRequest, response: &CachedResponse) -> Option<CachedRequest> {
    if !matches!(response.status, 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let base = reqwest::Url::parse(&request.url).ok()?;
    let location = response.headers.get_str("location")?;
    let next = base.join(location.trim()).ok()?;
    if !matches!(next.scheme(), "http" | "https") {
        return None;
    }
    let mut hop = request.clone();
    // 303 always, and 301/302 after anything but GET/HEAD, become a bodiless GET (RFC 9110
    // §15.4, as browsers and reqwest do); 307/308 repeat the request as it was.
    let to_get = response.status == 303
        || (matches!(response.status, 301 | 302)
            && !matches!(request.method.as_str(), "GET" | "HEAD"));
    if to_get && request.method != "HEAD" {
        hop.method = "GET".to_owned();
        hop.body.clear();
        hop.headers.retain(|name, _| {
            !name.eq_ignore_ascii_case("content-type")
                && !name.eq_ignore_ascii_case("content-length")
        });
    }
    if next.origin() != base.origin() {
        hop.headers
            .retain(|name, _| !SENSITIVE.iter().any(|s| name.eq_ignore_ascii_case(s)));
    }
    hop.url = next.into();
    Some(hop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect(status: u16, location: &str) -> CachedResponse {
        let mut r = CachedResponse::new(
            CachedRequest::new("GET", "https://a.test/x"),
            status,
            vec![],
        );
        r.headers.append("Location", location);
        r
    }

    #[test]
    fn redirects_resolve_relative_locations_and_change_methods_as_browsers_do() {
        let mut post = CachedRequest::new("POST", "https://a.test/dir/x?q=1");
        post.body = b"form".to_vec();
        post.headers.append("Content-Type", "text/plain");
        post.headers.append("Authorization", "Bearer t");
        let hop = redirect_target(&post, &redirect(302, "y")).unwrap();
        assert_eq!(
            (hop.method.as_str(), hop.url.as_str()),
            ("GET", "https://a.test/dir/y")
        );
        assert!(hop.body.is_empty() && !hop.headers.contains("content-type"));
        assert!(
            hop.headers.contains("authorization"),
            "same origin keeps credentials"
        );
        let kept = redirect_target(&post, &redirect(307, "/z")).unwrap();
        assert_eq!(
            (kept.method.as_str(), kept.body.as_slice()),
            ("POST", &b"form"[..])
        );
        let away = redirect_target(&post, &redirect(308, "https://b.test/")).unwrap();
        assert!(
            !away.headers.contains("authorization"),
            "credentials never leave the origin"
        );
        assert!(redirect_target(&post, &redirect(200, "/z")).is_none());
        assert!(redirect_target(&post, &redirect(301, "ftp://a.test/")).is_none());
        assert!(redirect_target(&post, &redirect(301, "http://[::1")).is_none());
        let head = CachedRequest::new("HEAD", "https://a.test/");
        assert_eq!(
            redirect_target(&head, &redirect(303, "/h")).unwrap().method,
            "HEAD"
        );
    }
}
