//! Backfill at size through the HTTP API and the job, as `infra/scripts/backfill-load.sh`
//! runs it: `BACKFILL_LOAD_CONTACTS` contacts (a third of whose first messages name TikTok)
//! loaded straight into the store, a rule created with `POST /instances/{id}/rules`, then
//! `POST /instances/{id}/backfill` previewed and run, its pages on the local server's
//! in-process queue and matcher, polled with `GET …/backfill/{job_id}` until done. Prints the
//! wall times and, on DynamoDB, the round trips by API. Skipped unless the variable is set
//! (`BACKFILL_LOAD_STORE` = embedded | dynamo, default both where the emulator is up); it
//! asserts counts only: the run updates exactly what its preview said.

use futures::StreamExt;
use http::StatusCode;
use integration_tests::capacity::Meter;
use integration_tests::*;
use serde_json::{Value, json};
use shared::contact::store::ContactStore;
use shared::contact::{Channel, InboundMessage};
use shared::ids::{ContactId, InstanceId};
use shared::ingest::{InboundEvent, Ingestor};
use shared::time::Timestamp;
use std::sync::Arc;
use std::time::{Duration, Instant};

const INSTANCE: &str = "106540352242922";

fn wanted(store: &str) -> Option<usize> {
    let contacts = std::env::var("BACKFILL_LOAD_CONTACTS").ok()?.parse().ok()?;
    match std::env::var("BACKFILL_LOAD_STORE") {
        Ok(only) if only != store => None,
        _ => Some(contacts),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded() {
    let Some(contacts) = wanted("embedded") else {
        return;
    };
    let (stores, _guard) = fresh_stores(Backend::Embedded).await.unwrap();
    load(stores.contacts.clone(), contacts).await;
    run("embedded", &stores, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo() {
    let Some(contacts) = wanted("dynamo") else {
        return;
    };
    let Some((stores, guard)) = fresh_stores(Backend::Dynamo).await else {
        return;
    };
    load(stores.contacts.clone(), contacts).await;
    let meter = Meter::default();
    let sdk = emulator_config("DYNAMODB_ENDPOINT").await.unwrap();
    let counted = dynamo_stores(
        &meter.dynamo_client(&sdk),
        guard.dynamo_prefix.as_deref().unwrap(),
    );
    run("DynamoDB Local", &counted, Some(&meter)).await;
}

/// `count` contacts over the last six days.
async fn load(store: Arc<dyn ContactStore>, count: usize) {
    let (instance, now) = (InstanceId::parse(INSTANCE).unwrap(), Timestamp::now());
    let started = Instant::now();
    let ingestor = &Ingestor::new(store);
    let instance = &instance;
    // Side by side: loading is not what is measured, and concurrent writes share commits.
    futures::stream::iter(0..count)
        .map(|n| async move {
            let at = now.plus_seconds(-((n % (6 * 86_400)) as i64));
            let text = if n % 3 == 0 {
                "Hi, I saw your TikTok ad!"
            } else {
                "hello"
            };
            let event = InboundEvent {
                dedupe_key: format!("wa:load.{n}"),
                instance_id: instance.clone(),
                contact_id: ContactId::parse(&format!("55119{n:08}")).unwrap(),
                channel: Channel::Whatsapp,
                display_name: None,
                occurred_at: at,
                message: Some(InboundMessage {
                    id: format!("load.{n}"),
                    kind: "text".into(),
                    text: Some(text.into()),
                    timestamp: at,
                    details: None,
                }),
                referral: None,
                identity: Default::default(),
            };
            ingestor.ingest(&event, now).await.unwrap();
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
    println!(
        "loaded {count} contacts in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

async fn post(app: &axum::Router, path: &str, body: Value) -> Value {
    let (status, answer) = call(app, admin_request("POST", path, Some(body))).await;
    assert!(status.is_success(), "{path}: {status} {answer}");
    answer
}

async fn run(label: &str, stores: &Stores, meter: Option<&Meter>) {
    let engine = engine_app(stores);
    let app = &engine.app;
    let base = format!("/instances/{INSTANCE}");
    let rule = json!({"name": "TikTok", "platform": "tiktok",
        "match": {"kind": "contains", "pattern": "tiktok ad"}});
    post(app, &format!("{base}/rules"), rule).await;
    let backfill = format!("{base}/backfill");

    let started = Instant::now();
    let preview = post(app, &backfill, json!({"days": 7, "dry_run": true})).await;
    println!(
        "{label} preview: scanned {} would_update {} in {:.2} s",
        preview["scanned"],
        preview["would_update"],
        started.elapsed().as_secs_f64()
    );

    if let Some(meter) = meter {
        meter.take();
    }
    let started = Instant::now();
    let job = post(app, &backfill, json!({"days": 7, "dry_run": false})).await;
    let path = format!("{backfill}/{}", job["job_id"].as_str().unwrap());
    let done = loop {
        let (status, job) = call(app, admin_get(&path)).await;
        assert_eq!(status, StatusCode::OK, "{job}");
        if job["status"] == "done" || job["status"] == "failed" {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let wall = started.elapsed().as_secs_f64();
    println!(
        "{label} run: {} scanned {} updated {} in {:.2} s",
        done["status"], done["scanned"], done["updated"], wall
    );
    if let Some(meter) = meter {
        let tally = meter.take();
        let calls: Vec<String> = tally
            .dynamodb
            .iter()
            .map(|(api, cost)| format!("{api} ×{}", cost.calls))
            .collect();
        println!(
            "{label} run: {} DynamoDB round trips ({}), the job polls included",
            tally.dynamodb_calls(),
            calls.join(", ")
        );
    }
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["updated"], preview["would_update"], "{done}");
}
