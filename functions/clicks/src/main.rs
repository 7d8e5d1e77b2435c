//! Lambda entry point: read config and the link secret, build the DynamoDB client once
//! (warming its first connection) and the match queue (for clicks the store could not take),
//! serve the click redirect.

use shared::config::{self, SecretName, Secrets};
use shared::queue::sqs::SqsQueue;
use shared::store::dynamo::Client;
use shared::store::dynamo::revenue::DynamoRevenueStore;
use shared::telemetry::{self, LogFormat};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init(LogFormat::Json);
    let secrets_prefix = config::required("SECRETS_PREFIX")?;
    let aws = config::aws_sdk_config().await;
    let store = DynamoRevenueStore::from_env(&Client::new(&aws))?;
    let (secrets, ()) = tokio::join!(
        Secrets::from_parameter_store(&aws, &secrets_prefix, &[SecretName::LinkSecret]),
        store.warm_up()
    );
    let queue = SqsQueue::from_env(&aws)?;
    let state = clicks::ClicksState::new(&secrets?, Arc::new(store), Arc::new(queue));
    lambda_http::run(shared::http::serve_json_errors(clicks::router(state))).await
}
