//! Replacing findings with placeholders, and putting the values back.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::ops::Range;

use zeroize::Zeroizing;

use super::mapping::{MAX_INDEX, candidates, parse_placeholder};
use super::{Detector, Mapping, literal};
use crate::{Error, Result};

/// Replaces personal data with placeholders for one conversation, and puts
/// the values back into the model's replies.
///
/// The same value always gets the same placeholder, across every turn of
/// the conversation; different values never share one. Placeholders are
/// numbered per label (`<EMAIL_1>`, `<EMAIL_2>`, `<PHONE_1>`) in order of
/// first appearance.
///
/// Values are held in memory wiped on drop. A pseudonymizer is not
/// `Clone`, and its `Debug` shows only how many mappings it holds. To keep
/// a conversation's mappings across restarts, store the
/// [`Masked::new_mappings`] of each call (sealed) and rebuild with
/// [`Pseudonymizer::from_mappings`].
pub struct Pseudonymizer {
    detector: Detector,
    mappings: Vec<Mapping>,
    by_placeholder: HashMap<String, usize>,
    /// Hash of a value to the mappings holding a value with that hash:
    /// lookups without a second copy of each value.
    by_value: HashMap<u64, Vec<usize>>,
    hasher: RandomState,
    /// Highest index used so far, per label.
    last_index: HashMap<String, u64>,
}

/// A masked text and the mappings its masking added.
#[derive(Debug)]
#[non_exhaustive]
pub struct Masked {
    /// The text with every finding replaced by its placeholder.
    pub text: String,
    /// Mappings first made by this call, in order of first appearance;
    /// values seen in earlier turns are not repeated. Store these (sealed)
    /// to rebuild the pseudonymizer later.
    pub new_mappings: Vec<Mapping>,
}

impl Pseudonymizer {
    /// A pseudonymizer with no mappings yet.
    pub fn new(detector: Detector) -> Self {
        Self {
            detector,
            mappings: Vec::new(),
            by_placeholder: HashMap::new(),
            by_value: HashMap::new(),
            hasher: RandomState::new(),
            last_index: HashMap::new(),
        }
    }

    /// A pseudonymizer that continues a conversation: `mappings` are those
    /// of earlier turns. New placeholders are numbered after the highest
    /// index stored for their label. If two mappings hold the same value,
    /// both restore and new occurrences get the first one's placeholder.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if two mappings share a placeholder.
    pub fn from_mappings(
        detector: Detector,
        mappings: impl IntoIterator<Item = Mapping>,
    ) -> Result<Self> {
        let mut pseudo = Self::new(detector);
        for mapping in mappings {
            if pseudo.by_placeholder.contains_key(&mapping.placeholder) {
                return Err(Error::InvalidInput {
                    what: "pii mappings",
                    reason: "two mappings share a placeholder".into(),
                });
            }
            pseudo.push(mapping);
        }
        Ok(pseudo)
    }

    /// Replaces every finding in `text` with its placeholder, making new
    /// placeholders for values not seen before in this conversation.
    ///
    /// Text in `text` that is itself shaped like a placeholder
    /// (`<EMAIL_1>`, typed by a user or pasted from an earlier masked
    /// prompt) is masked too, as a value of its own with a `<LITERAL_N>`
    /// placeholder, so restoring gives back the literal text and never the
    /// value some other placeholder of the conversation stands for. Hence
    /// `restore(&mask(text).text)` gives back `text`, in every turn.
    pub fn mask(&mut self, text: &str) -> Masked {
        let mut out = String::with_capacity(text.len());
        let mut new_mappings = Vec::new();
        let mut at = 0;
        let findings = self.detector.find(text);
        for (range, label) in literal::spans(text, &findings) {
            let value = &text[range.clone()];
            let index = match self.lookup(value) {
                Some(index) => index,
                None => {
                    let placeholder = self.next_placeholder(label);
                    new_mappings.push(Mapping {
                        placeholder: placeholder.clone(),
                        value: Zeroizing::new(value.to_owned()),
                    });
                    self.push(Mapping {
                        placeholder,
                        value: Zeroizing::new(value.to_owned()),
                    })
                }
            };
            out.push_str(&text[at..range.start]);
            out.push_str(&self.mappings[index].placeholder);
            at = range.end;
        }
        out.push_str(&text[at..]);
        Masked {
            text: out,
            new_mappings,
        }
    }

    /// `text` (a model's reply) with every placeholder of this conversation
    /// replaced by its value.
    ///
    /// Anything else is left exactly as it is: a placeholder this
    /// conversation never made (`<EMAIL_9>`), or one the model mangled
    /// (`<EMAIL_1`, `<email_1>`, `<EMAIL_01>`), is never mapped to a value.
    ///
    /// # Security
    /// The result holds the real values; it is allocated once at its final
    /// size so no partial copies are left behind, but wiping it is up to
    /// the caller (wrap it in `zeroize::Zeroizing` if it should be).
    pub fn restore(&self, text: &str) -> String {
        let hits: Vec<(Range<usize>, usize)> = candidates(text)
            .filter_map(|range| Some((range.clone(), *self.by_placeholder.get(&text[range])?)))
            .collect();
        let len = hits.iter().fold(text.len(), |len, (range, index)| {
            len - range.len() + self.mappings[*index].value.len()
        });
        let mut out = String::with_capacity(len);
        let mut at = 0;
        for (range, index) in hits {
            out.push_str(&text[at..range.start]);
            out.push_str(&self.mappings[index].value);
            at = range.end;
        }
        out.push_str(&text[at..]);
        out
    }

    /// Every mapping of this conversation, in the order they were made.
    pub fn mappings(&self) -> &[Mapping] {
        &self.mappings
    }

    /// The detector masking uses.
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// The mapping holding `value`, if any.
    fn lookup(&self, value: &str) -> Option<usize> {
        let candidates = self.by_value.get(&self.hasher.hash_one(value))?;
        candidates
            .iter()
            .copied()
            .find(|&i| self.mappings[i].value.as_str() == value)
    }

    /// A placeholder with `label` not used yet. (One that appears
    /// literally in the text being masked need not be avoided: masking
    /// replaces that literal.)
    ///
    /// Past [`MAX_INDEX`] numbering starts again at the lowest free index:
    /// a longer one would not read back through `Mapping::new`, nor be
    /// escaped when typed, since masking escapes only the placeholder shape.
    fn next_placeholder(&mut self, label: &str) -> String {
        let mut index = self.last_index.get(label).copied().unwrap_or(0);
        loop {
            index = if index >= MAX_INDEX { 1 } else { index + 1 };
            let placeholder = format!("<{label}_{index}>");
            if !self.by_placeholder.contains_key(&placeholder) {
                return placeholder;
            }
        }
    }

    /// Adds a mapping (known to have a fresh placeholder); its position.
    fn push(&mut self, mapping: Mapping) -> usize {
        let at = self.mappings.len();
        if let Some((label, index)) = parse_placeholder(&mapping.placeholder) {
            let last = self.last_index.entry(label.to_owned()).or_insert(0);
            *last = (*last).max(index);
        }
        let hash = self.hasher.hash_one(mapping.value.as_str());
        self.by_value.entry(hash).or_default().push(at);
        self.by_placeholder.insert(mapping.placeholder.clone(), at);
        self.mappings.push(mapping);
        at
    }
}

impl Default for Pseudonymizer {
    /// A pseudonymizer over `Detector::default()`.
    fn default() -> Self {
        Self::new(Detector::default())
    }
}

impl fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pseudonymizer")
            .field("mappings", &self.mappings.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TURNS: [&str; 3] = [
        "I'm alice@example.com, call me on +44 20 7946 0958 or at bob@example.org.",
        "Again: alice@example.com. My card is 4111 1111 1111 1111, server 10.0.0.7.",
        "Forward to carol@example.net and alice@example.com; token=s3cr3t-T0ken",
    ];

    #[test]
    fn multi_turn_round_trip() {
        let mut pseudo = Pseudonymizer::default();
        let masked: Vec<Masked> = TURNS.iter().map(|t| pseudo.mask(t)).collect();
        assert_eq!(
            masked[0].text,
            "I'm <EMAIL_1>, call me on <PHONE_1> or at <EMAIL_2>."
        );
        assert_eq!(
            masked[1].text,
            "Again: <EMAIL_1>. My card is <CARD_1>, server <IP_1>."
        );
        assert_eq!(
            masked[2].text,
            "Forward to <EMAIL_3> and <EMAIL_1>; token=<SECRET_1>"
        );
        let added: Vec<usize> = masked.iter().map(|m| m.new_mappings.len()).collect();
        assert_eq!(added, [3, 2, 2]);
        for (turn, m) in TURNS.iter().zip(&masked) {
            assert_eq!(pseudo.restore(&m.text), *turn);
            for mapping in pseudo.mappings() {
                assert!(!m.text.contains(mapping.value()));
            }
        }
    }

    #[test]
    fn unknown_and_mangled_placeholders_stay() {
        let mut pseudo = Pseudonymizer::default();
        pseudo.mask("alice@example.com");
        let reply = "<EMAIL_9> <EMAIL_1 <email_1> <EMAIL_01> <EMAIL_1_> <<EMAIL_1>> <EMAIL_1>";
        assert_eq!(
            pseudo.restore(reply),
            "<EMAIL_9> <EMAIL_1 <email_1> <EMAIL_01> <EMAIL_1_> <alice@example.com> alice@example.com"
        );
        assert_eq!(pseudo.restore("no placeholders <>"), "no placeholders <>");
        assert_eq!(pseudo.restore(""), "");
    }

    #[test]
    fn rebuilt_from_mappings_continues_numbering() {
        let mut first = Pseudonymizer::default();
        let masked = first.mask(TURNS[0]);
        let stored: Vec<(String, String)> = masked
            .new_mappings
            .iter()
            .map(|m| (m.placeholder().to_owned(), m.value().to_owned()))
            .collect();
        let mappings = stored.into_iter().map(|(p, v)| Mapping::new(p, v).unwrap());
        let mut again = Pseudonymizer::from_mappings(Detector::default(), mappings).unwrap();
        let next = again.mask("bob@example.org and dave@example.com");
        assert_eq!(next.text, "<EMAIL_2> and <EMAIL_3>");
        assert_eq!(again.restore(&masked.text), TURNS[0]);

        let gap = [
            Mapping::new("<EMAIL_7>", "x@example.com".to_owned()).unwrap(),
            Mapping::new("<PHONE_2>", "+14155552671".to_owned()).unwrap(),
        ];
        let mut gap = Pseudonymizer::from_mappings(Detector::default(), gap).unwrap();
        assert_eq!(gap.mask("y@example.com").text, "<EMAIL_8>");
    }

    #[test]
    fn numbering_past_nine_digits_starts_again_at_the_lowest_free_index() {
        let top = [
            Mapping::new("<EMAIL_999999999>", "x@example.com".to_owned()).unwrap(),
            Mapping::new("<EMAIL_1>", "y@example.com".to_owned()).unwrap(),
        ];
        let mut pseudo = Pseudonymizer::from_mappings(Detector::default(), top).unwrap();
        let masked = pseudo.mask("z@example.com");
        assert_eq!(masked.text, "<EMAIL_2>");
        let stored = &masked.new_mappings[0];
        assert!(Mapping::new(stored.placeholder(), stored.value().to_owned()).is_ok());
    }

    #[test]
    fn duplicate_placeholders_are_refused() {
        let twice = [
            Mapping::new("<EMAIL_1>", "a@example.com".to_owned()).unwrap(),
            Mapping::new("<EMAIL_1>", "b@example.com".to_owned()).unwrap(),
        ];
        let err = Pseudonymizer::from_mappings(Detector::default(), twice).unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }));
        assert!(!err.to_string().contains("example"));
    }

    #[test]
    fn literal_placeholders_in_the_prompt_get_their_own() {
        let mut pseudo = Pseudonymizer::default();
        let text = "the template says <EMAIL_1>; mine is alice@example.com";
        let masked = pseudo.mask(text);
        assert_eq!(
            masked.text,
            "the template says <LITERAL_1>; mine is <EMAIL_1>"
        );
        assert_eq!(masked.new_mappings[0].value(), "<EMAIL_1>");
        assert_eq!(pseudo.restore(&masked.text), text);
        // A typed `<LITERAL_1>` is one more literal; the same literal keeps
        // its placeholder.
        let again = pseudo.mask("<LITERAL_1> and <EMAIL_1>");
        assert_eq!(again.text, "<LITERAL_2> and <LITERAL_1>");
        assert_eq!(pseudo.restore(&again.text), "<LITERAL_1> and <EMAIL_1>");
    }

    #[test]
    fn a_typed_placeholder_is_not_restored_to_someone_elses_value() {
        let mut pseudo = Pseudonymizer::default();
        assert_eq!(pseudo.mask("I'm alice@example.com").text, "I'm <EMAIL_1>");
        let typed = "my template says <EMAIL_1>, not <EMAIL_2>";
        let masked = pseudo.mask(typed);
        let reply = format!("You wrote: {}", masked.text);
        assert_eq!(pseudo.restore(&reply), format!("You wrote: {typed}"));
        assert!(!masked.text.contains("<EMAIL_1>"), "{}", masked.text);
        // The model may still name Alice by her own placeholder.
        assert_eq!(pseudo.restore("<EMAIL_1>"), "alice@example.com");
    }

    #[test]
    fn a_placeholder_typed_before_its_number_was_given_out_stays_literal() {
        let mut pseudo = Pseudonymizer::default();
        let first = pseudo.mask("see <EMAIL_1> in the docs");
        pseudo.mask("bob@example.org");
        assert_eq!(pseudo.restore(&first.text), "see <EMAIL_1> in the docs");
    }

    #[test]
    fn debug_shows_no_values() {
        let mut pseudo = Pseudonymizer::default();
        let masked = pseudo.mask(TURNS[0]);
        let shown = format!("{pseudo:?} {masked:?}");
        assert!(!shown.contains("alice") && !shown.contains("7946"));
    }
}
