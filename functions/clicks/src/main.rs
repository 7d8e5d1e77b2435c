//! Lambda entry point: read config, build the DynamoDB store once, serve the click redirect.

use shared::config::{Mode, Secrets};
use shared::store::dynamo_revenue::DynamoRevenueStore;
use shared::telemetry::{self, LogFormat};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init(LogFormat::Json);
    let (secrets, _) = Secrets::from_env(Mode::Lambda)?;
    let aws = shared::config::aws_sdk_config().await;
    let store = DynamoRevenueStore::from_env(&aws)?;
    let state = clicks::ClicksState::new(&secrets, Arc::new(store));
    lambda_http::run(shared::http::serve_json_errors(clicks::router(state))).await
}
