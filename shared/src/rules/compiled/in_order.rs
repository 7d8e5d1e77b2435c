//! The strategy for a few rules: each rule in rank order, tested on its own, until one matches.
//! No automaton is built or run, and nothing is tested beyond the first matching rule.
//!
//! Normalising a message costs more than a dozen substring searches, so an ASCII message is not
//! normalised for literal rules: the pattern (normalised) is compared with the raw message
//! (lower-cased unless the rule is case-sensitive, which is folding for ASCII), a space in the
//! pattern standing for a whitespace run and leading whitespace skipped where the pattern must
//! start the message. A `contains` rule first looks for the pattern's longest word, which is in
//! the normalised message exactly when it is in the raw one (normalising only rewrites
//! whitespace); most rules stop there.
//!
//! Other text, and `regex` rules, are compared with the normalised message as in the automata,
//! each form made once, when a rule first needs it.

use super::{
    NO_MATCH, Normalised, Prepared, PreparedRule, SkippedRule, build_bytes_regex, is_space,
};
use crate::rules::rule::MatchKind;
use regex::bytes::Regex;

/// Rules in rank order, each with its test.
#[derive(Debug)]
pub(super) struct InOrder {
    rules: Vec<(u32, Test)>,
    spaced_used: bool,
}

#[derive(Debug)]
enum Test {
    Literal(Literal),
    /// Compared with the message with only its whitespace normalised.
    Regex(Regex),
}

#[derive(Debug)]
struct Literal {
    /// `Contains`, `Prefix` or `Exact`.
    kind: MatchKind,
    /// Normalised, and folded when `fold`.
    pattern: String,
    fold: bool,
    /// For `contains`: the longest word of `pattern`, looked for before anything else.
    longest_word: String,
}

impl InOrder {
    /// `rules` arrive in rank order.
    pub(super) fn build(rules: Vec<PreparedRule<'_>>, skipped: &mut Vec<SkippedRule>) -> InOrder {
        let mut tests = Vec::with_capacity(rules.len());
        for rule in rules {
            let test = match rule.test {
                Prepared::Literal {
                    kind,
                    pattern,
                    fold,
                } => Test::Literal(Literal::new(kind, pattern, fold)),
                Prepared::Regex {
                    pattern,
                    case_sensitive,
                } => match build_bytes_regex(pattern, case_sensitive) {
                    Ok(regex) => Test::Regex(regex),
                    Err(error) => {
                        skipped.push(SkippedRule {
                            id: rule.id.clone(),
                            error,
                        });
                        continue;
                    }
                },
            };
            tests.push((rule.rank, test));
        }
        let spaced_used = tests.iter().any(|(_, test)| match test {
            Test::Literal(literal) => !literal.fold,
            Test::Regex(_) => true,
        });
        InOrder {
            rules: tests,
            spaced_used,
        }
    }

    pub(super) fn spaced_used(&self) -> bool {
        self.spaced_used
    }

    pub(super) fn best_rank(&self, message: &mut Normalised<'_>) -> u32 {
        let ascii = message.text().is_ascii();
        for (rank, test) in &self.rules {
            let matched = match test {
                Test::Regex(regex) => regex.is_match(message.spaced().as_bytes()),
                Test::Literal(literal) if ascii => {
                    let raw = if literal.fold {
                        message.lowered()
                    } else {
                        message.text()
                    };
                    literal.matches_raw(raw)
                }
                Test::Literal(literal) => {
                    let normalised = if literal.fold {
                        message.folded()
                    } else {
                        message.spaced()
                    };
                    literal.matches(normalised)
                }
            };
            if matched {
                return *rank;
            }
        }
        NO_MATCH
    }
}

impl Literal {
    fn new(kind: MatchKind, pattern: String, fold: bool) -> Literal {
        // The last of the longest: codes and names tend to come late in a pattern.
        let longest_word = pattern
            .split(' ')
            .max_by_key(|word| word.len())
            .unwrap_or_default()
            .to_owned();
        Literal {
            kind,
            pattern,
            fold,
            longest_word,
        }
    }

    /// The rule's test on the normalised message (folded when `fold`).
    fn matches(&self, normalised: &str) -> bool {
        match self.kind {
            MatchKind::Prefix => normalised.starts_with(self.pattern.as_str()),
            MatchKind::Exact => normalised == self.pattern,
            _ => normalised.contains(self.pattern.as_str()),
        }
    }

    /// [`Literal::matches`] on the raw ASCII message (lower-cased when `fold`), not normalised.
    fn matches_raw(&self, raw: &str) -> bool {
        let text = raw.as_bytes();
        let start = text
            .iter()
            .position(|&byte| !is_space(byte))
            .unwrap_or(text.len());
        match self.kind {
            MatchKind::Prefix => spaced_match_end(text, start, &self.pattern).is_some(),
            MatchKind::Exact => spaced_match_end(text, start, &self.pattern)
                .is_some_and(|end| text[end..].iter().all(|&byte| is_space(byte))),
            _ => {
                if !raw.contains(self.longest_word.as_str()) {
                    return false;
                }
                if raw.contains(self.pattern.as_str()) {
                    // Its single spaces stay as they are in the normalised message.
                    return true;
                }
                // A match starts at an occurrence of the first word (kept as is by normalising);
                // occurrences may overlap, so the search resumes one byte on.
                let first_word = self.pattern.split(' ').next().unwrap_or_default();
                let mut from = start;
                while let Some(found) = raw[from..].find(first_word) {
                    if spaced_match_end(text, from + found, &self.pattern).is_some() {
                        return true;
                    }
                    from += found + 1;
                }
                false
            }
        }
    }
}

/// Where `pattern` (normalised: words between single spaces) ends if it starts at `at` in the raw
/// `text`, a space in it matching a whole whitespace run. A whole run: each space is followed by
/// a word, which cannot start with whitespace.
fn spaced_match_end(text: &[u8], mut at: usize, pattern: &str) -> Option<usize> {
    for (index, word) in pattern.split(' ').enumerate() {
        if index > 0 {
            let run = text[at..]
                .iter()
                .take_while(|&&byte| is_space(byte))
                .count();
            if run == 0 {
                return None;
            }
            at += run;
        }
        if !text[at..].starts_with(word.as_bytes()) {
            return None;
        }
        at += word.len();
    }
    Some(at)
}
