//! Product referrals through the webhook, on both stores: WhatsApp's `referred_product`,
//! Messenger Shops and Instagram Shop products become the acquisition kind `product` (with
//! their platform and counters), a Meta ad naming a product stays `meta_ad` and gains its
//! `product_id`, and the earliest touch wins in either arrival order.

use http::StatusCode;
use integration_tests::*;
use serde_json::{Value, json};

on_every_store!(
    each_channel_s_product_referral_is_a_product_acquisition,
    an_ad_naming_a_product_stays_a_meta_ad_with_its_product,
    an_earlier_ad_wins_over_a_product_in_either_arrival_order
);

/// (fixture, instance, contact, platform, catalog id, product id)
type Channel = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
);

const CHANNELS: [Channel; 3] = [
    (
        "whatsapp_referred_product.json",
        "106540352242922",
        "821098765432",
        "whatsapp",
        Some("1537566713439863"),
        "tee-blue-m",
    ),
    (
        "messenger_product_referral.json",
        "108822334455667",
        "7391022845561209",
        "facebook",
        None,
        "6021948837712345",
    ),
    (
        "instagram_product_referral.json",
        "17841400123456789",
        "662019384756102",
        "instagram",
        None,
        "5599887766554433",
    ),
];

async fn deliver(app: &axum::Router, body: &[u8]) -> Value {
    let (status, report) = call(app, signed_delivery(body)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    report
}

async fn get(app: &axum::Router, path: &str) -> Value {
    let (status, body) = call(app, admin_get(path)).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

/// The fixture's event, moved to `days_ago` days before now so that the stats' window holds it.
fn recent(fixture_name: &str, days_ago: i64) -> Vec<u8> {
    let text = String::from_utf8(fixture(fixture_name)).unwrap();
    let mut body: Value = serde_json::from_str(&text).unwrap();
    let at = chrono::Utc::now().timestamp() - days_ago * 86_400;
    let entry = &mut body["entry"][0];
    if entry.get("changes").is_some() {
        entry["changes"][0]["value"]["messages"][0]["timestamp"] = json!(at.to_string());
    } else {
        entry["messaging"][0]["timestamp"] = json!(at * 1000);
    }
    serde_json::to_vec(&body).unwrap()
}

async fn each_channel_s_product_referral_is_a_product_acquisition(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    let app = &engine.app;
    for (name, instance, contact_id, platform, catalog_id, product_id) in CHANNELS {
        let body = recent(name, 1);
        let report = deliver(app, &body).await;
        assert_eq!(report["applied"], 1, "{name}: {report}");
        assert_eq!(deliver(app, &body).await["duplicates"], 1, "{name}");

        let contact = contact(app, instance, contact_id).await.expect(name);
        let acquisition = &contact["acquisition"];
        assert_eq!(acquisition["kind"], "product", "{name}: {contact}");
        assert_eq!(acquisition["platform"], platform, "{name}");
        assert_eq!(acquisition["product_id"], product_id, "{name}");
        assert_eq!(acquisition["catalog_id"], json!(catalog_id), "{name}");
        assert!(acquisition["ad_id"].is_null(), "{name}");
        let inquiries: Vec<&Value> = contact["events"]
            .as_array()
            .expect("the journey")
            .iter()
            .filter(|event| event["name"] == "product_inquiry")
            .collect();
        assert_eq!(
            inquiries.len(),
            1,
            "{name}: once, though delivered twice: {contact}"
        );
        assert_eq!(
            inquiries[0]["properties"]["product_id"], product_id,
            "{name}"
        );
        assert_eq!(
            inquiries[0]["properties"].get("catalog_id").cloned(),
            catalog_id.map(Value::from),
            "{name}"
        );

        let stats = get(app, &format!("/instances/{instance}/stats?days=7")).await;
        assert_eq!(stats["by_kind"]["product"], 1, "{name}: {stats}");
        assert_eq!(stats["meta_ads"], 0, "{name}: {stats}");
        let platforms = stats["by_platform"].as_array().unwrap();
        assert!(
            platforms
                .iter()
                .any(|row| row["platform"] == platform && row["contacts"] == 1),
            "{name}: {stats}"
        );

        let listed = get(app, &format!("/instances/{instance}/contacts?kind=product")).await;
        assert_eq!(listed["contacts"].as_array().unwrap().len(), 1, "{name}");
        let listed = get(app, &format!("/instances/{instance}/contacts?kind=meta_ad")).await;
        assert!(listed["contacts"].as_array().unwrap().is_empty(), "{name}");

        let (status, csv) = call(
            app,
            admin_get(&format!("/instances/{instance}/contacts.csv")),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let csv = csv.as_str().unwrap();
        let row = csv.lines().nth(1).expect("one row");
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(cells[0], contact_id, "{row}");
        assert_eq!(&cells[3..6], ["product", product_id, platform], "{row}");
    }
}

async fn an_ad_naming_a_product_stays_a_meta_ad_with_its_product(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    let app = &engine.app;
    let messenger = json!({"object": "page", "entry": [{"id": "9001", "time": 1764608400000i64, "messaging": [{
        "sender": {"id": "7001"}, "recipient": {"id": "9001"}, "timestamp": 1764608400000i64,
        "referral": {"ref": "spring", "source": "ADS", "type": "OPEN_THREAD", "ad_id": "6045246247433",
            "ads_context_data": {"ad_title": "Spring tees", "product_id": "tee-blue-m"}}}]}]});
    deliver(app, &serde_json::to_vec(&messenger).unwrap()).await;
    let acquisition = &contact(app, "9001", "7001").await.unwrap()["acquisition"];
    assert_eq!(acquisition["kind"], "meta_ad", "{acquisition}");
    assert_eq!(acquisition["ad_id"], "6045246247433");
    assert_eq!(acquisition["product_id"], "tee-blue-m");

    // A click-to-WhatsApp ad whose first message came from the ad's product.
    let mut whatsapp: Value = serde_json::from_slice(&whatsapp_message(
        "9002",
        "15550009",
        "wamid.p1",
        1_764_608_400,
        "this one?",
        Some(ctwa_referral("120226305854810726")),
    ))
    .unwrap();
    whatsapp["entry"][0]["changes"][0]["value"]["messages"][0]["context"] = json!({
        "from": "15550000000", "id": "wamid.catalog",
        "referred_product": {"catalog_id": "1537566713439863", "product_retailer_id": "cap-black"}});
    deliver(app, &serde_json::to_vec(&whatsapp).unwrap()).await;
    let acquisition = &contact(app, "9002", "15550009").await.unwrap()["acquisition"];
    assert_eq!(acquisition["kind"], "meta_ad", "{acquisition}");
    assert_eq!(acquisition["product_id"], "cap-black");
    assert_eq!(acquisition["catalog_id"], "1537566713439863");
}

/// A product message at `at`, from the WhatsApp fixture's sender.
fn product_message(at: i64) -> Vec<u8> {
    let mut body: Value =
        serde_json::from_slice(&fixture("whatsapp_referred_product.json")).unwrap();
    body["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = json!(at.to_string());
    serde_json::to_vec(&body).unwrap()
}

async fn an_earlier_ad_wins_over_a_product_in_either_arrival_order(backend: Backend) {
    let now = chrono::Utc::now().timestamp() - 3_600;
    let product = product_message(now);
    let ad = whatsapp_message(
        "106540352242922",
        "821098765432",
        "wamid.ad",
        now - 60,
        "hi",
        Some(ctwa_referral("120226305854810726")),
    );
    let mut outcomes = Vec::new();
    for order in [[&product, &ad], [&ad, &product]] {
        let Some((stores, _guard)) = fresh_stores(backend).await else {
            return;
        };
        let engine = engine_app(&stores);
        for body in order {
            deliver(&engine.app, body).await;
        }
        let mut contact = contact(&engine.app, "106540352242922", "821098765432")
            .await
            .unwrap();
        assert_eq!(contact["acquisition"]["kind"], "meta_ad", "{contact}");
        contact.as_object_mut().unwrap().remove("version");
        let counters = nonzero_counters(stores.contacts.as_ref(), "106540352242922").await;
        assert!(
            !counters.iter().any(|(_, name, _)| name == "kind:product"),
            "{counters:?}"
        );
        outcomes.push((contact, counters));
    }
    assert_eq!(outcomes[0], outcomes[1]);
}
