//! Lambda entry point: read config, build the DynamoDB store once, serve the rules router.

use shared::config::{Mode, Secrets};
use shared::queue::sqs::SqsQueue;
use shared::store::dynamo::DynamoStore;
use shared::telemetry::{self, LogFormat};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init(LogFormat::Json);
    let (secrets, _) = Secrets::from_env(Mode::Lambda)?;
    let aws = shared::config::aws_sdk_config().await;
    let store = Arc::new(DynamoStore::from_env(&aws)?);
    // Backfill runs start by queueing their first page.
    let queue = Arc::new(SqsQueue::from_env(&aws)?);
    let state = rules::RulesState::new(
        &secrets.admin_api_key,
        store.clone(),
        store.clone(),
        store,
        queue,
    );
    lambda_http::run(shared::http::serve_json_errors(rules::router(state))).await
}
