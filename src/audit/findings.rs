//! Checking the whole chain and naming every bad entry, not only the
//! first: for looking at a damaged log, where `verify` stops at the first
//! fault and hides what comes after it.

use std::ops::RangeInclusive;
use subtle::ConstantTimeEq;

use super::chain::{chain_mac, opens_clean};
use super::{AuditHead, AuditKeys};
use crate::store::AuditRow;

/// What [`Audit::verify_all`](crate::audit::Audit::verify_all) found: every entry
/// that does not verify and every position with no entry, with the walk
/// carried on past each of them.
///
/// Past a bad entry the walk picks the chain up again: the next entry is
/// checked against the MAC stored for the bad one and against the MAC
/// the bad one's contents should have, so one altered entry (its body, its
/// time or its MAC) is named alone. After a missing position the next
/// entry's own seal is still checked, but not its link to what was
/// removed. An entry next to a damaged one can be named too when more than
/// one column of a row was altered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditFindings {
    /// Entries that verified.
    pub verified: u64,
    /// Entries present that did not verify (altered, inserted, moved,
    /// unreadable, or not the kept head's MAC), as ranges of consecutive
    /// sequence numbers, oldest first.
    pub bad: Vec<RangeInclusive<u64>>,
    /// Positions with no entry (removed or renumbered entries, and a tail
    /// cut off before a kept head), as ranges, oldest first.
    pub missing: Vec<RangeInclusive<u64>>,
    /// The newest entry present, with its MAC as stored.
    pub head: AuditHead,
}

impl AuditFindings {
    /// Whether every entry verified and none is missing: then
    /// [`Audit::verify`](crate::audit::Audit::verify) passes too.
    pub fn is_clean(&self) -> bool {
        self.bad.is_empty() && self.missing.is_empty()
    }

    /// The first bad or missing position: the one
    /// [`Audit::verify`](crate::audit::Audit::verify) names.
    pub fn first_fault(&self) -> Option<u64> {
        let first = |ranges: &[RangeInclusive<u64>]| ranges.first().map(|r| *r.start());
        match (first(&self.bad), first(&self.missing)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Walks the chain from seq 1, row by row, collecting findings.
pub(crate) struct FullVerifier<'a> {
    keys: &'a AuditKeys,
    kept_head: Option<AuditHead>,
    next: u64,
    /// MACs the next entry may chain from: the one stored with the entry
    /// before, and the one computed over that entry's contents (the same
    /// unless its MAC column was altered). Empty after a missing position.
    prev: Vec<[u8; 32]>,
    findings: AuditFindings,
}

impl<'a> FullVerifier<'a> {
    pub(crate) fn new(keys: &'a AuditKeys, kept_head: Option<AuditHead>) -> Self {
        Self {
            keys,
            kept_head,
            next: 1,
            prev: vec![[0; 32]],
            findings: AuditFindings {
                verified: 0,
                bad: Vec::new(),
                missing: Vec::new(),
                head: AuditHead {
                    seq: 0,
                    mac: [0; 32],
                },
            },
        }
    }

    /// Checks the next row present (rows come in ascending `seq`).
    pub(crate) fn push(&mut self, row: &AuditRow) {
        if row.seq > self.next {
            add(&mut self.findings.missing, self.next..=row.seq - 1);
            self.prev.clear();
        }
        let computed: Vec<[u8; 32]> = self
            .prev
            .iter()
            .map(|p| chain_mac(self.keys, p, row.seq, row.at_ms, &row.sealed))
            .collect();
        // After a gap the link cannot be checked: the entry's own seal
        // (bound to its seq and time) still is.
        // MACs compared in constant time, as in `chain.rs`.
        let linked = computed.is_empty() || computed.iter().any(|c| bool::from(c.ct_eq(&row.mac)));
        let head_ok = self
            .kept_head
            .filter(|h| h.seq == row.seq)
            .is_none_or(|h| bool::from(h.mac.ct_eq(&row.mac)));
        if linked && head_ok && opens_clean(self.keys, row) {
            self.findings.verified += 1;
            self.prev = vec![row.mac];
        } else {
            add(&mut self.findings.bad, row.seq..=row.seq);
            self.prev = vec![row.mac];
            if let Some(&own) = computed.first().filter(|c| **c != row.mac) {
                self.prev.push(own);
            }
        }
        self.findings.head = AuditHead {
            seq: row.seq,
            mac: row.mac,
        };
        self.next = row.seq.saturating_add(1);
    }

    /// Ends the walk: a log that stops before the kept head is missing the
    /// rest.
    pub(crate) fn finish(mut self) -> AuditFindings {
        if let Some(h) = self.kept_head.filter(|h| h.seq >= self.next) {
            add(&mut self.findings.missing, self.next..=h.seq);
        }
        self.findings
    }
}

/// Appends `r`, merged into the last range when it follows on.
fn add(ranges: &mut Vec<RangeInclusive<u64>>, r: RangeInclusive<u64>) {
    if let Some(last) = ranges.last_mut()
        && last.end().checked_add(1) == Some(*r.start())
    {
        *last = *last.start()..=*r.end();
        return;
    }
    ranges.push(r);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_positions_merge_into_one_range() {
        let mut r = Vec::new();
        add(&mut r, 3..=3);
        add(&mut r, 4..=4);
        add(&mut r, 6..=9);
        add(&mut r, 10..=10);
        assert_eq!(r, vec![3..=4, 6..=10]);
    }

    #[test]
    fn the_first_fault_is_the_earliest_of_bad_and_missing() {
        let mut f = FullVerifier::new(
            &AuditKeys::derive(&crate::secret::SecretKey::zeroed()),
            None,
        )
        .finish();
        assert!(f.is_clean() && f.first_fault().is_none());
        f.bad = vec![7..=7];
        f.missing = vec![5..=6];
        assert_eq!(f.first_fault(), Some(5));
    }
}
