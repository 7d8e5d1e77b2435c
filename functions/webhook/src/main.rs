//! Lambda entry point: read config, build the DynamoDB store once, serve the router.

use shared::config::{Mode, Secrets};
use shared::queue::sqs::SqsQueue;
use shared::store::dynamo::DynamoStore;
use shared::store::dynamo_widget::DynamoWidgetStore;
use shared::telemetry::{self, LogFormat};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init(LogFormat::Json);
    let (secrets, _) = Secrets::from_env(Mode::Lambda)?;
    let aws = shared::config::aws_sdk_config().await;
    let store = DynamoStore::from_env(&aws)?;
    let queue = SqsQueue::from_env(&aws)?;
    let widgets = DynamoWidgetStore::from_env(&aws)?;
    let state = webhook::WebhookState::new(
        &secrets,
        Arc::new(store),
        Arc::new(widgets),
        Arc::new(queue),
    );
    let app = shared::http::serve_json_errors(webhook::router(state));
    lambda_http::run(app).await
}
