//! Reads' audit entries, appended to this handle's read log (one `write`
//! each, durable to the OS before the read returns) and folded into the
//! chain by the next write transaction (FORMAT.md §11, "Read logs", DESIGN.md
//! "Audit log").
//!
//! A log's life: made (file first, then its row in the chain's tables, in
//! the same transaction as an open or as the fold that retires the one
//! before); appended to; folded in, its row saying how far; once it holds
//! `ROTATE_AT` entries, retired at a fold that takes in all of it (row
//! marked [`FOLDED_ALL`]), after whose commit its file is removed, and at a
//! later sweep its row. A handle that dies leaves its log unheld: the
//! next sweep (at an open, a purge, a close or an audit walk, by any
//! handle with the key) claims it and folds what its row says is not in yet.
//!
//! Files and rows tell what happened:
//! - row and file, unheld: a dead handle's log; fold the rest.
//! - row [`FOLDED_ALL`] and file: folded whole, the removal interrupted.
//! - file without row: made but not yet committed (held), or its maker
//!   died before the commit that registers it: fold it whole.
//! - row without file (not [`FOLDED_ALL`]): entries were lost; the fold
//!   chains an [`AuditAction::ReadLogDamaged`] entry, which `verify` names.

use std::sync::{Mutex, MutexGuard, PoisonError};

use zeroize::Zeroizing;

use super::Vault;
use crate::aead::AeadKey;
use crate::audit::read_log::{self, Cursor, HEADER_LEN};
use crate::audit::{Actor, AuditAction, AuditOutcome, Event};
use crate::codec;
use crate::error::Result;
use crate::store::read_logs::{Claim, LogName, ReadLogFile};
use crate::tables::Txn;
use crate::tables::read_logs::FOLDED_ALL;

/// Entries not yet folded after which a read folds them itself (and
/// again after as many more, while a fold fails).
const FOLD_AT: u64 = 1024;
/// Entries a log takes before a fold retires it for a new one.
const ROTATE_AT: u64 = 4096;
/// Or bytes (entries are bounded, but a few large ones add up): a sweep
/// reads at most twice this of a log.
const ROTATE_AT_BYTES: u64 = 64 << 20;

/// This handle's read logs.
pub(super) struct ReadLogs {
    state: Mutex<State>,
    /// What the open write transaction's fold changes once it commits.
    plan: Mutex<Option<Plan>>,
}

#[derive(Default)]
struct State {
    /// The process the logs below belong to: a forked child inherits the
    /// handle but must not append to its parent's log.
    pid: u32,
    current: Option<OwnLog>,
    /// Retired logs whose last entries are not yet folded.
    retired: Vec<OwnLog>,
}

struct OwnLog {
    name: LogName,
    file: Box<dyn ReadLogFile>,
    cipher: AeadKey,
    /// After the last entry appended.
    written: Cursor,
    /// After the last entry a committed fold took in.
    folded: Cursor,
    /// Whether a committed transaction holds its row.
    registered: bool,
}

impl OwnLog {
    fn is_full(&self) -> bool {
        self.written.entries() >= ROTATE_AT || self.written.offset >= ROTATE_AT_BYTES
    }
}

#[derive(Default)]
struct Plan {
    /// The current log's fold point (and that its row exists) once the
    /// fold commits.
    current: Option<(LogName, Cursor)>,
    /// Own logs folded whole: their files go after the commit.
    retired: Vec<LogName>,
    /// Claimed logs of other handles, folded whole or found folded.
    claimed: Vec<(LogName, Box<dyn ReadLogFile>)>,
}

/// An entry taken from a log, for the chain.
pub(super) struct Folded {
    pub(super) at_ms: i64,
    pub(super) body: Zeroizing<Vec<u8>>,
}

/// What a fold does besides this handle's own logs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Fold {
    /// Only this handle's logs.
    Own,
    /// Also logs of handles that are gone.
    Sweep,
    /// As `Sweep`, and this handle's logs are folded whole with no
    /// successor: the handle is closing.
    Close,
}

impl ReadLogs {
    pub(super) fn new() -> Self {
        Self {
            state: Mutex::new(State {
                pid: std::process::id(),
                ..State::default()
            }),
            plan: Mutex::new(None),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let pid = std::process::id();
        if state.pid != pid {
            // Forked: the logs are the parent's (it still holds them).
            *state = State {
                pid,
                ..State::default()
            };
        }
        state
    }

    fn plan(&self) -> MutexGuard<'_, Option<Plan>> {
        self.plan.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the next fold retires this handle's log.
    fn rotation_due(&self) -> bool {
        let state = self.state();
        !state.retired.is_empty() || state.current.as_ref().is_some_and(OwnLog::is_full)
    }

    /// Forgets a fold that did not commit.
    pub(super) fn reset_plan(&self) {
        *self.plan() = None;
    }
}

impl Vault {
    /// Appends a read's entry to this handle's log: durable to the OS when
    /// this returns.
    pub(super) fn append_read(
        &self,
        at_ms: i64,
        actor: &Actor,
        event: &Event,
        outcome: &AuditOutcome,
    ) -> Result<()> {
        let body = Zeroizing::new(codec::audit::encode(actor, event, outcome));
        let due = {
            let mut state = self.read_logs.state();
            let log = match &mut state.current {
                Some(log) => log,
                // After a fork, or when making one failed before: a log
                // made here is registered by the next fold.
                empty @ None => empty.insert(self.new_read_log()?),
            };
            let log = match self.append_entry(log, at_ms, &body) {
                Ok(()) => log,
                Err(_) if !log.file.held() => {
                    // Claimed by another handle (its hold ran out) or left
                    // in a state this handle cannot know: that handle's
                    // sweep folds it; this read goes to a new log.
                    let log = state.current.insert(self.new_read_log()?);
                    self.append_entry(log, at_ms, &body)?;
                    log
                }
                Err(e) => return Err(e),
            };
            let unfolded = log.written.entries() - log.folded.entries();
            unfolded >= FOLD_AT && unfolded % FOLD_AT == 0
        };
        if due {
            // The entry is in the log already: a fold that fails now
            // (busy, a full disk) is tried again later.
            let _ = self.fold_reads(Fold::Own);
        }
        Ok(())
    }

    /// Appends one entry to `log`.
    fn append_entry(&self, log: &mut OwnLog, at_ms: i64, body: &[u8]) -> Result<()> {
        let (bytes, next) = read_log::entry(
            &self.audit_keys,
            &log.cipher,
            &log.name,
            &log.written,
            at_ms,
            body,
        );
        log.file.append(&bytes)?;
        log.written = next;
        Ok(())
    }

    /// Folds the read logs into the chain in a transaction of their own.
    /// Durably when files it folds whole are removed after the commit (a
    /// power cut must not leave the rows that say so behind them); a fold
    /// that only moves fold points may lose its commit to a power cut, and
    /// is then done again from the files.
    pub(super) fn fold_reads(&self, fold: Fold) -> Result<()> {
        let removes_files = fold != Fold::Own || self.read_logs.rotation_due();
        let mut txn = if removes_files {
            self.begin()?
        } else {
            self.begin_buffered()?
        };
        self.chain_waiting(&mut txn, fold)?;
        self.commit(txn)
    }

    /// A new log for this handle: file made and held, header written.
    fn new_read_log(&self) -> Result<OwnLog> {
        let mut name = [0; 16];
        crate::random::fill_from_os(&mut name);
        let mut file = self.store.read_logs().create(&name)?;
        file.append(&read_log::header(&name))?;
        let start = Cursor {
            offset: HEADER_LEN,
            ..Cursor::start()
        };
        Ok(OwnLog {
            name,
            file,
            cipher: self.audit_keys.read_log_cipher(&name),
            written: start,
            folded: start,
            registered: false,
        })
    }

    /// The read entries to chain inside `txn`, oldest log first; records
    /// in `txn` how far each log is folded, and keeps what changes after
    /// the commit in the plan.
    pub(super) fn take_reads(&self, txn: &mut Txn<'_>, fold: Fold) -> Result<Vec<Folded>> {
        let mut out = Vec::new();
        let mut plan = Plan::default();
        let mut state = self.read_logs.state();
        // A log this handle no longer holds is another's to fold now (see
        // `ReadLogFile::held`); asked under the writers' turn, which every
        // claim is made under too.
        // (Not asked of a current log this fold neither reads nor writes a
        // row for: a lost one is found at its next append.)
        state.retired.retain_mut(|l| l.file.held());
        if state
            .current
            .as_mut()
            .is_some_and(|l| (l.written != l.folded || !l.registered) && !l.file.held())
        {
            state.current = None;
        }
        for log in &mut state.retired {
            self.take_own(log, &mut out)?;
            txn.set_read_log(&log.name, FOLDED_ALL)?;
            plan.retired.push(log.name);
        }
        if state.current.is_none() && fold != Fold::Close {
            // Without a log, reads make one (or fail, closed): a write
            // need not fail for it.
            state.current = self.new_read_log().ok();
        }
        // A successor that cannot be made now (a full disk, no file
        // handles) leaves the current log in place for the next fold.
        let successor = match fold {
            Fold::Close => None,
            _ if state.current.as_ref().is_some_and(OwnLog::is_full) => self.new_read_log().ok(),
            _ => None,
        };
        let rotate = fold == Fold::Close || successor.is_some();
        if rotate {
            // Retired now, not at the commit: reads from here on append to
            // the successor, so none lands in a log about to be removed.
            // Should the commit fail, the retired log is folded again from
            // its committed point, and the successor is registered by the
            // next fold (until then a crash leaves it a file without a
            // row, which a sweep folds whole).
            if let Some(successor) = &successor {
                txn.set_read_log(&successor.name, 0)?;
                plan.current = Some((successor.name, successor.folded));
            }
            if let Some(mut old) = std::mem::replace(&mut state.current, successor) {
                self.take_own(&mut old, &mut out)?;
                txn.set_read_log(&old.name, FOLDED_ALL)?;
                plan.retired.push(old.name);
                state.retired.push(old);
            }
        } else if let Some(log) = state.current.as_mut() {
            // Every write transaction comes here: its row is written only
            // when there is something to record.
            let end = self.take_own(log, &mut out)?;
            if end != log.folded || !log.registered {
                txn.set_read_log(&log.name, end.entries())?;
                plan.current = Some((log.name, end));
            }
        }
        let own: Vec<LogName> = state
            .retired
            .iter()
            .chain(&state.current)
            .map(|l| l.name)
            .collect();
        drop(state);
        if fold != Fold::Own {
            self.take_orphans(txn, &own, &mut out, &mut plan)?;
        }
        *self.read_logs.plan() = Some(plan);
        Ok(out)
    }

    /// This handle's entries of `log` past its fold point; the cursor
    /// after them.
    fn take_own(&self, log: &mut OwnLog, out: &mut Vec<Folded>) -> Result<Cursor> {
        if log.written == log.folded {
            return Ok(log.folded);
        }
        let bytes = log.file.read_from(log.folded.offset)?;
        let contents = read_log::read(&self.audit_keys, &log.name, log.folded, &bytes);
        out.extend(contents.entries.into_iter().map(|e| Folded {
            at_ms: e.at_ms,
            body: e.body,
        }));
        if contents.end != log.written {
            // Changed under us since this handle wrote it.
            let what = contents
                .damage
                .unwrap_or_else(|| "entries are missing".into());
            out.push(self.damage_entry(&log.name, &what));
        }
        Ok(log.written)
    }

    /// Logs of handles that are gone: folded whole, or what their rows say
    /// is not in yet; rows of logs already removed are dropped.
    fn take_orphans(
        &self,
        txn: &mut Txn<'_>,
        own: &[LogName],
        out: &mut Vec<Folded>,
        plan: &mut Plan,
    ) -> Result<()> {
        let logs = self.store.read_logs();
        let rows = txn.read_logs()?;
        // Best effort from here: a log that cannot be listed, claimed or
        // read (a directory in its place, no permission) is left for a
        // later sweep, and must not stop the write this sweep rides on.
        let mut files = logs.names().unwrap_or_default();
        for (name, folded) in rows {
            files.retain(|f| *f != name);
            if own.contains(&name) {
                continue;
            }
            match logs.claim(&name) {
                Err(_) | Ok(Claim::Held) => {}
                Ok(Claim::Missing) if folded == FOLDED_ALL => txn.forget_read_log(&name)?,
                Ok(Claim::Missing) => {
                    out.push(self.damage_entry(&name, "the log is missing"));
                    txn.forget_read_log(&name)?;
                }
                Ok(Claim::Claimed(mut file)) => {
                    if folded != FOLDED_ALL {
                        match self.take_claimed(&name, file.as_mut(), folded) {
                            Ok(entries) => out.extend(entries),
                            Err(_) => continue,
                        }
                        txn.set_read_log(&name, FOLDED_ALL)?;
                    }
                    plan.claimed.push((name, file));
                }
            }
        }
        for name in files.into_iter().filter(|f| !own.contains(f)) {
            if let Ok(Claim::Claimed(mut file)) = logs.claim(&name)
                && let Ok(entries) = self.take_claimed(&name, file.as_mut(), 0)
            {
                out.extend(entries);
                txn.set_read_log(&name, FOLDED_ALL)?;
                plan.claimed.push((name, file));
            }
        }
        Ok(())
    }

    /// The entries of a claimed log after its first `folded`, and a
    /// damage entry if it stops short.
    fn take_claimed(
        &self,
        name: &LogName,
        file: &mut dyn ReadLogFile,
        folded: u64,
    ) -> Result<Vec<Folded>> {
        let bytes = file.read_from(0)?;
        let contents = read_log::read(&self.audit_keys, name, Cursor::start(), &bytes);
        let mut out: Vec<Folded> = contents
            .entries
            .into_iter()
            .filter(|e| e.index > folded)
            .map(|e| Folded {
                at_ms: e.at_ms,
                body: e.body,
            })
            .collect();
        if let Some(what) = contents.damage {
            out.push(self.damage_entry(name, &what));
        } else if contents.end.entries() < folded {
            out.push(self.damage_entry(name, "entries already folded in are missing"));
        }
        Ok(out)
    }

    /// An entry saying that read entries of log `name` were lost.
    fn damage_entry(&self, name: &LogName, what: &str) -> Folded {
        let hex = crate::store::read_logs::name_to_hex(name);
        let outcome = AuditOutcome::Failed(format!("read log {hex}: {what}"));
        let body = codec::audit::encode(
            &Actor::new("llmvault"),
            &Event::new(AuditAction::ReadLogDamaged),
            &outcome,
        );
        Folded {
            at_ms: self.now_ms(),
            body: Zeroizing::new(body),
        }
    }

    /// After the fold's transaction committed (under the writer's turn):
    /// fold points move, retired and claimed files go.
    pub(super) fn apply_read_fold(&self) {
        let Some(plan) = self.read_logs.plan().take() else {
            return;
        };
        let logs = self.store.read_logs();
        let mut state = self.read_logs.state();
        if let Some((name, end)) = plan.current
            && let Some(log) = state.current.as_mut().filter(|l| l.name == name)
        {
            log.folded = end;
            log.registered = true;
        }
        state.retired.retain(|l| {
            if plan.retired.contains(&l.name) {
                // Best effort: a file left behind is known folded.
                let _ = logs.remove(&l.name);
                false
            } else {
                true
            }
        });
        drop(state);
        for (name, file) in plan.claimed {
            let _ = logs.remove(&name);
            drop(file);
        }
    }
}
