//! The webhook function: Meta's verification handshake and the signed deliveries of WhatsApp,
//! Messenger and Instagram, each event applied to its contact (first touch) and, when the
//! contact's first message needs the instance's text rules, a match job queued.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use shared::config::Secrets;
use shared::contact::Acquisition;
use shared::contact::store::ContactStore;
use shared::goals::cache::GoalsCache;
use shared::goals::store::GoalStore;
use shared::http::{ApiError, Body, Query, body_limit};
use shared::ingest::{IngestOutcome, Ingestor};
use shared::meta;
use shared::outbound::triggers::{self, Dispatcher};
use shared::queue::{JobQueue, QueueJob};
use shared::secret::Secret;
use shared::time::Timestamp;
use std::sync::Arc;

pub struct WebhookState {
    app_secret: Secret,
    verify_token: Secret,
    ingestor: Ingestor,
    match_queue: Arc<dyn JobQueue>,
    /// The recipients whose statuses this container knows to change nothing.
    known: shared::sources::Known,
    /// Where a lead, an order or a goal reached is sent back to the instance's destinations.
    outbound: std::sync::OnceLock<Arc<Dispatcher>>,
}

impl WebhookState {
    /// The state over these stores; the instances' goals are read through a per-container
    /// cache, so a delivery does not pay a goals read.
    pub fn new(
        secrets: &Secrets,
        store: Arc<dyn ContactStore>,
        match_queue: Arc<dyn JobQueue>,
        goals: Arc<dyn GoalStore>,
    ) -> Arc<Self> {
        Arc::new(Self {
            app_secret: secrets.meta_app_secret.clone(),
            verify_token: secrets.meta_verify_token.clone(),
            ingestor: Ingestor::new(store).with_goals(Arc::new(GoalsCache::new(goals))),
            match_queue,
            known: Default::default(),
            outbound: std::sync::OnceLock::new(),
        })
    }

    /// Sends the triggers each event stands for to the instance's destinations through
    /// `dispatcher`. Set once; later calls are ignored.
    pub fn send_outcomes_to(&self, dispatcher: Arc<Dispatcher>) {
        let _ = self.outbound.set(dispatcher);
    }
}

/// Every route of the webhook function. Fallbacks are added once, by whoever serves it
/// (see `shared::http::serve_json_errors`).
pub fn router(state: Arc<WebhookState>) -> Router {
    Router::new()
        .route(
            "/webhooks/meta",
            get(verify_subscription)
                .post(receive_delivery)
                .layer(body_limit(meta::MAX_DELIVERY_BYTES)),
        )
        .with_state(state)
}

#[derive(Deserialize)]
struct Subscription {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

async fn verify_subscription(
    State(state): State<Arc<WebhookState>>,
    query: Result<Query<Subscription>, ApiError>,
) -> Result<Response, ApiError> {
    // Meta is told nothing more than that the handshake failed, whatever was off.
    let refused = || ApiError::Forbidden {
        code: "verification_failed",
        message: "hub.mode must be subscribe and hub.verify_token must match".to_owned(),
    };
    let Query(subscription) = query.map_err(|_| refused())?;
    let token_matches = subscription
        .verify_token
        .as_deref()
        .is_some_and(|token| state.verify_token.matches(token.as_bytes()));
    match (
        subscription.mode.as_deref(),
        token_matches,
        subscription.challenge,
    ) {
        (Some("subscribe"), true, Some(challenge)) => {
            tracing::info!("webhook subscription verified");
            Ok((
                StatusCode::OK,
                [("content-type", "text/plain; charset=utf-8")],
                challenge,
            )
                .into_response())
        }
        _ => Err(refused()),
    }
}

#[derive(Serialize)]
struct DeliveryReport {
    events: usize,
    applied: usize,
    duplicates: usize,
    skipped: usize,
}

async fn receive_delivery(
    State(state): State<Arc<WebhookState>>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<DeliveryReport>, ApiError> {
    let signature = headers
        .get(meta::SIGNATURE_HEADER)
        .map(|value| value.as_bytes());
    meta::verify_signature(&state.app_secret, signature, &body)
        .inspect_err(|error| tracing::warn!(reason = %error, "delivery refused"))?;
    let now = Timestamp::now();
    let delivery = meta::parse_delivery(&body, now)?;
    let mut report = DeliveryReport {
        events: delivery.events.len(),
        applied: 0,
        duplicates: 0,
        skipped: delivery.skipped,
    };
    // In order, stopping at the first failure: Meta retries the whole delivery, and the events
    // already applied are then recognised as duplicates.
    for event in &delivery.events {
        let outcome = state.ingestor.ingest(event, now).await?;
        sources_after(&state, &outcome);
        // Answering 200 needs the job queued too: a failure here answers 5xx and Meta's retry
        // queues it (a duplicate still asks for its job).
        if let Some(job) = outcome.match_job(event) {
            state.match_queue.enqueue(&QueueJob::Match(job)).await?;
        }
        // The same for the outbound jobs: derived from the stored contact, so a retry (a
        // duplicate) queues them again, and their delivery records send each once.
        if let (Some(outbound), Some(contact)) = (state.outbound.get(), outcome.contact()) {
            outbound
                .fire(&triggers::after_inbound(event, contact))
                .await?;
        }
        match outcome {
            IngestOutcome::Applied { contact, created } => {
                report.applied += 1;
                tracing::info!(
                    instance_id = %event.instance_id,
                    contact = %event.contact_id,
                    channel = ?event.channel,
                    created,
                    acquisition = contact.acquisition.as_ref().map(Acquisition::kind),
                    "event applied"
                );
            }
            IngestOutcome::Duplicate { .. } => {
                report.duplicates += 1;
                tracing::info!(instance_id = %event.instance_id, contact = %event.contact_id, "duplicate event ignored");
            }
        }
    }
    for status in &delivery.outbound {
        shared::sources::record_status(state.ingestor.store().as_ref(), &state.known, status)
            .await?;
    }
    Ok(Json(report))
}

/// After an event: the container knows that no status after the contact's first event can
/// change it (a start recorded before went on it in the event's commit).
fn sources_after(state: &WebhookState, outcome: &IngestOutcome) {
    let Some(contact) = outcome.contact() else {
        return;
    };
    for identifier in contact.identifiers() {
        state
            .known
            .remember(&contact.instance_id, identifier, contact.first_seen_at);
    }
}
