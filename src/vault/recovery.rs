//! Recovery shares: a break-glass way in that does not need the
//! passphrase. A random recovery secret R is split into n shares (any k
//! recover it). The vault stores R wrapped by the KEK (so a key holder can
//! rewrap it when the KEK changes) and the KEK wrapped by a key derived
//! from R (so the shares open the vault) — FORMAT.md §4.
//!
//! Issuing and revoking shares replace the KEK (`rekey.rs`): whoever kept
//! k old shares and an old copy of the recovery row recovers the KEK that
//! was current then, which then no longer opens anything in the file.

use std::borrow::Borrow;
use std::path::Path;

use super::rekey::{NextKek, Recovery};
use super::{Vault, VaultOptions};
use crate::audit::{AuditAction, Event};
use crate::error::{Error, Result};
use crate::keys::{
    Kek, RECOVERY_KEK_AAD, RECOVERY_SECRET_AAD, RecoveryShare, WRAPPED_LEN, combine_shares,
    recovery_kek, split_secret,
};
use crate::secret::SecretKey;
use crate::store::Storage;
use crate::tables::Txn;

/// Name of the meta row holding the recovery material.
const META_RECOVERY: &str = "recovery";
const RECOVERY_VERSION: u8 = 1;
const RECOVERY_LEN: usize = 3 + 2 * WRAPPED_LEN;

impl Vault {
    /// Issues `n` new recovery shares, any `k` of which open the vault with
    /// [`Vault::open_with_shares`]. Shares issued before stop working.
    /// Hand each share to a different person; print them with
    /// [`RecoveryShare::to_text`].
    ///
    /// # Security
    /// The vault's KEK is replaced in the same transaction (every wrapped
    /// key rewrapped, data keys in use retired, the WAL scrubbed), so
    /// earlier shares, even with a copy of the recovery material they
    /// belonged to, recover only a KEK that opens nothing in this file.
    /// A copy of the whole file made before still opens with them.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless `1 <= k <= n`;
    /// [`Error::KeySourceNeeded`] in a handle opened with shares that has
    /// not set a key with [`Vault::change_key`]; [`Error::KeyChanged`] if
    /// another handle replaced the KEK first; [`Error::KeyTampered`] if a
    /// wrapped key fails authentication (then nothing changed).
    pub fn recovery_shares(&self, k: u8, n: u8) -> Result<Vec<RecoveryShare>> {
        let result = self.issue_shares(k, n);
        self.log_failed_write(&self.actor, AuditAction::RecoverySharesIssued, &result);
        result
    }

    fn issue_shares(&self, k: u8, n: u8) -> Result<Vec<RecoveryShare>> {
        if k == 0 || k > n {
            return Err(Error::InvalidInput {
                what: "recovery shares",
                reason: format!("need 1 <= k <= n, got k = {k}, n = {n}"),
            });
        }
        let secret = SecretKey::random();
        let event = Event::new(AuditAction::RecoverySharesIssued).count(u64::from(n));
        self.replace_kek(
            &self.actor,
            NextKek::Rotate,
            Recovery::Replace {
                secret: &secret,
                k,
                n,
            },
            event,
        )?;
        Ok(split_secret(&secret, k, n))
    }

    /// Makes every issued recovery share useless.
    ///
    /// # Security
    /// Deleting the recovery material is not enough: its copies (a backup,
    /// the WAL, a stale block) wrap the KEK. So the KEK is replaced in the
    /// same transaction, as for [`Vault::recovery_shares`]; a copy of the
    /// whole file made before still opens with the old shares.
    ///
    /// # Errors
    /// [`Error::KeySourceNeeded`] in a handle opened with shares that has
    /// not set a key with [`Vault::change_key`]; [`Error::KeyChanged`],
    /// [`Error::KeyTampered`], [`Error::Busy`] or [`Error::Storage`] (then
    /// nothing changed).
    pub fn revoke_recovery(&self) -> Result<()> {
        let result = self.replace_kek(
            &self.actor,
            NextKek::Rotate,
            Recovery::Remove,
            Event::new(AuditAction::RecoveryRevoked),
        );
        self.log_failed_write(&self.actor, AuditAction::RecoveryRevoked, &result);
        result
    }

    /// Opens a vault with any `k` of its recovery shares instead of its
    /// key, with default options. See [`Vault::open_with_shares_and_options`].
    ///
    /// # Errors
    /// [`Error::WrongKey`] with fewer than `k` shares, a forged share, or
    /// after [`Vault::revoke_recovery`].
    pub fn open_with_shares(path: impl AsRef<Path>, shares: &[RecoveryShare]) -> Result<Self> {
        Self::open_with_shares_and_options(path, shares, VaultOptions::default())
    }

    /// As [`Vault::open_with_shares`], with options (retention, clock).
    ///
    /// # Errors
    /// As [`Vault::open_with_shares`].
    pub fn open_with_shares_and_options(
        path: impl AsRef<Path>,
        shares: &[RecoveryShare],
        options: impl Borrow<VaultOptions>,
    ) -> Result<Self> {
        Self::open_with_shares_in(Storage::sqlite(path), shares, options)
    }

    /// As [`Vault::open_with_shares_and_options`], for a vault in `storage`.
    ///
    /// # Errors
    /// As [`Vault::open_with_shares`].
    pub fn open_with_shares_in(
        storage: impl Borrow<Storage>,
        shares: &[RecoveryShare],
        options: impl Borrow<VaultOptions>,
    ) -> Result<Self> {
        let options = options.borrow();
        let (store, meta, header) = super::open_store(storage.borrow(), options)?;
        let kek = store
            .meta_value(META_RECOVERY)?
            .and_then(|material| open_recovery(&material, shares))
            .ok_or(Error::WrongKey)
            .and_then(|kek| header.check(kek));
        let kek = super::count_wrong_key(&store, kek)?;
        // No unlock key: shares give the KEK, not the key source.
        Self::unlocked_open(store, meta, (kek, None), options, AuditAction::RecoveryOpen)
    }

    /// Inside a change of KEK: writes the recovery material `recovery`
    /// asks for, wrapping the new KEK.
    pub(super) fn carry_recovery(
        &self,
        txn: &mut Txn<'_>,
        old: &Kek,
        new: &Kek,
        recovery: Recovery<'_>,
    ) -> Result<()> {
        match recovery {
            Recovery::Remove => txn.set_meta_value(META_RECOVERY, None),
            Recovery::Replace { secret, k, n } => {
                txn.set_meta_value(META_RECOVERY, Some(&seal_recovery(new, secret, k, n)))
            }
            Recovery::Keep => {
                let Some(material) = txn.meta_value(META_RECOVERY)? else {
                    return Ok(());
                };
                let (k, n) = parse_counts(&material).ok_or(Error::KeyTampered { key_id: 0 })?;
                let secret = old
                    .unwrap_key(
                        &material[3..3 + WRAPPED_LEN],
                        &aad(RECOVERY_SECRET_AAD, k, n),
                    )
                    .ok_or(Error::KeyTampered { key_id: 0 })?;
                txn.set_meta_value(META_RECOVERY, Some(&seal_recovery(new, &secret, k, n)))
            }
        }
    }
}

/// version ‖ k ‖ n ‖ KEK-wrapped recovery secret ‖ recovery-key-wrapped KEK.
fn seal_recovery(kek: &Kek, secret: &SecretKey, k: u8, n: u8) -> Vec<u8> {
    let mut out = vec![RECOVERY_VERSION, k, n];
    out.extend_from_slice(&kek.wrap(secret, &aad(RECOVERY_SECRET_AAD, k, n)));
    out.extend_from_slice(&recovery_kek(secret).wrap(kek.secret(), &aad(RECOVERY_KEK_AAD, k, n)));
    out
}

/// The KEK, if the shares recover the secret that wrapped it.
fn open_recovery(material: &[u8], shares: &[RecoveryShare]) -> Option<Kek> {
    let (k, n) = parse_counts(material)?;
    let secret = combine_shares(shares, k)?;
    let kek = recovery_kek(&secret)
        .unwrap_key(&material[3 + WRAPPED_LEN..], &aad(RECOVERY_KEK_AAD, k, n))?;
    Some(Kek::from_key(kek))
}

fn parse_counts(material: &[u8]) -> Option<(u8, u8)> {
    (material.len() == RECOVERY_LEN && material[0] == RECOVERY_VERSION)
        .then(|| (material[1], material[2]))
}

fn aad(label: &[u8], k: u8, n: u8) -> Vec<u8> {
    let mut aad = label.to_vec();
    aad.extend_from_slice(&[k, n]);
    aad
}
