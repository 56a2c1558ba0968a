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

/// One step of a worker: on its own key range (so its model is exact), or a `setdefault` race
/// on a shared key, whose winner must be unique.
enum Step {
    Insert(String, u64),
    Pop(String),
    SetDefault(String, u64),
    Get(String),
    Shared(String),
}

/// Worker `t`'s steps, the same whichever façade runs them.
fn script(t: u64) -> Vec<Step> {
    let mut rng = fastrand::Rng::with_seed(t);
    (0..60u64)
        .map(|i| {
            let k = format!("t{t}-{}", rng.u8(0..10));
            match rng.u8(0..5) {
                0 => Step::Insert(k, i),
                1 => Step::Pop(k),
                2 => Step::SetDefault(k, i),
                3 => Step::Get(k),
                _ => Step::Shared(format!("shared-{}", rng.u8(0..3))),
            }
        })
        .collect()
}

/// Checks what a step returned against the worker's model, and updates the model.
fn check_step(model: &mut HashMap<String, u64>, step: Step, got: Option<u64>) {
    match step {
        Step::Insert(k, v) => assert_eq!(got, model.insert(k, v)),
        Step::Pop(k) => assert_eq!(got, model.remove(&k)),
        Step::SetDefault(k, v) => assert_eq!(got, Some(*model.entry(k).or_insert(v))),
        Step::Get(k) => assert_eq!(got, model.get(&k).copied()),
        Step::Shared(_) => {}
    }
}

/// Worker `t` through the async map. Returns the worker's model.
async fn worker(d: AsyncDynamoDbDict<u64>, t: u64) -> HashMap<String, u64> {
    let mut model = HashMap::new();
    for step in script(t) {
        let got = match &step {
            Step::Insert(k, v) => d.insert(k, *v).await.unwrap(),
            Step::Pop(k) => d.pop(k).await.unwrap(),
            Step::SetDefault(k, v) => Some(d.setdefault(k, *v).await.unwrap()),
            Step::Get(k) => d.get(k).await.unwrap(),
            Step::Shared(k) => Some(d.setdefault(k, t).await.unwrap()),
        };
        check_step(&mut model, step, got);
    }
    model
}

/// Worker `t` through any façade, from a thread. Returns the worker's model.
fn thread_worker(d: &Map<u64>, t: u64) -> HashMap<String, u64> {
    let mut model = HashMap::new();
    for step in script(t) {
        let got = match &step {
            Step::Insert(k, v) => d.insert(k, *v).unwrap(),
            Step::Pop(k) => d.pop(k).unwrap(),
            Step::SetDefault(k, v) => Some(d.setdefault(k, *v).unwrap()),
            Step::Get(k) => d.get(k).unwrap(),
            Step::Shared(k) => Some(d.setdefault(k, t).unwrap()),
        };
        check_step(&mut model, step, got);
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
    let models: Vec<HashMap<String, u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u64)
            .map(|t| s.spawn(move || thread_worker(d, t)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    check_models(d, models);
}
