//! The contacts function: the admin API of an instance's contacts: the listing behind the
//! attribution view (filters, signed cursors), one contact as stored, and a person's erasure on
//! request.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};
use shared::catalog::store::CatalogStore;
use shared::catalog::{products_for_contacts, show_products};
use shared::contact::Contact;
use shared::contact::listing::{self, CursorCodec, ListingQuery, PageFailure};
use shared::contact::store::ContactStore;
use shared::erasure::ErasureStore;
use shared::events::custom;
use shared::goals::store::GoalStore;
use shared::http::{
    ApiError, Body, Missing, Path, Query, admin_routes, contact_view, contacts_csv,
};
use shared::ids::{ContactId, InstanceId};
use shared::secret::AdminKeys;
use shared::spend::store::SpendStore;
use shared::spend::{name_ad, names_for_contacts};
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
    /// Names the ads contacts were acquired by (one lookup a page).
    spend: Arc<dyn SpendStore>,
    /// The goals the business's events move.
    goals: Arc<dyn GoalStore>,
    /// Shows the catalog products contacts came through (one lookup a page).
    catalog: Arc<dyn CatalogStore>,
    /// Where goals the business's events complete are sent back.
    outbound: std::sync::OnceLock<Arc<shared::outbound::triggers::Dispatcher>>,
}

impl ContactsState {
    /// The state over these stores, its listing cursors signed under the admin key.
    pub fn new(
        admin_keys: &AdminKeys,
        contacts: Arc<dyn ContactStore>,
        erasure: Arc<dyn ErasureStore>,
        spend: Arc<dyn SpendStore>,
        goals: Arc<dyn GoalStore>,
        catalog: Arc<dyn CatalogStore>,
    ) -> Arc<Self> {
        Arc::new(Self {
            cursors: CursorCodec::new(admin_keys.admin.clone()),
            admin_keys: Arc::new(admin_keys.clone()),
            contacts,
            erasure,
            spend,
            goals,
            catalog,
            outbound: std::sync::OnceLock::new(),
        })
    }

    /// Sends the goals recorded events complete to the destinations through `dispatcher`.
    pub fn send_outcomes_to(&self, dispatcher: Arc<shared::outbound::triggers::Dispatcher>) {
        let _ = self.outbound.set(dispatcher);
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
        )
        .route(
            "/instances/{instance_id}/contacts/{contact_id}/events",
            post(record_events),
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
    Ok(Json(
        named_views(&state, std::slice::from_ref(&contact))
            .await?
            .remove(0),
    ))
}

/// Events from the business's own systems, recorded on the contact all together or not at
/// all; each says whether it was new.
async fn record_events(
    State(state): State<Arc<ContactsState>>,
    Path((instance_id, contact_id)): Path<(InstanceId, ContactId)>,
    Body(body): Body,
) -> Result<Json<Value>, ApiError> {
    let events = custom::parse(&body, Timestamp::now())?;
    let results = custom::record(
        state.contacts.as_ref(),
        state.goals.as_ref(),
        &instance_id,
        &contact_id,
        &events,
    )
    .await?;
    // After the commit; a failure answers 5xx and the business's retry (duplicates) fires again.
    if let Some(outbound) = state.outbound.get() {
        if let Some(contact) = state
            .contacts
            .load_contact(&instance_id, &contact_id)
            .await?
        {
            let triggers = shared::outbound::triggers::after_events(&contact, &events);
            outbound.fire(&triggers).await?;
        }
    }
    let created = results
        .iter()
        .filter(|result| result.status == shared::events::Recorded::Created)
        .count();
    Ok(Json(json!({ "events": results, "created": created })))
}

/// The contacts as the API shows them, with their ads' names: one lookup for all of them.
async fn named_views(state: &ContactsState, contacts: &[Contact]) -> Result<Vec<Value>, ApiError> {
    let names = names_for_contacts(state.spend.as_ref(), contacts).await?;
    let products = products_for_contacts(state.catalog.as_ref(), contacts).await?;
    Ok(contacts
        .iter()
        .map(|contact| {
            let mut shown = contact_view(contact);
            name_ad(&mut shown, &names);
            show_products(&mut shown, &products);
            shown
        })
        .collect())
}

/// The instance's contacts, newest first, filtered: the pipeline view.
async fn list_contacts(
    State(state): State<Arc<ContactsState>>,
    Path(instance_id): Path<InstanceId>,
    Query(query): Query<ListingQuery>,
) -> Result<Json<Value>, ApiError> {
    let (contacts, next_cursor) = listing::query_page(
        state.contacts.as_ref(),
        &state.cursors,
        &instance_id,
        &query,
        Timestamp::now(),
    )
    .await
    .map_err(|failure| match failure {
        PageFailure::Invalid(error) => ApiError::from(error),
        PageFailure::Store(error) => ApiError::from(error),
    })?;
    let shown = named_views(&state, &contacts).await?;
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
    Ok(contacts_csv(
        state.contacts.clone(),
        state.spend.clone(),
        instance_id,
        &query,
    )?)
}
