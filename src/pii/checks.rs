//! Checksums, number ranges and context tests the detection rules share.
//! Everything here works on ASCII bytes, so a range a check returns stays
//! on the `char` boundaries of the match it was given.

/// Whether a string of ASCII digits passes the Luhn check (ISO/IEC 7812).
/// Any other byte fails.
pub(crate) fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &b) in digits.iter().rev().enumerate() {
        if !b.is_ascii_digit() {
            return false;
        }
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// Whether a compact IBAN (no spaces, upper case) has the length its
/// country prescribes and passes the ISO 13616 mod-97 check.
pub(crate) fn iban_valid(iban: &[u8]) -> bool {
    let Some(country) = iban.get(..2) else {
        return false;
    };
    if iban_length(country) != Some(iban.len()) {
        return false;
    }
    // Move the country code and check digits to the end, read letters as
    // 10..=35, and reduce mod 97 one digit at a time.
    let mut rest = 0u32;
    for &b in iban[4..].iter().chain(&iban[..4]) {
        rest = match b {
            b'0'..=b'9' => (rest * 10 + u32::from(b - b'0')) % 97,
            b'A'..=b'Z' => (rest * 100 + u32::from(b - b'A') + 10) % 97,
            _ => return false,
        };
    }
    rest == 1
}

/// IBAN length by country, from the SWIFT IBAN registry.
pub(crate) fn iban_length(country: &[u8]) -> Option<usize> {
    #[rustfmt::skip]
    const LENGTHS: &[(&[u8; 2], usize)] = &[
        (b"AD", 24), (b"AE", 23), (b"AL", 28), (b"AT", 20), (b"AZ", 28),
        (b"BA", 20), (b"BE", 16), (b"BG", 22), (b"BH", 22), (b"BI", 27),
        (b"BR", 29), (b"BY", 28), (b"CH", 21), (b"CR", 22), (b"CY", 28),
        (b"CZ", 24), (b"DE", 22), (b"DJ", 27), (b"DK", 18), (b"DO", 28),
        (b"EE", 20), (b"EG", 29), (b"ES", 24), (b"FI", 18), (b"FK", 18),
        (b"FO", 18), (b"FR", 27), (b"GB", 22), (b"GE", 22), (b"GI", 23),
        (b"GL", 18), (b"GR", 27), (b"GT", 28), (b"HR", 21), (b"HU", 28),
        (b"IE", 22), (b"IL", 23), (b"IQ", 23), (b"IS", 26), (b"IT", 27),
        (b"JO", 30), (b"KW", 30), (b"KZ", 20), (b"LB", 28), (b"LC", 32),
        (b"LI", 21), (b"LT", 20), (b"LU", 20), (b"LV", 21), (b"LY", 25),
        (b"MC", 27), (b"MD", 24), (b"ME", 22), (b"MK", 19), (b"MN", 20),
        (b"MR", 27), (b"MT", 31), (b"MU", 30), (b"NI", 28), (b"NL", 18),
        (b"NO", 15), (b"OM", 23), (b"PK", 24), (b"PL", 28), (b"PS", 29),
        (b"PT", 25), (b"QA", 29), (b"RO", 24), (b"RS", 22), (b"RU", 33),
        (b"SA", 24), (b"SC", 31), (b"SD", 18), (b"SE", 24), (b"SI", 19),
        (b"SK", 24), (b"SM", 27), (b"SO", 23), (b"ST", 25), (b"SV", 28),
        (b"TL", 23), (b"TN", 24), (b"TR", 26), (b"UA", 29), (b"VA", 22),
        (b"VG", 24), (b"XK", 20), (b"YE", 30),
    ];
    LENGTHS
        .iter()
        .find(|(code, _)| code.as_slice() == country)
        .map(|&(_, len)| len)
}

/// Whether `area-group-serial` is a number the SSA can issue: area not
/// 000, 666 or 900–999; group not 00; serial not 0000.
pub(crate) fn ssn_valid(area: u16, group: u16, serial: u16) -> bool {
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// Parses a short run of ASCII digits; `None` for anything else.
pub(crate) fn parse_digits(digits: &[u8]) -> Option<u16> {
    if digits.is_empty() || digits.len() > 4 {
        return None;
    }
    digits.iter().try_fold(0u16, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u16::from(b - b'0'))
    })
}

/// Whether `b` continues an ASCII word (letter, digit or underscore).
pub(crate) fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The byte before `start`, if any.
pub(crate) fn before(text: &str, start: usize) -> Option<u8> {
    start
        .checked_sub(1)
        .and_then(|i| text.as_bytes().get(i).copied())
}

/// The byte at `end` and the one after it, if any.
pub(crate) fn after(text: &str, end: usize) -> (Option<u8>, Option<u8>) {
    let bytes = text.as_bytes();
    (bytes.get(end).copied(), bytes.get(end + 1).copied())
}

/// Whether a number ending at `end` continues past it: another digit or
/// word byte, or a separator followed by a digit (`1.2.3.4.5`, `555-1234-9`).
pub(crate) fn continues_number(text: &str, end: usize, separators: &[u8]) -> bool {
    match after(text, end) {
        (Some(b), _) if is_word(b) => true,
        (Some(sep), Some(d)) => separators.contains(&sep) && d.is_ascii_digit(),
        _ => false,
    }
}

/// Whether a number starting at `start` continues a number before it: a
/// word byte, or a separator that follows a digit.
pub(crate) fn extends_number(text: &str, start: usize, separators: &[u8]) -> bool {
    match before(text, start) {
        Some(b) if is_word(b) => true,
        Some(sep) if separators.contains(&sep) => {
            before(text, start - 1).is_some_and(|d| d.is_ascii_digit())
        }
        _ => false,
    }
}

/// The ASCII word just before `start`, skipping spaces and a few joining
/// characters (`version 1.2.3.4`, `build: 10.0.0.1`), lower-cased.
pub(crate) fn previous_word(text: &str, start: usize) -> String {
    let bytes = &text.as_bytes()[..start];
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b':' | b'=' | b'#'))
        .map_or(0, |i| i + 1);
    let begin = bytes[..end]
        .iter()
        .rposition(|b| !b.is_ascii_alphabetic())
        .map_or(0, |i| i + 1);
    String::from_utf8_lossy(&bytes[begin..end]).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_known_numbers() {
        for good in [
            "4111111111111111",
            "5555555555554444",
            "378282246310005",
            "79927398713",
        ] {
            assert!(luhn(good.as_bytes()), "{good}");
        }
        for bad in ["4111111111111112", "79927398710", "", "4111a11111111111"] {
            assert!(!luhn(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn iban_mod97_and_length() {
        for good in [
            "DE89370400440532013000",
            "GB82WEST12345698765432",
            "NL91ABNA0417164300",
            "FR1420041010050500013M02606",
            "NO9386011117947",
            "BE68539007547034",
        ] {
            assert!(iban_valid(good.as_bytes()), "{good}");
        }
        for bad in [
            "DE89370400440532013001", // check digits do not match
            "DE8937040044053201300",  // one character short for DE
            "XX89370400440532013000", // no such country
            "GB82west12345698765432", // lower case is not read
            "DE",
            "",
        ] {
            assert!(!iban_valid(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn ssn_ranges() {
        assert!(ssn_valid(123, 45, 6789));
        assert!(ssn_valid(899, 99, 9999));
        assert!(ssn_valid(1, 1, 1));
        assert!(!ssn_valid(0, 45, 6789));
        assert!(!ssn_valid(666, 45, 6789));
        assert!(!ssn_valid(900, 45, 6789));
        assert!(!ssn_valid(999, 45, 6789));
        assert!(!ssn_valid(123, 0, 6789));
        assert!(!ssn_valid(123, 45, 0));
    }

    #[test]
    fn number_context() {
        let t = "v 1.2.3.4.5 x";
        assert!(continues_number(t, 9, b"."));
        assert!(!continues_number(t, 11, b"."));
        assert!(extends_number(t, 4, b"."));
        assert!(!extends_number(t, 2, b"."));
        assert_eq!(previous_word("see version 1.2", 12), "version");
        assert_eq!(previous_word("build: 10", 7), "build");
        assert_eq!(previous_word("10", 0), "");
    }
}
