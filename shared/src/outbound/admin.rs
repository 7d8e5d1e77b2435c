//! Destination writes as the admin API makes them: each a change of the instance's set under
//! its version check, with the credentials put in the vault first, so a stored destination
//! never names a secret that is not there.

use super::draft::DestinationDraft;
use super::store::{OutboundStore, SecretVault};
use super::{
    Destination, DestinationId, DestinationSet, EngineEvent, MAX_DESTINATIONS_PER_INSTANCE,
    SecretRef, Target,
};
use crate::fields::FieldError;
use crate::goals::store::GoalStore;
use crate::ids::InstanceId;
use crate::secret::Secret;
use crate::store::{CommitOutcome, StoreError};
use crate::time::Timestamp;

/// Why a destination write did nothing.
#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    /// A field that does not hold: nothing was written.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// No destination of that id on the instance.
    #[error("no such destination")]
    Unknown,
    /// The store or the vault failed: nothing was written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Concurrent writers kept changing the instance's destinations.
    #[error("the instance's destinations kept changing")]
    Contention,
}

/// Attempts of one change against concurrent writers (admin writes are rare).
const ATTEMPTS: u32 = 8;

/// The vault entry of a destination's credentials.
pub fn secret_ref(instance_id: &InstanceId, id: &DestinationId) -> SecretRef {
    // Instance ids may hold characters a parameter name may not; the destination's ULID is
    // unique on its own, the instance's hash keeps entries of one instance apart for a reader.
    let instance = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(instance_id.as_str()));
    SecretRef(format!("destinations/{}/{id}", &instance[..16]))
}

/// A webhook destination's signing secret: 32 random bytes, as text.
fn signing_secret() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    format!("whsec_{}", hex::encode(bytes))
}

/// Every `goal:<id>` the draft maps must be a goal of the instance.
async fn check_goals(
    goals: &dyn GoalStore,
    instance_id: &InstanceId,
    draft: &DestinationDraft,
) -> Result<(), DestinationError> {
    let wanted: Vec<_> = draft
        .events
        .keys()
        .filter_map(|event| match event {
            EngineEvent::Goal(id) => Some(id),
            _ => None,
        })
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let set = goals.load_goals(instance_id).await?;
    for id in wanted {
        if set.goal(id).is_none() {
            return Err(FieldError::new(
                format!("events.goal:{id}"),
                "names no goal of this instance",
            )
            .into());
        }
    }
    Ok(())
}

async fn change<T>(
    store: &dyn OutboundStore,
    instance_id: &InstanceId,
    mut change: impl FnMut(&mut DestinationSet) -> Result<T, DestinationError>,
) -> Result<T, DestinationError> {
    for _ in 0..ATTEMPTS {
        let mut set = store.load_destinations(instance_id).await?;
        let read = set.version;
        let answer = change(&mut set)?;
        if set.destinations.len() > MAX_DESTINATIONS_PER_INSTANCE {
            return Err(FieldError::new(
                "instance_id",
                format!("an instance holds at most {MAX_DESTINATIONS_PER_INSTANCE} destinations"),
            )
            .into());
        }
        set.version = read + 1;
        match store.save_destinations(instance_id, &set, read).await? {
            CommitOutcome::Applied => return Ok(answer),
            CommitOutcome::VersionConflict | CommitOutcome::Duplicate => continue,
        }
    }
    Err(DestinationError::Contention)
}

/// A created destination, and the signing secret of a webhook (answered this once).
pub struct Created {
    /// As stored.
    pub destination: Destination,
    /// A webhook's signing secret.
    pub signing_secret: Option<Secret>,
}

/// Adds a destination: its credentials into the vault, then the destination into the set.
/// A set already full refuses it before anything is written.
pub async fn create(
    store: &dyn OutboundStore,
    vault: &dyn SecretVault,
    goals: &dyn GoalStore,
    instance_id: &InstanceId,
    draft: DestinationDraft,
    now: Timestamp,
) -> Result<Created, DestinationError> {
    check_goals(goals, instance_id, &draft).await?;
    if store
        .load_destinations(instance_id)
        .await?
        .destinations
        .len()
        >= MAX_DESTINATIONS_PER_INSTANCE
    {
        return Err(FieldError::new(
            "instance_id",
            format!("an instance holds at most {MAX_DESTINATIONS_PER_INSTANCE} destinations"),
        )
        .into());
    }
    let id = DestinationId::new();
    let reference = secret_ref(instance_id, &id);
    let signing_secret =
        matches!(draft.target, Target::Webhook { .. }).then(|| Secret::new(signing_secret()));
    let credentials = match (&signing_secret, draft.credentials) {
        (Some(secret), _) => Secret::new(
            serde_json::json!({ "signing_secret": String::from_utf8_lossy(secret.expose()) })
                .to_string(),
        ),
        (None, Some(credentials)) => credentials,
        (None, None) => return Err(FieldError::new("access_token", "is required").into()),
    };
    vault.put_secret(&reference, &credentials).await?;
    let destination = Destination {
        id,
        target: draft.target,
        name: draft.name,
        events: draft.events,
        enabled: draft.enabled,
        secret_ref: reference.clone(),
        created_at: now,
        updated_at: now,
    };
    let added = change(store, instance_id, |set| {
        set.destinations.push(destination.clone());
        Ok(())
    })
    .await;
    if added.is_err() {
        // Nothing names the entry; removing it is tidiness, not correctness.
        let _ = vault.delete_secret(&reference).await;
    }
    added?;
    Ok(Created {
        destination,
        signing_secret,
    })
}

/// The destination of that id.
pub async fn load(
    store: &dyn OutboundStore,
    instance_id: &InstanceId,
    id: &DestinationId,
) -> Result<Destination, DestinationError> {
    store
        .load_destinations(instance_id)
        .await?
        .destinations
        .into_iter()
        .find(|destination| destination.id == *id)
        .ok_or(DestinationError::Unknown)
}

/// Replaces a destination's settings (same type), keeping its id, creation time and, unless
/// the body brings new ones, its credentials (and a webhook's signing secret, always).
pub async fn replace(
    store: &dyn OutboundStore,
    vault: &dyn SecretVault,
    goals: &dyn GoalStore,
    instance_id: &InstanceId,
    id: &DestinationId,
    draft: DestinationDraft,
    now: Timestamp,
) -> Result<Destination, DestinationError> {
    let before = load(store, instance_id, id).await?;
    if before.target.kind() != draft.target.kind() {
        return Err(FieldError::new(
            "type",
            format!(
                "is {}: a destination keeps its type (delete it and create another)",
                before.target.kind()
            ),
        )
        .into());
    }
    check_goals(goals, instance_id, &draft).await?;
    if let Some(credentials) = &draft.credentials {
        vault.put_secret(&before.secret_ref, credentials).await?;
    }
    change(store, instance_id, |set| {
        let destination = set
            .destinations
            .iter_mut()
            .find(|destination| destination.id == *id)
            .ok_or(DestinationError::Unknown)?;
        destination.target = draft.target.clone();
        destination.name = draft.name.clone();
        destination.events = draft.events.clone();
        destination.enabled = draft.enabled;
        destination.updated_at = now;
        Ok(destination.clone())
    })
    .await
}

/// Deletes a destination, then its credentials.
pub async fn delete(
    store: &dyn OutboundStore,
    vault: &dyn SecretVault,
    instance_id: &InstanceId,
    id: &DestinationId,
) -> Result<(), DestinationError> {
    let removed = change(store, instance_id, |set| {
        let at = set
            .destinations
            .iter()
            .position(|destination| destination.id == *id)
            .ok_or(DestinationError::Unknown)?;
        Ok(set.destinations.remove(at))
    })
    .await?;
    vault.delete_secret(&removed.secret_ref).await?;
    Ok(())
}
