//! The large-value protocol (record, chunks, then manifest; eager reclaim; `sweep`) under lost
//! and late replies, resets in the middle of an upload, racing threads, and killed clients and
//! servers.
//!
//! Every value is tagged ([`Tag`]: key, writer, sequence number; the bytes follow from the tag),
//! so a value read back is either exactly one that was written to that key or a failure. Every
//! test ends with [`settle`]: every key listed reads back as a whole written value; where one
//! writer owns a key, the [`Ledger`] of its calls says which values it may hold (the last
//! acknowledged one, or one written by a later call that failed); and once the grace period is
//! over and `sweep()` ran, the namespace holds exactly the chunks and records that its live
//! manifests refer to ([`audit`]): nothing unreferenced, nothing missing.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dynamodict::aws_sdk_dynamodb::types::AttributeValue;
use dynamodict::local::{DynamoDbLocal, LocalEngine, LocalOptions};
use dynamodict::{BatchOptions, DynamoDbDict, Error, SweepReport, Timeouts};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::support::proxy::{Fault, FaultProxy, local_upstream};
use crate::support::{self, Item, Raw, unique};

type Map = DynamoDbDict<ByteBuf>;

/// Timeouts and grace period of a map.
#[derive(Debug, Clone, Copy)]
struct Profile {
    timeouts: Timeouts,
    /// A generation is swept once it is this old and unreferenced; a manifest is sent within
    /// half of it.
    grace: Duration,
}

/// For the fault tests: short timeouts, so that a held or unanswered request makes the client
/// give up quickly, and the shortest grace period the crate allows with them.
const QUICK: Profile = Profile {
    timeouts: Timeouts {
        connect: Duration::from_millis(500),
        attempt: Duration::from_millis(700),
        operation: Duration::from_secs(1),
    },
    grace: Duration::from_secs(4),
};

/// For races and crashes, where many large values are written at once on a busy machine:
/// timeouts long enough that most calls get through.
const RELAXED: Profile = Profile {
    timeouts: Timeouts {
        connect: Duration::from_secs(1),
        attempt: Duration::from_millis(1500),
        operation: Duration::from_secs(2),
    },
    grace: Duration::from_secs(8),
};

impl Profile {
    /// The referee's profile, for the map that reads everything back and sweeps: a longer grace
    /// period (its sweep is no less careful than the writers' would be), and the longest
    /// timeouts that allows, so that a busy machine does not fail the checks.
    fn referee(self) -> Profile {
        let grace = self.grace + Duration::from_secs(2);
        Profile {
            timeouts: Timeouts {
                connect: Duration::from_secs(1),
                attempt: grace / 4,
                operation: grace / 4,
            },
            grace,
        }
    }

    /// Waiting this long after the last write makes every generation older than the
    /// referee's sweep cutoff (whole seconds, grace + 1 s).
    fn past_grace(self) -> Duration {
        self.referee().grace + Duration::from_millis(2500)
    }
}

/// Fast batch retries, so that a fault costs little time.
const FAST_BATCHES: BatchOptions = BatchOptions {
    concurrency: 4,
    max_attempts: 10,
    initial_backoff: Duration::from_millis(5),
    max_backoff: Duration::from_millis(50),
};

/// Text found only in the body of a manifest write (the PutItem of `insert`, `set` and
/// `setdefault`, the BatchWriteItem of `insert_many`): the item's generation attribute.
const MANIFEST: &str = r#""g":{"S":"t"#;
/// Text found only in the chunk batches of an upload: the chunk data attribute.
const CHUNKS: &str = r#""d":{"B":"#;
/// Text found only in the PutItem of a generation's record: the key attribute.
const RECORD: &str = r#""k":{"S":"#;

// ---------------------------------------------------------------------------------------------
// Maps

/// A map on `ns` of the shared test table with `profile` and no automatic sweep, talking to
/// `endpoint` (a proxy), or directly to DynamoDB Local.
fn open(ns: &str, endpoint: Option<&str>, profile: Profile) -> Map {
    open_on(support::TABLE, ns, endpoint.map(str::to_owned), profile)
}

fn open_on(table: &str, ns: &str, endpoint: Option<String>, profile: Profile) -> Map {
    let build = || {
        let builder = DynamoDbDict::builder(table)
            .namespace(ns)
            .timeouts(profile.timeouts)
            .sweep_grace(profile.grace)
            .auto_sweep(false)
            .batch_options(FAST_BATCHES);
        match &endpoint {
            // A region of its own: the SDK's retry budget is per region, and the faults of one
            // test must not use up another's.
            Some(url) => builder
                .endpoint_url(url.clone())
                .region(support::region_of_its_own(&format!("protocol-{ns}"))),
            None => builder.local(),
        }
        .build()
    };
    // Building is not under test: on a busy machine the first requests may need a second go.
    let mut result = build();
    for _ in 0..5 {
        match &result {
            Err(e) if e.is_transient() => result = build(),
            _ => break,
        }
    }
    result.expect("building a map")
}

/// Calls `f` until it returns anything but a transient error (timeouts on a busy machine are
/// not what the referee is judging), five times at most.
fn patiently<T>(mut f: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    let mut result = f();
    for _ in 0..5 {
        match &result {
            Err(e) if e.is_transient() => {
                std::thread::sleep(Duration::from_millis(200));
                result = f();
            }
            _ => break,
        }
    }
    result
}

/// The referee of writers with `profile`: a map that talks to DynamoDB Local directly.
fn referee(ns: &str, profile: Profile) -> Map {
    open(ns, None, profile.referee())
}

fn key_name(key: usize) -> String {
    format!("k{key}")
}

// ---------------------------------------------------------------------------------------------
// Tagged values

/// A value's identity: the key it was written to, its writer, the writer's sequence number, and
/// whether it is small (stored inline) or large (chunked). Its bytes follow from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
struct Tag(u64);

impl Tag {
    fn new(key: usize, writer: u32, seq: u32, small: bool) -> Tag {
        Tag((u64::from(writer & 0xffff) << 48)
            | ((key as u64 & 0xff) << 40)
            | (u64::from(small) << 39)
            | u64::from(seq))
    }

    fn key(self) -> usize {
        ((self.0 >> 40) & 0xff) as usize
    }

    fn small(self) -> bool {
        (self.0 >> 39) & 1 == 1
    }

    /// 64 bytes, or 420 KiB to 1 MiB (two or three chunks).
    fn len(self) -> usize {
        if self.small() {
            64
        } else {
            let mixed = self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20;
            420 * 1024 + (mixed % (600 * 1024)) as usize
        }
    }

    fn value(self) -> ByteBuf {
        let mut bytes = vec![0u8; self.len()];
        bytes[..8].copy_from_slice(&self.0.to_le_bytes());
        fastrand::Rng::with_seed(self.0).fill(&mut bytes[8..]);
        ByteBuf::from(bytes)
    }
}

/// The tag of a value read at `key`, if it is exactly a value written to `key`.
fn identify(key: &str, value: &ByteBuf) -> Result<Tag, String> {
    let head: [u8; 8] = value
        .get(..8)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| format!("{key}: a value of {} bytes", value.len()))?;
    let tag = Tag(u64::from_le_bytes(head));
    if key_name(tag.key()) != key {
        return Err(format!("{key}: holds {tag:?}, written to another key"));
    }
    if value.len() != tag.len() || **value != *tag.value() {
        return Err(format!(
            "{key}: {} bytes that are not {tag:?} ({} bytes): torn or corrupt",
            value.len(),
            tag.len()
        ));
    }
    Ok(tag)
}

/// [`identify`] for an optional value.
fn identify_opt(key: &str, value: Option<&ByteBuf>) -> Result<Option<Tag>, String> {
    value.map(|v| identify(key, v)).transpose()
}

// ---------------------------------------------------------------------------------------------
// One writer's calls, and what they allow the keys to hold

/// One call as its caller saw it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Call {
    op: String,
    /// Values written (`None`: deleted).
    writes: Vec<(String, Option<Tag>)>,
    /// Values the call reported the key to hold before its writes (`None`: absent).
    seen: Vec<(String, Option<Tag>)>,
    /// `None`: never returned (its process died); `Some(true)`: acknowledged.
    ok: Option<bool>,
    /// The error's kind, for a failed call.
    error: Option<String>,
    /// The error's message.
    #[serde(default)]
    message: Option<String>,
    /// A value read back that is not a whole value written to its key.
    corrupt: Option<String>,
}

impl Call {
    fn new(op: &str) -> Call {
        Call {
            op: op.to_owned(),
            writes: Vec::new(),
            seen: Vec::new(),
            ok: None,
            error: None,
            message: None,
            corrupt: None,
        }
    }

    fn write(mut self, key: &str, value: Option<Tag>) -> Call {
        self.writes.push((key.to_owned(), value));
        self
    }

    /// Records the outcome; `seen` gives the values the call reported.
    fn finish<T>(
        mut self,
        result: Result<T, Error>,
        seen: impl FnOnce(T) -> Vec<(String, Result<Option<Tag>, String>)>,
    ) -> Call {
        match result {
            Ok(out) => {
                self.ok = Some(true);
                for (key, tag) in seen(out) {
                    match tag {
                        Ok(tag) => self.seen.push((key, tag)),
                        Err(e) => self.corrupt = Some(e),
                    }
                }
            }
            Err(e) => {
                self.ok = Some(false);
                self.error = Some(error_kind(&e));
                self.message = Some(e.to_string());
            }
        }
        self
    }
}

/// The kind of an error, for counting; errors of no expected kind are spelled out.
fn error_kind(e: &Error) -> String {
    match e {
        Error::Timeout { .. } => "Timeout".into(),
        Error::Connection { .. } => "Connection".into(),
        Error::Throttled { .. } => "Throttled".into(),
        Error::Conflict { .. } => "Conflict".into(),
        other => format!("UNEXPECTED {other}"),
    }
}

/// What the keys of single writers may hold, from their calls in order. A failed (or
/// unfinished) write may or may not have been applied; an acknowledged one replaced every
/// possibility. With `late` copies (requests the network delivers after the client gave up),
/// any value ever written may come back, so nothing is ever ruled out.
#[derive(Debug, Default)]
struct Ledger {
    late: bool,
    possible: BTreeMap<String, BTreeSet<Option<Tag>>>,
    calls: usize,
    acknowledged: usize,
    failed: BTreeMap<String, usize>,
    /// One message per kind of failure.
    examples: BTreeMap<String, String>,
    violations: Vec<String>,
}

impl Ledger {
    fn new(late: bool) -> Ledger {
        Ledger {
            late,
            ..Ledger::default()
        }
    }

    fn possible(&mut self, key: &str) -> &mut BTreeSet<Option<Tag>> {
        self.possible
            .entry(key.to_owned())
            .or_insert_with(|| BTreeSet::from([None]))
    }

    fn apply(&mut self, call: &Call) {
        self.calls += 1;
        match (call.ok, &call.error) {
            (Some(true), _) => self.acknowledged += 1,
            (Some(false), Some(kind)) => {
                *self.failed.entry(kind.clone()).or_default() += 1;
                let message = call.message.clone().unwrap_or_default();
                self.examples.entry(kind.clone()).or_insert(message);
                if kind.starts_with("UNEXPECTED") {
                    self.violations.push(format!("{}: {kind}", call.op));
                }
            }
            _ => *self.failed.entry("unfinished".into()).or_default() += 1,
        }
        if let Some(corrupt) = &call.corrupt {
            self.violations.push(format!("{} read {corrupt}", call.op));
        }
        let (late, acknowledged) = (self.late, call.ok == Some(true));
        if acknowledged {
            for (key, seen) in &call.seen {
                let possible = self.possible(key);
                if !possible.contains(seen) {
                    let message =
                        format!("{} on {key} saw {seen:?}, possible: {possible:?}", call.op);
                    self.violations.push(message);
                }
                if !late {
                    *self.possible(key) = BTreeSet::from([*seen]);
                }
            }
        }
        for (key, value) in &call.writes {
            let possible = self.possible(key);
            if acknowledged && !late {
                possible.clear();
            }
            possible.insert(*value);
        }
    }

    fn keys(&self) -> impl Iterator<Item = &String> {
        self.possible.keys()
    }

    /// Checks what `key` holds in the end; a description of the loss otherwise.
    fn check_final(&mut self, key: &str, found: Option<Tag>) -> Result<(), String> {
        let possible = self.possible(key);
        if possible.contains(&found) {
            Ok(())
        } else {
            Err(format!("{key} holds {found:?}, possible: {possible:?}"))
        }
    }
}

/// The operations of the sequential workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Set,
    Insert,
    SetDefault,
    InsertMany,
    Pop,
    Remove,
    BulkDelete,
    Get,
}

impl Op {
    fn pick(rng: &mut fastrand::Rng) -> Op {
        match rng.u8(..100) {
            0..20 => Op::Set,
            20..40 => Op::Insert,
            40..50 => Op::SetDefault,
            50..62 => Op::InsertMany,
            62..72 => Op::Pop,
            72..80 => Op::Remove,
            80..85 => Op::BulkDelete,
            _ => Op::Get,
        }
    }
}

/// A writer of the sequential workload: the only writer of its keys.
struct Writer {
    id: u32,
    seq: u32,
    keys: Vec<usize>,
    rng: fastrand::Rng,
}

impl Writer {
    fn new(id: u32, keys: Vec<usize>, seed: u64) -> Writer {
        Writer {
            id,
            seq: 0,
            keys,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// A fresh tag for `key`, large four times out of five.
    fn tag(&mut self, key: usize) -> Tag {
        self.seq += 1;
        Tag::new(key, self.id, self.seq, self.rng.u8(..5) == 0)
    }

    fn large(&mut self, key: usize) -> Tag {
        self.seq += 1;
        Tag::new(key, self.id, self.seq, false)
    }

    /// Runs one call of `op` on a random key (or a few). `begin` sees the call before it is
    /// made (for a log that must survive the process).
    fn step(&mut self, d: &Map, op: Op, begin: &mut dyn FnMut(&Call)) -> Call {
        let key = self.keys[self.rng.usize(..self.keys.len())];
        let name = key_name(key);
        let one = |name: &str, value: Option<ByteBuf>| {
            vec![(name.to_owned(), identify_opt(name, value.as_ref()))]
        };
        match op {
            Op::Set | Op::Insert => {
                let tag = self.tag(key);
                let call =
                    Call::new(if op == Op::Set { "set" } else { "insert" }).write(&name, Some(tag));
                begin(&call);
                if op == Op::Set {
                    call.finish(d.set(&name, tag.value()), |()| Vec::new())
                } else {
                    call.finish(d.insert(&name, tag.value()), |old| one(&name, old))
                }
            }
            Op::SetDefault => {
                let tag = self.large(key);
                // Whether it stored its own value is only known afterwards.
                let call = Call::new("setdefault").write(&name, Some(tag));
                begin(&call);
                let mut call =
                    call.finish(d.setdefault(&name, tag.value()), |v| one(&name, Some(v)));
                if call.ok == Some(true) && call.seen.first().is_some_and(|(_, s)| *s != Some(tag))
                {
                    call.writes.clear(); // a live value won: nothing written
                } else if call.ok == Some(true) {
                    call.seen = vec![(name.clone(), None)]; // stored into an empty key
                }
                call
            }
            Op::InsertMany => {
                let mut call = Call::new("insert_many");
                let mut entries = Vec::new();
                for &k in &self.keys.clone() {
                    if self.rng.bool() || entries.is_empty() {
                        let tag = self.tag(k);
                        call = call.write(&key_name(k), Some(tag));
                        entries.push((key_name(k), tag.value()));
                    }
                }
                begin(&call);
                call.finish(d.insert_many(entries), |()| Vec::new())
            }
            Op::Pop => {
                let call = Call::new("pop").write(&name, None);
                begin(&call);
                call.finish(d.pop(&name), |old| one(&name, old))
            }
            Op::Remove => {
                let call = Call::new("remove").write(&name, None);
                begin(&call);
                call.finish(d.remove(&name), |_| Vec::new())
            }
            Op::BulkDelete => {
                let keys = self.keys.clone();
                let names: Vec<String> = keys
                    .into_iter()
                    .filter(|_| self.rng.bool())
                    .map(key_name)
                    .collect();
                let mut call = Call::new("bulk_delete");
                for n in &names {
                    call = call.write(n, None);
                }
                begin(&call);
                call.finish(d.bulk_delete(&names), |()| Vec::new())
            }
            Op::Get => {
                let call = Call::new("get");
                begin(&call);
                call.finish(d.get(&name), |v| one(&name, v))
            }
        }
    }
}

/// Runs `calls` calls of the sequential workload (writer `id`, `keys`) and applies them.
fn sequential(d: &Map, ledger: &mut Ledger, writer: &mut Writer, calls: usize) {
    for _ in 0..calls {
        let op = Op::pick(&mut writer.rng);
        let call = writer.step(d, op, &mut |_| {});
        ledger.apply(&call);
    }
}

// ---------------------------------------------------------------------------------------------
// What the table holds

/// Every item of a partition, read consistently, with `projection` (attribute names).
fn query_all(raw: &Raw, table: &str, partition: &str, projection: &[&str]) -> Vec<Item> {
    let names: Vec<String> = (0..projection.len()).map(|i| format!("#a{i}")).collect();
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let mut query = raw
            .client
            .query()
            .table_name(table)
            .consistent_read(true)
            .key_condition_expression("#a0 = :p")
            .expression_attribute_values(":p", AttributeValue::S(partition.to_owned()))
            .projection_expression(names.join(", "))
            .set_exclusive_start_key(start);
        for (name, attribute) in names.iter().zip(projection) {
            query = query.expression_attribute_names(name, *attribute);
        }
        let page = raw.block(query.send()).expect("raw Query");
        items.extend(page.items.unwrap_or_default());
        match page.last_evaluated_key {
            Some(key) => start = Some(key),
            None => return items,
        }
    }
}

fn string(item: &Item, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

/// The chunk and record items of a namespace, against what its live manifests refer to.
#[derive(Debug, Default)]
struct Audit {
    /// Keys holding a large value (manifests).
    large_keys: usize,
    /// Chunk and record items the manifests refer to (their chunk counts, plus one record each).
    referenced: usize,
    chunks: usize,
    records: usize,
    /// Chunk and record items no manifest refers to.
    unreferenced: Vec<String>,
    /// Items a manifest refers to that are not there (its value cannot be read, or will leak).
    missing: Vec<String>,
}

impl Audit {
    fn clean(&self) -> bool {
        self.unreferenced.is_empty()
            && self.missing.is_empty()
            && self.referenced == self.chunks + self.records
    }
}

fn audit(raw: &Raw, table: &str, ns: &str) -> Audit {
    let mut audit = Audit::default();
    let mut wanted: HashSet<(String, String)> = HashSet::new();
    for shard in 0..8u16 {
        let main = format!("{ns}#{shard:x}");
        for item in query_all(raw, table, &main, &["pk", "sk", "g", "n"]) {
            let generation = string(&item, "g");
            if generation.is_empty() {
                continue;
            }
            let count: usize = item
                .get("n")
                .and_then(|n| n.as_n().ok())
                .and_then(|n| n.parse().ok())
                .expect("a manifest's chunk count");
            audit.large_keys += 1;
            wanted.insert((format!("{main}#g"), generation.clone()));
            for i in 0..count {
                wanted.insert((format!("{main}#c"), format!("{generation}:{i:05}")));
            }
        }
    }
    audit.referenced = wanted.len();
    for shard in 0..8u16 {
        for (suffix, counter) in [("c", &mut audit.chunks), ("g", &mut audit.records)] {
            let partition = format!("{ns}#{shard:x}#{suffix}");
            for item in query_all(raw, table, &partition, &["pk", "sk"]) {
                *counter += 1;
                let (pk, sk) = (string(&item, "pk"), string(&item, "sk"));
                if !wanted.remove(&(pk.clone(), sk.clone())) {
                    audit.unreferenced.push(format!("{pk} / {sk}"));
                }
            }
        }
    }
    audit.missing = wanted
        .into_iter()
        .map(|(p, s)| format!("{p} / {s}"))
        .collect();
    audit.missing.sort();
    audit
}

/// The end of every test: what the keys hold, then sweep, then the audit.
#[derive(Debug, Default)]
struct Settled {
    /// What each key listed holds (`Err`: unreadable or not a written value).
    values: BTreeMap<String, Result<Tag, String>>,
    /// What `len()` said.
    len: usize,
    swept: SweepReport,
    /// Sweeps run (more than one when a sweep timed out).
    sweeps: usize,
    before_sweep: Audit,
    after_sweep: Audit,
    /// Keys whose value changed or became unreadable across the sweep.
    changed_by_sweep: Vec<String>,
}

fn read_all(d: &Map) -> BTreeMap<String, Result<Tag, String>> {
    let keys: Vec<String> =
        patiently(|| d.keys().collect::<Result<_, _>>()).expect("listing the keys");
    keys.into_iter()
        .map(|key| {
            let value = match patiently(|| d.get(&key)) {
                Ok(Some(v)) => identify(&key, &v),
                Ok(None) => Err("listed, but reads as absent".to_owned()),
                Err(e) => Err(format!("unreadable: {e}")),
            };
            (key, value)
        })
        .collect()
}

/// Reads every key back with `d` (quiet namespace), waits past the grace period, sweeps, and
/// audits the namespace.
fn settle(d: &Map, raw: &Raw, profile: Profile) -> Settled {
    let values = read_all(d);
    let len = patiently(|| d.len()).expect("len");
    let before_sweep = audit(raw, d.table(), d.namespace());
    std::thread::sleep(profile.past_grace());
    // A sweep cut short by a timeout has reclaimed part of the garbage: the report is the last
    // attempt's.
    let mut sweeps = 0;
    let swept = patiently(|| {
        sweeps += 1;
        d.sweep()
    })
    .expect("sweep");
    let after_sweep = audit(raw, d.table(), d.namespace());
    let again = read_all(d);
    let changed_by_sweep = values
        .iter()
        .filter(|(k, v)| again.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .collect();
    Settled {
        values,
        len,
        swept,
        sweeps,
        before_sweep,
        after_sweep,
        changed_by_sweep,
    }
}

/// The report of one test: printed, then asserted (nothing lost, nothing unreadable, nothing
/// unreferenced after the sweep).
struct Verdict<'a> {
    test: &'a str,
    runs: usize,
    calls: usize,
    acknowledged: usize,
    failed: BTreeMap<String, usize>,
    /// One message per kind of failure.
    examples: BTreeMap<String, String>,
    faults: String,
    problems: Vec<String>,
    started: Instant,
}

impl<'a> Verdict<'a> {
    fn new(test: &'a str) -> Verdict<'a> {
        Verdict {
            test,
            runs: 1,
            calls: 0,
            acknowledged: 0,
            failed: BTreeMap::new(),
            examples: BTreeMap::new(),
            faults: String::new(),
            problems: Vec::new(),
            started: Instant::now(),
        }
    }

    /// Counts the test's time from `started`.
    fn since(mut self, started: Instant) -> Self {
        self.started = started;
        self
    }

    fn ledger(mut self, ledger: &Ledger) -> Self {
        self.calls += ledger.calls;
        self.acknowledged += ledger.acknowledged;
        for (kind, n) in &ledger.failed {
            *self.failed.entry(kind.clone()).or_default() += n;
        }
        for (kind, message) in &ledger.examples {
            self.examples.entry(kind.clone()).or_insert(message.clone());
        }
        self.problems.extend(ledger.violations.iter().cloned());
        self
    }

    /// Checks the end state: every listed key a whole value, `len` matching, the ledger's keys
    /// holding what they may, the sweep changing no value and leaving nothing unreferenced.
    fn settled(mut self, settled: &Settled, ledger: Option<&mut Ledger>) -> Self {
        let mut lost = Vec::new();
        for (key, value) in &settled.values {
            if let Err(e) = value {
                self.problems.push(format!("{key}: {e}"));
            }
        }
        if settled.len != settled.values.len() {
            self.problems.push(format!(
                "len() = {} but {} keys are listed",
                settled.len,
                settled.values.len()
            ));
        }
        if let Some(ledger) = ledger {
            let keys: Vec<String> = ledger.keys().cloned().collect();
            for key in keys {
                let found = match settled.values.get(&key) {
                    None => None,
                    Some(Ok(tag)) => Some(*tag),
                    Some(Err(_)) => continue, // reported above
                };
                if let Err(e) = ledger.check_final(&key, found) {
                    lost.push(e);
                }
            }
        }
        for key in &settled.changed_by_sweep {
            self.problems.push(format!("{key}: changed by the sweep"));
        }
        let after = &settled.after_sweep;
        if !after.clean() {
            self.problems.push(format!(
                "after the sweep: {} referenced, {} chunks + {} records, unreferenced {:?}, \
                 missing {:?}",
                after.referenced, after.chunks, after.records, after.unreferenced, after.missing
            ));
        }
        eprintln!(
            "[protocol] {} ({:.0?}): runs {}, calls {} ({} acknowledged, failed {:?}){}; keys {} ({} \
             large); lost {}; unreadable {}; before the sweep {} chunks + {} records for {} \
             referenced ({} unreferenced, {} missing); swept {:?} ({} sweeps); after the sweep {} \
             unreferenced, {} missing; errors, e.g.: {:?}",
            self.test,
            self.started.elapsed(),
            self.runs,
            self.calls,
            self.acknowledged,
            self.failed,
            self.faults,
            settled.values.len(),
            after.large_keys,
            lost.len(),
            settled.values.values().filter(|v| v.is_err()).count(),
            settled.before_sweep.chunks,
            settled.before_sweep.records,
            settled.before_sweep.referenced,
            settled.before_sweep.unreferenced.len(),
            settled.before_sweep.missing.len(),
            settled.swept,
            settled.sweeps,
            after.unreferenced.len(),
            after.missing.len(),
            self.examples,
        );
        self.problems.extend(lost);
        self
    }

    fn assert(self) {
        assert!(
            self.problems.is_empty(),
            "{}: {} problem(s):\n  {}",
            self.test,
            self.problems.len(),
            self.problems.join("\n  ")
        );
    }
}

/// Waits (up to 20 s) until `done` holds.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until every request the proxy held back has been delivered.
fn wait_released(proxy: &FaultProxy) {
    wait_until("the held requests to be delivered", || {
        let stats = proxy.stats();
        stats.released + stats.upstream_errors >= stats.held
    });
}

fn describe(fault: &Fault, proxy: &FaultProxy) -> String {
    let s = proxy.stats();
    format!(
        " [{fault:?}: {} replies lost, {} held ({} delivered late), {} resets]",
        s.lost_replies, s.held, s.released, s.reset
    )
}

// ---------------------------------------------------------------------------------------------
// Faults on one writer's requests

/// Runs the sequential workload (one writer, four keys) through a proxy with each of `faults`
/// in turn (`calls` calls each), then settles. `late`: copies of a write may reach the table
/// after its call returned (see [`Ledger`]).
fn sequential_under(test: &str, faults: &[Fault], calls: usize, late: bool, seed: u64) {
    let started = Instant::now();
    let proxy = FaultProxy::start(local_upstream()).expect("proxy");
    let ns = unique(test);
    let d = open(&ns, Some(&proxy.endpoint()), QUICK);
    let mut ledger = Ledger::new(late);
    let mut writer = Writer::new(1, (0..4).collect(), seed);
    let mut described = String::new();
    for fault in faults {
        proxy.set_fault(fault.clone());
        let before = proxy.stats();
        sequential(&d, &mut ledger, &mut writer, calls);
        let after = proxy.stats();
        described += &format!(
            " [{}: {} replies lost, {} held, {} resets]",
            fault_name(fault),
            after.lost_replies - before.lost_replies,
            after.held - before.held,
            after.reset - before.reset,
        );
    }
    proxy.clear();
    wait_released(&proxy);
    let raw = Raw::new();
    let settled = settle(&referee(&ns, QUICK), &raw, QUICK);
    let mut verdict = Verdict::new(test).since(started).ledger(&ledger);
    verdict.faults = described;
    let stats = proxy.stats();
    if stats.lost_replies + stats.held + stats.reset == 0 {
        verdict.problems.push("no fault ever fired".into());
    }
    verdict.settled(&settled, Some(&mut ledger)).assert();
}

fn fault_name(fault: &Fault) -> String {
    match fault {
        Fault::LoseReply {
            operation,
            body_contains,
            share,
            delay,
        } => format!(
            "LoseReply {} {} share {share} delay {delay:?}",
            operation.as_deref().unwrap_or("*"),
            body_contains.as_deref().unwrap_or("*"),
        ),
        Fault::HoldThenForward {
            operation,
            body_contains,
            share,
            hold,
        } => format!(
            "HoldThenForward {} {} share {share} hold {hold:?}",
            operation.as_deref().unwrap_or("*"),
            body_contains.as_deref().unwrap_or("*"),
        ),
        Fault::ResetMatching {
            operation,
            body_contains,
            share,
        } => format!(
            "ResetMatching {} {} share {share}",
            operation.as_deref().unwrap_or("*"),
            body_contains.as_deref().unwrap_or("*"),
        ),
        other => format!("{other:?}"),
    }
}

fn lose_reply(operation: Option<&str>, body: &str, share: f64, delay: Duration) -> Fault {
    Fault::LoseReply {
        operation: operation.map(Into::into),
        body_contains: Some(body.into()),
        share,
        delay,
    }
}

fn hold(operation: Option<&str>, body: &str, share: f64, hold: Duration) -> Fault {
    Fault::HoldThenForward {
        operation: operation.map(Into::into),
        body_contains: Some(body.into()),
        share,
        hold,
    }
}

/// Lost answers to manifest writes (`insert`, `set`, `setdefault`, `insert_many`): at once
/// (a reset), and after the client's attempt timeout (it times out). The writes were applied;
/// the client resends them marked unclean.
#[test]
fn lost_manifest_replies_lose_nothing_and_leak_nothing() {
    sequential_under(
        "lost-manifest-replies",
        &[
            lose_reply(None, MANIFEST, 0.5, Duration::ZERO),
            lose_reply(None, MANIFEST, 0.5, Duration::from_millis(1200)),
        ],
        20,
        false,
        11,
    );
}

/// Manifest writes held back past the client's attempt timeout and delivered afterwards: the
/// client has resent them (unclean) and moved on; the first copy lands late.
#[test]
fn late_manifests_lose_nothing_and_leak_nothing() {
    sequential_under(
        "late-manifests",
        &[hold(None, MANIFEST, 0.5, Duration::from_millis(1200))],
        30,
        true,
        12,
    );
}

/// Faults in the middle of an upload: chunk batches reset before they reach the server,
/// answered but the answer lost, or delivered late; record writes whose answer is lost.
#[test]
fn chunk_upload_faults_lose_nothing_and_leak_nothing() {
    let batch = Some("BatchWriteItem");
    sequential_under(
        "chunk-faults",
        &[
            Fault::ResetMatching {
                operation: batch.map(Into::into),
                body_contains: Some(CHUNKS.into()),
                share: 0.5,
            },
            lose_reply(batch, CHUNKS, 0.5, Duration::ZERO),
            hold(batch, CHUNKS, 0.5, Duration::from_millis(1200)),
            lose_reply(Some("PutItem"), RECORD, 0.5, Duration::ZERO),
        ],
        10,
        false,
        13,
    );
}

/// The interleavings behind an ambiguous manifest write, made deterministic. Writer A's
/// manifest write is either applied with its answer withheld until A times out (a lost reply),
/// or held back past A's timeout and delivered late, as is A's second attempt (late copies).
/// While one copy of A's manifest is in the table and looks clean, B replaces or deletes the
/// key, which reclaims A's generation at once; then another copy of A's manifest arrives. The
/// key must still read back whole (A's value, or what B left), never as a manifest whose chunks
/// are gone.
#[test]
fn a_resent_manifest_never_refers_to_reclaimed_chunks() {
    let started = Instant::now();
    #[derive(Debug, Clone, Copy)]
    enum A {
        Set,
        Insert,
        SetDefault,
        InsertMany,
    }
    #[derive(Debug, Clone, Copy)]
    enum B {
        Remove,
        SetSmall,
        SetLarge,
        Pop,
    }
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Copies {
        /// The first copy is applied, its answer lost; A resends.
        LostReply,
        /// Every copy is held 1.2 s, then delivered.
        Late,
    }
    let proxy = FaultProxy::start(local_upstream()).expect("proxy");
    let ns = unique("resent-manifest");
    let a = open(&ns, Some(&proxy.endpoint()), QUICK);
    let b = referee(&ns, QUICK);
    let raw = Raw::new();
    let cases = [
        (A::Set, B::Remove, Copies::LostReply),
        (A::Set, B::SetLarge, Copies::LostReply),
        (A::Insert, B::SetSmall, Copies::LostReply),
        (A::Insert, B::Remove, Copies::LostReply),
        (A::SetDefault, B::Pop, Copies::LostReply),
        (A::InsertMany, B::Remove, Copies::LostReply),
        (A::Set, B::Remove, Copies::Late),
    ];
    let mut problems = Vec::new();
    let mut summary = Vec::new();
    let mut acknowledged = 0;
    for (i, &(op_a, op_b, copies)) in cases.iter().enumerate() {
        let key = key_name(i);
        let tag_a = Tag::new(i, 1, 1, false);
        let tag_b = Tag::new(i, 2, 1, matches!(op_b, B::SetSmall));
        let before = proxy.stats();
        proxy.set_fault(match copies {
            Copies::LostReply => lose_reply(None, MANIFEST, 1.0, Duration::from_millis(1500)),
            Copies::Late => hold(None, MANIFEST, 1.0, Duration::from_millis(1200)),
        });
        let (result_a, result_b) = std::thread::scope(|s| {
            let writer = s.spawn(|| match op_a {
                A::Set => a.set(&key, tag_a.value()).map(|()| None),
                A::Insert => a.insert(&key, tag_a.value()),
                A::SetDefault => a.setdefault(&key, tag_a.value()).map(Some),
                A::InsertMany => a.insert_many([(&key, tag_a.value())]).map(|()| None),
            });
            // A copy of A's manifest is in the table, and A is still waiting or resending.
            wait_until("A's manifest", || {
                let now = proxy.stats();
                now.lost_replies > before.lost_replies
                    || now.released > before.released
                    || writer.is_finished()
            });
            let result_b = match op_b {
                B::Remove => b.remove(&key).map(|_| None),
                B::SetSmall | B::SetLarge => b.set(&key, tag_b.value()).map(|()| None),
                B::Pop => b.pop(&key),
            };
            if copies == Copies::LostReply {
                proxy.clear(); // A's next attempt goes through
            }
            let result_a = writer.join().expect("writer A");
            proxy.clear();
            wait_released(&proxy);
            (result_a, result_b)
        });
        acknowledged += usize::from(result_a.is_ok()) + usize::from(result_b.is_ok());
        let found = match patiently(|| b.get(&key)) {
            Ok(v) => identify_opt(&key, v.as_ref()),
            Err(e) => Err(format!("unreadable: {e}")),
        };
        let outcome = |r: &Result<Option<ByteBuf>, Error>| match r {
            Ok(_) => "acknowledged".to_owned(),
            Err(e) => format!("failed: {}", error_kind(e)),
        };
        let line = format!(
            "{op_a:?} by A ({}) vs {op_b:?} by B ({}), {copies:?}: {key} holds {found:?}",
            outcome(&result_a),
            outcome(&result_b),
        );
        // A's write and B's call overlap: either order is right.
        let b_left = match op_b {
            B::Remove | B::Pop => None,
            B::SetSmall | B::SetLarge => Some(tag_b),
        };
        match &found {
            Ok(f) if *f == Some(tag_a) || *f == b_left => {}
            _ => problems.push(line.clone()),
        }
        summary.push(line);
    }
    let settled = settle(&b, &raw, QUICK);
    let mut verdict = Verdict::new("resent-manifest").since(started);
    verdict.runs = cases.len();
    verdict.calls = cases.len() * 2;
    verdict.acknowledged = acknowledged;
    verdict.faults = format!(" [{}]", summary.join("; "));
    verdict.problems = problems;
    verdict.settled(&settled, None).assert();
}

/// A lost answer to a write that reports what it replaced (`pop`, `insert`): the write was
/// applied and its answer lost (a reset), so the client sends it again. The call must return
/// the value it really removed or replaced, or fail; never a wrong one (its own value, or
/// nothing), which would lose the replaced value for good.
#[test]
fn a_lost_reply_never_makes_pop_or_insert_misreport_the_old_value() {
    #[derive(Debug, Clone, Copy)]
    enum Case {
        PopSmall,
        PopLarge,
        InsertSmallOverSmall,
        InsertLargeOverLarge,
    }
    let started = Instant::now();
    let proxy = FaultProxy::start(local_upstream()).expect("proxy");
    let ns = unique("lost-reply-old-value");
    let d = open(&ns, Some(&proxy.endpoint()), QUICK);
    let referee = referee(&ns, QUICK);
    let cases = [
        Case::PopSmall,
        Case::PopLarge,
        Case::InsertSmallOverSmall,
        Case::InsertLargeOverLarge,
    ];
    let (mut problems, mut summary) = (Vec::new(), Vec::new());
    let mut acknowledged = 0;
    for (i, &case) in cases.iter().enumerate() {
        let key = key_name(i);
        let small = matches!(case, Case::PopSmall | Case::InsertSmallOverSmall);
        let (old, new) = (Tag::new(i, 1, 1, small), Tag::new(i, 1, 2, small));
        referee.set(&key, old.value()).expect("the old value");
        // The first write of the call: the delete of `pop`; the inline put, or the manifest, of
        // `insert`.
        let fault = match case {
            Case::PopSmall | Case::PopLarge => Fault::LoseReply {
                operation: Some("DeleteItem".into()),
                body_contains: None,
                share: 1.0,
                delay: Duration::ZERO,
            },
            Case::InsertSmallOverSmall => {
                lose_reply(Some("PutItem"), r#""v":{"B":"#, 1.0, Duration::ZERO)
            }
            Case::InsertLargeOverLarge => {
                lose_reply(Some("PutItem"), MANIFEST, 1.0, Duration::ZERO)
            }
        };
        let before = proxy.stats().lost_replies;
        proxy.set_fault(fault);
        let result = std::thread::scope(|s| {
            let call = s.spawn(|| match case {
                Case::PopSmall | Case::PopLarge => d.pop(&key),
                _ => d.insert(&key, new.value()),
            });
            wait_until("the lost reply", || {
                proxy.stats().lost_replies > before || call.is_finished()
            });
            proxy.clear();
            call.join().expect("the call")
        });
        let reported = result
            .as_ref()
            .map(|v| identify_opt(&key, v.as_ref()))
            .map_err(error_kind);
        let now = patiently(|| referee.get(&key))
            .map(|v| identify_opt(&key, v.as_ref()))
            .map_err(|e| e.to_string());
        let line = format!("{case:?}: returned {reported:?}, the key holds {now:?}");
        acknowledged += usize::from(result.is_ok());
        // Right: the old value (or an error: the caller knows it does not know).
        if !matches!(reported, Ok(Ok(Some(t))) if t == old) && result.is_ok() {
            problems.push(line.clone());
        }
        summary.push(line);
    }
    let settled = settle(&referee, &Raw::new(), QUICK);
    let mut verdict = Verdict::new("lost-reply-old-value").since(started);
    verdict.runs = cases.len();
    verdict.calls = cases.len();
    verdict.acknowledged = acknowledged;
    verdict.faults = format!(" [{}]", summary.join("; "));
    verdict.problems = problems;
    verdict.settled(&settled, None).assert();
}

/// `insert_many` of several large values over a slow link, taking together twice the manifest
/// deadline: each value's manifest is written right after its own upload, well within its own
/// deadline, so the call succeeds. (It used to batch every manifest after every upload, miss
/// the first upload's deadline, and report that as throttling: "DynamoDB kept handing them
/// back".) A failure may only be a timeout, and nothing is left behind after the sweep.
#[test]
fn insert_many_of_slow_large_values_is_never_reported_as_throttling() {
    if support::skip_if_large_items_are_slow() {
        return;
    }
    let started = Instant::now();
    let proxy = FaultProxy::start(local_upstream()).expect("proxy");
    let ns = unique("slow-insert-many");
    let d = open(&ns, Some(&proxy.endpoint()), QUICK);
    // Each upload: a record put and a chunk batch, 0.4 s each; five of them take 4 s, twice
    // the manifest deadline (QUICK: grace 4 s, manifests within 2 s).
    d.set("k0", Tag::new(0, 1, 1, false).value())
        .expect("the namespace's first large value");
    proxy.set_fault(Fault::Latency(Duration::from_millis(400)));
    let batches_before = proxy.operation_count("BatchWriteItem");
    let entries: Vec<(String, ByteBuf)> = (0..5)
        .map(|k| (key_name(k), Tag::new(k, 1, 2, false).value()))
        .collect();
    let result = d.insert_many(entries);
    let batches = proxy.operation_count("BatchWriteItem") - batches_before;
    proxy.clear();
    let line = format!(
        "insert_many of 5 large values at 0.4 s per request: {:?} after {batches} \
         BatchWriteItem requests (5 are chunk batches)",
        result.as_ref().map_err(|e| e.to_string())
    );
    let mut verdict = Verdict::new("slow-insert-many").since(started);
    verdict.calls = 1;
    verdict.acknowledged = usize::from(result.is_ok());
    if let Err(e) = &result {
        verdict.failed.insert(error_kind(e), 1);
    }
    verdict.faults = format!(" [{line}]");
    if matches!(result, Err(Error::Throttled { .. })) {
        verdict.problems.push(line);
    }
    let settled = settle(&referee(&ns, QUICK), &Raw::new(), QUICK);
    verdict.settled(&settled, None).assert();
}

// ---------------------------------------------------------------------------------------------
// Races between threads

/// What racing threads saw: calls, failures by kind, values read that were not whole values.
#[derive(Debug, Default)]
struct RaceLog {
    calls: AtomicUsize,
    failed: Mutex<BTreeMap<String, usize>>,
    examples: Mutex<BTreeMap<String, String>>,
    corrupt: Mutex<Vec<String>>,
}

impl RaceLog {
    /// Counts a call; checks the values it read.
    fn note<T>(
        &self,
        result: Result<T, Error>,
        read: impl FnOnce(T) -> Vec<(String, Option<ByteBuf>)>,
    ) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(out) => {
                for (key, value) in read(out) {
                    if let Err(e) = identify_opt(&key, value.as_ref()) {
                        self.corrupt.lock().unwrap().push(e);
                    }
                }
            }
            Err(e) => {
                let kind = error_kind(&e);
                let mut examples = self.examples.lock().unwrap();
                examples
                    .entry(kind.clone())
                    .or_insert_with(|| e.to_string());
                *self.failed.lock().unwrap().entry(kind).or_default() += 1;
            }
        }
    }

    fn verdict<'a>(&self, test: &'a str) -> Verdict<'a> {
        let failed = self.failed.lock().unwrap().clone();
        let mut verdict = Verdict::new(test);
        verdict.calls = self.calls.load(Ordering::Relaxed);
        verdict.acknowledged = verdict.calls - failed.values().sum::<usize>();
        verdict.problems.extend(
            failed
                .keys()
                .filter(|k| k.starts_with("UNEXPECTED"))
                .cloned(),
        );
        verdict
            .problems
            .extend(self.corrupt.lock().unwrap().iter().cloned());
        verdict.failed = failed;
        verdict.examples = self.examples.lock().unwrap().clone();
        verdict
    }
}

/// Every operation, for the mixed races.
#[derive(Debug, Clone, Copy)]
enum RaceOp {
    Insert,
    Set,
    SetDefault,
    Pop,
    Remove,
    Get,
    GetMany,
    InsertMany,
    BulkDelete,
    Clear,
}

/// One racing call by `writer` on `keys`, checked and counted in `log`.
fn race_call(
    d: &Map,
    op: RaceOp,
    writer: u32,
    seq: &mut u32,
    keys: usize,
    rng: &mut fastrand::Rng,
    log: &RaceLog,
) {
    let key = rng.usize(..keys);
    let name = key_name(key);
    let mut tag = |k: usize, rng: &mut fastrand::Rng| {
        *seq += 1;
        Tag::new(k, writer, *seq, rng.u8(..6) == 0)
    };
    let one = |v: Option<ByteBuf>| vec![(name.clone(), v)];
    let subset = |rng: &mut fastrand::Rng| -> Vec<usize> {
        let mut ks: Vec<usize> = (0..keys).filter(|_| rng.bool()).collect();
        if ks.is_empty() {
            ks.push(rng.usize(..keys));
        }
        ks
    };
    match op {
        RaceOp::Insert => log.note(d.insert(&name, tag(key, rng).value()), one),
        RaceOp::Set => log.note(d.set(&name, tag(key, rng).value()), |()| Vec::new()),
        RaceOp::SetDefault => {
            let value = tag(key, rng).value();
            log.note(d.setdefault(&name, value), |v| one(Some(v)));
        }
        RaceOp::Pop => log.note(d.pop(&name), one),
        RaceOp::Remove => log.note(d.remove(&name), |_| Vec::new()),
        RaceOp::Get => log.note(d.get(&name), one),
        RaceOp::GetMany => {
            let names: Vec<String> = subset(rng).into_iter().map(key_name).collect();
            log.note(d.get_many(&names), |vs| {
                names.iter().cloned().zip(vs).collect()
            });
        }
        RaceOp::InsertMany => {
            let entries: Vec<(String, ByteBuf)> = subset(rng)
                .into_iter()
                .map(|k| (key_name(k), tag(k, rng).value()))
                .collect();
            log.note(d.insert_many(entries), |()| Vec::new());
        }
        RaceOp::BulkDelete => {
            let names: Vec<String> = subset(rng).into_iter().map(key_name).collect();
            log.note(d.bulk_delete(&names), |()| Vec::new());
        }
        RaceOp::Clear => log.note(d.clear(), |()| Vec::new()),
    }
}

/// Runs `threads` threads for `run_for`; thread `t` picks its operations with `pick(t, rng)`.
/// Then settles and judges.
fn race<'a>(
    test: &'a str,
    threads: u32,
    keys: usize,
    run_for: Duration,
    endpoint: Option<&str>,
    pick: impl Fn(u32, &mut fastrand::Rng) -> RaceOp + Sync,
) -> Verdict<'a> {
    let started = Instant::now();
    let ns = unique(test);
    let d = open(&ns, endpoint, RELAXED);
    let log = RaceLog::default();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (d, log, stop, pick) = (d.clone(), &log, &stop, &pick);
            s.spawn(move || {
                let mut rng = fastrand::Rng::with_seed(u64::from(t) + 100);
                let mut seq = 0;
                while !stop.load(Ordering::Relaxed) {
                    let op = pick(t, &mut rng);
                    race_call(&d, op, t + 1, &mut seq, keys, &mut rng, log);
                }
            });
        }
        std::thread::sleep(run_for);
        stop.store(true, Ordering::Relaxed);
    });
    let settled = settle(&referee(&ns, RELAXED), &Raw::new(), RELAXED);
    log.verdict(test).since(started).settled(&settled, None)
}

/// `clear` every few hundred milliseconds while three threads write large values: `clear`
/// must leave the values written at the same time readable, and reclaim the rest. The race
/// runs longer than the grace period, so `clear` also deletes old generations.
#[test]
fn clear_racing_inserts() {
    race(
        "clear-vs-insert",
        5,
        6,
        Duration::from_secs(10),
        None,
        |t, rng| match t {
            0 => {
                std::thread::sleep(Duration::from_millis(rng.u64(200..600)));
                RaceOp::Clear
            }
            1 => RaceOp::Get,
            _ if rng.bool() => RaceOp::Insert,
            _ => RaceOp::Set,
        },
    )
    .assert();
}

/// `insert_many` and `bulk_delete` on the same keys as `insert`, `set` and `pop`.
#[test]
fn batch_writes_racing_single_writes() {
    race(
        "batch-vs-insert",
        5,
        4,
        Duration::from_secs(8),
        None,
        |t, rng| match (t, rng.u8(..3)) {
            (0 | 1, 0) => RaceOp::BulkDelete,
            (0 | 1, _) => RaceOp::InsertMany,
            (_, 0) => RaceOp::Pop,
            (_, 1) => RaceOp::Set,
            _ => RaceOp::Insert,
        },
    )
    .assert();
}

fn any_op(rng: &mut fastrand::Rng) -> RaceOp {
    match rng.u8(..100) {
        0..16 => RaceOp::Insert,
        16..30 => RaceOp::Set,
        30..40 => RaceOp::SetDefault,
        40..50 => RaceOp::Pop,
        50..57 => RaceOp::Remove,
        57..70 => RaceOp::Get,
        70..76 => RaceOp::GetMany,
        76..88 => RaceOp::InsertMany,
        88..98 => RaceOp::BulkDelete,
        _ => RaceOp::Clear,
    }
}

/// Eight threads mixing every operation on four keys.
#[test]
fn eight_threads_mixing_every_operation() {
    race("mix8", 8, 4, Duration::from_secs(8), None, |_, rng| {
        any_op(rng)
    })
    .assert();
}

/// The same mix, through a proxy that loses a third of the answers to manifest writes.
#[test]
fn eight_threads_mixing_every_operation_with_lost_manifest_replies() {
    let proxy = FaultProxy::start(local_upstream()).expect("proxy");
    let fault = lose_reply(None, MANIFEST, 0.34, Duration::ZERO);
    proxy.set_fault(fault.clone());
    let endpoint = proxy.endpoint();
    let mut verdict = race(
        "mix8-lost-replies",
        8,
        4,
        Duration::from_secs(8),
        Some(&endpoint),
        |_, rng| any_op(rng),
    );
    verdict.faults = describe(&fault, &proxy);
    verdict.assert();
}

// ---------------------------------------------------------------------------------------------
// Killed clients and servers

const CHILD_NS: &str = "DYNAMODICT_PROTOCOL_NS";
const CHILD_LOG: &str = "DYNAMODICT_PROTOCOL_LOG";
const CHILD_WRITER: &str = "DYNAMODICT_PROTOCOL_WRITER";

/// The writer that `a_killed_client_leaves_nothing_unreadable_or_unreferenced` kills: the
/// sequential workload, each call logged (one line before it starts, one when it returns) with
/// one `write` each, so the log survives a SIGKILL.
#[test]
#[ignore = "the child process of a_killed_client_leaves_nothing_unreadable_or_unreferenced"]
fn child_writer() {
    let (Ok(ns), Ok(log), Ok(writer)) = (
        std::env::var(CHILD_NS),
        std::env::var(CHILD_LOG),
        std::env::var(CHILD_WRITER),
    ) else {
        return;
    };
    let writer: u32 = writer.parse().expect("writer id");
    let d = open(&ns, None, RELAXED);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .expect("the log");
    let mut append = |call: &Call| {
        let mut line = serde_json::to_vec(call).expect("json");
        line.push(b'\n');
        file.write_all(&line).expect("log write");
    };
    let mut w = Writer::new(writer, (0..4).collect(), u64::from(writer));
    // Killed long before; the limit only keeps a lost child from running forever.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let op = Op::pick(&mut w.rng);
        let call = w.step(&d, op, &mut append);
        append(&call);
    }
}

/// The calls of a child's log: the last line of each (the outcome, or the start of the call
/// the child died in).
fn read_log(path: &Path) -> Vec<Call> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut calls: Vec<Call> = Vec::new();
    let mut open_call = false;
    for line in text.lines() {
        let Ok(call) = serde_json::from_str::<Call>(line) else {
            continue; // a line cut short by the kill
        };
        if open_call && call.ok.is_some() {
            calls.pop();
        }
        open_call = call.ok.is_none();
        calls.push(call);
    }
    calls
}

/// A child process runs the sequential workload on large values; the parent SIGKILLs it at a
/// random point, several times, each time with a new child on the same keys. Whatever a call
/// left behind when its process died (a record, some chunks, a manifest whose old generation
/// was not reclaimed yet) must not make a key unreadable, and the sweep must reclaim it.
#[test]
fn a_killed_client_leaves_nothing_unreadable_or_unreferenced() {
    let started = Instant::now();
    const RUNS: u32 = 5;
    let ns = unique("killed-client");
    let dir = std::env::temp_dir().join(unique("dynamodict-killed-client"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let d = referee(&ns, RELAXED);
    let mut rng = fastrand::Rng::with_seed(21);
    let mut ledger = Ledger::new(false);
    let mut died_in = Vec::new();
    for run in 1..=RUNS {
        let log: PathBuf = dir.join(format!("run-{run}.log"));
        let mut child = support::child_command(
            "protocol::child_writer",
            &[
                (CHILD_NS, ns.clone()),
                (CHILD_LOG, log.to_string_lossy().into_owned()),
                (CHILD_WRITER, run.to_string()),
            ],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawning the child writer");
        // Once it has started its first call, let it run for a while, then SIGKILL it.
        let started = Instant::now();
        while !std::fs::metadata(&log).is_ok_and(|m| m.len() > 0) {
            if started.elapsed() > Duration::from_secs(20)
                || child.try_wait().ok().flatten().is_some()
            {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the child writer never started a call");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.u64(300..2000)));
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("reaping the child");
        assert!(!status.success(), "the child ended by itself: {status}");
        // Let whatever it had sent reach the server before the next writer starts.
        std::thread::sleep(Duration::from_millis(300));
        let calls = read_log(&log);
        died_in.push(calls.last().map_or("nothing".to_owned(), |c| {
            format!(
                "{}{}",
                c.op,
                if c.ok.is_none() { "" } else { " (returned)" }
            )
        }));
        for call in &calls {
            ledger.apply(call);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let settled = settle(&d, &Raw::new(), RELAXED);
    let mut verdict = Verdict::new("killed-client").since(started).ledger(&ledger);
    verdict.runs = RUNS as usize;
    verdict.faults = format!(" [killed in: {}]", died_in.join(", "));
    verdict.settled(&settled, Some(&mut ledger)).assert();
}

/// The server (on disk) is killed in the middle of two writers' sequential workloads on
/// large values and restarted; the writers go on until each has been acknowledged again.
#[test]
fn a_killed_server_leaves_nothing_unreadable_or_unreferenced() {
    let started = Instant::now();
    if support::skip_on(
        &[LocalEngine::Moto],
        "moto keeps data only in memory: a killed server loses everything",
    ) {
        return;
    }
    let dir = std::env::temp_dir().join(unique("dynamodict-protocol-restart"));
    let _ = std::fs::remove_dir_all(&dir);
    let mut server = DynamoDbLocal::start(LocalOptions {
        engine: support::engine(),
        db_path: Some(dir.clone()),
        ..LocalOptions::default()
    })
    .expect("a server keeping its data on disk");
    let table = "protocol-restart";
    let ns = "workload";
    let endpoint = server.endpoint().to_owned();
    let d = open_on(table, ns, Some(endpoint.clone()), RELAXED);
    let ledger = Mutex::new(Ledger::new(false));
    let stop = AtomicBool::new(false);
    let restarted = AtomicBool::new(false);
    let acknowledged_after = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for w in 0..2u32 {
            let (d, ledger, stop) = (&d, &ledger, &stop);
            let (restarted, after) = (&restarted, &acknowledged_after);
            s.spawn(move || {
                let keys = (0..3).map(|k| k + 3 * w as usize).collect();
                let mut writer = Writer::new(w + 1, keys, u64::from(w) + 31);
                while !stop.load(Ordering::SeqCst) {
                    let op = Op::pick(&mut writer.rng);
                    let call = writer.step(d, op, &mut |_| {});
                    if call.ok == Some(false) {
                        std::thread::sleep(Duration::from_millis(50)); // don't spin on a dead server
                    } else if restarted.load(Ordering::SeqCst) && !call.writes.is_empty() {
                        after.fetch_add(1, Ordering::SeqCst);
                    }
                    ledger.lock().unwrap().apply(&call);
                }
            });
        }
        std::thread::sleep(Duration::from_millis(2500));
        server.kill().expect("kill");
        std::thread::sleep(Duration::from_millis(300));
        server.restart().expect("restart");
        restarted.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(25);
        while acknowledged_after.load(Ordering::SeqCst) < 10 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::SeqCst);
    });
    let mut ledger = ledger.into_inner().unwrap();
    let referee = open_on(table, ns, Some(endpoint.clone()), RELAXED.referee());
    let settled = settle(&referee, &Raw::at(&endpoint), RELAXED);
    let mut verdict = Verdict::new("killed-server").since(started).ledger(&ledger);
    if acknowledged_after.load(Ordering::SeqCst) < 10 {
        verdict
            .problems
            .push("the writers did not recover after the restart".into());
    }
    verdict = verdict.settled(&settled, Some(&mut ledger));
    drop((d, referee));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    verdict.assert();
}

// ---------------------------------------------------------------------------------------------
// Dropped futures (async cancellation)

/// Futures of the async map dropped at many points (a `tokio::time::timeout` around each call,
/// its limit stepping through the whole length of a large write): no value is ever torn or
/// unreadable, and everything a dropped call left behind is reclaimed by the sweep.
#[test]
fn dropped_futures_leave_nothing_torn_and_nothing_unreclaimed() {
    let profile = QUICK;
    let ns = unique("cancel");
    let d = open(&ns, None, profile);
    let map = d.to_async();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let keys = 4;
    let mut seq = 0u32;
    let mut next = |key: usize, small: bool| {
        seq += 1;
        Tag::new(key, 7, seq, small).value()
    };
    for key in 0..keys {
        d.set(&key_name(key), next(key, false)).unwrap();
    }
    let ops = [
        "insert",
        "set",
        "pop",
        "insert_many",
        "setdefault",
        "clear",
        "bulk_delete",
    ];
    let (mut cut, mut completed) = (BTreeMap::<&str, usize>::new(), 0usize);
    let mut rng = fastrand::Rng::with_seed(11);
    for step in 0..84u64 {
        // From 0 to ~250 ms: before the first request, inside the record, the chunk batches,
        // the manifest, the retirement of the old value, and after the end.
        let limit = Duration::from_micros(step * 3000 + rng.u64(0..3000));
        let key = rng.usize(0..keys);
        let name = key_name(key);
        // The last steps only write, so that the sweep at the end runs beside live values.
        let op = match ops[step as usize % ops.len()] {
            "clear" | "bulk_delete" | "pop" if step >= 70 => "insert",
            op => op,
        };
        let future: std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Error>> + Send>> =
            match op {
                "insert" => {
                    let value = next(key, false);
                    let (map, name) = (map.clone(), name.clone());
                    Box::pin(async move { map.insert(&name, value).await.map(|_| ()) })
                }
                "set" => {
                    let value = next(key, rng.bool());
                    let (map, name) = (map.clone(), name.clone());
                    Box::pin(async move { map.set(&name, value).await })
                }
                "pop" => {
                    let (map, name) = (map.clone(), name.clone());
                    Box::pin(async move { map.pop(&name).await.map(|_| ()) })
                }
                "insert_many" => {
                    let other = (key + 1) % keys;
                    let entries = vec![
                        (name.clone(), next(key, false)),
                        (key_name(other), next(other, false)),
                    ];
                    let map = map.clone();
                    Box::pin(async move { map.insert_many(entries).await })
                }
                "setdefault" => {
                    let value = next(key, false);
                    let (map, name) = (map.clone(), name.clone());
                    Box::pin(async move { map.setdefault(&name, value).await.map(|_| ()) })
                }
                "clear" => {
                    let map = map.clone();
                    Box::pin(async move { map.clear().await })
                }
                _ => {
                    let map = map.clone();
                    Box::pin(async move { map.bulk_delete([name]).await })
                }
            };
        match rt.block_on(async { tokio::time::timeout(limit, future).await }) {
            Err(_) => *cut.entry(op).or_default() += 1,
            Ok(Ok(())) => completed += 1,
            // A call that ran out of its own time (a busy machine) is a cut too.
            Ok(Err(e)) if e.is_transient() => *cut.entry(op).or_default() += 1,
            Ok(Err(e)) => panic!("{op} failed: {e}"),
        }
        // Between calls, every key holds a whole value written to it, or nothing.
        for key in 0..keys {
            let value = patiently(|| rt.block_on(map.get(&key_name(key))))
                .unwrap_or_else(|e| panic!("step {step}, after a cut {op}: {e}"));
            identify_opt(&key_name(key), value.as_ref())
                .unwrap_or_else(|e| panic!("step {step}: {e}"));
        }
    }
    drop(rt);
    let settled = settle(&d, &Raw::new(), profile);
    println!(
        "dropped futures: {} cut ({cut:?}), {completed} completed; before sweep {:?}; swept {:?}; \
         after sweep {:?}",
        cut.values().sum::<usize>(),
        settled.before_sweep,
        settled.swept,
        settled.after_sweep
    );
    assert!(
        cut.values().sum::<usize>() >= 10,
        "too few calls were cut: {cut:?}"
    );
    assert!(completed >= 10, "too few calls completed: {completed}");
    assert!(
        !settled.values.is_empty(),
        "no value left to check after the sweep"
    );
    for (key, value) in &settled.values {
        assert!(value.is_ok(), "{key}: {value:?}");
    }
    assert!(
        settled.changed_by_sweep.is_empty(),
        "{:?}",
        settled.changed_by_sweep
    );
    assert!(settled.after_sweep.clean(), "{:?}", settled.after_sweep);
}
