//! Lambda entry point: read config, build the stores, the vault and the HTTPS client once
//! (warming the first DynamoDB connection), send the outbound queue's jobs.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::config::LambdaStart;
use shared::https::HttpClient;
use shared::outbound::payload::Endpoints;
use shared::outbound::sender::{RetryPolicy, Sender};
use shared::store::dynamo::DynamoStore;
use shared::store::dynamo::outbound::{DynamoOutboundStore, SsmVault};
use std::sync::Arc;
use std::time::Duration;

/// Longest wait for one platform's answer; a timeout is retried like a 5xx.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> Result<(), Error> {
    let start = LambdaStart::new().await;
    let outbound = Arc::new(DynamoOutboundStore::from_env(&start.dynamo)?);
    let contacts = Arc::new(DynamoStore::from_env(&start.dynamo)?);
    let vault = Arc::new(SsmVault::from_env(&start.aws)?);
    let retry = RetryPolicy::from_env()?;
    tokio::join!(outbound.warm_up(), contacts.warm_up());
    let sender = Arc::new(
        Sender::new(
            outbound,
            vault,
            contacts,
            Arc::new(HttpClient::new(ANSWER_TIMEOUT)),
            Endpoints::from_env(),
        )
        .with_retry(retry),
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let sender = sender.clone();
        async move {
            Ok::<SqsBatchResponse, Error>(
                matcher::handle_sqs_event(sender.as_ref(), event.payload).await,
            )
        }
    }))
    .await
}
