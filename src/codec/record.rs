//! The plaintext inside a sealed record (FORMAT.md §6). The known-answer
//! test below fails if the encoding changes.

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::{config, from_millis};
use crate::record::{ConversationId, Message, NewRecord, Record, RecordId, Role, SubjectId};

/// Largest encoded record accepted by `put`.
pub(crate) const MAX_RECORD_BYTES: usize = 16 << 20;
/// Most prompt messages, tags or metadata entries one record may have.
pub(crate) const MAX_ITEMS: usize = 65_536;

/// The fields of a record as they are encoded, in this order.
#[derive(Serialize)]
struct BodyRef<'a> {
    conversation: &'a str,
    subject: Option<&'a str>,
    model: &'a str,
    prompt: Vec<(u8, &'a str)>,
    response: Option<(u8, &'a str)>,
    created_at_ms: i64,
    expires_at_ms: i64,
    training_consent: bool,
    tags: &'a [String],
    meta: &'a [(String, String)],
    masked: bool,
}

#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
struct BodyOwned {
    conversation: String,
    subject: Option<String>,
    model: String,
    prompt: Vec<(u8, String)>,
    response: Option<(u8, String)>,
    created_at_ms: i64,
    expires_at_ms: i64,
    training_consent: bool,
    tags: Vec<String>,
    meta: Vec<(String, String)>,
    masked: bool,
}

/// Why stored plaintext could not become a record. Only reachable with a
/// valid tag, i.e. by someone holding the key.
#[derive(Debug)]
pub(crate) struct DecodeError;

/// Encodes `rec` into a zeroizing buffer that starts with `prefix_len`
/// zero bytes and has room for `suffix_len` more, so that sealing can
/// happen in place without the plaintext ever being copied or reallocated.
pub(crate) fn encode(
    rec: &NewRecord,
    created_at_ms: i64,
    expires_at_ms: i64,
    prefix_len: usize,
    suffix_len: usize,
) -> Result<Zeroizing<Vec<u8>>, EncodeError> {
    let body = BodyRef {
        conversation: rec.conversation.as_str(),
        subject: rec.subject.as_ref().map(SubjectId::as_str),
        model: &rec.model,
        prompt: rec.prompt.iter().map(wire_message).collect(),
        response: rec.response.as_ref().map(wire_message),
        created_at_ms,
        expires_at_ms,
        training_consent: rec.training_consent,
        tags: &rec.tags,
        meta: &rec.meta,
        masked: rec.masked,
    };
    if [rec.prompt.len(), rec.tags.len(), rec.meta.len()]
        .iter()
        .any(|&n| n > MAX_ITEMS)
    {
        return Err(EncodeError);
    }
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(&body, &mut size, config()).map_err(|_| EncodeError)?;
    if size.bytes_written > MAX_RECORD_BYTES {
        return Err(EncodeError);
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(
        prefix_len + size.bytes_written + suffix_len,
    ));
    buf.resize(prefix_len, 0);
    bincode::serde::encode_into_std_write(&body, &mut *buf, config()).map_err(|_| EncodeError)?;
    Ok(buf)
}

/// The record is larger than [`MAX_RECORD_BYTES`] or has more than
/// [`MAX_ITEMS`] messages, tags or metadata entries.
#[derive(Debug)]
pub(crate) struct EncodeError;

/// Decodes the plaintext of record `id`.
pub(crate) fn decode(id: RecordId, plaintext: &[u8]) -> Result<Record, DecodeError> {
    let (mut body, used): (BodyOwned, usize) =
        bincode::serde::decode_from_slice(plaintext, config()).map_err(|_| DecodeError)?;
    if used != plaintext.len() {
        return Err(DecodeError);
    }
    let prompt = body
        .prompt
        .iter_mut()
        .map(take_message)
        .collect::<Option<Vec<_>>>()
        .ok_or(DecodeError)?;
    let response = match body.response.as_mut() {
        Some(m) => Some(take_message(m).ok_or(DecodeError)?),
        None => None,
    };
    Ok(Record {
        id,
        conversation: ConversationId::new(std::mem::take(&mut body.conversation)),
        subject: body.subject.take().map(SubjectId::new),
        model: std::mem::take(&mut body.model),
        prompt,
        response,
        created_at: from_millis(body.created_at_ms),
        expires_at: from_millis(body.expires_at_ms),
        training_consent: body.training_consent,
        tags: std::mem::take(&mut body.tags),
        meta: std::mem::take(&mut body.meta),
        masked: body.masked,
    })
}

fn wire_message(m: &Message) -> (u8, &str) {
    (m.role().to_wire(), m.content())
}

/// Moves the text out of a wire message (no copy of the bytes).
fn take_message(m: &mut (u8, String)) -> Option<Message> {
    let role = Role::from_wire(m.0)?;
    Some(Message::new(role, std::mem::take(&mut m.1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::to_millis;

    pub(crate) fn sample() -> NewRecord {
        NewRecord::new(ConversationId::new("conv-42"))
            .subject(SubjectId::new("user-7"))
            .model("gpt-4o")
            .prompt([Message::system("be brief"), Message::user("hello")])
            .response(Message::assistant("hi"))
            .tag("support")
            .meta("ticket", "T-9")
    }

    #[test]
    fn encoding_known_answer() {
        let buf = encode(&sample(), 1_700_000_000_000, 1_700_003_600_000, 0, 0).unwrap();
        let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, ENCODING_KAT);
    }

    const ENCODING_KAT: &str = "07636f6e762d34320106757365722d37066770742d346f0200086265206272696566010568656c6c6f0102026869fd00d0ca9f17030000fd00ad38a017030000000107737570706f727401067469636b657403542d3900";

    #[test]
    fn round_trip_keeps_every_field() {
        let buf = encode(&sample(), 1_700_000_000_000, 1_700_003_600_000, 3, 16).unwrap();
        assert_eq!(&buf[..3], &[0, 0, 0]);
        let rec = decode(RecordId::from_u64(9), &buf[3..]).unwrap();
        assert_eq!(rec.id(), RecordId::from_u64(9));
        assert_eq!(rec.conversation().as_str(), "conv-42");
        assert_eq!(rec.subject().map(SubjectId::as_str), Some("user-7"));
        assert_eq!(rec.model(), "gpt-4o");
        assert_eq!(rec.prompt().len(), 2);
        assert_eq!(rec.prompt()[1].content(), "hello");
        assert_eq!(rec.prompt()[0].role(), Role::System);
        assert_eq!(rec.response().map(Message::content), Some("hi"));
        assert_eq!(to_millis(rec.created_at()), 1_700_000_000_000);
        assert_eq!(to_millis(rec.expires_at()), 1_700_003_600_000);
        assert_eq!(rec.tags(), ["support"]);
        assert_eq!(rec.meta("ticket"), Some("T-9"));
        assert!(!rec.training_consent());
    }

    #[test]
    fn fail_trailing_bytes_and_bad_role() {
        let buf = encode(&sample(), 1, 2, 0, 0).unwrap();
        let mut longer = buf.to_vec();
        longer.push(0);
        assert!(decode(RecordId::from_u64(1), &longer).is_err());
        assert!(decode(RecordId::from_u64(1), &buf[..buf.len() - 1]).is_err());
        let bad_role = encode(
            &NewRecord::new(ConversationId::new("c")).prompt([Message::user("x")]),
            1,
            2,
            0,
            0,
        )
        .unwrap();
        let mut bad_role = bad_role.to_vec();
        // conversation "c" (len 1 + 1 byte), subject None (1), model "" (1),
        // prompt len (1), then the first role byte.
        let role_at = 2 + 1 + 1 + 1;
        assert_eq!(bad_role[role_at], 1);
        bad_role[role_at] = 9;
        assert!(decode(RecordId::from_u64(1), &bad_role).is_err());
    }

    #[test]
    fn the_largest_accepted_record_still_decodes() {
        // Worst case for the decoder's accounting: every list at its cap,
        // and text filling the rest of the size limit.
        let mut rec = NewRecord::new(ConversationId::new("c"));
        rec.prompt = (0..MAX_ITEMS).map(|_| Message::user("")).collect();
        rec.tags = vec![String::new(); MAX_ITEMS];
        rec.meta = vec![(String::new(), String::new()); MAX_ITEMS];
        let used = encode(&rec, 1, 2, 0, 0).unwrap().len();
        rec.model = "m".repeat(MAX_RECORD_BYTES - used - 4);
        let buf = encode(&rec, 1, 2, 0, 0).unwrap();
        assert!(buf.len() <= MAX_RECORD_BYTES && buf.len() > MAX_RECORD_BYTES - 16);
        let back = decode(RecordId::from_u64(1), &buf).unwrap();
        assert_eq!(back.tags().len(), MAX_ITEMS);
        assert_eq!(back.prompt().len(), MAX_ITEMS);
    }

    #[test]
    fn fail_records_over_the_caps_are_refused_when_stored() {
        let mut rec = NewRecord::new(ConversationId::new("c"));
        rec.model = "m".repeat(MAX_RECORD_BYTES);
        assert!(encode(&rec, 1, 2, 0, 0).is_err());
        let mut rec = NewRecord::new(ConversationId::new("c"));
        rec.tags = vec![String::new(); MAX_ITEMS + 1];
        assert!(encode(&rec, 1, 2, 0, 0).is_err());
    }

    #[test]
    fn fail_huge_length_prefix_is_refused_without_allocating() {
        // A varint length of u64::MAX-ish for the conversation string.
        let bytes = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F];
        assert!(decode(RecordId::from_u64(1), &bytes).is_err());
    }
}
