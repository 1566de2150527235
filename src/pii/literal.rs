//! Placeholder-shaped text in what is being masked: `<EMAIL_1>` typed by a
//! user, or pasted from an earlier masked prompt.
//!
//! `restore` replaces every placeholder the conversation handed out,
//! wherever it stands, so a literal `<EMAIL_1>` left in the masked text
//! would come back as the value behind it: another person's address.
//! Masking therefore treats each such literal as a value of its own. It
//! gets a `<LITERAL_N>` placeholder like any finding, and restoring gives
//! back the text that was typed.

use std::ops::Range;

use super::Finding;
use super::mapping::{candidates, parse_placeholder};

/// The label of placeholders standing for literal placeholder text. The
/// detector builder refuses it as a custom label, so a `<LITERAL_N>`
/// always means this.
pub(crate) const LABEL: &str = "LITERAL";

/// What masking replaces in `text`: the detector's `findings` and every
/// literal placeholder, sorted, never overlapping, each with the label its
/// placeholder takes.
///
/// Where a finding and a literal overlap, the earlier start wins, then the
/// longer span, then the finding. Either way the literal does not reach
/// the masked text whole (some of it is replaced), so no restore can match
/// it; and nothing else can form one, since every placeholder masking
/// inserts begins with `<` and ends with `>` and a placeholder holds
/// neither inside.
pub(crate) fn spans<'a>(text: &str, findings: &'a [Finding]) -> Vec<(Range<usize>, &'a str)> {
    let literals = candidates(text)
        .filter(|r| parse_placeholder(&text[r.clone()]).is_some())
        .map(|r| (r, true, LABEL));
    let mut all: Vec<(Range<usize>, bool, &str)> = findings
        .iter()
        .map(|f| (f.range.clone(), false, f.kind.label()))
        .chain(literals)
        .collect();
    all.sort_unstable_by(|a, b| {
        (a.0.start.cmp(&b.0.start))
            .then(b.0.end.cmp(&a.0.end))
            .then(a.1.cmp(&b.1))
    });
    let mut kept: Vec<(Range<usize>, &str)> = Vec::with_capacity(all.len());
    for (range, _, label) in all {
        if kept.last().is_none_or(|(last, _)| range.start >= last.end) {
            kept.push((range, label));
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pii::PiiKind;

    fn labelled<'a>(text: &'a str, spans: &[(Range<usize>, &'a str)]) -> Vec<(&'a str, &'a str)> {
        spans.iter().map(|(r, l)| (*l, &text[r.clone()])).collect()
    }

    #[test]
    fn every_well_formed_placeholder_is_a_literal() {
        let text = "<EMAIL_1> <<PHONE_2>> <X_9><URL_CREDENTIAL_3> <email_1> <EMAIL_01> <EMAIL_1 <LITERAL_4>";
        assert_eq!(
            labelled(text, &spans(text, &[])),
            [
                ("LITERAL", "<EMAIL_1>"),
                ("LITERAL", "<PHONE_2>"),
                ("LITERAL", "<X_9>"),
                ("LITERAL", "<URL_CREDENTIAL_3>"),
                ("LITERAL", "<LITERAL_4>"),
            ]
        );
    }

    #[test]
    fn overlaps_with_findings() {
        let found = |kind: PiiKind, range: Range<usize>| Finding { kind, range };
        let custom = |l: &str| PiiKind::Custom(l.into());
        // 0..9 `<EMAIL_1>`, 10..19 `<EMAIL_2>`, 20..29 `<EMAIL_3>`
        let text = "<EMAIL_1> <EMAIL_2> <EMAIL_3>";
        let findings = [
            // Starts inside a literal: the literal started first.
            found(custom("A"), 7..8),
            // Starts before a literal and reaches into it: it wins.
            found(custom("B"), 9..12),
            // The same span as a literal: the finding wins the tie.
            found(custom("C"), 20..29),
        ];
        assert_eq!(
            labelled(text, &spans(text, &findings)),
            [("LITERAL", "<EMAIL_1>"), ("B", " <E"), ("C", "<EMAIL_3>")]
        );
    }
}
