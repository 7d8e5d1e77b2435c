//! Sending outcomes back, through the public surface: destinations made with the admin API,
//! triggers arriving as Meta deliveries and widget visits, and a fake of every platform on
//! loopback that checks each required field of what it gets and answers 500, 429 or 400 on
//! cue. Every wait is a bounded poll of the deliveries listing, never a timed assertion.

use axum::extract::{Path as AxumPath, State};
use axum::response::IntoResponse;
use http::{HeaderMap, StatusCode};
use integration_tests::*;
use serde_json::{Value, json};
use shared::outbound::payload::Endpoints;
use shared::outbound::sender::RetryPolicy;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

on_every_store!(
    destinations_are_created_read_replaced_and_deleted_and_never_show_their_secrets,
    bad_destinations_and_queries_are_refused_naming_the_field_and_change_nothing,
    a_whatsapp_lead_reaches_meta_once_with_every_field_however_often_meta_retries,
    destination_faults_are_retried_into_exactly_one_accepted_event,
    a_refused_event_is_failed_with_the_platforms_message_and_never_retried,
    webhook_deliveries_are_signed_and_an_independent_hmac_verifies_them,
    contacts_without_the_platforms_click_id_are_skipped,
    google_and_tiktok_get_the_web_contacts_click_ids,
    an_order_reaches_meta_with_its_value_once,
);

const WA: &str = "106540352242922";
const WABA: &str = "102290129340398";
const META_TOKEN: &str = "meta-capi-token-s3cr3t-0123";
const TIKTOK_TOKEN: &str = "tiktok-token-s3cr3t-0123";
const OAUTH_SECRET: &str = "google-client-secret-s3cr3t";
const GOOGLE_ACCESS: &str = "google-access-token-s3cr3t";
const ORIGIN: &str = "https://shop.example";

/// One request a fake got.
#[derive(Debug, Clone)]
struct Seen {
    route: String,
    headers: HeaderMap,
    body: Vec<u8>,
    /// Required fields missing or wrong; a request with any is answered 400.
    problems: Vec<String>,
}

/// An answer to give: status, `Retry-After`, body.
type Scripted = (u16, Option<&'static str>, Value);

/// The fake platforms: what they got, and the answers to give first (then 200).
#[derive(Clone, Default)]
struct Fake {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<VecDeque<Scripted>>>,
}

impl Fake {
    fn then(&self, status: u16, retry_after: Option<&'static str>, body: Value) {
        self.script
            .lock()
            .unwrap()
            .push_back((status, retry_after, body));
    }

    fn seen(&self, route: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|seen| seen.route == route)
            .cloned()
            .collect()
    }
}

fn need(problems: &mut Vec<String>, value: &Value, pointer: &str, check: impl Fn(&Value) -> bool) {
    match value.pointer(pointer) {
        Some(found) if check(found) => {}
        other => problems.push(format!("{pointer}: {other:?}")),
    }
}

fn is_text(value: &Value) -> bool {
    value.as_str().is_some_and(|text| !text.is_empty())
}

/// Checks every field a platform requires; answers the problems.
fn check(route: &str, headers: &HeaderMap, body: &[u8]) -> Vec<String> {
    let mut problems = Vec::new();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    if route == "google_token" {
        let form: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
        for (name, want) in [
            ("grant_type", "refresh_token"),
            ("client_id", "client-1"),
            ("client_secret", OAUTH_SECRET),
            ("refresh_token", "refresh-1"),
        ] {
            if !form.iter().any(|(k, v)| k == name && v == want) {
                problems.push(format!("form {name}"));
            }
        }
        return problems;
    }
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return vec!["body is not JSON".into()];
    };
    if header("content-type") != "application/json" {
        problems.push("content-type".into());
    }
    match route {
        "meta" => {
            need(&mut problems, &value, "/data", |d| {
                d.as_array().is_some_and(|a| a.len() == 1)
            });
            need(&mut problems, &value, "/data/0/event_name", is_text);
            need(&mut problems, &value, "/data/0/event_time", Value::is_i64);
            need(&mut problems, &value, "/data/0/action_source", |v| {
                v == "business_messaging"
            });
            let channel = value.pointer("/data/0/messaging_channel").cloned();
            match channel.as_ref().and_then(Value::as_str) {
                Some("whatsapp") => {
                    need(
                        &mut problems,
                        &value,
                        "/data/0/user_data/whatsapp_business_account_id",
                        |v| v == WABA,
                    );
                    need(
                        &mut problems,
                        &value,
                        "/data/0/user_data/ctwa_clid",
                        is_text,
                    );
                }
                Some("messenger") => {
                    need(&mut problems, &value, "/data/0/user_data/page_id", is_text);
                    need(
                        &mut problems,
                        &value,
                        "/data/0/user_data/page_scoped_user_id",
                        is_text,
                    );
                }
                Some("instagram") => {
                    need(
                        &mut problems,
                        &value,
                        "/data/0/user_data/instagram_business_account_id",
                        is_text,
                    );
                    need(&mut problems, &value, "/data/0/user_data/ig_sid", is_text);
                }
                other => problems.push(format!("messaging_channel {other:?}")),
            }
            let name = value.pointer("/data/0/event_name").and_then(Value::as_str);
            if matches!(name, Some("Purchase" | "OrderCreated")) {
                need(
                    &mut problems,
                    &value,
                    "/data/0/custom_data/value",
                    Value::is_number,
                );
                need(
                    &mut problems,
                    &value,
                    "/data/0/custom_data/currency",
                    is_text,
                );
            }
        }
        "google" => {
            if header("authorization") != format!("Bearer {GOOGLE_ACCESS}") {
                problems.push("authorization".into());
            }
            need(
                &mut problems,
                &value,
                "/destinations/0/operatingAccount/accountType",
                |v| v == "GOOGLE_ADS",
            );
            need(
                &mut problems,
                &value,
                "/destinations/0/operatingAccount/accountId",
                |v| v == "1234567890",
            );
            need(
                &mut problems,
                &value,
                "/destinations/0/productDestinationId",
                |v| v == "987654",
            );
            need(&mut problems, &value, "/events", |e| {
                e.as_array().is_some_and(|a| a.len() == 1)
            });
            need(&mut problems, &value, "/events/0/eventTimestamp", |v| {
                v.as_str()
                    .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok())
            });
            need(&mut problems, &value, "/events/0/transactionId", is_text);
            need(
                &mut problems,
                &value,
                "/events/0/adIdentifiers/gclid",
                is_text,
            );
        }
        "tiktok" => {
            if header("access-token") != TIKTOK_TOKEN {
                problems.push("access-token".into());
            }
            need(&mut problems, &value, "/event_source", |v| v == "web");
            need(&mut problems, &value, "/event_source_id", |v| {
                v == "CPIXEL123"
            });
            need(&mut problems, &value, "/data/0/event", is_text);
            need(&mut problems, &value, "/data/0/event_time", Value::is_i64);
            need(&mut problems, &value, "/data/0/event_id", is_text);
            need(&mut problems, &value, "/data/0/user/ttclid", is_text);
        }
        "hook" => {
            need(&mut problems, &value, "/id", is_text);
            need(&mut problems, &value, "/type", is_text);
            need(&mut problems, &value, "/data/contact_id", is_text);
            need(&mut problems, &value, "/data/instance_id", is_text);
            if !header("x-signature").starts_with("t=") {
                problems.push("x-signature".into());
            }
        }
        _ => problems.push(format!("unknown route {route}")),
    }
    problems
}

async fn answer(
    fake: Fake,
    route: &str,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> axum::response::Response {
    let problems = check(route, &headers, &body);
    fake.seen.lock().unwrap().push(Seen {
        route: route.to_owned(),
        headers,
        body: body.to_vec(),
        problems: problems.clone(),
    });
    if !problems.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"message": problems.join("; ")}})),
        )
            .into_response();
    }
    if route == "google_token" {
        return axum::Json(json!({"access_token": GOOGLE_ACCESS, "expires_in": 3599}))
            .into_response();
    }
    let scripted = fake.script.lock().unwrap().pop_front();
    match scripted {
        Some((status, retry_after, body)) => {
            let mut response =
                (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
            if let Some(after) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", after.parse().unwrap());
            }
            response
        }
        None if route == "tiktok" => {
            axum::Json(json!({"code": 0, "message": "OK"})).into_response()
        }
        None => axum::Json(json!({"events_received": 1})).into_response(),
    }
}

/// The fake platforms on a loopback port, and the endpoints naming them.
async fn fake_platforms() -> (Fake, Endpoints, String) {
    let fake = Fake::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let route = |name: &'static str| {
        axum::routing::post(
            move |State(fake): State<Fake>, headers: HeaderMap, body: bytes::Bytes| {
                answer(fake, name, headers, body)
            },
        )
    };
    let app = axum::Router::new()
        .route(
            "/meta/v21.0/{dataset}/events",
            axum::routing::post(
                |State(fake): State<Fake>,
                 AxumPath(dataset): AxumPath<String>,
                 axum::extract::RawQuery(query): axum::extract::RawQuery,
                 headers: HeaderMap,
                 body: bytes::Bytes| async move {
                    let token_ok =
                        query.as_deref() == Some(&format!("access_token={META_TOKEN}")[..]);
                    if dataset != "555000111" || !token_ok {
                        return (
                            StatusCode::UNAUTHORIZED,
                            axum::Json(
                                json!({"error": {"message": "bad dataset or token", "code": 190}}),
                            ),
                        )
                            .into_response();
                    }
                    answer(fake, "meta", headers, body).await
                },
            ),
        )
        .route("/google/v1/events:ingest", route("google"))
        .route("/google/token", route("google_token"))
        .route("/tiktok/event/track/", route("tiktok"))
        .route("/hook", route("hook"))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let endpoints = Endpoints {
        meta_graph: format!("{base}/meta/v21.0"),
        google_data_manager: format!("{base}/google"),
        google_oauth: format!("{base}/google/token"),
        tiktok_events: format!("{base}/tiktok/event/track/"),
    };
    (fake, endpoints, base)
}

/// Short pauses: the retries' count and order are what the tests check, never their times.
fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        first_pause: Duration::from_millis(1),
        max_pause: Duration::from_millis(5),
    }
}

/// A sender over `stores` reaching `endpoints`, as the engine builds it.
fn sender(stores: &Stores, endpoints: Endpoints) -> shared::outbound::sender::Sender {
    shared::outbound::sender::Sender::new(
        stores.outbound.clone(),
        stores.vault.clone(),
        stores.contacts.clone(),
        Arc::new(shared::https::HttpClient::new(Duration::from_secs(10))),
        endpoints,
    )
    .with_retry(fast_retry())
}

fn settings(endpoints: Endpoints) -> local_server::OutboundSettings {
    local_server::OutboundSettings {
        endpoints,
        retry: fast_retry(),
        allow_http: true,
        cache: Duration::ZERO,
    }
}

async fn engine(stores: &Stores, endpoints: Endpoints) -> local_server::LocalEngine {
    local_server::engine_with(
        &secrets(),
        stores,
        PUBLIC_BASE_URL,
        |m| m,
        settings(endpoints),
    )
}

async fn create(app: &axum::Router, instance: &str, body: Value) -> Value {
    let (status, created) = call(
        app,
        admin_request(
            "POST",
            &format!("/instances/{instance}/destinations"),
            Some(body),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

fn meta_destination() -> Value {
    json!({
        "type": "meta_capi", "name": "Meta", "dataset_id": "555000111",
        "access_token": META_TOKEN, "whatsapp_business_account_id": WABA,
        "events": {"lead": "LeadSubmitted", "order": "OrderCreated"}
    })
}

async fn deliveries(app: &axum::Router, instance: &str, id: &str, query: &str) -> Vec<Value> {
    let (status, body) = call(
        app,
        admin_get(&format!(
            "/instances/{instance}/destinations/{id}/deliveries{query}"
        )),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["deliveries"].as_array().unwrap().clone()
}

/// Polls until `count` deliveries of the destination are final; answers them.
async fn settled(app: &axum::Router, instance: &str, id: &str, count: usize) -> Vec<Value> {
    for _ in 0..2_000 {
        let all = deliveries(app, instance, id, "").await;
        let done = all.iter().filter(|d| d["status"] != "pending").count();
        if done >= count {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "the deliveries never settled: {:?}",
        deliveries(app, instance, id, "").await
    )
}

fn ctwa(contact: &str, message: &str, at: i64) -> Vec<u8> {
    whatsapp_message(
        WA,
        contact,
        message,
        at,
        "Hi, I saw your ad",
        Some(ctwa_referral("120226305854810726")),
    )
}

fn now() -> i64 {
    shared::time::Timestamp::now().unix_seconds()
}

async fn destinations_are_created_read_replaced_and_deleted_and_never_show_their_secrets(
    backend: Backend,
) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let (_fake, endpoints, _) = fake_platforms().await;
    let engine = engine(&stores, endpoints).await;
    let app = &engine.app;
    let created = create(app, WA, meta_destination()).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["type"], "meta_capi");
    assert_eq!(
        created["events"],
        json!({"lead": "LeadSubmitted", "order": "OrderCreated"})
    );
    assert_eq!(created["enabled"], true);
    let (_, listed) = call(app, admin_get(&format!("/instances/{WA}/destinations"))).await;
    assert_eq!(listed["destinations"], json!([created.clone()]));
    let (status, shown) = call(
        app,
        admin_get(&format!("/instances/{WA}/destinations/{id}")),
    )
    .await;
    assert_eq!((status, &shown), (StatusCode::OK, &created));
    let mut changed = meta_destination();
    changed.as_object_mut().unwrap().remove("access_token");
    changed["events"] = json!({"lead": "QualifiedLead"});
    let (status, replaced) = call(
        app,
        admin_request(
            "PUT",
            &format!("/instances/{WA}/destinations/{id}"),
            Some(changed),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["events"], json!({"lead": "QualifiedLead"}));
    assert_eq!(replaced["created_at"], created["created_at"]);
    // The kept token still works: a lead goes out with it.
    let hook = create(
        app,
        WA,
        json!({"type": "webhook", "url": "https://crm.example/hooks", "events": ["lead"]}),
    )
    .await;
    let secret = hook["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_") && secret.len() > 40, "{hook}");
    let (_, again) = call(
        app,
        admin_get(&format!(
            "/instances/{WA}/destinations/{}",
            hook["id"].as_str().unwrap()
        )),
    )
    .await;
    assert!(again.get("secret").is_none(), "{again}");
    for answer in [&created, &listed, &shown, &replaced, &again] {
        let text = answer.to_string();
        for secret in [META_TOKEN, secret, "secret_ref", "destinations/"] {
            assert!(!text.contains(secret), "{secret} shown in {text}");
        }
    }
    let (status, _) = call(
        app,
        admin_request(
            "DELETE",
            &format!("/instances/{WA}/destinations/{id}"),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = call(
        app,
        admin_get(&format!("/instances/{WA}/destinations/{id}")),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("destination_not_found"))
    );
    let (status, _) = call(
        app,
        admin_request(
            "DELETE",
            &format!("/instances/{WA}/destinations/{id}"),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn bad_destinations_and_queries_are_refused_naming_the_field_and_change_nothing(
    backend: Backend,
) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let (_fake, endpoints, _) = fake_platforms().await;
    let strict = local_server::OutboundSettings {
        allow_http: false,
        ..settings(endpoints)
    };
    let engine = local_server::engine_with(&secrets(), &stores, PUBLIC_BASE_URL, |m| m, strict);
    let app = &engine.app;
    let with = |change: Value| {
        let mut body = meta_destination();
        for (key, value) in change.as_object().unwrap() {
            if value.is_null() {
                body.as_object_mut().unwrap().remove(key);
            } else {
                body[key] = value.clone();
            }
        }
        body
    };
    let goal = "01JABCDEFGHJKMNPQRSTVWXYZ0";
    for (body, field) in [
        (with(json!({"events": {"lead": "Lead"}})), "events.lead"),
        (
            with(json!({"events": {"signup": "LeadSubmitted"}})),
            "events.signup",
        ),
        (
            with(json!({"events": {format!("goal:{goal}"): "QualifiedLead"}})),
            &format!("events.goal:{goal}")[..],
        ),
        (with(json!({"events": {}})), "events"),
        (with(json!({"events": ["lead"]})), "events"),
        (with(json!({"access_token": null})), "access_token"),
        (with(json!({"dataset_id": "12 34"})), "dataset_id"),
        (with(json!({"type": "linkedin"})), "type"),
        (with(json!({"pixel": "1"})), "pixel"),
        (with(json!({"enabled": "yes"})), "enabled"),
        (
            json!({"type": "webhook", "url": "http://crm.example/hook", "events": ["lead"]}),
            "url",
        ),
        (
            json!({"type": "webhook", "url": "ftp://crm.example/hook", "events": ["lead"]}),
            "url",
        ),
        (
            json!({"type": "webhook", "url": "https://crm.example/hook", "events": ["refund"]}),
            "events[0]",
        ),
        (
            json!({"type": "tiktok", "event_source_id": "CPIXEL123", "access_token": "t", "events": {"lead": "Sub mit"}}),
            "events.lead",
        ),
        (
            json!({"type": "google_data_manager", "operating_account_id": "123-456-7890", "conversion_action_id": "987654", "events": ["conversion"]}),
            "oauth",
        ),
        (
            json!({"type": "google_data_manager", "operating_account_id": "123-456-7890", "conversion_action_id": "987654", "oauth": {"client_id": "c"}, "events": ["conversion"]}),
            "oauth.client_secret",
        ),
    ]
    .into_iter()
    // Addresses of the sender's own network: the runtime API, instance metadata, private,
    // loopback (also IPv4-mapped), and localhost.
    .chain(
        [
            "https://127.0.0.1:9001/2018-06-01/runtime/invocation/next",
            "https://169.254.169.254/latest/meta-data/",
            "https://10.0.0.7/hook",
            "https://[::1]/hook",
            "https://[::ffff:192.168.1.2]/hook",
            "https://localhost/hook",
        ]
        .map(|url| (json!({"type": "webhook", "url": url, "events": ["lead"]}), "url")),
    ) {
        let (status, answer) = call(
            app,
            admin_request(
                "POST",
                &format!("/instances/{WA}/destinations"),
                Some(body.clone()),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {answer}");
        assert_eq!(answer["error"]["field"], field, "{body} -> {answer}");
    }
    let (_, listed) = call(app, admin_get(&format!("/instances/{WA}/destinations"))).await;
    assert_eq!(listed["destinations"], json!([]));
    let created = create(app, WA, meta_destination()).await;
    let id = created["id"].as_str().unwrap();
    for (query, field) in [
        ("?status=lost", "status"),
        ("?limit=0", "limit"),
        ("?limit=201", "limit"),
        ("?limit=ten", "limit"),
    ] {
        let (status, answer) = call(
            app,
            admin_get(&format!(
                "/instances/{WA}/destinations/{id}/deliveries{query}"
            )),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query} -> {answer}");
        assert_eq!(answer["error"]["field"], field, "{query} -> {answer}");
    }
    let (status, _) = call(
        app,
        admin_get(&format!(
            "/instances/{WA}/destinations/{id}/deliveries?cursor=1"
        )),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(
        app,
        admin_get(&format!(
            "/instances/{WA}/destinations/not-an-id/deliveries"
        )),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        app,
        admin_request("PUT", &format!("/instances/{WA}/destinations/{id}"), Some(json!({"type": "tiktok", "event_source_id": "CPIXEL123", "events": {"lead": "SubmitForm"}}))),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, shown) = call(
        app,
        admin_get(&format!("/instances/{WA}/destinations/{id}")),
    )
    .await;
    assert_eq!(shown, created);
}

async fn a_whatsapp_lead_reaches_meta_once_with_every_field_however_often_meta_retries(
    backend: Backend,
) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let (fake, endpoints, _) = fake_platforms().await;
    let engine = engine(&stores, endpoints).await;
    let app = &engine.app;
    let id = create(app, WA, meta_destination()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let at = now() - 60;
    let delivery = ctwa("16505551234", "wamid.lead1", at);
    for _ in 0..3 {
        let (status, _) = call(app, signed_delivery(&delivery)).await;
        assert_eq!(status, StatusCode::OK);
    }
    // A later message of the same contact is no lead.
    let later = whatsapp_message(
        WA,
        "16505551234",
        "wamid.lead2",
        at + 5,
        "and another",
        None,
    );
    assert_eq!(call(app, signed_delivery(&later)).await.0, StatusCode::OK);
    let done = settled(app, WA, &id, 1).await;
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0]["status"], "sent", "{done:?}");
    assert_eq!(done[0]["event"], "lead");
    assert_eq!(done[0]["platform_event"], "LeadSubmitted");
    assert_eq!(done[0]["http_status"], 200);
    let sent = fake.seen("meta");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].problems.is_empty(), "{:?}", sent[0].problems);
    let body: Value = serde_json::from_slice(&sent[0].body).unwrap();
    let event = &body["data"][0];
    assert_eq!(event["event_name"], "LeadSubmitted");
    assert_eq!(event["event_time"], at);
    assert_eq!(event["messaging_channel"], "whatsapp");
    assert_eq!(
        event["user_data"],
        json!({"whatsapp_business_account_id": WABA, "ctwa_clid": "clid-120226305854810726"})
    );
    assert!(event.get("custom_data").is_none(), "{event}");
    let sent_only = deliveries(app, WA, &id, "?status=sent").await;
    assert_eq!(sent_only.len(), 1);
    assert!(deliveries(app, WA, &id, "?status=failed").await.is_empty());
}

async fn destination_faults_are_retried_into_exactly_one_accepted_event(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let (fake, endpoints, _) = fake_platforms().await;
    // More faults than one receive's tries: the queue's redelivery carries on.
    fake.then(500, None, json!({"error": {"message": "try later"}}));
    fake.then(429, Some("1"), json!({"error": {"message": "slow down"}}));
    fake.then(503, None, json!({}));
    fake.then(500, None, json!({}));
    fake.then(500, None, json!({}));
    let engine = engine(&stores, endpoints).await;
    let app = &engine.app;
    let id = create(app, WA, meta_destination()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = call(
        app,
        signed_delivery(&ctwa("16505550001", "wamid.f1", now() - 30)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let done = settled(app, WA, &id, 1).await;
    assert_eq!(done[0]["status"], "sent", "{done:?}");
    assert_eq!(done[0]["attempts"], 6, "{done:?}");
    let sent = fake.seen("meta");
    assert_eq!(sent.len(), 6);
    // Every try sent the same event, and only the last was accepted.
    assert!(sent.windows(2).all(|pair| pair[0].body == pair[1].body));
    assert!(engine.outbound_queue.dead_letters().is_empty());
}

async fn a_refused_event_is_failed_with_the_platforms_message_and_never_retried(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let (fake, endpoints, _) = fake_platforms().await;
    fake.then(
        400,
        None,
        json!({"error": {"message": "Invalid parameter: ctwa_clid is not valid", "code": 100}}),
    );
    let engine = engine(&stores, endpoints).await;
    let app = &engine.app;
    let id = create(app, WA, meta_destination()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let delivery = ctwa("16505550002", "wamid.r1", now() - 30);
    assert_eq!(
        call(app, signed_delivery(&delivery)).await.0,
        StatusCode::OK
    );
    let done = settled(app, WA, &id, 1).await;
    assert_eq!(done[0]["status"], "failed");
    assert_eq!(done[0]["http_status"], 400);
    assert_eq!(
        done[0]["message"],
        "Invalid parameter: ctwa_clid is not valid"
    );
    assert_eq!(done[0]["attempts"], 1);
    // Meta retrying the delivery changes nothing: the delivery is done.
    assert_eq!(
        call(app, signed_delivery(&delivery)).await.0,
        StatusCode::OK
    );
    let again = settled(app, WA, &id, 1).await;
    assert_eq!(again, done);
    assert_eq!(fake.seen("meta").len(), 1);
    assert_eq!(deliveries(app, WA, &id, "?status=failed").await.len(), 1);
}

/// HMAC-SHA256 of `<t>.<body>` by Python's own `hmac`, not the code under test.
fn python_signature(secret: &str, t: &str, body: &[u8]) -> String {
    let script = "import hmac, hashlib, sys\n\
        secret, t = sys.argv[1].encode(), sys.argv[2].encode()\n\
        body = sys.stdin.buffer.read()\n\
        print(hmac.new(secret, t + b'.' + body, hashlib.sha256).hexdigest())";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script, secret, t])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(body).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

async fn webhook_deliveries_are_signed_and_an_independent_hmac_verifies_them(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let (fake, endpoints, base) = fake_platforms().await;
    let engine = engine(&stores, endpoints).await;
    let app = &engine.app;
    let hook = create(
        app,
        WA,
        json!({"type": "webhook", "url": format!("{base}/hook"), "events": {"lead": "ignored"}}),
    )
    .await;
    assert_eq!(hook["events"], json!({"lead": "contact.attributed"}));
    let secret = hook["secret"].as_str().unwrap().to_owned();
    let id = hook["id"].as_str().unwrap();
    let at = now() - 10;
    assert_eq!(
        call(app, signed_delivery(&ctwa("16505550003", "wamid.w1", at)))
            .await
            .0,
        StatusCode::OK
    );
    let done = settled(app, WA, id, 1).await;
    assert_eq!(done[0]["status"], "sent", "{done:?}");
    let sent = fake.seen("hook");
    assert_eq!(sent.len(), 1);
    assert!(sent[0].problems.is_empty(), "{:?}", sent[0].problems);
    let header = sent[0].headers["x-signature"].to_str().unwrap().to_owned();
    let (t, v1) = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
        .unwrap();
    assert_eq!(v1, python_signature(&secret, t, &sent[0].body));
    assert_ne!(v1, python_signature("whsec_other", t, &sent[0].body));
    let body: Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(body["type"], "contact.attributed");
    assert_eq!(body["id"], done[0]["delivery_id"]);
    assert_eq!(body["data"]["contact_id"], "16505550003");
    assert_eq!(body["data"]["channel"], "whatsapp");
    assert_eq!(body["data"]["acquisition"]["kind"], "meta_ad");
    assert_eq!(body["data"]["acquisition"]["ad_id"], "120226305854810726");
}

async fn contacts_without_the_platforms_click_id_are_skipped(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let (fake, endpoints, _) = fake_platforms().await;
    let engine = engine(&stores, endpoints).await;
    let app = &engine.app;
    let id = create(app, WA, meta_destination()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let organic = whatsapp_message(WA, "16505550004", "wamid.o1", now() - 20, "hello", None);
    assert_eq!(call(app, signed_delivery(&organic)).await.0, StatusCode::OK);
    let done = settled(app, WA, &id, 1).await;
    assert_eq!(done[0]["status"], "skipped", "{done:?}");
    assert_eq!(done[0]["message"], "the contact has no Meta ad acquisition");
    assert!(fake.seen("meta").is_empty());
    assert_eq!(deliveries(app, WA, &id, "?status=skipped").await.len(), 1);
}

async fn google_and_tiktok_get_the_web_contacts_click_ids(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let (fake, endpoints, _) = fake_platforms().await;
    let engine = engine(&stores, endpoints).await;
    let app = &engine.app;
    let key = configure_widget(app, WA, &[ORIGIN]).await;
    let google = create(
        app,
        WA,
        json!({"type": "google_data_manager", "operating_account_id": "123-456-7890",
               "conversion_action_id": "987654", "events": ["lead"],
               "oauth": {"client_id": "client-1", "client_secret": OAUTH_SECRET, "refresh_token": "refresh-1"}}),
    )
    .await;
    let tiktok = create(
        app,
        WA,
        json!({"type": "tiktok", "event_source_id": "CPIXEL123", "access_token": TIKTOK_TOKEN,
               "events": {"lead": "SubmitForm"}}),
    )
    .await;
    for (visitor, page) in [
        (
            "visitor-google-1",
            "https://shop.example/p?gclid=Cj0KCQ-test&utm_source=google",
        ),
        (
            "visitor-tiktok-1",
            "https://shop.example/p?ttclid=E.C.P.test&utm_source=tiktok",
        ),
    ] {
        let (status, _, body) = widget_post(
            app,
            "/webhooks/widget",
            Some(ORIGIN),
            &key,
            json!({"instance_id": WA, "visitor_id": visitor, "page_url": page, "event_id": format!("{visitor}-e1")}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let to_google = settled(app, WA, google["id"].as_str().unwrap(), 2).await;
    let to_tiktok = settled(app, WA, tiktok["id"].as_str().unwrap(), 2).await;
    let statuses = |all: &[Value]| {
        let mut statuses: Vec<String> = all
            .iter()
            .map(|d| d["status"].as_str().unwrap().to_owned())
            .collect();
        statuses.sort();
        statuses
    };
    assert_eq!(statuses(&to_google), ["sent", "skipped"], "{to_google:?}");
    assert_eq!(statuses(&to_tiktok), ["sent", "skipped"], "{to_tiktok:?}");
    let sent = fake.seen("google");
    assert_eq!(sent.len(), 1);
    assert!(sent[0].problems.is_empty(), "{:?}", sent[0].problems);
    let body: Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(
        body["events"][0]["adIdentifiers"],
        json!({"gclid": "Cj0KCQ-test"})
    );
    assert_eq!(fake.seen("google_token").len(), 1);
    let sent = fake.seen("tiktok");
    assert_eq!(sent.len(), 1);
    assert!(sent[0].problems.is_empty(), "{:?}", sent[0].problems);
    let body: Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(body["data"][0]["user"], json!({"ttclid": "E.C.P.test"}));
    assert_eq!(body["data"][0]["event"], "SubmitForm");
}

async fn an_order_reaches_meta_with_its_value_once(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let (fake, endpoints, _) = fake_platforms().await;
    let engine = engine(&stores, endpoints).await;
    let app = &engine.app;
    let id = create(app, WA, meta_destination()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let at = now() - 100;
    assert_eq!(
        call(app, signed_delivery(&ctwa("16505550005", "wamid.a1", at)))
            .await
            .0,
        StatusCode::OK
    );
    let mut order: Value = serde_json::from_slice(&whatsapp_message(
        WA,
        "16505550005",
        "wamid.order1",
        at + 50,
        "",
        None,
    ))
    .unwrap();
    let message = &mut order["entry"][0]["changes"][0]["value"]["messages"][0];
    message["type"] = json!("order");
    message.as_object_mut().unwrap().remove("text");
    message["order"] = json!({"catalog_id": "cat1", "product_items": [
        {"product_retailer_id": "sku-1", "quantity": 2, "item_price": 12.5, "currency": "USD"},
        {"product_retailer_id": "sku-2", "quantity": 1, "item_price": 5, "currency": "USD"}
    ]});
    let order = serde_json::to_vec(&order).unwrap();
    for _ in 0..2 {
        assert_eq!(call(app, signed_delivery(&order)).await.0, StatusCode::OK);
    }
    let done = settled(app, WA, &id, 2).await;
    let placed: Vec<&Value> = done.iter().filter(|d| d["event"] == "order").collect();
    assert_eq!(placed.len(), 1, "{done:?}");
    assert_eq!(placed[0]["status"], "sent", "{done:?}");
    assert_eq!(placed[0]["reference"], "wamid.order1");
    let orders: Vec<Value> = fake
        .seen("meta")
        .iter()
        .map(|seen| serde_json::from_slice::<Value>(&seen.body).unwrap())
        .filter(|body| body["data"][0]["event_name"] == "OrderCreated")
        .collect();
    assert_eq!(orders.len(), 1);
    assert_eq!(
        orders[0]["data"][0]["custom_data"],
        json!({"value": 30, "currency": "USD"})
    );
    assert_eq!(orders[0]["data"][0]["event_time"], at + 50);
}

mod triggers {
    use super::*;

    on_every_store!(
        a_goal_the_businesss_events_complete_is_sent_once,
        a_credited_conversion_is_sent_once_with_its_payout,
        queue_faults_are_retried_by_the_caller_into_exactly_one_accepted_event,
        the_dashboard_panel_shows_the_last_deliveries_and_the_failure_rate,
    );

    async fn the_dashboard_panel_shows_the_last_deliveries_and_the_failure_rate(backend: Backend) {
        let Some((stores, _guard)) = fresh_stores(backend).await else {
            return;
        };
        let (fake, endpoints, _) = fake_platforms().await;
        fake.then(
            400,
            None,
            json!({"error": {"message": "Invalid ctwa_clid", "code": 100}}),
        );
        let engine = engine(&stores, endpoints).await;
        let app = &engine.app;
        let id = create(app, WA, meta_destination()).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        for (contact, message) in [("16505550010", "wamid.d1"), ("16505550011", "wamid.d2")] {
            assert_eq!(
                call(app, signed_delivery(&ctwa(contact, message, now() - 30)))
                    .await
                    .0,
                StatusCode::OK
            );
            settled(app, WA, &id, usize::from(message == "wamid.d2") + 1).await;
        }
        let cookie = dashboard_cookie(app, ADMIN_KEY).await;
        // The instance's pages link to it.
        let attribution = http::Request::get(format!("/app/instances/{WA}/attribution"))
            .header("cookie", cookie.as_str())
            .body(axum::body::Body::empty())
            .unwrap();
        let (_, tabs) = status_and_body(
            tower::ServiceExt::oneshot(app.clone(), attribution)
                .await
                .unwrap(),
        )
        .await;
        assert!(
            tabs.as_str()
                .unwrap()
                .contains(&format!("href=\"/app/instances/{WA}/deliveries\"")),
            "{tabs}"
        );
        let page = http::Request::get(format!("/app/instances/{WA}/deliveries"))
            .header("cookie", cookie)
            .body(axum::body::Body::empty())
            .unwrap();
        let (status, body) =
            status_and_body(tower::ServiceExt::oneshot(app.clone(), page).await.unwrap()).await;
        let body = body.as_str().unwrap().to_owned();
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body.matches("data-status=\"failed\"").count(), 1, "{body}");
        assert_eq!(body.matches("data-status=\"sent\"").count(), 1, "{body}");
        assert!(body.contains("Invalid ctwa_clid"), "{body}");
        assert!(
            body.contains("<dd data-stat=\"failure_rate\">50.0 %</dd>"),
            "{body}"
        );
        assert!(!body.contains(META_TOKEN));
        // Without a session, the sign-in page.
        let anonymous = http::Request::get(format!("/app/instances/{WA}/deliveries"))
            .body(axum::body::Body::empty())
            .unwrap();
        let response = tower::ServiceExt::oneshot(app.clone(), anonymous)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }

    async fn hook(app: &axum::Router, base: &str, events: Value) -> (String, String) {
        let hook = create(
            app,
            WA,
            json!({"type": "webhook", "url": format!("{base}/hook"), "events": events}),
        )
        .await;
        (
            hook["id"].as_str().unwrap().to_owned(),
            hook["secret"].as_str().unwrap().to_owned(),
        )
    }

    async fn a_goal_the_businesss_events_complete_is_sent_once(backend: Backend) {
        let Some((stores, _guard)) = fresh_stores(backend).await else {
            return;
        };
        let (fake, endpoints, base) = fake_platforms().await;
        let engine = engine(&stores, endpoints).await;
        let app = &engine.app;
        let (status, goal) = call(
            app,
            admin_request(
                "POST",
                &format!("/instances/{WA}/goals"),
                Some(json!({"name": "Paid", "conditions": [{"rules": [{"event": "paid"}]}]})),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{goal}");
        let goal_id = goal["id"].as_str().unwrap();
        let (id, _) = hook(app, &base, json!([format!("goal:{goal_id}")])).await;
        assert_eq!(
            call(
                app,
                signed_delivery(&ctwa("16505550006", "wamid.g1", now() - 60))
            )
            .await
            .0,
            StatusCode::OK
        );
        for _ in 0..2 {
            let (status, body) = call(
                app,
                admin_request(
                    "POST",
                    &format!("/instances/{WA}/contacts/16505550006/events"),
                    Some(json!({"event_id": "pay-1", "name": "paid"})),
                ),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let done = settled(app, WA, &id, 1).await;
        assert_eq!(done.len(), 1, "{done:?}");
        assert_eq!(done[0]["status"], "sent");
        assert_eq!(done[0]["event"], format!("goal:{goal_id}"));
        let sent = fake.seen("hook");
        assert_eq!(sent.len(), 1);
        let body: Value = serde_json::from_slice(&sent[0].body).unwrap();
        assert_eq!(body["type"], "goal.achieved");
        assert_eq!(body["data"]["goal_id"], goal_id);
    }

    async fn a_credited_conversion_is_sent_once_with_its_payout(backend: Backend) {
        let Some((stores, _guard)) = fresh_stores(backend).await else {
            return;
        };
        let (fake, endpoints, base) = fake_platforms().await;
        let engine = engine(&stores, endpoints).await;
        let app = &engine.app;
        let (id, _) = hook(app, &base, json!(["conversion"])).await;
        let (status, body) = call(
            app,
            admin_request("POST", "/offers", Some(json!({"offer_id": "o1", "name": "Offer", "destination_url": "https://shop.example/o1?aff={click_id}"}))),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = call(
            app,
            admin_request("POST", "/sends", Some(json!({"instance_id": WA, "contact_id": "16505550007", "message_id": "msg-1", "campaign": "spring", "creative": "t1", "offer_id": "o1"}))),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let code = body["tracked_url"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        let visitor = std::net::SocketAddr::from(([203, 0, 113, 9], 50_000));
        let request = http::Request::get(format!("/c/{code}"))
            .extension(axum::extract::ConnectInfo(visitor))
            .header(
                "user-agent",
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
            )
            .body(axum::body::Body::empty())
            .unwrap();
        let response = tower::ServiceExt::oneshot(app.clone(), request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FOUND);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let click = location.rsplit_once("aff=").unwrap().1.to_owned();
        for _ in 0..2 {
            let request = http::Request::get(format!(
                "/postbacks/generic?token={POSTBACK_TOKEN}&click_id={click}&conversion_id=conv-1&payout=42.50&currency=EUR"
            ))
            .body(axum::body::Body::empty())
            .unwrap();
            let (status, body) = call(app, request).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let done = settled(app, WA, &id, 1).await;
        assert_eq!(done.len(), 1, "{done:?}");
        assert_eq!(done[0]["status"], "sent");
        assert_eq!(done[0]["event"], "conversion");
        let sent = fake.seen("hook");
        assert_eq!(sent.len(), 1);
        let body: Value = serde_json::from_slice(&sent[0].body).unwrap();
        assert_eq!(body["type"], "conversion.attributed");
        assert_eq!(
            (
                body["data"]["value"].clone(),
                body["data"]["currency"].clone()
            ),
            (json!(42.5), json!("EUR"))
        );
    }

    /// The outbound queue, failing its first `failures` enqueues.
    struct FlakyQueue {
        inner: Arc<dyn shared::queue::JobQueue>,
        failures: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl shared::queue::JobQueue for FlakyQueue {
        async fn enqueue(
            &self,
            job: &shared::queue::QueueJob,
        ) -> Result<(), shared::queue::QueueError> {
            let left = self.failures.load(std::sync::atomic::Ordering::SeqCst);
            if left > 0 {
                self.failures
                    .store(left - 1, std::sync::atomic::Ordering::SeqCst);
                return Err(shared::queue::QueueError(
                    "injected outbound queue fault".into(),
                ));
            }
            self.inner.enqueue(job).await
        }
    }

    async fn queue_faults_are_retried_by_the_caller_into_exactly_one_accepted_event(
        backend: Backend,
    ) {
        let Some((stores, _guard)) = fresh_stores(backend).await else {
            return;
        };
        let (fake, endpoints, _) = fake_platforms().await;
        let engine = engine(&stores, endpoints.clone()).await;
        let id = create(&engine.app, WA, meta_destination()).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        // Meta's webhook with an outbound queue that fails twice, over the same stores.
        let sender = sender(&stores, endpoints);
        let flaky = Arc::new(FlakyQueue {
            inner: shared::queue::InProcessQueue::start(Arc::new(sender)),
            failures: 2.into(),
        });
        let state = webhook::WebhookState::new(
            &secrets(),
            stores.contacts.clone(),
            Arc::new(RecordingQueue::default()),
            stores.goals.clone(),
        );
        state.send_outcomes_to(Arc::new(shared::outbound::triggers::Dispatcher::with_ttl(
            stores.outbound.clone(),
            flaky,
            Duration::ZERO,
        )));
        let webhook = shared::http::serve_json_errors(webhook::router(state));
        let failures =
            deliver_until_accepted(&webhook, &ctwa("16505550008", "wamid.q1", now() - 30)).await;
        assert_eq!(failures, 2);
        // Meta redelivers an accepted delivery too, now and then: still one event.
        assert_eq!(
            call(
                &webhook,
                signed_delivery(&ctwa("16505550008", "wamid.q1", now() - 30))
            )
            .await
            .0,
            StatusCode::OK
        );
        let done = settled(&engine.app, WA, &id, 1).await;
        assert_eq!(done.len(), 1, "{done:?}");
        assert_eq!(done[0]["status"], "sent");
        assert_eq!(fake.seen("meta").len(), 1);
    }
}

/// A job that cannot be read fails alone: the rest of its batch is sent, and only it comes
/// back (to reach the dead-letter queue after its receives).
#[tokio::test]
async fn a_poison_job_fails_alone_in_its_batch() {
    let (stores, _guard) = fresh_stores(Backend::Embedded).await.unwrap();
    let (fake, endpoints, base) = fake_platforms().await;
    let engine = engine(&stores, endpoints.clone()).await;
    let hook = create(
        &engine.app,
        WA,
        json!({"type": "webhook", "url": format!("{base}/hook"), "events": ["lead"]}),
    )
    .await;
    let job = shared::queue::QueueJob::Outbound(Box::new(shared::outbound::OutboundJob {
        destination_id: shared::outbound::DestinationId::parse(hook["id"].as_str().unwrap())
            .unwrap(),
        trigger: shared::outbound::Trigger {
            instance_id: shared::ids::InstanceId::parse(WA).unwrap(),
            contact_id: shared::ids::ContactId::parse("16505550009").unwrap(),
            event: shared::outbound::EngineEvent::Lead,
            reference: None,
            occurred_at: shared::time::Timestamp::now(),
            value: None,
            currency: None,
        },
    }));
    let sender = sender(&stores, endpoints);
    let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
    for (id, body) in [
        (
            "poison",
            r#"{"type": "outbound", "destination_id": 16505550009}"#.to_owned(),
        ),
        ("good", serde_json::to_string(&job).unwrap()),
    ] {
        let mut record = aws_lambda_events::event::sqs::SqsMessage::default();
        record.message_id = Some(id.to_owned());
        record.body = Some(body);
        event.records.push(record);
    }
    let answer = matcher::handle_sqs_event(&sender, event).await;
    let failed: Vec<&str> = answer
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["poison"]);
    assert_eq!(fake.seen("hook").len(), 1);
}

/// The outbound store of the sender, refusing its first claim and losing the answer of its
/// second (the claim took effect, the sender saw an error).
struct FaultyClaims {
    inner: Arc<dyn shared::outbound::store::OutboundStore>,
    claims: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl shared::outbound::store::OutboundStore for FaultyClaims {
    async fn load_destinations(
        &self,
        instance_id: &shared::ids::InstanceId,
    ) -> Result<shared::outbound::DestinationSet, shared::store::StoreError> {
        self.inner.load_destinations(instance_id).await
    }

    async fn save_destinations(
        &self,
        instance_id: &shared::ids::InstanceId,
        set: &shared::outbound::DestinationSet,
        expected_version: u64,
    ) -> Result<shared::store::CommitOutcome, shared::store::StoreError> {
        self.inner
            .save_destinations(instance_id, set, expected_version)
            .await
    }

    async fn claim_delivery(
        &self,
        fresh: &shared::outbound::Delivery,
        now: shared::time::Timestamp,
    ) -> Result<shared::outbound::store::Claim, shared::store::StoreError> {
        let fault = || shared::store::StoreError::Unavailable("injected claim fault".into());
        match self
            .claims
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        {
            0 => Err(fault()),
            1 => {
                self.inner.claim_delivery(fresh, now).await?;
                Err(fault())
            }
            _ => self.inner.claim_delivery(fresh, now).await,
        }
    }

    async fn record_delivery(
        &self,
        delivery: &shared::outbound::Delivery,
    ) -> Result<(), shared::store::StoreError> {
        self.inner.record_delivery(delivery).await
    }

    async fn list_deliveries(
        &self,
        instance_id: &shared::ids::InstanceId,
        destination_id: &shared::outbound::DestinationId,
        status: Option<shared::outbound::DeliveryStatus>,
        limit: usize,
    ) -> Result<Vec<shared::outbound::Delivery>, shared::store::StoreError> {
        self.inner
            .list_deliveries(instance_id, destination_id, status, limit)
            .await
    }
}

/// Store faults around the claim, before anything was sent, end in exactly one accepted event:
/// the queue redelivers, and the holder of a claim whose answer was lost takes it up again.
#[tokio::test]
async fn store_faults_of_the_claim_end_in_exactly_one_accepted_event() {
    let (stores, _guard) = fresh_stores(Backend::Embedded).await.unwrap();
    let (fake, endpoints, _) = fake_platforms().await;
    let engine = engine(&stores, endpoints.clone()).await;
    let id = create(&engine.app, WA, meta_destination()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let faulty = Stores {
        outbound: Arc::new(FaultyClaims {
            inner: stores.outbound.clone(),
            claims: 0.into(),
        }),
        ..stores.clone()
    };
    let outbound = shared::queue::InProcessQueue::start(Arc::new(sender(&faulty, endpoints)));
    let state = webhook::WebhookState::new(
        &secrets(),
        stores.contacts.clone(),
        Arc::new(RecordingQueue::default()),
        stores.goals.clone(),
    );
    state.send_outcomes_to(Arc::new(shared::outbound::triggers::Dispatcher::with_ttl(
        stores.outbound.clone(),
        outbound.clone(),
        Duration::ZERO,
    )));
    let webhook = shared::http::serve_json_errors(webhook::router(state));
    let delivery = ctwa("16505550012", "wamid.s1", now() - 30);
    assert_eq!(
        call(&webhook, signed_delivery(&delivery)).await.0,
        StatusCode::OK
    );
    let done = settled(&engine.app, WA, &id, 1).await;
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0]["status"], "sent");
    assert_eq!(done[0]["attempts"], 1);
    assert_eq!(fake.seen("meta").len(), 1);
    assert!(outbound.dead_letters().is_empty());
}
