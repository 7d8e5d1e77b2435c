//! The local stand-in for SQS: jobs go to a background task that runs the same queue worker,
//! with the same retry-then-dead-letter behaviour as the SQS redrive policy.

use super::{JobQueue, JobRunner, MAX_RECEIVES, QueueError, QueueJob};
use crate::monotonic_ulid::Ulid;
use crate::time::Timestamp;
use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Jobs handed to a runner (the queue worker) on a background task of this process.
pub struct InProcessQueue {
    sender: tokio::sync::mpsc::UnboundedSender<(String, String)>,
    dead_letters: Arc<Mutex<Vec<String>>>,
}

/// Match jobs the in-process queue runs at once.
const LOCAL_CONCURRENT_JOBS: usize = 32;

impl InProcessQueue {
    /// Starts delivering to `worker` on the current Tokio runtime, its follow-up jobs (backfill
    /// pages) continuing on this queue.
    pub fn start(worker: Arc<dyn JobRunner>) -> Arc<Self> {
        let worker_for_pages = worker.clone();
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
        let dead_letters = Arc::new(Mutex::new(Vec::new()));
        let dead = dead_letters.clone();
        // Jobs run side by side, as Lambda runs SQS batches: each is idempotent, and a burst of
        // new contacts must not wait for one commit after another.
        let slots = Arc::new(tokio::sync::Semaphore::new(LOCAL_CONCURRENT_JOBS));
        tokio::spawn(async move {
            while let Some(message) = receiver.recv().await {
                let permit = slots.clone().acquire_owned().await.expect("never closed");
                let (worker, dead) = (worker.clone(), dead.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    let mut receives = 0;
                    loop {
                        receives += 1;
                        let failed = worker
                            .handle_batch(std::slice::from_ref(&message), Timestamp::now())
                            .await;
                        if failed.is_empty() {
                            break;
                        }
                        if receives >= MAX_RECEIVES {
                            tracing::error!(message_id = message.0, "match job dead-lettered");
                            dead.lock().expect("dead letters").push(message.1.clone());
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(50 * u64::from(receives))).await;
                    }
                });
            }
        });
        let queue = Arc::new(Self {
            sender,
            dead_letters,
        });
        worker_for_pages.attach_queue(queue.clone());
        queue
    }

    /// Bodies of the jobs that failed every delivery.
    pub fn dead_letters(&self) -> Vec<String> {
        self.dead_letters.lock().expect("dead letters").clone()
    }
}

#[async_trait]
impl JobQueue for InProcessQueue {
    async fn enqueue(&self, job: &QueueJob) -> Result<(), QueueError> {
        let body = serde_json::to_string(job).map_err(|e| QueueError(e.to_string()))?;
        // A ULID of its own, as SQS gives each message an id of its own.
        let id = format!("local-{}", Ulid::new());
        self.sender
            .send((id, body))
            .map_err(|_| QueueError("the local matcher has stopped".to_owned()))
    }
}
