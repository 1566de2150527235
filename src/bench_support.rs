//! Hooks for the crate's own benchmarks: the sealing layer alone, without
//! storage. Not part of the public API; may change at any time.

use crate::keys::DataKey;
use crate::record::RecordId;
use crate::seal::{self, Binding};
use crate::secret::SecretKey;
use zeroize::Zeroizing;

/// A random data key and a fixed binding, to seal and open buffers.
pub struct SealBench {
    key: DataKey,
    binding: Binding,
}

impl Default for SealBench {
    fn default() -> Self {
        Self {
            key: DataKey::new(1, &SecretKey::random()),
            binding: Binding {
                id: RecordId::from_u64(1),
                expires_at_ms: 1,
                conversation: [1; 16],
                subject: None,
            },
        }
    }
}

impl SealBench {
    /// Seals `plaintext` the way `put` does (copied once into a zeroizing
    /// buffer with room for the envelope). `None` only past AES-GCM's limit.
    pub fn seal(&self, plaintext: &[u8]) -> Option<Vec<u8>> {
        let mut buf = Zeroizing::new(Vec::with_capacity(
            seal::HEADER_LEN + plaintext.len() + seal::TAG_LEN,
        ));
        buf.resize(seal::HEADER_LEN, 0);
        buf.extend_from_slice(plaintext);
        seal::seal(&self.key, &self.binding, buf).ok()
    }

    /// Opens an envelope from [`SealBench::seal`]; returns the plaintext
    /// length, or `None` if it does not authenticate.
    pub fn open(&self, envelope: Vec<u8>) -> Option<usize> {
        seal::open(&self.key, &self.binding, envelope)
            .ok()
            .map(|p| p.bytes().len())
    }
}
