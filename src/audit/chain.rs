//! Sealing, chaining and checking audit entries (FORMAT.md §11).
//!
//! ```text
//! sealed = nonce (12) ‖ AES-256-GCM(entry body) ‖ tag (16)
//!          aad = "llmvault/v1/audit-entry" ‖ seq (u64 BE) ‖ at ms (i64 BE)
//! mac    = HMAC-SHA256(mac key, "llmvault/v1/audit-chain" ‖ previous mac (32, zeros
//!          for the first) ‖ seq (u64 BE) ‖ at ms (i64 BE) ‖ sealed)
//! ```

use hmac::Mac;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{
    Actor, AuditAction, AuditEntry, AuditHead, AuditKeys, AuditOutcome, AuditReport, Event,
};
use crate::aead::{NONCE_LEN, TAG_LEN};
use crate::codec::{self, from_millis};
use crate::error::{Error, Result};
use crate::store::AuditRow;

const ENTRY_LABEL: &[u8] = b"llmvault/v1/audit-entry";
const CHAIN_LABEL: &[u8] = b"llmvault/v1/audit-chain";

/// Seals an entry and chains it after `prev_mac`.
pub(crate) fn entry_row(
    keys: &AuditKeys,
    seq: u64,
    at_ms: i64,
    prev_mac: &[u8; 32],
    actor: &Actor,
    event: &Event,
    outcome: &AuditOutcome,
) -> AuditRow {
    let body = Zeroizing::new(codec::audit::encode(actor, event, outcome));
    row_of_body(keys, seq, at_ms, prev_mac, &body)
}

/// Seals an encoded entry body and chains it after `prev_mac`.
pub(crate) fn row_of_body(
    keys: &AuditKeys,
    seq: u64,
    at_ms: i64,
    prev_mac: &[u8; 32],
    body: &[u8],
) -> AuditRow {
    let mut sealed = Vec::with_capacity(NONCE_LEN + body.len() + TAG_LEN);
    let nonce = crate::random::nonce();
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(body);
    let tag = keys
        .cipher(seq)
        .seal(&nonce, &aad(seq, at_ms), &mut sealed[NONCE_LEN..])
        .unwrap_or_default();
    sealed.extend_from_slice(&tag);
    let mac = chain_mac(keys, prev_mac, seq, at_ms, &sealed);
    AuditRow {
        seq,
        at_ms,
        sealed,
        mac,
        mac_intact: true,
    }
}

/// Decrypts an entry; `None` if it does not authenticate or decode.
pub(crate) fn open_entry(keys: &AuditKeys, row: &AuditRow) -> Option<AuditEntry> {
    if row.sealed.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let nonce = row.sealed[..NONCE_LEN].try_into().ok()?;
    let tag_at = row.sealed.len() - TAG_LEN;
    let tag = row.sealed[tag_at..].try_into().ok()?;
    // Decrypted bodies hold actor names and purposes: wiped on drop.
    let mut body = Zeroizing::new(row.sealed[NONCE_LEN..tag_at].to_vec());
    keys.cipher(row.seq)
        .open(nonce, &aad(row.seq, row.at_ms), &mut body, tag)
        .ok()?;
    let mut entry = codec::audit::decode(&body)?;
    entry.seq = row.seq;
    entry.at = from_millis(row.at_ms);
    Some(entry)
}

/// Whether an entry authenticates, decodes, and is not the record of
/// read entries that were lost (which no later entry makes good).
pub(super) fn opens_clean(keys: &AuditKeys, row: &AuditRow) -> bool {
    open_entry(keys, row).is_some_and(|e| e.action != AuditAction::ReadLogDamaged)
}

/// Walks the chain from seq 1, one row at a time, and names the first bad
/// entry. With a head kept elsewhere, a log shorter than the head, or whose
/// entry at the head's position differs, is refused too.
pub(crate) struct ChainVerifier<'a> {
    keys: &'a AuditKeys,
    prev: [u8; 32],
    next: u64,
    head: Option<AuditHead>,
    head_seen: bool,
}

impl<'a> ChainVerifier<'a> {
    pub(crate) fn new(keys: &'a AuditKeys, head: Option<AuditHead>) -> Self {
        Self {
            keys,
            prev: [0; 32],
            next: 1,
            head,
            head_seen: false,
        }
    }

    /// Checks the next row of the log.
    pub(crate) fn push(&mut self, row: &AuditRow) -> Result<()> {
        if row.seq != self.next {
            // A gap: the entry at `next` was removed (or renumbered).
            return Err(Error::AuditTampered {
                seq: self.next.min(row.seq),
            });
        }
        let mac = chain_mac(self.keys, &self.prev, row.seq, row.at_ms, &row.sealed);
        // Constant time: a comparison that stops at the first differing
        // byte tells a forger, by timing, how much of a guessed MAC is right.
        if !bool::from(mac.ct_eq(&row.mac)) || !opens_clean(self.keys, row) {
            return Err(Error::AuditTampered { seq: row.seq });
        }
        if let Some(h) = self.head.as_ref().filter(|h| h.seq == row.seq) {
            if !bool::from(h.mac.ct_eq(&mac)) {
                return Err(Error::AuditTampered { seq: row.seq });
            }
            self.head_seen = true;
        }
        self.prev = mac;
        self.next += 1;
        Ok(())
    }

    /// Ends the walk.
    pub(crate) fn finish(self) -> Result<AuditReport> {
        let last = self.next - 1;
        if self.head.is_some_and(|h| h.seq > 0) && !self.head_seen {
            return Err(Error::AuditTampered { seq: last + 1 });
        }
        Ok(AuditReport {
            entries: last,
            head: AuditHead {
                seq: last,
                mac: self.prev,
            },
        })
    }
}

fn aad(seq: u64, at_ms: i64) -> Vec<u8> {
    let mut aad = ENTRY_LABEL.to_vec();
    aad.extend_from_slice(&seq.to_be_bytes());
    aad.extend_from_slice(&at_ms.to_be_bytes());
    aad
}

pub(super) fn chain_mac(
    keys: &AuditKeys,
    prev: &[u8; 32],
    seq: u64,
    at_ms: i64,
    sealed: &[u8],
) -> [u8; 32] {
    let mut mac = keys.mac();
    mac.update(CHAIN_LABEL);
    mac.update(prev);
    mac.update(&seq.to_be_bytes());
    mac.update(&at_ms.to_be_bytes());
    mac.update(sealed);
    mac.finalize().into_bytes().into()
}
