//! The dashboard's Contacts pages through their routes: the listing against the contacts API
//! (filters, paging, ring classes), the CSV download against the API's, the contact panel
//! against `GET …/contacts/{id}`, and bad query parameters.

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use integration_tests::*;
use serde_json::{Value, json};
use std::time::Duration;
use tower::ServiceExt;

on_every_store!(
    the_page_lists_what_the_api_lists_with_each_sources_ring,
    pages_follow_the_signed_cursor_and_the_csv_is_the_apis,
    the_contact_panel_shows_what_the_contact_api_answers,
    bad_query_parameters_answer_a_400_page,
);

const INSTANCE: &str = "106540352242922";

/// A GET with the session cookie (or the admin key when `cookie` is `None`): status,
/// content type and body.
async fn get(app: &Router, path: &str, cookie: Option<&str>) -> (StatusCode, String, String) {
    let mut request = Request::get(path);
    request = match cookie {
        Some(cookie) => request.header(header::COOKIE, cookie),
        None => request.header(header::AUTHORIZATION, format!("Bearer {ADMIN_KEY}")),
    };
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

async fn sign_in(app: &Router) -> String {
    dashboard_cookie(app, READONLY_KEY).await
}

/// The contact ids of a page's rows, in order.
fn row_ids(body: &str) -> Vec<String> {
    body.split("data-contact-id=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect()
}

/// The avatar ring class of one contact's row.
fn ring_of(body: &str, contact_id: &str) -> String {
    let row = &body[body
        .find(&format!("data-contact-id=\"{contact_id}\""))
        .unwrap()..];
    let at = row.find("class=\"avatar ").unwrap() + 14;
    row[at..at + row[at..].find('"').unwrap()].to_owned()
}

fn api_ids(listing: &Value) -> Vec<String> {
    listing["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|contact| contact["contact_id"].as_str().unwrap().to_owned())
        .collect()
}

/// A Meta ad contact (4001), a TikTok rule match (4002) and an unattributed one (4003), a
/// minute apart; the rule's id once the matcher has run.
async fn scripted(app: &Router) -> String {
    let rule = json!({"name": "TikTok", "platform": "tiktok", "campaign": "summer",
        "match": {"kind": "contains", "pattern": "tiktok"}});
    let (_, created) = call(
        app,
        admin_request("POST", &format!("/instances/{INSTANCE}/rules"), Some(rule)),
    )
    .await;
    let start = chrono::Utc::now().timestamp() - 3_600;
    for (n, (contact, text, referral)) in [
        ("4001", "hello", Some(ctwa_referral("ad-1"))),
        ("4002", "tiktok one", None),
        ("4003", "just hi", None),
    ]
    .into_iter()
    .enumerate()
    {
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
    for _ in 0..200 {
        let (_, rules) = call(
            app,
            admin_get(&format!("/instances/{INSTANCE}/contacts?kind=rule")),
        )
        .await;
        if !api_ids(&rules).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    created["id"].as_str().unwrap().to_owned()
}

/// The dashboard, the webhook and the matcher over one set of stores.
fn apps(stores: &Stores) -> (Router, local_server::LocalEngine) {
    (dashboard_app(stores), engine_app(stores))
}

async fn the_page_lists_what_the_api_lists_with_each_sources_ring(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let (app, engine) = apps(&stores);
    let rule_id = scripted(&engine.app).await;
    let cookie = sign_in(&app).await;
    let contacts = format!("/app/instances/{INSTANCE}/contacts");
    for query in [
        String::new(),
        "?kind=rule".to_owned(),
        "?platform=tiktok".to_owned(),
        "?campaign=summer".to_owned(),
        format!("?rule_id={rule_id}"),
        "?unattributed=true".to_owned(),
        "?unattributed=false&kind=meta_ad".to_owned(),
        "?kind=&platform=&unattributed=".to_owned(),
    ] {
        let (status, content_type, body) =
            get(&app, &format!("{contacts}{query}"), Some(&cookie)).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(content_type, "text/html; charset=utf-8");
        let api_query = query.replace("kind=&platform=&unattributed=", "");
        let (_, listing) = call(
            &app,
            admin_get(&format!("/instances/{INSTANCE}/contacts{api_query}")),
        )
        .await;
        assert_eq!(row_ids(&body), api_ids(&listing), "{query}");
    }
    let (_, _, all) = get(&app, &contacts, Some(&cookie)).await;
    assert_eq!(row_ids(&all), ["4003", "4002", "4001"]);
    assert_eq!(ring_of(&all, "4001"), "ring-facebook");
    assert_eq!(ring_of(&all, "4002"), "ring-tiktok");
    assert_eq!(ring_of(&all, "4003"), "ring-none");
    // The form shows the filters again, and the download link carries them.
    let (_, _, filtered) = get(
        &app,
        &format!("{contacts}?kind=rule&campaign=summer"),
        Some(&cookie),
    )
    .await;
    assert!(filtered.contains("<option value=\"rule\" selected>"));
    assert!(filtered.contains("name=\"campaign\" value=\"summer\""));
    assert!(filtered.contains(&format!(
        "href=\"{contacts}.csv?kind=rule&#38;campaign=summer\""
    )));
    assert!(!filtered.contains("style="));
}

/// The `href` of the page's Next page link, unescaped.
fn next_link(body: &str) -> Option<String> {
    let at = body.find("id=\"next-page\"")?;
    let start = body[..at].rfind("href=\"").unwrap() + 6;
    let end = start + body[start..].find('"').unwrap();
    Some(body[start..end].replace("&#38;", "&"))
}

async fn pages_follow_the_signed_cursor_and_the_csv_is_the_apis(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    // 2026-03-01T00:00:00Z, then one a minute.
    let start = 1_772_323_200;
    let count = shared::contact::listing::DEFAULT_LIMIT as i64 + 20;
    ingest_many_contacts(&stores, INSTANCE, start, count).await;
    let app = dashboard_app(&stores);
    let cookie = sign_in(&app).await;
    let mut seen = Vec::new();
    let mut path = format!("/app/instances/{INSTANCE}/contacts?since=2026-03-01&until=2026-03-01");
    for _ in 0..4 {
        let (status, _, body) = get(&app, &path, Some(&cookie)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        seen.extend(row_ids(&body));
        match next_link(&body) {
            Some(next) => {
                assert!(
                    next.contains("since=2026-03-01&until=2026-03-01&cursor="),
                    "{next}"
                );
                path = next;
            }
            None => break,
        }
    }
    let expected: Vec<String> = (0..count)
        .rev()
        .map(|n| format!("{}", 5_511_000_000 + n))
        .collect();
    assert_eq!(seen, expected);
    // The next day holds none of them.
    let (_, _, empty) = get(
        &app,
        &format!("/app/instances/{INSTANCE}/contacts?since=2026-03-02"),
        Some(&cookie),
    )
    .await;
    assert!(row_ids(&empty).is_empty());

    // The download is the API's export, byte for byte, for the same filters.
    for (page_query, api_query) in [
        ("", ""),
        ("?kind=meta_ad", "?kind=meta_ad"),
        (
            "?since=2026-03-01&until=2026-03-01",
            "?since=2026-03-01T00:00:00Z&until=2026-03-02T00:00:00Z",
        ),
    ] {
        let (status, content_type, download) = get(
            &app,
            &format!("/app/instances/{INSTANCE}/contacts.csv{page_query}"),
            Some(&cookie),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, "text/csv; charset=utf-8");
        let (_, _, api) = get(
            &app,
            &format!("/instances/{INSTANCE}/contacts.csv{api_query}"),
            None,
        )
        .await;
        assert_eq!(download, api, "{page_query}");
    }
    let (_, _, download) = get(
        &app,
        &format!("/app/instances/{INSTANCE}/contacts.csv?kind=meta_ad"),
        Some(&cookie),
    )
    .await;
    assert_eq!(download.lines().count(), 2);
    // Without a session, the sign-in page.
    let request = Request::get(format!("/app/instances/{INSTANCE}/contacts.csv"))
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

async fn the_contact_panel_shows_what_the_contact_api_answers(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let (app, engine) = apps(&stores);
    scripted(&engine.app).await;
    journey_of_4001(&engine.app).await;
    let cookie = sign_in(&app).await;
    let (_, _, list) = get(
        &app,
        &format!("/app/instances/{INSTANCE}/contacts"),
        Some(&cookie),
    )
    .await;
    assert!(list.contains(&format!("href=\"/app/instances/{INSTANCE}/contacts/4001\"")));
    for contact_id in ["4001", "4002", "4003"] {
        let (status, _, body) = get(
            &app,
            &format!("/app/instances/{INSTANCE}/contacts/{contact_id}"),
            Some(&cookie),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (_, contact) = call(
            &app,
            admin_get(&format!("/instances/{INSTANCE}/contacts/{contact_id}")),
        )
        .await;
        let field = |name: &str| {
            let at = body.find(&format!("data-field=\"{name}\">")).unwrap() + name.len() + 14;
            body[at..at + body[at..].find('<').unwrap()].to_owned()
        };
        assert_eq!(field("contact_id"), contact["contact_id"].as_str().unwrap());
        assert_eq!(field("channel"), contact["channel"].as_str().unwrap());
        assert_eq!(
            field("first_seen_at"),
            contact["first_seen_at"].as_str().unwrap()
        );
        assert_eq!(field("message_count"), contact["message_count"].to_string());
        assert_eq!(
            field("first_message"),
            contact["first_message"]["text"].as_str().unwrap()
        );
        let acquisition = &contact["acquisition"];
        assert_eq!(
            field("source"),
            acquisition["kind"].as_str().unwrap_or("none")
        );
        assert_eq!(
            field("platform"),
            acquisition["platform"].as_str().unwrap_or_default()
        );
        assert_eq!(
            body.matches("<tr data-touch>").count(),
            contact["touches"].as_array().unwrap().len()
        );
        let events = contact["events"].as_array().unwrap();
        assert_eq!(body.matches("<tr data-event>").count(), events.len());
        for event in events {
            assert!(body.contains(&format!("<td>{}</td>", event["name"].as_str().unwrap())));
        }
        let (_, journey) = call(
            &engine.app,
            admin_get(&format!(
                "/instances/{INSTANCE}/contacts/{contact_id}/journey"
            )),
        )
        .await;
        for count in ["sends", "clicks", "conversions"] {
            assert_eq!(
                field(count),
                journey[count].to_string(),
                "{contact_id} {count}"
            );
        }
        for total in journey["revenue"].as_array().unwrap() {
            let currency = total["currency"].as_str().unwrap();
            let at =
                body.find(&format!("data-revenue=\"{currency}\">")).unwrap() + 16 + currency.len();
            let shown = &body[at..at + body[at..].find('<').unwrap()];
            assert_eq!(shown, total["amount"].as_str().unwrap(), "{contact_id}");
        }
        if contact_id == "4001" {
            assert_eq!(journey["sends"], 1);
            assert_eq!(journey["clicks"], 1);
            assert_eq!(journey["revenue"][0]["amount"], "42.00");
        }
    }
    let (status, _, missing) = get(
        &app,
        &format!("/app/instances/{INSTANCE}/contacts/9999"),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(missing.contains("no such contact"));
}

/// An offer, a send to 4001, its click and a conversion of 42.00 through the engine's routes.
async fn journey_of_4001(engine: &Router) {
    let offer = json!({"offer_id": "shoes", "name": "Shoes",
        "destination_url": "https://shop.example/shoes?aff={click_id}", "click_window_days": 7});
    let (status, body) = call(engine, admin_request("POST", "/offers", Some(offer))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let send = json!({"instance_id": INSTANCE, "contact_id": "4001", "message_id": "wamid.out-1",
        "campaign": "spring", "creative": "a", "offer_id": "shoes"});
    let (status, body) = call(engine, admin_request("POST", "/sends", Some(send))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let code = body["tracked_url"]
        .as_str()
        .unwrap()
        .rsplit_once("/c/")
        .unwrap()
        .1
        .to_owned();
    let visitor = std::net::SocketAddr::from(([203, 0, 113, 9], 50_000));
    let request = Request::get(format!("/c/{code}"))
        .extension(axum::extract::ConnectInfo(visitor))
        .header(
            "user-agent",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15",
        )
        .body(Body::empty())
        .unwrap();
    let response = engine.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let click_id = location.rsplit_once("aff=").unwrap().1;
    let postback = Request::get(format!(
        "/postbacks/generic?token={POSTBACK_TOKEN}&click_id={click_id}&conversion_id=ORDER-1&payout=42.00"
    ))
    .body(Body::empty())
    .unwrap();
    let (status, body) = call(engine, postback).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn bad_query_parameters_answer_a_400_page(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = dashboard_app(&stores);
    let cookie = sign_in(&app).await;
    for route in ["contacts", "contacts.csv"] {
        for query in [
            "?kind=tv",
            "?unattributed=maybe",
            "?since=2026-02-30",
            "?until=yesterday",
            "?since=2026-03-02&until=2026-03-01",
            "?since=99999-01-01",
        ] {
            let (status, content_type, body) = get(
                &app,
                &format!("/app/instances/{INSTANCE}/{route}{query}"),
                Some(&cookie),
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{route}{query}: {body}");
            assert_eq!(content_type, "text/html; charset=utf-8", "{route}{query}");
            assert!(body.contains("Bad request"), "{route}{query}");
        }
    }
    let (status, _, _) = get(
        &app,
        &format!("/app/instances/{INSTANCE}/contacts?cursor=abc"),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
