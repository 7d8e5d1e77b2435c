//! Tracked links, clicks, postbacks and first-click revenue, through the HTTP surface of the
//! clicks and postback functions, on every store.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use chrono::Datelike;
use http::{Request, StatusCode};
use integration_tests::*;
use serde_json::{Value, json};
use shared::contact::store::ContactStore;
use shared::matching::QueueWorker;
use shared::queue::{JobQueue, QueueJob};
use shared::revenue::Click;
use shared::revenue::links::hash_client_ip;
use shared::revenue::store::RevenueStore;
use shared::secret::Secret;
use shared::store::{FaultInjectingStore, FaultMode, FaultPlan};
use shared::time::Timestamp;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tower::ServiceExt;

on_every_store!(
    offers_are_created_read_listed_and_replaced,
    bad_offers_and_sends_are_refused_and_change_nothing,
    sends_get_tracked_links_and_a_retried_send_is_the_same_send,
    a_click_redirects_with_its_id_and_is_recorded,
    link_previews_are_redirected_but_not_counted,
    the_first_click_earns_the_conversion_monday_wednesday_friday,
    the_window_includes_its_limit_and_not_a_second_past,
    each_offer_has_its_own_window,
    duplicate_postbacks_change_nothing_even_concurrently,
    unknown_clicks_are_answered_200_and_kept,
    postbacks_need_the_token,
    decimal_money_adds_exactly,
    every_grouping_adds_up_to_the_same_totals,
    tune_and_everflow_postbacks_work_end_to_end,
    the_click_hash_is_the_peer_address_never_x_forwarded_for,
    a_conversion_before_its_click_is_not_credited,
    clicks_whose_write_fails_are_redirected_and_recorded_once_from_the_queue,
    clicks_are_redirected_even_when_the_queue_fails_too,
    the_local_queue_records_the_clicks_the_redirect_could_not,
    a_conversion_before_its_late_click_is_reattributed_once,
    a_late_click_racing_its_postback_is_credited_exactly_once,
    late_clicks_recorded_through_faults_are_credited_exactly_once,
    reports_filter_by_instance_and_the_instances_add_up_to_the_whole,
    conversions_naming_the_contact_are_credited_to_its_first_click_on_the_offer,
    view_through_credits_the_first_send_inside_the_view_window_both_ends_included,
    view_through_never_displaces_a_click_and_stays_off_by_default,
    explain_answers_the_troubleshooting_checklist_for_each_outcome,
    the_models_split_each_conversion_over_its_window_clicks_and_add_up_to_the_report,
    model_parameters_are_range_checked,
    a_csv_import_is_the_same_conversions_sent_as_postbacks_and_a_reimport_changes_nothing,
    a_bad_import_header_is_a_400_and_stores_nothing,
    an_import_stopped_by_faults_is_finished_by_importing_again_each_row_once,
);

const INSTANCE: &str = "106540352242922";

/// The clicks, postback and revenue functions behind one router, as the local server serves
/// them: the redirect on `clicks` (queueing on `queue`), everything else on `revenue`.
fn revenue_app(
    clicks: Arc<dyn RevenueStore>,
    revenue: Arc<dyn RevenueStore>,
    queue: Arc<dyn JobQueue>,
    contacts: Arc<dyn ContactStore>,
) -> Router {
    shared::http::serve_json_errors(
        clicks::router(clicks::ClicksState::new(&secrets(), clicks, queue))
            .merge(postback_router(revenue.clone()))
            .merge(revenue_router(revenue, contacts)),
    )
}

struct Engine {
    app: Router,
    stores: Stores,
    _guard: StoreGuard,
}

async fn engine(backend: Backend) -> Option<Engine> {
    let (stores, guard) = fresh_stores(backend).await?;
    // The two functions behind one router, as the local server serves them.
    let app = revenue_app(
        stores.revenue.clone(),
        stores.revenue.clone(),
        Arc::new(RecordingQueue::default()),
        stores.contacts.clone(),
    );
    Some(Engine {
        app,
        stores,
        _guard: guard,
    })
}

/// Where the tests' visitors connect from.
const VISITOR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)), 50_000);

const BROWSER: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15";

impl Engine {
    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        call(&self.app, admin_request(method, path, body)).await
    }

    async fn offer(&self, id: &str, window_days: u32) {
        let (status, body) = self
            .admin(
                "POST",
                "/offers",
                Some(json!({"offer_id": id, "name": format!("Offer {id}"),
                    "destination_url": format!("https://shop.example/{id}?aff={{click_id}}"),
                    "click_window_days": window_days})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    /// Sends one message; answers its tracked link's code.
    async fn send(
        &self,
        contact: &str,
        message: &str,
        campaign: &str,
        creative: &str,
        offer: &str,
    ) -> String {
        self.send_from(INSTANCE, contact, message, campaign, creative, offer)
            .await
    }

    /// [`Self::send`] from another instance.
    async fn send_from(
        &self,
        instance: &str,
        contact: &str,
        message: &str,
        campaign: &str,
        creative: &str,
        offer: &str,
    ) -> String {
        let (status, body) = self
            .admin(
                "POST",
                "/sends",
                Some(
                    json!({"instance_id": instance, "contact_id": contact, "message_id": message,
                    "campaign": campaign, "creative": creative, "offer_id": offer}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let url = body["tracked_url"].as_str().unwrap();
        url.strip_prefix(&format!("{PUBLIC_BASE_URL}/c/"))
            .unwrap()
            .to_owned()
    }

    /// Follows a tracked link; answers the status and the Location.
    async fn follow(&self, code: &str, user_agent: Option<&str>) -> (StatusCode, Option<String>) {
        let mut request = Request::get(format!("/c/{code}")).extension(ConnectInfo(VISITOR));
        if let Some(agent) = user_agent {
            request = request.header("user-agent", agent);
        }
        let response = self
            .app
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let location = response
            .headers()
            .get("location")
            .map(|value| value.to_str().unwrap().to_owned());
        (response.status(), location)
    }

    /// Clicks as a person would; answers the click id the destination received.
    async fn click(&self, code: &str) -> String {
        let (status, location) = self.follow(code, Some(BROWSER)).await;
        assert_eq!(status, StatusCode::FOUND);
        location.unwrap().rsplit_once("aff=").unwrap().1.to_owned()
    }

    async fn postback(&self, network: &str, query: &str) -> (StatusCode, Value) {
        let request = Request::get(format!(
            "/postbacks/{network}?token={POSTBACK_TOKEN}&{query}"
        ))
        .body(Body::empty())
        .unwrap();
        call(&self.app, request).await
    }

    async fn journey(&self, contact: &str) -> Value {
        let (status, body) = self
            .admin(
                "GET",
                &format!("/instances/{INSTANCE}/contacts/{contact}/journey"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// The report over the year up to tomorrow, which holds every test's events.
    async fn report(&self, group_by: &str) -> Value {
        self.report_of(group_by, "").await
    }

    /// [`Self::report`] with more parameters (`&instance_id=…`).
    async fn report_of(&self, group_by: &str, more: &str) -> Value {
        let until = chrono::Utc::now().date_naive() + chrono::Duration::days(1);
        let since = until - chrono::Duration::days(365);
        let (status, body) = self
            .admin(
                "GET",
                &format!("/reports/revenue?group_by={group_by}&since={since}&until={until}{more}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// When a click happened, as the journey shows it.
    /// Where the conversion's credit went, as the journey shows it (the postback's answer does
    /// not say).
    async fn credit_of(&self, contact: &str, conversion_id: &str) -> Value {
        let journey = self.journey(contact).await;
        journey["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|event| event["conversion_id"] == conversion_id && event["type"] == "conversion")
            .unwrap_or_else(|| panic!("conversion {conversion_id} not in {journey}"))
            .get("credited")
            .cloned()
            .unwrap_or(Value::Null)
    }

    async fn clicked_at(&self, contact: &str, click_id: &str) -> Timestamp {
        let journey = self.journey(contact).await;
        let click = journey["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|event| event["click_id"] == click_id && event["type"] == "click")
            .unwrap_or_else(|| panic!("click {click_id} not in {journey}"));
        Timestamp::parse_rfc3339(click["clicked_at"].as_str().unwrap()).unwrap()
    }
}

fn row<'a>(report: &'a Value, key: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["key"] == key)
        .unwrap_or_else(|| panic!("no row {key} in {report}"))
}

fn seconds_later(at: Timestamp, seconds: i64) -> String {
    urlencode(&at.plus_seconds(seconds).to_string())
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

async fn offers_are_created_read_listed_and_replaced(backend: Backend) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    engine.offer("shoes", 30).await;
    let (status, offer) = engine.admin("GET", "/offers/shoes", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(offer["click_window_days"], 30);
    assert_eq!(offer["currency"], "USD");
    let (status, generated) = engine
        .admin(
            "POST",
            "/offers",
            Some(
                json!({"name": "No id", "destination_url": "https://a.example/", "payout": "2.5"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(generated["click_window_days"], 90, "the default window");
    assert_eq!(generated["payout"], "2.50");
    let (_, listed) = engine.admin("GET", "/offers", None).await;
    assert_eq!(listed["offers"].as_array().unwrap().len(), 2);
    let (status, replaced) = engine
        .admin("PUT", "/offers/shoes", Some(json!({"name": "Shoes 2", "destination_url": "https://b.example/", "click_window_days": 7})))
        .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["click_window_days"], 7);
    assert_eq!(replaced["created_at"], offer["created_at"]);
    let (status, body) = engine
        .admin(
            "PUT",
            "/offers/nope",
            Some(json!({"name": "x", "destination_url": "https://b.example/"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("offer_not_found"))
    );
    let (status, body) = engine
        .admin("POST", "/offers", Some(json!({"offer_id": "shoes", "name": "again", "destination_url": "https://b.example/"})))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("offer_exists"))
    );
    let (status, _) = call(
        &engine.app,
        Request::get("/offers").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the admin API needs the key"
    );
}

async fn bad_offers_and_sends_are_refused_and_change_nothing(backend: Backend) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    for (body, field) in [
        (
            json!({"name": "x", "destination_url": "ftp://x.example/"}),
            "destination_url",
        ),
        (
            json!({"name": "x", "destination_url": "https://x.example/", "click_window_days": 0}),
            "click_window_days",
        ),
        (
            json!({"name": "x", "destination_url": "https://x.example/", "click_window_days": 366}),
            "click_window_days",
        ),
        (
            json!({"name": "x", "destination_url": "https://x.example/", "currency": "dollars"}),
            "currency",
        ),
    ] {
        let (status, answer) = engine.admin("POST", "/offers", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let (_, listed) = engine.admin("GET", "/offers", None).await;
    assert_eq!(listed["offers"], json!([]));
    engine.offer("o", 90).await;
    let send = |offer: &str| json!({"instance_id": INSTANCE, "contact_id": "c", "campaign": "k", "creative": "t", "offer_id": offer});
    let (status, answer) = engine
        .admin("POST", "/sends", Some(json!([send("o"), send("missing")])))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["field"], "[1].offer_id");
    let too_many: Vec<Value> = (0..1001).map(|_| send("o")).collect();
    let (status, answer) = engine.admin("POST", "/sends", Some(json!(too_many))).await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("body"))
    );
    let report = engine.report("campaign").await;
    assert_eq!(report["rows"], json!([]), "a refused call sends nothing");
    let (status, _) = engine.follow("0000000000", Some(BROWSER)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, answer) = call(
        &engine.app,
        Request::get("/c/..%2Fetc").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("link_not_found"))
    );
}

async fn sends_get_tracked_links_and_a_retried_send_is_the_same_send(backend: Backend) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    engine.offer("o", 90).await;
    let batch = json!([
        {"instance_id": INSTANCE, "contact_id": "c1", "message_id": "m1", "campaign": "spring", "creative": "t1", "offer_id": "o"},
        {"instance_id": INSTANCE, "contact_id": "c2", "campaign": "spring", "creative": "t1", "offer_id": "o", "sent_at": "2026-03-01T10:00:00Z"}
    ]);
    let (status, first) = engine.admin("POST", "/sends", Some(batch.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let sends = first["sends"].as_array().unwrap();
    assert_eq!(sends.len(), 2);
    assert_eq!(sends[0]["message_id"], "m1");
    assert_eq!(
        sends[1]["message_id"], sends[1]["send_id"],
        "a send without a message id is its own message"
    );
    assert_eq!(sends[1]["sent_at"], "2026-03-01T10:00:00.000Z");
    for send in sends {
        let url = send["tracked_url"].as_str().unwrap();
        let code = url.strip_prefix(&format!("{PUBLIC_BASE_URL}/c/")).unwrap();
        assert_eq!(code.len(), 10);
        assert!(code.chars().all(|c| c.is_ascii_alphanumeric()), "{url}");
        assert_eq!(send["existing"], false);
    }
    // A retry of the first send (same instance and message id) is the same send, counted once.
    let (status, again) = engine.admin("POST", "/sends", Some(batch[0].clone())).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again["existing"], true);
    assert_eq!(again["send_id"], sends[0]["send_id"]);
    assert_eq!(again["tracked_url"], sends[0]["tracked_url"]);
    let report = engine.report("campaign").await;
    assert_eq!(row(&report, "spring")["sends"], 2);
}

async fn a_click_redirects_with_its_id_and_is_recorded(backend: Backend) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    let (status, _) = engine
        .admin("POST", "/offers", Some(json!({"offer_id": "plain", "name": "P", "destination_url": "https://shop.example/p?x=1#top"})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let code = engine.send("c1", "m1", "spring", "t1", "plain").await;
    let (status, location) = engine.follow(&code, Some(BROWSER)).await;
    assert_eq!(status, StatusCode::FOUND);
    let location = location.unwrap();
    let click_id = location
        .strip_prefix("https://shop.example/p?x=1&click_id=")
        .and_then(|rest| rest.strip_suffix("#top"))
        .unwrap_or_else(|| panic!("{location}"));
    let journey = engine.journey("c1").await;
    let click = &journey["events"][1];
    assert_eq!(click["type"], "click");
    assert_eq!(click["click_id"], click_id);
    assert_eq!(click["message_id"], "m1");
    assert_eq!(click["campaign"], "spring");
    assert_eq!(click["user_agent"], BROWSER);
    let ip_hash = click["ip_hash"].as_str().unwrap();
    assert_eq!(ip_hash.len(), 32);
    assert!(
        !journey.to_string().contains("203.0.113.9"),
        "the address is never stored raw"
    );
    // A second click is another click, tracked too.
    assert_eq!(
        engine.follow(&code, Some(BROWSER)).await.0,
        StatusCode::FOUND
    );
    assert_eq!(engine.journey("c1").await["clicks"], 2);
    assert_eq!(row(&engine.report("message").await, "m1")["clicks"], 2);
}

async fn link_previews_are_redirected_but_not_counted(backend: Backend) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    engine.offer("o", 90).await;
    let code = engine.send("c1", "m1", "spring", "t1", "o").await;
    for agent in [
        Some("WhatsApp/2.23.20.0 A"),
        Some("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"),
        Some("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"),
        Some("TelegramBot (like TwitterBot)"),
        Some("Twitterbot/1.0"),
        Some("LinkedInBot/1.0 (compatible; Mozilla/5.0)"),
        Some("Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)"),
        None,
    ] {
        let (status, location) = engine.follow(&code, agent).await;
        assert_eq!(status, StatusCode::FOUND, "{agent:?}");
        assert!(location.unwrap().starts_with("https://shop.example/o?aff="));
    }
    let head = Request::head(format!("/c/{code}"))
        .header("user-agent", BROWSER)
        .body(Body::empty())
        .unwrap();
    let response = engine.app.clone().oneshot(head).await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(engine.journey("c1").await["clicks"], 0);
    assert_eq!(row(&engine.report("campaign").await, "spring")["clicks"], 0);
}

/// The issue's example: a contact clicks message A on Monday and message B on Wednesday (same
/// offer), and converts on Friday: A earns the conversion, B's click is tracked, not credited.
async fn the_first_click_earns_the_conversion_monday_wednesday_friday(backend: Backend) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    engine.offer("o", 90).await;
    let code_a = engine.send("c1", "msg-a", "spring", "t1", "o").await;
    let code_b = engine.send("c1", "msg-b", "spring", "t2", "o").await;
    // The Monday of two weeks ago, so the week is in the past and in the report's year.
    let two_weeks_ago = chrono::Utc::now().date_naive() - chrono::Duration::days(14);
    let monday_date = two_weeks_ago
        - chrono::Duration::days(i64::from(two_weeks_ago.weekday().num_days_from_monday()));
    let at = |days: i64, time: &str| {
        Timestamp::parse_rfc3339(&format!(
            "{}T{time}Z",
            monday_date + chrono::Duration::days(days)
        ))
        .unwrap()
    };
    let (monday, wednesday, friday) = (at(0, "09:00:00"), at(2, "15:30:00"), at(4, "18:00:00"));
    // Clicks from the past go in through the store; the redirect records only "now".
    for (code, at, id) in [
        (&code_a, monday, "01CLICKMONDAY"),
        (&code_b, wednesday, "01CLICKWEDNESDAY"),
    ] {
        engine.click_at(code, id, at).await;
    }
    // The platform knows only the last click's id (the one that led to the sale).
    let (status, answer) = engine
        .postback(
            "generic",
            &format!(
                "click_id=01CLICKWEDNESDAY&conversion_id=ORDER-1&payout=42.00&converted_at={}",
                urlencode(&friday.to_string())
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "attributed");
    assert_eq!(answer["conversion_id"], "ORDER-1");
    assert_eq!(answer["attribution"], "click_through");
    assert_eq!(
        answer.as_object().unwrap().len(),
        3,
        "the platform is told its conversion id, status and attribution, nothing stored: {answer}"
    );
    let credit = engine.credit_of("c1", "ORDER-1").await;
    assert_eq!(credit["click_id"], "01CLICKMONDAY");
    assert_eq!(credit["message_id"], "msg-a");
    assert_eq!(credit["creative"], "t1");
    let by_message = engine.report("message").await;
    assert_eq!(row(&by_message, "msg-a")["conversions"], 1);
    assert_eq!(row(&by_message, "msg-a")["revenue"], "42.00");
    assert_eq!(row(&by_message, "msg-b")["conversions"], 0);
    assert_eq!(
        row(&by_message, "msg-b")["clicks"],
        1,
        "tracked, not credited"
    );
    assert_eq!(
        row(&engine.report("creative").await, "t1")["revenue"],
        "42.00"
    );
    assert_eq!(
        row(&engine.report("day").await, &friday.day())["revenue"],
        "42.00"
    );
    let journey = engine.journey("c1").await;
    assert_eq!(
        journey["revenue"],
        json!([{"currency": "USD", "amount": "42.00"}])
    );
    let kinds: Vec<&str> = journey["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    // Both sends happened "now" (after the backdated clicks); the conversion is last.
    assert_eq!(kinds, ["click", "click", "conversion", "send", "send"]);
}

async fn the_window_includes_its_limit_and_not_a_second_past(backend: Backend) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    engine.offer("o", 1).await;
    let code = engine.send("c1", "m1", "spring", "t1", "o").await;
    let click_id = engine.click(&code).await;
    let clicked_at = engine.clicked_at("c1", &click_id).await;
    let (_, at_limit) = engine
        .postback(
            "generic",
            &format!(
                "click_id={click_id}&conversion_id=AT-LIMIT&payout=1&converted_at={}",
                seconds_later(clicked_at, 86_400)
            ),
        )
        .await;
    assert_eq!(at_limit["status"], "attributed", "{at_limit}");
    let (status, past) = engine
        .postback(
            "generic",
            &format!(
                "click_id={click_id}&conversion_id=PAST&payout=1&converted_at={}",
                seconds_later(clicked_at, 86_401)
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(past["status"], "outside_window", "{past}");
    assert_eq!(engine.credit_of("c1", "PAST").await, Value::Null);
    let report = engine.report("offer").await;
    assert_eq!(
        row(&report, "o")["conversions"],
        1,
        "the late one is stored, not credited"
    );
    let journey = engine.journey("c1").await;
    assert_eq!(journey["conversions"], 2);
    // Asked again, the late one is a duplicate, still uncredited.
    let (_, again) = engine
        .postback(
            "generic",
            &format!("click_id={click_id}&conversion_id=PAST&payout=1"),
        )
        .await;
    assert_eq!(again["status"], "duplicate");
    assert_eq!(engine.credit_of("c1", "PAST").await, Value::Null);
}

async fn each_offer_has_its_own_window(backend: Backend) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    engine.offer("short", 1).await;
    engine.offer("long", 30).await;
    let short = engine
        .click(&engine.send("c1", "m1", "k", "t", "short").await)
        .await;
    let long = engine
        .click(&engine.send("c1", "m2", "k", "t", "long").await)
        .await;
    let at = engine.clicked_at("c1", &long).await;
    let two_days = seconds_later(at, 2 * 86_400);
    let (_, short_answer) = engine
        .postback(
            "generic",
            &format!("click_id={short}&conversion_id=S&converted_at={two_days}"),
        )
        .await;
    let (_, long_answer) = engine
        .postback(
            "generic",
            &format!("click_id={long}&conversion_id=L&converted_at={two_days}"),
        )
        .await;
    assert_eq!(short_answer["status"], "outside_window");
    assert_eq!(long_answer["status"], "attributed");
    assert_eq!(
        engine.credit_of("c1", "L").await["click_id"],
        long.as_str(),
        "another offer's click never earns it"
    );
}

async fn duplicate_postbacks_change_nothing_even_concurrently(backend: Backend) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    engine.offer("o", 90).await;
    let click_id = engine
        .click(&engine.send("c1", "m1", "k", "t", "o").await)
        .await;
    let query = format!("click_id={click_id}&conversion_id=SEQ&payout=10");
    let (_, first) = engine.postback("generic", &query).await;
    let (status, second) = engine.postback("generic", &query).await;
    assert_eq!(first["status"], "attributed");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second["status"], "duplicate");
    assert_eq!(second["conversion_id"], first["conversion_id"]);
    assert_eq!(
        engine.credit_of("c1", "SEQ").await["click_id"],
        click_id.as_str()
    );
    // Eight deliveries of one conversion at once: one is counted.
    let query = format!("click_id={click_id}&conversion_id=PAR&payout=5");
    let answers = futures_join(&engine, &query, 8).await;
    let attributed = answers
        .iter()
        .filter(|a| a["status"] == "attributed")
        .count();
    let duplicates = answers
        .iter()
        .filter(|a| a["status"] == "duplicate")
        .count();
    assert_eq!((attributed, duplicates), (1, 7), "{answers:?}");
    // Without a conversion id, the click and the event make the key.
    let (_, lead) = engine
        .postback("generic", &format!("click_id={click_id}&event=lead"))
        .await;
    let (_, lead_again) = engine
        .postback("generic", &format!("click_id={click_id}&event=lead"))
        .await;
    let (_, sale) = engine
        .postback(
            "generic",
            &format!("click_id={click_id}&event=sale&payout=1"),
        )
        .await;
    assert_eq!(
        (
            lead["status"].as_str(),
            lead_again["status"].as_str(),
            sale["status"].as_str()
        ),
        (Some("attributed"), Some("duplicate"), Some("attributed"))
    );
    let row = row(&engine.report("campaign").await, "k").clone();
    assert_eq!(row["conversions"], 4);
    assert_eq!(row["revenue"], "16.00");
}

async fn futures_join(engine: &Engine, query: &str, count: usize) -> Vec<Value> {
    let mut tasks = Vec::new();
    for _ in 0..count {
        let app = engine.app.clone();
        let uri = format!("/postbacks/generic?token={POSTBACK_TOKEN}&{query}");
        tasks.push(tokio::spawn(async move {
            call(&app, Request::get(uri).body(Body::empty()).unwrap()).await
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        answers.push(body);
    }
    answers
}

async fn unknown_clicks_are_answered_200_and_kept(backend: Backend) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    let (status, answer) = engine
        .postback("everflow", "sub1=NOSUCHCLICK&transaction_id=EV-9&payout=3")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer,
        json!({"status": "unknown_click", "conversion_id": "EV-9"})
    );
    let (_, again) = engine
        .postback("everflow", "sub1=NOSUCHCLICK&transaction_id=EV-9&payout=3")
        .await;
    assert_eq!(again["status"], "duplicate", "it was stored");
    for bad in ["payout=3", "click_id=C&payout=ten"] {
        let (status, answer) = engine.postback("generic", bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {answer}");
    }
    let (status, answer) = engine.postback("nosuchnetwork", "click_id=C").await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_network"))
    );
}

async fn postbacks_need_the_token(backend: Backend) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    for uri in [
        "/postbacks/generic?click_id=C&conversion_id=X".to_owned(),
        "/postbacks/generic?token=wrong&click_id=C&conversion_id=X".to_owned(),
        format!("/postbacks/generic?token={POSTBACK_TOKEN}x&click_id=C&conversion_id=X"),
    ] {
        let (status, answer) =
            call(&engine.app, Request::get(&uri).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(answer["error"]["code"], "invalid_token");
    }
    // The header works too, and a refused call stored nothing: the same conversion is new.
    let request = Request::post("/postbacks/generic")
        .header("x-postback-token", POSTBACK_TOKEN)
        .header("content-type", "application/json")
        .body(Body::from(
            r#"{"click_id": "C", "conversion_id": "X", "payout": 1.5}"#,
        ))
        .unwrap();
    let (status, answer) = call(&engine.app, request).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (StatusCode::OK, Some("unknown_click"))
    );
}

async fn decimal_money_adds_exactly(backend: Backend) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    engine.offer("o", 90).await;
    let click_id = engine
        .click(&engine.send("c1", "m1", "k", "t", "o").await)
        .await;
    engine
        .postback(
            "generic",
            &format!("click_id={click_id}&conversion_id=A&payout=0.10"),
        )
        .await;
    engine
        .postback(
            "generic",
            &format!("click_id={click_id}&conversion_id=B&payout=0.20"),
        )
        .await;
    engine
        .postback(
            "generic",
            &format!("click_id={click_id}&conversion_id=C&payout=0.05&currency=eur"),
        )
        .await;
    let report = engine.report("offer").await;
    let rows = report["rows"].as_array().unwrap();
    let usd = rows.iter().find(|r| r["currency"] == "USD").unwrap();
    let eur = rows.iter().find(|r| r["currency"] == "EUR").unwrap();
    assert_eq!(usd["revenue"], "0.30");
    assert_eq!(usd["epc"], "0.30", "one click");
    assert_eq!(usd["revenue_per_send"], "0.30", "one send");
    assert_eq!(eur["revenue"], "0.05", "currencies are never summed");
    assert_eq!(eur["sends"], 0);
    assert_eq!(
        eur["epc"],
        Value::Null,
        "no EUR clicks: EPC is undefined, not zero"
    );
}

async fn every_grouping_adds_up_to_the_same_totals(backend: Backend) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    engine.offer("o1", 90).await;
    engine.offer("o2", 90).await;
    let mut clicks = Vec::new();
    for (i, (campaign, creative, offer)) in [
        ("spring", "t1", "o1"),
        ("spring", "t2", "o2"),
        ("summer", "t1", "o2"),
        ("summer", "t3", "o1"),
    ]
    .iter()
    .enumerate()
    {
        let code = engine
            .send(
                &format!("c{i}"),
                &format!("m{i}"),
                campaign,
                creative,
                offer,
            )
            .await;
        clicks.push(engine.click(&code).await);
        if i % 2 == 0 {
            engine.click(&code).await;
        }
    }
    for (i, click) in clicks.iter().enumerate().take(3) {
        engine
            .postback(
                "generic",
                &format!("click_id={click}&conversion_id=T{i}&payout={}.25", i + 1),
            )
            .await;
    }
    let mut totals = BTreeMap::new();
    for group_by in ["message", "creative", "offer", "campaign", "day"] {
        let report = engine.report(group_by).await;
        let mut summed = json!({"sends": 0, "clicks": 0, "conversions": 0});
        let mut revenue = 0.0_f64;
        for row in report["rows"].as_array().unwrap() {
            for field in ["sends", "clicks", "conversions"] {
                summed[field] =
                    json!(summed[field].as_u64().unwrap() + row[field].as_u64().unwrap());
            }
            revenue += row["revenue"].as_str().unwrap().parse::<f64>().unwrap();
        }
        let total = &report["totals"][0];
        for field in ["sends", "clicks", "conversions"] {
            assert_eq!(summed[field], total[field], "{group_by} {field}");
        }
        assert_eq!(
            format!("{revenue:.2}"),
            total["revenue"].as_str().unwrap(),
            "{group_by}"
        );
        totals.insert(group_by, total.clone());
    }
    let first = totals["message"].clone();
    assert_eq!(first["sends"], 4);
    assert_eq!(first["clicks"], 6);
    assert_eq!(first["conversions"], 3);
    assert_eq!(first["revenue"], "6.75");
    assert_eq!(first["epc"], "1.1250");
    for (group_by, total) in &totals {
        assert_eq!(total, &first, "{group_by}");
    }
    let (status, bad) = engine
        .admin("GET", "/reports/revenue?group_by=colour", None)
        .await;
    assert_eq!(
        (status, bad["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("group_by"))
    );
    let (status, bad) = engine
        .admin(
            "GET",
            "/reports/revenue?group_by=day&since=2026-02-01&until=2026-01-01",
            None,
        )
        .await;
    assert_eq!(
        (status, bad["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("since"))
    );
    let (_, empty) = engine
        .admin(
            "GET",
            "/reports/revenue?group_by=day&since=2020-01-01&until=2020-01-31",
            None,
        )
        .await;
    assert_eq!(
        empty["rows"],
        json!([]),
        "days outside the range count nothing"
    );
}

/// The URLs pasted into each platform, as the README gives them, with the platform's macros
/// filled in as it fills them.
async fn tune_and_everflow_postbacks_work_end_to_end(backend: Backend) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    engine.offer("o", 90).await;
    let click_a = engine
        .click(&engine.send("c1", "m1", "k", "t", "o").await)
        .await;
    let click_b = engine
        .click(&engine.send("c2", "m2", "k", "t", "o").await)
        .await;
    // TUNE: https://<api>/postbacks/tune?token=<POSTBACK_TOKEN>&aff_sub={aff_sub}&transaction_id={transaction_id}&payout={payout}&currency={currency}
    let (status, tune) = engine
        .postback("tune", &format!("aff_sub={click_a}&transaction_id=102a9c0e&payout=12.50&currency=USD&aff_sub2={{aff_sub2}}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (tune["status"].as_str(), tune["conversion_id"].as_str()),
        (Some("attributed"), Some("102a9c0e"))
    );
    // Everflow, as a form POST: sub1={sub1}&transaction_id={transaction_id}&sale_amount={sale_amount}
    let request = Request::post(format!("/postbacks/everflow?token={POSTBACK_TOKEN}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "sub1={click_b}&transaction_id=ef-77&sale_amount=99.99&sub2={{sub2}}"
        )))
        .unwrap();
    let (status, everflow) = call(&engine.app, request).await;
    assert_eq!(status, StatusCode::OK, "{everflow}");
    assert_eq!(everflow["status"], "attributed");
    assert_eq!(engine.credit_of("c2", "ef-77").await["message_id"], "m2");
    let report = engine.report("message").await;
    assert_eq!(row(&report, "m1")["revenue"], "12.50");
    assert_eq!(row(&report, "m2")["revenue"], "99.99");
}

/// The hash a click from `ip` is stored with.
fn ip_hash_of(ip: &str) -> String {
    hash_client_ip(&Secret::new(LINK_SECRET), ip)
}

/// The stored clicks of contact `c1`, newest last.
async fn stored_clicks(engine: &Engine) -> Vec<Value> {
    engine.journey("c1").await["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["type"] == "click")
        .cloned()
        .collect()
}

async fn the_click_hash_is_the_peer_address_never_x_forwarded_for(backend: Backend) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    engine.offer("o", 90).await;
    let code = engine.send("c1", "m1", "spring", "t1", "o").await;
    // The same visitor twice, claiming two other addresses.
    for forged in ["198.51.100.1", "198.51.100.2, 10.0.0.1"] {
        let request = Request::get(format!("/c/{code}"))
            .extension(ConnectInfo(VISITOR))
            .header("user-agent", BROWSER)
            .header("x-forwarded-for", forged)
            .body(Body::empty())
            .unwrap();
        let (status, _) = call(&engine.app, request).await;
        assert_eq!(status, StatusCode::FOUND);
    }
    // In Lambda: API Gateway's sourceIp, whatever the headers say.
    let event = json!({
        "version": "2.0", "routeKey": "GET /c/{code}", "rawPath": format!("/c/{code}"),
        "rawQueryString": "",
        "headers": {"user-agent": BROWSER, "x-forwarded-for": "198.51.100.3"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "links.test",
            "domainPrefix": "links", "requestId": "r1", "routeKey": "GET /c/{code}",
            "stage": "$default", "time": "01/Dec/2026:10:00:00 +0000", "timeEpoch": 1796119200000_i64,
            "http": {"method": "GET", "path": format!("/c/{code}"), "protocol": "HTTP/1.1",
                     "sourceIp": "192.0.2.44", "userAgent": BROWSER}
        },
        "pathParameters": {"code": code}, "isBase64Encoded": false
    });
    let lambda_request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let request = lambda_request.map(|body| Body::from(body.to_vec()));
    let (status, _) = call(&engine.app, request).await;
    assert_eq!(status, StatusCode::FOUND);

    let hashes: Vec<String> = stored_clicks(&engine)
        .await
        .iter()
        .map(|click| click["ip_hash"].as_str().unwrap().to_owned())
        .collect();
    let visitor = ip_hash_of(&VISITOR.ip().to_string());
    assert_eq!(hashes.len(), 3);
    assert_eq!(hashes.iter().filter(|hash| **hash == visitor).count(), 2);
    assert!(hashes.contains(&ip_hash_of("192.0.2.44")), "{hashes:?}");
    for forged in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        assert!(!hashes.contains(&ip_hash_of(forged)), "{forged}");
    }
    // Without a known address (no socket, no API Gateway), the click has no address hash.
    let request = Request::get(format!("/c/{code}"))
        .header("user-agent", BROWSER)
        .header("x-forwarded-for", "198.51.100.4")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&engine.app, request).await.0, StatusCode::FOUND);
    let clicks = stored_clicks(&engine).await;
    assert_eq!(clicks.len(), 4);
    assert_eq!(
        clicks
            .iter()
            .filter(|click| click.get("ip_hash").is_none())
            .count(),
        1
    );
}

/// A platform's clock may run a little behind: up to five minutes before its click, a
/// conversion is credited; earlier, it is stored as `before_click` and counted nowhere.
async fn a_conversion_before_its_click_is_not_credited(backend: Backend) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    engine.offer("o", 90).await;
    let code = engine.send("c1", "m1", "spring", "t1", "o").await;
    let click_id = engine.click(&code).await;
    let clicked_at = engine.clicked_at("c1", &click_id).await;
    let postback = |id: &str, seconds: i64| {
        format!(
            "click_id={click_id}&conversion_id={id}&payout=5&converted_at={}",
            seconds_later(clicked_at, seconds)
        )
    };
    let (status, early) = engine.postback("generic", &postback("EARLY", -301)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(early["status"], "before_click", "{early}");
    assert_eq!(engine.credit_of("c1", "EARLY").await, Value::Null);
    let (_, skewed) = engine.postback("generic", &postback("SKEWED", -300)).await;
    assert_eq!(skewed["status"], "attributed", "{skewed}");
    assert_eq!(
        engine.credit_of("c1", "SKEWED").await["click_id"],
        click_id.as_str()
    );
    // Redelivered, the early one stays what it was.
    let (_, again) = engine.postback("generic", &postback("EARLY", -301)).await;
    assert_eq!(again["status"], "duplicate");
    let report = engine.report("message").await;
    assert_eq!(row(&report, "m1")["conversions"], 1);
    assert_eq!(row(&report, "m1")["revenue"], "5.00");
    let journey = engine.journey("c1").await;
    let statuses: Vec<&str> = journey["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["type"] == "conversion")
        .map(|event| event["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["before_click", "attributed"]);
    assert_eq!(
        journey["revenue"],
        json!([{"currency": "USD", "amount": "5.00"}])
    );
}

/// The redirect over `engine`'s store seen through `plan`'s faults, queueing on `queue`; the
/// postback and admin routes fault-free.
fn with_faulty_clicks(engine: &Engine, plan: &Arc<FaultPlan>, queue: Arc<dyn JobQueue>) -> Router {
    revenue_app(
        Arc::new(FaultInjectingStore::new(
            engine.stores.revenue.clone(),
            plan.clone(),
        )),
        engine.stores.revenue.clone(),
        queue,
        engine.stores.contacts.clone(),
    )
}

/// Follows `code` as a browser `clicks` times over `app`: the statuses (each a redirect, or a
/// 503 when the store failed before the destination was known), and the click ids of the
/// redirects.
async fn click_many(app: &Router, code: &str, clicks: usize) -> (Vec<StatusCode>, Vec<String>) {
    let (mut statuses, mut ids) = (Vec::new(), Vec::new());
    for _ in 0..clicks {
        let request = Request::get(format!("/c/{code}"))
            .extension(ConnectInfo(VISITOR))
            .header("user-agent", BROWSER)
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert!(
            [StatusCode::FOUND, StatusCode::SERVICE_UNAVAILABLE].contains(&response.status()),
            "{}",
            response.status()
        );
        statuses.push(response.status());
        if response.status() == StatusCode::FOUND {
            let location = response.headers()["location"].to_str().unwrap();
            assert!(
                location.starts_with("https://shop.example/o?aff="),
                "{location}"
            );
            ids.push(location.rsplit_once("aff=").unwrap().1.to_owned());
        }
    }
    (statuses, ids)
}

/// Offer `o` and one send to `c1`, fault-free; its code.
async fn one_send(engine: &Engine) -> String {
    engine.offer("o", 90).await;
    engine.send("c1", "m1", "spring", "t1", "o").await
}

/// The click ids stored for `c1`, sorted.
async fn stored_click_ids(engine: &Engine) -> Vec<String> {
    let mut ids: Vec<String> = stored_clicks(engine)
        .await
        .iter()
        .map(|click| click["click_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// Store faults on the redirect: a fault reading the send or offer is a 5xx (the destination
/// is unknown), a fault writing the click still redirects and queues the click, which the
/// matcher records once however often the job is delivered.
async fn clicks_whose_write_fails_are_redirected_and_recorded_once_from_the_queue(
    backend: Backend,
) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    let code = one_send(&engine).await;
    let plan = FaultPlan::ratio(1.0, 0x00c1_u64);
    let queue = Arc::new(RecordingQueue::default());
    let faulty = with_faulty_clicks(&engine, &plan, queue.clone());
    let (statuses, _) = click_many(&faulty, &code, 1).await;
    assert_eq!(statuses, [StatusCode::SERVICE_UNAVAILABLE], "reads failed");

    plan.set_ratio(0.3);
    let (_, mut redirected) = click_many(&faulty, &code, 40).await;
    plan.set_ratio(0.0);
    let queued = queue.jobs.lock().unwrap().clone();
    assert!(
        !queued.is_empty(),
        "no click write met a fault: the test proves nothing"
    );
    assert!(
        queued.len() < redirected.len(),
        "no click was recorded directly"
    );
    // Delivered twice each, as SQS may.
    let matcher = QueueWorker::new(
        engine.stores.contacts.clone(),
        engine.stores.rules.clone(),
        engine.stores.jobs.clone(),
    )
    .with_revenue(engine.stores.revenue.clone());
    let messages: Vec<(String, String)> = queued
        .iter()
        .enumerate()
        .map(|(n, job)| (format!("m{n}"), serde_json::to_string(job).unwrap()))
        .collect();
    for _ in 0..2 {
        let failed = matcher.handle_batch(&messages, Timestamp::now()).await;
        assert!(failed.is_empty(), "{failed:?}");
    }
    redirected.sort();
    assert_eq!(stored_click_ids(&engine).await, redirected);
    assert_eq!(
        row(&engine.report("message").await, "m1")["clicks"],
        redirected.len()
    );
    // Only a code that names nothing is a 404.
    let unknown = Request::get("/c/NOSUCHCODE").body(Body::empty()).unwrap();
    let (status, body) = call(&faulty, unknown).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

/// With the queue down as well, a click whose write fails is lost (and counted as such), but
/// the visitor still reaches the offer.
async fn clicks_are_redirected_even_when_the_queue_fails_too(backend: Backend) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    let code = one_send(&engine).await;
    let plan = FaultPlan::ratio(0.3, 0x10c1_u64);
    let queue = Arc::new(RecordingQueue::default());
    queue
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let faulty = with_faulty_clicks(&engine, &plan, queue.clone());
    let (_, redirected) = click_many(&faulty, &code, 40).await;
    plan.set_ratio(0.0);
    let stored = stored_click_ids(&engine).await;
    assert!(
        stored.len() < redirected.len(),
        "no click write met a fault: the test proves nothing"
    );
    assert!(stored.iter().all(|id| redirected.contains(id)));
    assert_eq!(queue.job_count(), 0);
}

/// The local server's wiring: the redirect queues on the in-process queue, whose matcher
/// records the click.
async fn the_local_queue_records_the_clicks_the_redirect_could_not(backend: Backend) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    let code = one_send(&engine).await;
    let plan = FaultPlan::ratio(0.3, 0x20c1_u64);
    let faulty = Stores {
        revenue: Arc::new(FaultInjectingStore::new(
            engine.stores.revenue.clone(),
            plan.clone(),
        )),
        ..engine.stores.clone()
    };
    // The matcher records on the fault-free store, so every queued click lands on its first try.
    let plain = engine.stores.revenue.clone();
    let local = local_server::engine_with_matcher(&secrets(), &faulty, PUBLIC_BASE_URL, |m| {
        m.with_revenue(plain)
    });
    let (_, mut redirected) = click_many(&local.app, &code, 40).await;
    plan.set_ratio(0.0);
    redirected.sort();
    let mut stored = Vec::new();
    for _ in 0..200 {
        stored = stored_click_ids(&engine).await;
        if stored.len() >= redirected.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(stored, redirected);
    assert!(local.match_queue.dead_letters().is_empty());
}

/// Clicks on `code` whose write failed (the redirect over a store refusing 40 % of calls),
/// as the queue holds them: the click id went to the offer, the click is not yet recorded.
async fn late_clicks(engine: &Engine, code: &str, seed: u64) -> Vec<QueueJob> {
    let plan = FaultPlan::ratio(0.4, seed);
    let queue = Arc::new(RecordingQueue::default());
    let faulty = with_faulty_clicks(engine, &plan, queue.clone());
    click_many(&faulty, code, 40).await;
    let queued = queue.jobs.lock().unwrap().clone();
    let mut late = Vec::new();
    // A click whose write landed before a later read failed is queued too, but not late.
    for job in queued {
        if engine
            .stores
            .revenue
            .load_click(&click_id_of(&job))
            .await
            .unwrap()
            .is_none()
        {
            late.push(job);
        }
    }
    assert!(late.len() >= 3, "too few click writes met a fault");
    late
}

fn click_id_of(job: &QueueJob) -> String {
    match job {
        QueueJob::RecordClick(click) => click.click_id.clone(),
        other => panic!("not a click: {other:?}"),
    }
}

fn matcher_over(revenue: Arc<dyn RevenueStore>, engine: &Engine) -> QueueWorker {
    QueueWorker::new(
        engine.stores.contacts.clone(),
        engine.stores.rules.clone(),
        engine.stores.jobs.clone(),
    )
    .with_revenue(revenue)
}

fn messages_of(jobs: &[QueueJob]) -> Vec<(String, String)> {
    jobs.iter()
        .enumerate()
        .map(|(n, job)| (format!("m{n}"), serde_json::to_string(job).unwrap()))
        .collect()
}

/// Every queued click's conversion `L<n>` (payout 2) is credited to `c1`'s first click (by
/// the first-click rule: the earliest at or before the late click; with `racing`, one of
/// those, as other late clicks may not have been recorded yet), and the report counts each
/// once.
async fn each_late_click_earns_its_conversion_once(
    engine: &Engine,
    jobs: &[QueueJob],
    racing: bool,
) {
    let mut clicks: Vec<(Timestamp, String)> = Vec::new();
    for click in stored_clicks(engine).await {
        let at = Timestamp::parse_rfc3339(click["clicked_at"].as_str().unwrap()).unwrap();
        clicks.push((at, click["click_id"].as_str().unwrap().to_owned()));
    }
    clicks.sort();
    for (n, job) in jobs.iter().enumerate() {
        let QueueJob::RecordClick(late) = job else {
            panic!("not a click: {job:?}");
        };
        let earlier: Vec<&str> = clicks
            .iter()
            .filter(|(at, _)| *at <= late.clicked_at)
            .map(|(_, id)| id.as_str())
            .collect();
        let credit = engine.credit_of("c1", &format!("L{n}")).await;
        let credited = credit["click_id"].as_str().unwrap_or_default();
        if racing {
            assert!(earlier.contains(&credited), "L{n}: {credit}");
        } else {
            assert_eq!(credited, earlier[0], "L{n}");
        }
    }
    let report = engine.report("message").await;
    let row = row(&report, "m1");
    assert_eq!(row["conversions"], jobs.len(), "{report}");
    assert_eq!(row["revenue"], format!("{}.00", 2 * jobs.len()), "{report}");
}

/// Late clicks on one send (see [`late_clicks`]), each with its conversion `L<n>` (payout 2)
/// posted back before the click is recorded: each answered `unknown_click`.
async fn late_clicks_converted(engine: &Engine, seed: u64) -> Vec<QueueJob> {
    let code = one_send(engine).await;
    let jobs = late_clicks(engine, &code, seed).await;
    for (n, job) in jobs.iter().enumerate() {
        let query = format!("click_id={}&conversion_id=L{n}&payout=2", click_id_of(job));
        let (status, answer) = engine.postback("generic", &query).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["status"], "unknown_click", "{answer}");
    }
    jobs
}

/// A postback whose click is still in the queue is stored `unknown_click`; when the click is
/// recorded, the conversion is credited to it, once however often the click is delivered.
async fn a_conversion_before_its_late_click_is_reattributed_once(backend: Backend) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    let jobs = late_clicks_converted(&engine, 0x1a7e).await;
    assert_eq!(row(&engine.report("message").await, "m1")["conversions"], 0);
    let matcher = matcher_over(engine.stores.revenue.clone(), &engine);
    // Delivered twice, as SQS may.
    for _ in 0..2 {
        let failed = matcher
            .handle_batch(&messages_of(&jobs), Timestamp::now())
            .await;
        assert!(failed.is_empty(), "{failed:?}");
    }
    each_late_click_earns_its_conversion_once(&engine, &jobs, false).await;
    let (_, again) = engine
        .postback(
            "generic",
            &format!(
                "click_id={}&conversion_id=L0&payout=2",
                click_id_of(&jobs[0])
            ),
        )
        .await;
    assert_eq!(again["status"], "duplicate");
    let journey = engine.journey("c1").await;
    let statuses: Vec<&Value> = journey["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["type"] == "conversion")
        .map(|event| &event["status"])
        .collect();
    assert!(
        statuses.iter().all(|status| *status == "attributed"),
        "{statuses:?}"
    );
}

/// The queued click and its postback at the same moment, for every late click: whichever
/// lands first, the conversion is credited, and counted once.
async fn a_late_click_racing_its_postback_is_credited_exactly_once(backend: Backend) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    let code = one_send(&engine).await;
    let jobs = late_clicks(&engine, &code, 0x2ace).await;
    let matcher = Arc::new(matcher_over(engine.stores.revenue.clone(), &engine));
    let mut tasks = Vec::new();
    for (n, message) in messages_of(&jobs).into_iter().enumerate() {
        let matcher = matcher.clone();
        tasks.push(tokio::spawn(async move {
            matcher.handle_batch(&[message], Timestamp::now()).await
        }));
        let app = engine.app.clone();
        let uri = format!(
            "/postbacks/generic?token={POSTBACK_TOKEN}&click_id={}&conversion_id=L{n}&payout=2",
            click_id_of(&jobs[n])
        );
        tasks.push(tokio::spawn(async move {
            let (status, body) = call(&app, Request::get(uri).body(Body::empty()).unwrap()).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert!(["attributed", "unknown_click"].contains(&body["status"].as_str().unwrap()));
            Vec::new()
        }));
    }
    for task in tasks {
        assert!(task.await.unwrap().is_empty(), "a queued click failed");
    }
    each_late_click_earns_its_conversion_once(&engine, &jobs, true).await;
}

/// Late clicks recorded by a matcher whose store refuses calls or loses answers, delivered
/// again until none fails: every waiting conversion is credited once.
async fn late_clicks_recorded_through_faults_are_credited_exactly_once(backend: Backend) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    let jobs = late_clicks_converted(&engine, 0x3f17).await;
    let plan = FaultPlan::ratio(0.3, 0x4f17);
    let faulty: Arc<dyn RevenueStore> = Arc::new(FaultInjectingStore::new(
        engine.stores.revenue.clone(),
        plan.clone(),
    ));
    let matcher = matcher_over(faulty, &engine);
    let mut messages = messages_of(&jobs);
    let mut faults = 0;
    for round in 0..200 {
        plan.set_mode(if round % 2 == 0 {
            FaultMode::Refused
        } else {
            FaultMode::AnswerLost
        });
        let failed = matcher.handle_batch(&messages, Timestamp::now()).await;
        faults += failed.len();
        messages.retain(|(id, _)| failed.contains(id));
        if messages.is_empty() {
            break;
        }
    }
    assert!(messages.is_empty(), "still failing: {messages:?}");
    assert!(faults > 0, "no fault met: the test proves nothing");
    plan.set_ratio(0.0);
    each_late_click_earns_its_conversion_once(&engine, &jobs, false).await;
}

/// Sends, clicks and conversions of two numbers: each one's report holds its own only, and
/// the two add up to the report of every instance, row by row.
async fn reports_filter_by_instance_and_the_instances_add_up_to_the_whole(backend: Backend) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    const OTHER: &str = "209876543210987";
    engine.offer("o", 90).await;
    let here = engine.send("c1", "m1", "spring", "t1", "o").await;
    let there = engine
        .send_from(OTHER, "c1", "m2", "spring", "t1", "o")
        .await;
    engine
        .send_from(OTHER, "c2", "m3", "autumn", "t2", "o")
        .await;
    let here_click = engine.click(&here).await;
    let there_click = engine.click(&there).await;
    engine.click(&there).await;
    for (click, id, payout) in [(&here_click, "A", "1.25"), (&there_click, "B", "10")] {
        let (_, answer) = engine
            .postback(
                "generic",
                &format!("click_id={click}&conversion_id={id}&payout={payout}"),
            )
            .await;
        assert_eq!(answer["status"], "attributed");
    }
    let campaign = |report: &Value, key: &str| {
        let row = report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == key);
        row.map(|row| {
            (
                row["sends"].as_u64().unwrap(),
                row["clicks"].as_u64().unwrap(),
                row["conversions"].as_u64().unwrap(),
                row["revenue"].as_str().unwrap().to_owned(),
            )
        })
    };
    let all = engine.report("campaign").await;
    let mine = engine
        .report_of("campaign", &format!("&instance_id={INSTANCE}"))
        .await;
    let theirs = engine
        .report_of("campaign", &format!("&instance_id={OTHER}"))
        .await;
    assert_eq!(
        campaign(&mine, "spring"),
        Some((1, 1, 1, "1.25".to_owned()))
    );
    assert_eq!(campaign(&mine, "autumn"), None, "{mine}");
    assert_eq!(
        campaign(&theirs, "spring"),
        Some((1, 2, 1, "10.00".to_owned()))
    );
    assert_eq!(
        campaign(&theirs, "autumn"),
        Some((1, 0, 0, "0.00".to_owned()))
    );
    assert_eq!(
        campaign(&all, "spring"),
        Some((2, 3, 2, "11.25".to_owned()))
    );
    assert_eq!(all["totals"][0]["revenue"], "11.25");
    assert_eq!(theirs["totals"][0]["sends"], 2);
    let nobody = engine.report_of("day", "&instance_id=999").await;
    assert_eq!(nobody["rows"], json!([]));
    for bad in ["&instance_id=", "&instance_id=a%23b"] {
        let (status, body) = engine
            .admin("GET", &format!("/reports/revenue?group_by=day{bad}"), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"]["field"], "instance_id", "{body}");
    }
}

impl Engine {
    /// An offer with a click window and a view window, in days.
    async fn view_offer(&self, id: &str, click_days: u32, view_days: u32) {
        let (status, body) = self
            .admin(
                "POST",
                "/offers",
                Some(json!({"offer_id": id, "name": "Viewed",
                    "destination_url": format!("https://shop.example/{id}?aff={{click_id}}"),
                    "click_window_days": click_days, "view_window_days": view_days})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["view_window_days"], view_days);
    }

    /// A send of `offer` to `contact` (message `message`, campaign `spring`) at `sent_at`.
    async fn send_at(&self, contact: &str, message: &str, offer: &str, sent_at: Timestamp) {
        let (status, body) = self
            .admin(
                "POST",
                "/sends",
                Some(json!({"instance_id": INSTANCE, "contact_id": contact,
                    "message_id": message, "campaign": "spring", "creative": "t1",
                    "offer_id": offer, "sent_at": sent_at.to_string()})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    /// A conversion posted back naming `contact` and `offer` instead of a click.
    async fn contact_postback(&self, contact: &str, offer: &str, more: &str) -> Value {
        let (status, answer) = self
            .postback(
                "generic",
                &format!("instance_id={INSTANCE}&contact_id={contact}&offer_id={offer}&{more}"),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer
    }
}

/// A postback naming the contact and offer: credited to the contact's first click on that
/// offer (not another offer's), and answered `unknown_click` without one; refused, naming the
/// field, when the contact is half named.
async fn conversions_naming_the_contact_are_credited_to_its_first_click_on_the_offer(
    backend: Backend,
) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    engine.offer("o", 90).await;
    engine.offer("p", 90).await;
    let other_offer = engine.send("c1", "m0", "k", "t", "p").await;
    engine.click(&other_offer).await;
    let code = engine.send("c1", "m1", "spring", "t1", "o").await;
    let first = engine.click(&code).await;
    engine.click(&code).await;
    let answer = engine
        .contact_postback("c1", "o", "conversion_id=N1&payout=4")
        .await;
    assert_eq!(
        answer,
        json!({"status": "attributed", "conversion_id": "N1", "attribution": "click_through"})
    );
    assert_eq!(
        engine.credit_of("c1", "N1").await["click_id"],
        first.as_str()
    );
    let again = engine
        .contact_postback("c1", "o", "conversion_id=N1&payout=4")
        .await;
    assert_eq!(again["status"], "duplicate");
    // Without a conversion id the contact, offer and event make the key, apart from a click's.
    let lead = engine.contact_postback("c1", "o", "event=lead").await;
    assert_eq!(
        (lead["status"].as_str(), lead["conversion_id"].as_str()),
        (
            Some("attributed"),
            Some(format!("{INSTANCE}:c1:o:lead").as_str())
        )
    );
    let nobody = engine
        .contact_postback("c9", "o", "conversion_id=N2&payout=4")
        .await;
    assert_eq!(nobody["status"], "unknown_click");
    let no_offer = engine
        .contact_postback("c1", "nosuchoffer", "conversion_id=N3")
        .await;
    assert_eq!(no_offer["status"], "unknown_click");
    assert_eq!(
        row(&engine.report("campaign").await, "spring")["conversions"],
        2
    );
    for (query, field) in [
        (format!("instance_id={INSTANCE}&contact_id=c1"), "offer_id"),
        (format!("instance_id={INSTANCE}&offer_id=o"), "contact_id"),
        ("contact_id=c1&offer_id=o".to_owned(), "instance_id"),
        (
            format!("instance_id={INSTANCE}&contact_id=a%23b&offer_id=o"),
            "contact_id",
        ),
    ] {
        let (status, body) = engine.postback("generic", &query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
}

fn view_through_row(report: &Value, key: &str) -> (u64, u64, String, String) {
    let row = row(report, key);
    (
        row["conversions"].as_u64().unwrap(),
        row["view_through_conversions"].as_u64().unwrap(),
        row["revenue"].as_str().unwrap().to_owned(),
        row["view_through_revenue"].as_str().unwrap().to_owned(),
    )
}

/// With a 7-day view window, a conversion exactly 7 days after a send carrying the offer is
/// credited view-through to that send (the earliest in the window), one a second later to the
/// next send or to nothing; view-through revenue is reported apart from click-through.
async fn view_through_credits_the_first_send_inside_the_view_window_both_ends_included(
    backend: Backend,
) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    engine.view_offer("v", 1, 7).await;
    let t0 = Timestamp::parse_rfc3339("2026-11-02T09:00:00Z").unwrap();
    engine.send_at("c1", "first", "v", t0).await;
    engine
        .send_at("c1", "second", "v", t0.plus_seconds(86_400))
        .await;
    let at = |seconds: i64| seconds_later(t0, seconds);
    let edge = engine
        .contact_postback(
            "c1",
            "v",
            &format!("conversion_id=E&payout=3&converted_at={}", at(7 * 86_400)),
        )
        .await;
    assert_eq!(
        edge,
        json!({"status": "attributed", "conversion_id": "E", "attribution": "view_through"})
    );
    let credit = engine.credit_of("c1", "E").await;
    assert_eq!(
        (
            credit["attribution"].as_str(),
            credit["message_id"].as_str()
        ),
        (Some("view_through"), Some("first"))
    );
    assert!(credit.get("click_id").is_none(), "{credit}");
    let past = engine
        .contact_postback(
            "c1",
            "v",
            &format!(
                "conversion_id=P&payout=2&converted_at={}",
                at(7 * 86_400 + 1)
            ),
        )
        .await;
    assert_eq!(past["attribution"], "view_through");
    assert_eq!(engine.credit_of("c1", "P").await["message_id"], "second");
    let gone = engine
        .contact_postback(
            "c1",
            "v",
            &format!(
                "conversion_id=G&payout=2&converted_at={}",
                at(8 * 86_400 + 1)
            ),
        )
        .await;
    assert_eq!(gone["status"], "unknown_click", "no send in the window");
    let report = engine.report("message").await;
    assert_eq!(
        view_through_row(&report, "first"),
        (0, 1, "0.00".into(), "3.00".into())
    );
    assert_eq!(
        view_through_row(&report, "second"),
        (0, 1, "0.00".into(), "2.00".into())
    );
    let totals = &report["totals"][0];
    assert_eq!(
        (
            totals["conversions"].as_u64(),
            totals["view_through_revenue"].as_str()
        ),
        (Some(0), Some("5.00")),
        "never mixed into the click-through total"
    );
}

/// A click inside the click window earns the conversion, whatever the sends; an offer without
/// a view window credits no send; a click outside its window falls back to view-through.
async fn view_through_never_displaces_a_click_and_stays_off_by_default(backend: Backend) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    engine.view_offer("v", 1, 7).await;
    engine.offer("off", 1).await;
    let (status, off) = engine.admin("GET", "/offers/off", None).await;
    assert_eq!(
        (status, off["view_window_days"].as_u64()),
        (StatusCode::OK, Some(0))
    );
    let now = Timestamp::now();
    engine
        .send_at("c1", "early", "v", now.plus_seconds(-3 * 86_400))
        .await;
    let code = engine.send("c1", "clicked", "spring", "t1", "v").await;
    let click_id = engine.click(&code).await;
    let clicked = engine
        .contact_postback("c1", "v", "conversion_id=C&payout=5")
        .await;
    assert_eq!(clicked["attribution"], "click_through");
    assert_eq!(
        engine.credit_of("c1", "C").await["click_id"],
        click_id.as_str()
    );
    let by_click = engine
        .postback(
            "generic",
            &format!("click_id={click_id}&conversion_id=K&payout=1"),
        )
        .await
        .1;
    assert_eq!(by_click["attribution"], "click_through");
    // Two days on, the click is outside its 1-day window; the earliest send in the 7-day view
    // window earns it.
    let (_, late) = engine
        .postback(
            "generic",
            &format!(
                "click_id={click_id}&conversion_id=LATE&payout=1&converted_at={}",
                seconds_later(now, 2 * 86_400)
            ),
        )
        .await;
    assert_eq!(late["attribution"], "view_through", "{late}");
    assert_eq!(engine.credit_of("c1", "LATE").await["message_id"], "early");

    engine
        .send_at("c2", "quiet", "off", now.plus_seconds(-3_600))
        .await;
    let off = engine
        .contact_postback("c2", "off", "conversion_id=O&payout=9")
        .await;
    assert_eq!(
        off,
        json!({"status": "unknown_click", "conversion_id": "O"})
    );
    for (days, ok) in [
        ("0", true),
        ("30", true),
        ("31", false),
        ("-1", false),
        ("\"7\"", false),
    ] {
        let (status, body) = engine
            .admin(
                "POST",
                "/offers",
                Some(serde_json::from_str(&format!(
                    r#"{{"name": "W", "destination_url": "https://shop.example/", "view_window_days": {days}}}"#
                )).unwrap()),
            )
            .await;
        assert_eq!(status.is_success(), ok, "{days}: {body}");
        if !ok {
            assert_eq!(body["error"]["field"], "view_window_days", "{body}");
        }
    }
}

impl Engine {
    /// `GET /conversions/{id}/explain?network=generic`, answered 200.
    async fn explain(&self, conversion_id: &str) -> Value {
        let (status, body) = self
            .admin(
                "GET",
                &format!("/conversions/{conversion_id}/explain?network=generic"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

/// Each outcome explained in words, with the clicks the rule looked at and the window.
async fn explain_answers_the_troubleshooting_checklist_for_each_outcome(backend: Backend) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    engine.offer("o", 90).await;
    engine.offer("day", 1).await;
    engine.view_offer("v", 1, 7).await;
    let other = engine.send("c1", "m0", "k", "t", "day").await;
    engine.click(&other).await;
    let code = engine.send("c1", "m1", "spring", "t1", "o").await;
    let first = engine.click(&code).await;
    engine.click(&code).await;
    let third = engine.click(&code).await;
    engine
        .postback(
            "generic",
            &format!("click_id={third}&conversion_id=A&payout=1"),
        )
        .await;
    let attributed = engine.explain("A").await;
    assert_eq!(
        attributed["outcome"],
        "attributed to the first click of 3 in the 90-day window"
    );
    assert_eq!(attributed["window"]["days"], 90);
    let clicks = attributed["clicks"].as_array().unwrap();
    assert_eq!(clicks.len(), 3, "another offer's click is not considered");
    assert_eq!(clicks[0]["click_id"], first.as_str());
    assert_eq!(clicks[0]["credited"], true);
    assert_eq!(
        clicks[0]["why"],
        "credited: the first click inside the window"
    );
    assert_eq!(clicks[2]["why"], "inside the window, but not the first");
    assert!(clicks.iter().all(|c| c["inside_window"] == true));
    assert_eq!(attributed["conversion"]["conversion_id"], "A");

    engine
        .postback("generic", "click_id=NOSUCH&conversion_id=U&payout=1")
        .await;
    let unknown = engine.explain("U").await;
    assert_eq!(unknown["outcome"], "unknown click id");
    assert_eq!(
        (unknown["window"].clone(), unknown["clicks"].clone()),
        (Value::Null, json!([]))
    );

    let day_click = engine
        .click(&engine.send("c2", "m2", "k", "t", "day").await)
        .await;
    let clicked_at = engine.clicked_at("c2", &day_click).await;
    for (id, seconds) in [("LATE", 86_401), ("EARLY", -3_600)] {
        engine
            .postback(
                "generic",
                &format!(
                    "click_id={day_click}&conversion_id={id}&converted_at={}",
                    seconds_later(clicked_at, seconds)
                ),
            )
            .await;
    }
    let late = engine.explain("LATE").await;
    assert_eq!(
        late["outcome"],
        "click 2 days before the conversion, window 1 days"
    );
    assert_eq!(late["clicks"][0]["inside_window"], false);
    assert_eq!(
        late["clicks"][0]["why"],
        "before the window: 2 days before the conversion, window 1 days"
    );
    let early = engine.explain("EARLY").await;
    assert_eq!(
        early["outcome"],
        "the click came after the conversion, more than 5 minutes later: it cannot have caused it"
    );
    assert_eq!(
        early["clicks"][0]["why"],
        "after the conversion (more than 5 minutes)"
    );

    let t0 = Timestamp::parse_rfc3339("2026-11-02T09:00:00Z").unwrap();
    engine.send_at("c3", "seen", "v", t0).await;
    engine
        .contact_postback(
            "c3",
            "v",
            &format!("conversion_id=VT&converted_at={}", seconds_later(t0, 3_600)),
        )
        .await;
    engine
        .contact_postback("c4", "v", "conversion_id=NONE")
        .await;
    assert_eq!(
        engine.explain("VT").await["outcome"],
        "attributed view-through to the send of message seen at 2026-11-02T09:00:00.000Z: no click on the offer in the 1-day click window"
    );
    assert_eq!(
        engine.explain("NONE").await["outcome"],
        "no click or send of the contact on the offer in the window (1-day click window)"
    );

    let (status, body) = engine
        .admin("GET", "/conversions/NOPE/explain?network=generic", None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("conversion_not_found"))
    );
    for bad in [
        "/conversions/A/explain",
        "/conversions/A/explain?network=other",
    ] {
        let (status, body) = engine.admin("GET", bad, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"]["field"], "network");
    }
    let long = "x".repeat(257);
    let (status, body) = engine
        .admin(
            "GET",
            &format!("/conversions/{long}/explain?network=tune"),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("conversion_id"))
    );
}

impl Engine {
    /// Records a click on `code`'s send at `at` with the id `id`, through the store (the
    /// redirect records only "now").
    async fn click_at(&self, code: &str, id: &str, at: Timestamp) {
        let revenue = &self.stores.revenue;
        let send = revenue.load_send(code).await.unwrap().unwrap();
        let offer = revenue.load_offer(&send.offer_id).await.unwrap().unwrap();
        let click = Click::new(
            id.to_owned(),
            &send,
            &offer,
            at,
            Some(BROWSER.to_owned()),
            None,
        );
        revenue.record_click(&click).await.unwrap();
    }

    /// The model comparison over the report's year (`query` adds `group_by=…` and more).
    async fn models(&self, query: &str) -> (StatusCode, Value) {
        let until = chrono::Utc::now().date_naive() + chrono::Duration::days(1);
        let since = until - chrono::Duration::days(365);
        self.admin(
            "GET",
            &format!("/reports/revenue/models?since={since}&until={until}&{query}"),
            None,
        )
        .await
    }

    /// Posts `csv` to the import as `network`'s: the status and the answer's lines (one JSON
    /// error for a refused call).
    async fn import(&self, network: &str, csv: &str) -> (StatusCode, Vec<Value>) {
        import_on(&self.app, network, csv).await
    }
}

/// [`Engine::import`] on `app`.
async fn import_on(app: &Router, network: &str, csv: &str) -> (StatusCode, Vec<Value>) {
    let request = Request::post(format!("/conversions/import?network={network}"))
        .header("authorization", format!("Bearer {ADMIN_KEY}"))
        .header("content-type", "text/csv")
        .body(Body::from(csv.to_owned()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let lines = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("{line:?}")))
        .collect();
    (status, lines)
}

/// The USD row of `key` (a key's rows sort by currency).
fn usd_row(report: &Value, key: &str) -> Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["key"] == key && row["currency"] == "USD")
        .cloned()
        .unwrap_or_else(|| panic!("no USD row {key} in {report}"))
}

fn amount(value: &Value) -> shared::revenue::Amount {
    shared::revenue::Amount::parse(value.as_str().unwrap_or_else(|| panic!("{value}"))).unwrap()
}

const MODELS: [&str; 5] = [
    "first_click",
    "last_click",
    "linear",
    "time_decay",
    "position_based",
];

/// Three clicks of one contact on one offer, from three campaigns 14 and 7 days apart, and a
/// conversion of 10.00 on the last: every model splits it as its worked example says, and a
/// second contact's one-click conversion goes whole to its click under every model. Every
/// model's column adds up, per currency, to the credited report's total.
async fn the_models_split_each_conversion_over_its_window_clicks_and_add_up_to_the_report(
    backend: Backend,
) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    engine.offer("m", 90).await;
    let converted = Timestamp::now().plus_seconds(-60);
    let day = 86_400;
    for (campaign, days_before) in [("a", 14), ("b", 7), ("c", 0)] {
        let code = engine
            .send(
                "c1",
                &format!("m{campaign}"),
                campaign,
                &format!("k{campaign}"),
                "m",
            )
            .await;
        engine
            .click_at(
                &code,
                &format!("01MODEL{}", campaign.to_uppercase()),
                converted.plus_seconds(-days_before * day),
            )
            .await;
    }
    let code = engine.send("c2", "m2", "a", "ka", "m").await;
    engine
        .click_at(&code, "01MODELC2", converted.plus_seconds(-day))
        .await;
    let at = urlencode(&converted.to_string());
    for query in [
        format!("click_id=01MODELC&conversion_id=M1&payout=10&converted_at={at}"),
        format!("click_id=01MODELC2&conversion_id=M2&payout=5&currency=EUR&converted_at={at}"),
    ] {
        let (status, answer) = engine.postback("generic", &query).await;
        assert_eq!(
            (status, answer["status"].as_str()),
            (StatusCode::OK, Some("attributed")),
            "{answer}"
        );
    }
    let (status, models) = engine.models("group_by=campaign").await;
    assert_eq!(status, StatusCode::OK, "{models}");
    assert_eq!(models["models"], json!(MODELS));
    let shown = |key: &str, currency: &str| -> Vec<String> {
        let row = models["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["key"] == key && row["currency"] == currency)
            .unwrap_or_else(|| panic!("no row {key} {currency} in {models}"));
        MODELS
            .iter()
            .map(|model| row[model].as_str().unwrap().to_owned())
            .collect()
    };
    // first, last, linear (3.34/3.33/3.33), time decay (weights 1/4, 1/2, 1: 10/7 each part,
    // 1.428… 2.857… 5.714… rounded down, the two cents left to the largest remainders),
    // position based (40/20/40).
    assert_eq!(shown("a", "USD"), ["10.00", "0.00", "3.34", "1.43", "4.00"]);
    assert_eq!(shown("b", "USD"), ["0.00", "0.00", "3.33", "2.86", "2.00"]);
    assert_eq!(shown("c", "USD"), ["0.00", "10.00", "3.33", "5.71", "4.00"]);
    assert_eq!(shown("a", "EUR"), ["5.00"; 5]);
    for group_by in ["campaign", "creative", "message", "offer"] {
        let (_, models) = engine.models(&format!("group_by={group_by}")).await;
        let report = engine.report(group_by).await;
        for total in models["totals"].as_array().unwrap() {
            let currency = total["currency"].as_str().unwrap();
            let credited = report["totals"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["currency"] == currency)
                .unwrap();
            for model in MODELS {
                let sum = models["rows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|row| row["currency"] == currency)
                    .map(|row| amount(&row[model]))
                    .fold(shared::revenue::Amount::ZERO, |a, b| {
                        a.checked_add(b).unwrap()
                    });
                assert_eq!(sum, amount(&total[model]), "{group_by} {model} {currency}");
                assert_eq!(
                    sum,
                    amount(&credited["revenue"]),
                    "{group_by} {model} {currency}: the credited total"
                );
            }
        }
    }
    // The credited report itself is as before: the first click's campaign has the revenue.
    let report = engine.report("campaign").await;
    assert_eq!(usd_row(&report, "a")["revenue"], "10.00");
    assert_eq!(usd_row(&report, "c")["revenue"], "0.00");
    // One instance's comparison is the whole one here; another instance has none.
    let (_, mine) = engine
        .models(&format!("group_by=campaign&instance_id={INSTANCE}"))
        .await;
    assert_eq!(mine["rows"], models["rows"]);
    let (_, other) = engine.models("group_by=campaign&instance_id=999").await;
    assert_eq!(other["rows"], json!([]));
}

async fn model_parameters_are_range_checked(backend: Backend) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    for (query, field) in [
        ("", "group_by"),
        ("group_by=day", "group_by"),
        ("group_by=colour", "group_by"),
        (
            "group_by=campaign&since=2026-02-01&until=2026-01-01",
            "since",
        ),
        (
            "group_by=campaign&since=2020-01-01&until=2021-06-01",
            "since",
        ),
        ("group_by=campaign&since=yesterday", "since"),
        ("group_by=campaign&until=99999-01-01", "until"),
        ("group_by=campaign&instance_id=a%20b", "instance_id"),
    ] {
        let (status, body) = engine
            .admin("GET", &format!("/reports/revenue/models?{query}"), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
}

/// An offer, a send and a click of a fixed id (so two engines share it), and a postback of
/// T0 sent before the import.
async fn import_world(engine: &Engine) {
    engine.offer("o", 90).await;
    let code = engine.send("c1", "m1", "spring", "t1", "o").await;
    engine
        .click_at(
            &code,
            "01IMPORTCLICK",
            Timestamp::now().plus_seconds(-3_600),
        )
        .await;
    let (status, answer) = engine
        .postback(
            "tune",
            "aff_sub=01IMPORTCLICK&transaction_id=T0&payout=1.50",
        )
        .await;
    assert_eq!(answer["status"], "attributed", "{status} {answer}");
}

/// The import's rows: TUNE's names, a row identical to the postback sent before, credited,
/// unknown-click, invalid and contact-named rows, a blank line and a quoted row.
const IMPORT_HEADER: &str =
    "aff_sub,transaction_id,payout,currency,converted_at,event,instance_id,contact_id,offer_id";

fn import_rows() -> Vec<String> {
    vec![
        "01IMPORTCLICK,T0,1.50,,,,,,".to_owned(),
        "01IMPORTCLICK,T1,2.25,USD,,sale,,,".to_owned(),
        "NOPE,T2,3,USD,,,,,".to_owned(),
        "01IMPORTCLICK,T3,ten,USD,,,,,".to_owned(),
        "01IMPORTCLICK,T4".to_owned(),
        format!(",T5,4.00,EUR,,,{INSTANCE},c1,o"),
        String::new(),
        "\"01IMPORTCLICK\",\"T6\",\"0.25\",usd,,,,,".to_owned(),
    ]
}

async fn a_csv_import_is_the_same_conversions_sent_as_postbacks_and_a_reimport_changes_nothing(
    backend: Backend,
) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    import_world(&engine).await;
    let csv = format!("{IMPORT_HEADER}\n{}\n", import_rows().join("\n"));
    let (status, lines) = engine.import("tune", &csv).await;
    assert_eq!(status, StatusCode::OK, "{lines:?}");
    let answered: Vec<(u64, &str, Option<&str>)> = lines[..lines.len() - 1]
        .iter()
        .map(|line| {
            (
                line["line"].as_u64().unwrap(),
                line["status"].as_str().unwrap(),
                line["conversion_id"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        answered,
        [
            (2, "duplicate", Some("T0")),
            (3, "attributed", Some("T1")),
            (4, "unknown_click", Some("T2")),
            (5, "invalid", None),
            (6, "invalid", None),
            (7, "attributed", Some("T5")),
            (9, "attributed", Some("T6")),
        ]
    );
    assert!(
        lines[3]["reason"].as_str().unwrap().contains("payout"),
        "{}",
        lines[3]
    );
    assert!(
        lines[4]["reason"].as_str().unwrap().contains("fields"),
        "{}",
        lines[4]
    );
    assert_eq!(lines[1]["attribution"], "click_through");
    let totals = lines.last().unwrap();
    assert_eq!(
        *totals,
        json!({"rows": 7, "totals": {"attributed": 3, "duplicate": 1, "invalid": 2, "unknown_click": 1}})
    );
    // The totals are the report's: the postback before and the import's three credits.
    let report = engine.report("campaign").await;
    let currency_total = |currency: &str| {
        report["totals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["currency"] == currency)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        currency_total("USD")["revenue"],
        "4.00",
        "1.50 + 2.25 + 0.25"
    );
    assert_eq!(currency_total("USD")["conversions"], 3);
    assert_eq!(currency_total("EUR")["revenue"], "4.00");
    let (_, models) = engine.models("group_by=campaign").await;

    // The same rows sent as postbacks to another engine leave the same reports.
    let Some(other) = self::engine(backend).await else {
        return;
    };
    import_world(&other).await;
    let names: Vec<&str> = IMPORT_HEADER.split(',').collect();
    for row in import_rows() {
        if row.is_empty() {
            continue;
        }
        let values: Vec<String> = row
            .split(',')
            .map(|v| v.trim_matches('"').to_owned())
            .collect();
        if values.len() != names.len() || values[2] == "ten" {
            continue;
        }
        let query: Vec<String> = names
            .iter()
            .zip(&values)
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let (status, _) = other.postback("tune", &query.join("&")).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(other.report("campaign").await, report);
    assert_eq!(
        other.report("message").await,
        engine.report("message").await
    );
    assert_eq!(other.models("group_by=campaign").await.1, models);

    // Importing the file again changes nothing: every row is a duplicate (or invalid again).
    let (status, again) = engine.import("tune", &csv).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        *again.last().unwrap(),
        json!({"rows": 7, "totals": {"duplicate": 5, "invalid": 2}})
    );
    assert_eq!(engine.report("campaign").await, report);
    assert_eq!(engine.models("group_by=campaign").await.1, models);

    // Everflow's own names.
    let (status, lines) = engine
        .import(
            "everflow",
            "sub1,transaction_id,sale_amount\n01IMPORTCLICK,E1,7\n",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(lines[0]["status"], "attributed", "{lines:?}");
    assert_eq!(
        usd_row(&engine.report("campaign").await, "spring")["revenue"],
        "11.00"
    );
}

async fn a_bad_import_header_is_a_400_and_stores_nothing(backend: Backend) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    import_world(&engine).await;
    let before = engine.report("campaign").await;
    for (network, csv, code) in [
        ("tune", "aff_sub,payot\n01IMPORTCLICK,1\n", "invalid_header"),
        ("tune", "transaction_id,payout\nT9,1\n", "invalid_header"),
        (
            "generic",
            "aff_sub,transaction_id\n01IMPORTCLICK,T9\n",
            "invalid_header",
        ),
        ("generic", "click_id,click_id\nX,Y\n", "invalid_header"),
        ("generic", "instance_id,contact_id\n1,2\n", "invalid_header"),
        ("tune", "", "invalid_header"),
        ("bogus", "click_id\nX\n", "invalid_field"),
    ] {
        let (status, body) = engine.import(network, csv).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{csv:?}: {body:?}");
        assert_eq!(body[0]["error"]["code"], code, "{csv:?}: {body:?}");
    }
    let request = Request::post("/conversions/import?network=tune")
        .header("authorization", format!("Bearer {ADMIN_KEY}"))
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let (status, body) = call(&engine.app, request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let request = Request::post("/conversions/import?network=tune")
        .header("content-type", "text/csv")
        .body(Body::from("click_id\nX\n"))
        .unwrap();
    let (status, _) = call(&engine.app, request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the admin key is needed");
    let request = Request::post("/conversions/import?network=tune")
        .header("authorization", format!("Bearer {ADMIN_KEY}"))
        .header("content-type", "text/csv")
        .header("content-length", (64 * 1024 * 1024).to_string())
        .body(Body::from("click_id\nX\n"))
        .unwrap();
    let (status, _) = call(&engine.app, request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(engine.report("campaign").await, before);
    let (status, _) = engine
        .admin("GET", "/conversions/T9/explain?network=tune", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing stored");
}

/// An import over a store that refuses some calls, or loses their answers after they took
/// effect: a fault on the first row is a 503, a later one ends the answer with an error line;
/// importing the file again until it completes records every row once.
async fn an_import_stopped_by_faults_is_finished_by_importing_again_each_row_once(
    backend: Backend,
) {
    let Some(engine) = engine(backend).await else {
        return;
    };
    import_world(&engine).await;
    let plan = FaultPlan::ratio(0.003, 0x1717);
    let faulty: Arc<dyn RevenueStore> = Arc::new(FaultInjectingStore::new(
        engine.stores.revenue.clone(),
        plan.clone(),
    ));
    let app = revenue_app(
        faulty.clone(),
        faulty,
        Arc::new(RecordingQueue::default()),
        engine.stores.contacts.clone(),
    );
    let mut csv = String::from("aff_sub,transaction_id,payout\n");
    for row in 0..100 {
        csv.push_str(&format!("01IMPORTCLICK,F{row},0.01\n"));
    }
    let (mut stopped, mut refused) = (0, 0);
    let mut finished = false;
    for attempt in 0..200 {
        plan.set_mode(if attempt % 2 == 0 {
            FaultMode::Refused
        } else {
            FaultMode::AnswerLost
        });
        let (status, lines) = import_on(&app, "tune", &csv).await;
        match status {
            StatusCode::OK if lines.last().unwrap().get("error").is_some() => stopped += 1,
            StatusCode::OK => {
                assert_eq!(lines.len(), 101, "every row answered");
                finished = true;
                break;
            }
            StatusCode::SERVICE_UNAVAILABLE => refused += 1,
            other => panic!("{other}: {lines:?}"),
        }
    }
    assert!(finished, "the import never completed");
    assert!(stopped + refused > 0, "no fault met the import");
    plan.set_ratio(0.0);
    let (_, again) = engine.import("tune", &csv).await;
    assert_eq!(
        *again.last().unwrap(),
        json!({"rows": 100, "totals": {"duplicate": 100}})
    );
    let spring = usd_row(&engine.report("campaign").await, "spring");
    assert_eq!(
        (spring["conversions"].as_u64(), spring["revenue"].as_str()),
        (Some(101), Some("2.50")),
        "T0 and each of the 100 rows once"
    );
}
