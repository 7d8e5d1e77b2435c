//! Lambda entry point: read config, the admin keys and the link secret, build the DynamoDB
//! stores once (warming the first connection), serve the revenue admin API.

use shared::config::{self, LambdaStart, SecretName};
use shared::store::dynamo::DynamoStore;
use shared::store::dynamo::revenue::DynamoRevenueStore;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let public_base_url = config::required("PUBLIC_BASE_URL")?;
    let start = LambdaStart::new().await;
    let store = DynamoRevenueStore::from_env(&start.dynamo)?;
    // Resolves the contact a send or journey names to the contact that stays.
    let contacts = DynamoStore::from_env(&start.dynamo)?;
    let needed = [
        SecretName::AdminApiKey,
        SecretName::ReadonlyApiKey,
        SecretName::LinkSecret,
    ];
    let secrets = start.secrets_while(&needed, store.warm_up()).await?;
    let (store, contacts) = (Arc::new(store), Arc::new(contacts));
    let state = revenue::RevenueState::new(&secrets, &public_base_url, store, contacts);
    lambda_http::run(shared::http::serve_json_errors(revenue::router(state))).await
}
