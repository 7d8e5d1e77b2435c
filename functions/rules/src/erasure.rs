//! `DELETE /instances/{instance_id}/contacts/{contact_id}`: a person's erasure on request. It
//! lives in the admin function rather than beside the contact read in the webhook function so
//! that the function facing Meta and browsers holds no right to delete anything.

use super::RulesState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use shared::erasure::Erasure;
use shared::http::ApiError;
use shared::ids::{ContactId, InstanceId};
use std::sync::Arc;

/// Always `204`, whether or not the person was known: the call is idempotent, and a second one
/// also sweeps records written since under the same id (a send posted late).
pub(crate) async fn erase_contact(
    State(state): State<Arc<RulesState>>,
    Path((instance_id, contact_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let instance_id = InstanceId::parse(&instance_id)?;
    let contact_id = ContactId::parse(&contact_id)?;
    // Every identifier the person goes by (the contact's own id, its phone, its BSUID, the ids
    // of contacts merged into it): their links go with the contact.
    let mut identifiers = vec![contact_id.clone()];
    if let Some(contact) = state
        .contacts
        .load_contact(&instance_id, &contact_id)
        .await?
    {
        for identifier in contact.identifiers() {
            if !identifiers.contains(identifier) {
                identifiers.push(identifier.clone());
            }
        }
    }
    let erasure = Erasure::new(instance_id, identifiers);
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
