//! What a delivery must not cost, shown through the webhook's route on every store: a duplicate
//! is known from the read that precedes any write and answered without one, and a status-only
//! delivery touches no store at all. A store whose every write fails (its answer lost after it
//! took effect, or refused) tells the two apart from a write that happened: the route would
//! answer 503. The DynamoDB units and round trips themselves are held by the count check
//! (`tests/tests/capacity.rs`); the report rows' day partitions are checked on DynamoDB.

use http::StatusCode;
use integration_tests::*;
use serde_json::{Value, json};
use shared::contact::store::ContactStore;
use shared::store::{FaultInjectingStore, FaultMode, FaultPlan};
use std::sync::Arc;

const INSTANCE: &str = "106540352242922";

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

async fn admin(app: &axum::Router, method: &str, path: &str, body: Value) -> Value {
    let (status, answer) = call(app, admin_request(method, path, Some(body))).await;
    assert!(status.is_success(), "{path}: {status} {answer}");
    answer
}

/// Report counter rows on DynamoDB: a send's rows land in one partition per grouping and day
/// (`campaign#<day>`, never the bare grouping every day shared), and a row of the old layout
/// (`dimension` = the grouping, `row` = `day#currency#shard#key`) still counts in the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_rows_are_partitioned_by_day_and_the_old_layout_still_reads() {
    let Some((stores, guard)) = fresh_stores(Backend::Dynamo).await else {
        return;
    };
    let client = dynamo_client().await.expect("the emulator");
    let table = format!("{}-report", guard.dynamo_prefix.as_deref().unwrap());
    let revenue = revenue_router(stores.revenue.clone(), stores.contacts.clone());
    let offer = json!({"offer_id": "shoes", "name": "Shoes", "click_window_days": 30,
        "destination_url": "https://shop.example/p?aff={click_id}"});
    admin(&revenue, "POST", "/offers", offer).await;
    let send = json!({"instance_id": INSTANCE, "contact_id": "16505551234",
        "message_id": "wamid.send", "campaign": "spring", "creative": "tpl-a", "offer_id": "shoes"});
    admin(&revenue, "POST", "/sends", send).await;
    let today = chrono::Utc::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();

    let scanned = client.scan().table_name(&table).send().await.unwrap();
    let partitions: Vec<String> = scanned
        .items()
        .iter()
        .map(|item| item["dimension"].as_s().unwrap().clone())
        .collect();
    assert!(!partitions.is_empty());
    for partition in &partitions {
        assert!(partition.ends_with(&format!("#{today}")), "{partitions:?}");
    }
    assert!(
        partitions.contains(&format!("campaign#{today}")),
        "{partitions:?}"
    );

    let old_day = "2026-01-10";
    let n = |value: &str| aws_sdk_dynamodb::types::AttributeValue::N(value.to_owned());
    let s = |value: &str| aws_sdk_dynamodb::types::AttributeValue::S(value.to_owned());
    client
        .put_item()
        .table_name(&table)
        .item("dimension", s("campaign"))
        .item("row", s(&format!("{old_day}#USD#3#spring")))
        .item("day", s(old_day))
        .item("currency", s("USD"))
        .item("key", s("spring"))
        .item("sends", n("4"))
        .item("clicks", n("2"))
        .item("conversions", n("1"))
        .item("revenue", n("12.5"))
        .send()
        .await
        .unwrap();
    let (status, report) = call(
        &revenue,
        admin_get(&format!(
            "/reports/revenue?group_by=campaign&since=2026-01-01&until={today}"
        )),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let text = report.to_string();
    assert!(text.contains("spring"), "{report}");
    let (_, old_only) = call(
        &revenue,
        admin_get("/reports/revenue?group_by=campaign&since=2026-01-10&until=2026-01-10"),
    )
    .await;
    let (_, fresh_only) = call(
        &revenue,
        admin_get(&format!(
            "/reports/revenue?group_by=campaign&since={today}&until={today}"
        )),
    )
    .await;
    assert_ne!(old_only, fresh_only);
    assert!(old_only.to_string().contains("\"clicks\":2"), "{old_only}");
    assert!(
        fresh_only.to_string().contains("\"sends\":1"),
        "{fresh_only}"
    );
}
