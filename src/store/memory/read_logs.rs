//! Read logs in memory: byte vectors, each marked held while a handle
//! holds it (dropping the handle stands in for a process that died).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::{Error, Result};
use crate::store::read_logs::{Claim, LogName, ReadLogFile, ReadLogs};

#[derive(Default)]
pub(super) struct MemoryReadLogs {
    logs: Arc<Mutex<BTreeMap<LogName, Log>>>,
}

struct Log {
    bytes: Vec<u8>,
    held: bool,
}

fn lock(logs: &Mutex<BTreeMap<LogName, Log>>) -> MutexGuard<'_, BTreeMap<LogName, Log>> {
    logs.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryReadLogs {
    pub(super) fn clear(&self) {
        lock(&self.logs).clear();
    }

    fn held(&self, name: &LogName) -> Box<dyn ReadLogFile> {
        Box::new(HeldLog {
            logs: Arc::clone(&self.logs),
            name: *name,
        })
    }
}

impl ReadLogs for MemoryReadLogs {
    fn create(&self, name: &LogName) -> Result<Box<dyn ReadLogFile>> {
        let mut logs = lock(&self.logs);
        if logs.contains_key(name) {
            return Err(Error::AlreadyExists);
        }
        logs.insert(
            *name,
            Log {
                bytes: Vec::new(),
                held: true,
            },
        );
        Ok(self.held(name))
    }

    fn claim(&self, name: &LogName) -> Result<Claim> {
        let mut logs = lock(&self.logs);
        Ok(match logs.get_mut(name) {
            None => Claim::Missing,
            Some(log) if log.held => Claim::Held,
            Some(log) => {
                log.held = true;
                drop(logs);
                Claim::Claimed(self.held(name))
            }
        })
    }

    fn names(&self) -> Result<Vec<LogName>> {
        Ok(lock(&self.logs).keys().copied().collect())
    }

    fn remove(&self, name: &LogName) -> Result<()> {
        lock(&self.logs).remove(name);
        Ok(())
    }
}

struct HeldLog {
    logs: Arc<Mutex<BTreeMap<LogName, Log>>>,
    name: LogName,
}

impl ReadLogFile for HeldLog {
    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        match lock(&self.logs).get_mut(&self.name) {
            Some(log) => {
                log.bytes.extend_from_slice(bytes);
                Ok(())
            }
            None => Err(Error::Storage("the read log was removed".into())),
        }
    }

    fn read_from(&mut self, offset: u64) -> Result<Vec<u8>> {
        let logs = lock(&self.logs);
        let bytes = logs.get(&self.name).map_or(&[][..], |l| &l.bytes[..]);
        let from = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        Ok(bytes[from..].to_vec())
    }
}

impl Drop for HeldLog {
    fn drop(&mut self) {
        if let Some(log) = lock(&self.logs).get_mut(&self.name) {
            log.held = false;
        }
    }
}
