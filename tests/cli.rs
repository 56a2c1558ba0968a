//! The `dynamodict` command-line tool, end to end: the binary run as a process against one
//! DynamoDB Local per test binary (`DynamoDbLocal::shared`), its endpoint passed with
//! `--endpoint`. Data is seeded, and read back, through the library; raw items are compared
//! through the SDK.
//!
//! `cargo test --all-features --test cli`

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use assert_cmd::cargo::cargo_bin_cmd;
use base64::Engine as _;
use dynamodict::aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use dynamodict::aws_sdk_dynamodb::primitives::Blob;
use dynamodict::aws_sdk_dynamodb::types::AttributeValue;
use dynamodict::aws_sdk_dynamodb::{Client, Config};
use dynamodict::cache::{CachedRequest, CachedResponse, DynamoDbCache};
use dynamodict::layout::{namespace_marker_keys, namespace_partitions, shard_of};
use dynamodict::local::DynamoDbLocal;
use dynamodict::{DynamoDbDict, Encoded, Serializer};
use serde_bytes::ByteBuf;
use serde_json::{Value, json};

const SECRET: &str = "a long random test secret";
const SALT: &str = "cli-tests";

type Item = std::collections::HashMap<String, AttributeValue>;

fn endpoint() -> &'static str {
    DynamoDbLocal::shared()
        .expect("DynamoDB Local (see the README: Java and npm)")
        .endpoint()
}

/// A table name of this run (DynamoDB Local may be shared through DYNAMODICT_ENDPOINT).
fn table(name: &str) -> String {
    format!("cli-{name}-{:08x}", fastrand::u32(..))
}

/// The tool, pointed at the test server.
fn cli() -> assert_cmd::Command {
    let mut command = cargo_bin_cmd!("dynamodict");
    command
        .env_remove("DYNAMODICT_ENDPOINT")
        .env_remove("DYNAMODICT_SECRET_KEY")
        .env_remove("AWS_PROFILE")
        .arg("--endpoint")
        .arg(endpoint());
    command
}

/// What a run printed.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    finish(cli().args(args))
}

fn finish(command: &mut assert_cmd::Command) -> Run {
    let output = command.output().expect("the tool runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
    }
}

/// Runs a command that must succeed quietly (no progress bar outside a terminal).
fn ok(args: &[&str]) -> String {
    let r = run(args);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (0, ""),
        "{args:?}: {}",
        r.stdout
    );
    r.stdout
}

/// Runs a command that must fail: exit code `code`, nothing on stdout, one line on stderr.
fn fails(args: &[&str], code: i32) -> String {
    check_failure(run(args), code, &format!("{args:?}"))
}

fn check_failure(r: Run, code: i32, what: &str) -> String {
    assert_eq!(r.code, code, "{what}: {}", r.stderr);
    assert_eq!(r.stdout, "", "{what}: nothing on stdout");
    assert_eq!(
        r.stderr.lines().count(),
        1,
        "{what}: one line: {:?}",
        r.stderr
    );
    assert!(r.stderr.starts_with("dynamodict: "), "{what}: {}", r.stderr);
    r.stderr
}

fn builder<V>(table: &str, namespace: &str) -> dynamodict::DictBuilder<V> {
    DynamoDbDict::builder(table)
        .endpoint_url(endpoint())
        .namespace(namespace)
}

/// The values seeded in one namespace, and maps to read them back.
struct Seeded {
    strings: DynamoDbDict<String>,
    profiles: DynamoDbDict<Value>,
    counters: DynamoDbDict<u64>,
    signed: DynamoDbDict<Value>,
    blobs: DynamoDbDict<ByteBuf>,
    large: Vec<u8>,
}

fn profile() -> Value {
    json!({ "name": "Ada", "languages": ["en", "fr"], "born": 1815 })
}

fn signed_document() -> Value {
    json!({ "title": "signed", "n": 7, "nested": { "ok": true } })
}

/// Seeds `namespace`: JSON strings (one with a TTL, one expired), a JSON object, a bincode
/// number, a signed document and a large (1 MiB, chunked) bincode value.
///
/// The table is created without DynamoDB's TTL enabled (`manage_ttl(false)`), so that DynamoDB
/// Local, which runs TTL deletions, keeps the expired value: reads hide it all the same.
fn seed_in(table: &str, namespace: &str) -> Seeded {
    let strings: DynamoDbDict<String> = builder(table, namespace)
        .serializer(Serializer::json())
        .manage_ttl(false)
        .build()
        .expect("open");
    let profiles = strings
        .with_namespace(namespace, Serializer::json())
        .unwrap();
    let counters = strings
        .with_namespace(namespace, Serializer::bincode())
        .unwrap();
    let signed = strings
        .with_namespace(namespace, Serializer::document().signed(SECRET, SALT))
        .unwrap();
    let blobs = strings
        .with_namespace(namespace, Serializer::bincode())
        .unwrap();
    strings.set("greeting", "hello".to_owned()).unwrap();
    strings
        .insert_with_ttl(
            "with-ttl",
            "for an hour".to_owned(),
            Duration::from_secs(3600),
        )
        .unwrap();
    strings
        .insert_with_ttl("expired", "gone".to_owned(), Duration::ZERO)
        .unwrap();
    profiles.set("profile", profile()).unwrap();
    counters.set("counter", 42).unwrap();
    signed.set("signed", signed_document()).unwrap();
    let large: Vec<u8> = std::iter::repeat_with(|| fastrand::u8(..))
        .take(1024 * 1024)
        .collect();
    blobs.set("large", ByteBuf::from(large.clone())).unwrap();
    Seeded {
        strings,
        profiles,
        counters,
        signed,
        blobs,
        large,
    }
}

fn seed(table: &str) -> Seeded {
    seed_in(table, "data")
}

/// The live keys `seed` writes, sorted.
const LIVE_KEYS: [&str; 6] = [
    "counter", "greeting", "large", "profile", "signed", "with-ttl",
];

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Runtime::new().expect("a runtime"))
}

fn sdk() -> Client {
    let config = Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .build();
    Client::from_conf(config)
}

/// Every raw item of a namespace (its partitions and its markers), by primary key.
fn raw_items(table: &str, namespace: &str) -> BTreeMap<(String, String), Item> {
    let client = sdk();
    runtime().block_on(async {
        let mut items = BTreeMap::new();
        let mut add = |item: Item| {
            let part = |name: &str| item[name].as_s().unwrap().clone();
            items.insert((part("pk"), part("sk")), item);
        };
        for pk in namespace_partitions(namespace, 8) {
            let mut pages = client
                .query()
                .table_name(table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", AttributeValue::S(pk))
                .consistent_read(true)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                page.unwrap()
                    .items
                    .unwrap_or_default()
                    .into_iter()
                    .for_each(&mut add);
            }
        }
        for key in namespace_marker_keys(namespace) {
            let out = client
                .get_item()
                .table_name(table)
                .set_key(Some(key))
                .consistent_read(true)
                .send()
                .await
                .unwrap();
            out.item.into_iter().for_each(&mut add);
        }
        items
    })
}

fn entries(items: &BTreeMap<(String, String), Item>) -> usize {
    items
        .keys()
        .filter(|(pk, _)| !pk.starts_with('#') && !pk.ends_with("#c") && !pk.ends_with("#g"))
        .count()
}

fn bincode_bytes<V: serde::Serialize>(key: &str, value: &V) -> Vec<u8> {
    match Serializer::bincode().dumps(key, value).unwrap() {
        Encoded::Bytes(bytes) => bytes,
        other => panic!("bincode gives bytes, not {other:?}"),
    }
}

/// The size line and the base64 line `get` prints for a binary value.
fn binary_output(stdout: &str) -> (String, Vec<u8>) {
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout:.200}");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(lines[1])
        .expect("base64");
    (lines[0].to_owned(), bytes)
}

/// A temporary file, removed when dropped (also when a test fails).
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        TempFile(std::env::temp_dir().join(format!(
            "dynamodict-cli-test-{}-{name}-{:08x}",
            std::process::id(),
            fastrand::u32(..)
        )))
    }

    fn arg(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temporary path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn tables_and_namespaces() {
    let t = table("namespaces");
    seed(&t);
    let cache = DynamoDbCache::builder(t.as_str())
        .namespace("web")
        .endpoint_url(endpoint())
        .build()
        .unwrap();
    let mut response = CachedResponse::new(
        CachedRequest::new("GET", "https://example.com/new"),
        200,
        b"page".to_vec(),
    );
    response.history = vec![CachedResponse::new(
        CachedRequest::new("GET", "https://example.com/old"),
        301,
        Vec::new(),
    )];
    cache.save_response(&response, None, None).unwrap();

    let tables = ok(&["tables"]);
    assert!(tables.lines().any(|line| line == t), "{tables}");
    assert_eq!(
        ok(&["namespaces", &t]),
        "data\nweb.redirects\nweb.responses\n",
        "chunks, records and metadata are not namespaces of their own"
    );
}

#[test]
fn namespaces_help_states_the_cost() {
    let help = ok(&["namespaces", "--help"]);
    assert!(
        help.contains("Scan") && help.contains("WHOLE table") && help.contains("`pk` only"),
        "{help}"
    );
}

#[test]
fn count_keys_and_get() {
    let t = table("get");
    let seeded = seed(&t);
    assert_eq!(ok(&["count", &t, "--namespace", "data"]), "6\n");
    assert_eq!(ok(&["count", &t]), "0\n", "the default namespace is empty");
    assert_eq!(
        ok(&["keys", &t, "--namespace", "data"]),
        format!("{}\n", LIVE_KEYS.join("\n")),
        "sorted, without the expired value"
    );

    // JSON, and documents (signed ones too), pretty-printed.
    let greeting = ok(&["get", &t, "greeting", "-n", "data"]);
    assert_eq!(greeting, "\"hello\"\n");
    let printed = ok(&["get", &t, "profile", "-n", "data"]);
    assert!(printed.lines().count() > 3, "pretty: {printed}");
    assert_eq!(serde_json::from_str::<Value>(&printed).unwrap(), profile());
    let printed = ok(&["get", &t, "signed", "-n", "data"]);
    assert_eq!(
        serde_json::from_str::<Value>(&printed).unwrap(),
        signed_document()
    );

    // Binary: size and base64 of the stored bytes.
    let (size, bytes) = binary_output(&ok(&["get", &t, "counter", "-n", "data"]));
    assert_eq!(size, "binary value: 1 bytes, serializer \"bincode2\"");
    assert_eq!(bytes, bincode_bytes("counter", &42u64));

    // A large value, joined from its chunks.
    let (size, bytes) = binary_output(&ok(&["get", &t, "large", "-n", "data"]));
    let expected = bincode_bytes("large", &ByteBuf::from(seeded.large.clone()));
    assert_eq!(
        size,
        format!(
            "binary value: {} bytes, serializer \"bincode2\", stored in 3 chunks",
            expected.len()
        )
    );
    assert!(bytes == expected, "the large value's bytes differ");

    // Missing and expired keys: exit code 3 and "not found".
    for key in ["missing", "expired"] {
        let err = fails(&["get", &t, key, "-n", "data"], 3);
        assert!(err.contains("not found") && err.contains(key), "{err}");
    }
    drop(seeded);
}

#[test]
fn rm_and_clear() {
    let t = table("rm");
    let seeded = seed(&t);
    let r = run(&["rm", &t, "greeting", "nothing-here", "large", "-n", "data"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "removed 2 of 3 keys\n");
    assert_eq!(r.stderr, "not found: \"nothing-here\"\n");
    assert_eq!(seeded.strings.get("greeting").unwrap(), None);
    assert_eq!(seeded.blobs.get("large").unwrap(), None);
    assert_eq!(ok(&["count", &t, "-n", "data"]), "4\n");

    // Without --yes and without a terminal to ask on: refused, nothing deleted.
    let refused = check_failure(
        finish(cli().args(["clear", &t, "-n", "data"]).write_stdin("y\n")),
        1,
        "clear without --yes",
    );
    assert!(refused.contains("--yes"), "{refused}");
    assert_eq!(seeded.counters.len().unwrap(), 4);

    // Other namespaces are untouched.
    let other = seeded
        .strings
        .with_namespace::<String>("other", Serializer::json())
        .unwrap();
    other.set("stays", "here".into()).unwrap();
    assert_eq!(
        ok(&["clear", &t, "-n", "data", "--yes"]),
        format!("cleared namespace \"data\" of table \"{t}\"\n")
    );
    assert_eq!(ok(&["count", &t, "-n", "data"]), "0\n");
    assert_eq!(other.get("stays").unwrap().as_deref(), Some("here"));
}

#[test]
fn sweep_reclaims_unreferenced_large_values() {
    let t = table("sweep");
    let seeded = seed(&t);
    assert_eq!(
        ok(&["sweep", &t, "-n", "data"]),
        "reclaimed 0 large values: 0 items, 0 bytes\n",
        "the seeded large value is referenced (and younger than the grace period)"
    );
    // An unreferenced generation from long ago (its id starts with its creation time): a
    // record and one chunk of 3 bytes, as a crashed writer leaves them.
    let shard = shard_of("orphan", 8);
    let generation = format!("t{:010x}{:016x}", 1_000_000_000u64, 7u64);
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let n = |v: u64| AttributeValue::N(v.to_string());
    let record = Item::from([
        ("pk".into(), s(&format!("data#{shard:x}#g"))),
        ("sk".into(), s(&generation)),
        ("k".into(), s("orphan")),
        ("n".into(), n(1)),
        ("z".into(), n(3)),
    ]);
    let chunk = Item::from([
        ("pk".into(), s(&format!("data#{shard:x}#c"))),
        ("sk".into(), s(&format!("{generation}:00000"))),
        ("d".into(), AttributeValue::B(Blob::new(vec![1, 2, 3]))),
    ]);
    let client = sdk();
    runtime().block_on(async {
        for item in [record, chunk] {
            client
                .put_item()
                .table_name(&t)
                .set_item(Some(item))
                .send()
                .await
                .unwrap();
        }
    });
    assert_eq!(
        ok(&["sweep", &t, "-n", "data"]),
        "reclaimed 1 large value: 2 items, 3 bytes\n"
    );
    assert_eq!(
        seeded.blobs.get("large").unwrap().map(ByteBuf::into_vec),
        Some(seeded.large.clone())
    );
}

#[test]
fn cache_urls_stats_and_purge_expired() {
    let t = table("cache");
    let cache = DynamoDbCache::builder(t.as_str())
        .namespace("web")
        .endpoint_url(endpoint())
        // Expired responses stay stored (for revalidation) for an hour.
        .ttl_grace(Duration::from_secs(3600))
        .build()
        .unwrap();
    let response =
        |url: &str| CachedResponse::new(CachedRequest::new("GET", url), 200, b"body".to_vec());
    let mut fresh = response("https://example.com/fresh");
    fresh.history = vec![CachedResponse::new(
        CachedRequest::new("GET", "https://example.com/moved"),
        301,
        Vec::new(),
    )];
    cache.save_response(&fresh, None, None).unwrap();
    let a_minute_ago = SystemTime::now() - Duration::from_secs(60);
    cache
        .save_response(
            &response("https://example.com/old"),
            None,
            Some(a_minute_ago),
        )
        .unwrap();

    assert_eq!(
        ok(&["cache", "urls", &t, "--namespace", "web"]),
        "https://example.com/fresh\nhttps://example.com/old\n"
    );
    let stats = |args: &[&str]| ok(&[&["cache", "stats", &t][..], args].concat());
    assert_eq!(
        stats(&["-n", "web"]),
        "responses: 2\n  fresh: 1\n  expired: 1\n  undecodable: 0\nredirects: 1\n"
    );
    assert_eq!(
        ok(&["cache", "purge-expired", &t, "-n", "web"]),
        "removed 1 expired response\n"
    );
    assert_eq!(
        stats(&["-n", "web"]),
        "responses: 1\n  fresh: 1\n  expired: 0\n  undecodable: 0\nredirects: 1\n"
    );
    assert!(cache.contains_request(&fresh.request).unwrap());

    // A signed cache: undecodable without its secret key, readable with it.
    let signed = DynamoDbCache::builder(t.as_str())
        .namespace("safe")
        .endpoint_url(endpoint())
        .secret_key("cache secret")
        .build()
        .unwrap();
    signed
        .save_response(&response("https://example.com/signed"), None, None)
        .unwrap();
    assert_eq!(
        stats(&["-n", "safe"]),
        "responses: 1\n  fresh: 0\n  expired: 0\n  undecodable: 1\nredirects: 0\n"
    );
    let with_key = finish(
        cli()
            .args(["cache", "stats", &t, "-n", "safe"])
            .env("DYNAMODICT_SECRET_KEY", "cache secret"),
    );
    assert_eq!(
        (with_key.code, with_key.stdout.as_str()),
        (
            0,
            "responses: 1\n  fresh: 1\n  expired: 0\n  undecodable: 0\nredirects: 0\n"
        ),
        "{}",
        with_key.stderr
    );
    // purge-expired never deletes what it cannot decode.
    ok(&["cache", "purge-expired", &t, "-n", "safe"]);
    assert_eq!(signed.response_count(Default::default()).unwrap(), 1);
}

/// Reads every seeded value back through the library.
fn check_values(seeded: &Seeded) {
    assert_eq!(
        seeded.strings.get("greeting").unwrap().as_deref(),
        Some("hello")
    );
    assert_eq!(
        seeded.strings.get("with-ttl").unwrap().as_deref(),
        Some("for an hour")
    );
    assert_eq!(seeded.strings.get("expired").unwrap(), None);
    assert_eq!(seeded.profiles.get("profile").unwrap(), Some(profile()));
    assert_eq!(seeded.counters.get("counter").unwrap(), Some(42));
    assert_eq!(
        seeded.signed.get("signed").unwrap(),
        Some(signed_document()),
        "the signature still verifies"
    );
    let large = seeded.blobs.get("large").unwrap().map(ByteBuf::into_vec);
    assert!(
        large.as_ref() == Some(&seeded.large),
        "the large value differs"
    );
    assert_eq!(seeded.strings.len().unwrap(), 6);
}

#[test]
fn export_clear_import_is_exact() {
    let t = table("export");
    let seeded = seed(&t);
    let before = raw_items(&t, "data");
    assert!(before.len() > 10, "entries, a marker, a record and chunks");
    assert!(before.keys().any(|(pk, _)| pk.ends_with("#c")));
    assert!(
        before.keys().any(|(_, sk)| sk == "expired"),
        "expired, still stored"
    );

    let file = TempFile::new("export.jsonl");
    let file_arg = file.arg();
    let printed = ok(&["export", &t, "-n", "data", "-o", file_arg]);
    assert_eq!(
        printed,
        format!(
            "exported {} items of namespace \"data\" of table \"{t}\" to {file_arg}\n",
            before.len()
        )
    );
    let exported = std::fs::read_to_string(&file.0).unwrap();
    assert_eq!(
        exported.lines().count(),
        before.len() + 1,
        "a header and one line per item"
    );
    assert_eq!(
        ok(&["export", &t, "-n", "data"]),
        exported,
        "stdout gets the same export"
    );

    ok(&["clear", &t, "-n", "data", "--yes"]);
    assert_eq!(entries(&raw_items(&t, "data")), 0);
    assert_eq!(seeded.strings.get("greeting").unwrap(), None);

    assert_eq!(
        ok(&["import", &t, "-i", file_arg]),
        format!(
            "imported {} items into namespace \"data\" of table \"{t}\"\n",
            before.len()
        )
    );
    let after = raw_items(&t, "data");
    assert_eq!(after.len(), before.len());
    for (key, item) in &before {
        assert!(
            after.get(key) == Some(item),
            "item {key:?} differs after the round trip"
        );
    }
    check_values(&seeded);
    // The expired value is absent from reads, and back in the table all the same.
    assert!(after.keys().any(|(_, sk)| sk == "expired"));
}

#[test]
fn import_into_another_namespace_from_stdin() {
    let t = table("copy");
    let original = seed(&t);
    let export = ok(&["export", &t, "-n", "data"]);
    let target = table("copy-target");
    let r = finish(
        cli()
            .args(["import", &target, "--namespace", "copy"])
            .write_stdin(export.clone()),
    );
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    let source = raw_items(&t, "data");
    assert_eq!(
        r.stdout,
        format!(
            "imported {} items into namespace \"copy\" of table \"{target}\"\n",
            source.len()
        ),
        "the table was created"
    );
    // Same items, moved: partition keys renamed, everything else as it was. (The table was
    // created by the import, with DynamoDB's TTL on: DynamoDB Local may have deleted the
    // expired value meanwhile.)
    let copied = raw_items(&target, "copy");
    let expired = |sk: &str| sk == "expired";
    assert!(copied.len() + 1 >= source.len() && copied.len() <= source.len());
    for ((pk, sk), item) in &source {
        let (moved_pk, moved_sk) = if pk == "#meta" {
            (pk.clone(), sk.replacen("data", "copy", 1))
        } else {
            (pk.replacen("data", "copy", 1), sk.clone())
        };
        let Some(copy) = copied.get(&(moved_pk.clone(), moved_sk.clone())) else {
            assert!(expired(sk), "{moved_pk} {moved_sk} was not imported");
            continue;
        };
        let without_key = |i: &Item| {
            let mut i = i.clone();
            i.remove("pk");
            i.remove("sk");
            i
        };
        assert!(
            without_key(copy) == without_key(item),
            "{moved_pk} {moved_sk}"
        );
    }
    let copy = seed_maps(&target, "copy");
    check_values(&Seeded {
        large: original.large.clone(),
        ..copy
    });
}

/// Maps over `namespace` with the serializers `seed_in` uses, without writing anything.
fn seed_maps(table: &str, namespace: &str) -> Seeded {
    let strings: DynamoDbDict<String> = builder(table, namespace)
        .serializer(Serializer::json())
        .build()
        .unwrap();
    Seeded {
        profiles: strings
            .with_namespace(namespace, Serializer::json())
            .unwrap(),
        counters: strings
            .with_namespace(namespace, Serializer::bincode())
            .unwrap(),
        signed: strings
            .with_namespace(namespace, Serializer::document().signed(SECRET, SALT))
            .unwrap(),
        blobs: strings
            .with_namespace(namespace, Serializer::bincode())
            .unwrap(),
        large: Vec::new(),
        strings,
    }
}

#[test]
fn unknown_table_fails_with_one_line() {
    for args in [
        &["count", "no-such-table"][..],
        &["get", "no-such-table", "k"],
        &["keys", "no-such-table"],
        &["namespaces", "no-such-table"],
        &["export", "no-such-table"],
        &["cache", "urls", "no-such-table"],
    ] {
        let err = fails(args, 1);
        assert_eq!(
            err, "dynamodict: table \"no-such-table\" does not exist\n",
            "{args:?}"
        );
    }
    let err = fails(&["count", "x"], 1);
    assert!(err.contains("invalid table name"), "{err}");
    let err = fails(&["count", "no-such-table", "-n", "a#b"], 1);
    assert!(err.contains("invalid namespace"), "{err}");
}

#[test]
fn malformed_import_names_the_line_and_writes_nothing() {
    let t = table("malformed");
    seed(&t);
    let export = ok(&["export", &t, "-n", "data"]);
    let mut lines: Vec<&str> = export.lines().collect();
    assert!(lines.len() > 5);

    // A malformed line 4: nothing is written, not even lines 2 and 3.
    lines.insert(3, r#"{"pk": {"S": 1}, "sk": {"S": "k"}}"#);
    let file = TempFile::new("malformed.jsonl");
    std::fs::write(&file.0, lines.join("\n")).unwrap();
    let err = fails(&["import", &t, "-n", "target", "-i", file.arg()], 1);
    assert!(
        err.contains("line 4") && err.contains("expected a string"),
        "{err}"
    );
    assert!(raw_items(&t, "target").is_empty(), "nothing half-imported");

    // An item of another namespace.
    lines[3] = r#"{"pk": {"S": "other#0"}, "sk": {"S": "k"}}"#;
    std::fs::write(&file.0, lines.join("\n")).unwrap();
    let err = fails(&["import", &t, "-i", file.arg()], 1);
    assert!(
        err.contains("line 4") && err.contains("not in namespace"),
        "{err}"
    );

    // Not an export at all: the header is checked.
    let r = finish(
        cli()
            .args(["import", &t, "-n", "target"])
            .write_stdin("{\"pk\": {\"S\": \"target#0\"}}\n"),
    );
    let err = check_failure(r, 1, "import without a header");
    assert!(
        err.contains("line 1") && err.contains("not a dynamodict export"),
        "{err}"
    );
    assert!(raw_items(&t, "target").is_empty());
}
