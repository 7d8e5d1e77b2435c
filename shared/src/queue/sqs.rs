//! The SQS queue Lambda uses.

use super::{JobQueue, QueueError, QueueJob};
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;

/// Jobs sent as JSON messages to one SQS queue.
pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

impl SqsQueue {
    /// A queue sending to `queue_url` through `client`.
    pub fn new(client: Client, queue_url: String) -> Self {
        Self { client, queue_url }
    }

    /// For Lambda: the client from the shared SDK configuration, the queue URL from
    /// `MATCH_QUEUE_URL`.
    pub fn from_env(config: &aws_config::SdkConfig) -> Result<Self, crate::config::ConfigError> {
        let queue_url = crate::config::required("MATCH_QUEUE_URL")?;
        Ok(Self::new(Client::new(config), queue_url))
    }

    /// The outbound queue (jobs for the sender), its URL from `OUTBOUND_QUEUE_URL`.
    pub fn outbound_from_env(
        config: &aws_config::SdkConfig,
    ) -> Result<Self, crate::config::ConfigError> {
        let queue_url = crate::config::required("OUTBOUND_QUEUE_URL")?;
        Ok(Self::new(Client::new(config), queue_url))
    }
}

#[async_trait]
impl JobQueue for SqsQueue {
    async fn enqueue(&self, job: &QueueJob) -> Result<(), QueueError> {
        let body = serde_json::to_string(job).map_err(|e| QueueError(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| QueueError(DisplayErrorContext(&e).to_string()))?;
        Ok(())
    }
}
