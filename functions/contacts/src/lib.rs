//! The contacts function: the admin API of an instance's contacts: the listing behind the
//! attribution view (filters, signed cursors), one contact as stored, and a person's erasure on
//! request.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use shared::contact::listing::{self, ContactFilter, CursorCodec};
use shared::contact::store::{ContactStore, ContactWindow};
use shared::erasure::ErasureStore;
use shared::http::{ApiError, Missing, Path, Query, admin_routes, contact_view};
use shared::ids::{ContactId, InstanceId};
use shared::secret::AdminKeys;
use shared::time::Timestamp;
use std::sync::Arc;

mod erasure;

/// What the contacts function's handlers share, built once per process.
pub struct ContactsState {
    /// Signs listing cursors; the admin key is a server secret already.
    cursors: CursorCodec,
    admin_keys: Arc<AdminKeys>,
    contacts: Arc<dyn ContactStore>,
    /// Erases a person on request (contacts and the revenue records that name them).
    erasure: Arc<dyn ErasureStore>,
}

impl ContactsState {
    /// The state over these stores, its listing cursors signed under the admin key.
    pub fn new(
        admin_keys: &AdminKeys,
        contacts: Arc<dyn ContactStore>,
        erasure: Arc<dyn ErasureStore>,
    ) -> Arc<Self> {
        Arc::new(Self {
            cursors: CursorCodec::new(admin_keys.admin.clone()),
            admin_keys: Arc::new(admin_keys.clone()),
            contacts,
            erasure,
        })
    }
}

/// Every route of the contacts function, all behind the admin key. Fallbacks are added once,
/// by whoever serves it (see `shared::http::serve_json_errors`).
pub fn router(state: Arc<ContactsState>) -> Router {
    let routes = Router::new()
        .route("/instances/{instance_id}/contacts", get(list_contacts))
        .route(
            "/instances/{instance_id}/contacts/{contact_id}",
            get(get_contact).delete(erasure::erase_contact),
        );
    admin_routes(routes, state.admin_keys.clone()).with_state(state)
}

/// The contact an id names (its own id, a phone number or BSUID linked to it, the id of a
/// contact merged into it), as stored.
async fn get_contact(
    State(state): State<Arc<ContactsState>>,
    Path((instance_id, contact_id)): Path<(InstanceId, ContactId)>,
) -> Result<Json<Value>, ApiError> {
    let contact = state
        .contacts
        .load_contact(&instance_id, &contact_id)
        .await?
        .ok_or(Missing::Contact)?;
    Ok(Json(contact_view(&contact)))
}

#[derive(Deserialize)]
struct ContactsQuery {
    since: Option<String>,
    until: Option<String>,
    kind: Option<String>,
    platform: Option<String>,
    campaign: Option<String>,
    rule_id: Option<String>,
    unattributed: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

fn timestamp(
    field: &'static str,
    text: Option<&str>,
    default: Timestamp,
) -> Result<Timestamp, ApiError> {
    match text {
        None => Ok(default),
        Some(text) => Timestamp::parse_rfc3339(text)
            .ok_or_else(|| ApiError::invalid_field(field, "must be an RFC 3339 timestamp"))?
            .accepted()
            .map_err(|error| ApiError::invalid_field(field, error.to_string())),
    }
}

/// The instance's contacts, newest first, filtered: the pipeline view.
async fn list_contacts(
    State(state): State<Arc<ContactsState>>,
    Path(instance_id): Path<InstanceId>,
    Query(query): Query<ContactsQuery>,
) -> Result<Json<Value>, ApiError> {
    let epoch = Timestamp::from_unix_seconds(0).expect("the epoch");
    let window = ContactWindow {
        since: timestamp("since", query.since.as_deref(), epoch)?,
        // A little past now: Meta's clocks and ours differ by seconds.
        until: timestamp(
            "until",
            query.until.as_deref(),
            Timestamp::now().plus_seconds(86_400),
        )?,
    };
    if window.since >= window.until {
        return Err(ApiError::invalid_field("since", "must be before until"));
    }
    let filter = ContactFilter::parse(
        query.kind.as_deref(),
        query.platform.as_deref(),
        query.campaign.as_deref(),
        query.rule_id.as_deref(),
        query.unattributed.as_deref(),
    )?;
    let limit = listing::parse_limit(query.limit.as_deref())?;
    let after = match &query.cursor {
        Some(cursor) => Some(state.cursors.decode(&instance_id, cursor)?),
        None => None,
    };

    let page = listing::filtered_page(
        state.contacts.as_ref(),
        &instance_id,
        &window,
        &filter,
        after,
        limit,
    )
    .await?;
    let shown: Vec<Value> = page.contacts.iter().map(contact_view).collect();
    let next_cursor = page
        .next
        .map(|position| state.cursors.encode(&instance_id, &position));
    Ok(Json(
        json!({ "contacts": shown, "next_cursor": next_cursor }),
    ))
}
