//! Lambda entry point: read config and the admin key, build the clients once (warming the
//! first DynamoDB connection), serve the rules router.

use shared::config::{self, SecretName, Secrets};
use shared::queue::sqs::SqsQueue;
use shared::store::dynamo::erasure::DynamoErasureStore;
use shared::store::dynamo::{Client, DynamoStore};
use shared::telemetry::{self, LogFormat};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init(LogFormat::Json);
    let secrets_prefix = config::required("SECRETS_PREFIX")?;
    let aws = config::aws_sdk_config().await;
    let dynamo = Client::new(&aws);
    let store = Arc::new(DynamoStore::from_env(&dynamo)?);
    let erasure = Arc::new(DynamoErasureStore::from_env(&dynamo)?);
    // Backfill runs start by queueing their first page.
    let queue = Arc::new(SqsQueue::from_env(&aws)?);
    let (secrets, ()) = tokio::join!(
        Secrets::from_parameter_store(&aws, &secrets_prefix, &SecretName::ADMIN),
        store.warm_up()
    );
    let state = rules::RulesState::new(
        &secrets?.admin_keys,
        store.clone(),
        store.clone(),
        store,
        queue,
        erasure,
    );
    lambda_http::run(shared::http::serve_json_errors(rules::router(state))).await
}
