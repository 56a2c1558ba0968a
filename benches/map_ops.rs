//! Map operations against DynamoDB Local: `DynamoDbDict` side by side with the same requests
//! sent directly with the async SDK.
//!
//! - `op/*`: get / insert / setdefault / pop, one thread; the raw side awaits the same request
//!   (same item, same expressions) in a loop on a current-thread runtime; `op/get/async_dict`
//!   awaits `AsyncDynamoDbDict::get` on that same runtime.
//! - `concurrent_get/*`: 8 threads sharing one dict vs 8 tasks on the async SDK, and 8 tasks
//!   sharing one `AsyncDynamoDbDict`, a fixed number of gets per iteration (criterion reports
//!   ops/s).
//! - `bulk/*`: insert_many, get_many, keys, values, len, bulk_delete, clear over 10,000 items vs
//!   a sequential one-batch-at-a-time loop over the raw SDK.
//!
//! ```text
//! cargo bench --bench map_ops
//! DYNAMODICT_BENCH_QUICK=1 cargo bench --bench map_ops    # tiny sizes, short measurements
//! DYNAMODICT_ENDPOINT=http://127.0.0.1:8000 cargo bench --bench map_ops   # a running server
//! DYNAMODICT_BENCH_RTT_MS=2 cargo bench --bench map_ops        # ~2 ms more round trip per request
//! DYNAMODICT_BENCH_IN_FLIGHT=16 cargo bench --bench map_ops    # batch requests in flight
//! ```

mod common;

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use dynamodict::aws_sdk_dynamodb::Client;
use dynamodict::aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use dynamodict::aws_sdk_dynamodb::operation::put_item::PutItemError;
use dynamodict::aws_sdk_dynamodb::primitives::Blob;
use dynamodict::aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, PutRequest, ReturnValue,
    ReturnValuesOnConditionCheckFailure, Select, WriteRequest,
};
use dynamodict::layout::{self, DEFAULT_SHARDS, DEFAULT_TTL_ATTRIBUTE, FORMAT, PK, SK, VALUE};
use dynamodict::local::DynamoDbLocal;
use dynamodict::{BatchOptions, DynamoDbDict, Encoded};
use futures_util::future::try_join_all;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_bytes::ByteBuf;
use tokio::runtime::Runtime;

use common::quick;

const TABLE: &str = "dynamodict-bench";
const THREADS: usize = 8;

type Item = HashMap<String, AttributeValue>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The raw side: a client of its own and a current-thread runtime.
struct Raw {
    client: Client,
    rt: Runtime,
}

/// `DYNAMODICT_BENCH_RTT_MS=<n>`: send every request of this bench (dict and raw alike) through
/// a relay that adds about `n` ms of round trip, as to DynamoDB in an AWS region.
const RTT_ENV: &str = "DYNAMODICT_BENCH_RTT_MS";

fn rtt_ms() -> Option<u64> {
    std::env::var(RTT_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&ms| ms > 0)
}

/// Prefix of every group name: empty, or `rtt<n>ms/` with an emulated round trip.
fn prefix() -> String {
    rtt_ms().map_or_else(String::new, |ms| format!("rtt{ms}ms/"))
}

/// Where both sides send their requests: DynamoDB Local, or the delay relay in front of it.
fn endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        let server = DynamoDbLocal::shared().expect("DynamoDB Local must start for this bench");
        match rtt_ms() {
            None => server.endpoint().to_owned(),
            Some(ms) => {
                let upstream = format!("127.0.0.1:{}", server.port());
                let one_way = Duration::from_micros(ms * 500);
                common::start_delay_relay(&upstream, one_way).expect("starting the delay relay")
            }
        }
    })
}

fn raw() -> &'static Raw {
    static RAW: OnceLock<Raw> = OnceLock::new();
    RAW.get_or_init(|| Raw {
        client: common::raw_client(endpoint()),
        rt: common::current_thread_runtime(),
    })
}

/// Whether one of the bench ids `ids` matches the criterion filter given on the command line
/// (`cargo bench --bench map_ops -- <filter>`), so that expensive set-ups are skipped when none
/// can. Filters are regular expressions for criterion; any filter that is not a plain string
/// counts as a match.
fn selected(ids: &[String]) -> bool {
    const VALUED: [&str; 13] = [
        "--warm-up-time",
        "--measurement-time",
        "--sample-size",
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--profile-time",
        "--output-format",
        "--color",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut filters = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if VALUED.contains(&arg.as_str()) {
            i += 1;
        } else if !arg.starts_with('-') {
            filters.push(arg.as_str());
        }
        i += 1;
    }
    let plain = |f: &str| {
        f.chars()
            .all(|c| c.is_alphanumeric() || "_/-+ ".contains(c))
    };
    filters.is_empty()
        || filters
            .iter()
            .any(|f| !plain(f) || ids.iter().any(|id| id.contains(f)))
}

fn dict<V: Serialize + DeserializeOwned>(namespace: &str) -> DynamoDbDict<V> {
    DynamoDbDict::builder(TABLE)
        .namespace(namespace)
        .endpoint_url(endpoint())
        // `DYNAMODICT_BENCH_NO_CAPACITY=1`: without ReturnConsumedCapacity, as the raw side.
        .capacity_accounting(std::env::var_os("DYNAMODICT_BENCH_NO_CAPACITY").is_none())
        .batch_options(BatchOptions {
            concurrency: in_flight(),
            ..BatchOptions::default()
        })
        .build()
        .expect("opening the bench table")
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The primary key of `key` in the dict's layout: `pk = "<namespace>#<shard hex>"`, `sk = key`.
fn item_key<V>(dict: &DynamoDbDict<V>, key: &str) -> Item {
    let shard = layout::shard_of(key, DEFAULT_SHARDS);
    HashMap::from([
        (
            PK.to_owned(),
            AttributeValue::S(format!("{}#{shard:x}", dict.namespace())),
        ),
        (SK.to_owned(), AttributeValue::S(key.to_owned())),
    ])
}

/// The item the dict writes for `(key, value)`: its key, `v` (B) and `f` (S).
fn item_of<V: Serialize>(dict: &DynamoDbDict<V>, key: &str, value: &V) -> Item {
    let Encoded::Bytes(bytes) = dict.serializer().dumps(key, value).expect("dumps") else {
        panic!("the bench dicts use a byte format")
    };
    let mut item = item_key(dict, key);
    item.insert(VALUE.to_owned(), AttributeValue::B(Blob::new(bytes)));
    item.insert(
        FORMAT.to_owned(),
        AttributeValue::S(dict.serializer().id().to_owned()),
    );
    item
}

/// Writes `(key, value)` through the dict, reads the stored item back with the raw client and
/// checks it is exactly the item the raw side replays.
fn stored_item(dict: &DynamoDbDict<ByteBuf>, key: &str, value: &ByteBuf) -> Item {
    dict.insert(key, value.clone()).expect("insert");
    let raw = raw();
    let stored = raw
        .rt
        .block_on(
            raw.client
                .get_item()
                .table_name(TABLE)
                .set_key(Some(item_key(dict, key)))
                .consistent_read(true)
                .send(),
        )
        .expect("raw get")
        .item
        .expect("the dict's item");
    assert_eq!(stored, item_of(dict, key, value), "item shape differs");
    stored
}

/// A few thousand requests so DynamoDB Local's JIT is warm before anything is measured.
fn warm_up_server(dict: &DynamoDbDict<ByteBuf>) {
    let n = if quick() { 20 } else { 1500 };
    let value = ByteBuf::from(common::body(100));
    for i in 0..n {
        let key = format!("warm-{}", i % 50);
        dict.insert(&key, value.clone()).expect("warm-up insert");
        dict.get(&key).expect("warm-up get");
    }
    let entries: Vec<(String, ByteBuf)> = (0..n)
        .map(|i| (format!("warm-batch-{i}"), value.clone()))
        .collect();
    dict.insert_many(entries.iter().map(|(k, v)| (k.as_str(), v.clone())))
        .expect("warm-up insert_many");
    dict.clear().expect("warm-up clear");
}

// ---- single operations ------------------------------------------------------------------------

/// GetItem, strongly consistent (the dict's default).
async fn raw_get(client: &Client, key: &Item) -> Item {
    client
        .get_item()
        .table_name(TABLE)
        .set_key(Some(key.clone()))
        .consistent_read(true)
        .send()
        .await
        .expect("get")
        .item
        .expect("present")
}

/// PutItem returning the old item (what `insert` sends).
async fn raw_insert(client: &Client, item: &Item) -> Item {
    client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item.clone()))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .expect("put")
        .attributes
        .expect("old")
}

/// A plain PutItem that returns nothing: what `set` sends in a namespace that never held a
/// large value.
async fn raw_set(client: &Client, item: &Item) {
    client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item.clone()))
        .send()
        .await
        .expect("put");
}

/// The conditional PutItem `setdefault` sends, on a present key: it fails and hands back the
/// stored item.
async fn raw_setdefault(client: &Client, item: &Item) -> Item {
    let err = client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item.clone()))
        .return_values(ReturnValue::AllOld)
        .condition_expression("attribute_not_exists(#pk) OR #t <= :now")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#t", DEFAULT_TTL_ATTRIBUTE)
        .expression_attribute_values(":now", AttributeValue::N(now_secs().to_string()))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await
        .expect_err("the key is present");
    match err.into_service_error() {
        PutItemError::ConditionalCheckFailedException(e) => e.item.expect("the stored item"),
        other => panic!("unexpected error: {other}"),
    }
}

/// The DeleteItem `pop` sends: returns the old item, guarded by the serializer id.
async fn raw_pop(client: &Client, key: &Item, format_id: &str) -> Item {
    let out = client
        .delete_item()
        .table_name(TABLE)
        .set_key(Some(key.clone()))
        .return_values(ReturnValue::AllOld)
        .condition_expression("attribute_not_exists(#pk) OR #f = :f")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#f", FORMAT)
        .expression_attribute_values(":f", AttributeValue::S(format_id.to_owned()))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    match out {
        Ok(out) => out.attributes.expect("present"),
        Err(e) => match e.into_service_error() {
            DeleteItemError::ConditionalCheckFailedException(_) => {
                panic!("the bench item has the dict's serializer id")
            }
            other => panic!("delete: {other}"),
        },
    }
}

/// Puts `item` back (before each timed pop).
async fn raw_restore(client: &Client, item: &Item) {
    client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item.clone()))
        .send()
        .await
        .expect("restore");
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

/// Per-operation latencies of both sides, interleaved in blocks (alternating which side goes
/// first), so that drift on a shared machine hits both alike. Returns both sides' median
/// latency and mean CPU time of this process per operation.
fn paired(
    mut dict_op: impl FnMut() -> Sample,
    mut raw_op: impl FnMut() -> Sample,
) -> (Sample, Sample) {
    let (rounds, block) = if quick() { (4, 10) } else { (30, 20) };
    let (mut dict, mut raw) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for dict_side in [round % 2 == 0, round % 2 == 1] {
            for _ in 0..block {
                if dict_side {
                    dict.push(dict_op());
                } else {
                    raw.push(raw_op());
                }
            }
        }
    }
    (Sample::summary(dict), Sample::summary(raw))
}

/// `rounds` runs of each side, alternating which goes first; the median of each side.
fn paired_rounds(
    rounds: usize,
    mut dict_run: impl FnMut() -> Duration,
    mut raw_run: impl FnMut() -> Duration,
) -> (Duration, Duration) {
    let (mut dict, mut raw) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        if round % 2 == 0 {
            dict.push(dict_run());
            raw.push(raw_run());
        } else {
            raw.push(raw_run());
            dict.push(dict_run());
        }
    }
    (median(dict), median(raw))
}

/// `rounds` runs of every side, rotating which goes first; the median of each side.
fn interleaved<const N: usize>(rounds: usize, sides: [&dyn Fn() -> Duration; N]) -> [Duration; N] {
    let mut times: [Vec<Duration>; N] = std::array::from_fn(|_| Vec::new());
    for round in 0..rounds {
        for i in 0..N {
            let side = (round + i) % N;
            times[side].push(sides[side]());
        }
    }
    times.map(median)
}

fn report_pair(op: &str, target: f64, (dict, raw): (Sample, Sample)) {
    let ratio = dict.wall.as_secs_f64() / raw.wall.as_secs_f64();
    let cpu_ratio = dict.cpu.as_secs_f64() / raw.cpu.as_secs_f64();
    println!(
        "{}op/{op} paired per-op medians: dict {:.1} µs, raw_sdk {:.1} µs, ratio {ratio:.3} \
         (target <= {target}: {}); client CPU per op: dict {:.1} µs, raw_sdk {:.1} µs, ratio \
         {cpu_ratio:.3}",
        prefix(),
        dict.wall.as_secs_f64() * 1e6,
        raw.wall.as_secs_f64() * 1e6,
        if ratio <= target { "met" } else { "MISSED" },
        dict.cpu.as_secs_f64() * 1e6,
        raw.cpu.as_secs_f64() * 1e6,
    );
}

/// One timed operation: its wall-clock time and the CPU time this process spent meanwhile
/// (the client's cost: the dict runs requests on the calling thread, the raw side on this
/// thread's runtime, and DynamoDB Local is another process).
#[derive(Debug, Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu: Duration,
}

impl Sample {
    /// Times `f`.
    fn of<T>(f: impl FnOnce() -> T) -> Self {
        let cpu = process_cpu_time();
        let wall = timed(f);
        Sample {
            wall,
            cpu: process_cpu_time().saturating_sub(cpu),
        }
    }

    /// Times `future` on the raw SDK's runtime.
    fn of_async<F: std::future::Future>(rt: &Runtime, future: F) -> Self {
        Self::of(|| rt.block_on(future))
    }

    /// The median wall time and the mean CPU time (CPU clocks tick too coarsely for medians
    /// of single requests).
    fn summary(samples: Vec<Sample>) -> Self {
        let n = u32::try_from(samples.len().max(1)).unwrap_or(u32::MAX);
        let cpu = samples.iter().map(|s| s.cpu).sum::<Duration>() / n;
        Sample {
            wall: median(samples.iter().map(|s| s.wall).collect()),
            cpu,
        }
    }
}

/// CPU time (user + system, all threads) this process has used so far.
fn process_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; the clock id is a constant the C library
    // defines.
    if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

fn timed<T>(f: impl FnOnce() -> T) -> Duration {
    let start = Instant::now();
    black_box(f());
    start.elapsed()
}

/// Criterion's custom timing: `iters` raw-SDK requests made one after another by `request`.
fn raw_iters<F, Fut>(rt: &tokio::runtime::Runtime, iters: u64, mut request: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future,
{
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(request().await);
        }
        start.elapsed()
    })
}

fn single_ops(c: &mut Criterion) {
    let p = prefix();
    let ids: Vec<String> = ["get", "insert", "set", "setdefault", "pop"]
        .iter()
        .flat_map(|op| [format!("{p}op/{op}/dict"), format!("{p}op/{op}/raw_sdk")])
        .collect();
    if !selected(&ids) {
        return;
    }
    let raw = raw();
    let client = &raw.client;
    let dict: DynamoDbDict<ByteBuf> = dict("ops");
    warm_up_server(&dict);
    let value = ByteBuf::from(common::body(100));
    let format_id = dict.serializer().id().to_owned();

    let get_key = item_key(&dict, "get");
    stored_item(&dict, "get", &value);
    let dict_get = || dict.get("get").expect("get").expect("present");
    let mut group = c.benchmark_group(format!("{p}op/get"));
    group.bench_function("dict", |b| b.iter(dict_get));
    group.bench_function("raw_sdk", |b| {
        b.iter_custom(|iters| raw_iters(&raw.rt, iters, || raw_get(client, &get_key)))
    });
    // The async map on the same runtime as the raw SDK.
    let async_dict = dict.to_async();
    group.bench_function("async_dict", |b| {
        b.iter_custom(|iters| raw_iters(&raw.rt, iters, || async_dict.get("get")))
    });
    group.finish();

    let insert_item = stored_item(&dict, "insert", &value);
    let dict_insert = || {
        dict.insert("insert", value.clone())
            .expect("insert")
            .expect("old")
    };
    let mut group = c.benchmark_group(format!("{p}op/insert"));
    group.bench_function("dict", |b| b.iter(dict_insert));
    group.bench_function("raw_sdk", |b| {
        b.iter_custom(|iters| raw_iters(&raw.rt, iters, || raw_insert(client, &insert_item)))
    });
    group.finish();

    let set_item = stored_item(&dict, "set", &value);
    let dict_set = || dict.set("set", value.clone()).expect("set");
    let mut group = c.benchmark_group(format!("{p}op/set"));
    group.bench_function("dict", |b| b.iter(dict_set));
    group.bench_function("raw_sdk", |b| {
        b.iter_custom(|iters| raw_iters(&raw.rt, iters, || raw_set(client, &set_item)))
    });
    group.finish();

    let setdefault_item = stored_item(&dict, "setdefault", &value);
    let dict_setdefault = || {
        dict.setdefault("setdefault", value.clone())
            .expect("setdefault")
    };
    let mut group = c.benchmark_group(format!("{p}op/setdefault"));
    group.bench_function("dict", |b| b.iter(dict_setdefault));
    group.bench_function("raw_sdk", |b| {
        b.iter_custom(|iters| {
            raw_iters(&raw.rt, iters, || raw_setdefault(client, &setdefault_item))
        })
    });
    group.finish();

    // pop: the item is put back (untimed) before every pop.
    let pop_item = stored_item(&dict, "pop", &value);
    let pop_key = item_key(&dict, "pop");
    let dict_pop = || dict.pop("pop").expect("pop").expect("present");
    let mut group = c.benchmark_group(format!("{p}op/pop"));
    group.bench_function("dict", |b| {
        b.iter_batched(
            || raw.rt.block_on(raw_restore(client, &pop_item)),
            |()| dict_pop(),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("raw_sdk", |b| {
        b.iter_custom(|iters| {
            raw.rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    raw_restore(client, &pop_item).await;
                    let start = Instant::now();
                    black_box(raw_pop(client, &pop_key, &format_id).await);
                    total += start.elapsed();
                }
                total
            })
        })
    });
    group.finish();

    // The same five, interleaved, one latency per operation.
    // The issue's target for `set` in a namespace without large values: one plain PutItem.
    report_pair(
        "set",
        1.02,
        paired(
            || Sample::of(dict_set),
            || Sample::of_async(&raw.rt, raw_set(client, &set_item)),
        ),
    );
    report_pair(
        "get",
        1.05,
        paired(
            || Sample::of(dict_get),
            || Sample::of_async(&raw.rt, raw_get(client, &get_key)),
        ),
    );
    report_pair(
        "get_async",
        1.05,
        paired(
            || Sample::of_async(&raw.rt, async_dict.get("get")),
            || Sample::of_async(&raw.rt, raw_get(client, &get_key)),
        ),
    );
    report_pair(
        "set_async",
        1.05,
        paired(
            || Sample::of_async(&raw.rt, async_dict.set("set", value.clone())),
            || Sample::of_async(&raw.rt, raw_set(client, &set_item)),
        ),
    );
    report_pair(
        "insert",
        1.05,
        paired(
            || Sample::of(dict_insert),
            || Sample::of_async(&raw.rt, raw_insert(client, &insert_item)),
        ),
    );
    report_pair(
        "setdefault",
        1.05,
        paired(
            || Sample::of(dict_setdefault),
            || Sample::of_async(&raw.rt, raw_setdefault(client, &setdefault_item)),
        ),
    );
    report_pair(
        "pop",
        1.05,
        paired(
            || {
                raw.rt.block_on(raw_restore(client, &pop_item));
                Sample::of(dict_pop)
            },
            || {
                raw.rt.block_on(raw_restore(client, &pop_item));
                Sample::of_async(&raw.rt, raw_pop(client, &pop_key, &format_id))
            },
        ),
    );
}

// ---- a cache hit through the HTTP session ------------------------------------------------------

/// `session.get(url).send()` answered from the cache (a fresh 1 KiB JSON response in the
/// cache's default document format) against a raw `GetItem` of the same item.
#[cfg(feature = "reqwest")]
fn session_hit(c: &mut Criterion) {
    use dynamodict::cache::{CachedRequest, CachedResponse};
    use dynamodict::session::{CacheStatus, CachedSession};

    let p = prefix();
    let ids = [
        format!("{p}session/hit/session"),
        format!("{p}session/hit/raw_sdk"),
    ];
    if !selected(&ids) {
        return;
    }
    let raw = raw();
    warm_up_server(&dict("session-warm-up"));
    let session = CachedSession::builder(TABLE)
        .cache(|c| c.namespace("session").endpoint_url(endpoint()))
        .build()
        .expect("opening the session's cache");
    // Never contacted: the stored entry is fresh for a day.
    let url = "http://127.0.0.1:9/api/items?page=1";
    let mut response = CachedResponse::new(
        CachedRequest::new("GET", url),
        200,
        common::body(1024)
            .into_iter()
            .map(|b| b'a' + b % 26)
            .collect(),
    );
    response.headers.append("Content-Type", "application/json");
    response.headers.append("Cache-Control", "max-age=86400");
    let key = session
        .cache()
        .save_response(
            &response,
            None,
            Some(SystemTime::now() + Duration::from_secs(86_400)),
        )
        .expect("saving the response")
        .expect("the policy saves it");
    let item = item_key(session.cache().responses(), &key);
    let hit = || {
        let r = session.get(url).send().expect("session hit");
        assert_eq!(r.cache_status(), CacheStatus::Fresh);
        r
    };
    let mut group = c.benchmark_group(format!("{p}session/hit"));
    group.bench_function("session", |b| b.iter(hit));
    group.bench_function("raw_sdk", |b| {
        b.iter_custom(|iters| raw_iters(&raw.rt, iters, || raw_get(&raw.client, &item)))
    });
    group.finish();
    report_pair(
        "session_hit",
        1.10,
        paired(
            || Sample::of(hit),
            || Sample::of_async(&raw.rt, raw_get(&raw.client, &item)),
        ),
    );
}

#[cfg(not(feature = "reqwest"))]
fn session_hit(_: &mut Criterion) {}

// ---- 8 threads vs 8 tasks -------------------------------------------------------------------

fn concurrent(c: &mut Criterion) {
    let p = prefix();
    let ids = [
        "dict_8_threads",
        "raw_8_tasks_current_thread",
        "raw_8_tasks_multi_thread_2_workers",
        "async_dict_8_tasks_multi_thread_2_workers",
    ]
    .map(|f| format!("{p}concurrent_get/{f}"));
    if !selected(&ids) {
        return;
    }
    let raw = raw();
    let dict: DynamoDbDict<ByteBuf> = dict("concurrent");
    let ops = if quick() { 80 } else { 800 };
    let value = ByteBuf::from(common::body(100));
    let names: Vec<String> = (0..64).map(|i| format!("c-{i:02}")).collect();
    dict.insert_many(names.iter().map(|k| (k.as_str(), value.clone())))
        .expect("insert_many");
    let keys: Arc<Vec<Item>> = Arc::new(names.iter().map(|k| item_key(&dict, k)).collect());
    let per_worker = ops / THREADS;

    let mut group = c.benchmark_group(format!("{p}concurrent_get"));
    group.throughput(Throughput::Elements((per_worker * THREADS) as u64));
    group.sampling_mode(SamplingMode::Flat).sample_size(20);
    let run_threads = || {
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (dict, names) = (&dict, &names);
                s.spawn(move || {
                    for i in 0..per_worker {
                        let key = &names[(t * per_worker + i) % names.len()];
                        black_box(dict.get(key).expect("get").expect("present"));
                    }
                });
            }
        })
    };
    group.bench_function("dict_8_threads", |b| b.iter(run_threads));
    // A client's pooled connections belong to the runtime that opened them: one client per
    // runtime.
    let run_tasks = |rt: &Runtime, client: &Client| {
        rt.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for t in 0..THREADS {
                let (client, keys) = (client.clone(), Arc::clone(&keys));
                tasks.spawn(async move {
                    for i in 0..per_worker {
                        let key = &keys[(t * per_worker + i) % keys.len()];
                        let out = client
                            .get_item()
                            .table_name(TABLE)
                            .set_key(Some(key.clone()))
                            .consistent_read(true)
                            .send()
                            .await
                            .expect("get");
                        black_box(out.item.expect("present"));
                    }
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.expect("a raw task panicked");
            }
        })
    };
    group.bench_function("raw_8_tasks_current_thread", |b| {
        b.iter(|| run_tasks(&raw.rt, &raw.client))
    });
    let multi_client = common::raw_client(endpoint());
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a multi-thread runtime");
    group.bench_function("raw_8_tasks_multi_thread_2_workers", |b| {
        b.iter(|| run_tasks(&multi, &multi_client))
    });
    let async_dict = dict.to_async();
    let run_async_dict = |rt: &Runtime| {
        rt.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for t in 0..THREADS {
                let (map, names) = (async_dict.clone(), names.clone());
                tasks.spawn(async move {
                    for i in 0..per_worker {
                        let key = &names[(t * per_worker + i) % names.len()];
                        black_box(map.get(key).await.expect("get").expect("present"));
                    }
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.expect("an async map task panicked");
            }
        })
    };
    group.bench_function("async_dict_8_tasks_multi_thread_2_workers", |b| {
        b.iter(|| run_async_dict(&multi))
    });
    group.finish();

    // The same two, interleaved round by round.
    let rounds = if quick() { 3 } else { 15 };
    let (dict_time, raw_time) = paired_rounds(
        rounds,
        || timed(run_threads),
        || timed(|| run_tasks(&raw.rt, &raw.client)),
    );
    let ops = (per_worker * THREADS) as f64;
    let (dict_rate, raw_rate) = (ops / dict_time.as_secs_f64(), ops / raw_time.as_secs_f64());
    let share = dict_rate / raw_rate;
    println!(
        "{p}concurrent_get paired medians of {rounds} rounds of {ops} gets: dict 8 threads \
         {dict_rate:.0} ops/s, raw 8 tasks {raw_rate:.0} ops/s, dict/raw {share:.3} \
         (target >= 0.90: {})",
        if share >= 0.90 { "met" } else { "MISSED" }
    );
    let (async_time, raw_time) = paired_rounds(
        rounds,
        || timed(|| run_async_dict(&multi)),
        || timed(|| run_tasks(&multi, &multi_client)),
    );
    let (async_rate, raw_rate) = (ops / async_time.as_secs_f64(), ops / raw_time.as_secs_f64());
    println!(
        "{p}concurrent_get paired medians of {rounds} rounds of {ops} gets, multi-thread \
         runtime: async dict 8 tasks {async_rate:.0} ops/s, raw 8 tasks {raw_rate:.0} ops/s, \
         async/raw {:.3}",
        async_rate / raw_rate
    );
}

// ---- bulk operations vs a sequential loop ---------------------------------------------------

async fn raw_write_sequential(
    client: &Client,
    requests: Vec<WriteRequest>,
) -> Result<(), BoxError> {
    for chunk in requests.chunks(25) {
        let mut pending = chunk.to_vec();
        while !pending.is_empty() {
            let out = client
                .batch_write_item()
                .request_items(TABLE, pending)
                .send()
                .await?;
            pending = out
                .unprocessed_items
                .and_then(|mut m| m.remove(TABLE))
                .unwrap_or_default();
        }
    }
    Ok(())
}

/// Runs a raw request loop on the raw side's runtime.
fn block<T>(f: impl std::future::Future<Output = Result<T, BoxError>>) -> T {
    raw().rt.block_on(f).expect("raw request")
}

fn put_requests(items: &[Item]) -> Vec<WriteRequest> {
    items
        .iter()
        .map(|item| {
            let put = PutRequest::builder()
                .set_item(Some(item.clone()))
                .build()
                .expect("put request");
            WriteRequest::builder().put_request(put).build()
        })
        .collect()
}

fn delete_requests(keys: &[Item]) -> Vec<WriteRequest> {
    keys.iter()
        .map(|key| {
            let delete = DeleteRequest::builder()
                .set_key(Some(key.clone()))
                .build()
                .expect("delete request");
            WriteRequest::builder().delete_request(delete).build()
        })
        .collect()
}

async fn raw_get_sequential(client: &Client, keys: &[Item]) -> Result<Vec<Item>, BoxError> {
    let mut found = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(100) {
        let mut pending = chunk.to_vec();
        while !pending.is_empty() {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(true)
                .build()?;
            let mut out = client
                .batch_get_item()
                .request_items(TABLE, request)
                .send()
                .await?;
            found.extend(
                out.responses
                    .as_mut()
                    .and_then(|r| r.remove(TABLE))
                    .unwrap_or_default(),
            );
            pending = out
                .unprocessed_keys
                .and_then(|mut m| m.remove(TABLE))
                .map(|k| k.keys)
                .unwrap_or_default();
        }
    }
    Ok(found)
}

#[derive(Clone, Copy)]
enum RawQuery {
    /// Keys of live items (projection `pk, sk`).
    Keys,
    /// Keys of every item, expired included (what `clear` deletes).
    AllKeys,
    /// Whole live items.
    Items,
    /// The count of live items.
    Count,
}

/// One page of one shard, with the same expressions the dict uses.
async fn raw_query_page(
    client: &Client,
    namespace: &str,
    shard: u16,
    what: RawQuery,
    start: Option<Item>,
) -> Result<(Vec<Item>, Option<Item>, usize), BoxError> {
    let mut request = client
        .query()
        .table_name(TABLE)
        .key_condition_expression("#pk = :pk")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_values(":pk", AttributeValue::S(format!("{namespace}#{shard:x}")))
        .consistent_read(true)
        .set_exclusive_start_key(start);
    if !matches!(what, RawQuery::AllKeys) {
        request = request
            .expression_attribute_names("#t", DEFAULT_TTL_ATTRIBUTE)
            .expression_attribute_values(":now", AttributeValue::N(now_secs().to_string()))
            .filter_expression("attribute_not_exists(#t) OR #t > :now");
    }
    request = match what {
        RawQuery::Count => request.select(Select::Count),
        RawQuery::Keys | RawQuery::AllKeys => request
            .projection_expression("#pk, #sk")
            .expression_attribute_names("#sk", SK),
        RawQuery::Items => request,
    };
    let out = request.send().await?;
    let count = usize::try_from(out.count).unwrap_or(0);
    Ok((out.items.unwrap_or_default(), out.last_evaluated_key, count))
}

/// Every shard, one page at a time, handing each page to `each`.
async fn raw_pages<F, Fut>(
    client: &Client,
    namespace: &str,
    what: RawQuery,
    each: F,
) -> Result<(), BoxError>
where
    F: FnMut(Vec<Item>, usize) -> Fut,
    Fut: std::future::Future<Output = Result<(), BoxError>>,
{
    raw_shard_pages(client, namespace, 0..DEFAULT_SHARDS, what, each).await
}

/// Every page of `shards`, one at a time, handing each page to `each`.
async fn raw_shard_pages<F, Fut>(
    client: &Client,
    namespace: &str,
    shards: std::ops::Range<u16>,
    what: RawQuery,
    mut each: F,
) -> Result<(), BoxError>
where
    F: FnMut(Vec<Item>, usize) -> Fut,
    Fut: std::future::Future<Output = Result<(), BoxError>>,
{
    for shard in shards {
        let mut start = None;
        loop {
            let (items, next, count) =
                raw_query_page(client, namespace, shard, what, start).await?;
            each(items, count).await?;
            match next {
                Some(next) => start = Some(next),
                None => break,
            }
        }
    }
    Ok(())
}

/// `DYNAMODICT_BENCH_IN_FLIGHT=<n>`: batch requests in flight, for the dict (its
/// `BatchOptions::concurrency`) and for the raw `raw_<n>_in_flight` variants alike. Default: the
/// dict's default (16).
const IN_FLIGHT_ENV: &str = "DYNAMODICT_BENCH_IN_FLIGHT";

/// Requests in flight in the bulk benches (see [`IN_FLIGHT_ENV`]).
fn in_flight() -> usize {
    std::env::var(IN_FLIGHT_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| BatchOptions::default().concurrency)
}

/// Batch writes, 25 per request, [`in_flight`] requests at a time.
async fn raw_write_concurrent(
    client: &Client,
    requests: Vec<WriteRequest>,
) -> Result<(), BoxError> {
    let chunks: Vec<Vec<WriteRequest>> = requests.chunks(25).map(<[_]>::to_vec).collect();
    stream::iter(
        chunks
            .into_iter()
            .map(|chunk| raw_write_sequential(client, chunk)),
    )
    .buffer_unordered(in_flight())
    .try_collect()
    .await
}

/// Batch gets, 100 keys per request, [`in_flight`] requests at a time.
async fn raw_get_concurrent(client: &Client, keys: &[Item]) -> Result<Vec<Item>, BoxError> {
    let found: Vec<Vec<Item>> =
        stream::iter(keys.chunks(100).map(|c| raw_get_sequential(client, c)))
            .buffer_unordered(in_flight())
            .try_collect()
            .await?;
    Ok(found.into_iter().flatten().collect())
}

/// Every shard at once (each one page at a time); `each` runs per page and yields a count.
async fn raw_pages_concurrent<F, Fut>(
    client: &Client,
    namespace: &str,
    what: RawQuery,
    each: F,
) -> Result<usize, BoxError>
where
    F: Fn(Vec<Item>, usize) -> Fut,
    Fut: std::future::Future<Output = Result<usize, BoxError>>,
{
    let per_shard = (0..DEFAULT_SHARDS).map(|shard| {
        let each = &each;
        async move {
            let total = std::cell::Cell::new(0);
            raw_shard_pages(client, namespace, shard..shard + 1, what, |items, count| {
                let (page, total) = (each(items, count), &total);
                async move {
                    total.set(total.get() + page.await?);
                    Ok(())
                }
            })
            .await?;
            Ok::<_, BoxError>(total.get())
        }
    });
    Ok(try_join_all(per_shard).await?.into_iter().sum())
}

/// The DynamoDB Local process this bench started (none with `DYNAMODICT_ENDPOINT`).
fn server_pid() -> Option<u32> {
    DynamoDbLocal::shared().ok()?.pid()
}

/// CPU time (user + system, all threads) used so far by this process and by the server (from
/// Linux's `/proc/<pid>/stat`, in 10 ms ticks; zero where that is not available): what shows
/// whether a side is bound by the server's CPU.
#[derive(Debug, Clone, Copy, Default)]
struct CpuUse {
    bench: Duration,
    server: Duration,
}

impl CpuUse {
    fn now(server: Option<u32>) -> Self {
        CpuUse {
            bench: process_cpu_time(),
            server: server.map_or(Duration::ZERO, cpu_time_of_pid),
        }
    }

    fn add_since(&mut self, before: CpuUse, after: CpuUse) {
        self.bench += after.bench.saturating_sub(before.bench);
        self.server += after.server.saturating_sub(before.server);
    }

    fn per_run(self, runs: usize) -> Self {
        let runs = u32::try_from(runs.max(1)).unwrap_or(u32::MAX);
        CpuUse {
            bench: self.bench / runs,
            server: self.server / runs,
        }
    }
}

impl std::fmt::Display for CpuUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        write!(f, "{:.0} + {:.0} ms", ms(self.bench), ms(self.server))
    }
}

/// User + system CPU time of process `pid` from `/proc`; zero if unreadable.
fn cpu_time_of_pid(pid: u32) -> Duration {
    let ticks = || -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may hold spaces: count fields after its closing parenthesis, where
        // field 3 (state) comes first and utime, stime are fields 14 and 15.
        let mut fields = stat.get(stat.rfind(')')? + 2..)?.split(' ').skip(11);
        let user: u64 = fields.next()?.parse().ok()?;
        let system: u64 = fields.next()?.parse().ok()?;
        Some(user + system)
    };
    // Linux reports these in USER_HZ, which is 100 on every architecture it supports.
    Duration::from_millis(ticks().unwrap_or(0) * 10)
}

const BULK_OPS: [&str; 7] = [
    "insert_many",
    "get_many",
    "keys",
    "values",
    "len",
    "bulk_delete",
    "clear",
];

/// Long iterations: flat sampling, 10 samples, throughput in items.
fn bulk_group(c: &mut Criterion, name: String, n: usize) -> BenchmarkGroup<'_, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .throughput(Throughput::Elements(n as u64));
    g
}

fn bulk(c: &mut Criterion) {
    let label = format!(
        "{}{}",
        prefix(),
        if quick() { "bulk_500" } else { "bulk_10k" }
    );
    let ids: Vec<String> = BULK_OPS
        .iter()
        .flat_map(|op| {
            [
                format!("{label}/{op}/dict"),
                format!("{label}/{op}/raw_sequential"),
            ]
        })
        .collect();
    if !selected(&ids) {
        return;
    }
    let raw = raw();
    let client = &raw.client;
    let server = server_pid();
    let n = if quick() { 500 } else { 10_000 };
    let dict: DynamoDbDict<ByteBuf> = dict("bulk");
    dict.clear().expect("clear");
    let value = ByteBuf::from(common::body(100));
    let names: Vec<String> = (0..n).map(|i| format!("bulk-{i:05}")).collect();
    let items: Vec<Item> = names.iter().map(|k| item_of(&dict, k, &value)).collect();
    let keys: Vec<Item> = names.iter().map(|k| item_key(&dict, k)).collect();
    let namespace = dict.namespace().to_owned();
    let insert_all = || {
        dict.insert_many(names.iter().map(|k| (k.as_str(), value.clone())))
            .expect("insert_many")
    };

    let raw_keys = || {
        let mut keys = Vec::with_capacity(n);
        block(raw_pages(client, &namespace, RawQuery::Keys, |items, _| {
            keys.extend(items.into_iter().filter_map(|mut i| match i.remove(SK) {
                Some(AttributeValue::S(k)) => Some(k),
                _ => None,
            }));
            async { Ok(()) }
        }));
        assert_eq!(keys.len(), n);
    };
    let raw_values = || {
        let mut values = Vec::with_capacity(n);
        block(raw_pages(
            client,
            &namespace,
            RawQuery::Items,
            |items, _| {
                values.extend(items.into_iter().filter_map(|mut i| match i.remove(VALUE) {
                    Some(AttributeValue::B(v)) => Some(v.into_inner()),
                    _ => None,
                }));
                async { Ok(()) }
            },
        ));
        assert_eq!(values.len(), n);
    };
    let raw_len = || {
        let mut total = 0;
        block(raw_pages(
            client,
            &namespace,
            RawQuery::Count,
            |_, count| {
                total += count;
                async { Ok(()) }
            },
        ));
        assert_eq!(total, n);
    };
    let raw_clear = || {
        block(raw_pages(
            client,
            &namespace,
            RawQuery::AllKeys,
            |items, _| {
                let deletes = delete_requests(&items);
                async move { raw_write_sequential(client, deletes).await }
            },
        ))
    };
    // The raw SDK with `in_flight()` requests at once: what concurrency can gain on this machine.
    // Listing: the items of every page counted (or the server's counts summed, for `Count`).
    let concurrent_listing = |what: RawQuery| {
        let total = block(raw_pages_concurrent(
            client,
            &namespace,
            what,
            |items, count| async move {
                Ok(match what {
                    RawQuery::Count => count,
                    _ => black_box(items).len(),
                })
            },
        ));
        assert_eq!(total, n);
    };
    let concurrent_clear = || {
        block(raw_pages_concurrent(
            client,
            &namespace,
            RawQuery::AllKeys,
            |items, _| {
                let deletes = delete_requests(&items);
                async move {
                    raw_write_sequential(client, deletes).await?;
                    Ok(0)
                }
            },
        ));
    };
    // (name, needs the items written again before each run, dict side, raw sequential side,
    // raw side with `in_flight()` requests at once)
    type Side<'a> = &'a dyn Fn();
    let ops: [(&str, bool, Side, Side, Side); 7] = [
        (
            "insert_many",
            false,
            &insert_all,
            &|| block(raw_write_sequential(client, put_requests(&items))),
            &|| block(raw_write_concurrent(client, put_requests(&items))),
        ),
        (
            "get_many",
            false,
            &|| {
                let got = dict.get_many(&names).expect("get_many");
                assert!(got.iter().all(Option::is_some));
            },
            &|| assert_eq!(block(raw_get_sequential(client, &keys)).len(), n),
            &|| assert_eq!(block(raw_get_concurrent(client, &keys)).len(), n),
        ),
        (
            "keys",
            false,
            &|| {
                let keys: Vec<String> = dict.keys().collect::<Result<_, _>>().expect("keys");
                assert_eq!(keys.len(), n);
            },
            &raw_keys,
            &|| concurrent_listing(RawQuery::Keys),
        ),
        (
            "values",
            false,
            &|| {
                let values: Vec<ByteBuf> = dict.values().collect::<Result<_, _>>().expect("values");
                assert_eq!(values.len(), n);
            },
            &raw_values,
            &|| concurrent_listing(RawQuery::Items),
        ),
        (
            "len",
            false,
            &|| assert_eq!(dict.len().expect("len"), n),
            &raw_len,
            &|| concurrent_listing(RawQuery::Count),
        ),
        (
            "bulk_delete",
            true,
            &|| dict.bulk_delete(&names).expect("bulk_delete"),
            &|| block(raw_write_sequential(client, delete_requests(&keys))),
            &|| block(raw_write_concurrent(client, delete_requests(&keys))),
        ),
        (
            "clear",
            true,
            &|| dict.clear().expect("clear"),
            &raw_clear,
            &concurrent_clear,
        ),
    ];
    debug_assert_eq!(ops.map(|o| o.0), BULK_OPS);

    // Criterion, op by op; `insert_many` leaves the items the read-only ops need.
    for (op, rewrite, dict_side, raw_side, _) in ops {
        let mut g = bulk_group(c, format!("{label}/{op}"), n);
        if rewrite {
            for (name, side) in [("dict", dict_side), ("raw_sequential", raw_side)] {
                g.bench_function(name, |b| {
                    b.iter_batched(insert_all, |()| side(), BatchSize::PerIteration)
                });
            }
        } else {
            g.bench_function("dict", |b| b.iter(dict_side));
            g.bench_function("raw_sequential", |b| b.iter(raw_side));
        }
        g.finish();
    }
    assert!(
        dict.is_empty().expect("is_empty"),
        "clear removed everything"
    );

    // The same, interleaved run by run (the items written again, untimed, where needed), and
    // the raw SDK with `in_flight()` requests at once: the most concurrency gains on this machine.
    for (op, rewrite, dict_side, raw_side, concurrent_side) in ops {
        // More rounds for the short operations, to even out a shared machine's noise.
        let rounds = match (quick(), op) {
            (true, _) => 2,
            (false, "keys" | "values" | "len") => 11,
            (false, "get_many") => 5,
            (false, _) => 3,
        };
        // CPU used during the timed runs of each side: (this process, the server).
        let cpu = std::cell::RefCell::new([CpuUse::default(); 3]);
        let run = |index: usize, side: Side| {
            if rewrite {
                insert_all();
            }
            let before = CpuUse::now(server);
            let time = timed(side);
            cpu.borrow_mut()[index].add_since(before, CpuUse::now(server));
            time
        };
        let [dict_time, raw_time, concurrent_time] = interleaved(
            rounds,
            [&|| run(0, dict_side), &|| run(1, raw_side), &|| {
                run(2, concurrent_side)
            }],
        );
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let speedup = raw_time.as_secs_f64() / dict_time.as_secs_f64();
        let [dict_cpu, raw_cpu, concurrent_cpu] = cpu.into_inner().map(|c| c.per_run(rounds));
        println!(
            "{label}/{op} paired medians of {rounds} rounds: dict {:.1} ms, raw_sequential \
             {:.1} ms, speedup {speedup:.2}x (target >= 3: {}); raw_{in_flight}_in_flight {:.1} \
             ms ({:.2}x); CPU per run (bench process + server): dict {dict_cpu}, \
             raw_sequential {raw_cpu}, raw_{in_flight}_in_flight {concurrent_cpu}",
            ms(dict_time),
            ms(raw_time),
            if speedup >= 3.0 { "met" } else { "MISSED" },
            ms(concurrent_time),
            raw_time.as_secs_f64() / concurrent_time.as_secs_f64(),
            in_flight = in_flight(),
        );
    }
    dict.clear().expect("clear");
}

criterion_group! {
    name = benches;
    config = common::criterion(30);
    targets = single_ops, session_hit, concurrent, bulk
}
criterion_main!(benches);
