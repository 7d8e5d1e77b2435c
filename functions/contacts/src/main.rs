//! Lambda entry point: read config and the admin keys, build the DynamoDB stores once (warming
//! the first connection), serve the contacts admin API.

use shared::config::{LambdaStart, SecretName};
use shared::store::dynamo::DynamoStore;
use shared::store::dynamo::catalog::DynamoCatalogStore;
use shared::store::dynamo::erasure::DynamoErasureStore;
use shared::store::dynamo::spend::DynamoSpendStore;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let start = LambdaStart::new().await;
    let contacts = DynamoStore::from_env(&start.dynamo)?;
    let erasure = DynamoErasureStore::from_env(&start.dynamo)?;
    // Names the ads contacts were acquired by.
    let spend = DynamoSpendStore::from_env(&start.dynamo)?;
    let secrets = start
        .secrets_while(&SecretName::ADMIN, contacts.warm_up())
        .await?;
    let contacts = Arc::new(contacts);
    let state = contacts::ContactsState::new(
        &secrets.admin_keys,
        contacts.clone(),
        Arc::new(erasure),
        Arc::new(spend),
        contacts,
        Arc::new(DynamoCatalogStore::from_env(&start.dynamo)?),
    );
    state.send_outcomes_to(Arc::new(shared::outbound::triggers::Dispatcher::from_env(
        &start,
    )?));
    lambda_http::run(shared::http::serve_json_errors(contacts::router(state))).await
}
