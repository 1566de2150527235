//! Model-based property test: random sequences of operations run against
//! the real vault, on each backend, and against a plain in-memory model of
//! what should be visible. Every observable result must match. A failing
//! case shrinks to a short list of `Op`s, printed with `Debug`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{Backend, Storage, start, storage};
use llmvault::clock::ManualClock;
use llmvault::{
    ConversationId, Error, KdfParams, KeySource, Message, NewRecord, RecordId, SubjectId, Vault,
    VaultOptions,
};
use proptest::prelude::*;

const CONVERSATIONS: usize = 3;
const SUBJECTS: usize = 3;
/// TTL choices, in hours.
const TTLS: [u64; 4] = [1, 5, 30, 24 * 9];

#[derive(Debug, Clone)]
enum Op {
    Put {
        conv: usize,
        subject: Option<usize>,
        ttl: usize,
    },
    PutBatch {
        n: usize,
        conv: usize,
        subject: Option<usize>,
        ttl: usize,
    },
    /// Reads the `nth` id handed out so far (or a never-issued id).
    Get {
        nth: usize,
    },
    Conversation {
        conv: usize,
    },
    SubjectRecords {
        subject: usize,
    },
    Erase {
        subject: usize,
    },
    Purge,
    Advance {
        hours: u64,
    },
    ChangeKey,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let subject = prop::option::of(0..SUBJECTS);
    prop_oneof![
        4 => (0..CONVERSATIONS, subject.clone(), 0..TTLS.len())
            .prop_map(|(conv, subject, ttl)| Op::Put { conv, subject, ttl }),
        2 => (1..6usize, 0..CONVERSATIONS, subject, 0..TTLS.len())
            .prop_map(|(n, conv, subject, ttl)| Op::PutBatch { n, conv, subject, ttl }),
        4 => (0..40usize).prop_map(|nth| Op::Get { nth }),
        2 => (0..CONVERSATIONS).prop_map(|conv| Op::Conversation { conv }),
        2 => (0..SUBJECTS).prop_map(|subject| Op::SubjectRecords { subject }),
        1 => (0..SUBJECTS).prop_map(|subject| Op::Erase { subject }),
        1 => Just(Op::Purge),
        2 => (1..40u64).prop_map(|hours| Op::Advance { hours }),
        1 => Just(Op::ChangeKey),
        1 => Just(Op::Reopen),
    ]
}

/// What the vault should hold.
#[derive(Debug, Clone)]
struct Expected {
    conv: usize,
    subject: Option<usize>,
    created: SystemTime,
    expires: SystemTime,
    text: String,
}

struct Harness {
    _dir: tempfile::TempDir,
    storage: Storage,
    clock: Arc<ManualClock>,
    opts: VaultOptions,
    key: u8,
    vault: Option<Vault>,
    model: BTreeMap<RecordId, Expected>,
    issued: Vec<RecordId>,
    counter: usize,
}

impl Harness {
    fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let storage = storage(backend, &dir.path().join("model.vault"));
        let clock = Arc::new(ManualClock::new(start()));
        let opts = VaultOptions::default()
            .kdf(KdfParams::minimum())
            .retention_epoch(Duration::from_secs(6 * 3600))
            .max_records_per_key(4)
            .clock(clock.clone());
        let vault = Vault::create_in(&storage, KeySource::raw_key([1; 32]), &opts).unwrap();
        Self {
            _dir: dir,
            storage,
            clock,
            opts,
            key: 1,
            vault: Some(vault),
            model: BTreeMap::new(),
            issued: Vec::new(),
            counter: 0,
        }
    }

    fn vault(&self) -> &Vault {
        self.vault.as_ref().unwrap()
    }

    fn now(&self) -> SystemTime {
        use llmvault::clock::Clock;
        self.clock.now()
    }

    fn live(&self) -> impl Iterator<Item = (&RecordId, &Expected)> {
        let now = self.now();
        self.model.iter().filter(move |(_, e)| e.expires > now)
    }

    fn new_record(
        &mut self,
        conv: usize,
        subject: Option<usize>,
        ttl: usize,
    ) -> (NewRecord, Expected) {
        self.counter += 1;
        let text = format!("exchange {}", self.counter);
        let ttl = Duration::from_secs(TTLS[ttl] * 3600);
        let mut rec = NewRecord::new(ConversationId::new(format!("conv-{conv}")))
            .prompt([Message::user(text.clone())])
            .ttl(ttl);
        if let Some(s) = subject {
            rec = rec.subject(SubjectId::new(format!("subject-{s}")));
        }
        let now = self.now();
        (
            rec,
            Expected {
                conv,
                subject,
                created: now,
                expires: now + ttl,
                text,
            },
        )
    }

    fn expected_order(&self, keep: impl Fn(&Expected) -> bool) -> Vec<RecordId> {
        let mut live: Vec<_> = self.live().filter(|(_, e)| keep(e)).collect();
        live.sort_by_key(|(id, e)| (e.created, **id));
        live.into_iter().map(|(id, _)| *id).collect()
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Put { conv, subject, ttl } => {
                let (rec, expected) = self.new_record(conv, subject, ttl);
                let id = self.vault().put(rec).unwrap();
                assert!(!self.issued.contains(&id), "id {id} issued twice");
                self.issued.push(id);
                self.model.insert(id, expected);
            }
            Op::PutBatch {
                n,
                conv,
                subject,
                ttl,
            } => {
                let (recs, expected): (Vec<_>, Vec<_>) =
                    (0..n).map(|_| self.new_record(conv, subject, ttl)).unzip();
                let ids = self.vault().put_batch(recs).unwrap();
                assert_eq!(ids.len(), n);
                for (id, e) in ids.into_iter().zip(expected) {
                    assert!(!self.issued.contains(&id), "id {id} issued twice");
                    self.issued.push(id);
                    self.model.insert(id, e);
                }
            }
            Op::Get { nth } => {
                let id = self
                    .issued
                    .get(nth)
                    .copied()
                    .unwrap_or(RecordId::from_u64(1_000_000));
                let got = self.vault().get(id);
                match self.model.get(&id) {
                    None => assert!(matches!(got, Err(Error::NotFound { .. })), "{id}: {got:?}"),
                    Some(e) if e.expires <= self.now() => {
                        assert!(matches!(got, Err(Error::Expired { .. })), "{id}: {got:?}")
                    }
                    Some(e) => {
                        let rec = got.unwrap();
                        assert_eq!(rec.prompt()[0].content(), e.text);
                        assert_eq!(rec.conversation().as_str(), format!("conv-{}", e.conv));
                        assert_eq!(
                            rec.subject().map(|s| s.as_str().to_owned()),
                            e.subject.map(|s| format!("subject-{s}"))
                        );
                        assert_eq!(rec.expires_at(), e.expires);
                    }
                }
            }
            Op::Conversation { conv } => {
                let got: Vec<_> = self
                    .vault()
                    .conversation(&ConversationId::new(format!("conv-{conv}")))
                    .unwrap()
                    .iter()
                    .map(|r| r.id())
                    .collect();
                assert_eq!(got, self.expected_order(|e| e.conv == conv));
            }
            Op::SubjectRecords { subject } => {
                let got: Vec<_> = self
                    .vault()
                    .subject_records(&SubjectId::new(format!("subject-{subject}")))
                    .unwrap()
                    .iter()
                    .map(|r| r.id())
                    .collect();
                assert_eq!(got, self.expected_order(|e| e.subject == Some(subject)));
            }
            Op::Erase { subject } => {
                let report = self
                    .vault()
                    .erase_subject(&SubjectId::new(format!("subject-{subject}")))
                    .unwrap();
                let before = self.model.len();
                self.model.retain(|_, e| e.subject != Some(subject));
                assert_eq!(report.records, before - self.model.len());
            }
            Op::Purge => {
                let report = self.vault().purge_expired().unwrap();
                let now = self.now();
                let before = self.model.len();
                self.model.retain(|_, e| e.expires > now);
                assert_eq!(report.records, before - self.model.len());
            }
            Op::Advance { hours } => self.clock.advance(Duration::from_secs(hours * 3600)),
            Op::ChangeKey => {
                self.key = self.key.wrapping_add(1);
                self.vault()
                    .change_key(KeySource::raw_key([self.key; 32]))
                    .unwrap();
            }
            Op::Reopen => {
                self.vault = None;
                let old = KeySource::raw_key([self.key.wrapping_sub(1); 32]);
                if self.key > 1 {
                    assert!(matches!(
                        Vault::open_in(&self.storage, old, &self.opts),
                        Err(Error::WrongKey)
                    ));
                }
                self.vault = Some(
                    Vault::open_in(
                        &self.storage,
                        KeySource::raw_key([self.key; 32]),
                        &self.opts,
                    )
                    .unwrap(),
                );
            }
        }
        // After every step: everything stored authenticates and the counts agree.
        let report = self.vault().verify().unwrap();
        assert_eq!(report.records, self.model.len());
        let now = self.now();
        assert_eq!(
            report.expired,
            self.model.values().filter(|e| e.expires <= now).count()
        );
    }
}

fn run(backend: Backend, ops: &[Op]) {
    let mut h = Harness::new(backend);
    for op in ops {
        h.apply(op);
    }
}

/// One body, one proptest per backend (each draws its own cases):
/// `vault_matches_the_model::sqlite`, `::memory` and `::postgres`.
mod vault_matches_the_model {
    use super::*;

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        prop::collection::vec(op(), 1..40)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn sqlite(ops in ops()) {
            run(Backend::Sqlite, &ops);
        }

        #[test]
        fn memory(ops in ops()) {
            run(Backend::Memory, &ops);
        }

        #[test]
        fn postgres(ops in ops()) {
            if common::available(Backend::Postgres) {
                run(Backend::Postgres, &ops);
            }
        }
    }
}
