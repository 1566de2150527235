//! Hooks for the crate's own benches and fuzz tests: the sealing layer
//! alone, and every parser of stored bytes. Not part of the public API;
//! may change at any time.

use crate::codec;
use crate::keys::{DataKey, Kek, TAG_KEY_AAD};
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
    /// A fixed key, so fuzz samples made by one instance open in another.
    pub fn fixed() -> Self {
        Self {
            key: DataKey::new(1, &SecretKey::from_bytes([0x42; 32])),
            ..Self::default()
        }
    }

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

    /// The AEAD alone, as this build's backend ([`crate::AEAD_BACKEND`])
    /// runs it: encrypts `buf` in place, no copy, no envelope, and returns
    /// the tag. `None` only past AES-GCM's limit.
    pub fn aead_seal(&self, nonce: &[u8; 12], aad: &[u8], buf: &mut [u8]) -> Option<[u8; 16]> {
        self.key.cipher.seal(nonce, aad, buf).ok()
    }

    /// Reverses [`SealBench::aead_seal`]; whether the tag verified.
    pub fn aead_open(&self, nonce: &[u8; 12], aad: &[u8], buf: &mut [u8], tag: &[u8; 16]) -> bool {
        self.key.cipher.open(nonce, aad, buf, tag).is_ok()
    }

    /// Opens an envelope from [`SealBench::seal`]; returns the plaintext
    /// length, or `None` if it does not authenticate.
    pub fn open(&self, envelope: Vec<u8>) -> Option<usize> {
        seal::open(&self.key, &self.binding, envelope)
            .ok()
            .map(|p| p.bytes().len())
    }
}

/// SHA-256 of a fresh data key drawn as the vault draws them: lets a test
/// compare keys made in different processes without the keys leaving
/// the crate.
pub fn fresh_key_fingerprint() -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(SecretKey::random().expose()).into()
}

/// What a parser made of hostile bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Accepted (for authenticated formats: authenticated).
    Accepted,
    /// Refused with a typed error or `None`.
    Refused,
}

fn parsed<T, E>(r: Result<T, E>) -> Parsed {
    if r.is_ok() {
        Parsed::Accepted
    } else {
        Parsed::Refused
    }
}

/// Parses a vault header (FORMAT.md §1); when it parses, its KDF
/// parameters are within bounds by construction.
pub fn parse_header(bytes: &[u8]) -> Parsed {
    parsed(crate::vault::check_header(bytes))
}

/// Why a header does not parse: the typed error `Vault::open` would
/// return for it, or `None` if it parses.
pub fn header_refusal(bytes: &[u8]) -> Option<crate::Error> {
    crate::vault::check_header(bytes).err()
}

/// Unwraps bytes as a wrapped key under a fixed KEK (FORMAT.md §4).
pub fn unwrap_key(bytes: &[u8]) -> Parsed {
    parsed(fixed_kek().unwrap_key(bytes, TAG_KEY_AAD).ok_or(()))
}

/// Reads an envelope's key id and opens it under a fixed key (FORMAT.md §7).
pub fn open_envelope(bytes: &[u8]) -> Parsed {
    let bench = SealBench::fixed();
    if seal::key_id(bytes).is_err() {
        return Parsed::Refused;
    }
    parsed(seal::open(&bench.key, &bench.binding, bytes.to_vec()))
}

/// Decodes bytes as a record's plaintext (FORMAT.md §6).
pub fn decode_record(bytes: &[u8]) -> Parsed {
    parsed(codec::record::decode(RecordId::from_u64(1), bytes))
}

/// Decodes bytes as an audit entry's plaintext (FORMAT.md §11).
pub fn decode_audit_entry(bytes: &[u8]) -> Parsed {
    parsed(codec::audit::decode(bytes).ok_or(()))
}

/// Decodes bytes as a PII mapping list (FORMAT.md §13).
pub fn decode_pii_mapping(bytes: &[u8]) -> Parsed {
    parsed(codec::pii::decode(bytes).ok_or(()))
}

/// Reads bytes as a read log named `[7; 16]` under fixed audit keys
/// (FORMAT.md §11, "Read logs"): accepted if every whole entry in it
/// authenticates, in order.
pub fn read_log_entries(bytes: &[u8]) -> Parsed {
    let keys = crate::audit::AuditKeys::derive(&SecretKey::from_bytes([9; 32]));
    let read = crate::audit::read_log::read(
        &keys,
        &[7; 16],
        crate::audit::read_log::Cursor::start(),
        bytes,
    );
    if read.damage.is_none() {
        Parsed::Accepted
    } else {
        Parsed::Refused
    }
}

/// The fixed secrets a staged-record input is checked under: the ingest
/// MAC key and the data key every staged key id unwraps to.
fn staged_keys(key_id: u64) -> (crate::ingest::IngestMac, DataKey) {
    (
        crate::ingest::IngestMac::new(&SecretKey::from_bytes([5; 32])),
        DataKey::new(key_id, &SecretKey::from_bytes([6; 32])),
    )
}

/// Bytes before a staged row's sealed bytes in a staged-record input.
const STAGED_FIELDS: usize = 1 + 8 + 8 + 8;

/// Checks bytes as a staged row (FORMAT.md §12) the way a take-in does,
/// under fixed ingest keys: its proof, then its envelope and record body.
///
/// The input is `flags (1) ‖ id (u64 BE) ‖ key id (u64 BE) ‖ expires at
/// (i64 BE) ‖ sealed`. With bit 0 of `flags` set, the proof the row
/// carries is replaced by the right one first, so a fuzzer also reaches
/// what only a row with a valid proof is put through.
pub fn staged_record(input: &[u8]) -> Parsed {
    let Some((fields, sealed)) = input.split_at_checked(STAGED_FIELDS) else {
        return Parsed::Refused;
    };
    let word = |at: usize| {
        fields
            .get(at..at + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .unwrap_or_default()
    };
    let mut row = crate::store::IngestRow {
        id: u64::from_be_bytes(word(1)),
        key_id: u64::from_be_bytes(word(9)),
        expires_at_ms: i64::from_be_bytes(word(17)),
        sealed: sealed.to_vec(),
    };
    let (mac, key) = staged_keys(row.key_id);
    if fields[0] & 1 == 1 {
        let at = row.sealed.len().saturating_sub(crate::ingest::PROOF_LEN);
        row.sealed.truncate(at);
        let proof = mac.prove(&staged_slot(&row), &row.sealed);
        row.sealed.extend_from_slice(&proof);
    }
    let Some(envelope) = crate::vault::proved_envelope(&mac, &row) else {
        return Parsed::Refused;
    };
    parsed(crate::vault::open_staged(&key, &row, envelope).ok_or(()))
}

fn staged_slot(row: &crate::store::IngestRow) -> crate::ingest::StagedSlot {
    crate::ingest::StagedSlot {
        id: row.id,
        key_id: row.key_id,
        expires_at_ms: row.expires_at_ms,
    }
}

/// A staged-record input ([`staged_record`]) that is accepted: a record
/// sealed and proved as an ingestor does, under the fixed keys.
pub fn staged_sample() -> Vec<u8> {
    let (id, key_id, expires_at_ms) = (7_u64, 3_u64, 86_400_000_i64);
    let rec = crate::NewRecord::new(crate::ConversationId::new("conv"))
        .subject(crate::SubjectId::new("subj"))
        .prompt([crate::Message::user("staged hello")]);
    let Ok(body) = codec::record::encode(&rec, 1, expires_at_ms, seal::HEADER_LEN, seal::TAG_LEN)
    else {
        return Vec::new();
    };
    let (mac, key) = staged_keys(key_id);
    let binding = seal::IngestBinding {
        id: RecordId::from_u64(id),
        expires_at_ms,
    };
    let Ok(mut sealed) = seal::seal(&key, &binding, body) else {
        return Vec::new();
    };
    let mut row = crate::store::IngestRow {
        id,
        key_id,
        expires_at_ms,
        sealed: Vec::new(),
    };
    let proof = mac.prove(&staged_slot(&row), &sealed);
    sealed.extend_from_slice(&proof);
    row.sealed = sealed;
    let mut input = vec![0];
    input.extend_from_slice(&id.to_be_bytes());
    input.extend_from_slice(&key_id.to_be_bytes());
    input.extend_from_slice(&expires_at_ms.to_be_bytes());
    input.extend_from_slice(&row.sealed);
    input
}

/// A key wrapped under the fixed KEK [`unwrap_key`] uses.
pub fn wrapped_key_sample() -> Vec<u8> {
    fixed_kek()
        .wrap(&SecretKey::from_bytes([3; 32]), TAG_KEY_AAD)
        .to_vec()
}

fn fixed_kek() -> Kek {
    Kek::derive(
        &crate::kdf::MasterKey(SecretKey::from_bytes([9; 32])),
        &[0; 32],
    )
}

/// A read log of two entries that [`read_log_entries`] accepts.
pub fn read_log_sample() -> Vec<u8> {
    use crate::audit::read_log;
    let keys = crate::audit::AuditKeys::derive(&SecretKey::from_bytes([9; 32]));
    let name = [7; 16];
    let cipher = keys.read_log_cipher(&name);
    let mut log = read_log::header(&name);
    let mut at = read_log::Cursor::start();
    for body in valid_entry_samples().iter().take(1).chain([&Vec::new()]) {
        let (bytes, next) = read_log::entry(&keys, &cipher, &name, &at, 1_000, body);
        log.extend_from_slice(&bytes);
        at = next;
    }
    log
}

/// How many records [`planted_record`] plants in the vault a whole-vault
/// fuzz seed holds.
pub const PLANTED_RECORDS: u64 = 6;
/// The raw key that opens a whole-vault fuzz seed.
pub const PLANTED_KEY: [u8; 32] = [0x4c; 32];
/// When the planted records were put (Unix milliseconds), for the fixed
/// clock that opens the seed: none of them has expired at that time.
pub const PLANTED_AT_MS: u64 = 1_767_225_600_000;

/// The `n`-th record (from 1) planted in a whole-vault fuzz seed: the
/// record with id `n` there, if ids were given out in order.
pub fn planted_record(n: u64) -> crate::NewRecord {
    let mut rec = crate::NewRecord::new(crate::ConversationId::new(format!("conv-{}", n % 2)))
        .model("m")
        .prompt([crate::Message::user(format!("planted prompt {n}"))])
        .response(crate::Message::assistant(format!("planted response {n}")))
        .tag(format!("tag-{n}"));
    if !n.is_multiple_of(3) {
        rec = rec.subject(crate::SubjectId::new(format!("subj-{}", n % 3)));
    }
    rec
}

/// Whether a record read from a whole-vault fuzz seed is, byte for byte
/// in every field compared, the one planted under its id.
pub fn is_planted(record: &crate::Record) -> bool {
    let n = record.id().as_u64();
    let planted = planted_record(n);
    (1..=PLANTED_RECORDS).contains(&n)
        && record.conversation() == &planted.conversation
        && record.subject() == planted.subject.as_ref()
        && record.model() == planted.model
        && messages_equal(record.prompt(), &planted.prompt)
        && match (record.response(), planted.response.as_ref()) {
            (Some(a), Some(b)) => messages_equal(std::slice::from_ref(a), std::slice::from_ref(b)),
            (None, None) => true,
            _ => false,
        }
        && record.tags() == planted.tags.as_slice()
}

fn messages_equal(a: &[crate::Message], b: &[crate::Message]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.role() == y.role() && x.content() == y.content())
}

/// A valid audit entry body and PII mapping list to mutate from.
pub fn valid_entry_samples() -> [Vec<u8>; 2] {
    use crate::audit::{Actor, AuditAction, AuditOutcome, Event};
    let entry = codec::audit::encode(
        &Actor::new("alice").purpose("T-9"),
        &Event::new(AuditAction::Get).records([RecordId::from_u64(3)]),
        &AuditOutcome::Ok,
    );
    let maps = crate::pii::Mapping::new("<EMAIL_1>", zeroize::Zeroizing::new("a@b.co".to_owned()))
        .map(|m| vec![m])
        .unwrap_or_default();
    let mapping = codec::pii::encode(&maps, 0, 0)
        .map(|b| b.to_vec())
        .unwrap_or_default();
    [entry, mapping]
}

/// A valid header, envelope and record body to mutate from.
pub fn valid_samples() -> [Vec<u8>; 3] {
    let bench = SealBench::fixed();
    let rec = crate::NewRecord::new(crate::ConversationId::new("conv"))
        .subject(crate::SubjectId::new("subj"))
        .prompt([crate::Message::user("hello there")])
        .tag("t")
        .meta("k", "v");
    let body = codec::record::encode(&rec, 1, 2, 0, 0)
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let envelope = bench.seal(&body).unwrap_or_default();
    [crate::vault::sample_header_for_fuzz(), envelope, body]
}

/// Compile-time checks that the public secret types lack the traits that
/// would copy or print them (docs/DESIGN.md, "Memory"): `KeySource`,
/// `RecoveryShare` and `IngestKey` are not `Clone`, `Display` or
/// `Serialize`; `Vault` and `Ingestor`, which hold unwrapped keys, are not
/// `Clone`.
///
/// Two layers, because stable rustdoc does not check the error code of a
/// `compile_fail` block (`compile_fail,E0277` is only checked on nightly),
/// so such a block passes whatever stops it compiling, a typo included.
///
/// First, `lacks!` compiles only if the type does not have the trait: with
/// the trait, the two blanket impls both apply and the call is ambiguous
/// (the `static_assertions` technique). A misspelt path fails it too, so
/// this block can only pass for the right reason.
///
/// ```
/// macro_rules! lacks {
///     ($t:ty: $($tr:path),+) => {$({
///         trait AmbiguousIfImpl<A> { fn some_item() {} }
///         impl<T: ?Sized> AmbiguousIfImpl<()> for T {}
///         struct WithTrait;
///         impl<T: ?Sized + $tr> AmbiguousIfImpl<WithTrait> for T {}
///         let _ = <$t as AmbiguousIfImpl<_>>::some_item;
///     })+};
/// }
/// lacks!(llmvault::KeySource: Clone, std::fmt::Display, serde::Serialize);
/// lacks!(llmvault::recovery::RecoveryShare: Clone, std::fmt::Display, serde::Serialize);
/// lacks!(llmvault::ingest::IngestKey: Clone, std::fmt::Display, serde::Serialize);
/// lacks!(llmvault::Vault: Clone);
/// lacks!(llmvault::ingest::Ingestor: Clone);
/// ```
///
/// The control: the same macro on types that do have the trait must not
/// compile (a message is content a caller may copy; a record id is
/// printable by design).
///
/// ```compile_fail
/// # macro_rules! lacks {
/// #     ($t:ty: $($tr:path),+) => {$({
/// #         trait AmbiguousIfImpl<A> { fn some_item() {} }
/// #         impl<T: ?Sized> AmbiguousIfImpl<()> for T {}
/// #         struct WithTrait;
/// #         impl<T: ?Sized + $tr> AmbiguousIfImpl<WithTrait> for T {}
/// #         let _ = <$t as AmbiguousIfImpl<_>>::some_item;
/// #     })+};
/// # }
/// lacks!(llmvault::Message: Clone);
/// ```
/// ```compile_fail
/// # macro_rules! lacks {
/// #     ($t:ty: $($tr:path),+) => {$({
/// #         trait AmbiguousIfImpl<A> { fn some_item() {} }
/// #         impl<T: ?Sized> AmbiguousIfImpl<()> for T {}
/// #         struct WithTrait;
/// #         impl<T: ?Sized + $tr> AmbiguousIfImpl<WithTrait> for T {}
/// #         let _ = <$t as AmbiguousIfImpl<_>>::some_item;
/// #     })+};
/// # }
/// lacks!(llmvault::RecordId: std::fmt::Display);
/// ```
///
/// Second, what a caller would write: each `compile_fail` block below
/// differs from the compiling block after it only in the type passed to
/// the bound, and that block runs the same helpers on types that have the
/// traits and names each secret type by the same path.
///
/// ```
/// fn clone<T: Clone>() {}
/// fn display<T: std::fmt::Display>() {}
/// fn serialize<T: serde::Serialize>() {}
/// #[derive(serde::Serialize)]
/// struct Plain;
/// clone::<llmvault::Message>();
/// clone::<llmvault::RecordId>();
/// display::<llmvault::RecordId>();
/// serialize::<Plain>();
/// let _ = std::mem::size_of::<llmvault::KeySource>();
/// let _ = std::mem::size_of::<llmvault::recovery::RecoveryShare>();
/// let _ = std::mem::size_of::<llmvault::ingest::IngestKey>();
/// let _ = std::mem::size_of::<llmvault::Vault>();
/// let _ = std::mem::size_of::<llmvault::ingest::Ingestor>();
/// ```
///
/// ```compile_fail
/// fn clone<T: Clone>() {}
/// clone::<llmvault::KeySource>();
/// ```
/// ```compile_fail
/// fn display<T: std::fmt::Display>() {}
/// display::<llmvault::KeySource>();
/// ```
/// ```compile_fail
/// fn serialize<T: serde::Serialize>() {}
/// serialize::<llmvault::KeySource>();
/// ```
/// ```compile_fail
/// fn clone<T: Clone>() {}
/// clone::<llmvault::recovery::RecoveryShare>();
/// ```
/// ```compile_fail
/// fn display<T: std::fmt::Display>() {}
/// display::<llmvault::recovery::RecoveryShare>();
/// ```
/// ```compile_fail
/// fn serialize<T: serde::Serialize>() {}
/// serialize::<llmvault::recovery::RecoveryShare>();
/// ```
/// ```compile_fail
/// fn clone<T: Clone>() {}
/// clone::<llmvault::ingest::IngestKey>();
/// ```
/// ```compile_fail
/// fn display<T: std::fmt::Display>() {}
/// display::<llmvault::ingest::IngestKey>();
/// ```
/// ```compile_fail
/// fn serialize<T: serde::Serialize>() {}
/// serialize::<llmvault::ingest::IngestKey>();
/// ```
/// ```compile_fail
/// fn clone<T: Clone>() {}
/// clone::<llmvault::Vault>();
/// ```
/// ```compile_fail
/// fn clone<T: Clone>() {}
/// clone::<llmvault::ingest::Ingestor>();
/// ```
///
/// What this proves: the trait is absent, so code outside the crate
/// cannot clone, print or serialize these values through it. It does not
/// prove that the bytes are wiped on drop, that the crate makes no copy of
/// its own, or that nothing is left in freed memory, registers or swap;
/// nor does it cover the crate's private key types (see `tests/memory.rs`
/// and the unit tests in `src/secret.rs`).
pub struct SecretTypesLackCopyingTraits;
