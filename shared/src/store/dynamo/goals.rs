//! The goal store on DynamoDB: one item per instance in the goals table, `instance_id` →
//! `version` and the set as `goals` (JSON text: a few KB at most), put under a version
//! condition.

use crate::goals::GoalSet;
use crate::goals::store::GoalStore;
use crate::ids::InstanceId;
use crate::store::dynamo::DynamoStore;
use crate::store::dynamo::toolkit::{get_item, key, put_versioned, string};
use crate::store::{CommitOutcome, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

const SET: &str = "goals";

#[async_trait]
impl GoalStore for DynamoStore {
    async fn load_goals(&self, instance_id: &InstanceId) -> Result<GoalSet, StoreError> {
        let found = get_item(
            &self.client,
            &self.tables.goals,
            key(&[("instance_id", instance_id.as_str())]),
        )
        .await?;
        match found.as_ref().and_then(|item| item.get(SET)) {
            None => Ok(GoalSet::default()),
            Some(AttributeValue::S(text)) => {
                serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
            }
            Some(_) => Err(StoreError::Corrupt("goals is not text".to_owned())),
        }
    }

    async fn save_goals(
        &self,
        instance_id: &InstanceId,
        goals: &GoalSet,
        expected_version: u64,
    ) -> Result<CommitOutcome, StoreError> {
        let text = serde_json::to_string(goals).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut item = key(&[("instance_id", instance_id.as_str())]);
        item.insert(SET.to_owned(), string(&text));
        put_versioned(
            &self.client,
            &self.tables.goals,
            item,
            "instance_id",
            goals.version,
            expected_version,
        )
        .await
    }
}
