//! The goal store in the embedded store: each instance's goal set as one record.

use crate::goals::GoalSet;
use crate::goals::store::GoalStore;
use crate::ids::InstanceId;
use crate::store::embedded::{EmbeddedStore, GOALS};
use crate::store::{CommitOutcome, StoreError};
use async_trait::async_trait;

#[async_trait]
impl GoalStore for EmbeddedStore {
    async fn load_goals(&self, instance_id: &InstanceId) -> Result<GoalSet, StoreError> {
        Ok(self.load(GOALS, instance_id.as_str())?.unwrap_or_default())
    }

    async fn save_goals(
        &self,
        instance_id: &InstanceId,
        goals: &GoalSet,
        expected_version: u64,
    ) -> Result<CommitOutcome, StoreError> {
        self.save_versioned(GOALS, instance_id.as_str(), goals, expected_version)
            .await
    }
}
