//! Storing and reading records: `put`, `get`, `conversation`, `subject`,
//! `list`.

use std::io::{IsTerminal, Read};
use std::sync::Arc;
use std::time::SystemTime;

use llmvault::clock::{Clock, ManualClock};

use llmvault::ingest::{IngestKey, Ingestor};
use llmvault::{ConversationId, Error, Query, RecordId, SubjectId};
use zeroize::Zeroizing;

use crate::args::{Filters, Global, Put};
use crate::fail::Fail;
use crate::json::{JsonMessage, JsonRecord};
use crate::output::Out;
use crate::time::{parse_duration, parse_flag};

pub fn put(g: &Global, p: &Put, out: &mut Out) -> Result<(), Fail> {
    let ttl = p.ttl.as_deref().map(parse_duration).transpose()?;
    let json = match &p.conversation {
        Some(conversation) => from_flags(conversation, p)?,
        None => from_stdin()?,
    };
    // Stored at one frozen instant, so that a TTL worked out from
    // `expires_at` lands exactly on it.
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let options = crate::options(g).clock(clock.clone());
    let record = |clock: &ManualClock| {
        clock.set(SystemTime::now());
        json.to_new_record(clock.now(), ttl)?
            .ok_or_else(|| Fail::usage("expires_at has already passed: nothing was stored"))
    };
    let id = match ingest_key(p)? {
        Some(key) => {
            let storage = crate::existing_vault(g)?;
            let ingestor =
                Ingestor::open_in_with_options(&storage, &key, &options).map_err(ingest_failed)?;
            ingestor.put(record(&clock)?).map_err(ingest_failed)?
        }
        None => {
            let vault = crate::open_with(g, &options)?;
            vault.put(record(&clock)?)?
        }
    };
    out.report(&id.to_string(), &serde_json::json!({ "id": id.as_u64() }))
}

/// The environment variable holding the ingest key, if no file is given.
pub const INGEST_KEY_ENV: &str = "LLMVAULT_INGEST_KEY";

/// The ingest key `put` was given: from `--ingest-key-file` (its first
/// line), else from the environment; never an argument, which `ps` shows.
fn ingest_key(p: &Put) -> Result<Option<IngestKey>, Fail> {
    let (text, from) = if let Some(path) = &p.ingest_key_file {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            Fail::usage(format!(
                "cannot read ingest key file {}: {e}",
                path.display()
            ))
        })?);
        (text, format!("ingest key file {}", path.display()))
    } else if let Some(value) = std::env::var_os(INGEST_KEY_ENV) {
        let text = Zeroizing::new(
            value
                .into_string()
                .map_err(|_| Fail::usage(format!("{INGEST_KEY_ENV} is not valid UTF-8")))?,
        );
        (text, INGEST_KEY_ENV.to_owned())
    } else {
        return Ok(None);
    };
    let first_line = text.lines().next().unwrap_or_default();
    IngestKey::from_text(first_line).map(Some).map_err(|e| {
        Fail::usage(format!(
            "{from}: {e}; print the current key with `llmvault ingest-key`"
        ))
    })
}

/// An ingest key that is not this vault's is not a passphrase problem.
fn ingest_failed(e: Error) -> Fail {
    match e {
        Error::WrongKey => Fail {
            code: crate::fail::EXIT_WRONG_KEY,
            message: "wrong key: this is not the vault's ingest key; print the current \
                      one with `llmvault ingest-key`"
                .into(),
        },
        other => Fail::from(other),
    }
}

pub fn print_ingest_key(g: &Global, rotate: bool, out: &mut Out) -> Result<(), Fail> {
    let vault = crate::open(g)?;
    let key = if rotate {
        vault.rotate_ingest_key()?
    } else {
        vault.ingest_key()?
    };
    let text = key.to_text();
    out.report(&text, &serde_json::json!({ "ingest_key": text.as_str() }))
}

pub fn get(g: &Global, id: u64, out: &mut Out) -> Result<(), Fail> {
    let vault = crate::open(g)?;
    let record = vault.get(RecordId::from_u64(id))?;
    out.record(&record)
}

pub fn conversation(g: &Global, id: &str, out: &mut Out) -> Result<(), Fail> {
    let vault = crate::open(g)?;
    for record in vault.conversation(&ConversationId::new(id))? {
        out.record(&record)?;
    }
    Ok(())
}

pub fn subject(g: &Global, id: &str, out: &mut Out) -> Result<(), Fail> {
    let vault = crate::open(g)?;
    for record in vault.subject_records(&SubjectId::new(id))? {
        out.record(&record)?;
    }
    Ok(())
}

pub fn list(g: &Global, filters: &Filters, out: &mut Out) -> Result<(), Fail> {
    let query = query(filters)?;
    let vault = crate::open(g)?;
    for record in vault.query(&query)? {
        out.record_line(&record)?;
    }
    Ok(())
}

/// The library query for `list` and `export` filters.
pub fn query(f: &Filters) -> Result<Query, Fail> {
    let mut q = Query::all();
    if let Some(t) = &f.since {
        q = q.since(parse_flag(t)?);
    }
    if let Some(t) = &f.until {
        q = q.until(parse_flag(t)?);
    }
    if let Some(tag) = &f.tag {
        q = q.tag(tag.as_str());
    }
    if let Some(model) = &f.model {
        q = q.model(model.as_str());
    }
    if let Some(subject) = &f.subject {
        q = q.subject(SubjectId::new(subject.as_str()));
    }
    if let Some(conversation) = &f.conversation {
        q = q.conversation(ConversationId::new(conversation.as_str()));
    }
    if f.training_consented_only {
        q = q.training_consented_only();
    }
    Ok(q)
}

fn from_flags(conversation: &str, p: &Put) -> Result<JsonRecord, Fail> {
    let message = |role: &str, content: &str| JsonMessage {
        role: role.to_owned(),
        content: content.to_owned(),
    };
    let prompt = p
        .system
        .iter()
        .map(|s| message("system", s))
        .chain(p.prompts.iter().map(|s| message("user", s)))
        .collect();
    let meta = p
        .meta
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| Fail::usage(format!("--meta {kv:?}: use KEY=VALUE")))
        })
        .collect::<Result<_, _>>()?;
    Ok(JsonRecord {
        id: None,
        conversation: conversation.to_owned(),
        subject: p.subject.clone(),
        model: p.model.clone().unwrap_or_default(),
        prompt,
        response: p.response.as_deref().map(|r| message("assistant", r)),
        created_at: None,
        expires_at: None,
        training_consent: p.training_consent,
        masked: p.masked,
        tags: p.tags.clone(),
        meta,
    })
}

fn from_stdin() -> Result<JsonRecord, Fail> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("llmvault: reading one record as JSON from stdin (end with Ctrl-D)");
    }
    let mut text = Zeroizing::new(String::new());
    stdin.lock().read_to_string(&mut text)?;
    serde_json::from_str(&text).map_err(|e| {
        Fail::usage(format!(
            "stdin is not a record: {e}; see docs/CLI.md for the JSON shape, or use --conversation"
        ))
    })
}
