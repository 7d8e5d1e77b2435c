//! The widget function: the web chat widget's events and ref codes from browsers (a
//! publishable key plus the instance's origin allow-list, with CORS for exactly those origins),
//! and the snippet itself. Its settings (the allow-list, the key) are admin routes of the rules
//! function.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::contact::store::ContactStore;
use shared::contact::{Channel, InboundMessage, Referral};
use shared::fields::{FieldError, json_object, optional_string, present, required_string};
use shared::http::{ApiError, Body, Query, body_limit};
use shared::ids::{ContactId, InstanceId};
use shared::ingest::{InboundEvent, IngestOutcome, Ingestor};
use shared::time::Timestamp;
use shared::web::store::WidgetStore;
use shared::web::{RefCode, WebVisit, WidgetConfig, web_contact_id};
use std::sync::Arc;

/// The snippet sites load (`<script src=".../widget.js" data-key=… data-instance=…>`); sites
/// may host a copy of their own.
pub const SNIPPET: &str = include_str!("../assets/widget.js");

pub struct WidgetState {
    ingestor: Ingestor,
    widgets: Arc<dyn WidgetStore>,
    /// Where a web contact's lead (with its click ids) is sent back to the destinations.
    outbound: std::sync::OnceLock<Arc<shared::outbound::triggers::Dispatcher>>,
}

impl WidgetState {
    pub fn new(contacts: Arc<dyn ContactStore>, widgets: Arc<dyn WidgetStore>) -> Arc<Self> {
        Arc::new(Self {
            ingestor: Ingestor::new(contacts),
            widgets,
            outbound: std::sync::OnceLock::new(),
        })
    }

    /// Sends each visit's triggers to the instance's destinations through `dispatcher`. Set
    /// once; later calls are ignored.
    pub fn send_outcomes_to(&self, dispatcher: Arc<shared::outbound::triggers::Dispatcher>) {
        let _ = self.outbound.set(dispatcher);
    }
}

/// Every route of the widget function, all public. Fallbacks are added once, by whoever
/// serves it (see `shared::http::serve_json_errors`).
pub fn router(state: Arc<WidgetState>) -> Router {
    Router::new()
        .route(
            "/webhooks/widget",
            post(receive_event)
                .options(preflight)
                .layer(body_limit(MAX_BODY_BYTES)),
        )
        .route(
            "/webhooks/widget/ref",
            post(create_ref)
                .options(preflight)
                .layer(body_limit(MAX_BODY_BYTES)),
        )
        .route("/widget.js", get(snippet))
        .with_state(state)
}

async fn snippet() -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        SNIPPET,
    )
}

/// Two URLs of at most 8 KiB each, a message and the ids.
pub const MAX_BODY_BYTES: usize = 32 * 1024;
const MAX_MESSAGE_CHARS: usize = 4_096;
const KEY_HEADER: &str = "x-widget-key";

/// The query a browser's preflight carries: the snippet names the instance there too, since a
/// preflight has no body.
#[derive(Deserialize)]
pub struct InstanceQuery {
    instance_id: Option<String>,
}

fn forbidden(message: &str) -> ApiError {
    ApiError::Forbidden {
        code: "widget_forbidden",
        message: message.to_owned(),
    }
}

fn origin(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok())
}

/// Adds the CORS answer for an allowed origin to any response, errors included, so the
/// widget can read why a call failed.
fn with_cors(origin: &str, response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    response
}

async fn widget_of(
    state: &WidgetState,
    instance_id: &InstanceId,
) -> Result<WidgetConfig, ApiError> {
    state
        .widgets
        .load_widget(instance_id)
        .await?
        .ok_or_else(|| forbidden("no widget is configured for this instance"))
}

/// `OPTIONS /webhooks/widget?instance_id=…`: allows exactly the instance's origins.
pub async fn preflight(
    State(state): State<Arc<WidgetState>>,
    query: Result<Query<InstanceQuery>, ApiError>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let refused =
        || forbidden("the preflight needs ?instance_id= of a widget that allows this origin");
    let instance_id = query
        .ok()
        .and_then(|Query(query)| query.instance_id)
        .and_then(|id| InstanceId::parse(&id).ok())
        .ok_or_else(refused)?;
    let config = widget_of(&state, &instance_id).await?;
    let origin = origin(&headers)
        .filter(|origin| config.allows_origin(origin))
        .ok_or_else(refused)?;
    let mut response = with_cors(origin, StatusCode::NO_CONTENT);
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type, x-widget-key"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    Ok(response)
}

/// A browser call, admitted: the instance, the visitor (and the web contact it
/// stands for) and the visit.
struct WidgetCall {
    instance_id: InstanceId,
    visitor_id: String,
    contact_id: ContactId,
    visit: WebVisit,
    body: serde_json::Map<String, Value>,
}

/// What a browser's call brings: its query (a bad one is not a refusal: the body names the
/// instance too), its headers and its body, within the route's limit.
pub struct BrowserCall {
    query: Result<Query<InstanceQuery>, ApiError>,
    headers: HeaderMap,
    body: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for BrowserCall {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let (mut parts, body) = request.into_parts();
        let query = Query::from_request_parts(&mut parts, state).await;
        let headers = parts.headers.clone();
        let Body(body) = Body::from_request(Request::from_parts(parts, body), state).await?;
        Ok(Self {
            query,
            headers,
            body,
        })
    }
}

/// Checks the key and the origin before anything else, then reads the visit. Refused: no CORS
/// headers; admitted: the origin, and the call or why its fields do not hold.
async fn admit(
    state: &WidgetState,
    BrowserCall {
        query,
        headers,
        body,
    }: &BrowserCall,
) -> Result<(String, Result<WidgetCall, ApiError>), ApiError> {
    let object = json_object(body)?;
    let instance_id = InstanceId::parse(&required_string(&object, "instance_id")?)?;
    if let Ok(Query(InstanceQuery {
        instance_id: Some(named),
    })) = query
    {
        if named != instance_id.as_str() {
            return Err(ApiError::invalid_field(
                "instance_id",
                "the query and the body name different instances",
            ));
        }
    }
    let config = widget_of(state, &instance_id).await?;
    let key = headers.get(KEY_HEADER).map(|value| value.as_bytes());
    let origin = origin(headers);
    if !config.admits(origin, key) {
        tracing::warn!(instance_id = %instance_id, "widget call refused: origin or key");
        return Err(forbidden(
            "this origin or widget key is not allowed for the instance",
        ));
    }
    let origin = origin.expect("admitted calls have an origin").to_owned();
    // From here on every answer carries CORS headers.
    let read = || -> Result<(String, ContactId, WebVisit), FieldError> {
        let visitor_id = required_string(&object, "visitor_id")?;
        let contact_id = web_contact_id(&visitor_id)?;
        let page_url = required_string(&object, "page_url")?;
        let referrer = optional_string(&object, "referrer")?;
        let visit = WebVisit::from_page(&page_url, referrer.as_deref(), Timestamp::now())?;
        // Marked here, where the widget's config is already read: no extra store read.
        let visit = config.mark_counted(visit);
        Ok((visitor_id, contact_id, visit))
    };
    let call = read().map_err(ApiError::from);
    let call = call.map(|(visitor_id, contact_id, visit)| WidgetCall {
        instance_id,
        visitor_id,
        contact_id,
        visit,
        body: object,
    });
    Ok((origin, call))
}

/// Admits the call, then answers it with `serve`; whatever the admitted call's answer, it
/// carries CORS headers for its origin.
async fn serve_admitted(
    state: &WidgetState,
    call: BrowserCall,
    serve: impl AsyncFnOnce(&WidgetState, WidgetCall) -> Result<Value, ApiError>,
) -> Result<Response, ApiError> {
    let (origin, call) = admit(state, &call).await?;
    let answer = match call {
        Ok(call) => serve(state, call).await,
        Err(error) => Err(error),
    };
    Ok(with_cors(&origin, answer.map(Json)))
}

/// `POST /webhooks/widget`: the chat was opened (or written in) on a page. Creates or updates
/// the web contact, whose first visit is its acquisition.
pub async fn receive_event(
    State(state): State<Arc<WidgetState>>,
    call: BrowserCall,
) -> Result<Response, ApiError> {
    serve_admitted(&state, call, record_event).await
}

async fn record_event(state: &WidgetState, call: WidgetCall) -> Result<Value, ApiError> {
    let message = match present(&call.body, "message") {
        None => None,
        Some(Value::String(text)) if text.chars().count() <= MAX_MESSAGE_CHARS => {
            Some(text.trim().to_owned()).filter(|text| !text.is_empty())
        }
        Some(_) => {
            return Err(ApiError::invalid_field(
                "message",
                format!("must be a string of at most {MAX_MESSAGE_CHARS} characters"),
            ));
        }
    };
    // An event id from the snippet makes a retried call a duplicate; without one every call
    // counts (first touch is kept either way).
    let event_id = match optional_string(&call.body, "event_id")? {
        Some(id) if id.len() <= 128 => id,
        Some(_) => {
            return Err(ApiError::invalid_field(
                "event_id",
                "must be at most 128 characters",
            ));
        }
        None => ulid::Ulid::new().to_string(),
    };
    let now = Timestamp::now();
    let event = InboundEvent {
        dedupe_key: format!("widget#{}#{event_id}", call.contact_id.as_str()),
        instance_id: call.instance_id.clone(),
        contact_id: call.contact_id.clone(),
        channel: Channel::Web,
        display_name: None,
        occurred_at: now,
        message: message.map(|text| InboundMessage {
            id: format!("web-{event_id}"),
            kind: "text".to_owned(),
            text: Some(text),
            timestamp: now,
            details: None,
        }),
        referral: Some(Referral::Web(call.visit)),
        identity: Default::default(),
    };
    let outcome = state.ingestor.ingest(&event, now).await?;
    // After the commit, as the webhook does: a failure answers 5xx and the snippet's retry
    // (same event id: a duplicate) queues again.
    if let (Some(outbound), Some(contact)) = (state.outbound.get(), outcome.contact()) {
        let triggers = shared::outbound::triggers::after_inbound(&event, contact);
        outbound.fire(&triggers).await?;
    }
    tracing::info!(
        instance_id = %call.instance_id,
        contact = %call.contact_id,
        duplicate = matches!(outcome, IngestOutcome::Duplicate { .. }),
        "widget event"
    );
    // The key is public and an Origin is easy to forge, so the answer says only what this
    // request brought: never the contact as stored, nor whether the event was seen before.
    Ok(json!({
        "instance_id": call.instance_id,
        "visitor_id": call.visitor_id,
        "contact_id": call.contact_id.as_str(),
        "event_id": event_id,
    }))
}

/// `POST /webhooks/widget/ref`: a short code holding this visit, for the site to append to the
/// pre-filled text of its `wa.me` links.
pub async fn create_ref(
    State(state): State<Arc<WidgetState>>,
    call: BrowserCall,
) -> Result<Response, ApiError> {
    serve_admitted(&state, call, mint_ref).await
}

async fn mint_ref(state: &WidgetState, call: WidgetCall) -> Result<Value, ApiError> {
    let now = Timestamp::now();
    // 36^8 codes: a collision is rare; a few draws make it vanishingly so.
    for _ in 0..4 {
        let code = RefCode::new(
            call.instance_id.clone(),
            call.visitor_id.clone(),
            call.visit.clone(),
            now,
        );
        if state.widgets.create_ref(&code).await? {
            return Ok(json!({
                "ref": code.code,
                "text_suffix": code.text_suffix(),
                "expires_at": code.expires_at,
            }));
        }
    }
    Err(ApiError::Unavailable(
        "no free ref code after 4 draws".to_owned(),
    ))
}
