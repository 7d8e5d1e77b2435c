//! The rule store in the embedded store: rules by instance, with each instance's rule count
//! and version in `RULE_META`, changed in the same transaction as the rule.

use crate::ids::InstanceId;
use crate::rules::store::{RuleStore, RuleWrite};
use crate::rules::{Rule, RuleId};
use crate::store::StoreError;
use crate::store::embedded::{EmbeddedStore, RULE_META, RULES, decode, encode, unavailable};
use async_trait::async_trait;
use redb::{ReadableTable, WriteTransaction};

/// Moves the instance's rule count as `count` says and bumps its rules version, after a change
/// to a rule that exists (so an instance without meta counts one rule).
fn bump_rules_version(
    txn: &WriteTransaction,
    instance: &str,
    count: impl Fn(u64) -> u64,
) -> Result<(), StoreError> {
    let mut meta = txn.open_table(RULE_META).map_err(unavailable)?;
    let (stored, version) = meta
        .get(instance)
        .map_err(unavailable)?
        .map_or((1, 0), |v| v.value());
    meta.insert(instance, (count(stored), version + 1))
        .map_err(unavailable)?;
    Ok(())
}

#[async_trait]
impl RuleStore for EmbeddedStore {
    async fn list_rules(&self, instance_id: &InstanceId) -> Result<Vec<Rule>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let table = txn.open_table(RULES).map_err(unavailable)?;
        let instance = instance_id.as_str();
        let mut rules = Vec::new();
        for entry in table.range((instance, "")..).map_err(unavailable)? {
            let (key, bytes) = entry.map_err(unavailable)?;
            if key.value().0 != instance {
                break;
            }
            rules.push(decode(bytes.value())?);
        }
        Ok(rules)
    }

    async fn load_rule(
        &self,
        instance_id: &InstanceId,
        rule_id: &RuleId,
    ) -> Result<Option<Rule>, StoreError> {
        self.load(RULES, (instance_id.as_str(), rule_id.as_str()))
    }

    async fn create_rule(&self, rule: &Rule, max_rules: usize) -> Result<RuleWrite, StoreError> {
        let rule = rule.clone();
        self.write(move |txn| {
            let mut meta = txn.open_table(RULE_META).map_err(unavailable)?;
            let instance = rule.instance_id.as_str();
            let (count, version) = meta
                .get(instance)
                .map_err(unavailable)?
                .map_or((0, 0), |v| v.value());
            if count as usize >= max_rules {
                return Ok((RuleWrite::LimitReached, false));
            }
            let mut rules = txn.open_table(RULES).map_err(unavailable)?;
            let key = (instance, rule.id.as_str());
            if rules.get(key).map_err(unavailable)?.is_some() {
                return Err(StoreError::Corrupt(format!(
                    "rule id {} already exists",
                    rule.id
                )));
            }
            rules
                .insert(key, encode(&rule)?.as_slice())
                .map_err(unavailable)?;
            meta.insert(instance, (count + 1, version + 1))
                .map_err(unavailable)?;
            super::instances::register(txn, instance)?;
            Ok((RuleWrite::Done, true))
        })
        .await
    }

    async fn replace_rule(&self, rule: &Rule) -> Result<RuleWrite, StoreError> {
        let rule = rule.clone();
        self.write(move |txn| {
            let mut rules = txn.open_table(RULES).map_err(unavailable)?;
            let instance = rule.instance_id.as_str();
            let key = (instance, rule.id.as_str());
            if rules.get(key).map_err(unavailable)?.is_none() {
                return Ok((RuleWrite::NotFound, false));
            }
            rules
                .insert(key, encode(&rule)?.as_slice())
                .map_err(unavailable)?;
            bump_rules_version(txn, instance, |count| count)?;
            Ok((RuleWrite::Done, true))
        })
        .await
    }

    async fn delete_rule(
        &self,
        instance_id: &InstanceId,
        rule_id: &RuleId,
    ) -> Result<RuleWrite, StoreError> {
        let (instance_id, rule_id) = (instance_id.clone(), rule_id.clone());
        self.write(move |txn| {
            let mut rules = txn.open_table(RULES).map_err(unavailable)?;
            let instance = instance_id.as_str();
            if rules
                .remove((instance, rule_id.as_str()))
                .map_err(unavailable)?
                .is_none()
            {
                return Ok((RuleWrite::NotFound, false));
            }
            bump_rules_version(txn, instance, |count| count.saturating_sub(1))?;
            Ok((RuleWrite::Done, true))
        })
        .await
    }

    async fn rules_version(&self, instance_id: &InstanceId) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let meta = txn.open_table(RULE_META).map_err(unavailable)?;
        let found = meta.get(instance_id.as_str()).map_err(unavailable)?;
        Ok(found.map_or(0, |value| value.value().1))
    }
}
