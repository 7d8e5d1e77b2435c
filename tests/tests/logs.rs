//! What the engine logs never carries a full phone number (contact ids print masked, like
//! `***4321`) nor a secret: the Meta app secret, the verify token, the admin key, the postback
//! token, the link secret, nor a wrong key someone tried. The whole flow runs with every log
//! line captured, as JSON (Lambda's format) and as text (the local server's), at the most
//! verbose level for the engine's own crates: deliveries with a referral, rules, a matcher job,
//! sends, a click, postbacks, admin calls, refused credentials, store faults and a bad queue
//! message. The captured text is then searched.

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use integration_tests::*;
use serde_json::json;
use shared::matching::QueueWorker;
use shared::store::{FaultInjectingStore, FaultPlan};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tower::ServiceExt;
use tracing_subscriber::layer::SubscriberExt;

const INSTANCE: &str = "106540352242922";
/// Every contact of the flow: each a phone number or a business-scoped user id (BSUID), and
/// neither may ever be logged whole.
const PHONES: [&str; 7] = [
    "16505551234",
    "818012345678",
    "5511987654321",
    "447700900123",
    "5215512345678",
    "MX.8820194736550012",
    "MX.ENT.5571029384756601",
];
const WRONG_ADMIN_KEY: &str = "guessed-admin-key-4242424242";
const WRONG_POSTBACK_TOKEN: &str = "guessed-postback-token-5353535353";
/// A destination's access token, given to the admin API and kept in the vault.
const DESTINATION_TOKEN: &str = "meta-capi-token-7171717171";
/// The webhook destinations' signing secrets the admin API answered.
fn signing_secrets() -> &'static std::sync::Mutex<Vec<String>> {
    static SECRETS: OnceLock<std::sync::Mutex<Vec<String>>> = OnceLock::new();
    SECRETS.get_or_init(Default::default)
}

/// The process-wide subscriber of this test binary: JSON and text, into one buffer.
fn captured() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        let filter = tracing_subscriber::EnvFilter::new(
            "info,shared=trace,webhook=trace,rules=trace,matcher=trace,clicks=trace,\
             postback=trace,local_server=trace,integration_tests=trace",
        );
        let (json, text) = (captured.clone(), captured.clone());
        let subscriber = tracing_subscriber::registry()
            .with(filter)
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(true)
                    .with_writer(move || json.clone()),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .compact()
                    .with_ansi(false)
                    .with_writer(move || text.clone()),
            );
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        captured
    })
}

async fn ok(app: &Router, request: Request<Body>, expected: StatusCode) -> serde_json::Value {
    let (status, body) = call(app, request).await;
    assert_eq!(status, expected, "{body}");
    body
}

async fn full_flow(stores: &Stores) {
    // Half of the store calls fail in a second engine over the same store: 5xx answers and
    // retried jobs, whose errors are logged with their details.
    let plan = FaultPlan::ratio(0.0, 7);
    let faulty = Stores {
        contacts: Arc::new(FaultInjectingStore::new(
            stores.contacts.clone(),
            plan.clone(),
        )),
        revenue: Arc::new(FaultInjectingStore::new(
            stores.revenue.clone(),
            plan.clone(),
        )),
        ..stores.clone()
    };
    let engine = engine_app(&faulty);
    let app = &engine.app;

    // Destinations: a token and a signing secret that must never show, and a signed webhook
    // to a receiver on loopback for every lead of the flow.
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", receiver.local_addr().unwrap());
    let hooks = Router::new().route("/hook", axum::routing::post(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(receiver, hooks).await.unwrap() });
    ok(
        app,
        admin_request(
            "POST",
            &format!("/instances/{INSTANCE}/destinations"),
            Some(
                json!({"type": "meta_capi", "dataset_id": "555", "access_token": DESTINATION_TOKEN,
                        "events": {"order": "OrderCreated"}}),
            ),
        ),
        StatusCode::CREATED,
    )
    .await;
    let hook = ok(
        app,
        admin_request(
            "POST",
            &format!("/instances/{INSTANCE}/destinations"),
            Some(json!({"type": "webhook", "url": hook_url, "events": ["lead", "conversion"]})),
        ),
        StatusCode::CREATED,
    )
    .await;
    signing_secrets()
        .lock()
        .unwrap()
        .push(hook["secret"].as_str().unwrap().to_owned());

    // Rules first, so the matcher has one to apply.
    let rule = ok(
        app,
        admin_request(
            "POST",
            &format!("/instances/{INSTANCE}/rules"),
            Some(json!({"name": "TikTok", "platform": "tiktok",
                        "match": {"kind": "contains", "pattern": "tiktok ad"}})),
        ),
        StatusCode::CREATED,
    )
    .await;
    ok(
        app,
        admin_get(&format!("/instances/{INSTANCE}/rules")),
        StatusCode::OK,
    )
    .await;
    ok(
        app,
        admin_request(
            "POST",
            &format!("/instances/{INSTANCE}/rules/test"),
            Some(json!({"text": "I saw your TikTok ad, call me on +5511987654321"})),
        ),
        StatusCode::OK,
    )
    .await;
    let rule_path = format!(
        "/instances/{INSTANCE}/rules/{}",
        rule["id"].as_str().unwrap()
    );
    ok(app, admin_get(&rule_path), StatusCode::OK).await;

    // Meta: the handshake, a referral, pre-filled texts, a Messenger referral, a duplicate.
    ok(
        app,
        Request::get(format!(
            "/webhooks/meta?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=42"
        ))
        .body(Body::empty())
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    for body in [
        fixture("whatsapp_text_ctwa_referral.json"),
        fixture("whatsapp_text_prefilled_tiktok.json"),
        fixture("whatsapp_text_ctwa_referral.json"),
        fixture("messenger_referral_existing_thread.json"),
        // A username user known by BSUID alone, then the same person with their phone number.
        fixture("whatsapp_bsuid_username_only.json"),
        fixture("whatsapp_bsuid_with_phone.json"),
        whatsapp_message(
            INSTANCE,
            "5511987654321",
            "wamid.logs.1",
            1_763_976_000,
            "Oi, vi o anúncio no TikTok ad",
            None,
        ),
        whatsapp_message(
            INSTANCE,
            "447700900123",
            "wamid.logs.2",
            1_763_976_100,
            "hello, my number is 447700900123",
            Some(ctwa_referral("ad-logs")),
        ),
    ] {
        ok(app, signed_delivery(&body), StatusCode::OK).await;
    }
    // The matcher's jobs run in the background: wait until they are decided.
    for contact_id in ["818012345678", "5511987654321"] {
        let mut decided = false;
        for _ in 0..200 {
            let contact = contact(app, INSTANCE, contact_id).await.unwrap();
            if contact.get("rules_checked_at").is_some() {
                decided = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(decided, "the matcher did not decide {contact_id}");
    }

    // Refused: bad signatures, a wrong verify token, wrong admin keys.
    let body = fixture("whatsapp_text_ctwa_referral.json");
    for signature in [
        format!("sha256={}", "0".repeat(64)),
        format!("sha256={APP_SECRET}"),
        APP_SECRET.to_owned(),
    ] {
        ok(
            app,
            Request::post("/webhooks/meta")
                .header("x-hub-signature-256", signature)
                .body(Body::from(body.clone()))
                .unwrap(),
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    ok(
        app,
        Request::get(format!(
            "/webhooks/meta?hub.mode=subscribe&hub.verify_token={WRONG_ADMIN_KEY}&hub.challenge=1"
        ))
        .body(Body::empty())
        .unwrap(),
        StatusCode::FORBIDDEN,
    )
    .await;
    for authorization in [
        format!("Bearer {WRONG_ADMIN_KEY}"),
        WRONG_ADMIN_KEY.to_owned(),
        format!("Basic {ADMIN_KEY}"),
    ] {
        ok(
            app,
            Request::get(format!("/instances/{INSTANCE}/contacts/16505551234"))
                .header("authorization", authorization)
                .body(Body::empty())
                .unwrap(),
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }

    // Revenue: an offer, a send, a click, postbacks (one refused, one duplicate).
    ok(
        app,
        admin_request(
            "POST",
            "/offers",
            Some(json!({"offer_id": "shoes", "name": "Shoes",
                        "destination_url": "https://shop.example/p?aff={click_id}"})),
        ),
        StatusCode::CREATED,
    )
    .await;
    let send = ok(
        app,
        admin_request(
            "POST",
            "/sends",
            Some(json!({"instance_id": INSTANCE, "contact_id": "16505551234",
                        "message_id": "wamid.out.1", "campaign": "spring", "creative": "tpl-a",
                        "offer_id": "shoes"})),
        ),
        StatusCode::CREATED,
    )
    .await;
    let code = send["code"].as_str().unwrap();
    let response = app
        .clone()
        .oneshot(
            Request::get(format!("/c/{code}"))
                .header("user-agent", "Mozilla/5.0")
                .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                    [198, 51, 100, 7],
                    50_000,
                ))))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let click_id = location.rsplit_once("aff=").unwrap().1;
    let postback = format!(
        "/postbacks/tune?token={POSTBACK_TOKEN}&aff_sub={click_id}&transaction_id=T1&payout=12.50"
    );
    for _ in 0..2 {
        ok(
            app,
            Request::get(&postback).body(Body::empty()).unwrap(),
            StatusCode::OK,
        )
        .await;
    }
    ok(
        app,
        Request::get(format!(
            "/postbacks/tune?token={WRONG_POSTBACK_TOKEN}&aff_sub={click_id}&transaction_id=T2"
        ))
        .body(Body::empty())
        .unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    ok(
        app,
        Request::post("/postbacks/generic")
            .header("x-postback-token", POSTBACK_TOKEN)
            .header("content-type", "application/json")
            .body(Body::from(
                json!({"click_id": click_id, "conversion_id": "G1", "payout": "oops"}).to_string(),
            ))
            .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;

    // Admin reads.
    for path in [
        format!("/instances/{INSTANCE}/contacts/16505551234"),
        format!("/instances/{INSTANCE}/contacts/16505551234/journey"),
        format!("/instances/{INSTANCE}/contacts?limit=2"),
        format!("/instances/{INSTANCE}/stats?days=7"),
        "/reports/revenue?group_by=campaign".to_owned(),
        "/offers".to_owned(),
    ] {
        ok(app, admin_get(&path), StatusCode::OK).await;
    }
    ok(
        app,
        admin_request(
            "POST",
            &format!("/instances/{INSTANCE}/backfill"),
            Some(json!({"days": 90, "dry_run": false})),
        ),
        StatusCode::ACCEPTED,
    )
    .await;

    // Faults: deliveries and postbacks answered 5xx, a job retried.
    plan.set_ratio(1.0);
    let (status, _) = call(
        app,
        signed_delivery(&whatsapp_message(
            INSTANCE,
            "16505551234",
            "wamid.logs.fault",
            1_763_976_200,
            "are you there?",
            None,
        )),
    )
    .await;
    assert!(status.is_server_error());
    let (status, _) = call(app, Request::get(&postback).body(Body::empty()).unwrap()).await;
    assert!(status.is_server_error());
    let (status, _) = call(
        app,
        admin_get(&format!("/instances/{INSTANCE}/contacts/447700900123")),
    )
    .await;
    assert!(status.is_server_error());
    plan.set_ratio(0.0);

    // Queue messages the matcher cannot use: logged, retried, dead-lettered.
    let matcher = QueueWorker::new(
        faulty.contacts.clone(),
        stores.rules.clone(),
        stores.jobs.clone(),
    );
    let bodies = [
        r#"{"type": "match", "instance_id": "106540352242922", "contact_id": 16505551234}"#,
        r#"{"type": "match", "instance_id": "106540352242922", "contact_id": "16505551234 x"}"#,
        r#"{"type": "match", "instance_id": "106540352242922", "contact_id": "818012345678", "extra": 447700900123}"#,
        r#"{"type": "matches", "contact_id": "5511987654321"}"#,
        r#"{"contact_id": "5511987654321", "#,
    ];
    let messages: Vec<(String, String)> = bodies
        .iter()
        .enumerate()
        .map(|(n, body)| (format!("m-{n}"), (*body).to_owned()))
        .collect();
    plan.set_ratio(1.0);
    matcher
        .handle_batch(&messages, shared::time::Timestamp::now())
        .await;
    plan.set_ratio(0.0);
}

fn assert_no_leak(logs: &str) {
    let secrets = [
        ("the Meta app secret", APP_SECRET),
        ("the verify token", VERIFY_TOKEN),
        ("the admin key", ADMIN_KEY),
        ("the postback token", POSTBACK_TOKEN),
        ("the link secret", LINK_SECRET),
        ("a wrong admin key", WRONG_ADMIN_KEY),
        ("a wrong postback token", WRONG_POSTBACK_TOKEN),
        ("a destination's access token", DESTINATION_TOKEN),
    ];
    let signing = signing_secrets().lock().unwrap().clone();
    assert!(!signing.is_empty());
    let signing = signing
        .iter()
        .map(|secret| ("a webhook's signing secret", secret.as_str()));
    let mut leaks = Vec::new();
    for (what, secret) in secrets.into_iter().chain(signing) {
        for line in logs.lines().filter(|line| line.contains(secret)) {
            leaks.push(format!("{what}: {line}"));
        }
    }
    for phone in PHONES {
        for line in logs.lines().filter(|line| line.contains(phone)) {
            leaks.push(format!("contact id {phone}: {line}"));
        }
    }
    assert!(
        leaks.is_empty(),
        "{} log lines leak:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_of_a_full_flow_hold_no_phone_number_and_no_secret() {
    let captured = captured();
    let (stores, _guard) = fresh_stores(Backend::Embedded).await.unwrap();
    full_flow(&stores).await;
    // On DynamoDB too when the emulator runs: its errors are worded differently.
    let dynamo = fresh_stores(Backend::Dynamo).await;
    if let Some((stores, _guard)) = &dynamo {
        full_flow(stores).await;
    }
    // Let the background matcher finish logging.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    // The flow did log, contacts as masked ids among it.
    for expected in [
        "event applied",
        "rules applied",
        "click recorded",
        "conversion recorded",
        "postback refused",
        "delivery refused",
        "request failed",
        "match job failed",
        "destination created",
        "***1234",
    ] {
        assert!(
            logs.contains(expected),
            "no {expected:?} in the logs:\n{logs}"
        );
    }
    assert_no_leak(&logs);
}
