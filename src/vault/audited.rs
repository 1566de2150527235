//! Auditing: every call appends one entry to the chain. Writes append
//! inside their own transaction (the entry and the change commit together);
//! reads append to the handle's read log (`read_log.rs`), which the next
//! write folds into the chain. A read whose entry cannot be written fails
//! (closed) — except on a full disk, where the entry waits in memory and
//! goes into the chain with the next write, so that committed records stay
//! readable until space is back.

use std::borrow::Borrow;
use std::ops::RangeBounds;

use super::{EraseReport, PurgeReport, Vault, VerifyReport};
use crate::audit::{
    Actor, AuditAction, AuditEntry, AuditFindings, AuditHead, AuditOutcome, AuditReport,
    ChainVerifier, Event, FullVerifier, entry_row, open_entry, row_of_body,
};
use crate::error::{Error, Result};
use crate::kdf::KeySource;
use crate::record::{ConversationId, NewRecord, Record, RecordId, SubjectId};
use std::sync::atomic::Ordering;

use zeroize::Zeroizing;

use super::read_log::Fold;
use crate::codec;
use crate::store::Durability;
use crate::tables::Txn;

impl Vault {
    /// The audit log of this vault.
    pub fn audit(&self) -> Audit<'_> {
        Audit { vault: self }
    }

    /// A handle whose every call is audited under `actor` (and its
    /// purpose); plain `Vault` calls are audited as the default actor.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let opts = llmvault::VaultOptions::default().kdf(llmvault::KdfParams::minimum());
    /// # let vault = llmvault::Vault::create(dir.path().join("v"), llmvault::KeySource::passphrase("pw"), opts)?;
    /// use llmvault::{Actor, AuditAction};
    /// let alice = vault.as_actor(Actor::new("alice").purpose("ticket T-9"));
    /// let _ = alice.subject_records(&llmvault::SubjectId::new("user-7"))?;
    /// let last = vault.audit().entries(..)?.pop().unwrap();
    /// assert_eq!((last.actor.as_str(), last.action), ("alice", AuditAction::SubjectRecords));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn as_actor(&self, actor: Actor) -> AsActor<'_> {
        AsActor { vault: self, actor }
    }

    /// Appends an entry inside `txn`, to commit with the change it records
    /// (after the read entries waiting in read logs or in memory).
    pub(super) fn log_in(
        &self,
        txn: &mut Txn<'_>,
        actor: &Actor,
        event: &Event,
        outcome: &AuditOutcome,
    ) -> Result<()> {
        let (seq, prev) = self.chain_waiting(txn, Fold::Own)?;
        let now = self.now_ms();
        let row = entry_row(&self.audit_keys, seq + 1, now, &prev, actor, event, outcome);
        txn.append_audit(row)
    }

    /// Chains, inside `txn`, the entries that wait: read logs (on the
    /// transaction's first call; a sweep when one is due), then entries
    /// held in memory (a full disk, batched reads, key-less maintenance).
    /// Returns the chain's tail after them.
    pub(super) fn chain_waiting(&self, txn: &mut Txn<'_>, fold: Fold) -> Result<(u64, [u8; 32])> {
        let (mut seq, mut prev) = txn.audit_tail()?;
        let mut chain = |txn: &mut Txn<'_>, at_ms: i64, body: &[u8]| {
            seq += 1;
            let row = row_of_body(&self.audit_keys, seq, at_ms, &prev, body);
            prev = row.mac;
            txn.append_audit(row)
        };
        if !self.reads_taken.swap(true, Ordering::SeqCst) {
            let fold = match fold {
                Fold::Own if self.sweep_next.swap(false, Ordering::SeqCst) => Fold::Sweep,
                other => other,
            };
            for read in self.take_reads(txn, fold)? {
                chain(txn, read.at_ms, &read.body)?;
            }
        }
        // Entries waiting from earlier go in each once per transaction;
        // they leave the queue only when it commits (see `commit`). The
        // writer lock keeps the queue from being drained meanwhile.
        let already = self.flushed_audit.load(Ordering::SeqCst);
        let waiting: Vec<WaitingEntry> =
            self.lock_waiting().iter().skip(already).cloned().collect();
        for w in &waiting {
            let body = Zeroizing::new(codec::audit::encode(&w.actor, &w.event, &w.outcome));
            chain(txn, w.at_ms, &body)?;
        }
        self.flushed_audit
            .store(already + waiting.len(), Ordering::SeqCst);
        Ok((seq, prev))
    }

    /// Starts a write transaction (see `log_in` for the waiting entries).
    pub(super) fn begin(&self) -> Result<Txn<'_>> {
        self.begin_with(Durability::Durable)
    }

    /// Starts a write transaction whose commit need not wait for the disk
    /// (a fold that only moves read logs' fold points).
    pub(super) fn begin_buffered(&self) -> Result<Txn<'_>> {
        self.begin_with(Durability::Buffered)
    }

    /// Starts a write transaction that deletes or replaces secrets (purge,
    /// erasure, key change): its commit scrubs the backend's own copies.
    pub(super) fn begin_scrubbed(&self) -> Result<Txn<'_>> {
        self.begin_with(Durability::Scrubbed)
    }

    fn begin_with(&self, durability: Durability) -> Result<Txn<'_>> {
        let txn = self.store.write(durability)?;
        self.flushed_audit.store(0, Ordering::SeqCst);
        self.reads_taken.store(false, Ordering::SeqCst);
        self.read_logs.reset_plan();
        *self.lock_time_marks() = super::time_index::TimeMarks::default();
        Ok(txn)
    }

    pub(super) fn lock_time_marks(
        &self,
    ) -> std::sync::MutexGuard<'_, super::time_index::TimeMarks> {
        self.time_marks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Commits a transaction that went through `log_in`, and drops the
    /// waiting entries it carried.
    pub(super) fn commit(&self, txn: Txn<'_>) -> Result<()> {
        self.commit_then(txn, &mut || ())
    }

    /// As [`Vault::commit`], then runs `after` before any other writer's
    /// turn (and before a scrubbed transaction's checkpoint).
    pub(super) fn commit_then(&self, mut txn: Txn<'_>, after: &mut dyn FnMut()) -> Result<()> {
        let marks = std::mem::take(&mut *self.lock_time_marks());
        if !marks.is_empty() {
            self.write_time_marks(&mut txn, marks)?;
        }
        // Drained under the write lock: another transaction must not see
        // (and append again) entries this one already committed.
        txn.commit_then(&mut || {
            let flushed = self.flushed_audit.swap(0, Ordering::SeqCst);
            let mut waiting = self.lock_waiting();
            let n = flushed.min(waiting.len());
            waiting.drain(..n);
            drop(waiting);
            self.apply_read_fold();
            after();
        })
    }

    /// Appends the entry of a read (or of a failed write) on its own.
    pub(super) fn log_alone<T>(
        &self,
        actor: &Actor,
        event: Event,
        result: &Result<T>,
    ) -> Result<()> {
        let outcome = match result {
            Ok(_) => AuditOutcome::Ok,
            Err(e) => AuditOutcome::Failed(e.to_string()),
        };
        self.log_outcome(actor, event, outcome)
    }

    /// As [`Vault::log_alone`], with the outcome given: the entry goes to
    /// this handle's read log; on a full disk it waits in memory instead
    /// (see the module docs).
    pub(super) fn log_outcome(
        &self,
        actor: &Actor,
        event: Event,
        outcome: AuditOutcome,
    ) -> Result<()> {
        let at_ms = self.now_ms();
        match self.append_read(at_ms, actor, &event, &outcome) {
            Err(Error::DiskFull) => {
                self.lock_waiting().push(WaitingEntry {
                    at_ms,
                    actor: actor.clone(),
                    event,
                    outcome,
                });
                Ok(())
            }
            other => other,
        }
    }

    /// Queues what key-less maintenance did, to be chained (with its own
    /// times) by the next `log_in` of this transaction.
    pub(super) fn queue_maintenance_notes(&self, notes: Vec<crate::store::MaintenanceNote>) {
        let actor = Actor::new("maintenance");
        self.lock_waiting()
            .extend(notes.into_iter().map(|n| WaitingEntry {
                at_ms: n.at_ms,
                actor: actor.clone(),
                event: Event::new(AuditAction::MaintenancePurge).count(n.records),
                outcome: AuditOutcome::Ok,
            }));
    }

    fn lock_waiting(&self) -> std::sync::MutexGuard<'_, Vec<WaitingEntry>> {
        let mut waiting = self.waiting_audit.lock().unwrap_or_else(|e| e.into_inner());
        let pid = std::process::id();
        if self.waiting_pid.swap(pid, Ordering::SeqCst) != pid {
            // A forked child: the waiting entries are the parent's, which
            // chains them itself.
            waiting.clear();
        }
        waiting
    }

    /// Runs a read and audits it; the read's own error wins over an audit
    /// error, but a successful read whose entry cannot be written fails.
    pub(super) fn audited_read<T>(
        &self,
        actor: &Actor,
        event: Event,
        read: impl FnOnce() -> Result<T>,
        describe: impl FnOnce(&T, Event) -> Event,
    ) -> Result<T> {
        let result = read();
        let event = match &result {
            Ok(value) => describe(value, event),
            Err(_) => event,
        };
        let logged = if self.audit_read_batch > 1 {
            self.queue_read(actor, event, &result)
        } else {
            self.log_alone(actor, event, &result)
        };
        let value = result?;
        logged?;
        Ok(value)
    }

    /// With `audit_read_batch(n)`: holds the read's entry in memory and
    /// writes the queue once it holds `n` (or with the next write, or when
    /// the vault is dropped).
    fn queue_read<T>(&self, actor: &Actor, event: Event, result: &Result<T>) -> Result<()> {
        let outcome = match result {
            Ok(_) => AuditOutcome::Ok,
            Err(e) => AuditOutcome::Failed(e.to_string()),
        };
        let full = {
            let mut waiting = self.lock_waiting();
            waiting.push(WaitingEntry {
                at_ms: self.now_ms(),
                actor: actor.clone(),
                event,
                outcome,
            });
            waiting.len() >= self.audit_read_batch
        };
        match full.then(|| self.flush_audit()) {
            // A full disk: the entries keep waiting for the next write.
            Some(Err(Error::DiskFull)) | None => Ok(()),
            Some(other) => other,
        }
    }

    /// Writes every waiting entry now: this handle's read logs and what
    /// waits in memory.
    pub(super) fn flush_audit(&self) -> Result<()> {
        self.fold_reads(Fold::Own)
    }

    /// Records a failed write (best effort: the write's error is what the
    /// caller needs, and a full disk may refuse the entry too).
    pub(super) fn log_failed_write<T>(
        &self,
        actor: &Actor,
        action: AuditAction,
        result: &Result<T>,
    ) {
        if result.is_err() {
            let _ = self.log_alone(actor, Event::new(action), result);
        }
    }
}

/// An audit entry that could not be written yet (full disk).
#[derive(Clone)]
pub(super) struct WaitingEntry {
    at_ms: i64,
    actor: Actor,
    event: Event,
    outcome: AuditOutcome,
}

/// The audit log of a vault: see [`Vault::audit`].
#[derive(Debug)]
pub struct Audit<'a> {
    vault: &'a Vault,
}

impl Audit<'_> {
    /// Checks the whole chain: every entry authenticates and follows the
    /// one before.
    ///
    /// # Errors
    /// [`Error::AuditTampered`] naming the first bad (or missing) entry.
    pub fn verify(&self) -> Result<AuditReport> {
        self.walk(None)
    }

    /// As [`Audit::verify`], and also checks that the log reaches `head`
    /// (kept outside the vault) with the same MAC: a cut-off tail is found.
    ///
    /// # Errors
    /// [`Error::AuditTampered`].
    pub fn verify_against(&self, head: &AuditHead) -> Result<AuditReport> {
        self.walk(Some(*head))
    }

    /// Checks the whole chain as [`Audit::verify`] does, but carries on
    /// past every bad or missing entry and names them all (see
    /// [`AuditFindings`] for how the walk picks the chain up again). For a
    /// log that fails `verify`: one damaged entry does not hide what was
    /// done, or changed, after it.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let opts = llmvault::VaultOptions::default().kdf(llmvault::KdfParams::minimum());
    /// # let vault = llmvault::Vault::create(dir.path().join("v"), llmvault::KeySource::passphrase("pw"), opts)?;
    /// let findings = vault.audit().verify_all()?;
    /// assert!(findings.is_clean());
    /// assert_eq!(findings.verified, findings.head.seq);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Only [`Error::Storage`] (or `Busy`, `DiskFull` while writing the
    /// read entries a handle still holds): damage is reported in the
    /// findings, never as an error.
    pub fn verify_all(&self) -> Result<AuditFindings> {
        self.walk_all(None)
    }

    /// As [`Audit::verify_all`], and also names the entries a kept `head`
    /// says should be there: a missing tail, or a different entry at the
    /// head's position.
    ///
    /// # Errors
    /// As [`Audit::verify_all`].
    pub fn verify_all_against(&self, head: &AuditHead) -> Result<AuditFindings> {
        self.walk_all(Some(*head))
    }

    /// The newest entry's position and MAC, after checking the chain.
    ///
    /// # Errors
    /// [`Error::AuditTampered`] if the chain does not verify.
    pub fn head(&self) -> Result<AuditHead> {
        Ok(self.verify()?.head)
    }

    /// Decrypted entries with a sequence number in `range`, oldest first.
    ///
    /// # Errors
    /// [`Error::AuditTampered`] for an entry that does not authenticate.
    pub fn entries(&self, range: impl RangeBounds<u64>) -> Result<Vec<AuditEntry>> {
        use std::ops::Bound;
        let from = match range.start_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n.saturating_add(1),
            Bound::Unbounded => 1,
        };
        let to = match range.end_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n.saturating_sub(1),
            Bound::Unbounded => u64::MAX,
        };
        self.flush()?;
        let mut out = Vec::new();
        let keys = &self.vault.audit_keys;
        self.vault.store.audit_rows(from, to, &mut |row| {
            let entry = open_entry(keys, &row).ok_or(Error::AuditTampered { seq: row.seq })?;
            out.push(entry);
            Ok(())
        })?;
        Ok(out)
    }

    /// Entries still waiting in memory (batched reads) go in first, so the
    /// log shows everything up to now.
    fn flush(&self) -> Result<()> {
        // A sweep too: reads of handles that died show as well.
        self.vault.fold_reads(Fold::Sweep)
    }

    fn walk_all(&self, head: Option<AuditHead>) -> Result<AuditFindings> {
        self.flush()?;
        let mut verifier = FullVerifier::new(&self.vault.audit_keys, head);
        self.vault.store.audit_rows(1, u64::MAX, &mut |row| {
            verifier.push(&row);
            Ok(())
        })?;
        Ok(verifier.finish())
    }

    fn walk(&self, head: Option<AuditHead>) -> Result<AuditReport> {
        self.flush()?;
        let mut verifier = ChainVerifier::new(&self.vault.audit_keys, head);
        self.vault
            .store
            .audit_rows(1, u64::MAX, &mut |row| verifier.push(&row))?;
        verifier.finish()
    }
}

/// A vault handle acting as one [`Actor`]: the same calls as [`Vault`],
/// each audited under that actor. See [`Vault::as_actor`].
#[derive(Debug)]
pub struct AsActor<'a> {
    vault: &'a Vault,
    actor: Actor,
}

impl AsActor<'_> {
    /// As [`Vault::put`].
    ///
    /// # Errors
    /// As [`Vault::put`].
    pub fn put(&self, record: NewRecord) -> Result<RecordId> {
        self.vault.put_as(&self.actor, record)
    }

    /// As [`Vault::put_batch`].
    ///
    /// # Errors
    /// As [`Vault::put_batch`].
    pub fn put_batch(&self, records: Vec<NewRecord>) -> Result<Vec<RecordId>> {
        self.vault.put_batch_as(&self.actor, records)
    }

    /// As [`Vault::get`].
    ///
    /// # Errors
    /// As [`Vault::get`].
    pub fn get(&self, id: RecordId) -> Result<Record> {
        self.vault.get_as(&self.actor, id)
    }

    /// As [`Vault::conversation`].
    ///
    /// # Errors
    /// As [`Vault::conversation`].
    pub fn conversation(&self, conversation: &ConversationId) -> Result<Vec<Record>> {
        self.vault.conversation_as(&self.actor, conversation)
    }

    /// As [`Vault::subject_records`].
    ///
    /// # Errors
    /// As [`Vault::subject_records`].
    pub fn subject_records(&self, subject: &SubjectId) -> Result<Vec<Record>> {
        self.vault.subject_records_as(&self.actor, subject)
    }

    /// As [`Vault::purge_expired`].
    ///
    /// # Errors
    /// As [`Vault::purge_expired`].
    pub fn purge_expired(&self) -> Result<PurgeReport> {
        self.vault.purge_expired_as(&self.actor)
    }

    /// As [`Vault::erase_subject`].
    ///
    /// # Errors
    /// As [`Vault::erase_subject`].
    pub fn erase_subject(&self, subject: &SubjectId) -> Result<EraseReport> {
        self.vault.erase_subject_as(&self.actor, subject)
    }

    /// As [`Vault::verify`].
    ///
    /// # Errors
    /// As [`Vault::verify`].
    pub fn verify(&self) -> Result<VerifyReport> {
        self.vault.verify_as(&self.actor)
    }

    /// As [`Vault::query`].
    ///
    /// # Errors
    /// As [`Vault::query`].
    pub fn query(&self, query: &crate::Query) -> Result<Vec<Record>> {
        self.vault.query_as(&self.actor, query)
    }

    /// As [`Vault::export`]: both its entries are recorded under this
    /// actor.
    ///
    /// # Errors
    /// As [`Vault::export`].
    pub fn export(
        &self,
        query: &crate::Query,
        each: &mut dyn FnMut(Record) -> Result<()>,
    ) -> Result<u64> {
        self.vault.export_as(&self.actor, query, each)
    }

    /// As [`Vault::change_key`].
    ///
    /// # Errors
    /// As [`Vault::change_key`].
    pub fn change_key(&self, new_key: impl Borrow<KeySource>) -> Result<()> {
        self.vault
            .change_key_as(&self.actor, new_key.borrow(), None)
    }
}
