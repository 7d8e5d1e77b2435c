//! The rules function: the admin API of each instance's attribution set-up: its text rules
//! (and a dry run of them on a text), backfills of today's rules over recent contacts, the
//! stats those produce, and the web widget's settings.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::contact::store::ContactStore;
use shared::goals::store::GoalStore;
use shared::http::{ApiError, AuditObject, Body, Missing, Path, Query, admin_routes};
use shared::ids::{InstanceId, JobId};
use shared::matching::backfill::{self, JobStore};
use shared::queue::JobQueue;
use shared::rules::listing::{self, Created};
use shared::rules::store::{RuleStore, RuleWrite};
use shared::rules::{MAX_RULES_PER_INSTANCE, Rule, RuleDraft, RuleId};
use shared::secret::AdminKeys;
use shared::stats::{self, Stats, StatsWindow};
use shared::time::Timestamp;
use shared::web::store::WidgetStore;
use std::sync::Arc;

mod goals;
mod widget_settings;

/// What the rules function's handlers share, built once per process.
pub struct RulesState {
    admin_keys: Arc<AdminKeys>,
    rules: Arc<dyn RuleStore>,
    /// For the daily counters behind stats, and backfill previews.
    contacts: Arc<dyn ContactStore>,
    jobs: Arc<dyn JobStore>,
    /// Where backfill runs start.
    queue: Arc<dyn JobQueue>,
    /// Each instance's widget key and origin allow-list.
    widgets: Arc<dyn WidgetStore>,
    /// Each instance's goals.
    goals: Arc<dyn GoalStore>,
}

impl RulesState {
    /// The state over these stores, with the queue backfill runs start on.
    pub fn new(
        admin_keys: &AdminKeys,
        rules: Arc<dyn RuleStore>,
        contacts: Arc<dyn ContactStore>,
        jobs: Arc<dyn JobStore>,
        queue: Arc<dyn JobQueue>,
        widgets: Arc<dyn WidgetStore>,
        goals: Arc<dyn GoalStore>,
    ) -> Arc<Self> {
        Arc::new(Self {
            admin_keys: Arc::new(admin_keys.clone()),
            rules,
            contacts,
            jobs,
            queue,
            widgets,
            goals,
        })
    }
}

/// Every route of the rules function, all behind the admin key.
pub fn router(state: Arc<RulesState>) -> Router {
    let routes = Router::new()
        .route(
            "/instances/{instance_id}/rules",
            post(create_rule).get(list_rules),
        )
        .route("/instances/{instance_id}/rules/test", post(test_rules))
        .route("/instances/{instance_id}/stats", get(instance_stats))
        .route("/instances/{instance_id}/backfill", post(start_backfill))
        .route(
            "/instances/{instance_id}/backfill/{job_id}",
            get(backfill_status),
        )
        .route(
            "/instances/{instance_id}/widget",
            post(widget_settings::configure).get(widget_settings::show),
        )
        .route(
            "/instances/{instance_id}/widget/campaigns",
            put(widget_settings::set_campaigns),
        )
        .route(
            "/instances/{instance_id}/rules/{rule_id}",
            get(get_rule).put(replace_rule).delete(delete_rule),
        )
        .route(
            "/instances/{instance_id}/goals",
            post(goals::create).get(goals::list),
        )
        .route(
            "/instances/{instance_id}/goals/{goal_id}",
            get(goals::get).put(goals::replace).delete(goals::delete),
        )
        .route(
            "/instances/{instance_id}/goals/{goal_id}/stats",
            get(goals::goal_stats),
        )
        .route(
            "/instances/{instance_id}/goals/{goal_id}/backfill",
            post(goals::backfill),
        );
    admin_routes(routes, state.admin_keys.clone()).with_state(state)
}

async fn create_rule(
    State(state): State<Arc<RulesState>>,
    Path(instance_id): Path<InstanceId>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let draft = RuleDraft::from_json(&body)?;
    match listing::create(state.rules.as_ref(), instance_id, draft, Timestamp::now()).await? {
        Created::Rule(rule) => Ok(AuditObject::attach(
            (StatusCode::CREATED, Json(&rule)).into_response(),
            format!("rule_id={}", rule.id),
        )),
        Created::LimitReached => Err(ApiError::invalid_field(
            "instance_id",
            format!("an instance holds at most {MAX_RULES_PER_INSTANCE} rules"),
        )),
    }
}

/// All rules, disabled ones too, in evaluation order, each with the contacts it attributed over
/// the last 7 days (`matched_7d`).
async fn list_rules(
    State(state): State<Arc<RulesState>>,
    Path(instance_id): Path<InstanceId>,
) -> Result<Json<Value>, ApiError> {
    let listed = listing::list_with_matches(
        state.rules.as_ref(),
        state.contacts.as_ref(),
        &instance_id,
        Timestamp::now(),
    )
    .await?;
    Ok(Json(json!({ "rules": listed })))
}

#[derive(Deserialize)]
struct StatsQuery {
    days: Option<String>,
}

/// Attribution stats over the last `days` days, from the daily counters: O(days) to read,
/// whatever the number of contacts.
async fn instance_stats(
    State(state): State<Arc<RulesState>>,
    Path(instance_id): Path<InstanceId>,
    Query(query): Query<StatsQuery>,
) -> Result<Json<Stats>, ApiError> {
    let window = StatsWindow::ending(Timestamp::now(), query.days.as_deref())?;
    let stats = stats::load(
        state.rules.as_ref(),
        state.contacts.as_ref(),
        instance_id,
        &window,
    )
    .await?;
    Ok(Json(stats))
}

async fn get_rule(
    State(state): State<Arc<RulesState>>,
    Path((instance_id, rule_id)): Path<(InstanceId, RuleId)>,
) -> Result<Json<Rule>, ApiError> {
    let rule = state.rules.load_rule(&instance_id, &rule_id).await?;
    Ok(Json(rule.ok_or(Missing::Rule)?))
}

async fn replace_rule(
    State(state): State<Arc<RulesState>>,
    Path((instance_id, rule_id)): Path<(InstanceId, RuleId)>,
    Body(body): Body,
) -> Result<Json<Rule>, ApiError> {
    let draft = RuleDraft::from_json(&body)?;
    let replaced = listing::replace(
        state.rules.as_ref(),
        instance_id,
        &rule_id,
        draft,
        Timestamp::now(),
    )
    .await?;
    Ok(Json(replaced.ok_or(Missing::Rule)?))
}

async fn delete_rule(
    State(state): State<Arc<RulesState>>,
    Path((instance_id, rule_id)): Path<(InstanceId, RuleId)>,
) -> Result<StatusCode, ApiError> {
    match state.rules.delete_rule(&instance_id, &rule_id).await? {
        RuleWrite::Done => Ok(StatusCode::NO_CONTENT),
        _ => Err(Missing::Rule.into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestRequest {
    text: String,
}

/// Which rule would match `text` now, changing nothing.
async fn test_rules(
    State(state): State<Arc<RulesState>>,
    Path(instance_id): Path<InstanceId>,
    Body(body): Body,
) -> Result<Json<Value>, ApiError> {
    let request: TestRequest = serde_json::from_slice(&body).map_err(|error| {
        ApiError::invalid_field("text", format!("expected {{\"text\": \"...\"}}: {error}"))
    })?;
    let matched = listing::first_match(state.rules.as_ref(), &instance_id, &request.text).await?;
    Ok(Json(match matched {
        Some(rule) => json!({ "matched": true, "rule": rule }),
        None => json!({ "matched": false }),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackfillRequest {
    days: Option<u32>,
    dry_run: Option<bool>,
    limit: Option<u64>,
}

/// Previews (`dry_run`, the default) or starts a backfill of the last `days` days.
async fn start_backfill(
    State(state): State<Arc<RulesState>>,
    Path(instance_id): Path<InstanceId>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let request: BackfillRequest = if body.is_empty() {
        BackfillRequest {
            days: None,
            dry_run: None,
            limit: None,
        }
    } else {
        serde_json::from_slice(&body).map_err(|error| {
            ApiError::invalid_field(
                "body",
                format!(
                    "expected {{\"days\": 1-90, \"dry_run\": true|false, \"limit\"?: n}}: {error}"
                ),
            )
        })?
    };
    let checked = backfill::Request::checked(request.days, request.limit)?;
    let now = Timestamp::now();
    if request.dry_run.unwrap_or(true) {
        let (rules, contacts) = (state.rules.as_ref(), state.contacts.as_ref());
        let preview = checked.preview(rules, contacts, &instance_id, now).await?;
        return Ok(Json(preview).into_response());
    }
    let job = checked
        .start(state.jobs.as_ref(), state.queue.as_ref(), instance_id, now)
        .await?;
    let accepted = json!({ "job_id": job.job_id, "status": job.status });
    let response = (StatusCode::ACCEPTED, Json(accepted)).into_response();
    Ok(AuditObject::attach(
        response,
        format!("job_id={}", job.job_id),
    ))
}

async fn backfill_status(
    State(state): State<Arc<RulesState>>,
    Path((instance_id, job_id)): Path<(InstanceId, JobId)>,
) -> Result<Json<Value>, ApiError> {
    let job = state
        .jobs
        .load_job(&instance_id, &job_id)
        .await?
        .ok_or(Missing::Job)?;
    Ok(Json(json!({
        "job_id": job.job_id,
        "status": job.status,
        "days": job.days,
        "since": job.since,
        "until": job.until,
        "limit": job.limit,
        "scanned": job.scanned,
        "updated": job.updated,
        "skipped_attributed": job.skipped_attributed,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    })))
}
