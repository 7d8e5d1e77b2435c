//! The contacts function: the admin API of an instance's contacts: the listing behind the
//! attribution view (filters, signed cursors), one contact as stored, and a person's erasure on
//! request.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use shared::contact::export;
use shared::contact::listing::{self, CursorCodec, ListingQuery};
use shared::contact::store::ContactStore;
use shared::erasure::ErasureStore;
use shared::http::{ApiError, Missing, Path, Query, admin_routes, contact_view, csv_download};
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
            "/instances/{instance_id}/contacts.csv",
            get(export_contacts),
        )
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

/// The instance's contacts, newest first, filtered: the pipeline view.
async fn list_contacts(
    State(state): State<Arc<ContactsState>>,
    Path(instance_id): Path<InstanceId>,
    Query(query): Query<ListingQuery>,
) -> Result<Json<Value>, ApiError> {
    let window = query.window(Timestamp::now())?;
    let filter = query.filter()?;
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

/// The same listing as CSV, every page of it, streamed: `limit` and `cursor` do not apply.
async fn export_contacts(
    State(state): State<Arc<ContactsState>>,
    Path(instance_id): Path<InstanceId>,
    Query(query): Query<ListingQuery>,
) -> Result<Response, ApiError> {
    let window = query.window(Timestamp::now())?;
    let filter = query.filter()?;
    let rows = export::stream(state.contacts.clone(), instance_id.clone(), window, filter);
    Ok(csv_download(&instance_id, rows))
}
