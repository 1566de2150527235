//! Storing records, and the calls that delete: purge and erase.

use std::collections::HashMap;
use std::sync::Arc;

use super::{EraseReport, PurgeReport, Vault};
use crate::audit::{Actor, AuditAction, AuditOutcome, Event, NEWEST_ROW, Newest};
use crate::codec::{self, to_millis};
use crate::error::{Error, Result};
use crate::keys::{DataKey, KeyScope, data_key_aad};
use crate::record::{NewRecord, RecordId, SubjectId};
use crate::seal::{self, Binding};
use crate::secret::SecretKey;
use crate::store::{KeyRow, RecordRow};
use crate::tables::Txn;

impl Vault {
    /// Seals and stores one record durably; returns its id.
    ///
    /// # Errors
    /// [`Error::TtlTooLong`] or [`Error::InvalidInput`] for a record the
    /// policy refuses; [`Error::Busy`] or [`Error::Storage`] if it could not
    /// be written (then nothing was).
    pub fn put(&self, record: NewRecord) -> Result<RecordId> {
        self.put_as(&self.actor, record)
    }

    pub(super) fn put_as(&self, actor: &Actor, record: NewRecord) -> Result<RecordId> {
        let result = self
            .store_records(actor, AuditAction::Put, vec![record])
            .and_then(|ids| {
                ids.into_iter().next().ok_or(Error::InvalidInput {
                    what: "record",
                    reason: "nothing was stored".into(),
                })
            });
        self.log_failed_write(actor, AuditAction::Put, &result);
        result
    }

    /// Seals and stores records in one transaction: all are stored or none.
    /// Ids come back in the order of `records`.
    ///
    /// # Errors
    /// As [`Vault::put`]; one refused record refuses the batch.
    pub fn put_batch(&self, records: Vec<NewRecord>) -> Result<Vec<RecordId>> {
        self.put_batch_as(&self.actor, records)
    }

    pub(super) fn put_batch_as(
        &self,
        actor: &Actor,
        records: Vec<NewRecord>,
    ) -> Result<Vec<RecordId>> {
        let result = self.store_records(actor, AuditAction::PutBatch, records);
        self.log_failed_write(actor, AuditAction::PutBatch, &result);
        result
    }

    /// Seals and stores `records`, and their audit entry, in one transaction.
    fn store_records(
        &self,
        actor: &Actor,
        action: AuditAction,
        records: Vec<NewRecord>,
    ) -> Result<Vec<RecordId>> {
        if records.is_empty() {
            let ids = Vec::new();
            self.log_alone(actor, Event::new(action), &Ok(()))?;
            return Ok(ids);
        }
        let now = self.clock.now();
        let now_ms = to_millis(now);
        let mut pending = Vec::with_capacity(records.len());
        for rec in &records {
            pending.push((self.prepare(rec, now, now_ms)?, rec.masked));
        }
        drop(records);

        let mut txn = self.begin()?;
        let mut sealers = HashMap::new();
        // Staged records first, inside this transaction: then every id this
        // call allocates is above them and above the high-water mark.
        let mark = self.take_in(&mut txn, &mut sealers)?;
        let n = pending.len() as u64;
        let above = mark.checked_add(1).ok_or_else(ids_exhausted)?;
        let first = txn.allocate_record_ids(n, above)?;
        let last = first.checked_add(n - 1).ok_or_else(ids_exhausted)?;
        self.set_high_water(&mut txn, last)?;
        // Every scope's sealing key is looked up below: at once, where the
        // backend can (one round trip on PostgreSQL, not one per subject).
        let scopes: std::collections::HashSet<KeyScope> =
            pending.iter().map(|(p, _)| p.scope).collect();
        if scopes.len() > 1 {
            let scopes: Vec<KeyScope> = scopes.into_iter().collect();
            txn.prefetch_active_keys(&scopes)?;
        }
        let mut ids = Vec::with_capacity(pending.len());
        let mut masked: HashMap<crate::keys::IdTag, i64> = HashMap::new();
        for (offset, (p, is_masked)) in pending.into_iter().enumerate() {
            let id = RecordId::from_u64(first + offset as u64);
            if is_masked {
                let until = masked.entry(p.conversation).or_insert(p.expires_at_ms);
                *until = (*until).max(p.expires_at_ms);
            }
            self.seal_into(&mut txn, &mut sealers, id, p)?;
            ids.push(id);
        }
        for (conversation, until) in masked {
            self.extend_mapping(&mut txn, &mut sealers, conversation, until)?;
        }
        self.count_key_uses(&mut txn, &sealers)?;
        let event = Event::new(action).records(ids.iter().copied());
        self.log_in(&mut txn, actor, &event, &AuditOutcome::Ok)?;
        self.commit_keys(txn, sealers, &[])?;
        Ok(ids)
    }

    /// Deletes every expired record and destroys the data keys whose epoch
    /// has ended. Cost grows with what expired, not with the vault's size.
    ///
    /// # Security
    /// SQLite's `secure_delete` overwrites the freed records, and the WAL
    /// is then checkpointed and truncated (best effort: a reader holding an
    /// old snapshot can delay it to a later write). See `docs/DESIGN.md`
    /// for what a copy-on-write filesystem or an SSD may still hold.
    ///
    /// # Clock
    /// Expiry is judged by the vault's clock, so a clock running behind
    /// would keep expired records. A purge whose clock reads earlier than
    /// the newest time in the audit log (entries that authenticate, not
    /// counting folded-in maintenance notes) is refused. It reads the
    /// entries written since the last keyed purge to find that time.
    ///
    /// # Errors
    /// [`Error::ClockBehind`] if the clock reads earlier than the newest
    /// audit time; [`Error::Busy`] or [`Error::Storage`]. Then nothing was
    /// deleted.
    pub fn purge_expired(&self) -> Result<PurgeReport> {
        self.purge_expired_as(&self.actor)
    }

    pub(super) fn purge_expired_as(&self, actor: &Actor) -> Result<PurgeReport> {
        let result = self.purge(actor);
        self.log_failed_write(actor, AuditAction::Purge, &result);
        result
    }

    fn purge(&self, actor: &Actor) -> Result<PurgeReport> {
        let mut txn = self.begin_scrubbed()?;
        // Read under the write lock: every entry committed before has a
        // time no later than this, by the same clock.
        let now_ms = self.now_ms();
        // Reads waiting in read logs count too: their times are the
        // chain's once folded, and this transaction folds them.
        self.chain_waiting(&mut txn, super::read_log::Fold::Sweep)?;
        let newest = Newest::keyed(&self.audit_keys, &mut txn)?;
        Newest::check(now_ms, newest.at_ms())?;
        // Staged records in first, in this transaction, so that the purge
        // reaches them as records.
        let mut sealers = HashMap::new();
        self.take_in(&mut txn, &mut sealers)?;
        self.count_key_uses(&mut txn, &sealers)?;
        let records = txn.delete_expired(now_ms)?;
        let keys = txn.delete_keys_ended(now_ms)?;
        if let Some(row) = newest.row(&self.audit_keys) {
            txn.set_meta_value(NEWEST_ROW, Some(&row))?;
        }
        let event = Event::new(AuditAction::Purge).count(records as u64);
        self.log_in(&mut txn, actor, &event, &AuditOutcome::Ok)?;
        self.commit_keys(txn, sealers, &keys)?;
        Ok(PurgeReport {
            records,
            keys_destroyed: keys.len(),
        })
    }

    /// Destroys a data subject's keys and records in one transaction
    /// (crypto-shredding): copies of their records taken earlier can no
    /// longer be opened with this vault's keys.
    ///
    /// # Errors
    /// [`Error::Busy`] or [`Error::Storage`]; then nothing was erased.
    pub fn erase_subject(&self, subject: &SubjectId) -> Result<EraseReport> {
        self.erase_subject_as(&self.actor, subject)
    }

    pub(super) fn erase_subject_as(
        &self,
        actor: &Actor,
        subject: &SubjectId,
    ) -> Result<EraseReport> {
        let result = self.erase(actor, subject);
        self.log_failed_write(actor, AuditAction::Erase, &result);
        result
    }

    fn erase(&self, actor: &Actor, subject: &SubjectId) -> Result<EraseReport> {
        let tag = self.tags.subject(subject.as_str());
        let mut txn = self.begin_scrubbed()?;
        // Staged records carry no subject tag yet: take them in first, in
        // this transaction, so that the erasure reaches them.
        let mut sealers = HashMap::new();
        self.take_in(&mut txn, &mut sealers)?;
        self.count_key_uses(&mut txn, &sealers)?;
        let (records, keys) = txn.delete_subject(&tag)?;
        let event = Event::new(AuditAction::Erase)
            .target(tag)
            .count(records as u64);
        self.log_in(&mut txn, actor, &event, &AuditOutcome::Ok)?;
        self.commit_keys(txn, sealers, &keys)?;
        Ok(EraseReport {
            records,
            keys_destroyed: keys.len(),
        })
    }

    /// Everything about a record that can be worked out before taking the
    /// write lock: its expiry, tags, scope and encoded plaintext.
    fn prepare(&self, rec: &NewRecord, now: std::time::SystemTime, now_ms: i64) -> Result<Pending> {
        super::check_ids(rec)?;
        let expires_at_ms = self.policy.expiry_ms(now, rec.ttl)?;
        let created_at_ms = rec.created_at.map_or(now_ms, to_millis);
        self.pending(rec, created_at_ms, expires_at_ms)
    }

    /// Tags, scope and encoded plaintext of a record whose times are known.
    pub(super) fn pending(
        &self,
        rec: &NewRecord,
        created_at_ms: i64,
        expires_at_ms: i64,
    ) -> Result<Pending> {
        let subject = rec.subject.as_ref().map(|s| self.tags.subject(s.as_str()));
        let plaintext = codec::record::encode(
            rec,
            created_at_ms,
            expires_at_ms,
            seal::HEADER_LEN,
            seal::TAG_LEN,
        )
        .map_err(|_| super::too_large())?;
        Ok(Pending {
            conversation: self.tags.conversation(rec.conversation.as_str()),
            scope: KeyScope {
                subject,
                not_after_ms: self
                    .policy
                    .epoch_end_ms(expires_at_ms)
                    .ok_or_else(crate::retention::unrepresentable_expiry)?,
            },
            expires_at_ms,
            created_at_ms,
            plaintext,
        })
    }

    /// Seals a prepared record under its scope's key and stores it as `id`.
    pub(super) fn seal_into(
        &self,
        txn: &mut Txn<'_>,
        sealers: &mut HashMap<KeyScope, Sealer>,
        id: RecordId,
        p: Pending,
    ) -> Result<()> {
        let key = self.sealer(txn, sealers, &p.scope)?;
        let binding = Binding {
            id,
            expires_at_ms: p.expires_at_ms,
            conversation: p.conversation,
            subject: p.scope.subject,
        };
        let sealed = seal::seal(&key, &binding, p.plaintext).map_err(|_| super::too_large())?;
        self.lock_time_marks().add(id.as_u64(), p.created_at_ms);
        txn.insert_record(RecordRow {
            id: id.as_u64(),
            conversation: binding.conversation,
            subject: binding.subject,
            expires_at_ms: binding.expires_at_ms,
            sealed,
        })
    }

    /// Counts on their rows the uses a transaction reserved on the keys it
    /// sealed with; after commit, [`Vault::commit_keys`] keeps the keys,
    /// and what they did not seal stays prepaid on them.
    pub(super) fn count_key_uses(
        &self,
        txn: &mut Txn<'_>,
        sealers: &HashMap<KeyScope, Sealer>,
    ) -> Result<()> {
        sealers
            .values()
            .filter(|s| s.reserved > 0)
            .try_for_each(|s| txn.add_key_use(s.key.id, s.reserved))
    }

    /// Commits, and before any other writer's turn brings the key cache
    /// in line: keeps the keys the transaction sealed with, then forgets
    /// the ones it destroyed (a key the take-in used may be one a purge
    /// destroyed). Only after commit do new keys exist for other handles
    /// too; caching one from a rolled-back transaction would shadow
    /// whatever key later takes its id. Inside the write lock: otherwise
    /// an erasure on another thread could forget a key between this
    /// commit and its caching, and the cache would keep a destroyed key.
    pub(super) fn commit_keys(
        &self,
        txn: Txn<'_>,
        sealers: HashMap<KeyScope, Sealer>,
        destroyed: &[u64],
    ) -> Result<()> {
        let mut sealers = Some(sealers);
        let committed = self.commit_then(txn, &mut || {
            for (scope, sealer) in sealers.take().into_iter().flatten() {
                sealer.key.keep_prepaid(sealer.left - sealer.used);
                self.keyring.insert(scope, sealer.key);
            }
            if !destroyed.is_empty() {
                self.keyring.forget(destroyed);
            }
        });
        // With the keys apart, a commit can fail after the keys store's
        // part committed: the keys may be gone from the store, so they go
        // from memory too (forgetting a key that is still stored only
        // costs an unwrap).
        if committed.is_err() && !destroyed.is_empty() {
            self.keyring.forget(destroyed);
        }
        committed
    }

    /// The key to seal the next record of `scope` with, inside `txn`:
    /// the scope's current key while it has uses left, else a fresh one.
    /// Uses are reserved on the key's row a block at a time
    /// ([`Vault::reservation`]): what a transaction does not seal stays
    /// prepaid on the cached key, and later transactions spend it without
    /// writing the row.
    pub(super) fn sealer(
        &self,
        txn: &mut Txn<'_>,
        sealers: &mut HashMap<KeyScope, Sealer>,
        scope: &KeyScope,
    ) -> Result<Arc<DataKey>> {
        if let Some(s) = sealers.get_mut(scope) {
            if s.used == s.left {
                s.reserve(self.reservation(s.counted));
            }
            if s.used < s.left {
                s.used += 1;
                return Ok(Arc::clone(&s.key));
            }
            if s.reserved > 0 {
                txn.add_key_use(s.key.id, s.reserved)?;
            }
            txn.retire_key(s.key.id)?;
            sealers.remove(scope);
        }
        let seen = self.keyring.generation();
        // A key this handle holds (cached) or makes now gets a block. One it
        // has to unwrap gets only the use at hand, so keys passing through
        // a cache too small for the vault's subjects waste nothing; a second
        // use in the same transaction gets a block (above). A new key wastes
        // at most one block, once.
        let (mut sealer, warm) = match txn.active_key(scope)? {
            Some(row) => {
                let room = row.sealed < self.max_records_per_key;
                let cached = self.keyring.get_scoped(row.id, &row.scope);
                let prepaid = cached.as_ref().map_or(0, |k| k.take_prepaid());
                match cached {
                    Some(key) if prepaid > 0 => (Sealer::of(key, row.sealed, prepaid), true),
                    Some(key) if room => (Sealer::of(key, row.sealed, 0), true),
                    None if room => {
                        let key = self.unwrap_row(&row, seen)?;
                        (Sealer::of(key, row.sealed, 0), false)
                    }
                    _ => {
                        txn.retire_key(row.id)?;
                        (Sealer::of(self.new_key(txn, scope)?, 0, 0), true)
                    }
                }
            }
            None => (Sealer::of(self.new_key(txn, scope)?, 0, 0), true),
        };
        if sealer.left == 0 {
            let block = self.reservation(sealer.counted);
            sealer.reserve(if warm { block } else { block.min(1) });
        }
        sealer.used = 1;
        let key = Arc::clone(&sealer.key);
        sealers.insert(*scope, sealer);
        Ok(key)
    }

    /// How many uses to reserve at once on a key's row that counts
    /// `counted`: a sixteenth of the bound, at most 1,024, and no more than
    /// the bound leaves (none at the bound). Each time a handle drops a key with uses still prepaid, it
    /// wastes at most that much of the key's budget; at the default bound
    /// a key in steady use has its row written once per 1,024 records
    /// instead of once per transaction.
    fn reservation(&self, counted: u64) -> u64 {
        let room = self.max_records_per_key.saturating_sub(counted);
        (self.max_records_per_key / 16).clamp(1, 1024).min(room)
    }

    fn new_key(&self, txn: &mut Txn<'_>, scope: &KeyScope) -> Result<Arc<DataKey>> {
        let unlocked = self.unlocked.read().unwrap_or_else(|e| e.into_inner());
        // Another process may have changed the key since we opened: a key
        // wrapped under our stale KEK would be unreadable to everyone else.
        if !txn.header_is(&unlocked.header)? {
            return Err(Error::KeyChanged);
        }
        let id = txn.allocate_key_id()?;
        let secret = SecretKey::random();
        let wrapped = unlocked.kek.wrap(&secret, &data_key_aad(id, scope));
        txn.insert_key(KeyRow {
            id,
            scope: *scope,
            sealed: 0,
            retired: false,
            wrapped: wrapped.to_vec(),
        })?;
        Ok(Arc::new(DataKey::new(id, &secret)))
    }
}

/// The record id space is used up (only a tampered counter or mark gets
/// near it).
fn ids_exhausted() -> Error {
    Error::Corrupt {
        what: "the record id counter is at its end".into(),
    }
}

/// A record ready to seal once it has an id and a key.
pub(super) struct Pending {
    pub(super) conversation: crate::keys::IdTag,
    scope: KeyScope,
    expires_at_ms: i64,
    created_at_ms: i64,
    plaintext: zeroize::Zeroizing<Vec<u8>>,
}

/// A key in use within one transaction, with its budget.
pub(super) struct Sealer {
    pub(super) key: Arc<DataKey>,
    /// Records it may seal in this transaction: prepaid uses taken from
    /// the key, then what this transaction reserved.
    left: u64,
    /// Records it sealed in this transaction.
    used: u64,
    /// Uses this transaction adds to the key's row.
    reserved: u64,
    /// The row's use count with them.
    counted: u64,
}

impl Sealer {
    fn of(key: Arc<DataKey>, counted: u64, prepaid: u64) -> Self {
        Self {
            key,
            left: prepaid,
            used: 0,
            reserved: 0,
            counted,
        }
    }

    fn reserve(&mut self, n: u64) {
        self.left += n;
        self.reserved += n;
        self.counted = self.counted.saturating_add(n);
    }
}
