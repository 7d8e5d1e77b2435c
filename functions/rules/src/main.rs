//! Lambda entry point: read config and the admin keys, build the clients once (warming the
//! first DynamoDB connection), serve the rules router.

use shared::config::{LambdaStart, SecretName};
use shared::queue::sqs::SqsQueue;
use shared::store::dynamo::DynamoStore;
use shared::store::dynamo::widget::DynamoWidgetStore;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let start = LambdaStart::new().await;
    let store = Arc::new(DynamoStore::from_env(&start.dynamo)?);
    let widgets = Arc::new(DynamoWidgetStore::from_env(&start.dynamo)?);
    // Backfill runs start by queueing their first page.
    let queue = Arc::new(SqsQueue::from_env(&start.aws)?);
    let secrets = start
        .secrets_while(&SecretName::ADMIN, store.warm_up())
        .await?;
    let (rules, contacts, jobs, goals) = (store.clone(), store.clone(), store.clone(), store);
    let state = rules::RulesState::new(
        &secrets.admin_keys,
        rules,
        contacts,
        jobs,
        queue,
        widgets,
        goals,
    );
    lambda_http::run(shared::http::serve_json_errors(rules::router(state))).await
}
