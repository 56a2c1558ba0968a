//! Hostile data: corrupt, truncated, tampered or adversarial bytes and items never make the
//! map panic or allocate beyond its limits; every failure is a typed error that names the key.
//!
//! - Every serializer pipeline's `loads` is fuzzed with arbitrary bytes, with garbage wrapped in
//!   valid signatures and compression frames (so the inner decoder sees it), with arbitrary
//!   attribute values, and with crafted length prefixes; a global allocator records the largest
//!   allocation made while decoding.
//! - Arbitrary attribute maps (value, format id, signature, expiry, large-value manifests and
//!   chunks) are written straight into the table with the raw SDK under a map's keys, then read
//!   back through every reading operation.
//! - Signed entries: altered payload, altered or missing signature, other secret or salt, value
//!   moved to another key, for small and chunked values.
//! - A corrupt layout metadata item is refused when the table is opened.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};

use dynamodict::MAX_DECODED_SIZE;
use dynamodict::aws_sdk_dynamodb::primitives::Blob;
use dynamodict::aws_sdk_dynamodb::types::AttributeValue;
use dynamodict::layout::shard_of;
use dynamodict::{DynamoDbDict, Encoded, Error, Serializer, Signer, Stage};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde::{Deserialize, Serialize};

use crate::support::{self, Raw, unique};

// ---- the largest allocation made by this thread -----------------------------------------------

/// The system allocator, recording the largest single allocation (or reallocation) request of
/// a thread while [`peak_allocation`] watches it. Costs two thread-local reads per allocation.
struct Watching;

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = WATCHING.try_with(|watching| {
        if watching.get() {
            let _ = PEAK.try_with(|peak| peak.set(peak.get().max(size)));
        }
    });
}

// SAFETY: every call is forwarded unchanged to `System`; `note` only touches `Cell`s in
// const-initialized thread-locals without destructors, which never allocate.
unsafe impl GlobalAlloc for Watching {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Watching = Watching;

/// Runs `f` and returns its result with the largest single allocation it made on this thread
/// (map calls run their requests on the calling thread, so they are seen too).
fn peak_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    PEAK.with(|p| p.set(0));
    WATCHING.with(|w| w.set(true));
    let result = f();
    WATCHING.with(|w| w.set(false));
    (result, PEAK.with(Cell::get))
}

/// What decoding may allocate at once: the decoders' limit, and a little for bookkeeping.
const ALLOCATION_LIMIT: usize = MAX_DECODED_SIZE + 64 * 1024;

// ---- types values are decoded into --------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Sample {
    name: String,
    tags: Vec<String>,
    n: Option<i64>,
    scores: BTreeMap<String, f64>,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Kind {
    A,
    B(u32),
    C { x: String, y: Vec<u8> },
}

fn sample(i: u32) -> Sample {
    Sample {
        name: format!("sample {i}"),
        tags: vec!["a".into(), "β".into()],
        n: Some(-7),
        scores: BTreeMap::from([("x".to_owned(), 1.5)]),
        kind: Kind::C {
            x: "deep".into(),
            y: vec![1, 2, 3],
        },
    }
}

/// Whether `result` is a value or a typed decoding error naming `key`.
fn typed<T: std::fmt::Debug>(result: &Result<T, Error>, keys: &[&str]) -> Result<(), String> {
    match result {
        Ok(_) => Ok(()),
        Err(
            Error::Deserialize { key, .. }
            | Error::BadSignature { key }
            | Error::SerializerMismatch { key, .. },
        ) if keys.contains(&key.as_str()) => Ok(()),
        Err(other) => Err(format!(
            "expected a value or a decoding error naming one of {keys:?}, got {other:?}"
        )),
    }
}

/// Decodes `encoded` as every test type; returns the failures that were not typed errors
/// naming `key`, and the largest allocation made.
fn decode_all(s: &Serializer, key: &str, encoded: &Encoded) -> (Vec<String>, usize) {
    let mut bad = Vec::new();
    let mut worst = 0;
    let mut check = |what: &str, r: (Result<(), String>, usize)| {
        if let Err(e) = r.0 {
            bad.push(format!("{} as {what}: {e}", s.id()));
        }
        worst = worst.max(r.1);
    };
    macro_rules! each {
        ($($t:ty),*) => {$(
            check(
                stringify!($t),
                peak_allocation(|| typed(&s.loads::<$t>(key, encoded.clone()), &[key])),
            );
        )*};
    }
    each!(
        String,
        Vec<u8>,
        u64,
        Vec<String>,
        BTreeMap<String, Vec<u32>>,
        Sample,
        Kind,
        serde_json::Value,
        (u8, Option<String>, f64)
    );
    (bad, worst)
}

// ---- the pipelines --------------------------------------------------------------------------

const SECRET: &str = "hostile-secret";
const SALT: &str = "hostile-salt";

/// A pipeline and its byte stages, rebuilt by hand so garbage can be wrapped in a valid
/// signature or compression frame and reach the decoder behind them.
struct Pipe {
    serializer: Serializer,
    stages: Vec<Box<dyn Stage>>,
}

impl Pipe {
    fn wrap(&self, key: &str, garbage: &[u8]) -> Encoded {
        let mut bytes = garbage.to_vec();
        for stage in &self.stages {
            bytes = stage.encode(key, bytes).expect("stages encode anything");
        }
        Encoded::Bytes(bytes)
    }
}

fn byte_pipes() -> Vec<Pipe> {
    let signer = || Box::new(Signer::new(SECRET, SALT)) as Box<dyn Stage>;
    #[allow(unused_mut)]
    let mut pipes = vec![
        Pipe {
            serializer: Serializer::bincode(),
            stages: vec![],
        },
        Pipe {
            serializer: Serializer::json(),
            stages: vec![],
        },
        Pipe {
            serializer: Serializer::bincode().signed(SECRET, SALT),
            stages: vec![signer()],
        },
        Pipe {
            serializer: Serializer::json().signed(SECRET, SALT),
            stages: vec![signer()],
        },
    ];
    #[cfg(feature = "compression")]
    {
        use dynamodict::Zstd;
        let zstd = || Box::new(Zstd::new(3)) as Box<dyn Stage>;
        pipes.push(Pipe {
            serializer: Serializer::bincode().compressed(3).unwrap(),
            stages: vec![zstd()],
        });
        pipes.push(Pipe {
            serializer: Serializer::json()
                .compressed(3)
                .unwrap()
                .signed(SECRET, SALT),
            stages: vec![zstd(), signer()],
        });
    }
    for pipe in &pipes {
        // The hand-built stages must be the pipeline's own.
        let encoded = pipe.serializer.dumps("k", &sample(1)).unwrap();
        let plain = match pipe.serializer.format() {
            dynamodict::Format::Json => serde_json::to_vec(&sample(1)).unwrap(),
            _ => match Serializer::bincode().dumps("k", &sample(1)).unwrap() {
                Encoded::Bytes(b) => b,
                Encoded::Document { .. } => unreachable!(),
            },
        };
        let back: Sample = pipe.serializer.loads("k", pipe.wrap("k", &plain)).unwrap();
        assert_eq!(back, sample(1), "{}", pipe.serializer.id());
        assert!(matches!(encoded, Encoded::Bytes(_)));
    }
    pipes
}

fn document_pipes() -> Vec<Serializer> {
    vec![
        Serializer::document(),
        Serializer::document().signed(SECRET, SALT),
    ]
}

// ---- arbitrary attribute values -----------------------------------------------------------

/// Numbers DynamoDB accepts (it refuses more than 38 significant digits or huge magnitudes).
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (-1.0e12..1.0e12f64).prop_map(|f| format!("{f}")),
        Just("0".to_owned()),
        Just("-0.000001".to_owned()),
        Just("99999999999999999999999999999999999999".to_owned()),
        Just("1e100".to_owned()),
    ]
}

fn leaf() -> impl Strategy<Value = AttributeValue> {
    prop_oneof![
        ".{0,24}".prop_map(AttributeValue::S),
        number().prop_map(AttributeValue::N),
        prop::collection::vec(any::<u8>(), 0..48).prop_map(|b| AttributeValue::B(Blob::new(b))),
        any::<bool>().prop_map(AttributeValue::Bool),
        Just(AttributeValue::Null(true)),
        prop::collection::hash_set("[a-zé]{1,6}", 1..4)
            .prop_map(|s| AttributeValue::Ss(s.into_iter().collect())),
        prop::collection::hash_set(any::<i32>(), 1..4)
            .prop_map(|s| AttributeValue::Ns(s.into_iter().map(|n| n.to_string()).collect())),
        prop::collection::hash_set(prop::collection::vec(any::<u8>(), 1..6), 1..3)
            .prop_map(|s| AttributeValue::Bs(s.into_iter().map(Blob::new).collect())),
    ]
}

fn attribute() -> impl Strategy<Value = AttributeValue> {
    leaf().prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(AttributeValue::L),
            prop::collection::hash_map(
                prop_oneof![
                    "[a-z]{1,6}",
                    Just("name".to_owned()),
                    Just("kind".to_owned()),
                    Just("C".to_owned()),
                    Just("tags".to_owned()),
                ],
                inner,
                0..5
            )
            .prop_map(AttributeValue::M),
        ]
    })
}

// ---- serializer-level fuzzing -------------------------------------------------------------

fn garbage() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec(any::<u8>(), 0..1024),
        // Mostly small varints and JSON-ish bytes, to get past the first byte more often.
        prop::collection::vec(
            prop_oneof![
                0u8..8,
                Just(251u8),
                Just(252),
                Just(253),
                Just(b'"'),
                Just(b'[')
            ],
            0..64
        ),
    ]
}

/// A valid encoding of a sample, with one byte changed and possibly cut short.
fn mutated(valid: &[u8], at: usize, xor: u8, cut: Option<usize>) -> Vec<u8> {
    let mut bytes = valid.to_vec();
    if !bytes.is_empty() {
        let at = at % bytes.len();
        bytes[at] ^= xor.max(1);
    }
    if let Some(cut) = cut {
        bytes.truncate(cut % (bytes.len() + 1));
    }
    bytes
}

#[test]
fn loads_of_arbitrary_bytes_is_a_typed_error_for_every_pipeline() {
    let pipes = byte_pipes();
    let docs = document_pipes();
    let mut runner = TestRunner::new(Config {
        cases: 192,
        failure_persistence: None,
        ..Config::default()
    });
    let worst = Cell::new(0);
    let strategy = (
        garbage(),
        any::<usize>(),
        any::<u8>(),
        prop::option::of(any::<usize>()),
    );
    runner
        .run(&strategy, |(bytes, at, xor, cut)| {
            for pipe in &pipes {
                let s = &pipe.serializer;
                // Raw garbage: rejected by the outermost stage (or decoded, for plain formats).
                let (bad, peak) = decode_all(s, "key-1", &Encoded::Bytes(bytes.clone()));
                prop_assert!(bad.is_empty(), "{bad:?}");
                worst.set(worst.get().max(peak));
                // Garbage behind a valid signature / compression frame reaches the decoder.
                let (bad, peak) = decode_all(s, "key-2", &pipe.wrap("key-2", &bytes));
                prop_assert!(bad.is_empty(), "{bad:?}");
                worst.set(worst.get().max(peak));
                // A valid payload with one byte altered, behind valid stages.
                let valid = match s.format() {
                    dynamodict::Format::Json => serde_json::to_vec(&sample(2)).unwrap(),
                    _ => bincode_of(&sample(2)),
                };
                let (bad, peak) = decode_all(
                    s,
                    "key-3",
                    &pipe.wrap("key-3", &mutated(&valid, at, xor, cut)),
                );
                prop_assert!(bad.is_empty(), "{bad:?}");
                worst.set(worst.get().max(peak));
                // The same, not re-signed: a signed pipeline must say BadSignature.
                if let Encoded::Bytes(good) = s.dumps("key-4", &sample(2)).unwrap() {
                    let altered = Encoded::Bytes(mutated(&good, at, xor, cut));
                    if s.id().contains("hmac") {
                        let r = s.loads::<Sample>("key-4", altered);
                        prop_assert!(
                            matches!(r, Err(Error::BadSignature { ref key }) if key == "key-4"),
                            "{}: {r:?}",
                            s.id()
                        );
                    } else {
                        let (bad, _) = decode_all(s, "key-4", &altered);
                        prop_assert!(bad.is_empty(), "{bad:?}");
                    }
                }
            }
            for s in &docs {
                // Bytes where a document is expected.
                let (bad, _) = decode_all(s, "key-5", &Encoded::Bytes(bytes.clone()));
                prop_assert!(bad.is_empty(), "{bad:?}");
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let worst = worst.get();
    assert!(
        worst <= ALLOCATION_LIMIT,
        "decoding allocated {worst} bytes at once"
    );
    eprintln!("arbitrary bytes: largest allocation while decoding {worst} bytes");
}

fn bincode_of<T: Serialize>(value: &T) -> Vec<u8> {
    match Serializer::bincode().dumps("k", value).unwrap() {
        Encoded::Bytes(b) => b,
        Encoded::Document { .. } => unreachable!(),
    }
}

#[test]
fn loads_of_arbitrary_documents_is_a_typed_error() {
    let docs = document_pipes();
    let mut runner = TestRunner::new(Config {
        cases: 192,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        attribute(),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
    );
    runner
        .run(&strategy, |(value, signature)| {
            for s in &docs {
                let encoded = Encoded::Document {
                    value: value.clone(),
                    signature: signature.clone(),
                };
                let (bad, peak) = decode_all(s, "doc-key", &encoded);
                prop_assert!(bad.is_empty(), "{bad:?}");
                prop_assert!(peak <= ALLOCATION_LIMIT);
                if s.id().contains("hmac") {
                    // Nobody can sign without the key.
                    let r = s.loads::<serde_json::Value>("doc-key", encoded);
                    prop_assert!(matches!(r, Err(Error::BadSignature { .. })), "{r:?}");
                }
            }
            // A document where bytes are expected.
            for pipe in byte_pipes() {
                let encoded = Encoded::Document {
                    value: value.clone(),
                    signature: None,
                };
                let (bad, _) = decode_all(&pipe.serializer, "doc-key", &encoded);
                prop_assert!(bad.is_empty(), "{bad:?}");
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

/// bincode's standard encoding of a length: `251` + u16, `252` + u32, `253` + u64.
fn varint(n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    match n {
        0..=250 => out.push(n as u8),
        251..=0xffff => {
            out.push(251);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(252);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        _ => {
            out.push(253);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
    out
}

#[test]
fn length_prefixes_claiming_huge_sizes_do_not_allocate_them() {
    let limit = MAX_DECODED_SIZE as u64;
    let mut report = Vec::new();
    for pipe in byte_pipes() {
        let s = &pipe.serializer;
        if s.format() != dynamodict::Format::Bincode {
            continue;
        }
        for claim in [1u64 << 62, u64::MAX, 0xffff_ffff, limit + 1, limit * 2] {
            let mut bytes = varint(claim);
            bytes.extend_from_slice(b"tiny");
            let encoded = pipe.wrap("k", &bytes);
            macro_rules! refused {
                ($($t:ty),*) => {$(
                    let (r, peak) = peak_allocation(|| s.loads::<$t>("k", encoded.clone()));
                    assert!(
                        matches!(r, Err(Error::Deserialize { ref key, .. }) if key == "k"),
                        "{} claim {claim} as {}: {r:?}", s.id(), stringify!($t)
                    );
                    assert!(
                        peak <= 1 << 20,
                        "{} claim {claim} as {}: allocated {peak} bytes", s.id(), stringify!($t)
                    );
                )*};
            }
            refused!(
                String,
                Vec<u8>,
                Vec<u64>,
                Vec<String>,
                BTreeMap<String, String>,
                serde_bytes::ByteBuf
            );
        }
        // A claim under the limit may be believed, but never beyond it.
        let mut bytes = varint(limit - 1024);
        bytes.extend_from_slice(b"tiny");
        let encoded = pipe.wrap("k", &bytes);
        let (r, peak) = peak_allocation(|| s.loads::<String>("k", encoded.clone()));
        assert!(matches!(r, Err(Error::Deserialize { .. })), "{r:?}");
        assert!(peak <= ALLOCATION_LIMIT, "{peak}");
        report.push(format!(
            "{}: a {}-byte value claiming {} bytes allocated {peak} bytes at once",
            s.id(),
            bytes.len(),
            limit - 1024
        ));
    }
    #[cfg(feature = "compression")]
    {
        // A zstd frame header claiming 1 TiB of content (single segment, 8-byte size), then a
        // 3-byte raw block.
        let mut frame = vec![1u8];
        frame.extend_from_slice(&0xFD2F_B528u32.to_le_bytes());
        frame.push(0b1110_0000);
        frame.extend_from_slice(&(1u64 << 40).to_le_bytes());
        frame.extend_from_slice(&[25, 0, 0, b'a', b'b', b'c']);
        let s = Serializer::bincode().compressed(3).unwrap();
        let (r, peak) = peak_allocation(|| s.loads::<String>("k", Encoded::Bytes(frame)));
        assert!(matches!(r, Err(Error::Deserialize { .. })), "{r:?}");
        assert!(peak < 1 << 20, "a zstd bomb header allocated {peak} bytes");
    }
    eprintln!("{}", report.join("\n"));
}

// ---- deep nesting -------------------------------------------------------------------------

/// A recursive value type, as users may store (trees, linked lists).
#[derive(Debug, Serialize, Deserialize)]
enum Tree {
    Leaf,
    Node(Box<Tree>),
}

const CHILD_ENV: &str = "DYNAMODICT_HOSTILE_CHILD";

/// Decodes deeply nested hostile input in a child process, so that a stack overflow (which
/// aborts the whole process rather than panicking) fails this test instead of the test binary.
#[test]
fn deeply_nested_input_is_an_error_not_a_crash() {
    let out = support::run_child(
        "hostile::child_decode_deep_nesting",
        &[(CHILD_ENV, "1".to_owned())],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("deep nesting: all refused"),
        "the child decoding deeply nested values died ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

#[test]
#[ignore = "run by deeply_nested_input_is_an_error_not_a_crash in a child process"]
fn child_decode_deep_nesting() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    // 300 000 levels: 300 KB, small enough for one DynamoDB item.
    let depth = 300_000;
    let mut tree = vec![1u8; depth];
    tree.push(0);
    let json = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    for (name, s, bytes) in [
        ("json", Serializer::json(), json.into_bytes()),
        ("bincode", Serializer::bincode(), tree),
    ] {
        eprintln!("decoding {depth} nested levels with {name}");
        let r = s.loads::<Tree>("deep", Encoded::Bytes(bytes.clone()));
        assert!(matches!(r, Err(Error::Deserialize { .. })), "{name}: {r:?}");
        let r = s.loads::<serde_json::Value>("deep", Encoded::Bytes(bytes));
        assert!(r.is_err(), "{name}");
    }
    println!("deep nesting: all refused");
}

// ---- hostile items in the table -----------------------------------------------------------

#[derive(Debug, Clone)]
enum FormatAttr {
    Missing,
    Ours,
    Text(String),
    Other(AttributeValue),
}

#[derive(Debug, Clone)]
enum ValueAttr {
    Missing,
    Bytes(Vec<u8>),
    /// A valid encoding of a sample with one byte changed (for documents: a changed signature
    /// or an added map entry).
    Mutated {
        at: usize,
        xor: u8,
        cut: Option<usize>,
    },
    /// Garbage wrapped in this pipeline's valid stages (signature, compression).
    Wrapped(Vec<u8>),
    Other(AttributeValue),
}

#[derive(Debug, Clone)]
enum Ttl {
    Missing,
    Past,
    Future,
    Weird(AttributeValue),
}

#[derive(Debug, Clone)]
struct Manifest {
    g: AttributeValue,
    n: AttributeValue,
    z: AttributeValue,
    /// Chunk items written under `g` (index, data attribute).
    chunks: Vec<(usize, Option<AttributeValue>)>,
}

#[derive(Debug, Clone)]
struct HostileItem {
    f: FormatAttr,
    v: ValueAttr,
    s: Option<AttributeValue>,
    ttl: Ttl,
    manifest: Option<Manifest>,
    extra: Vec<(String, AttributeValue)>,
}

fn format_attr() -> impl Strategy<Value = FormatAttr> {
    prop_oneof![
        6 => Just(FormatAttr::Ours),
        1 => Just(FormatAttr::Missing),
        1 => prop_oneof![
            Just("json".to_owned()),
            Just("bincode2".to_owned()),
            Just("document+hmac-sha256".to_owned()),
            ".{0,12}",
        ]
        .prop_map(FormatAttr::Text),
        1 => leaf().prop_map(FormatAttr::Other),
    ]
}

fn value_attr() -> impl Strategy<Value = ValueAttr> {
    prop_oneof![
        1 => Just(ValueAttr::Missing),
        2 => prop::collection::vec(any::<u8>(), 0..200).prop_map(ValueAttr::Bytes),
        3 => (any::<usize>(), any::<u8>(), prop::option::of(any::<usize>()))
            .prop_map(|(at, xor, cut)| ValueAttr::Mutated { at, xor, cut }),
        2 => garbage().prop_map(ValueAttr::Wrapped),
        2 => attribute().prop_map(ValueAttr::Other),
    ]
}

fn ttl() -> impl Strategy<Value = Ttl> {
    prop_oneof![
        4 => Just(Ttl::Missing),
        1 => Just(Ttl::Past),
        1 => Just(Ttl::Future),
        1 => prop_oneof![
            Just(AttributeValue::N("-5".into())),
            Just(AttributeValue::N("1.5".into())),
            Just(AttributeValue::N("1e30".into())),
            Just(AttributeValue::S("tomorrow".into())),
            leaf(),
        ]
        .prop_map(Ttl::Weird),
    ]
}

fn manifest() -> impl Strategy<Value = Manifest> {
    let chunk_data = prop_oneof![
        6 => prop::collection::vec(any::<u8>(), 0..300).prop_map(|b| Some(AttributeValue::B(Blob::new(b)))),
        1 => Just(None),
        1 => leaf().prop_map(Some),
    ];
    let consistent = prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..4)
        .prop_map(|chunks| {
            let total: usize = chunks.iter().map(Vec::len).sum();
            Manifest {
                g: AttributeValue::S(format!("{:032x}", total * 7919)),
                n: AttributeValue::N(chunks.len().to_string()),
                z: AttributeValue::N(total.to_string()),
                chunks: chunks
                    .into_iter()
                    .enumerate()
                    .map(|(i, b)| (i, Some(AttributeValue::B(Blob::new(b)))))
                    .collect(),
            }
        });
    let count = prop_oneof![
        (0u64..5).prop_map(|n| AttributeValue::N(n.to_string())),
        Just(AttributeValue::N("100000000".into())),
        Just(AttributeValue::N("-1".into())),
        Just(AttributeValue::N("2.5".into())),
        Just(AttributeValue::S("2".into())),
    ];
    let length = prop_oneof![
        (0u64..2000).prop_map(|n| AttributeValue::N(n.to_string())),
        Just(AttributeValue::N((MAX_DECODED_SIZE as u64 + 1).to_string())),
        Just(AttributeValue::N((MAX_DECODED_SIZE as u64).to_string())),
        Just(AttributeValue::N("18446744073709551616".into())),
        Just(AttributeValue::B(Blob::new(vec![1u8]))),
    ];
    let arbitrary = (
        prop_oneof![
            "[0-9a-f]{32}".prop_map(AttributeValue::S),
            ".{0,10}".prop_map(AttributeValue::S),
            leaf(),
        ],
        count,
        length,
        prop::collection::vec((0usize..6, chunk_data), 0..4),
    )
        .prop_map(|(g, n, z, chunks)| Manifest { g, n, z, chunks });
    prop_oneof![consistent, arbitrary]
}

fn hostile_item() -> impl Strategy<Value = HostileItem> {
    (
        format_attr(),
        value_attr(),
        prop::option::of(leaf()),
        ttl(),
        prop::option::weighted(0.3, manifest()),
        prop::collection::vec(
            (
                prop_oneof![
                    Just("g".to_owned()),
                    Just("s".to_owned()),
                    Just("z".to_owned()),
                    "[a-z]{1,5}"
                ],
                leaf(),
            ),
            0..3,
        ),
    )
        .prop_map(|(f, v, s, ttl, manifest, extra)| HostileItem {
            f,
            v,
            s,
            ttl,
            manifest,
            extra,
        })
}

/// A map under test and the stages of its pipeline.
struct Target {
    dict: DynamoDbDict<Sample>,
    pipe: Option<Pipe>,
}

fn partition(ns: &str, key: &str) -> String {
    format!("{ns}#{:x}", shard_of(key, 8))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The attributes of `h` for `key`, as this target would (mis)store them, and its chunk items.
fn materialize(
    target: &Target,
    key: &str,
    h: &HostileItem,
) -> (
    HashMap<String, AttributeValue>,
    Vec<HashMap<String, AttributeValue>>,
) {
    let s = target.dict.serializer();
    let ns = target.dict.namespace();
    let pk = partition(ns, key);
    let mut item = HashMap::new();
    for (name, value) in &h.extra {
        item.insert(name.clone(), value.clone());
    }
    match &h.f {
        FormatAttr::Missing => {
            item.remove("f");
        }
        FormatAttr::Ours => {
            item.insert("f".into(), AttributeValue::S(s.id().to_owned()));
        }
        FormatAttr::Text(t) => {
            item.insert("f".into(), AttributeValue::S(t.clone()));
        }
        FormatAttr::Other(v) => {
            item.insert("f".into(), v.clone());
        }
    }
    if let Some(sig) = &h.s {
        item.insert("s".into(), sig.clone());
    }
    let value = match &h.v {
        ValueAttr::Missing => None,
        ValueAttr::Bytes(b) => Some(AttributeValue::B(Blob::new(b.clone()))),
        ValueAttr::Other(v) => Some(v.clone()),
        ValueAttr::Wrapped(garbage) => match &target.pipe {
            Some(pipe) => match pipe.wrap(key, garbage) {
                Encoded::Bytes(b) => Some(AttributeValue::B(Blob::new(b))),
                Encoded::Document { value, .. } => Some(value),
            },
            None => Some(AttributeValue::B(Blob::new(garbage.clone()))),
        },
        ValueAttr::Mutated { at, xor, cut } => match s.dumps(key, &sample(*at as u32)).unwrap() {
            Encoded::Bytes(b) => Some(AttributeValue::B(Blob::new(mutated(&b, *at, *xor, *cut)))),
            Encoded::Document { value, signature } => {
                let mut value = value;
                if at % 2 == 0 {
                    if let Some(sig) = signature {
                        let sig = mutated(&sig, *at, *xor, *cut);
                        item.insert("s".into(), AttributeValue::B(Blob::new(sig)));
                    }
                } else if let AttributeValue::M(map) = &mut value {
                    map.insert("name".into(), AttributeValue::S(format!("changed {xor}")));
                    if let Some(sig) = signature {
                        item.insert("s".into(), AttributeValue::B(Blob::new(sig)));
                    }
                }
                Some(value)
            }
        },
    };
    if let Some(value) = value {
        item.insert("v".into(), value);
    }
    match &h.ttl {
        Ttl::Missing => {}
        Ttl::Past => {
            item.insert("ttl".into(), AttributeValue::N((now() - 1000).to_string()));
        }
        Ttl::Future => {
            item.insert(
                "ttl".into(),
                AttributeValue::N((now() + 100_000).to_string()),
            );
        }
        Ttl::Weird(v) => {
            item.insert("ttl".into(), v.clone());
        }
    }
    let mut chunk_items = Vec::new();
    if let Some(m) = &h.manifest {
        item.insert("g".into(), m.g.clone());
        item.insert("n".into(), m.n.clone());
        item.insert("z".into(), m.z.clone());
        let generation = match &m.g {
            AttributeValue::S(g) => g.clone(),
            _ => String::new(),
        };
        for (index, data) in &m.chunks {
            let mut chunk = HashMap::from([
                ("pk".to_owned(), AttributeValue::S(format!("{pk}#c"))),
                (
                    "sk".to_owned(),
                    AttributeValue::S(format!("{generation}:{index:05}")),
                ),
            ]);
            if let Some(d) = data {
                chunk.insert("d".into(), d.clone());
            }
            chunk_items.push(chunk);
        }
    }
    item.insert("pk".into(), AttributeValue::S(pk));
    item.insert("sk".into(), AttributeValue::S(key.to_owned()));
    (item, chunk_items)
}

/// Writes `items` under keys `h0..` with the raw SDK; returns the keys whose item DynamoDB
/// accepted.
fn plant(raw: &Raw, target: &Target, items: &[HostileItem]) -> Vec<String> {
    let mut planted = Vec::new();
    for (i, h) in items.iter().enumerate() {
        let key = format!("h{i}");
        let (item, chunks) = materialize(target, &key, h);
        for chunk in chunks {
            // DynamoDB may refuse what it cannot store (e.g. an empty set); that's fine.
            let _ = raw.block(
                raw.client
                    .put_item()
                    .table_name(support::TABLE)
                    .set_item(Some(chunk))
                    .send(),
            );
        }
        let put = raw.block(
            raw.client
                .put_item()
                .table_name(support::TABLE)
                .set_item(Some(item))
                .send(),
        );
        if put.is_ok() {
            planted.push(key);
        }
    }
    planted
}

fn chunk_partition_items(raw: &Raw, ns: &str) -> usize {
    (0..8)
        .map(|s| {
            raw.block(
                raw.client
                    .query()
                    .table_name(support::TABLE)
                    .key_condition_expression("pk = :p")
                    .expression_attribute_values(":p", AttributeValue::S(format!("{ns}#{s:x}#c")))
                    .send(),
            )
            .expect("query")
            .count as usize
        })
        .sum()
}

/// Reads hostile items back through every reading operation.
fn read_back(raw: &Raw, target: &Target, keys: &[String]) -> Result<(), TestCaseError> {
    let d = &target.dict;
    let names: Vec<&str> = keys.iter().map(String::as_str).collect();
    let mut worst = 0;
    let mut watch = |what: &str, peak: usize| -> Result<(), TestCaseError> {
        worst = worst.max(peak);
        prop_assert!(
            peak <= ALLOCATION_LIMIT,
            "{what} allocated {peak} bytes at once"
        );
        Ok(())
    };
    for key in &names {
        let (r, peak) = peak_allocation(|| d.get(key));
        watch("get", peak)?;
        prop_assert!(typed(&r, &[key]).is_ok(), "get({key}): {r:?}");
        let (r, peak) = peak_allocation(|| d.contains_key(key));
        watch("contains_key", peak)?;
        prop_assert!(r.is_ok(), "contains_key({key}): {r:?}");
    }
    let mut asked = names.clone();
    asked.push("absent");
    let (r, peak) = peak_allocation(|| d.get_many(&asked));
    watch("get_many", peak)?;
    prop_assert!(typed(&r, &names).is_ok(), "get_many: {r:?}");

    let (listed, peak) = peak_allocation(|| d.items().collect::<Vec<_>>());
    watch("items", peak)?;
    prop_assert!(listed.len() <= keys.len(), "{listed:?}");
    for r in &listed {
        prop_assert!(typed(r, &names).is_ok(), "items: {r:?}");
        if let Ok((k, _)) = r {
            prop_assert!(names.contains(&k.as_str()), "{k}");
        }
    }
    let (values, peak) = peak_allocation(|| d.values().collect::<Vec<_>>());
    watch("values", peak)?;
    for r in &values {
        prop_assert!(typed(r, &names).is_ok(), "values: {r:?}");
    }
    let listed_keys: Result<Vec<String>, Error> = d.keys().collect();
    let listed_keys = listed_keys.map_err(|e| TestCaseError::fail(format!("keys: {e:?}")))?;
    prop_assert!(listed_keys.iter().all(|k| names.contains(&k.as_str())));
    let len = d
        .len()
        .map_err(|e| TestCaseError::fail(format!("len: {e:?}")))?;
    prop_assert_eq!(len, listed_keys.len());

    for key in &names {
        let (r, peak) = peak_allocation(|| d.pop(key));
        watch("pop", peak)?;
        prop_assert!(typed(&r, &[key]).is_ok(), "pop({key}): {r:?}");
    }
    // Whatever is left, clear removes it, chunks included.
    d.clear()
        .map_err(|e| TestCaseError::fail(format!("clear: {e:?}")))?;
    prop_assert_eq!(d.len().unwrap(), 0);
    prop_assert_eq!(chunk_partition_items(raw, d.namespace()), 0);
    Ok(())
}

fn targets() -> Vec<(&'static str, Target)> {
    let make = |serializer: Serializer| -> DynamoDbDict<Sample> {
        support::builder("hostile")
            .serializer(serializer)
            .build()
            .expect("building a map for hostile data")
    };
    let mut targets = Vec::new();
    for pipe in byte_pipes() {
        let name = match (pipe.serializer.id(), pipe.stages.len()) {
            ("bincode2", _) => "bincode",
            ("json+hmac-sha256", _) => "signed json",
            ("bincode2+zstd", _) => "compressed bincode",
            ("json+zstd+hmac-sha256", _) => "compressed signed json",
            _ => continue,
        };
        targets.push((
            name,
            Target {
                dict: make(pipe.serializer.clone()),
                pipe: Some(pipe),
            },
        ));
    }
    for s in [
        Serializer::document(),
        Serializer::document().signed(SECRET, SALT),
    ] {
        let name = if s.id().contains("hmac") {
            "signed document"
        } else {
            "document"
        };
        targets.push((
            name,
            Target {
                dict: make(s),
                pipe: None,
            },
        ));
    }
    targets
}

#[test]
fn hostile_items_in_the_table_are_typed_errors_naming_the_key() {
    let raw = Raw::new();
    let mut planted_total = 0;
    for (name, target) in targets() {
        let mut runner = TestRunner::new(Config {
            cases: 12,
            max_shrink_iters: 64,
            failure_persistence: None,
            ..Config::default()
        });
        let planted = Cell::new(0);
        runner
            .run(&prop::collection::vec(hostile_item(), 1..5), |items| {
                let keys = plant(&raw, &target, &items);
                planted.set(planted.get() + keys.len());
                read_back(&raw, &target, &keys)
            })
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            planted.get() > 0,
            "{name}: DynamoDB refused every hostile item"
        );
        planted_total += planted.get();
    }
    eprintln!("hostile items planted and read back: {planted_total}");
}

// ---- signed entries -----------------------------------------------------------------------

fn raw_item(raw: &Raw, ns: &str, key: &str) -> HashMap<String, AttributeValue> {
    raw.block(
        raw.client
            .get_item()
            .table_name(support::TABLE)
            .key("pk", AttributeValue::S(partition(ns, key)))
            .key("sk", AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send(),
    )
    .expect("raw get")
    .item
    .expect("the item is there")
}

fn raw_put(raw: &Raw, item: HashMap<String, AttributeValue>) {
    raw.block(
        raw.client
            .put_item()
            .table_name(support::TABLE)
            .set_item(Some(item))
            .send(),
    )
    .expect("raw put");
}

fn moved(
    mut item: HashMap<String, AttributeValue>,
    ns: &str,
    to: &str,
) -> HashMap<String, AttributeValue> {
    item.insert("pk".into(), AttributeValue::S(partition(ns, to)));
    item.insert("sk".into(), AttributeValue::S(to.to_owned()));
    item
}

fn flip(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    bytes[at] ^= 0x20;
    bytes
}

fn bad_signature<T: std::fmt::Debug>(r: Result<T, Error>, key: &str, what: &str) {
    assert!(
        matches!(r, Err(Error::BadSignature { key: ref k }) if k == key),
        "{what}: expected BadSignature for {key:?}, got {r:?}"
    );
}

#[test]
fn tampered_signed_entries_are_bad_signatures() {
    let raw = Raw::new();
    #[allow(unused_mut)]
    let mut pipelines = vec![
        Serializer::bincode().signed(SECRET, SALT),
        Serializer::json().signed(SECRET, SALT),
        Serializer::document().signed(SECRET, SALT),
    ];
    #[cfg(feature = "compression")]
    pipelines.push(
        Serializer::bincode()
            .compressed(3)
            .unwrap()
            .signed(SECRET, SALT),
    );
    let mut checked = 0;
    for s in pipelines {
        let id = s.id().to_owned();
        let d: DynamoDbDict<Sample> = support::builder("signed").serializer(s).build().unwrap();
        let ns = d.namespace().to_owned();
        let reset = || {
            d.set("k", sample(3)).unwrap();
            raw_item(&raw, &ns, "k")
        };
        let genuine = reset();
        assert_eq!(d.get("k").unwrap(), Some(sample(3)), "{id}");
        let document = id.starts_with("document");

        // Altered payload.
        let mut item = genuine.clone();
        if document {
            let AttributeValue::M(mut map) = item["v"].clone() else {
                panic!("{id}: a map")
            };
            map.insert("n".into(), AttributeValue::N("8".into()));
            item.insert("v".into(), AttributeValue::M(map));
        } else {
            let b = item["v"].as_b().unwrap().as_ref().to_vec();
            item.insert(
                "v".into(),
                AttributeValue::B(Blob::new(flip(&b, b.len() - 1))),
            );
        }
        raw_put(&raw, item);
        bad_signature(d.get("k"), "k", &format!("{id}: altered payload"));
        bad_signature(d.pop("k"), "k", &format!("{id}: altered payload, pop"));

        // Altered signature.
        let mut item = reset();
        if document {
            let sig = item["s"].as_b().unwrap().as_ref().to_vec();
            item.insert("s".into(), AttributeValue::B(Blob::new(flip(&sig, 0))));
        } else {
            let b = item["v"].as_b().unwrap().as_ref().to_vec();
            item.insert("v".into(), AttributeValue::B(Blob::new(flip(&b, 0))));
        }
        raw_put(&raw, item);
        bad_signature(d.get("k"), "k", &format!("{id}: altered signature"));

        // Missing signature: the signature attribute removed, or the bare payload.
        let mut item = reset();
        if document {
            item.remove("s");
        } else {
            let b = item["v"].as_b().unwrap().as_ref().to_vec();
            item.insert("v".into(), AttributeValue::B(Blob::new(b[32..].to_vec())));
        }
        raw_put(&raw, item);
        bad_signature(d.get("k"), "k", &format!("{id}: missing signature"));
        let results = d.get_many(["k"]);
        bad_signature(results, "k", &format!("{id}: missing signature, get_many"));

        // Signed with another secret, or another salt (same pipeline id, so it is read).
        reset();
        for (secret, salt) in [("another-secret", SALT), (SECRET, "another-salt")] {
            let other = if document {
                Serializer::document().signed(secret, salt)
            } else {
                let base = if id.starts_with("json") {
                    Serializer::json()
                } else {
                    Serializer::bincode()
                };
                #[cfg(feature = "compression")]
                let base = if id.contains("zstd") {
                    base.compressed(3).unwrap()
                } else {
                    base
                };
                base.signed(secret, salt)
            };
            assert_eq!(other.id(), id);
            let wrong: DynamoDbDict<Sample> = d.with_namespace(&ns, other).unwrap();
            bad_signature(
                wrong.get("k"),
                "k",
                &format!("{id}: wrong key {secret}/{salt}"),
            );
            let listed: Vec<_> = wrong.items().collect();
            assert_eq!(listed.len(), 1);
            bad_signature(
                listed.into_iter().next().unwrap(),
                "k",
                &format!("{id}: wrong key, items"),
            );
        }

        // A genuine value moved to another key.
        raw_put(&raw, moved(reset(), &ns, "elsewhere"));
        bad_signature(d.get("elsewhere"), "elsewhere", &format!("{id}: moved"));
        assert_eq!(
            d.get("k").unwrap(),
            Some(sample(3)),
            "{id}: original intact"
        );

        // An unsigned value under the signed pipeline's id.
        if !document {
            let plain = if id.starts_with("json") {
                serde_json::to_vec(&sample(3)).unwrap()
            } else {
                bincode_of(&sample(3))
            };
            let mut item = reset();
            item.insert("v".into(), AttributeValue::B(Blob::new(plain)));
            raw_put(&raw, item);
            bad_signature(d.get("k"), "k", &format!("{id}: unsigned"));
        }
        d.clear().unwrap();
        checked += 1;
    }
    assert!(checked >= 3);
}

/// A large (chunked) signed value: tampering with a chunk, or moving the value (manifest and
/// chunks) to another key, is detected too.
#[test]
fn tampered_large_signed_values_are_bad_signatures() {
    let raw = Raw::new();
    let big = Sample {
        name: "x".repeat(600 * 1024),
        ..sample(4)
    };
    for s in [
        Serializer::bincode().signed(SECRET, SALT),
        Serializer::document().signed(SECRET, SALT),
    ] {
        let id = s.id().to_owned();
        let d: DynamoDbDict<Sample> = support::builder("signed-large")
            .serializer(s)
            .build()
            .unwrap();
        let ns = d.namespace().to_owned();
        d.set("big", big.clone()).unwrap();
        assert_eq!(d.get("big").unwrap().as_ref(), Some(&big));
        let manifest = raw_item(&raw, &ns, "big");
        let AttributeValue::S(generation) = &manifest["g"] else {
            panic!("{id}: a manifest")
        };
        let chunk_pk = format!("{}#c", partition(&ns, "big"));
        let chunk_sk = format!("{generation}:00001");
        let chunk = raw
            .block(
                raw.client
                    .get_item()
                    .table_name(support::TABLE)
                    .key("pk", AttributeValue::S(chunk_pk.clone()))
                    .key("sk", AttributeValue::S(chunk_sk.clone()))
                    .send(),
            )
            .unwrap()
            .item
            .expect("second chunk");
        let data = chunk["d"].as_b().unwrap().as_ref().to_vec();

        // One byte of the string in the middle of the second chunk.
        let mut altered = chunk.clone();
        altered.insert("d".into(), AttributeValue::B(Blob::new(flip(&data, 1000))));
        raw_put(&raw, altered);
        bad_signature(d.get("big"), "big", &format!("{id}: altered chunk"));
        raw_put(&raw, chunk.clone());
        assert_eq!(d.get("big").unwrap().as_ref(), Some(&big), "{id}: restored");

        // The manifest and its chunks copied under another key.
        raw_put(&raw, moved(manifest.clone(), &ns, "copy"));
        let copy_pk = format!("{}#c", partition(&ns, "copy"));
        let n: usize = manifest["n"].as_n().unwrap().parse().unwrap();
        for i in 0..n {
            let sk = format!("{generation}:{i:05}");
            let mut c = raw
                .block(
                    raw.client
                        .get_item()
                        .table_name(support::TABLE)
                        .key("pk", AttributeValue::S(chunk_pk.clone()))
                        .key("sk", AttributeValue::S(sk))
                        .send(),
                )
                .unwrap()
                .item
                .unwrap();
            c.insert("pk".into(), AttributeValue::S(copy_pk.clone()));
            raw_put(&raw, c);
        }
        bad_signature(d.get("copy"), "copy", &format!("{id}: moved large value"));
        d.clear().unwrap();
    }
}

// ---- the layout metadata item -------------------------------------------------------------

#[test]
fn a_corrupt_layout_metadata_item_is_refused_on_open() {
    let table = unique("hostile-meta");
    let open = || DynamoDbDict::<u8>::builder(&table).local().build();
    open().expect("creating the table");
    let raw = Raw::new();
    let meta = |attrs: Vec<(&str, AttributeValue)>| {
        let mut item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("#meta".into())),
            ("sk".to_owned(), AttributeValue::S("layout".into())),
        ]);
        for (k, v) in attrs {
            item.insert(k.to_owned(), v);
        }
        raw.block(
            raw.client
                .put_item()
                .table_name(&table)
                .set_item(Some(item))
                .send(),
        )
        .expect("raw put of the metadata item");
    };
    let n = |s: &str| AttributeValue::N(s.to_owned());
    let text = |s: &str| AttributeValue::S(s.to_owned());
    let corruptions: Vec<(&str, Vec<(&str, AttributeValue)>)> = vec![
        (
            "shards as text",
            vec![("version", n("1")), ("shards", text("abc"))],
        ),
        (
            "shards as text number",
            vec![("version", n("1")), ("shards", text("8"))],
        ),
        ("version 9", vec![("version", n("9")), ("shards", n("8"))]),
        (
            "version as text",
            vec![("version", text("1")), ("shards", n("8"))],
        ),
        (
            "version 1.5",
            vec![("version", n("1.5")), ("shards", n("8"))],
        ),
        (
            "version negative",
            vec![("version", n("-1")), ("shards", n("8"))],
        ),
        ("no version", vec![("shards", n("8"))]),
        ("no shards", vec![("version", n("1"))]),
        ("nothing", vec![]),
        ("shards 0", vec![("version", n("1")), ("shards", n("0"))]),
        ("shards 4", vec![("version", n("1")), ("shards", n("4"))]),
        (
            "shards negative",
            vec![("version", n("1")), ("shards", n("-8"))],
        ),
        (
            "shards fractional",
            vec![("version", n("1")), ("shards", n("8.5"))],
        ),
        (
            "shards huge",
            vec![
                ("version", n("1")),
                ("shards", n("99999999999999999999999999")),
            ],
        ),
        (
            "shards as a list",
            vec![
                ("version", n("1")),
                ("shards", AttributeValue::L(vec![n("8")])),
            ],
        ),
        (
            "version as a map",
            vec![
                (
                    "version",
                    AttributeValue::M(HashMap::from([("v".into(), n("1"))])),
                ),
                ("shards", n("8")),
            ],
        ),
        (
            "binary shards",
            vec![
                ("version", n("1")),
                ("shards", AttributeValue::B(Blob::new(vec![8u8]))),
            ],
        ),
    ];
    for (what, attrs) in corruptions {
        meta(attrs);
        match open() {
            Err(Error::LayoutMismatch { table: t, detail }) => {
                assert_eq!(t, table, "{what}");
                assert!(!detail.is_empty(), "{what}");
            }
            other => panic!("{what}: expected LayoutMismatch, got {other:?}"),
        }
    }
    // Extra attributes are fine, and the right values open again.
    meta(vec![
        ("version", n("1")),
        ("shards", n("8")),
        ("note", text("extra")),
    ]);
    let d = open().expect("a sound metadata item opens");
    d.set("k", 1).unwrap();
}

/// Like [`tampered_large_signed_values_are_bad_signatures`], but the altered byte is part of the
/// structure of a chunked signed document (a length field of its canonical encoding) rather than
/// of a string: the signature covers those bytes too, so the answer must still be BadSignature,
/// not a parse error (the signature is checked over the reassembled bytes before parsing).
#[test]
fn tampered_structure_of_a_large_signed_document_is_a_bad_signature() {
    let raw = Raw::new();
    let big = Sample {
        name: "x".repeat(600 * 1024),
        ..sample(5)
    };
    let d: DynamoDbDict<Sample> = support::builder("signed-large-doc")
        .serializer(Serializer::document().signed(SECRET, SALT))
        .build()
        .unwrap();
    let ns = d.namespace().to_owned();
    d.set("big", big).unwrap();
    let manifest = raw_item(&raw, &ns, "big");
    let AttributeValue::S(generation) = &manifest["g"] else {
        panic!("a manifest")
    };
    let first = raw
        .block(
            raw.client
                .get_item()
                .table_name(support::TABLE)
                .key(
                    "pk",
                    AttributeValue::S(format!("{}#c", partition(&ns, "big"))),
                )
                .key("sk", AttributeValue::S(format!("{generation}:00000")))
                .send(),
        )
        .unwrap()
        .item
        .expect("first chunk");
    let data = first["d"].as_b().unwrap().as_ref().to_vec();
    for at in [0, 3, 8] {
        let mut altered = first.clone();
        altered.insert("d".into(), AttributeValue::B(Blob::new(flip(&data, at))));
        raw_put(&raw, altered);
        bad_signature(
            d.get("big"),
            "big",
            &format!("byte {at} of the first chunk"),
        );
    }
    d.clear().unwrap();
}
