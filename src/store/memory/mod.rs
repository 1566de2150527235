//! A backend in memory, for the crate's own tests (`internals` feature):
//! the second implementation of the seam, so that the suites which run on
//! both show the rules above it do not lean on SQLite. A write works on a
//! copy of the tables and commit swaps it in, which makes commits atomic
//! and reads snapshots at the cost of a copy per write (tests only).

mod read_logs;

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use super::{
    AuditRow, Backend, Counter, Durability, IngestKeyRow, IngestRow, KeyRow, MAX_STAGED_LEN,
    MaintenanceNote, PiiMapRow, ReadTxn, RecordRow, Row, Scanned, Select, Table, Tally, WriteTxn,
    unsupported,
};
use crate::error::{Error, Result};
use crate::keys::IdTag;

/// The shared store behind every clone of one `Storage::memory()`.
#[derive(Default)]
pub(crate) struct MemoryBackend {
    /// The committed tables; `None` until a vault is created in it.
    committed: RwLock<Option<Arc<Tables>>>,
    /// Held by the one write transaction.
    writer: Mutex<()>,
    read_logs: read_logs::MemoryReadLogs,
}

#[derive(Clone, Default)]
struct Tables {
    meta: BTreeMap<String, Vec<u8>>,
    counters: BTreeMap<u8, i64>,
    keys: BTreeMap<u64, KeyRow>,
    records: BTreeMap<u64, RecordRow>,
    audit: BTreeMap<u64, AuditRow>,
    notes: Vec<MaintenanceNote>,
    ingest_keys: BTreeMap<u64, IngestKeyRow>,
    staged: BTreeMap<u64, IngestRow>,
    set_aside: Vec<IngestRow>,
    pii_maps: BTreeMap<IdTag, PiiMapRow>,
}

impl MemoryBackend {
    pub(crate) fn is_created(&self) -> bool {
        self.committed().is_some()
    }

    pub(crate) fn create(&self) -> Result<()> {
        let mut committed = self
            .committed
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if committed.is_some() {
            return Err(Error::AlreadyExists);
        }
        *committed = Some(Arc::default());
        Ok(())
    }

    pub(crate) fn check_created(&self) -> Result<()> {
        if self.is_created() {
            Ok(())
        } else {
            Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no vault in this memory storage",
            )))
        }
    }

    pub(crate) fn discard(&self) {
        *self
            .committed
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
        self.read_logs.clear();
    }

    fn committed(&self) -> Option<Arc<Tables>> {
        self.committed
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn snapshot(&self) -> Result<Arc<Tables>> {
        self.committed()
            .ok_or_else(|| Error::Storage("the memory vault was discarded".into()))
    }
}

impl Backend for Arc<MemoryBackend> {
    fn read(&self) -> Result<Box<dyn ReadTxn + '_>> {
        Ok(Box::new(MemoryRead(self.snapshot()?)))
    }

    fn write(&self, _durability: Durability) -> Result<Box<dyn WriteTxn + '_>> {
        let guard = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let work = (*self.snapshot()?).clone();
        Ok(Box::new(MemoryWrite {
            backend: self,
            _guard: guard,
            work,
            done: false,
        }))
    }

    fn check_integrity(&self) -> Result<()> {
        self.snapshot().map(|_| ())
    }

    fn read_logs(&self) -> &dyn super::read_logs::ReadLogs {
        &self.read_logs
    }
}

struct MemoryRead(Arc<Tables>);

struct MemoryWrite<'a> {
    backend: &'a MemoryBackend,
    _guard: MutexGuard<'a, ()>,
    work: Tables,
    done: bool,
}

/// The tables a memory transaction reads: a snapshot, or a write's own
/// working copy (which sees its own writes).
trait Reads {
    fn tables(&self) -> &Tables;
}

impl Reads for MemoryRead {
    fn tables(&self) -> &Tables {
        &self.0
    }
}

impl Reads for MemoryWrite<'_> {
    fn tables(&self) -> &Tables {
        &self.work
    }
}

impl<T: Reads> ReadTxn for T {
    fn get(&mut self, table: Table, key: Select<'_>) -> Result<Option<Row>> {
        first(self.tables(), table, &key)
    }

    fn scan(
        &mut self,
        table: Table,
        select: Select<'_>,
        each: &mut dyn FnMut(Scanned) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        scan(self.tables(), table, &select, each)
    }

    fn tally(&mut self, table: Table, select: Select<'_>) -> Result<Tally> {
        tally(self.tables(), table, &select)
    }
}

impl WriteTxn for MemoryWrite<'_> {
    fn put(&mut self, row: &Row) -> Result<()> {
        let t = &mut self.work;
        match row.clone() {
            Row::Meta { name, value } => {
                t.meta.insert(name, value);
            }
            Row::Counter { counter, value } => {
                let value = value.ok_or_else(|| Error::InvalidInput {
                    what: "counter",
                    reason: "must be an integer".into(),
                })?;
                t.counters.insert(counter_slot(counter)?, value);
            }
            Row::Key(k) => add(&mut t.keys, k.id, k)?,
            Row::Record(r) => add(&mut t.records, r.id, r)?,
            Row::Audit(a) => add(&mut t.audit, a.seq, a)?,
            Row::Note(n) => t.notes.push(n),
            Row::IngestKey(k) => add(&mut t.ingest_keys, k.id, k)?,
            Row::Staged(s) => add(&mut t.staged, s.id, s)?,
            Row::PiiMap(m) => {
                t.pii_maps.insert(m.conversation, m);
            }
        }
        Ok(())
    }

    fn delete(&mut self, table: Table, select: Select<'_>) -> Result<u64> {
        use Select as S;
        use Table as T;
        let t = &mut self.work;
        let n = match (table, select) {
            (T::Meta, S::Name(n)) => u64::from(t.meta.remove(n).is_some()),
            (T::Records, S::Id(id)) => u64::from(t.records.remove(&id).is_some()),
            (T::Records, S::ExpiredBy(at)) => drain(&mut t.records, |r| r.expires_at_ms <= at),
            (T::Records, S::Subject(Some(tag))) => {
                drain(&mut t.records, |r| r.subject.as_ref() == Some(tag))
            }
            (T::Keys, S::ExpiredBy(at)) => drain(&mut t.keys, |k| k.scope.not_after_ms <= at),
            (T::Keys, S::Id(id)) => u64::from(t.keys.remove(&id).is_some()),
            (T::Keys, S::Subject(Some(tag))) => {
                drain(&mut t.keys, |k| k.scope.subject.as_ref() == Some(tag))
            }
            (T::Notes, S::All) => std::mem::take(&mut t.notes).len() as u64,
            (T::IngestKeys, S::All) => std::mem::take(&mut t.ingest_keys).len() as u64,
            (T::IngestKeys, S::ExpiredBy(at)) => {
                drain(&mut t.ingest_keys, |k| k.not_after_ms <= at)
            }
            (T::Staged, S::Id(id)) => u64::from(t.staged.remove(&id).is_some()),
            (T::Staged, S::ExpiredBy(at)) => {
                let before = t.set_aside.len();
                t.set_aside.retain(|s| s.expires_at_ms > at);
                drain(&mut t.staged, |s| s.expires_at_ms <= at)
                    + (before - t.set_aside.len()) as u64
            }
            (T::PiiMaps, S::ExpiredBy(at)) => drain(&mut t.pii_maps, |m| m.expires_at_ms <= at),
            (T::PiiMaps, S::Subject(Some(tag))) => {
                drain(&mut t.pii_maps, |m| m.subject.as_ref() == Some(tag))
            }
            (T::PiiMaps, S::Conversation(tag)) => u64::from(t.pii_maps.remove(tag).is_some()),
            (T::PiiMaps, S::ConversationsOf(tag)) => {
                let of: std::collections::BTreeSet<IdTag> = t
                    .records
                    .values()
                    .filter(|r| r.subject.as_ref() == Some(tag))
                    .map(|r| r.conversation)
                    .collect();
                drain(&mut t.pii_maps, |m| of.contains(&m.conversation))
            }
            _ => return Err(unsupported(table, &select)),
        };
        Ok(n)
    }

    fn bump(&mut self, counter: Counter, by: u64, at_least: u64) -> Result<u64> {
        if let Counter::KeyUses(id) = counter {
            if let Some(k) = self.work.keys.get_mut(&id) {
                k.sealed = k.sealed.saturating_add(by);
            }
            return Ok(0);
        }
        let value = self
            .work
            .counters
            .get_mut(&counter_slot(counter)?)
            .ok_or_else(|| Error::Storage("a counter is missing".into()))?;
        let first = u64::try_from(*value).unwrap_or(0).max(at_least);
        *value = first
            .checked_add(by)
            .and_then(|next| i64::try_from(next).ok())
            .ok_or_else(|| Error::Corrupt {
                what: "a counter".into(),
            })?;
        Ok(first)
    }

    fn set_aside(&mut self, id: u64, expires_cap_ms: i64) -> Result<()> {
        if let Some(mut row) = self.work.staged.remove(&id) {
            row.expires_at_ms = row.expires_at_ms.min(expires_cap_ms);
            self.work.set_aside.push(row);
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        if self.done {
            return Err(Error::Storage("the transaction was committed".into()));
        }
        let mut committed = self
            .backend
            .committed
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if committed.is_none() {
            return Err(Error::Storage("the memory vault was discarded".into()));
        }
        *committed = Some(Arc::new(std::mem::take(&mut self.work)));
        self.done = true;
        Ok(())
    }
}

fn counter_slot(counter: Counter) -> Result<u8> {
    match counter {
        Counter::RecordIds => Ok(0),
        Counter::KeyIds => Ok(1),
        Counter::FailedOpens => Ok(2),
        Counter::KeyUses(_) => Err(Error::Storage(
            "a key's use count is a column of its row".into(),
        )),
    }
}

/// Adds a row to a table whose rows are never replaced.
fn add<K: Ord, V>(map: &mut BTreeMap<K, V>, key: K, row: V) -> Result<()> {
    if map.contains_key(&key) {
        return Err(Error::Storage("a row with this key is stored".into()));
    }
    map.insert(key, row);
    Ok(())
}

fn drain<K: Ord, V>(map: &mut BTreeMap<K, V>, gone: impl Fn(&V) -> bool) -> u64 {
    let before = map.len();
    map.retain(|_, v| !gone(v));
    (before - map.len()) as u64
}

fn first(t: &Tables, table: Table, key: &Select<'_>) -> Result<Option<Row>> {
    let mut found = None;
    scan(t, table, key, &mut |row| {
        found = Some(row?);
        Ok(ControlFlow::Break(()))
    })?;
    Ok(found)
}

/// A staged row as a backend hands it out: past the cap, as SQLite reads
/// one whose bytes it left unread (none of its values).
fn staged(row: &IngestRow) -> Row {
    if row.sealed.len() > MAX_STAGED_LEN {
        return Row::Staged(IngestRow {
            id: row.id,
            key_id: 0,
            expires_at_ms: 0,
            sealed: Vec::new(),
        });
    }
    Row::Staged(row.clone())
}

fn scan(
    t: &Tables,
    table: Table,
    select: &Select<'_>,
    each: &mut dyn FnMut(Scanned) -> Result<ControlFlow<()>>,
) -> Result<()> {
    use Select as S;
    use Table as T;
    let rows: Vec<Row> = match (table, *select) {
        (T::Meta, S::Prefix(p)) => t
            .meta
            .iter()
            .filter(|(name, _)| name.starts_with(p))
            .map(|(name, v)| Row::Meta {
                name: name.clone(),
                value: v.clone(),
            })
            .collect(),
        (T::Meta, S::Name(n)) => t
            .meta
            .get(n)
            .map(|v| Row::Meta {
                name: n.to_owned(),
                value: v.clone(),
            })
            .into_iter()
            .collect(),
        (T::Counters, S::Counter(c)) => t
            .counters
            .get(&counter_slot(c)?)
            .map(|v| Row::Counter {
                counter: c,
                value: Some(*v),
            })
            .into_iter()
            .collect(),
        (T::Records, S::Id(id)) => one(t.records.get(&id), Row::Record),
        (T::Records, S::Conversation(tag)) => records(t, |r| r.conversation == *tag),
        (T::Records, S::Subject(Some(tag))) => records(t, |r| r.subject.as_ref() == Some(tag)),
        (T::Records, S::LiveConversation(tag, now)) => {
            records(t, |r| r.conversation == *tag && r.expires_at_ms > now)
        }
        (T::Records, S::LiveSubject(tag, now)) => records(t, |r| {
            r.subject.as_ref() == Some(tag) && r.expires_at_ms > now
        }),
        (T::Records, S::All) => records(t, |_| true),
        (T::Records, S::Range(from, to)) => t
            .records
            .range(from..=to.max(from))
            .filter(|(id, _)| **id <= to)
            .map(|(_, r)| Row::Record(r.clone()))
            .collect(),
        (T::Records, S::Newest) => one(t.records.values().next_back(), Row::Record),
        (T::Keys, S::Id(id)) => one(t.keys.get(&id), Row::Key),
        (T::Keys, S::All) => keys(t, |_| true),
        (T::Keys, S::Subject(subject)) => keys(t, |k| k.scope.subject.as_ref() == subject),
        (T::Keys, S::Sealing(scope)) => {
            let mut sealing = keys(t, |k| k.scope == *scope && !k.retired);
            sealing.reverse();
            sealing
        }
        (
            T::Keys,
            S::EndingIn {
                subject,
                after_ms,
                until_ms,
            },
        ) => keys(t, |k| {
            k.scope.subject.as_ref() == subject
                && k.scope.not_after_ms > after_ms
                && k.scope.not_after_ms <= until_ms
        }),
        (T::Keys, S::ExpiredBy(at)) => keys(t, |k| k.scope.not_after_ms <= at),
        (T::Audit, S::Id(seq)) => one(t.audit.get(&seq), Row::Audit),
        (T::Audit, S::All) => audit(t, 0, u64::MAX),
        (T::Audit, S::After(seq)) => seq
            .checked_add(1)
            .map_or_else(Vec::new, |from| audit(t, from, u64::MAX)),
        (T::Audit, S::Range(from, to)) => audit(t, from, to),
        (T::Audit, S::Newest) => one(t.audit.values().next_back(), Row::Audit),
        (T::Audit, S::Tail) => t
            .audit
            .values()
            .next_back()
            .map(|a| {
                Row::Audit(AuditRow {
                    sealed: Vec::new(),
                    ..a.clone()
                })
            })
            .into_iter()
            .collect(),
        (T::Notes, S::All) => t.notes.iter().copied().map(Row::Note).collect(),
        (T::IngestKeys, S::Id(id)) => one(t.ingest_keys.get(&id), Row::IngestKey),
        (T::IngestKeys, S::All) => t
            .ingest_keys
            .values()
            .cloned()
            .map(Row::IngestKey)
            .collect(),
        (T::IngestKeys, S::ExpiredBy(at)) => t
            .ingest_keys
            .values()
            .filter(|k| k.not_after_ms <= at)
            .cloned()
            .map(Row::IngestKey)
            .collect(),
        (T::Staged, S::Id(id)) => t.staged.get(&id).map(staged).into_iter().collect(),
        (T::Staged, S::All) => t.staged.values().map(staged).collect(),
        (T::Staged, S::After(after)) => t
            .staged
            .range(after.saturating_add(1)..)
            .filter(|_| after < u64::MAX)
            .map(|(_, s)| staged(s))
            .collect(),
        (T::Staged, S::Newest) => t
            .staged
            .values()
            .next_back()
            .map(staged)
            .into_iter()
            .collect(),
        (T::PiiMaps, S::Conversation(tag)) => one(t.pii_maps.get(tag), Row::PiiMap),
        _ => return Err(unsupported(table, select)),
    };
    for row in rows {
        if each(Ok(row))?.is_break() {
            break;
        }
    }
    Ok(())
}

/// The one row found, if any, as a row of its table.
fn one<V: Clone>(found: Option<&V>, row: fn(V) -> Row) -> Vec<Row> {
    found.cloned().map(row).into_iter().collect()
}

fn records(t: &Tables, keep: impl Fn(&RecordRow) -> bool) -> Vec<Row> {
    t.records
        .values()
        .filter(|r| keep(r))
        .cloned()
        .map(Row::Record)
        .collect()
}

fn keys(t: &Tables, keep: impl Fn(&KeyRow) -> bool) -> Vec<Row> {
    t.keys
        .values()
        .filter(|k| keep(k))
        .cloned()
        .map(Row::Key)
        .collect()
}

fn audit(t: &Tables, from: u64, to: u64) -> Vec<Row> {
    if from > to {
        return Vec::new();
    }
    t.audit
        .range(from..=to)
        .map(|(_, a)| Row::Audit(a.clone()))
        .collect()
}

fn tally(t: &Tables, table: Table, select: &Select<'_>) -> Result<Tally> {
    use Select as S;
    use Table as T;
    let of = |rows: Vec<&RecordRow>| Tally {
        rows: rows.len() as u64,
        bytes: rows.iter().map(|r| r.sealed.len() as u64).sum(),
        min_expiry_ms: rows.iter().map(|r| r.expires_at_ms).min(),
    };
    let count = |n: usize| Tally {
        rows: n as u64,
        ..Tally::default()
    };
    Ok(match (table, *select) {
        (T::Records, S::All) => of(t.records.values().collect()),
        (T::Records, S::ExpiredBy(at)) => of(t
            .records
            .values()
            .filter(|r| r.expires_at_ms <= at)
            .collect()),
        (T::Keys, S::All) => count(t.keys.len()),
        (T::Audit, S::All) => count(t.audit.len()),
        (T::Staged, S::SetAside) => count(t.set_aside.len()),
        _ => return Err(unsupported(table, select)),
    })
}
