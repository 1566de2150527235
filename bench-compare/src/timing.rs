//! One way of timing in-memory loops, shared by both binaries: run for at
//! least a target time, three times, and keep the median rate.

use std::time::{Duration, Instant};

const TARGET: Duration = Duration::from_millis(700);

/// Units per second of `f`, which does some work and returns its units.
pub fn rate(mut f: impl FnMut() -> u64) -> f64 {
    let mut rates: Vec<f64> = (0..3)
        .map(|_| {
            let start = Instant::now();
            let mut units = 0u64;
            while start.elapsed() < TARGET {
                for _ in 0..16 {
                    units += f();
                }
            }
            units as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[1]
}
