//! The contacts listing as CSV through the admin API: `GET …/contacts.csv`.

use http::{Request, StatusCode};
use http_body_util::BodyExt;
use integration_tests::*;
use serde_json::json;
use shared::time::Timestamp;
use std::time::Duration;
use tower::ServiceExt;

on_every_store!(
    the_export_is_the_filtered_listing_with_formulas_guarded,
    an_export_longer_than_a_store_page_streams_every_row,
    bad_export_parameters_are_400,
);

const INSTANCE: &str = "106540352242922";

/// The export's status, headers and rows (the header row first), read with a real CSV parser.
async fn export(
    app: &axum::Router,
    key: &str,
    query: &str,
) -> (StatusCode, http::HeaderMap, Vec<Vec<String>>) {
    let request = Request::get(format!("/instances/{INSTANCE}/contacts.csv{query}"))
        .header("authorization", format!("Bearer {key}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let rows = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(&bytes[..])
        .records()
        .map(|record| record.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (status, headers, rows)
}

/// A spend row naming `ad_id` (`Video A`, ad set `Sudeste 25-44`) under `campaign`.
async fn name_ad(app: &axum::Router, ad_id: &str, campaign: &str) {
    let row = json!([{"date": "2026-11-24", "platform": "meta", "campaign": campaign,
        "ad_set": "Sudeste 25-44", "ad_id": ad_id, "ad_name": "Video A", "spend": "1", "currency": "USD"}]);
    let (status, body) = call(app, admin_request("POST", "/spend", Some(row))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn column(rows: &[Vec<String>], index: usize) -> Vec<&str> {
    rows[1..].iter().map(|row| row[index].as_str()).collect()
}

async fn the_export_is_the_filtered_listing_with_formulas_guarded(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    let app = &engine.app;
    let rule = json!({"name": "TikTok", "platform": "tiktok", "campaign": "+summer", "ad": "ad, \"one\"",
        "match": {"kind": "contains", "pattern": "tiktok"}});
    let (_, created) = call(
        app,
        admin_request("POST", &format!("/instances/{INSTANCE}/rules"), Some(rule)),
    )
    .await;
    let rule_id = created["id"].as_str().unwrap().to_owned();
    let start = chrono::Utc::now().timestamp() - 3_600;
    let script = [
        ("3001", "hello", Some(ctwa_referral("ad-1"))),
        ("3002", "=tiktok(1)", None),
        ("3003", "-2 just hi", None),
    ];
    for (n, (contact, text, referral)) in script.into_iter().enumerate() {
        let body = whatsapp_message(
            INSTANCE,
            contact,
            &format!("wamid.{contact}"),
            start + 60 * n as i64,
            text,
            referral,
        );
        assert_eq!(call(app, signed_delivery(&body)).await.0, StatusCode::OK);
    }
    // The matcher runs after the webhook answers.
    for _ in 0..200 {
        let (_, _, rows) = export(app, ADMIN_KEY, "?kind=rule").await;
        if rows.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    name_ad(app, "ad-1", "=CTWA Verao").await;
    let (status, headers, rows) = export(app, ADMIN_KEY, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        headers["content-disposition"],
        format!("attachment; filename=\"contacts-{INSTANCE}.csv\"")
    );
    assert_eq!(rows[0], shared::contact::export::COLUMNS);
    assert_eq!(column(&rows, 0), ["3003", "3002", "3001"]);
    let first_seen = Timestamp::from_unix_seconds(start + 120)
        .unwrap()
        .to_string();
    assert_eq!(
        rows[1],
        [
            "3003",
            "whatsapp",
            &first_seen,
            "none",
            "",
            "",
            "",
            "",
            "'-2 just hi",
            "",
            "",
            ""
        ]
    );
    assert_eq!(
        rows[2][3..],
        [
            "rule",
            &rule_id,
            "tiktok",
            "'+summer",
            "ad, \"one\"",
            "'=tiktok(1)",
            "",
            "",
            ""
        ]
    );
    assert_eq!(
        rows[3][3..],
        [
            "meta_ad",
            "ad-1",
            "facebook",
            "",
            "headline ad-1",
            "hello",
            "Video A",
            "Sudeste 25-44",
            "'=CTWA Verao"
        ],
        "the ad's names from its spend row, guarded like every cell"
    );

    // The listing's filters, each applied as the JSON listing applies it.
    for (query, expected) in [
        ("?kind=meta_ad", vec!["3001"]),
        ("?platform=tiktok", vec!["3002"]),
        ("?campaign=%2Bsummer", vec!["3002"]),
        (&format!("?rule_id={rule_id}"), vec!["3002"]),
        ("?unattributed=true", vec!["3003"]),
        ("?unattributed=false&kind=rule", vec!["3002"]),
        ("?platform=google", vec![]),
    ] {
        let (status, _, rows) = export(app, ADMIN_KEY, query).await;
        assert_eq!(status, StatusCode::OK, "{query}");
        assert_eq!(column(&rows, 0), expected, "{query}");
    }
    let since = Timestamp::from_unix_seconds(start + 60)
        .unwrap()
        .to_string();
    let until = Timestamp::from_unix_seconds(start + 120)
        .unwrap()
        .to_string();
    let (_, _, rows) = export(
        app,
        ADMIN_KEY,
        &format!("?since={}&until={}", encoded(&since), encoded(&until)),
    )
    .await;
    assert_eq!(column(&rows, 0), ["3002"]);
}

fn encoded(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn an_export_longer_than_a_store_page_streams_every_row(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let count = shared::contact::export::CHUNK as i64 * 2 + 30;
    ingest_many_contacts(&stores, INSTANCE, 1_750_000_000, count).await;
    let app = &engine_app(&stores).app;
    name_ad(app, "ad", "CTWA").await;
    let (status, _, rows) = export(app, ADMIN_KEY, "").await;
    assert_eq!(status, StatusCode::OK);
    let expected: Vec<String> = (0..count)
        .rev()
        .map(|n| format!("{}", 5_511_000_000 + n))
        .collect();
    assert_eq!(column(&rows, 0), expected);
    // A filter that keeps only the last contact reads on through every page to find it.
    let (_, _, rows) = export(app, ADMIN_KEY, "?kind=meta_ad").await;
    assert_eq!(column(&rows, 0), ["5511000000"]);
    assert_eq!(rows[1][4], "ad");
    assert_eq!(
        rows[1][9..],
        ["Video A", "Sudeste 25-44", "CTWA"],
        "named on the third store page too"
    );
}

async fn bad_export_parameters_are_400(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = rules_app(&stores);
    for (query, field) in [
        ("?kind=tv", "kind"),
        ("?unattributed=maybe", "unattributed"),
        ("?since=yesterday", "since"),
        (
            "?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
            "since",
        ),
    ] {
        let (status, error) = call(
            &app,
            admin_request(
                "GET",
                &format!("/instances/{INSTANCE}/contacts.csv{query}"),
                None,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(error["error"]["field"], field, "{query}");
    }
    let (status, _) = call(
        &app,
        Request::get(format!("/instances/{INSTANCE}/contacts.csv"))
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The read-only key reads it too (the dashboard's app configures one).
    let (status, _, rows) = export(&dashboard_app(&stores), READONLY_KEY, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rows, [shared::contact::export::COLUMNS]);
}
