//! Lambda entry point: read config and the admin keys (they open sessions and sign them),
//! build the DynamoDB stores once, serve the dashboard's router.

use shared::config::{LambdaStart, SecretName};
use shared::queue::sqs::SqsQueue;
use shared::store::dynamo::DynamoStore;
use shared::store::dynamo::revenue::DynamoRevenueStore;
use shared::store::dynamo::spend::DynamoSpendStore;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let start = LambdaStart::new().await;
    let store = Arc::new(DynamoStore::from_env(&start.dynamo)?);
    // The Revenue page's report counters and a contact panel's revenue journey.
    let revenue = Arc::new(DynamoRevenueStore::from_env(&start.dynamo)?);
    // Backfill runs start by queueing their first page, as the rules function's do.
    let queue = Arc::new(SqsQueue::from_env(&start.aws)?);
    let secrets = start
        .secrets_while(&SecretName::ADMIN, store.warm_up())
        .await?;
    let (rules, contacts, jobs) = (store.clone(), store.clone(), store.clone());
    let state = dashboard::DashboardState::new(
        &secrets.admin_keys,
        rules,
        contacts,
        revenue,
        jobs,
        queue,
        store.clone(),
        Arc::new(DynamoSpendStore::from_env(&start.dynamo)?),
        store,
        Arc::new(shared::store::dynamo::catalog::DynamoCatalogStore::from_env(&start.dynamo)?),
    );
    state.show_deliveries_of(Arc::new(
        shared::store::dynamo::outbound::DynamoOutboundStore::from_env(&start.dynamo)?,
    ));
    lambda_http::run(shared::http::serve_json_errors(dashboard::router(state))).await
}
