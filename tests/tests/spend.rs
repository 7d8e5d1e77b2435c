//! Ad spend through the spend function's routes, on both stores: the CSV exports of each
//! platform (and variants: another locale, a Total row, an empty cost, `--`, a BOM), JSON rows
//! replaced by key, the Meta Insights pull against a fake Graph server on loopback (two pages,
//! a 429 then success, a bad token), and the ads report's arithmetic against conversations
//! counted from real webhook deliveries.

use axum::body::Body;
use axum::extract::{Path as AxumPath, Query as AxumQuery, State};
use axum::response::IntoResponse;
use http::{Request, StatusCode};
use integration_tests::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

fn spend_fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/spend")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

fn csv_import(platform: &str, file: Vec<u8>) -> Request<Body> {
    Request::post(format!("/spend/import?platform={platform}"))
        .header("authorization", format!("Bearer {ADMIN_KEY}"))
        .header("content-type", "text/csv")
        .body(Body::from(file))
        .unwrap()
}

async fn report(app: &axum::Router, query: &str) -> Value {
    let (status, body) = call(app, admin_get(&format!("/reports/ads?{query}"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// `(key, currency, spend)` of each row.
fn spend_of(report: &Value) -> Vec<(String, String, String)> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["key"].as_str().unwrap().to_owned(),
                row["currency"].as_str().unwrap_or("-").to_owned(),
                row["spend"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn app_of(stores: &Stores) -> axum::Router {
    shared::http::serve_json_errors(spend_router(&secrets().admin_keys, stores, None))
}

const WEEK: &str = "since=2026-11-24&until=2026-11-30";

async fn a_google_export_imports_as_it_comes_and_again_changes_nothing(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = app_of(&stores);
    let file = spend_fixture("google_ads_campaign_report.csv");
    let (status, first) = call(&app, csv_import("google", file.clone())).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["imported"], 4);
    assert_eq!(first["replaced"], 0);
    assert_eq!(
        first["skipped"],
        json!([{"line": 8, "reason": "a total row"}])
    );
    let by_campaign = report(&app, &format!("group_by=campaign&{WEEK}")).await;
    let expected = vec![
        ("WA Search - Brand".into(), "USD".into(), "2202.60".into()),
        ("WA Search - Generic".into(), "USD".into(), "310.25".into()),
    ];
    assert_eq!(spend_of(&by_campaign), expected);
    // The export's own Total row says 2,512.85, 39,354 impressions and 1,954 clicks.
    assert_eq!(by_campaign["totals"][0]["spend"], "2512.85");
    assert_eq!(by_campaign["totals"][0]["impressions"], 39_354);
    assert_eq!(by_campaign["totals"][0]["clicks"], 1_954);
    let (status, again) = call(&app, csv_import("google", file)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (again["imported"].clone(), again["replaced"].clone()),
        (json!(0), json!(4))
    );
    assert_eq!(
        report(&app, &format!("group_by=campaign&{WEEK}")).await,
        by_campaign
    );
    let by_platform = report(&app, &format!("group_by=platform&{WEEK}")).await;
    assert_eq!(
        spend_of(&by_platform),
        [("google".into(), "USD".into(), "2512.85".into())]
    );
}

async fn meta_and_tiktok_exports_read_their_own_layouts_and_locales(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = app_of(&stores);
    let (status, meta) = call(
        &app,
        csv_import("meta", spend_fixture("meta_ads_manager_export.csv")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{meta}");
    assert_eq!(meta["imported"], 2);
    let (status, pt) = call(
        &app,
        csv_import("meta", spend_fixture("meta_ads_manager_pt_br.csv")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{pt}");
    assert_eq!(pt["imported"], 2);
    assert_eq!(
        pt["skipped"],
        json!([{"line": 5, "reason": "the row spans more than one day: export with a breakdown by day"}])
    );
    let (status, tiktok) = call(
        &app,
        csv_import("tiktok", spend_fixture("tiktok_ads_export.csv")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tiktok}");
    assert_eq!(tiktok["imported"], 2);
    let by_ad = report(&app, &format!("group_by=ad&{WEEK}")).await;
    let rows = by_ad["rows"].as_array().unwrap();
    let video = rows
        .iter()
        .find(|row| row["key"] == "120230011223344556")
        .unwrap();
    // "1.250,40" and "R$ 2.001,10" in a Brazilian account; "48.211" impressions is 48,211.
    assert_eq!(video["spend"], "3251.50");
    assert_eq!(video["currency"], "BRL");
    assert_eq!(video["impressions"], 96_422);
    assert_eq!(video["clicks"], 2_608);
    assert_eq!(video["name"], "Video A");
    let hook = rows.iter().find(|row| row["key"] == "Hook v3").unwrap();
    assert_eq!(
        (hook["spend"].clone(), hook["currency"].clone()),
        (json!("302.25"), json!("USD"))
    );
    let by_day = report(&app, &format!("group_by=day&{WEEK}")).await;
    assert_eq!(
        spend_of(&by_day),
        [
            ("2026-11-24".into(), "BRL".into(), "1630.40".into()),
            ("2026-11-24".into(), "USD".into(), "152.30".into()),
            ("2026-11-25".into(), "BRL".into(), "2101.00".into()),
            ("2026-11-25".into(), "USD".into(), "149.95".into()),
        ],
        "currencies are never summed"
    );
}

async fn bad_lines_get_their_reasons_and_change_nothing(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = app_of(&stores);
    let (status, body) = call(
        &app,
        csv_import("google", spend_fixture("google_ads_bad_lines.csv")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["imported"], 2,
        "the $1,000.00 line and the empty-cost line"
    );
    let lines: Vec<(u64, String)> = body["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|skip| {
            (
                skip["line"].as_u64().unwrap(),
                skip["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let reasons: Vec<u64> = lines.iter().map(|(line, _)| *line).collect();
    assert_eq!(reasons, [6, 7, 8, 9, 10, 12], "{lines:?}");
    assert!(lines[0].1.contains("26/11/2026"), "{lines:?}");
    assert!(lines[1].1.starts_with("cost:"), "{lines:?}");
    assert!(lines[2].1.contains("currency"), "{lines:?}");
    assert_eq!(lines[3].1, "no campaign");
    assert!(
        lines[4].1.starts_with("cost:"),
        "a negative cost: {lines:?}"
    );
    assert_eq!(lines[5].1, "a total row");
    let by_day = report(&app, &format!("group_by=day&{WEEK}")).await;
    assert_eq!(
        spend_of(&by_day),
        [
            ("2026-11-26".into(), "USD".into(), "1000.00".into()),
            ("2026-11-27".into(), "USD".into(), "0.00".into()),
        ]
    );
    // A file without one usable row is refused whole, with the reasons.
    let (status, refused) = call(
        &app,
        csv_import("tiktok", spend_fixture("tiktok_ads_no_usable_row.csv")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"]["code"], "unusable_file");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 3: no currency"),
        "{refused}"
    );
    let (status, refused) = call(
        &app,
        csv_import("google", b"just,some,text\n1,2,3\n".to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    let (status, refused) = call(&app, csv_import("myspace", b"x".to_vec())).await;
    assert_eq!(
        (status, refused["error"]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("platform"))
    );
    assert_eq!(
        report(&app, &format!("group_by=day&{WEEK}")).await,
        by_day,
        "nothing changed"
    );
}

fn json_row(ad_id: &str, spend: &str) -> Value {
    json!({"date": "2026-11-24", "platform": "meta", "campaign": "CTWA Verao", "ad_set": "Sudeste",
           "ad_id": ad_id, "ad_name": "Video A", "spend": spend, "currency": "BRL",
           "impressions": 100, "clicks": 7})
}

async fn json_rows_are_replaced_by_their_key(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = app_of(&stores);
    let rows = json!([json_row("111", "10.00"), json_row("222", "5.50")]);
    let (status, body) = call(&app, admin_request("POST", "/spend", Some(rows))).await;
    assert_eq!(
        (status, body.clone()),
        (StatusCode::OK, json!({"imported": 2, "replaced": 0}))
    );
    let corrected = json!([json_row("111", "12.25")]);
    let (status, body) = call(&app, admin_request("POST", "/spend", Some(corrected))).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"imported": 0, "replaced": 1}))
    );
    let by_campaign = report(&app, &format!("group_by=campaign&{WEEK}")).await;
    assert_eq!(
        spend_of(&by_campaign),
        [("CTWA Verao".into(), "BRL".into(), "17.75".into())]
    );
    assert_eq!(by_campaign["rows"][0]["impressions"], 200);
    // A refused row names itself, and nothing of the batch is stored.
    let mixed = json!([json_row("333", "1.00"), json_row("444", "a lot")]);
    let (status, body) = call(&app, admin_request("POST", "/spend", Some(mixed))).await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("[1].spend"))
    );
    assert_eq!(
        report(&app, &format!("group_by=campaign&{WEEK}")).await,
        by_campaign
    );
}

async fn the_report_sets_spend_against_the_conversations_the_ads_started(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = app_of(&stores);
    let webhook = webhook_app(stores.contacts.clone());
    let now = shared::time::Timestamp::now();
    let today = now.day();
    let at = now.unix_seconds();
    for (n, instance) in ["111", "111", "111", "222"].into_iter().enumerate() {
        let delivery = whatsapp_message(
            instance,
            &format!("1650555000{n}"),
            &format!("wamid.ad{n}"),
            at,
            "hi",
            Some(ctwa_referral("120230011223344556")),
        );
        deliver_until_accepted(&webhook, &delivery).await;
    }
    let row = json!([{"date": today, "platform": "meta", "campaign": "CTWA Verao", "ad_set": "Sudeste",
                      "ad_id": "120230011223344556", "ad_name": "Video A", "spend": "100.00", "currency": "USD"}]);
    let (status, _) = call(&app, admin_request("POST", "/spend", Some(row))).await;
    assert_eq!(status, StatusCode::OK);
    let window = format!("since={today}&until={today}");
    let only_111 = report(&app, &format!("group_by=ad&{window}&instance_id=111")).await;
    let line = &only_111["rows"][0];
    assert_eq!(line["conversations"], 3);
    assert_eq!(
        line["cost_per_conversation"], "33.33",
        "100.00 / 3, half away from zero to the cent"
    );
    assert_eq!(line["qualified"], 0);
    assert_eq!(line["cost_per_qualified"], Value::Null);
    assert_eq!(line["roas"], "0.00");
    let every_instance = report(&app, &format!("group_by=ad&{window}")).await;
    assert_eq!(every_instance["rows"][0]["conversations"], 4);
    assert_eq!(every_instance["rows"][0]["cost_per_conversation"], "25.00");
    let by_campaign = report(&app, &format!("group_by=campaign&{window}&instance_id=111")).await;
    assert_eq!(by_campaign["rows"][0]["key"], "CTWA Verao");
    assert_eq!(
        by_campaign["rows"][0]["conversations"], 3,
        "the ad's campaign, from its spend row"
    );
    let by_platform = report(&app, &format!("group_by=platform&{window}&instance_id=111")).await;
    assert_eq!(by_platform["rows"][0]["key"], "meta");
    assert_eq!(by_platform["rows"][0]["conversations"], 3);
    let by_day = report(&app, &format!("group_by=day&{window}&instance_id=111")).await;
    assert_eq!(by_day["rows"][0]["conversations"], 3);
    assert_eq!(by_day["rows"][0]["key"], today);
}

async fn report_parameters_are_range_checked(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = app_of(&stores);
    for (query, field) in [
        ("group_by=offer", "group_by"),
        ("", "group_by"),
        ("group_by=day&since=2026-13-01", "since"),
        ("group_by=day&since=2026-11-30&until=2026-11-01", "since"),
        ("group_by=day&since=2020-01-01&until=2026-11-01", "since"),
        ("group_by=day&until=1999-12-31", "until"),
        ("group_by=day&instance_id=not%20an%20id", "instance_id"),
    ] {
        let (status, body) = call(&app, admin_get(&format!("/reports/ads?{query}"))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
    let (status, body) = call(
        &app,
        admin_request("POST", "/spend/sync/meta", Some(json!({"days": 91}))),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("days"))
    );
    let (status, body) = call(&app, admin_request("POST", "/spend/sync/meta", None)).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("meta_sync_not_configured"))
    );
}

/// How the fake Graph server answers.
#[derive(Clone, Copy, PartialEq)]
enum Graph {
    /// Two pages.
    Paged,
    /// A 429 with Meta's rate-limit error first, then the two pages.
    RateLimitedOnce,
    /// The first page, then a token error on the second.
    TokenErrorOnPage2,
}

#[derive(Clone)]
struct Fake {
    mode: Graph,
    base: String,
    since: String,
    until: String,
    calls: Arc<Mutex<Vec<String>>>,
}

const ACCOUNT: &str = "act_42";
const TOKEN: &str = "graph-token-0123456789";

/// The one route of the fake: checks each field of the request as Meta would take it, and
/// answers by its mode and the page asked for.
async fn insights(
    State(fake): State<Fake>,
    AxumPath(account): AxumPath<String>,
    AxumQuery(query): AxumQuery<HashMap<String, String>>,
) -> axum::response::Response {
    let mut wrong = Vec::new();
    let mut expect = |name: &str, want: &str| {
        if query.get(name).map(String::as_str) != Some(want) {
            wrong.push(format!("{name}={:?}", query.get(name)));
        }
    };
    expect("level", "ad");
    expect("time_increment", "1");
    expect("fields", shared::spend::insights::FIELDS);
    expect("access_token", TOKEN);
    let range: Option<Value> = query
        .get("time_range")
        .and_then(|text| serde_json::from_str(text).ok());
    if range != Some(json!({"since": fake.since, "until": fake.until})) {
        wrong.push(format!("time_range={:?}", query.get("time_range")));
    }
    if account != ACCOUNT {
        wrong.push(format!("account={account}"));
    }
    let page = query
        .get("after")
        .cloned()
        .unwrap_or_else(|| "1".to_owned());
    let call_number = {
        let mut calls = fake.calls.lock().unwrap();
        calls.push(format!("page {page}"));
        calls.len()
    };
    if !wrong.is_empty() {
        let error =
            json!({"error": {"message": format!("fake: wrong {}", wrong.join(", ")), "code": 100}});
        return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
    }
    if fake.mode == Graph::RateLimitedOnce && call_number == 1 {
        let error = json!({"error": {"message": "User request limit reached", "type": "OAuthException", "code": 17}});
        return (StatusCode::TOO_MANY_REQUESTS, axum::Json(error)).into_response();
    }
    if fake.mode == Graph::TokenErrorOnPage2 && page == "2" {
        let error = json!({"error": {"message": "Error validating access token: Session has expired", "type": "OAuthException", "code": 190}});
        return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
    }
    let row = |ad: &str, spend: &str| {
        json!({
            "ad_id": ad, "ad_name": format!("Ad {ad}"), "adset_id": "9", "adset_name": "Sudeste 25-44",
            "campaign_id": "8", "campaign_name": "CTWA Verao", "spend": spend, "impressions": "1000",
            "clicks": "12", "account_currency": "BRL", "date_start": fake.until, "date_stop": fake.until
        })
    };
    let answer = if page == "1" {
        let mut next = url::Url::parse(&format!("{}/{ACCOUNT}/insights", fake.base)).unwrap();
        next.query_pairs_mut()
            .extend_pairs(query.iter())
            .append_pair("after", "2");
        json!({"data": [row("120230011223344556", "5339.5")], "paging": {"cursors": {"after": "2"}, "next": next.as_str()}})
    } else {
        json!({"data": [row("120230011223344557", "10.25")], "paging": {"cursors": {"before": "2"}}})
    };
    axum::Json(answer).into_response()
}

/// A fake Graph server on loopback and the spend app pulling from it.
async fn with_fake_graph(stores: &Stores, mode: Graph, days: u32) -> (axum::Router, Fake) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v21.0", listener.local_addr().unwrap());
    let today = shared::time::Timestamp::now().as_datetime().date_naive();
    let day = |date: chrono::NaiveDate| date.format("%Y-%m-%d").to_string();
    let fake = Fake {
        mode,
        base: base.clone(),
        since: day(today - chrono::Days::new(u64::from(days) - 1)),
        until: day(today),
        calls: Arc::default(),
    };
    let graph = axum::Router::new()
        .route("/v21.0/{account}/insights", axum::routing::get(insights))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, graph).await.unwrap() });
    let retry = spend::Retry {
        attempts: 3,
        first_pause: std::time::Duration::from_millis(5),
    };
    let meta =
        spend::MetaSync::new(&base, ACCOUNT, shared::secret::Secret::new(TOKEN)).with_retry(retry);
    let app =
        shared::http::serve_json_errors(spend_router(&secrets().admin_keys, stores, Some(meta)));
    (app, fake)
}

async fn the_meta_pull_follows_the_pages_and_retries_the_rate_limit(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let (app, fake) = with_fake_graph(&stores, Graph::RateLimitedOnce, 3).await;
    let (status, body) = call(
        &app,
        admin_request("POST", "/spend/sync/meta", Some(json!({"days": 3}))),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{body} {:?}",
        fake.calls.lock().unwrap()
    );
    assert_eq!(body["pages"], 2);
    assert_eq!(body["rows"], 2);
    assert_eq!(
        (body["imported"].clone(), body["replaced"].clone()),
        (json!(2), json!(0))
    );
    assert_eq!(
        (body["since"].clone(), body["until"].clone()),
        (json!(fake.since), json!(fake.until))
    );
    assert_eq!(*fake.calls.lock().unwrap(), ["page 1", "page 1", "page 2"]);
    let window = format!("since={}&until={}", fake.since, fake.until);
    let by_ad = report(&app, &format!("group_by=ad&{window}")).await;
    assert_eq!(
        spend_of(&by_ad),
        [
            ("120230011223344556".into(), "BRL".into(), "5339.50".into()),
            ("120230011223344557".into(), "BRL".into(), "10.25".into()),
        ]
    );
    assert_eq!(by_ad["rows"][0]["name"], "Ad 120230011223344556");
    // Pulled again, the same rows replace themselves.
    let (app, _) = with_fake_graph(&stores, Graph::Paged, 3).await;
    let (status, body) = call(
        &app,
        admin_request("POST", "/spend/sync/meta", Some(json!({"days": 3}))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["imported"].clone(), body["replaced"].clone()),
        (json!(0), json!(2))
    );
    assert_eq!(
        report(
            &app,
            &format!("group_by=ad&since={}&until={}", fake.since, fake.until)
        )
        .await,
        by_ad
    );
}

async fn a_token_error_is_told_clearly_and_writes_nothing(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let (app, fake) = with_fake_graph(&stores, Graph::TokenErrorOnPage2, 7).await;
    let (status, body) = call(&app, admin_request("POST", "/spend/sync/meta", None)).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["code"], "meta_token_rejected");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("Session has expired") && message.contains("META_ACCESS_TOKEN"),
        "{message}"
    );
    assert!(!message.contains(TOKEN), "the token is never shown");
    assert_eq!(*fake.calls.lock().unwrap(), ["page 1", "page 2"]);
    let window = format!("since={}&until={}", fake.since, fake.until);
    let by_ad = report(&app, &format!("group_by=ad&{window}")).await;
    assert_eq!(
        by_ad["rows"],
        json!([]),
        "page 1's row was not written either"
    );
}

on_every_store!(
    a_google_export_imports_as_it_comes_and_again_changes_nothing,
    meta_and_tiktok_exports_read_their_own_layouts_and_locales,
    bad_lines_get_their_reasons_and_change_nothing,
    json_rows_are_replaced_by_their_key,
    the_report_sets_spend_against_the_conversations_the_ads_started,
    report_parameters_are_range_checked,
    the_meta_pull_follows_the_pages_and_retries_the_rate_limit,
    a_token_error_is_told_clearly_and_writes_nothing,
);

mod ad_names {
    use super::*;

    async fn a_ctwa_contact_shows_its_ads_names_on_reads_and_listings(backend: Backend) {
        let Some((stores, _guard)) = fresh_stores(backend).await else {
            return;
        };
        let engine = engine_app(&stores);
        let app = &engine.app;
        let now = shared::time::Timestamp::now();
        for (n, ad) in ["120230011223344556", "999"].into_iter().enumerate() {
            let delivery = whatsapp_message(
                "111",
                &format!("1650555100{n}"),
                &format!("wamid.names{n}"),
                now.unix_seconds() - n as i64,
                "hi",
                Some(ctwa_referral(ad)),
            );
            deliver_until_accepted(app, &delivery).await;
        }
        let row = json!([{"date": now.day(), "platform": "meta", "campaign": "CTWA Verao", "ad_set": "Sudeste 25-44",
                          "ad_id": "120230011223344556", "ad_name": "Video A", "spend": "1", "currency": "BRL"}]);
        let (status, _) = call(app, admin_request("POST", "/spend", Some(row))).await;
        assert_eq!(status, StatusCode::OK);
        let read = contact(app, "111", "16505551000").await.unwrap();
        let acquisition = &read["acquisition"];
        assert_eq!(acquisition["ad_id"], "120230011223344556");
        assert_eq!(acquisition["ad_name"], "Video A");
        assert_eq!(acquisition["ad_set_name"], "Sudeste 25-44");
        assert_eq!(acquisition["campaign_name"], "CTWA Verao");
        let (status, listing) = call(app, admin_get("/instances/111/contacts")).await;
        assert_eq!(status, StatusCode::OK, "{listing}");
        let listed = listing["contacts"].as_array().unwrap();
        assert_eq!(listed.len(), 2);
        let named: Vec<(&str, Value)> = listed
            .iter()
            .map(|c| {
                (
                    c["acquisition"]["ad_id"].as_str().unwrap(),
                    c["acquisition"]["ad_name"].clone(),
                )
            })
            .collect();
        assert_eq!(
            named,
            [
                ("120230011223344556", json!("Video A")),
                ("999", Value::Null)
            ],
            "an ad no spend row named has no names"
        );
        assert!(listed[1]["acquisition"].get("campaign_name").is_none());
    }

    on_every_store!(a_ctwa_contact_shows_its_ads_names_on_reads_and_listings);
}

mod web_campaigns {
    //! Web visits as conversations: counted under their `utm_campaign` only when the widget's
    //! admin-made `campaigns` list holds it, through the widget's event and ref-code paths.
    use super::*;
    use futures::StreamExt;

    const INSTANCE: &str = "106540352242922";
    const SHOP: &str = "https://shop.example";

    fn visit(visitor: &str, campaign: &str) -> Value {
        let page = format!("https://shop.example/p?utm_source=google&utm_campaign={campaign}");
        json!({"instance_id": INSTANCE, "visitor_id": visitor, "page_url": page})
    }

    async fn visited(app: &axum::Router, path: &str, key: &str, body: Value) -> Value {
        let (status, _, answer) = widget_post(app, path, Some(SHOP), key, body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer
    }

    /// The contact once the matcher has decided on its first message.
    async fn decided(app: &axum::Router, wa_id: &str) -> Value {
        for _ in 0..200 {
            let seen = contact(app, INSTANCE, wa_id).await.unwrap_or(Value::Null);
            if seen.get("rules_checked_at").is_some() || !seen["acquisition"].is_null() {
                return seen;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the matcher did not decide on the contact");
    }

    /// `[key, currency, conversations, cost_per_conversation]` of each row.
    fn conversations_of(report: &Value) -> Vec<[Value; 4]> {
        let rows = report["rows"].as_array().unwrap().iter();
        rows.map(|row| {
            ["key", "currency", "conversations", "cost_per_conversation"].map(|c| row[c].clone())
        })
        .collect()
    }

    async fn listed_campaigns_count_and_others_do_not(backend: Backend) {
        let Some((stores, _guard)) = fresh_stores(backend).await else {
            return;
        };
        let app = engine_app(&stores).app;
        let (status, config) = call(
            &app,
            admin_request(
                "POST",
                &format!("/instances/{INSTANCE}/widget"),
                Some(json!({"allowed_origins": [SHOP], "campaigns": [" Spring Sale "]})),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{config}");
        assert_eq!(config["campaigns"], json!(["Spring Sale"]), "trimmed");
        let (_, shown) = call(&app, admin_get(&format!("/instances/{INSTANCE}/widget"))).await;
        assert_eq!(shown["campaigns"], json!(["Spring Sale"]));
        let key = config["widget_key"].as_str().unwrap();
        for (visitor, campaign) in [
            ("v1", "Spring%20Sale"),
            ("v2", "Spring+Sale"),
            ("v3", "Unlisted"),
            ("v4", "spring+sale"),
        ] {
            visited(&app, "/webhooks/widget", key, visit(visitor, campaign)).await;
        }
        // The same campaign carried into WhatsApp by a ref code.
        let answer = visited(
            &app,
            "/webhooks/widget/ref",
            key,
            visit("v5", "Spring+Sale"),
        )
        .await;
        let text = format!("Hi!{}", answer["text_suffix"].as_str().unwrap());
        let now = shared::time::Timestamp::now();
        let delivery = whatsapp_message(
            INSTANCE,
            "5511987650001",
            "wamid.w1",
            now.unix_seconds(),
            &text,
            None,
        );
        deliver_until_accepted(&app, &delivery).await;
        let carried = decided(&app, "5511987650001").await;
        assert_eq!(carried["acquisition"]["via"], "wa.me", "{carried}");
        // A campaign off the list is stored and shown, just not counted.
        let unlisted = contact(&app, INSTANCE, "web:v3").await.unwrap();
        assert_eq!(unlisted["acquisition"]["utm"]["campaign"], "Unlisted");
        let today = now.day();
        let rows = json!([
            {"date": today, "platform": "google", "campaign": "Spring Sale", "spend": "100.00", "currency": "USD"},
            {"date": today, "platform": "google", "campaign": "Unlisted", "spend": "50.00", "currency": "USD"}
        ]);
        let (status, _) = call(&app, admin_request("POST", "/spend", Some(rows))).await;
        assert_eq!(status, StatusCode::OK);
        let window = format!("group_by=campaign&since={today}&until={today}");
        let by_campaign = report(&app, &window).await;
        assert_eq!(
            conversations_of(&by_campaign),
            [
                [json!("Spring Sale"), json!("USD"), json!(3), json!("33.33")],
                [json!("Unlisted"), json!("USD"), json!(0), Value::Null],
            ],
            "two widget visits and one through WhatsApp; 100.00 / 3 to the cent"
        );
        let only_here = report(&app, &format!("{window}&instance_id={INSTANCE}")).await;
        assert_eq!(only_here["rows"], by_campaign["rows"]);
        // A flood of distinct campaigns from whoever holds the publishable key: stored on the
        // visits, never a counter, so the report (every counted campaign has a row) is as it was.
        // DynamoDB Local takes about 25 ms a visit, so it gets a tenth of the flood.
        let visits = match backend {
            Backend::Embedded => 10_000,
            Backend::Dynamo => 1_000,
        };
        let flood = futures::stream::iter(0..visits)
            .map(|n| {
                let app = app.clone();
                async move {
                    let body = visit(&format!("flood-{n}"), &format!("campaign-{n}"));
                    widget_post(&app, "/webhooks/widget", Some(SHOP), key, body)
                        .await
                        .0
                }
            })
            .buffer_unordered(16)
            .filter(|status| std::future::ready(*status != StatusCode::OK))
            .count()
            .await;
        assert_eq!(flood, 0, "every flood visit was answered 200");
        assert_eq!(report(&app, &window).await["rows"], by_campaign["rows"]);
        let (_, stats) = call(
            &app,
            admin_get(&format!("/instances/{INSTANCE}/stats?days=1")),
        )
        .await;
        assert_eq!(stats["new_contacts"], visits + 5, "{stats}");
    }

    on_every_store!(listed_campaigns_count_and_others_do_not);
}

mod web_campaign_list {
    use super::*;

    async fn a_bad_campaigns_list_is_refused_by_name_and_changes_nothing(backend: Backend) {
        let Some((stores, _guard)) = fresh_stores(backend).await else {
            return;
        };
        let app = engine_app(&stores).app;
        let path = "/instances/106540352242922/widget";
        let too_many: Vec<String> = (0..=100).map(|n| format!("c{n}")).collect();
        for (campaigns, field) in [
            (json!(too_many), "campaigns"),
            (json!("Spring Sale"), "campaigns"),
            (json!(["ok", 7]), "campaigns"),
            (json!(["ok", "  "]), "campaigns[1]"),
            (json!(["x".repeat(101)]), "campaigns[0]"),
        ] {
            let body = json!({"allowed_origins": ["https://shop.example"], "campaigns": campaigns});
            let (status, answer) = call(&app, admin_request("POST", path, Some(body))).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
            assert_eq!(answer["error"]["field"], field, "{answer}");
        }
        let (status, _) = call(&app, admin_get(path)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "nothing was stored");
        let most: Vec<String> = (0..100)
            .map(|n| format!("{n:03}{}", "x".repeat(97)))
            .collect();
        let body = json!({"allowed_origins": ["https://shop.example"], "campaigns": most});
        let (status, answer) = call(&app, admin_request("POST", path, Some(body))).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        assert_eq!(answer["campaigns"], json!(most));
    }

    async fn the_campaigns_are_replaced_and_the_key_kept(backend: Backend) {
        let Some((stores, _guard)) = fresh_stores(backend).await else {
            return;
        };
        let app = engine_app(&stores).app;
        let path = "/instances/106540352242922/widget";
        let campaigns = format!("{path}/campaigns");
        let (status, answer) = call(
            &app,
            admin_request("PUT", &campaigns, Some(json!({"campaigns": ["a"]}))),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
        let body = json!({"allowed_origins": ["https://shop.example"], "campaigns": ["a"]});
        let (_, created) = call(&app, admin_request("POST", path, Some(body))).await;
        for (body, field) in [
            (json!({}), "campaigns"),
            (json!({"campaigns": ["ok", "  "]}), "campaigns[1]"),
            (
                json!({"campaigns": ["ok"], "allowed_origins": []}),
                "allowed_origins",
            ),
        ] {
            let (status, answer) = call(&app, admin_request("PUT", &campaigns, Some(body))).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
            assert_eq!(answer["error"]["field"], field, "{answer}");
        }
        let (_, shown) = call(&app, admin_get(path)).await;
        assert_eq!(shown, created, "refused edits changed nothing");
        let body = json!({"campaigns": [" Spring Sale ", "b2b"]});
        let (status, edited) = call(&app, admin_request("PUT", &campaigns, Some(body))).await;
        assert_eq!(status, StatusCode::OK, "{edited}");
        assert_eq!(edited["campaigns"], json!(["Spring Sale", "b2b"]));
        assert_eq!(
            edited["widget_key"], created["widget_key"],
            "the snippet keeps working"
        );
        assert_eq!(edited["allowed_origins"], created["allowed_origins"]);
        let (_, shown) = call(&app, admin_get(path)).await;
        assert_eq!(shown, edited);
    }

    on_every_store!(
        a_bad_campaigns_list_is_refused_by_name_and_changes_nothing,
        the_campaigns_are_replaced_and_the_key_kept,
    );
}
