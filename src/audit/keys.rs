//! Keys of the audit log, derived from the vault's root secret (the
//! wrapped tag key), so the chain survives a change of passphrase.

use std::sync::Mutex;

use hkdf::Hkdf;
use hmac::Hmac;
use sha2::Sha256;

use crate::aead::AeadKey;
use crate::secret::SecretKey;

const MAC_LABEL: &[u8] = b"llmvault/v1/audit-mac";
const SEAL_LABEL: &[u8] = b"llmvault/v1/audit-seal";
const READ_LOG_SEAL_LABEL: &[u8] = b"llmvault/v1/read-log-seal";
/// Entries sealed under one derived key before the next: far below the
/// 2^32 random-nonce bound for AES-GCM.
pub(crate) const ENTRIES_PER_SEAL_KEY: u64 = 1 << 20;

/// The chain's MAC key and the root of its sealing keys.
pub(crate) struct AuditKeys {
    mac: Hmac<Sha256>,
    hkdf: Hkdf<Sha256>,
    /// The sealing key last used, by generation: entries come in order.
    current: Mutex<Option<(u64, std::sync::Arc<AeadKey>)>>,
}

impl AuditKeys {
    pub(crate) fn derive(root: &SecretKey) -> Self {
        let hkdf = Hkdf::<Sha256>::new(None, root.expose());
        let mac = crate::derive::hmac_with(&crate::derive::expand_key(&hkdf, MAC_LABEL));
        Self {
            mac,
            hkdf,
            current: Mutex::new(None),
        }
    }

    /// A fresh MAC state keyed for the chain.
    pub(crate) fn mac(&self) -> Hmac<Sha256> {
        self.mac.clone()
    }

    /// The cipher that seals entry `seq`: one key per 2^20 entries,
    /// HKDF(root, label ‖ generation u64 BE) (FORMAT.md §11).
    pub(crate) fn cipher(&self, seq: u64) -> std::sync::Arc<AeadKey> {
        let generation = seq / ENTRIES_PER_SEAL_KEY;
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, cipher)) = current.as_ref().filter(|(g, _)| *g == generation) {
            return std::sync::Arc::clone(cipher);
        }
        let mut info = SEAL_LABEL.to_vec();
        info.extend_from_slice(&generation.to_be_bytes());
        let key = crate::derive::expand_key(&self.hkdf, &info);
        let cipher = std::sync::Arc::new(AeadKey::new(&key));
        *current = Some((generation, std::sync::Arc::clone(&cipher)));
        cipher
    }

    /// The cipher that seals the entries of read log `name`:
    /// HKDF(root, label ‖ name) (FORMAT.md §11, "Read logs"). A log holds far fewer
    /// than 2^32 entries, so random nonces stay safe under it.
    pub(crate) fn read_log_cipher(&self, name: &[u8; 16]) -> AeadKey {
        let mut info = READ_LOG_SEAL_LABEL.to_vec();
        info.extend_from_slice(name);
        AeadKey::new(&crate::derive::expand_key(&self.hkdf, &info))
    }
}
