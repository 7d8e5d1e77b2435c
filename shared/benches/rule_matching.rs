//! Rule matching on ~100-byte messages with 10, 100, 1,000 and 10,000 rules of mixed kinds
//! (about 3% regex): compiled rules beside a naive loop over one `regex::Regex` per rule, in the
//! same run; both strategies of the compiled rules (in rank order, automata) side by side at
//! 10-60 rules, where `CompiledRules::IN_ORDER_MAX_RULES` is chosen; and compile time. Aims: at
//! most 2 µs per message, never slower than the loop, at most 50 ms to compile 10,000 literal
//! rules.
//!
//! cargo bench -p shared --bench rule_matching [-- --warm-up-time 1 --measurement-time 3]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use regex::Regex;
use shared::ids::InstanceId;
use shared::rules::{
    CompiledRules, MatchKind, Rule, RuleDraft, RuleId, RuleMatch, RulePlatform,
    sort_in_evaluation_order,
};
use shared::time::Timestamp;
use std::hint::black_box;
use std::time::Duration;

const WORDS: [&str; 12] = [
    "summer", "winter", "promo", "deal", "offer", "sale", "bundle", "gift", "vip", "flash", "club",
    "plan",
];

/// `count` enabled rules; `regex_share` of them are regexes, the rest are split between
/// contains, prefix and exact. Every pattern carries a 5-digit code so that each rule is
/// distinct and a message can be aimed at one rule.
fn rules(count: usize, regex_share: f64, seed: u64) -> Vec<Rule> {
    let mut rng = StdRng::seed_from_u64(seed);
    let instance = InstanceId::parse("106540352242922").unwrap();
    (0..count)
        .map(|n| {
            let word = WORDS[rng.random_range(0..WORDS.len())];
            let (kind, pattern) = if rng.random_bool(regex_share) {
                (
                    MatchKind::Regex,
                    format!(r"(?:promo|coupon)\s*code\s*{n:05}\b"),
                )
            } else {
                match rng.random_range(0..10) {
                    0..=4 => (MatchKind::Contains, format!("{word} ref {n:05}")),
                    5..=7 => (
                        MatchKind::Prefix,
                        format!("Hello, I want the {word} offer {n:05}"),
                    ),
                    _ => (MatchKind::Exact, format!("I want the {word} deal {n:05}")),
                }
            };
            let created =
                Timestamp::from_unix_seconds(1_750_000_000 + rng.random_range(0..1000)).unwrap();
            Rule {
                id: RuleId::from_parts(1_750_000_000_000 + n as u128, rng.random()),
                instance_id: instance.clone(),
                settings: RuleDraft {
                    name: format!("rule {n}"),
                    platform: RulePlatform::Tiktok,
                    source_name: None,
                    text_match: RuleMatch {
                        kind,
                        pattern,
                        case_sensitive: rng.random_bool(0.1),
                    },
                    campaign: Some(format!("campaign-{word}")),
                    ad: None,
                    priority: rng.random_range(0..1_000),
                    enabled: true,
                },
                created_at: created,
                updated_at: created,
            }
        })
        .collect()
}

/// A ~100-byte message that the given rule matches, in the shape a customer would send it.
fn message_for(rule: &Rule) -> String {
    let pattern = &rule.settings.text_match.pattern;
    match rule.settings.text_match.kind {
        MatchKind::Contains => format!(
            "Hi!  I saw your ad on TikTok yesterday, {pattern} - is it still available today?"
        ),
        MatchKind::Prefix => format!("{pattern}  that I saw on TikTok, is it still available?"),
        MatchKind::Exact => format!("  {pattern} "),
        MatchKind::Regex => {
            let code = &pattern[pattern.len() - 7..pattern.len() - 2];
            format!("Hi! I saw your ad on TikTok yesterday, coupon code {code}: is it still on?")
        }
    }
}

/// The naive matcher: each rule translated to an equivalent regex on the raw message (spaces
/// as `\s+`, ends trimmed, `(?i)` unless case-sensitive), tried one by one in evaluation order.
fn naive(rules: &[Rule]) -> Vec<(Regex, usize)> {
    let mut ordered: Vec<(usize, &Rule)> = rules.iter().enumerate().collect();
    ordered.sort_by(|a, b| a.1.evaluation_cmp(b.1));
    ordered
        .into_iter()
        .map(|(index, rule)| {
            let m = &rule.settings.text_match;
            let flags = if m.case_sensitive { "" } else { "(?i)" };
            let literal = m
                .pattern
                .split_whitespace()
                .map(regex::escape)
                .collect::<Vec<_>>()
                .join(r"\s+");
            let source = match m.kind {
                MatchKind::Contains => format!("{flags}{literal}"),
                MatchKind::Prefix => format!(r"{flags}^\s*{literal}"),
                MatchKind::Exact => format!(r"{flags}^\s*{literal}\s*$"),
                MatchKind::Regex => format!("{flags}{}", m.pattern),
            };
            (Regex::new(&source).unwrap(), index)
        })
        .collect()
}

fn naive_first_match<'a>(
    naive: &[(Regex, usize)],
    rules: &'a [Rule],
    text: &str,
) -> Option<&'a Rule> {
    naive
        .iter()
        .find(|(regex, _)| regex.is_match(text))
        .map(|(_, index)| &rules[*index])
}

/// Messages matched by a rule early and late in evaluation order, by a regex rule, and by none.
fn messages(rules: &[Rule]) -> Vec<(&'static str, String)> {
    let mut ordered = rules.to_vec();
    sort_in_evaluation_order(&mut ordered);
    let literal = |from: usize| {
        ordered[from..]
            .iter()
            .chain(ordered.iter())
            .find(|r| {
                r.settings.text_match.kind == MatchKind::Contains
                    && !r.settings.text_match.case_sensitive
            })
            .unwrap()
    };
    let mut messages = vec![
        ("early", message_for(literal(ordered.len() / 100))),
        ("late", message_for(literal(ordered.len() * 99 / 100))),
        (
            "none",
            "Hi!  I saw your ad on TikTok yesterday, flash ref 99999 - is it still available today?"
                .to_owned(),
        ),
    ];
    if let Some(regex_rule) = ordered
        .iter()
        .rev()
        .find(|r| r.settings.text_match.kind == MatchKind::Regex)
    {
        messages.push(("regex", message_for(regex_rule)));
    }
    messages
}

/// A rule count, its rules and their labelled messages.
type Case = (usize, Vec<Rule>, Vec<(&'static str, String)>);

/// Rule sets and their messages, each message checked against the naive loop first: speed
/// means nothing unless both matchers agree.
fn cases(counts: &[usize]) -> Vec<Case> {
    counts
        .iter()
        .map(|&count| {
            let rules = rules(count, 0.03, count as u64);
            let naive = naive(&rules);
            let messages = messages(&rules);
            for compiled in [
                CompiledRules::compile(&rules),
                CompiledRules::compile_in_rank_order(&rules),
                CompiledRules::compile_as_automata(&rules),
            ] {
                assert!(compiled.skipped().is_empty());
                for (label, text) in &messages {
                    let expected = naive_first_match(&naive, &rules, text).map(|r| &r.id);
                    assert_eq!(
                        compiled.first_match(text).map(|r| &r.id),
                        expected,
                        "{text}"
                    );
                    assert_eq!(expected.is_some(), *label != "none", "{label}: {text}");
                }
            }
            (count, rules, messages)
        })
        .collect()
}

fn first_match(c: &mut Criterion) {
    let mut group = c.benchmark_group("first_match");
    for (count, rules, messages) in cases(&[10, 100, 1_000, 10_000]) {
        let compiled = CompiledRules::compile(&rules);
        assert_eq!(
            compiled.tests_in_rank_order(),
            count <= CompiledRules::IN_ORDER_MAX_RULES
        );
        let naive = naive(&rules);
        for (label, text) in messages {
            let id = format!("{count}_rules/{label}");
            group.bench_with_input(BenchmarkId::new("compiled", &id), &text, |b, text| {
                b.iter(|| compiled.first_match(black_box(text)))
            });
            group.bench_with_input(
                BenchmarkId::new("naive_regex_loop", &id),
                &text,
                |b, text| b.iter(|| naive_first_match(&naive, &rules, black_box(text))),
            );
        }
    }
    group.finish();
}

/// Both strategies on the same rules, around the threshold between them.
fn strategy(c: &mut Criterion) {
    let mut group = c.benchmark_group("strategy");
    for (count, rules, messages) in cases(&[10, 20, 30, 40, 60]) {
        let in_order = CompiledRules::compile_in_rank_order(&rules);
        let automata = CompiledRules::compile_as_automata(&rules);
        for (label, text) in messages {
            let id = format!("{count}_rules/{label}");
            group.bench_with_input(BenchmarkId::new("in_rank_order", &id), &text, |b, text| {
                b.iter(|| in_order.first_match(black_box(text)))
            });
            group.bench_with_input(BenchmarkId::new("automata", &id), &text, |b, text| {
                b.iter(|| automata.first_match(black_box(text)))
            });
        }
    }
    group.finish();
}

fn compile(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    group.sample_size(20);
    let literal = rules(10_000, 0.0, 7);
    group.bench_function("10000_literal_rules", |b| {
        b.iter(|| CompiledRules::compile(black_box(&literal)))
    });
    let mixed = rules(10_000, 0.03, 7);
    group.bench_function("10000_mixed_rules_3pct_regex", |b| {
        b.iter(|| CompiledRules::compile(black_box(&mixed)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // Short by default so the whole run fits in a few minutes; the command line overrides it.
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = first_match, strategy, compile
}
criterion_main!(benches);
