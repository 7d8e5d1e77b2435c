//! One person, one contact: WhatsApp users named by phone number, by business-scoped user id
//! (BSUID), or both, in every order, through the webhook's HTTP surface, on every store.

use http::StatusCode;
use integration_tests::*;
use serde_json::{Value, json};
use shared::contact::store::CounterDays;
use shared::ids::InstanceId;
use shared::store::{FaultInjectingStore, FaultMode, FaultPlan};
use std::sync::Arc;
use std::time::Duration;

on_every_store!(
    phone_then_phone_and_bsuid_then_bsuid_only_is_one_contact,
    bsuid_only_then_phone_and_bsuid_is_one_contact,
    two_contacts_named_together_merge_into_one_with_the_counts_of_one,
    a_merge_keeps_the_first_touch_and_moves_the_rule_counts,
    a_message_naming_no_sender_is_skipped,
    the_shipped_bsuid_fixtures_are_one_person,
    sends_and_journeys_take_either_identifier,
    concurrent_messages_naming_one_person_make_one_contact,
    store_faults_during_links_and_merges_lose_and_double_nothing,
    erasure_by_either_identifier_takes_every_link,
);

const INSTANCE: &str = "106540352242922";
const PHONE: &str = "5215512345678";
const BSUID: &str = "MX.8820194736550012";

/// A WhatsApp delivery of one text message from a sender named by `phone`, `bsuid` or both.
fn message(
    phone: Option<&str>,
    bsuid: Option<&str>,
    id: &str,
    unix_seconds: i64,
    text: &str,
    referral: Option<Value>,
) -> Vec<u8> {
    let mut profile = json!({"name": "Marta"});
    let mut sender = json!({});
    let mut message = json!({
        "id": id, "timestamp": unix_seconds.to_string(), "type": "text", "text": {"body": text}
    });
    if let Some(phone) = phone {
        sender["wa_id"] = json!(phone);
        message["from"] = json!(phone);
    }
    if let Some(bsuid) = bsuid {
        sender["user_id"] = json!(bsuid);
        sender["parent_user_id"] = json!("MX.ENT.5571029384756601");
        message["from_user_id"] = json!(bsuid);
        if phone.is_none() {
            profile["username"] = json!("@marta.r");
        }
    }
    sender["profile"] = profile;
    if let Some(referral) = referral {
        message["referral"] = referral;
    }
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "waba", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": INSTANCE},
            "contacts": [sender],
            "messages": [message]
        }}]}]
    }))
    .unwrap()
}

async fn deliver(app: &axum::Router, body: &[u8]) -> Value {
    let (status, report) = call(app, signed_delivery(body)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    report
}

/// Delivers `body` again and checks that it changed neither the contact nor the counters.
async fn redeliver_changes_nothing(app: &axum::Router, stores: &Stores, body: &[u8]) {
    let (contact_before, counters_before) =
        (contact(app, INSTANCE, PHONE).await, counters(stores).await);
    let report = deliver(app, body).await;
    assert_eq!(report["applied"], 0, "{report}");
    assert_eq!(report["duplicates"], 1, "{report}");
    assert_eq!(contact(app, INSTANCE, PHONE).await, contact_before);
    assert_eq!(counters(stores).await, counters_before);
}

/// The instance's non-zero counters, by day (a count moved away may leave a zero behind).
async fn counters(stores: &Stores) -> CounterDays {
    let mut days = stores
        .contacts
        .load_counter_days(
            &InstanceId::parse(INSTANCE).unwrap(),
            "2000-01-01",
            "2099-12-31",
        )
        .await
        .unwrap();
    for counters in days.values_mut() {
        counters.retain(|_, count| *count > 0);
    }
    days.retain(|_, counters| !counters.is_empty());
    days
}

/// Each counter summed over the days.
fn totals(days: &CounterDays) -> std::collections::BTreeMap<String, u64> {
    let mut totals = std::collections::BTreeMap::new();
    for counters in days.values() {
        for (name, count) in counters {
            *totals.entry(name.clone()).or_default() += count;
        }
    }
    totals
}

/// The contacts the listing shows (the last 30 days), by id.
async fn listed(stores: &Stores) -> Vec<String> {
    let (status, body) = call(
        &rules_app(stores),
        admin_get(&format!("/instances/{INSTANCE}/contacts?limit=500")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|contact| contact["contact_id"].as_str().unwrap().to_owned())
        .collect()
}

fn recent(hours_ago: i64) -> i64 {
    chrono::Utc::now().timestamp() - hours_ago * 3_600
}

async fn phone_then_phone_and_bsuid_then_bsuid_only_is_one_contact(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = &webhook_app(stores.contacts.clone());
    let deliveries = [
        message(
            Some(PHONE),
            None,
            "wamid.p1",
            recent(50),
            "hola",
            Some(ctwa_referral("ad-1")),
        ),
        message(
            Some(PHONE),
            Some(BSUID),
            "wamid.p2",
            recent(40),
            "sigo aquí",
            None,
        ),
        message(
            None,
            Some(BSUID),
            "wamid.p3",
            recent(30),
            "ahora con usuario",
            Some(ctwa_referral("ad-2")),
        ),
    ];
    for body in &deliveries {
        assert_eq!(deliver(app, body).await["applied"], 1);
    }
    let by_phone = contact(app, INSTANCE, PHONE).await.expect("by phone");
    let by_bsuid = contact(app, INSTANCE, BSUID).await.expect("by BSUID");
    assert_eq!(by_phone, by_bsuid, "both identifiers name one contact");
    assert_eq!(
        by_phone["contact_id"], PHONE,
        "filed under the first identifier seen"
    );
    assert_eq!(by_phone["wa_id"], PHONE);
    assert_eq!(by_phone["user_id"], BSUID);
    assert_eq!(by_phone["parent_user_id"], "MX.ENT.5571029384756601");
    assert_eq!(by_phone["username"], "@marta.r");
    assert_eq!(by_phone["message_count"], 3, "the count continues");
    assert_eq!(by_phone["first_message"]["id"], "wamid.p1");
    assert_eq!(
        by_phone["acquisition"]["ad_id"], "ad-1",
        "the same first touch"
    );
    assert_eq!(by_phone["touches"].as_array().unwrap().len(), 2);
    assert_eq!(listed(&stores).await, [PHONE]);
    let totals = totals(&counters(&stores).await);
    assert_eq!(totals["new_contacts"], 1);
    assert_eq!(totals["kind:meta_ad"], 1);
    for body in &deliveries {
        redeliver_changes_nothing(app, &stores, body).await;
    }
}

async fn bsuid_only_then_phone_and_bsuid_is_one_contact(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = webhook_app(stores.contacts.clone());
    let deliveries = [
        message(None, Some(BSUID), "wamid.b1", recent(20), "hola", None),
        message(
            Some(PHONE),
            Some(BSUID),
            "wamid.b2",
            recent(10),
            "vi el anuncio",
            Some(ctwa_referral("ad-9")),
        ),
    ];
    for body in &deliveries {
        assert_eq!(deliver(&app, body).await["applied"], 1);
    }
    let by_phone = contact(&app, INSTANCE, PHONE).await.expect("by phone");
    assert_eq!(
        contact(&app, INSTANCE, BSUID).await.as_ref(),
        Some(&by_phone)
    );
    assert_eq!(by_phone["contact_id"], BSUID);
    assert_eq!(by_phone["wa_id"], PHONE, "the phone, once Meta sends it");
    assert_eq!(by_phone["user_id"], BSUID);
    assert_eq!(by_phone["message_count"], 2);
    assert_eq!(by_phone["first_message"]["id"], "wamid.b1");
    assert_eq!(by_phone["acquisition"]["ad_id"], "ad-9");
    assert_eq!(listed(&stores).await, [BSUID]);
    assert_eq!(totals(&counters(&stores).await)["new_contacts"], 1);
    for body in &deliveries {
        redeliver_changes_nothing(&app, &stores, body).await;
    }
    // And back to the BSUID alone.
    let later = message(None, Some(BSUID), "wamid.b3", recent(5), "gracias", None);
    deliver(&app, &later).await;
    assert_eq!(
        contact(&app, INSTANCE, PHONE).await.unwrap()["message_count"],
        3
    );
}

/// A phone-only contact (first seen two days ago, no ad) and a BSUID-only contact (yesterday,
/// from an ad), then a message naming both: one contact, counted as one, whatever the order of
/// the first two; the same as if every message had named both from the start.
async fn two_contacts_named_together_merge_into_one_with_the_counts_of_one(backend: Backend) {
    let script = [
        ("wamid.m1", recent(48), "hola", None),
        (
            "wamid.m2",
            recent(24),
            "otra vez",
            Some(ctwa_referral("ad-7")),
        ),
        ("wamid.m3", recent(1), "soy yo", None),
    ];
    let sent = |index: usize, phone: Option<&str>, bsuid: Option<&str>| {
        let (id, at, text, referral) = script[index].clone();
        message(phone, bsuid, id, at, text, referral)
    };
    let phone_only = sent(0, Some(PHONE), None);
    let bsuid_only = sent(1, None, Some(BSUID));
    let both = sent(2, Some(PHONE), Some(BSUID));

    // The reference: one person, named by both identifiers every time.
    let Some((one_stores, _one_guard)) = fresh_stores(backend).await else {
        return;
    };
    let one_app = webhook_app(one_stores.contacts.clone());
    for index in 0..script.len() {
        deliver(&one_app, &sent(index, Some(PHONE), Some(BSUID))).await;
    }
    let one = contact(&one_app, INSTANCE, PHONE).await.unwrap();

    for order in [[&phone_only, &bsuid_only], [&bsuid_only, &phone_only]] {
        let Some((stores, _guard)) = fresh_stores(backend).await else {
            return;
        };
        let app = webhook_app(stores.contacts.clone());
        for body in order {
            deliver(&app, body).await;
        }
        assert_eq!(
            listed(&stores).await.len(),
            2,
            "two contacts until they meet"
        );
        assert_eq!(totals(&counters(&stores).await)["new_contacts"], 2);
        assert_eq!(deliver(&app, &both).await["applied"], 1);

        let merged = contact(&app, INSTANCE, PHONE).await.expect("by phone");
        assert_eq!(contact(&app, INSTANCE, BSUID).await.as_ref(), Some(&merged));
        assert_eq!(merged["contact_id"], PHONE, "the contact first seen stays");
        for field in [
            "first_seen_at",
            "last_seen_at",
            "message_count",
            "first_message",
            "acquisition",
            "touches",
            "wa_id",
            "user_id",
            "display_name",
        ] {
            assert_eq!(merged[field], one[field], "{field}");
        }
        assert_eq!(merged["message_count"], 3);
        assert_eq!(merged["acquisition"]["ad_id"], "ad-7");
        assert_eq!(
            listed(&stores).await,
            [PHONE],
            "the listing shows the person once"
        );
        assert_eq!(
            counters(&stores).await,
            counters(&one_stores).await,
            "the daily counters of one contact"
        );
        for body in [&phone_only, &bsuid_only, &both] {
            redeliver_changes_nothing(&app, &stores, body).await;
        }
    }
}

/// The contact that the text rules attributed is merged with one they found nothing for: the
/// rule's attribution stays the first touch, and `unmatched` no longer counts the person.
async fn a_merge_keeps_the_first_touch_and_moves_the_rule_counts(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    let app = &engine.app;
    let rule = json!({
        "name": "TikTok", "platform": "tiktok", "campaign": "summer",
        "match": {"kind": "contains", "pattern": "promo tiktok"}
    });
    let (status, _) = call(
        app,
        admin_request("POST", &format!("/instances/{INSTANCE}/rules"), Some(rule)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    deliver(
        app,
        &message(
            None,
            Some(BSUID),
            "wamid.r1",
            recent(30),
            "quiero la promo tiktok",
            None,
        ),
    )
    .await;
    decided(app, BSUID).await;
    deliver(
        app,
        &message(Some(PHONE), None, "wamid.r2", recent(20), "hola", None),
    )
    .await;
    decided(app, PHONE).await;
    let before = totals(&counters(&stores).await);
    assert_eq!((before["kind:rule"], before["unmatched"]), (1, 1));

    deliver(
        app,
        &message(
            Some(PHONE),
            Some(BSUID),
            "wamid.r3",
            recent(2),
            "soy yo",
            None,
        ),
    )
    .await;
    let merged = contact(app, INSTANCE, PHONE).await.unwrap();
    assert_eq!(merged["contact_id"], BSUID, "the contact first seen stays");
    assert_eq!(merged["acquisition"]["kind"], "rule");
    assert_eq!(merged["first_message"]["id"], "wamid.r1");
    assert_eq!(merged["message_count"], 3);
    let after = totals(&counters(&stores).await);
    assert_eq!(after.get("unmatched"), None, "{after:?}");
    assert_eq!(after["new_contacts"], 1);
    assert_eq!(after["kind:rule"], 1);
    assert_eq!(listed(&stores).await, [BSUID]);
}

/// The contact once the matcher has decided on it.
async fn decided(app: &axum::Router, id: &str) -> Value {
    let mut last = None;
    for _ in 0..200 {
        last = contact(app, INSTANCE, id).await;
        if last
            .as_ref()
            .is_some_and(|c| c.get("rules_checked_at").is_some())
        {
            return last.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the matcher did not decide: {last:?}");
}

async fn a_message_naming_no_sender_is_skipped(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = webhook_app(stores.contacts.clone());
    let report = deliver(
        &app,
        &message(None, None, "wamid.n1", recent(1), "¿quién?", None),
    )
    .await;
    assert_eq!(report["events"], 0);
    assert_eq!(report["skipped"], 1);
    assert!(listed(&stores).await.is_empty());
    assert!(counters(&stores).await.is_empty());
}

async fn the_shipped_bsuid_fixtures_are_one_person(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = webhook_app(stores.contacts.clone());
    deliver(&app, &fixture("whatsapp_bsuid_with_phone.json")).await;
    deliver(&app, &fixture("whatsapp_bsuid_username_only.json")).await;
    let contact = contact(&app, INSTANCE, BSUID).await.expect("by BSUID");
    assert_eq!(contact["contact_id"], PHONE);
    assert_eq!(contact["wa_id"], PHONE);
    assert_eq!(contact["username"], "@marta.r");
    assert_eq!(contact["display_name"], "Marta");
    assert_eq!(contact["message_count"], 2);
    assert_eq!(contact["acquisition"]["kind"], "meta_ad");
    assert_eq!(contact["acquisition"]["ad_id"], "120230011223344556");
}

/// A send addressed by BSUID and one by phone both go to the contact, and its journey reads
/// the same by either identifier.
async fn sends_and_journeys_take_either_identifier(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = postback_app(&stores);
    let webhook = webhook_app(stores.contacts.clone());
    deliver(
        &webhook,
        &message(
            Some(PHONE),
            Some(BSUID),
            "wamid.s1",
            recent(3),
            "hola",
            None,
        ),
    )
    .await;
    let offer = json!({"offer_id": "o1", "name": "Offer", "destination_url": "https://shop.example/o1?aff={click_id}"});
    let (status, body) = call(&app, admin_request("POST", "/offers", Some(offer))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for (message_id, addressed) in [("m1", BSUID), ("m2", PHONE), ("m3", "15550000001")] {
        let send = json!({"instance_id": INSTANCE, "contact_id": addressed, "message_id": message_id,
            "campaign": "c", "creative": "t", "offer_id": "o1"});
        let (status, body) = call(&app, admin_request("POST", "/sends", Some(send))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let expected = if addressed == "15550000001" {
            addressed
        } else {
            PHONE
        };
        assert_eq!(body["contact_id"], expected, "{addressed}");
    }
    let journey = |id: &str| {
        let path = format!("/instances/{INSTANCE}/contacts/{id}/journey");
        let app = app.clone();
        async move {
            let (status, body) = call(&app, admin_get(&path)).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body
        }
    };
    let by_bsuid = journey(BSUID).await;
    assert_eq!(by_bsuid["sends"], 2);
    assert_eq!(by_bsuid["contact_id"], PHONE);
    assert_eq!(journey(PHONE).await, by_bsuid);
}

/// Deliveries naming one person by phone, by BSUID and by both, all at once: one contact
/// holds every message, whichever writer wins each race.
async fn concurrent_messages_naming_one_person_make_one_contact(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = webhook_app(stores.contacts.clone());
    let names = [
        (Some(PHONE), None),
        (None, Some(BSUID)),
        (Some(PHONE), Some(BSUID)),
    ];
    let deliveries: Vec<_> = (0..9)
        .map(|n| {
            let (phone, bsuid) = names[n % 3];
            let body = message(
                phone,
                bsuid,
                &format!("wamid.c{n}"),
                recent(9 - n as i64),
                "hola",
                None,
            );
            let app = app.clone();
            tokio::spawn(async move { deliver(&app, &body).await })
        })
        .collect();
    for delivery in deliveries {
        delivery.await.unwrap();
    }
    // A phone-only and a BSUID-only contact may stand apart until a message names both; the
    // last one here does.
    deliver(
        &app,
        &message(
            Some(PHONE),
            Some(BSUID),
            "wamid.c-last",
            recent(0),
            "hola",
            None,
        ),
    )
    .await;
    let contact = contact(&app, INSTANCE, BSUID).await.expect("by BSUID");
    assert_eq!(contact["message_count"], 10);
    assert_eq!(listed(&stores).await.len(), 1);
    assert_eq!(totals(&counters(&stores).await)["new_contacts"], 1);
}

/// Persons named by phone, by BSUID and by both (links and merges), delivered through a store
/// that fails 40% of its calls (refused before they run, or run and their answer lost), each
/// failed delivery replayed as Meta would: the same contacts and counters as a fault-free run.
async fn store_faults_during_links_and_merges_lose_and_double_nothing(backend: Backend) {
    for mode in [FaultMode::Refused, FaultMode::AnswerLost] {
        faults_in_mode(backend, mode).await;
    }
}

async fn faults_in_mode(backend: Backend, mode: FaultMode) {
    let Some((clean, _clean_guard)) = fresh_stores(backend).await else {
        return;
    };
    let Some((faulty, _faulty_guard)) = fresh_stores(backend).await else {
        return;
    };
    let plan = FaultPlan::ratio(0.4, 7);
    plan.set_mode(mode);
    let faulty_app = webhook_app(Arc::new(FaultInjectingStore::new(
        faulty.contacts.clone(),
        plan.clone(),
    )));
    let clean_app = webhook_app(clean.contacts.clone());
    let person = |n: usize| (format!("52155{n:08}"), format!("MX.{n:016}"));
    let mut deliveries = Vec::new();
    for n in 0..4 {
        let (phone, bsuid) = person(n);
        let referral = (n % 2 == 0).then(|| ctwa_referral(&format!("ad-{n}")));
        let at = |hours: i64| recent(hours + n as i64);
        deliveries.push(message(
            Some(&phone),
            None,
            &format!("wamid.{n}.1"),
            at(40),
            "hola",
            None,
        ));
        deliveries.push(message(
            None,
            Some(&bsuid),
            &format!("wamid.{n}.2"),
            at(30),
            "otra",
            referral,
        ));
        deliveries.push(message(
            Some(&phone),
            Some(&bsuid),
            &format!("wamid.{n}.3"),
            at(20),
            "yo",
            None,
        ));
        deliveries.push(message(
            None,
            Some(&bsuid),
            &format!("wamid.{n}.4"),
            at(10),
            "fin",
            None,
        ));
    }
    let mut failures = 0;
    for body in &deliveries {
        deliver(&clean_app, body).await;
        failures += deliver_until_accepted(&faulty_app, body).await;
    }
    assert!(failures > 0, "the fault plan injected nothing");
    plan.set_ratio(0.0);
    for n in 0..4 {
        let (phone, bsuid) = person(n);
        let expected = contact(&clean_app, INSTANCE, &phone).await.expect("clean");
        assert_eq!(expected["message_count"], 4);
        for identifier in [&phone, &bsuid] {
            let mut found = contact(&faulty_app, INSTANCE, identifier)
                .await
                .expect("faulty");
            let mut expected = expected.clone();
            // Retries may take more attempts, never more changes.
            for shown in [&mut found, &mut expected] {
                shown.as_object_mut().unwrap().remove("version");
            }
            assert_eq!(found, expected, "{mode:?} {identifier}");
        }
    }
    assert_eq!(counters(&faulty).await, counters(&clean).await);
    assert_eq!(listed(&faulty).await.len(), 4);
}

/// Erasing a merged person by their BSUID takes the contact and every link: neither the phone
/// nor any BSUID finds it again, and a later message starts a new contact.
async fn erasure_by_either_identifier_takes_every_link(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let webhook = webhook_app(stores.contacts.clone());
    let admin = rules_app(&stores);
    deliver(
        &webhook,
        &message(Some(PHONE), None, "wamid.e1", recent(30), "hola", None),
    )
    .await;
    deliver(
        &webhook,
        &message(None, Some(BSUID), "wamid.e2", recent(20), "otra", None),
    )
    .await;
    deliver(
        &webhook,
        &message(Some(PHONE), Some(BSUID), "wamid.e3", recent(10), "yo", None),
    )
    .await;
    let (status, body) = call(
        &admin,
        admin_request(
            "DELETE",
            &format!("/instances/{INSTANCE}/contacts/{BSUID}"),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(contact(&webhook, INSTANCE, PHONE).await, None);
    assert_eq!(contact(&webhook, INSTANCE, BSUID).await, None);
    assert!(listed(&stores).await.is_empty());
    let later = message(None, Some(BSUID), "wamid.e4", recent(1), "de nuevo", None);
    assert_eq!(deliver(&webhook, &later).await["applied"], 1);
    let fresh = contact(&webhook, INSTANCE, BSUID)
        .await
        .expect("a new contact");
    assert_eq!(fresh["message_count"], 1);
    assert_eq!(contact(&webhook, INSTANCE, PHONE).await, None);
}
