//! The web chat widget through the HTTP surface: widget keys and their origins (CORS), web
//! contacts with first-touch UTMs and click ids, and ref codes that carry a visit into WhatsApp
//! ahead of the text rules — on every store, with the in-process matcher.

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use integration_tests::*;
use serde_json::{Value, json};
use shared::contact::store::ContactQueries;
use shared::ids::InstanceId;
use shared::time::Timestamp;
use shared::web::{RefCode, WebVisit};
use std::time::Duration;
use tower::ServiceExt;

on_every_store!(
    widget_keys_are_issued_shown_and_rotated,
    cors_allows_exactly_the_instances_origins,
    a_widget_event_creates_a_web_contact_with_its_first_touch,
    bad_widget_input_is_refused_and_changes_nothing,
    a_ref_code_carries_the_visit_into_whatsapp_ahead_of_the_rules,
    unknown_foreign_and_expired_ref_codes_are_ignored,
    the_widget_store_keeps_configs_and_refuses_a_taken_ref_code,
);

/// The store contract of `WidgetStore`, on each implementation.
async fn the_widget_store_keeps_configs_and_refuses_a_taken_ref_code(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let instance = InstanceId::parse(INSTANCE).unwrap();
    assert_eq!(stores.widgets.load_widget(&instance).await.unwrap(), None);
    let config =
        shared::web::WidgetConfig::new(instance.clone(), &[SHOP.to_owned()], Timestamp::now())
            .unwrap();
    stores.widgets.save_widget(&config).await.unwrap();
    assert_eq!(
        stores.widgets.load_widget(&instance).await.unwrap(),
        Some(config.clone())
    );
    let rotated =
        shared::web::WidgetConfig::new(instance.clone(), &[SHOP.to_owned()], Timestamp::now())
            .unwrap();
    stores.widgets.save_widget(&rotated).await.unwrap();
    assert_eq!(
        stores.widgets.load_widget(&instance).await.unwrap(),
        Some(rotated)
    );
    let visit =
        WebVisit::from_page("https://shop.example/?utm_source=a", None, Timestamp::now()).unwrap();
    let code = RefCode::new(
        instance.clone(),
        "v".into(),
        visit.clone(),
        Timestamp::now(),
    );
    assert!(stores.widgets.create_ref(&code).await.unwrap());
    let mut same_code = RefCode::new(instance, "w".into(), visit, Timestamp::now());
    same_code.code = code.code.clone();
    assert!(
        !stores.widgets.create_ref(&same_code).await.unwrap(),
        "a taken code is refused"
    );
    assert_eq!(
        stores.widgets.load_ref(&code.code).await.unwrap(),
        Some(code)
    );
    assert_eq!(stores.widgets.load_ref("00000000").await.unwrap(), None);
}

const INSTANCE: &str = "106540352242922";
const OTHER_INSTANCE: &str = "999000111222333";
const SHOP: &str = "https://shop.example";

struct Site {
    app: Router,
    stores: Stores,
    key: String,
    _guard: StoreGuard,
}

async fn site(backend: Backend) -> Option<Site> {
    let (stores, guard) = fresh_stores(backend).await?;
    let app = engine_app(&stores).app;
    let key = configure_widget(&app, INSTANCE, &[SHOP]).await;
    Some(Site {
        app,
        stores,
        key,
        _guard: guard,
    })
}

fn visit(visitor: &str, page_url: &str, referrer: Option<&str>) -> Value {
    let mut body = json!({"instance_id": INSTANCE, "visitor_id": visitor, "page_url": page_url});
    if let Some(referrer) = referrer {
        body["referrer"] = json!(referrer);
    }
    body
}

async fn widget_keys_are_issued_shown_and_rotated(backend: Backend) {
    let Some(site) = site(backend).await else {
        return;
    };
    assert!(site.key.starts_with("wk_") && site.key.len() > 20);
    let (status, shown) = call(
        &site.app,
        admin_get(&format!("/instances/{INSTANCE}/widget")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["widget_key"], site.key.as_str());
    assert_eq!(shown["allowed_origins"], json!([SHOP]));
    let rotated = configure_widget(&site.app, INSTANCE, &[SHOP, "https://blog.shop.example"]).await;
    assert_ne!(rotated, site.key);
    let (status, _, _) = widget_post(
        &site.app,
        "/webhooks/widget",
        Some(SHOP),
        &site.key,
        visit("v1", "https://shop.example/", None),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the old key stops working");
    let (status, allowed, _) = widget_post(
        &site.app,
        "/webhooks/widget",
        Some("https://blog.shop.example"),
        &rotated,
        visit("v1", "https://blog.shop.example/", None),
    )
    .await;
    assert_eq!(
        (status, allowed.as_deref()),
        (StatusCode::OK, Some("https://blog.shop.example"))
    );
    let (status, body) = call(
        &site.app,
        admin_get(&format!("/instances/{OTHER_INSTANCE}/widget")),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("widget_not_found"))
    );
    let (status, _) = call(
        &site.app,
        Request::get(format!("/instances/{INSTANCE}/widget"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn cors_allows_exactly_the_instances_origins(backend: Backend) {
    let Some(site) = site(backend).await else {
        return;
    };
    let preflight = |origin: &'static str, query: &'static str| {
        let app = site.app.clone();
        async move {
            let request = Request::builder()
                .method("OPTIONS")
                .uri(format!("/webhooks/widget{query}"))
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "content-type,x-widget-key",
                )
                .body(Body::empty())
                .unwrap();
            app.oneshot(request).await.unwrap()
        }
    };
    let allowed = preflight(SHOP, "?instance_id=106540352242922").await;
    assert_eq!(allowed.status(), StatusCode::NO_CONTENT);
    let headers = allowed.headers();
    assert_eq!(headers["access-control-allow-origin"], SHOP);
    assert!(
        headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("x-widget-key")
    );
    assert_eq!(headers["access-control-allow-methods"], "POST");
    for (origin, query) in [
        ("https://evil.example", "?instance_id=106540352242922"),
        (
            "https://shop.example.evil.example",
            "?instance_id=106540352242922",
        ),
        (SHOP, ""),
        (SHOP, "?instance_id=999000111222333"),
    ] {
        let refused = preflight(origin, query).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{origin} {query}");
        assert!(
            refused
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
    }
    let body = visit("v1", "https://shop.example/", None);
    for (origin, key) in [
        (Some("https://evil.example"), site.key.as_str()),
        (Some(SHOP), "wk_wrong"),
        (None, site.key.as_str()),
    ] {
        let (status, allowed, answer) =
            widget_post(&site.app, "/webhooks/widget", origin, key, body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{origin:?} {key}");
        assert_eq!(allowed, None);
        assert_eq!(answer["error"]["code"], "widget_forbidden");
    }
    assert!(
        contact(&site.app, INSTANCE, "web:v1").await.is_none(),
        "refused calls write nothing"
    );
}

async fn a_widget_event_creates_a_web_contact_with_its_first_touch(backend: Backend) {
    let Some(site) = site(backend).await else {
        return;
    };
    let landing = "https://shop.example/shoes?utm_source=Newsletter&utm_medium=email&utm_campaign=spring%20sale&utm_term=red+shoes&utm_content=hero&gclid=Cj0KCQ&fbclid=IwAR&utm_source=ignored#section";
    let mut first = visit("visitor-1", landing, Some("https://mail.example.com/inbox"));
    first["message"] = json!("Hello, is this in stock?");
    let (status, allowed, answer) =
        widget_post(&site.app, "/webhooks/widget", Some(SHOP), &site.key, first).await;
    assert_eq!(
        (status, allowed.as_deref()),
        (StatusCode::OK, Some(SHOP)),
        "{answer}"
    );
    assert_eq!(
        answer,
        json!({"instance_id": INSTANCE, "visitor_id": "visitor-1", "contact_id": "web:visitor-1", "event_id": answer["event_id"]}),
        "the answer holds what the request brought, nothing stored"
    );
    let web_contact = contact(&site.app, INSTANCE, "web:visitor-1").await.unwrap();
    assert_eq!(web_contact["channel"], "web");
    let acquisition = &web_contact["acquisition"];
    assert_eq!(
        acquisition["platform"], "google",
        "a click id names the platform before utm_source"
    );
    assert_eq!(
        acquisition["utm"],
        json!({"source": "Newsletter", "medium": "email", "campaign": "spring sale", "term": "red shoes", "content": "hero"})
    );
    assert_eq!(
        acquisition["click_ids"],
        json!({"gclid": "Cj0KCQ", "fbclid": "IwAR"})
    );
    assert_eq!(acquisition["referrer"], "https://mail.example.com/inbox");
    assert_eq!(acquisition["color"], "#FBBC05");
    assert_eq!(
        web_contact["first_message"]["text"],
        "Hello, is this in stock?"
    );
    // A later visit from elsewhere is a touch, not a new acquisition.
    let (status, _, _) = widget_post(
        &site.app,
        "/webhooks/widget",
        Some(SHOP),
        &site.key,
        visit(
            "visitor-1",
            "https://shop.example/?utm_source=tiktok&ttclid=9",
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let again = contact(&site.app, INSTANCE, "web:visitor-1").await.unwrap();
    assert_eq!(again["acquisition"]["platform"], "google");
    assert_eq!(again["touches"].as_array().unwrap().len(), 2);
    // A visit with nothing to say is direct; counters see web contacts by platform.
    widget_post(
        &site.app,
        "/webhooks/widget",
        Some(SHOP),
        &site.key,
        visit("visitor-2", "https://shop.example/", None),
    )
    .await;
    assert_eq!(
        contact(&site.app, INSTANCE, "web:visitor-2").await.unwrap()["acquisition"]["platform"],
        "direct"
    );
    let counters = site
        .stores
        .contacts
        .load_counters(
            &InstanceId::parse(INSTANCE).unwrap(),
            &Timestamp::now().day(),
        )
        .await
        .unwrap();
    assert_eq!(counters["kind:web"], 2);
    assert_eq!(counters["platform:google"], 1);
    assert_eq!(counters["platform:direct"], 1);
    assert_eq!(counters["new_contacts"], 2);
}

async fn bad_widget_input_is_refused_and_changes_nothing(backend: Backend) {
    let Some(site) = site(backend).await else {
        return;
    };
    let long = format!("https://shop.example/?q={}", "x".repeat(8 * 1024));
    for (body, field) in [
        (visit("v1", "not a url", None), "page_url"),
        (visit("v1", "javascript:alert(1)", None), "page_url"),
        (visit("v1", &long, None), "page_url"),
        (visit("v1", "https://shop.example/", Some("::")), "referrer"),
        (
            visit("has space", "https://shop.example/", None),
            "visitor_id",
        ),
        (
            json!({"instance_id": INSTANCE, "page_url": "https://shop.example/"}),
            "visitor_id",
        ),
        (
            json!({"instance_id": INSTANCE, "visitor_id": "v1", "page_url": "https://shop.example/", "message": 5}),
            "message",
        ),
    ] {
        let (status, allowed, answer) =
            widget_post(&site.app, "/webhooks/widget", Some(SHOP), &site.key, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
        assert_eq!(allowed.as_deref(), Some(SHOP), "the widget can read why");
    }
    assert!(contact(&site.app, INSTANCE, "web:v1").await.is_none());
    for origins in [
        json!([]),
        json!(["https://shop.example/path"]),
        json!("https://shop.example"),
        json!([5]),
    ] {
        let (status, answer) = call(
            &site.app,
            admin_request(
                "POST",
                &format!("/instances/{INSTANCE}/widget"),
                Some(json!({"allowed_origins": origins})),
            ),
        )
        .await;
        assert_eq!(
            (status, answer["error"]["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some("allowed_origins")),
            "{answer}"
        );
    }
    let (_, shown) = call(
        &site.app,
        admin_get(&format!("/instances/{INSTANCE}/widget")),
    )
    .await;
    assert_eq!(
        shown["widget_key"],
        site.key.as_str(),
        "a refused configuration keeps the key"
    );
}

async fn rule(app: &Router, instance: &str, kind: &str, pattern: &str) {
    let (status, body) = call(app, admin_request("POST", &format!("/instances/{instance}/rules"),
        Some(json!({"name": "TikTok", "platform": "tiktok", "match": {"kind": kind, "pattern": pattern}, "campaign": "tt"})))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn whatsapp_first_message(app: &Router, instance: &str, wa_id: &str, text: &str) -> Value {
    let body = whatsapp_message(
        instance,
        wa_id,
        &format!("wamid.{wa_id}"),
        Timestamp::now().unix_seconds(),
        text,
        None,
    );
    let (status, report) = call(app, signed_delivery(&body)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    for _ in 0..200 {
        let seen = contact(app, instance, wa_id).await.unwrap_or(Value::Null);
        if seen.get("rules_checked_at").is_some() || !seen["acquisition"].is_null() {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the matcher did not decide on {wa_id}");
}

async fn a_ref_code_carries_the_visit_into_whatsapp_ahead_of_the_rules(backend: Backend) {
    let Some(site) = site(backend).await else {
        return;
    };
    rule(&site.app, INSTANCE, "contains", "red shoes").await;
    let (status, allowed, answer) = widget_post(
        &site.app,
        "/webhooks/widget/ref",
        Some(SHOP),
        &site.key,
        visit(
            "visitor-9",
            "https://shop.example/?utm_source=google&utm_campaign=brand&gclid=XYZ",
            None,
        ),
    )
    .await;
    assert_eq!(
        (status, allowed.as_deref()),
        (StatusCode::OK, Some(SHOP)),
        "{answer}"
    );
    let code = answer["ref"].as_str().unwrap();
    assert_eq!(code.len(), 8);
    assert_eq!(answer["text_suffix"], format!(" [ref:{code}]"));
    // The visitor's wa.me text: the site's pre-filled message, which a rule would also match.
    let text = format!(
        "Hi, I want the red shoes{}",
        answer["text_suffix"].as_str().unwrap()
    );
    let contact = whatsapp_first_message(&site.app, INSTANCE, "5511987654321", &text).await;
    let acquisition = &contact["acquisition"];
    assert_eq!(acquisition["kind"], "web", "{contact}");
    assert_eq!(acquisition["via"], "wa.me");
    assert_eq!(acquisition["ref_code"], code);
    assert_eq!(acquisition["platform"], "google");
    assert_eq!(acquisition["utm"]["campaign"], "brand");
    assert_eq!(acquisition["click_ids"]["gclid"], "XYZ");
    assert_eq!(contact["channel"], "whatsapp");
    // Without the code the same text goes to the rule.
    let plain = whatsapp_first_message(
        &site.app,
        INSTANCE,
        "5511900000002",
        "Hi, I want the red shoes",
    )
    .await;
    assert_eq!(plain["acquisition"]["kind"], "rule");
    // A code the sender's keyboard capitalised is still the same code.
    let shouted = format!("Hi, I want the red shoes [ref:{}]", code.to_uppercase());
    let capitalised = whatsapp_first_message(&site.app, INSTANCE, "5511900000003", &shouted).await;
    assert_eq!(
        capitalised["acquisition"]["ref_code"], code,
        "{capitalised}"
    );
}

async fn unknown_foreign_and_expired_ref_codes_are_ignored(backend: Backend) {
    let Some(site) = site(backend).await else {
        return;
    };
    // An exact rule: the rules read the text without its ref code.
    rule(&site.app, INSTANCE, "exact", "I like the shoes").await;
    // A code made for another instance.
    let other_key = configure_widget(&site.app, OTHER_INSTANCE, &[SHOP]).await;
    let mut body = visit("v", "https://shop.example/?utm_source=x", None);
    body["instance_id"] = json!(OTHER_INSTANCE);
    let (status, _, foreign) = widget_post(
        &site.app,
        "/webhooks/widget/ref",
        Some(SHOP),
        &other_key,
        body,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // A code of this instance that expired yesterday.
    let visit = WebVisit::from_page(
        "https://shop.example/?utm_source=old",
        None,
        Timestamp::now(),
    )
    .unwrap();
    let long_ago = Timestamp::now().plus_seconds(-31 * 24 * 60 * 60);
    let expired = RefCode::new(
        InstanceId::parse(INSTANCE).unwrap(),
        "v".into(),
        visit,
        long_ago,
    );
    assert!(site.stores.widgets.create_ref(&expired).await.unwrap());
    for (wa_id, code) in [
        ("5511900000011", "zzzzzzzz".to_owned()),
        ("5511900000012", foreign["ref"].as_str().unwrap().to_owned()),
        ("5511900000013", expired.code.clone()),
    ] {
        let contact = whatsapp_first_message(
            &site.app,
            INSTANCE,
            wa_id,
            &format!("I like the shoes [ref:{code}]"),
        )
        .await;
        assert_eq!(contact["acquisition"]["kind"], "rule", "{code}: {contact}");
    }
}
