//! The record ids an audit entry names, kept to a bounded size whatever
//! the call touched (FORMAT.md §11): up to [`AUDIT_MAX_LISTED_RECORDS`]
//! are listed; past that the entry keeps their count, lowest and highest
//! id and a digest instead.

use sha2::{Digest, Sha256};

use crate::record::RecordId;

/// The most record ids one audit entry lists one by one.
///
/// A call that names more (a large `query`, `put_batch`, `conversation`
/// or take-in) is recorded with a [`RecordSummary`] instead: an entry
/// that listed millions of ids would outgrow what its decoder accepts,
/// and then read as tampered for good.
pub const AUDIT_MAX_LISTED_RECORDS: usize = 1 << 16;

/// FORMAT.md §11: the domain of the record-id digest.
const DIGEST_LABEL: &[u8] = b"llmvault/v1/audit-record-ids";

/// The record ids of a call that named more than
/// [`AUDIT_MAX_LISTED_RECORDS`], too many for its audit entry to list.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let opts = llmvault::VaultOptions::default().kdf(llmvault::KdfParams::minimum());
/// # let vault = llmvault::Vault::create(dir.path().join("v"), llmvault::KeySource::passphrase("pw"), opts)?;
/// # let _ = vault.query(&llmvault::Query::all())?;
/// // Does a summarized entry stand for the records a query returned?
/// let returned: Vec<llmvault::RecordId> = vec![];
/// for entry in vault.audit().entries(..)? {
///     if let Some(summary) = &entry.record_summary {
///         let _same = summary.matches(&returned);
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordSummary {
    /// How many ids the call named.
    pub count: u64,
    /// The lowest of them.
    pub lowest: RecordId,
    /// The highest of them. `highest - lowest + 1 == count` means the call
    /// named exactly that range (a `put_batch` always does).
    pub highest: RecordId,
    /// SHA-256 over `"llmvault/v1/audit-record-ids"` and each id as a
    /// big-endian u64, in ascending id order (the order every call names
    /// them in).
    pub digest: [u8; 32],
}

impl RecordSummary {
    /// Whether `ids` (in any order) are exactly the ids this summary
    /// stands for: same count, range and digest.
    pub fn matches(&self, ids: &[RecordId]) -> bool {
        let mut sorted: Vec<u64> = ids.iter().map(|id| id.as_u64()).collect();
        sorted.sort_unstable();
        let mut sum = Summing::default();
        sorted.into_iter().for_each(|id| sum.add(id));
        sum.finish().is_some_and(|s| s == *self)
    }
}

/// The ids a call names, as its entry will hold them: listed while few
/// enough, summarized (with flat memory) beyond.
#[derive(Debug, Clone, Default)]
pub(crate) struct RecordIds {
    listed: Vec<RecordId>,
    summing: Option<Summing>,
}

impl RecordIds {
    pub(crate) fn push(&mut self, id: RecordId) {
        if let Some(sum) = &mut self.summing {
            sum.add(id.as_u64());
        } else if self.listed.len() < AUDIT_MAX_LISTED_RECORDS {
            self.listed.push(id);
        } else {
            let mut sum = Summing::default();
            for listed in std::mem::take(&mut self.listed) {
                sum.add(listed.as_u64());
            }
            sum.add(id.as_u64());
            self.summing = Some(sum);
        }
    }

    /// The ids, when there are few enough to list (else empty).
    pub(crate) fn listed(&self) -> &[RecordId] {
        &self.listed
    }

    /// The summary, when there were too many to list.
    pub(crate) fn summary(&self) -> Option<RecordSummary> {
        self.summing.as_ref().and_then(Summing::finish)
    }
}

/// A running count, range and digest of ids.
#[derive(Debug, Clone, Default)]
struct Summing {
    count: u64,
    lowest: u64,
    highest: u64,
    hash: Option<Sha256>,
}

impl Summing {
    fn add(&mut self, id: u64) {
        let hash = self.hash.get_or_insert_with(|| {
            let mut h = Sha256::new();
            h.update(DIGEST_LABEL);
            h
        });
        hash.update(id.to_be_bytes());
        if self.count == 0 {
            (self.lowest, self.highest) = (id, id);
        }
        self.lowest = self.lowest.min(id);
        self.highest = self.highest.max(id);
        self.count += 1;
    }

    fn finish(&self) -> Option<RecordSummary> {
        let hash = self.hash.clone()?;
        Some(RecordSummary {
            count: self.count,
            lowest: RecordId::from_u64(self.lowest),
            highest: RecordId::from_u64(self.highest),
            digest: hash.finalize().into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(range: std::ops::Range<u64>) -> RecordIds {
        let mut ids = RecordIds::default();
        range.for_each(|i| ids.push(RecordId::from_u64(i)));
        ids
    }

    #[test]
    fn up_to_the_bound_ids_are_listed_past_it_summarized() {
        let n = AUDIT_MAX_LISTED_RECORDS as u64;
        let at_bound = ids(1..n + 1);
        assert_eq!(at_bound.listed().len(), AUDIT_MAX_LISTED_RECORDS);
        assert!(at_bound.summary().is_none());

        let past = ids(1..n + 2);
        assert!(past.listed().is_empty());
        let summary = past.summary().unwrap();
        assert_eq!(
            (summary.count, summary.lowest, summary.highest),
            (n + 1, RecordId::from_u64(1), RecordId::from_u64(n + 1))
        );
        let mut all: Vec<RecordId> = (1..n + 2).rev().map(RecordId::from_u64).collect();
        assert!(summary.matches(&all), "order does not matter");
        all.pop();
        assert!(!summary.matches(&all));
        all.push(RecordId::from_u64(n + 2));
        assert!(!summary.matches(&all), "same count, other range");
        let mut twice: Vec<RecordId> = (1..n + 2).map(RecordId::from_u64).collect();
        twice[1] = RecordId::from_u64(3);
        assert!(!summary.matches(&twice), "same count and range, other ids");
    }
}
