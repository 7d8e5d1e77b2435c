//! The postback function: conversions posted back by affiliate platforms, credited to the
//! contact's first click inside the click window. Public: a postback token admits the caller.

use axum::Json;
use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use bytes::Bytes;
use serde_json::{Value, json};
use shared::config::Secrets;
use shared::http::ApiError;
use shared::revenue::attribution::{CreditWindow, Decision, decide};
use shared::revenue::postback::{self, read_params};
use shared::revenue::store::{ConversionWrite, RevenueStore};
use shared::revenue::{Amount, Conversion, ConversionStatus, Network, Postback};
use shared::secret::Secret;
use shared::time::Timestamp;
use std::sync::Arc;

pub struct PostbackState {
    postback_token: Secret,
    store: Arc<dyn RevenueStore>,
}

impl PostbackState {
    pub fn new(secrets: &Secrets, store: Arc<dyn RevenueStore>) -> Arc<Self> {
        Arc::new(Self {
            postback_token: secrets.postback_token.clone(),
            store,
        })
    }
}

/// Every route of the postback function. Fallbacks are added once, by whoever serves it.
pub fn router(state: Arc<PostbackState>) -> Router {
    Router::new()
        .route(
            "/postbacks/{network}",
            get(receive_postback)
                .post(receive_postback)
                .layer(DefaultBodyLimit::max(postback::MAX_BODY_BYTES)),
        )
        .with_state(state)
}

fn readable(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge {
                limit_bytes: postback::MAX_BODY_BYTES,
            }
        } else {
            ApiError::bad_request("unreadable_body", rejection.body_text())
        }
    })
}

/// `200` for every well-formed postback, whatever became of it, so platforms never disable
/// the URL; `401` for a wrong token, `400` for one that cannot be used.
async fn receive_postback(
    State(state): State<Arc<PostbackState>>,
    Path(network): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let network = Network::parse(&network).ok_or_else(|| {
        ApiError::not_found(
            "unknown_network",
            "the network must be tune, everflow or generic",
        )
    })?;
    let body = readable(body)?;
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
    let conversion = attribute(&*state.store, &postback, now).await?;
    let answer = match state.store.record_conversion(&conversion).await? {
        ConversionWrite::Recorded => {
            tracing::info!(
                network = network.as_str(),
                status = ?conversion.status,
                "conversion recorded"
            );
            shared::metrics::count("Postbacks", &[("Status", conversion.status.as_str())], 1);
            postback_answer(conversion.status.as_str(), &conversion)
        }
        ConversionWrite::Duplicate(_) => {
            tracing::info!(network = network.as_str(), "duplicate postback ignored");
            shared::metrics::count("Postbacks", &[("Status", "duplicate")], 1);
            postback_answer("duplicate", &conversion)
        }
    };
    Ok(Json(answer))
}

/// The conversion a postback reports, credited to the first click in the window when its
/// click is known: two store reads (the click, then the contact's first click on the offer).
async fn attribute(
    store: &dyn RevenueStore,
    postback: &Postback,
    now: Timestamp,
) -> Result<Conversion, ApiError> {
    let mut conversion = Conversion {
        conversion_key: postback.conversion_key(),
        network: postback.network,
        conversion_id: postback.reported_conversion_id(),
        click_id: postback.click_id.clone(),
        event: postback.event.clone(),
        payout: postback.payout.unwrap_or(Amount::ZERO),
        currency: postback.currency,
        converted_at: postback.converted_at,
        received_at: now,
        status: ConversionStatus::UnknownClick,
        instance_id: None,
        contact_id: None,
        credited: None,
    };
    let Some(click) = store.load_click(&postback.click_id).await? else {
        return Ok(conversion);
    };
    conversion.instance_id = Some(click.instance_id.clone());
    conversion.contact_id = Some(click.contact_id.clone());
    let window = CreditWindow::new(postback.converted_at, &click);
    let first = if window.contains(click.clicked_at) {
        store
            .first_click(
                &click.instance_id,
                &click.contact_id,
                &click.offer_id,
                &window,
            )
            .await?
    } else {
        None
    };
    match decide(&window, &click, first.as_ref()) {
        Decision::Attributed(credit) => {
            conversion.status = ConversionStatus::Attributed;
            conversion.credited = Some(credit);
        }
        Decision::OutsideWindow => conversion.status = ConversionStatus::OutsideWindow,
        Decision::BeforeClick => conversion.status = ConversionStatus::BeforeClick,
    }
    Ok(conversion)
}

/// What the platform reads back: its own conversion id and what became of it. Nothing stored
/// about the click, its send or its contact: a platform (or whoever holds a leaked token) has
/// no use for them.
fn postback_answer(status: &str, conversion: &Conversion) -> Value {
    json!({
        "status": status,
        "conversion_id": conversion.conversion_id,
    })
}
