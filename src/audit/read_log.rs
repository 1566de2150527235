//! The bytes of a read log (FORMAT.md §11, "Read logs"): a header naming the log,
//! then one framed entry per read, sealed and chained like the audit
//! chain's but under keys of the log's own.
//!
//! ```text
//! header = "LLMVRLOG" ‖ version 0x01 ‖ name (16)
//! entry  = length of the rest (u32 BE) ‖ index (u64 BE, from 1) ‖ at ms (i64 BE)
//!          ‖ sealed ‖ mac (32)
//! sealed = nonce (12) ‖ AES-256-GCM(entry body) ‖ tag (16), under
//!          HKDF(root, "llmvault/v1/read-log-seal" ‖ name),
//!          aad = "llmvault/v1/read-entry" ‖ name ‖ index ‖ at ms
//! mac    = HMAC-SHA256(mac key, "llmvault/v1/read-chain" ‖ name ‖ previous mac
//!          (zeros for the first) ‖ index ‖ at ms ‖ sealed)
//! ```

use hmac::Mac;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::AuditKeys;
use crate::aead::{AeadKey, NONCE_LEN, TAG_LEN};
use crate::store::read_logs::LogName;

const MAGIC: &[u8; 8] = b"LLMVRLOG";
const VERSION: u8 = 1;
/// Bytes before the first entry.
const HEADER_BYTES: usize = 8 + 1 + 16;
/// [`HEADER_BYTES`] as a file offset.
pub(crate) const HEADER_LEN: u64 = HEADER_BYTES as u64;
const ENTRY_LABEL: &[u8] = b"llmvault/v1/read-entry";
const CHAIN_LABEL: &[u8] = b"llmvault/v1/read-chain";
/// Index, time and MAC around the sealed body.
const FRAME_LEN: usize = 8 + 8 + 32;
/// An entry body is an audit body: bounded (actor and purpose cut to
/// 4 KiB each, at most `AUDIT_MAX_LISTED_RECORDS` ids). A longer frame
/// is damage, not a reason to allocate.
const MAX_ENTRY_LEN: usize = 1 << 20;

/// How far a log has been read (or written): the byte offset of the next
/// entry, its index, and the MAC it chains from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) offset: u64,
    pub(crate) next_index: u64,
    pub(crate) prev: [u8; 32],
}

impl Cursor {
    /// The start of a log: before its header.
    pub(crate) fn start() -> Self {
        Self {
            offset: 0,
            next_index: 1,
            prev: [0; 32],
        }
    }

    /// Entries before this cursor.
    pub(crate) fn entries(&self) -> u64 {
        self.next_index - 1
    }
}

/// The header of log `name`.
pub(crate) fn header(name: &LogName) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.push(VERSION);
    out.extend_from_slice(name);
    out
}

/// Seals an entry body as the entry at `at` (whose offset and index it
/// takes), and the cursor after it.
pub(crate) fn entry(
    keys: &AuditKeys,
    cipher: &AeadKey,
    name: &LogName,
    at: &Cursor,
    at_ms: i64,
    body: &[u8],
) -> (Vec<u8>, Cursor) {
    let index = at.next_index;
    let mut sealed = Vec::with_capacity(NONCE_LEN + body.len() + TAG_LEN);
    let nonce = crate::random::nonce();
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(body);
    // Sealing fails only beyond AES-GCM's message limit, far above any
    // entry body; the (zeroed) body then fails to open at fold time.
    let tag = cipher
        .seal(&nonce, &aad(name, index, at_ms), &mut sealed[NONCE_LEN..])
        .unwrap_or_default();
    sealed.extend_from_slice(&tag);
    let mac = chain_mac(keys, name, &at.prev, index, at_ms, &sealed);
    let len = FRAME_LEN + sealed.len();
    let mut out = Vec::with_capacity(4 + len);
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&index.to_be_bytes());
    out.extend_from_slice(&at_ms.to_be_bytes());
    out.extend_from_slice(&sealed);
    out.extend_from_slice(&mac);
    let next = Cursor {
        offset: at.offset + out.len() as u64,
        next_index: index + 1,
        prev: mac,
    };
    (out, next)
}

/// One entry read back: its index, time and decrypted body.
pub(crate) struct ReadEntry {
    pub(crate) index: u64,
    pub(crate) at_ms: i64,
    pub(crate) body: Zeroizing<Vec<u8>>,
}

/// What reading a log found.
pub(crate) struct LogContents {
    pub(crate) entries: Vec<ReadEntry>,
    /// Where reading stopped: after the last good entry.
    pub(crate) end: Cursor,
    /// Why reading stopped before the end of the bytes, if it did for
    /// anything but a torn last entry (which a read never returned after).
    pub(crate) damage: Option<String>,
}

/// Reads the entries of log `name` in `bytes`, which start at `from`.
pub(crate) fn read(keys: &AuditKeys, name: &LogName, from: Cursor, bytes: &[u8]) -> LogContents {
    let mut contents = LogContents {
        entries: Vec::new(),
        end: from,
        damage: None,
    };
    let mut rest = bytes;
    if from.offset == 0 {
        if rest.len() < HEADER_BYTES {
            // A log made but never written to (or torn in its first write).
            return contents;
        }
        if rest[..8] != MAGIC[..] || rest[8] != VERSION || rest[9..25] != name[..] {
            contents.damage = Some("the header is not this log's".into());
            return contents;
        }
        rest = &rest[HEADER_BYTES..];
        contents.end.offset = HEADER_LEN;
    }
    let cipher = keys.read_log_cipher(name);
    loop {
        let Some((len, after)) = rest.split_first_chunk::<4>() else {
            return contents; // the end, or a torn length
        };
        let len = u32::from_be_bytes(*len) as usize;
        if !(FRAME_LEN + NONCE_LEN + TAG_LEN..=MAX_ENTRY_LEN).contains(&len) {
            contents.damage = Some(format!(
                "entry {} has a bad length",
                contents.end.next_index
            ));
            return contents;
        }
        let Some(frame) = after.get(..len) else {
            return contents; // a torn last entry
        };
        match open(keys, &cipher, name, &contents.end, frame) {
            Some((entry, mac)) => {
                contents.end = Cursor {
                    offset: contents.end.offset + 4 + len as u64,
                    next_index: entry.index + 1,
                    prev: mac,
                };
                contents.entries.push(entry);
            }
            None => {
                contents.damage = Some(format!(
                    "entry {} does not authenticate",
                    contents.end.next_index
                ));
                return contents;
            }
        }
        rest = &after[len..];
    }
}

/// Checks and opens the entry that should follow `at`.
fn open(
    keys: &AuditKeys,
    cipher: &AeadKey,
    name: &LogName,
    at: &Cursor,
    frame: &[u8],
) -> Option<(ReadEntry, [u8; 32])> {
    let (index, rest) = frame.split_first_chunk::<8>()?;
    let (at_ms, rest) = rest.split_first_chunk::<8>()?;
    let (sealed, mac) = rest.split_at_checked(rest.len().checked_sub(32)?)?;
    let index = u64::from_be_bytes(*index);
    let at_ms = i64::from_be_bytes(*at_ms);
    if index != at.next_index {
        return None;
    }
    let expected = chain_mac(keys, name, &at.prev, index, at_ms, sealed);
    // Constant time, as in the audit chain.
    if !bool::from(expected.ct_eq(mac)) {
        return None;
    }
    let nonce = sealed.get(..NONCE_LEN)?.try_into().ok()?;
    let tag_at = sealed.len().checked_sub(TAG_LEN)?;
    let tag = sealed.get(tag_at..)?.try_into().ok()?;
    let mut body = Zeroizing::new(sealed.get(NONCE_LEN..tag_at)?.to_vec());
    cipher
        .open(nonce, &aad(name, index, at_ms), &mut body, tag)
        .ok()?;
    Some((ReadEntry { index, at_ms, body }, expected))
}

fn aad(name: &LogName, index: u64, at_ms: i64) -> Vec<u8> {
    let mut aad = ENTRY_LABEL.to_vec();
    aad.extend_from_slice(name);
    aad.extend_from_slice(&index.to_be_bytes());
    aad.extend_from_slice(&at_ms.to_be_bytes());
    aad
}

fn chain_mac(
    keys: &AuditKeys,
    name: &LogName,
    prev: &[u8; 32],
    index: u64,
    at_ms: i64,
    sealed: &[u8],
) -> [u8; 32] {
    let mut mac = keys.mac();
    mac.update(CHAIN_LABEL);
    mac.update(name);
    mac.update(prev);
    mac.update(&index.to_be_bytes());
    mac.update(&at_ms.to_be_bytes());
    mac.update(sealed);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::secret::SecretKey;

    fn log_of(keys: &AuditKeys, name: &LogName, bodies: &[&[u8]]) -> (Vec<u8>, Cursor) {
        let cipher = keys.read_log_cipher(name);
        let mut bytes = header(name);
        let mut at = Cursor {
            offset: HEADER_LEN,
            ..Cursor::start()
        };
        for (i, body) in bodies.iter().enumerate() {
            let (entry, next) = entry(keys, &cipher, name, &at, 1000 + i as i64, body);
            bytes.extend_from_slice(&entry);
            at = next;
        }
        (bytes, at)
    }

    #[test]
    fn entries_read_back_in_order_and_a_torn_tail_is_left_out() {
        let keys = AuditKeys::derive(&SecretKey::random());
        let name = [3; 16];
        let (mut bytes, end) = log_of(&keys, &name, &[b"one", b"two", b"three"]);
        let read_all = read(&keys, &name, Cursor::start(), &bytes);
        assert_eq!(read_all.end, end);
        assert!(read_all.damage.is_none());
        let bodies: Vec<&[u8]> = read_all.entries.iter().map(|e| &e.body[..]).collect();
        assert_eq!(bodies, [&b"one"[..], b"two", b"three"]);
        assert_eq!(read_all.entries[2].at_ms, 1002);

        // A later read starts where an earlier one stopped.
        let first = read(&keys, &name, Cursor::start(), &bytes[..bytes.len() - 1]);
        assert_eq!(first.entries.len(), 2, "the torn third entry is not read");
        assert!(first.damage.is_none());
        let rest = read(
            &keys,
            &name,
            first.end,
            &bytes[usize::try_from(first.end.offset).unwrap()..],
        );
        assert_eq!(rest.entries.len(), 1);
        assert_eq!(rest.end, end);

        // One changed byte in the middle stops the read there.
        let at = (HEADER_BYTES + bytes.len()) / 2;
        bytes[at] ^= 1;
        let damaged = read(&keys, &name, Cursor::start(), &bytes);
        assert!(damaged.damage.is_some());
        assert!(damaged.entries.len() < 3);
    }

    #[test]
    fn a_log_read_as_another_or_with_other_keys_does_not_open() {
        let keys = AuditKeys::derive(&SecretKey::random());
        let (bytes, _) = log_of(&keys, &[3; 16], &[b"one"]);
        let other_name = read(&keys, &[4; 16], Cursor::start(), &bytes);
        assert!(other_name.damage.is_some() && other_name.entries.is_empty());
        let other_keys = AuditKeys::derive(&SecretKey::random());
        let other = read(&other_keys, &[3; 16], Cursor::start(), &bytes);
        assert!(other.damage.is_some() && other.entries.is_empty());
    }
}
