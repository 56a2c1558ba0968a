//! Reliability under network and server faults, through the fault-injecting proxy
//! ([`FaultProxy`]) in front of DynamoDB Local: every call returns a typed error within its
//! configured timeouts (never a hang, never a panic), the same map works again once the fault is
//! lifted, throttling is retried or reported as [`Error::Throttled`], and a server killed in the
//! middle of a write workload loses no acknowledged write.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dynamodict::local::{DynamoDbLocal, LocalEngine, LocalOptions};
use dynamodict::{BatchOptions, DynamoDbDict, Error, Timeouts};

use crate::support::proxy::{Fault, FaultProxy, ThrottleCode, local_upstream};
use crate::support::{self, unique};

/// Short timeouts so that faults show quickly: one attempt may take 1 s, a whole call (retries
/// included) 2 s.
const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_millis(500),
    attempt: Duration::from_secs(1),
    operation: Duration::from_secs(2),
};

/// What a call may take beyond its operation timeout before we call it a hang: scheduling on a
/// busy 2-core machine, a debug build, several concurrent requests per call.
const SLACK: Duration = Duration::from_secs(3);

/// Retries of unprocessed batch items, fast so the tests stay short.
const FAST_BATCHES: BatchOptions = BatchOptions {
    concurrency: 4,
    // High, because the proxy's deterministic sampling can keep handing back the same lone
    // item while concurrent batches stay in step.
    max_attempts: 25,
    initial_backoff: Duration::from_millis(2),
    max_backoff: Duration::from_millis(20),
};

/// A map reached through `proxy`, with short timeouts and `attempts` SDK attempts per request,
/// in namespace `ns` of the shared test table.
fn through(proxy: &FaultProxy, ns: &str, attempts: u32, timeouts: Timeouts) -> DynamoDbDict<u64> {
    let build = || {
        DynamoDbDict::builder(support::TABLE)
            .namespace(ns)
            .endpoint_url(proxy.endpoint())
            // The SDK's retry budget (a token bucket, 500 tokens) is shared by every client of
            // the process with the same retry partition, "dynamodb-<region>". A region of its
            // own (DynamoDB Local ignores it) keeps the faults of one test from using up the
            // retries another test counts on.
            .region(support::region_of_its_own(&format!("fault-{ns}")))
            .timeouts(timeouts)
            .max_attempts(attempts)
            .batch_options(FAST_BATCHES)
            .build()
    };
    // Building is not what these tests are about: with short timeouts, a busy machine (the
    // server's first requests, the table being created by a parallel test) may need a second go.
    let mut result = build();
    for _ in 0..3 {
        match &result {
            Err(e) if e.is_transient() => result = build(),
            _ => break,
        }
    }
    result.expect("building a map through the proxy (no fault yet)")
}

/// Waits until the proxy has read no new request for a while: requests that a failed call had
/// already sent (or started to send) before giving up are then handled under the fault still in
/// force, instead of reaching the server once it is lifted.
fn wait_quiet(proxy: &FaultProxy) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = proxy.stats().requests;
    let mut since = Instant::now();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let now = proxy.stats().requests;
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= Duration::from_millis(400) {
            return;
        }
    }
}

/// A map on the same namespace that talks to DynamoDB Local directly: the referee.
fn direct(ns: &str) -> DynamoDbDict<u64> {
    DynamoDbDict::builder(support::TABLE)
        .namespace(ns)
        .local()
        .build()
        .expect("building the direct map")
}

fn contents(d: &DynamoDbDict<u64>) -> BTreeMap<String, u64> {
    d.items()
        .collect::<Result<BTreeMap<_, _>, _>>()
        .expect("listing the namespace directly")
}

/// A map call whose value does not matter, only whether and how it failed.
type Call<'a> = Box<dyn Fn() -> Result<(), Error> + 'a>;
/// A call with its own assertions.
type Check<'a> = Box<dyn Fn() + 'a>;

/// The operations run under every fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Get,
    Insert,
    SetDefault,
    Pop,
    InsertMany,
    GetMany,
    Keys,
    Len,
    Clear,
}

const OPS: [Op; 9] = [
    Op::Get,
    Op::Insert,
    Op::SetDefault,
    Op::Pop,
    Op::InsertMany,
    Op::GetMany,
    Op::Keys,
    Op::Len,
    Op::Clear,
];

/// Seeds the namespace (directly) with `seed-0..10`.
fn seed(referee: &DynamoDbDict<u64>) {
    referee
        .insert_many((0..10u64).map(|i| (format!("seed-{i}"), i)))
        .expect("seeding directly");
}

/// Runs `op` against `d`, returning how long it took.
fn run(d: &DynamoDbDict<u64>, op: Op, round: usize) -> (Result<(), Error>, Duration) {
    let start = Instant::now();
    let result = match op {
        Op::Get => d.get("seed-1").map(drop),
        Op::Insert => d.insert(&format!("ins-{round}"), 7).map(drop),
        Op::SetDefault => d.setdefault(&format!("sd-{round}"), 8).map(drop),
        Op::Pop => d.pop("seed-2").map(drop),
        Op::InsertMany => d.insert_many((0..30u64).map(|i| (format!("many-{round}-{i}"), i))),
        Op::GetMany => d.get_many(["seed-3", "seed-4", "absent"]).map(drop),
        Op::Keys => d.keys().collect::<Result<Vec<_>, _>>().map(drop),
        Op::Len => d.len().map(drop),
        Op::Clear => d.clear(),
    };
    (result, start.elapsed())
}

/// What a fault must produce.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Success,
    Timeout,
    ConnectionOrTimeout,
    Connection,
}

impl Expect {
    fn accepts(self, result: &Result<(), Error>) -> bool {
        match self {
            Expect::Success => result.is_ok(),
            Expect::Timeout => matches!(result, Err(Error::Timeout { .. })),
            Expect::ConnectionOrTimeout => {
                matches!(
                    result,
                    Err(Error::Connection { .. } | Error::Timeout { .. })
                )
            }
            Expect::Connection => matches!(result, Err(Error::Connection { .. })),
        }
    }
}

/// After a fault is lifted, the very same map must work again: wait for stragglers (a request
/// delayed by the proxy still reaches the server after its caller gave up), then check a full
/// round of operations against exact expectations.
fn works_again(d: &DynamoDbDict<u64>, referee: &DynamoDbDict<u64>, label: &str) {
    d.clear()
        .unwrap_or_else(|e| panic!("{label}: clear after the fault: {e}"));
    assert_eq!(d.len().unwrap(), 0, "{label}");
    assert_eq!(d.insert("a", 1).unwrap(), None, "{label}");
    assert_eq!(d.insert("a", 2).unwrap(), Some(1), "{label}");
    assert_eq!(d.setdefault("b", 3).unwrap(), 3, "{label}");
    assert_eq!(d.setdefault("b", 4).unwrap(), 3, "{label}");
    d.insert_many((0..40u64).map(|i| (format!("m{i}"), i)))
        .unwrap();
    assert_eq!(
        d.get_many(["a", "b", "m39", "zz"]).unwrap(),
        [Some(2), Some(3), Some(39), None]
    );
    assert_eq!(d.pop("a").unwrap(), Some(2), "{label}");
    assert_eq!(d.get("a").unwrap(), None, "{label}");
    assert_eq!(d.keys().count(), 41, "{label}");
    assert_eq!(d.len().unwrap(), 41, "{label}");
    // And the referee, talking to the server directly, sees the same.
    assert_eq!(referee.len().unwrap(), 41, "{label}");
    assert_eq!(referee.get("b").unwrap(), Some(3), "{label}");
    d.clear().unwrap();
    assert_eq!(referee.len().unwrap(), 0, "{label}");
}

#[test]
fn every_call_fails_fast_with_a_typed_error_and_the_map_recovers() {
    let proxy = FaultProxy::start(local_upstream()).expect("proxy");
    let ns = unique("faults");
    let d = through(&proxy, &ns, 2, TIMEOUTS);
    let referee = direct(&ns);
    let budget = TIMEOUTS.operation + SLACK;

    let long = TIMEOUTS.operation + Duration::from_millis(500);
    let phases = [
        (
            "latency 100ms",
            Fault::Latency(Duration::from_millis(100)),
            Expect::Success,
        ),
        ("latency 2.5s", Fault::Latency(long), Expect::Timeout),
        ("stall", Fault::Stall, Expect::Timeout),
        ("reset", Fault::Reset, Expect::ConnectionOrTimeout),
        ("refuse", Fault::Refuse, Expect::Connection),
    ];
    let mut report = Vec::new();
    for (round, (label, fault, expect)) in phases.into_iter().enumerate() {
        seed(&referee);
        let before = proxy.stats();
        proxy.set_fault(fault.clone());
        // All nine operations at once, each from its own thread, on clones of one map.
        let results: Vec<(Op, Result<(), Error>, Duration)> = std::thread::scope(|s| {
            let handles: Vec<_> = OPS
                .map(|op| {
                    let d = d.clone();
                    s.spawn(move || {
                        let (result, elapsed) = run(&d, op, round);
                        (op, result, elapsed)
                    })
                })
                .into_iter()
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("an operation panicked"))
                .collect()
        });
        let mut slowest = Duration::ZERO;
        for (op, result, elapsed) in results {
            assert!(
                expect.accepts(&result),
                "{label}: {op:?} returned {result:?}, expected {expect:?}"
            );
            assert!(
                elapsed < budget,
                "{label}: {op:?} took {elapsed:?}, more than the {budget:?} budget ({result:?})"
            );
            if let Err(e) = &result {
                assert!(e.is_transient(), "{label}: {op:?}: {e:?} is not transient");
            }
            slowest = slowest.max(elapsed);
        }
        wait_quiet(&proxy);
        proxy.clear();
        let after = proxy.stats();
        // moto closes every connection after its answer: under `Refuse` the proxy has no
        // open connection to cut, and the refused connects are counted by nobody.
        let refuse_on_moto =
            fault == Fault::Refuse && support::engine() == dynamodict::local::LocalEngine::Moto;
        assert!(
            after.faulted() > before.faulted() || refuse_on_moto,
            "{label}: the proxy injected nothing: {before:?} -> {after:?}"
        );
        if fault == Fault::Latency(long) {
            // Requests the proxy held back still reach the server after their callers gave up.
            std::thread::sleep(long + Duration::from_millis(500));
        }
        // A failed call may leave a half-sent request in the map's connection pool, sent when
        // the map's runtime runs again: run it once, let that settle, then check exactly.
        let _ = d.len();
        wait_quiet(&proxy);
        works_again(&d, &referee, label);
        report.push(format!(
            "{label}: {} ops, slowest {slowest:?}, proxy {:?}",
            OPS.len(),
            after.faulted() - before.faulted()
        ));
    }
    eprintln!(
        "fault phases (budget {budget:?}):\n  {}",
        report.join("\n  ")
    );
}

#[test]
fn a_stall_in_the_middle_of_iteration_ends_it_with_a_timeout() {
    let proxy = FaultProxy::start(local_upstream()).expect("proxy");
    let ns = unique("faults-iter");
    let d = through(&proxy, &ns, 1, TIMEOUTS);
    // The map fetches pages of `FAST_BATCHES.concurrency` (4) of its 8 shards at a time, so
    // the first item comes from the first four shards and the rest needs more requests.
    d.insert_many((0..50u64).map(|i| (format!("k{i}"), i)))
        .unwrap();
    let mut keys = d.keys();
    assert!(matches!(keys.next(), Some(Ok(_))));
    proxy.set_fault(Fault::Stall);
    // Items already fetched are still handed out; then exactly one timeout, then the end.
    let start = Instant::now();
    let rest: Vec<Result<String, Error>> = keys.collect();
    assert!(start.elapsed() < TIMEOUTS.operation + SLACK);
    let errors: Vec<&Error> = rest.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(matches!(errors[..], [Error::Timeout { .. }]), "{errors:?}");
    assert!(
        matches!(rest.last(), Some(Err(_))),
        "the error ends the iteration"
    );
    // A fresh iteration under the stall fails with a timeout.
    let start = Instant::now();
    match d.keys().next() {
        Some(Err(Error::Timeout { .. })) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(start.elapsed() < TIMEOUTS.operation + SLACK);
    proxy.clear();
    assert_eq!(d.keys().count(), 50);
}

#[test]
fn throttled_single_item_calls_are_retried_by_the_sdk() {
    let proxy = FaultProxy::start(local_upstream()).expect("proxy");
    let ns = unique("throttle");
    let generous = Timeouts::default();
    let d = through(&proxy, &ns, 4, generous);
    for code in [
        ThrottleCode::ProvisionedThroughputExceeded,
        ThrottleCode::Throttling,
    ] {
        d.clear().unwrap();
        // Every second request is answered with a throttling error: each call needs at most
        // one retry.
        proxy.set_fault(Fault::Throttle { share: 0.5, code });
        let before = proxy.stats().throttled;
        assert_eq!(d.insert("a", 1).unwrap(), None);
        assert_eq!(d.insert("a", 2).unwrap(), Some(1));
        assert_eq!(d.get("a").unwrap(), Some(2));
        assert_eq!(d.setdefault("b", 5).unwrap(), 5);
        assert_eq!(d.setdefault("b", 6).unwrap(), 5);
        assert!(d.contains_key("b").unwrap());
        d.set("c", 9).unwrap();
        assert_eq!(d.pop("c").unwrap(), Some(9));
        assert!(d.remove("b").unwrap());
        assert_eq!(d.get("b").unwrap(), None);
        let throttled = proxy.stats().throttled - before;
        assert!(
            throttled >= 5,
            "{code:?}: only {throttled} requests throttled"
        );
        proxy.clear();
        assert_eq!(direct(&ns).get("a").unwrap(), Some(2));
        eprintln!("{code:?} share 0.5: 10 calls succeeded, {throttled} requests throttled");
    }
}

#[test]
fn throttling_that_outlasts_the_retries_is_reported_as_throttled() {
    let proxy = FaultProxy::start(local_upstream()).expect("proxy");
    let ns = unique("throttle-all");
    let d = through(&proxy, &ns, 2, Timeouts::default());
    let referee = direct(&ns);
    referee.insert("kept", 1).unwrap();
    for code in [
        ThrottleCode::ProvisionedThroughputExceeded,
        ThrottleCode::Throttling,
    ] {
        proxy.set_fault(Fault::Throttle { share: 1.0, code });
        let calls: [(&str, Call); 9] = [
            ("get", Box::new(|| d.get("kept").map(drop))),
            ("insert", Box::new(|| d.insert("kept", 2).map(drop))),
            ("setdefault", Box::new(|| d.setdefault("new", 3).map(drop))),
            ("pop", Box::new(|| d.pop("kept").map(drop))),
            (
                "insert_many",
                Box::new(|| d.insert_many([("x", 1), ("y", 2)])),
            ),
            ("get_many", Box::new(|| d.get_many(["kept", "x"]).map(drop))),
            ("len", Box::new(|| d.len().map(drop))),
            (
                "keys",
                Box::new(|| d.keys().collect::<Result<Vec<_>, _>>().map(drop)),
            ),
            ("clear", Box::new(|| d.clear())),
        ];
        for (name, call) in &calls {
            match call() {
                Err(Error::Throttled { message }) => {
                    assert!(!message.is_empty(), "{code:?} {name}");
                }
                other => panic!("{code:?} {name}: expected Throttled, got {other:?}"),
            }
        }
        proxy.clear();
        // Nothing was written or deleted.
        assert_eq!(contents(&referee), BTreeMap::from([("kept".to_owned(), 1)]));
    }
}

#[test]
fn unprocessed_batch_items_are_retried_to_the_exact_contents() {
    let proxy = FaultProxy::start(local_upstream()).expect("proxy");
    let ns = unique("unprocessed");
    let d = through(&proxy, &ns, 2, Timeouts::default());
    let referee = direct(&ns);
    proxy.set_fault(Fault::Unprocessed { share: 0.5 });

    let mut model: BTreeMap<String, u64> = (0..260u64).map(|i| (format!("k{i:03}"), i)).collect();
    d.insert_many(model.clone()).unwrap();
    assert_eq!(contents(&referee), model);

    let mut asked: Vec<String> = model.keys().cloned().collect();
    asked.push("absent".into());
    let got = d.get_many(&asked).unwrap();
    let expected: Vec<Option<u64>> = asked.iter().map(|k| model.get(k).copied()).collect();
    assert_eq!(got, expected);

    let doomed: Vec<String> = model.keys().step_by(3).cloned().collect();
    d.bulk_delete(&doomed).unwrap();
    for k in &doomed {
        model.remove(k);
    }
    assert_eq!(contents(&referee), model);

    // Overwrites in a batch are retried too.
    let updates: Vec<(String, u64)> = model.keys().take(50).map(|k| (k.clone(), 1000)).collect();
    d.insert_many(updates.clone()).unwrap();
    model.extend(updates);
    assert_eq!(contents(&referee), model);

    d.clear().unwrap();
    assert_eq!(referee.len().unwrap(), 0);
    let stats = proxy.stats();
    assert!(stats.unprocessed_items >= 200, "{stats:?}");
    eprintln!(
        "unprocessed share 0.5: {} batches trimmed, {} items handed back, all retried",
        stats.unprocessed_batches, stats.unprocessed_items
    );
}

#[test]
fn unprocessed_items_beyond_the_batch_budget_are_throttled() {
    let proxy = FaultProxy::start(local_upstream()).expect("proxy");
    let ns = unique("unprocessed-all");
    let d = through(&proxy, &ns, 2, Timeouts::default());
    let referee = direct(&ns);
    let model: BTreeMap<String, u64> = (0..30u64).map(|i| (format!("k{i}"), i)).collect();
    referee.insert_many(model.clone()).unwrap();

    proxy.set_fault(Fault::Unprocessed { share: 1.0 });
    let keys: Vec<String> = model.keys().cloned().collect();
    let calls: [(&str, Call); 4] = [
        ("insert_many", Box::new(|| d.insert_many([("new", 1u64)]))),
        ("get_many", Box::new(|| d.get_many(&keys).map(drop))),
        ("bulk_delete", Box::new(|| d.bulk_delete(&keys))),
        ("clear", Box::new(|| d.clear())),
    ];
    for (name, call) in &calls {
        match call() {
            Err(Error::Throttled { message }) => {
                assert!(message.contains("unprocessed"), "{name}: {message}")
            }
            other => panic!("{name}: expected Throttled, got {other:?}"),
        }
    }
    // `clear` gives up when one shard's batch does, with other shards' batches in flight.
    wait_quiet(&proxy);
    proxy.clear();
    // Every item was handed back each time: nothing changed.
    assert_eq!(contents(&referee), model);

    // A budget of one attempt with half of the items handed back: the call reports it, and
    // calling again once the fault is gone completes the job. This namespace never held a
    // large value, so with large values on or off `insert_many` writes right away (no manifest
    // read) and part of it lands.
    let more: BTreeMap<String, u64> = (0..40u64).map(|i| (format!("more{i}"), i)).collect();
    let mut expected = model.clone();
    expected.extend(more.clone());
    for large_values in [true, false] {
        let strict = DynamoDbDict::<u64>::builder(support::TABLE)
            .namespace(&ns)
            .endpoint_url(proxy.endpoint())
            .large_values(large_values)
            .batch_options(BatchOptions {
                max_attempts: 1,
                ..FAST_BATCHES
            })
            .build()
            .unwrap();
        proxy.set_fault(Fault::Unprocessed { share: 0.5 });
        assert!(matches!(
            strict.insert_many(more.clone()),
            Err(Error::Throttled { .. })
        ));
        wait_quiet(&proxy);
        proxy.clear();
        let landed = contents(&referee).len() - model.len();
        assert!(
            0 < landed && landed < more.len(),
            "{large_values}: {landed}"
        );
        strict.insert_many(more.clone()).unwrap();
        assert_eq!(contents(&referee), expected);
        referee.bulk_delete(more.keys()).unwrap();
    }
}

#[test]
fn listing_a_namespace_queries_and_never_scans() {
    let proxy = FaultProxy::start(local_upstream()).expect("proxy");
    let ns = unique("noscan");
    let d = through(&proxy, &ns, 2, Timeouts::default());
    d.insert_many((0..100u64).map(|i| (format!("k{i}"), i)))
        .unwrap();
    let shards = 8;
    let listings: [(&str, Check); 7] = [
        ("keys", Box::new(|| assert_eq!(d.keys().count(), 100))),
        ("values", Box::new(|| assert_eq!(d.values().count(), 100))),
        ("items", Box::new(|| assert_eq!(d.items().count(), 100))),
        ("len", Box::new(|| assert_eq!(d.len().unwrap(), 100))),
        ("is_empty", Box::new(|| assert!(!d.is_empty().unwrap()))),
        (
            "popitem",
            Box::new(|| assert!(d.popitem().unwrap().is_some())),
        ),
        ("clear", Box::new(|| d.clear().unwrap())),
    ];
    for (name, listing) in &listings {
        let before = proxy.operations();
        listing();
        let after = proxy.operations();
        let delta = |op: &str| after.get(op).unwrap_or(&0) - before.get(op).unwrap_or(&0);
        assert_eq!(delta("Scan"), 0, "{name} scanned: {after:?}");
        assert!(delta("Query") >= 1, "{name} sent no query: {after:?}");
        if !matches!(*name, "is_empty" | "popitem") {
            assert!(
                delta("Query") >= shards,
                "{name}: one query per shard at least"
            );
        }
    }
    assert!(d.is_empty().unwrap());
    let operations = proxy.operations();
    assert_eq!(operations.get("Scan"), None, "{operations:?}");
    eprintln!("requests by operation: {operations:?}");
}

// ---- server restart -----------------------------------------------------------------------

/// The entries one write call wrote, and what it returned.
type Written = (Vec<(String, u64)>, Outcome);

/// What one write call returned.
#[derive(Debug, Clone)]
enum Outcome {
    Ok,
    Failed(String),
}

#[test]
fn a_server_killed_mid_workload_loses_no_acknowledged_write() {
    if support::skip_on(
        &[LocalEngine::Moto],
        "moto keeps data only in memory: a killed server loses everything",
    ) {
        return;
    }
    let dir = std::env::temp_dir().join(unique("dynamodict-restart"));
    let _ = std::fs::remove_dir_all(&dir);
    let mut server = DynamoDbLocal::start(LocalOptions {
        engine: support::engine(),
        db_path: Some(dir.clone()),
        ..LocalOptions::default()
    })
    .expect("a server keeping its data on disk");
    let timeouts = Timeouts {
        connect: Duration::from_millis(500),
        attempt: Duration::from_secs(2),
        operation: Duration::from_secs(3),
    };
    let d: DynamoDbDict<u64> = DynamoDbDict::builder("restart-table")
        .namespace("workload")
        .endpoint_url(server.endpoint())
        .timeouts(timeouts)
        .max_attempts(1)
        .build()
        .expect("map on the restartable server");

    // Writers: two threads inserting sequential keys one by one, one thread writing batches of
    // ten. Every call's outcome is recorded.
    let log: Mutex<Vec<Written>> = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    let acknowledged_after_restart = AtomicUsize::new(0);
    let restarted = AtomicBool::new(false);
    let budget = timeouts.operation + SLACK;
    let mut slowest = Duration::ZERO;
    let mut killed_at = Duration::ZERO;
    let mut restart_took = Duration::ZERO;
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..3u64)
            .map(|t| {
                let (d, log, stop) = (&d, &log, &stop);
                let (after, restarted) = (&acknowledged_after_restart, &restarted);
                s.spawn(move || {
                    let mut slowest = Duration::ZERO;
                    let mut i = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        let entries: Vec<(String, u64)> = if t < 2 {
                            vec![(format!("t{t}-{i:06}"), i)]
                        } else {
                            (0..10)
                                .map(|j| (format!("b-{i:06}-{j}"), i * 10 + j))
                                .collect()
                        };
                        let start = Instant::now();
                        let result = if t < 2 {
                            d.insert(&entries[0].0, entries[0].1).map(drop)
                        } else {
                            d.insert_many(entries.clone())
                        };
                        let elapsed = start.elapsed();
                        slowest = slowest.max(elapsed);
                        assert!(elapsed < budget, "a write took {elapsed:?}: {result:?}");
                        let outcome = match result {
                            Ok(()) => {
                                if restarted.load(Ordering::SeqCst) {
                                    after.fetch_add(1, Ordering::SeqCst);
                                }
                                Outcome::Ok
                            }
                            Err(e @ (Error::Connection { .. } | Error::Timeout { .. })) => {
                                // Don't spin on a dead server.
                                std::thread::sleep(Duration::from_millis(20));
                                Outcome::Failed(format!("{e:?}"))
                            }
                            Err(other) => panic!("untyped failure during the restart: {other:?}"),
                        };
                        log.lock().unwrap().push((entries, outcome));
                        i += 1;
                    }
                    slowest
                })
            })
            .collect();

        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(1500));
        killed_at = started.elapsed();
        server.kill().expect("kill");
        std::thread::sleep(Duration::from_millis(500));
        let restart = Instant::now();
        server.restart().expect("restart");
        restart_took = restart.elapsed();
        restarted.store(true, Ordering::SeqCst);
        // Keep writing until the same map has been acknowledged again a few dozen times.
        let deadline = Instant::now() + Duration::from_secs(30);
        while acknowledged_after_restart.load(Ordering::SeqCst) < 50 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::SeqCst);
        for w in writers {
            slowest = slowest.max(w.join().expect("writer panicked"));
        }
    });
    assert!(
        acknowledged_after_restart.load(Ordering::SeqCst) >= 50,
        "the map did not recover after the restart"
    );

    // Every acknowledged write is there, with its value.
    let log = log.into_inner().unwrap();
    let stored: HashMap<String, u64> = d
        .items()
        .collect::<Result<_, _>>()
        .expect("reading back after the restart");
    let mut counts = BTreeMap::<&str, usize>::new();
    let mut lost = Vec::new();
    for (entries, outcome) in &log {
        match outcome {
            Outcome::Ok => {
                *counts.entry("acknowledged calls").or_default() += 1;
                for (k, v) in entries {
                    *counts.entry("acknowledged keys").or_default() += 1;
                    if stored.get(k) != Some(v) {
                        lost.push(k.clone());
                    }
                }
            }
            Outcome::Failed(e) => {
                *counts.entry("failed calls").or_default() += 1;
                let kind = if e.starts_with("Timeout") {
                    "failed: Timeout"
                } else {
                    "failed: Connection"
                };
                *counts.entry(kind).or_default() += 1;
                let present = entries
                    .iter()
                    .filter(|(k, _)| stored.contains_key(k))
                    .count();
                *counts.entry("failed keys nevertheless stored").or_default() += present;
            }
        }
    }
    drop(d);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "restart: killed after {killed_at:?}, restart took {restart_took:?}, slowest call \
         {slowest:?}; {counts:?}; lost {}",
        lost.len()
    );
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    assert!(
        counts.get("failed calls").copied().unwrap_or(0) > 0,
        "no write failed: the kill did not hit the workload"
    );
    assert!(counts.get("acknowledged calls").copied().unwrap_or(0) > 50);
}
