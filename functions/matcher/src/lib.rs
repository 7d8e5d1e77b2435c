//! The matcher function (SQS matching and backfill): an SQS batch in, through the queue worker,
//! partial batch failures out. The same batch handling serves the outbound sender's queue.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use shared::queue::{JobRunner, MAX_RECEIVES};
use shared::time::Timestamp;
use std::collections::HashSet;

/// Runs each record through the queue worker; only the records that failed are reported, so SQS
/// redelivers those alone (`ReportBatchItemFailures`) and, after `maxReceiveCount`, moves them to
/// the dead-letter queue — counted then as the `DlqSends` metric.
pub async fn handle_sqs_event(worker: &dyn JobRunner, event: SqsEvent) -> SqsBatchResponse {
    let mut last_tries = HashSet::new();
    let messages: Vec<(String, String)> = event
        .records
        .into_iter()
        .map(|record| {
            let id = record.message_id.unwrap_or_default();
            let receives: u32 = record
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|count| count.parse().ok())
                .unwrap_or(1);
            if receives >= MAX_RECEIVES {
                last_tries.insert(id.clone());
            }
            (id, record.body.unwrap_or_default())
        })
        .collect();
    let failed = worker.handle_batch(&messages, Timestamp::now()).await;
    for message_id in failed.iter().filter(|id| last_tries.contains(*id)) {
        tracing::error!(
            message_id,
            "queue job failed its last try: it goes to the dead-letter queue"
        );
        shared::metrics::count("DlqSends", &[], 1);
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|item_identifier| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = item_identifier;
            failure
        })
        .collect();
    response
}
