//! Crash points for `tests/crash_points.rs`: only in builds with the cargo
//! feature `failpoints` (off by default, so never in a release of the
//! library). A test process arms a named point; the `failpoint!` call
//! placed there in the write path then calls `std::process::abort()`:
//! no unwinding, no destructors, no rollback, as close to pulling the
//! plug as a process can get at a chosen statement.
//!
//! The points (each a `failpoint!` in the write path: `src/tables/`, and
//! `src/store/split.rs` for the last):
//! - `record-inserted`: after a record row is inserted;
//! - `erase-records-deleted`: after `erase_subject` deleted the records,
//!   before it deletes their keys;
//! - `audit-appended`: after an audit row is inserted;
//! - `commit-before`: right before `COMMIT`;
//! - `commit-after`: right after `COMMIT` succeeded, before the call
//!   returns;
//! - `split-between-commits`: keys apart (`src/store/split.rs`), after
//!   the keys store committed, before the record store does.

use std::sync::Mutex;

/// Points armed in this process: name, and hits left until the abort.
static ARMED: Mutex<Vec<(&'static str, u64)>> = Mutex::new(Vec::new());

/// Every point a `failpoint!` names, so a test cannot arm a misspelled one
/// and wait for an abort that never comes.
pub const POINTS: [&str; 6] = [
    "record-inserted",
    "erase-records-deleted",
    "audit-appended",
    "commit-before",
    "commit-after",
    "split-between-commits",
];

/// Aborts the process at the `nth` hit (from 1) of `point` from now on.
///
/// # Panics
/// If `point` is not one of [`POINTS`] or `nth` is 0: a test bug.
pub fn arm(point: &str, nth: u64) {
    let name = POINTS
        .iter()
        .find(|p| **p == point)
        .unwrap_or_else(|| panic!("no failpoint named {point}"));
    assert!(nth > 0, "failpoints count hits from 1");
    ARMED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((name, nth));
}

/// Called where `failpoint!(point)` stands.
pub(crate) fn hit(point: &str) {
    let mut armed = ARMED.lock().unwrap_or_else(|e| e.into_inner());
    for (name, left) in armed.iter_mut() {
        if *name == point {
            *left -= 1;
            if *left == 0 {
                std::process::abort();
            }
        }
    }
    armed.retain(|(_, left)| *left > 0);
}
