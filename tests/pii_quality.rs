//! Detection quality, measured: precision and recall per kind on the
//! hand-labelled corpus in `tests/data/pii/`. A finding is a true positive
//! only if its kind and exact byte range match a label.
//!
//! Run with `--nocapture` to see the table (it is copied into
//! `docs/PII.md`) and every miss and false alarm.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::ops::Range;

use llmvault::pii::Detector;

/// Overall precision and recall below these fail the test.
const MIN_PRECISION: f64 = 0.95;
const MIN_RECALL: f64 = 0.95;

/// One corpus line: the text and its labelled spans.
struct Sample {
    text: String,
    expected: Vec<(String, Range<usize>)>,
}

/// Lines of a corpus file, without comments and blank lines, with `\n`
/// read as a newline and `[[LABEL:value]]` markup turned into spans.
fn load(name: &str) -> Vec<Sample> {
    let path = format!("{}/tests/data/pii/{name}", env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read_to_string(&path).unwrap();
    raw.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| parse(&l.replace("\\n", "\n")))
        .collect()
}

fn parse(line: &str) -> Sample {
    let mut text = String::new();
    let mut expected = Vec::new();
    let mut rest = line;
    while let Some(open) = find_markup(rest) {
        text.push_str(&rest[..open]);
        let inner = &rest[open + 2..];
        let colon = inner.find(':').unwrap();
        let close = inner.find("]]").unwrap();
        let label = &inner[..colon];
        let value = &inner[colon + 1..close];
        let start = text.len();
        text.push_str(value);
        expected.push((label.to_owned(), start..text.len()));
        rest = &inner[close + 2..];
    }
    text.push_str(rest);
    Sample { text, expected }
}

/// The next `[[LABEL:` (label: upper case and `_`), skipping a lone `[`.
fn find_markup(s: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].find("[[") {
        let at = from + i;
        let after = &s[at + 2..];
        let label_len = after
            .bytes()
            .take_while(|b| b.is_ascii_uppercase() || *b == b'_')
            .count();
        if label_len > 0 && after.as_bytes().get(label_len) == Some(&b':') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[derive(Default)]
struct Counts {
    tp: usize,
    fp: usize,
    fn_: usize,
}

impl Counts {
    fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

#[test]
fn precision_and_recall() {
    let labelled = load("labelled.txt");
    let negatives = load("negatives.txt");
    assert!(labelled.iter().map(|s| s.expected.len()).sum::<usize>() >= 150);
    assert!(negatives.len() >= 80);
    assert!(negatives.iter().all(|s| s.expected.is_empty()));

    let detector = Detector::default();
    let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
    let mut problems = Vec::new();
    for sample in labelled.iter().chain(&negatives) {
        let found: Vec<(String, Range<usize>)> = detector
            .find(&sample.text)
            .into_iter()
            .map(|f| (f.kind.label().to_owned(), f.range))
            .collect();
        for (label, range) in &found {
            let hit = sample.expected.contains(&(label.clone(), range.clone()));
            let c = counts.entry(label.clone()).or_default();
            if hit {
                c.tp += 1;
            } else {
                c.fp += 1;
                problems.push(format!(
                    "false positive {label} {:?} in {:?}",
                    &sample.text[range.clone()],
                    sample.text
                ));
            }
        }
        for (label, range) in &sample.expected {
            if !found.contains(&(label.clone(), range.clone())) {
                counts.entry(label.clone()).or_default().fn_ += 1;
                problems.push(format!(
                    "missed {label} {:?} in {:?}",
                    &sample.text[range.clone()],
                    sample.text
                ));
            }
        }
    }

    let mut total = Counts::default();
    println!("| kind | labelled | true pos. | false pos. | missed | precision | recall |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (label, c) in &counts {
        total.tp += c.tp;
        total.fp += c.fp;
        total.fn_ += c.fn_;
        println!(
            "| {label} | {} | {} | {} | {} | {:.3} | {:.3} |",
            c.tp + c.fn_,
            c.tp,
            c.fp,
            c.fn_,
            c.precision(),
            c.recall()
        );
    }
    println!(
        "| **overall** | {} | {} | {} | {} | **{:.3}** | **{:.3}** |",
        total.tp + total.fn_,
        total.tp,
        total.fp,
        total.fn_,
        total.precision(),
        total.recall()
    );
    println!(
        "\n{} labelled lines, {} hard-negative lines",
        labelled.len(),
        negatives.len()
    );
    for p in &problems {
        println!("{p}");
    }
    assert!(
        total.precision() >= MIN_PRECISION,
        "precision {:.3} < {MIN_PRECISION}",
        total.precision()
    );
    assert!(
        total.recall() >= MIN_RECALL,
        "recall {:.3} < {MIN_RECALL}",
        total.recall()
    );
}

#[test]
fn markup_parses() {
    let s = parse("a [[EMAIL:x@y.co]] [[[IP:::1]]] b");
    assert_eq!(s.text, "a x@y.co [::1] b");
    assert_eq!(
        s.expected,
        vec![("EMAIL".to_owned(), 2..8), ("IP".to_owned(), 10..13)]
    );
}
