//! The blocking bridge never panics, whatever context it is called or dropped in.

use dynamodict::DynamoDbDict;

use crate::support::dict;

#[test]
fn works_inside_a_current_thread_runtime_task() {
    let d: DynamoDbDict<u32> = dict("bridge-ct");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let got = rt.block_on(async {
        d.set("a", 1).unwrap();
        let inner = d.clone();
        tokio::spawn(async move { inner.get("a").unwrap() })
            .await
            .unwrap()
    });
    assert_eq!(got, Some(1));
}

#[test]
fn works_inside_a_multi_thread_runtime_and_spawn_blocking() {
    let d: DynamoDbDict<u32> = dict("bridge-mt");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..4u32)
            .map(|i| {
                let d = d.clone();
                tokio::spawn(async move { d.insert(&format!("k{i}"), i).unwrap() })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), None);
        }
        let d2 = d.clone();
        let n = tokio::task::spawn_blocking(move || d2.len().unwrap())
            .await
            .unwrap();
        assert_eq!(n, 4);
    });
}

#[test]
fn can_be_built_and_dropped_inside_async_code() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Built inside a task, used, and the last clone dropped there: no panic.
        let d: DynamoDbDict<u32> = dict("bridge-drop");
        d.set("a", 1).unwrap();
        assert_eq!(d.get("a").unwrap(), Some(1));
        drop(d);
    });
    let mt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let d: DynamoDbDict<u32> = dict("bridge-drop-mt");
    mt.block_on(async move {
        tokio::spawn(async move {
            d.set("b", 2).unwrap();
            drop(d);
        })
        .await
        .unwrap();
    });
}

#[test]
fn many_threads_share_one_map() {
    let d: DynamoDbDict<u64> = dict("bridge-threads");
    std::thread::scope(|s| {
        for t in 0..16u64 {
            let d = d.clone();
            s.spawn(move || {
                for i in 0..20u64 {
                    d.set(&format!("t{t}-{i}"), t * 100 + i).unwrap();
                    assert_eq!(d.get(&format!("t{t}-{i}")).unwrap(), Some(t * 100 + i));
                }
            });
        }
    });
    assert_eq!(d.len().unwrap(), 320);
}

/// The blocking and async forms of one map never wait on each other's runtime: a blocking call
/// made from inside a current-thread runtime (which it blocks) after that runtime opened
/// connections, async calls after the runtime that opened the pool's connections is gone, and
/// blocking calls in between, all complete at once.
#[test]
fn converted_forms_never_wait_on_each_others_runtime() {
    let quick = std::time::Duration::from_secs(5);
    let d: DynamoDbDict<u32> = dict("bridge-convert");
    let a = d.to_async();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        a.set("k", 1).await.unwrap();
        // This thread drives `rt` and is now blocked in a blocking call: had the blocking form
        // picked a connection `rt` opened, it would wait for its operation timeout.
        let started = std::time::Instant::now();
        assert_eq!(a.to_blocking().get("k").unwrap(), Some(1));
        assert!(started.elapsed() < quick, "{:?}", started.elapsed());
    });
    drop(rt);
    let started = std::time::Instant::now();
    d.set("k", 2).unwrap();
    assert_eq!(d.get("k").unwrap(), Some(2));
    let rt2 = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(rt2.block_on(a.get("k")).unwrap(), Some(2));
    assert_eq!(rt2.block_on(a.pop("k")).unwrap(), Some(2));
    assert!(started.elapsed() < quick, "{:?}", started.elapsed());
}

/// An async future polled outside any tokio runtime fails with a clear error, not a panic.
#[test]
fn an_async_call_outside_a_runtime_is_an_error() {
    let d: DynamoDbDict<u32> = dict("bridge-no-runtime");
    let a = d.to_async();
    let got = futures_util::FutureExt::now_or_never(a.get("k")).expect("ready at once");
    assert!(
        matches!(got, Err(dynamodict::Error::Runtime(ref m)) if m.contains("tokio runtime")),
        "{got:?}"
    );
    // Streams and the calls made of them too, instead of a panic ("no reactor running").
    let empty = futures_util::FutureExt::now_or_never(a.is_empty()).expect("ready at once");
    assert!(
        matches!(empty, Err(dynamodict::Error::Runtime(_))),
        "{empty:?}"
    );
    let mut keys = a.keys();
    let first = futures_util::FutureExt::now_or_never(keys.next()).expect("ready at once");
    assert!(
        matches!(first, Some(Err(dynamodict::Error::Runtime(_)))),
        "{first:?}"
    );
    let len = futures_util::FutureExt::now_or_never(a.len()).expect("ready at once");
    assert!(matches!(len, Err(dynamodict::Error::Runtime(_))), "{len:?}");
}
