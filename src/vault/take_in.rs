//! Taking staged records in (FORMAT.md §12), inside a keyed write
//! transaction: each staged record's proof is checked first, then its id
//! against the high-water mark; then it is opened, held to the rules a
//! `put` applies, and sealed again under the vault's keys and tags with
//! the same id. A record that fails any step is set aside, never an
//! error: reads, purges and erasures take records in first, and one bad
//! row must not block them.

use std::collections::HashMap;
use std::time::SystemTime;

use super::Vault;
use super::ingest::IngestMaterial;
use super::write::{Pending, Sealer};
use crate::audit::{Actor, AuditAction, AuditOutcome, Event};
use crate::codec;
use crate::error::{Error, Result};
use crate::ingest::{IngestMac, PROOF_LEN, StagedSlot, ingest_key_aad, unwrap_with};
use crate::keys::{DataKey, IdTag, KeyScope};
use crate::record::{NewRecord, Record, RecordId};
use crate::seal::{self, IngestBinding};
use crate::store::IngestRow;
use crate::tables::Txn;

/// Staged rows read per query during a take-in.
const STAGED_BATCH: usize = 16;
/// How far above the high-water mark a staged id may be. Ingestors take
/// ids from the counter one by one; a larger jump is a planted row that
/// would otherwise spend the id space.
const MAX_ID_GAP: u64 = 1 << 32;

/// A read of a row a staged record leads to (its record slot, its ingest
/// key): the transaction's own failures stay errors; a row that does not
/// decode (a column of the wrong type, a damaged value) is `None`, and
/// the staged record is set aside rather than blocking the call.
fn row_damage<T>(read: Result<T>) -> Result<Option<T>> {
    match read {
        Ok(v) => Ok(Some(v)),
        Err(e @ (Error::Busy | Error::DiskFull | Error::KeyChanged | Error::Io(_))) => Err(e),
        Err(_) => Ok(None),
    }
}

impl Vault {
    /// Takes staged records in by a write of their own, if any wait (a
    /// cheap check when none do). For calls that do not write anyway.
    pub(super) fn adopt_ingested(&self) -> Result<()> {
        if !self.store.has_ingested()? {
            return Ok(());
        }
        let mut txn = self.begin()?;
        let mut sealers = HashMap::new();
        self.take_in(&mut txn, &mut sealers)?;
        self.count_key_uses(&mut txn, &sealers)?;
        self.commit_keys(txn, sealers, &[])?;
        Ok(())
    }

    /// Takes in, inside `txn`, every staged record that passes, sealing
    /// with `sealers` (the caller counts their uses and caches them), and
    /// audits what it took and what it set aside. Returns the high-water
    /// mark after: the caller allocates ids above it.
    ///
    /// Every keyed write that allocates record ids calls this before it
    /// allocates. Ingestors allocate an id and stage the row in one
    /// transaction, so staged ids commit in increasing order and below
    /// the counter; taking them all in before the vault allocates keeps
    /// every genuine staged id above the mark.
    ///
    /// # Errors
    /// Only what the transaction itself meets: [`Error::Busy`],
    /// [`Error::Storage`], [`Error::KeyChanged`]. Nothing about a staged
    /// row is an error, nor is a damaged data key it would be sealed
    /// under (the row is set aside; `verify` names the key).
    pub(super) fn take_in(
        &self,
        txn: &mut Txn<'_>,
        sealers: &mut HashMap<KeyScope, Sealer>,
    ) -> Result<u64> {
        let (mut mark, stored) = self.read_high_water(txn)?;
        if !txn.has_ingested()? {
            return Ok(mark);
        }
        // The loose row can be put back from an older copy; what the audit
        // chain says was stored cannot be lowered that way.
        mark = mark.max(self.audited_high_water(txn)?);
        let material = match self.ingest_material(txn) {
            Ok(m) => m,
            // Damaged ingest rows: no staged record can be checked, so
            // none is accepted (and none blocks the call).
            Err(Error::KeyTampered { .. }) => None,
            Err(e) => return Err(e),
        };
        let now = self.clock.now();
        let set_aside_until = self.policy.expiry_ms(now, None)?;
        let mut check = material.map(|material| Check {
            mac: IngestMac::new(&material.mac_key),
            material,
            keys: HashMap::new(),
            now,
        });
        let mut adopted = Vec::new();
        let mut refused = Vec::new();
        let mut masked: HashMap<IdTag, i64> = HashMap::new();
        // In small batches, each row's bytes capped: however many rows, and
        // however large, a writer of the file planted, memory stays bounded.
        let mut after = 0;
        loop {
            let batch = txn.staged(after, STAGED_BATCH)?;
            let Some(last) = batch.last() else { break };
            after = last.id;
            for row in batch {
                let accepted = match check.as_mut() {
                    Some(check) => self.accept(txn, check, &row, mark)?,
                    None => None,
                };
                let Some((pending, is_masked)) = accepted else {
                    txn.set_aside_staged(row.id, set_aside_until)?;
                    refused.push(row.id);
                    continue;
                };
                let conversation = pending.conversation;
                let id = RecordId::from_u64(row.id);
                match self.seal_into(txn, sealers, id, pending) {
                    Ok(()) => {}
                    // The vault's own key for the record's scope is damaged
                    // (`verify` names it; nothing was written): the record
                    // cannot be sealed, and must not block the call.
                    Err(Error::KeyTampered { .. }) => {
                        txn.set_aside_staged(row.id, set_aside_until)?;
                        refused.push(row.id);
                        continue;
                    }
                    Err(e) => return Err(e),
                }
                if is_masked {
                    let until = masked.entry(conversation).or_insert(i64::MIN);
                    *until = (*until).max(row.expires_at_ms);
                }
                txn.delete_ingested(row.id)?;
                mark = row.id;
                adopted.push(id);
            }
        }
        // As `put` does: a masked record keeps its conversation's mapping
        // alive as long as itself (its expiry is within the ceiling).
        for (conversation, until) in masked {
            match self.extend_mapping(txn, sealers, conversation, until) {
                // A mapping that does not open cannot be kept alive; the
                // record is stored all the same, and reads name the damage.
                Ok(())
                | Err(Error::Corrupt { .. } | Error::KeyTampered { .. } | Error::Storage(_)) => {}
                Err(e) => return Err(e),
            }
        }
        if !adopted.is_empty() || !stored {
            self.set_high_water(txn, mark)?;
        }
        let actor = Actor::new("ingest");
        if !adopted.is_empty() {
            let count = adopted.len() as u64;
            let event = Event::new(AuditAction::Ingest)
                .records(adopted)
                .count(count);
            self.log_in(txn, &actor, &event, &AuditOutcome::Ok)?;
        }
        if !refused.is_empty() {
            // However many a forger staged, the entry stays bounded: past
            // a limit it names a summary instead of each id.
            let count = refused.len() as u64;
            let event = Event::new(AuditAction::IngestSetAside)
                .records(refused.into_iter().map(RecordId::from_u64))
                .count(count);
            self.log_in(txn, &actor, &event, &AuditOutcome::Ok)?;
        }
        Ok(mark)
    }

    /// How many staged records were set aside, for `verify`.
    pub(super) fn set_aside_count(&self) -> Result<usize> {
        Ok(usize::try_from(self.store.set_aside_count()?).unwrap_or(usize::MAX))
    }

    /// The record a staged row holds, ready to seal, if it passes; `None`
    /// sets it aside. Errors are the transaction's own, never the row's.
    fn accept(
        &self,
        txn: &mut Txn<'_>,
        check: &mut Check,
        row: &IngestRow,
        mark: u64,
    ) -> Result<Option<(Pending, bool)>> {
        // The proof first: nothing it does not cover is looked at.
        let Some(envelope) = proved_envelope(&check.mac, row) else {
            return Ok(None);
        };
        // Never under the id of a record stored, or stored and deleted,
        // before: a copy of a staged row cannot bring an erased record back.
        // Nor far above the mark: an id near the top would leave the vault
        // no ids to allocate.
        if row.id <= mark || row.id > mark.saturating_add(MAX_ID_GAP) {
            return Ok(None);
        }
        match row_damage(txn.record(row.id))? {
            Some(None) => {}
            Some(Some(_)) | None => return Ok(None),
        }
        if !check.keys.contains_key(&row.key_id) {
            let key = row_damage(txn.ingest_key(row.key_id))?
                .flatten()
                .and_then(|k| {
                    let aad = ingest_key_aad(k.id, k.not_after_ms);
                    unwrap_with(&check.material.secret, &k.wrapped, &aad)
                });
            let key = key.map(|k| DataKey::new(row.key_id, &k));
            check.keys.insert(row.key_id, key);
        }
        let Some(key) = check.keys.get(&row.key_id).and_then(Option::as_ref) else {
            return Ok(None);
        };
        let Some(record) = open_staged(key, row, envelope) else {
            return Ok(None);
        };
        // The rules `put` applies, with the vault's own policy: the
        // ingestor's options are its own business.
        if !self.within_ttl_ceiling(row.expires_at_ms, check.now) {
            return Ok(None);
        }
        let created_at_ms = codec::to_millis(record.created_at());
        let new = NewRecord::from(record);
        if super::check_ids(&new).is_err() {
            return Ok(None);
        }
        let Ok(pending) = self.pending(&new, created_at_ms, row.expires_at_ms) else {
            return Ok(None);
        };
        Ok(Some((pending, new.masked)))
    }

    /// Whether an expiry is within the vault's maximum TTL from `now`, as
    /// a `put` at this moment would allow.
    fn within_ttl_ceiling(&self, expires_at_ms: i64, now: SystemTime) -> bool {
        match self.policy.max_ttl.map(|max| now.checked_add(max)) {
            None | Some(None) => true,
            Some(Some(ceiling)) => expires_at_ms <= codec::to_millis(ceiling),
        }
    }
}

/// What one take-in checks staged rows with.
struct Check {
    material: IngestMaterial,
    mac: IngestMac,
    /// Ingest data keys unwrapped so far (`None`: missing or damaged).
    keys: HashMap<u64, Option<DataKey>>,
    now: SystemTime,
}

/// The envelope of a staged row, if the row's proof is the one an ingest
/// key holding `mac` made for it.
pub(crate) fn proved_envelope<'r>(mac: &IngestMac, row: &'r IngestRow) -> Option<&'r [u8]> {
    let at = row.sealed.len().checked_sub(PROOF_LEN)?;
    let (envelope, proof) = row.sealed.split_at(at);
    let slot = StagedSlot {
        id: row.id,
        key_id: row.key_id,
        expires_at_ms: row.expires_at_ms,
    };
    mac.verify(&slot, envelope, proof).then_some(envelope)
}

/// Opens a staged envelope whose proof passed. Only the key-committing
/// envelope: every ingestor that makes proofs writes it, so an older,
/// non-committing one with a valid proof was made on purpose.
pub(crate) fn open_staged(key: &DataKey, row: &IngestRow, envelope: &[u8]) -> Option<Record> {
    if envelope.first() != Some(&seal::ENVELOPE_VERSION) {
        return None;
    }
    let id = RecordId::from_u64(row.id);
    let binding = IngestBinding {
        id,
        expires_at_ms: row.expires_at_ms,
    };
    let plain = seal::open(key, &binding, envelope.to_vec()).ok()?;
    let record = codec::record::decode(id, plain.bytes()).ok()?;
    (codec::to_millis(record.expires_at()) == row.expires_at_ms).then_some(record)
}
