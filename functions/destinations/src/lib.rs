//! The destinations function: the admin API of where outcomes are sent back (Meta's
//! Conversions API, Google's Data Manager API, TikTok's Events API, the business's signed
//! webhooks) and of each destination's deliveries. Its own function: it alone writes the
//! destinations' credentials into the secret vault.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use shared::goals::store::GoalStore;
use shared::http::{ApiError, AuditObject, Body, Path, Query, admin_routes};
use shared::ids::InstanceId;
use shared::outbound::draft::{self, DraftRules};
use shared::outbound::store::{MAX_DELIVERY_PAGE, OutboundStore, SecretVault};
use shared::outbound::{DeliveryStatus, DestinationId, admin};
use shared::secret::AdminKeys;
use shared::time::Timestamp;
use std::sync::Arc;

/// What the destinations function's handlers share, built once per process.
pub struct DestinationsState {
    admin_keys: Arc<AdminKeys>,
    store: Arc<dyn OutboundStore>,
    vault: Arc<dyn SecretVault>,
    /// To check that a `goal:<goal_id>` names a goal of the instance.
    goals: Arc<dyn GoalStore>,
    rules: DraftRules,
}

impl DestinationsState {
    /// The state over these stores.
    pub fn new(
        admin_keys: &AdminKeys,
        store: Arc<dyn OutboundStore>,
        vault: Arc<dyn SecretVault>,
        goals: Arc<dyn GoalStore>,
        rules: DraftRules,
    ) -> Arc<Self> {
        Arc::new(Self {
            admin_keys: Arc::new(admin_keys.clone()),
            store,
            vault,
            goals,
            rules,
        })
    }
}

/// Every route of the destinations function, all behind the admin key.
pub fn router(state: Arc<DestinationsState>) -> Router {
    let routes = Router::new()
        .route(
            "/instances/{instance_id}/destinations",
            get(list).post(create),
        )
        .route(
            "/instances/{instance_id}/destinations/{destination_id}",
            get(show).put(replace).delete(delete),
        )
        .route(
            "/instances/{instance_id}/destinations/{destination_id}/deliveries",
            get(deliveries),
        );
    admin_routes(routes, state.admin_keys.clone()).with_state(state)
}

async fn create(
    State(state): State<Arc<DestinationsState>>,
    Path(instance_id): Path<InstanceId>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let draft = draft::parse(&body, state.rules, true)?;
    let created = admin::create(
        state.store.as_ref(),
        state.vault.as_ref(),
        state.goals.as_ref(),
        &instance_id,
        draft,
        Timestamp::now(),
    )
    .await?;
    let mut answer = created.destination.public_view();
    if let Some(secret) = &created.signing_secret {
        // Answered this once: the vault keeps it, no read shows it again.
        answer["secret"] = json!(String::from_utf8_lossy(secret.expose()));
    }
    tracing::info!(
        destination_id = %created.destination.id,
        kind = created.destination.target.kind(),
        "destination created"
    );
    Ok(AuditObject::attach(
        (StatusCode::CREATED, Json(answer)).into_response(),
        format!("destination_id={}", created.destination.id),
    ))
}

async fn list(
    State(state): State<Arc<DestinationsState>>,
    Path(instance_id): Path<InstanceId>,
) -> Result<Json<Value>, ApiError> {
    let set = state.store.load_destinations(&instance_id).await?;
    let shown: Vec<Value> = set.destinations.iter().map(|d| d.public_view()).collect();
    Ok(Json(json!({ "destinations": shown })))
}

async fn show(
    State(state): State<Arc<DestinationsState>>,
    Path((instance_id, id)): Path<(InstanceId, DestinationId)>,
) -> Result<Json<Value>, ApiError> {
    let destination = admin::load(state.store.as_ref(), &instance_id, &id).await?;
    Ok(Json(destination.public_view()))
}

async fn replace(
    State(state): State<Arc<DestinationsState>>,
    Path((instance_id, id)): Path<(InstanceId, DestinationId)>,
    Body(body): Body,
) -> Result<Json<Value>, ApiError> {
    let draft = draft::parse(&body, state.rules, false)?;
    let replaced = admin::replace(
        state.store.as_ref(),
        state.vault.as_ref(),
        state.goals.as_ref(),
        &instance_id,
        &id,
        draft,
        Timestamp::now(),
    )
    .await?;
    Ok(Json(replaced.public_view()))
}

async fn delete(
    State(state): State<Arc<DestinationsState>>,
    Path((instance_id, id)): Path<(InstanceId, DestinationId)>,
) -> Result<StatusCode, ApiError> {
    admin::delete(
        state.store.as_ref(),
        state.vault.as_ref(),
        &instance_id,
        &id,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveriesQuery {
    status: Option<String>,
    limit: Option<String>,
}

/// The destination's deliveries, newest first: `status` one of pending, sent, failed,
/// skipped; `limit` 1–200 (default 50).
async fn deliveries(
    State(state): State<Arc<DestinationsState>>,
    Path((instance_id, id)): Path<(InstanceId, DestinationId)>,
    Query(query): Query<DeliveriesQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => Some(DeliveryStatus::parse(text).ok_or_else(|| {
            ApiError::invalid_field("status", "must be pending, sent, failed or skipped")
        })?),
    };
    let limit = match query.limit.as_deref() {
        None => 50,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=MAX_DELIVERY_PAGE).contains(limit))
            .ok_or_else(|| {
                ApiError::invalid_field(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_DELIVERY_PAGE}"),
                )
            })?,
    };
    // A destination deleted since keeps no listing: 404 as for any unknown id.
    admin::load(state.store.as_ref(), &instance_id, &id).await?;
    let found = state
        .store
        .list_deliveries(&instance_id, &id, status, limit)
        .await?;
    let shown: Vec<Value> = found.iter().map(|d| d.public_view()).collect();
    Ok(Json(json!({ "deliveries": shown })))
}
