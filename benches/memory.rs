//! Peak memory of iterating the values of a large namespace: `values()` over 100,000 items of
//! about 1.4 KB each (a response with a 1 KiB body, ~140 MB in all) must grow the peak RSS by
//! less than 32 MB.
//!
//! Not a criterion bench: it measures bytes, once. The items are written by a child process so
//! that none of the writing side's allocations are counted; the peak (`VmHWM`) is reset by
//! writing `5` to `/proc/self/clear_refs` just before iterating, and cross-checked by sampling
//! `VmRSS` every millisecond.
//!
//! ```text
//! cargo bench --bench memory
//! DYNAMODICT_BENCH_QUICK=1 cargo bench --bench memory    # 2,000 items (also without `--bench`)
//! ```

mod common;

use std::error::Error;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dynamodict::DynamoDbDict;
use dynamodict::local::{DynamoDbLocal, ENDPOINT_ENV};

use common::{CachedResponse, quick, rss_kib};

const NAME: &str = "memory/values_peak_rss";
const TABLE: &str = "dynamodict-bench";
const NAMESPACE: &str = "memory";
/// Set in the child process: the number of items to write.
const CHILD_ENV: &str = "DYNAMODICT_BENCH_MEMORY_POPULATE";
const BODY: usize = 1024;
const TARGET_MB: f64 = 32.0;

type BoxResult<T> = Result<T, Box<dyn Error>>;

fn dict() -> BoxResult<DynamoDbDict<CachedResponse>> {
    Ok(DynamoDbDict::builder(TABLE)
        .namespace(NAMESPACE)
        .local()
        .build()?)
}

/// Child process: clear the namespace and write `n` responses, 5,000 per `insert_many`.
fn populate(n: usize) -> BoxResult<()> {
    let dict = dict()?;
    dict.clear()?;
    let value = common::response(BODY);
    let mut start = 0;
    while start < n {
        let end = (start + 5_000).min(n);
        dict.insert_many((start..end).map(|i| (format!("resp-{i:06}"), value.clone())))?;
        start = end;
    }
    Ok(())
}

/// Resets `VmHWM` to the current RSS (Linux 4.0+). `false` when the kernel refuses.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn main() -> BoxResult<()> {
    if let Some(n) = std::env::var_os(CHILD_ENV) {
        let n: usize = n
            .to_str()
            .and_then(|s| s.parse().ok())
            .ok_or("bad item count")?;
        return populate(n);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench -- <filter>`: run only when the filter matches this bench's name.
    if let Some(filter) = args.iter().find(|a| !a.starts_with('-'))
        && !NAME.contains(filter.as_str())
    {
        return Ok(());
    }
    let n: usize = if quick() { 2_000 } else { 100_000 };

    let server = DynamoDbLocal::shared()?;
    let started = Instant::now();
    let status = Command::new(std::env::current_exe()?)
        .env(CHILD_ENV, n.to_string())
        .env(ENDPOINT_ENV, server.endpoint())
        .status()?;
    if !status.success() {
        return Err(format!("populating {n} items failed: {status}").into());
    }
    println!(
        "{NAME}: wrote {n} items ({BODY}-byte bodies) in {:.1} s (child process)",
        started.elapsed().as_secs_f64()
    );

    let dict = dict()?;
    // Connected and warm: one request through the same client before the baseline.
    dict.get("resp-000000")?
        .ok_or("the first item is missing")?;

    let reset = reset_peak();
    let (_, rss_before) = rss_kib()?;
    let stop = Arc::new(AtomicBool::new(false));
    let sampled_max = Arc::new(AtomicU64::new(rss_before));
    let sampler = {
        let (stop, sampled_max) = (Arc::clone(&stop), Arc::clone(&sampled_max));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok((_, rss)) = rss_kib() {
                    sampled_max.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };

    let started = Instant::now();
    let (mut count, mut body_bytes) = (0usize, 0usize);
    for value in dict.values() {
        body_bytes += value?.body.len();
        count += 1;
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    sampler.join().map_err(|_| "the RSS sampler panicked")?;
    let (hwm_after, rss_after) = rss_kib()?;
    if count != n {
        return Err(format!("values() yielded {count} items, expected {n}").into());
    }

    let mb = |kib: u64| kib as f64 / 1024.0;
    let sampled_growth = mb(sampled_max
        .load(Ordering::Relaxed)
        .saturating_sub(rss_before));
    let hwm_growth = mb(hwm_after.saturating_sub(rss_before));
    let growth = if reset { hwm_growth } else { sampled_growth };
    println!(
        "{NAME}: {count} values ({:.0} MB of bodies) in {:.2} s ({:.0} values/s)",
        body_bytes as f64 / 1e6,
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
    println!(
        "{NAME}: RSS before {:.1} MB, after {:.1} MB; peak growth {growth:.1} MB \
         (VmHWM {}, sampled every 1 ms: {sampled_growth:.1} MB); target < {TARGET_MB} MB: {}",
        mb(rss_before),
        mb(rss_after),
        if reset {
            format!("reset via clear_refs: {hwm_growth:.1} MB")
        } else {
            "could not be reset".to_owned()
        },
        if growth < TARGET_MB { "met" } else { "MISSED" },
    );
    dict.clear()?;
    Ok(())
}
