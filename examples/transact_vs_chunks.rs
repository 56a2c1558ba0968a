//! The measurement behind the large-value protocol's design (README, "Why not
//! `TransactWriteItems`?"): writing a large value to DynamoDB Local as
//!   A) the crate's protocol: generation record `PutItem`, chunks by `BatchWriteItem`, manifest
//!      `PutItem` (`ALL_OLD`);
//!   B) one `TransactWriteItems` (one `Put` per chunk, plus the manifest).
//! It reports requests, latency, and write capacity (reported by the server and by AWS's rules).
//!
//! ```sh
//! cargo run --release --example transact_vs_chunks [-- [ITERATIONS=30] [WARMUP=2]]
//! cargo run --release --example transact_vs_chunks -- probe     # largest value B takes
//! cargo run --release --example transact_vs_chunks -- ccdebug   # reported capacity
//! ```
//! An embedded DynamoDB Local is started, unless `DYNAMODICT_ENDPOINT` names one.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConsumedCapacity, DeleteRequest,
    KeySchemaElement, KeyType, Put, PutRequest, ReturnConsumedCapacity, ReturnValue,
    ScalarAttributeType, TransactWriteItem, WriteRequest,
};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const TABLE: &str = "txbench";
const CHUNK: usize = 350 * 1024; // 358_400 bytes
const NS: &str = "ns#0";
const KEY: &str = "key";

type Item = HashMap<String, AttributeValue>;

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}
fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Per-write accounting.
#[derive(Default, Debug, Clone)]
struct Stat {
    requests: u32,
    /// Sum of ConsumedCapacity.capacity_units over all responses that reported one.
    wcu_reported: f64,
    /// Number of responses that carried a ConsumedCapacity entry with capacity_units.
    responses_with_cc: u32,
    /// Theoretical WCU by AWS pricing rules.
    wcu_theory: u64,
    /// Sum of DynamoDB item sizes written (bytes, AWS size rules).
    item_bytes: u64,
}

impl Stat {
    fn add_cc(&mut self, cc: &[ConsumedCapacity]) {
        for c in cc {
            if let Some(u) = c.capacity_units() {
                self.wcu_reported += u;
                self.responses_with_cc += 1;
            }
        }
    }
}

/// DynamoDB item size per AWS rules: attribute name bytes + value bytes.
/// S: UTF-8 length; B: raw length; N: ceil(significant digits / 2) + 1.
fn item_size(item: &Item) -> u64 {
    item.iter()
        .map(|(k, v)| {
            let vs = match v {
                AttributeValue::S(x) => x.len(),
                AttributeValue::B(b) => b.as_ref().len(),
                AttributeValue::N(x) => {
                    let d = x.trim_start_matches('-').replace('.', "");
                    let d = d.trim_start_matches('0').trim_end_matches('0');
                    d.len().max(1).div_ceil(2) + 1
                }
                _ => unimplemented!(),
            };
            (k.len() + vs) as u64
        })
        .sum()
}

fn wcu_std(size: u64) -> u64 {
    size.div_ceil(1024).max(1)
}

fn chunk_items(generation: &str, value: &[u8]) -> Vec<Item> {
    value
        .chunks(CHUNK)
        .enumerate()
        .map(|(i, c)| {
            HashMap::from([
                ("pk".to_string(), s(&format!("{NS}#c"))),
                ("sk".to_string(), s(&format!("{generation}:{i:05}"))),
                ("d".to_string(), AttributeValue::B(Blob::new(c.to_vec()))),
            ])
        })
        .collect()
}

fn manifest_item(generation: &str, count: usize, len: usize) -> Item {
    HashMap::from([
        ("pk".to_string(), s(NS)),
        ("sk".to_string(), s(KEY)),
        ("f".to_string(), s("bincode")),
        ("g".to_string(), s(generation)),
        ("n".to_string(), n(count as u64)),
        ("z".to_string(), n(len as u64)),
    ])
}

fn gen_record(generation: &str, count: usize, len: usize) -> Item {
    HashMap::from([
        ("pk".to_string(), s(&format!("{NS}#g"))),
        ("sk".to_string(), s(generation)),
        ("k".to_string(), s(KEY)),
        ("n".to_string(), n(count as u64)),
        ("z".to_string(), n(len as u64)),
    ])
}

/// Protocol A: BatchWriteItem(chunks, <=25 per request, retry UnprocessedItems),
/// PutItem(generation record), PutItem(manifest, ALL_OLD).
async fn write_a(c: &Client, generation: &str, value: &[u8]) -> Result<Stat, String> {
    let mut st = Stat::default();
    let chunks = chunk_items(generation, value);
    let count = chunks.len();
    for it in &chunks {
        let sz = item_size(it);
        st.item_bytes += sz;
        st.wcu_theory += wcu_std(sz);
    }
    let reqs: Vec<WriteRequest> = chunks
        .into_iter()
        .map(|it| {
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(it)).build().unwrap())
                .build()
        })
        .collect();
    for group in reqs.chunks(25) {
        let mut pending: HashMap<String, Vec<WriteRequest>> =
            HashMap::from([(TABLE.to_string(), group.to_vec())]);
        while !pending.is_empty() {
            st.requests += 1;
            let out = c
                .batch_write_item()
                .set_request_items(Some(pending))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| format!("BatchWriteItem: {}", DisplayErrorContext(&e)))?;
            st.add_cc(out.consumed_capacity());
            pending = out.unprocessed_items.unwrap_or_default();
            pending.retain(|_, v| !v.is_empty());
            if !pending.is_empty() {
                eprintln!("  (unprocessed items: retrying)");
            }
        }
    }
    put_counted(
        c,
        &mut st,
        gen_record(generation, count, value.len()),
        false,
        "generation",
    )
    .await?;
    // Replacing PutItem is charged on max(old, new); old manifest is the same size.
    put_counted(
        c,
        &mut st,
        manifest_item(generation, count, value.len()),
        true,
        "manifest",
    )
    .await?;
    Ok(st)
}

/// Protocol B: one TransactWriteItems with a Put per chunk + the manifest Put.
/// One `PutItem` of `item`, counted in `st` (theoretical and reported capacity).
async fn put_counted(
    c: &Client,
    st: &mut Stat,
    item: Item,
    return_old: bool,
    what: &str,
) -> Result<(), String> {
    let sz = item_size(&item);
    st.item_bytes += sz;
    st.wcu_theory += wcu_std(sz);
    st.requests += 1;
    let request = c
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item))
        .return_consumed_capacity(ReturnConsumedCapacity::Total);
    let request = if return_old {
        request.return_values(ReturnValue::AllOld)
    } else {
        request
    };
    let out = request
        .send()
        .await
        .map_err(|e| format!("PutItem {what}: {}", DisplayErrorContext(&e)))?;
    if let Some(cc) = out.consumed_capacity() {
        st.add_cc(std::slice::from_ref(cc));
    }
    Ok(())
}

async fn write_b(c: &Client, generation: &str, value: &[u8]) -> Result<Stat, String> {
    let mut st = Stat::default();
    let chunks = chunk_items(generation, value);
    let count = chunks.len();
    let mut items = chunks;
    items.push(manifest_item(generation, count, value.len()));
    let mut actions = Vec::with_capacity(items.len());
    for it in items {
        let sz = item_size(&it);
        st.item_bytes += sz;
        st.wcu_theory += 2 * wcu_std(sz);
        actions.push(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(TABLE)
                        .set_item(Some(it))
                        .build()
                        .unwrap(),
                )
                .build(),
        );
    }
    st.requests += 1;
    let out = c
        .transact_write_items()
        .set_transact_items(Some(actions))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .map_err(|e| format!("TransactWriteItems: {}", DisplayErrorContext(&e)))?;
    st.add_cc(out.consumed_capacity());
    Ok(st)
}

/// Untimed, uncounted cleanup of a previous generation's chunks and generation record
/// (keeps the in-memory table at a steady size across iterations).
async fn cleanup(c: &Client, generation: &str, count: usize, with_gen_record: bool) {
    let mut dels: Vec<WriteRequest> = (0..count)
        .map(|i| {
            WriteRequest::builder()
                .delete_request(
                    DeleteRequest::builder()
                        .key("pk", s(&format!("{NS}#c")))
                        .key("sk", s(&format!("{generation}:{i:05}")))
                        .build()
                        .unwrap(),
                )
                .build()
        })
        .collect();
    if with_gen_record {
        dels.push(
            WriteRequest::builder()
                .delete_request(
                    DeleteRequest::builder()
                        .key("pk", s(&format!("{NS}#g")))
                        .key("sk", s(generation))
                        .build()
                        .unwrap(),
                )
                .build(),
        );
    }
    for g in dels.chunks(25) {
        let mut pending = HashMap::from([(TABLE.to_string(), g.to_vec())]);
        while !pending.is_empty() {
            match c
                .batch_write_item()
                .set_request_items(Some(pending))
                .send()
                .await
            {
                Ok(o) => {
                    pending = o.unprocessed_items.unwrap_or_default();
                    pending.retain(|_, v| !v.is_empty());
                }
                Err(e) => {
                    eprintln!("cleanup failed: {}", DisplayErrorContext(&e));
                    return;
                }
            }
        }
    }
}

async fn setup(c: &Client) {
    let _ = c.delete_table().table_name(TABLE).send().await;
    c.create_table()
        .table_name(TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("sk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("sk")
                .key_type(KeyType::Range)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .map_err(|e| DisplayErrorContext(e).to_string())
        .expect("create_table");
}

fn rand_value(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    fastrand::fill(&mut v);
    v
}

struct Gen(u64);
impl Gen {
    fn next(&mut self) -> String {
        self.0 += 1;
        format!("{:016x}", self.0)
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    // nearest-rank
    let r = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[r.clamp(1, sorted.len()) - 1]
}
fn median(sorted: &[f64]) -> f64 {
    let l = sorted.len();
    if l % 2 == 1 {
        sorted[l / 2]
    } else {
        (sorted[l / 2 - 1] + sorted[l / 2]) / 2.0
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let server = dynamodict::local::DynamoDbLocal::shared().expect("DynamoDB Local");
    let endpoint = server.endpoint().to_owned();
    let conf = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            "dynamodictlocal",
            "dynamodictlocal",
            None,
            None,
            "static",
        ))
        // no SDK retries: every request counted is exactly one HTTP request
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let c = Client::new(&conf);
    setup(&c).await;
    let mut generation = Gen(0x1000);

    if args.get(1).map(|s| s.as_str()) == Some("ccdebug") {
        // What does DynamoDB Local report as ConsumedCapacity for a transaction?
        for &(len, zero) in &[
            (1000usize, false),
            (10_000, false),
            (100_000, false),
            (358_400, false),
            (358_400, true),
            (716_800, false),
            (1_048_576, false),
            (1_048_576, true),
            (2_097_152, false),
            (3_670_016, false),
            (3_670_016, true),
        ] {
            let v = if zero {
                vec![0u8; len]
            } else {
                rand_value(len)
            };
            let g = generation.next();
            let chunks = chunk_items(&g, &v);
            let cnt = chunks.len();
            let mut items = chunks;
            items.push(manifest_item(&g, cnt, len));
            let theory: u64 = items.iter().map(|i| 2 * wcu_std(item_size(i))).sum();
            let per_item: Vec<u64> = items.iter().map(|i| wcu_std(item_size(i))).collect();
            let acts: Vec<_> = items
                .into_iter()
                .map(|it| {
                    TransactWriteItem::builder()
                        .put(
                            Put::builder()
                                .table_name(TABLE)
                                .set_item(Some(it))
                                .build()
                                .unwrap(),
                        )
                        .build()
                })
                .collect();
            let out = c
                .transact_write_items()
                .set_transact_items(Some(acts))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .unwrap();
            println!(
                "len {len} zero={zero} chunks {cnt} theory {theory} per-item std WCU {per_item:?}\n   reported {:?}",
                out.consumed_capacity()
            );
            // and the same chunk items via single PutItem each, for comparison
            let mut put_sum = 0.0;
            for it in chunk_items(&g, &v) {
                let o = c
                    .put_item()
                    .table_name(TABLE)
                    .set_item(Some(it))
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .unwrap();
                put_sum += o
                    .consumed_capacity()
                    .and_then(|c| c.capacity_units())
                    .unwrap_or(-1.0);
            }
            println!("   same chunks re-put via PutItem: reported sum {put_sum}");
        }
        return;
    }
    if args.get(1).map(|s| s.as_str()) == Some("probe") {
        // Largest value (KiB granularity) that TransactWriteItems accepts here.
        let (mut lo, mut hi) = (3584usize, 8192usize); // KiB
        let v = rand_value(hi * 1024);
        let ok = |r: &Result<Stat, String>| r.is_ok();
        let r = write_b(&c, &generation.next(), &v[..lo * 1024]).await;
        println!("probe {lo} KiB: {:?}", r.as_ref().map(|s| s.item_bytes));
        if !ok(&r) {
            println!("{}", r.unwrap_err());
            return;
        }
        let r = write_b(&c, &generation.next(), &v[..hi * 1024]).await;
        println!(
            "probe {hi} KiB: {}",
            match &r {
                Ok(s) => format!("OK items={}B", s.item_bytes),
                Err(e) => e.clone(),
            }
        );
        if ok(&r) {
            println!("DynamoDB Local accepted {hi} KiB in one transaction");
            return;
        }
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            let r = write_b(&c, &generation.next(), &v[..mid * 1024]).await;
            println!(
                "probe {mid} KiB: {}",
                match &r {
                    Ok(s) => format!("OK items={}B", s.item_bytes),
                    Err(e) => e.chars().take(300).collect(),
                }
            );
            if ok(&r) { lo = mid } else { hi = mid }
        }
        // refine to byte granularity
        let (mut blo, mut bhi) = (lo * 1024, hi * 1024);
        let mut last_ok_items = 0;
        while bhi - blo > 1 {
            let mid = (blo + bhi) / 2;
            match write_b(&c, &generation.next(), &v[..mid]).await {
                Ok(s) => {
                    blo = mid;
                    last_ok_items = s.item_bytes;
                }
                Err(_) => bhi = mid,
            }
        }
        println!(
            "largest accepted value: {blo} bytes (aggregate item size {last_ok_items} B); {bhi} bytes rejected"
        );
        return;
    }

    let iters: usize = args.get(1).map(|s| s.parse().unwrap()).unwrap_or(30);
    let warmup: usize = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(2);

    for &size in &[1024 * 1024usize, 3 * 1024 * 1024 + 512 * 1024] {
        let count = size.div_ceil(CHUNK);
        let mut lat: [Vec<f64>; 2] = [vec![], vec![]];
        let mut stats: [Vec<Stat>; 2] = [vec![], vec![]];
        let mut errors: [Vec<String>; 2] = [vec![], vec![]];
        // previous generation per protocol for cleanup
        let mut prev: [Option<String>; 2] = [None, None];
        for i in 0..(warmup + iters) {
            for p in 0..2 {
                let v = rand_value(size);
                let g = generation.next();
                let t = Instant::now();
                let r = if p == 0 {
                    write_a(&c, &g, &v).await
                } else {
                    write_b(&c, &g, &v).await
                };
                let el = t.elapsed();
                if let Some(old) = prev[p].take() {
                    cleanup(&c, &old, count, p == 0).await;
                }
                prev[p] = Some(g);
                if i < warmup {
                    if let Err(e) = r {
                        errors[p].push(format!("warmup: {e}"));
                    }
                    continue;
                }
                match r {
                    Ok(st) => {
                        lat[p].push(el.as_secs_f64() * 1e3);
                        stats[p].push(st);
                    }
                    Err(e) => errors[p].push(e),
                }
            }
            tokio::time::sleep(Duration::from_millis(0)).await;
        }
        for p in 0..2 {
            let name = if p == 0 {
                "A batch+generation+manifest"
            } else {
                "B transact"
            };
            let mut l = lat[p].clone();
            l.sort_by(|a, b| a.partial_cmp(b).unwrap());
            println!(
                "== size {} bytes ({:.2} MiB), {} chunks, protocol {}",
                size,
                size as f64 / 1048576.0,
                count,
                name
            );
            println!("   ok writes: {}  errors: {}", l.len(), errors[p].len());
            for e in errors[p].iter().take(3) {
                println!("   error: {}", e.chars().take(600).collect::<String>());
            }
            if l.is_empty() {
                continue;
            }
            let st = &stats[p];
            let reqs: Vec<u32> = st.iter().map(|s| s.requests).collect();
            let (rmin, rmax) = (reqs.iter().min().unwrap(), reqs.iter().max().unwrap());
            let wsum: Vec<f64> = st.iter().map(|s| s.wcu_reported).collect();
            let ccn: Vec<u32> = st.iter().map(|s| s.responses_with_cc).collect();
            println!("   requests/write: min {rmin} max {rmax}");
            println!(
                "   latency ms: median {:.1}  p90 {:.1}  min {:.1}  max {:.1}",
                median(&l),
                pct(&l, 90.0),
                l[0],
                l[l.len() - 1]
            );
            println!(
                "   reported WCU/write: min {:.1} max {:.1} (responses carrying ConsumedCapacity per write: min {} max {})",
                wsum.iter().cloned().fold(f64::INFINITY, f64::min),
                wsum.iter().cloned().fold(0.0, f64::max),
                ccn.iter().min().unwrap(),
                ccn.iter().max().unwrap()
            );
            println!(
                "   theoretical WCU/write: {}   aggregate item bytes/write: {}",
                st[0].wcu_theory, st[0].item_bytes
            );
        }
    }
}
