//! Lambda entry point of the daily Meta Insights pull: read the ad account, the Graph URL and
//! the token (never logged), build the spend store once, and on each scheduled event pull the
//! last `PULL_DAYS` days (7 by default). A failed pull fails the invocation, so the schedule's
//! alarm sees it; it wrote nothing (see `spend::meta`).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::config::{self, LambdaStart, SecretName};
use shared::spend::insights::{DEFAULT_DAYS, MAX_DAYS};
use shared::store::dynamo::spend::DynamoSpendStore;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let account = config::required("META_AD_ACCOUNT_ID")?;
    let graph_url = config::optional("META_GRAPH_URL")
        .unwrap_or_else(|| spend::meta::DEFAULT_GRAPH_URL.to_owned());
    let days = config::parsed_or("PULL_DAYS", DEFAULT_DAYS)?.clamp(1, MAX_DAYS);
    let start = LambdaStart::new().await;
    let store = Arc::new(DynamoSpendStore::from_env(&start.dynamo)?);
    let secrets = start
        .secrets_while(&[SecretName::MetaAccessToken], store.warm_up())
        .await?;
    let token = secrets
        .meta_access_token
        .ok_or(config::ConfigError::MissingSecret("META_ACCESS_TOKEN"))?;
    let meta = Arc::new(spend::MetaSync::new(&graph_url, &account, token));
    lambda_runtime::run(service_fn(move |_: LambdaEvent<serde_json::Value>| {
        let (meta, store) = (meta.clone(), store.clone());
        async move {
            let today = shared::time::Timestamp::now().as_datetime().date_naive();
            let pulled = meta.pull(store.as_ref(), days, today).await?;
            Ok::<_, Error>(serde_json::to_value(pulled)?)
        }
    }))
    .await
}
