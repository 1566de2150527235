//! llmvault side by side with the stores and ciphers a user would pick
//! instead, in one run on one machine:
//!
//! - llmvault itself and the raw AEADs (`aes-gcm`, `ring`) run here;
//! - plain SQLite runs here too, on the very SQLite build llmvault links
//!   (same `libsqlite3-sys`, so one build);
//! - SQLCipher and OpenSSL run in `sqlcipher-runner`, a child process
//!   built by `cargo` from its own workspace, because SQLCipher's
//!   libsqlite3 cannot link next to plain SQLite. It gets the same plan
//!   (record bytes, batch size, counts) and prints JSON.
//!
//! `cargo run --release [-- --quick] [--no-sqlcipher] [--svg PATH] [--json PATH] | --aead-only | --postgres`
//!
//! `--profile WORKLOAD SIDE` runs one workload on one side alone, for a
//! profiler (see [`profile`]).
//!
//! `--postgres` runs only the PostgreSQL rows (`postgres.rs`), against the
//! server `.ci/postgres` starts.
//!
//! `--no-sqlcipher` leaves the SQLCipher and OpenSSL columns empty instead
//! of building their runner (about ten minutes): `.ci/run` runs
//! `--quick --no-sqlcipher` as a smoke of the llmvault and plain-SQLite
//! rows.

#![allow(clippy::cast_possible_truncation)]

mod aead;
mod chart;
mod memory;
mod peer;
mod postgres;
mod timing;
mod vault;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use peer::{Figure, Plan};

/// Figures by side, then by workload.
type Results = BTreeMap<&'static str, BTreeMap<String, Figure>>;

const SIDES: [&str; 3] = ["plain SQLite", "SQLCipher", "OpenSSL"];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let after = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(PathBuf::from)
    };

    if let Some(i) = args.iter().position(|a| a == "--memory-child") {
        let n = args
            .get(i + 2)
            .and_then(|n| n.parse().ok())
            .unwrap_or(100_000);
        memory::child(args.get(i + 1).map_or("", String::as_str), n);
        return;
    }
    if args.iter().any(|a| a == "--postgres") {
        postgres::run(quick);
        return;
    }
    if args.iter().any(|a| a == "--aead-only") {
        // For profiling the sealing layer alone.
        for f in aead::llmvault()
            .into_iter()
            .chain(aead::llmvault_backend())
            .chain(aead::aes_gcm())
        {
            println!("{} {:.0} {}", f.workload, f.value, f.unit);
        }
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let shapes = vault::Shapes::calibrate(dir.path(), &[64, 256, 1024, 4096, 16384]);
    if let Some(i) = args.iter().position(|a| a == "--profile") {
        profile(&args[i + 1..], &shapes, dir.path());
        return;
    }
    let scale = if quick { 10 } else { 1 };
    let plan = Plan {
        batch: 1000,
        record_len: shapes.body_len(1024),
        get_records: 100_000 / scale,
        gets: 200_000 / scale,
        single_puts: 300 / scale,
        sizes: [(64, 20), (256, 20), (1024, 20), (4096, 10), (16384, 5)]
            .iter()
            .map(|&(len, batches)| (shapes.body_len(len), (batches / scale).max(1)))
            .collect(),
        big_cache_kib: 256 * 1024,
        subject_batches: (20 / scale).max(1),
    };
    eprintln!("plan: {plan:?}");

    let mut results = Results::new();
    let mut put = |side: &'static str, figures: Vec<Figure>| {
        let by_side = results.entry(side).or_default();
        for f in figures {
            by_side.insert(f.workload.clone(), f);
        }
    };

    if args.iter().any(|a| a == "--no-sqlcipher") {
        eprintln!("SQLCipher and OpenSSL left out (--no-sqlcipher)");
    } else {
        eprintln!("running SQLCipher and OpenSSL (sqlcipher-runner)...");
        let (sqlcipher, openssl): (Vec<_>, Vec<_>) = run_runner(&plan)
            .into_iter()
            .partition(|f| !f.workload.starts_with("seal"));
        put("SQLCipher", sqlcipher);
        put("OpenSSL", openssl);
    }

    eprintln!("running plain SQLite...");
    put(
        "plain SQLite",
        peer::run_all(&plan, dir.path(), None).expect("plain sqlite"),
    );
    eprintln!("running llmvault...");
    put("llmvault", vault::run_all(&plan, &shapes, dir.path()));
    let subjects = 100_000 / scale;
    eprintln!(
        "measuring memory over {} subjects, a child process each...",
        2 * subjects
    );
    put("plain SQLite", memory::run("sqlite", subjects));
    put("llmvault", memory::run("llmvault", subjects));
    eprintln!("running AEADs...");
    put("llmvault", aead::llmvault());
    put("llmvault AEAD", aead::llmvault_backend());
    put("aes-gcm", aead::aes_gcm());
    put("ring", aead::ring());

    print_tables(&plan, &results);
    if let Some(path) = after("--svg") {
        chart::draw(&path, &plan, &results).expect("svg");
        eprintln!("chart written to {}", path.display());
    }
    if let Some(path) = after("--json") {
        std::fs::write(&path, serde_json::to_string_pretty(&results).expect("json"))
            .expect("write json");
    }
}

/// `--profile WORKLOAD SIDE [--batches N] [--gets N] [--key-cache N]`:
/// one workload of the table on one side (`llmvault` or `sqlite`), long
/// enough for `perf record`, each batch's time on stderr. WORKLOAD is
/// `put_batch/subjects/N` (60 batches unless `--batches`),
/// `get/default_cache` (1,000,000 gets unless `--gets`) or, for llmvault,
/// `get/default_cache/2_threads` (as many, from two threads at once).
fn profile(args: &[String], shapes: &vault::Shapes, dir: &std::path::Path) {
    let usage = "--profile put_batch/subjects/N|get/default_cache llmvault|sqlite \
                 | --profile get/default_cache/2_threads llmvault";
    let (Some(workload), Some(side)) = (args.first(), args.get(1)) else {
        panic!("usage: {usage}");
    };
    let number = |flag: &str, default: usize| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map_or(default, |n| n.parse().expect("a number"))
    };
    let plan = Plan {
        batch: 1000,
        record_len: shapes.body_len(1024),
        get_records: 100_000,
        gets: number("--gets", 1_000_000),
        single_puts: 0,
        sizes: Vec::new(),
        big_cache_kib: 256 * 1024,
        subject_batches: number("--batches", 60),
    };
    peer::show_batches();
    let figure = match side.as_str() {
        "llmvault" => {
            let cache = args.iter().any(|a| a == "--key-cache");
            let key_cache = cache.then(|| number("--key-cache", 0));
            vault::profile(workload, &plan, shapes, dir, key_cache)
        }
        "sqlite" => peer::profile(workload, &plan, dir).expect("plain sqlite"),
        _ => panic!("usage: {usage}"),
    };
    let figure = figure.unwrap_or_else(|| panic!("usage: {usage}"));
    println!(
        "{side} {} {:.0} {}",
        figure.workload, figure.value, figure.unit
    );
}

/// Builds and runs the SQLCipher/OpenSSL runner through cargo, in release
/// mode, with the same target directory as this build.
fn run_runner(plan: &Plan) -> Vec<Figure> {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/sqlcipher-runner/Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // This binary's own target directory (`<target>/release/<exe>`), so
    // the runner is built beside it, never in a second `target/`.
    let target_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
        .expect("target directory");
    let out = Command::new(cargo)
        .args(["run", "--quiet", "--release", "--manifest-path", manifest])
        .arg("--target-dir")
        .arg(target_dir)
        .arg("--")
        .arg(serde_json::to_string(plan).expect("plan"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("could not run cargo for sqlcipher-runner");
    assert!(out.status.success(), "sqlcipher-runner failed");
    serde_json::from_slice(&out.stdout).expect("runner output")
}

fn fmt(v: f64, unit: &str) -> String {
    match unit {
        "B/s" => format!("{:.2} GB/s", v / 1e9),
        "x" => format!("{v:.2}x"),
        "bytes" => format!("{v:.0} B"),
        "MiB" => format!("{v:.0} MiB"),
        _ if v >= 1e6 => format!("{:.2} M/s", v / 1e6),
        _ => format!("{:.0}/s", v),
    }
}

/// The scale a plan was made at (`--quick` divides counts by 10).
fn scale_of(plan: &Plan) -> usize {
    100_000 / plan.get_records.max(1)
}

/// The peers' figures, then llmvault / each peer, as table cells.
fn peer_cells(ours: Option<&Figure>, peers: &[Option<&Figure>]) -> String {
    let mut cells = String::new();
    for p in peers {
        cells += &format!(
            "| {} ",
            p.map(|f| fmt(f.value, &f.unit)).unwrap_or_default()
        );
    }
    for p in peers {
        let ratio = match (ours, p) {
            (Some(o), Some(p)) => format!("{:.2}", o.value / p.value),
            _ => String::new(),
        };
        cells += &format!("| {ratio} ");
    }
    cells + "|"
}

fn print_tables(plan: &Plan, results: &Results) {
    let rows: Vec<(String, String)> = vec![
        (
            "put_batch".into(),
            format!("put_batch, {} × 1 KiB, records/s", plan.batch),
        ),
        ("put".into(), "put, one durable record, records/s".into()),
        (
            "put_batch/subjects/1".into(),
            format!("put_batch, {} × 1 KiB, one subject", plan.batch),
        ),
        (
            "put_batch/subjects/500".into(),
            format!("put_batch, {} × 1 KiB, over 500 subjects", plan.batch),
        ),
        (
            "put_batch/subjects/10000".into(),
            format!("put_batch, {} × 1 KiB, over 10,000 subjects", plan.batch),
        ),
        (
            "get/default_cache".into(),
            format!(
                "random get of {} records, SQLite default cache",
                plan.get_records
            ),
        ),
        (
            "get/default_cache/2_threads".into(),
            "random get, default cache, 2 threads at once (one handle; a connection each for the peers)".into(),
        ),
        (
            "get/big_cache".into(),
            format!(
                "random get, {} MiB cache on both sides",
                plan.big_cache_kib / 1024
            ),
        ),
        (
            "get/default_cache+batched_audit".into(),
            "random get, default cache, llmvault's read audit entries written 256 at a time".into(),
        ),
        (
            "get/big_cache+batched_audit".into(),
            "random get, 256 MiB cache, read audit entries written 256 at a time".into(),
        ),
        (
            "file/payload".into(),
            "file size / payload (lower is better)".into(),
        ),
        (
            "memory/subjects/1x".into(),
            format!(
                "memory (RSS growth) after {} subjects, every 50th read (lower is better)",
                100_000 / scale_of(plan)
            ),
        ),
        (
            "memory/subjects/2x".into(),
            format!(
                "memory (RSS growth) after {} subjects (lower is better)",
                200_000 / scale_of(plan)
            ),
        ),
    ];
    let chart_rows = plan.sizes.iter().map(|(len, _)| {
        (
            format!("put_batch/{len}"),
            format!("put_batch, {len} B records, records/s"),
        )
    });
    let side = |s: &str, k: &str| results.get(s).and_then(|m| m.get(k));
    println!(
        "\n| workload | llmvault | plain SQLite | SQLCipher | llmvault / plain SQLite | llmvault / SQLCipher |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (key, label) in rows.into_iter().chain(chart_rows) {
        let ours = side("llmvault", &key);
        let line = format!(
            "| {label} | {} ",
            ours.map(|f| fmt(f.value, &f.unit)).unwrap_or_default()
        );
        // A llmvault-only setting is compared with the peers' same cache.
        let peer_key = key.split('+').next().unwrap_or(&key);
        let peers = [side(SIDES[0], peer_key), side(SIDES[1], peer_key)];
        println!("{line}{}", peer_cells(ours, &peers));
    }

    println!(
        "\n| AEAD (AES-256-GCM) | llmvault seal | llmvault AEAD ({}) | aes-gcm 0.11 | OpenSSL EVP | ring | AEAD / aes-gcm | AEAD / OpenSSL | AEAD / ring |",
        llmvault::AEAD_BACKEND
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for key in ["seal/1KiB", "seal/1MiB", "seal+open/1KiB"] {
        let sealing = side("llmvault", key);
        let ours = side("llmvault AEAD", key);
        let peers = [
            side("aes-gcm", key),
            side("OpenSSL", key),
            side("ring", key),
        ];
        let line = format!(
            "| {key} | {} | {} ",
            sealing.map(|f| fmt(f.value, &f.unit)).unwrap_or_default(),
            ours.map(|f| fmt(f.value, &f.unit)).unwrap_or_default()
        );
        println!("{line}{}", peer_cells(ours, &peers));
    }
    if let Some(f) = side("llmvault", "overhead/1KiB") {
        println!(
            "\nSealed overhead of a 1 KiB record: {} bytes beyond the record body \
             ({} bytes of envelope: version, key id, nonce, tag).",
            f.value,
            llmvault::SEAL_OVERHEAD
        );
    }
}
