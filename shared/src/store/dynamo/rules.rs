//! The rule store on DynamoDB: one item per rule, and one `#meta` item per instance holding
//! its rule count and rules version, written in the same transaction as the rule.

use crate::ids::InstanceId;
use crate::rules::store::{RuleStore, RuleWrite};
use crate::rules::{Rule, RuleId};
use crate::store::StoreError;
use crate::store::dynamo::toolkit::{
    Item, cancelled, from_item, get_item, is_conditional_failure, key, number, query_items, string,
    to_item, transact, unavailable,
};
use crate::store::dynamo::{DynamoStore, RULE_META_KEY};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use std::ops::ControlFlow;

impl DynamoStore {
    fn rule_put(&self, rule: &Rule, condition: &str) -> Result<TransactWriteItem, StoreError> {
        let item = to_item(rule)?;
        let put = Put::builder()
            .table_name(&self.tables.rules)
            .set_item(Some(item))
            .item("rule_id", string(rule.id.as_str()))
            .condition_expression(condition)
            .build()
            .map_err(unavailable)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Bumps the instance's rules version and moves its rule count by `count_change`; when
    /// `max_rules` is given, only while the count is below it.
    fn rule_meta_update(
        &self,
        instance_id: &InstanceId,
        count_change: i64,
        max_rules: Option<usize>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.tables.rules)
            .key("instance_id", string(instance_id.as_str()))
            .key("rule_id", string(RULE_META_KEY))
            .update_expression("ADD version :one, rule_count :change")
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":change", number(count_change));
        if let Some(max_rules) = max_rules {
            update = update
                .condition_expression("attribute_not_exists(rule_count) OR rule_count < :max")
                .expression_attribute_values(":max", number(max_rules));
        }
        Ok(TransactWriteItem::builder()
            .update(update.build().map_err(unavailable)?)
            .build())
    }

    fn rule_key(&self, instance_id: &InstanceId, rule_id: &str) -> Item {
        key(&[("instance_id", instance_id.as_str()), ("rule_id", rule_id)])
    }
}

#[async_trait]
impl RuleStore for DynamoStore {
    async fn list_rules(&self, instance_id: &InstanceId) -> Result<Vec<Rule>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.tables.rules)
            .key_condition_expression("instance_id = :instance")
            .expression_attribute_values(":instance", string(instance_id.as_str()))
            .consistent_read(true);
        let mut rules = Vec::new();
        query_items(query, |item| {
            let is_meta =
                matches!(item.get("rule_id"), Some(AttributeValue::S(id)) if id == RULE_META_KEY);
            if !is_meta {
                rules.push(from_item(item)?);
            }
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        Ok(rules)
    }

    async fn load_rule(
        &self,
        instance_id: &InstanceId,
        rule_id: &RuleId,
    ) -> Result<Option<Rule>, StoreError> {
        let key = self.rule_key(instance_id, rule_id.as_str());
        let found = get_item(&self.client, &self.tables.rules, key).await?;
        found.map(from_item).transpose()
    }

    async fn create_rule(&self, rule: &Rule, max_rules: usize) -> Result<RuleWrite, StoreError> {
        let items = vec![
            self.rule_put(rule, "attribute_not_exists(rule_id)")?,
            self.rule_meta_update(&rule.instance_id, 1, Some(max_rules))?,
            self.registry_update(&rule.instance_id)?,
        ];
        match transact(&self.client, items).await? {
            Ok(()) => Ok(RuleWrite::Done),
            Err(codes) if codes.get(1).is_some_and(is_conditional_failure) => {
                Ok(RuleWrite::LimitReached)
            }
            Err(codes) => Err(cancelled(&codes)),
        }
    }

    async fn replace_rule(&self, rule: &Rule) -> Result<RuleWrite, StoreError> {
        let items = vec![
            self.rule_put(rule, "attribute_exists(rule_id)")?,
            self.rule_meta_update(&rule.instance_id, 0, None)?,
        ];
        match transact(&self.client, items).await? {
            Ok(()) => Ok(RuleWrite::Done),
            Err(codes) if codes.first().is_some_and(is_conditional_failure) => {
                Ok(RuleWrite::NotFound)
            }
            Err(codes) => Err(cancelled(&codes)),
        }
    }

    async fn delete_rule(
        &self,
        instance_id: &InstanceId,
        rule_id: &RuleId,
    ) -> Result<RuleWrite, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.tables.rules)
            .set_key(Some(self.rule_key(instance_id, rule_id.as_str())))
            .condition_expression("attribute_exists(rule_id)")
            .build()
            .map_err(unavailable)?;
        let items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            self.rule_meta_update(instance_id, -1, None)?,
        ];
        match transact(&self.client, items).await? {
            Ok(()) => Ok(RuleWrite::Done),
            Err(codes) if codes.first().is_some_and(is_conditional_failure) => {
                Ok(RuleWrite::NotFound)
            }
            Err(codes) => Err(cancelled(&codes)),
        }
    }

    async fn rules_version(&self, instance_id: &InstanceId) -> Result<u64, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.rules)
            .set_key(Some(self.rule_key(instance_id, RULE_META_KEY)))
            .projection_expression("version")
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        match output.item.as_ref().and_then(|item| item.get("version")) {
            Some(AttributeValue::N(version)) => version
                .parse()
                .map_err(|_| StoreError::Corrupt("rules version".to_owned())),
            _ => Ok(0),
        }
    }
}
