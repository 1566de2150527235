//! Fuzzes one line of the CLI's record JSON (`llmvault import`, `put`
//! from stdin; docs/CLI.md, "Record JSON"): it is refused with a message
//! or becomes a record, never a panic; and a line that parses prints back
//! to JSON that parses to the same record.
//!
//! The CLI is a binary, so its JSON modules are compiled in here from its
//! sources: the code fuzzed is the code the CLI runs.

#![no_main]

#[allow(dead_code)]
#[path = "../../cli/src/fail.rs"]
mod fail;
#[allow(dead_code)]
#[path = "../../cli/src/json.rs"]
mod json;
#[allow(dead_code)]
#[path = "../../cli/src/time.rs"]
mod time;

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;

use json::JsonRecord;

fuzz_target!(|line: &str| {
    let Ok(record) = serde_json::from_str::<JsonRecord>(line) else {
        return;
    };
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    let _ = record.to_new_record(now, None);
    let _ = record.to_new_record(now, Some(Duration::from_secs(86_400)));
    let printed = serde_json::to_string(&record).expect("a parsed record prints");
    let again: JsonRecord = serde_json::from_str(&printed).expect("a printed record parses");
    let reprinted = serde_json::to_string(&again).expect("a parsed record prints");
    assert_eq!(
        printed, reprinted,
        "printing and parsing changed the record"
    );
});
