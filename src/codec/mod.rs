//! Every bincode call in the crate lives under this module, so the stored
//! encodings can only change here, and known-answer tests pin them.
//! bincode 2.0.1 (serde, standard config: little-endian, varint lengths)
//! is pinned: 3.0.0 is an empty release.

pub(crate) mod audit;
pub(crate) mod pii;
pub(crate) mod record;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bincode::config::{Configuration, Limit, LittleEndian, Varint};

pub(crate) use record::{MAX_ITEMS, MAX_RECORD_BYTES};

/// The decoder's allocation cap. bincode 2 charges the bytes of each
/// string and 8 bytes per length prefix or integer; every record `encode`
/// accepts (16 MiB, 3 × 65,536 items) stays well under it.
const DECODE_LIMIT: usize = 32 << 20;

type Config = Configuration<LittleEndian, Varint, Limit<DECODE_LIMIT>>;

fn config() -> Config {
    bincode::config::standard().with_limit::<DECODE_LIMIT>()
}

/// Milliseconds since the Unix epoch, saturating (times before 1970 are
/// clamped to it).
pub(crate) fn to_millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The inverse of [`to_millis`]; negative values map to the epoch.
pub(crate) fn from_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
