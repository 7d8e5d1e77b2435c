//! The dashboard's Ads page through its routes, on every store: its table is the ads report
//! API's for each grouping, its refusals are the API's, the import form (multipart, CSRF,
//! admin only, the API's body limit rather than the forms' 16 KiB) stores what
//! `POST /spend/import` stores.

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use integration_tests::*;
use serde_json::Value;
use std::path::PathBuf;
use tower::ServiceExt;

on_every_store!(
    the_ads_page_is_the_report_apis_for_each_grouping,
    bad_parameters_are_a_400_page_with_the_apis_message,
    the_import_form_stores_an_export_as_the_api_does,
    the_import_needs_the_csrf_token_and_the_admin_key,
    the_contact_panel_names_the_ad_as_the_contact_api_does,
);

async fn the_contact_panel_names_the_ad_as_the_contact_api_does(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    let app = &engine.app;
    let now = shared::time::Timestamp::now();
    let delivery = whatsapp_message(
        "111",
        "16505552000",
        "wamid.panel",
        now.unix_seconds(),
        "hi",
        Some(ctwa_referral("120230011223344556")),
    );
    deliver_until_accepted(app, &delivery).await;
    let row = serde_json::json!([{"date": now.day(), "platform": "meta", "campaign": "CTWA Verao", "ad_set": "Sudeste 25-44",
                                  "ad_id": "120230011223344556", "ad_name": "Video A", "spend": "1", "currency": "BRL"}]);
    assert_eq!(
        call(app, admin_request("POST", "/spend", Some(row)))
            .await
            .0,
        StatusCode::OK
    );
    let cookie = dashboard_cookie(app, ADMIN_KEY).await;
    let (status, page) = get_page(app, "/app/instances/111/contacts/16505552000", &cookie).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let api = contact(app, "111", "16505552000").await.unwrap();
    for field in ["ad_name", "ad_set_name", "campaign_name"] {
        let shown = format!(
            "data-field=\"{field}\">{}<",
            api["acquisition"][field].as_str().unwrap()
        );
        assert!(page.contains(&shown), "{field}: {page}");
    }
    // The listing names it too, from the same one lookup a page.
    let (status, listing) = get_page(app, "/app/instances/111/contacts", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        listing.contains("data-ad-name>Video A · CTWA Verao<"),
        "{listing}"
    );
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn get_page(app: &Router, path: &str, cookie: &str) -> (StatusCode, String) {
    let request = Request::get(path)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap();
    send(app, request).await
}

fn csrf(body: &str) -> String {
    let at = body.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    body[at..at + body[at..].find('"').unwrap()].to_owned()
}

fn spend_fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/spend")
            .join(name),
    )
    .unwrap()
}

/// A multipart upload as a browser sends the import form.
fn upload(cookie: &str, token: &str, platform: &str, file: &[u8]) -> Request<Body> {
    let boundary = "----formboundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, value) in [("csrf", token), ("platform", platform)] {
        body.extend(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"export.csv\"\r\nContent-Type: text/csv\r\n\r\n").as_bytes());
    body.extend(file);
    body.extend(format!("\r\n--{boundary}--\r\n").as_bytes());
    Request::post("/app/ads/import")
        .header(header::COOKIE, cookie)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .unwrap()
}

/// The spend and conversations of each table row, `key currency` → (spend, conversations).
fn table_rows(page: &str) -> Vec<(String, String, String)> {
    let mut rows = Vec::new();
    for chunk in page.split("<tr data-row=\"").skip(1) {
        let key = chunk[..chunk.find('"').unwrap()].to_owned();
        let cell = |marker: &str| {
            let at = chunk.find(marker).unwrap() + marker.len();
            chunk[at..at + chunk[at..].find('<').unwrap()].to_owned()
        };
        rows.push((key, cell("data-spend>"), cell("data-conversations>")));
    }
    rows
}

fn api_rows(report: &Value) -> Vec<(String, String, String)> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .chain(report["totals"].as_array().unwrap())
        .map(|row| {
            let currency = row["currency"].as_str().unwrap_or("—");
            (
                format!("{} {currency}", row["key"].as_str().unwrap()),
                row["spend"].as_str().unwrap().to_owned(),
                row["conversations"].to_string(),
            )
        })
        .collect()
}

const WEEK: &str = "since=2026-11-24&until=2026-11-30";

async fn the_ads_page_is_the_report_apis_for_each_grouping(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    let app = &engine.app;
    for (platform, file) in [
        ("google", "google_ads_campaign_report.csv"),
        ("meta", "meta_ads_manager_export.csv"),
    ] {
        let request = Request::post(format!("/spend/import?platform={platform}"))
            .header("authorization", format!("Bearer {ADMIN_KEY}"))
            .body(Body::from(spend_fixture(file)))
            .unwrap();
        assert_eq!(send(app, request).await.0, StatusCode::OK);
    }
    let cookie = dashboard_cookie(app, ADMIN_KEY).await;
    for grouping in ["platform", "campaign", "ad", "day"] {
        let (status, page) = get_page(
            app,
            &format!("/app/ads?group_by={grouping}&{WEEK}"),
            &cookie,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let (_, api) = call(
            app,
            admin_get(&format!("/reports/ads?group_by={grouping}&{WEEK}")),
        )
        .await;
        assert_eq!(table_rows(&page), api_rows(&api), "{grouping}");
    }
    let (_, page) = get_page(app, &format!("/app/ads?{WEEK}"), &cookie).await;
    assert!(page.contains("data-chart=\"spend-BRL\"") && page.contains("data-chart=\"spend-USD\""));
    assert!(page.contains("class=\"bar spend-bar\""));
    assert!(!page.contains("style="), "the CSP refuses style attributes");
    assert!(
        page.contains("data-note=\"web-campaigns\"") && page.contains("campaign list"),
        "the page names how web visits come to count"
    );
}

async fn bad_parameters_are_a_400_page_with_the_apis_message(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    let app = &engine.app;
    let cookie = dashboard_cookie(app, ADMIN_KEY).await;
    for query in [
        "group_by=offer",
        "group_by=day&since=2026-13-01",
        "group_by=day&since=2026-11-30&until=2026-11-01",
        "group_by=day&instance_id=a%20b",
    ] {
        let (status, page) = get_page(app, &format!("/app/ads?{query}"), &cookie).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        let (_, api) = call(app, admin_get(&format!("/reports/ads?{query}"))).await;
        let message = api["error"]["message"].as_str().unwrap();
        // As askama escapes it.
        let shown = message
            .replace('&', "&amp;")
            .replace('"', "&#34;")
            .replace('\'', "&#39;");
        assert!(
            page.contains(&shown) || page.contains(message),
            "{query}: {message}"
        );
    }
    let (status, _) = get_page(app, "/app/ads", "dash_session=forged").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "no session, no page");
}

async fn the_import_form_stores_an_export_as_the_api_does(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    let app = &engine.app;
    let cookie = dashboard_cookie(app, ADMIN_KEY).await;
    let (_, page) = get_page(app, "/app/ads", &cookie).await;
    let token = csrf(&page);
    // Larger than the forms' 16 KiB: the import takes the API's limit.
    let mut file = spend_fixture("google_ads_campaign_report.csv");
    file.extend(b"\n".repeat(20 * 1024));
    let (status, page) = send(app, upload(&cookie, &token, "google", &file)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("data-imported>4<") && page.contains("data-replaced>0<"),
        "{page}"
    );
    assert!(page.contains("Line 8: a total row"), "{page}");
    let (_, api) = call(
        app,
        admin_get(&format!("/reports/ads?group_by=campaign&{WEEK}")),
    )
    .await;
    assert_eq!(api["totals"][0]["spend"], "2512.85");
    let (status, page) = send(
        app,
        upload(
            &cookie,
            &token,
            "tiktok",
            &spend_fixture("tiktok_ads_no_usable_row.csv"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("line 3: no currency"), "{page}");
}

async fn the_import_needs_the_csrf_token_and_the_admin_key(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    let app = &engine.app;
    let file = spend_fixture("tiktok_ads_export.csv");
    let admin = dashboard_cookie(app, ADMIN_KEY).await;
    let (status, _) = send(app, upload(&admin, "not-the-token", "tiktok", &file)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let readonly_app = dashboard_app(&stores);
    let readonly = dashboard_cookie(&readonly_app, READONLY_KEY).await;
    let (_, page) = get_page(&readonly_app, "/app/ads", &readonly).await;
    assert!(
        !page.contains("/app/ads/import"),
        "a read-only session sees no import form"
    );
    let token = {
        let (_, any) = get_page(&readonly_app, "/app/instances", &readonly).await;
        csrf(&any)
    };
    let (status, _) = send(&readonly_app, upload(&readonly, &token, "tiktok", &file)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, api) = call(
        app,
        admin_get("/reports/ads?group_by=day&since=2026-11-24&until=2026-11-30"),
    )
    .await;
    assert_eq!(api["rows"], serde_json::json!([]), "nothing stored");
}
