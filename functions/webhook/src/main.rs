//! Lambda entry point: read config and secrets, build the clients once (warming the first
//! DynamoDB connection), serve the router.

use shared::config::{self, SecretName, Secrets};
use shared::queue::sqs::SqsQueue;
use shared::store::dynamo::widget::DynamoWidgetStore;
use shared::store::dynamo::{Client, DynamoStore};
use shared::telemetry::{self, LogFormat};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init(LogFormat::Json);
    let secrets_prefix = config::required("SECRETS_PREFIX")?;
    let aws = config::aws_sdk_config().await;
    let dynamo = Client::new(&aws);
    let store = DynamoStore::from_env(&dynamo)?;
    let widgets = DynamoWidgetStore::from_env(&dynamo)?;
    let queue = SqsQueue::from_env(&aws)?;
    // The same binary serves the web widget from a function of its own (`SERVES=widget`, for its
    // own concurrency): that one never reads the Meta secrets, which then match nothing.
    let needed: &[SecretName] = match config::optional("SERVES").as_deref() {
        Some("widget") => &SecretName::ADMIN,
        _ => &[
            SecretName::MetaAppSecret,
            SecretName::MetaVerifyToken,
            SecretName::AdminApiKey,
            SecretName::ReadonlyApiKey,
        ],
    };
    // The secrets' and DynamoDB's TLS handshakes overlap instead of adding up.
    let (secrets, ()) = tokio::join!(
        Secrets::from_parameter_store(&aws, &secrets_prefix, needed),
        store.warm_up()
    );
    let state = webhook::WebhookState::new(
        &secrets?,
        Arc::new(store),
        Arc::new(widgets),
        Arc::new(queue),
    );
    let app = shared::http::serve_json_errors(webhook::router(state));
    lambda_http::run(app).await
}
