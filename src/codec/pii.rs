//! The plaintext inside a sealed PII mapping (FORMAT.md §13): the list of
//! (placeholder, value) pairs of one conversation, in creation order.

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::config;
use crate::pii::Mapping;

#[derive(Serialize)]
struct BodyRef<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
struct BodyOwned {
    pairs: Vec<(String, String)>,
}

/// Encodes into a zeroizing buffer with `prefix_len` reserved bytes and
/// room for `suffix_len` more, ready to seal in place.
pub(crate) fn encode(
    mappings: &[Mapping],
    prefix_len: usize,
    suffix_len: usize,
) -> Option<Zeroizing<Vec<u8>>> {
    let body = BodyRef {
        pairs: mappings
            .iter()
            .map(|m| (m.placeholder(), m.value()))
            .collect(),
    };
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(&body, &mut size, config()).ok()?;
    let mut buf = Zeroizing::new(Vec::with_capacity(
        prefix_len + size.bytes_written + suffix_len,
    ));
    buf.resize(prefix_len, 0);
    bincode::serde::encode_into_std_write(&body, &mut *buf, config()).ok()?;
    Some(buf)
}

/// Decodes a mapping list; `None` if malformed.
pub(crate) fn decode(bytes: &[u8]) -> Option<Vec<Mapping>> {
    let (mut body, used): (BodyOwned, usize) =
        bincode::serde::decode_from_slice(bytes, config()).ok()?;
    if used != bytes.len() {
        return None;
    }
    body.pairs
        .iter_mut()
        .map(|(p, v)| Mapping::new(std::mem::take(p), Zeroizing::new(std::mem::take(v))).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_list_known_answer_and_round_trip() {
        let maps = vec![
            Mapping::new("<EMAIL_1>", Zeroizing::new("a@b.co".to_owned())).unwrap(),
            Mapping::new("<PHONE_1>", Zeroizing::new("+1 415 555 2671".to_owned())).unwrap(),
        ];
        let buf = encode(&maps, 0, 0).unwrap();
        let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, PII_KAT);
        let back = decode(&buf).unwrap();
        assert_eq!(back[1].placeholder(), "<PHONE_1>");
        assert_eq!(back[1].value(), "+1 415 555 2671");
        assert!(decode(&buf[..buf.len() - 1]).is_none());
    }

    // 2 pairs | "<EMAIL_1>" "a@b.co" | "<PHONE_1>" "+1 415 555 2671".
    const PII_KAT: &str =
        "02093c454d41494c5f313e066140622e636f093c50484f4e455f313e0f2b3120343135203535352032363731";
}
