//! Read logs of a SQLite vault: files `<name in hex>.log` in the directory
//! `<database file>-reads` beside it, each held with an exclusive `flock`
//! (which the kernel drops when the holding process dies, however it dies).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::store::read_logs::{Claim, LogName, ReadLogFile, ReadLogs};

/// The directory of a database's read logs.
pub(crate) fn dir_of(database: &Path) -> PathBuf {
    let mut dir = database.as_os_str().to_owned();
    dir.push("-reads");
    PathBuf::from(dir)
}

pub(super) struct FileReadLogs {
    dir: PathBuf,
}

impl FileReadLogs {
    pub(super) fn new(database: &Path) -> Self {
        Self {
            dir: dir_of(database),
        }
    }

    fn path(&self, name: &LogName) -> PathBuf {
        self.dir.join(format!("{}.log", hex(name)))
    }
}

impl ReadLogs for FileReadLogs {
    fn create(&self, name: &LogName) -> Result<Box<dyn ReadLogFile>> {
        create_dir(&self.dir)?;
        let mut options = OpenOptions::new();
        options.read(true).append(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(self.path(name)).map_err(io_error)?;
        file.try_lock().map_err(|e| match e {
            TryLockError::Error(e) => io_error(e),
            TryLockError::WouldBlock => Error::Busy,
        })?;
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
                .and_then(unhex)
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
}

impl HeldFile {
    fn new(file: File) -> Result<Self> {
        let len = file.metadata().map_err(io_error)?.len();
        Ok(Self { file, len })
    }
}

impl ReadLogFile for HeldFile {
    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        match self.file.write_all(bytes) {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                // A part written before the error would make the next
                // entry unreadable: cut it off again.
                let _ = self.file.set_len(self.len);
                Err(io_error(e))
            }
        }
    }

    fn read_from(&mut self, offset: u64) -> Result<Vec<u8>> {
        self.file.seek(SeekFrom::Start(offset)).map_err(io_error)?;
        let mut bytes = Vec::new();
        self.file.read_to_end(&mut bytes).map_err(io_error)?;
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<LogName> {
    if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut name = [0; 16];
    for (i, byte) in name.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(name)
}
