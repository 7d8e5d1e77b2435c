//! Lambda entry point: read config, build the DynamoDB store and the queue worker once (warming the
//! first DynamoDB connection), serve SQS batches.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::matching::QueueWorker;
use shared::queue::sqs::SqsQueue;
use shared::store::dynamo::revenue::DynamoRevenueStore;
use shared::store::dynamo::widget::DynamoWidgetStore;
use shared::store::dynamo::{Client, DynamoStore};
use shared::telemetry::{self, LogFormat};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init(LogFormat::Json);
    let aws = shared::config::aws_sdk_config().await;
    let dynamo = Client::new(&aws);
    let store = Arc::new(DynamoStore::from_env(&dynamo)?);
    let widgets = Arc::new(DynamoWidgetStore::from_env(&dynamo)?);
    store.warm_up().await;
    let revenue = Arc::new(DynamoRevenueStore::from_env(&dynamo)?);
    let worker = Arc::new(
        QueueWorker::new(store.clone(), store.clone(), store)
            .with_ref_codes(widgets)
            .with_revenue(revenue),
    );
    // Backfill pages queue their successors on the same queue.
    worker.attach_queue(Arc::new(SqsQueue::from_env(&aws)?));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let worker = worker.clone();
        async move {
            Ok::<SqsBatchResponse, Error>(matcher::handle_sqs_event(&worker, event.payload).await)
        }
    }))
    .await
}
