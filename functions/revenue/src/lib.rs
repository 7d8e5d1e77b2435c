//! The revenue function: the admin API that feeds and reads the revenue side: offers, the sends
//! whose tracked links carry them, revenue reports, and a contact's journey (its sends, clicks
//! and conversions).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use shared::config::Secrets;
use shared::contact::store::{ContactQueries, ContactStore};
use shared::fields::FieldError;
use shared::http::{ApiError, AuditObject, Body, Missing, Path, Query, admin_routes};
use shared::ids::{ContactId, InstanceId, OfferId};
use shared::revenue::explain::{self, Explanation};
use shared::revenue::import::{self, MAX_IMPORT_BYTES};
use shared::revenue::journey;
use shared::revenue::links::{send_code, tracked_url};
use shared::revenue::report::{self, ReportRequest};
use shared::revenue::store::{RevenueStore, SendWrite};
use shared::revenue::{Network, Offer, OfferDraft, SendDraft, SendRecord};
use shared::secret::{AdminKeys, Secret};
use shared::time::Timestamp;
use std::collections::HashMap;
use std::sync::Arc;

pub struct RevenueState {
    admin_keys: Arc<AdminKeys>,
    link_secret: Secret,
    /// Tracked links are `<public_base_url>/c/<code>`.
    public_base_url: String,
    store: Arc<dyn RevenueStore>,
    /// Resolves the contact id a send or journey names (a phone number or a BSUID) to the
    /// contact that stays.
    contacts: Arc<dyn ContactStore>,
}

impl RevenueState {
    pub fn new(
        secrets: &Secrets,
        public_base_url: &str,
        store: Arc<dyn RevenueStore>,
        contacts: Arc<dyn ContactStore>,
    ) -> Arc<Self> {
        Arc::new(Self {
            admin_keys: Arc::new(secrets.admin_keys.clone()),
            link_secret: secrets.link_secret.clone(),
            public_base_url: public_base_url.to_owned(),
            store,
            contacts,
        })
    }

    /// The id of the contact `contact_id` names, or `contact_id` itself for one not seen yet.
    async fn canonical(
        &self,
        instance_id: &InstanceId,
        contact_id: ContactId,
    ) -> Result<ContactId, ApiError> {
        let resolved = self
            .contacts
            .resolve_contact_id(instance_id, &contact_id)
            .await?;
        Ok(resolved.unwrap_or(contact_id))
    }
}

/// Every route of the revenue function, all behind the admin key. Fallbacks are added once, by
/// whoever serves it.
pub fn router(state: Arc<RevenueState>) -> Router {
    let routes = Router::new()
        .route("/offers", post(create_offer).get(list_offers))
        .route("/offers/{offer_id}", get(get_offer).put(replace_offer))
        .route("/sends", post(create_sends))
        .route("/reports/revenue", get(revenue_report))
        .route("/reports/revenue/models", get(models_report))
        .route("/conversions/import", post(import_conversions))
        .route(
            "/conversions/{conversion_id}/explain",
            get(explain_conversion),
        )
        .route(
            "/instances/{instance_id}/contacts/{contact_id}/journey",
            get(contact_journey),
        );
    admin_routes(routes, state.admin_keys.clone()).with_state(state)
}

async fn create_offer(
    State(state): State<Arc<RevenueState>>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let draft = OfferDraft::from_json(&body)?;
    let id = draft.offer_id.clone().unwrap_or_else(|| {
        OfferId::parse(&ulid::Ulid::new().to_string().to_lowercase()).expect("a ULID is an id")
    });
    let now = Timestamp::now();
    let offer = draft.into_offer(id, now, now);
    if !state.store.create_offer(&offer).await? {
        return Err(ApiError::Conflict {
            code: "offer_exists",
            message: format!(
                "an offer with id {} exists; PUT /offers/{} replaces it",
                offer.offer_id, offer.offer_id
            ),
        });
    }
    let created = format!("offer_id={}", offer.offer_id);
    Ok(AuditObject::attach(
        (StatusCode::CREATED, Json(offer)).into_response(),
        created,
    ))
}

async fn list_offers(State(state): State<Arc<RevenueState>>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "offers": state.store.list_offers().await? })))
}

async fn get_offer(
    State(state): State<Arc<RevenueState>>,
    Path(id): Path<OfferId>,
) -> Result<Json<Offer>, ApiError> {
    let offer = state.store.load_offer(&id).await?;
    Ok(Json(offer.ok_or(Missing::Offer)?))
}

async fn replace_offer(
    State(state): State<Arc<RevenueState>>,
    Path(id): Path<OfferId>,
    Body(body): Body,
) -> Result<Json<Offer>, ApiError> {
    let draft = OfferDraft::from_json(&body)?;
    if draft.offer_id.as_ref().is_some_and(|given| given != &id) {
        return Err(ApiError::invalid_field(
            "offer_id",
            "must match the offer id of the path, or be left out",
        ));
    }
    let stored = state.store.load_offer(&id).await?.ok_or(Missing::Offer)?;
    let offer = draft.into_offer(id, stored.created_at, Timestamp::now());
    if !state.store.replace_offer(&offer).await? {
        return Err(Missing::Offer.into());
    }
    Ok(Json(offer))
}

/// One send or an array of them. A send whose instance and message id were sent before is
/// answered as it was stored then (`"existing": true`), so a retried call creates nothing twice.
async fn create_sends(
    State(state): State<Arc<RevenueState>>,
    Body(body): Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (mut drafts, is_array) = SendDraft::many_from_json(&body)?;
    let mut resolved: HashMap<(InstanceId, ContactId), ContactId> = HashMap::new();
    for draft in &mut drafts {
        let key = (draft.instance_id.clone(), draft.contact_id.clone());
        if !resolved.contains_key(&key) {
            let canonical = state.canonical(&key.0, key.1.clone()).await?;
            resolved.insert(key.clone(), canonical);
        }
        draft.contact_id = resolved[&key].clone();
    }
    let mut offers: HashMap<OfferId, Offer> = HashMap::new();
    for (index, draft) in drafts.iter().enumerate() {
        if offers.contains_key(&draft.offer_id) {
            continue;
        }
        match state.store.load_offer(&draft.offer_id).await? {
            Some(offer) => {
                offers.insert(offer.offer_id.clone(), offer);
            }
            None => {
                let field = if is_array {
                    format!("[{index}].offer_id")
                } else {
                    "offer_id".to_owned()
                };
                return Err(ApiError::invalid_field(
                    field,
                    format!(
                        "no offer {} exists; create it with POST /offers",
                        draft.offer_id
                    ),
                ));
            }
        }
    }
    let now = Timestamp::now();
    let records: Vec<SendRecord> = drafts
        .into_iter()
        .map(|draft| {
            let send_id = ulid::Ulid::new().to_string();
            let message_id = draft.message_id.unwrap_or_else(|| send_id.clone());
            SendRecord {
                code: send_code(&state.link_secret, draft.instance_id.as_str(), &message_id),
                send_id,
                currency: offers[&draft.offer_id].currency,
                instance_id: draft.instance_id,
                contact_id: draft.contact_id,
                message_id,
                campaign: draft.campaign,
                creative: draft.creative,
                offer_id: draft.offer_id,
                sent_at: draft.sent_at.unwrap_or(now),
            }
        })
        .collect();
    let outcomes = state.store.create_sends(&records).await?;
    let shown: Vec<Value> = records
        .iter()
        .zip(&outcomes)
        .map(|(record, outcome)| match outcome {
            SendWrite::Created => send_view(&state.public_base_url, record, false),
            SendWrite::Existing(stored) => send_view(&state.public_base_url, stored, true),
        })
        .collect();
    let created = outcomes
        .iter()
        .filter(|o| **o == SendWrite::Created)
        .count();
    tracing::info!(sends = shown.len(), created, "sends stored");
    let body = if is_array {
        json!({ "sends": shown })
    } else {
        shown.into_iter().next().expect("one send")
    };
    Ok((StatusCode::CREATED, Json(body)))
}

fn send_view(base_url: &str, send: &SendRecord, existing: bool) -> Value {
    let mut shown = json!(send);
    shown["tracked_url"] = json!(tracked_url(base_url, &send.code));
    shown["existing"] = json!(existing);
    shown
}

#[derive(Deserialize)]
struct ReportQuery {
    group_by: Option<String>,
    since: Option<String>,
    until: Option<String>,
    instance_id: Option<String>,
}

/// `ReportRequest::parse` or `ReportRequest::parse_models`.
type RequestParser =
    fn(Option<&str>, Option<&str>, Option<&str>, Timestamp) -> Result<ReportRequest, FieldError>;

impl ReportQuery {
    /// The request checked as the revenue report (`parse`) or the model comparison
    /// (`parse_models`) checks it, of one instance with `instance_id`.
    fn request(&self, parse: RequestParser) -> Result<ReportRequest, FieldError> {
        parse(
            self.group_by.as_deref(),
            self.since.as_deref(),
            self.until.as_deref(),
            Timestamp::now(),
        )?
        .for_instance(self.instance_id.as_deref())
    }
}

/// Revenue by message, creative, offer, campaign or day over `[since, until]` (UTC days, both
/// included; the last 30 days by default), one row per key and currency, with totals; of one
/// instance with `instance_id`.
async fn revenue_report(
    State(state): State<Arc<RevenueState>>,
    Query(query): Query<ReportQuery>,
) -> Result<Json<report::Report>, ApiError> {
    let request = query.request(ReportRequest::parse)?;
    Ok(Json(report::load(state.store.as_ref(), &request).await?))
}

/// Every model's revenue side by side, from the same counters as the report (one read per
/// day): `group_by` message, creative, offer or campaign.
async fn models_report(
    State(state): State<Arc<RevenueState>>,
    Query(query): Query<ReportQuery>,
) -> Result<Json<report::ModelReport>, ApiError> {
    let request = query.request(ReportRequest::parse_models)?;
    Ok(Json(
        report::load_models(state.store.as_ref(), &request).await?,
    ))
}

/// The `network` query parameter a conversion is looked up or imported under.
fn network_param(network: Option<&str>) -> Result<Network, ApiError> {
    network
        .and_then(Network::parse)
        .ok_or_else(|| ApiError::invalid_field("network", "must be one of tune, everflow, generic"))
}

#[derive(Deserialize)]
struct ImportQuery {
    network: Option<String>,
}

/// A CSV of conversions (the raw body), each row recorded as its postback would be, answered
/// as NDJSON while it is read: a line per row, then the totals.
async fn import_conversions(
    State(state): State<Arc<RevenueState>>,
    Query(query): Query<ImportQuery>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let network = network_param(query.network.as_deref())?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.trim().to_ascii_lowercase());
    let csv = content_type.as_deref().is_some_and(|value| {
        ["text/csv", "application/csv", "text/plain"]
            .iter()
            .any(|accepted| value.starts_with(accepted))
    });
    if !csv {
        return Err(ApiError::bad_request(
            "unsupported_content_type",
            "the body must be the CSV file itself, with Content-Type: text/csv",
        ));
    }
    // A declared length over the limit is refused before a byte is read.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_IMPORT_BYTES as u64) {
        return Err(ApiError::PayloadTooLarge {
            limit_bytes: MAX_IMPORT_BYTES,
        });
    }
    let lines = import::import(state.store.clone(), network, body.into_data_stream()).await?;
    let body = axum::body::Body::from_stream(lines.map(Ok::<_, std::convert::Infallible>));
    Ok(AuditObject::attach(
        ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response(),
        format!("network={}", network.as_str()),
    ))
}

#[derive(Deserialize)]
struct ExplainQuery {
    network: Option<String>,
}

/// Longest conversion id a postback may carry, so no longer one can name a stored conversion.
const MAX_CONVERSION_ID_BYTES: usize = 256;

/// Why a conversion was credited as it was: the clicks considered, the window and the outcome.
async fn explain_conversion(
    State(state): State<Arc<RevenueState>>,
    Path(conversion_id): Path<String>,
    Query(query): Query<ExplainQuery>,
) -> Result<Json<Explanation>, ApiError> {
    let network = network_param(query.network.as_deref())?;
    if conversion_id.is_empty() || conversion_id.len() > MAX_CONVERSION_ID_BYTES {
        return Err(ApiError::invalid_field(
            "conversion_id",
            format!("must be 1 to {MAX_CONVERSION_ID_BYTES} bytes"),
        ));
    }
    let explained = explain::explain(state.store.as_ref(), network, &conversion_id).await?;
    Ok(Json(explained.ok_or(Missing::Conversion)?))
}

/// A contact's sends, clicks and conversions in time order, and the revenue credited to it.
async fn contact_journey(
    State(state): State<Arc<RevenueState>>,
    Path((instance_id, contact_id)): Path<(InstanceId, ContactId)>,
) -> Result<Json<Value>, ApiError> {
    let (contact_id, journey) = journey::load(
        state.store.as_ref(),
        state.contacts.as_ref(),
        &instance_id,
        contact_id,
    )
    .await?;
    let mut events: Vec<(Timestamp, u8, Value)> = Vec::new();
    for send in &journey.sends {
        let mut shown = json!(send);
        shown["type"] = json!("send");
        shown["tracked_url"] = json!(tracked_url(&state.public_base_url, &send.code));
        events.push((send.sent_at, 0, shown));
    }
    for click in &journey.clicks {
        let mut shown = json!(click);
        shown["type"] = json!("click");
        events.push((click.clicked_at, 1, shown));
    }
    for conversion in &journey.conversions {
        let mut shown = json!(conversion);
        shown["type"] = json!("conversion");
        shown["status"] = json!(conversion.status.as_str());
        events.push((conversion.converted_at, 2, shown));
    }
    // Stable: at the same instant a send comes before its click, a click before its conversion.
    events.sort_by_key(|(at, order, _)| (*at, *order));
    let revenue: Vec<Value> = journey::revenue_by_currency(&journey)
        .into_iter()
        .map(|(currency, amount)| json!({ "currency": currency, "amount": amount }))
        .collect();
    Ok(Json(json!({
        "instance_id": instance_id,
        "contact_id": contact_id.as_str(),
        "sends": journey.sends.len(),
        "clicks": journey.clicks.len(),
        "conversions": journey.conversions.len(),
        "revenue": revenue,
        "events": events.into_iter().map(|(_, _, event)| event).collect::<Vec<_>>(),
    })))
}
