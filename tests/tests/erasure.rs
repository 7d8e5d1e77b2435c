//! Erasure on request, on every store: `DELETE /instances/{i}/contacts/{c}` takes the contact
//! (its first message, touches and acquisition with it) and what identifies the person in
//! their sends, clicks and conversions, while every counter and report total stays as it was.
//! Every table is then read whole (redb) or scanned (DynamoDB Local) for the phone number, the
//! display name, the message text and the user agent: none is left.

use axum::body::Body;
use http::{Request, StatusCode};
use integration_tests::*;
use serde_json::{Value, json};
use shared::erasure::{Erased, Erasure};
use shared::ids::{ContactId, InstanceId};
use shared::store::{FaultInjectingStore, FaultPlan};
use std::sync::Arc;

on_every_store!(
    erasure_leaves_nothing_personal_and_every_total_as_it_was,
    erasure_rekeys_the_records_once_and_a_second_erasure_changes_nothing,
    a_failed_erasure_answers_503_and_its_retry_erases_everything,
);

const INSTANCE: &str = "106540352242922";
const PHONE: &str = "5511987654321";
const OTHER_PHONE: &str = "447700900123";
const NAME: &str = "Zelda Erasable";
const TEXT: &str = "I saw your ad, my address is 42 Quiet Lane";
const USER_AGENT: &str = "Mozilla/5.0 (ErasureProbe 7.7) AppleWebKit/605.1.15";

fn now_seconds() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A WhatsApp delivery from `phone` with the person's name and text, and an ad referral.
fn delivery(phone: &str, message_id: &str, at: i64) -> Vec<u8> {
    let body = whatsapp_message(
        INSTANCE,
        phone,
        message_id,
        at,
        TEXT,
        Some(ctwa_referral("120226305854810726")),
    );
    String::from_utf8(body)
        .unwrap()
        .replace("Test Person", NAME)
        .into_bytes()
}

/// A contact with a send, a click and a credited conversion, and another contact beside it.
async fn person_with_revenue(app: &axum::Router) -> (String, String) {
    for (phone, id) in [(PHONE, "wamid.E1"), (OTHER_PHONE, "wamid.O1")] {
        let (status, body) = call(
            app,
            signed_delivery(&delivery(phone, id, now_seconds() - 60)),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = call(
        app,
        admin_request(
            "POST",
            "/offers",
            Some(json!({"offer_id": "shoes", "name": "Shoes",
                        "destination_url": "https://shop.example/p?aff={click_id}"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, send) = call(
        app,
        admin_request(
            "POST",
            "/sends",
            Some(
                json!({"instance_id": INSTANCE, "contact_id": PHONE, "message_id": "wamid.S1",
                        "campaign": "spring", "creative": "tpl-a", "offer_id": "shoes"}),
            ),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{send}");
    let code = send["tracked_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let click = Request::get(format!("/c/{code}"))
        .header("user-agent", USER_AGENT)
        .header("x-forwarded-for", "203.0.113.9")
        .body(Body::empty())
        .unwrap();
    let (status, _) = call(app, click).await;
    assert_eq!(status, StatusCode::FOUND);
    let journey = journey(app).await;
    let click_id = journey["events"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|event| event["click_id"].as_str())
        .unwrap_or_else(|| panic!("a click in {journey}"))
        .to_owned();
    let (status, credited) = call(app, postback(&click_id, "T1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(credited["status"], "attributed", "{credited}");
    (code, click_id)
}

fn postback(click_id: &str, conversion_id: &str) -> Request<Body> {
    Request::get(format!(
        "/postbacks/generic?token={POSTBACK_TOKEN}&click_id={click_id}\
         &conversion_id={conversion_id}&payout=12.50"
    ))
    .body(Body::empty())
    .unwrap()
}

/// The person's erasure request.
fn erase() -> Request<Body> {
    admin_request(
        "DELETE",
        &format!("/instances/{INSTANCE}/contacts/{PHONE}"),
        None,
    )
}

/// The person's journey as the admin API answers it.
async fn journey(app: &axum::Router) -> Value {
    let path = format!("/instances/{INSTANCE}/contacts/{PHONE}/journey");
    let (status, journey) = call(app, admin_get(&path)).await;
    assert_eq!(status, StatusCode::OK, "{journey}");
    journey
}

/// Every total the engine reports: the instance's stats and each grouping of the revenue report.
async fn totals(app: &axum::Router) -> Value {
    let (status, mut stats) = call(
        app,
        admin_get(&format!("/instances/{INSTANCE}/stats?days=7")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    // The window ends now: not a total.
    stats.as_object_mut().unwrap().remove("until");
    let mut reports = json!({"stats": stats});
    for group in ["message", "creative", "offer", "campaign", "day"] {
        let (status, report) = call(
            app,
            admin_get(&format!("/reports/revenue?group_by={group}")),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{report}");
        reports[group] = report;
    }
    reports
}

/// Everything the store holds, as text: every redb table, or every DynamoDB table of the test.
async fn everything_stored(guard: &StoreGuard) -> String {
    if let Some(embedded) = &guard.embedded {
        return embedded.dump_text().expect("dump");
    }
    let prefix = guard.dynamo_prefix.as_deref().expect("a DynamoDB run");
    let client = dynamo_client().await.expect("DynamoDB Local");
    let mut out = String::new();
    let mut tables = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .list_tables()
            .set_exclusive_start_table_name(start.take())
            .send()
            .await
            .expect("list tables");
        tables.extend(
            page.table_names()
                .iter()
                .filter(|name| name.starts_with(&format!("{prefix}-")))
                .cloned(),
        );
        match page.last_evaluated_table_name {
            Some(last) => start = Some(last),
            None => break,
        }
    }
    assert!(tables.len() >= 12, "only {tables:?}");
    for table in tables {
        let mut start = None;
        loop {
            let page = client
                .scan()
                .table_name(&table)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .expect("scan");
            for item in page.items() {
                out.push_str(&format!("{table}\t{item:?}\n"));
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
    }
    out
}

async fn erasure_leaves_nothing_personal_and_every_total_as_it_was(backend: Backend) {
    let Some((stores, guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    let app = &engine.app;
    let (_, click_id) = person_with_revenue(app).await;
    let stored = everything_stored(&guard).await;
    for personal in [PHONE, NAME, TEXT, USER_AGENT] {
        assert!(
            stored.contains(personal),
            "the probe {personal:?} is not even stored"
        );
    }
    let before = totals(app).await;
    let other_before = contact(app, INSTANCE, OTHER_PHONE).await.unwrap();

    let (status, body) = call(app, erase()).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    assert_eq!(contact(app, INSTANCE, PHONE).await, None);
    let journey = journey(app).await;
    assert_eq!(journey["events"], json!([]), "{journey}");
    assert_eq!(totals(app).await, before);
    assert_eq!(
        contact(app, INSTANCE, OTHER_PHONE).await.unwrap(),
        other_before
    );
    let (_, listing) = call(
        app,
        admin_get(&format!("/instances/{INSTANCE}/contacts?limit=500")),
    )
    .await;
    let listed: Vec<&str> = listing["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|contact| contact["contact_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [OTHER_PHONE], "{listing}");

    let stored = everything_stored(&guard).await;
    for line in stored.lines().filter(|line| !line.contains(OTHER_PHONE)) {
        for personal in [PHONE, NAME, TEXT, USER_AGENT] {
            assert!(
                !line.contains(personal),
                "{personal:?} is still stored: {line}"
            );
        }
    }

    // Idempotent: the same answer, nothing more changed.
    let (status, _) = call(app, erase()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(totals(app).await, before);

    // The erased click still earns a later conversion, for nobody in particular.
    let (_, credited) = call(app, postback(&click_id, "T2")).await;
    assert_eq!(credited["status"], "attributed", "{credited}");

    // The same person writing again is a new contact, first seen now.
    let (status, _) = call(
        app,
        signed_delivery(&delivery(PHONE, "wamid.E2", now_seconds())),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let again = contact(app, INSTANCE, PHONE).await.expect("a new contact");
    assert_eq!(again["message_count"], 1, "{again}");
    assert_eq!(again["first_message"]["id"], "wamid.E2", "{again}");
    let (_, stats) = call(
        app,
        admin_get(&format!("/instances/{INSTANCE}/stats?days=7")),
    )
    .await;
    assert_eq!(
        stats["new_contacts"].as_u64().unwrap(),
        before["stats"]["new_contacts"].as_u64().unwrap() + 1,
        "{stats}"
    );
}

async fn erasure_rekeys_the_records_once_and_a_second_erasure_changes_nothing(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    person_with_revenue(&engine.app).await;
    let instance = InstanceId::parse(INSTANCE).unwrap();
    let phone = ContactId::parse(PHONE).unwrap();
    let erasure = Erasure::new(instance.clone(), vec![phone.clone()]);
    let erased = stores.erasure.erase_contact(&erasure).await.expect("erase");
    assert_eq!(
        erased,
        Erased {
            contacts: 1,
            sends: 1,
            clicks: 1,
            conversions: 1
        }
    );
    // The records now sit under the token, without what identified the person.
    let journey = stores
        .revenue
        .contact_journey(&instance, &erasure.token)
        .await
        .unwrap();
    assert_eq!(journey.sends.len(), 1);
    assert_eq!(journey.sends[0].contact_id, erasure.token);
    assert_eq!(journey.clicks.len(), 1);
    assert_eq!(journey.clicks[0].contact_id, erasure.token);
    assert_eq!(journey.clicks[0].user_agent, None);
    assert_eq!(journey.clicks[0].ip_hash, None);
    assert_eq!(journey.conversions.len(), 1);
    assert_eq!(
        journey.conversions[0].contact_id.as_ref(),
        Some(&erasure.token)
    );
    let click = stores
        .revenue
        .load_click(&journey.clicks[0].click_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(click.contact_id, erasure.token);
    let before = stores
        .revenue
        .contact_journey(&instance, &phone)
        .await
        .unwrap();
    assert!(before.sends.is_empty() && before.clicks.is_empty() && before.conversions.is_empty());
    assert_eq!(
        stores
            .contacts
            .load_contact(&instance, &phone)
            .await
            .unwrap(),
        None
    );
    // A second erasure, under a new token, finds nothing left.
    let again = Erasure::new(instance.clone(), vec![phone.clone()]);
    assert_ne!(again.token, erasure.token);
    assert_eq!(
        stores.erasure.erase_contact(&again).await.unwrap(),
        Erased::default()
    );
    let still = stores
        .revenue
        .contact_journey(&instance, &erasure.token)
        .await
        .unwrap();
    assert_eq!(still, journey);
}

async fn a_failed_erasure_answers_503_and_its_retry_erases_everything(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let plan = FaultPlan::ratio(1.0, 11);
    let faulty = Stores {
        erasure: Arc::new(FaultInjectingStore::new(
            stores.erasure.clone(),
            plan.clone(),
        )),
        ..stores.clone()
    };
    let engine = engine_app(&faulty);
    let app = &engine.app;
    person_with_revenue(app).await;
    let (status, body) = call(app, erase()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    assert!(
        contact(app, INSTANCE, PHONE).await.is_some(),
        "a failed erasure took the contact"
    );
    plan.set_ratio(0.0);
    let (status, _) = call(app, erase()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(contact(app, INSTANCE, PHONE).await, None);
    let journey = journey(app).await;
    assert_eq!(journey["events"], json!([]), "{journey}");
}
