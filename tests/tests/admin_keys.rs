//! Admin keys through every function's admin routes: the admin key's current and previous
//! values both open everything, a value rotated out is refused, the read-only key reads and
//! never writes, listing cursors survive a rotation, and each admin write leaves one audit line
//! naming the key, never holding it.

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use integration_tests::*;
use serde_json::{Value, json};
use shared::config::Secrets;
use shared::secret::{AdminKeys, RotatingSecret, Secret};
use std::sync::OnceLock;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

const INSTANCE: &str = "106540352242922";
const PHONE: &str = "16505551234";
const ADMIN_NEW: &str = "admin-new-0123456789abcdef";
const ADMIN_OLD: &str = "admin-old-0123456789abcdef";
const READONLY_NEW: &str = "readonly-new-0123456789abcdef";
const READONLY_OLD: &str = "readonly-old-0123456789abcdef";

fn keys(admin: &str, readonly: Option<&str>) -> Secrets {
    let rotating = |raw: &str| RotatingSecret::parse(&Secret::new(raw)).expect("valid keys");
    Secrets {
        admin_keys: AdminKeys {
            admin: rotating(admin),
            readonly: readonly.map(rotating),
        },
        ..secrets()
    }
}

/// Each function's own router (as Lambda serves it) under `secrets`.
fn function_apps(secrets: &Secrets, stores: &Stores) -> Vec<(&'static str, Router)> {
    function_routers_with(secrets, stores)
}

/// Every admin route of every function, with a body a write would accept.
fn admin_routes() -> Vec<(&'static str, &'static str, String, Option<Value>)> {
    let i = INSTANCE;
    let rule = json!({"name": "TikTok", "platform": "tiktok",
                      "match": {"kind": "contains", "pattern": "tiktok ad"}});
    let offer = json!({"offer_id": "shoes", "name": "Shoes",
                       "destination_url": "https://shop.example/"});
    vec![
        (
            "contacts",
            "GET",
            format!("/instances/{i}/contacts/{PHONE}"),
            None,
        ),
        ("rules", "GET", format!("/instances/{i}/widget"), None),
        (
            "rules",
            "POST",
            format!("/instances/{i}/widget"),
            Some(json!({"allowed_origins": ["https://shop.example"]})),
        ),
        ("rules", "GET", format!("/instances/{i}/rules"), None),
        (
            "rules",
            "POST",
            format!("/instances/{i}/rules"),
            Some(rule.clone()),
        ),
        (
            "rules",
            "POST",
            format!("/instances/{i}/rules/test"),
            Some(json!({"text": "hi"})),
        ),
        (
            "rules",
            "GET",
            format!("/instances/{i}/rules/01K0000000000000000000000R"),
            None,
        ),
        (
            "rules",
            "PUT",
            format!("/instances/{i}/rules/01K0000000000000000000000R"),
            Some(rule),
        ),
        (
            "rules",
            "DELETE",
            format!("/instances/{i}/rules/01K0000000000000000000000R"),
            None,
        ),
        ("rules", "GET", format!("/instances/{i}/stats"), None),
        ("contacts", "GET", format!("/instances/{i}/contacts"), None),
        (
            "rules",
            "POST",
            format!("/instances/{i}/backfill"),
            Some(json!({"days": 7, "dry_run": true})),
        ),
        (
            "rules",
            "GET",
            format!("/instances/{i}/backfill/01K0000000000000000000000J"),
            None,
        ),
        (
            "contacts",
            "DELETE",
            format!("/instances/{i}/contacts/{PHONE}"),
            None,
        ),
        ("revenue", "GET", "/offers".to_owned(), None),
        ("revenue", "POST", "/offers".to_owned(), Some(offer.clone())),
        ("revenue", "GET", "/offers/shoes".to_owned(), None),
        ("revenue", "PUT", "/offers/shoes".to_owned(), Some(offer)),
        (
            "revenue",
            "POST",
            "/sends".to_owned(),
            Some(
                json!({"instance_id": i, "contact_id": PHONE, "campaign": "c",
                        "creative": "k", "offer_id": "shoes"}),
            ),
        ),
        ("revenue", "GET", "/reports/revenue".to_owned(), None),
        (
            "revenue",
            "GET",
            format!("/instances/{i}/contacts/{PHONE}/journey"),
            None,
        ),
    ]
}

fn with_key(method: &str, path: &str, body: Option<&Value>, key: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(key) = key {
        builder = builder.header("authorization", format!("Bearer {key}"));
    }
    match body {
        Some(json) => builder
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(json).unwrap()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

fn app_of<'a>(apps: &'a [(&str, Router)], function: &str) -> &'a Router {
    &apps.iter().find(|(name, _)| *name == function).unwrap().1
}

fn authorised(status: StatusCode) -> bool {
    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_admin_key_values_open_every_admin_route_and_a_rotated_out_value_does_not() {
    let (stores, _guard) = fresh_stores(Backend::Embedded).await.unwrap();
    let rotating = function_apps(&keys(&format!("{ADMIN_NEW},{ADMIN_OLD}"), None), &stores);
    let rotated = function_apps(&keys(ADMIN_NEW, None), &stores);
    for (function, method, path, body) in admin_routes() {
        for key in [ADMIN_NEW, ADMIN_OLD] {
            let (status, answer) = call(
                app_of(&rotating, function),
                with_key(method, &path, body.as_ref(), Some(key)),
            )
            .await;
            assert!(authorised(status), "{method} {path}: {status} {answer}");
        }
        let (status, answer) = call(
            app_of(&rotated, function),
            with_key(method, &path, body.as_ref(), Some(ADMIN_OLD)),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path}: {answer}"
        );
        assert_eq!(answer["error"]["code"], "unauthorized");
        for refused in [
            None,
            Some(""),
            Some("admin-new"),
            Some(&format!("{ADMIN_NEW},{ADMIN_OLD}") as &str),
        ] {
            let (status, _) = call(
                app_of(&rotating, function),
                with_key(method, &path, body.as_ref(), refused),
            )
            .await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {refused:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readonly_key_reads_every_admin_route_and_writes_none() {
    let (stores, _guard) = fresh_stores(Backend::Embedded).await.unwrap();
    // A contact to read and (not) erase.
    let webhook = webhook_app(stores.contacts.clone());
    let delivery = whatsapp_message(INSTANCE, PHONE, "wamid.RO1", 1_767_000_000, "hello", None);
    assert_eq!(
        call(&webhook, signed_delivery(&delivery)).await.0,
        StatusCode::OK
    );
    let secrets = keys(ADMIN_NEW, Some(&format!("{READONLY_NEW},{READONLY_OLD}")));
    let apps = function_apps(&secrets, &stores);
    let mut reads = 0;
    let mut writes = 0;
    for (function, method, path, body) in admin_routes() {
        for key in [READONLY_NEW, READONLY_OLD] {
            let (status, answer) = call(
                app_of(&apps, function),
                with_key(method, &path, body.as_ref(), Some(key)),
            )
            .await;
            if method == "GET" {
                assert!(authorised(status), "{method} {path}: {status} {answer}");
                reads += 1;
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
                assert_eq!(answer["error"]["code"], "read_only_key", "{answer}");
                assert!(answer["error"]["message"].is_string());
                writes += 1;
            }
        }
        if method == "GET" {
            let head = call(
                app_of(&apps, function),
                with_key("HEAD", &path, None, Some(READONLY_NEW)),
            )
            .await;
            assert!(authorised(head.0), "HEAD {path}: {}", head.0);
        }
    }
    assert!(
        reads >= 22 && writes >= 20,
        "{reads} reads, {writes} writes"
    );
    // Nothing was written: no widget, rule, offer or send, and the contact is still there.
    let admin = |method: &str, path: &str| with_key(method, path, None, Some(ADMIN_NEW));
    let read = |function: &'static str, path: String| {
        let app = app_of(&apps, function).clone();
        async move { call(&app, admin("GET", &path)).await }
    };
    assert_eq!(
        read("rules", format!("/instances/{INSTANCE}/widget"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        read("rules", format!("/instances/{INSTANCE}/rules"))
            .await
            .1,
        json!({"rules": []})
    );
    assert_eq!(
        read("revenue", "/offers".to_owned()).await.1,
        json!({"offers": []})
    );
    let (status, contact) = read(
        "contacts",
        format!("/instances/{INSTANCE}/contacts/{PHONE}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{contact}");
    let (_, journey) = read(
        "revenue",
        format!("/instances/{INSTANCE}/contacts/{PHONE}/journey"),
    )
    .await;
    assert_eq!(journey["sends"], 0, "{journey}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_cursor_survives_a_rotation_while_the_previous_key_is_accepted() {
    let (stores, _guard) = fresh_stores(Backend::Embedded).await.unwrap();
    let webhook = webhook_app(stores.contacts.clone());
    for (n, phone) in ["15550000001", "15550000002", "15550000003"]
        .iter()
        .enumerate()
    {
        let delivery = whatsapp_message(
            INSTANCE,
            phone,
            &format!("wamid.C{n}"),
            1_767_000_000 + n as i64,
            "hi",
            None,
        );
        assert_eq!(
            call(&webhook, signed_delivery(&delivery)).await.0,
            StatusCode::OK
        );
    }
    let page = |admin: &str, key: &str, cursor: Option<&str>| {
        let apps = function_apps(&keys(admin, None), &stores);
        let app = app_of(&apps, "contacts").clone();
        let mut path = format!(
            "/instances/{INSTANCE}/contacts?limit=1&since=2025-12-01T00:00:00Z&until=2026-12-31T00:00:00Z"
        );
        if let Some(cursor) = cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let request = with_key("GET", &path, None, Some(key));
        async move { call(&app, request).await }
    };
    let (status, first) = page(ADMIN_OLD, ADMIN_OLD, None).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let before = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    // Rotated: the new key signs, the old one still verifies, whichever key the caller uses.
    let rotation = format!("{ADMIN_NEW},{ADMIN_OLD}");
    let (status, second) = page(&rotation, ADMIN_NEW, Some(&before)).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["contacts"][0]["contact_id"], "15550000002");
    let during = second["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    // The previous key dropped: cursors signed since still work, older ones no longer do.
    let (status, third) = page(ADMIN_NEW, ADMIN_NEW, Some(&during)).await;
    assert_eq!(status, StatusCode::OK, "{third}");
    assert_eq!(third["contacts"][0]["contact_id"], "15550000001");
    let (status, stale) = page(ADMIN_NEW, ADMIN_NEW, Some(&before)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{stale}");
    assert_eq!(stale["error"]["field"], "cursor");
}

/// This binary's subscriber: JSON lines into one buffer, at the default level, as in Lambda.
fn captured() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new("info"))
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_target(true)
                    .with_writer(move || writer.clone()),
            );
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        captured
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_write_logs_one_audit_line_naming_the_key_never_holding_it() {
    // Other tests of this binary log too: this one's lines are those inside its span, which
    // exists only once the subscriber does.
    let _ = captured();
    admin_writes_and_reads()
        .instrument(tracing::info_span!("audited"))
        .await;
    let text = String::from_utf8(captured().0.lock().unwrap().clone()).unwrap();
    let audit: Vec<Value> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["target"] == "audit" && line["span"]["name"] == "audited")
        .collect();
    let writes = admin_routes()
        .into_iter()
        .filter(|(_, method, _, _)| *method != "GET")
        .collect::<Vec<_>>();
    assert_eq!(audit.len(), writes.len() * 3, "{audit:#?}");
    for (function, method, path, _) in &writes {
        let route_of = |line: &Value| {
            line["fields"]["method"] == *method
                && path_matches(line["fields"]["route"].as_str().unwrap(), path)
        };
        let lines: Vec<&Value> = audit.iter().filter(|line| route_of(line)).collect();
        let keys: Vec<&str> = lines
            .iter()
            .map(|line| line["fields"]["key"].as_str().unwrap())
            .collect();
        assert_eq!(
            keys,
            ["admin", "admin_previous", "readonly"],
            "{function} {method} {path}"
        );
        let refused = lines[2];
        assert_eq!(refused["fields"]["status"], 403);
        assert!(
            lines[0]["fields"]["status"].as_u64().unwrap() < 500,
            "{:?}",
            lines[0]
        );
        for line in &lines {
            let object = line["fields"]["object"].as_str().unwrap();
            if path.contains("/instances/") {
                assert!(
                    object.contains(&format!("instance_id={INSTANCE}")),
                    "{line}"
                );
            }
            if path.contains(&format!("contacts/{PHONE}")) {
                assert!(object.contains("contact_id=***1234"), "{line}");
            }
        }
    }
    // What the handlers created is named too.
    let created = |route: &str| {
        audit
            .iter()
            .find(|line| line["fields"]["route"] == route && line["fields"]["key"] == "admin")
            .and_then(|line| line["fields"]["created"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(created("/instances/{instance_id}/rules").starts_with("rule_id="));
    assert_eq!(created("/offers"), "offer_id=shoes");
    for secret in [
        ADMIN_NEW,
        ADMIN_OLD,
        READONLY_NEW,
        "wrong-key-424242",
        PHONE,
    ] {
        assert!(!text.contains(secret), "{secret} was logged");
    }
}

/// Every admin write with each key (and a wrong one), then every read.
async fn admin_writes_and_reads() {
    let (stores, _guard) = fresh_stores(Backend::Embedded).await.unwrap();
    let secrets = keys(&format!("{ADMIN_NEW},{ADMIN_OLD}"), Some(READONLY_NEW));
    let apps = function_apps(&secrets, &stores);
    for (function, method, path, body) in admin_routes().iter().filter(|route| route.1 != "GET") {
        let app = app_of(&apps, function);
        for key in [ADMIN_NEW, ADMIN_OLD, READONLY_NEW] {
            call(app, with_key(method, path, body.as_ref(), Some(key))).await;
        }
        // Reads and refused keys leave no audit line.
        call(
            app,
            with_key(method, path, body.as_ref(), Some("wrong-key-424242")),
        )
        .await;
    }
    for (function, method, path, _) in admin_routes().iter().filter(|route| route.1 == "GET") {
        call(
            app_of(&apps, function),
            with_key(method, path, None, Some(ADMIN_NEW)),
        )
        .await;
    }
}

/// Whether an audit line's route template (`/offers/{offer_id}`) is the one `path` was sent to.
fn path_matches(template: &str, path: &str) -> bool {
    let (template, path): (Vec<&str>, Vec<&str>) =
        (template.split('/').collect(), path.split('/').collect());
    template.len() == path.len()
        && template
            .iter()
            .zip(&path)
            .all(|(t, p)| t == p || t.starts_with('{'))
}
