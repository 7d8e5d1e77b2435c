//! The outbound store (each instance's destinations, the deliveries) and the secret vault
//! destinations' credentials are kept in.

use super::{Delivery, DeliveryStatus, DestinationId, DestinationSet, SecretRef};
use crate::ids::InstanceId;
use crate::secret::Secret;
use crate::store::{CommitOutcome, StoreError};
use crate::time::Timestamp;
use async_trait::async_trait;

/// Most deliveries one listing answers.
pub const MAX_DELIVERY_PAGE: usize = 200;
/// Most deliveries a filtered listing looks at, newest first, to fill its page.
pub const MAX_DELIVERIES_SCANNED: usize = 2_000;

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The caller holds the delivery now (new, or pending and free): send it.
    Claimed(Delivery),
    /// Another holder works on it now: leave it to that one.
    Held,
    /// Done before (sent, failed or skipped): nothing to send.
    Done(Delivery),
}

/// Destinations and deliveries.
#[async_trait]
pub trait OutboundStore: Send + Sync + 'static {
    /// The instance's destinations; an empty set at version 0 when it has none.
    async fn load_destinations(
        &self,
        instance_id: &InstanceId,
    ) -> Result<DestinationSet, StoreError>;

    /// Stores `set` (its `version` already moved on) if the stored set is still at
    /// `expected_version`; `VersionConflict` otherwise, writing nothing.
    async fn save_destinations(
        &self,
        instance_id: &InstanceId,
        set: &DestinationSet,
        expected_version: u64,
    ) -> Result<CommitOutcome, StoreError>;

    /// Claims `fresh.delivery_key` for `fresh.lease_owner` until `fresh.lease_until`: stores
    /// `fresh` when there is no delivery of the key; takes a pending one over when
    /// [`Delivery::may_claim`] allows (keeping its attempts and first claim); otherwise
    /// answers what holds it. One conditional write: two claimants never both win.
    async fn claim_delivery(&self, fresh: &Delivery, now: Timestamp) -> Result<Claim, StoreError>;

    /// Stores `delivery` (an outcome, or a pending one released for the next try) in place
    /// of the claimed one.
    async fn record_delivery(&self, delivery: &Delivery) -> Result<(), StoreError>;

    /// The destination's deliveries, newest first, with `status` if given: at most `limit`,
    /// looking at no more than [`MAX_DELIVERIES_SCANNED`].
    async fn list_deliveries(
        &self,
        instance_id: &InstanceId,
        destination_id: &DestinationId,
        status: Option<DeliveryStatus>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;
}

/// Where destinations' credentials are kept: Parameter Store (SecureString) in AWS, a table
/// of the embedded store locally. A reference names an entry; the store of destinations holds
/// the reference only.
#[async_trait]
pub trait SecretVault: Send + Sync + 'static {
    /// Stores `value` under `reference`, replacing what was there.
    async fn put_secret(&self, reference: &SecretRef, value: &Secret) -> Result<(), StoreError>;

    /// The value under `reference`, if any.
    async fn get_secret(&self, reference: &SecretRef) -> Result<Option<Secret>, StoreError>;

    /// Removes the entry; a missing one is not an error.
    async fn delete_secret(&self, reference: &SecretRef) -> Result<(), StoreError>;
}
