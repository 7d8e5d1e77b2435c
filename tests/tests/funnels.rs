//! Funnels on every store, through the routes: a known event set for each order mode (ordered
//! with events between, strict broken by an event between, any in reverse order, a goal as a
//! step, out-of-order arrival), the window's edge, duplicates, the platform/campaign/ad
//! filters, the refusals naming their field (2–8 steps, the 20-funnel bound, every query
//! parameter), create/list/replace/delete, and each step's counters equal to a recount of the
//! contacts' places.

use axum::Router;
use http::StatusCode;
use integration_tests::*;
use serde_json::{Value, json};
use shared::store::{FaultInjectingStore, FaultMode, FaultPlan};
use std::collections::BTreeMap;
use std::sync::Arc;

on_every_store!(
    each_order_mode_counts_a_known_event_set,
    the_window_ends_at_its_edge,
    filters_count_one_platform_campaign_or_ad,
    bad_funnels_and_parameters_answer_400_naming_the_field,
    funnels_are_created_listed_replaced_and_deleted,
    a_faulty_store_counts_each_step_once,
    two_contacts_of_one_person_merged_count_once,
);

const INSTANCE: &str = "106540352242922";
const DAY: i64 = 24 * 3_600;

fn app(stores: &Stores) -> Router {
    engine_app(stores).app
}

async fn create(app: &Router, what: &str, body: Value) -> String {
    let (status, answer) = call(
        app,
        admin_request("POST", &format!("/instances/{INSTANCE}/{what}"), Some(body)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer["id"].as_str().unwrap().to_owned()
}

async fn funnel(app: &Router, steps: &[&str], order: &str, window_days: u32) -> String {
    create(
        app,
        "funnels",
        json!({"name": format!("{order} funnel"), "steps": steps, "order": order,
               "window_days": window_days}),
    )
    .await
}

/// A contact first seen at `start` (its `message_received`), then `events` (name, seconds
/// after `start`) sent in this order, each twice: the second time changes nothing.
async fn contact_with(app: &Router, phone: &str, start: i64, events: &[(&str, i64)]) {
    let (status, body) = call(
        app,
        signed_delivery(&whatsapp_message(
            INSTANCE,
            phone,
            &format!("wamid.{phone}"),
            start,
            "hola",
            None,
        )),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for round in ["created", "duplicate"] {
        for (name, after) in events {
            let event = json!({"event_id": format!("{name}-{after}"), "name": name,
                               "occurred_at": rfc3339(start + after)});
            let (status, body) = call(
                app,
                admin_request(
                    "POST",
                    &format!("/instances/{INSTANCE}/contacts/{phone}/events"),
                    Some(json!({ "events": [event] })),
                ),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body["events"][0]["status"], round, "{body}");
        }
    }
}

/// The report over the last 30 days, or over `days=` when `query` names it.
async fn report(app: &Router, funnel_id: &str, query: &str) -> (StatusCode, Value) {
    let days = if query.contains("days=") {
        ""
    } else {
        "days=30"
    };
    call(
        app,
        admin_get(&format!(
            "/instances/{INSTANCE}/funnels/{funnel_id}?{days}{query}"
        )),
    )
    .await
}

/// Each step's contacts, read from the report's counters.
async fn counts(app: &Router, funnel_id: &str, query: &str) -> Vec<u64> {
    let (status, body) = report(app, funnel_id, query).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["report"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["contacts"].as_u64().unwrap())
        .collect()
}

/// What the contacts say about their places in the funnel: per counted name, the contacts
/// reaching each step (the recount the counters must equal).
async fn recount(app: &Router, funnel_id: &str, steps: usize) -> BTreeMap<String, Vec<u64>> {
    let (status, body) = call(
        app,
        admin_get(&format!("/instances/{INSTANCE}/contacts?limit=500")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut counts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for contact in body["contacts"].as_array().unwrap() {
        let place = &contact["funnels"][funnel_id];
        let reached = place["reached"].as_u64().unwrap_or(0) as usize;
        for name in place["counted"].as_array().into_iter().flatten() {
            let per_step = counts
                .entry(name.as_str().unwrap().to_owned())
                .or_insert_with(|| vec![0; steps]);
            for count in per_step.iter_mut().take(reached) {
                *count += 1;
            }
        }
    }
    counts
}

async fn each_order_mode_counts_a_known_event_set(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = app(&stores);
    let steps = ["a", "b", "c"];
    let ordered = funnel(&app, &steps, "ordered", 30).await;
    let strict = funnel(&app, &steps, "strict", 30).await;
    let any = funnel(&app, &steps, "any", 30).await;
    let goal = create(
        &app,
        "goals",
        json!({"name": "c done", "conditions": [{"rules": [{"event": "c"}]}]}),
    )
    .await;
    let goal_step = format!("goal:{goal}");
    let with_goal = funnel(&app, &["message_received", &goal_step], "ordered", 30).await;
    let start = chrono::Utc::now().timestamp() - 5 * DAY;
    // Another event between: ordered goes on, strict stops at a.
    contact_with(
        &app,
        "16505550001",
        start,
        &[("a", 10), ("x", 20), ("b", 30), ("c", 40)],
    )
    .await;
    // In reverse order: any reaches every step, ordered and strict only the first.
    contact_with(
        &app,
        "16505550002",
        start,
        &[("c", 10), ("b", 20), ("a", 30)],
    )
    .await;
    // In order by their own times, arriving in reverse: every mode reaches every step.
    contact_with(
        &app,
        "16505550003",
        start,
        &[("c", 30), ("b", 20), ("a", 10)],
    )
    .await;
    // An event between a and b arriving after both: strict keeps the step it counted.
    contact_with(
        &app,
        "16505550004",
        start,
        &[("a", 10), ("b", 20), ("x", 15)],
    )
    .await;

    assert_eq!(counts(&app, &ordered, "").await, [4, 3, 2]);
    assert_eq!(counts(&app, &strict, "").await, [4, 2, 1]);
    assert_eq!(counts(&app, &any, "").await, [4, 4, 3]);
    assert_eq!(counts(&app, &with_goal, "").await, [4, 3]);

    let (_, body) = report(&app, &ordered, "").await;
    assert_eq!(
        body["report"]["steps"],
        json!([
            {"step": "a", "contacts": 4, "from_previous": null, "from_first": "100.00", "drop_off": 0},
            {"step": "b", "contacts": 3, "from_previous": "75.00", "from_first": "75.00", "drop_off": 1},
            {"step": "c", "contacts": 2, "from_previous": "66.67", "from_first": "50.00", "drop_off": 1},
        ])
    );
    for (id, steps) in [(&ordered, 3), (&strict, 3), (&any, 3), (&with_goal, 2)] {
        let all = counts(&app, id, "").await;
        assert_eq!(recount(&app, id, steps).await["all"], all);
    }
}

async fn the_window_ends_at_its_edge(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = app(&stores);
    let id = funnel(&app, &["a", "b"], "ordered", 1).await;
    let any = funnel(&app, &["a", "b"], "any", 1).await;
    let start = chrono::Utc::now().timestamp() - 5 * DAY;
    contact_with(&app, "16505550011", start, &[("a", 10), ("b", DAY - 1)]).await;
    contact_with(&app, "16505550012", start, &[("a", 10), ("b", DAY)]).await;
    contact_with(&app, "16505550013", start, &[("b", 10), ("a", DAY)]).await;
    assert_eq!(counts(&app, &id, "").await, [2, 1]);
    assert_eq!(counts(&app, &any, "").await, [2, 1]);
}

async fn filters_count_one_platform_campaign_or_ad(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = app(&stores);
    let rule = json!({"name": "TikTok", "platform": "tiktok", "campaign": "summer",
                      "match": {"kind": "contains", "pattern": "tiktok"}});
    let (status, body) = call(
        &app,
        admin_request("POST", &format!("/instances/{INSTANCE}/rules"), Some(rule)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = funnel(&app, &["message_received", "a"], "ordered", 30).await;
    let at = chrono::Utc::now().timestamp() - 3_600;
    let ad = "120226305854810726";
    for (phone, text, referral) in [
        ("16505550021", "hola", Some(ctwa_referral(ad))),
        ("16505550022", "vi tiktok", None),
        ("16505550023", "hola", None),
    ] {
        let body = whatsapp_message(
            INSTANCE,
            phone,
            &format!("wamid.{phone}"),
            at,
            text,
            referral,
        );
        let (status, answer) = call(&app, signed_delivery(&body)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    // The rules match on the matcher's queue: the funnel's counts follow the attribution.
    for _ in 0..400 {
        let contact = contact(&app, INSTANCE, "16505550022").await.unwrap();
        if contact.get("rules_checked_at").is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    for phone in ["16505550021", "16505550022"] {
        let (status, body) = call(
            &app,
            admin_request(
                "POST",
                &format!("/instances/{INSTANCE}/contacts/{phone}/events"),
                Some(json!({"event_id": "a1", "name": "a", "occurred_at": rfc3339(at + 60)})),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(counts(&app, &id, "").await, [3, 2]);
    assert_eq!(counts(&app, &id, &format!("&ad_id={ad}")).await, [1, 1]);
    assert_eq!(counts(&app, &id, "&platform=facebook").await, [1, 1]);
    assert_eq!(counts(&app, &id, "&platform=tiktok").await, [1, 1]);
    assert_eq!(counts(&app, &id, "&campaign=summer").await, [1, 1]);
    assert_eq!(counts(&app, &id, "&campaign=winter").await, [0, 0]);
    let (_, body) = report(&app, &id, "&campaign=winter").await;
    assert_eq!(body["report"]["steps"][1]["from_previous"], Value::Null);
    assert_eq!(
        body["report"]["filter"],
        json!({"by": "campaign", "value": "winter"})
    );
    let recounted = recount(&app, &id, 2).await;
    for (name, query) in [
        ("all", String::new()),
        ("platform:facebook", "&platform=facebook".to_owned()),
        ("platform:tiktok", "&platform=tiktok".to_owned()),
        ("campaign:summer", "&campaign=summer".to_owned()),
        ("ad:120226305854810726", format!("&ad_id={ad}")),
    ] {
        assert_eq!(recounted[name], counts(&app, &id, &query).await, "{name}");
    }
}

async fn bad_funnels_and_parameters_answer_400_naming_the_field(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = app(&stores);
    let nine: Vec<String> = (0..9).map(|n| format!("s{n}")).collect();
    let cases = [
        (json!({"name": "f", "steps": ["a"]}), "steps"),
        (json!({"name": "f", "steps": []}), "steps"),
        (json!({"name": "f"}), "steps"),
        (json!({"name": "f", "steps": nine}), "steps[8]"),
        (json!({"name": "f", "steps": ["a", "Bad Name"]}), "steps[1]"),
        (
            json!({"name": "f", "steps": ["goal:nope", "a"]}),
            "steps[0]",
        ),
        (json!({"name": "f", "steps": ["a", 3]}), "steps[1]"),
        (json!({"steps": ["a", "b"]}), "name"),
        (
            json!({"name": "f", "steps": ["a", "b"], "order": "sometimes"}),
            "order",
        ),
        (
            json!({"name": "f", "steps": ["a", "b"], "window_days": 0}),
            "window_days",
        ),
        (
            json!({"name": "f", "steps": ["a", "b"], "window_days": 366}),
            "window_days",
        ),
        (
            json!({"name": "f", "steps": ["a", "b"], "extra": 1}),
            "extra",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = call(
            &app,
            admin_request(
                "POST",
                &format!("/instances/{INSTANCE}/funnels"),
                Some(body),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let eight: Vec<String> = (0..8).map(|n| format!("s{n}")).collect();
    let id = create(&app, "funnels", json!({"name": "f", "steps": eight})).await;
    for _ in 1..20 {
        funnel(&app, &["a", "b"], "any", 7).await;
    }
    let (status, answer) = call(
        &app,
        admin_request(
            "POST",
            &format!("/instances/{INSTANCE}/funnels"),
            Some(json!({"name": "f", "steps": ["a", "b"]})),
        ),
    )
    .await;
    assert_eq!(
        (status, &answer["error"]["field"]),
        (StatusCode::BAD_REQUEST, &json!("instance_id"))
    );
    let too_long = "c".repeat(161);
    for (query, field) in [
        ("&days=0", "days"),
        ("&days=91", "days"),
        ("&days=x", "days"),
        ("&platform=facebook&campaign=summer", "campaign"),
        ("&ad_id=1&platform=facebook", "platform"),
        ("&platform=", "platform"),
        (&format!("&campaign={too_long}") as &str, "campaign"),
        ("&ad_id=a%20b", "ad_id"),
    ] {
        let (status, answer) = report(&app, &id, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{query}: {answer}");
    }
    let (status, answer) = report(&app, &id, "&color=red").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
}

async fn funnels_are_created_listed_replaced_and_deleted(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = app(&stores);
    let goal = "01JD0000000000000000000000";
    let id = create(
        &app,
        "funnels",
        json!({"name": "Leads", "steps": ["message_received", format!("goal:{}", goal.to_lowercase())]}),
    )
    .await;
    let path = format!("/instances/{INSTANCE}/funnels/{id}");
    let (status, body) = call(&app, admin_get(&path)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            &body["name"],
            &body["steps"],
            &body["window_days"],
            &body["order"],
            &body["revision"]
        ),
        (
            &json!("Leads"),
            &json!(["message_received", format!("goal:{goal}")]),
            &json!(30),
            &json!("ordered"),
            &json!(1)
        )
    );
    assert_eq!(body["report"]["days"], 7, "the stats' default");
    let (_, listed) = call(&app, admin_get(&format!("/instances/{INSTANCE}/funnels"))).await;
    assert_eq!(listed["funnels"][0]["id"], json!(id));
    let (_, goals) = call(&app, admin_get(&format!("/instances/{INSTANCE}/goals"))).await;
    assert_eq!(goals["goals"], json!([]));
    let (status, replaced) = call(
        &app,
        admin_request(
            "PUT",
            &path,
            Some(json!({"name": "Buyers", "steps": ["a", "b", "c"], "order": "strict", "window_days": 7})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(
        (
            &replaced["revision"],
            &replaced["order"],
            &replaced["steps"]
        ),
        (&json!(2), &json!("strict"), &json!(["a", "b", "c"]))
    );
    let (status, _) = call(&app, admin_request("DELETE", &path, None)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for missing in [
        path.clone(),
        format!("/instances/{INSTANCE}/funnels/not-a-ulid"),
    ] {
        let (status, body) = call(&app, admin_get(&missing)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["error"]["code"], "funnel_not_found", "{body}");
    }
    let (status, body) = call(&app, admin_request("DELETE", &path, None)).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::NOT_FOUND, &json!("funnel_not_found"))
    );
}

async fn a_faulty_store_counts_each_step_once(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let plan = FaultPlan::ratio(0.0, 11);
    let faulty = Stores {
        contacts: Arc::new(FaultInjectingStore::new(
            stores.contacts.clone(),
            plan.clone(),
        )),
        goals: Arc::new(FaultInjectingStore::new(stores.goals.clone(), plan.clone())),
        ..stores.clone()
    };
    let app = app(&faulty);
    let id = funnel(&app, &["message_received", "paid", "shipped"], "strict", 30).await;
    let at = chrono::Utc::now().timestamp() - 600;
    for mode in [FaultMode::Refused, FaultMode::AnswerLost] {
        for n in 0..4 {
            let phone = format!("1650558{}{n:03}", mode as u8);
            plan.set_mode(mode);
            plan.set_ratio(0.5);
            let body =
                whatsapp_message(INSTANCE, &phone, &format!("wamid.{phone}"), at, "hi", None);
            deliver_until_accepted(&app, &body).await;
            for (event, after) in [("paid", 10), ("shipped", 20)] {
                let event =
                    json!({"event_id": event, "name": event, "occurred_at": rfc3339(at + after)});
                loop {
                    let (status, answer) = call(
                        &app,
                        admin_request(
                            "POST",
                            &format!("/instances/{INSTANCE}/contacts/{phone}/events"),
                            Some(event.clone()),
                        ),
                    )
                    .await;
                    if status == StatusCode::OK {
                        break;
                    }
                    assert!(status.is_server_error(), "{status}: {answer}");
                }
            }
            plan.set_ratio(0.0);
        }
    }
    let all = counts(&app, &id, "").await;
    assert_eq!(all, [8, 8, 8]);
    assert_eq!(recount(&app, &id, 3).await["all"], all);
}

async fn two_contacts_of_one_person_merged_count_once(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = app(&stores);
    let id = funnel(
        &app,
        &["message_received", "message_received", "message_received"],
        "ordered",
        30,
    )
    .await;
    let (phone, bsuid) = ("5215512345678", "MX.8820194736550012");
    let at = chrono::Utc::now().timestamp() - 3_600;
    for (phone, bsuid, message, after) in [
        (Some(phone), None, "wamid.M1", 0),
        (None, Some(bsuid), "wamid.M2", 60),
        (None, Some(bsuid), "wamid.M3", 90),
    ] {
        let body = named_message(INSTANCE, phone, bsuid, message, at + after, "hola");
        let (status, answer) = call(&app, signed_delivery(&body)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    assert_eq!(
        counts(&app, &id, "").await,
        [2, 1, 0],
        "two contacts, for now"
    );
    let body = named_message(
        INSTANCE,
        Some(phone),
        Some(bsuid),
        "wamid.M4",
        at + 120,
        "otra vez",
    );
    let (status, answer) = call(&app, signed_delivery(&body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let all = counts(&app, &id, "").await;
    assert_eq!(all, [1, 1, 1], "one person, four messages");
    assert_eq!(recount(&app, &id, 3).await["all"], all);
}
