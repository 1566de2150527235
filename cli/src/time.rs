//! Times and durations on the command line and in JSON.
//!
//! Times are written as RFC 3339 in UTC with milliseconds
//! (`2025-03-01T12:00:00.250Z`), the vault's own precision. A time that
//! RFC 3339 cannot hold (before 1970 or after 9999) is written as a number
//! of Unix milliseconds, and both forms are read back.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::fail::Fail;

/// The latest instant RFC 3339 formatting handles: 9999-12-31T23:59:59.999Z.
const MAX_RFC3339_MS: u128 = 253_402_300_799_999;

/// A time as it appears in JSON: RFC 3339 text, or Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum JsonTime {
    /// `2025-03-01T12:00:00.250Z`.
    Text(String),
    /// Milliseconds since the Unix epoch (negative before it).
    Millis(i64),
}

impl JsonTime {
    /// The form to write for `t`.
    pub fn from_system(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) if d.as_millis() <= MAX_RFC3339_MS => {
                Self::Text(humantime::format_rfc3339_millis(t).to_string())
            }
            Ok(d) => Self::Millis(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Err(e) => Self::Millis(
                i64::try_from(e.duration().as_millis())
                    .map(|ms| -ms)
                    .unwrap_or(i64::MIN),
            ),
        }
    }

    /// The instant written.
    pub fn to_system(&self) -> Result<SystemTime, Fail> {
        match self {
            Self::Text(s) => humantime::parse_rfc3339_weak(s)
                .map_err(|e| Fail::usage(format!("bad time {s:?}: {e} (use RFC 3339)"))),
            Self::Millis(ms) => {
                let d = Duration::from_millis(ms.unsigned_abs());
                let t = if *ms >= 0 {
                    UNIX_EPOCH.checked_add(d)
                } else {
                    UNIX_EPOCH.checked_sub(d)
                };
                t.ok_or_else(|| Fail::usage(format!("time {ms} ms is out of range")))
            }
        }
    }
}

/// Human form of a time (the JSON form, without quotes).
pub fn show(t: SystemTime) -> String {
    match JsonTime::from_system(t) {
        JsonTime::Text(s) => s,
        JsonTime::Millis(ms) => format!("@{ms}ms"),
    }
}

/// A `--since`/`--until` value: RFC 3339 or Unix seconds.
pub fn parse_flag(s: &str) -> Result<SystemTime, Fail> {
    if let Ok(secs) = s.parse::<u64>() {
        return UNIX_EPOCH
            .checked_add(Duration::from_secs(secs))
            .ok_or_else(|| Fail::usage(format!("time {s} is out of range")));
    }
    humantime::parse_rfc3339_weak(s).map_err(|e| {
        Fail::usage(format!(
            "bad time {s:?}: {e}; use RFC 3339 (2025-03-01T12:00:00Z) or unix seconds"
        ))
    })
}

/// A `--ttl` value: `90d`, `12h`, `30m 10s`.
pub fn parse_duration(s: &str) -> Result<Duration, Fail> {
    humantime::parse_duration(s)
        .map_err(|e| Fail::usage(format!("bad duration {s:?}: {e}; use e.g. 90d or 12h")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_in_both_forms() {
        for ms in [0_i64, 1_700_000_000_123, -5_000, 253_402_300_800_000] {
            let t = JsonTime::Millis(ms).to_system().unwrap();
            let written = JsonTime::from_system(t);
            assert_eq!(written.to_system().unwrap(), t, "{written:?}");
        }
        assert!(matches!(
            JsonTime::from_system(UNIX_EPOCH),
            JsonTime::Text(ref s) if s == "1970-01-01T00:00:00.000Z"
        ));
    }

    #[test]
    fn flags_take_unix_seconds_or_rfc3339() {
        assert_eq!(
            parse_flag("60").unwrap(),
            UNIX_EPOCH + Duration::from_secs(60)
        );
        assert_eq!(
            parse_flag("1970-01-01T00:01:00Z").unwrap(),
            UNIX_EPOCH + Duration::from_secs(60)
        );
        assert!(parse_flag("yesterday").is_err());
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
    }
}
