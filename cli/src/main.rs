//! `llmvault`: the command-line tool for llmvault vaults.
//!
//! Inspect, export, import, purge and erase encrypted LLM logs without
//! writing Rust; mask personal data before a model sees it; append
//! write-only with an ingest key. Quiet on success, one line on stderr on failure, and exit
//! codes a script can branch on: 0 ok, 1 failure, 2 usage, 3 wrong key,
//! 4 tampering found. See `docs/CLI.md` for the full reference.

#![forbid(unsafe_code)]

mod admin;
mod args;
mod fail;
mod json;
mod keys;
mod output;
mod pii;
mod records;
mod time;
mod transfer;

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use llmvault::{Actor, Storage, Vault, VaultOptions};

use args::{Cli, Command, Global};
use fail::Fail;
use output::Out;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = Out::new(cli.global.json);
    let result = run(&cli.global, cli.command, &mut out).and_then(|()| out.flush());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(fail) => {
            if !fail.message.is_empty() {
                eprintln!("llmvault: {}", fail.message);
            }
            ExitCode::from(fail.code)
        }
    }
}

fn run(g: &Global, command: Command, out: &mut Out) -> Result<(), Fail> {
    match command {
        Command::Init(kdf) => admin::init(g, &kdf, out),
        Command::Put(put) => records::put(g, &put, out),
        Command::IngestKey { rotate } => records::print_ingest_key(g, rotate, out),
        Command::Get { id } => records::get(g, id, out),
        Command::Conversation { id } => records::conversation(g, &id, out),
        Command::Subject { id } => records::subject(g, &id, out),
        Command::List(filters) => records::list(g, &filters, out),
        Command::Purge { maintenance } => admin::purge(g, maintenance, out),
        Command::Erase { subject } => admin::erase(g, &subject, out),
        Command::Export(export) => transfer::export(g, &export, out),
        Command::Import(import) => transfer::import(g, &import, out),
        Command::Verify => admin::verify(g, out),
        Command::Audit(audit) => admin::audit(g, &audit, out),
        Command::Passwd(passwd) => admin::passwd(g, &passwd, out),
        Command::Rotate => admin::rotate(g, out),
        Command::Stats => admin::stats(g, out),
        Command::Recovery(recovery) => admin::recovery(g, &recovery, out),
        Command::Pii(pii) => pii::run(g, &pii, out),
    }
}

/// The `--vault` path (or `LLMVAULT_PATH`).
fn vault_path(g: &Global) -> Result<&Path, Fail> {
    g.vault
        .as_deref()
        .ok_or_else(|| Fail::usage("no vault given: use --vault PATH or set LLMVAULT_PATH"))
}

/// The storage of a vault that must already exist: the `--vault` file
/// or database, and the `--keys` one if its keys are kept apart.
fn existing_vault(g: &Global) -> Result<Storage, Fail> {
    let path = vault_path(g)?;
    for (file, flag) in
        std::iter::once((path, "--vault")).chain(g.keys.as_deref().map(|k| (k, "--keys")))
    {
        if !is_database(file) && !file.is_file() {
            return Err(Fail::other(format!(
                "no vault at {}: check {flag}, or create one with `llmvault init`",
                file.display()
            )));
        }
    }
    Ok(storage(g, path))
}

/// Whether `--vault`/`--keys` names a PostgreSQL database rather than a
/// file: a `postgres://` URL or a libpq `key=value` string.
fn is_database(place: &Path) -> bool {
    let text = place.to_string_lossy();
    text.starts_with("postgres://")
        || text.starts_with("postgresql://")
        || ["host=", "dbname=", "user="]
            .iter()
            .any(|k| text.starts_with(k) || text.contains(&format!(" {k}")))
}

/// One store: the file, or the database with `--schema` and `--ca-file`.
fn place(g: &Global, place: &Path, schema_suffix: &str) -> Storage {
    if !is_database(place) {
        return Storage::sqlite(place);
    }
    let schema = g.schema.as_deref().unwrap_or("llmvault");
    let mut storage =
        Storage::postgres(place.to_string_lossy()).schema(format!("{schema}{schema_suffix}"));
    if let Some(ca) = &g.ca_file {
        storage = storage.ca_file(ca);
    }
    storage
}

/// How to name a store in messages: its path, or (never the connection
/// string, which may hold a password) the database's hosts and schema.
fn shown(g: &Global, at: &Path) -> String {
    if is_database(at) {
        format!("{:?}", place(g, at, ""))
    } else {
        at.display().to_string()
    }
}

/// The `--vault` store, with its keys in `--keys` if given.
fn storage(g: &Global, path: &Path) -> Storage {
    let records = place(g, path, "");
    match &g.keys {
        // Two schemas when both are in PostgreSQL (maybe one database).
        Some(keys) => records.keys_in(place(g, keys, "_keys")),
        None => records,
    }
}

/// Options for opening: the actor from `--actor`/`--purpose`.
fn options(g: &Global) -> VaultOptions {
    let mut actor = Actor::new(g.actor.as_str());
    if let Some(purpose) = &g.purpose {
        actor = actor.purpose(purpose.as_str());
    }
    VaultOptions::default().actor(actor)
}

/// Opens the vault with its key, or with recovery shares.
fn open(g: &Global) -> Result<Vault, Fail> {
    open_with(g, &options(g))
}

fn open_with(g: &Global, options: &VaultOptions) -> Result<Vault, Fail> {
    let storage = existing_vault(g)?;
    if let Some(file) = &g.shares_file {
        let shares = keys::shares(file)?;
        return Ok(Vault::open_with_shares_in(&storage, &shares, options)?);
    }
    let key = keys::Sources {
        file: g.passphrase_file.as_deref(),
        env: keys::PASSPHRASE_ENV,
        key_file: g.key_file.as_ref(),
        what: "passphrase",
        confirm: false,
    }
    .key()?;
    Ok(Vault::open_in(&storage, &key, options)?)
}
