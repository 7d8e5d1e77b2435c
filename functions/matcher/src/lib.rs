//! The matcher function: an SQS batch in, partial batch failures out.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use shared::matching::Matcher;
use shared::time::Timestamp;

/// Runs each record through the matcher; only the records that failed are reported, so SQS
/// redelivers those alone (`ReportBatchItemFailures`) and, after `maxReceiveCount`, moves them to
/// the dead-letter queue.
pub async fn handle_sqs_event(matcher: &Matcher, event: SqsEvent) -> SqsBatchResponse {
    let messages: Vec<(String, String)> = event
        .records
        .into_iter()
        .map(|record| {
            (
                record.message_id.unwrap_or_default(),
                record.body.unwrap_or_default(),
            )
        })
        .collect();
    let failed = matcher.handle_batch(&messages, Timestamp::now()).await;
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
