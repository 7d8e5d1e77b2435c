//! `DELETE /instances/{instance_id}/contacts/{contact_id}`: a person's erasure on request. It
//! lives in an admin function so that the functions facing Meta and browsers hold no right to
//! delete anything.

use super::ContactsState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use shared::erasure::Erasure;
use shared::http::ApiError;
use shared::ids::{ContactId, InstanceId};
use std::sync::Arc;

/// Always `204`, whether or not the person was known: the call is idempotent, and a second one
/// also sweeps records written since under the same id (a send posted late).
pub(crate) async fn erase_contact(
    State(state): State<Arc<ContactsState>>,
    Path((instance_id, contact_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let instance_id = InstanceId::parse(&instance_id)?;
    let contact_id = ContactId::parse(&contact_id)?;
    let found = state
        .contacts
        .load_contact(&instance_id, &contact_id)
        .await?;
    let erasure = Erasure::of_person(instance_id, contact_id, found.as_ref());
    let erased = state.erasure.erase_contact(&erasure).await?;
    tracing::info!(
        instance_id = %erasure.instance_id,
        contact = %erasure.identifiers[0],
        contacts = erased.contacts,
        sends = erased.sends,
        clicks = erased.clicks,
        conversions = erased.conversions,
        "contact erased"
    );
    Ok(StatusCode::NO_CONTENT)
}
