//! The instance registry on DynamoDB: one small item per instance in the counters table's
//! `#instances` partition, so the list is one Query. A contact commit carries the item only
//! until this process has seen one commit of the instance land, so the hot path pays for it
//! once per instance per Lambda container, and only committed events register an instance.

use crate::ids::InstanceId;
use crate::instances::InstanceStore;
use crate::store::StoreError;
use crate::store::dynamo::DynamoStore;
use crate::store::dynamo::toolkit::{query_items, string, unavailable};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::Mutex;

/// The registry's partition: `#` cannot appear in an instance id.
const REGISTRY: &str = "#instances";

/// Instances whose registry item this process has seen committed. Bounded: when full it
/// starts over, which costs one more registry item per instance, never a missed one.
#[derive(Default)]
pub(super) struct Registered(Mutex<HashSet<InstanceId>>);

const MAX_REMEMBERED: usize = 10_000;

impl Registered {
    fn contains(&self, instance: &InstanceId) -> bool {
        self.0.lock().expect("not poisoned").contains(instance)
    }

    fn insert(&self, instance: &InstanceId) {
        let mut seen = self.0.lock().expect("not poisoned");
        if seen.len() >= MAX_REMEMBERED {
            seen.clear();
        }
        seen.insert(instance.clone());
    }
}

impl DynamoStore {
    /// The registry item of `instance`: the same whenever it is written. An update, not a put,
    /// so that the roles that bump counters need no other action on the table.
    pub(super) fn registry_update(
        &self,
        instance: &InstanceId,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.tables.counters)
            .key("instance_id", string(REGISTRY))
            .key("day", string(instance.as_str()))
            .update_expression("SET registered = :yes")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .build()
            .map_err(unavailable)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Adds the registry item of `instance` to a contact commit while this process has not
    /// seen one land; answers whether it did, for [`Self::registry_landed`].
    pub(super) fn register_with(
        &self,
        instance: &InstanceId,
        items: &mut Vec<TransactWriteItem>,
    ) -> Result<bool, StoreError> {
        if self.registered.contains(instance) {
            return Ok(false);
        }
        items.push(self.registry_update(instance)?);
        Ok(true)
    }

    /// Remembers that a commit carrying the registry item of `instance` landed.
    pub(super) fn registry_landed(&self, instance: &InstanceId) {
        self.registered.insert(instance);
    }
}

#[async_trait]
impl InstanceStore for DynamoStore {
    async fn list_instances(&self, limit: usize) -> Result<Vec<InstanceId>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.tables.counters)
            .key_condition_expression("instance_id = :registry")
            .expression_attribute_values(":registry", string(REGISTRY))
            .projection_expression("#day")
            .expression_attribute_names("#day", "day")
            .limit(i32::try_from(limit).unwrap_or(i32::MAX).max(1));
        let mut instances = Vec::new();
        query_items(query, |item| {
            if instances.len() == limit {
                return Ok(ControlFlow::Break(()));
            }
            let Some(AttributeValue::S(id)) = item.get("day") else {
                return Err(StoreError::Corrupt("a registry item without its id".into()));
            };
            let instance =
                InstanceId::parse(id).map_err(|error| StoreError::Corrupt(error.to_string()))?;
            instances.push(instance);
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        Ok(instances)
    }
}
