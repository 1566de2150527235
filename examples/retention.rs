//! Retention: a default TTL for records that ask for none, a maximum that
//! refuses longer ones, and a purge that deletes what expired and destroys
//! its keys. Time moves under a manual clock instead of sleeping.
//!
//! Run: `cargo run --example retention`

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use llmvault::clock::{Clock, ManualClock};
use llmvault::{
    ConversationId, Error, KdfParams, KeySource, Message, NewRecord, SubjectId, Vault, VaultOptions,
};

const DAY: Duration = Duration::from_secs(86_400);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let opts = VaultOptions::default()
        .kdf(KdfParams::minimum()) // fast for the example; keep the default in production
        .default_ttl(7 * DAY)
        .max_ttl(90 * DAY)
        .clock(clock.clone());
    let key = KeySource::passphrase("correct horse battery staple");
    let vault = Vault::create(dir.path().join("retention.vault"), &key, &opts)?;
    println!("policy: records live 7 days unless they ask otherwise, 90 days at most");

    let exchange = |text: &str| {
        NewRecord::new(ConversationId::new("conv-1"))
            .subject(SubjectId::new("user-7"))
            .prompt([Message::user(text)])
            .response(Message::assistant("noted"))
    };
    let default_ttl = vault.put(exchange("kept for the default 7 days"))?;
    let longest = vault.put(exchange("kept 90 days").ttl(90 * DAY))?;
    let shown = |id| -> Result<String, Error> {
        let r = vault.get(id)?;
        let left = r
            .expires_at()
            .duration_since(clock.now())
            .unwrap_or_default();
        Ok(format!("{} days left", (left.as_secs() + 3_600) / 86_400))
    };
    println!(
        "record {default_ttl}: no TTL given, {}",
        shown(default_ttl)?
    );
    println!("record {longest}: TTL 90 days, {}", shown(longest)?);

    match vault.put(exchange("kept a year").ttl(365 * DAY)) {
        Err(Error::TtlTooLong { requested, max }) => println!(
            "a TTL of {} days is refused: the maximum is {} days",
            requested.as_secs() / 86_400,
            max.as_secs() / 86_400
        ),
        other => return Err(format!("expected TtlTooLong, got {other:?}").into()),
    }

    clock.advance(8 * DAY);
    println!("8 days later:");
    match vault.get(default_ttl) {
        Err(Error::Expired { id, .. }) => {
            println!("  record {id} has expired: never returned, even before a purge")
        }
        other => return Err(format!("expected Expired, got {other:?}").into()),
    }
    let stats = vault.stats()?;
    println!(
        "  stored: {} record(s), {} expired",
        stats.records, stats.expired
    );
    let purge = vault.purge_expired()?;
    println!(
        "  purge: {} record(s) deleted, {} data key(s) destroyed",
        purge.records, purge.keys_destroyed
    );
    println!(
        "  record {longest} still reads: {}",
        vault.get(longest).is_ok()
    );

    clock.advance(90 * DAY);
    let purge = vault.purge_expired()?;
    println!(
        "98 days in: purge deleted {} more record(s) and {} key(s); {} record(s) left",
        purge.records,
        purge.keys_destroyed,
        vault.stats()?.records
    );
    Ok(())
}
