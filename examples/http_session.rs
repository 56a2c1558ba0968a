//! Transparent HTTP caching with `CachedSession`: a miss, a hit, a revalidation (`304`) and
//! `stale-if-error`, against a small origin server this example starts on loopback, and an
//! embedded DynamoDB Local (or `DYNAMODICT_ENDPOINT`).
//!
//! ```sh
//! cargo run --example http_session --features reqwest
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use dynamodict::session::CachedSession;

/// The origin: `/news` is fresh for one second and carries an `ETag`; a request naming that
/// ETag gets `304 Not Modified`. While `down`, connections are closed without an answer.
struct Origin {
    url: String,
    requests: AtomicUsize,
    down: AtomicBool,
}

fn start_origin() -> std::io::Result<Arc<Origin>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let origin = Arc::new(Origin {
        url: format!("http://{}/news", listener.local_addr()?),
        requests: AtomicUsize::new(0),
        down: AtomicBool::new(false),
    });
    let shared = origin.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            if shared.down.load(Ordering::SeqCst) {
                continue; // dropped: the connection closes unanswered
            }
            let mut conditional = false;
            for line in BufReader::new(&stream).lines() {
                let Ok(line) = line else { break };
                conditional |= line.eq_ignore_ascii_case("if-none-match: \"v1\"");
                if line.is_empty() {
                    break;
                }
            }
            shared.requests.fetch_add(1, Ordering::SeqCst);
            let reply = if conditional {
                "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nCache-Control: max-age=1\r\n\
                 Connection: close\r\n\r\n"
                    .to_owned()
            } else {
                let body = "today's news";
                format!(
                    "HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nCache-Control: max-age=1\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    Ok(origin)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let origin = start_origin()?;
    let session = CachedSession::builder("http-session-example")
        .cache(|c| c.namespace(format!("news-{}", std::process::id())))
        .stale_if_error(Duration::from_secs(600))
        .local()
        .build()?;
    let show = |label: &str, response: &dynamodict::session::SessionResponse| {
        println!(
            "{label:<28} {} {:?} -> {:?} (origin requests so far: {})",
            response.status,
            response.text().unwrap_or("<binary>"),
            response.cache_status(),
            origin.requests.load(Ordering::SeqCst)
        );
    };

    let miss = session.get(&origin.url).send()?;
    show("first request (miss)", &miss);
    let hit = session.get(&origin.url).send()?;
    show("second request (hit)", &hit);
    assert!(hit.from_cache());

    std::thread::sleep(Duration::from_millis(1100));
    let revalidated = session.get(&origin.url).send()?;
    show("after 1 s (304)", &revalidated);
    assert!(revalidated.is_revalidated());

    std::thread::sleep(Duration::from_millis(1100));
    origin.down.store(true, Ordering::SeqCst);
    let stale = session.get(&origin.url).send()?;
    show("origin down (stale-if-error)", &stale);
    assert!(stale.is_stale());

    session.cache().clear()?;
    Ok(())
}
