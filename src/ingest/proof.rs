//! The proof that a staged record was made by a holder of a live
//! [`IngestKey`](super::IngestKey): an HMAC-SHA256 under the key's MAC
//! secret, which only issued keys and the vault (wrapped by its KEK) hold
//! (FORMAT.md §12). The X25519 public key alone proves nothing: it lies in
//! clear in the file.
//!
//! ```text
//! proof = HMAC-SHA256(mac key, "llmvault/v2/ingest-record" ‖ staged id (u64 BE)
//!                     ‖ ingest key id (u64 BE) ‖ expires at (i64 BE) ‖ envelope)
//! check = HMAC-SHA256(mac key, "llmvault/v2/ingest-check" ‖ X25519 public key)
//! ```

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret::SecretKey;

/// Length of a staged record's proof, appended to its envelope.
pub(crate) const PROOF_LEN: usize = 32;
/// Length of the key check stored after the wrapped MAC key.
pub(crate) const CHECK_LEN: usize = 32;

const PROOF_LABEL: &[u8] = b"llmvault/v2/ingest-record";
const CHECK_LABEL: &[u8] = b"llmvault/v2/ingest-check";

/// The keyed MAC state of an ingest key (wiped on drop: `hmac` is built
/// with `zeroize`).
pub(crate) struct IngestMac {
    mac: Hmac<Sha256>,
}

/// What a staged record's proof covers besides its envelope.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StagedSlot {
    pub(crate) id: u64,
    pub(crate) key_id: u64,
    pub(crate) expires_at_ms: i64,
}

impl IngestMac {
    pub(crate) fn new(key: &SecretKey) -> Self {
        Self {
            mac: crate::derive::hmac_with(key),
        }
    }

    /// The proof for a staged record in `slot` with this envelope.
    pub(crate) fn prove(&self, slot: &StagedSlot, envelope: &[u8]) -> [u8; PROOF_LEN] {
        self.proof_state(slot, envelope)
            .finalize()
            .into_bytes()
            .into()
    }

    /// Whether `proof` is the one for `slot` and `envelope`, compared in
    /// constant time.
    pub(crate) fn verify(&self, slot: &StagedSlot, envelope: &[u8], proof: &[u8]) -> bool {
        self.proof_state(slot, envelope).verify_slice(proof).is_ok()
    }

    /// The key check for `public`: lets an ingestor tell at open that its
    /// MAC secret is the vault's, without the vault's KEK.
    pub(crate) fn check(&self, public: &[u8; 32]) -> [u8; CHECK_LEN] {
        let mut mac = self.mac.clone();
        mac.update(CHECK_LABEL);
        mac.update(public);
        mac.finalize().into_bytes().into()
    }

    /// Whether `stored` is the key check for `public`, in constant time.
    pub(crate) fn verify_check(&self, public: &[u8; 32], stored: &[u8]) -> bool {
        let mut mac = self.mac.clone();
        mac.update(CHECK_LABEL);
        mac.update(public);
        mac.verify_slice(stored).is_ok()
    }

    fn proof_state(&self, slot: &StagedSlot, envelope: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(PROOF_LABEL);
        mac.update(&slot.id.to_be_bytes());
        mac.update(&slot.key_id.to_be_bytes());
        mac.update(&slot.expires_at_ms.to_be_bytes());
        mac.update(envelope);
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLOT: StagedSlot = StagedSlot {
        id: 7,
        key_id: 3,
        expires_at_ms: 1_767_225_600_000,
    };

    /// Cross-checked with Python's `hmac`, key `b"\x11" * 32`, SHA-256:
    ///
    /// ```text
    /// proof: b"llmvault/v2/ingest-record" + (7).to_bytes(8, "big") + (3).to_bytes(8, "big")
    ///        + (1767225600000).to_bytes(8, "big") + b"envelope"
    /// check: b"llmvault/v2/ingest-check" + b"\x22" * 32
    /// ```
    #[test]
    fn proof_and_check_known_answers() {
        let mac = IngestMac::new(&SecretKey::from_bytes([0x11; 32]));
        let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(hex(&mac.prove(&SLOT, b"envelope")), PROOF_KAT);
        assert_eq!(hex(&mac.check(&[0x22; 32])), CHECK_KAT);
    }

    const PROOF_KAT: &str = "dabbe6bf259e8811e85597c619b79535d68dd6fd59bb2e6a4c34ebac30b2ebf8";
    const CHECK_KAT: &str = "56090f8ed39924b88d65b131590f46fe23776616871d75f2ad7232e0496c5558";

    #[test]
    fn every_covered_field_and_byte_counts() {
        let mac = IngestMac::new(&SecretKey::from_bytes([0x11; 32]));
        let proof = mac.prove(&SLOT, b"envelope");
        assert!(mac.verify(&SLOT, b"envelope", &proof));
        let moved = [
            StagedSlot { id: 8, ..SLOT },
            StagedSlot { key_id: 4, ..SLOT },
            StagedSlot {
                expires_at_ms: SLOT.expires_at_ms + 1,
                ..SLOT
            },
        ];
        for slot in moved {
            assert!(!mac.verify(&slot, b"envelope", &proof), "{slot:?}");
        }
        assert!(!mac.verify(&SLOT, b"envelopf", &proof));
        assert!(!mac.verify(&SLOT, b"envelope", &proof[..31]));
        let other = IngestMac::new(&SecretKey::from_bytes([0x12; 32]));
        assert!(!other.verify(&SLOT, b"envelope", &proof));
        assert!(mac.verify_check(&[0x22; 32], &mac.check(&[0x22; 32])));
        assert!(!other.verify_check(&[0x22; 32], &mac.check(&[0x22; 32])));
        assert!(!mac.verify_check(&[0x23; 32], &mac.check(&[0x22; 32])));
    }
}
