//! The vault's side of write-only ingest: issuing the ingest key, and
//! taking staged records in under the vault's own keys and tags.

use std::collections::HashMap;

use x25519_dalek::{PublicKey, StaticSecret};

use super::Vault;
use crate::audit::{Actor, AuditAction, AuditOutcome, Event};
use crate::codec;
use crate::error::{Error, Result};
use crate::ingest::{
    INGEST_SECRET_AAD, IngestKey, META_INGEST_PUBLIC, META_INGEST_SECRET, ingest_key_aad,
    new_secret, unwrap_with,
};
use crate::keys::{DataKey, Kek};
use crate::record::{NewRecord, Record, RecordId};
use crate::seal::{self, IngestBinding};
use crate::secret::SecretKey;
use crate::store::{IngestRow, WriteTxn};

impl Vault {
    /// The public key that lets an [`Ingestor`](crate::Ingestor) append
    /// records to this vault and read nothing back. Created on first call
    /// (the X25519 secret is stored wrapped by the KEK); the same key after.
    ///
    /// # Errors
    /// [`Error::Busy`] or [`Error::Storage`].
    pub fn ingest_key(&self) -> Result<IngestKey> {
        let mut txn = self.begin()?;
        if let Some(public) = txn.meta_value(META_INGEST_PUBLIC)? {
            // The public key is stored in clear: hand it out only if it is
            // the one of the sealed secret, or an attacker who can write the
            // file could make ingestors write to their key.
            let secret = self
                .ingest_secret(&mut *txn)?
                .ok_or(Error::KeyTampered { key_id: 0 })?;
            if PublicKey::from(&secret).as_bytes()[..] != public[..] {
                return Err(Error::KeyTampered { key_id: 0 });
            }
            return Ok(IngestKey::from_public(PublicKey::from(&secret).to_bytes()));
        }
        let secret = new_secret();
        let public = PublicKey::from(&secret);
        {
            let unlocked = self.unlocked.read().unwrap_or_else(|e| e.into_inner());
            let wrapped = unlocked
                .kek
                .wrap(&SecretKey::copy_from(secret.as_bytes()), INGEST_SECRET_AAD);
            txn.set_meta_value(META_INGEST_SECRET, Some(&wrapped))?;
        }
        txn.set_meta_value(META_INGEST_PUBLIC, Some(public.as_bytes()))?;
        let event = Event::new(AuditAction::IngestKeyIssued);
        self.log_in(&mut *txn, &self.actor, &event, &AuditOutcome::Ok)?;
        self.commit(txn)?;
        Ok(IngestKey::from_public(public.to_bytes()))
    }

    /// Takes in records staged by ingestors: opens each with the ingest
    /// secret, re-seals it under the vault's keys and tags, same id, and
    /// audits it. A staged record that does not open stays staged (and
    /// `verify` names it). Cheap when nothing is staged.
    pub(super) fn adopt_ingested(&self) -> Result<()> {
        if !self.store.has_ingested()? {
            return Ok(());
        }
        let mut txn = self.begin()?;
        let staged = txn.ingested()?;
        if staged.is_empty() {
            return Ok(());
        }
        let Some(secret) = self.ingest_secret(&mut *txn)? else {
            return Ok(());
        };
        let mut sealers = HashMap::new();
        let mut keys: HashMap<u64, DataKey> = HashMap::new();
        let mut adopted = Vec::new();
        for row in staged {
            let Ok(record) = open_staged(&mut *txn, &secret, &mut keys, &row) else {
                continue;
            };
            let created = codec::to_millis(record.created_at());
            let new = NewRecord::from(record);
            let pending = self.pending(&new, created, row.expires_at_ms)?;
            let id = RecordId::from_u64(row.id);
            let conversation = pending.conversation;
            self.seal_into(&mut *txn, &mut sealers, id, pending)?;
            if new.masked {
                self.extend_mapping(&mut *txn, &mut sealers, conversation, row.expires_at_ms)?;
            }
            txn.delete_ingested(row.id)?;
            adopted.push(id);
        }
        if adopted.is_empty() {
            // Nothing opened (verify names what does not): roll back quietly.
            return Ok(());
        }
        self.count_key_uses(&mut *txn, &sealers)?;
        let count = adopted.len() as u64;
        let event = Event::new(AuditAction::Ingest)
            .records(adopted)
            .count(count);
        self.log_in(&mut *txn, &Actor::new("ingest"), &event, &AuditOutcome::Ok)?;
        self.commit(txn)?;
        self.cache_sealers(sealers);
        Ok(())
    }

    /// For `verify`: the first staged record that does not open, if any.
    pub(super) fn check_staged(&self) -> Result<usize> {
        if !self.store.has_ingested()? {
            return Ok(0);
        }
        let mut txn = self.begin_light()?;
        let staged = txn.ingested()?;
        let Some(secret) = self.ingest_secret(&mut *txn)? else {
            return Ok(0);
        };
        let mut keys = HashMap::new();
        for row in &staged {
            open_staged(&mut *txn, &secret, &mut keys, row)?;
        }
        Ok(staged.len())
    }

    fn ingest_secret(&self, txn: &mut dyn WriteTxn) -> Result<Option<StaticSecret>> {
        let Some(wrapped) = txn.meta_value(META_INGEST_SECRET)? else {
            return Ok(None);
        };
        let unlocked = self.unlocked.read().unwrap_or_else(|e| e.into_inner());
        let secret = unlocked
            .kek
            .unwrap_key(&wrapped, INGEST_SECRET_AAD)
            .ok_or(Error::KeyTampered { key_id: 0 })?;
        Ok(Some(StaticSecret::from(*secret.expose())))
    }

    /// Inside `change_key`: rewraps the ingest secret for the new KEK.
    pub(super) fn rewrap_ingest_secret(
        &self,
        txn: &mut dyn WriteTxn,
        old: &Kek,
        new: &Kek,
    ) -> Result<()> {
        let Some(wrapped) = txn.meta_value(META_INGEST_SECRET)? else {
            return Ok(());
        };
        let secret = old
            .unwrap_key(&wrapped, INGEST_SECRET_AAD)
            .ok_or(Error::KeyTampered { key_id: 0 })?;
        txn.set_meta_value(
            META_INGEST_SECRET,
            Some(&new.wrap(&secret, INGEST_SECRET_AAD)),
        )
    }
}

/// Opens one staged record.
fn open_staged(
    txn: &mut dyn WriteTxn,
    secret: &StaticSecret,
    keys: &mut HashMap<u64, DataKey>,
    row: &IngestRow,
) -> Result<Record> {
    let id = RecordId::from_u64(row.id);
    let key = match keys.entry(row.key_id) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(slot) => {
            let key_row = txn
                .ingest_key(row.key_id)?
                .ok_or(Error::KeyDestroyed { id })?;
            let aad = ingest_key_aad(key_row.id, key_row.not_after_ms);
            let key = unwrap_with(secret, &key_row.wrapped, &aad)
                .ok_or(Error::KeyTampered { key_id: key_row.id })?;
            slot.insert(DataKey::new(row.key_id, &key))
        }
    };
    let binding = IngestBinding {
        id,
        expires_at_ms: row.expires_at_ms,
    };
    let plain =
        seal::open(key, &binding, row.sealed.clone()).map_err(|_| Error::Tampered { id })?;
    let record = codec::record::decode(id, plain.bytes()).map_err(|_| Error::Tampered { id })?;
    if codec::to_millis(record.expires_at()) != row.expires_at_ms {
        return Err(Error::Tampered { id });
    }
    Ok(record)
}
