//! The SQL peers' workloads, shared word for word by plain SQLite (in the
//! main binary) and SQLCipher (in `sqlcipher-runner`, which includes this
//! file): same schema and indexes as llmvault's `records` table, same
//! record bytes, same durability (WAL, `synchronous = FULL`).

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

/// What to run, chosen by the main binary and handed to the runner.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// Records per batch transaction.
    pub batch: usize,
    /// Payload bytes of the record the get, single-put and file-size
    /// workloads use (llmvault's plaintext body of a 1 KiB record).
    pub record_len: usize,
    /// Records in the vault read by random gets.
    pub get_records: usize,
    /// Random point gets timed per cache setting.
    pub gets: usize,
    /// Durable single-record transactions timed.
    pub single_puts: usize,
    /// `(payload bytes, batches)` for the throughput-by-size chart.
    pub sizes: Vec<(usize, usize)>,
    /// `PRAGMA cache_size` (in KiB) of the large-cache read setting.
    pub big_cache_kib: i64,
    /// Batches of the 1 KiB record timed for each count of subjects in
    /// [`SUBJECT_COUNTS`] (one fresh store each).
    pub subject_batches: usize,
}

/// How many subjects the records of the many-subjects rows spread over:
/// one user, a few hundred, and a large user base (each subject has its
/// own data key in llmvault, so this is where keys are made and found).
pub const SUBJECT_COUNTS: [usize; 3] = [1, 500, 10_000];

/// One measured figure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Figure {
    /// Workload key, the same on every side.
    pub workload: String,
    /// The value.
    pub value: f64,
    /// Its unit.
    pub unit: String,
}

impl Figure {
    pub fn new(workload: impl Into<String>, value: f64, unit: &str) -> Self {
        Self {
            workload: workload.into(),
            value,
            unit: unit.into(),
        }
    }
}

/// The payload of record `i`: deterministic bytes of `len`.
pub fn payload(i: usize, len: usize) -> Vec<u8> {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 56) as u8
        })
        .collect()
}

/// A 16-byte tag standing in for llmvault's keyed conversation/subject
/// tags: pseudo-random like an HMAC output, so index inserts land at
/// random places in the b-tree as llmvault's do (sequential tags would
/// only ever append).
pub fn tag(kind: u8, n: usize) -> [u8; 16] {
    let mut x = (n as u64 ^ (u64::from(kind) << 56)).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut t = [0u8; 16];
    for chunk in t.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    t
}

/// Conversation of record `i`: 50 turns each, as in the library benches.
pub fn conversation_of(i: usize) -> usize {
    i / 50
}

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS records (id INTEGER PRIMARY KEY, conversation BLOB NOT NULL,
        subject BLOB, expires_at INTEGER NOT NULL, sealed BLOB NOT NULL);
    CREATE INDEX IF NOT EXISTS records_conversation ON records (conversation);
    CREATE INDEX IF NOT EXISTS records_subject ON records (subject) WHERE subject IS NOT NULL;
    CREATE INDEX IF NOT EXISTS records_expiry ON records (expires_at);";

/// The writer settings llmvault's SQLite storage runs with by default
/// (`DEFAULT_PAGE_CACHE_MIB`, and its `wal_autocheckpoint`), given to the
/// peers' write workloads too, so a write row compares like with like.
pub const WRITE_CACHE_KIB: i64 = 16 * 1024;
pub const WRITE_AUTOCHECKPOINT: i64 = 4000;

/// Opens (creating) a store. `key`: SQLCipher's raw key in hex, set
/// before anything else touches the file, so no KDF runs. Opened with
/// llmvault's writer settings (cache, checkpoint); the read rows set
/// their own cache on both sides.
pub fn open(path: &Path, key: Option<&str>) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    if let Some(hex) = key {
        conn.execute_batch(&format!("PRAGMA key = \"x'{hex}'\";"))?;
    }
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    assert_eq!(mode, "wal");
    conn.execute_batch(&format!(
        "PRAGMA synchronous = FULL; PRAGMA cache_size = -{WRITE_CACHE_KIB}; \
         PRAGMA wal_autocheckpoint = {WRITE_AUTOCHECKPOINT};"
    ))?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// Inserts records `first..first + n` in one `BEGIN IMMEDIATE`
/// transaction, spread over `subjects` subjects.
fn insert_batch(
    conn: &Connection,
    first: usize,
    n: usize,
    len: usize,
    subjects: usize,
) -> rusqlite::Result<()> {
    let expires = 4_102_444_800_000_i64; // 2100-01-01, as ms
    let rows: Vec<_> = (first..first + n).map(|i| (i, payload(i, len))).collect();
    let start = Instant::now();
    conn.execute_batch("BEGIN IMMEDIATE")?;
    {
        let mut stmt = conn.prepare_cached(
            "INSERT INTO records (id, conversation, subject, expires_at, sealed) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (i, bytes) in &rows {
            stmt.execute(params![
                *i as i64 + 1,
                &tag(1, conversation_of(*i))[..],
                &tag(2, *i % subjects)[..],
                expires,
                bytes
            ])?;
        }
    }
    conn.execute_batch("COMMIT")?;
    crate::peer::batch_done(first / n.max(1), start.elapsed());
    BATCH_TIME.with(|t| t.set(t.get() + start.elapsed()));
    Ok(())
}

/// Whether each batch's time goes to stderr (`--profile`).
static SHOW_BATCHES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on, each batch's time goes to stderr.
pub fn show_batches() {
    SHOW_BATCHES.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Batch `n` of a fill took `spent`.
pub fn batch_done(n: usize, spent: Duration) {
    if SHOW_BATCHES.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!("batch {n}: {:.2} ms", spent.as_secs_f64() * 1e3);
    }
}

thread_local! {
    /// Time spent inside batch transactions (payload generation excluded,
    /// as llmvault's records are built before its timer starts too).
    static BATCH_TIME: std::cell::Cell<Duration> = const { std::cell::Cell::new(Duration::ZERO) };
}

/// Inserts records `first..first + n` in batches of 1,000, spread over
/// `subjects` subjects (the memory row).
pub fn fill_over(
    conn: &Connection,
    first: usize,
    n: usize,
    len: usize,
    subjects: usize,
) -> rusqlite::Result<()> {
    for start in (first..first + n).step_by(1000) {
        insert_batch(conn, start, 1000.min(first + n - start), len, subjects)?;
    }
    Ok(())
}

/// Reads every `step`-th record of ids `1..=upto` (the memory row).
pub fn read_every(conn: &Connection, upto: usize, step: usize) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT conversation, subject, expires_at, sealed FROM records WHERE id = ?1",
    )?;
    for id in (1..=upto).step_by(step) {
        let blob: Vec<u8> = stmt.query_row([id as i64], |r| r.get(3))?;
        std::hint::black_box(blob);
    }
    Ok(())
}

/// Fills a fresh store with `batches` batches; returns records/s.
fn fill(
    conn: &Connection,
    batch: usize,
    batches: usize,
    len: usize,
    subjects: usize,
) -> rusqlite::Result<f64> {
    BATCH_TIME.with(|t| t.set(Duration::ZERO));
    for b in 0..batches {
        insert_batch(conn, b * batch, batch, len, subjects)?;
    }
    let spent = BATCH_TIME.with(|t| t.get());
    Ok((batch * batches) as f64 / spent.as_secs_f64())
}

/// A small deterministic generator for the random read order.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// `n` random selects by id, each blob read out.
fn read_random(
    conn: &Connection,
    rng: &mut XorShift,
    records: usize,
    n: usize,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT conversation, subject, expires_at, sealed FROM records WHERE id = ?1",
    )?;
    for _ in 0..n {
        let id = rng.below(records) as i64 + 1;
        let blob: Vec<u8> = stmt.query_row([id], |r| r.get(3))?;
        std::hint::black_box(blob);
    }
    Ok(())
}

fn random_gets(conn: &Connection, records: usize, gets: usize) -> rusqlite::Result<f64> {
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    read_random(conn, &mut rng, records, gets / 4)?; // warm up
    let start = Instant::now();
    read_random(conn, &mut rng, records, gets)?;
    Ok(gets as f64 / start.elapsed().as_secs_f64())
}

fn file_len(path: &Path) -> u64 {
    let wal = path.with_extension("db-wal");
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
}

/// One workload of [`run_all`] alone on plain SQLite, for a profiler
/// (`--profile`); `None` for a workload it does not know.
pub fn profile(workload: &str, plan: &Plan, dir: &Path) -> rusqlite::Result<Option<Figure>> {
    let path = dir.join("profile.db");
    let conn = open(&path, None)?;
    let subjects = workload
        .strip_prefix("put_batch/subjects/")
        .and_then(|n| n.parse().ok());
    let figure = match workload {
        _ if subjects.is_some() => {
            let subjects = subjects.unwrap_or(1);
            let rate = fill(
                &conn,
                plan.batch,
                plan.subject_batches,
                plan.record_len,
                subjects,
            )?;
            Figure::new(workload, rate, "records/s")
        }
        "get/default_cache" => {
            fill(
                &conn,
                plan.batch,
                plan.get_records / plan.batch,
                plan.record_len,
                100,
            )?;
            drop(conn);
            let conn = open(&path, None)?;
            conn.execute_batch("PRAGMA cache_size = -2000;")?;
            Figure::new(
                workload,
                random_gets(&conn, plan.get_records, plan.gets)?,
                "gets/s",
            )
        }
        _ => return Ok(None),
    };
    Ok(Some(figure))
}

/// Runs every store workload of `plan` in `dir`; `key` as for [`open`].
pub fn run_all(plan: &Plan, dir: &Path, key: Option<&str>) -> rusqlite::Result<Vec<Figure>> {
    let mut out = Vec::new();

    // put_batch of the 1 KiB record over 1, 500 and 10,000 subjects.
    for subjects in SUBJECT_COUNTS {
        let path = dir.join(format!("subjects-{subjects}.db"));
        let conn = open(&path, key)?;
        let rate = fill(
            &conn,
            plan.batch,
            plan.subject_batches,
            plan.record_len,
            subjects,
        )?;
        out.push(Figure::new(
            format!("put_batch/subjects/{subjects}"),
            rate,
            "records/s",
        ));
        drop(conn);
        let _ = std::fs::remove_file(&path);
    }

    // put_batch by record size (the chart), each in a fresh file.
    for (n, &(len, batches)) in plan.sizes.iter().enumerate() {
        let path = dir.join(format!("size-{n}.db"));
        let conn = open(&path, key)?;
        let rate = fill(&conn, plan.batch, batches, len, 100)?;
        out.push(Figure::new(format!("put_batch/{len}"), rate, "records/s"));
        drop(conn);
        let _ = std::fs::remove_file(&path);
    }

    // The read vault: put_batch of the 1 KiB record, timed as it is built.
    let path = dir.join("get.db");
    let conn = open(&path, key)?;
    let batches = plan.get_records / plan.batch;
    let rate = fill(&conn, plan.batch, batches, plan.record_len, 100)?;
    out.push(Figure::new("put_batch", rate, "records/s"));
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    drop(conn);
    let payload = (plan.get_records * plan.record_len) as f64;
    out.push(Figure::new(
        "file/payload",
        file_len(&path) as f64 / payload,
        "x",
    ));

    let conn = open(&path, key)?;
    // SQLite's default cache (about 2 MiB), as llmvault's row opens with.
    conn.execute_batch("PRAGMA cache_size = -2000;")?;
    let rate = random_gets(&conn, plan.get_records, plan.gets)?;
    out.push(Figure::new("get/default_cache", rate, "gets/s"));
    drop(conn);
    let conn = open(&path, key)?;
    conn.execute_batch(&format!("PRAGMA cache_size = -{};", plan.big_cache_kib))?;
    // Fill the cache with the whole working set first.
    let _: i64 = conn.query_row("SELECT sum(length(sealed)) FROM records", [], |r| r.get(0))?;
    let rate = random_gets(&conn, plan.get_records, plan.gets)?;
    out.push(Figure::new("get/big_cache", rate, "gets/s"));
    drop(conn);
    // Two threads at once, a connection each, SQLite's default cache.
    let start = std::sync::Barrier::new(2);
    let elapsed = std::thread::scope(|s| -> rusqlite::Result<std::time::Duration> {
        let handles: Vec<_> = [1u64, 2]
            .into_iter()
            .map(|seed| {
                let (start, path) = (&start, &path);
                s.spawn(move || -> rusqlite::Result<std::time::Duration> {
                    let conn = open(path, key)?;
                    conn.execute_batch("PRAGMA cache_size = -2000;")?;
                    let mut rng = XorShift(0x2545_F491_4F6C_DD1D ^ seed);
                    read_random(&conn, &mut rng, plan.get_records, plan.gets / 8)?;
                    start.wait();
                    let t = Instant::now();
                    read_random(&conn, &mut rng, plan.get_records, plan.gets / 2)?;
                    Ok(t.elapsed())
                })
            })
            .collect();
        let mut slowest = std::time::Duration::ZERO;
        for h in handles {
            slowest = slowest.max(h.join().expect("reader thread")?);
        }
        Ok(slowest)
    })?;
    let rate = plan.gets as f64 / elapsed.as_secs_f64();
    out.push(Figure::new("get/default_cache/2_threads", rate, "gets/s"));
    let conn = open(&path, key)?;

    drop(conn);
    // Single durable puts, appended to the read vault on a fresh
    // connection with the writer settings, as llmvault's run on a fresh
    // handle (not the warmed 256 MiB reader above).
    let conn = open(&path, key)?;
    let start = Instant::now();
    for i in 0..plan.single_puts {
        insert_batch(&conn, plan.get_records + i, 1, plan.record_len, 100)?;
    }
    let rate = plan.single_puts as f64 / start.elapsed().as_secs_f64();
    out.push(Figure::new("put", rate, "records/s"));
    drop(conn);
    let _ = std::fs::remove_file(&path);
    Ok(out)
}
