//! The outbound store and the secret vault in the embedded store: each instance's
//! destinations as one record, deliveries by (instance, destination, delivery key) with a
//! newest-first index, and destinations' credentials by their reference.

use crate::ids::InstanceId;
use crate::outbound::store::{Claim, MAX_DELIVERIES_SCANNED, OutboundStore, SecretVault};
use crate::outbound::{Delivery, DeliveryStatus, DestinationId, DestinationSet, SecretRef};
use crate::secret::Secret;
use crate::store::embedded::{
    DELIVERIES, DELIVERIES_BY_TIME, DESTINATIONS, EmbeddedStore, SECRETS, decode, encode,
    unavailable,
};
use crate::store::{CommitOutcome, StoreError};
use crate::time::Timestamp;
use async_trait::async_trait;
use redb::ReadableTable;

#[async_trait]
impl OutboundStore for EmbeddedStore {
    async fn load_destinations(
        &self,
        instance_id: &InstanceId,
    ) -> Result<DestinationSet, StoreError> {
        Ok(self
            .load(DESTINATIONS, instance_id.as_str())?
            .unwrap_or_default())
    }

    async fn save_destinations(
        &self,
        instance_id: &InstanceId,
        set: &DestinationSet,
        expected_version: u64,
    ) -> Result<CommitOutcome, StoreError> {
        self.save_versioned(DESTINATIONS, instance_id.as_str(), set, expected_version)
            .await
    }

    async fn claim_delivery(&self, fresh: &Delivery, now: Timestamp) -> Result<Claim, StoreError> {
        let fresh = fresh.clone();
        self.write(move |txn| {
            let mut deliveries = txn.open_table(DELIVERIES).map_err(unavailable)?;
            let key = (
                fresh.instance_id.as_str(),
                fresh.destination_id.as_str(),
                fresh.delivery_key.as_str(),
            );
            let stored = deliveries
                .get(key)
                .map_err(unavailable)?
                .map(|bytes| decode::<Delivery>(bytes.value()))
                .transpose()?;
            let owner = fresh.lease_owner.as_deref().unwrap_or_default();
            let claimed = match stored {
                None => {
                    let mut index = txn.open_table(DELIVERIES_BY_TIME).map_err(unavailable)?;
                    index
                        .insert(
                            (key.0, key.1, fresh.listed_key.as_str()),
                            fresh.delivery_key.as_str(),
                        )
                        .map_err(unavailable)?;
                    fresh.clone()
                }
                Some(done) if done.status.is_final() => return Ok((Claim::Done(done), false)),
                Some(pending) if !pending.may_claim(owner, now) => return Ok((Claim::Held, false)),
                Some(mut pending) => {
                    pending.lease_owner = fresh.lease_owner.clone();
                    pending.lease_until = fresh.lease_until;
                    pending.updated_at = now;
                    pending
                }
            };
            deliveries
                .insert(key, encode(&claimed)?.as_slice())
                .map_err(unavailable)?;
            Ok((Claim::Claimed(claimed), true))
        })
        .await
    }

    async fn record_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let encoded = encode(delivery)?;
        let delivery = delivery.clone();
        self.write(move |txn| {
            let mut deliveries = txn.open_table(DELIVERIES).map_err(unavailable)?;
            deliveries
                .insert(
                    (
                        delivery.instance_id.as_str(),
                        delivery.destination_id.as_str(),
                        delivery.delivery_key.as_str(),
                    ),
                    encoded.as_slice(),
                )
                .map_err(unavailable)?;
            Ok(((), true))
        })
        .await
    }

    async fn list_deliveries(
        &self,
        instance_id: &InstanceId,
        destination_id: &DestinationId,
        status: Option<DeliveryStatus>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let index = txn.open_table(DELIVERIES_BY_TIME).map_err(unavailable)?;
        let deliveries = txn.open_table(DELIVERIES).map_err(unavailable)?;
        let (instance, destination) = (instance_id.as_str(), destination_id.as_str());
        let mut found = Vec::new();
        let range = index
            .range((instance, destination, "")..(instance, destination, "\u{10FFFF}"))
            .map_err(unavailable)?;
        for entry in range.rev().take(MAX_DELIVERIES_SCANNED) {
            let (_, key) = entry.map_err(unavailable)?;
            let Some(bytes) = deliveries
                .get((instance, destination, key.value()))
                .map_err(unavailable)?
            else {
                continue;
            };
            let delivery: Delivery = decode(bytes.value())?;
            if status.is_none_or(|wanted| wanted == delivery.status) {
                found.push(delivery);
                if found.len() >= limit {
                    break;
                }
            }
        }
        Ok(found)
    }
}

#[async_trait]
impl SecretVault for EmbeddedStore {
    async fn put_secret(&self, reference: &SecretRef, value: &Secret) -> Result<(), StoreError> {
        let (name, value) = (reference.0.clone(), value.clone());
        self.write(move |txn| {
            let mut table = txn.open_table(SECRETS).map_err(unavailable)?;
            table
                .insert(name.as_str(), value.expose())
                .map_err(unavailable)?;
            Ok(((), true))
        })
        .await
    }

    async fn get_secret(&self, reference: &SecretRef) -> Result<Option<Secret>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let table = txn.open_table(SECRETS).map_err(unavailable)?;
        let found = table.get(reference.0.as_str()).map_err(unavailable)?;
        Ok(found.map(|bytes| Secret::new(String::from_utf8_lossy(bytes.value()).into_owned())))
    }

    async fn delete_secret(&self, reference: &SecretRef) -> Result<(), StoreError> {
        let name = reference.0.clone();
        self.write(move |txn| {
            let mut table = txn.open_table(SECRETS).map_err(unavailable)?;
            let removed = table.remove(name.as_str()).map_err(unavailable)?.is_some();
            Ok(((), removed))
        })
        .await
    }
}
