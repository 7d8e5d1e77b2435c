//! The goal store: each instance's goals as one record, changed under a version check.

use super::GoalSet;
use crate::ids::InstanceId;
use crate::store::{CommitOutcome, StoreError};
use async_trait::async_trait;

/// Each instance's goals, as one small record.
#[async_trait]
pub trait GoalStore: Send + Sync + 'static {
    /// The instance's goals; an empty set at version 0 when it has none.
    async fn load_goals(&self, instance_id: &InstanceId) -> Result<GoalSet, StoreError>;

    /// Stores `goals` (its `version` already moved on) if the stored set is still at
    /// `expected_version`; `VersionConflict` otherwise, writing nothing.
    async fn save_goals(
        &self,
        instance_id: &InstanceId,
        goals: &GoalSet,
        expected_version: u64,
    ) -> Result<CommitOutcome, StoreError>;
}
