//! The contacts listing (the pipeline filter) through the admin API.

use http::StatusCode;
use integration_tests::*;
use serde_json::{Value, json};
use std::time::Duration;

on_every_store!(
    contacts_list_newest_first_with_filters,
    cursors_page_through_and_stay_in_their_instance,
    bad_listing_parameters_are_400,
);

const INSTANCE: &str = "106540352242922";

async fn list(app: &axum::Router, query: &str) -> Value {
    let (status, body) = call(
        app,
        admin_request(
            "GET",
            &format!("/instances/{INSTANCE}/contacts{query}"),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body
}

fn ids(page: &Value) -> Vec<String> {
    page["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["contact_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Five contacts a minute apart (newest last): a Meta ad, two TikTok rule matches, a Google
/// rule match and an unmatched one; answers the rule ids.
async fn scripted(app: &axum::Router) -> (String, String) {
    let mut rule_ids = Vec::new();
    for (name, platform, pattern, campaign) in [
        ("TikTok", "tiktok", "tiktok", "summer"),
        ("Google", "google", "google", "winter"),
    ] {
        let rule = json!({"name": name, "platform": platform, "campaign": campaign, "match": {"kind": "contains", "pattern": pattern}});
        let (_, created) = call(
            app,
            admin_request("POST", &format!("/instances/{INSTANCE}/rules"), Some(rule)),
        )
        .await;
        rule_ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let now = chrono::Utc::now().timestamp() - 3_600;
    let script = [
        ("2001", "hello", Some(ctwa_referral("ad-1"))),
        ("2002", "tiktok one", None),
        ("2003", "google it", None),
        ("2004", "tiktok two", None),
        ("2005", "just hi", None),
    ];
    for (n, (contact, text, referral)) in script.into_iter().enumerate() {
        let body = whatsapp_message(
            INSTANCE,
            contact,
            &format!("wamid.{contact}"),
            now + 60 * n as i64,
            text,
            referral,
        );
        let (status, _) = call(app, signed_delivery(&body)).await;
        assert_eq!(status, StatusCode::OK);
    }
    for _ in 0..200 {
        if list(app, "?unattributed=true").await["contacts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c.get("rules_checked_at").is_some())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (rule_ids[0].clone(), rule_ids[1].clone())
}

async fn contacts_list_newest_first_with_filters(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    let app = &engine.app;
    let (tiktok, google) = scripted(app).await;
    let all = list(app, "").await;
    assert_eq!(ids(&all), ["2005", "2004", "2003", "2002", "2001"]);
    assert_eq!(all["next_cursor"], Value::Null);
    assert_eq!(all["contacts"][4]["acquisition"]["color"], "#1877F2");
    assert_eq!(
        ids(&list(app, "?kind=rule").await),
        ["2004", "2003", "2002"]
    );
    assert_eq!(ids(&list(app, "?kind=meta_ad").await), ["2001"]);
    assert_eq!(ids(&list(app, "?platform=tiktok").await), ["2004", "2002"]);
    assert_eq!(ids(&list(app, "?campaign=winter").await), ["2003"]);
    assert_eq!(
        ids(&list(app, &format!("?rule_id={tiktok}")).await),
        ["2004", "2002"]
    );
    assert_eq!(
        ids(&list(app, &format!("?rule_id={google}&platform=tiktok")).await),
        Vec::<String>::new()
    );
    assert_eq!(ids(&list(app, "?unattributed=true").await), ["2005"]);
    assert_eq!(
        ids(&list(app, "?unattributed=false&kind=rule&platform=google").await),
        ["2003"]
    );
    // The window: contacts first seen in [since, until).
    let third = list(app, "?kind=rule&platform=google").await["contacts"][0]["first_seen_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let since_third = list(app, &format!("?since={}", third.replace(':', "%3A"))).await;
    assert_eq!(ids(&since_third), ["2005", "2004", "2003"]);
    let until_third = list(app, &format!("?until={}", third.replace(':', "%3A"))).await;
    assert_eq!(ids(&until_third), ["2002", "2001"]);
}

async fn cursors_page_through_and_stay_in_their_instance(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    let app = &engine.app;
    scripted(app).await;
    let mut seen = Vec::new();
    let mut query = "?limit=2".to_owned();
    let mut cursor = String::new();
    for _ in 0..5 {
        let page = list(app, &query).await;
        assert!(page["contacts"].as_array().unwrap().len() <= 2);
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(next) => {
                cursor = next.to_owned();
                query = format!("?limit=2&cursor={next}");
            }
            None => break,
        }
    }
    assert_eq!(seen, ["2005", "2004", "2003", "2002", "2001"]);
    // Filters page too.
    let first = list(app, "?kind=rule&limit=1").await;
    let next = first["next_cursor"].as_str().unwrap();
    assert_eq!(
        ids(&list(app, &format!("?kind=rule&limit=1&cursor={next}")).await),
        ["2003"]
    );

    // A cursor is refused on another instance, and when edited.
    let (status, error) = call(
        app,
        admin_request(
            "GET",
            &format!("/instances/999/contacts?cursor={cursor}"),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"]["field"], "cursor");
    let mut edited = cursor.clone().into_bytes();
    edited[2] = if edited[2] == b'3' { b'4' } else { b'3' };
    let edited = String::from_utf8(edited).unwrap();
    let (status, _) = call(
        app,
        admin_request(
            "GET",
            &format!("/instances/{INSTANCE}/contacts?cursor={edited}"),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn bad_listing_parameters_are_400(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = rules_app(&stores);
    for (query, field) in [
        ("?limit=0", "limit"),
        ("?limit=501", "limit"),
        ("?limit=ten", "limit"),
        ("?kind=tv", "kind"),
        ("?unattributed=maybe", "unattributed"),
        ("?since=yesterday", "since"),
        ("?until=2026-13-01T00:00:00Z", "until"),
        (
            "?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
            "since",
        ),
        ("?cursor=abc", "cursor"),
    ] {
        let (status, error) = call(
            &app,
            admin_request(
                "GET",
                &format!("/instances/{INSTANCE}/contacts{query}"),
                None,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(error["error"]["field"], field, "{query}");
    }
    let (status, body) = call(
        &app,
        admin_request(
            "GET",
            &format!("/instances/{INSTANCE}/contacts?limit=500"),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"contacts": [], "next_cursor": null}));
}
