//! Portable copies: `export` writes JSON Lines (in clear, or sealed with
//! age for handing over), `import` reads them into another vault.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use age::armor::{ArmoredWriter, Format};
use llmvault::clock::{Clock, ManualClock};
use llmvault::{Error, NewRecord, Vault};
use zeroize::Zeroizing;

use crate::args::{Export, Global, Import};
use crate::fail::Fail;
use crate::json::JsonRecord;
use crate::output::{Out, progress, write_failed};

/// Records stored per transaction by `import`: memory stays flat, and a
/// failure loses at most this many from the store (none is half-written).
const IMPORT_BATCH: usize = 256;

pub fn export(g: &Global, e: &Export, out: &mut Out) -> Result<(), Fail> {
    let mut query = crate::records::query(&e.filters)?;
    if e.masked {
        query = query.keep_masked();
    }
    let vault = crate::open(g)?;
    let Some(path) = &e.output else {
        write_export(&vault, &query, e, io::stdout().lock())?;
        return Ok(());
    };
    let file = create_private(path, e.force)?;
    let count = match write_export(&vault, &query, e, file) {
        Ok(count) => count,
        Err(fail) => {
            let _ = std::fs::remove_file(path);
            return Err(fail);
        }
    };
    let recipients = e.age_recipient.len();
    let sealed = if recipients == 0 {
        String::new()
    } else {
        format!(", encrypted to {recipients} age recipient(s)")
    };
    out.report(
        &format!("exported {count} record(s) to {}{sealed}", path.display()),
        &serde_json::json!({ "exported": count, "output": path, "age_recipients": recipients }),
    )
}

/// Writes the export to `w`: JSON Lines in clear, or, given recipients, an
/// age file around them (streamed: age seals 64 KiB chunks as they fill,
/// so memory stays flat). Returns how many records went out.
fn write_export(
    vault: &Vault,
    query: &llmvault::Query,
    e: &Export,
    w: impl Write,
) -> Result<u64, Fail> {
    let mut w = BufWriter::new(w);
    if e.age_recipient.is_empty() {
        let count = stream(vault, query, &mut w)?;
        w.flush().map_err(write_failed)?;
        return Ok(count);
    }
    let recipients = e.age_recipient.iter().map(|r| r as &dyn age::Recipient);
    let encryptor = age::Encryptor::with_recipients(recipients)
        .map_err(|err| Fail::other(format!("cannot encrypt the export: {err}")))?;
    let format = if e.armor {
        Format::AsciiArmor
    } else {
        Format::Binary
    };
    let armored = ArmoredWriter::wrap_output(w, format).map_err(write_failed)?;
    let mut sealed = encryptor.wrap_output(armored).map_err(write_failed)?;
    let count = stream(vault, query, &mut sealed)?;
    // Without `finish` the last chunk is never written: the file would not
    // decrypt.
    sealed
        .finish()
        .and_then(ArmoredWriter::finish)
        .and_then(|mut w| w.flush())
        .map_err(write_failed)?;
    Ok(count)
}

/// Writes every matching record as one JSON line; returns how many.
fn stream(vault: &Vault, query: &llmvault::Query, w: &mut impl Write) -> Result<u64, Fail> {
    let bar = progress("exporting");
    let result = vault.export(query, &mut |record| {
        let json = JsonRecord::from_record(&record);
        serde_json::to_writer(&mut *w, &json).map_err(io::Error::other)?;
        w.write_all(b"\n")?;
        bar.inc(1);
        Ok(())
    });
    bar.finish_and_clear();
    result.map_err(|e| match e {
        Error::Io(io) => write_failed(io),
        other => Fail::from(other),
    })
}

/// A new file only its owner can read (the export may be in clear).
fn create_private(path: &Path, overwrite: bool) -> Result<File, Fail> {
    let mut options = OpenOptions::new();
    options.write(true);
    if overwrite {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            Fail::other(format!(
                "{} already exists: choose another --output, or add --force",
                path.display()
            ))
        } else {
            Fail::other(format!("cannot create {}: {e}", path.display()))
        }
    })?;
    // `mode` applies only to a file it creates: an existing one that
    // --force overwrites keeps its old permissions unless set here.
    #[cfg(unix)]
    if overwrite {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Fail::other(format!("cannot restrict {}: {e}", path.display())))?;
    }
    Ok(file)
}

pub fn import(g: &Global, i: &Import, out: &mut Out) -> Result<(), Fail> {
    let input: Box<dyn BufRead> = match i.input.as_deref() {
        None => Box::new(io::stdin().lock()),
        Some(p) if p.as_os_str() == "-" => Box::new(io::stdin().lock()),
        Some(p) => {
            Box::new(BufReader::new(File::open(p).map_err(|e| {
                Fail::other(format!("cannot read {}: {e}", p.display()))
            })?))
        }
    };
    // Each batch is stored at one frozen instant, so that a record's TTL
    // (time left until its original expiry, as of that instant) lands on
    // exactly the original expiry.
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let options = crate::options(g).clock(clock.clone());
    let vault = crate::open_with(g, &options)?;
    let mut import = Importer {
        vault: &vault,
        clock: &clock,
        batch: Vec::with_capacity(IMPORT_BATCH),
        imported: 0,
        skipped: 0,
        bar: progress("importing"),
    };
    let result = import.all(input);
    import.bar.finish_and_clear();
    result?;
    let (imported, skipped) = (import.imported, import.skipped);
    out.report(
        &format!("imported {imported} record(s); skipped {skipped} already expired"),
        &serde_json::json!({ "imported": imported, "skipped_expired": skipped }),
    )
}

struct Importer<'a> {
    vault: &'a Vault,
    clock: &'a ManualClock,
    batch: Vec<NewRecord>,
    imported: u64,
    skipped: u64,
    bar: indicatif::ProgressBar,
}

impl Importer<'_> {
    fn all(&mut self, input: Box<dyn BufRead>) -> Result<(), Fail> {
        for (line_no, line) in (1_u64..).zip(input.lines()) {
            let line = Zeroizing::new(line?);
            if line.trim().is_empty() {
                continue;
            }
            self.one(&line).map_err(|f| {
                f.context(format!(
                    "line {line_no} ({} record(s) before it were imported)",
                    self.imported
                ))
            })?;
        }
        self.flush()
            .map_err(|f| f.context(format!("{} record(s) were imported", self.imported)))
    }

    fn one(&mut self, line: &str) -> Result<(), Fail> {
        let json: JsonRecord =
            serde_json::from_str(line).map_err(|e| Fail::other(format!("not a record: {e}")))?;
        if self.batch.is_empty() {
            self.clock.set(SystemTime::now());
        }
        match json.to_new_record(self.clock.now(), None)? {
            Some(record) => self.batch.push(record),
            None => self.skipped += 1,
        }
        if self.batch.len() >= IMPORT_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Fail> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let ids = self.vault.put_batch(batch)?;
        self.imported += ids.len() as u64;
        self.bar.inc(ids.len() as u64);
        Ok(())
    }
}
