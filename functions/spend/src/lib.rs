//! The spend function: the admin API of ad spend — rows as JSON, the CSV exports of Google,
//! Meta and TikTok, the Meta Insights pull run now — and the ads report that sets spend against
//! conversations and revenue.

pub mod meta;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;
use shared::contact::store::ContactStore;
use shared::fields::FieldError;
use shared::goals::store::GoalStore;
use shared::http::{ApiError, Body, Query, admin_routes};
use shared::instances::InstanceStore;
use shared::revenue::store::RevenueStore;
use shared::secret::AdminKeys;
use shared::spend::import::{ExportFormat, Imported, import_into};
use shared::spend::insights::{DEFAULT_DAYS, MAX_DAYS, SyncError};
use shared::spend::report::{self, AdsReport, AdsRequest, AdsSources};
use shared::spend::store::SpendStore;
use shared::spend::{Upserted, rows_from_json};
use shared::time::Timestamp;
use std::sync::Arc;

pub use meta::{MetaSync, Pulled, Retry};

/// The stores the spend function reads and writes.
#[derive(Clone)]
pub struct SpendStores {
    /// Spend rows and ad names.
    pub spend: Arc<dyn SpendStore>,
    /// The contact counters (conversations).
    pub contacts: Arc<dyn ContactStore>,
    /// The instances, for a report over all of them.
    pub instances: Arc<dyn InstanceStore>,
    /// The revenue counters.
    pub revenue: Arc<dyn RevenueStore>,
    /// The instances' goals: whose counters are the qualified leads.
    pub goals: Arc<dyn GoalStore>,
}

impl SpendStores {
    /// The report's view of the stores.
    pub fn sources(&self) -> AdsSources<'_> {
        AdsSources {
            spend: self.spend.as_ref(),
            contacts: self.contacts.as_ref(),
            instances: self.instances.as_ref(),
            revenue: self.revenue.as_ref(),
            goals: self.goals.as_ref(),
        }
    }
}

pub struct SpendState {
    admin_keys: Arc<AdminKeys>,
    stores: SpendStores,
    /// The Meta pull, when an ad account and a token are configured.
    meta: Option<MetaSync>,
}

impl SpendState {
    pub fn new(admin_keys: &AdminKeys, stores: SpendStores, meta: Option<MetaSync>) -> Arc<Self> {
        Arc::new(Self {
            admin_keys: Arc::new(admin_keys.clone()),
            stores,
            meta,
        })
    }
}

/// Every route of the spend function, all behind the admin key.
pub fn router(state: Arc<SpendState>) -> Router {
    let routes = Router::new()
        .route("/spend", post(post_spend))
        .route("/spend/import", post(import_spend))
        .route("/spend/sync/meta", post(sync_meta))
        .route("/reports/ads", get(ads_report));
    admin_routes(routes, state.admin_keys.clone()).with_state(state)
}

/// JSON rows, each replacing the row stored under its key.
async fn post_spend(
    State(state): State<Arc<SpendState>>,
    Body(body): Body,
) -> Result<Json<Upserted>, ApiError> {
    let rows = rows_from_json(&body)?;
    let upserted = state.stores.spend.upsert_spend(&rows).await?;
    tracing::info!(
        rows = rows.len(),
        imported = upserted.imported,
        replaced = upserted.replaced,
        "spend stored"
    );
    Ok(Json(upserted))
}

#[derive(Deserialize)]
struct ImportQuery {
    platform: Option<String>,
}

/// An export as downloaded, as the raw body.
async fn import_spend(
    State(state): State<Arc<SpendState>>,
    Query(query): Query<ImportQuery>,
    Body(body): Body,
) -> Result<Json<Imported>, ApiError> {
    let format = ExportFormat::from_param(query.platform.as_deref())?;
    Ok(Json(
        import_into(state.stores.spend.as_ref(), format, &body).await?,
    ))
}

/// The days of a sync body: `{"days": 1..=90}`, 7 when absent or when the body is empty.
fn sync_days(body: &[u8]) -> Result<u32, FieldError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DEFAULT_DAYS);
    }
    let object = shared::fields::json_object(body)?;
    shared::fields::reject_unknown(&object, "", &["days"], &[])?;
    match object.get("days") {
        None | Some(Value::Null) => Ok(DEFAULT_DAYS),
        Some(days) => days
            .as_u64()
            .filter(|days| (1..=u64::from(MAX_DAYS)).contains(days))
            .map(|days| days as u32)
            .ok_or_else(|| FieldError::new("days", format!("must be from 1 to {MAX_DAYS}"))),
    }
}

/// Runs the Meta pull now, as the daily schedule does.
async fn sync_meta(
    State(state): State<Arc<SpendState>>,
    Body(body): Body,
) -> Result<Json<Pulled>, ApiError> {
    let days = sync_days(&body)?;
    let meta = state.meta.as_ref().ok_or(SyncError::NotConfigured)?;
    let today = Timestamp::now().as_datetime().date_naive();
    Ok(Json(
        meta.pull(state.stores.spend.as_ref(), days, today).await?,
    ))
}

#[derive(Deserialize)]
struct AdsQuery {
    group_by: Option<String>,
    since: Option<String>,
    until: Option<String>,
    instance_id: Option<String>,
}

/// Spend, conversations, conversions and revenue by platform, campaign, ad or day.
async fn ads_report(
    State(state): State<Arc<SpendState>>,
    Query(query): Query<AdsQuery>,
) -> Result<Json<AdsReport>, ApiError> {
    let request = AdsRequest::parse(
        query.group_by.as_deref(),
        query.since.as_deref(),
        query.until.as_deref(),
        query.instance_id.as_deref(),
        Timestamp::now(),
    )?;
    Ok(Json(report::load(&state.stores.sources(), &request).await?))
}
