//! The detector: built-in rules plus the caller's patterns and terms, run
//! over a text, with overlaps resolved.

use std::fmt;
use std::sync::{Arc, LazyLock};

use regex::Regex;

use super::kind::{Finding, PiiKind};
use super::rules;
use super::scan::{Matcher, Rule, Rules};
use crate::{Error, Result};

/// Finds personal data in text.
///
/// `Detector::default()` runs every built-in rule; [`Detector::builder`]
/// adds patterns and terms or switches kinds off. Cloning is cheap (the
/// compiled rules are shared), and a detector can be used from many
/// threads at once.
///
/// Every rule is a regex of the `regex` crate, so a scan takes time linear
/// in the length of the text whatever the text holds.
#[derive(Clone)]
pub struct Detector {
    rules: Arc<Rules>,
}

impl Detector {
    /// A builder that starts from every built-in rule.
    pub fn builder() -> DetectorBuilder {
        DetectorBuilder {
            rules: BUILT_IN.iter().cloned().collect(),
            disabled: Vec::new(),
        }
    }

    /// Every piece of personal data in `text`, sorted by start, never
    /// overlapping.
    ///
    /// Where two findings overlap, the one that starts first wins, then the
    /// longer one, then by kind: custom kinds first (ties among them by
    /// label), then `Secret`, `CredentialUrl`, `PaymentCard`, `Iban`,
    /// `Ssn`, `Email`, `IpAddress`, `Phone`.
    pub fn find(&self, text: &str) -> Vec<Finding> {
        self.rules.find(text)
    }
}

impl Default for Detector {
    /// Every built-in rule.
    fn default() -> Self {
        Self {
            rules: BUILT_IN.clone(),
        }
    }
}

impl fmt::Debug for Detector {
    /// Lists the kinds the detector finds; never the terms or patterns,
    /// which may themselves be personal data (a customer list).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kinds: Vec<&str> = self.rules.iter().map(|r| r.kind.label()).collect();
        kinds.dedup();
        f.debug_struct("Detector")
            .field("kinds", &kinds)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Detector`] with custom patterns and terms, or with built-in
/// kinds switched off.
///
/// ```
/// use llmvault::pii::{Detector, PiiKind};
///
/// let detector = Detector::builder()
///     .pattern("employee", r"\bEMP-[0-9]{6}\b")?
///     .terms("customer", ["Acme Corp", "Jane Doe"])?
///     .disable(PiiKind::IpAddress)
///     .build();
/// let found = detector.find("jane doe (EMP-004211) at 10.0.0.1");
/// let labels: Vec<_> = found.iter().map(|f| f.kind.label()).collect();
/// assert_eq!(labels, ["CUSTOMER", "EMPLOYEE"]);
/// # Ok::<(), llmvault::Error>(())
/// ```
pub struct DetectorBuilder {
    rules: Vec<Rule>,
    disabled: Vec<PiiKind>,
}

impl DetectorBuilder {
    /// Adds a regex (syntax of the `regex` crate) whose matches are
    /// reported as `PiiKind::Custom(label)`, the label uppercased. Empty
    /// matches are ignored.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if the label is not 1–32 ASCII letters,
    /// digits or underscores starting with a letter, names a built-in kind
    /// (`EMAIL`, `CARD`, …) or is `LITERAL` (the label of placeholders for
    /// placeholder-shaped text in the input, see
    /// [`Pseudonymizer::mask`](super::Pseudonymizer::mask)), or the regex
    /// does not compile.
    pub fn pattern(mut self, label: &str, pattern: &str) -> Result<Self> {
        let kind = custom_kind(label)?;
        let regex = Regex::new(pattern).map_err(|e| Error::InvalidInput {
            what: "pii pattern",
            reason: e.to_string(),
        })?;
        self.rules.push(Rule {
            kind,
            regex,
            matcher: Matcher::Pattern,
            window: None,
        });
        Ok(self)
    }

    /// Adds one exact term (a customer or product name) reported as
    /// `PiiKind::Custom(label)`. See [`DetectorBuilder::terms`].
    ///
    /// # Errors
    /// As for [`DetectorBuilder::terms`].
    pub fn term(self, label: &str, term: &str) -> Result<Self> {
        self.terms(label, [term])
    }

    /// Adds exact terms reported as `PiiKind::Custom(label)`.
    ///
    /// Terms match case-insensitively (Unicode simple case folding), any
    /// run of white space in a term matches any run in the text, and a
    /// term matches whole words only: `Ann` is found in `Ann-Marie` and
    /// `ann,` but not in `Annabelle`. Where terms overlap, the longest
    /// wins. In scripts written without spaces (Chinese, Japanese) the
    /// whole-word rule rarely holds; use [`DetectorBuilder::pattern`].
    ///
    /// Add long lists in one call: each call compiles one regex, and every
    /// regex is one more pass over the text.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad label (as for
    /// [`DetectorBuilder::pattern`]), a term that is empty or all white
    /// space, or a list too large to compile.
    pub fn terms<I, S>(mut self, label: &str, terms: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let kind = custom_kind(label)?;
        let mut alternatives = Vec::new();
        for term in terms {
            let words: Vec<String> = term
                .as_ref()
                .split_whitespace()
                .map(regex::escape)
                .collect();
            if words.is_empty() {
                return Err(Error::InvalidInput {
                    what: "pii term",
                    reason: "a term must not be empty or only white space".into(),
                });
            }
            alternatives.push(words.join(r"\s+"));
        }
        if alternatives.is_empty() {
            return Ok(self);
        }
        // Leftmost-first alternation: longer terms first so they win.
        alternatives.sort_by_key(|a| std::cmp::Reverse(a.len()));
        let regex = Regex::new(&format!("(?i:{})", alternatives.join("|"))).map_err(|e| {
            Error::InvalidInput {
                what: "pii terms",
                reason: match e {
                    regex::Error::CompiledTooBig(limit) => {
                        format!("the list compiles past the {limit}-byte regex limit")
                    }
                    _ => "the list could not be compiled".into(),
                },
            }
        })?;
        self.rules.push(Rule {
            kind,
            regex,
            matcher: Matcher::Term,
            window: None,
        });
        Ok(self)
    }

    /// Switches off every rule reporting `kind`, built-in or custom,
    /// including rules added after this call.
    pub fn disable(mut self, kind: PiiKind) -> Self {
        self.disabled.push(kind);
        self
    }

    /// The detector.
    pub fn build(self) -> Detector {
        let Self { rules, disabled } = self;
        let rules: Vec<Rule> = rules
            .into_iter()
            .filter(|r| !disabled.contains(&r.kind))
            .collect();
        Detector {
            rules: Arc::new(Rules::new(rules)),
        }
    }
}

impl fmt::Debug for DetectorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DetectorBuilder")
            .field("rules", &self.rules.len())
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// The compiled built-in rules, shared by every default detector (and
/// so are the regex engines' caches).
static BUILT_IN: LazyLock<Arc<Rules>> = LazyLock::new(|| {
    let rules = rules::built_in()
        .into_iter()
        .map(|rule| {
            #[expect(
                clippy::expect_used,
                reason = "constant patterns; the unit test every_pattern_compiles compiles each one"
            )]
            let regex = Regex::new(&rule.pattern).expect("built-in pattern compiles");
            Rule {
                kind: rule.kind,
                regex,
                matcher: Matcher::BuiltIn(rule.check),
                window: rule.window,
            }
        })
        .collect();
    Arc::new(Rules::new(rules))
});

/// Longest custom label accepted.
const MAX_LABEL_LEN: usize = 32;

/// `PiiKind::Custom` for a label the builder accepts.
fn custom_kind(label: &str) -> Result<PiiKind> {
    let bad = |reason: &str| Error::InvalidInput {
        what: "pii label",
        reason: reason.into(),
    };
    let upper = label.to_ascii_uppercase();
    let well_formed = upper.len() <= MAX_LABEL_LEN
        && upper.starts_with(|c: char| c.is_ascii_alphabetic())
        && upper
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !well_formed {
        return Err(bad(
            "a label is 1 to 32 ASCII letters, digits or underscores, starting with a letter",
        ));
    }
    if PiiKind::BUILT_IN.iter().any(|k| k.label() == upper) {
        return Err(bad("the label names a built-in kind"));
    }
    if upper == super::literal::LABEL {
        return Err(bad("the label LITERAL is reserved for typed placeholders"));
    }
    Ok(PiiKind::Custom(upper.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(detector: &Detector, text: &str) -> Vec<(String, String)> {
        detector
            .find(text)
            .into_iter()
            .map(|f| (f.kind.label().to_owned(), text[f.range].to_owned()))
            .collect()
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn multibyte_text_around_findings() {
        let text =
            "📧 alice@example.com✨ 电话 +14155552671。🎉 IP：10.0.0.1😀 卡 4111111111111111 ok";
        let detector = Detector::default();
        for f in detector.find(text) {
            assert!(text.is_char_boundary(f.range.start) && text.is_char_boundary(f.range.end));
        }
        assert_eq!(
            found(&detector, text),
            pairs(&[
                ("EMAIL", "alice@example.com"),
                ("PHONE", "+14155552671"),
                ("IP", "10.0.0.1"),
                ("CARD", "4111111111111111"),
            ])
        );
    }

    #[test]
    fn overlaps_prefer_earlier_then_longer() {
        let detector = Detector::default();
        // The URL holds an e-mail-like `pw@db.example.com` and starts first.
        let text = "url postgres://app:pw@db.example.com/x and 10.1.2.3";
        assert_eq!(
            found(&detector, text),
            pairs(&[
                ("URL_CREDENTIAL", "postgres://app:pw@db.example.com/x"),
                ("IP", "10.1.2.3"),
            ])
        );
        // The same value from two rules (assignment and `sk-` prefix) is
        // reported once.
        let text = "OPENAI_API_KEY=sk-proj-Ab3dE5fG7hI9jK1lM3nO5pQ7";
        assert_eq!(
            found(&detector, text),
            pairs(&[("SECRET", "sk-proj-Ab3dE5fG7hI9jK1lM3nO5pQ7")])
        );
    }

    #[test]
    fn without_overlaps_is_deterministic() {
        let custom = PiiKind::Custom("ZIP".into());
        let f = |kind: &PiiKind, r: std::ops::Range<usize>| Finding {
            kind: kind.clone(),
            range: r,
        };
        let input = vec![
            f(&PiiKind::Phone, 5..9),
            f(&PiiKind::Email, 0..4),
            f(&custom, 0..4),
            f(&PiiKind::Secret, 2..12),
            f(&PiiKind::IpAddress, 12..14),
        ];
        let mut reversed = input.clone();
        reversed.reverse();
        let want = vec![
            f(&custom, 0..4),
            f(&PiiKind::Phone, 5..9),
            f(&PiiKind::IpAddress, 12..14),
        ];
        assert_eq!(super::super::scan::tests_without_overlaps(input), want);
        assert_eq!(super::super::scan::tests_without_overlaps(reversed), want);
    }

    #[test]
    fn patterns_terms_and_disable() {
        let detector = Detector::builder()
            .pattern("ticket", r"\bTCK-[0-9]{4}\b")
            .unwrap()
            .terms("customer", ["Jane  Doe", "Zoë Ångström", "Acme"])
            .unwrap()
            .term("customer", "Ann")
            .unwrap()
            .disable(PiiKind::Email)
            .build();
        let text =
            "JANE DOE and zoë ångström of ACME (TCK-0042) mailed a@b.co; Annabelle, Ann-Marie";
        assert_eq!(
            found(&detector, text),
            pairs(&[
                ("CUSTOMER", "JANE DOE"),
                ("CUSTOMER", "zoë ångström"),
                ("CUSTOMER", "ACME"),
                ("TICKET", "TCK-0042"),
                ("CUSTOMER", "Ann"),
            ])
        );
        let off = Detector::builder()
            .term("customer", "Acme")
            .unwrap()
            .disable(PiiKind::Custom("CUSTOMER".into()))
            .build();
        assert!(off.find("Acme").is_empty());
        assert!(format!("{detector:?}").contains("CUSTOMER"));
        assert!(!format!("{detector:?}").contains("Jane"));
    }

    #[test]
    fn builder_refuses_bad_input() {
        let bad = [
            Detector::builder().pattern("email", "x").err(),
            Detector::builder().pattern("literal", "x").err(),
            Detector::builder().pattern("", "x").err(),
            Detector::builder().pattern("1abc", "x").err(),
            Detector::builder().pattern("with space", "x").err(),
            Detector::builder().pattern(&"a".repeat(33), "x").err(),
            Detector::builder().pattern("ok", "(unclosed").err(),
            Detector::builder().term("ok", "  ").err(),
        ];
        for err in bad {
            assert!(matches!(err, Some(Error::InvalidInput { .. })), "{err:?}");
        }
        let empty: [&str; 0] = [];
        assert!(Detector::builder().terms("ok", empty).is_ok());
    }

    #[test]
    fn empty_pattern_matches_are_ignored() {
        let detector = Detector::builder().pattern("x", "a*").unwrap().build();
        assert!(detector.find("bbb").is_empty());
        assert_eq!(found(&detector, "baab"), pairs(&[("X", "aa")]));
    }

    #[test]
    fn disabling_a_located_rule_keeps_the_others() {
        let detector = Detector::builder().disable(PiiKind::Ssn).build();
        let text = "ssn 123-45-6789 card 4111 1111 1111 1111 ip 10.0.0.1";
        assert_eq!(
            found(&detector, text),
            pairs(&[("CARD", "4111 1111 1111 1111"), ("IP", "10.0.0.1")])
        );
    }

    #[test]
    fn long_and_hostile_inputs() {
        let detector = Detector::default();
        let digits = "9".repeat(100_000);
        assert!(detector.find(&digits).is_empty());
        let dots = "1.".repeat(50_000);
        assert!(detector.find(&dots).is_empty());
        let begin = "-----BEGIN PRIVATE KEY-----".repeat(1000);
        assert!(detector.find(&begin).len() <= 1);
        let many = "a@b.co ".repeat(10_000);
        assert_eq!(detector.find(&many).len(), 10_000);
    }
}
