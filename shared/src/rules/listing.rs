//! The rule operations the admin API and the dashboard share, so each query and each write
//! lives in one place: the listing with 7-day matches, create, replace, enable/disable and the
//! dry run of a text.

use crate::contact::store::ContactStore;
use crate::ids::InstanceId;
use crate::rules::store::{RuleStore, RuleWrite};
use crate::rules::{
    CompiledRules, MAX_RULES_PER_INSTANCE, Rule, RuleDraft, RuleId, sort_in_evaluation_order,
};
use crate::stats::{self, StatsWindow};
use crate::store::StoreError;
use crate::time::Timestamp;
use serde::Serialize;

/// A rule as listed: the stored rule and the contacts it attributed over the last 7 days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListedRule {
    /// The stored rule, its fields at the top level of the listed object.
    #[serde(flatten)]
    pub rule: Rule,
    /// Contacts it attributed over the default stats window (the last 7 days).
    pub matched_7d: u64,
}

/// All rules of the instance, disabled ones too, in evaluation order, each with its 7-day
/// matches read from the daily counters (O(days), whatever the number of contacts).
pub async fn list_with_matches(
    rules: &dyn RuleStore,
    contacts: &dyn ContactStore,
    instance_id: &InstanceId,
    now: Timestamp,
) -> Result<Vec<ListedRule>, StoreError> {
    let mut listed = rules.list_rules(instance_id).await?;
    sort_in_evaluation_order(&mut listed);
    let week = StatsWindow::ending(now, None).expect("the default window is valid");
    let counters = contacts
        .load_counter_days(instance_id, &week.first_day, &week.last_day)
        .await?;
    let matched = stats::matched_by_rule(&counters);
    Ok(listed
        .into_iter()
        .map(|rule| {
            let matched_7d = matched.get(rule.id.as_str()).copied().unwrap_or(0);
            ListedRule { rule, matched_7d }
        })
        .collect())
}

/// What creating a rule did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// Stored under a new id.
    Rule(Box<Rule>),
    /// The instance already holds [`MAX_RULES_PER_INSTANCE`] rules: nothing was stored.
    LimitReached,
}

/// Stores `draft` as a new rule of the instance, unless it is full.
pub async fn create(
    rules: &dyn RuleStore,
    instance_id: InstanceId,
    draft: RuleDraft,
    now: Timestamp,
) -> Result<Created, StoreError> {
    let rule = draft.into_rule(RuleId::new(), instance_id, now, now);
    match rules.create_rule(&rule, MAX_RULES_PER_INSTANCE).await? {
        RuleWrite::Done => Ok(Created::Rule(Box::new(rule))),
        RuleWrite::LimitReached => Ok(Created::LimitReached),
        RuleWrite::NotFound => Err(StoreError::Unavailable(
            "create answered not found".to_owned(),
        )),
    }
}

/// Replaces the rule's settings with `draft`; `None` when the instance has no such rule.
pub async fn replace(
    rules: &dyn RuleStore,
    instance_id: InstanceId,
    rule_id: &RuleId,
    draft: RuleDraft,
    now: Timestamp,
) -> Result<Option<Rule>, StoreError> {
    let Some(existing) = rules.load_rule(&instance_id, rule_id).await? else {
        return Ok(None);
    };
    // A replaced rule keeps its id and creation time, hence its place among equal priorities.
    let rule = draft.into_rule(existing.id, instance_id, existing.created_at, now);
    match rules.replace_rule(&rule).await? {
        RuleWrite::Done => Ok(Some(rule)),
        _ => Ok(None),
    }
}

/// Turns the rule on or off, keeping every other setting; `None` when there is no such rule.
pub async fn set_enabled(
    rules: &dyn RuleStore,
    instance_id: InstanceId,
    rule_id: &RuleId,
    enabled: bool,
    now: Timestamp,
) -> Result<Option<Rule>, StoreError> {
    let Some(existing) = rules.load_rule(&instance_id, rule_id).await? else {
        return Ok(None);
    };
    let draft = RuleDraft {
        enabled,
        ..existing.settings
    };
    replace(rules, instance_id, rule_id, draft, now).await
}

/// The rule that would attribute a first message reading `text` now, changing nothing.
pub async fn first_match(
    rules: &dyn RuleStore,
    instance_id: &InstanceId,
    text: &str,
) -> Result<Option<Rule>, StoreError> {
    let stored = rules.list_rules(instance_id).await?;
    Ok(CompiledRules::compile(&stored).first_match(text).cloned())
}
