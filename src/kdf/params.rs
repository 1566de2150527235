//! Argon2id cost parameters, bounded so a hostile header cannot demand
//! unbounded memory or time.

use crate::error::{Error, Result};

/// Argon2id cost parameters. A value of this type is always within bounds:
/// the only way to build one is [`KdfParams::new`] (or the defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
}

impl KdfParams {
    /// Default memory cost: 64 MiB.
    pub const DEFAULT_MEMORY_KIB: u32 = 64 * 1024;
    /// Default number of passes.
    pub const DEFAULT_ITERATIONS: u32 = 3;
    /// Default number of lanes.
    pub const DEFAULT_PARALLELISM: u32 = 1;

    /// Smallest memory cost accepted: 8 MiB.
    pub const MIN_MEMORY_KIB: u32 = 8 * 1024;
    /// Largest memory cost accepted: 4 GiB.
    pub const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
    /// Smallest number of passes accepted.
    pub const MIN_ITERATIONS: u32 = 1;
    /// Largest number of passes accepted.
    pub const MAX_ITERATIONS: u32 = 64;
    /// Smallest number of lanes accepted.
    pub const MIN_PARALLELISM: u32 = 1;
    /// Largest number of lanes accepted.
    pub const MAX_PARALLELISM: u32 = 16;

    /// Default ceiling on what a vault header may ask of an open
    /// ([`VaultOptions::max_kdf`](crate::VaultOptions::max_kdf)): 1 GiB,
    /// 8 passes, 16 lanes: 16 times the default memory and about 43 times
    /// its work (memory × passes).
    pub const DEFAULT_OPEN_LIMIT: Self = Self {
        memory_kib: 1024 * 1024,
        iterations: 8,
        parallelism: Self::MAX_PARALLELISM,
    };

    /// Checks the bounds and builds the parameters.
    ///
    /// # Errors
    /// [`Error::KdfParams`] naming the first parameter out of range, with
    /// the range allowed.
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self> {
        check(
            "memory_kib",
            memory_kib,
            Self::MIN_MEMORY_KIB,
            Self::MAX_MEMORY_KIB,
        )?;
        check(
            "iterations",
            iterations,
            Self::MIN_ITERATIONS,
            Self::MAX_ITERATIONS,
        )?;
        check(
            "parallelism",
            parallelism,
            Self::MIN_PARALLELISM,
            Self::MAX_PARALLELISM,
        )?;
        Ok(Self {
            memory_kib,
            iterations,
            parallelism,
        })
    }

    /// The cheapest parameters accepted (8 MiB, 1 pass, 1 lane): for tests
    /// and for vaults opened with a raw key, where the KDF does no work.
    pub const fn minimum() -> Self {
        Self {
            memory_kib: Self::MIN_MEMORY_KIB,
            iterations: Self::MIN_ITERATIONS,
            parallelism: Self::MIN_PARALLELISM,
        }
    }

    /// Each parameter at least as strong as in `self` and in `other`.
    pub(crate) fn at_least(&self, other: &Self) -> Self {
        Self {
            memory_kib: self.memory_kib.max(other.memory_kib),
            iterations: self.iterations.max(other.iterations),
            parallelism: self.parallelism.max(other.parallelism),
        }
    }

    /// Refuses parameters that ask for more than `limit` in any one of
    /// them, naming what was asked and what is allowed.
    pub(crate) fn within(&self, limit: &Self) -> Result<()> {
        check(
            "memory_kib",
            self.memory_kib,
            Self::MIN_MEMORY_KIB,
            limit.memory_kib,
        )?;
        check(
            "iterations",
            self.iterations,
            Self::MIN_ITERATIONS,
            limit.iterations,
        )?;
        check(
            "parallelism",
            self.parallelism,
            Self::MIN_PARALLELISM,
            limit.parallelism,
        )
    }

    /// Memory cost in KiB.
    pub const fn memory_kib(&self) -> u32 {
        self.memory_kib
    }

    /// Number of passes.
    pub const fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Number of lanes.
    pub const fn parallelism(&self) -> u32 {
        self.parallelism
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self {
            memory_kib: Self::DEFAULT_MEMORY_KIB,
            iterations: Self::DEFAULT_ITERATIONS,
            parallelism: Self::DEFAULT_PARALLELISM,
        }
    }
}

fn check(name: &'static str, value: u32, min: u32, max: u32) -> Result<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(Error::KdfParams {
            name,
            requested: value.into(),
            min: min.into(),
            max: max.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_64_mib_3_passes_1_lane() {
        let p = KdfParams::default();
        assert_eq!(
            (p.memory_kib(), p.iterations(), p.parallelism()),
            (65_536, 3, 1)
        );
    }

    #[test]
    fn bounds_are_inclusive() {
        assert!(KdfParams::new(8 * 1024, 1, 1).is_ok());
        assert!(KdfParams::new(4 * 1024 * 1024, 64, 16).is_ok());
    }

    #[test]
    fn out_of_bounds_names_the_parameter() {
        let cases = [
            ((8 * 1024 - 1, 1, 1), "memory_kib"),
            ((4 * 1024 * 1024 + 1, 1, 1), "memory_kib"),
            ((8 * 1024, 0, 1), "iterations"),
            ((8 * 1024, 65, 1), "iterations"),
            ((8 * 1024, 1, 0), "parallelism"),
            ((8 * 1024, 1, 17), "parallelism"),
        ];
        for ((m, t, p), expected) in cases {
            match KdfParams::new(m, t, p) {
                Err(Error::KdfParams { name, .. }) => assert_eq!(name, expected),
                other => panic!("({m}, {t}, {p}) gave {other:?}"),
            }
        }
    }
}
