//! The vault's side of write-only ingest: issuing and rotating the ingest
//! key, and keeping its material wrapped under the KEK. Taking staged
//! records in is `take_in.rs`.

use std::collections::HashMap;

use x25519_dalek::{PublicKey, StaticSecret};

use super::Vault;
use crate::audit::{AuditAction, AuditOutcome, Event};
use crate::error::{Error, Result};
use crate::ingest::{
    INGEST_SECRET_AAD, IngestKey, IngestMac, META_INGEST_MAC, META_INGEST_PUBLIC,
    META_INGEST_SECRET, ingest_mac_aad, new_secret, split_mac_row,
};
use crate::keys::Kek;
use crate::secret::SecretKey;
use crate::tables::Txn;

/// The vault's current ingest material, unwrapped.
pub(super) struct IngestMaterial {
    /// Unwraps the data keys ingestors wrapped to `public`.
    pub(super) secret: StaticSecret,
    pub(super) public: [u8; 32],
    /// Proves staged records (`IngestMac`).
    pub(super) mac_key: SecretKey,
}

impl Vault {
    /// The key that lets an [`Ingestor`](crate::ingest::Ingestor) append records to
    /// this vault and read nothing back. Created on first call (a fresh
    /// X25519 pair and MAC secret, both stored wrapped by the KEK); the
    /// same key after, until [`Vault::rotate_ingest_key`]. Each call is
    /// audited as `IngestKeyIssued` (count 1 when it created the key).
    ///
    /// A vault that only ever issued the older, public-only kind of key
    /// (`llmvault-ingest-1-`) gets a new key: the old one proves nothing
    /// and is refused.
    ///
    /// # Security
    /// The key is a secret: whoever holds it can stage records this vault
    /// will take in. It opens nothing.
    ///
    /// # Errors
    /// [`Error::KeyTampered`] (key id 0) if the stored ingest material
    /// fails authentication ([`Vault::rotate_ingest_key`] replaces it);
    /// [`Error::KeyChanged`] if another handle changed the vault's key;
    /// [`Error::Busy`] or [`Error::Storage`].
    pub fn ingest_key(&self) -> Result<IngestKey> {
        let result = (|| {
            let mut txn = self.begin()?;
            let (key, created) = match self.ingest_material(&mut txn)? {
                Some(m) => (IngestKey::new(m.public, m.mac_key), false),
                None => (self.issue_ingest_key(&mut txn)?, true),
            };
            let event = Event::new(AuditAction::IngestKeyIssued).count(u64::from(created));
            self.log_in(&mut txn, &self.actor, &event, &AuditOutcome::Ok)?;
            self.commit(txn)?;
            Ok(key)
        })();
        self.log_failed_write(&self.actor, AuditAction::IngestKeyIssued, &result);
        result
    }

    /// Replaces the ingest key with a new one (new X25519 pair, new MAC
    /// secret) and returns it; audited as `IngestKeyRotated`. Records
    /// staged until now are taken in first, in the same transaction;
    /// records staged afterwards under the old key are refused at take-in
    /// (set aside, counted by [`Vault::verify`], never adopted), and an
    /// ingestor still holding it gets [`Error::KeyChanged`] on its next
    /// write and [`Error::WrongKey`] on open. The ingest data keys wrapped
    /// to the old public key are deleted.
    ///
    /// Damaged ingest material does not stop it: what is staged is then
    /// set aside, and a new key replaces the material.
    ///
    /// # Errors
    /// [`Error::KeyChanged`] if another handle changed the vault's key;
    /// [`Error::Busy`] or [`Error::Storage`].
    pub fn rotate_ingest_key(&self) -> Result<IngestKey> {
        let result = (|| {
            let mut txn = self.begin_scrubbed()?;
            let mut sealers = HashMap::new();
            self.take_in(&mut txn, &mut sealers)?;
            self.count_key_uses(&mut txn, &sealers)?;
            txn.delete_ingest_keys()?;
            let key = self.issue_ingest_key(&mut txn)?;
            let event = Event::new(AuditAction::IngestKeyRotated);
            self.log_in(&mut txn, &self.actor, &event, &AuditOutcome::Ok)?;
            self.commit_keys(txn, sealers, &[])?;
            Ok(key)
        })();
        self.log_failed_write(&self.actor, AuditAction::IngestKeyRotated, &result);
        result
    }

    /// The current ingest material, or `None` if no key of this format was
    /// issued (never, or only a format-1 public key).
    ///
    /// # Errors
    /// [`Error::KeyTampered`] (key id 0) if a row fails authentication or
    /// the rows do not belong together; [`Error::KeyChanged`] if that is
    /// because another handle changed the KEK.
    pub(super) fn ingest_material(&self, txn: &mut Txn<'_>) -> Result<Option<IngestMaterial>> {
        let Some(mac_row) = txn.meta_value(META_INGEST_MAC)? else {
            return Ok(None);
        };
        let wrapped_secret = txn.meta_value(META_INGEST_SECRET)?;
        let stored_public = txn.meta_value(META_INGEST_PUBLIC)?;
        let tampered = Error::KeyTampered { key_id: 0 };
        let (secret, mac_key) = {
            let unlocked = self.unlocked.read().unwrap_or_else(|e| e.into_inner());
            let secret = wrapped_secret
                .and_then(|w| unlocked.kek.unwrap_key(&w, INGEST_SECRET_AAD))
                .map(|s| StaticSecret::from(*s.expose()));
            let public = secret.as_ref().map(|s| PublicKey::from(s).to_bytes());
            let mac_key = public.and_then(|p| {
                let (wrapped, _) = split_mac_row(&mac_row)?;
                unlocked.kek.unwrap_key(wrapped, &ingest_mac_aad(&p))
            });
            match (secret, mac_key) {
                (Some(s), Some(m)) => (s, m),
                _ => {
                    // Another handle may have rewrapped them under a new KEK.
                    let moved = !txn.header_is(&unlocked.header)?;
                    return Err(if moved { Error::KeyChanged } else { tampered });
                }
            }
        };
        let public = PublicKey::from(&secret).to_bytes();
        // The public key is stored in clear: hand out (and accept records
        // for) the secret's own, never whatever the row says.
        let checked = split_mac_row(&mac_row)
            .is_some_and(|(_, check)| IngestMac::new(&mac_key).verify_check(&public, check));
        if stored_public.as_deref() != Some(&public[..]) || !checked {
            return Err(tampered);
        }
        Ok(Some(IngestMaterial {
            secret,
            public,
            mac_key,
        }))
    }

    /// Creates and stores a new ingest key, replacing any other.
    fn issue_ingest_key(&self, txn: &mut Txn<'_>) -> Result<IngestKey> {
        let mark = self.high_water(txn)?;
        let secret = new_secret();
        let public = PublicKey::from(&secret).to_bytes();
        let mac_key = SecretKey::random();
        let check = IngestMac::new(&mac_key).check(&public);
        {
            let unlocked = self.unlocked.read().unwrap_or_else(|e| e.into_inner());
            // Wrapped under a stale KEK, the material would be unreadable.
            if !txn.header_is(&unlocked.header)? {
                return Err(Error::KeyChanged);
            }
            let wrapped_secret = unlocked
                .kek
                .wrap(&SecretKey::copy_from(secret.as_bytes()), INGEST_SECRET_AAD);
            let mut mac_row = unlocked
                .kek
                .wrap(&mac_key, &ingest_mac_aad(&public))
                .to_vec();
            mac_row.extend_from_slice(&check);
            txn.set_meta_value(META_INGEST_SECRET, Some(&wrapped_secret))?;
            txn.set_meta_value(META_INGEST_MAC, Some(&mac_row))?;
        }
        txn.set_meta_value(META_INGEST_PUBLIC, Some(&public))?;
        // Written with the key: from here on a missing mark is tampering,
        // and refuses what is staged (see `high_water`).
        self.set_high_water(txn, mark)?;
        Ok(IngestKey::new(public, mac_key))
    }

    /// Inside `change_key`: rewraps the ingest secret and MAC secret for
    /// the new KEK.
    pub(super) fn rewrap_ingest_secret(
        &self,
        txn: &mut Txn<'_>,
        old: &Kek,
        new: &Kek,
    ) -> Result<()> {
        let tampered = || Error::KeyTampered { key_id: 0 };
        let mac_row = txn.meta_value(META_INGEST_MAC)?;
        let Some(wrapped) = txn.meta_value(META_INGEST_SECRET)? else {
            return match mac_row {
                Some(_) => Err(tampered()),
                None => Ok(()),
            };
        };
        let secret = old
            .unwrap_key(&wrapped, INGEST_SECRET_AAD)
            .ok_or_else(tampered)?;
        txn.set_meta_value(
            META_INGEST_SECRET,
            Some(&new.wrap(&secret, INGEST_SECRET_AAD)),
        )?;
        let Some(mac_row) = mac_row else {
            return Ok(());
        };
        let public = PublicKey::from(&StaticSecret::from(*secret.expose())).to_bytes();
        let aad = ingest_mac_aad(&public);
        let (wrapped, check) = split_mac_row(&mac_row).ok_or_else(tampered)?;
        let mac_key = old.unwrap_key(wrapped, &aad).ok_or_else(tampered)?;
        let mut rewrapped = new.wrap(&mac_key, &aad).to_vec();
        rewrapped.extend_from_slice(check);
        txn.set_meta_value(META_INGEST_MAC, Some(&rewrapped))
    }
}
