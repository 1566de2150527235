//! Retention policy: how long records live, and which epoch (and so which
//! data key) a record's expiry falls in.

use std::time::{Duration, SystemTime};

use crate::codec::to_millis;
use crate::error::{Error, Result};

/// Default time a record is kept: 30 days.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 86_400);
/// Default length of a retention epoch: one day. Records whose expiry falls
/// in the same epoch (and that share a subject) share a data key, which is
/// destroyed when the epoch ends.
pub const DEFAULT_EPOCH: Duration = Duration::from_secs(86_400);

/// The rules a vault applies to every record's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetentionPolicy {
    pub(crate) default_ttl: Duration,
    pub(crate) max_ttl: Option<Duration>,
    pub(crate) epoch: Duration,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            default_ttl: DEFAULT_TTL,
            max_ttl: None,
            epoch: DEFAULT_EPOCH,
        }
    }
}

impl RetentionPolicy {
    /// Checks that the policy is coherent.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.default_ttl.is_zero() {
            return Err(invalid("default ttl", "must be longer than zero"));
        }
        if self.epoch < Duration::from_secs(1) {
            return Err(invalid("retention epoch", "must be at least one second"));
        }
        self.check_ttl(self.default_ttl)
    }

    fn check_ttl(&self, ttl: Duration) -> Result<()> {
        match self.max_ttl {
            Some(max) if ttl > max => Err(Error::TtlTooLong {
                requested: ttl,
                max,
            }),
            _ => Ok(()),
        }
    }

    /// The expiry, in Unix ms, of a record stored at `now` with `ttl` (or
    /// the default).
    ///
    /// # Errors
    /// [`Error::TtlTooLong`] above the maximum; [`Error::InvalidInput`] for
    /// a zero TTL or one that overflows the calendar.
    pub(crate) fn expiry_ms(&self, now: SystemTime, ttl: Option<Duration>) -> Result<i64> {
        let ttl = ttl.unwrap_or(self.default_ttl);
        if ttl.is_zero() {
            return Err(invalid("ttl", "must be longer than zero"));
        }
        self.check_ttl(ttl)?;
        let expires = now
            .checked_add(ttl)
            .ok_or_else(|| invalid("ttl", "expiry is beyond the representable time"))?;
        let ms = to_millis(expires);
        if ms == i64::MAX {
            return Err(invalid("ttl", "expiry is beyond the representable time"));
        }
        Ok(ms)
    }

    /// The end of the epoch that holds `expires_at_ms`: strictly after it,
    /// so the key for the epoch outlives every record it sealed.
    ///
    /// `None` when that end is not representable (an expiry near the ends
    /// of `i64`, as only a damaged or hostile row holds): the caller
    /// refuses the value. Wrapping or saturating would give an epoch end
    /// at or before the expiry, and a key destroyed while its record lives.
    pub(crate) fn epoch_end_ms(&self, expires_at_ms: i64) -> Option<i64> {
        let epoch = i64::try_from(self.epoch.as_millis()).ok()?.max(1);
        let start = expires_at_ms.checked_sub(expires_at_ms.rem_euclid(epoch))?;
        start.checked_add(epoch)
    }
}

/// The error for an expiry whose retention epoch cannot be represented.
pub(crate) fn unrepresentable_expiry() -> Error {
    invalid("ttl", "expiry is beyond the representable time")
}

fn invalid(what: &'static str, reason: &str) -> Error {
    Error::InvalidInput {
        what,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn epoch_end_is_strictly_after_expiry() {
        let p = RetentionPolicy::default();
        let day = 86_400_000;
        assert_eq!(p.epoch_end_ms(0), Some(day));
        assert_eq!(p.epoch_end_ms(day - 1), Some(day));
        assert_eq!(p.epoch_end_ms(day), Some(2 * day));
        assert_eq!(p.epoch_end_ms(-1), Some(0));
    }

    /// Hostile expiries from a damaged row: refused, never wrapped,
    /// saturated or panicking (debug builds panic on overflow).
    #[test]
    fn epoch_end_refuses_unrepresentable_expiries() {
        let p = RetentionPolicy::default();
        assert_eq!(p.epoch_end_ms(i64::MAX), None);
        assert_eq!(p.epoch_end_ms(i64::MAX - 1), None);
        assert_eq!(p.epoch_end_ms(i64::MIN), None);
        let huge = RetentionPolicy {
            epoch: Duration::MAX,
            ..p
        };
        assert_eq!(huge.epoch_end_ms(0), None);
        for e in [i64::MIN + 86_400_000, -5, 0, 1 << 50] {
            let end = p.epoch_end_ms(e).unwrap();
            assert!(end > e, "{e}");
        }
    }

    #[test]
    fn ttl_bounds() {
        let p = RetentionPolicy {
            max_ttl: Some(Duration::from_secs(100)),
            default_ttl: Duration::from_secs(10),
            ..Default::default()
        };
        let now = UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(p.expiry_ms(now, None).unwrap(), 1_010_000);
        assert_eq!(
            p.expiry_ms(now, Some(Duration::from_secs(100))).unwrap(),
            1_100_000
        );
        assert!(matches!(
            p.expiry_ms(now, Some(Duration::from_secs(101))),
            Err(Error::TtlTooLong { .. })
        ));
        assert!(matches!(
            p.expiry_ms(now, Some(Duration::ZERO)),
            Err(Error::InvalidInput { .. })
        ));
        let incoherent = RetentionPolicy {
            default_ttl: Duration::from_secs(200),
            ..p
        };
        assert!(incoherent.validate().is_err());
    }
}
