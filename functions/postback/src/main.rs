//! Lambda entry point: read config and the postback token, build the DynamoDB client once
//! (warming its first connection), serve affiliate postbacks.

use shared::config::{LambdaStart, SecretName};
use shared::store::dynamo::revenue::DynamoRevenueStore;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let start = LambdaStart::new().await;
    let store = DynamoRevenueStore::from_env(&start.dynamo)?;
    let secrets = start
        .secrets_while(&[SecretName::PostbackToken], store.warm_up())
        .await?;
    let state = postback::PostbackState::new(&secrets, Arc::new(store));
    state.send_outcomes_to(Arc::new(shared::outbound::triggers::Dispatcher::from_env(
        &start,
    )?));
    lambda_http::run(shared::http::serve_json_errors(postback::router(state))).await
}
