//! The plaintext inside a sealed audit entry (FORMAT.md §11).

use serde::{Deserialize, Serialize};

use super::config;
use crate::audit::{Actor, AuditAction, AuditEntry, AuditOutcome, Event};
use crate::record::RecordId;

#[derive(Serialize)]
struct BodyRef<'a> {
    actor: &'a str,
    purpose: Option<&'a str>,
    action: u8,
    records: Vec<u64>,
    target_tag: Option<[u8; 16]>,
    count: u64,
    /// `None` when the call succeeded; else its error text.
    error: Option<&'a str>,
}

#[derive(Deserialize)]
struct BodyOwned {
    actor: String,
    purpose: Option<String>,
    action: u8,
    records: Vec<u64>,
    target_tag: Option<[u8; 16]>,
    count: u64,
    error: Option<String>,
}

pub(crate) fn encode(actor: &Actor, event: &Event, outcome: &AuditOutcome) -> Vec<u8> {
    let body = BodyRef {
        actor: actor.name(),
        purpose: actor.stated_purpose(),
        action: event.action.map_or(0, AuditAction::to_wire),
        records: event.records.iter().map(|r| r.as_u64()).collect(),
        target_tag: event.target_tag,
        count: event.count,
        error: match outcome {
            AuditOutcome::Ok => None,
            AuditOutcome::Failed(e) => Some(e),
        },
    };
    // Only an entry beyond the decode limit could fail; it would then be
    // stored empty and fail to verify rather than vanish.
    bincode::serde::encode_to_vec(&body, config()).unwrap_or_default()
}

pub(crate) fn decode(bytes: &[u8]) -> Option<AuditEntry> {
    let (body, used): (BodyOwned, usize) =
        bincode::serde::decode_from_slice(bytes, config()).ok()?;
    if used != bytes.len() {
        return None;
    }
    Some(AuditEntry {
        seq: 0,
        at: std::time::UNIX_EPOCH,
        actor: body.actor,
        purpose: body.purpose,
        action: AuditAction::from_wire(body.action)?,
        records: body.records.into_iter().map(RecordId::from_u64).collect(),
        target_tag: body
            .target_tag
            .map(|t| t.iter().map(|b| format!("{b:02x}")).collect()),
        count: body.count,
        outcome: body.error.map_or(AuditOutcome::Ok, AuditOutcome::Failed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_body_known_answer_and_round_trip() {
        let actor = Actor::new("alice").purpose("T-9");
        let event = Event::new(AuditAction::Get)
            .records([RecordId::from_u64(5)])
            .count(1);
        let bytes = encode(
            &actor,
            &event,
            &AuditOutcome::Failed("record 5 not found".into()),
        );
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, AUDIT_KAT);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.actor, "alice");
        assert_eq!(back.purpose.as_deref(), Some("T-9"));
        assert_eq!(back.action, AuditAction::Get);
        assert_eq!(back.records, vec![RecordId::from_u64(5)]);
        assert_eq!(
            back.outcome,
            AuditOutcome::Failed("record 5 not found".into())
        );
    }

    // alice | Some "T-9" | Get (6) | [5] | no target | count 1 | Some error text.
    const AUDIT_KAT: &str =
        "05616c6963650103542d39060105000101127265636f72642035206e6f7420666f756e64";
}
