//! Read logs of a SQLite vault: files `<name in hex>.log` in the directory
//! `<database file>-reads` beside it, each held with an exclusive `flock`
//! (which the kernel drops when the holding process dies, however it dies).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::store::read_logs::{Claim, LogName, ReadLogFile, ReadLogs, name_from_hex, name_to_hex};

/// The directory of a database's read logs, beside the file its path
/// resolves to: two handles that name the file differently (a symlink, a
/// relative path from another working directory) must share it.
pub(crate) fn dir_of(database: &Path) -> PathBuf {
    let resolved = std::fs::canonicalize(database).unwrap_or_else(|_| database.to_owned());
    let mut dir = resolved.into_os_string();
    dir.push("-reads");
    PathBuf::from(dir)
}

pub(super) struct FileReadLogs {
    dir: PathBuf,
}

/// The most of a log a sweep reads. A handle rotates its log long before
/// (`ROTATE_AT_BYTES` in `src/vault/read_log.rs`); a bigger file is not one
/// it wrote, and is read only this far.
const MAX_READ: u64 = 128 << 20;

impl FileReadLogs {
    pub(super) fn new(database: &Path) -> Self {
        Self {
            dir: dir_of(database),
        }
    }

    fn path(&self, name: &LogName) -> PathBuf {
        self.dir.join(format!("{}.log", name_to_hex(name)))
    }
}

impl ReadLogs for FileReadLogs {
    fn create(&self, name: &LogName) -> Result<Box<dyn ReadLogFile>> {
        create_dir(&self.dir)?;
        // Made and locked under a name no sweep looks at, then renamed:
        // a sweep never sees (and claims) a log its maker does not hold
        // yet. The lock goes with the file through the rename.
        let making = self.dir.join(format!("{}.new", name_to_hex(name)));
        let mut options = OpenOptions::new();
        options.read(true).append(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&making).map_err(io_error)?;
        let locked = file.try_lock().map_err(|e| match e {
            TryLockError::Error(e) => io_error(e),
            TryLockError::WouldBlock => Error::Busy,
        });
        let renamed = locked.and_then(|()| {
            std::fs::rename(&making, self.path(name)).map_err(io_error)?;
            // The new name on disk before the transaction that registers
            // it commits: else a power cut could leave a row whose file
            // never was, which reads as lost entries.
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(io_error)
        });
        if let Err(e) = renamed {
            let _ = std::fs::remove_file(&making);
            return Err(e);
        }
        Ok(Box::new(HeldFile::new(file)?))
    }

    fn claim(&self, name: &LogName) -> Result<Claim> {
        let file = match OpenOptions::new()
            .read(true)
            .append(true)
            .open(self.path(name))
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Claim::Missing),
            Err(e) => return Err(io_error(e)),
        };
        match file.try_lock() {
            Ok(()) => Ok(Claim::Claimed(Box::new(HeldFile::new(file)?))),
            Err(TryLockError::WouldBlock) => Ok(Claim::Held),
            Err(TryLockError::Error(e)) => Err(io_error(e)),
        }
    }

    fn names(&self) -> Result<Vec<LogName>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let file_name = entry.map_err(io_error)?.file_name();
            // Anything else in the directory is not ours to read.
            if let Some(name) = file_name
                .to_str()
                .and_then(|n| n.strip_suffix(".log"))
                .and_then(name_from_hex)
            {
                names.push(name);
            }
        }
        names.sort_unstable();
        Ok(names)
    }

    fn remove(&self, name: &LogName) -> Result<()> {
        match std::fs::remove_file(self.path(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error(e)),
            _ => Ok(()),
        }
    }
}

/// Owner-only, like the database file.
fn create_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io_error)
}

struct HeldFile {
    file: File,
    len: u64,
    /// A failed append whose partial write could not be cut off: what
    /// follows would not read, so nothing more is appended.
    broken: bool,
}

impl HeldFile {
    fn new(file: File) -> Result<Self> {
        let len = file.metadata().map_err(io_error)?.len();
        Ok(Self {
            file,
            len,
            broken: false,
        })
    }
}

impl ReadLogFile for HeldFile {
    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        if self.broken {
            return Err(Error::Storage(
                "the read log could not be repaired after a failed write".into(),
            ));
        }
        match self.file.write_all(bytes) {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                // A part written before the error would make the next
                // entry unreadable: cut it off again.
                self.broken = self.file.set_len(self.len).is_err();
                Err(io_error(e))
            }
        }
    }

    fn read_from(&mut self, offset: u64) -> Result<Vec<u8>> {
        self.file.seek(SeekFrom::Start(offset)).map_err(io_error)?;
        let mut bytes = Vec::new();
        (&mut self.file)
            .take(MAX_READ)
            .read_to_end(&mut bytes)
            .map_err(io_error)?;
        Ok(bytes)
    }
}

fn io_error(e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::StorageFull {
        Error::DiskFull
    } else {
        Error::Io(e)
    }
}
