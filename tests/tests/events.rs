//! Conversation events on every store, through the routes: the webhook's built-in
//! `message_received` (with button and list replies) and `order_placed` (its value exact, per
//! currency), the business's own events through `POST …/contacts/{id}/events` (idempotent on
//! `event_id`, every field checked, the contact must exist), the journey's bound whatever the
//! arrival order, and a faulty store that loses and doubles nothing.

use http::StatusCode;
use integration_tests::*;
use serde_json::{Value, json};
use shared::store::{FaultInjectingStore, FaultMode, FaultPlan};
use std::sync::Arc;

on_every_store!(
    a_text_message_is_a_message_received_event,
    button_and_list_replies_name_their_id_and_title,
    an_order_is_valued_exactly_per_currency,
    custom_events_are_idempotent_on_their_id,
    custom_events_are_checked_field_by_field_and_change_nothing_when_refused,
    custom_events_need_an_existing_contact,
    the_journey_keeps_the_newest_events_whatever_the_arrival_order,
    a_faulty_store_loses_and_doubles_no_event,
);

const INSTANCE: &str = "106540352242922";
const PHONE: &str = "16505551234";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A WhatsApp delivery of one message of `message` (its `type` and content) from [`PHONE`].
fn whatsapp(message: Value) -> Vec<u8> {
    let mut text =
        serde_json::from_slice::<Value>(&whatsapp_message(INSTANCE, PHONE, "wamid.x", 0, "", None))
            .unwrap();
    text["entry"][0]["changes"][0]["value"]["messages"][0] = message;
    serde_json::to_vec(&text).unwrap()
}

async fn events_of(app: &axum::Router, contact_id: &str) -> Vec<Value> {
    let contact = contact(app, INSTANCE, contact_id)
        .await
        .expect("the contact");
    contact["events"].as_array().expect("events").clone()
}

async fn deliver(app: &axum::Router, body: &[u8]) {
    let (status, answer) = call(app, signed_delivery(body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

async fn post_events(app: &axum::Router, contact_id: &str, body: Value) -> (StatusCode, Value) {
    call(
        app,
        admin_request(
            "POST",
            &format!("/instances/{INSTANCE}/contacts/{contact_id}/events"),
            Some(body),
        ),
    )
    .await
}

async fn a_text_message_is_a_message_received_event(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = webhook_app(stores.contacts.clone());
    let at = now() - 60;
    let body = whatsapp_message(INSTANCE, PHONE, "wamid.T1", at, "Hola, ¿precio?", None);
    deliver(&app, &body).await;
    deliver(&app, &body).await;
    let events = events_of(&app, PHONE).await;
    assert_eq!(
        events.len(),
        1,
        "a retried delivery records nothing: {events:?}"
    );
    assert_eq!(events[0]["name"], "message_received");
    assert_eq!(events[0]["event_id"], "wamid.T1");
    assert_eq!(events[0]["source"], "webhook");
    assert_eq!(
        events[0]["properties"],
        json!({"type": "text", "text": "Hola, ¿precio?"})
    );
    let contact = contact(&app, INSTANCE, PHONE).await.unwrap();
    assert_eq!(contact["first_message"]["text"], "Hola, ¿precio?");
    assert!(contact["first_message"].get("details").is_none());
}

async fn button_and_list_replies_name_their_id_and_title(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = webhook_app(stores.contacts.clone());
    let at = now() - 60;
    let replies = [
        json!({"from": PHONE, "id": "wamid.B1", "timestamp": (at).to_string(), "type": "button",
               "button": {"payload": "yes-offer", "text": "Yes, please"}}),
        json!({"from": PHONE, "id": "wamid.B2", "timestamp": (at + 1).to_string(),
               "type": "interactive", "interactive": {"type": "button_reply",
               "button_reply": {"id": "btn-talk", "title": "Talk to sales"}}}),
        json!({"from": PHONE, "id": "wamid.B3", "timestamp": (at + 2).to_string(),
               "type": "interactive", "interactive": {"type": "list_reply",
               "list_reply": {"id": "size-m", "title": "Medium", "description": "M"}}}),
    ];
    for reply in replies {
        deliver(&app, &whatsapp(reply)).await;
    }
    let shown: Vec<(Value, Value, Value)> = events_of(&app, PHONE)
        .await
        .iter()
        .map(|event| {
            let properties = &event["properties"];
            (
                properties["type"].clone(),
                properties["reply_id"].clone(),
                properties["reply_title"].clone(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        vec![
            (json!("button"), json!("yes-offer"), json!("Yes, please")),
            (
                json!("interactive"),
                json!("btn-talk"),
                json!("Talk to sales")
            ),
            (json!("interactive"), json!("size-m"), json!("Medium")),
        ]
    );
}

async fn an_order_is_valued_exactly_per_currency(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = webhook_app(stores.contacts.clone());
    deliver(&app, &fixture("whatsapp_order.json")).await;
    let events = events_of(&app, "5215512345678").await;
    let names: Vec<&Value> = events.iter().map(|event| &event["name"]).collect();
    assert_eq!(names, [&json!("message_received"), &json!("order_placed")]);
    let order = &events[1];
    // 2 × 249.5 + 1 × 199, in exact decimals: Meta sends no total.
    assert_eq!(order["value"], "698.00");
    assert_eq!(order["currency"], "MXN");
    assert_eq!(order["properties"]["catalog_id"], "1537566713439863");
    assert_eq!(order["properties"]["totals"], json!({"MXN": "698.00"}));
    assert_eq!(order["properties"]["items"][0]["item_price"], "249.50");
    assert_eq!(order["properties"]["items"][0]["quantity"], 2);

    // Prices that floating point cannot add, and two currencies: a total per currency, no
    // single value.
    let at = now() - 30;
    let items = json!([
        {"product_retailer_id": "a", "quantity": 3, "item_price": 0.1, "currency": "USD"},
        {"product_retailer_id": "b", "quantity": 1, "item_price": 0.2, "currency": "USD"},
        {"product_retailer_id": "c", "quantity": 7, "item_price": 19.99, "currency": "EUR"},
    ]);
    deliver(
        &app,
        &whatsapp(
            json!({"from": PHONE, "id": "wamid.O2", "timestamp": at.to_string(),
            "type": "order", "order": {"catalog_id": "9", "product_items": items}}),
        ),
    )
    .await;
    let events = events_of(&app, PHONE).await;
    let order = events
        .iter()
        .find(|event| event["name"] == "order_placed")
        .expect("the order");
    assert_eq!(
        order["properties"]["totals"],
        json!({"EUR": "139.93", "USD": "0.50"})
    );
    assert!(order.get("value").is_none() && order.get("currency").is_none());
}

async fn custom_events_are_idempotent_on_their_id(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = webhook_app(stores.contacts.clone());
    let at = now() - 600;
    deliver(
        &app,
        &whatsapp_message(INSTANCE, PHONE, "wamid.C1", at, "hi", None),
    )
    .await;
    let body = json!({"events": [
        {"event_id": "crm-1", "name": "lead_qualified", "occurred_at": "2026-01-05T10:00:00Z",
         "properties": {"score": 87, "stage": "demo"}},
        {"event_id": "crm-2", "name": "checkout", "value": "49.90", "currency": "brl"},
    ]});
    let (status, answer) = post_events(&app, PHONE, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["created"], 2);
    let after_first = contact(&app, INSTANCE, PHONE).await.unwrap();
    let (status, again) = post_events(&app, PHONE, body).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["created"], 0);
    assert_eq!(
        again["events"],
        json!([{"event_id": "crm-1", "status": "duplicate"},
               {"event_id": "crm-2", "status": "duplicate"}])
    );
    assert_eq!(contact(&app, INSTANCE, PHONE).await.unwrap(), after_first);
    let events = events_of(&app, PHONE).await;
    assert_eq!(events.len(), 3);
    assert_eq!(
        events[0]["event_id"], "crm-1",
        "oldest first, by their own time"
    );
    assert_eq!(events[0]["source"], "api");
    assert_eq!(
        events[0]["properties"],
        json!({"score": 87, "stage": "demo"})
    );
    let checkout = events.iter().find(|e| e["name"] == "checkout").unwrap();
    assert_eq!(
        (&checkout["value"], &checkout["currency"]),
        (&json!("49.90"), &json!("BRL"))
    );
    // One event alone, without the list.
    let (status, one) = post_events(&app, PHONE, json!({"event_id": "crm-3", "name": "x1"})).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(
        one["events"],
        json!([{"event_id": "crm-3", "status": "created"}])
    );
}

async fn custom_events_are_checked_field_by_field_and_change_nothing_when_refused(
    backend: Backend,
) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = webhook_app(stores.contacts.clone());
    deliver(
        &app,
        &whatsapp_message(INSTANCE, PHONE, "wamid.V1", now() - 60, "hi", None),
    )
    .await;
    let before = contact(&app, INSTANCE, PHONE).await.unwrap();
    let ok = json!({"event_id": "ok-1", "name": "fine"});
    let many: Vec<Value> = (0..501)
        .map(|i| json!({"event_id": format!("e{i}"), "name": "n"}))
        .collect();
    let big = "x".repeat(4100);
    let cases = [
        (json!({"events": []}), "events"),
        (json!({"events": many}), "events"),
        (json!({"events": [ok, {"name": "n"}]}), "events[1].event_id"),
        (
            json!({"events": [ok, {"event_id": "a b", "name": "n"}]}),
            "events[1].event_id",
        ),
        (
            json!({"events": [ok, {"event_id": "ok-1", "name": "n"}]}),
            "events[1].event_id",
        ),
        (
            json!({"events": [{"event_id": "e", "name": "Bad-Name"}]}),
            "events[0].name",
        ),
        (
            json!({"events": [{"event_id": "e", "name": "n".repeat(65)}]}),
            "events[0].name",
        ),
        (
            json!({"events": [{"event_id": "e", "name": "n", "properties": {"Bad Key": 1}}]}),
            "events[0].properties.Bad Key",
        ),
        (
            json!({"events": [{"event_id": "e", "name": "n", "properties": {"k": big}}]}),
            "events[0].properties",
        ),
        (
            json!({"events": [{"event_id": "e", "name": "n", "properties": 3}]}),
            "events[0].properties",
        ),
        (
            json!({"events": [{"event_id": "e", "name": "n", "value": "1"}]}),
            "events[0].currency",
        ),
        (
            json!({"events": [{"event_id": "e", "name": "n", "currency": "USD"}]}),
            "events[0].value",
        ),
        (
            json!({"events": [{"event_id": "e", "name": "n", "value": "-1", "currency": "USD"}]}),
            "events[0].value",
        ),
        (
            json!({"events": [{"event_id": "e", "name": "n", "value": "1", "currency": "US"}]}),
            "events[0].currency",
        ),
        (
            json!({"events": [{"event_id": "e", "name": "n", "occurred_at": "yesterday"}]}),
            "events[0].occurred_at",
        ),
        (
            json!({"events": [{"event_id": "e", "name": "n", "occurred_at": "2999-01-01T00:00:00Z"}]}),
            "events[0].occurred_at",
        ),
        (
            json!({"events": [{"event_id": "e", "name": "n", "extra": 1}]}),
            "events[0].extra",
        ),
        (json!({"events": [7]}), "events[0]"),
        (json!({"event_id": "e"}), "name"),
    ];
    for (body, field) in cases {
        let (status, answer) = post_events(&app, PHONE, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    assert_eq!(contact(&app, INSTANCE, PHONE).await.unwrap(), before);
}

async fn custom_events_need_an_existing_contact(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = webhook_app(stores.contacts.clone());
    let (status, answer) =
        post_events(&app, "15550009999", json!({"event_id": "e", "name": "n"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["error"]["code"], "contact_not_found");
    assert_eq!(contact(&app, INSTANCE, "15550009999").await, None);
}

async fn the_journey_keeps_the_newest_events_whatever_the_arrival_order(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = webhook_app(stores.contacts.clone());
    let start = now() - 3_600;
    let bodies: Vec<Vec<u8>> = (0..30)
        .map(|n| {
            whatsapp_message(
                INSTANCE,
                PHONE,
                &format!("wamid.J{n:02}"),
                start + n,
                "hi",
                None,
            )
        })
        .collect();
    // Newest first, then oldest first on another contact: the same log.
    for body in bodies.iter().rev() {
        deliver(&app, body).await;
    }
    let other = "16505559999";
    for body in &bodies {
        let body = String::from_utf8(body.clone())
            .unwrap()
            .replace(PHONE, other)
            .replace("wamid.J", "wamid.K");
        deliver(&app, body.as_bytes()).await;
    }
    let ids = |events: Vec<Value>| -> Vec<String> {
        events
            .iter()
            .map(|e| e["event_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let expected: Vec<String> = (10..30).map(|n| format!("wamid.J{n:02}")).collect();
    assert_eq!(ids(events_of(&app, PHONE).await), expected);
    let other_expected: Vec<String> = expected.iter().map(|id| id.replace('J', "K")).collect();
    assert_eq!(ids(events_of(&app, other).await), other_expected);
    // A business event older than every kept one is not kept, and says so.
    let (status, answer) = post_events(
        &app,
        PHONE,
        json!({"event_id": "old", "name": "n", "occurred_at": "2026-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["events"][0]["status"], "not_kept");
}

async fn a_faulty_store_loses_and_doubles_no_event(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let plan = FaultPlan::ratio(0.0, 16);
    let faulty = Arc::new(FaultInjectingStore::new(
        stores.contacts.clone(),
        plan.clone(),
    ));
    let app = webhook_app(faulty);
    let at = now() - 600;
    deliver(
        &app,
        &whatsapp_message(INSTANCE, PHONE, "wamid.F1", at, "hi", None),
    )
    .await;
    for mode in [FaultMode::Refused, FaultMode::AnswerLost] {
        plan.set_mode(mode);
        plan.set_ratio(0.5);
        for n in 0..4 {
            let body = whatsapp_message(
                INSTANCE,
                PHONE,
                &format!("wamid.{mode:?}{n}"),
                at + n,
                "x",
                None,
            );
            deliver_until_accepted(&app, &body).await;
            let event = json!({"event_id": format!("api-{mode:?}-{n}"), "name": "n"});
            loop {
                let (status, answer) = post_events(&app, PHONE, event.clone()).await;
                if status == StatusCode::OK {
                    break;
                }
                assert!(status.is_server_error(), "{status}: {answer}");
            }
        }
        plan.set_ratio(0.0);
    }
    let events = events_of(&app, PHONE).await;
    let mut ids: Vec<&str> = events
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(before, ids.len(), "no event twice: {ids:?}");
    assert_eq!(ids.len(), 1 + 2 * 2 * 4, "{ids:?}");
    let contact = contact(&app, INSTANCE, PHONE).await.unwrap();
    assert_eq!(contact["message_count"], 9);
}
