//! The goal store in the embedded store: each instance's goal set as one record.

use crate::goals::GoalSet;
use crate::goals::store::GoalStore;
use crate::ids::InstanceId;
use crate::store::embedded::{EmbeddedStore, GOALS, decode, encode, unavailable};
use crate::store::{CommitOutcome, StoreError};
use async_trait::async_trait;
use redb::ReadableTable;

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
        let encoded = encode(goals)?;
        let instance = instance_id.clone();
        self.write(move |txn| {
            let mut table = txn.open_table(GOALS).map_err(unavailable)?;
            let stored = match table.get(instance.as_str()).map_err(unavailable)? {
                Some(bytes) => decode::<GoalSet>(bytes.value())?.version,
                None => 0,
            };
            if stored != expected_version {
                return Ok((CommitOutcome::VersionConflict, false));
            }
            table
                .insert(instance.as_str(), encoded.as_slice())
                .map_err(unavailable)?;
            Ok((CommitOutcome::Applied, true))
        })
        .await
    }
}
