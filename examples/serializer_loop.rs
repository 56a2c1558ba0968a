//! Round trips (`dumps` then `loads`) of one payload through one serializer pipeline, in a plain
//! loop: for profilers that count rather than sample, and for comparing two pipelines outside
//! criterion. The payloads are the serialization bench's.
//!
//! ```text
//! cargo build --release --example serializer_loop
//! target/release/examples/serializer_loop document small 3000000
//! valgrind --tool=callgrind target/release/examples/serializer_loop json small 100000
//! ```
//!
//! Instructions per round trip: (total for `n` round trips − total for 0) / `n`.

#[path = "../benches/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use dynamodict::Serializer;
use serde::Serialize;
use serde::de::DeserializeOwned;

const USAGE: &str =
    "usage: serializer_loop <bincode|json|document> <small|1KiB|64KiB|1MiB> <round trips>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [pipeline, payload, count] = args.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let serializer = match pipeline.as_str() {
        "bincode" => Serializer::bincode(),
        "json" => Serializer::json(),
        "document" => Serializer::document(),
        _ => {
            eprintln!("unknown pipeline {pipeline:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let Ok(count) = count.parse::<u64>() else {
        eprintln!("not a count: {count:?}\n{USAGE}");
        return ExitCode::from(2);
    };
    let result = match payload.as_str() {
        "small" => run(&serializer, &common::small(), count),
        "1KiB" => run(&serializer, &common::response(1024), count),
        "64KiB" => run(&serializer, &common::response(64 * 1024), count),
        "1MiB" => run(&serializer, &common::response(1024 * 1024), count),
        _ => {
            eprintln!("unknown payload {payload:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `count` round trips of `value`; prints the mean time of one.
fn run<V>(serializer: &Serializer, value: &V, count: u64) -> Result<(), String>
where
    V: Serialize + DeserializeOwned + PartialEq,
{
    const KEY: &str = "https://api.example.com/v1/items?page=3";
    let start = Instant::now();
    for _ in 0..count {
        let encoded = serializer
            .dumps(KEY, black_box(value))
            .map_err(|e| e.to_string())?;
        let back: V = serializer
            .loads(KEY, black_box(encoded))
            .map_err(|e| e.to_string())?;
        black_box(back);
    }
    let elapsed = start.elapsed();
    // One checked round trip, outside the timed loop: a wrong pipeline must not look fast.
    let back: V = serializer
        .dumps(KEY, value)
        .and_then(|encoded| serializer.loads(KEY, encoded))
        .map_err(|e| e.to_string())?;
    if &back != value {
        return Err(format!(
            "{pipeline} does not round-trip",
            pipeline = serializer.id()
        ));
    }
    if count > 0 {
        println!(
            "{} ns per round trip ({count} round trips)",
            elapsed.as_nanos() / u128::from(count)
        );
    }
    Ok(())
}
