//! The dashboard through its routes: sign-in and the session cookie, CSRF and the read-only
//! role, the Attribution view against the admin API, the rule forms, and its headers.

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use integration_tests::*;
use serde_json::{Value, json};
use shared::secret::{AdminKeys, KeyName, RotatingSecret, Secret};
use std::time::Duration;
use tower::ServiceExt;

on_every_store!(
    each_key_signs_in_with_a_strict_http_only_cookie,
    a_wrong_key_shows_the_form_again_with_401,
    expired_tampered_and_missing_sessions_are_refused,
    writes_without_the_sessions_csrf_token_answer_403,
    a_read_only_session_sees_no_write_buttons_and_every_write_answers_403,
    the_numbers_on_the_page_are_the_stats_apis,
    a_rule_added_through_the_form_is_listed_by_the_api,
    a_bad_regex_shows_the_apis_message_next_to_the_field_and_stores_nothing,
    rules_are_enabled_disabled_edited_and_deleted_through_the_forms,
    the_test_box_names_the_rule_the_api_would_match,
    every_page_carries_the_security_headers_and_assets_are_immutable,
    signing_out_clears_the_cookie,
    an_instance_id_of_any_visible_characters_opens_and_is_remembered,
    the_instances_with_contacts_or_rules_are_listed_and_in_every_pages_selector,
    home_opens_the_remembered_or_the_only_instance_and_otherwise_the_list,
);

const INSTANCE: &str = "106540352242922";

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|value| value.to_str().unwrap().to_owned())
            .collect()
    }

    /// The `dash_session=…` pair of the Set-Cookie header, as a browser would send it back.
    fn session(&self) -> String {
        let cookie = self
            .set_cookies()
            .into_iter()
            .find(|cookie| cookie.starts_with("dash_session="))
            .unwrap_or_else(|| panic!("no session cookie: {:?}", self.headers));
        cookie.split(';').next().unwrap().to_owned()
    }

    /// The CSRF token of the page's forms.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a CSRF field")
            + 19;
        self.body[at..at + 64].to_owned()
    }
}

async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn form(path: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> Request<Body> {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let mut builder = Request::builder()
        .method("POST")
        .uri(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, cookie);
    }
    builder.body(Body::from(body)).unwrap()
}

async fn page(app: &Router, path: &str, cookie: &str) -> Answer {
    let request = Request::builder()
        .uri(path)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap();
    send(app, request).await
}

async fn sign_in(app: &Router, key: &str) -> String {
    let answer = send(app, form("/app/login", None, &[("key", key)])).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    answer.session()
}

fn attribution_path() -> String {
    format!("/app/instances/{INSTANCE}/attribution")
}

fn rules_form_path() -> String {
    format!("/app/instances/{INSTANCE}/rules")
}

/// The keys of `dashboard_app`, for building sessions the way the dashboard does.
fn keys() -> AdminKeys {
    AdminKeys {
        admin: RotatingSecret::new(Secret::new(ADMIN_KEY)),
        readonly: Some(RotatingSecret::new(Secret::new(READONLY_KEY))),
    }
}

fn rule_fields<'a>(name: &'a str, kind: &'a str, pattern: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", name),
        ("platform", "tiktok"),
        ("source_name", ""),
        ("match_kind", kind),
        ("pattern", pattern),
        ("campaign", "summer"),
        ("ad", ""),
        ("priority", "10"),
        ("enabled", "on"),
    ]
}

async fn add_rule(app: &Router, cookie: &str, name: &str, pattern: &str) -> Answer {
    let csrf = page(app, &attribution_path(), cookie).await.csrf();
    let mut fields = rule_fields(name, "contains", pattern);
    fields.push(("csrf", &csrf));
    send(app, form(&rules_form_path(), Some(cookie), &fields)).await
}

/// A rule added through the form by an admin session; its id.
async fn tiktok_rule(app: &Router, admin: &str) -> String {
    let added = add_rule(app, admin, "TikTok", "tiktok").await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let rules = listed_rules(app).await;
    rules[0]["id"].as_str().unwrap().to_owned()
}

async fn listed_rules(app: &Router) -> Vec<Value> {
    let (status, body) = call(app, admin_get(&format!("/instances/{INSTANCE}/rules"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["rules"].as_array().unwrap().clone()
}

/// askama's HTML escaping, to find an API message in a page.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

async fn each_key_signs_in_with_a_strict_http_only_cookie(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = dashboard_app(&stores);
    for (key, role) in [(ADMIN_KEY, "Admin"), (READONLY_KEY, "Read-only")] {
        let answer = send(&app, form("/app/login", None, &[("key", key)])).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER);
        assert_eq!(answer.location(), "/");
        let cookie = &answer.set_cookies()[0];
        for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
            assert!(cookie.contains(flag), "{flag} missing: {cookie}");
        }
        assert!(!cookie.contains("Secure"), "plain http: {cookie}");
        assert!(!cookie.contains(key), "the key is in the cookie: {cookie}");
        let shown = page(&app, &attribution_path(), &answer.session()).await;
        assert_eq!(shown.status, StatusCode::OK);
        assert!(shown.body.contains(role), "{}", shown.body);
        // Signed in, `/` opens the instance last shown.
        let remembered = shown
            .set_cookies()
            .into_iter()
            .find(|cookie| cookie.starts_with("dash_instance="))
            .unwrap();
        let both = format!(
            "{}; {}",
            answer.session(),
            remembered.split(';').next().unwrap()
        );
        assert_eq!(page(&app, "/", &both).await.location(), attribution_path());
    }
    // Behind API Gateway (https) the cookie is Secure.
    let mut request = form("/app/login", None, &[("key", ADMIN_KEY)]);
    request
        .headers_mut()
        .insert("x-forwarded-proto", "https".parse().unwrap());
    let answer = send(&app, request).await;
    assert!(answer.set_cookies()[0].contains("; Secure"));
    // Not signed in, `/` goes to the sign-in form.
    let home = send(&app, Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.location(), "/app/login");
    let login = send(
        &app,
        Request::get("/app/login").body(Body::empty()).unwrap(),
    )
    .await;
    assert!(login.body.contains("<label for=\"key\">"), "{}", login.body);
}

async fn a_wrong_key_shows_the_form_again_with_401(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = dashboard_app(&stores);
    for key in ["wrong-key", "", ADMIN_KEY.trim_end_matches('9')] {
        let answer = send(&app, form("/app/login", None, &[("key", key)])).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert!(answer.set_cookies().is_empty());
        assert!(answer.body.contains("id=\"key-error\""), "{}", answer.body);
        assert!(
            answer
                .body
                .contains("<form method=\"post\" action=\"/app/login\"")
        );
        assert!(
            answer.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
}

async fn expired_tampered_and_missing_sessions_are_refused(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = dashboard_app(&stores);
    let cookie = sign_in(&app, READONLY_KEY).await;
    let now = chrono::Utc::now().timestamp();
    let expired = dashboard::Session::start(KeyName::Admin, now - 13 * 3600).sign(&keys());
    let unknown_key = AdminKeys::admin_only(RotatingSecret::new(Secret::new("another-key")));
    let foreign = dashboard::Session::start(KeyName::Admin, now).sign(&unknown_key);
    let mut flipped = cookie.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == '0' { '1' } else { '0' });
    let promoted = cookie.replacen("readonly.readonly", "admin.admin", 1);
    assert_ne!(promoted, cookie);
    for bad in [
        format!("dash_session={expired}"),
        format!("dash_session={foreign}"),
        flipped,
        promoted,
        "dash_session=".to_owned(),
        "other=1".to_owned(),
    ] {
        let answer = page(&app, &attribution_path(), &bad).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{bad}");
        assert_eq!(answer.location(), "/app/login", "{bad}");
        // A POST without a valid session goes to sign-in too, and changes nothing.
        let mut fields = rule_fields("x", "contains", "x");
        fields.push(("csrf", "0"));
        let posted = send(&app, form(&rules_form_path(), Some(&bad), &fields)).await;
        assert_eq!(posted.status, StatusCode::SEE_OTHER);
        assert_eq!(posted.location(), "/app/login");
    }
    assert!(listed_rules(&app).await.is_empty());
}

async fn writes_without_the_sessions_csrf_token_answer_403(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = dashboard_app(&stores);
    let cookie = sign_in(&app, ADMIN_KEY).await;
    let other = sign_in(&app, ADMIN_KEY).await;
    let others_token = page(&app, &attribution_path(), &other).await.csrf();
    for token in [
        None,
        Some(""),
        Some("0".repeat(64).as_str()),
        Some(others_token.as_str()),
    ] {
        let mut fields = rule_fields("TikTok", "contains", "tiktok");
        if let Some(token) = token {
            fields.push(("csrf", token));
        }
        let answer = send(&app, form(&rules_form_path(), Some(&cookie), &fields)).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{token:?}");
        assert!(
            answer.body.contains("<h1>Not allowed</h1>"),
            "{}",
            answer.body
        );
    }
    assert!(listed_rules(&app).await.is_empty());
    let rule_id = tiktok_rule(&app, &cookie).await;
    let rule_path = format!("/app/instances/{INSTANCE}/rules/{rule_id}");
    for action in ["delete", "disable", "save"] {
        let answer = send(
            &app,
            form(
                &rule_path,
                Some(&cookie),
                &[("action", action), ("csrf", &others_token)],
            ),
        )
        .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{action}");
    }
    assert_eq!(listed_rules(&app).await[0]["enabled"], true);
}

async fn a_read_only_session_sees_no_write_buttons_and_every_write_answers_403(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = dashboard_app(&stores);
    let admin = sign_in(&app, ADMIN_KEY).await;
    let rule_id = tiktok_rule(&app, &admin).await;
    let cookie = sign_in(&app, READONLY_KEY).await;
    let shown = page(&app, &attribution_path(), &cookie).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(shown.body.contains("TikTok"));
    for write in [
        "name=\"action\"",
        "Add a rule",
        "method=\"post\" action=\"/app/instances",
    ] {
        assert!(
            !shown.body.contains(write),
            "{write} shown to a read-only session"
        );
    }
    // Even with its own valid CSRF token, every write is refused.
    let session = cookie.trim_start_matches("dash_session=");
    let now = chrono::Utc::now().timestamp();
    let token = dashboard::Session::verify(&keys(), session, now)
        .unwrap()
        .csrf_token(&keys());
    let mut fields = rule_fields("Other", "contains", "other");
    fields.push(("csrf", &token));
    let answer = send(&app, form(&rules_form_path(), Some(&cookie), &fields)).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let rule_path = format!("/app/instances/{INSTANCE}/rules/{rule_id}");
    for action in ["delete", "disable", "save"] {
        let mut fields = rule_fields("Renamed", "contains", "x");
        fields.extend([("action", action), ("csrf", token.as_str())]);
        let answer = send(&app, form(&rule_path, Some(&cookie), &fields)).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{action}");
    }
    let rules = listed_rules(&app).await;
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["name"], "TikTok");
    assert_eq!(rules[0]["enabled"], true);
}

/// The five numbers the page shows, by their `data-stat` name.
fn shown_number(body: &str, stat: &str) -> u64 {
    let marker = format!("data-stat=\"{stat}\">");
    let at = body
        .find(&marker)
        .unwrap_or_else(|| panic!("{stat} not shown"))
        + marker.len();
    body[at..at + body[at..].find('<').unwrap()]
        .parse()
        .unwrap()
}

async fn the_numbers_on_the_page_are_the_stats_apis(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    // The local server's composition: webhook, matcher, rules and the dashboard together.
    let engine = engine_app(&stores);
    let app = &engine.app;
    let (status, _) = call(
        app,
        admin_request(
            "POST",
            &format!("/instances/{INSTANCE}/rules"),
            Some(json!({"name": "TikTok", "platform": "tiktok", "match": {"kind": "contains", "pattern": "tiktok"}})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let now = chrono::Utc::now().timestamp();
    for (contact, text, referral) in [
        ("2001", "hello", Some(ctwa_referral("ad-1"))),
        ("2002", "saw your tiktok", None),
        ("2003", "tiktok again", None),
        ("2004", "just hi", None),
    ] {
        let body = whatsapp_message(
            INSTANCE,
            contact,
            &format!("wamid.{contact}"),
            now - 60,
            text,
            referral,
        );
        let (status, report) = call(app, signed_delivery(&body)).await;
        assert_eq!(status, StatusCode::OK, "{report}");
    }
    let mut stats = Value::Null;
    for _ in 0..200 {
        (_, stats) = call(app, admin_get(&format!("/instances/{INSTANCE}/stats"))).await;
        if stats["click_to_chat_contacts"] == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stats["click_to_chat_contacts"], 3, "{stats}");
    let cookie = sign_in(app, ADMIN_KEY).await;
    let shown = page(app, &attribution_path(), &cookie).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    for (stat, api) in [
        ("click_to_chat_contacts", &stats["click_to_chat_contacts"]),
        ("matched_by_rules", &stats["matched_by_rules"]),
        ("unmatched", &stats["unmatched"]),
        ("meta_ads", &stats["meta_ads"]),
        ("web", &stats["by_kind"]["web"]),
    ] {
        assert_eq!(json!(shown_number(&shown.body, stat)), *api, "{stat}");
    }
    assert_eq!(shown_number(&shown.body, "matched_by_rules"), 2);
    assert_eq!(shown_number(&shown.body, "meta_ads"), 1);
    let listed = listed_rules(app).await;
    assert_eq!(
        json!(shown_number(&shown.body, "matched_7d")),
        listed[0]["matched_7d"]
    );
}

async fn a_rule_added_through_the_form_is_listed_by_the_api(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = dashboard_app(&stores);
    let cookie = sign_in(&app, ADMIN_KEY).await;
    let answer = add_rule(&app, &cookie, "TikTok summer", "Hi, I saw your TikTok ad").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), attribution_path());
    let rules = listed_rules(&app).await;
    assert_eq!(rules.len(), 1);
    let rule = &rules[0];
    assert_eq!(rule["name"], "TikTok summer");
    assert_eq!(rule["platform"], "tiktok");
    assert_eq!(rule["campaign"], "summer");
    assert_eq!(rule["ad"], Value::Null);
    assert_eq!(rule["priority"], 10);
    assert_eq!(rule["enabled"], true);
    assert_eq!(
        rule["match"],
        json!({"kind": "contains", "pattern": "Hi, I saw your TikTok ad", "case_sensitive": false})
    );
    let shown = page(&app, &attribution_path(), &cookie).await;
    assert!(shown.body.contains("TikTok summer"));
    assert!(shown.body.contains(&format!(
        "data-rule-id=\"{}\"",
        rule["id"].as_str().unwrap()
    )));
}

async fn a_bad_regex_shows_the_apis_message_next_to_the_field_and_stores_nothing(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = dashboard_app(&stores);
    let cookie = sign_in(&app, ADMIN_KEY).await;
    let (status, refused) = call(
        &app,
        admin_request(
            "POST",
            &format!("/instances/{INSTANCE}/rules"),
            Some(json!({"name": "Bad", "platform": "tiktok", "match": {"kind": "regex", "pattern": "tik(tok"}})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = refused["error"]["message"].as_str().unwrap();
    let csrf = page(&app, &attribution_path(), &cookie).await.csrf();
    let mut fields = rule_fields("Bad", "regex", "tik(tok");
    fields.push(("csrf", &csrf));
    let answer = send(&app, form(&rules_form_path(), Some(&cookie), &fields)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let beside = format!(
        "<p class=\"field-error\" id=\"add-pattern-error\">{}</p>",
        escaped(message)
    );
    assert!(
        answer.body.contains(&beside),
        "{message:?} not beside the pattern: {}",
        answer.body
    );
    assert!(
        answer
            .body
            .contains("aria-describedby=\"add-pattern-error\"")
    );
    // The form keeps what was typed.
    assert!(answer.body.contains("value=\"tik(tok\""));
    assert!(listed_rules(&app).await.is_empty());
    // A missing name and a bad priority: the API's messages, each beside its field.
    for (field, value, shown_as) in [
        ("name", "", "add-name-error"),
        ("priority", "soon", "add-priority-error"),
    ] {
        let mut fields = rule_fields("Ok", "contains", "ok");
        fields.retain(|(name, _)| *name != field);
        fields.extend([(field, value), ("csrf", csrf.as_str())]);
        let answer = send(&app, form(&rules_form_path(), Some(&cookie), &fields)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{field}");
        assert!(
            answer.body.contains(&format!("id=\"{shown_as}\">")),
            "{field}: {}",
            answer.body
        );
    }
    assert!(listed_rules(&app).await.is_empty());
}

async fn rules_are_enabled_disabled_edited_and_deleted_through_the_forms(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = dashboard_app(&stores);
    let cookie = sign_in(&app, ADMIN_KEY).await;
    let rule_id = tiktok_rule(&app, &cookie).await;
    let rule_path = format!("/app/instances/{INSTANCE}/rules/{rule_id}");
    let csrf = page(&app, &attribution_path(), &cookie).await.csrf();
    for (action, enabled) in [("disable", false), ("enable", true)] {
        let answer = send(
            &app,
            form(
                &rule_path,
                Some(&cookie),
                &[("action", action), ("csrf", &csrf)],
            ),
        )
        .await;
        assert_eq!(
            answer.status,
            StatusCode::SEE_OTHER,
            "{action}: {}",
            answer.body
        );
        assert_eq!(listed_rules(&app).await[0]["enabled"], enabled, "{action}");
    }
    // The edit form shows the rule; saving it replaces the rule's settings.
    let edit = page(&app, &rule_path, &cookie).await;
    assert_eq!(edit.status, StatusCode::OK);
    assert!(edit.body.contains("value=\"tiktok\""), "{}", edit.body);
    let mut fields = rule_fields("TikTok renamed", "prefix", "hi tiktok");
    fields.extend([("action", "save"), ("csrf", csrf.as_str())]);
    let saved = send(&app, form(&rule_path, Some(&cookie), &fields)).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let rule = &listed_rules(&app).await[0];
    assert_eq!(rule["id"], rule_id.as_str());
    assert_eq!(rule["name"], "TikTok renamed");
    assert_eq!(rule["match"]["kind"], "prefix");
    // A bad edit shows the API's message on the edit page and changes nothing.
    let mut fields = rule_fields("TikTok renamed", "regex", "(");
    fields.extend([("action", "save"), ("csrf", csrf.as_str())]);
    let refused = send(&app, form(&rule_path, Some(&cookie), &fields)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("id=\"edit-pattern-error\""));
    assert_eq!(listed_rules(&app).await[0]["match"]["kind"], "prefix");
    // Deleting once removes it; deleting again finds nothing.
    let delete = [("action", "delete"), ("csrf", csrf.as_str())];
    let mut answers = Vec::new();
    for _ in 0..2 {
        answers.push(send(&app, form(&rule_path, Some(&cookie), &delete)).await);
    }
    assert_eq!(answers[0].status, StatusCode::SEE_OTHER);
    assert!(listed_rules(&app).await.is_empty());
    assert_eq!(answers[1].status, StatusCode::NOT_FOUND);
    assert!(answers[1].body.contains("no such rule"));
}

async fn the_test_box_names_the_rule_the_api_would_match(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = dashboard_app(&stores);
    let cookie = sign_in(&app, READONLY_KEY).await;
    let admin = sign_in(&app, ADMIN_KEY).await;
    add_rule(&app, &admin, "TikTok", "tiktok").await;
    for (text, expected) in [("Hi, I saw your TikTok ad!", true), ("hello there", false)] {
        let (_, api) = call(
            &app,
            admin_request(
                "POST",
                &format!("/instances/{INSTANCE}/rules/test"),
                Some(json!({"text": text})),
            ),
        )
        .await;
        assert_eq!(api["matched"], expected);
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("text", text)
            .finish();
        let shown = page(&app, &format!("{}?{query}", attribution_path()), &cookie).await;
        assert_eq!(shown.status, StatusCode::OK);
        let answer_at = shown.body.find("id=\"test-answer\">").expect("an answer");
        let answer =
            &shown.body[answer_at..answer_at + shown.body[answer_at..].find("</p>").unwrap()];
        if expected {
            assert!(
                answer.contains(api["rule"]["id"].as_str().unwrap()),
                "{answer}"
            );
            assert!(answer.contains("TikTok"), "{answer}");
        } else {
            assert!(answer.contains("No rule matches"), "{answer}");
        }
    }
}

async fn every_page_carries_the_security_headers_and_assets_are_immutable(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = dashboard_app(&stores);
    let cookie = sign_in(&app, ADMIN_KEY).await;
    let pages = [
        send(
            &app,
            Request::get("/app/login").body(Body::empty()).unwrap(),
        )
        .await,
        send(&app, form("/app/login", None, &[("key", "wrong")])).await,
        page(&app, &attribution_path(), &cookie).await,
        page(&app, "/", &cookie).await,
        page(&app, "/app/instances?instance_id=a%20b", &cookie).await,
        page(
            &app,
            &format!("/app/instances/{INSTANCE}/rules/not-a-rule"),
            &cookie,
        )
        .await,
    ];
    for answer in &pages {
        assert_eq!(
            answer.headers["content-security-policy"],
            "default-src 'none'; style-src 'self'; script-src 'self'; \
             img-src 'self' data: https:; form-action 'self'; frame-ancestors 'none'; \
             base-uri 'none'"
        );
        assert_eq!(answer.headers["x-content-type-options"], "nosniff");
        assert_eq!(answer.headers["referrer-policy"], "same-origin");
        assert!(!answer.body.contains("panicked"));
    }
    // The stylesheet the pages link to: named by its content's hash, cached for a year.
    let body = &pages[0].body;
    let at = body.find("href=\"/app/assets/").unwrap() + 6;
    let href = &body[at..at + body[at..].find('"').unwrap()];
    let css = include_bytes!("../../functions/dashboard/assets/dashboard.css");
    assert_eq!(
        href,
        format!(
            "/app/assets/{}",
            dashboard::hashed_name("dashboard", "css", css)
        )
    );
    let asset = send(&app, Request::get(href).body(Body::empty()).unwrap()).await;
    assert_eq!(asset.status, StatusCode::OK);
    assert_eq!(
        asset.headers[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert!(
        asset.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert_eq!(asset.body.as_bytes(), css);
    // A changed file gets another name; an old or unknown name is gone.
    let mut changed = css.to_vec();
    changed.push(b' ');
    assert_ne!(
        dashboard::hashed_name("dashboard", "css", &changed),
        dashboard::hashed_name("dashboard", "css", css)
    );
    let stale = send(
        &app,
        Request::get("/app/assets/dashboard.0000000000000000.css")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(stale.status, StatusCode::NOT_FOUND);
}

async fn signing_out_clears_the_cookie(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = dashboard_app(&stores);
    let cookie = sign_in(&app, ADMIN_KEY).await;
    // Another site cannot sign a user out: a live session's sign-out needs its CSRF token.
    let forged = send(&app, form("/app/logout", Some(&cookie), &[])).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.set_cookies().is_empty());
    let csrf = page(&app, &attribution_path(), &cookie).await.csrf();
    let answer = send(&app, form("/app/logout", Some(&cookie), &[("csrf", &csrf)])).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), "/app/login");
    let cleared = &answer.set_cookies()[0];
    assert!(cleared.starts_with("dash_session=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"));
}

async fn an_instance_id_of_any_visible_characters_opens_and_is_remembered(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = dashboard_app(&stores);
    let cookie = sign_in(&app, ADMIN_KEY).await;
    // Slashes, semicolons and non-ASCII letters are valid in an instance id: they are
    // percent-encoded in every URL and cookie the dashboard writes.
    let odd = "señal/a;b=c";
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("instance_id", odd)
        .finish();
    let opened = page(&app, &format!("/app/instances?{query}"), &cookie).await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER);
    let location = opened.location().to_owned();
    assert_eq!(
        location,
        "/app/instances/se%C3%B1al%2Fa%3Bb%3Dc/attribution"
    );
    let shown = page(&app, &location, &cookie).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert!(shown.body.contains("Attribution of señal/a;b=c"));
    let remembered = shown
        .set_cookies()
        .into_iter()
        .find(|cookie| cookie.starts_with("dash_instance="))
        .unwrap();
    let both = format!("{cookie}; {}", remembered.split(';').next().unwrap());
    assert_eq!(page(&app, "/", &both).await.location(), location);
    // A rule added there is the API's rule of that instance.
    let csrf = shown.csrf();
    let mut fields = rule_fields("Odd", "contains", "odd");
    fields.push(("csrf", &csrf));
    let added = send(
        &app,
        form(
            "/app/instances/se%C3%B1al%2Fa%3Bb%3Dc/rules",
            Some(&cookie),
            &fields,
        ),
    )
    .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    assert_eq!(added.location(), location);
    let (status, listed) = call(&app, admin_get("/instances/se%C3%B1al%2Fa%3Bb%3Dc/rules")).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["rules"][0]["name"], "Odd");
}

/// The `<option>`s of the header's instance selector: (value, selected).
fn selector_options(body: &str) -> Vec<(String, bool)> {
    let start = body
        .find("<select id=\"switch-instance\"")
        .expect("the selector");
    let end = start + body[start..].find("</select>").unwrap();
    body[start..end]
        .split("<option value=\"")
        .skip(1)
        .map(|option| {
            let (value, rest) = option.split_once('"').unwrap();
            (value.to_owned(), rest.starts_with(" selected"))
        })
        .collect()
}

async fn deliver_first_message(app: &Router, instance: &str, contact: &str) {
    let now = chrono::Utc::now().timestamp();
    let body = whatsapp_message(
        instance,
        contact,
        &format!("wamid.{contact}"),
        now,
        "hi",
        None,
    );
    let (status, report) = call(app, signed_delivery(&body)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
}

async fn the_instances_with_contacts_or_rules_are_listed_and_in_every_pages_selector(
    backend: Backend,
) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    let app = &engine.app;
    let cookie = sign_in(app, ADMIN_KEY).await;
    let empty = page(app, "/app/instances", &cookie).await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.body);
    assert!(
        empty
            .body
            .contains("No instance has a contact or a rule yet")
    );
    assert!(!empty.body.contains("<select id=\"switch-instance\""));

    deliver_first_message(app, INSTANCE, "5511900000001").await;
    deliver_first_message(app, INSTANCE, "5511900000002").await;
    let (status, _) = call(
        app,
        admin_request(
            "POST",
            "/instances/998877/rules",
            Some(json!({"name": "TikTok", "platform": "tiktok", "match": {"kind": "contains", "pattern": "tiktok"}})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let listed = page(app, "/app/instances", &cookie).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let rows: Vec<&str> = listed
        .body
        .split("data-instance=\"")
        .skip(1)
        .map(|row| row.split('"').next().unwrap())
        .collect();
    assert_eq!(rows, [INSTANCE, "998877"], "each once, in id order");
    assert!(
        listed
            .body
            .contains("href=\"/app/instances/998877/contacts\"")
    );
    let options = selector_options(&listed.body);
    assert_eq!(options[0], (String::new(), false), "a prompt to choose");
    assert_eq!(
        &options[1..],
        [(INSTANCE.to_owned(), false), ("998877".to_owned(), false)]
    );

    // Every instance page selects its own instance among the others.
    for path in [
        "/app/instances/998877/attribution",
        "/app/instances/998877/analytics",
        "/app/instances/998877/contacts",
    ] {
        let shown = page(app, path, &cookie).await;
        assert_eq!(shown.status, StatusCode::OK, "{path}: {}", shown.body);
        assert_eq!(
            selector_options(&shown.body),
            [(INSTANCE.to_owned(), false), ("998877".to_owned(), true)],
            "{path}"
        );
    }
    // An instance opened by its id before it has anything is selectable beside the listed.
    let fresh = page(app, "/app/instances/4455/attribution", &cookie).await;
    assert_eq!(
        selector_options(&fresh.body),
        [
            ("4455".to_owned(), true),
            (INSTANCE.to_owned(), false),
            ("998877".to_owned(), false)
        ]
    );
    // The selector submits to the list, which opens the choice.
    let chosen = page(app, "/app/instances?instance_id=998877", &cookie).await;
    assert_eq!(chosen.status, StatusCode::SEE_OTHER);
    assert_eq!(chosen.location(), "/app/instances/998877/attribution");
    let refused = page(app, "/app/instances?instance_id=a%20b", &cookie).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.body.contains("instance_id must be"),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("data-instance=\"998877\""),
        "the list is still shown"
    );
}

async fn home_opens_the_remembered_or_the_only_instance_and_otherwise_the_list(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    let app = &engine.app;
    let cookie = sign_in(app, ADMIN_KEY).await;
    assert_eq!(page(app, "/", &cookie).await.location(), "/app/instances");
    deliver_first_message(app, INSTANCE, "5511900000001").await;
    assert_eq!(page(app, "/", &cookie).await.location(), attribution_path());
    deliver_first_message(app, "998877", "5511900000002").await;
    assert_eq!(page(app, "/", &cookie).await.location(), "/app/instances");
    let remembered = format!("{cookie}; dash_instance=998877");
    assert_eq!(
        page(app, "/", &remembered).await.location(),
        "/app/instances/998877/attribution"
    );
}
