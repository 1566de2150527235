//! One vault shared by threads: readers run while writers commit, and
//! nothing written is lost.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use common::*;
use llmvault::{ConversationId, Vault};

#[test]
fn vault_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Vault>();
}

#[test]
fn readers_and_writers_share_one_vault() {
    let t = new_vault();
    let seed = t.put(record("seed", None, "seed")).unwrap();
    let vault: &Vault = &t;
    let done = AtomicBool::new(false);
    let written = thread::scope(|s| {
        let writers: Vec<_> = (0..2)
            .map(|w| {
                s.spawn(move || {
                    let mut ids = Vec::new();
                    for round in 0..20 {
                        let batch = (0..10)
                            .map(|i| {
                                record(&format!("w{w}"), Some("s"), &format!("{w}-{round}-{i}"))
                            })
                            .collect();
                        ids.extend(vault.put_batch(batch).unwrap());
                        ids.push(vault.put(record(&format!("w{w}"), None, "single")).unwrap());
                    }
                    ids
                })
            })
            .collect();
        let done = &done;
        let readers: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(move || {
                    let mut reads = 0u32;
                    while !done.load(Ordering::Relaxed) {
                        assert_eq!(vault.get(seed).unwrap().id(), seed);
                        let n = vault
                            .conversation(&ConversationId::new("w0"))
                            .unwrap()
                            .len();
                        assert!(n <= 20 * 11);
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        let purger = s.spawn(move || {
            let mut purged = 0;
            while !done.load(Ordering::Relaxed) {
                purged += vault.purge_expired().unwrap().records;
            }
            purged
        });
        let ids: Vec<_> = writers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        done.store(true, Ordering::Relaxed);
        for r in readers {
            assert!(r.join().unwrap() > 0, "every reader got to read");
        }
        assert_eq!(purger.join().unwrap(), 0, "nothing had expired");
        ids
    });
    assert_eq!(written.len(), 2 * 20 * 11);
    let unique: std::collections::HashSet<_> = written.iter().collect();
    assert_eq!(
        unique.len(),
        written.len(),
        "ids are never handed out twice"
    );
    for id in &written {
        assert!(t.get(*id).is_ok());
    }
    assert_eq!(t.verify().unwrap().records, written.len() + 1);
    assert_eq!(
        t.conversation(&ConversationId::new("w1")).unwrap().len(),
        20 * 11
    );
}
