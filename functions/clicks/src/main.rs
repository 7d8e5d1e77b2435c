//! Lambda entry point: read config and the link secret, build the DynamoDB client once
//! (warming its first connection) and the match queue (for clicks the store could not take),
//! serve the click redirect.

use shared::config::{LambdaStart, SecretName};
use shared::queue::sqs::SqsQueue;
use shared::store::dynamo::revenue::DynamoRevenueStore;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let start = LambdaStart::new().await;
    let store = DynamoRevenueStore::from_env(&start.dynamo)?;
    let queue = SqsQueue::from_env(&start.aws)?;
    let secrets = start
        .secrets_while(&[SecretName::LinkSecret], store.warm_up())
        .await?;
    let state = clicks::ClicksState::new(&secrets, Arc::new(store), Arc::new(queue));
    lambda_http::run(shared::http::serve_json_errors(clicks::router(state))).await
}
