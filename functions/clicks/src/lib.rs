//! The click redirect: `GET /c/{code}` records a click on a tracked link and sends the visitor
//! on to the offer with the click id filled in. Link-preview fetchers get the same redirect but
//! are not recorded: a preview is not a person.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use shared::config::Secrets;
use shared::http::ApiError;
use shared::revenue::Click;
use shared::revenue::links::{
    hash_client_ip, is_code_shaped, is_link_preview, truncate_user_agent,
};
use shared::secret::Secret;
use shared::store::RevenueStore;
use shared::time::Timestamp;
use std::sync::Arc;

pub struct ClicksState {
    link_secret: Secret,
    store: Arc<dyn RevenueStore>,
}

impl ClicksState {
    pub fn new(secrets: &Secrets, store: Arc<dyn RevenueStore>) -> Arc<Self> {
        Arc::new(Self {
            link_secret: secrets.link_secret.clone(),
            store,
        })
    }
}

/// Every route of the clicks function. Fallbacks are added once, by whoever serves it.
pub fn router(state: Arc<ClicksState>) -> Router {
    Router::new()
        .route("/c/{code}", get(follow_link))
        .with_state(state)
}

fn link_not_found() -> ApiError {
    ApiError::not_found("link_not_found", "no such tracked link")
}

/// Three store round trips at most: the send, its offer, the click write.
async fn follow_link(
    State(state): State<Arc<ClicksState>>,
    Path(code): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !is_code_shaped(&code) {
        return Err(link_not_found());
    }
    let send = state
        .store
        .load_send(&code)
        .await?
        .ok_or_else(link_not_found)?;
    let offer = state
        .store
        .load_offer(&send.offer_id)
        .await?
        .ok_or_else(|| {
            ApiError::Internal(format!("send {} names a missing offer", send.send_id))
        })?;
    let click_id = ulid::Ulid::new().to_string();
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok());
    // A HEAD asks about the link without following it: previews do that, people don't.
    let counted = method != Method::HEAD && !is_link_preview(user_agent);
    if counted {
        let client_ip = headers
            .get("x-forwarded-for")
            .and_then(|value| value.to_str().ok())
            .and_then(|list| list.split(',').next())
            .map(str::trim)
            .filter(|ip| !ip.is_empty());
        let click = Click::new(
            click_id.clone(),
            &send,
            &offer,
            Timestamp::now(),
            user_agent.map(truncate_user_agent),
            client_ip.map(|ip| hash_client_ip(&state.link_secret, ip)),
        );
        state.store.record_click(&click).await?;
        shared::metrics::count("Clicks", &[], 1);
        tracing::info!(
            instance_id = %send.instance_id,
            contact = %send.contact_id,
            offer_id = %send.offer_id,
            "click recorded"
        );
    } else {
        tracing::debug!(offer_id = %send.offer_id, "link preview redirected, not counted");
        shared::metrics::count("LinkPreviews", &[], 1);
    }
    let location = offer.destination_url.for_click(&click_id);
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            // Each visit must reach us again to be counted.
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (header::REFERRER_POLICY, "no-referrer".to_owned()),
        ],
    )
        .into_response())
}
