//! The dashboard's Analytics and Revenue pages through their routes, on every store: their
//! numbers are the stats API's for each window and the report API's for each grouping, the bars
//! carry the platforms' colour classes, and a bad parameter is a 400 page.

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use integration_tests::*;
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tower::ServiceExt;

on_every_store!(
    the_analytics_numbers_are_the_stats_apis_for_each_window,
    the_platform_bars_carry_their_colour_classes,
    a_bad_days_parameter_is_a_400_page,
    the_analytics_page_needs_a_session,
    the_revenue_page_is_the_report_apis_for_each_grouping,
    bad_report_parameters_are_a_400_page_with_the_apis_message,
    the_revenue_page_compares_the_models_as_the_api_gives_them,
);

const INSTANCE: &str = "106540352242922";

/// (status, content type, body) of a GET with `cookie`.
async fn get_page(app: &Router, path: &str, cookie: &str) -> (StatusCode, String, String) {
    let request = Request::builder()
        .uri(path)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let kind = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, kind, String::from_utf8_lossy(&bytes).into_owned())
}

/// The session cookie of a sign-in with the admin key.
async fn sign_in(app: &Router) -> String {
    dashboard_cookie(app, ADMIN_KEY).await
}

/// The number in the element marked `attribute="name"`.
fn marked(body: &str, attribute: &str, name: &str) -> u64 {
    let marker = format!("{attribute}=\"{name}\">");
    let at = body
        .find(&marker)
        .unwrap_or_else(|| panic!("{attribute}={name} not shown"))
        + marker.len();
    body[at..at + body[at..].find('<').unwrap()]
        .parse()
        .unwrap()
}

/// A rule for TikTok, then contacts: a Meta ad today, two TikTok texts (today and 10 days ago,
/// so the 7-day window differs from the others), one text no rule matches; and the stats API
/// once the matcher has counted them all.
async fn seeded_engine(stores: &Stores) -> local_server::LocalEngine {
    let engine = engine_app(stores);
    let app = &engine.app;
    let rule = json!({"name": "TikTok", "platform": "tiktok", "match": {"kind": "contains", "pattern": "tiktok"}});
    let (status, _) = call(
        app,
        admin_request("POST", &format!("/instances/{INSTANCE}/rules"), Some(rule)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let now = chrono::Utc::now().timestamp();
    for (contact, text, at, referral) in [
        ("3001", "hello", now - 60, Some(ctwa_referral("ad-1"))),
        ("3002", "saw your tiktok", now - 60, None),
        ("3003", "tiktok earlier", now - 10 * 86_400, None),
        ("3004", "just hi", now - 60, None),
    ] {
        let body = whatsapp_message(
            INSTANCE,
            contact,
            &format!("wamid.{contact}"),
            at,
            text,
            referral,
        );
        let (status, report) = call(app, signed_delivery(&body)).await;
        assert_eq!(status, StatusCode::OK, "{report}");
    }
    for _ in 0..200 {
        let (_, stats) = call(
            app,
            admin_get(&format!("/instances/{INSTANCE}/stats?days=90")),
        )
        .await;
        if stats["click_to_chat_contacts"] == 3 {
            return engine;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the matcher did not count the contacts");
}

async fn the_analytics_numbers_are_the_stats_apis_for_each_window(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = seeded_engine(&stores).await;
    let app = &engine.app;
    let cookie = sign_in(app).await;
    let mut seen = Vec::new();
    for days in [7, 30, 90] {
        let (_, stats) = call(
            app,
            admin_get(&format!("/instances/{INSTANCE}/stats?days={days}")),
        )
        .await;
        let path = format!("/app/instances/{INSTANCE}/analytics?days={days}");
        let (status, _, body) = get_page(app, &path, &cookie).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for stat in ["new_contacts", "click_to_chat_contacts", "meta_ads"] {
            assert_eq!(
                json!(marked(&body, "data-stat", stat)),
                stats[stat],
                "{days} {stat}"
            );
        }
        for platform in stats["by_platform"].as_array().unwrap() {
            let name = platform["platform"].as_str().unwrap();
            assert_eq!(
                json!(marked(&body, "data-count", name)),
                platform["contacts"],
                "{days} {name}"
            );
        }
        let by_kind = &stats["by_kind"];
        for (label, api) in [
            ("Meta ads", &by_kind["meta_ad"]),
            ("Rules", &by_kind["rule"]),
            ("Web", &by_kind["web"]),
            ("Unattributed", &stats["unmatched"]),
        ] {
            assert_eq!(
                json!(marked(&body, "data-count", label)),
                *api,
                "{days} {label}"
            );
        }
        // One row per day of the window, the rules' contacts summing to the API's.
        let day_rows = body.matches("<tr data-day=").count();
        assert_eq!(day_rows, days, "{days}");
        seen.push(stats["matched_by_rules"].as_u64().unwrap());
    }
    assert_eq!(
        seen,
        [1, 2, 2],
        "the 10-day-old contact is outside the 7-day window only"
    );
}

async fn the_platform_bars_carry_their_colour_classes(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = seeded_engine(&stores).await;
    let app = &engine.app;
    let cookie = sign_in(app).await;
    let (_, stats) = call(
        app,
        admin_get(&format!("/instances/{INSTANCE}/stats?days=30")),
    )
    .await;
    let path = format!("/app/instances/{INSTANCE}/analytics?days=30");
    let (_, _, body) = get_page(app, &path, &cookie).await;
    let platforms: Vec<&Value> = stats["by_platform"].as_array().unwrap().iter().collect();
    assert!(
        platforms.iter().any(|p| p["platform"] == "tiktok"),
        "{stats}"
    );
    for platform in platforms {
        let name = platform["platform"].as_str().unwrap();
        assert!(
            body.contains(&format!("class=\"bar platform-{name}\"")),
            "{name}"
        );
    }
    // The classes' colours are the API's: the platform stylesheet the page links defines them.
    let at = body.find("/app/assets/platforms.").unwrap();
    let href = &body[at..at + body[at..].find('"').unwrap()];
    let (status, _, css) = get_page(app, href, &cookie).await;
    assert_eq!(status, StatusCode::OK);
    for platform in stats["by_platform"].as_array().unwrap() {
        let rule = format!(
            ".platform-{} {{ fill: {}; }}",
            platform["platform"].as_str().unwrap(),
            platform["color"].as_str().unwrap()
        );
        assert!(css.contains(&rule), "{rule}");
    }
    assert!(!body.contains("style="), "the CSP refuses style attributes");
}

async fn a_bad_days_parameter_is_a_400_page(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = &dashboard_app(&stores);
    let cookie = sign_in(app).await;
    for query in [
        "days=8",
        "days=1",
        "days=0",
        "days=abc",
        "days=",
        "days=-7",
        "days=%FF",
        "days=99999999999999999999",
    ] {
        let path = format!("/app/instances/{INSTANCE}/analytics?{query}");
        let (status, kind, body) = get_page(app, &path, &cookie).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(kind.starts_with("text/html"), "{query}: {kind}");
        assert!(body.contains("days must be 7, 30 or 90"), "{query}: {body}");
    }
    let (status, _, body) = get_page(
        app,
        &format!("/app/instances/{INSTANCE}/analytics"),
        &cookie,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("the last 7 days"), "7 by default");
}

async fn the_analytics_page_needs_a_session(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = &dashboard_app(&stores);
    let path = format!("/app/instances/{INSTANCE}/analytics");
    let (status, _, _) = get_page(app, &path, "dash_session=forged").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

/// Two sends of one offer, a click on the first and two conversions (USD and EUR) through the
/// local server's composition.
async fn revenue_engine(stores: &Stores) -> local_server::LocalEngine {
    let engine = engine_app(stores);
    let app = &engine.app;
    let offer = json!({"offer_id": "o1", "name": "Offer", "click_window_days": 30,
        "view_window_days": 7, "destination_url": "https://shop.example/o1?aff={click_id}"});
    let (status, body) = call(app, admin_request("POST", "/offers", Some(offer))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut codes = Vec::new();
    for (contact, message) in [("c1", "m1"), ("c2", "m2")] {
        let send = json!({"instance_id": INSTANCE, "contact_id": contact, "message_id": message,
            "campaign": "spring", "creative": "k", "offer_id": "o1"});
        let (status, body) = call(app, admin_request("POST", "/sends", Some(send))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let url = body["tracked_url"].as_str().unwrap();
        codes.push(url.rsplit_once("/c/").unwrap().1.to_owned());
    }
    let visitor = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)), 50_000);
    let click = Request::get(format!("/c/{}", codes[0]))
        .header(
            "user-agent",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
        )
        .extension(axum::extract::ConnectInfo(visitor))
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(click).await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()[header::LOCATION].to_str().unwrap();
    let click_id = location.rsplit_once("aff=").unwrap().1.to_owned();
    for query in [
        format!("click_id={click_id}&conversion_id=A&payout=12.50"),
        format!("click_id={click_id}&conversion_id=B&payout=3.05&currency=eur"),
        // c2 was sent the offer and never clicked: view-through.
        format!("instance_id={INSTANCE}&contact_id=c2&offer_id=o1&conversion_id=V&payout=4"),
    ] {
        let postback = format!("/postbacks/generic?token={POSTBACK_TOKEN}&{query}");
        let (status, body) = call(app, Request::get(postback).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    engine
}

async fn the_revenue_page_is_the_report_apis_for_each_grouping(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = revenue_engine(&stores).await;
    let app = &engine.app;
    let cookie = sign_in(app).await;
    for group_by in ["message", "creative", "offer", "campaign", "day"] {
        let (_, report) = call(
            app,
            admin_get(&format!("/reports/revenue?group_by={group_by}")),
        )
        .await;
        let path = format!("/app/revenue?group_by={group_by}");
        let (status, _, body) = get_page(app, &path, &cookie).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let rows = report["rows"].as_array().unwrap();
        assert!(!rows.is_empty(), "{group_by}: {report}");
        for row in rows.iter().chain(report["totals"].as_array().unwrap()) {
            let marker = format!(
                "data-revenue=\"{} {}\">{}<",
                row["key"].as_str().unwrap(),
                row["currency"].as_str().unwrap(),
                row["revenue"].as_str().unwrap()
            );
            assert!(body.contains(&marker), "{group_by}: {marker}");
            // View-through apart, in its own column.
            let marker = format!(
                "data-view-through=\"{} {}\">{}<",
                row["key"].as_str().unwrap(),
                row["currency"].as_str().unwrap(),
                row["view_through_revenue"].as_str().unwrap()
            );
            assert!(body.contains(&marker), "{group_by}: {marker}");
        }
        for total in report["totals"].as_array().unwrap() {
            let marker = format!(
                "data-total=\"{}\">{}<",
                total["currency"].as_str().unwrap(),
                total["revenue"].as_str().unwrap()
            );
            assert!(body.contains(&marker), "{group_by}: {marker}");
        }
        // A revenue-per-day chart per currency, whatever the grouping.
        for currency in ["USD", "EUR"] {
            assert!(
                body.contains(&format!("data-chart=\"revenue-{currency}\"")),
                "{group_by}"
            );
        }
        assert!(body.contains("class=\"bar revenue-bar\""), "{group_by}");
        assert!(!body.contains("style="), "the CSP refuses style attributes");
    }
    let (_, usd) = call(app, admin_get("/reports/revenue?group_by=offer")).await;
    assert_eq!(usd["totals"][1]["revenue"], "12.50", "{usd}");
    assert_eq!(usd["totals"][1]["view_through_revenue"], "4.00", "{usd}");
    // The page's defaults are the API's: the last 30 days, grouped by day.
    let (_, by_day) = call(app, admin_get("/reports/revenue?group_by=day")).await;
    let (_, _, body) = get_page(app, "/app/revenue", &cookie).await;
    let since = by_day["since"].as_str().unwrap();
    assert!(
        body.contains(&format!("name=\"since\" value=\"{since}\"")),
        "{body}"
    );
}

async fn bad_report_parameters_are_a_400_page_with_the_apis_message(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    let app = &engine.app;
    let cookie = sign_in(app).await;
    for query in [
        "group_by=colour",
        "group_by=",
        "group_by=day&since=2026-02-01&until=2026-01-01",
        "group_by=day&since=2020-01-01&until=2021-06-01",
        "group_by=day&since=yesterday",
        "group_by=day&until=99999-01-01",
        "group_by=day&since=%FF",
    ] {
        let (status, api) = call(app, admin_get(&format!("/reports/revenue?{query}"))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {api}");
        let (status, kind, body) = get_page(app, &format!("/app/revenue?{query}"), &cookie).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(kind.starts_with("text/html"), "{query}: {kind}");
        let message = api["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{api}"));
        let escaped = message.replace('\'', "&#39;").replace('"', "&#34;");
        assert!(
            body.contains(message) || body.contains(&escaped),
            "{query}: {message} in {body}"
        );
    }
}

/// The Revenue page's model table shows `GET /reports/revenue/models` for the page's grouping
/// (by campaign when the page is by day), every model's cell as the API gives it.
async fn the_revenue_page_compares_the_models_as_the_api_gives_them(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = revenue_engine(&stores).await;
    let app = &engine.app;
    let cookie = sign_in(app).await;
    for (page, api) in [
        ("campaign", "campaign"),
        ("message", "message"),
        ("creative", "creative"),
        ("offer", "offer"),
        ("day", "campaign"),
    ] {
        let (status, models) = call(
            app,
            admin_get(&format!("/reports/revenue/models?group_by={api}")),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{models}");
        let (status, _, body) =
            get_page(app, &format!("/app/revenue?group_by={page}"), &cookie).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains(&format!("Attribution models by {api}")),
            "{page}"
        );
        let rows = models["rows"].as_array().unwrap();
        assert!(!rows.is_empty(), "{page}: {models}");
        for row in rows.iter().chain(models["totals"].as_array().unwrap()) {
            for model in models["models"].as_array().unwrap() {
                let model = model.as_str().unwrap();
                let marker = format!(
                    "data-model=\"{model} {} {}\">{}<",
                    row["key"].as_str().unwrap(),
                    row["currency"].as_str().unwrap(),
                    row[model].as_str().unwrap()
                );
                assert!(body.contains(&marker), "{page}: {marker}");
            }
        }
    }
    // The one click earns every model's share: each column is the credited revenue.
    let (_, models) = call(app, admin_get("/reports/revenue/models?group_by=offer")).await;
    let usd = models["totals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|total| total["currency"] == "USD")
        .unwrap();
    for model in [
        "first_click",
        "last_click",
        "linear",
        "time_decay",
        "position_based",
    ] {
        assert_eq!(usd[model], "12.50", "{model}: {models}");
    }
}
