//! The public routes (widget event, widget ref, click redirect, postback) as an outsider uses
//! them: with another channel's ids as `visitor_id`, with an allowed `Origin` forged outside a
//! browser, with replayed event ids, and with the largest and most varied inputs a stranger can
//! send. They touch only web contacts, answer only what the request brought, and grow no record
//! or counter set beyond its stated bound — on every store.

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use integration_tests::*;
use serde_json::{Value, json};
use shared::contact::TOUCH_HISTORY_CAP;
use shared::contact::store::ContactQueries;
use shared::ids::InstanceId;
use shared::time::Timestamp;
use shared::web::{MAX_PARAM_BYTES, MAX_STORED_URL_BYTES, MAX_URL_BYTES, WebPlatform};
use std::collections::BTreeMap;
use tower::ServiceExt;

on_every_store!(
    widget_calls_never_read_or_change_another_channels_contact,
    a_forged_origin_reads_nothing_stored,
    a_replayed_widget_event_changes_nothing,
    the_click_redirect_and_the_postback_answer_nothing_stored,
    the_largest_web_contact_a_stranger_can_make_fits_and_reads_back,
    the_largest_whatsapp_contact_fits_and_reads_back,
    a_flood_of_distinct_sources_makes_no_new_counter_names,
    the_ingestor_refuses_an_event_of_another_channel,
);

const INSTANCE: &str = "106540352242922";
const PHONE: &str = "5511987654321";
/// The Messenger fixture's page and PSID (the page is the instance).
const PAGE: &str = "448736998987654";
const PSID: &str = "7391029384756012";
const BSUID: &str = "BR.1502576394655843";
const SHOP: &str = "https://shop.example";

struct Site {
    app: Router,
    stores: Stores,
    key: String,
    page_key: String,
    _guard: StoreGuard,
}

/// An engine with widgets on the WhatsApp number and on the Messenger page, a WhatsApp contact
/// from a click-to-WhatsApp ad and a Messenger contact from a Messenger ad.
async fn site(backend: Backend) -> Option<Site> {
    let (stores, guard) = fresh_stores(backend).await?;
    let app = engine_app(&stores).app;
    let key = configure_widget(&app, INSTANCE, &[SHOP]).await;
    let page_key = configure_widget(&app, PAGE, &[SHOP]).await;
    let delivery = whatsapp_message(
        INSTANCE,
        PHONE,
        "wamid.ctwa-1",
        Timestamp::now().unix_seconds(),
        "Hi, is the red one in stock?",
        Some(ctwa_referral("120226305854800001")),
    );
    let (status, report) = call(&app, signed_delivery(&delivery)).await;
    assert_eq!(
        (status, report["applied"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    let fixture = fixture("messenger_referral_existing_thread.json");
    let (status, report) = call(&app, signed_delivery(&fixture)).await;
    assert_eq!(
        (status, report["applied"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    Some(Site {
        app,
        stores,
        key,
        page_key,
        _guard: guard,
    })
}

impl Site {
    /// A widget call from the shop's origin with the WhatsApp number's key.
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Option<String>, Value) {
        widget_post(&self.app, path, Some(SHOP), &self.key, body).await
    }
}

/// What any stored contact of the site holds that a stranger must never read back.
const STORED: [&str; 9] = [
    "120226305854800001",
    "clid-120226305854800001",
    "headline 120226305854800001",
    "Test Person",
    "Hi, is the red one in stock?",
    "120226305854811111",
    "Spring collection",
    "spring-promo",
    "Cj0KStoredGclid",
];

fn assert_holds_nothing_stored(answer: &Value, what: &str) {
    let text = answer.to_string();
    for stored in STORED {
        assert!(!text.contains(stored), "{what} leaks {stored:?}: {text}");
    }
}

fn event(instance: &str, visitor: &str, page_url: &str) -> Value {
    json!({"instance_id": instance, "visitor_id": visitor, "page_url": page_url,
        "message": "hello", "event_id": format!("e-{visitor}")})
}

/// Today's counters of `instance`.
async fn counters(site: &Site, instance: &str) -> BTreeMap<String, u64> {
    counters_of_day(site, instance, &Timestamp::now().day()).await
}

async fn counters_of_day(site: &Site, instance: &str, day: &str) -> BTreeMap<String, u64> {
    site.stores
        .contacts
        .load_counters(&InstanceId::parse(instance).unwrap(), day)
        .await
        .unwrap()
}

async fn widget_calls_never_read_or_change_another_channels_contact(backend: Backend) {
    let Some(site) = site(backend).await else {
        return;
    };
    let whatsapp_before = contact(&site.app, INSTANCE, PHONE).await.unwrap();
    let messenger_before = contact(&site.app, PAGE, PSID).await.unwrap();
    assert_eq!(whatsapp_before["acquisition"]["kind"], "meta_ad");
    assert_eq!(messenger_before["acquisition"]["kind"], "meta_ad");
    // The Messenger fixture's contact was first seen on its own (past) day.
    let messenger_day = messenger_before["first_seen_at"].as_str().unwrap()[..10].to_owned();
    let (whatsapp_counters, messenger_counters) = (
        counters(&site, INSTANCE).await,
        counters_of_day(&site, PAGE, &messenger_day).await,
    );
    // A phone number and a PSID are well-formed visitor ids: they name web contacts of their
    // own, never the WhatsApp or Messenger contact with that id.
    for (instance, key, visitor) in [(INSTANCE, &site.key, PHONE), (PAGE, &site.page_key, PSID)] {
        for path in ["/webhooks/widget", "/webhooks/widget/ref"] {
            let (status, _, answer) = widget_post(
                &site.app,
                path,
                Some(SHOP),
                key,
                event(instance, visitor, "https://shop.example/?utm_source=fb"),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{path}: {answer}");
            assert_holds_nothing_stored(&answer, path);
        }
        let web = contact(&site.app, instance, &format!("web:{visitor}"))
            .await
            .expect("a web contact of its own");
        assert_eq!(web["channel"], "web");
        assert_eq!(web["acquisition"]["kind"], "web");
        assert_eq!(web["message_count"], 1);
    }
    // A business-scoped id, a namespaced id or anything else that is not a visitor id is
    // refused before anything is read.
    for visitor in [BSUID, "web:5511987654321", "US.ENT.1502576394655843", "a#b"] {
        let (status, _, answer) = site
            .post(
                "/webhooks/widget",
                event(INSTANCE, visitor, "https://shop.example/"),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{visitor}: {answer}");
        assert_eq!(answer["error"]["field"], "visitor_id");
    }
    assert_eq!(
        contact(&site.app, INSTANCE, PHONE).await.unwrap(),
        whatsapp_before
    );
    assert_eq!(
        contact(&site.app, PAGE, PSID).await.unwrap(),
        messenger_before
    );
    let after = counters(&site, INSTANCE).await;
    assert_eq!(after["new_contacts"], whatsapp_counters["new_contacts"] + 1);
    assert_eq!(
        after["kind:web"], 1,
        "the web contact counts as web, not as an ad"
    );
    assert_eq!(after["kind:meta_ad"], whatsapp_counters["kind:meta_ad"]);
    assert_eq!(
        counters_of_day(&site, PAGE, &messenger_day).await,
        messenger_counters
    );
}

async fn a_forged_origin_reads_nothing_stored(backend: Backend) {
    let Some(site) = site(backend).await else {
        return;
    };
    // A visitor with a stored first touch from an ad click, then a script outside any browser
    // that knows the public key and the visitor id and forges the shop's Origin.
    let landing = "https://shop.example/?utm_source=google&gclid=Cj0KStoredGclid";
    let (status, _, _) = site
        .post("/webhooks/widget", event(INSTANCE, "v-victim", landing))
        .await;
    assert_eq!(status, StatusCode::OK);
    let victim = contact(&site.app, INSTANCE, "web:v-victim").await.unwrap();
    assert_eq!(
        victim["acquisition"]["click_ids"]["gclid"],
        "Cj0KStoredGclid"
    );
    let forged = |path: &'static str, body: Value| {
        let app = site.app.clone();
        let key = site.key.clone();
        async move {
            let request = Request::post(path)
                .header("content-type", "application/json")
                .header("x-widget-key", key)
                .header("origin", SHOP)
                .header("user-agent", "curl/8.5.0")
                .header("x-forwarded-for", "198.51.100.7")
                .body(Body::from(body.to_string()))
                .unwrap();
            call(&app, request).await
        }
    };
    let mut body = event(INSTANCE, "v-victim", "https://shop.example/other");
    body["event_id"] = json!("forged-1");
    let (status, answer) = forged("/webhooks/widget", body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer,
        json!({"instance_id": INSTANCE, "visitor_id": "v-victim", "contact_id": "web:v-victim",
            "event_id": "forged-1"}),
        "only what the request brought"
    );
    let (status, answer) = forged(
        "/webhooks/widget/ref",
        event(INSTANCE, "v-victim", "https://shop.example/other"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut keys: Vec<&str> = answer
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["expires_at", "ref", "text_suffix"]);
    assert_holds_nothing_stored(&answer, "the ref answer");
    // The forged call is a touch of that web contact (the widget cannot tell it from a
    // browser), but it never replaces the first touch.
    let after = contact(&site.app, INSTANCE, "web:v-victim").await.unwrap();
    assert_eq!(after["acquisition"], victim["acquisition"]);
}

async fn a_replayed_widget_event_changes_nothing(backend: Backend) {
    let Some(site) = site(backend).await else {
        return;
    };
    let body = event(
        INSTANCE,
        "v-replay",
        "https://shop.example/?utm_source=tiktok",
    );
    let (status, _, first) = site.post("/webhooks/widget", body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let contact_after_first = contact(&site.app, INSTANCE, "web:v-replay").await.unwrap();
    let counters_after_first = counters(&site, INSTANCE).await;
    for _ in 0..3 {
        let (status, _, again) = site.post("/webhooks/widget", body.clone()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            again, first,
            "a replay is answered as the first call, telling nothing"
        );
    }
    // The same event id from another page is still the same event.
    let mut moved = body.clone();
    moved["page_url"] = json!("https://shop.example/?utm_source=google&gclid=X");
    let (status, _, _) = site.post("/webhooks/widget", moved).await;
    assert_eq!(status, StatusCode::OK);
    let contact_now = contact(&site.app, INSTANCE, "web:v-replay").await.unwrap();
    assert_eq!(contact_now, contact_after_first);
    assert_eq!(contact_now["message_count"], 1);
    assert_eq!(contact_now["touches"].as_array().unwrap().len(), 1);
    assert_eq!(counters(&site, INSTANCE).await, counters_after_first);
}

async fn the_click_redirect_and_the_postback_answer_nothing_stored(backend: Backend) {
    let Some(site) = site(backend).await else {
        return;
    };
    let (status, body) = call(
        &site.app,
        admin_request(
            "POST",
            "/offers",
            Some(json!({"offer_id": "o1", "name": "Offer",
                "destination_url": "https://merchant.example/p?aff={click_id}",
                "click_window_days": 90})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, send) = call(
        &site.app,
        admin_request(
            "POST",
            "/sends",
            Some(
                json!({"instance_id": INSTANCE, "contact_id": PHONE, "message_id": "msg-secret",
                "campaign": "camp-secret", "creative": "creative-secret", "offer_id": "o1"}),
            ),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{send}");
    let tracked = send["tracked_url"].as_str().unwrap();
    let code = tracked.rsplit('/').next().unwrap();
    let send_id = send["send_id"].as_str().unwrap().to_owned();
    let private = [
        PHONE,
        "msg-secret",
        "camp-secret",
        "creative-secret",
        send_id.as_str(),
    ];

    let request = Request::get(format!("/c/{code}"))
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0",
        )
        .header("origin", SHOP)
        .body(Body::empty())
        .unwrap();
    let response = site.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let headers = format!("{:?}", response.headers());
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let click_id = location
        .strip_prefix("https://merchant.example/p?aff=")
        .unwrap_or_else(|| panic!("the offer's destination with the click id: {location}"))
        .to_owned();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert!(bytes.is_empty(), "a redirect has no body");
    for secret in private {
        assert!(
            !headers.contains(secret),
            "the redirect leaks {secret}: {headers}"
        );
    }

    let postback = |query: String| {
        let app = site.app.clone();
        async move {
            call(
                &app,
                Request::get(format!("/postbacks/generic?token={POSTBACK_TOKEN}&{query}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
        }
    };
    for (click, conversion_id, status) in [
        (click_id.as_str(), "ORD-1", "attributed"),
        (click_id.as_str(), "ORD-1", "duplicate"),
        ("NOSUCHCLICK", "ORD-2", "unknown_click"),
    ] {
        let (code, answer) = postback(format!(
            "click_id={click}&conversion_id={conversion_id}&payout=10"
        ))
        .await;
        assert_eq!(code, StatusCode::OK, "{answer}");
        let mut expected = json!({"status": status, "conversion_id": conversion_id});
        if status == "attributed" {
            expected["attribution"] = json!("click_through");
        }
        assert_eq!(answer, expected);
        let text = answer.to_string();
        for secret in private.iter().chain([&click_id.as_str(), &"o1"]) {
            assert!(
                !text.contains(secret),
                "the postback answer leaks {secret}: {text}"
            );
        }
    }
}

/// One widget event as large as the widget accepts: a page URL of the largest size whose
/// re-encoded form is far larger, the same for the referrer, every parameter at its cap, and a
/// message of the most characters, three bytes each.
fn largest_event(visitor: &str, n: usize) -> Value {
    let params = [
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_term",
        "utm_content",
        "gclid",
        "fbclid",
        "gbraid",
        "wbraid",
        "ttclid",
        "msclkid",
        "li_fat_id",
    ];
    // Raw `€` (3 bytes) is percent-encoded to 9 bytes when the URL is re-serialised, and so
    // are the spaces and quotes of the padding (1 byte to 3).
    let mut page = format!("https://shop.example/{n}?");
    for name in params {
        page.push_str(&format!("{name}={}&", "€".repeat(MAX_PARAM_BYTES / 3 + 1)));
    }
    while page.len() + 2 <= MAX_URL_BYTES {
        page.push_str(" \"");
    }
    let mut referrer = format!("https://referrer.example/{n}?q=");
    while referrer.len() + 2 <= MAX_URL_BYTES {
        referrer.push('é');
    }
    json!({"instance_id": INSTANCE, "visitor_id": visitor, "page_url": page,
        "referrer": referrer, "event_id": format!("big-{n}"), "message": "€".repeat(4_096)})
}

async fn the_largest_web_contact_a_stranger_can_make_fits_and_reads_back(backend: Backend) {
    let Some(site) = site(backend).await else {
        return;
    };
    let visitor = "v".repeat(shared::web::MAX_VISITOR_ID_CHARS);
    for n in 0..TOUCH_HISTORY_CAP + 3 {
        let body = largest_event(&visitor, n);
        let (status, _, answer) = site.post("/webhooks/widget", body).await;
        assert_eq!(status, StatusCode::OK, "event {n}: {answer}");
    }
    let web = contact(&site.app, INSTANCE, &format!("web:{visitor}"))
        .await
        .unwrap();
    assert_eq!(web["touches"].as_array().unwrap().len(), TOUCH_HISTORY_CAP);
    assert_eq!(web["message_count"], TOUCH_HISTORY_CAP + 3);
    let acquisition = &web["acquisition"];
    assert_eq!(
        acquisition["page_url"].as_str().unwrap().len(),
        MAX_STORED_URL_BYTES
    );
    assert_eq!(
        acquisition["referrer"].as_str().unwrap().len(),
        MAX_STORED_URL_BYTES
    );
    for value in acquisition["utm"]
        .as_object()
        .unwrap()
        .values()
        .chain(acquisition["click_ids"].as_object().unwrap().values())
    {
        assert!(value.as_str().unwrap().len() <= MAX_PARAM_BYTES);
    }
    assert_eq!(
        acquisition["platform"], "google",
        "gclid names the platform"
    );
    // The bound the README states for a web contact: well inside a DynamoDB item's 400 KB.
    let size = serde_json::to_vec(&web).unwrap().len();
    assert!(size < 300_000, "the largest web contact is {size} bytes");
}

/// A WhatsApp person with an enormous profile name and texts, arriving through ever more ads
/// with enormous headlines, bodies and URLs: every field is cut to its budget.
async fn the_largest_whatsapp_contact_fits_and_reads_back(backend: Backend) {
    use shared::contact::bounds::*;
    let Some(site) = site(backend).await else {
        return;
    };
    let huge = |n: usize| "€".repeat(n / 3 + 1);
    let person = "5511900099999";
    let start = Timestamp::now().unix_seconds() - 1_000;
    for n in 0..TOUCH_HISTORY_CAP + 3 {
        let referral = json!({
            "source_url": format!("https://fb.me/{}", huge(10_000)),
            "source_id": huge(2_000), "source_type": "ad", "headline": huge(10_000),
            "body": huge(10_000), "media_type": huge(1_000),
            "image_url": format!("https://scontent.example/{}", huge(10_000)),
            "video_url": format!("https://scontent.example/{}", huge(10_000)),
            "thumbnail_url": format!("https://scontent.example/{}", huge(10_000)),
            "ctwa_clid": huge(2_000),
        });
        let mut delivery: Value = serde_json::from_slice(&whatsapp_message(
            INSTANCE,
            person,
            &format!("wamid.big-{n}"),
            start + n as i64,
            &huge(30_000),
            Some(referral),
        ))
        .unwrap();
        delivery["entry"][0]["changes"][0]["value"]["contacts"][0]["profile"]["name"] =
            json!(huge(5_000));
        let (status, report) = call(
            &site.app,
            signed_delivery(&serde_json::to_vec(&delivery).unwrap()),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "delivery {n}: {report}");
    }
    let shown = contact(&site.app, INSTANCE, person).await.unwrap();
    assert_eq!(shown["message_count"], TOUCH_HISTORY_CAP + 3);
    assert_eq!(
        shown["touches"].as_array().unwrap().len(),
        TOUCH_HISTORY_CAP
    );
    assert!(shown["display_name"].as_str().unwrap().len() <= MAX_DISPLAY_NAME_BYTES);
    assert!(shown["first_message"]["text"].as_str().unwrap().len() <= MAX_TEXT_BYTES);
    let acquisition = &shown["acquisition"];
    assert_eq!(acquisition["kind"], "meta_ad");
    assert!(acquisition["body"].as_str().unwrap().len() <= MAX_REFERRAL_BODY_BYTES);
    assert!(acquisition["image_url"].as_str().unwrap().len() <= MAX_REFERRAL_URL_BYTES);
    assert!(acquisition["headline"].as_str().unwrap().len() <= MAX_REFERRAL_LABEL_BYTES);
    let size = serde_json::to_vec(&shown).unwrap().len();
    assert!(
        size < 300_000,
        "the largest WhatsApp contact is {size} bytes"
    );
}

async fn a_flood_of_distinct_sources_makes_no_new_counter_names(backend: Backend) {
    let Some(site) = site(backend).await else {
        return;
    };
    let before = counters(&site, INSTANCE).await;
    let long = "x".repeat(2_000);
    let sources = [
        long.as_str(),
        "partner-blog-0001",
        "Partner%20Blog%202",
        "%F0%9F%92%A5boom",
        "platform:google",
        "FB",
        "Instagram",
        "google-ads",
        "Newsletter",
    ];
    for (n, source) in sources.iter().enumerate() {
        let (status, _, answer) = site
            .post(
                "/webhooks/widget",
                event(
                    INSTANCE,
                    &format!("flood-{n}"),
                    &format!("https://shop.example/?utm_source={source}"),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{source}: {answer}");
    }
    // Referrers of unknown hosts are `other` too.
    for n in 0..3 {
        let mut body = event(INSTANCE, &format!("ref-{n}"), "https://shop.example/");
        body["referrer"] = json!(format!("https://site-{n}.example.org/post"));
        let (status, _, _) = site.post("/webhooks/widget", body).await;
        assert_eq!(status, StatusCode::OK);
    }
    let after = counters(&site, INSTANCE).await;
    let vocabulary: Vec<String> = WebPlatform::ALL
        .iter()
        .map(|platform| format!("platform:{}", platform.as_str()))
        .chain(["new_contacts".to_owned(), "kind:web".to_owned()])
        .chain(["source:ads".to_owned(), "source:organic".to_owned()])
        .collect();
    for name in after.keys().filter(|name| !before.contains_key(*name)) {
        assert!(vocabulary.contains(name), "a new counter {name:?}");
    }
    let added = |name: &str| after[name] - before.get(name).copied().unwrap_or(0);
    assert_eq!(
        added("platform:other"),
        8,
        "five unknown sources and three unknown hosts"
    );
    for known in ["facebook", "instagram", "google", "email"] {
        assert_eq!(added(&format!("platform:{known}")), 1, "{known}");
    }
    // The raw source is kept with the visit, capped.
    let kept = contact(&site.app, INSTANCE, "web:flood-0").await.unwrap();
    assert_eq!(kept["acquisition"]["platform"], "other");
    assert_eq!(
        kept["acquisition"]["utm"]["source"].as_str().unwrap().len(),
        MAX_PARAM_BYTES
    );
    // Stats show only the vocabulary's rows.
    let (status, stats) = call(
        &site.app,
        admin_get(&format!("/instances/{INSTANCE}/stats?days=1")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    for row in stats["by_platform"].as_array().unwrap() {
        let name = format!("platform:{}", row["platform"].as_str().unwrap());
        assert!(vocabulary.contains(&name), "a stats row {name}");
    }
}

/// The second wall behind the web namespace: whatever id an event names, an event of one
/// channel never changes a contact of another.
async fn the_ingestor_refuses_an_event_of_another_channel(backend: Backend) {
    use shared::contact::{Channel, Referral};
    use shared::ingest::{InboundEvent, IngestError, Ingestor};
    let Some(site) = site(backend).await else {
        return;
    };
    let before = contact(&site.app, INSTANCE, PHONE).await.unwrap();
    let now = Timestamp::now();
    let visit =
        shared::web::WebVisit::from_page("https://shop.example/?utm_source=x", None, now).unwrap();
    let event = InboundEvent {
        dedupe_key: "widget#forged".to_owned(),
        instance_id: InstanceId::parse(INSTANCE).unwrap(),
        contact_id: shared::ids::ContactId::parse(PHONE).unwrap(),
        channel: Channel::Web,
        display_name: Some("Forged".to_owned()),
        occurred_at: now,
        message: None,
        referral: Some(Referral::Web(visit)),
        identity: Default::default(),
    };
    let ingestor = Ingestor::new(site.stores.contacts.clone());
    let refused = ingestor.ingest(&event, now).await;
    assert!(
        matches!(refused, Err(IngestError::ForeignChannel)),
        "{refused:?}"
    );
    assert_eq!(contact(&site.app, INSTANCE, PHONE).await.unwrap(), before);
}
