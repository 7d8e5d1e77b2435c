//! Lambda entry point: read config, build the DynamoDB store and the queue worker once (warming the
//! first DynamoDB connection), serve SQS batches.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::config::LambdaStart;
use shared::matching::QueueWorker;
use shared::queue::sqs::SqsQueue;
use shared::store::dynamo::DynamoStore;
use shared::store::dynamo::revenue::DynamoRevenueStore;
use shared::store::dynamo::widget::DynamoWidgetStore;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let start = LambdaStart::new().await;
    let store = Arc::new(DynamoStore::from_env(&start.dynamo)?);
    let widgets = Arc::new(DynamoWidgetStore::from_env(&start.dynamo)?);
    store.warm_up().await;
    let revenue = Arc::new(DynamoRevenueStore::from_env(&start.dynamo)?);
    let worker = Arc::new(
        QueueWorker::new(store.clone(), store.clone(), store)
            .with_ref_codes(widgets)
            .with_revenue(revenue),
    );
    // Backfill pages queue their successors on the same queue.
    worker.attach_queue(Arc::new(SqsQueue::from_env(&start.aws)?));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let worker = worker.clone();
        async move {
            Ok::<SqsBatchResponse, Error>(
                matcher::handle_sqs_event(worker.as_ref(), event.payload).await,
            )
        }
    }))
    .await
}
