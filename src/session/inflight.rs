//! One origin request per cache key at a time within a session: concurrent misses on one URL
//! wait for the first and then read what it stored, instead of all asking the origin.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

/// The keys being fetched now.
#[derive(Debug, Default)]
pub(crate) struct Inflight {
    keys: Mutex<HashSet<String>>,
    done: Condvar,
    /// How many claims have ended: a request that read the cache, then claimed its key after
    /// this changed, reads again (another request may have stored what it was about to fetch).
    released: AtomicU64,
}

/// Holds a key until dropped.
pub(crate) struct Claim<'a> {
    inflight: &'a Inflight,
    key: String,
}

impl Inflight {
    fn keys(&self) -> MutexGuard<'_, HashSet<String>> {
        // The set stays consistent whatever a panicking holder did: recover it.
        self.keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Claims `key`, waiting while another request holds it.
    pub fn claim(&self, key: &str) -> Claim<'_> {
        let mut keys = self.keys();
        while keys.contains(key) {
            keys = self
                .done
                .wait(keys)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        keys.insert(key.to_owned());
        self.claim_of(key)
    }

    /// Claims `key` only if no one holds it.
    pub fn try_claim(&self, key: &str) -> Option<Claim<'_>> {
        self.keys()
            .insert(key.to_owned())
            .then(|| self.claim_of(key))
    }

    /// The number of claims ended so far (see [`released`](Self::released)).
    pub fn released(&self) -> u64 {
        self.released.load(Ordering::SeqCst)
    }

    fn claim_of(&self, key: &str) -> Claim<'_> {
        Claim {
            inflight: self,
            key: key.to_owned(),
        }
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.inflight.keys().remove(&self.key);
        self.inflight.released.fetch_add(1, Ordering::SeqCst);
        self.inflight.done.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn one_holder_per_key_and_waiters_are_told() {
        let inflight = Inflight::default();
        let first = inflight.claim("k");
        assert!(inflight.try_claim("k").is_none());
        assert!(inflight.try_claim("other").is_some());
        let inside = AtomicUsize::new(0);
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let _claim = inflight.claim("k");
                inside.fetch_add(1, Ordering::SeqCst);
            });
            std::thread::sleep(Duration::from_millis(50));
            assert_eq!(inside.load(Ordering::SeqCst), 0, "the waiter must wait");
            let before = inflight.released();
            drop(first);
            waiter.join().unwrap();
            assert_eq!(inflight.released(), before + 2);
        });
        assert!(inflight.try_claim("k").is_some());
    }
}
