//! Lambda entry point: read config, build the DynamoDB store once, serve the rules router.

use shared::config::{Mode, Secrets};
use shared::store::dynamo::DynamoStore;
use shared::telemetry::{self, LogFormat};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init(LogFormat::Json);
    let (secrets, _) = Secrets::from_env(Mode::Lambda)?;
    let store = Arc::new(DynamoStore::from_env(
        &shared::config::aws_sdk_config().await,
    )?);
    let state = rules::RulesState::new(&secrets.admin_api_key, store.clone(), store);
    lambda_http::run(shared::http::serve_json_errors(rules::router(state))).await
}
