//! A fault-injecting HTTP/1.1 proxy for reliability tests against DynamoDB Local.
//!
//! [`FaultProxy`] listens on a loopback port and forwards DynamoDB JSON requests to an
//! upstream endpoint (normally DynamoDB Local). Synchronous test code switches faults at any
//! time with [`FaultProxy::set_fault`]; a fault applies to every request read after the call
//! returns, including requests on keep-alive connections that were opened before.
//!
//! The proxy understands HTTP/1.1 framing (request heads with a `Content-Length` or chunked
//! body, responses framed by `Content-Length`, chunked encoding or connection close), so it
//! works per request rather than per connection. Each client connection gets its own lazily
//! opened upstream connection. Malformed input never panics the proxy: the offending client
//! connection is simply closed (and counted in [`ProxyStats::malformed`]).
//!
//! The proxy runs a current-thread tokio runtime on its own OS thread. Dropping the
//! [`FaultProxy`] closes the listener, aborts every connection task and joins the thread.

// Not every test binary that includes this module uses every item.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Largest request or response head accepted (bytes).
const MAX_HEAD: usize = 64 * 1024;
/// Largest number of header fields accepted in one head.
const MAX_HEADERS: usize = 128;
/// Largest chunk-size or trailer line accepted in a chunked body.
const MAX_LINE: usize = 8 * 1024;
/// Largest message body accepted (DynamoDB's own limit is 16 MB).
const MAX_BODY: usize = 32 * 1024 * 1024;
/// Read granularity.
const READ_CHUNK: usize = 16 * 1024;
/// How long re-binding the listening port may take when [`Fault::Refuse`] is lifted.
const REBIND_PATIENCE: Duration = Duration::from_secs(5);
/// Content type of every DynamoDB JSON message.
const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// A fault the proxy injects. Set with [`FaultProxy::set_fault`].
///
/// Faults are sampled once per request, after the complete request has been read from the
/// client. `share` values are clamped to `0.0..=1.0` (NaN counts as `0.0`) and are applied
/// deterministically: a credit counter, reset by every [`FaultProxy::set_fault`], grows by
/// `share` per request (or per batch item) and a fault fires each time it reaches 1. With
/// `share: 0.5` exactly every second request (item) is hit, starting with the second.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Fault {
    /// Forward everything unchanged.
    #[default]
    None,
    /// Delay each request by this long before forwarding it.
    Latency(Duration),
    /// Read each request, never answer it and keep the connection open. The connection stays
    /// silent (its further input is discarded) until the client closes it, [`Fault::Refuse`]
    /// is set or the proxy is dropped, even if the fault is cleared meanwhile.
    Stall,
    /// Read each request, then abort the connection with a TCP RST (`SO_LINGER` 0) instead of
    /// answering.
    Reset,
    /// Close the listening socket, so that `connect()` fails with `ECONNREFUSED`, and close every
    /// open client connection. Setting any other fault re-binds the same port; the call returns
    /// once the port accepts connections again.
    Refuse,
    /// Answer a share of the requests with HTTP 400 and a DynamoDB throttling error instead of
    /// forwarding them. The connection stays usable.
    Throttle {
        /// Fraction of requests to throttle.
        share: f64,
        /// Which throttling error to answer with.
        code: ThrottleCode,
    },
    /// For `BatchWriteItem` and `BatchGetItem`: forward only part of the items (keys) upstream and
    /// report the rest in `UnprocessedItems` (`UnprocessedKeys`) of the response. A batch whose
    /// every item is withheld is answered by the proxy itself with HTTP 200. Other operations,
    /// and batch bodies that are not valid JSON, pass through unchanged.
    Unprocessed {
        /// Fraction of the items (keys) to withhold.
        share: f64,
    },
    /// For a share of the requests that match `operation` and `body_contains`: forward the
    /// request upstream and wait for the answer (so the server has applied it), keep the client
    /// connection silent for `delay`, then abort it with a TCP RST instead of answering. The
    /// client cannot tell whether the request was applied: it was. With a `delay` longer than
    /// the client's attempt timeout, the client times out instead of seeing the reset. Other
    /// requests pass through. [`ProxyStats::lost_replies`] counts each such request as soon as
    /// its answer is in (and thrown away).
    LoseReply {
        /// Only requests for this operation (the part of `X-Amz-Target` after the last `.`,
        /// e.g. `"PutItem"`); `None`: any operation.
        operation: Option<String>,
        /// Only requests whose body contains this text (e.g. `"g":{"S":"t` for the manifest of
        /// a large value); `None`: any body.
        body_contains: Option<String>,
        /// Fraction of the matching requests to hit (see [`Fault`] for the sampling).
        share: f64,
        /// How long the client waits in silence before the reset.
        delay: Duration,
    },
    /// For a share of the requests that match `operation` and `body_contains`: keep the request
    /// for `hold`, then forward it upstream on a connection of its own and throw the answer
    /// away: a request the network delivers late. The client connection stays silent meanwhile
    /// (its further input is discarded) until the client closes it, so a client whose attempt
    /// timeout is shorter than `hold` gives up (and may send the request again) before the server
    /// applies the first copy. Other requests pass through. [`ProxyStats::held`] counts the
    /// requests kept, [`ProxyStats::released`] those delivered and answered upstream afterwards;
    /// dropping the proxy before `hold` has passed loses the request instead.
    HoldThenForward {
        /// As in [`Fault::LoseReply`].
        operation: Option<String>,
        /// As in [`Fault::LoseReply`].
        body_contains: Option<String>,
        /// Fraction of the matching requests to hold.
        share: f64,
        /// How long each one is held before it is forwarded.
        hold: Duration,
    },
    /// For a share of the requests that match `operation` and `body_contains`: abort the
    /// connection with a TCP RST once the request has been read, without forwarding it (like
    /// [`Fault::Reset`], counted in [`ProxyStats::reset`], but only for some requests, e.g. the
    /// chunk batches of a large value's upload). Other requests pass through.
    ResetMatching {
        /// As in [`Fault::LoseReply`].
        operation: Option<String>,
        /// As in [`Fault::LoseReply`].
        body_contains: Option<String>,
        /// Fraction of the matching requests to reset.
        share: f64,
    },
    /// Answer every request for `operation` with HTTP 400 `AccessDeniedException`, as AWS does
    /// for a role without the permission, without forwarding it; other requests pass through.
    Deny {
        /// The operation refused (the part of `X-Amz-Target` after the last `.`).
        operation: String,
    },
}

/// The DynamoDB error answered by [`Fault::Throttle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThrottleCode {
    /// `ProvisionedThroughputExceededException`.
    ProvisionedThroughputExceeded,
    /// `ThrottlingException`.
    Throttling,
}

impl ThrottleCode {
    /// The `__type` field of the error body.
    pub fn error_type(self) -> &'static str {
        match self {
            Self::ProvisionedThroughputExceeded => {
                "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
            }
            Self::Throttling => "com.amazon.coral.availability#ThrottlingException",
        }
    }

    /// The error code an AWS SDK reports (the part of `__type` after `#`).
    pub fn code(self) -> &'static str {
        match self {
            Self::ProvisionedThroughputExceeded => "ProvisionedThroughputExceededException",
            Self::Throttling => "ThrottlingException",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::ProvisionedThroughputExceeded => {
                "The level of configured provisioned throughput for the table was exceeded. \
                 Consider increasing your provisioning level with the UpdateTable API."
            }
            Self::Throttling => "Rate of requests exceeds the allowed throughput.",
        }
    }

    /// The complete JSON error body the proxy answers with.
    pub fn error_body(self) -> Vec<u8> {
        let mut body = Map::new();
        body.insert("__type".into(), Value::from(self.error_type()));
        body.insert("message".into(), Value::from(self.message()));
        Value::Object(body).to_string().into_bytes()
    }
}

/// Counters of what the proxy has done since it started (see [`FaultProxy::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Client connections accepted.
    pub connections: u64,
    /// Complete requests read from clients, whatever happened to them next.
    pub requests: u64,
    /// Requests sent upstream (including delayed requests and trimmed batches).
    pub forwarded: u64,
    /// Requests delayed by [`Fault::Latency`].
    pub delayed: u64,
    /// Requests swallowed by [`Fault::Stall`].
    pub stalled: u64,
    /// Connections reset by [`Fault::Reset`].
    pub reset: u64,
    /// Client connections closed because of [`Fault::Refuse`].
    pub refused: u64,
    /// Requests answered with a throttling error by [`Fault::Throttle`].
    pub throttled: u64,
    /// Batch requests of which [`Fault::Unprocessed`] withheld at least one item or key.
    pub unprocessed_batches: u64,
    /// Items and keys withheld by [`Fault::Unprocessed`] and reported as unprocessed.
    pub unprocessed_items: u64,
    /// Batches answered by the proxy itself because every item was withheld.
    pub answered_locally: u64,
    /// Client connections closed because their input was not valid HTTP/1.x.
    pub malformed: u64,
    /// Requests that failed because the upstream was unreachable or broke off (the client got
    /// a 502 or a closed connection).
    pub upstream_errors: u64,
    /// Requests applied upstream whose answer [`Fault::LoseReply`] threw away.
    pub lost_replies: u64,
    /// Requests kept back by [`Fault::HoldThenForward`].
    pub held: u64,
    /// Held requests delivered upstream (and answered there) once their hold had passed.
    pub released: u64,
}

impl ProxyStats {
    /// Requests affected by any fault (delayed, stalled, reset, throttled or trimmed) plus
    /// connections closed by [`Fault::Refuse`].
    pub fn faulted(&self) -> u64 {
        self.delayed
            + self.stalled
            + self.reset
            + self.refused
            + self.throttled
            + self.unprocessed_batches
            + self.lost_replies
            + self.held
    }
}

/// A loopback TCP proxy that injects [`Fault`]s between a DynamoDB client and its endpoint.
///
/// All methods are synchronous and may be called from any thread. Dropping the proxy stops
/// its listener, closes every connection and joins its thread.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    control: mpsc::UnboundedSender<Command>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("fault", &self.fault())
            .finish_non_exhaustive()
    }
}

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1` (ephemeral port) that forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> io::Result<FaultProxy> {
        let std_listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = {
            let _guard = runtime.enter();
            TcpListener::from_std(std_listener)?
        };
        let shared = Arc::new(Shared::new(addr.port()));
        let (control, commands) = mpsc::unbounded_channel();
        let task_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("fault-proxy-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(run(listener, addr, upstream, task_shared, commands));
                // Dropping the runtime here cancels anything still spawned on it.
            })?;
        Ok(FaultProxy {
            addr,
            shared,
            control,
            thread: Some(thread),
        })
    }

    /// The endpoint URL for an SDK client, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address the proxy listens on (also while [`Fault::Refuse`] is set).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Switches to `fault`. Returns once the fault is in force: for [`Fault::Refuse`] the
    /// listener and all client connections are closed, and when leaving it the port is bound
    /// again.
    pub fn set_fault(&self, fault: Fault) {
        let (done, wait) = std::sync::mpsc::sync_channel(1);
        if self.control.send(Command::SetFault(fault, done)).is_ok() {
            // An error here means the proxy thread is gone; nothing left to wait for.
            let _ = wait.recv();
        }
    }

    /// Back to [`Fault::None`].
    pub fn clear(&self) {
        self.set_fault(Fault::None);
    }

    /// The fault currently in force.
    pub fn fault(&self) -> Fault {
        self.shared.state().fault.clone()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ProxyStats {
        self.shared.stats.snapshot()
    }

    /// How many complete requests were read per DynamoDB operation (the part of the
    /// `X-Amz-Target` header after the last `.`, e.g. `"Query"`, `"Scan"`, `"PutItem"`), since
    /// the proxy started, whatever the fault did to them. Requests without the header are
    /// counted under `""`.
    pub fn operations(&self) -> BTreeMap<String, u64> {
        self.shared.operations().clone()
    }

    /// How many requests for `operation` (e.g. `"Scan"`) were read so far.
    pub fn operation_count(&self, operation: &str) -> u64 {
        self.shared
            .operations()
            .get(operation)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.control.send(Command::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The socket address of the crate's shared DynamoDB Local
/// ([`DynamoDbLocal::shared`](dynamodict::local::DynamoDbLocal::shared), or the server named by
/// `DYNAMODICT_ENDPOINT`), for use as a proxy upstream. Panics if it cannot be started or
/// resolved.
pub fn local_upstream() -> SocketAddr {
    let server = dynamodict::local::DynamoDbLocal::shared()
        .unwrap_or_else(|e| panic!("DynamoDB Local must start for the proxy tests: {e}"));
    upstream_of(server.endpoint(), server.port())
}

/// Resolves the host of an `http://host[:port]` endpoint URL, with `port`.
pub fn upstream_of(endpoint: &str, port: u16) -> SocketAddr {
    use std::net::ToSocketAddrs;
    let authority = endpoint
        .split("://")
        .nth(1)
        .unwrap_or(endpoint)
        .split('/')
        .next()
        .unwrap_or_default();
    let host = match authority.rsplit_once(':') {
        Some((host, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !host.ends_with(':') => host,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .unwrap_or_else(|| panic!("cannot resolve the DynamoDB endpoint {endpoint:?}"))
}

/// CRC32 (IEEE 802.3, as used by the `x-amz-crc32` header) of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc = CRC_TABLE[((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

// ---------------------------------------------------------------------------------------------
// Shared state

enum Command {
    SetFault(Fault, std::sync::mpsc::SyncSender<()>),
    Shutdown,
}

struct FaultState {
    fault: Fault,
    credit: f64,
}

impl FaultState {
    /// Deterministic "share" sampling: true for `share` of the calls.
    fn hit(&mut self, share: f64) -> bool {
        let share = if share.is_nan() {
            0.0
        } else {
            share.clamp(0.0, 1.0)
        };
        self.credit += share;
        if self.credit >= 1.0 - 1e-9 {
            self.credit = (self.credit - 1.0).max(0.0);
            true
        } else {
            false
        }
    }
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    requests: AtomicU64,
    forwarded: AtomicU64,
    delayed: AtomicU64,
    stalled: AtomicU64,
    reset: AtomicU64,
    refused: AtomicU64,
    throttled: AtomicU64,
    unprocessed_batches: AtomicU64,
    unprocessed_items: AtomicU64,
    answered_locally: AtomicU64,
    malformed: AtomicU64,
    upstream_errors: AtomicU64,
    lost_replies: AtomicU64,
    held: AtomicU64,
    released: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> ProxyStats {
        let get = |c: &AtomicU64| c.load(Ordering::SeqCst);
        ProxyStats {
            connections: get(&self.connections),
            requests: get(&self.requests),
            forwarded: get(&self.forwarded),
            delayed: get(&self.delayed),
            stalled: get(&self.stalled),
            reset: get(&self.reset),
            refused: get(&self.refused),
            throttled: get(&self.throttled),
            unprocessed_batches: get(&self.unprocessed_batches),
            unprocessed_items: get(&self.unprocessed_items),
            answered_locally: get(&self.answered_locally),
            malformed: get(&self.malformed),
            upstream_errors: get(&self.upstream_errors),
            lost_replies: get(&self.lost_replies),
            held: get(&self.held),
            released: get(&self.released),
        }
    }
}

fn bump(counter: &AtomicU64) {
    add(counter, 1);
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::SeqCst);
}

struct Shared {
    state: Mutex<FaultState>,
    stats: Counters,
    request_ids: AtomicU64,
    operations: Mutex<BTreeMap<String, u64>>,
    port: u16,
}

/// What to do with one request.
enum Action {
    Forward,
    Delay(Duration),
    Stall,
    Reset,
    Close,
    Throttle(ThrottleCode),
    Deny(String),
    Unprocessed(BatchKind, f64),
    LoseReply(Duration),
    Hold(Duration),
}

impl Shared {
    fn new(port: u16) -> Shared {
        Shared {
            state: Mutex::new(FaultState {
                fault: Fault::None,
                credit: 0.0,
            }),
            stats: Counters::default(),
            request_ids: AtomicU64::new(0),
            operations: Mutex::new(BTreeMap::new()),
            port,
        }
    }

    fn state(&self) -> MutexGuard<'_, FaultState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn operations(&self) -> MutexGuard<'_, BTreeMap<String, u64>> {
        self.operations.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one request under its `X-Amz-Target` operation.
    fn count_operation(&self, request: &Request) {
        let target = request.head.get("x-amz-target").unwrap_or_default();
        let operation = target.rsplit('.').next().unwrap_or_default();
        *self.operations().entry(operation.to_owned()).or_insert(0) += 1;
    }

    fn set_fault(&self, fault: Fault) {
        let mut state = self.state();
        state.fault = fault;
        state.credit = 0.0;
    }

    fn decide(&self, request: &Request) -> Action {
        let mut state = self.state();
        match state.fault.clone() {
            Fault::None => Action::Forward,
            Fault::Latency(delay) => Action::Delay(delay),
            Fault::Stall => Action::Stall,
            Fault::Reset => Action::Reset,
            Fault::Refuse => Action::Close,
            Fault::Throttle { share, code } => {
                if state.hit(share) {
                    Action::Throttle(code)
                } else {
                    Action::Forward
                }
            }
            Fault::Deny { operation } => {
                if request.matches(Some(&operation), None) {
                    Action::Deny(operation)
                } else {
                    Action::Forward
                }
            }
            Fault::Unprocessed { share } => match BatchKind::of(request) {
                Some(kind) => Action::Unprocessed(kind, share),
                None => Action::Forward,
            },
            Fault::LoseReply {
                operation,
                body_contains,
                share,
                delay,
            } => {
                if request.matches(operation.as_deref(), body_contains.as_deref())
                    && state.hit(share)
                {
                    Action::LoseReply(delay)
                } else {
                    Action::Forward
                }
            }
            Fault::HoldThenForward {
                operation,
                body_contains,
                share,
                hold,
            } => {
                if request.matches(operation.as_deref(), body_contains.as_deref())
                    && state.hit(share)
                {
                    Action::Hold(hold)
                } else {
                    Action::Forward
                }
            }
            Fault::ResetMatching {
                operation,
                body_contains,
                share,
            } => {
                if request.matches(operation.as_deref(), body_contains.as_deref())
                    && state.hit(share)
                {
                    Action::Reset
                } else {
                    Action::Forward
                }
            }
        }
    }

    /// `n` deterministic withhold decisions.
    fn pick(&self, share: f64, n: usize) -> Vec<bool> {
        let mut state = self.state();
        (0..n).map(|_| state.hit(share)).collect()
    }

    fn request_id(&self) -> String {
        let n = self.request_ids.fetch_add(1, Ordering::SeqCst);
        format!("FAULTPROXY{:05}{:037}", self.port, n)
    }
}

// ---------------------------------------------------------------------------------------------
// Listener / control loop

async fn run(
    listener: TcpListener,
    addr: SocketAddr,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut listener = Some(listener);
    let mut connections: JoinSet<()> = JoinSet::new();
    // Set when lifting Refuse could not re-bind the port in time; retried periodically.
    let mut rebind_pending = false;
    loop {
        tokio::select! {
            biased;
            command = commands.recv() => match command {
                None | Some(Command::Shutdown) => break,
                Some(Command::SetFault(fault, done)) => {
                    let refuse = fault == Fault::Refuse;
                    shared.set_fault(fault);
                    if refuse {
                        rebind_pending = false;
                        listener = None;
                        connections.abort_all();
                        while let Some(result) = connections.join_next().await {
                            if result.is_err_and(|e| e.is_cancelled()) {
                                bump(&shared.stats.refused);
                            }
                        }
                    } else if listener.is_none() {
                        listener = rebind(addr, REBIND_PATIENCE).await;
                        rebind_pending = listener.is_none();
                    }
                    let _ = done.send(());
                }
            },
            accepted = accept(listener.as_ref()) => match accepted {
                Ok((stream, _)) => {
                    bump(&shared.stats.connections);
                    connections.spawn(serve(stream, upstream, Arc::clone(&shared)));
                }
                // E.g. out of file descriptors: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = tokio::time::sleep(Duration::from_millis(100)), if rebind_pending => {
                listener = rebind(addr, Duration::ZERO).await;
                rebind_pending = listener.is_none();
            }
        }
    }
    drop(listener);
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

async fn accept(listener: Option<&TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// Binds `addr` again (`SO_REUSEADDR`, so connections in `TIME_WAIT` do not block it),
/// retrying for up to `patience`.
async fn rebind(addr: SocketAddr, patience: Duration) -> Option<TcpListener> {
    let deadline = Instant::now() + patience;
    loop {
        let attempt = (|| {
            let socket = if addr.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            socket.set_reuseaddr(true)?;
            socket.bind(addr)?;
            socket.listen(1024)
        })();
        match attempt {
            Ok(listener) => return Some(listener),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(_) => return None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One client connection

async fn serve(client: TcpStream, upstream_addr: SocketAddr, shared: Arc<Shared>) {
    let _ = client.set_nodelay(true);
    let mut client = Conn::new(client);
    let mut upstream: Option<Conn> = None;
    loop {
        let request = match read_request(&mut client).await {
            Ok(request) => request,
            Err(ReadErr::Malformed) => {
                bump(&shared.stats.malformed);
                return;
            }
            Err(ReadErr::Closed | ReadErr::Io) => return,
        };
        bump(&shared.stats.requests);
        shared.count_operation(&request);
        let mut link = Link {
            client: &mut client,
            upstream: &mut upstream,
            upstream_addr,
            shared: &shared,
        };
        let keep_open = match shared.decide(&request) {
            Action::Forward => link.pass_through(&request).await,
            Action::Delay(delay) => {
                bump(&shared.stats.delayed);
                tokio::time::sleep(delay).await;
                link.pass_through(&request).await
            }
            Action::Stall => {
                bump(&shared.stats.stalled);
                upstream = None;
                client.drain().await;
                false
            }
            Action::Reset => {
                bump(&shared.stats.reset);
                let _ = client.io.set_zero_linger();
                false
            }
            Action::Close => {
                bump(&shared.stats.refused);
                false
            }
            Action::Throttle(code) => {
                bump(&shared.stats.throttled);
                let response = local_response(
                    &shared,
                    400,
                    "Bad Request",
                    &code.error_body(),
                    request.close,
                );
                link.reply(&response, request.close).await
            }
            Action::Deny(operation) => {
                let body = serde_json::json!({
                    "__type": "com.amazonaws.dynamodb.v20120810#AccessDeniedException",
                    "message": format!(
                        "User: arn:aws:sts::123456789012:assumed-role/app/session is not \
                         authorized to perform: dynamodb:{operation} because no identity-based \
                         policy allows the dynamodb:{operation} action"
                    ),
                });
                let response = local_response(
                    &shared,
                    400,
                    "Bad Request",
                    body.to_string().as_bytes(),
                    request.close,
                );
                link.reply(&response, request.close).await
            }
            Action::Unprocessed(kind, share) => link.unprocessed(&request, kind, share).await,
            Action::LoseReply(delay) => {
                if link.forward(&request, &request.wire()).await.is_some() {
                    bump(&shared.stats.lost_replies);
                    if !delay.is_zero() {
                        // Silent until the delay is over or the client gives up.
                        let _ = tokio::time::timeout(delay, client.drain()).await;
                    }
                    let _ = client.io.set_zero_linger();
                }
                false
            }
            Action::Hold(hold) => {
                bump(&shared.stats.held);
                let late = Arc::clone(&shared);
                let (wire, head_method) = (request.wire(), request.head_method);
                tokio::spawn(async move {
                    tokio::time::sleep(hold).await;
                    if deliver_late(upstream_addr, &wire, head_method).await {
                        bump(&late.stats.released);
                    } else {
                        bump(&late.stats.upstream_errors);
                    }
                });
                upstream = None;
                client.drain().await;
                false
            }
        };
        if !keep_open {
            return;
        }
    }
}

/// Sends a held request upstream on a connection of its own and reads (and drops) the answer.
/// Whether an answer came back.
async fn deliver_late(upstream: SocketAddr, wire: &[u8], head_method: bool) -> bool {
    let Ok(stream) = TcpStream::connect(upstream).await else {
        return false;
    };
    let _ = stream.set_nodelay(true);
    let mut conn = Conn::new(stream);
    conn.io.write_all(wire).await.is_ok() && read_response(&mut conn, head_method).await.is_ok()
}

/// A client connection together with its upstream connection.
struct Link<'a> {
    client: &'a mut Conn,
    upstream: &'a mut Option<Conn>,
    upstream_addr: SocketAddr,
    shared: &'a Shared,
}

enum UpstreamErr {
    /// Could not connect; the client gets a 502.
    Unreachable,
    /// The exchange broke off; the client connection is closed.
    Broken,
}

impl Link<'_> {
    /// Writes `bytes` to the client; returns whether the connection stays open.
    async fn reply(&mut self, bytes: &[u8], close: bool) -> bool {
        self.client.io.write_all(bytes).await.is_ok() && !close
    }

    /// Forwards the request unchanged and relays the response unchanged.
    async fn pass_through(&mut self, request: &Request) -> bool {
        match self.forward(request, &request.wire()).await {
            Some(response) => {
                let close = request.close || response.close;
                self.reply(&response.wire(), close).await
            }
            None => false,
        }
    }

    /// Sends `wire` upstream and reads the response. `None` means the client connection must
    /// be closed (a 502 has been sent if the upstream was unreachable).
    async fn forward(&mut self, request: &Request, wire: &[u8]) -> Option<Response> {
        match self.exchange(request.head_method, wire).await {
            Ok(response) => Some(response),
            Err(error) => {
                bump(&self.shared.stats.upstream_errors);
                if let UpstreamErr::Unreachable = error {
                    let body = br#"{"__type":"FaultProxy#UpstreamUnavailable","message":"fault proxy cannot reach its upstream"}"#;
                    let response = local_response(self.shared, 502, "Bad Gateway", body, true);
                    let _ = self.client.io.write_all(&response).await;
                }
                None
            }
        }
    }

    async fn exchange(&mut self, head_method: bool, wire: &[u8]) -> Result<Response, UpstreamErr> {
        let mut counted = false;
        for attempt in 0..2 {
            let reused = self.upstream.is_some();
            if self.upstream.is_none() {
                let stream = TcpStream::connect(self.upstream_addr)
                    .await
                    .map_err(|_| UpstreamErr::Unreachable)?;
                let _ = stream.set_nodelay(true);
                *self.upstream = Some(Conn::new(stream));
            }
            let Some(conn) = self.upstream.as_mut() else {
                return Err(UpstreamErr::Broken);
            };
            // A reused keep-alive connection may have been closed by the upstream while idle:
            // retry once on a fresh connection if nothing at all came back.
            let retry = reused && attempt == 0;
            if conn.io.write_all(wire).await.is_err() {
                *self.upstream = None;
                if retry {
                    continue;
                }
                return Err(UpstreamErr::Broken);
            }
            if !counted {
                counted = true;
                bump(&self.shared.stats.forwarded);
            }
            match read_response(conn, head_method).await {
                Ok(response) => {
                    if response.close {
                        *self.upstream = None;
                    }
                    return Ok(response);
                }
                Err(ReadErr::Closed) if retry => *self.upstream = None,
                Err(_) => {
                    *self.upstream = None;
                    return Err(UpstreamErr::Broken);
                }
            }
        }
        Err(UpstreamErr::Broken)
    }

    /// [`Fault::Unprocessed`] for one batch request.
    async fn unprocessed(&mut self, request: &Request, kind: BatchKind, share: f64) -> bool {
        let shared = self.shared;
        let Some(split) = split_batch(kind, &request.body, |n| shared.pick(share, n)) else {
            return self.pass_through(request).await;
        };
        bump(&shared.stats.unprocessed_batches);
        add(&shared.stats.unprocessed_items, split.withheld_count as u64);
        let Some(body) = split.forward else {
            bump(&shared.stats.answered_locally);
            let body = local_batch_response(kind, split.withheld);
            let response = local_response(shared, 200, "OK", &body, request.close);
            return self.reply(&response, request.close).await;
        };
        let Some(response) = self.forward(request, &request.wire_with_body(&body)).await else {
            return false;
        };
        let close = request.close || response.close;
        let merged = if response.status == 200 {
            merge_unprocessed(kind, &response.body, split.withheld)
        } else {
            None
        };
        match merged {
            Some(body) => {
                let head = response.head.serialize(
                    &["content-length", "transfer-encoding", "x-amz-crc32"],
                    &[
                        ("x-amz-crc32", crc32(&body).to_string()),
                        ("Content-Length", body.len().to_string()),
                    ],
                );
                let mut wire = head;
                wire.extend_from_slice(&body);
                self.reply(&wire, close).await
            }
            None => self.reply(&response.wire(), close).await,
        }
    }
}

/// A complete response generated by the proxy itself.
fn local_response(shared: &Shared, status: u16, reason: &str, body: &[u8], close: bool) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\n\
         Date: {}\r\n\
         x-amzn-RequestId: {}\r\n\
         Content-Type: {CONTENT_TYPE}\r\n\
         x-amz-crc32: {}\r\n\
         Content-Length: {}\r\n",
        http_date(SystemTime::now()),
        shared.request_id(),
        crc32(body),
        body.len()
    );
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut wire = head.into_bytes();
    wire.extend_from_slice(body);
    wire
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), as in the `Date` header.
fn http_date(time: SystemTime) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .min(253_402_300_799); // 9999-12-31T23:59:59
    let days = secs / 86_400;
    let (hour, minute, second) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm), all values non-negative.
    let z = days + 719_468;
    let (era, day_of_era) = (z / 146_097, z % 146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {hour:02}:{minute:02}:{second:02} GMT",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
    )
}

// ---------------------------------------------------------------------------------------------
// Batch splitting

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BatchKind {
    Write,
    Get,
}

impl BatchKind {
    fn of(request: &Request) -> Option<BatchKind> {
        let target = request.head.get("x-amz-target")?;
        match target.rsplit('.').next()?.trim() {
            "BatchWriteItem" => Some(BatchKind::Write),
            "BatchGetItem" => Some(BatchKind::Get),
            _ => None,
        }
    }

    fn unprocessed_field(self) -> &'static str {
        match self {
            BatchKind::Write => "UnprocessedItems",
            BatchKind::Get => "UnprocessedKeys",
        }
    }

    /// The item list of one table's entry in `RequestItems`.
    fn entries(self, spec: &Value) -> Option<&Vec<Value>> {
        match self {
            BatchKind::Write => spec.as_array(),
            BatchKind::Get => spec.get("Keys")?.as_array(),
        }
    }
}

#[derive(Debug)]
struct Split {
    /// The body to forward, or `None` when every item was withheld.
    forward: Option<Vec<u8>>,
    /// Withheld entries in `RequestItems` format.
    withheld: Map<String, Value>,
    withheld_count: usize,
}

/// Splits a batch request body. `pick(n)` returns `n` decisions (true = withhold). Returns
/// `None` when the body is not a batch request this proxy understands or nothing is withheld.
fn split_batch(
    kind: BatchKind,
    body: &[u8],
    pick: impl FnOnce(usize) -> Vec<bool>,
) -> Option<Split> {
    let Ok(Value::Object(mut root)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    let Some(Value::Object(items)) = root.remove("RequestItems") else {
        return None;
    };
    let total = items
        .values()
        .filter_map(|spec| kind.entries(spec))
        .map(Vec::len)
        .sum();
    let mut decisions = pick(total).into_iter();
    let mut kept = Map::new();
    let mut withheld = Map::new();
    let mut withheld_count = 0;
    for (table, spec) in items {
        // Detach the entry list from its table spec; anything unexpected is forwarded as is.
        let (entries, rest) = match (kind, spec) {
            (BatchKind::Write, Value::Array(list)) => (list, None),
            (BatchKind::Get, Value::Object(mut object)) => match object.remove("Keys") {
                Some(Value::Array(list)) => (list, Some(object)),
                Some(other) => {
                    object.insert("Keys".into(), other);
                    kept.insert(table, Value::Object(object));
                    continue;
                }
                None => {
                    kept.insert(table, Value::Object(object));
                    continue;
                }
            },
            (_, other) => {
                kept.insert(table, other);
                continue;
            }
        };
        let attach = |list: Vec<Value>| match &rest {
            None => Value::Array(list),
            Some(object) => {
                let mut object = object.clone();
                object.insert("Keys".into(), Value::Array(list));
                Value::Object(object)
            }
        };
        if entries.is_empty() {
            // Invalid upstream too; keep it so the client sees DynamoDB's own error.
            kept.insert(table, attach(entries));
            continue;
        }
        let (mut keep, mut hold) = (Vec::new(), Vec::new());
        for entry in entries {
            if decisions.next().unwrap_or(false) {
                hold.push(entry);
            } else {
                keep.push(entry);
            }
        }
        withheld_count += hold.len();
        if !hold.is_empty() {
            withheld.insert(table.clone(), attach(hold));
        }
        if !keep.is_empty() {
            kept.insert(table, attach(keep));
        }
    }
    if withheld_count == 0 {
        return None;
    }
    let forward = if kept.is_empty() {
        None
    } else {
        root.insert("RequestItems".into(), Value::Object(kept));
        Some(serde_json::to_vec(&Value::Object(root)).ok()?)
    };
    Some(Split {
        forward,
        withheld,
        withheld_count,
    })
}

/// Adds the withheld entries to the unprocessed map of an upstream 200 response body.
/// `None` if the body is not a JSON object.
fn merge_unprocessed(
    kind: BatchKind,
    body: &[u8],
    withheld: Map<String, Value>,
) -> Option<Vec<u8>> {
    let Ok(Value::Object(mut root)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    if kind == BatchKind::Get
        && let Some(Value::Object(responses)) = root.get_mut("Responses")
    {
        for table in withheld.keys() {
            responses
                .entry(table.clone())
                .or_insert_with(|| Value::Array(Vec::new()));
        }
    }
    let slot = root
        .entry(kind.unprocessed_field())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    let Value::Object(unprocessed) = slot else {
        return None;
    };
    for (table, spec) in withheld {
        match unprocessed.get_mut(&table) {
            Some(existing) => merge_entry(kind, existing, spec),
            None => {
                unprocessed.insert(table, spec);
            }
        }
    }
    serde_json::to_vec(&Value::Object(root)).ok()
}

fn merge_entry(kind: BatchKind, existing: &mut Value, spec: Value) {
    match (kind, existing, spec) {
        (BatchKind::Write, Value::Array(list), Value::Array(more)) => list.extend(more),
        (BatchKind::Get, Value::Object(object), Value::Object(mut more)) => {
            match (object.get_mut("Keys"), more.remove("Keys")) {
                (Some(Value::Array(keys)), Some(Value::Array(more_keys))) => keys.extend(more_keys),
                (_, Some(more_keys)) => {
                    object.insert("Keys".into(), more_keys);
                }
                (_, None) => {}
            }
        }
        (_, existing, spec) => *existing = spec,
    }
}

/// The response for a batch whose every item was withheld.
fn local_batch_response(kind: BatchKind, withheld: Map<String, Value>) -> Vec<u8> {
    let mut root = Map::new();
    if kind == BatchKind::Get {
        let responses: Map<String, Value> = withheld
            .keys()
            .map(|table| (table.clone(), Value::Array(Vec::new())))
            .collect();
        root.insert("Responses".into(), Value::Object(responses));
    }
    root.insert(kind.unprocessed_field().into(), Value::Object(withheld));
    Value::Object(root).to_string().into_bytes()
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.x framing

#[derive(Debug)]
enum ReadErr {
    /// The peer closed (or failed) before sending any byte of a message.
    Closed,
    /// The peer closed or failed in the middle of a message.
    Io,
    /// Not valid HTTP/1.x (or over a size limit).
    Malformed,
}

/// A parsed message head.
#[derive(Debug)]
struct Head {
    /// The head as received, including the final empty line.
    raw: Vec<u8>,
    start: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn parse(raw: Vec<u8>) -> Result<Head, ReadErr> {
        let text = std::str::from_utf8(&raw).map_err(|_| ReadErr::Malformed)?;
        let text = text.strip_suffix("\r\n\r\n").ok_or(ReadErr::Malformed)?;
        let mut lines = text.split("\r\n");
        let start = lines.next().unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        for line in lines {
            if headers.len() >= MAX_HEADERS {
                return Err(ReadErr::Malformed);
            }
            let (name, value) = line.split_once(':').ok_or(ReadErr::Malformed)?;
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(ReadErr::Malformed);
            }
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        Ok(Head {
            raw,
            start,
            headers,
        })
    }

    fn values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values(name).next()
    }

    /// The comma-separated tokens of every `name` header, in order.
    fn tokens<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> {
        self.values(name)
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name).any(|t| t.eq_ignore_ascii_case(token))
    }

    /// `Some(true)` for a body in chunked transfer coding, `Some(false)` for another transfer
    /// coding, `None` without `Transfer-Encoding`.
    fn chunked(&self) -> Option<bool> {
        self.get("transfer-encoding")?;
        Some(
            self.tokens("transfer-encoding")
                .last()
                .is_some_and(|t| t.eq_ignore_ascii_case("chunked")),
        )
    }

    fn content_length(&self) -> Result<Option<usize>, ReadErr> {
        let mut length = None;
        for token in self.values("content-length").flat_map(|v| v.split(',')) {
            let token = token.trim();
            if token.is_empty() || token.len() > 12 || !token.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ReadErr::Malformed);
            }
            let n: usize = token.parse().map_err(|_| ReadErr::Malformed)?;
            if n > MAX_BODY || length.is_some_and(|l| l != n) {
                return Err(ReadErr::Malformed);
            }
            length = Some(n);
        }
        Ok(length)
    }

    /// Whether the sender of this head wants the connection closed after this message.
    fn wants_close(&self) -> bool {
        let http10 = self.start.starts_with("HTTP/1.0") || self.start.ends_with("HTTP/1.0");
        self.has_token("connection", "close")
            || (http10 && !self.has_token("connection", "keep-alive"))
    }

    /// Re-serializes the head without the `drop` headers, with `add` appended.
    fn serialize(&self, drop: &[&str], add: &[(&str, String)]) -> Vec<u8> {
        let mut out = String::with_capacity(self.raw.len() + 64);
        out.push_str(&self.start);
        out.push_str("\r\n");
        for (name, value) in &self.headers {
            if !drop.iter().any(|d| name.eq_ignore_ascii_case(d)) {
                out.push_str(name);
                out.push_str(": ");
                out.push_str(value);
                out.push_str("\r\n");
            }
        }
        for (name, value) in add {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        out.into_bytes()
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[derive(Debug)]
struct Request {
    head: Head,
    body: Vec<u8>,
    /// The head must be re-serialized before forwarding (chunked body or `Expect`).
    rebuild: bool,
    close: bool,
    head_method: bool,
}

impl Request {
    /// Whether the request is for `operation` (the part of `X-Amz-Target` after the last `.`)
    /// and its body contains `body_contains` (each `None`: anything).
    fn matches(&self, operation: Option<&str>, body_contains: Option<&str>) -> bool {
        let target = self.head.get("x-amz-target").unwrap_or_default();
        operation.is_none_or(|op| target.rsplit('.').next().unwrap_or_default().trim() == op)
            && body_contains
                .is_none_or(|text| text.is_empty() || find(&self.body, text.as_bytes()).is_some())
    }

    /// The request as it goes upstream.
    fn wire(&self) -> Vec<u8> {
        if self.rebuild {
            self.wire_with_body(&self.body)
        } else {
            let mut wire = Vec::with_capacity(self.head.raw.len() + self.body.len());
            wire.extend_from_slice(&self.head.raw);
            wire.extend_from_slice(&self.body);
            wire
        }
    }

    /// The request with another body (and a matching `Content-Length`).
    fn wire_with_body(&self, body: &[u8]) -> Vec<u8> {
        let mut wire = self.head.serialize(
            &["content-length", "transfer-encoding", "expect"],
            &[("Content-Length", body.len().to_string())],
        );
        wire.extend_from_slice(body);
        wire
    }
}

#[derive(Debug)]
struct Response {
    head: Head,
    status: u16,
    /// The decoded body.
    body: Vec<u8>,
    /// The body as received, if it differs from `body` (chunked coding).
    raw_body: Option<Vec<u8>>,
    close: bool,
}

impl Response {
    /// The response exactly as received.
    fn wire(&self) -> Vec<u8> {
        let body = self.raw_body.as_ref().unwrap_or(&self.body);
        let mut wire = Vec::with_capacity(self.head.raw.len() + body.len());
        wire.extend_from_slice(&self.head.raw);
        wire.extend_from_slice(body);
        wire
    }
}

async fn read_request(conn: &mut Conn) -> Result<Request, ReadErr> {
    let head = conn.read_head().await?;
    let mut parts = head.start.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadErr::Malformed);
    };
    if method.is_empty()
        || !method.bytes().all(is_token_byte)
        || target.is_empty()
        || !matches!(version, "HTTP/1.1" | "HTTP/1.0")
    {
        return Err(ReadErr::Malformed);
    }
    let head_method = method == "HEAD";
    let mut rebuild = false;
    if let Some(expect) = head.get("expect") {
        if !expect.eq_ignore_ascii_case("100-continue") {
            return Err(ReadErr::Malformed);
        }
        // Answer the expectation ourselves and drop the header upstream.
        rebuild = true;
        conn.io
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .map_err(|_| ReadErr::Io)?;
    }
    let body = match head.chunked() {
        Some(true) => {
            rebuild = true;
            conn.read_chunked().await?.0
        }
        Some(false) => return Err(ReadErr::Malformed),
        None => match head.content_length()? {
            Some(n) => conn.read_exact(n).await?,
            None => Vec::new(),
        },
    };
    let close = head.wants_close();
    Ok(Request {
        head,
        body,
        rebuild,
        close,
        head_method,
    })
}

async fn read_response(conn: &mut Conn, head_method: bool) -> Result<Response, ReadErr> {
    let mut interim = false;
    loop {
        let head = match conn.read_head().await {
            Err(ReadErr::Closed) if interim => return Err(ReadErr::Io),
            other => other?,
        };
        let mut parts = head.start.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        let status = parts.next().unwrap_or_default();
        if !version.starts_with("HTTP/1.") || status.len() != 3 {
            return Err(ReadErr::Malformed);
        }
        let status: u16 = status.parse().map_err(|_| ReadErr::Malformed)?;
        if status == 101 || !(100..600).contains(&status) {
            return Err(ReadErr::Malformed);
        }
        if status < 200 {
            // Interim response (we never send `Expect` upstream); skip it.
            interim = true;
            continue;
        }
        let mut close = head.wants_close();
        let (body, raw_body) = if head_method || status == 204 || status == 304 {
            (Vec::new(), None)
        } else {
            match head.chunked() {
                Some(true) => {
                    let (body, raw) = conn.read_chunked().await?;
                    (body, Some(raw))
                }
                Some(false) => {
                    close = true;
                    (conn.read_to_eof().await?, None)
                }
                None => match head.content_length()? {
                    Some(n) => (conn.read_exact(n).await?, None),
                    None => {
                        close = true;
                        (conn.read_to_eof().await?, None)
                    }
                },
            }
        };
        return Ok(Response {
            head,
            status,
            body,
            raw_body,
            close,
        });
    }
}

/// A TCP stream with a read buffer.
struct Conn {
    io: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn new(io: TcpStream) -> Conn {
        Conn {
            io,
            buf: Vec::new(),
        }
    }

    /// Reads more bytes into the buffer; `Ok(0)` at end of stream.
    async fn fill(&mut self) -> io::Result<usize> {
        self.buf.reserve(READ_CHUNK);
        self.io.read_buf(&mut self.buf).await
    }

    /// Like [`Conn::fill`], but end of stream (or an error) is [`ReadErr::Io`].
    async fn fill_more(&mut self) -> Result<(), ReadErr> {
        match self.fill().await {
            Ok(0) | Err(_) => Err(ReadErr::Io),
            Ok(_) => Ok(()),
        }
    }

    async fn read_head(&mut self) -> Result<Head, ReadErr> {
        loop {
            // Tolerate empty lines before a message (RFC 9112, section 2.2).
            let blank = self
                .buf
                .chunks(2)
                .take_while(|pair| *pair == b"\r\n")
                .count();
            self.buf.drain(..blank * 2);
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                if end + 4 > MAX_HEAD {
                    return Err(ReadErr::Malformed);
                }
                let raw: Vec<u8> = self.buf.drain(..end + 4).collect();
                return Head::parse(raw);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(ReadErr::Malformed);
            }
            match self.fill().await {
                Ok(0) | Err(_) if self.buf.is_empty() => return Err(ReadErr::Closed),
                Ok(0) | Err(_) => return Err(ReadErr::Io),
                Ok(_) => {}
            }
        }
    }

    async fn read_exact(&mut self, n: usize) -> Result<Vec<u8>, ReadErr> {
        while self.buf.len() < n {
            self.fill_more().await?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// One CRLF-terminated line, without the CRLF.
    async fn read_line(&mut self) -> Result<Vec<u8>, ReadErr> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n") {
                let mut line: Vec<u8> = self.buf.drain(..end + 2).collect();
                line.truncate(end);
                return Ok(line);
            }
            if self.buf.len() > MAX_LINE {
                return Err(ReadErr::Malformed);
            }
            self.fill_more().await?;
        }
    }

    /// A chunked body: `(decoded, as received)`.
    async fn read_chunked(&mut self) -> Result<(Vec<u8>, Vec<u8>), ReadErr> {
        let mut body = Vec::new();
        let mut raw = Vec::new();
        loop {
            let line = self.read_line().await?;
            let size = line.split(|&b| b == b';').next().unwrap_or_default();
            let size = std::str::from_utf8(size)
                .map_err(|_| ReadErr::Malformed)?
                .trim();
            if size.is_empty() || size.len() > 8 || !size.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ReadErr::Malformed);
            }
            let size = usize::from_str_radix(size, 16).map_err(|_| ReadErr::Malformed)?;
            if size > MAX_BODY - body.len() {
                return Err(ReadErr::Malformed);
            }
            raw.extend_from_slice(&line);
            raw.extend_from_slice(b"\r\n");
            if size == 0 {
                // Trailer section up to an empty line.
                loop {
                    let trailer = self.read_line().await?;
                    raw.extend_from_slice(&trailer);
                    raw.extend_from_slice(b"\r\n");
                    if trailer.is_empty() {
                        return Ok((body, raw));
                    }
                    if raw.len() > MAX_BODY {
                        return Err(ReadErr::Malformed);
                    }
                }
            }
            let data = self.read_exact(size + 2).await?;
            if !data.ends_with(b"\r\n") {
                return Err(ReadErr::Malformed);
            }
            body.extend_from_slice(&data[..size]);
            raw.extend_from_slice(&data);
        }
    }

    async fn read_to_eof(&mut self) -> Result<Vec<u8>, ReadErr> {
        loop {
            if self.buf.len() > MAX_BODY {
                return Err(ReadErr::Malformed);
            }
            match self.fill().await {
                Ok(0) => return Ok(std::mem::take(&mut self.buf)),
                Ok(_) => {}
                Err(_) => return Err(ReadErr::Io),
            }
        }
    }

    /// Discards input until the peer closes the connection.
    async fn drain(&mut self) {
        self.buf.clear();
        let mut scratch = [0u8; 4096];
        while let Ok(n) = self.io.read(&mut scratch).await {
            if n == 0 {
                break;
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::io::{Read, Write};
    use std::net::TcpStream as StdStream;

    use serde_json::json;

    const IO_TIMEOUT: Duration = Duration::from_secs(30);

    // ----- DynamoDB Local ---------------------------------------------------------------------

    /// The upstream for tests that need DynamoDB: the suite's shared server (or
    /// `DYNAMODICT_ENDPOINT`). Fails the test if it cannot be started: a test that silently
    /// skips cannot fail. These tests check the proxy, not the engine, and count requests on
    /// keep-alive connections, which moto closes after every answer: on moto they run on a
    /// DynamoDB Local of their own.
    fn ddb_local() -> SocketAddr {
        use dynamodict::local::{DynamoDbLocal, LocalEngine, LocalOptions};
        static OWN: std::sync::OnceLock<DynamoDbLocal> = std::sync::OnceLock::new();
        if crate::support::engine() != LocalEngine::Moto {
            return local_upstream();
        }
        let server = OWN.get_or_init(|| {
            DynamoDbLocal::start(LocalOptions::default())
                .unwrap_or_else(|e| panic!("DynamoDB Local must start for the proxy tests: {e}"))
        });
        upstream_of(server.endpoint(), server.port())
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("ephemeral port")
            .port()
    }

    /// An address nothing listens on.
    fn dead_addr() -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()))
    }

    // ----- raw HTTP client --------------------------------------------------------------------

    struct Client {
        stream: StdStream,
        buf: Vec<u8>,
        host: String,
    }

    #[derive(Debug)]
    struct Resp {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Resp {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        fn json(&self) -> Value {
            serde_json::from_slice(&self.body).expect("JSON body")
        }

        /// The `x-amz-crc32` header is present and matches the body.
        fn crc_ok(&self) -> bool {
            self.header("x-amz-crc32")
                .and_then(|v| v.parse::<u32>().ok())
                .is_some_and(|crc| crc == crc32(&self.body))
        }
    }

    impl Client {
        fn connect(addr: SocketAddr) -> io::Result<Client> {
            let stream = StdStream::connect_timeout(&addr, Duration::from_secs(5))?;
            stream.set_read_timeout(Some(IO_TIMEOUT))?;
            stream.set_nodelay(true)?;
            Ok(Client {
                stream,
                buf: Vec::new(),
                host: addr.to_string(),
            })
        }

        fn request_bytes(&self, op: &str, body: &[u8], extra: &str) -> Vec<u8> {
            let mut wire = format!(
                "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: {CONTENT_TYPE}\r\n\
                 X-Amz-Target: DynamoDB_20120810.{op}\r\n\
                 X-Amz-Date: 20250101T000000Z\r\n\
                 Authorization: AWS4-HMAC-SHA256 Credential=dummy/20250101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0\r\n\
                 {extra}Content-Length: {}\r\n\r\n",
                self.host,
                body.len()
            )
            .into_bytes();
            wire.extend_from_slice(body);
            wire
        }

        fn send(&mut self, op: &str, body: &Value) -> io::Result<()> {
            let wire = self.request_bytes(op, body.to_string().as_bytes(), "");
            self.stream.write_all(&wire)
        }

        fn recv(&mut self) -> io::Result<Resp> {
            let (start, headers, body) = read_message(&mut self.stream, &mut self.buf)?;
            let status = start
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, start.clone()))?;
            Ok(Resp {
                status,
                headers,
                body,
            })
        }

        fn try_call(&mut self, op: &str, body: &Value) -> io::Result<Resp> {
            self.send(op, body)?;
            self.recv()
        }

        fn call(&mut self, op: &str, body: &Value) -> Resp {
            self.try_call(op, body)
                .unwrap_or_else(|e| panic!("{op} failed: {e}"))
        }

        /// Calls `op` and asserts HTTP 200 with a valid CRC32.
        fn ok(&mut self, op: &str, body: &Value) -> Value {
            let resp = self.call(op, body);
            assert_eq!(
                resp.status,
                200,
                "{op}: {}",
                String::from_utf8_lossy(&resp.body)
            );
            assert!(resp.crc_ok(), "{op}: bad or missing x-amz-crc32: {resp:?}");
            resp.json()
        }

        /// Reads once: what the server did with the connection.
        fn read_once(&mut self) -> io::Result<usize> {
            let mut byte = [0u8; 1];
            self.stream.read(&mut byte)
        }
    }

    /// Start line, headers (lower-case names) and decoded body of an HTTP message.
    type Message = (String, Vec<(String, String)>, Vec<u8>);

    /// Reads one HTTP message (Content-Length or chunked body) from `stream`.
    fn read_message(stream: &mut StdStream, buf: &mut Vec<u8>) -> io::Result<Message> {
        let end = loop {
            if let Some(end) = find(buf, b"\r\n\r\n") {
                break end;
            }
            fill(stream, buf)?;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let start = lines.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
        let body = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            let mut body = Vec::new();
            loop {
                let line = take_line(stream, buf)?;
                let size = line.split(';').next().unwrap_or_default().trim();
                let size = usize::from_str_radix(size, 16).map_err(|_| invalid("chunk size"))?;
                if size == 0 {
                    while !take_line(stream, buf)?.is_empty() {}
                    break;
                }
                body.extend(take_exact(stream, buf, size)?);
                take_exact(stream, buf, 2)?;
            }
            body
        } else {
            let length = match header("content-length") {
                Some(v) => v.parse().map_err(|_| invalid("content-length"))?,
                None => 0,
            };
            take_exact(stream, buf, length)?
        };
        Ok((start, headers, body))
    }

    fn fill(stream: &mut StdStream, buf: &mut Vec<u8>) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    fn take_exact(stream: &mut StdStream, buf: &mut Vec<u8>, n: usize) -> io::Result<Vec<u8>> {
        while buf.len() < n {
            fill(stream, buf)?;
        }
        Ok(buf.drain(..n).collect())
    }

    fn take_line(stream: &mut StdStream, buf: &mut Vec<u8>) -> io::Result<String> {
        loop {
            if let Some(end) = find(buf, b"\r\n") {
                let line = String::from_utf8_lossy(&buf[..end]).into_owned();
                buf.drain(..end + 2);
                return Ok(line);
            }
            fill(stream, buf)?;
        }
    }

    // ----- fake upstream ----------------------------------------------------------------------

    /// A scripted upstream: answers successive requests (on whatever connection) with the given
    /// raw responses and reports each request head and body it received. With `one_shot` it
    /// closes every connection after one response, without saying so.
    fn fake_upstream(
        responses: Vec<Vec<u8>>,
        one_shot: bool,
    ) -> (SocketAddr, std::sync::mpsc::Receiver<(String, Vec<u8>)>) {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (seen, received) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut responses = responses.into_iter().peekable();
            while responses.peek().is_some() {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
                let mut buf = Vec::new();
                while responses.peek().is_some() {
                    let Ok((start, headers, body)) = read_message(&mut stream, &mut buf) else {
                        break;
                    };
                    let mut head = start;
                    for (n, v) in headers {
                        head.push_str(&format!("\r\n{n}: {v}"));
                    }
                    let _ = seen.send((head, body));
                    if let Some(response) = responses.next() {
                        let _ = stream.write_all(&response);
                    }
                    if one_shot {
                        break;
                    }
                }
            }
        });
        (addr, received)
    }

    fn chunked_response(body: &[u8]) -> Vec<u8> {
        let (a, b) = body.split_at(body.len() / 2);
        let mut wire = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nx-amz-crc32: {}\r\n\
             Transfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            crc32(body),
            a.len()
        )
        .into_bytes();
        wire.extend_from_slice(a);
        wire.extend_from_slice(format!("\r\n{:x};ext=1\r\n", b.len()).as_bytes());
        wire.extend_from_slice(b);
        wire.extend_from_slice(b"\r\n0\r\n\r\n");
        wire
    }

    // ----- DynamoDB helpers -------------------------------------------------------------------

    fn create_table(client: &mut Client, table: &str) {
        client.ok(
            "CreateTable",
            &json!({
                "TableName": table,
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "BillingMode": "PAY_PER_REQUEST",
            }),
        );
        // DynamoDB Local creates tables at once; other servers may take a moment.
        for _ in 0..100 {
            let out = client.ok("DescribeTable", &json!({ "TableName": table }));
            if out["Table"]["TableStatus"] == "ACTIVE" {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("table {table} did not become ACTIVE");
    }

    /// A table name unique to this run (the upstream may be a long-lived DynamoDB Local).
    fn table_name(prefix: &str) -> String {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        format!("{prefix}_{}_{nanos}", std::process::id())
    }

    fn exists(client: &mut Client, table: &str, pk: &str) -> bool {
        let out = client.ok(
            "GetItem",
            &json!({"TableName": table, "Key": {"pk": {"S": pk}}, "ConsistentRead": true}),
        );
        out.get("Item").is_some()
    }

    fn put_request(pk: &str) -> Value {
        json!({"PutRequest": {"Item": {"pk": {"S": pk}, "v": {"N": "1"}}}})
    }

    fn delete_request(pk: &str) -> Value {
        json!({"DeleteRequest": {"Key": {"pk": {"S": pk}}}})
    }

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("k{i:02}")).collect()
    }

    /// The `pk` strings found anywhere in `entries` (items, keys or write requests).
    fn pks(entries: &Value) -> BTreeSet<String> {
        fn walk(value: &Value, out: &mut BTreeSet<String>) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(s)) = map.get("pk").and_then(|pk| pk.get("S")) {
                        out.insert(s.clone());
                    }
                    map.values().for_each(|v| walk(v, out));
                }
                Value::Array(list) => list.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        let mut out = BTreeSet::new();
        walk(entries, &mut out);
        out
    }

    fn is_timeout(e: &io::Error) -> bool {
        matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        )
    }

    // ----- tests without DynamoDB -------------------------------------------------------------

    #[test]
    fn crc32_known_values() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        // As reported by DynamoDB Local for the body `{}`.
        assert_eq!(crc32(b"{}"), 2_745_614_147);
    }

    #[test]
    fn http_dates() {
        let at = |secs| http_date(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(at(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(at(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(at(1_795_290_019), "Sat, 21 Nov 2026 19:40:19 GMT");
        assert_eq!(at(300_000_000_000), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn share_sampling_is_deterministic() {
        let mut state = FaultState {
            fault: Fault::None,
            credit: 0.0,
        };
        let hits: Vec<bool> = (0..6).map(|_| state.hit(0.5)).collect();
        assert_eq!(hits, [false, true, false, true, false, true]);
        state.credit = 0.0;
        assert_eq!((0..100).filter(|_| state.hit(0.1)).count(), 10);
        assert!((0..10).all(|_| state.hit(1.0)));
        state.credit = 0.0;
        assert!((0..10).all(|_| !state.hit(0.0) && !state.hit(f64::NAN) && !state.hit(-3.0)));
    }

    #[test]
    fn split_batch_shapes() {
        let body = json!({
            "RequestItems": {
                "a": [put_request("1"), delete_request("2"), put_request("3")],
                "b": [put_request("4")],
            },
            "ReturnConsumedCapacity": "TOTAL",
        })
        .to_string();
        // Withhold all of table "b" and the first of "a".
        let split = split_batch(BatchKind::Write, body.as_bytes(), |n| {
            assert_eq!(n, 4);
            vec![true, false, false, true]
        })
        .expect("split");
        assert_eq!(split.withheld_count, 2);
        let forward: Value = serde_json::from_slice(&split.forward.expect("forward")).unwrap();
        assert_eq!(forward["ReturnConsumedCapacity"], "TOTAL");
        assert_eq!(
            pks(&forward["RequestItems"]["a"]),
            ["2", "3"].map(String::from).into()
        );
        assert!(
            forward["RequestItems"].get("b").is_none(),
            "empty table must be dropped"
        );
        assert_eq!(pks(&split.withheld["a"]), ["1"].map(String::from).into());
        assert_eq!(pks(&split.withheld["b"]), ["4"].map(String::from).into());

        // Everything withheld: nothing to forward.
        let split = split_batch(BatchKind::Write, body.as_bytes(), |n| vec![true; n]).unwrap();
        assert!(split.forward.is_none());
        assert_eq!(split.withheld_count, 4);
        // Nothing withheld, or not a batch: no split.
        assert!(split_batch(BatchKind::Write, body.as_bytes(), |n| vec![false; n]).is_none());
        assert!(split_batch(BatchKind::Write, b"not json", |n| vec![true; n]).is_none());
        assert!(
            split_batch(BatchKind::Write, b"{\"RequestItems\":5}", |n| vec![true; n]).is_none()
        );

        // BatchGetItem keeps the per-table options on both halves.
        let body = json!({"RequestItems": {"t": {
            "Keys": [{"pk": {"S": "1"}}, {"pk": {"S": "2"}}],
            "ProjectionExpression": "#p",
            "ExpressionAttributeNames": {"#p": "pk"},
            "ConsistentRead": true,
        }}})
        .to_string();
        let split = split_batch(BatchKind::Get, body.as_bytes(), |_| vec![false, true]).unwrap();
        let forward: Value = serde_json::from_slice(&split.forward.unwrap()).unwrap();
        for half in [&forward["RequestItems"]["t"], &split.withheld["t"]] {
            assert_eq!(half["ProjectionExpression"], "#p");
            assert_eq!(half["ConsistentRead"], true);
            assert_eq!(half["Keys"].as_array().map(Vec::len), Some(1));
        }

        // Merging into an upstream answer that already has unprocessed entries.
        let upstream = json!({"Responses": {"t": []}, "UnprocessedKeys": {"t": {
            "Keys": [{"pk": {"S": "0"}}], "ProjectionExpression": "#p",
            "ExpressionAttributeNames": {"#p": "pk"}, "ConsistentRead": true}}})
        .to_string();
        let merged =
            merge_unprocessed(BatchKind::Get, upstream.as_bytes(), split.withheld).expect("merge");
        let merged: Value = serde_json::from_slice(&merged).unwrap();
        assert_eq!(
            pks(&merged["UnprocessedKeys"]["t"]["Keys"]),
            ["0", "2"].map(String::from).into()
        );
    }

    #[test]
    fn garbage_input_closes_only_that_connection() {
        let body = br#"{"TableNames":[]}"#;
        let ok = format!(
            "HTTP/1.1 200 OK\r\nx-amz-crc32: {}\r\nContent-Length: {}\r\n\r\n",
            crc32(body),
            body.len()
        );
        let mut ok = ok.into_bytes();
        ok.extend_from_slice(body);
        let (upstream, _seen) = fake_upstream(vec![ok], false);
        let proxy = FaultProxy::start(upstream).unwrap();
        let mut long_line = b"POST / HTTP/1.1\r\nX-Long: ".to_vec();
        long_line.extend(std::iter::repeat_n(b'a', 100 * 1024));
        let garbage: Vec<Vec<u8>> = vec![
            b"\x00\x01\x02\xff garbage\r\n\r\n".to_vec(),
            b"GET\r\n\r\n".to_vec(),
            b"POST / HTTP/9.9\r\n\r\n".to_vec(),
            b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n".to_vec(),
            b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n".to_vec(),
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!".to_vec(),
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(),
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n".to_vec(),
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY".to_vec(),
            b"POST / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n".to_vec(),
            b"POST / HTTP/1.1\r\nX: \xff\xfe\r\n\r\n".to_vec(),
            b"POST / HTTP/1.1\r\nNoColon\r\n\r\n".to_vec(),
            b"POST / HTTP/1.1\r\nExpect: teapot\r\n\r\n".to_vec(),
            long_line,
        ];
        let count = garbage.len() as u64;
        for bytes in garbage {
            let mut client = Client::connect(proxy.addr()).unwrap();
            let _ = client.stream.write_all(&bytes);
            match client.read_once() {
                Ok(0) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
                other => panic!(
                    "{:?}: expected the connection to be closed, got {other:?}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(60)])
                ),
            }
        }
        assert_eq!(proxy.stats().malformed, count);
        assert_eq!(proxy.stats().requests, 0);
        // The proxy is still fine.
        let mut client = Client::connect(proxy.addr()).unwrap();
        let out = client.ok("ListTables", &json!({}));
        assert_eq!(out, json!({"TableNames": []}));
    }

    #[test]
    fn chunked_upstream_and_expect_continue() {
        let first = br#"{"TableNames":["chunky"]}"#;
        let second =
            br#"{"UnprocessedItems":{"other":[{"DeleteRequest":{"Key":{"pk":{"S":"z"}}}}]}}"#;
        let (upstream, seen) = fake_upstream(
            vec![chunked_response(first), chunked_response(second)],
            false,
        );
        let proxy = FaultProxy::start(upstream).unwrap();
        let mut client = Client::connect(proxy.addr()).unwrap();

        // Expect: 100-continue is answered by the proxy, the chunked answer relayed as is.
        let body = b"{}";
        let wire = client.request_bytes("ListTables", body, "Expect: 100-continue\r\n");
        let head_len = wire.len() - body.len();
        client.stream.write_all(&wire[..head_len]).unwrap();
        let interim = client.recv().unwrap();
        assert_eq!(interim.status, 100);
        client.stream.write_all(body).unwrap();
        let resp = client.recv().unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("transfer-encoding"), Some("chunked"));
        assert_eq!(resp.body, first);
        assert!(resp.crc_ok());
        let (head, _) = seen.recv().unwrap();
        assert!(!head.to_ascii_lowercase().contains("expect"), "{head}");

        // Trimmed batch: the merged answer has a fresh Content-Length and CRC32.
        proxy.set_fault(Fault::Unprocessed { share: 0.5 });
        let out = client.ok(
            "BatchWriteItem",
            &json!({"RequestItems": {"t1": [put_request("a"), put_request("b")]}}),
        );
        let (head, forwarded) = seen.recv().unwrap();
        let forwarded: Value = serde_json::from_slice(&forwarded).unwrap();
        assert_eq!(pks(&forwarded), ["a"].map(String::from).into(), "{head}");
        assert_eq!(
            pks(&out["UnprocessedItems"]["t1"]),
            ["b"].map(String::from).into()
        );
        assert_eq!(
            pks(&out["UnprocessedItems"]["other"]),
            ["z"].map(String::from).into()
        );
        let stats = proxy.stats();
        assert_eq!((stats.unprocessed_batches, stats.unprocessed_items), (1, 1));
        assert_eq!(stats.forwarded, 2);
    }

    #[test]
    fn stale_upstream_connection_is_replaced() {
        let body = br#"{"TableNames":[]}"#;
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{}",
            body.len(),
            String::from_utf8_lossy(body)
        );
        let (upstream, seen) = fake_upstream(vec![response.into_bytes(); 3], true);
        let proxy = FaultProxy::start(upstream).unwrap();
        let mut client = Client::connect(proxy.addr()).unwrap();
        for _ in 0..3 {
            let resp = client.call("ListTables", &json!({}));
            assert_eq!(resp.status, 200);
            assert_eq!(resp.body, body);
            // Give the upstream's close time to arrive, so the next request hits a dead socket.
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(seen.try_iter().count(), 3);
        let stats = proxy.stats();
        assert_eq!((stats.forwarded, stats.upstream_errors), (3, 0));
        assert_eq!(stats.connections, 1);
    }

    #[test]
    fn unreachable_upstream_gives_502() {
        let proxy = FaultProxy::start(dead_addr()).unwrap();
        let mut client = Client::connect(proxy.addr()).unwrap();
        let resp = client.call("ListTables", &json!({}));
        assert_eq!(resp.status, 502);
        assert!(resp.crc_ok());
        assert_eq!(
            client.read_once().unwrap(),
            0,
            "connection closed after a 502"
        );
        assert_eq!(proxy.stats().upstream_errors, 1);
    }

    #[test]
    fn drop_closes_listener_and_connections() {
        let proxy = FaultProxy::start(dead_addr()).unwrap();
        let addr = proxy.addr();
        let mut idle = Client::connect(addr).unwrap();
        let mut stalled = Client::connect(addr).unwrap();
        proxy.set_fault(Fault::Stall);
        stalled.send("ListTables", &json!({})).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while proxy.stats().stalled == 0 {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(10));
        }
        let started = Instant::now();
        drop(proxy);
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(matches!(idle.read_once(), Ok(0) | Err(_)));
        assert!(matches!(stalled.read_once(), Ok(0) | Err(_)));
        let err = StdStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    }

    // ----- tests against DynamoDB Local -------------------------------------------------------

    #[test]
    fn passes_through_on_one_keep_alive_connection() {
        let ddb = ddb_local();
        let proxy = FaultProxy::start(ddb).unwrap();
        assert_eq!(proxy.endpoint(), format!("http://{}", proxy.addr()));
        let mut client = Client::connect(proxy.addr()).unwrap();
        let table = table_name("fp_passthrough");
        create_table(&mut client, &table);
        client.ok(
            "PutItem",
            &json!({"TableName": table, "Item": {"pk": {"S": "a"}, "v": {"S": "hello"}}}),
        );
        let out = client.ok(
            "GetItem",
            &json!({"TableName": table, "Key": {"pk": {"S": "a"}}}),
        );
        assert_eq!(out["Item"]["v"]["S"], "hello");
        // Errors pass through too.
        let resp = client.call(
            "GetItem",
            &json!({"TableName": "fp_missing_table", "Key": {}}),
        );
        assert_eq!(resp.status, 400);
        assert!(
            resp.json()["__type"]
                .as_str()
                .unwrap()
                .ends_with("ResourceNotFoundException")
        );
        let stats = proxy.stats();
        let operations = proxy.operations();
        assert_eq!(operations.get("GetItem"), Some(&2), "{operations:?}");
        assert_eq!(proxy.operation_count("CreateTable"), 1);
        assert_eq!(proxy.operation_count("PutItem"), 1);
        assert_eq!(proxy.operation_count("Scan"), 0);
        // Plus the DescribeTable requests that waited for the table to be active.
        let sent = 4 + proxy.operation_count("DescribeTable");
        assert_eq!(operations.values().sum::<u64>(), sent);
        assert_eq!(stats.connections, 1);
        assert_eq!(stats.requests, sent);
        assert_eq!(stats.forwarded, sent);
        assert_eq!(stats.faulted(), 0);
    }

    #[test]
    fn latency_delays_each_request() {
        let ddb = ddb_local();
        let proxy = FaultProxy::start(ddb).unwrap();
        let mut client = Client::connect(proxy.addr()).unwrap();
        client.ok("ListTables", &json!({}));
        let delay = Duration::from_millis(400);
        proxy.set_fault(Fault::Latency(delay));
        for _ in 0..2 {
            let started = Instant::now();
            client.ok("ListTables", &json!({}));
            let elapsed = started.elapsed();
            assert!(elapsed >= delay, "{elapsed:?}");
            assert!(elapsed < delay + Duration::from_secs(5), "{elapsed:?}");
        }
        proxy.clear();
        let started = Instant::now();
        client.ok("ListTables", &json!({}));
        assert!(started.elapsed() < delay, "{:?}", started.elapsed());
        assert_eq!(proxy.stats().delayed, 2);
        assert_eq!(proxy.stats().connections, 1);
    }

    #[test]
    fn stall_never_answers_but_keeps_the_connection() {
        let ddb = ddb_local();
        let proxy = FaultProxy::start(ddb).unwrap();
        let mut client = Client::connect(proxy.addr()).unwrap();
        client.ok("ListTables", &json!({}));
        proxy.set_fault(Fault::Stall);
        client
            .stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let started = Instant::now();
        client.send("ListTables", &json!({})).unwrap();
        let err = client.recv().unwrap_err();
        assert!(is_timeout(&err), "{err:?}");
        assert!(started.elapsed() >= Duration::from_millis(450));
        // Still open: the next read times out again instead of seeing EOF.
        let err = client.read_once().unwrap_err();
        assert!(is_timeout(&err), "{err:?}");
        assert_eq!(proxy.stats().stalled, 1);

        proxy.clear();
        let mut fresh = Client::connect(proxy.addr()).unwrap();
        fresh.ok("ListTables", &json!({}));
        // The stalled connection stays silent.
        let err = client.read_once().unwrap_err();
        assert!(is_timeout(&err), "{err:?}");
    }

    #[test]
    fn reset_aborts_the_connection() {
        let ddb = ddb_local();
        let proxy = FaultProxy::start(ddb).unwrap();
        let mut client = Client::connect(proxy.addr()).unwrap();
        client.ok("ListTables", &json!({}));
        proxy.set_fault(Fault::Reset);
        client.send("ListTables", &json!({})).unwrap();
        match client.read_once() {
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            Ok(0) => {}
            other => panic!("expected a reset, got {other:?}"),
        }
        assert_eq!(proxy.stats().reset, 1);
        proxy.clear();
        Client::connect(proxy.addr())
            .unwrap()
            .ok("ListTables", &json!({}));
    }

    /// A table with one item `pk = "seed"`, and a client connected through a fresh proxy.
    fn proxied_table(prefix: &str) -> (FaultProxy, Client, String) {
        let ddb = ddb_local();
        let table = table_name(prefix);
        let mut direct = Client::connect(ddb).unwrap();
        create_table(&mut direct, &table);
        let proxy = FaultProxy::start(ddb).unwrap();
        let client = Client::connect(proxy.addr()).unwrap();
        (proxy, client, table)
    }

    fn put_body(table: &str, pk: &str, marker: &str) -> Value {
        json!({"TableName": table, "Item": {"pk": {"S": pk}, marker: {"S": "x"}}})
    }

    /// Whether the proxy reset or closed `client`'s connection without an answer.
    fn was_dropped(client: &mut Client) -> bool {
        match client.read_once() {
            Ok(0) => true,
            Err(e) => e.kind() == io::ErrorKind::ConnectionReset,
            Ok(_) => false,
        }
    }

    #[test]
    fn lose_reply_applies_the_request_but_never_answers() {
        let (proxy, mut client, table) = proxied_table("fp_lose_reply");
        let fault = |delay| Fault::LoseReply {
            operation: Some("PutItem".into()),
            body_contains: Some("\"lose\":".into()),
            share: 1.0,
            delay,
        };
        proxy.set_fault(fault(Duration::ZERO));
        // Other operations and other bodies pass through.
        client.ok("PutItem", &put_body(&table, "kept", "keep"));
        assert!(exists(&mut client, &table, "kept"));
        client
            .send("PutItem", &put_body(&table, "a", "lose"))
            .unwrap();
        assert!(was_dropped(&mut client), "the answer must be lost");
        let mut check = Client::connect(proxy.addr()).unwrap();
        assert!(exists(&mut check, &table, "a"), "but the request applied");

        // With a delay, the client sees silence first.
        proxy.set_fault(fault(Duration::from_millis(600)));
        let mut client = Client::connect(proxy.addr()).unwrap();
        client
            .stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        client
            .send("PutItem", &put_body(&table, "b", "lose"))
            .unwrap();
        let err = client.read_once().unwrap_err();
        assert!(is_timeout(&err), "{err:?}");
        client.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        assert!(was_dropped(&mut client));
        assert!(exists(&mut check, &table, "b"));
        let stats = proxy.stats();
        assert_eq!((stats.lost_replies, stats.faulted()), (2, 2));
    }

    #[test]
    fn hold_then_forward_applies_the_request_late() {
        let (proxy, mut client, table) = proxied_table("fp_hold");
        let hold = Duration::from_millis(800);
        proxy.set_fault(Fault::HoldThenForward {
            operation: Some("PutItem".into()),
            body_contains: None,
            share: 0.5,
            hold,
        });
        // share 0.5: the first matching request passes, the second is held.
        client.ok("PutItem", &put_body(&table, "first", "v"));
        client
            .stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let sent = Instant::now();
        client
            .send("PutItem", &put_body(&table, "late", "v"))
            .unwrap();
        assert!(is_timeout(&client.read_once().unwrap_err()));
        drop(client); // the client gives up
        let mut check = Client::connect(proxy.addr()).unwrap();
        assert!(!exists(&mut check, &table, "late"), "not applied yet");
        let deadline = Instant::now() + Duration::from_secs(10);
        while proxy.stats().released == 0 {
            assert!(Instant::now() < deadline, "never released");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(sent.elapsed() >= hold);
        assert!(exists(&mut check, &table, "late"), "applied after the hold");
        let stats = proxy.stats();
        assert_eq!((stats.held, stats.released), (1, 1));
    }

    #[test]
    fn reset_matching_drops_only_matching_requests() {
        let (proxy, mut client, table) = proxied_table("fp_reset_matching");
        proxy.set_fault(Fault::ResetMatching {
            operation: Some("BatchWriteItem".into()),
            body_contains: Some("\"chunk\":".into()),
            share: 1.0,
        });
        let batch = |pk: &str, marker: &str| json!({"RequestItems": {&table: [{"PutRequest": {"Item": {"pk": {"S": pk}, marker: {"S": "x"}}}}]}});
        client.ok("BatchWriteItem", &batch("plain", "v"));
        client.ok("PutItem", &put_body(&table, "single", "chunk"));
        client
            .send("BatchWriteItem", &batch("dropped", "chunk"))
            .unwrap();
        assert!(was_dropped(&mut client));
        let mut check = Client::connect(proxy.addr()).unwrap();
        assert!(exists(&mut check, &table, "plain") && exists(&mut check, &table, "single"));
        assert!(!exists(&mut check, &table, "dropped"), "never forwarded");
        assert_eq!(proxy.stats().reset, 1);
    }

    #[test]
    fn refuse_closes_the_port_and_rebinds_it() {
        let ddb = ddb_local();
        let proxy = FaultProxy::start(ddb).unwrap();
        let addr = proxy.addr();
        let mut client = Client::connect(addr).unwrap();
        client.ok("ListTables", &json!({}));

        proxy.set_fault(Fault::Refuse);
        let err = StdStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        // The keep-alive connection was closed.
        let _ = client.send("ListTables", &json!({}));
        assert!(matches!(client.read_once(), Ok(0) | Err(_)));
        assert_eq!(proxy.stats().refused, 1);

        proxy.clear();
        assert_eq!(proxy.addr(), addr);
        let mut again = Client::connect(addr).unwrap();
        again.ok("ListTables", &json!({}));

        // And once more, to be sure re-binding is repeatable.
        proxy.set_fault(Fault::Refuse);
        let err = StdStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        proxy.set_fault(Fault::Latency(Duration::ZERO));
        Client::connect(addr).unwrap().ok("ListTables", &json!({}));
        assert_eq!(proxy.stats().refused, 2);
    }

    #[test]
    fn throttle_answers_a_share_with_dynamodb_errors() {
        let ddb = ddb_local();
        let proxy = FaultProxy::start(ddb).unwrap();
        let mut client = Client::connect(proxy.addr()).unwrap();
        client.ok("ListTables", &json!({}));
        for code in [
            ThrottleCode::ProvisionedThroughputExceeded,
            ThrottleCode::Throttling,
        ] {
            proxy.set_fault(Fault::Throttle { share: 0.5, code });
            let mut throttled = 0;
            for _ in 0..20 {
                let resp = client.call("ListTables", &json!({}));
                assert!(resp.crc_ok(), "{resp:?}");
                match resp.status {
                    200 => {}
                    400 => {
                        throttled += 1;
                        let body = resp.json();
                        assert_eq!(body["__type"], code.error_type());
                        assert!(body["message"].is_string());
                        assert_eq!(resp.header("content-type"), Some(CONTENT_TYPE));
                    }
                    other => panic!("status {other}"),
                }
            }
            assert_eq!(throttled, 10, "{code:?}");
        }
        let stats = proxy.stats();
        assert_eq!(stats.throttled, 20);
        assert_eq!(stats.connections, 1);
        assert_eq!(stats.forwarded, 21);
    }

    #[test]
    fn unprocessed_batch_write() {
        let ddb = ddb_local();
        let table = &table_name("fp_unprocessed_write");
        let mut direct = Client::connect(ddb).unwrap();
        create_table(&mut direct, table);
        let proxy = FaultProxy::start(ddb).unwrap();
        let mut client = Client::connect(proxy.addr()).unwrap();
        let all = keys(25);
        let everything: BTreeSet<String> = all.iter().cloned().collect();

        // Puts: exactly the forwarded ones land.
        proxy.set_fault(Fault::Unprocessed { share: 0.5 });
        let puts: Vec<Value> = all.iter().map(|k| put_request(k)).collect();
        let out = client.ok("BatchWriteItem", &json!({"RequestItems": {table: puts}}));
        let withheld = pks(&out["UnprocessedItems"][table]);
        assert_eq!(withheld.len(), 12, "{out}");
        for key in &all {
            assert_eq!(
                exists(&mut client, table, key),
                !withheld.contains(key),
                "{key}"
            );
        }
        assert_eq!(proxy.stats().unprocessed_items, 12);

        // Retrying the unprocessed items without the fault completes the batch.
        proxy.clear();
        let out = client.ok(
            "BatchWriteItem",
            &json!({"RequestItems": out["UnprocessedItems"].clone()}),
        );
        assert_eq!(out["UnprocessedItems"], json!({}));
        assert!(all.iter().all(|k| exists(&mut client, table, k)));

        // Deletes: the withheld ones survive.
        proxy.set_fault(Fault::Unprocessed { share: 0.5 });
        let deletes: Vec<Value> = all.iter().map(|k| delete_request(k)).collect();
        let out = client.ok("BatchWriteItem", &json!({"RequestItems": {table: deletes}}));
        let withheld = pks(&out["UnprocessedItems"][table]);
        assert!(!withheld.is_empty() && withheld.len() < 25, "{out}");
        for key in &all {
            assert_eq!(
                exists(&mut client, table, key),
                withheld.contains(key),
                "{key}"
            );
        }

        // Everything withheld: answered locally, nothing written, over two tables.
        let other = &table_name("fp_unprocessed_write2");
        create_table(&mut direct, other);
        proxy.set_fault(Fault::Unprocessed { share: 1.0 });
        let before = proxy.stats();
        let out = client.ok(
            "BatchWriteItem",
            &json!({"RequestItems": {
                table: [put_request("new1"), put_request("new2")],
                other: [put_request("new3")],
            }}),
        );
        assert_eq!(pks(&out["UnprocessedItems"][table]).len(), 2);
        assert_eq!(pks(&out["UnprocessedItems"][other]).len(), 1);
        let after = proxy.stats();
        assert_eq!(after.answered_locally, before.answered_locally + 1);
        assert_eq!(after.forwarded, before.forwarded);
        proxy.clear();
        assert!(!exists(&mut client, table, "new1") && !exists(&mut client, other, "new3"));

        // Other operations are untouched by the fault.
        proxy.set_fault(Fault::Unprocessed { share: 1.0 });
        client.ok(
            "PutItem",
            &json!({"TableName": table, "Item": {"pk": {"S": "single"}}}),
        );
        assert!(exists(&mut client, table, "single"));
        assert_eq!(everything.len(), 25);
    }

    #[test]
    fn unprocessed_batch_get() {
        let ddb = ddb_local();
        let table = &table_name("fp_unprocessed_get");
        let mut direct = Client::connect(ddb).unwrap();
        create_table(&mut direct, table);
        let all = keys(25);
        let puts: Vec<Value> = all.iter().map(|k| put_request(k)).collect();
        let out = direct.ok("BatchWriteItem", &json!({"RequestItems": {table: puts}}));
        assert_eq!(out["UnprocessedItems"], json!({}));

        let proxy = FaultProxy::start(ddb).unwrap();
        let mut client = Client::connect(proxy.addr()).unwrap();
        let request = json!({"RequestItems": {table: {
            "Keys": all.iter().map(|k| json!({"pk": {"S": k}})).collect::<Vec<_>>(),
            "ProjectionExpression": "#p, v",
            "ExpressionAttributeNames": {"#p": "pk"},
            "ConsistentRead": true,
        }}});

        proxy.set_fault(Fault::Unprocessed { share: 0.5 });
        let out = client.ok("BatchGetItem", &request);
        let found = pks(&out["Responses"][table]);
        let unprocessed = &out["UnprocessedKeys"][table];
        let withheld = pks(&unprocessed["Keys"]);
        assert_eq!(withheld.len(), 12, "{out}");
        assert_eq!(found.len(), 13, "{out}");
        assert!(found.is_disjoint(&withheld));
        assert_eq!(found.union(&withheld).count(), 25);
        assert_eq!(unprocessed["ProjectionExpression"], "#p, v");
        assert_eq!(unprocessed["ConsistentRead"], true);

        // The UnprocessedKeys can be sent back as they are.
        proxy.clear();
        let retry = client.ok(
            "BatchGetItem",
            &json!({"RequestItems": out["UnprocessedKeys"].clone()}),
        );
        assert_eq!(pks(&retry["Responses"][table]), withheld);

        // Everything withheld: answered locally.
        proxy.set_fault(Fault::Unprocessed { share: 1.0 });
        let out = client.ok("BatchGetItem", &request);
        assert_eq!(out["Responses"][table], json!([]));
        assert_eq!(pks(&out["UnprocessedKeys"][table]["Keys"]).len(), 25);
        let stats = proxy.stats();
        assert_eq!(stats.unprocessed_batches, 2);
        assert_eq!(stats.unprocessed_items, 37);
        assert_eq!(stats.answered_locally, 1);
    }
}
