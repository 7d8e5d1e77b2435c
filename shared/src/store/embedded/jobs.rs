//! The backfill job store in the embedded store.

use crate::ids::{InstanceId, JobId};
use crate::matching::backfill::{BackfillJob, JobStore};
use crate::store::embedded::{EmbeddedStore, JOBS, decode, encode, unavailable};
use crate::store::{CommitOutcome, StoreError};
use async_trait::async_trait;
use redb::ReadableTable;

#[async_trait]
impl JobStore for EmbeddedStore {
    async fn create_job(&self, job: &BackfillJob) -> Result<(), StoreError> {
        let job = job.clone();
        self.write(move |txn| {
            let mut jobs = txn.open_table(JOBS).map_err(unavailable)?;
            jobs.insert(
                (job.instance_id.as_str(), job.job_id.as_str()),
                encode(&job)?.as_slice(),
            )
            .map_err(unavailable)?;
            Ok(((), true))
        })
        .await
    }

    async fn load_job(
        &self,
        instance_id: &InstanceId,
        job_id: &JobId,
    ) -> Result<Option<BackfillJob>, StoreError> {
        self.load(JOBS, (instance_id.as_str(), job_id.as_str()))
    }

    async fn save_job(
        &self,
        job: &BackfillJob,
        expected_version: u64,
    ) -> Result<CommitOutcome, StoreError> {
        let job = job.clone();
        self.write(move |txn| {
            let mut jobs = txn.open_table(JOBS).map_err(unavailable)?;
            let key = (job.instance_id.as_str(), job.job_id.as_str());
            let stored = match jobs.get(key).map_err(unavailable)? {
                Some(bytes) => Some(decode::<BackfillJob>(bytes.value())?.version),
                None => None,
            };
            if stored != Some(expected_version) {
                return Ok((CommitOutcome::VersionConflict, false));
            }
            jobs.insert(key, encode(&job)?.as_slice())
                .map_err(unavailable)?;
            Ok((CommitOutcome::Applied, true))
        })
        .await
    }
}
