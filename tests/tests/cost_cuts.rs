//! What a delivery must not cost, shown through the webhook's route on every store: a duplicate
//! is known from the read that precedes any write and answered without one, and a status-only
//! delivery touches no store at all. A store whose every write fails (its answer lost after it
//! took effect, or refused) tells the two apart from a write that happened: the route would
//! answer 503. The DynamoDB units and round trips themselves are held by the count check
//! (`tests/tests/capacity.rs`).

use http::StatusCode;
use integration_tests::*;
use shared::contact::store::ContactStore;
use shared::store::{FaultInjectingStore, FaultMode, FaultPlan};
use std::sync::Arc;

on_every_store!(
    a_duplicate_delivery_is_answered_without_a_write,
    a_status_only_delivery_touches_no_store,
);

/// The webhook over `store` behind a fault plan that starts with no faults.
fn faulty_webhook(store: Arc<dyn ContactStore>) -> (axum::Router, Arc<FaultPlan>) {
    let plan = FaultPlan::ratio(0.0, 0x0d0b_u64);
    let faulty: Arc<dyn ContactStore> = Arc::new(FaultInjectingStore::new(store, plan.clone()));
    (webhook_app(faulty), plan)
}

async fn a_duplicate_delivery_is_answered_without_a_write(backend: Backend) {
    let Some((store, _guard)) = fresh_store(backend).await else {
        return;
    };
    let (app, plan) = faulty_webhook(store);
    let body = fixture("whatsapp_text_ctwa_referral.json");
    let (status, first) = call(&app, signed_delivery(&body)).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["applied"], 1, "{first}");

    // From here every write takes effect but its answer is lost: a redelivery that wrote
    // anything (even a transaction its claim refuses) would answer 503. Reads still answer.
    plan.set_mode(FaultMode::AnswerLost);
    plan.set_ratio(1.0);
    for _ in 0..3 {
        let (status, again) = call(&app, signed_delivery(&body)).await;
        assert_eq!(status, StatusCode::OK, "{again}");
        assert_eq!(again["applied"], 0, "{again}");
        assert_eq!(again["duplicates"], 1, "{again}");
    }

    plan.set_ratio(0.0);
    let contact = contact(&app, "106540352242922", "16505551234")
        .await
        .expect("the contact");
    assert_eq!(contact["message_count"], 1, "{contact}");
}

async fn a_status_only_delivery_touches_no_store(backend: Backend) {
    let Some((store, _guard)) = fresh_store(backend).await else {
        return;
    };
    let (app, plan) = faulty_webhook(store);
    // Every call, read or write, is refused before it reaches the store.
    plan.set_mode(FaultMode::Refused);
    plan.set_ratio(1.0);
    let body = fixture("whatsapp_statuses.json");
    let (status, answer) = call(&app, signed_delivery(&body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["events"], 0, "{answer}");
    assert_eq!(answer["applied"], 0, "{answer}");
}
