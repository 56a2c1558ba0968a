//! Helpers shared by the bench binaries: quick mode, payloads, raw SDK clients, criterion set-up.

#![allow(dead_code)] // each bench binary uses a different subset

use std::time::{Duration, UNIX_EPOCH};

use criterion::Criterion;
use dynamodict::aws_sdk_dynamodb::Client;
use dynamodict::aws_sdk_dynamodb::config::retry::RetryConfig;
use dynamodict::aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
pub use dynamodict::cache::{CachedRequest, CachedResponse};
use serde::{Deserialize, Serialize};

/// Environment variable that switches every bench to tiny sizes and short measurements.
pub const QUICK_ENV: &str = "DYNAMODICT_BENCH_QUICK";

/// Tiny sizes and short measurements: when `DYNAMODICT_BENCH_QUICK` is set to something other
/// than empty or `0`, or when the binary runs without `--bench` (`cargo test --benches`, where
/// criterion runs every benchmark once as a test).
pub fn quick() -> bool {
    std::env::var_os(QUICK_ENV).is_some_and(|v| !v.is_empty() && v != "0")
        || !std::env::args().any(|a| a == "--bench")
}

/// Criterion defaults for these benches; command-line flags (`--warm-up-time`,
/// `--measurement-time`, `--sample-size`) still override them.
pub fn criterion(sample_size: usize) -> Criterion {
    let (warm_up, measure) = if quick() {
        (Duration::from_millis(200), Duration::from_millis(500))
    } else {
        (Duration::from_secs(1), Duration::from_secs(3))
    };
    Criterion::default()
        .sample_size(sample_size.max(10))
        .warm_up_time(warm_up)
        .measurement_time(measure)
}

/// A small struct, typical of a plain map value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Small {
    pub id: u64,
    pub name: String,
    pub tags: Vec<String>,
    pub score: f64,
    pub active: bool,
}

pub fn small() -> Small {
    Small {
        id: 42_424_242,
        name: "alice.example".to_owned(),
        tags: vec!["admin".to_owned(), "beta".to_owned(), "eu-west".to_owned()],
        score: 97.25,
        active: true,
    }
}

/// `len` bytes of text that compresses like a typical HTML or JSON body (deterministic).
pub fn body(len: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "<div class=\"item\">",
        "</div>",
        "lorem",
        "ipsum",
        "\"id\": ",
        "dolor",
        "sit",
        "amet",
        "<span>",
        "</span>",
        "consectetur",
        "adipiscing",
        "elit",
        "\n",
        "sed do",
        "eiusmod",
    ];
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let mut out = Vec::with_capacity(len + 32);
    while out.len() < len {
        out.extend_from_slice(WORDS[rng.usize(..WORDS.len())].as_bytes());
        if rng.u8(..4) == 0 {
            out.extend_from_slice(rng.u32(..).to_string().as_bytes());
        }
        out.push(b' ');
    }
    out.truncate(len);
    out
}

/// A `200 OK` response with eight typical headers, both timestamps and a body of `body_len`
/// bytes (timestamps on whole milliseconds, so it survives a round trip unchanged).
pub fn response(body_len: usize) -> CachedResponse {
    let url = "https://api.example.com/v1/items?page=3&per_page=50";
    let mut r = CachedResponse::new(CachedRequest::new("GET", url), 200, body(body_len));
    for (name, value) in [
        ("Content-Type", "text/html; charset=utf-8".to_owned()),
        ("Content-Length", body_len.to_string()),
        ("Date", "Fri, 21 Nov 2025 19:37:00 GMT".to_owned()),
        ("Server", "nginx/1.25.3".to_owned()),
        ("Cache-Control", "public, max-age=3600".to_owned()),
        ("ETag", "\"5f3c9a7e1b2d4c6f\"".to_owned()),
        ("Vary", "Accept-Encoding".to_owned()),
        ("Set-Cookie", "session=abc123; Path=/; HttpOnly".to_owned()),
    ] {
        r.headers.append(name, value);
    }
    r.created_at = UNIX_EPOCH + Duration::from_millis(1_763_753_820_123);
    r.expires = Some(r.created_at + Duration::from_secs(3600));
    r
}

/// A raw async SDK client for DynamoDB Local at `endpoint` (static credentials, us-east-1,
/// standard retries, the SDK's default settings otherwise: no timeouts).
pub fn raw_client(endpoint: &str) -> Client {
    let config = dynamodict::aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::from_static("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("bench", "bench", None, None, "bench"))
        // Like the dict's client: 3 attempts (a pooled connection that the server closed while
        // idle fails the first attempt).
        .retry_config(RetryConfig::standard())
        .build();
    Client::from_conf(config)
}

/// A current-thread tokio runtime, like the one the dict drives its requests with.
pub fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread tokio runtime")
}

/// `VmHWM` and `VmRSS` of this process in KiB, from `/proc/self/status`.
pub fn rss_kib() -> std::io::Result<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0)
    };
    Ok((field("VmHWM:"), field("VmRSS:")))
}

/// Starts a loopback TCP relay to `upstream` (`host:port`) that holds every chunk of bytes for
/// `one_way` in each direction, to emulate a network round trip (as to DynamoDB in an AWS
/// region) in front of DynamoDB Local. Returns its endpoint URL. The relay runs on its own
/// thread and current-thread runtime until the process exits; tokio's timer has millisecond
/// granularity, so a delay is at least about 1 ms.
pub fn start_delay_relay(upstream: &str, one_way: Duration) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind};
    let upstream: std::net::SocketAddr = upstream
        .parse()
        .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("{upstream}: {e}")))?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let rt = current_thread_runtime();
    std::thread::Builder::new()
        .name("delay-relay".into())
        .spawn(move || {
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                while let Ok((client, _)) = listener.accept().await {
                    tokio::spawn(async move {
                        let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                            return;
                        };
                        let _ = (client.set_nodelay(true), server.set_nodelay(true));
                        let (client_read, client_write) = client.into_split();
                        let (server_read, server_write) = server.into_split();
                        tokio::join!(
                            delayed_pipe(client_read, server_write, one_way),
                            delayed_pipe(server_read, client_write, one_way)
                        );
                    });
                }
            })
        })?;
    Ok(format!("http://{addr}"))
}

async fn delayed_pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buf).await {
            if tx
                .send((tokio::time::Instant::now() + delay, buf[..n].to_vec()))
                .is_err()
            {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}
