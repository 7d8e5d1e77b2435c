//! The rules admin API through HTTP, on the embedded store and on DynamoDB Local.

use http::StatusCode;
use integration_tests::*;
use serde_json::{Value, json};

on_every_store!(
    rules_are_created_read_replaced_and_deleted,
    rules_list_in_evaluation_order,
    invalid_rules_are_refused_naming_the_field_and_write_nothing,
    unknown_rules_are_404,
    every_rules_route_needs_the_admin_key,
    the_test_route_says_which_rule_would_match_and_changes_nothing,
);

const BASE: &str = "/instances/106540352242922/rules";

fn tiktok_rule(name: &str, pattern: &str, priority: i64) -> Value {
    json!({
        "name": name, "platform": "tiktok",
        "match": {"kind": "contains", "pattern": pattern},
        "campaign": "summer-2026", "ad": "video-a", "priority": priority
    })
}

async fn app_on(backend: Backend) -> Option<(axum::Router, StoreGuard)> {
    let (stores, guard) = fresh_stores(backend).await?;
    Some((rules_app(&stores), guard))
}

async fn create(app: &axum::Router, rule: Value) -> Value {
    let (status, body) = call(app, admin_request("POST", BASE, Some(rule))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn listed_names(app: &axum::Router) -> Vec<String> {
    let (status, body) = call(app, admin_request("GET", BASE, None)).await;
    assert_eq!(status, StatusCode::OK);
    body["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn rules_are_created_read_replaced_and_deleted(backend: Backend) {
    let Some((app, _guard)) = app_on(backend).await else {
        return;
    };
    let created = create(&app, tiktok_rule("TikTok summer", "TikTok ad", 10)).await;
    assert_eq!(created["platform"], "tiktok");
    assert_eq!(
        created["match"],
        json!({"kind": "contains", "pattern": "TikTok ad", "case_sensitive": false})
    );
    assert_eq!(created["source_name"], Value::Null);
    assert_eq!(created["enabled"], true);
    assert_eq!(created["instance_id"], "106540352242922");
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("{BASE}/{id}");

    let (status, read) = call(&app, admin_request("GET", &path, None)).await;
    assert_eq!((status, &read), (StatusCode::OK, &created));

    let replacement = json!({
        "name": "Google search", "platform": "custom", "source_name": "Bing",
        "match": {"kind": "regex", "pattern": "^promo\\s+\\d+$", "case_sensitive": true},
        "priority": 3, "enabled": false
    });
    let (status, replaced) = call(&app, admin_request("PUT", &path, Some(replacement))).await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["id"], created["id"]);
    assert_eq!(replaced["created_at"], created["created_at"]);
    assert_eq!(replaced["source_name"], "Bing");
    assert_eq!(
        replaced["campaign"],
        Value::Null,
        "PUT replaces the whole rule"
    );
    assert_eq!(
        call(&app, admin_request("GET", &path, None)).await.1,
        replaced
    );

    let (status, _) = call(&app, admin_request("DELETE", &path, None)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        call(&app, admin_request("GET", &path, None)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, admin_request("DELETE", &path, None)).await.0,
        StatusCode::NOT_FOUND
    );
    assert!(listed_names(&app).await.is_empty());
}

async fn rules_list_in_evaluation_order(backend: Backend) {
    let Some((app, _guard)) = app_on(backend).await else {
        return;
    };
    create(&app, tiktok_rule("late", "x", 50)).await;
    create(&app, tiktok_rule("first at 10", "x", 10)).await;
    create(&app, tiktok_rule("second at 10", "x", 10)).await;
    let mut disabled = tiktok_rule("disabled at 1", "x", 1);
    disabled["enabled"] = json!(false);
    create(&app, disabled).await;
    assert_eq!(
        listed_names(&app).await,
        ["disabled at 1", "first at 10", "second at 10", "late"]
    );
    // Other instances have their own lists.
    let (_, other) = call(&app, admin_request("GET", "/instances/999/rules", None)).await;
    assert_eq!(other, json!({"rules": []}));
}

async fn invalid_rules_are_refused_naming_the_field_and_write_nothing(backend: Backend) {
    let Some((app, _guard)) = app_on(backend).await else {
        return;
    };
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut rule = tiktok_rule("r", "TikTok ad", 1);
        edit(&mut rule);
        rule
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            with(&|r| r["match"]["pattern"] = json!("")),
            "match.pattern",
        ),
        (
            with(&|r| r["match"]["pattern"] = json!("   ")),
            "match.pattern",
        ),
        (
            with(&|r| {
                r["match"].as_object_mut().unwrap().remove("pattern");
            }),
            "match.pattern",
        ),
        (
            with(&|r| r["match"]["pattern"] = json!("x".repeat(501))),
            "match.pattern",
        ),
        (
            with(&|r| r["match"] = json!({"kind": "regex", "pattern": "(unclosed"})),
            "match.pattern",
        ),
        (
            with(&|r| r["match"] = json!({"kind": "regex", "pattern": "\\w{1000}{1000}"})),
            "match.pattern",
        ),
        (with(&|r| r["platform"] = json!("myspace")), "platform"),
        (with(&|r| r["match"]["kind"] = json!("fuzzy")), "match.kind"),
        (with(&|r| r["platform"] = json!("custom")), "source_name"),
    ];
    for (rule, field) in cases {
        let (status, body) = call(&app, admin_request("POST", BASE, Some(rule.clone()))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{rule}");
        assert_eq!(body["error"]["field"], field, "{rule} -> {body}");
        assert!(body["error"]["message"].as_str().unwrap().len() > field.len());
    }
    let (status, body) = call(&app, admin_request("POST", BASE, None)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (_, body) = call(
        &app,
        admin_request(
            "POST",
            BASE,
            Some(with(&|r| {
                r["match"] = json!({"kind": "regex", "pattern": "(unclosed"})
            })),
        ),
    )
    .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unclosed"),
        "the regex error is quoted: {body}"
    );
    assert!(listed_names(&app).await.is_empty(), "nothing was written");

    // An invalid replacement leaves the stored rule as it was.
    let created = create(&app, tiktok_rule("kept", "TikTok ad", 1)).await;
    let path = format!("{BASE}/{}", created["id"].as_str().unwrap());
    let (status, _) = call(
        &app,
        admin_request("PUT", &path, Some(with(&|r| r["platform"] = json!("nope")))),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        call(&app, admin_request("GET", &path, None)).await.1,
        created
    );
}

async fn unknown_rules_are_404(backend: Backend) {
    let Some((app, _guard)) = app_on(backend).await else {
        return;
    };
    for method in ["GET", "PUT", "DELETE"] {
        for id in ["01JDZZZZZZZZZZZZZZZZZZZZZZ", "not-a-rule-id"] {
            let body = (method == "PUT").then(|| tiktok_rule("r", "x", 1));
            let (status, error) =
                call(&app, admin_request(method, &format!("{BASE}/{id}"), body)).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {id}");
            assert_eq!(error["error"]["code"], "rule_not_found");
        }
    }
}

async fn every_rules_route_needs_the_admin_key(backend: Backend) {
    let Some((app, _guard)) = app_on(backend).await else {
        return;
    };
    for (method, path) in [
        ("GET", BASE.to_owned()),
        ("POST", BASE.to_owned()),
        ("POST", format!("{BASE}/test")),
        ("GET", format!("{BASE}/x")),
        ("PUT", format!("{BASE}/x")),
        ("DELETE", format!("{BASE}/x")),
    ] {
        let request = http::Request::builder()
            .method(method)
            .uri(&path)
            .header("authorization", "Bearer wrong")
            .body(axum::body::Body::from("{}"))
            .unwrap();
        let (status, error) = call(&app, request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(error["error"]["code"], "unauthorized");
    }
}

async fn the_test_route_says_which_rule_would_match_and_changes_nothing(backend: Backend) {
    let Some((app, _guard)) = app_on(backend).await else {
        return;
    };
    let test =
        |text: &str| admin_request("POST", &format!("{BASE}/test"), Some(json!({"text": text})));
    assert_eq!(
        call(&app, test("anything")).await.1,
        json!({"matched": false})
    );
    create(&app, tiktok_rule("general", "ad", 20)).await;
    let specific = create(&app, tiktok_rule("specific", "TikTok ad", 10)).await;
    let (status, answer) = call(&app, test("Hi, I saw your TIKTOK  ad!")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["matched"], true);
    assert_eq!(answer["rule"], specific);
    assert_eq!(call(&app, test("an ad")).await.1["rule"]["name"], "general");
    assert_eq!(
        call(&app, test("nothing here")).await.1,
        json!({"matched": false})
    );
    let (status, error) = call(
        &app,
        admin_request("POST", &format!("{BASE}/test"), Some(json!({"txt": 1}))),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"]["field"], "text");
    assert_eq!(listed_names(&app).await, ["specific", "general"]);
}
