//! The built-in detection rules: for each kind, a regex that finds
//! candidates and a check that accepts, trims or rejects each one.
//!
//! Regexes here stay within what the lazy DFA of the `regex` crate runs
//! fast: ASCII word boundaries `(?-u:\b)` only (a Unicode `\b` would force
//! the slow engine on non-ASCII text), and no look-around; context such as
//! "not part of a longer dotted number" is checked in code instead.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use zeroize::Zeroizing;

use super::PiiKind;
use super::checks::{
    after, before, continues_number, extends_number, iban_valid, is_word, luhn, parse_digits,
    previous_word, ssn_valid,
};
use super::scan::Window;

/// Accepts a candidate match (possibly narrowing it) or rejects it.
pub(crate) type Check = fn(&str, Range<usize>) -> Option<Range<usize>>;

/// One built-in rule.
pub(crate) struct BuiltIn {
    pub(crate) kind: PiiKind,
    pub(crate) pattern: String,
    pub(crate) check: Check,
    /// For a rule whose regex starts with no literal the engine can search
    /// for (a digit, any capital letter): the longest match in bytes. Such
    /// rules run together under one locator (see `scan.rs`); the others,
    /// led by a literal (`@`, `sk-`, `://`), each scan on their own.
    pub(crate) window: Option<Window>,
}

/// Every built-in rule, in no particular order (overlaps are resolved
/// after all rules ran).
pub(crate) fn built_in() -> Vec<BuiltIn> {
    use PiiKind::*;
    let alone = |kind, pattern: &str, check| BuiltIn {
        kind,
        pattern: pattern.to_owned(),
        check,
        window: None,
    };
    let located = |kind, pattern: &str, check, window| BuiltIn {
        window: Some(window),
        ..alone(kind, pattern, check)
    };
    let digit = |b: u8| b.is_ascii_digit();
    let window = |longest, starts, needs| Window {
        longest,
        starts,
        needs,
    };
    vec![
        alone(Email, EMAIL, check_email),
        alone(Phone, PHONE_INTERNATIONAL, check_phone_international),
        located(
            Phone,
            PHONE_NANP,
            check_phone_national,
            window(24, |b| matches!(b, b'+' | b'(' | b'1'..=b'9'), b" .-"),
        ),
        alone(Phone, PHONE_TRUNK, check_phone_trunk),
        located(
            PaymentCard,
            CARD,
            check_card,
            window(40, |b| (b'2'..=b'6').contains(&b), b""),
        ),
        located(
            Iban,
            IBAN,
            check_iban,
            window(64, |b| b.is_ascii_uppercase(), b""),
        ),
        located(Ssn, SSN, check_ssn, window(11, digit, b"-")),
        located(IpAddress, IPV4, check_ipv4, window(15, digit, b".")),
        alone(IpAddress, IPV6, check_ipv6),
        alone(Secret, TOKEN_PREFIXED, check_token),
        alone(Secret, PRIVATE_KEY, accept),
        alone(Secret, JWT, check_word_end),
        alone(Secret, &assignment_pattern(), check_assignment),
        alone(Secret, BEARER, check_bearer),
        alone(CredentialUrl, CREDENTIAL_URL, check_url),
    ]
}

// --- e-mail ---------------------------------------------------------------

const EMAIL: &str = r"[A-Za-z0-9][A-Za-z0-9._%+'-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}";

fn check_email(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let local = &text[r.start..text[r.clone()].find('@')? + r.start];
    let clean = !local.ends_with('.') && !local.contains("..");
    let ends =
        !matches!(text.as_bytes().get(r.end), Some(b) if is_word(*b) || *b == b'-' || *b == b'@');
    (clean && ends).then_some(r)
}

// --- phone ----------------------------------------------------------------

/// `+` country code, then up to six groups split by space, dot or dash;
/// one group may be a bracketed area or trunk code (`+44 (0)20 …`).
const PHONE_INTERNATIONAL: &str = r"\+[1-9][0-9]{0,3}(?:[ .-]?(?:\([0-9]{1,4}\)|[0-9]{1,5})){1,6}";

/// North American numbering plan: `(415) 555-2671`, `415-555-2671`,
/// `415.555.2671`, `1-800-555-0199`. Area code and exchange start 2–9;
/// no area code has 9 as its middle digit.
const PHONE_NANP: &str =
    r"(?:\+?1[ .-]?)?(?:\([2-9][0-8][0-9]\) ?|[2-9][0-8][0-9][ .-])[2-9][0-9]{2}[ .-][0-9]{4}";

/// National numbers with a trunk `0`: `020 7946 0958`, `0161 496 0000`,
/// `(030) 12345678`, `07700 900123`, and the French `06 12 34 56 78`.
const PHONE_TRUNK: &str = r"(?:\(0[1-9][0-9]{1,3}\)|0[1-9][0-9]{1,3})(?:[ -][0-9]{3,8}){1,2}|0[1-9](?: [0-9]{2}){4}|0[1-9](?:\.[0-9]{2}){4}";

/// A phone number preceded or followed by one of these and a digit is part
/// of something longer (a date, a list of numbers, a timestamp).
const PHONE_SEPARATORS: &[u8] = b" .-/:";

fn digit_count(s: &str) -> usize {
    s.bytes().filter(u8::is_ascii_digit).count()
}

fn phone_context_ok(text: &str, r: &Range<usize>) -> bool {
    !extends_number(text, r.start, PHONE_SEPARATORS)
        && !matches!(before(text, r.start), Some(b'+' | b'.'))
        && !continues_number(text, r.end, PHONE_SEPARATORS)
}

fn check_phone_international(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let s = &text[r.clone()];
    // A bracketed trunk zero is dialled only nationally: not counted.
    let digits = digit_count(s) - usize::from(s.contains("(0)"));
    ((7..=15).contains(&digits) && phone_context_ok(text, &r)).then_some(r)
}

fn check_phone_national(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    phone_context_ok(text, &r).then_some(r)
}

fn check_phone_trunk(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let digits = digit_count(&text[r.clone()]);
    ((9..=12).contains(&digits) && phone_context_ok(text, &r)).then_some(r)
}

// --- payment card ---------------------------------------------------------

/// 13–19 digits in one run, or groups of 3–6 after a first group of 4.
const CARD: &str = r"(?-u:\b)(?:[0-9]{13,19}|[0-9]{4}(?:[ -][0-9]{3,6}){2,4})(?-u:\b)";

/// Accepts the longest prefix of whole groups that is 13–19 digits long,
/// uses one separator throughout, starts with a major-network digit (2–6)
/// and passes Luhn: `4111 1111 1111 1111 2024` yields the card alone.
fn check_card(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let s = &text[r.clone()];
    if extends_number(text, r.start, b".,-") || !matches!(s.as_bytes().first(), Some(b'2'..=b'6')) {
        return None;
    }
    let mut separators = s.bytes().filter(|b| !b.is_ascii_digit());
    if let Some(first) = separators.next()
        && separators.any(|b| b != first)
    {
        return None;
    }
    let mut end = s.len();
    loop {
        let digits = digits_of(&s[..end]);
        if digits.len() < 13 {
            return None;
        }
        if digits.len() <= 19 && luhn(&digits) {
            let end = r.start + end;
            return (!continues_number(text, end, b".,")).then_some(r.start..end);
        }
        end = s[..end].rfind([' ', '-'])?;
    }
}

/// The ASCII digits of `s` (most of a card number) in a buffer wiped on
/// drop, allocated at its final size so that no reallocation frees an
/// unwiped copy.
fn digits_of(s: &str) -> Zeroizing<Vec<u8>> {
    let mut digits = Zeroizing::new(Vec::with_capacity(s.len()));
    digits.extend(s.bytes().filter(u8::is_ascii_digit));
    digits
}

// --- IBAN -----------------------------------------------------------------

/// Country code, check digits, then 11–30 letters or digits, optionally
/// in space-separated groups. The country's length decides where it ends.
const IBAN: &str = r"(?-u:\b)[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}";

fn check_iban(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let s = &text[r.clone()];
    let want = super::checks::iban_length(&s.as_bytes()[..2])?;
    let (compact, end) = compact_iban(s, want);
    let end = r.start + end;
    let whole = compact.len() == want && !continues_number(text, end, b"");
    (whole && iban_valid(&compact)).then_some(r.start..end)
}

/// The first `want` bytes of `s` other than spaces (an account number) in
/// a buffer wiped on drop and never reallocated, and where in `s` they end
/// (0 if `s` has fewer).
fn compact_iban(s: &str, want: usize) -> (Zeroizing<Vec<u8>>, usize) {
    let mut compact = Zeroizing::new(Vec::with_capacity(want));
    for (i, b) in s.bytes().enumerate() {
        if b != b' ' {
            compact.push(b);
            if compact.len() == want {
                return (compact, i + 1);
            }
        }
    }
    (compact, 0)
}

// --- SSN ------------------------------------------------------------------

const SSN: &str = r"(?-u:\b)[0-9]{3}-[0-9]{2}-[0-9]{4}(?-u:\b)";

fn check_ssn(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let b = text[r.clone()].as_bytes();
    let valid = ssn_valid(
        parse_digits(&b[..3])?,
        parse_digits(&b[4..6])?,
        parse_digits(&b[7..])?,
    );
    let alone = !extends_number(text, r.start, b"-./") && !continues_number(text, r.end, b"-./");
    (valid && alone).then_some(r)
}

// --- IP addresses ---------------------------------------------------------

const IPV4: &str = r"(?-u:\b)[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(?-u:\b)";

/// Words that announce a version, build or section number rather than an
/// address.
const VERSION_WORDS: &[&str] = &[
    "version",
    "ver",
    "v",
    "release",
    "build",
    "firmware",
    "driver",
    "section",
    "chapter",
    "clause",
    "paragraph",
    "figure",
    "table",
    "step",
    "rule",
];

fn check_ipv4(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let valid = text[r.clone()].parse::<Ipv4Addr>().is_ok();
    // Not one part of a longer dotted name or number (`a.1.2.3.4`, `1.2.3.4.x`).
    let dotted_before = matches!(before(text, r.start), Some(b) if is_word(b) || b == b'.');
    let dotted_after = match after(text, r.end) {
        (Some(b), _) if is_word(b) => true,
        (Some(b'.'), Some(b)) => is_word(b),
        _ => false,
    };
    let alone = !dotted_before && !dotted_after;
    let version = VERSION_WORDS.contains(&previous_word(text, r.start).as_str());
    (valid && alone && !version).then_some(r)
}

/// Hex groups and colons, with an optional dotted IPv4 tail; `std` parses
/// the candidate to decide.
const IPV6: &str =
    r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})?";

fn check_ipv6(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let bytes = text.as_bytes();
    let mut end = r.end;
    // A colon that ends a sentence (`at ::1: ok`) is not part of it.
    if end - r.start > 2 && bytes[end - 1] == b':' && bytes[end - 2] != b':' {
        end -= 1;
    }
    let s = &text[r.start..end];
    let valid = s.bytes().any(|b| b.is_ascii_hexdigit()) && s.parse::<Ipv6Addr>().is_ok();
    let starts_alone =
        !matches!(before(text, r.start), Some(b) if is_word(b) || b == b':' || b == b'.');
    // Not followed by more of a word, or by `:` and more groups (a
    // fingerprint or MAC address with more than eight groups).
    let ends_alone = match (bytes.get(end), bytes.get(end + 1)) {
        (Some(b), _) if is_word(*b) => false,
        (Some(b':'), Some(b)) => !(b.is_ascii_hexdigit() || *b == b':'),
        _ => true,
    };
    (valid && starts_alone && ends_alone).then_some(r.start..end)
}

// --- secrets --------------------------------------------------------------

/// Keys recognised by their vendor prefix: OpenAI and Anthropic `sk-`,
/// AWS `AKIA`/`ASIA`, GitHub `ghp_` `gho_` `ghs_` `ghu_` `ghr_` and
/// `github_pat_`, Slack `xox?-`, Stripe `sk_live_`/`rk_test_` …, Google
/// `AIza`.
const TOKEN_PREFIXED: &str = concat!(
    r"(?-u:\b)(?:",
    r"sk-[A-Za-z0-9_-]{20,}",
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}",
    r"|gh[pousr]_[A-Za-z0-9]{36,251}",
    r"|github_pat_[A-Za-z0-9_]{22,255}",
    r"|xox[abprs]-[A-Za-z0-9-]{10,}",
    r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}",
    r"|AIza[0-9A-Za-z_-]{35}",
    r")"
);

fn check_token(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let s = &text[r.clone()];
    // `sk-` also starts hyphenated words; a key has digits and letters.
    let keyish = !s.starts_with("sk-")
        || (s.bytes().any(|b| b.is_ascii_digit()) && s.bytes().any(|b| b.is_ascii_alphabetic()));
    (keyish && !matches!(text.as_bytes().get(r.end), Some(b) if is_word(*b))).then_some(r)
}

/// A PEM private key block through its END line; if the END line is
/// missing (a pasted fragment), the header and the base64 lines after it.
const PRIVATE_KEY: &str = r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----|(?:\r?\n[A-Za-z0-9+/=]+)+)";

fn accept(_: &str, r: Range<usize>) -> Option<Range<usize>> {
    Some(r)
}

/// Three base64url segments, the header starting `eyJ` (`{"`).
const JWT: &str = r"(?-u:\b)eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{4,}";

fn check_word_end(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    (!matches!(text.as_bytes().get(r.end), Some(b) if is_word(*b) || *b == b'-')).then_some(r)
}

/// Key names whose value is a secret, written in lower case; each is
/// matched in lower case, upper case and capitalised (`password`,
/// `PASSWORD`, `Password`), as a prefix such as `DB_` or `client.`
/// allows, or as the tail of a camelCase name (`dbPassword`).
const SECRET_NAMES: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "secret_key",
    "secret-key",
    "token",
    "api_key",
    "api-key",
    "apikey",
    "access_key",
    "private_key",
];

/// Names in camelCase that the three casings above do not produce.
const SECRET_NAMES_CAMEL: &[&str] = &["apiKey", "ApiKey", "secretKey", "accessKey", "privateKey"];

/// `password=…`, `DB_PASSWORD: "…"`, `"api_key": "…"`, `token=…`: a key
/// name, `=` or `:`, and a value, quoted or not. The names are literals so
/// that the regex engine can search for them directly.
fn assignment_pattern() -> String {
    let mut names: Vec<String> = SECRET_NAMES
        .iter()
        .flat_map(|n| {
            let mut cap = n.to_string();
            cap[..1].make_ascii_uppercase();
            [n.to_string(), n.to_ascii_uppercase(), cap]
        })
        .chain(SECRET_NAMES_CAMEL.iter().map(|n| n.to_string()))
        .collect();
    // Longest first, so `secret_key` is preferred over `secret`.
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    let names: Vec<String> = names.iter().map(|n| regex::escape(n)).collect();
    format!(
        r#"(?:{})["']?[ \t]*[:=][ \t]*(?:"[^"\r\n]{{1,256}}"|'[^'\r\n]{{1,256}}'|[^\s"',;<>(){{}}\[\]]{{1,256}})"#,
        names.join("|")
    )
}

/// Narrows an assignment to its value, the part that is secret. A value
/// after `:` that is one short lower-case word (`token: usage`) is prose.
fn check_assignment(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let s = &text[r.clone()];
    // The name stands alone, ends a prefixed name (`DB_PASSWORD`,
    // `x-api-key`), or is the capitalised tail of a camelCase one.
    let name_ok = match before(text, r.start) {
        None => true,
        Some(b'_' | b'.' | b'-') => true,
        Some(b) if b.is_ascii_lowercase() || b.is_ascii_digit() => {
            s.as_bytes()[0].is_ascii_uppercase()
        }
        Some(b) => !is_word(b),
    };
    if !name_ok {
        return None;
    }
    let sep = s.find([':', '='])?;
    let rest = &s[sep + 1..];
    let value_at = sep + 1 + (rest.len() - rest.trim_start_matches([' ', '\t']).len());
    let mut value = r.start + value_at..r.end;
    let quoted = matches!(text.as_bytes()[value.start], b'"' | b'\'');
    if quoted {
        value = value.start + 1..value.end - 1;
    }
    if !quoted {
        value.end = value.start + query_value_len(&text[value.clone()]);
    }
    let v = &text[value.clone()];
    if v.trim().is_empty() || v.starts_with('<') {
        return None;
    }
    if !quoted {
        let word = v.trim_end_matches(['.', '!', '?']);
        let prose = s.as_bytes()[sep] == b':'
            && word.len() < 10
            && word.bytes().all(|b| b.is_ascii_lowercase());
        if prose || v.len() < 3 || matches!(v, "null" | "none" | "true" | "false") {
            return None;
        }
    }
    Some(value)
}

/// The length of an unquoted value up to the next query parameter
/// (`token=abc&grant_type=x` ends at `&`); an `&` not followed by
/// `name=` is part of the value (`Tr0ub4dor&3`).
fn query_value_len(v: &str) -> usize {
    v.match_indices('&')
        .find(|(i, _)| {
            let name = &v[i + 1..];
            let len = name.bytes().take_while(|b| is_word(*b)).count();
            len > 0 && name.as_bytes().get(len) == Some(&b'=')
        })
        .map_or(v.len(), |(i, _)| i)
}

/// `Bearer <token>` as in an Authorization header.
const BEARER: &str = r"(?-u:\b)(?i-u:bearer)[ \t]+[A-Za-z0-9._~+/-]{16,}=*";

fn check_bearer(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let s = &text[r.clone()];
    let start = r.start + s.find([' ', '\t'])?;
    let token = &text[start..r.end];
    let start = start + (token.len() - token.trim_start().len());
    check_word_end(text, start..r.end)
}

// --- credential URL -------------------------------------------------------

/// `scheme://user:password@host…` through the end of the URL.
const CREDENTIAL_URL: &str =
    r#"(?-u:\b)[A-Za-z][A-Za-z0-9+.-]{1,30}://[^\s/?#@:"'<>]*:[^\s/?#@"'<>]+@[^\s"'<>]+"#;

/// Drops punctuation that ends the sentence rather than the URL.
fn check_url(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let s = &text[r.clone()];
    let trimmed = s.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '}']);
    let end = r.start + trimmed.len();
    let host = trimmed.rsplit('@').next().unwrap_or_default();
    (!host.is_empty()).then_some(r.start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::pii::Detector;

    #[test]
    fn every_pattern_compiles() {
        for rule in built_in() {
            assert!(regex::Regex::new(&rule.pattern).is_ok(), "{}", rule.pattern);
        }
    }

    /// The one finding in `text`, as (kind, matched text).
    fn one(text: &str) -> Option<(PiiKind, &str)> {
        let found = Detector::default().find(text);
        assert!(found.len() <= 1, "{text:?}: {found:?}");
        found
            .first()
            .map(|f| (f.kind.clone(), &text[f.range.clone()]))
    }

    fn assert_finds(kind: PiiKind, cases: &[(&str, &str)]) {
        for (text, want) in cases {
            assert_eq!(one(text), Some((kind.clone(), *want)), "{text:?}");
        }
    }

    fn assert_none(cases: &[&str]) {
        for text in cases {
            assert_eq!(Detector::default().find(text), vec![], "{text:?}");
        }
    }

    #[test]
    fn ipv4_edges() {
        assert_finds(
            PiiKind::IpAddress,
            &[
                ("host 192.168.1.1.", "192.168.1.1"),
                ("at 0.0.0.0 and", "0.0.0.0"),
                ("255.255.255.255", "255.255.255.255"),
                ("(10.0.0.1)", "10.0.0.1"),
                ("10.0.0.1:8080", "10.0.0.1"),
                ("net 10.0.0.0/8", "10.0.0.0"),
            ],
        );
        assert_none(&[
            "256.1.1.1",
            "1.2.3.4.5",
            "a.1.2.3.4",
            "version 1.2.3.4",
            "Windows 10.0.19041.1",
            "01.02.03.04",
            "v1.2.3.4",
            "1.2.3",
            "OID 1.3.6.1.4.1.311",
        ]);
    }

    #[test]
    fn ipv6_edges() {
        assert_finds(
            PiiKind::IpAddress,
            &[
                ("at 2001:db8::1: ok", "2001:db8::1"),
                ("[::1]:443", "::1"),
                (
                    "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
                    "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
                ),
                ("mapped ::ffff:192.0.2.1 here", "::ffff:192.0.2.1"),
                ("fe80::1%eth0", "fe80::1"),
            ],
        );
        assert_none(&[
            "std::vec::Vec",
            "at 12:30:45",
            "mac 00:1A:2B:3C:4D:5E",
            "16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48",
            "a :: b",
            "2001:db8:::1",
        ]);
    }

    #[test]
    fn cards_phones_ssn_iban() {
        assert_finds(
            PiiKind::PaymentCard,
            &[
                ("card 4111 1111 1111 1111 exp", "4111 1111 1111 1111"),
                ("4111-1111-1111-1111", "4111-1111-1111-1111"),
                ("amex 378282246310005.", "378282246310005"),
                ("3782 822463 10005", "3782 822463 10005"),
                ("4111 1111 1111 1111 2024", "4111 1111 1111 1111"),
            ],
        );
        assert_finds(
            PiiKind::Phone,
            &[
                ("call +14155552671", "+14155552671"),
                ("+44 20 7946 0958.", "+44 20 7946 0958"),
                ("(415) 555-2671", "(415) 555-2671"),
                ("415-555-2671", "415-555-2671"),
                ("020 7946 0958", "020 7946 0958"),
                ("06 12 34 56 78", "06 12 34 56 78"),
            ],
        );
        assert_finds(PiiKind::Ssn, &[("ssn 123-45-6789.", "123-45-6789")]);
        assert_finds(
            PiiKind::Iban,
            &[
                ("DE89 3704 0044 0532 0130 00", "DE89 3704 0044 0532 0130 00"),
                ("iban: GB82WEST12345698765432,", "GB82WEST12345698765432"),
                ("BE68 5390 0754 7034 CODE", "BE68 5390 0754 7034"),
            ],
        );
        assert_none(&[
            "order 4111 1111 1111 1112",
            "id 1234567890123456",
            "on 2024-01-15 at 12:30:45",
            "666-12-3456 000-12-3456 912-12-3456 123-00-4567 123-45-0000",
            "DE89 3704 0044 0532 0130 01",
            "call 123-456-7890",
            "ISBN 978-3-16-148410-0",
        ]);
    }

    /// A compile-time check: these buffers are of a type that wipes itself
    /// on drop. (Whether freed memory holds a copy cannot be observed
    /// without `unsafe`; sizing each buffer up front is what keeps
    /// reallocation from leaving one.)
    #[test]
    fn card_and_iban_buffers_are_wiped_on_drop() {
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>(_: &T) {}
        let digits = digits_of("4111 1111-1111 1111");
        assert_eq!(digits.as_slice(), b"4111111111111111");
        wiped_on_drop(&digits);
        let (compact, end) = compact_iban("DE89 3704 0044 0532 0130 00 and", 22);
        assert_eq!(compact.as_slice(), b"DE89370400440532013000");
        assert_eq!(end, 27);
        wiped_on_drop(&compact);
        let (short, end) = compact_iban("DE89 3704", 22);
        assert_eq!((short.as_slice(), end), (&b"DE893704"[..], 0));
    }

    #[test]
    fn secrets() {
        assert_finds(
            PiiKind::Secret,
            &[
                ("password=hunter2 ok", "hunter2"),
                ("DB_PASSWORD: \"s3cr3t pw\"", "s3cr3t pw"),
                ("{\"api_key\": \"abc123\"}", "abc123"),
                ("AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
                (
                    "Authorization: Bearer abcdefghijklmnop1234",
                    "abcdefghijklmnop1234",
                ),
            ],
        );
        assert_none(&[
            "the token: usage",
            "max_tokens=256",
            "task-management-system-for-teams",
            "password: <SECRET_1>",
        ]);
    }
}
