//! A funnel with its report; its writes are the goals' (`goals::{create, list, replace,
//! delete}` over `FunnelSettings`), kept in the same record.

use crate::RulesState;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use shared::funnels::FunnelId;
use shared::funnels::report::{self, Filter};
use shared::goals::admin;
use shared::http::{ApiError, Path, Query};
use shared::ids::InstanceId;
use shared::stats::StatsWindow;
use shared::time::Timestamp;
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportQuery {
    days: Option<String>,
    ad_id: Option<String>,
    platform: Option<String>,
    campaign: Option<String>,
}

/// The funnel and, per step, the contacts first seen in the last `days` that reached it (all
/// of them, or one platform's, campaign's or ad's): O(steps × days) from its day counters.
pub(crate) async fn report(
    State(state): State<Arc<RulesState>>,
    Path((instance_id, funnel_id)): Path<(InstanceId, FunnelId)>,
    Query(query): Query<ReportQuery>,
) -> Result<Json<Value>, ApiError> {
    let window = StatsWindow::ending(Timestamp::now(), query.days.as_deref())?;
    let filter = Filter::parse(
        query.ad_id.as_deref(),
        query.platform.as_deref(),
        query.campaign.as_deref(),
    )?;
    let funnel = admin::load(state.goals.as_ref(), &instance_id, &funnel_id).await?;
    let report = report::load(
        state.contacts.as_ref(),
        &instance_id,
        &funnel,
        &window,
        filter,
    )
    .await?;
    let mut answer = json!(funnel);
    answer["report"] = json!(report);
    Ok(Json(answer))
}
