//! The click redirect: `GET /c/{code}` records a click on a tracked link and sends the visitor
//! on to the offer with the click id filled in. Link-preview fetchers get the same redirect but
//! are not recorded: a preview is not a person. A click whose destination is known is always
//! redirected: when the store cannot take the click, it goes to the queue and is recorded
//! later.

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{Extensions, HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use shared::config::Secrets;
use shared::http::{ApiError, Missing, Path};
use shared::queue::{JobQueue, QueueJob};
use shared::revenue::Click;
use shared::revenue::conversions;
use shared::revenue::links::{
    hash_client_ip, is_code_shaped, is_link_preview, truncate_user_agent,
};
use shared::revenue::store::RevenueStore;
use shared::secret::Secret;
use shared::time::Timestamp;
use std::net::SocketAddr;
use std::sync::Arc;

pub struct ClicksState {
    link_secret: Secret,
    store: Arc<dyn RevenueStore>,
    /// Where a click goes when the store cannot take it: the matcher records it from there.
    queue: Arc<dyn JobQueue>,
}

impl ClicksState {
    pub fn new(
        secrets: &Secrets,
        store: Arc<dyn RevenueStore>,
        queue: Arc<dyn JobQueue>,
    ) -> Arc<Self> {
        Arc::new(Self {
            link_secret: secrets.link_secret.clone(),
            store,
            queue,
        })
    }
}

/// Every route of the clicks function. Fallbacks are added once, by whoever serves it.
pub fn router(state: Arc<ClicksState>) -> Router {
    Router::new()
        .route("/c/{code}", get(follow_link))
        .with_state(state)
}

/// The address the request came from as the platform saw it: API Gateway's `sourceIp` in
/// Lambda, the socket's peer locally. Never a header: `X-Forwarded-For` says whatever the
/// client wrote in it.
fn client_address(extensions: &Extensions) -> Option<String> {
    #[cfg(feature = "lambda")]
    if let Some(lambda_http::request::RequestContext::ApiGatewayV2(context)) = extensions.get() {
        return context.http.source_ip.clone();
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip().to_canonical().to_string())
}

/// Three store round trips at most: the send, its offer, the click write.
async fn follow_link(
    State(state): State<Arc<ClicksState>>,
    Path(code): Path<String>,
    method: Method,
    headers: HeaderMap,
    extensions: Extensions,
) -> Result<Response, ApiError> {
    if !is_code_shaped(&code) {
        return Err(Missing::Link.into());
    }
    // Until the send and its offer are read, the destination is unknown: a fault is a 5xx.
    let send = state.store.load_send(&code).await?.ok_or(Missing::Link)?;
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
        let click = Click::new(
            click_id.clone(),
            &send,
            &offer,
            Timestamp::now(),
            user_agent.map(truncate_user_agent),
            client_address(&extensions).map(|ip| hash_client_ip(&state.link_secret, &ip)),
        );
        record(&state, click).await;
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

/// Records the click, or queues it when the store fails (the visitor is redirected either
/// way). Only when the queue fails too is the click lost.
async fn record(state: &ClicksState, click: Click) {
    let error = match conversions::record_click(state.store.as_ref(), &click).await {
        Ok(_) => {
            shared::metrics::count("Clicks", &[], 1);
            tracing::info!(
                instance_id = %click.instance_id,
                contact = %click.contact_id,
                offer_id = %click.offer_id,
                "click recorded"
            );
            return;
        }
        Err(error) => error,
    };
    let offer_id = click.offer_id.clone();
    match state
        .queue
        .enqueue(&QueueJob::RecordClick(Box::new(click)))
        .await
    {
        Ok(()) => {
            tracing::warn!(%offer_id, %error, "click not recorded: queued to record later");
            shared::metrics::count("ClicksQueued", &[], 1);
        }
        Err(queue_error) => {
            tracing::error!(
                %offer_id,
                %error,
                %queue_error,
                "click lost: neither recorded nor queued"
            );
            shared::metrics::count("ClicksLost", &[], 1);
        }
    }
}
