//! Lambda entry point: read config and the admin keys, build the clients once (warming the
//! first DynamoDB connection), serve the destinations router.

use shared::config::{LambdaStart, SecretName};
use shared::outbound::draft::DraftRules;
use shared::store::dynamo::DynamoStore;
use shared::store::dynamo::outbound::{DynamoOutboundStore, SsmVault};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let start = LambdaStart::new().await;
    let outbound = DynamoOutboundStore::from_env(&start.dynamo)?;
    let goals = Arc::new(DynamoStore::from_env(&start.dynamo)?);
    let vault = Arc::new(SsmVault::from_env(&start.aws)?);
    let rules = DraftRules {
        allow_http: shared::config::optional("ALLOW_HTTP_DESTINATIONS").as_deref() == Some("1"),
    };
    let secrets = start
        .secrets_while(&SecretName::ADMIN, outbound.warm_up())
        .await?;
    let state = destinations::DestinationsState::new(
        &secrets.admin_keys,
        Arc::new(outbound),
        vault,
        goals,
        rules,
    );
    lambda_http::run(shared::http::serve_json_errors(destinations::router(state))).await
}
