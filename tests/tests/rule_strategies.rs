//! The two strategies of compiled rules — testing each rule in rank order (a few rules) and
//! automata (many) — answer the same rule for any rule set and message, on both sides of the
//! threshold `CompiledRules::compile` chooses between them by, and that it chooses by the count.
//!
//! Rule sets and messages are drawn from a small vocabulary so that rules match often, with
//! words that overlap (`a`, `aa`, `ab`), case and folding edges (`straße`/`STRASSE`, Kelvin `K`,
//! long `ſ`, `ﬁ`, `İ`) and every kind of whitespace normalising collapses (tabs, vertical tab,
//! no-break and ideographic spaces), so the ASCII fast path and the normalised one both run.

use proptest::prelude::*;
use proptest::test_runner::Config;
use shared::ids::InstanceId;
use shared::rules::{CompiledRules, MatchKind, Rule, RuleDraft, RuleId, RuleMatch, RulePlatform};
use shared::time::Timestamp;

const WORDS: &[&str] = &[
    "a", "aa", "aaa", "ab", "ba", "b", "a", "aa", "sale", "SALE", "Sale", "ref", "00000", "00007",
    "hello,", "olá", "OLÁ", "straße", "STRASSE", "\u{212a}", "k", "ſ", "s", "ﬁ", "fi", "İ", "x!",
];
const SPACES: &[&str] = &[
    " ", " ", " ", "  ", "\t", "\n ", "\u{b}", "\u{a0}", "\u{3000}", "", "",
];

fn words(max: usize) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(prop::sample::select(WORDS).prop_map(str::to_owned), 1..=max)
}

/// Words joined by random whitespace (sometimes none), sometimes with whitespace at the ends.
fn spaced(words: Vec<String>) -> impl Strategy<Value = String> {
    let count = words.len();
    (
        prop::collection::vec(prop::sample::select(SPACES), count + 1),
        any::<(bool, bool)>(),
    )
        .prop_map(move |(spaces, (lead, trail))| {
            let mut text = String::new();
            if lead {
                text.push_str(spaces[count]);
            }
            for (index, word) in words.iter().enumerate() {
                if index > 0 {
                    text.push_str(spaces[index]);
                }
                text.push_str(word);
            }
            if trail {
                text.push_str(spaces[0]);
            }
            text
        })
}

fn phrase(max: usize) -> impl Strategy<Value = String> {
    words(max).prop_flat_map(spaced)
}

/// No word has a character regexes treat specially, so words go in as they are.
fn regex_pattern() -> impl Strategy<Value = String> {
    let word = || prop::sample::select(WORDS);
    (word(), word(), 0..8).prop_map(|(a, b, shape)| match shape {
        0 => format!(r"{a}\s+{b}"),
        1 => format!("^{a}"),
        2 => format!("{a}$"),
        3 => format!("({a}|{b})"),
        4 => format!("{a}.*{b}"),
        5 => format!("{a} {b}"),
        6 => r"\d+".to_owned(),
        _ => format!(r"\b{a}\b"),
    })
}

fn rule() -> impl Strategy<Value = Rule> {
    let kind = prop::sample::select(MatchKind::ALL.to_vec());
    (
        kind,
        any::<u128>(),
        -2i64..3,
        0i64..3,
        any::<(bool, bool)>(),
    )
        .prop_flat_map(|(kind, id, priority, created, flags)| {
            let pattern = if kind == MatchKind::Regex {
                regex_pattern().boxed()
            } else {
                phrase(3).boxed()
            };
            pattern.prop_map(move |pattern| (kind, pattern, id, priority, created, flags))
        })
        .prop_map(
            |(kind, pattern, id, priority, created, (case_sensitive, disabled))| {
                let created = Timestamp::from_unix_seconds(1_750_000_000 + created).unwrap();
                Rule {
                    id: RuleId::from_parts(1_750_000_000_000, id >> 48),
                    instance_id: InstanceId::parse("106540352242922").unwrap(),
                    settings: RuleDraft {
                        name: pattern.clone(),
                        platform: RulePlatform::Tiktok,
                        source_name: None,
                        text_match: RuleMatch {
                            kind,
                            pattern,
                            case_sensitive,
                        },
                        campaign: None,
                        ad: None,
                        priority,
                        // One in eight disabled.
                        enabled: !(disabled && id % 4 == 0),
                    },
                    created_at: created,
                    updated_at: created,
                }
            },
        )
}

/// Up to twice the threshold, so both strategies are chosen.
fn rule_set() -> impl Strategy<Value = Vec<Rule>> {
    prop::collection::vec(rule(), 0..=2 * CompiledRules::IN_ORDER_MAX_RULES + 4)
}

/// A message: random words, or a rule's pattern respaced (and re-cased) among other words, so
/// that most messages match some rule.
fn message(rules: &[Rule]) -> BoxedStrategy<String> {
    let patterns: Vec<String> = rules
        .iter()
        .filter(|rule| rule.settings.text_match.kind != MatchKind::Regex)
        .map(|rule| rule.settings.text_match.pattern.clone())
        .collect();
    if patterns.is_empty() {
        return phrase(6).boxed();
    }
    let from_rule = (
        prop::sample::select(patterns),
        prop::collection::vec(prop::sample::select(WORDS), 0..3),
        prop::collection::vec(prop::sample::select(WORDS), 0..3),
        0..3,
    )
        .prop_flat_map(|(pattern, before, after, case)| {
            let mut all: Vec<String> = before.iter().map(|w| w.to_string()).collect();
            all.extend(pattern.split_whitespace().map(|word| match case {
                0 => word.to_uppercase(),
                1 => word.to_lowercase(),
                _ => word.to_owned(),
            }));
            all.extend(after.iter().map(|w| w.to_string()));
            spaced(all)
        });
    prop_oneof![1 => phrase(6), 3 => from_rule].boxed()
}

fn case() -> impl Strategy<Value = (Vec<Rule>, Vec<String>)> {
    rule_set().prop_flat_map(|rules| {
        let messages = prop::collection::vec(message(&rules), 1..12);
        (Just(rules), messages)
    })
}

proptest! {
    #![proptest_config(Config { cases: 400, failure_persistence: None, ..Config::default() })]

    #[test]
    fn both_strategies_answer_the_same_rule((rules, messages) in case()) {
        let chosen = CompiledRules::compile(&rules);
        let in_order = CompiledRules::compile_in_rank_order(&rules);
        let automata = CompiledRules::compile_as_automata(&rules);
        prop_assert!(in_order.tests_in_rank_order());
        prop_assert!(!automata.tests_in_rank_order());
        prop_assert!(chosen.skipped().is_empty() && in_order.skipped().is_empty());

        let enabled: Vec<&Rule> = rules.iter().filter(|rule| rule.settings.enabled).collect();
        let regexes = enabled
            .iter()
            .filter(|rule| rule.settings.text_match.kind == MatchKind::Regex)
            .count();
        prop_assert_eq!(
            chosen.tests_in_rank_order(),
            enabled.len() <= CompiledRules::IN_ORDER_MAX_RULES
                && regexes <= CompiledRules::IN_ORDER_MAX_REGEXES
        );

        for text in &messages {
            let expected = automata.first_match(text).map(|rule| &rule.id);
            prop_assert_eq!(in_order.first_match(text).map(|rule| &rule.id), expected, "{:?}", text);
            prop_assert_eq!(chosen.first_match(text).map(|rule| &rule.id), expected, "{:?}", text);
        }
    }
}
