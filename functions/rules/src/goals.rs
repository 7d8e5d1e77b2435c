//! Goals of an instance: create, list, read, replace, delete, their stats from their own day
//! counters, and a backfill over existing contacts. Served here beside the rules: the same
//! admin configuration of an instance, over the counters and contacts this role already reads
//! and writes for the rules' stats and backfill; only the goals table is added to its grants.

use crate::RulesState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::goals::{GoalId, admin, draft, stats};
use shared::http::{ApiError, AuditObject, Body, Path, Query};
use shared::ids::InstanceId;
use shared::stats::StatsWindow;
use shared::time::Timestamp;
use std::sync::Arc;

pub(crate) async fn create(
    State(state): State<Arc<RulesState>>,
    Path(instance_id): Path<InstanceId>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let settings = draft::parse(&body)?;
    let goal = admin::create(
        state.goals.as_ref(),
        &instance_id,
        settings,
        Timestamp::now(),
    )
    .await?;
    Ok(AuditObject::attach(
        (StatusCode::CREATED, Json(&goal)).into_response(),
        format!("goal_id={}", goal.id),
    ))
}

pub(crate) async fn list(
    State(state): State<Arc<RulesState>>,
    Path(instance_id): Path<InstanceId>,
) -> Result<Json<Value>, ApiError> {
    let goals = state.goals.load_goals(&instance_id).await?;
    Ok(Json(json!({ "goals": goals.goals })))
}

pub(crate) async fn get(
    State(state): State<Arc<RulesState>>,
    Path((instance_id, goal_id)): Path<(InstanceId, GoalId)>,
) -> Result<Json<Value>, ApiError> {
    let goal = admin::load(state.goals.as_ref(), &instance_id, &goal_id).await?;
    Ok(Json(json!(goal)))
}

pub(crate) async fn replace(
    State(state): State<Arc<RulesState>>,
    Path((instance_id, goal_id)): Path<(InstanceId, GoalId)>,
    Body(body): Body,
) -> Result<Json<Value>, ApiError> {
    let settings = draft::parse(&body)?;
    let goal = admin::replace(
        state.goals.as_ref(),
        &instance_id,
        &goal_id,
        settings,
        Timestamp::now(),
    )
    .await?;
    Ok(Json(json!(goal)))
}

pub(crate) async fn delete(
    State(state): State<Arc<RulesState>>,
    Path((instance_id, goal_id)): Path<(InstanceId, GoalId)>,
) -> Result<StatusCode, ApiError> {
    admin::delete(state.goals.as_ref(), &instance_id, &goal_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub(crate) struct StatsQuery {
    days: Option<String>,
}

/// The goal's achievements among contacts first seen in the last `days` days: O(days) small
/// counter items, whatever the number of contacts.
pub(crate) async fn goal_stats(
    State(state): State<Arc<RulesState>>,
    Path((instance_id, goal_id)): Path<(InstanceId, GoalId)>,
    Query(query): Query<StatsQuery>,
) -> Result<Json<stats::GoalStats>, ApiError> {
    let window = StatsWindow::ending(Timestamp::now(), query.days.as_deref())?;
    admin::load(state.goals.as_ref(), &instance_id, &goal_id).await?;
    let stats = stats::load(state.contacts.as_ref(), &instance_id, &goal_id, &window).await?;
    Ok(Json(stats))
}

/// Evaluates the goal on contacts first seen in the last `days` (7 by default) from their
/// stored events: a preview with `dry_run` (the default), then the run.
pub(crate) async fn backfill(
    State(state): State<Arc<RulesState>>,
    Path((instance_id, goal_id)): Path<(InstanceId, GoalId)>,
    Body(body): Body,
) -> Result<Json<admin::BackfillReport>, ApiError> {
    let request = admin::backfill_request(&body, Timestamp::now())?;
    let goal = admin::load(state.goals.as_ref(), &instance_id, &goal_id).await?;
    let report = admin::backfill(state.contacts.as_ref(), &goal, &instance_id, &request).await?;
    Ok(Json(report))
}
