//! The postback function: conversions posted back by affiliate platforms, credited to the
//! contact's first click inside the click window. Public: a postback token admits the caller.

use axum::Json;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::routing::get;
use shared::config::Secrets;
use shared::http::{ApiError, Body, Path, body_limit};
use shared::revenue::conversions;
use shared::revenue::postback::{self, read_params};
use shared::revenue::store::RevenueStore;
use shared::revenue::{Network, Postback};
use shared::secret::Secret;
use shared::time::Timestamp;
use std::sync::Arc;

pub struct PostbackState {
    postback_token: Secret,
    store: Arc<dyn RevenueStore>,
    /// Where credited conversions are sent back.
    outbound: std::sync::OnceLock<Arc<shared::outbound::triggers::Dispatcher>>,
}

impl PostbackState {
    pub fn new(secrets: &Secrets, store: Arc<dyn RevenueStore>) -> Arc<Self> {
        Arc::new(Self {
            postback_token: secrets.postback_token.clone(),
            store,
            outbound: std::sync::OnceLock::new(),
        })
    }

    /// Sends credited conversions to the destinations through `dispatcher`.
    pub fn send_outcomes_to(&self, dispatcher: Arc<shared::outbound::triggers::Dispatcher>) {
        let _ = self.outbound.set(dispatcher);
    }
}

/// Every route of the postback function. Fallbacks are added once, by whoever serves it.
pub fn router(state: Arc<PostbackState>) -> Router {
    Router::new()
        .route(
            "/postbacks/{network}",
            get(receive_postback)
                .post(receive_postback)
                .layer(body_limit(postback::MAX_BODY_BYTES)),
        )
        .with_state(state)
}

/// `200` for every well-formed postback, whatever became of it, so platforms never disable
/// the URL; `401` for a wrong token, `400` for one that cannot be used.
async fn receive_postback(
    State(state): State<Arc<PostbackState>>,
    Path(network): Path<Network>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<conversions::Answer>, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    // The token is checked before the fields are judged, so a caller without it learns nothing.
    let parsed = read_params(query.as_deref(), content_type, &body);
    let header_token = headers
        .get("x-postback-token")
        .map(|value| value.as_bytes());
    let query_token = parsed
        .as_ref()
        .ok()
        .and_then(|(_, token)| token.as_deref())
        .map(str::as_bytes);
    let authorised = header_token
        .or(query_token)
        .is_some_and(|token| state.postback_token.matches(token));
    if !authorised {
        tracing::warn!(
            network = network.as_str(),
            "postback refused: bad or missing token"
        );
        return Err(ApiError::Unauthorized {
            code: "invalid_token",
            message: "a valid postback token is required (token query parameter or X-Postback-Token header)".to_owned(),
        });
    }
    let (params, _) = parsed?;
    let now = Timestamp::now();
    let postback = Postback::parse(network, &params, now)?;
    let recorded = conversions::record_postback(&*state.store, &postback, now).await?;
    let status = recorded.status();
    // A duplicate fires again too: the network's retry after a failed enqueue lands here.
    if let Some(outbound) = state.outbound.get() {
        let conversion = shared::outbound::triggers::after_conversion(recorded.conversion());
        outbound.fire(conversion.as_slice()).await?;
    }
    match recorded {
        conversions::Recorded::New(_) => {
            tracing::info!(network = network.as_str(), status, "conversion recorded");
        }
        conversions::Recorded::Duplicate(_) => {
            tracing::info!(network = network.as_str(), "duplicate postback ignored");
        }
    }
    shared::metrics::count("Postbacks", &[("Status", status)], 1);
    Ok(Json(recorded.answer()))
}
