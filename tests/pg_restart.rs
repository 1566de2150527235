//! The PostgreSQL server restarts under a write loop: the calls in flight
//! fail with a clear `Error::Storage` (or `Busy`), the loop resumes once
//! the server is back, no acknowledged write is lost, and the audit chain
//! still verifies. The restart is real: `LLMVAULT_TEST_POSTGRES_CTL`
//! (from `.ci/postgres`) stops and starts the server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::{Backend, available, new_vault_on, record};
use llmvault::Error;

#[test]
fn a_server_restart_loses_no_acknowledged_write() {
    if !available(Backend::Postgres) {
        return;
    }
    let ctl = std::env::var("LLMVAULT_TEST_POSTGRES_CTL")
        .expect("LLMVAULT_TEST_POSTGRES_CTL: run under `bash .ci/postgres`");
    let t = new_vault_on(Backend::Postgres);

    let acked = AtomicUsize::new(0);
    let restarted = AtomicBool::new(false);
    let (ids, errors) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut ids = Vec::new();
            let mut errors = Vec::new();
            let mut after_restart = 0;
            let mut n = 0;
            while after_restart < 40 {
                n += 1;
                match t.put(record("c", Some("s"), &format!("record {n}"))) {
                    Ok(id) => {
                        // Read back at once: reads append to the read log,
                        // whose connection the restart also cuts.
                        match t.get(id) {
                            Ok(r) => {
                                assert!(r.prompt()[0].content().ends_with(&format!(" record {n}")))
                            }
                            Err(e) => errors.push(e),
                        }
                        ids.push((id, n));
                        acked.fetch_add(1, Ordering::SeqCst);
                        if restarted.load(Ordering::SeqCst) {
                            after_restart += 1;
                        }
                    }
                    Err(e) => errors.push(e),
                }
                assert!(n < 100_000, "the loop never resumed");
            }
            (ids, errors)
        });
        while acked.load(Ordering::SeqCst) < 40 && !writer.is_finished() {
            std::thread::yield_now();
        }
        let status = std::process::Command::new(&ctl)
            .arg("restart")
            .status()
            .unwrap();
        assert!(status.success(), "restarting the server failed");
        restarted.store(true, Ordering::SeqCst);
        writer.join().unwrap()
    });

    // What failed, failed clearly: the server was gone, nothing else.
    for e in &errors {
        assert!(
            matches!(e, Error::Storage(_) | Error::Busy),
            "unexpected error during the restart: {e:?}"
        );
    }
    // Every acknowledged write is there.
    for (id, n) in &ids {
        let r = t.get(*id).unwrap();
        assert!(r.prompt()[0].content().ends_with(&format!(" record {n}")));
    }
    assert!(ids.len() >= 80);
    t.audit().verify().unwrap();
    eprintln!(
        "restart: {} writes acknowledged, {} calls failed while the server was down",
        ids.len(),
        errors.len()
    );
}
