//! Lambda entry point: read config and the Meta secrets, build the clients once (warming the
//! first DynamoDB connection), serve Meta's webhook.

use shared::config::{LambdaStart, SecretName};
use shared::outbound::triggers::Dispatcher;
use shared::queue::sqs::SqsQueue;
use shared::store::dynamo::DynamoStore;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let start = LambdaStart::new().await;
    let store = DynamoStore::from_env(&start.dynamo)?;
    let queue = SqsQueue::from_env(&start.aws)?;
    let needed = [SecretName::MetaAppSecret, SecretName::MetaVerifyToken];
    let secrets = start.secrets_while(&needed, store.warm_up()).await?;
    let store = Arc::new(store);
    let state = webhook::WebhookState::new(&secrets, store.clone(), Arc::new(queue), store);
    state.send_outcomes_to(Arc::new(Dispatcher::from_env(&start)?));
    lambda_http::run(shared::http::serve_json_errors(webhook::router(state))).await
}
