//! Lambda entry point: read config and the Meta secrets, build the clients once (warming the
//! first DynamoDB connection), serve Meta's webhook.

use shared::config::{LambdaStart, SecretName};
use shared::matching::MatchGate;
use shared::queue::sqs::SqsQueue;
use shared::store::dynamo::DynamoStore;
use shared::store::dynamo::widget::DynamoWidgetStore;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let start = LambdaStart::new().await;
    let store = Arc::new(DynamoStore::from_env(&start.dynamo)?);
    let widgets = Arc::new(DynamoWidgetStore::from_env(&start.dynamo)?);
    // No match job for an instance with no enabled rule and no widget (see MatchGate).
    let queue = MatchGate::new(
        Arc::new(SqsQueue::from_env(&start.aws)?),
        store.clone(),
        widgets,
    );
    let needed = [SecretName::MetaAppSecret, SecretName::MetaVerifyToken];
    let secrets = start.secrets_while(&needed, store.warm_up()).await?;
    let state = webhook::WebhookState::new(&secrets, store, Arc::new(queue));
    lambda_http::run(shared::http::serve_json_errors(webhook::router(state))).await
}
