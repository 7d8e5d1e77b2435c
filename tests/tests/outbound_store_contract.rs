//! The contract every `OutboundStore` and `SecretVault` keeps, run against each of them (the
//! Parameter Store vault on moto, which serves SSM beside SQS).

use integration_tests::*;
use shared::ids::{ContactId, InstanceId};
use shared::outbound::store::{Claim, OutboundStore, SecretVault};
use shared::outbound::{
    Delivery, DeliveryStatus, DestinationId, DestinationSet, EngineEvent, OutboundJob, SecretRef,
    Trigger,
};
use shared::secret::Secret;
use shared::store::CommitOutcome;
use shared::time::Timestamp;
use std::sync::Arc;

on_every_store!(
    a_destination_set_changes_only_from_the_version_read,
    a_delivery_is_claimed_by_one_holder_until_it_is_done_or_released,
    deliveries_list_newest_first_filtered_and_bounded,
    vault_entries_are_put_read_replaced_and_deleted,
);

async fn store(backend: Backend) -> Option<(Arc<dyn OutboundStore>, StoreGuard)> {
    let (stores, guard) = fresh_stores(backend).await?;
    Some((stores.outbound, guard))
}

fn instance() -> InstanceId {
    InstanceId::parse("106540352242922").unwrap()
}

fn job(destination: &DestinationId, contact: &str) -> OutboundJob {
    OutboundJob {
        destination_id: destination.clone(),
        trigger: Trigger {
            instance_id: instance(),
            contact_id: ContactId::parse(contact).unwrap(),
            event: EngineEvent::Lead,
            reference: None,
            occurred_at: Timestamp::now(),
            value: None,
            currency: None,
        },
    }
}

fn claim(job: &OutboundJob, owner: &str, now: Timestamp) -> Delivery {
    Delivery::claim_of(job, "LeadSubmitted", owner, now, now.plus_seconds(120))
}

async fn a_destination_set_changes_only_from_the_version_read(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    assert_eq!(
        store.load_destinations(&instance()).await.unwrap(),
        DestinationSet::default()
    );
    let first = DestinationSet {
        version: 1,
        destinations: Vec::new(),
    };
    assert_eq!(
        store
            .save_destinations(&instance(), &first, 0)
            .await
            .unwrap(),
        CommitOutcome::Applied
    );
    assert_eq!(
        store
            .save_destinations(&instance(), &first, 0)
            .await
            .unwrap(),
        CommitOutcome::VersionConflict
    );
    let second = DestinationSet {
        version: 2,
        ..first.clone()
    };
    assert_eq!(
        store
            .save_destinations(&instance(), &second, 5)
            .await
            .unwrap(),
        CommitOutcome::VersionConflict
    );
    assert_eq!(
        store
            .save_destinations(&instance(), &second, 1)
            .await
            .unwrap(),
        CommitOutcome::Applied
    );
    assert_eq!(store.load_destinations(&instance()).await.unwrap(), second);
}

async fn a_delivery_is_claimed_by_one_holder_until_it_is_done_or_released(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let destination = DestinationId::new();
    let job = job(&destination, "16505551234");
    let now = Timestamp::now();
    let Claim::Claimed(mut held) = store
        .claim_delivery(&claim(&job, "m1", now), now)
        .await
        .unwrap()
    else {
        panic!("a new delivery is claimed");
    };
    // Another copy of the job meets the holder's lease; the holder itself may take it again.
    assert_eq!(
        store
            .claim_delivery(&claim(&job, "m2", now), now)
            .await
            .unwrap(),
        Claim::Held
    );
    assert!(matches!(
        store
            .claim_delivery(&claim(&job, "m1", now), now)
            .await
            .unwrap(),
        Claim::Claimed(_)
    ));
    // Released after a failed try: any copy takes it over, keeping its attempts.
    held.attempts = 3;
    held.lease_owner = None;
    held.lease_until = None;
    held.updated_at = Timestamp::now();
    store.record_delivery(&held).await.unwrap();
    let later = Timestamp::now();
    let Claim::Claimed(taken) = store
        .claim_delivery(&claim(&job, "m2", later), later)
        .await
        .unwrap()
    else {
        panic!("a released delivery is claimed again");
    };
    assert_eq!(taken.attempts, 3);
    assert_eq!(taken.lease_owner.as_deref(), Some("m2"));
    // A lease that ran out is taken over too.
    let expired = later.plus_seconds(121);
    assert!(matches!(
        store
            .claim_delivery(&claim(&job, "m3", expired), expired)
            .await
            .unwrap(),
        Claim::Claimed(_)
    ));
    let mut sent = taken;
    sent.status = DeliveryStatus::Sent;
    sent.lease_owner = None;
    sent.lease_until = None;
    sent.updated_at = Timestamp::now();
    store.record_delivery(&sent).await.unwrap();
    let again = Timestamp::now().plus_seconds(1_000);
    match store
        .claim_delivery(&claim(&job, "m4", again), again)
        .await
        .unwrap()
    {
        Claim::Done(done) => assert_eq!(done.status, DeliveryStatus::Sent),
        other => panic!("a sent delivery is done: {other:?}"),
    }
}

async fn deliveries_list_newest_first_filtered_and_bounded(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let destination = DestinationId::new();
    let other = DestinationId::new();
    let mut keys = Vec::new();
    for n in 0..5 {
        let now = Timestamp::now();
        let fresh = claim(&job(&destination, &format!("1650555000{n}")), "m", now);
        let Claim::Claimed(mut delivery) = store.claim_delivery(&fresh, now).await.unwrap() else {
            panic!("new");
        };
        if n % 2 == 0 {
            delivery.status = DeliveryStatus::Failed;
            store.record_delivery(&delivery).await.unwrap();
        }
        keys.push(delivery.delivery_key);
    }
    let now = Timestamp::now();
    store
        .claim_delivery(&claim(&job(&other, "16505559999"), "m", now), now)
        .await
        .unwrap();
    let all = store
        .list_deliveries(&instance(), &destination, None, 50)
        .await
        .unwrap();
    let listed: Vec<&str> = all.iter().map(|d| d.delivery_key.as_str()).collect();
    let newest_first: Vec<&str> = keys.iter().rev().map(String::as_str).collect();
    assert_eq!(listed, newest_first);
    let failed = store
        .list_deliveries(&instance(), &destination, Some(DeliveryStatus::Failed), 50)
        .await
        .unwrap();
    assert_eq!(failed.len(), 3);
    assert!(failed.iter().all(|d| d.status == DeliveryStatus::Failed));
    let two = store
        .list_deliveries(&instance(), &destination, None, 2)
        .await
        .unwrap();
    assert_eq!(two.len(), 2);
    assert_eq!(two[0].delivery_key, keys[4]);
}

async fn vault_entries_are_put_read_replaced_and_deleted(backend: Backend) {
    let (vault, _guard): (Arc<dyn SecretVault>, Option<StoreGuard>) = match backend {
        Backend::Embedded => {
            let Some((stores, guard)) = fresh_stores(backend).await else {
                return;
            };
            (stores.vault, Some(guard))
        }
        Backend::Dynamo => {
            let Some(config) = emulator_config("SQS_ENDPOINT").await else {
                return;
            };
            let prefix = format!("/t{}/", ulid::Ulid::new()).to_lowercase();
            let vault = shared::store::dynamo::outbound::SsmVault::new(
                aws_sdk_ssm::Client::new(&config),
                &prefix,
            );
            (Arc::new(vault), None)
        }
    };
    let reference = SecretRef("destinations/abc/01JABCDEFGHJKMNPQRSTVWXYZ0".to_owned());
    assert!(vault.get_secret(&reference).await.unwrap().is_none());
    vault
        .put_secret(&reference, &Secret::new(r#"{"access_token":"one"}"#))
        .await
        .unwrap();
    let read = vault.get_secret(&reference).await.unwrap().unwrap();
    assert_eq!(read.expose(), br#"{"access_token":"one"}"#);
    vault
        .put_secret(&reference, &Secret::new(r#"{"access_token":"two"}"#))
        .await
        .unwrap();
    let read = vault.get_secret(&reference).await.unwrap().unwrap();
    assert_eq!(read.expose(), br#"{"access_token":"two"}"#);
    vault.delete_secret(&reference).await.unwrap();
    assert!(vault.get_secret(&reference).await.unwrap().is_none());
    vault.delete_secret(&reference).await.unwrap();
}
