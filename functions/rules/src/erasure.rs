//! `DELETE /instances/{instance_id}/contacts/{contact_id}`: a person's erasure on request. It
//! lives in the admin function rather than beside the contact read in the webhook function so
//! that the function facing Meta and browsers holds no right to delete anything.

use super::RulesState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use shared::http::ApiError;
use shared::ids::{ContactId, InstanceId};
use shared::store::Erasure;
use std::sync::Arc;

/// Always `204`, whether or not the person was known: the call is idempotent, and a second one
/// also sweeps records written since under the same id (a send posted late).
pub(crate) async fn erase_contact(
    State(state): State<Arc<RulesState>>,
    Path((instance_id, contact_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let instance_id = InstanceId::parse(&instance_id)?;
    let contact_id = ContactId::parse(&contact_id)?;
    // The person's other identifiers (a BSUID beside the phone) join this list once contacts
    // link them.
    let erasure = Erasure::new(instance_id, vec![contact_id]);
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
