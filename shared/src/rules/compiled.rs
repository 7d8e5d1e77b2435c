//! Compiled rules: one instance's enabled rules compiled for matching messages against them.
//!
//! Every rule gets a rank (its position in evaluation order); the answer is the matching rule
//! of smallest rank, so priority order is exactly that of a naive loop. Two strategies give it:
//!
//! - a few rules (most instances have about ten) are tested one by one in rank order on the
//!   normalised message, stopping at the first match ([`in_order`]): a handful of substring
//!   searches cost less than setting up automata;
//! - more rules go into a few structures, each searched once per message, since a loop costs
//!   milliseconds per message at 10,000 rules:
//!   - `contains` and `prefix` patterns: one Aho-Corasick automaton per case mode, searched for
//!     all (overlapping) occurrences; a `prefix` occurrence only counts at offset 0;
//!   - `exact` patterns: a hash map from normalised pattern to rank;
//!   - `regex` rules: one `RegexSet`, asked which patterns match anywhere (or, for a handful,
//!     each regex in turn, which is faster).
//!
//! Case-insensitive literals are compared with the folded message, case-sensitive ones and
//! regexes with the message with only its whitespace normalised; each form is only made when a
//! rule asks for it.

mod in_order;

use crate::rules::id::RuleId;
use crate::rules::normalize::{normalize, normalize_into};
use crate::rules::rule::{MatchKind, REGEX_SIZE_LIMIT, Rule, RuleError, regex_error};
use aho_corasick::{AhoCorasick, MatchKind as AcMatchKind};
use in_order::InOrder;
use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// Rank of "no rule": larger than any real rank.
const NO_MATCH: u32 = u32::MAX;

/// A rule that is enabled but cannot take part in matching (a stored rule that no longer passes
/// the checks matching depends on, e.g. a regex over today's size limit). It never matches; the
/// caller should log it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRule {
    /// The rule left out.
    pub id: RuleId,
    /// Why it cannot take part.
    pub error: RuleError,
}

/// The enabled rules of one instance, compiled. Build once per rules version and reuse: it is
/// immutable and `Sync`.
#[derive(Debug)]
pub struct CompiledRules {
    /// Enabled rules in evaluation order; a rule's rank is its index.
    rules: Vec<Rule>,
    matcher: Matcher,
    skipped: Vec<SkippedRule>,
}

#[derive(Debug)]
enum Matcher {
    InOrder(InOrder),
    /// Boxed: it is ten times the size of the other, and rarer.
    Automata(Box<Automata>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    InOrder,
    Automata,
}

thread_local! {
    /// Buffers for the forms of a message, reused across messages.
    static SCRATCH: RefCell<Buffers> = RefCell::new(Buffers::default());
}

impl CompiledRules {
    /// Up to this many rules taking part (and at most [`CompiledRules::IN_ORDER_MAX_REGEXES`]
    /// of them regexes), [`CompiledRules::compile`] tests them one by one in rank order; past
    /// it, it builds automata. Chosen from `cargo bench -p shared --bench rule_matching` (group
    /// `strategy`): see the README's Benchmarks section.
    pub const IN_ORDER_MAX_RULES: usize = 24;

    /// More regexes than this are matched as one `RegexSet`, so with automata.
    pub const IN_ORDER_MAX_REGEXES: usize = SMALL_REGEX_COUNT;

    /// Compiles the enabled rules among `rules` (disabled ones are left out, order does not
    /// matter), choosing the faster strategy for their number and kinds. Never fails: rules are
    /// validated when stored, and a stored rule that no longer compiles must not stop the others
    /// from matching, so it is left out and listed in [`CompiledRules::skipped`].
    pub fn compile(rules: &[Rule]) -> CompiledRules {
        Self::compile_as(rules, None)
    }

    /// [`CompiledRules::compile`], testing the rules one by one in rank order whatever their
    /// number: for benchmarks and for tests that both strategies answer alike.
    pub fn compile_in_rank_order(rules: &[Rule]) -> CompiledRules {
        Self::compile_as(rules, Some(Strategy::InOrder))
    }

    /// [`CompiledRules::compile`], building automata whatever the number of rules: for
    /// benchmarks and for tests that both strategies answer alike.
    pub fn compile_as_automata(rules: &[Rule]) -> CompiledRules {
        Self::compile_as(rules, Some(Strategy::Automata))
    }

    fn compile_as(rules: &[Rule], strategy: Option<Strategy>) -> CompiledRules {
        let mut enabled: Vec<Rule> = rules
            .iter()
            .filter(|rule| rule.settings.enabled)
            .cloned()
            .collect();
        enabled.sort_by(Rule::evaluation_cmp);

        let mut skipped = Vec::new();
        let mut prepared = Vec::with_capacity(enabled.len());
        for (rank, rule) in enabled.iter().enumerate() {
            let rank = u32::try_from(rank).expect("fewer than 4 billion rules");
            match Prepared::of(rule) {
                Ok(test) => prepared.push(PreparedRule {
                    rank,
                    id: &rule.id,
                    test,
                }),
                Err(error) => skipped.push(SkippedRule {
                    id: rule.id.clone(),
                    error,
                }),
            }
        }
        let matcher = match strategy.unwrap_or_else(|| Strategy::for_rules(&prepared)) {
            Strategy::InOrder => Matcher::InOrder(InOrder::build(prepared, &mut skipped)),
            Strategy::Automata => {
                Matcher::Automata(Box::new(Automata::build(prepared, &mut skipped)))
            }
        };
        CompiledRules {
            rules: enabled,
            matcher,
            skipped,
        }
    }

    /// The first enabled rule, in evaluation order, that matches `text`.
    pub fn first_match(&self, text: &str) -> Option<&Rule> {
        let spaced_used = match &self.matcher {
            Matcher::InOrder(rules) => rules.spaced_used(),
            Matcher::Automata(rules) => rules.spaced_used(),
        };
        let best_rank = |buffers: &mut Buffers| {
            let mut message = Normalised::new(text, buffers, spaced_used);
            match &self.matcher {
                Matcher::InOrder(rules) => rules.best_rank(&mut message),
                Matcher::Automata(rules) => rules.best_rank(&mut message),
            }
        };
        let rank = SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut buffers) => best_rank(&mut buffers),
            Err(_) => best_rank(&mut Buffers::default()),
        });
        self.rules.get(rank as usize)
    }

    /// Whether [`CompiledRules::first_match`] tests the rules one by one in rank order (rather
    /// than searching automata).
    pub fn tests_in_rank_order(&self) -> bool {
        matches!(self.matcher, Matcher::InOrder(_))
    }

    /// The enabled rules in evaluation order (skipped ones included).
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Rules taking part in matching.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether no rule takes part, so matching can be skipped.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Enabled rules left out of matching, with the reason.
    pub fn skipped(&self) -> &[SkippedRule] {
        &self.skipped
    }
}

impl Strategy {
    /// Testing in order costs a substring search (or a regex) per rule until one matches, the
    /// automata a fixed few hundred nanoseconds; more than [`SMALL_REGEX_COUNT`] regexes are
    /// faster as one `RegexSet` than one by one.
    fn for_rules(rules: &[PreparedRule<'_>]) -> Strategy {
        let regexes = rules
            .iter()
            .filter(|rule| matches!(rule.test, Prepared::Regex { .. }))
            .count();
        if rules.len() <= CompiledRules::IN_ORDER_MAX_RULES
            && regexes <= CompiledRules::IN_ORDER_MAX_REGEXES
        {
            Strategy::InOrder
        } else {
            Strategy::Automata
        }
    }
}

/// An enabled rule that takes part in matching, with its rank.
struct PreparedRule<'r> {
    rank: u32,
    id: &'r RuleId,
    test: Prepared<'r>,
}

/// What a rule compares the message with, checked once for either strategy.
enum Prepared<'r> {
    /// A `contains`, `prefix` or `exact` pattern, normalised (and folded when `fold`).
    Literal {
        kind: MatchKind,
        pattern: String,
        fold: bool,
    },
    /// A regex, not compiled yet: the strategies compile it differently.
    Regex {
        pattern: &'r str,
        case_sensitive: bool,
    },
}

impl<'r> Prepared<'r> {
    fn of(rule: &'r Rule) -> Result<Prepared<'r>, RuleError> {
        let text_match = &rule.settings.text_match;
        let empty = || RuleError::new("match.pattern", "must not be empty");
        if text_match.kind == MatchKind::Regex {
            if text_match.pattern.trim().is_empty() {
                return Err(empty());
            }
            return Ok(Prepared::Regex {
                pattern: &text_match.pattern,
                case_sensitive: text_match.case_sensitive,
            });
        }
        let pattern = normalize(&text_match.pattern, !text_match.case_sensitive);
        if pattern.is_empty() {
            // An empty literal would match every message.
            return Err(empty());
        }
        Ok(Prepared::Literal {
            kind: text_match.kind,
            pattern,
            fold: !text_match.case_sensitive,
        })
    }
}

/// The message, and the forms rules compare with, each made on first use in buffers reused
/// across messages.
struct Normalised<'a> {
    text: &'a str,
    buffers: &'a mut Buffers,
    folded_made: bool,
    spaced_made: bool,
    lowered_made: bool,
    /// The spaced form is `text` itself.
    spaced_is_text: bool,
    /// Some rule compares with the spaced form, so making it first is no extra work.
    spaced_used: bool,
}

/// The normalised forms (folded, whitespace-only) and the raw message lower-cased.
#[derive(Default)]
struct Buffers {
    folded: String,
    spaced: String,
    lowered: String,
}

impl<'a> Normalised<'a> {
    fn new(text: &'a str, buffers: &'a mut Buffers, spaced_used: bool) -> Self {
        Normalised {
            text,
            buffers,
            folded_made: false,
            spaced_made: false,
            lowered_made: false,
            spaced_is_text: false,
            spaced_used,
        }
    }

    /// The message as it came.
    fn text(&self) -> &'a str {
        self.text
    }

    /// The message as it came, ASCII letters lower-cased.
    fn lowered(&mut self) -> &str {
        if !self.lowered_made {
            copy_lowercased(self.text, &mut self.buffers.lowered);
            self.lowered_made = true;
        }
        &self.buffers.lowered
    }

    /// Whitespace runs collapsed to one space, ends trimmed.
    fn spaced(&mut self) -> &str {
        if !self.spaced_made {
            if is_spaced_ascii(self.text) {
                // Most messages are: a pass that writes nothing is cheaper than a copy.
                self.spaced_is_text = true;
            } else {
                normalize_into_string(self.text, false, &mut self.buffers.spaced);
            }
            self.spaced_made = true;
        }
        if self.spaced_is_text {
            self.text
        } else {
            &self.buffers.spaced
        }
    }

    /// [`Normalised::spaced`], case-folded.
    fn folded(&mut self) -> &str {
        if !self.folded_made {
            if self.spaced_used {
                self.spaced();
            }
            let spaced = if self.spaced_is_text {
                self.text
            } else {
                &self.buffers.spaced
            };
            if self.spaced_made && spaced.is_ascii() {
                // Folding ASCII is lower-casing, and whitespace collapses alike in both forms:
                // a copy costs far less than a second pass over the message.
                copy_lowercased(spaced, &mut self.buffers.folded);
            } else {
                normalize_into_string(self.text, true, &mut self.buffers.folded);
            }
            self.folded_made = true;
        }
        &self.buffers.folded
    }
}

/// Whether `text` is ASCII and already in its spaced form: words between single spaces. Written
/// without early exits so that it vectorises.
fn is_spaced_ascii(text: &str) -> bool {
    let bytes = text.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return true;
    };
    let odd = bytes.iter().fold(false, |odd, &byte| {
        odd | !byte.is_ascii() | (is_space(byte) & (byte != b' '))
    });
    let doubled = bytes.windows(2).fold(false, |doubled, pair| {
        doubled | ((pair[0] == b' ') & (pair[1] == b' '))
    });
    !(is_space(*first) || is_space(*last) || odd || doubled)
}

/// Whether an ASCII byte is whitespace as normalising reads it: the ASCII characters
/// `char::is_whitespace` accepts (vertical tab included), without its call for other characters,
/// which would keep loops over bytes from vectorising.
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

fn copy_lowercased(text: &str, out: &mut String) {
    out.clear();
    out.push_str(text);
    out.make_ascii_lowercase();
}

/// [`normalize_into`] into a `String`, so substring search can use `str`'s (validated once).
fn normalize_into_string(text: &str, fold: bool, out: &mut String) {
    let mut bytes = std::mem::take(out).into_bytes();
    normalize_into(text, fold, &mut bytes);
    *out = String::from_utf8(bytes).expect("normalisation writes whole UTF-8 characters");
}

/// Rules searched as automata: many rules, each structure searched once per message.
#[derive(Debug)]
struct Automata {
    folded: LiteralSet,
    unfolded: LiteralSet,
    regexes: RegexRules,
}

impl Automata {
    fn build(rules: Vec<PreparedRule<'_>>, skipped: &mut Vec<SkippedRule>) -> Automata {
        let mut folded = LiteralSetBuilder::default();
        let mut unfolded = LiteralSetBuilder::default();
        let mut regexes = RegexRulesBuilder::default();
        for rule in rules {
            match rule.test {
                Prepared::Regex {
                    pattern,
                    case_sensitive,
                } => regexes.add(pattern, case_sensitive, rule.rank, rule.id),
                Prepared::Literal {
                    kind,
                    pattern,
                    fold,
                } => {
                    let set = if fold { &mut folded } else { &mut unfolded };
                    set.add(kind, pattern, rule.rank);
                }
            }
        }
        Automata {
            folded: folded.build(),
            unfolded: unfolded.build(),
            regexes: regexes.build(skipped),
        }
    }

    fn spaced_used(&self) -> bool {
        self.unfolded.min_rank.min(self.regexes.min_rank) < NO_MATCH
    }

    fn best_rank(&self, message: &mut Normalised<'_>) -> u32 {
        let mut best = NO_MATCH;
        if self.folded.min_rank < best {
            best = self.folded.best_rank(message.folded().as_bytes(), best);
        }
        if self.unfolded.min_rank < best || self.regexes.min_rank < best {
            let spaced = message.spaced().as_bytes();
            best = self.unfolded.best_rank(spaced, best);
            best = self.regexes.best_rank(spaced, best);
        }
        best
    }
}

/// Ranks of the rules sharing one literal pattern, per kind.
#[derive(Debug, Clone, Copy)]
struct Ranks {
    contains: u32,
    prefix: u32,
}

#[derive(Default)]
struct LiteralSetBuilder {
    index: HashMap<String, usize>,
    ranks: Vec<Ranks>,
    exact: HashMap<Box<[u8]>, u32>,
    min_rank: Option<u32>,
}

impl LiteralSetBuilder {
    /// Rules arrive in rank order, so the first rule of a (pattern, kind) is the one that counts.
    fn add(&mut self, kind: MatchKind, pattern: String, rank: u32) {
        self.min_rank.get_or_insert(rank);
        if kind == MatchKind::Exact {
            self.exact
                .entry(pattern.into_bytes().into_boxed_slice())
                .or_insert(rank);
            return;
        }
        let next = self.ranks.len();
        let slot = match self.index.entry(pattern) {
            Entry::Occupied(entry) => *entry.get(),
            Entry::Vacant(entry) => {
                entry.insert(next);
                self.ranks.push(Ranks {
                    contains: NO_MATCH,
                    prefix: NO_MATCH,
                });
                next
            }
        };
        let ranks = &mut self.ranks[slot];
        let target = if kind == MatchKind::Prefix {
            &mut ranks.prefix
        } else {
            &mut ranks.contains
        };
        *target = (*target).min(rank);
    }

    fn build(self) -> LiteralSet {
        let automaton = if self.ranks.is_empty() {
            None
        } else {
            let mut patterns = vec![""; self.ranks.len()];
            for (pattern, &slot) in &self.index {
                patterns[slot] = pattern;
            }
            Some(
                AhoCorasick::builder()
                    .match_kind(AcMatchKind::Standard)
                    .build(&patterns)
                    .expect("non-empty literal patterns within aho-corasick's limits"),
            )
        };
        let mut exact_lengths = Vec::new();
        for pattern in self.exact.keys() {
            if exact_lengths.len() <= pattern.len() {
                exact_lengths.resize(pattern.len() + 1, false);
            }
            exact_lengths[pattern.len()] = true;
        }
        LiteralSet {
            automaton,
            ranks: self.ranks,
            exact: self.exact,
            exact_lengths,
            min_rank: self.min_rank.unwrap_or(NO_MATCH),
        }
    }
}

#[derive(Debug)]
struct LiteralSet {
    automaton: Option<AhoCorasick>,
    /// Per automaton pattern id.
    ranks: Vec<Ranks>,
    exact: HashMap<Box<[u8]>, u32>,
    /// `exact_lengths[n]`: some exact pattern is `n` bytes long; spares hashing most messages.
    exact_lengths: Vec<bool>,
    /// Smallest rank in the set; `NO_MATCH` when empty.
    min_rank: u32,
}

impl LiteralSet {
    fn best_rank(&self, text: &[u8], mut best: u32) -> u32 {
        if self.exact_lengths.get(text.len()).copied().unwrap_or(false) {
            if let Some(&rank) = self.exact.get(text) {
                best = best.min(rank);
            }
        }
        if let Some(automaton) = &self.automaton {
            for found in automaton.find_overlapping_iter(text) {
                let ranks = self.ranks[found.pattern().as_usize()];
                let mut rank = ranks.contains;
                if found.start() == 0 {
                    rank = rank.min(ranks.prefix);
                }
                best = best.min(rank);
                if best <= self.min_rank {
                    break; // Nothing in this set can do better.
                }
            }
        }
        best
    }
}

#[derive(Default)]
struct RegexRulesBuilder {
    /// Set pattern (with its case flag) → index in `patterns`; identical rules share one.
    index: HashMap<(String, bool), usize>,
    patterns: Vec<(String, bool, RuleId)>,
    ranks: Vec<u32>,
}

impl RegexRulesBuilder {
    fn add(&mut self, pattern: &str, case_sensitive: bool, rank: u32, id: &RuleId) {
        if let Entry::Vacant(entry) = self.index.entry((pattern.to_owned(), case_sensitive)) {
            entry.insert(self.patterns.len());
            self.patterns
                .push((pattern.to_owned(), case_sensitive, id.clone()));
            self.ranks.push(rank);
        }
    }

    /// A few regexes are tried one by one: a lone `Regex` uses its literal prefilter and is
    /// several times faster than a `RegexSet`, which has to track every pattern. Past
    /// [`SMALL_REGEX_COUNT`] the set wins.
    fn build(self, skipped: &mut Vec<SkippedRule>) -> RegexRules {
        let min_rank = |ranks: &[u32]| ranks.first().copied().unwrap_or(NO_MATCH);
        if self.patterns.len() <= SMALL_REGEX_COUNT {
            let mut regexes = Vec::new();
            let mut ranks = Vec::new();
            for ((pattern, case_sensitive, id), rank) in self.patterns.into_iter().zip(self.ranks) {
                match build_bytes_regex(&pattern, case_sensitive) {
                    Ok(regex) => {
                        regexes.push(regex);
                        ranks.push(rank);
                    }
                    Err(error) => skipped.push(SkippedRule { id, error }),
                }
            }
            return RegexRules {
                min_rank: min_rank(&ranks),
                engine: RegexEngine::Each(regexes),
                ranks,
            };
        }
        let (set, ranks) = build_set_skipping(self.patterns, self.ranks, skipped);
        RegexRules {
            min_rank: min_rank(&ranks),
            engine: RegexEngine::Set(set),
            ranks,
        }
    }
}

/// Up to this many `regex` rules are matched one by one rather than as a `RegexSet`.
const SMALL_REGEX_COUNT: usize = 8;

fn build_bytes_regex(pattern: &str, case_sensitive: bool) -> Result<Regex, RuleError> {
    RegexBuilder::new(pattern)
        .case_insensitive(!case_sensitive)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(regex_error)
}

/// The set's size limit is the per-rule limit times the number of rules, so it only fails if
/// some rule is over the per-rule limit (or invalid): those are then found one by one, skipped,
/// and the set is built from the rest.
fn build_set_skipping(
    patterns: Vec<(String, bool, RuleId)>,
    ranks: Vec<u32>,
    skipped: &mut Vec<SkippedRule>,
) -> (RegexSet, Vec<u32>) {
    if let Ok(set) = build_set(&patterns) {
        return (set, ranks);
    }
    let mut kept_patterns = Vec::new();
    let mut kept_ranks = Vec::new();
    for ((pattern, case_sensitive, id), rank) in patterns.into_iter().zip(ranks) {
        match build_bytes_regex(&pattern, case_sensitive) {
            Ok(_) => {
                kept_patterns.push((pattern, case_sensitive, id));
                kept_ranks.push(rank);
            }
            Err(error) => skipped.push(SkippedRule { id, error }),
        }
    }
    match build_set(&kept_patterns) {
        Ok(set) => (set, kept_ranks),
        Err(error) => {
            // Every rule compiles alone but not together: not expected with the scaled limit;
            // leave them all out rather than fail the instance.
            let error = regex_error(error);
            skipped.extend(kept_patterns.into_iter().map(|(_, _, id)| SkippedRule {
                id,
                error: error.clone(),
            }));
            (RegexSet::empty(), Vec::new())
        }
    }
}

fn build_set(patterns: &[(String, bool, RuleId)]) -> Result<RegexSet, regex::Error> {
    RegexSetBuilder::new(patterns.iter().map(|(pattern, case_sensitive, _)| {
        if *case_sensitive {
            pattern.clone()
        } else {
            format!("(?i){pattern}")
        }
    }))
    .size_limit(REGEX_SIZE_LIMIT.saturating_mul(patterns.len() + 1))
    .build()
}

#[derive(Debug)]
enum RegexEngine {
    Each(Vec<Regex>),
    Set(RegexSet),
}

#[derive(Debug)]
struct RegexRules {
    engine: RegexEngine,
    /// Per regex (or set pattern), ascending: patterns were added in rank order.
    ranks: Vec<u32>,
    min_rank: u32,
}

impl RegexRules {
    fn best_rank(&self, text: &[u8], best: u32) -> u32 {
        if self.min_rank >= best {
            return best;
        }
        match &self.engine {
            RegexEngine::Each(regexes) => regexes
                .iter()
                .zip(&self.ranks)
                .take_while(|&(_, &rank)| rank < best)
                .find(|(regex, _)| regex.is_match(text))
                .map_or(best, |(_, &rank)| rank),
            RegexEngine::Set(set) => {
                // `is_match` can stop at the first match; `matches` has to run every pattern
                // over the whole text, so it only runs when something matches.
                if !set.is_match(text) {
                    return best;
                }
                // Ranks ascend with the pattern index: the first matching pattern is the best.
                match set.matches(text).iter().next() {
                    Some(index) => best.min(self.ranks[index]),
                    None => best,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::InstanceId;
    use crate::rules::rule::build_regex;
    use crate::rules::rule::{RuleDraft, RuleMatch, RulePlatform};
    use crate::time::Timestamp;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn rule(id: &str, kind: MatchKind, pattern: &str, priority: i64) -> Rule {
        Rule {
            id: RuleId::parse(id).unwrap(),
            instance_id: InstanceId::parse("106540352242922").unwrap(),
            settings: RuleDraft {
                name: format!("rule {id}"),
                platform: RulePlatform::Tiktok,
                source_name: None,
                text_match: RuleMatch {
                    kind,
                    pattern: pattern.to_owned(),
                    case_sensitive: false,
                },
                campaign: None,
                ad: None,
                priority,
                enabled: true,
            },
            created_at: Timestamp::from_unix_seconds(1_750_000_000).unwrap(),
            updated_at: Timestamp::from_unix_seconds(1_750_000_000).unwrap(),
        }
    }

    fn id(n: u128) -> String {
        RuleId::from_parts(1_750_000_000_000, n).to_string()
    }

    /// The rule both strategies answer (they must agree).
    fn matched(rules: &[Rule], text: &str) -> Option<String> {
        let [in_order, automata] = [
            CompiledRules::compile_in_rank_order(rules),
            CompiledRules::compile_as_automata(rules),
        ]
        .map(|compiled| {
            compiled
                .first_match(text)
                .map(|rule| rule.settings.name.clone())
        });
        assert_eq!(in_order, automata, "{text:?}");
        in_order
    }

    #[test]
    fn every_kind_matches_the_normalised_message() {
        use MatchKind::*;
        let cases = [
            (Contains, "TikTok ad", "Hi, I saw your TIKTOK  ad!", true),
            (Contains, "tiktok ad", "Hi, I saw your tiktok\tad", true),
            (Contains, "tiktok ad", "Hi, I saw your tiktokad", false),
            (
                Contains,
                "  summer   sale ",
                "the SUMMER\n\nsale is on",
                true,
            ),
            (Exact, "I want the offer", "  i want  the OFFER ", true),
            (Exact, "I want the offer", "I want the offer!", false),
            (Exact, "I want the offer", "Yes, I want the offer", false),
            (
                Prefix,
                "Hello from google",
                "hello   from Google, is it available?",
                true,
            ),
            (Prefix, "Hello from google", "Oh, hello from google", false),
            (
                Regex,
                r"promo\s*code\s*\d{3}",
                "my PROMO code 123 please",
                true,
            ),
            (Regex, r"promo\s*code\s*\d{3}", "my promo code 12", false),
            (Regex, r"^hi\b", "  Hi there", true),
            (Regex, r"there$", "Hi there  ", true),
            (Regex, r"a  b", "a  b", false), // regexes see the whitespace-normalised text
            // ASCII text is compared raw: the first word also occurs overlapping a failed start.
            (Contains, "aa b", "aaa  b", true),
            (Contains, "aa b", "aaab", false),
            (Contains, "sale ref", "a SALE\t\u{b}ref!", true),
            (Prefix, "hello, i", " \n Hello,   I want", true),
            (Prefix, "hello, i", "hello,i want", false),
            (Exact, "i want it", "\tI  want it \r\n", true),
            (Exact, "i want it", "I want it!", false),
        ];
        for (kind, pattern, text, expected) in cases {
            let rules = [rule(&id(1), kind, pattern, 10)];
            assert_eq!(
                matched(&rules, text).is_some(),
                expected,
                "{kind} {pattern:?} on {text:?}"
            );
        }
    }

    #[test]
    fn case_insensitive_by_default_sensitive_when_asked() {
        let mut sensitive = rule(&id(1), MatchKind::Contains, "TikTok", 10);
        sensitive.settings.text_match.case_sensitive = true;
        assert!(matched(std::slice::from_ref(&sensitive), "via TikTok ad").is_some());
        assert!(matched(std::slice::from_ref(&sensitive), "via TIKTOK ad").is_none());
        // Whitespace is still normalised when case-sensitive.
        sensitive.settings.text_match.pattern = " TikTok  ad".into();
        assert!(matched(std::slice::from_ref(&sensitive), "TikTok\n ad").is_some());

        for kind in [MatchKind::Exact, MatchKind::Prefix, MatchKind::Regex] {
            let mut exact = rule(&id(2), kind, "Olá", 10);
            assert!(
                matched(std::slice::from_ref(&exact), "OLÁ").is_some(),
                "{kind}"
            );
            exact.settings.text_match.case_sensitive = true;
            assert!(
                matched(std::slice::from_ref(&exact), "OLÁ").is_none(),
                "{kind}"
            );
            assert!(
                matched(std::slice::from_ref(&exact), "Olá").is_some(),
                "{kind}"
            );
        }

        let regex = rule(&id(3), MatchKind::Regex, r"(?-i)TikTok", 10);
        assert!(matched(std::slice::from_ref(&regex), "tiktok").is_none());
    }

    #[test]
    fn unicode_folds_but_keeps_accents() {
        let text = "Olá, vi seu anúncio no TikTok";
        let hit = rule(&id(1), MatchKind::Contains, "ANÚNCIO no tiktok", 10);
        let miss = rule(&id(2), MatchKind::Contains, "anuncio", 10);
        assert!(matched(&[hit], text).is_some());
        assert!(matched(&[miss], text).is_none());
        let german = rule(&id(3), MatchKind::Exact, "STRASSE", 10);
        assert!(matched(&[german], "straße").is_some());
        let prefix = rule(&id(4), MatchKind::Prefix, "olá, VI", 10);
        assert!(matched(&[prefix], text).is_some());
    }

    #[test]
    fn priority_then_age_then_id() {
        let mut late_low = rule(&id(1), MatchKind::Contains, "ad", 5);
        late_low.settings.name = "priority 5".into();
        let mut high = rule(&id(2), MatchKind::Contains, "tiktok", 10);
        high.settings.name = "priority 10".into();
        assert_eq!(
            matched(&[high.clone(), late_low.clone()], "tiktok ad").as_deref(),
            Some("priority 5")
        );

        // Same priority: the older rule wins, whatever its id.
        let mut older = rule(&id(9), MatchKind::Regex, "tik", 10);
        older.settings.name = "older".into();
        older.created_at = Timestamp::from_unix_seconds(1_700_000_000).unwrap();
        assert_eq!(
            matched(&[high.clone(), older.clone()], "tiktok").as_deref(),
            Some("older")
        );

        // Same priority and age: the smaller id wins.
        let mut small_id = rule(&id(0), MatchKind::Prefix, "tik", 10);
        small_id.settings.name = "small id".into();
        assert_eq!(
            matched(&[high.clone(), small_id], "tiktok").as_deref(),
            Some("small id")
        );

        // Negative priorities come first.
        let mut negative = rule(&id(5), MatchKind::Exact, "tiktok ad", -3);
        negative.settings.name = "negative".into();
        assert_eq!(
            matched(&[late_low, high, negative], "TikTok ad").as_deref(),
            Some("negative")
        );
    }

    #[test]
    fn same_pattern_different_kinds_keep_their_own_rank() {
        let mut contains = rule(&id(1), MatchKind::Contains, "hello", 20);
        contains.settings.name = "contains".into();
        let mut prefix = rule(&id(2), MatchKind::Prefix, "hello", 10);
        prefix.settings.name = "prefix".into();
        let mut exact = rule(&id(3), MatchKind::Exact, "hello", 5);
        exact.settings.name = "exact".into();
        let rules = [contains, prefix, exact];
        assert_eq!(matched(&rules, "hello").as_deref(), Some("exact"));
        assert_eq!(matched(&rules, "hello there").as_deref(), Some("prefix"));
        assert_eq!(matched(&rules, "oh hello").as_deref(), Some("contains"));
        assert_eq!(matched(&rules, "hell"), None);
    }

    #[test]
    fn disabled_rules_are_ignored() {
        let mut disabled = rule(&id(1), MatchKind::Contains, "tiktok", 1);
        disabled.settings.enabled = false;
        let mut enabled = rule(&id(2), MatchKind::Contains, "tiktok", 2);
        enabled.settings.name = "enabled".into();
        assert_eq!(
            matched(&[disabled.clone(), enabled], "tiktok").as_deref(),
            Some("enabled")
        );
        assert_eq!(matched(&[disabled], "tiktok"), None);
        let compiled = CompiledRules::compile(&[]);
        assert!(compiled.is_empty());
        assert!(compiled.first_match("anything").is_none());
    }

    #[test]
    fn stored_rules_that_no_longer_compile_are_skipped_not_fatal() {
        // Once with few regexes (matched one by one), once with enough for a `RegexSet`.
        for fillers in [0, SMALL_REGEX_COUNT] {
            let mut rules = vec![
                rule(&id(1), MatchKind::Contains, "   ", 1),
                rule(&id(2), MatchKind::Regex, "(unclosed", 2),
                rule(&id(3), MatchKind::Regex, r"\w{1000}{1000}", 3),
                rule(&id(4), MatchKind::Regex, "tik+tok", 4),
                rule(&id(5), MatchKind::Regex, " ", 5),
            ];
            rules[3].settings.name = "good".into();
            rules.extend((0..fillers).map(|n| {
                rule(
                    &id(100 + n as u128),
                    MatchKind::Regex,
                    &format!("filler{n}"),
                    9,
                )
            }));
            for compiled in [
                CompiledRules::compile_in_rank_order(&rules),
                CompiledRules::compile_as_automata(&rules),
            ] {
                let mut skipped: Vec<_> = compiled.skipped().iter().map(|s| s.id.clone()).collect();
                skipped.sort();
                let expected: Vec<_> = [1, 2, 3, 5]
                    .map(|n| RuleId::parse(&id(n)).unwrap())
                    .to_vec();
                assert_eq!(skipped, expected, "{fillers} fillers");
                assert_eq!(
                    compiled
                        .first_match("tikkkTOK")
                        .map(|r| r.settings.name.as_str()),
                    Some("good")
                );
                assert!(compiled.first_match("   ").is_none());
                assert_eq!(compiled.first_match("a FILLER3").is_some(), fillers > 3);
            }
        }
    }

    /// The reference compiled rules must agree with: each rule on its own, in order.
    struct Naive<'a>(Vec<(&'a Rule, Option<regex::Regex>)>);

    impl<'a> Naive<'a> {
        fn new(rules: &'a [Rule]) -> Self {
            let mut ordered: Vec<&Rule> = rules.iter().filter(|r| r.settings.enabled).collect();
            ordered.sort_by(|a, b| a.evaluation_cmp(b));
            let compiled = ordered.into_iter().map(|rule| {
                let m = &rule.settings.text_match;
                let regex = (m.kind == MatchKind::Regex)
                    .then(|| build_regex(&m.pattern, m.case_sensitive).unwrap());
                (rule, regex)
            });
            Naive(compiled.collect())
        }

        fn first_match(&self, text: &str) -> Option<&'a Rule> {
            let spaced = normalize(text, false);
            let folded = normalize(text, true);
            let found = self.0.iter().find(|(rule, regex)| {
                let m = &rule.settings.text_match;
                let text = if m.case_sensitive { &spaced } else { &folded };
                let pattern = normalize(&m.pattern, !m.case_sensitive);
                match m.kind {
                    MatchKind::Regex => regex.as_ref().unwrap().is_match(&spaced),
                    MatchKind::Contains => text.contains(&pattern),
                    MatchKind::Prefix => text.starts_with(&pattern),
                    MatchKind::Exact => *text == pattern,
                }
            });
            found.map(|(rule, _)| *rule)
        }
    }

    const WORDS: [&str; 16] = [
        "tiktok", "TikTok", "ad", "AD", "olá", "OLÁ", "anúncio", "anuncio", "promo", "code", "123",
        "straße", "STRASSE", "x", "summer", "sale",
    ];
    const SPACES: [&str; 5] = [" ", "  ", "\t", "\u{a0}", "\n "];

    fn phrase(rng: &mut StdRng, max_words: usize) -> String {
        let words = rng.random_range(1..=max_words);
        let mut text = String::new();
        if rng.random_bool(0.2) {
            text.push_str(SPACES[rng.random_range(0..SPACES.len())]);
        }
        for i in 0..words {
            if i > 0 {
                text.push_str(SPACES[rng.random_range(0..SPACES.len())]);
            }
            text.push_str(WORDS[rng.random_range(0..WORDS.len())]);
        }
        if rng.random_bool(0.2) {
            text.push_str(SPACES[rng.random_range(0..SPACES.len())]);
        }
        text
    }

    fn random_regex(rng: &mut StdRng) -> String {
        let a = regex::escape(WORDS[rng.random_range(0..WORDS.len())]);
        let b = regex::escape(WORDS[rng.random_range(0..WORDS.len())]);
        match rng.random_range(0..6) {
            0 => format!(r"{a}\s+{b}"),
            1 => format!("^{a}"),
            2 => format!("{a}$"),
            3 => format!("({a}|{b})"),
            4 => format!("{a}.*{b}"),
            _ => r"\d+".to_owned(),
        }
    }

    #[test]
    fn compiled_rules_agree_with_a_naive_loop() {
        let mut rng = StdRng::seed_from_u64(0x5eed);
        let kinds = MatchKind::ALL;
        let (mut one_by_one, mut as_set, mut hits) = (0, 0, 0);
        for _ in 0..300 {
            let count = rng.random_range(0..50);
            let rules: Vec<Rule> = (0..count)
                .map(|n| {
                    let kind = kinds[rng.random_range(0..kinds.len())];
                    let pattern = if kind == MatchKind::Regex {
                        random_regex(&mut rng)
                    } else {
                        phrase(&mut rng, 3)
                    };
                    let mut r = rule(&id(rng.random_range(0..1_000_000)), kind, &pattern, 0);
                    r.settings.name = format!("rule {n}");
                    r.settings.priority = rng.random_range(-2..3);
                    r.created_at = Timestamp::from_unix_seconds(rng.random_range(0..3)).unwrap();
                    r.settings.text_match.case_sensitive = rng.random_bool(0.25);
                    r.settings.enabled = rng.random_bool(0.9);
                    r
                })
                .collect();
            let strategies = [
                CompiledRules::compile(&rules),
                CompiledRules::compile_in_rank_order(&rules),
                CompiledRules::compile_as_automata(&rules),
            ];
            assert!(strategies.iter().all(|c| c.skipped().is_empty()));
            let naive = Naive::new(&rules);
            match &strategies[2].matcher {
                Matcher::Automata(automata) => match automata.regexes.engine {
                    RegexEngine::Each(_) => one_by_one += 1,
                    RegexEngine::Set(_) => as_set += 1,
                },
                Matcher::InOrder(_) => panic!("automata were asked for"),
            }
            for _ in 0..50 {
                let text = phrase(&mut rng, 6);
                let expected = naive.first_match(&text).map(|r| &r.settings.name);
                for compiled in &strategies {
                    let actual = compiled.first_match(&text).map(|r| &r.settings.name);
                    assert_eq!(actual, expected, "text {text:?}, rules {rules:#?}");
                }
                hits += usize::from(expected.is_some());
            }
        }
        // The generator exercises both regex engines and both outcomes.
        assert!(one_by_one > 50 && as_set > 50, "{one_by_one} / {as_set}");
        assert!(
            hits > 3_000 && hits < 12_000,
            "{hits} of 15000 texts matched"
        );
    }

    #[test]
    fn ascii_whitespace_is_what_normalising_collapses() {
        for byte in 0..128u8 {
            assert_eq!(is_space(byte), char::from(byte).is_whitespace(), "{byte}");
        }
    }

    #[test]
    fn compiled_rules_are_shareable_across_threads() {
        fn assert_sync<T: Send + Sync>() {}
        assert_sync::<CompiledRules>();
    }
}
