//! Lambda entry point: read config, build the DynamoDB store once, serve postbacks and the
//! revenue admin API.

use shared::config::{self, Mode, Secrets};
use shared::store::dynamo_revenue::DynamoRevenueStore;
use shared::telemetry::{self, LogFormat};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init(LogFormat::Json);
    let (secrets, _) = Secrets::from_env(Mode::Lambda)?;
    let public_base_url = config::required("PUBLIC_BASE_URL")?;
    let aws = config::aws_sdk_config().await;
    let store = DynamoRevenueStore::from_env(&aws)?;
    let state = postback::PostbackState::new(&secrets, &public_base_url, Arc::new(store));
    lambda_http::run(shared::http::serve_json_errors(postback::router(state))).await
}
