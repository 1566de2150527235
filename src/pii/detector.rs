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
    /// (`EMAIL`, `CARD`, …), or the regex does not compile.
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
    Ok(PiiKind::Custom(upper.into()))
}
