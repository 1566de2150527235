//! Reading records back: one, a conversation, a subject's, or all of them
//! to verify.

use super::{Vault, VerifyReport};
use crate::audit::{Actor, AuditAction, Event};
use crate::codec::{self, from_millis};
use crate::error::{Error, Result};
use crate::keys::IdTag;
use crate::record::{ConversationId, Record, RecordId, SubjectId};
use crate::seal::{self, Binding};
use crate::store::RecordRow;

impl Vault {
    /// Reads and decrypts one record.
    ///
    /// # Errors
    /// [`Error::NotFound`] if no such record is stored;
    /// [`Error::Expired`] if its retention has passed (even before a
    /// purge); [`Error::Tampered`] if it fails authentication;
    /// [`Error::KeyDestroyed`] if its key was destroyed.
    pub fn get(&self, id: RecordId) -> Result<Record> {
        self.get_as(&self.actor, id)
    }

    pub(super) fn get_as(&self, actor: &Actor, id: RecordId) -> Result<Record> {
        let event = Event::new(AuditAction::Get).records([id]);
        self.audited_read(actor, event, || self.find_record(id), |_, e| e)
    }

    /// The live record `id`. Records an ingestor staged are taken in first
    /// only when `id` is not stored: a stored record is what it is either
    /// way, and looking for staged rows on every read would cost a query.
    fn find_record(&self, id: RecordId) -> Result<Record> {
        match self.store.record(id.as_u64())? {
            Some(row) => self.live_record(id, Some(row)),
            None => {
                self.adopt_ingested()?;
                self.live_record(id, self.store.record(id.as_u64())?)
            }
        }
    }

    /// The record a lookup by `id` found, opened, checked live, and with
    /// its real values back.
    fn live_record(&self, id: RecordId, found: Option<RecordRow>) -> Result<Record> {
        let row = found.ok_or(Error::NotFound { id })?;
        let mut record = self.open_row(row)?;
        if codec::to_millis(record.expires_at()) <= self.now_ms() {
            return Err(Error::Expired {
                id,
                expired_at: record.expires_at(),
            });
        }
        self.unmask(std::slice::from_mut(&mut record))?;
        Ok(record)
    }

    /// Every live record of a conversation, oldest first. Expired records
    /// are left out.
    ///
    /// # Errors
    /// [`Error::Tampered`] naming the first record that fails
    /// authentication; [`Error::KeyDestroyed`] for one whose key is gone.
    pub fn conversation(&self, conversation: &ConversationId) -> Result<Vec<Record>> {
        self.conversation_as(&self.actor, conversation)
    }

    pub(super) fn conversation_as(
        &self,
        actor: &Actor,
        conversation: &ConversationId,
    ) -> Result<Vec<Record>> {
        let tag = self.tags.conversation(conversation.as_str());
        self.read_tagged(
            actor,
            AuditAction::Conversation,
            tag,
            |now_ms| self.store.conversation(&tag, now_ms),
            |r| r.conversation() == conversation,
        )
    }

    /// Every live record of a data subject, oldest first.
    ///
    /// # Errors
    /// As [`Vault::conversation`].
    pub fn subject_records(&self, subject: &SubjectId) -> Result<Vec<Record>> {
        self.subject_records_as(&self.actor, subject)
    }

    pub(super) fn subject_records_as(
        &self,
        actor: &Actor,
        subject: &SubjectId,
    ) -> Result<Vec<Record>> {
        let tag = self.tags.subject(subject.as_str());
        self.read_tagged(
            actor,
            AuditAction::SubjectRecords,
            tag,
            |now_ms| self.store.subject(&tag, now_ms),
            |r| r.subject() == Some(subject),
        )
    }

    /// The live records a tag query finds, oldest first, real values put
    /// back, audited as one entry naming them.
    fn read_tagged(
        &self,
        actor: &Actor,
        action: AuditAction,
        tag: IdTag,
        rows: impl FnOnce(i64) -> Result<Vec<RecordRow>>,
        belongs: impl Fn(&Record) -> bool,
    ) -> Result<Vec<Record>> {
        self.adopt_ingested()?;
        let event = Event::new(action).target(tag);
        let read = || {
            let mut records = self.open_live(rows(self.now_ms())?)?;
            // Tags are truncated MACs: a collision is astronomically
            // unlikely, but a wrong match must never be returned.
            records.retain(|r| belongs(r));
            records.sort_by_key(|r| (r.created_at(), r.id()));
            self.unmask(&mut records)?;
            Ok(records)
        };
        self.audited_read(actor, event, read, |recs, e| {
            e.records(recs.iter().map(Record::id))
        })
    }

    /// Authenticates every stored key and record, expired ones included,
    /// after the storage engine's own consistency check (SQLite's
    /// `integrity_check`): a damaged index would otherwise make lookups
    /// leave records out without any read failing. With the keys apart
    /// ([`Storage::keys_in`](crate::Storage::keys_in)), records whose key is
    /// gone (put back from a backup of the record store) are counted in
    /// [`VerifyReport::key_destroyed`], not a failure: they cannot be read,
    /// and a purge removes them.
    ///
    /// # Errors
    /// The first failure: [`Error::Corrupt`] from the consistency check,
    /// [`Error::KeyTampered`], [`Error::Tampered`] naming the record, or
    /// (in a single-file vault, where no record outlives its key)
    /// [`Error::KeyDestroyed`].
    pub fn verify(&self) -> Result<VerifyReport> {
        self.verify_as(&self.actor)
    }

    pub(super) fn verify_as(&self, actor: &Actor) -> Result<VerifyReport> {
        self.adopt_ingested()?;
        let event = Event::new(AuditAction::Verify);
        self.audited_read(
            actor,
            event,
            || self.verify_all(),
            |r, e| e.count(r.records as u64),
        )
    }

    fn verify_all(&self) -> Result<VerifyReport> {
        self.store.check_integrity()?;
        let mut report = VerifyReport {
            set_aside: self.set_aside_count()?,
            ..VerifyReport::default()
        };
        let seen = self.keyring.generation();
        for row in self.store.keys()? {
            self.unwrap_row(&row, seen)?;
            report.keys += 1;
        }
        let now_ms = self.now_ms();
        let keys_apart = self.store.keys_apart();
        self.store.each_record(&mut |row| {
            let expired = row.expires_at_ms <= now_ms;
            match self.open_row(row) {
                Ok(_) => {
                    report.records += 1;
                    report.expired += usize::from(expired);
                }
                // Only with the keys apart can a record outlive its key
                // by design (a restored backup); in one file it means a
                // key row was deleted, and fails as before.
                Err(Error::KeyDestroyed { .. }) if keys_apart => report.key_destroyed += 1,
                Err(e) => return Err(e),
            }
            Ok(())
        })?;
        Ok(report)
    }

    fn open_live(&self, rows: Vec<RecordRow>) -> Result<Vec<Record>> {
        let now_ms = self.now_ms();
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let record = self.open_row(row)?;
            if codec::to_millis(record.expires_at()) > now_ms {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// Authenticates and decodes one stored record.
    pub(super) fn open_row(&self, row: RecordRow) -> Result<Record> {
        let id = RecordId::from_u64(row.id);
        let key_id = seal::key_id(&row.sealed).map_err(|_| Error::Tampered { id })?;
        let key = self.data_key(key_id, &row)?;
        let binding = Binding {
            id,
            expires_at_ms: row.expires_at_ms,
            conversation: row.conversation,
            subject: row.subject,
        };
        let plaintext =
            seal::open(&key, &binding, row.sealed).map_err(|_| Error::Tampered { id })?;
        let record =
            codec::record::decode(id, plaintext.bytes()).map_err(|_| Error::Tampered { id })?;
        if record.expires_at() != from_millis(row.expires_at_ms) {
            return Err(Error::Tampered { id });
        }
        Ok(record)
    }
}
