//! The backfill job store on DynamoDB: one item per job, saved under a version condition.

use crate::ids::{InstanceId, JobId};
use crate::matching::backfill::{BackfillJob, JobStore};
use crate::store::dynamo::DynamoStore;
use crate::store::dynamo::toolkit::{
    conditional_put, from_item, get_item, key, number, to_item, unavailable,
};
use crate::store::{CommitOutcome, StoreError};
use async_trait::async_trait;

#[async_trait]
impl JobStore for DynamoStore {
    async fn create_job(&self, job: &BackfillJob) -> Result<(), StoreError> {
        let item = to_item(job)?;
        self.client
            .put_item()
            .table_name(&self.tables.jobs)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(job_id)")
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn load_job(
        &self,
        instance_id: &InstanceId,
        job_id: &JobId,
    ) -> Result<Option<BackfillJob>, StoreError> {
        let key = key(&[
            ("instance_id", instance_id.as_str()),
            ("job_id", job_id.as_str()),
        ]);
        let found = get_item(&self.client, &self.tables.jobs, key).await?;
        found.map(from_item).transpose()
    }

    async fn save_job(
        &self,
        job: &BackfillJob,
        expected_version: u64,
    ) -> Result<CommitOutcome, StoreError> {
        let item = to_item(job)?;
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.jobs)
            .set_item(Some(item))
            .condition_expression("#version = :expected")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":expected", number(expected_version))
            .send()
            .await;
        Ok(if conditional_put(result)? {
            CommitOutcome::Applied
        } else {
            CommitOutcome::VersionConflict
        })
    }
}
