//! The map against a model: random operation sequences give the same results as a `HashMap`,
//! and concurrent threads leave exactly what their acknowledged operations imply.

use std::collections::HashMap;

use dynamodict::AsyncDynamoDbDict;
use proptest::prelude::*;

use crate::support::builder;
use crate::support::facade::{Facade, Map, each_facade};

#[derive(Debug, Clone)]
enum Op {
    Get(u8),
    Contains(u8),
    Insert(u8, i32),
    Set(u8, i32),
    Remove(u8),
    Pop(u8),
    SetDefault(u8, i32),
    InsertMany(Vec<(u8, i32)>),
    GetMany(Vec<u8>),
    BulkDelete(Vec<u8>),
    Len,
    Keys,
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    // A small key space so operations collide often.
    let k = 0u8..12;
    prop_oneof![
        k.clone().prop_map(Op::Get),
        k.clone().prop_map(Op::Contains),
        (k.clone(), any::<i32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        (k.clone(), any::<i32>()).prop_map(|(k, v)| Op::Set(k, v)),
        k.clone().prop_map(Op::Remove),
        k.clone().prop_map(Op::Pop),
        (k.clone(), any::<i32>()).prop_map(|(k, v)| Op::SetDefault(k, v)),
        prop::collection::vec((k.clone(), any::<i32>()), 0..30).prop_map(Op::InsertMany),
        prop::collection::vec(k.clone(), 0..15).prop_map(Op::GetMany),
        prop::collection::vec(k, 0..15).prop_map(Op::BulkDelete),
        Just(Op::Len),
        Just(Op::Keys),
        Just(Op::Clear),
    ]
}

fn key(k: u8) -> String {
    format!("key-{k}")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_match_a_hashmap(facade in 0..Facade::ALL.len(), ops in prop::collection::vec(op(), 1..40)) {
        let d: Map<i32> = Map::open("model", Facade::ALL[facade]);
        let mut model: HashMap<String, i32> = HashMap::new();
        for op in ops {
            match op {
                Op::Get(k) => prop_assert_eq!(d.get(&key(k)).unwrap(), model.get(&key(k)).copied()),
                Op::Contains(k) => prop_assert_eq!(d.contains_key(&key(k)).unwrap(), model.contains_key(&key(k))),
                Op::Insert(k, v) => prop_assert_eq!(d.insert(&key(k), v).unwrap(), model.insert(key(k), v)),
                Op::Set(k, v) => { d.set(&key(k), v).unwrap(); model.insert(key(k), v); }
                Op::Remove(k) => prop_assert_eq!(d.remove(&key(k)).unwrap(), model.remove(&key(k)).is_some()),
                Op::Pop(k) => prop_assert_eq!(d.pop(&key(k)).unwrap(), model.remove(&key(k))),
                Op::SetDefault(k, v) => prop_assert_eq!(d.setdefault(&key(k), v).unwrap(), *model.entry(key(k)).or_insert(v)),
                Op::InsertMany(entries) => {
                    d.insert_many(entries.iter().map(|(k, v)| (key(*k), *v))).unwrap();
                    model.extend(entries.iter().map(|(k, v)| (key(*k), *v)));
                }
                Op::GetMany(keys) => {
                    let keys: Vec<String> = keys.into_iter().map(key).collect();
                    let expected: Vec<Option<i32>> = keys.iter().map(|k| model.get(k).copied()).collect();
                    prop_assert_eq!(d.get_many(&keys).unwrap(), expected);
                }
                Op::BulkDelete(keys) => {
                    d.bulk_delete(keys.iter().map(|k| key(*k))).unwrap();
                    for k in keys { model.remove(&key(k)); }
                }
                Op::Len => prop_assert_eq!(d.len().unwrap(), model.len()),
                Op::Keys => {
                    let mut got: Vec<String> = d.keys().into_iter().map(Result::unwrap).collect();
                    let mut want: Vec<String> = model.keys().cloned().collect();
                    got.sort();
                    want.sort();
                    prop_assert_eq!(got, want);
                }
                Op::Clear => { d.clear().unwrap(); model.clear(); }
            }
        }
        let stored: HashMap<String, i32> = d.items().into_iter().map(Result::unwrap).collect();
        prop_assert_eq!(stored, model);
    }
}

#[test]
fn eight_threads_leave_what_their_acknowledged_operations_imply() {
    each_facade("concurrent", eight_workers_check);
}

/// One worker's operations on its own key range (so its model is exact), mixed with
/// `setdefault` races on shared keys, whose winner must be unique. Returns the worker's model.
async fn worker(d: AsyncDynamoDbDict<u64>, t: u64) -> HashMap<String, u64> {
    let mut rng = fastrand::Rng::with_seed(t);
    let mut model = HashMap::new();
    for i in 0..60u64 {
        let k = format!("t{t}-{}", rng.u8(0..10));
        match rng.u8(0..5) {
            0 => assert_eq!(d.insert(&k, i).await.unwrap(), model.insert(k, i)),
            1 => assert_eq!(d.pop(&k).await.unwrap(), model.remove(&k)),
            2 => assert_eq!(
                d.setdefault(&k, i).await.unwrap(),
                *model.entry(k).or_insert(i)
            ),
            3 => assert_eq!(d.get(&k).await.unwrap(), model.get(&k).copied()),
            _ => {
                let shared = format!("shared-{}", rng.u8(0..3));
                d.setdefault(&shared, t).await.unwrap();
            }
        }
    }
    model
}

#[test]
fn eight_tasks_on_a_multi_thread_runtime_leave_what_their_acknowledged_operations_imply() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let d: AsyncDynamoDbDict<u64> = rt
        .block_on(builder("concurrent-tasks").build_async())
        .unwrap();
    let models = rt.block_on(async {
        let tasks: Vec<_> = (0..8u64)
            .map(|t| tokio::spawn(worker(d.clone(), t)))
            .collect();
        let mut models = Vec::new();
        for task in tasks {
            models.push(task.await.expect("a worker task panicked"));
        }
        models
    });
    check_models(&Map::wrap(d, rt), models);
}

/// Whether the stored entries are exactly what the workers' models imply.
fn check_models(d: &Map<u64>, models: Vec<HashMap<String, u64>>) {
    let mut expected: HashMap<String, u64> = models.into_iter().flatten().collect();
    let stored: HashMap<String, u64> = d.items().into_iter().map(Result::unwrap).collect();
    for s in 0..3 {
        if let Some(v) = stored.get(&format!("shared-{s}")) {
            assert!(*v < 8);
            expected.insert(format!("shared-{s}"), *v);
        }
    }
    assert_eq!(stored, expected);
}

fn eight_workers_check(d: &Map<u64>) {
    // Each thread owns a key range (so its own model is exact) and also hammers shared keys
    // with setdefault, whose winner must be unique.
    let models: Vec<HashMap<String, u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u64)
            .map(|t| {
                let d = d.clone();
                s.spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(t);
                    let mut model = HashMap::new();
                    for i in 0..60u64 {
                        let k = format!("t{t}-{}", rng.u8(0..10));
                        match rng.u8(0..5) {
                            0 => {
                                assert_eq!(d.insert(&k, i).unwrap(), model.insert(k, i));
                            }
                            1 => {
                                assert_eq!(d.pop(&k).unwrap(), model.remove(&k));
                            }
                            2 => {
                                assert_eq!(
                                    d.setdefault(&k, i).unwrap(),
                                    *model.entry(k).or_insert(i)
                                );
                            }
                            3 => {
                                assert_eq!(d.get(&k).unwrap(), model.get(&k).copied());
                            }
                            _ => {
                                let shared = format!("shared-{}", rng.u8(0..3));
                                d.setdefault(&shared, t).unwrap();
                            }
                        }
                    }
                    model
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut expected: HashMap<String, u64> = models.into_iter().flatten().collect();
    let stored: HashMap<String, u64> = d.items().into_iter().map(Result::unwrap).collect();
    for s in 0..3 {
        if let Some(v) = stored.get(&format!("shared-{s}")) {
            assert!(*v < 8);
            expected.insert(format!("shared-{s}"), *v);
        }
    }
    assert_eq!(stored, expected);
}
