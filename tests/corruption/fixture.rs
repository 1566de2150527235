//! The vault the corruption sweep damages, and what it holds: every
//! record as its accessors must show it, built from the inputs alone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use llmvault::clock::{Clock, ManualClock};
use llmvault::{
    AuditEntry, AuditHead, ConversationId, Ingestor, KdfParams, KeySource, Message, NewRecord,
    Record, RecordId, SubjectId, Vault, VaultOptions,
};

use super::common::start;
use super::judge::Outcome;

pub const KEY: [u8; 32] = [0x11; 32];
pub const CONVERSATIONS: usize = 12;
pub const SUBJECTS: usize = 5;
/// Conversations with masked records and a PII mapping.
pub const MASKED_CONVERSATIONS: usize = 4;
pub const STAGED: usize = 12;

/// When the sweep reads: records with a one-hour TTL have expired.
pub fn now() -> SystemTime {
    start() + Duration::from_secs(2 * 3600)
}

pub fn options_at(t: SystemTime) -> VaultOptions {
    VaultOptions::default()
        .kdf(KdfParams::minimum())
        .clock(Arc::new(ManualClock::new(t)))
}

/// A record as the accessors show it: every field.
#[derive(Debug, Clone, PartialEq)]
pub struct Rec {
    pub id: RecordId,
    pub conversation: String,
    pub subject: Option<String>,
    pub model: String,
    pub prompt: Vec<Message>,
    pub response: Option<Message>,
    pub created_at: SystemTime,
    pub expires_at: SystemTime,
    pub training_consent: bool,
    pub tags: Vec<String>,
    pub meta: Vec<(String, String)>,
    pub masked: bool,
}

impl Rec {
    pub fn of(r: &Record) -> Self {
        Self {
            id: r.id(),
            conversation: r.conversation().as_str().to_owned(),
            subject: r.subject().map(|s| s.as_str().to_owned()),
            model: r.model().to_owned(),
            prompt: r.prompt().to_vec(),
            response: r.response().cloned(),
            created_at: r.created_at(),
            expires_at: r.expires_at(),
            training_consent: r.training_consent(),
            tags: r.tags().to_vec(),
            meta: r
                .meta_entries()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            masked: r.is_masked(),
        }
    }

    pub fn live(&self) -> bool {
        self.expires_at > now()
    }
}

/// The vault as it stood after one commit.
#[derive(Clone)]
pub struct State {
    /// Every stored record, live or expired.
    pub records: BTreeMap<RecordId, Rec>,
    /// How many audit entries it held.
    pub audit_len: usize,
}

impl State {
    pub fn get(&self, id: RecordId) -> Outcome {
        match self.records.get(&id) {
            None => Outcome::NotFound(id),
            Some(r) if !r.live() => Outcome::Expired(id, r.expires_at),
            Some(r) => Outcome::Record(r.clone()),
        }
    }

    /// Live records matching `keep`, oldest first (ties by id).
    pub fn list(&self, keep: impl Fn(&Rec) -> bool) -> Outcome {
        let mut out: Vec<Rec> = self
            .records
            .values()
            .filter(|r| r.live() && keep(r))
            .cloned()
            .collect();
        out.sort_by_key(|r| (r.created_at, r.id));
        Outcome::Records(out)
    }

    /// Live records in id order, as `export` streams them.
    pub fn export(&self) -> Outcome {
        Outcome::Records(
            self.records
                .values()
                .filter(|r| r.live())
                .cloned()
                .collect(),
        )
    }

    pub fn verified(&self) -> Outcome {
        Outcome::Verified {
            records: self.records.len(),
            expired: self.records.values().filter(|r| !r.live()).count(),
        }
    }
}

/// What the undamaged vault holds, independently of what it returns.
pub struct Fixture {
    /// The states a damaged copy may show: the last one, or (a damaged
    /// WAL only) an earlier one, oldest first.
    pub states: Vec<State>,
    /// The audit log of the last state, as the writing handle read it.
    pub audit: Vec<AuditEntry>,
    pub head: AuditHead,
    /// (conversation, model output with placeholders, restored text).
    pub restores: Vec<(String, String, String)>,
    /// Ids of the records an ingestor left staged.
    pub staged: BTreeSet<RecordId>,
    /// Masked records as stored: placeholders, flagged masked.
    pub as_stored: BTreeMap<RecordId, Rec>,
}

impl Fixture {
    pub fn last(&self) -> &State {
        self.states.last().unwrap()
    }

    pub fn every_id(&self) -> BTreeSet<RecordId> {
        self.states
            .iter()
            .flat_map(|s| s.records.keys().copied())
            .collect()
    }
}

/// The user message of record `n`; masked records carry an address that
/// their conversation's mapping replaces.
pub fn text_of(n: usize) -> String {
    let pad = "x".repeat(n % 200);
    if is_masked(n) {
        format!(
            "record {n} mail alice{}@example.com {pad}",
            n % CONVERSATIONS
        )
    } else {
        format!("record {n} {pad}")
    }
}

pub fn is_masked(n: usize) -> bool {
    n % CONVERSATIONS < MASKED_CONVERSATIONS && n % 5 == 1
}

/// Record `n` with every field set in some records and not in others.
pub fn new_record(n: usize, user_text: String) -> NewRecord {
    let mut rec = NewRecord::new(ConversationId::new(format!("c{}", n % CONVERSATIONS)))
        .model(format!("model-{}", n % 3))
        .training_consent(n.is_multiple_of(2))
        .tag(format!("t{}", n % 4))
        .meta("n", n.to_string())
        .ttl(Duration::from_secs(ttl_of(n)));
    if !n.is_multiple_of(11) {
        rec = rec.subject(SubjectId::new(format!("s{}", n % SUBJECTS)));
    }
    let mut prompt = Vec::new();
    if n.is_multiple_of(4) {
        prompt.push(Message::system(format!("system {n}")));
    }
    prompt.push(Message::user(user_text));
    rec = rec.prompt(prompt);
    if !n.is_multiple_of(6) {
        rec = rec.response(Message::assistant(format!("answer {n}")));
    }
    if n.is_multiple_of(5) {
        rec = rec.tag("five").meta("extra", format!("e{n}"));
    }
    rec
}

pub fn ttl_of(n: usize) -> u64 {
    if n.is_multiple_of(7) {
        3600
    } else {
        86_400 * 10
    }
}

/// The record `n` should read back as: real values, not placeholders.
pub fn expected(id: RecordId, n: usize, created: SystemTime) -> Rec {
    let mut prompt = Vec::new();
    if n.is_multiple_of(4) {
        prompt.push(Message::system(format!("system {n}")));
    }
    prompt.push(Message::user(text_of(n)));
    let mut tags = vec![format!("t{}", n % 4)];
    let mut meta = vec![("n".to_owned(), n.to_string())];
    if n.is_multiple_of(5) {
        tags.push("five".to_owned());
        meta.push(("extra".to_owned(), format!("e{n}")));
    }
    Rec {
        id,
        conversation: format!("c{}", n % CONVERSATIONS),
        subject: (!n.is_multiple_of(11)).then(|| format!("s{}", n % SUBJECTS)),
        model: format!("model-{}", n % 3),
        prompt,
        response: (!n.is_multiple_of(6)).then(|| Message::assistant(format!("answer {n}"))),
        created_at: created,
        expires_at: created + Duration::from_secs(ttl_of(n)),
        training_consent: n.is_multiple_of(2),
        tags,
        meta,
        masked: false,
    }
}

/// Three hundred records in ten batches a minute apart, several
/// subjects, some already expired when the sweep reads, masked records
/// with their mappings, and (with `staged`) records an ingestor left
/// staged. Closed afterwards, so the database file holds everything.
pub fn build(path: &Path, staged: bool) -> Fixture {
    let clock = Arc::new(ManualClock::new(start()));
    let opts = VaultOptions::default()
        .kdf(KdfParams::minimum())
        .clock(clock.clone());
    let vault = Vault::create(path, KeySource::raw_key(KEY), &opts).unwrap();
    let mut records = BTreeMap::new();
    let mut as_stored = BTreeMap::new();
    let mut restores = Vec::new();
    for batch in 0..10 {
        let created = clock.now();
        let mut items = Vec::new();
        let mut numbers = Vec::new();
        for i in 0..30 {
            let n = batch * 30 + i;
            let conv = ConversationId::new(format!("c{}", n % CONVERSATIONS));
            let rec = if is_masked(n) {
                let masked = vault.pseudonymize(&conv, &text_of(n)).unwrap();
                assert!(masked.text.contains("<EMAIL_1>"), "{}", masked.text);
                new_record(n, masked.text).masked(true)
            } else {
                new_record(n, text_of(n))
            };
            items.push(rec);
            numbers.push(n);
        }
        for (id, n) in vault.put_batch(items).unwrap().into_iter().zip(numbers) {
            let rec = expected(id, n, created);
            if is_masked(n) {
                let mut stored = rec.clone();
                let user = stored.prompt.len() - 1;
                let text = text_of(n).replace(
                    &format!("alice{}@example.com", n % CONVERSATIONS),
                    "<EMAIL_1>",
                );
                stored.prompt[user] = Message::user(text);
                stored.masked = true;
                as_stored.insert(id, stored);
            }
            records.insert(id, rec);
        }
        clock.advance(Duration::from_secs(60));
    }
    for c in 0..MASKED_CONVERSATIONS {
        restores.push((
            format!("c{c}"),
            "sent to <EMAIL_1>, not <EMAIL_9>".to_owned(),
            format!("sent to alice{c}@example.com, not <EMAIL_9>"),
        ));
    }
    let audit = vault.audit().entries(..).unwrap();
    let head = vault.audit().head().unwrap();
    assert_eq!(head.seq, audit.len() as u64);

    let mut staged_ids = BTreeSet::new();
    if staged {
        // Staged and left so: no keyed call follows before the close.
        let ingestor =
            Ingestor::open_with_options(path, &vault.ingest_key().unwrap(), &opts).unwrap();
        let created = clock.now();
        let live_unmasked = (1000..).filter(|n| !is_masked(*n) && ttl_of(*n) > 3600);
        for n in live_unmasked.take(STAGED) {
            let id = ingestor.put(new_record(n, text_of(n))).unwrap();
            records.insert(id, expected(id, n, created));
            staged_ids.insert(id);
        }
    }
    // `ingest_key` appended an entry after `head`: read the log again.
    let audit = vault.audit().entries(..).unwrap();
    let head = vault.audit().head().unwrap();
    drop(vault);
    let audit_len = audit.len();
    Fixture {
        states: vec![State { records, audit_len }],
        audit,
        head,
        restores,
        staged: staged_ids,
        as_stored,
    }
}
