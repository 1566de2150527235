//! Replacing the KEK: `change_key` (a new key source, so a new unlock key
//! and KEK), and the rotation behind `recovery_shares` and
//! `revoke_recovery` (same key source, new random KEK). Both rewrap every
//! secret the KEK wraps, in one transaction (FORMAT.md §4 "Changing the
//! key").

use std::borrow::Borrow;

use super::header::{Header, SourceKeys};
use super::{Unlocked, Vault};
use crate::audit::{Actor, AuditAction, AuditOutcome, Event};
use crate::error::{Error, Result};
use crate::kdf::{KdfParams, KeySource};
use crate::keys::{Kek, TAG_KEY_AAD, data_key_aad};
use crate::secret::SecretKey;
use crate::store::VaultMeta;
use crate::tables::Txn;

/// Where the next KEK comes from.
pub(super) enum NextKek {
    /// A new key source: a new header (fresh salt) and unlock key. Boxed:
    /// the keys' AES schedules are large in the pure-Rust build, and a
    /// move of the box copies no key material.
    Source(Box<(Header, SourceKeys)>),
    /// The same key source: a fresh random KEK under the handle's unlock
    /// key.
    Rotate,
}

/// What a change of KEK does with the recovery material.
pub(super) enum Recovery<'a> {
    /// Issued shares keep working: R is rewrapped under the new KEK, and
    /// the new KEK under the unchanged recovery key.
    Keep,
    /// No recovery material afterwards.
    Remove,
    /// Material for a fresh recovery secret, wrapping the new KEK.
    Replace { secret: &'a SecretKey, k: u8, n: u8 },
}

impl Vault {
    /// Replaces the key that opens the vault. In one transaction every
    /// data key, the tag key, the ingest secret and the recovery material
    /// are rewrapped under a new random KEK (records are not re-encrypted),
    /// and the data keys in use are retired, so later records get fresh
    /// ones; the old key stops working and issued recovery shares keep
    /// working. The new key gets a fresh salt and Argon2id parameters
    /// never weaker than the vault's current ones: each parameter is the
    /// larger of the header's and the handle's [`VaultOptions::kdf`]. To
    /// set them outright (weaker too), use [`Vault::change_key_with_kdf`].
    ///
    /// [`VaultOptions::kdf`]: super::VaultOptions::kdf
    ///
    /// # Errors
    /// [`Error::KeyTampered`] if a stored key fails authentication (nothing
    /// is changed); [`Error::KeyChanged`] if another handle changed the key
    /// first.
    pub fn change_key(&self, new_key: impl Borrow<KeySource>) -> Result<()> {
        self.change_key_as(&self.actor, new_key.borrow(), None)
    }

    /// [`Vault::change_key`] with the new key's Argon2id parameters set
    /// explicitly, whatever the vault had before.
    ///
    /// # Errors
    /// As [`Vault::change_key`].
    pub fn change_key_with_kdf(
        &self,
        new_key: impl Borrow<KeySource>,
        kdf: KdfParams,
    ) -> Result<()> {
        self.change_key_as(&self.actor, new_key.borrow(), Some(kdf))
    }

    pub(super) fn change_key_as(
        &self,
        actor: &Actor,
        new_key: &KeySource,
        kdf: Option<KdfParams>,
    ) -> Result<()> {
        let result = self.rekey(actor, new_key, kdf);
        self.log_failed_write(actor, AuditAction::ChangeKey, &result);
        result
    }

    fn rekey(&self, actor: &Actor, new_key: &KeySource, kdf: Option<KdfParams>) -> Result<()> {
        let kdf = match kdf {
            // An explicit choice, but never one these options could not
            // open again.
            Some(explicit) => {
                explicit.within(&self.max_kdf)?;
                explicit
            }
            None => {
                let unlocked = self.unlocked.read().unwrap_or_else(|e| e.into_inner());
                Header::parse(&unlocked.header)?.kdf.at_least(&self.kdf)
            }
        };
        // The KDF runs before any lock is taken.
        let (header, keys) = Header::new(new_key, kdf)?;
        self.replace_kek(
            actor,
            NextKek::Source(Box::new((header, keys))),
            Recovery::Keep,
            Event::new(AuditAction::ChangeKey),
        )
    }

    /// Replaces the KEK in one write transaction: checks that no other
    /// handle replaced it first, rewraps every data key, the tag key, the
    /// ingest secret and (as `recovery` says) the recovery material under
    /// the new KEK, stores the new header, retires the data keys in use,
    /// appends `event` and commits, scrubbed: the backend's own copies (the
    /// SQLite WAL) of the pages wrapped under the old KEK are overwritten.
    ///
    /// Why retire: a party holding the old KEK and an old copy of the key
    /// rows (old shares with an old copy of the file) knows the data keys
    /// as they were. Records stored afterwards get keys no earlier copy
    /// holds.
    pub(super) fn replace_kek(
        &self,
        actor: &Actor,
        next: NextKek,
        recovery: Recovery<'_>,
        event: Event,
    ) -> Result<()> {
        let mut txn = self.begin_scrubbed()?;
        let unlocked = self.unlocked.write().unwrap_or_else(|e| e.into_inner());
        let meta = txn.meta()?;
        if meta.header != unlocked.header {
            return Err(Error::KeyChanged);
        }
        let (header, new_kek, new_unlock) = match next {
            NextKek::Source(next) => {
                let (header, keys) = *next;
                (header, keys.kek, Some(keys.unlock))
            }
            NextKek::Rotate => {
                let unlock = unlocked.unlock.as_ref().ok_or(Error::KeySourceNeeded)?;
                let (header, kek) = Header::parse(&unlocked.header)?.with_new_kek(unlock);
                (header, kek, None)
            }
        };
        let old = &unlocked.kek;
        rewrap_data_keys(&mut txn, old, &new_kek)?;
        let tag_key = old
            .unwrap_key(&meta.tag_key, TAG_KEY_AAD)
            .ok_or(Error::KeyTampered { key_id: 0 })?;
        self.rewrap_ingest_secret(&mut txn, old, &new_kek)?;
        self.carry_recovery(&mut txn, old, &new_kek, recovery)?;
        let new_meta = VaultMeta {
            header: header.to_bytes(),
            tag_key: new_kek.wrap(&tag_key, TAG_KEY_AAD).to_vec(),
        };
        txn.set_meta(&new_meta)?;
        txn.retire_all_keys()?;
        self.log_in(&mut txn, actor, &event, &AuditOutcome::Ok)?;
        // The new KEK goes in, and the lock on it is let go, before the
        // transaction is dropped: a scrubbed drop checkpoints the WAL,
        // which may wait on readers, and no read should wait with it.
        let mut guard = Some(unlocked);
        let mut next = Some((new_kek, new_meta.header, new_unlock));
        self.commit_then(txn, &mut || {
            if let (Some(mut unlocked), Some((kek, header, new_unlock))) =
                (guard.take(), next.take())
            {
                let unlock = new_unlock.or_else(|| unlocked.unlock.take());
                *unlocked = Unlocked {
                    kek,
                    header,
                    unlock,
                };
            }
        })
    }
}

/// Every data key, unwrapped with `old` and wrapped under `new` with the
/// same AAD (id and scope) and a fresh nonce.
fn rewrap_data_keys(txn: &mut Txn<'_>, old: &Kek, new: &Kek) -> Result<()> {
    for row in txn.keys()? {
        let aad = data_key_aad(row.id, &row.scope);
        let key = old
            .unwrap_key(&row.wrapped, &aad)
            .ok_or(Error::KeyTampered { key_id: row.id })?;
        txn.rewrap_key(row.id, &new.wrap(&key, &aad))?;
    }
    Ok(())
}
