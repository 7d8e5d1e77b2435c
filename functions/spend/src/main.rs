//! Lambda entry point: read config, the admin keys and the Meta token, build the DynamoDB
//! stores once (warming the first connection), serve the spend admin API.

use shared::config::{LambdaStart, SecretName};
use shared::store::dynamo::DynamoStore;
use shared::store::dynamo::revenue::DynamoRevenueStore;
use shared::store::dynamo::spend::DynamoSpendStore;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let start = LambdaStart::new().await;
    let spend = DynamoSpendStore::from_env(&start.dynamo)?;
    // The contact counters and the instance registry (conversations).
    let contacts = Arc::new(DynamoStore::from_env(&start.dynamo)?);
    let revenue = DynamoRevenueStore::from_env(&start.dynamo)?;
    let needed = [
        SecretName::AdminApiKey,
        SecretName::ReadonlyApiKey,
        SecretName::MetaAccessToken,
    ];
    let secrets = start.secrets_while(&needed, spend.warm_up()).await?;
    let meta = spend::MetaSync::from_env(secrets.meta_access_token.clone());
    let stores = spend::SpendStores {
        spend: Arc::new(spend),
        contacts: contacts.clone(),
        instances: contacts.clone(),
        revenue: Arc::new(revenue),
        goals: contacts,
    };
    let state = spend::SpendState::new(&secrets.admin_keys, stores, meta);
    lambda_http::run(shared::http::serve_json_errors(spend::router(state))).await
}
