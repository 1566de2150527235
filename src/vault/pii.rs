//! Pseudonymization kept in the vault: a conversation's placeholder
//! mapping is sealed like a record (FORMAT.md §13), under the same
//! retention and erasure, and masked records read back with their real
//! values.

use std::collections::HashMap;
use std::sync::Arc;

use super::Vault;
use crate::audit::{AuditAction, AuditOutcome, Event};
use crate::codec;
use crate::error::{Error, Result};
use crate::keys::{IdTag, KeyScope};
use crate::pii::{Mapping, Masked, Pseudonymizer};
use crate::record::{ConversationId, Record, SubjectId};
use crate::seal::{self, PiiMapBinding};
use crate::store::PiiMapRow;
use crate::tables::Txn;

impl Vault {
    /// Replaces the personal data in `text` with placeholders before it
    /// goes to a model, and stores any new placeholders in the
    /// conversation's sealed mapping (the same value always gets the same
    /// placeholder in one conversation). Send `masked.text` to the model.
    ///
    /// Text in `text` shaped like a placeholder (a user typing `<EMAIL_1>`)
    /// is masked as a `<LITERAL_N>` of its own, so restoring gives back
    /// what was typed and never the value `<EMAIL_1>` stands for.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let opts = llmvault::VaultOptions::default().kdf(llmvault::KdfParams::minimum());
    /// # let vault = llmvault::Vault::create(dir.path().join("v"), llmvault::KeySource::passphrase("pw"), opts)?;
    /// let conv = llmvault::ConversationId::new("conv-1");
    /// let masked = vault.pseudonymize(&conv, "Write to alice@example.com")?;
    /// assert_eq!(masked.text, "Write to <EMAIL_1>");
    /// let reply = vault.restore(&conv, "Sent to <EMAIL_1>.")?;
    /// assert_eq!(reply, "Sent to alice@example.com.");
    /// # Ok::<(), llmvault::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the stored mapping fails authentication;
    /// [`Error::Busy`] or [`Error::Storage`].
    pub fn pseudonymize(&self, conversation: &ConversationId, text: &str) -> Result<Masked> {
        self.mask_text(conversation, None, text)
    }

    /// As [`Vault::pseudonymize`], binding the mapping to `subject` too, so
    /// that erasing the subject destroys it even before any record of the
    /// conversation is stored.
    ///
    /// # Errors
    /// As [`Vault::pseudonymize`].
    pub fn pseudonymize_for(
        &self,
        conversation: &ConversationId,
        subject: &SubjectId,
        text: &str,
    ) -> Result<Masked> {
        self.mask_text(conversation, Some(subject), text)
    }

    /// Puts the real values back into a model's output: exact placeholders
    /// this conversation handed out are replaced; anything else (an
    /// invented `<EMAIL_9>`, a mangled `<EMAIL_1`) is left as it is.
    ///
    /// # Errors
    /// As [`Vault::pseudonymize`].
    pub fn restore(&self, conversation: &ConversationId, model_output: &str) -> Result<String> {
        let tag = self.tags.conversation(conversation.as_str());
        let event = Event::new(AuditAction::Restore).target(tag);
        self.audited_read(
            &self.actor,
            event,
            || {
                let mappings = match self.live_mapping(&tag)? {
                    Some(row) => self.open_mapping(row, None)?,
                    None => Vec::new(),
                };
                let pseudo = Pseudonymizer::from_mappings(self.detector.clone(), mappings)?;
                Ok(pseudo.restore(model_output))
            },
            |_, e| e,
        )
    }

    fn mask_text(
        &self,
        conversation: &ConversationId,
        subject: Option<&SubjectId>,
        text: &str,
    ) -> Result<Masked> {
        let tag = self.tags.conversation(conversation.as_str());
        let subject_tag = subject.map(|s| self.tags.subject(s.as_str()));
        let result = (|| {
            let mut txn = self.begin()?;
            let now_ms = self.now_ms();
            let existing = txn.pii_map(&tag)?.filter(|r| r.expires_at_ms > now_ms);
            let (old_expiry, old_subject) = existing
                .as_ref()
                .map_or((0, None), |r| (r.expires_at_ms, r.subject));
            let mappings = match existing {
                Some(row) => self.open_mapping(row, None)?,
                None => Vec::new(),
            };
            let mut pseudo = Pseudonymizer::from_mappings(self.detector.clone(), mappings)?;
            let masked = pseudo.mask(text);
            let expires = self
                .policy
                .expiry_ms(self.clock.now(), None)?
                .max(old_expiry);
            let subject = subject_tag.or(old_subject);
            let mut sealers = HashMap::new();
            if !masked.new_mappings.is_empty() || expires > old_expiry || subject != old_subject {
                self.seal_mapping(
                    &mut txn,
                    &mut sealers,
                    tag,
                    subject,
                    expires,
                    pseudo.mappings(),
                )?;
            }
            self.count_key_uses(&mut txn, &sealers)?;
            let event = Event::new(AuditAction::Pseudonymize)
                .target(tag)
                .count(masked.new_mappings.len() as u64);
            self.log_in(&mut txn, &self.actor, &event, &AuditOutcome::Ok)?;
            self.commit_keys(txn, sealers, &[])?;
            Ok(masked)
        })();
        self.log_failed_write(&self.actor, AuditAction::Pseudonymize, &result);
        result
    }

    /// Seals a conversation's whole mapping list under the key of its scope.
    fn seal_mapping(
        &self,
        txn: &mut Txn<'_>,
        sealers: &mut HashMap<KeyScope, super::write::Sealer>,
        conversation: IdTag,
        subject: Option<IdTag>,
        expires_at_ms: i64,
        mappings: &[Mapping],
    ) -> Result<()> {
        let scope = KeyScope {
            subject,
            not_after_ms: self
                .policy
                .epoch_end_ms(expires_at_ms)
                .ok_or_else(crate::retention::unrepresentable_expiry)?,
        };
        let key = self.sealer(txn, sealers, &scope)?;
        let plaintext = codec::pii::encode(mappings, seal::HEADER_LEN, seal::TAG_LEN)
            .ok_or_else(super::too_large)?;
        let binding = PiiMapBinding {
            conversation,
            subject,
            expires_at_ms,
        };
        let sealed = seal::seal(&key, &binding, plaintext).map_err(|_| super::too_large())?;
        txn.put_pii_map(PiiMapRow {
            conversation,
            subject,
            expires_at_ms,
            sealed,
        })
    }

    /// Inside `put`: a masked record must not outlive its conversation's
    /// mapping, so the mapping's expiry is raised to cover it.
    pub(super) fn extend_mapping(
        &self,
        txn: &mut Txn<'_>,
        sealers: &mut HashMap<KeyScope, super::write::Sealer>,
        conversation: IdTag,
        until_ms: i64,
    ) -> Result<()> {
        let now_ms = self.now_ms();
        let Some(row) = txn
            .pii_map(&conversation)?
            .filter(|r| r.expires_at_ms > now_ms)
        else {
            return Ok(());
        };
        if row.expires_at_ms >= until_ms {
            return Ok(());
        }
        let subject = row.subject;
        let mappings = self.open_mapping(row, Some(sealers))?;
        self.seal_mapping(txn, sealers, conversation, subject, until_ms, &mappings)
    }

    /// A conversation's mapping unless its retention has passed (it is then
    /// as good as purged, like an expired record).
    fn live_mapping(&self, conversation: &IdTag) -> Result<Option<PiiMapRow>> {
        let now_ms = self.now_ms();
        Ok(self
            .store
            .pii_map(conversation)?
            .filter(|r| r.expires_at_ms > now_ms))
    }

    /// Opens a mapping row. Inside a write, `pending` holds the keys that
    /// transaction created: a mapping it sealed under one of them (a
    /// take-in, then the put it runs in) names a key no other connection
    /// can see yet, nor the cache, which only takes committed keys.
    fn open_mapping(
        &self,
        row: PiiMapRow,
        pending: Option<&HashMap<KeyScope, super::write::Sealer>>,
    ) -> Result<Vec<Mapping>> {
        let damaged = || Error::Corrupt {
            what: "a conversation's pii mapping failed authentication".into(),
        };
        let key_id = seal::key_id(&row.sealed).map_err(|_| damaged())?;
        let created = pending.and_then(|p| p.values().find(|s| s.key.id == key_id));
        let key = match (created, self.keyring.get(key_id)) {
            (Some(sealer), _) => Arc::clone(&sealer.key),
            (None, Some(k)) => k,
            (None, None) => {
                let seen = self.keyring.generation();
                let row = self.store.key(key_id)?.ok_or_else(damaged)?;
                self.unwrap_row(&row, seen)?
            }
        };
        let binding = PiiMapBinding {
            conversation: row.conversation,
            subject: row.subject,
            expires_at_ms: row.expires_at_ms,
        };
        let plain = seal::open(&key, &binding, row.sealed).map_err(|_| damaged())?;
        codec::pii::decode(plain.bytes()).ok_or_else(damaged)
    }

    /// Puts the real values back into records stored masked.
    pub(super) fn unmask(&self, records: &mut [Record]) -> Result<()> {
        let mut by_conversation: HashMap<IdTag, Pseudonymizer> = HashMap::new();
        for record in records.iter_mut().filter(|r| r.masked) {
            let tag = self.tags.conversation(record.conversation.as_str());
            let pseudo = match by_conversation.entry(tag) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    let mappings = match self.store.pii_map(&tag)? {
                        Some(row) => self.open_mapping(row, None)?,
                        None => Vec::new(),
                    };
                    slot.insert(Pseudonymizer::from_mappings(
                        self.detector.clone(),
                        mappings,
                    )?)
                }
            };
            if pseudo.mappings().is_empty() {
                // The mapping is gone (erased, expired): the record keeps
                // its placeholders and says so.
                continue;
            }
            for message in record.prompt.iter_mut().chain(record.response.as_mut()) {
                let restored = pseudo.restore(message.content());
                message.set_content(restored);
            }
            record.masked = false;
        }
        Ok(())
    }
}
