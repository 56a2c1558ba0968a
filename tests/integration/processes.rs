//! Two processes sharing one table and namespace: this test binary runs a copy of itself as a
//! second process (the `#[ignore]`d `child_workload` test, pointed at the same DynamoDB Local
//! with `DYNAMODICT_ENDPOINT`). Both race `setdefault`, `pop` and `insert` on overlapping keys
//! and log every acknowledged result; the logs and the final table must be explained by one
//! order of those operations: no lost update, no value popped twice, one `setdefault` winner.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dynamodict::DynamoDbDict;
use serde::{Deserialize, Serialize};

use crate::support::{self, unique};

const NS_ENV: &str = "DYNAMODICT_CHILD_NAMESPACE";
const DIR_ENV: &str = "DYNAMODICT_CHILD_DIR";

/// Keys every worker races `setdefault` on, in the same order.
const RACE_KEYS: usize = 20;
/// Keys of the mixed workload: few, so operations collide constantly.
const MIX_KEYS: usize = 6;
/// Mixed operations per worker thread.
const MIX_OPS: usize = 150;
/// Worker threads per process.
const THREADS: usize = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Op {
    /// `setdefault(key, arg)` returned `result`.
    SetDefault { arg: String, result: String },
    /// `insert(key, arg)` returned the previous value.
    Insert { arg: String, old: Option<String> },
    /// `pop(key)` returned this.
    Pop { result: Option<String> },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    worker: String,
    key: String,
    op: Op,
    /// When the call returned, in microseconds since the Unix epoch (both processes share the
    /// clock), to show that the processes really ran at the same time.
    at: u128,
}

fn now_micros() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

fn open(ns: &str) -> DynamoDbDict<String> {
    DynamoDbDict::builder(support::TABLE)
        .namespace(ns)
        .local()
        .build()
        .expect("opening the shared namespace")
}

/// One process's share of the work: `THREADS` threads, each racing on every race key, then
/// running `MIX_OPS` random operations on the mix keys. Values are unique per call. Any error
/// fails the run (no fault is injected here).
fn workload(d: &DynamoDbDict<String>, process: &str, seed: u64) -> Vec<Record> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let d = d.clone();
                s.spawn(move || {
                    let worker = format!("{process}.{t}");
                    let mut log = Vec::new();
                    // Workers walk the race keys in opposite directions, so that every key
                    // is contended by both processes somewhere along the way.
                    let ascending = (process == "parent") == (t == 0);
                    for i in 0..RACE_KEYS {
                        let k = if ascending { i } else { RACE_KEYS - 1 - i };
                        let key = format!("race-{k}");
                        let arg = format!("{worker}:race-{k}");
                        let result = d.setdefault(&key, arg.clone()).expect("setdefault");
                        log.push(Record {
                            worker: worker.clone(),
                            key,
                            op: Op::SetDefault { arg, result },
                            at: now_micros(),
                        });
                    }
                    let mut rng = fastrand::Rng::with_seed(seed * 100 + t as u64);
                    for i in 0..MIX_OPS {
                        let key = format!("mix-{}", rng.usize(..MIX_KEYS));
                        let arg = format!("{worker}:{i}");
                        let op = match rng.u8(..100) {
                            0..45 => Op::Insert {
                                old: d.insert(&key, arg.clone()).expect("insert"),
                                arg,
                            },
                            45..80 => Op::Pop {
                                result: d.pop(&key).expect("pop"),
                            },
                            _ => Op::SetDefault {
                                result: d.setdefault(&key, arg.clone()).expect("setdefault"),
                                arg,
                            },
                        };
                        log.push(Record {
                            worker: worker.clone(),
                            key,
                            op,
                            at: now_micros(),
                        });
                    }
                    log
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker panicked"))
            .collect()
    })
}

fn wait_for(path: &Path, patience: Duration) -> bool {
    let deadline = Instant::now() + patience;
    while !path.exists() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

#[test]
#[ignore = "the second process of two_processes_share_a_namespace_without_lost_updates"]
fn child_workload() {
    let (Some(ns), Some(dir)) = (std::env::var_os(NS_ENV), std::env::var_os(DIR_ENV)) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let d = open(ns.to_str().expect("namespace"));
    std::fs::write(dir.join("ready"), b"").expect("ready file");
    assert!(
        wait_for(&dir.join("go"), Duration::from_secs(60)),
        "the parent never said go"
    );
    let log = workload(&d, "child", 2);
    let lines: Vec<String> = log
        .iter()
        .map(|r| serde_json::to_string(r).expect("json"))
        .collect();
    std::fs::write(dir.join("child.log.tmp"), lines.join("\n")).expect("log");
    std::fs::rename(dir.join("child.log.tmp"), dir.join("child.log")).expect("log");
    println!("child: {} operations logged", log.len());
}

/// Checks that one key's log (from both processes) and its final value are explained by one
/// sequential order of the operations. Returns a description of the first inconsistency.
fn explain(key: &str, records: &[&Record], last: Option<&String>) -> Result<(), String> {
    // Every value is written at most once (values are unique per call): by an insert, or by a
    // setdefault that stored its own argument.
    let mut written: HashMap<&str, Option<&str>> = HashMap::new(); // value -> what it replaced
    let mut consumed: HashMap<&str, usize> = HashMap::new();
    let mut observed: Vec<&str> = Vec::new();
    let (mut from_none, mut to_none) = (0usize, 0usize);
    for r in records {
        match &r.op {
            Op::Insert { arg, old } => {
                if written.insert(arg, old.as_deref()).is_some() {
                    return Err(format!("{arg} written twice"));
                }
                match old {
                    Some(old) => *consumed.entry(old).or_default() += 1,
                    None => from_none += 1,
                }
            }
            Op::Pop { result: Some(v) } => {
                *consumed.entry(v).or_default() += 1;
                to_none += 1;
            }
            Op::Pop { result: None } => {}
            Op::SetDefault { arg, result } if arg == result => {
                if written.insert(arg, None).is_some() {
                    return Err(format!("{arg} written twice"));
                }
                from_none += 1;
            }
            Op::SetDefault { result, .. } => observed.push(result),
        }
    }
    // No value is consumed (replaced or popped) twice: no lost update, no double pop.
    if let Some((v, n)) = consumed.iter().find(|(_, n)| **n > 1) {
        return Err(format!("{v} was replaced or popped {n} times"));
    }
    // Nothing comes from nowhere.
    for v in consumed
        .keys()
        .chain(observed.iter())
        .chain(last.map(String::as_str).iter())
    {
        if !written.contains_key(v) {
            return Err(format!("{v} was read but never written to {key}"));
        }
    }
    // Every written value is replaced or popped exactly once, except the final one.
    for v in written.keys() {
        let n = consumed.get(v).copied().unwrap_or(0);
        let is_last = last.map(String::as_str) == Some(*v);
        if n + usize::from(is_last) != 1 {
            return Err(format!(
                "{v}: consumed {n} times, final value: {is_last} (a lost or duplicated update)"
            ));
        }
    }
    // The states form one path None -> ... -> final: leaving None happens once more than
    // coming back iff the key ends with a value.
    if from_none != to_none + usize::from(last.is_some()) {
        return Err(format!(
            "{from_none} writes into an empty key, {to_none} pops of a value, final {last:?}"
        ));
    }
    // And it is one path, not a path plus detached cycles: walk it from the empty state.
    let next: HashMap<&str, &str> = written
        .iter()
        .filter_map(|(v, replaced)| replaced.map(|r| (r, *v)))
        .collect();
    let mut reached = HashSet::new();
    for (v, replaced) in &written {
        if replaced.is_none() {
            let mut at = *v;
            while reached.insert(at) {
                match next.get(at) {
                    Some(n) => at = n,
                    None => break,
                }
            }
        }
    }
    if reached.len() != written.len() {
        return Err(format!(
            "{} of {} written values are not reachable from the empty key (a cycle)",
            written.len() - reached.len(),
            written.len()
        ));
    }
    Ok(())
}

#[test]
fn two_processes_share_a_namespace_without_lost_updates() {
    let ns = unique("two-procs");
    let dir = std::env::temp_dir().join(unique("dynamodict-two-procs"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let d = open(&ns);

    let mut child = support::child_command(
        "processes::child_workload",
        &[
            (NS_ENV, ns.clone()),
            (DIR_ENV, dir.to_string_lossy().into_owned()),
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("spawning the second process");
    let ready = wait_for(&dir.join("ready"), Duration::from_secs(60));
    if !ready {
        let _ = child.kill();
    }
    let started = Instant::now();
    std::fs::write(dir.join("go"), b"").expect("go file");
    let parent_log = if ready {
        workload(&d, "parent", 1)
    } else {
        Vec::new()
    };
    let out = child.wait_with_output().expect("waiting for the child");
    let elapsed = started.elapsed();
    assert!(
        ready && out.status.success(),
        "the second process failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let child_log: Vec<Record> = std::fs::read_to_string(dir.join("child.log"))
        .expect("the child's log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a log record"))
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    let per_process = RACE_KEYS * THREADS + MIX_OPS * THREADS;
    assert_eq!(parent_log.len(), per_process);
    assert_eq!(child_log.len(), per_process);

    let mut by_key: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for r in parent_log.iter().chain(&child_log) {
        by_key.entry(&r.key).or_default().push(r);
    }
    let fin: HashMap<String, String> = d
        .items()
        .collect::<Result<_, _>>()
        .expect("the final table");
    // Nothing but the keys the workload used.
    assert!(
        fin.keys().all(|k| by_key.contains_key(k.as_str())),
        "{fin:?}"
    );

    // setdefault races: one winner per key, whom everybody (in both processes) was told about.
    let mut won_by_child = 0;
    for k in 0..RACE_KEYS {
        let key = format!("race-{k}");
        let results: HashSet<&str> = by_key[key.as_str()]
            .iter()
            .map(|r| match &r.op {
                Op::SetDefault { result, .. } => result.as_str(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            results.len(),
            1,
            "{key}: several setdefault winners {results:?}"
        );
        let winner = results.into_iter().next().unwrap();
        assert_eq!(fin.get(&key).map(String::as_str), Some(winner), "{key}");
        won_by_child += usize::from(winner.starts_with("child."));
    }

    // Mixed operations: one sequential order explains every key.
    let (mut inserts, mut pops, mut popped, mut setdefaults) = (0, 0, 0, 0);
    for k in 0..MIX_KEYS {
        let key = format!("mix-{k}");
        let records = by_key.get(key.as_str()).cloned().unwrap_or_default();
        for r in &records {
            match &r.op {
                Op::Insert { .. } => inserts += 1,
                Op::Pop { result } => {
                    pops += 1;
                    popped += usize::from(result.is_some());
                }
                Op::SetDefault { .. } => setdefaults += 1,
            }
        }
        if let Err(e) = explain(&key, &records, fin.get(&key)) {
            panic!("{key}: {e}");
        }
    }
    // Both processes really touched the same keys.
    let workers: HashSet<&str> = by_key
        .iter()
        .filter(|(k, _)| k.starts_with("mix-"))
        .flat_map(|(_, rs)| rs.iter().map(|r| r.worker.as_str()))
        .collect();
    assert!(
        workers.iter().any(|w| w.starts_with("child.")),
        "{workers:?}"
    );
    assert!(
        workers.iter().any(|w| w.starts_with("parent.")),
        "{workers:?}"
    );
    // And at the same time: the spans of their operations overlap.
    let span = |log: &[Record]| {
        let times = log.iter().map(|r| r.at);
        (times.clone().min().unwrap_or(0), times.max().unwrap_or(0))
    };
    let ((p0, p1), (c0, c1)) = (span(&parent_log), span(&child_log));
    let overlap_ms = (p1.min(c1).saturating_sub(p0.max(c0))) / 1000;
    assert!(overlap_ms > 0, "the processes did not run at the same time");
    eprintln!(
        "two processes, {} workers, {} operations in {elapsed:?}: {RACE_KEYS} setdefault races \
         ({won_by_child} won by the child), {inserts} inserts, {pops} pops ({popped} \
         returned a value), {setdefaults} mixed setdefaults, {overlap_ms} ms of overlap; nothing \
         lost, nothing popped twice",
        THREADS * 2,
        parent_log.len() + child_log.len()
    );
}

#[test]
fn the_consistency_check_catches_lost_and_duplicated_updates() {
    // The checker itself must be able to fail.
    let rec = |op: Op| Record {
        worker: "w".into(),
        key: "k".into(),
        op,
        at: 0,
    };
    let ins = |arg: &str, old: Option<&str>| {
        rec(Op::Insert {
            arg: arg.into(),
            old: old.map(Into::into),
        })
    };
    let pop = |v: Option<&str>| {
        rec(Op::Pop {
            result: v.map(Into::into),
        })
    };
    let sd = |arg: &str, result: &str| {
        rec(Op::SetDefault {
            arg: arg.into(),
            result: result.into(),
        })
    };
    let check = |records: Vec<Record>, last: Option<&str>| {
        let refs: Vec<&Record> = records.iter().collect();
        explain("k", &refs, last.map(str::to_owned).as_ref())
    };
    let a = Some("a");
    // A consistent history.
    check(
        vec![
            ins("a", None),
            ins("b", a),
            pop(Some("b")),
            sd("c", "c"),
            sd("d", "c"),
        ],
        Some("c"),
    )
    .unwrap();
    // Lost update: two inserts both replaced "a".
    assert!(check(vec![ins("a", None), ins("b", a), ins("c", a)], Some("c")).is_err());
    // Double pop.
    assert!(check(vec![ins("a", None), pop(a), pop(a)], None).is_err());
    // A written value vanished.
    assert!(check(vec![ins("a", None), ins("b", None)], Some("b")).is_err());
    // Two setdefault winners.
    assert!(check(vec![sd("a", "a"), sd("b", "b")], Some("b")).is_err());
    // A phantom read.
    assert!(check(vec![sd("a", "z")], None).is_err());
    // A detached cycle.
    assert!(check(vec![ins("a", Some("b")), ins("b", a)], None).is_err());
    // The final value does not match.
    assert!(check(vec![ins("a", None)], None).is_err());
}
