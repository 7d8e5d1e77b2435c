//! The match queue: the jobs the queue worker runs, on SQS in AWS and in-process locally.

use crate::ids::{ContactId, InstanceId, JobId};
use crate::revenue::Click;
use crate::time::Timestamp;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Asks the queue worker to apply the instance's text rules to one contact's first message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchJob {
    /// The instance of the contact to match.
    pub instance_id: InstanceId,
    /// The contact whose first message to match.
    pub contact_id: ContactId,
}

/// One page of a backfill: the contacts after `after` in the job's window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillPage {
    /// The instance the backfill runs for.
    pub instance_id: InstanceId,
    /// The backfill job this page belongs to.
    pub job_id: JobId,
    /// Pages count from 1; the job records the last one done, which makes a redelivered page
    /// a no-op.
    pub page: u64,
    /// The listing position this page starts after; `None` for the first page.
    pub after: Option<String>,
}

/// What travels on the match queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum QueueJob {
    /// Apply the text rules to one contact.
    Match(MatchJob),
    /// Run one page of a backfill.
    BackfillPage(BackfillPage),
    /// A click the redirect could not record: complete (id and time fixed at the redirect), so
    /// recording it again on a redelivery changes nothing.
    RecordClick(Box<Click>),
    /// Tell one destination of one trigger (the outbound queue's only job).
    Outbound(Box<crate::outbound::OutboundJob>),
}

/// The queue did not accept the job; the caller retries or fails the request.
#[derive(Debug, thiserror::Error)]
#[error("queue unavailable: {0}")]
pub struct QueueError(pub String);

/// Where work that must not hold up a webhook answer goes, to run once it is durably queued.
#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    /// Returns once the job is durably queued.
    async fn enqueue(&self, job: &QueueJob) -> Result<(), QueueError>;
}

/// What runs the jobs a queue delivers (the queue worker), for a queue that delivers them
/// itself: the in-process one.
#[async_trait]
pub trait JobRunner: Send + Sync + 'static {
    /// Runs a batch of messages (id, body); answers the ids of those that failed and must be
    /// delivered again.
    async fn handle_batch(&self, messages: &[(String, String)], now: Timestamp) -> Vec<String>;

    /// The queue the runner's follow-up jobs (a backfill's next page) go to.
    fn attach_queue(&self, queue: Arc<dyn JobQueue>);
}

/// Deliveries of one message before it is dead-lettered (the template's `maxReceiveCount`).
pub const MAX_RECEIVES: u32 = 5;

pub mod in_process;
#[cfg(feature = "aws")]
pub mod sqs;

pub use in_process::InProcessQueue;
