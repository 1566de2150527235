//! The plaintext inside a sealed audit entry (FORMAT.md §11).
//!
//! Version 2 (written now) starts with `0xFF 0x02`; version 1, which
//! listed every record id, is still read. No version-1 body can start with
//! `0xFF`: its first byte opens the actor name's varint length, and
//! bincode's varints never begin with 255.

use serde::{Deserialize, Serialize};

use super::{config, from_millis};
use crate::audit::{
    AUDIT_MAX_LISTED_RECORDS, Actor, AuditAction, AuditEntry, AuditOutcome, AuditQuery, Event,
    RecordSummary,
};
use crate::record::RecordId;

/// The first bytes of a version-2 body.
const V2_PREFIX: [u8; 2] = [0xFF, 2];

/// Every string field (actor, purpose, error text, the query's tag and
/// model) is cut to this many bytes, so an entry stays bounded whatever
/// the caller passed.
pub(crate) const MAX_TEXT_BYTES: usize = 4096;

/// The general decode limit is charged 8 bytes per integer, so a
/// version-1 body naming more than about 4 M ids went past it and read as
/// tampered. Those bodies were sealed by a key holder and are already in
/// memory; this budget, used only for version-1 bodies large enough to
/// need it, lets them decode and verify again.
const V1_LARGE_LIMIT: usize = 1 << 30;

/// `S` is `&str` when writing (no copies), `String` when reading.
#[derive(Serialize, Deserialize)]
struct BodyV2<S> {
    actor: S,
    purpose: Option<S>,
    action: u8,
    records: WireRecords,
    target_tag: Option<[u8; 16]>,
    count: u64,
    query: Option<WireQuery<S>>,
    /// `None` when the call succeeded; else its error text.
    error: Option<S>,
}

/// Record ids: listed as runs of consecutive ids, or summarized.
#[derive(Serialize, Deserialize)]
enum WireRecords {
    /// (first id, how many consecutive ids from it), in the order named.
    Listed(Vec<(u64, u64)>),
    Summary {
        count: u64,
        lowest: u64,
        highest: u64,
        digest: [u8; 32],
    },
}

#[derive(Serialize, Deserialize)]
struct WireQuery<S> {
    since_ms: Option<i64>,
    until_ms: Option<i64>,
    tag: Option<S>,
    model: Option<S>,
    subject: Option<[u8; 16]>,
    conversation: Option<[u8; 16]>,
    consented_only: bool,
    keep_masked: bool,
}

#[derive(Deserialize)]
struct BodyV1 {
    actor: String,
    purpose: Option<String>,
    action: u8,
    records: Vec<u64>,
    target_tag: Option<[u8; 16]>,
    count: u64,
    error: Option<String>,
}

/// Encodes a version-2 body. Its size is bounded: at most
/// [`AUDIT_MAX_LISTED_RECORDS`] ids and five strings of
/// [`MAX_TEXT_BYTES`], under 700 KiB at worst (every id a run of its own).
pub(crate) fn encode(actor: &Actor, event: &Event, outcome: &AuditOutcome) -> Vec<u8> {
    let records = match event.records.summary() {
        Some(s) => WireRecords::Summary {
            count: s.count,
            lowest: s.lowest.as_u64(),
            highest: s.highest.as_u64(),
            digest: s.digest,
        },
        None => WireRecords::Listed(runs(event.records.listed())),
    };
    let body = BodyV2 {
        actor: bounded(actor.name()),
        purpose: actor.stated_purpose().map(bounded),
        action: event.action.map_or(0, AuditAction::to_wire),
        records,
        target_tag: event.target_tag,
        count: event.count,
        query: event.query.as_ref().map(|q| WireQuery {
            since_ms: q.since_ms,
            until_ms: q.until_ms,
            tag: q.tag.as_deref().map(bounded),
            model: q.model.as_deref().map(bounded),
            subject: q.subject,
            conversation: q.conversation,
            consented_only: q.consented_only,
            keep_masked: q.keep_masked,
        }),
        error: match outcome {
            AuditOutcome::Ok => None,
            AuditOutcome::Failed(e) => Some(bounded(e)),
        },
    };
    let mut out = V2_PREFIX.to_vec();
    #[expect(
        clippy::expect_used,
        reason = "serializing strings, integers and fixed arrays into a Vec has no failure path \
                  (bincode applies its limit only when decoding)"
    )]
    out.extend(bincode::serde::encode_to_vec(&body, config()).expect("audit body encodes"));
    out
}

/// Decodes a body of either version; `None` if it is malformed.
pub(crate) fn decode(bytes: &[u8]) -> Option<AuditEntry> {
    match bytes {
        [0xFF, 2, rest @ ..] => decode_v2(rest),
        [0xFF, ..] => None,
        _ => decode_v1(bytes),
    }
}

fn decode_v2(bytes: &[u8]) -> Option<AuditEntry> {
    let body: BodyV2<String> = whole(
        bincode::serde::decode_from_slice(bytes, config()).ok()?,
        bytes,
    )?;
    let (records, record_summary) = match body.records {
        WireRecords::Listed(runs) => (expand(&runs)?, None),
        WireRecords::Summary {
            count,
            lowest,
            highest,
            digest,
        } => {
            if count == 0 || lowest > highest {
                return None;
            }
            let summary = RecordSummary {
                count,
                lowest: RecordId::from_u64(lowest),
                highest: RecordId::from_u64(highest),
                digest,
            };
            (Vec::new(), Some(summary))
        }
    };
    Some(AuditEntry {
        seq: 0,
        at: std::time::UNIX_EPOCH,
        actor: body.actor,
        purpose: body.purpose,
        action: AuditAction::from_wire(body.action)?,
        records,
        record_summary,
        query: body.query.map(|q| AuditQuery {
            since: q.since_ms.map(from_millis),
            until: q.until_ms.map(from_millis),
            tag: q.tag,
            model: q.model,
            subject_tag: q.subject.as_ref().map(hex),
            conversation_tag: q.conversation.as_ref().map(hex),
            training_consented_only: q.consented_only,
            keep_masked: q.keep_masked,
        }),
        target_tag: body.target_tag.as_ref().map(hex),
        count: body.count,
        outcome: body.error.map_or(AuditOutcome::Ok, AuditOutcome::Failed),
    })
}

fn decode_v1(bytes: &[u8]) -> Option<AuditEntry> {
    // A body of L bytes holds at most L ids, each charged 8 bytes.
    let body: BodyV1 = if bytes.len().saturating_mul(9) <= super::DECODE_LIMIT {
        whole(
            bincode::serde::decode_from_slice(bytes, config()).ok()?,
            bytes,
        )?
    } else {
        let large = bincode::config::standard().with_limit::<V1_LARGE_LIMIT>();
        whole(bincode::serde::decode_from_slice(bytes, large).ok()?, bytes)?
    };
    Some(AuditEntry {
        seq: 0,
        at: std::time::UNIX_EPOCH,
        actor: body.actor,
        purpose: body.purpose,
        action: AuditAction::from_wire(body.action)?,
        records: body.records.into_iter().map(RecordId::from_u64).collect(),
        record_summary: None,
        query: None,
        target_tag: body.target_tag.as_ref().map(hex),
        count: body.count,
        outcome: body.error.map_or(AuditOutcome::Ok, AuditOutcome::Failed),
    })
}

/// The decoded value, if it used every byte (trailing bytes are refused).
fn whole<T>((value, used): (T, usize), bytes: &[u8]) -> Option<T> {
    (used == bytes.len()).then_some(value)
}

/// Consecutive ids folded into (first, count) runs, order kept.
fn runs(ids: &[RecordId]) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for id in ids.iter().map(|id| id.as_u64()) {
        match runs.last_mut() {
            Some((first, n)) if first.checked_add(*n) == Some(id) => *n += 1,
            _ => runs.push((id, 1)),
        }
    }
    runs
}

/// The ids of `runs`; `None` past the listing bound, for an empty or
/// overflowing run: the expansion must stay as bounded as the encoding.
fn expand(runs: &[(u64, u64)]) -> Option<Vec<RecordId>> {
    let mut total: u64 = 0;
    let mut ranges = Vec::with_capacity(runs.len());
    for &(first, n) in runs {
        ranges.push(first..=first.checked_add(n.checked_sub(1)?)?);
        total = total.checked_add(n)?;
    }
    if total > AUDIT_MAX_LISTED_RECORDS as u64 {
        return None;
    }
    Some(
        ranges
            .into_iter()
            .flat_map(|r| r.map(RecordId::from_u64))
            .collect(),
    )
}

/// `text` cut to at most [`MAX_TEXT_BYTES`], on a character boundary.
fn bounded(text: &str) -> &str {
    let mut end = text.len().min(MAX_TEXT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn hex(tag: &[u8; 16]) -> String {
    tag.iter().map(|b| format!("{b:02x}")).collect()
}

/// A query filter as `Event::query` takes it, for tests.
#[cfg(test)]
pub(crate) fn sample_filter() -> crate::audit::QueryFilter {
    crate::audit::QueryFilter {
        since_ms: Some(1_000),
        until_ms: None,
        tag: Some("support".into()),
        model: None,
        subject: Some([0xAB; 16]),
        conversation: None,
        consented_only: true,
        keep_masked: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_of(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

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
        assert_eq!(hex_of(&bytes), AUDIT_KAT);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.actor, "alice");
        assert_eq!(back.purpose.as_deref(), Some("T-9"));
        assert_eq!(back.action, AuditAction::Get);
        assert_eq!(back.records, vec![RecordId::from_u64(5)]);
        assert_eq!((back.record_summary, back.query), (None, None));
        assert_eq!(
            back.outcome,
            AuditOutcome::Failed("record 5 not found".into())
        );
    }

    #[test]
    fn version_1_bodies_still_decode() {
        let bytes: Vec<u8> = (0..AUDIT_KAT_V1.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&AUDIT_KAT_V1[i..i + 2], 16).unwrap())
            .collect();
        let back = decode(&bytes).unwrap();
        assert_eq!(
            (back.actor.as_str(), back.action),
            ("alice", AuditAction::Get)
        );
        assert_eq!(back.records, vec![RecordId::from_u64(5)]);
        assert_eq!(back.count, 1);
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode(&trailing).is_none());
        assert!(decode(&[0xFF, 3, 0]).is_none(), "unknown body version");
    }

    /// The entry a `query` of millions of records writes: bounded, and it
    /// decodes (a version-1 body of these ids was past the decode limit
    /// and read as tampered).
    #[test]
    fn an_entry_naming_millions_of_ids_stays_small_and_decodes() {
        let n: u64 = 4_500_000;
        // Every other id: no run to fold them into.
        let event = Event::new(AuditAction::Query)
            .records((0..n).map(|i| RecordId::from_u64(2 * i + 1)))
            .count(n);
        let bytes = encode(&Actor::default(), &event, &AuditOutcome::Ok);
        assert!(bytes.len() < 200, "{} bytes", bytes.len());
        let back = decode(&bytes).unwrap();
        let summary = back.record_summary.unwrap();
        assert_eq!(
            (summary.count, summary.lowest, summary.highest),
            (n, RecordId::from_u64(1), RecordId::from_u64(2 * n - 1))
        );
        assert!(back.records.is_empty());
        let ids: Vec<RecordId> = (0..n).map(|i| RecordId::from_u64(2 * i + 1)).collect();
        assert!(summary.matches(&ids));
    }

    /// A version-1 entry that named more ids than the general decode limit
    /// allows verifies again.
    #[test]
    fn a_version_1_body_past_the_decode_limit_decodes() {
        #[derive(Serialize)]
        struct V1<'a> {
            actor: &'a str,
            purpose: Option<&'a str>,
            action: u8,
            records: Vec<u64>,
            target_tag: Option<[u8; 16]>,
            count: u64,
            error: Option<&'a str>,
        }
        let n: u64 = 4_200_000;
        let body = V1 {
            actor: "default",
            purpose: None,
            action: AuditAction::Query.to_wire(),
            records: (1..=n).collect(),
            target_tag: None,
            count: n,
            error: None,
        };
        let bytes = bincode::serde::encode_to_vec(&body, config()).unwrap();
        drop(body);
        let back = decode(&bytes).expect("decodes");
        assert_eq!(back.records.len() as u64, n);
        assert_eq!(back.records.last(), Some(&RecordId::from_u64(n)));
    }

    #[test]
    fn listed_ids_keep_their_order_and_fold_into_runs() {
        let order = [7u64, 8, 9, 3, 4, 100, 5];
        let event = Event::new(AuditAction::Conversation)
            .records(order.map(RecordId::from_u64))
            .query(sample_filter());
        let bytes = encode(&Actor::default(), &event, &AuditOutcome::Ok);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.records, order.map(RecordId::from_u64).to_vec());
        let q = back.query.unwrap();
        assert_eq!(q.since, Some(from_millis(1_000)));
        assert_eq!(q.tag.as_deref(), Some("support"));
        assert_eq!(q.subject_tag, Some("ab".repeat(16)));
        assert!(q.training_consented_only && !q.keep_masked);
        // 4 runs: (7,3) (3,2) (100,1) (5,1).
        assert_eq!(runs(&back.records).len(), 4);
    }

    /// The largest body an entry can have: 65,536 ids that fold into no
    /// run, as large as ids get, and every string at its cap.
    #[test]
    fn the_largest_body_stays_under_700_kib_and_decodes() {
        let long = "x".repeat(10 * MAX_TEXT_BYTES);
        let mut filter = sample_filter();
        (filter.tag, filter.model) = (Some(long.clone()), Some(long.clone()));
        let event = Event::new(AuditAction::Query)
            .records(
                (0..AUDIT_MAX_LISTED_RECORDS as u64).map(|i| RecordId::from_u64(u64::MAX - 2 * i)),
            )
            .query(filter)
            .count(u64::MAX);
        let actor = Actor::new(long.clone()).purpose(long.clone());
        let bytes = encode(&actor, &event, &AuditOutcome::Failed(long));
        assert!(bytes.len() < 700 << 10, "{} bytes", bytes.len());
        let back = decode(&bytes).unwrap();
        assert_eq!(back.records.len(), AUDIT_MAX_LISTED_RECORDS);
        assert!(back.record_summary.is_none());
    }

    #[test]
    fn long_strings_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_TEXT_BYTES); // 2 bytes each
        let actor = Actor::new(long.clone()).purpose(long.clone());
        let bytes = encode(
            &actor,
            &Event::new(AuditAction::Put),
            &AuditOutcome::Failed(long),
        );
        assert!(bytes.len() < 4 * MAX_TEXT_BYTES);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.actor.len(), MAX_TEXT_BYTES);
        assert!(back.actor.chars().all(|c| c == 'é'));
    }

    #[test]
    fn listed_bodies_past_the_bound_or_with_bad_runs_are_refused() {
        let wire = |runs: Vec<(u64, u64)>| {
            let body = BodyV2::<&str> {
                actor: "",
                purpose: None,
                action: AuditAction::Get.to_wire(),
                records: WireRecords::Listed(runs),
                target_tag: None,
                count: 0,
                query: None,
                error: None,
            };
            let mut out = V2_PREFIX.to_vec();
            out.extend(bincode::serde::encode_to_vec(&body, config()).unwrap());
            out
        };
        assert!(decode(&wire(vec![(1, 3)])).is_some());
        let bound = AUDIT_MAX_LISTED_RECORDS as u64;
        assert!(decode(&wire(vec![(1, bound)])).is_some());
        assert!(decode(&wire(vec![(1, bound + 1)])).is_none());
        assert!(decode(&wire(vec![(1, u64::MAX)])).is_none());
        assert!(decode(&wire(vec![(u64::MAX, 2)])).is_none());
        let top = decode(&wire(vec![(u64::MAX - 1, 2)])).unwrap();
        assert_eq!(top.records.last(), Some(&RecordId::from_u64(u64::MAX)));
        assert!(decode(&wire(vec![(5, 0)])).is_none());
    }

    // ff 02 (version 2) | alice | Some "T-9" | Get (6) | Listed [(5, 1)] |
    // no target | count 1 | no query | Some error text.
    const AUDIT_KAT: &str =
        "ff0205616c6963650103542d39060001050100010001127265636f72642035206e6f7420666f756e64";

    // Version 1: alice | Some "T-9" | Get (6) | [5] | no target | count 1 |
    // Some error text.
    const AUDIT_KAT_V1: &str =
        "05616c6963650103542d39060105000101127265636f72642035206e6f7420666f756e64";
}
