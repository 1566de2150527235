//! Running a set of rules over a text: each rule led by a literal scans on
//! its own; the rest run together under one locator regex, and only near
//! its matches.
//!
//! A rule such as `[0-9]{3}-[0-9]{2}-[0-9]{4}` gives the regex engine no
//! literal to search for, so its scan runs the lazy DFA over every byte.
//! Five such scans cost five passes; the locator (the alternation of those
//! rules) costs one. Any match of a located rule is also a match of the
//! locator starting at the same place, so running each located rule from
//! the start of every locator match, keeping only matches that start
//! inside it, finds what a scan of the whole text would. (One difference:
//! a candidate skipped because no byte near it could start a match no
//! longer hides a later, overlapping one; both are still checked.)

use std::ops::Range;

use regex::Regex;

use super::kind::{Finding, PiiKind};
use super::rules::Check;

/// Compiled rules and their locator.
pub(crate) struct Rules {
    rules: Vec<Rule>,
    /// Matches wherever a rule with a `window` could; `None` if there is no
    /// such rule (or the alternation failed to compile: the rules then
    /// scan on their own, slower but the same).
    locator: Option<Regex>,
}

/// One rule: a regex for candidates and how to accept them.
#[derive(Clone)]
pub(crate) struct Rule {
    pub(crate) kind: PiiKind,
    pub(crate) regex: Regex,
    pub(crate) matcher: Matcher,
    /// For rules run under the locator: how far their matches reach and
    /// which bytes they need.
    pub(crate) window: Option<Window>,
}

/// What a located rule's match looks like, to skip searches that cannot
/// succeed.
#[derive(Clone, Copy)]
pub(crate) struct Window {
    /// The longest match, in bytes.
    pub(crate) longest: usize,
    /// Whether a match can start with this byte.
    pub(crate) starts: fn(u8) -> bool,
    /// A match holds at least one of these bytes (any, if empty).
    pub(crate) needs: &'static [u8],
}

/// How a rule accepts a regex match.
#[derive(Clone, Copy)]
pub(crate) enum Matcher {
    /// A built-in rule's own check.
    BuiltIn(Check),
    /// A caller's regex: every non-empty match.
    Pattern,
    /// A caller's terms: whole words only.
    Term,
}

impl Rules {
    pub(crate) fn new(mut rules: Vec<Rule>) -> Self {
        let located: Vec<String> = rules
            .iter()
            .filter(|r| r.window.is_some())
            .map(|r| format!("(?:{})", r.regex.as_str()))
            .collect();
        let locator = match located.is_empty() {
            true => None,
            false => Regex::new(&located.join("|")).ok(),
        };
        if locator.is_none() {
            rules.iter_mut().for_each(|r| r.window = None);
        }
        Self { rules, locator }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter()
    }

    /// Every finding in `text`, sorted, without overlaps.
    pub(crate) fn find(&self, text: &str) -> Vec<Finding> {
        let mut found = Vec::new();
        let mut push = |rule: &Rule, range: Range<usize>| {
            if let Some(range) = rule.matcher.accept(text, range) {
                found.push(Finding {
                    kind: rule.kind.clone(),
                    range,
                });
            }
        };
        for rule in self.rules.iter().filter(|r| r.window.is_none()) {
            for m in rule.regex.find_iter(text) {
                push(rule, m.range());
            }
        }
        if let Some(locator) = &self.locator {
            let located: Vec<&Rule> = self.rules.iter().filter(|r| r.window.is_some()).collect();
            // Where each located rule's next search starts, so that its
            // matches never overlap one another (as in a plain scan).
            let mut resume = vec![0; located.len()];
            for near in locator.find_iter(text) {
                for (rule, resume) in located.iter().zip(&mut resume) {
                    if !rule.may_match_near(text, near.range()) {
                        continue;
                    }
                    let mut at = near.start().max(*resume);
                    while at < near.end() {
                        let Some(m) = rule.find_near(text, at, near.end()) else {
                            break;
                        };
                        if m.start >= near.end() {
                            break;
                        }
                        *resume = m.end.max(next_char(text, m.start));
                        at = *resume;
                        push(rule, m);
                    }
                }
            }
        }
        without_overlaps(found)
    }
}

impl Rule {
    /// Whether a match could start inside `near`: some byte there can
    /// start one, and a byte it needs is within reach.
    fn may_match_near(&self, text: &str, near: Range<usize>) -> bool {
        let Some(w) = self.window else {
            return true;
        };
        let bytes = text.as_bytes();
        let reach = bytes.len().min(near.end.saturating_add(w.longest));
        bytes[near.clone()].iter().any(|&b| (w.starts)(b))
            && (w.needs.is_empty() || bytes[near.start..reach].iter().any(|b| w.needs.contains(b)))
    }

    /// The rule's first match starting at or after `at`, searching only as
    /// far as a match starting before `before` can reach.
    fn find_near(&self, text: &str, at: usize, before: usize) -> Option<Range<usize>> {
        let longest = self.window.map_or(text.len(), |w| w.longest);
        let mut end = text.len().min(before.saturating_add(longest));
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let m = self.regex.find_at(&text[..end], at)?.range();
        if m.end == end && end < text.len() {
            // The cut may have shortened the match or made `\b` hold: ask
            // again with the whole text.
            return self.regex.find_at(text, at).map(|m| m.range());
        }
        Some(m)
    }
}

impl Matcher {
    fn accept(self, text: &str, range: Range<usize>) -> Option<Range<usize>> {
        match self {
            Self::BuiltIn(check) => check(text, range),
            Self::Pattern => (!range.is_empty()).then_some(range),
            Self::Term => whole_word(text, &range).then_some(range),
        }
    }
}

/// The position just after the char at `i` (or `i` at the end).
fn next_char(text: &str, i: usize) -> usize {
    text[i..].chars().next().map_or(i, |c| i + c.len_utf8())
}

/// Whether `range` neither starts nor ends inside a word of `text`.
fn whole_word(text: &str, range: &Range<usize>) -> bool {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let inner_first = text[range.clone()].chars().next();
    let inner_last = text[range.clone()].chars().next_back();
    let outer_before = text[..range.start].chars().next_back();
    let outer_after = text[range.end..].chars().next();
    let joins = |a: Option<char>, b: Option<char>| a.is_some_and(word) && b.is_some_and(word);
    !range.is_empty() && !joins(outer_before, inner_first) && !joins(inner_last, outer_after)
}

/// Sorts findings and drops every one that overlaps one kept before it.
fn without_overlaps(mut found: Vec<Finding>) -> Vec<Finding> {
    found.sort_unstable_by(|a, b| {
        a.range
            .start
            .cmp(&b.range.start)
            .then(b.range.end.cmp(&a.range.end))
            .then(a.kind.rank().cmp(&b.kind.rank()))
            .then(a.kind.label().cmp(b.kind.label()))
    });
    let mut kept: Vec<Finding> = Vec::with_capacity(found.len());
    for finding in found {
        if kept
            .last()
            .is_none_or(|last| finding.range.start >= last.range.end)
        {
            kept.push(finding);
        }
    }
    kept
}

/// [`without_overlaps`] for the detector's unit tests.
#[cfg(test)]
pub(crate) fn tests_without_overlaps(found: Vec<Finding>) -> Vec<Finding> {
    without_overlaps(found)
}
