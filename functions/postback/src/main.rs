//! Lambda entry point: read config and secrets, build the DynamoDB client once (warming its
//! first connection), serve postbacks and the revenue admin API.

use shared::config::{self, SecretName, Secrets};
use shared::store::dynamo::revenue::DynamoRevenueStore;
use shared::store::dynamo::{Client, DynamoStore};
use shared::telemetry::{self, LogFormat};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init(LogFormat::Json);
    let public_base_url = config::required("PUBLIC_BASE_URL")?;
    let secrets_prefix = config::required("SECRETS_PREFIX")?;
    let aws = config::aws_sdk_config().await;
    let client = Client::new(&aws);
    let store = DynamoRevenueStore::from_env(&client)?;
    let contacts = DynamoStore::from_env(&client)?;
    let needed = [
        SecretName::AdminApiKey,
        SecretName::ReadonlyApiKey,
        SecretName::PostbackToken,
        SecretName::LinkSecret,
    ];
    let (secrets, ()) = tokio::join!(
        Secrets::from_parameter_store(&aws, &secrets_prefix, &needed),
        store.warm_up()
    );
    let state = postback::PostbackState::new(
        &secrets?,
        &public_base_url,
        Arc::new(store),
        Arc::new(contacts),
    );
    lambda_http::run(shared::http::serve_json_errors(postback::router(state))).await
}
