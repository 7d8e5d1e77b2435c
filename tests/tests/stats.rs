//! 7-day stats from the daily counters, through the admin API, after a scripted mix of
//! contacts went through the webhook and the matcher.

use http::StatusCode;
use integration_tests::*;
use serde_json::{Value, json};
use std::time::Duration;

on_every_store!(
    stats_add_up_over_a_scripted_mix_of_contacts,
    stats_refuse_bad_windows
);

const INSTANCE: &str = "106540352242922";

async fn deliver(app: &axum::Router, body: &[u8]) {
    let (status, report) = call(app, signed_delivery(body)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
}

async fn stats(app: &axum::Router, query: &str) -> Value {
    let (status, body) = call(
        app,
        admin_request("GET", &format!("/instances/{INSTANCE}/stats{query}"), None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn stats_add_up_over_a_scripted_mix_of_contacts(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    let app = &engine.app;
    let rule = |name: &str, platform: &str, pattern: &str| json!({"name": name, "platform": platform, "match": {"kind": "contains", "pattern": pattern}});
    let mut ids = Vec::new();
    for (name, platform, pattern) in [
        ("TikTok", "tiktok", "tiktok"),
        ("Google", "google", "google"),
    ] {
        let (status, created) = call(
            app,
            admin_request(
                "POST",
                &format!("/instances/{INSTANCE}/rules"),
                Some(rule(name, platform, pattern)),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        ids.push(created["id"].as_str().unwrap().to_owned());
    }

    let now = chrono::Utc::now().timestamp();
    let post = json!({"source_url": "https://www.instagram.com/p/x", "source_id": "post-1", "source_type": "post"});
    let script: Vec<(&str, i64, &str, Option<Value>)> = vec![
        ("1001", now - 3_600, "hello", Some(ctwa_referral("ad-1"))),
        ("1002", now - 7_200, "hi", Some(ctwa_referral("ad-2"))),
        ("1003", now - 3_600, "seen on instagram", Some(post)),
        ("1004", now - 3_600, "your TikTok ad", None),
        ("1005", now - 86_400, "tiktok!", None),
        ("1006", now - 60, "found you on Google", None),
        ("1007", now - 60, "organic hello", None),
        ("1008", now - 2 * 86_400, "just browsing", None),
        // First seen ten days ago: outside a 7-day window, inside a 30-day one.
        ("1009", now - 10 * 86_400, "tiktok long ago", None),
    ];
    for (contact, at, text, referral) in &script {
        deliver(
            app,
            &whatsapp_message(
                INSTANCE,
                contact,
                &format!("wamid.{contact}"),
                *at,
                text,
                referral.clone(),
            ),
        )
        .await;
    }
    // Wait until the matcher has decided every candidate.
    for _ in 0..200 {
        let week = stats(app, "?days=30").await;
        if week["matched_by_rules"].as_u64().unwrap() + week["unmatched"].as_u64().unwrap() == 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let week = stats(app, "").await;
    assert_eq!(week["days"], 7);
    assert_eq!(week["instance_id"], INSTANCE);
    assert_eq!(week["new_contacts"], 8);
    assert_eq!(week["meta_ads"], 2);
    assert_eq!(week["matched_by_rules"], 3);
    assert_eq!(week["unmatched"], 2);
    assert_eq!(week["click_to_chat_contacts"], 5);
    assert_eq!(
        week["by_kind"],
        json!({"meta_ad": 2, "meta_post": 1, "shortlink": 0, "product": 0, "rule": 3, "web": 0})
    );
    assert_eq!(
        week["by_platform"],
        json!([
            {"platform": "facebook", "contacts": 2, "color": "#1877F2"},
            {"platform": "tiktok", "contacts": 2, "color": "#010101"},
            {"platform": "google", "contacts": 1, "color": "#FBBC05"},
            {"platform": "instagram", "contacts": 1, "color": "#C13584"},
        ])
    );
    assert_eq!(
        week["rules"],
        json!([
            {"rule_id": ids[0], "name": "TikTok", "platform": "tiktok", "matched": 2},
            {"rule_id": ids[1], "name": "Google", "platform": "google", "matched": 1},
        ])
    );
    let month = stats(app, "?days=30").await;
    assert_eq!(month["new_contacts"], 9);
    assert_eq!(month["rules"][0]["matched"], 3);
    assert_eq!(month["click_to_chat_contacts"], 6);
    let today = stats(app, "?days=1").await;
    assert!(today["new_contacts"].as_u64().unwrap() <= 8);

    let (_, listed) = call(
        app,
        admin_request("GET", &format!("/instances/{INSTANCE}/rules"), None),
    )
    .await;
    let matched_7d: Vec<u64> = listed["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["matched_7d"].as_u64().unwrap())
        .collect();
    assert_eq!(matched_7d, [2, 1]);

    let tiktok = contact(app, INSTANCE, "1004").await.unwrap();
    assert_eq!(tiktok["acquisition"]["color"], "#010101");
    let meta = contact(app, INSTANCE, "1001").await.unwrap();
    assert_eq!(meta["acquisition"]["color"], "#1877F2");

    // Another instance's stats are its own.
    let (_, other) = call(app, admin_request("GET", "/instances/999/stats", None)).await;
    assert_eq!(other["new_contacts"], 0);
    assert_eq!(other["by_platform"], json!([]));
}

async fn stats_refuse_bad_windows(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = rules_app(&stores);
    for query in ["?days=0", "?days=91", "?days=abc", "?days=-3", "?days=7.5"] {
        let (status, error) = call(
            &app,
            admin_request("GET", &format!("/instances/{INSTANCE}/stats{query}"), None),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(error["error"]["field"], "days");
    }
    let (status, _) = call(
        &app,
        admin_request("GET", &format!("/instances/{INSTANCE}/stats?days=90"), None),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let unauthenticated = http::Request::get(format!("/instances/{INSTANCE}/stats"))
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(
        call(&app, unauthenticated).await.0,
        StatusCode::UNAUTHORIZED
    );
}
