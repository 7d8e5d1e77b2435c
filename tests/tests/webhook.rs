//! The webhook through its HTTP surface, on the embedded store and on DynamoDB Local.

use axum::body::Body;
use http::{Request, StatusCode};
use integration_tests::*;
use serde_json::{Value, json};
use shared::store::{FaultInjectingStore, FaultPlan};
use std::sync::Arc;

on_every_store!(
    verification_answers_the_challenge_only_for_the_right_token,
    deliveries_without_a_valid_signature_are_refused_and_store_nothing,
    whatsapp_ctwa_ad_is_captured_as_meta_ad,
    whatsapp_status_ad_without_click_id_is_a_whatsapp_placement,
    prefilled_text_without_referral_leaves_the_contact_eligible,
    statuses_create_no_contact,
    messenger_standalone_ad_referral_is_captured,
    messenger_postback_shortlink_is_captured,
    instagram_shortlink_is_captured,
    every_fixture_is_accepted_and_counted,
    first_touch_is_never_overwritten,
    a_later_referral_sets_acquisition_on_an_unattributed_contact,
    duplicate_delivery_changes_nothing,
    concurrent_duplicate_deliveries_apply_once,
    concurrent_messages_of_one_contact_are_all_counted,
    bad_bodies_get_4xx_json_errors_and_store_nothing,
    admin_contact_read_needs_the_key_and_a_known_contact,
    store_failure_answers_5xx_and_the_retry_takes_effect,
    replaying_failed_deliveries_matches_a_fault_free_run,
    match_jobs_are_queued_only_for_unattributed_first_messages,
    a_failed_enqueue_answers_5xx_and_the_replay_queues_the_job,
);

const WA_INSTANCE: &str = "106540352242922";

async fn app_on(backend: Backend) -> Option<(axum::Router, StoreGuard)> {
    let (store, guard) = fresh_store(backend).await?;
    Some((webhook_app(store), guard))
}

async fn deliver(app: &axum::Router, body: &[u8]) -> Value {
    let (status, report) = call(app, signed_delivery(body)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    report
}

async fn verification_answers_the_challenge_only_for_the_right_token(backend: Backend) {
    let Some((app, _guard)) = app_on(backend).await else {
        return;
    };
    let verify = |query: String| {
        Request::get(format!("/webhooks/meta?{query}"))
            .body(Body::empty())
            .unwrap()
    };
    let (status, body) = call(
        &app,
        verify(format!(
            "hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"
        )),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!(1158201444), "the challenge is echoed verbatim");
    for query in [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1".to_owned(),
        format!("hub.mode=unsubscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1"),
        format!("hub.verify_token={VERIFY_TOKEN}&hub.challenge=1"),
        "hub.mode=subscribe&hub.challenge=1".to_owned(),
        String::new(),
    ] {
        let (status, body) = call(&app, verify(query.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{query}");
        assert_eq!(body["error"]["code"], "verification_failed");
    }
}

async fn deliveries_without_a_valid_signature_are_refused_and_store_nothing(backend: Backend) {
    let Some((app, _guard)) = app_on(backend).await else {
        return;
    };
    let body = fixture("whatsapp_text_ctwa_referral.json");
    let unsigned = Request::post("/webhooks/meta")
        .body(Body::from(body.clone()))
        .unwrap();
    let (status, error) = call(&app, unsigned).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error["error"]["code"], "missing_signature");

    let wrong_key = shared::meta::sign(&shared::secret::Secret::new("not-the-secret"), &body);
    let forged = Request::post("/webhooks/meta")
        .header("x-hub-signature-256", wrong_key)
        .body(Body::from(body.clone()))
        .unwrap();
    let (status, error) = call(&app, forged).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error["error"]["code"], "invalid_signature");

    // Signed over other bytes: the same JSON re-encoded is not the body Meta signed.
    let reencoded = serde_json::to_vec(&serde_json::from_slice::<Value>(&body).unwrap()).unwrap();
    let mut request = signed_delivery(&reencoded);
    *request.body_mut() = Body::from(body.clone());
    let (status, _) = call(&app, request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    assert_eq!(contact(&app, WA_INSTANCE, "16505551234").await, None);
    // And the refused delivery left no dedupe mark: the genuine one still applies.
    let report = deliver(&app, &body).await;
    assert_eq!(report["applied"], 1);
}

async fn whatsapp_ctwa_ad_is_captured_as_meta_ad(backend: Backend) {
    let Some((app, _guard)) = app_on(backend).await else {
        return;
    };
    deliver(&app, &fixture("whatsapp_text_ctwa_referral.json")).await;
    let contact = contact(&app, WA_INSTANCE, "16505551234")
        .await
        .expect("contact");
    assert_eq!(contact["channel"], "whatsapp");
    assert_eq!(contact["display_name"], "Sheena Nelson");
    assert_eq!(contact["message_count"], 1);
    assert_eq!(contact["first_seen_at"], "2025-11-24T09:20:00.000Z");
    assert_eq!(
        contact["first_message"]["text"],
        "Hi! I'd like to know more about the summer sale."
    );
    assert_eq!(contact["first_message"]["type"], "text");
    let acquisition = &contact["acquisition"];
    assert_eq!(acquisition["kind"], "meta_ad");
    assert_eq!(acquisition["platform"], "facebook");
    assert_eq!(acquisition["ad_id"], "120226305854810726");
    assert_eq!(acquisition["headline"], "Chat with us");
    assert_eq!(
        acquisition["body"],
        "Summer sale: 30% off every plan this week."
    );
    assert_eq!(acquisition["source_url"], "https://fb.me/3cr4Wqqkv");
    assert_eq!(acquisition["media_type"], "image");
    assert!(
        acquisition["ctwa_clid"]
            .as_str()
            .unwrap()
            .starts_with("ARAkLkA8")
    );
    assert_eq!(contact["touches"].as_array().unwrap().len(), 1);
    // Stored once on DynamoDB (the touch is the acquisition), shown twice, the same (the
    // acquisition with its platform's colour).
    let mut shown = acquisition.clone();
    shown.as_object_mut().unwrap().remove("color");
    assert_eq!(contact["touches"][0], shown);
}

async fn whatsapp_status_ad_without_click_id_is_a_whatsapp_placement(backend: Backend) {
    let Some((app, _guard)) = app_on(backend).await else {
        return;
    };
    deliver(
        &app,
        &fixture("whatsapp_audio_ctwa_referral_status_ad.json"),
    )
    .await;
    let contact = contact(&app, WA_INSTANCE, "5511987654321")
        .await
        .expect("contact");
    assert_eq!(contact["display_name"], "Ana Souza");
    assert_eq!(contact["first_message"]["type"], "audio");
    assert!(
        contact["first_message"].get("text").is_none(),
        "an audio message has no text"
    );
    let acquisition = &contact["acquisition"];
    assert_eq!(acquisition["kind"], "meta_ad");
    assert_eq!(acquisition["platform"], "whatsapp");
    assert_eq!(acquisition["ad_id"], "120226305854810999");
    assert_eq!(acquisition["media_type"], "video");
    assert!(acquisition.get("ctwa_clid").is_none());
}

async fn prefilled_text_without_referral_leaves_the_contact_eligible(backend: Backend) {
    let Some((app, _guard)) = app_on(backend).await else {
        return;
    };
    deliver(&app, &fixture("whatsapp_text_prefilled_tiktok.json")).await;
    let contact = contact(&app, WA_INSTANCE, "818012345678")
        .await
        .expect("contact");
    assert_eq!(contact["acquisition"], Value::Null);
    assert_eq!(
        contact["first_message"]["text"],
        "Hi, I saw your TikTok ad!"
    );
    assert_eq!(contact["touches"], json!([]));
}

async fn statuses_create_no_contact(backend: Backend) {
    let Some((app, _guard)) = app_on(backend).await else {
        return;
    };
    let report = deliver(&app, &fixture("whatsapp_statuses.json")).await;
    assert_eq!(report["events"], 0);
    assert_eq!(report["skipped"], 1);
    assert_eq!(contact(&app, WA_INSTANCE, "16505551234").await, None);
}

async fn messenger_standalone_ad_referral_is_captured(backend: Backend) {
    let Some((app, _guard)) = app_on(backend).await else {
        return;
    };
    deliver(&app, &fixture("messenger_referral_existing_thread.json")).await;
    let contact = contact(&app, "448736998987654", "7391029384756012")
        .await
        .expect("contact");
    assert_eq!(contact["channel"], "messenger");
    assert_eq!(
        contact["message_count"], 0,
        "a referral event is not a message"
    );
    assert_eq!(contact["first_message"], Value::Null);
    assert_eq!(contact["first_seen_at"], "2025-11-24T09:26:40.000Z");
    let acquisition = &contact["acquisition"];
    assert_eq!(acquisition["kind"], "meta_ad");
    assert_eq!(acquisition["platform"], "facebook");
    assert_eq!(acquisition["ad_id"], "120226305854811111");
    assert_eq!(acquisition["ref"], "spring-promo");
    assert_eq!(acquisition["headline"], "Spring collection");
    assert_eq!(acquisition["post_id"], "448736998987654_1029384756");
}

async fn messenger_postback_shortlink_is_captured(backend: Backend) {
    let Some((app, _guard)) = app_on(backend).await else {
        return;
    };
    deliver(
        &app,
        &fixture("messenger_postback_referral_new_thread.json"),
    )
    .await;
    let contact = contact(&app, "448736998987654", "7391029384756099")
        .await
        .expect("contact");
    let acquisition = &contact["acquisition"];
    assert_eq!(acquisition["kind"], "shortlink");
    assert_eq!(acquisition["platform"], "facebook");
    assert_eq!(acquisition["ref"], "newsletter-june");
}

/// A shortlink, and an ig.me link (`IGME-SOURCE-LINK`): both a `shortlink` with its ref.
async fn instagram_shortlink_is_captured(backend: Backend) {
    let Some((app, _guard)) = app_on(backend).await else {
        return;
    };
    for (name, instance, sender, ref_param) in [
        (
            "instagram_shortlink_referral.json",
            "17841400000000001",
            "6612345678901234",
            "bio-link",
        ),
        (
            "instagram_igme_referral.json",
            "17841400123456789",
            "662019384756177",
            "bio-link-dec",
        ),
    ] {
        deliver(&app, &fixture(name)).await;
        let contact = contact(&app, instance, sender).await.expect("contact");
        assert_eq!(contact["channel"], "instagram", "{name}");
        let acquisition = &contact["acquisition"];
        assert_eq!(acquisition["kind"], "shortlink", "{name}");
        assert_eq!(acquisition["platform"], "instagram", "{name}");
        assert_eq!(acquisition["ref"], ref_param, "{name}");
    }
}

/// Every shipped fixture, including any added later, goes through and is idempotent.
async fn every_fixture_is_accepted_and_counted(backend: Backend) {
    let Some((app, _guard)) = app_on(backend).await else {
        return;
    };
    let names = fixture_names();
    assert!(names.len() >= 7, "fixtures: {names:?}");
    for name in names {
        let body = fixture(&name);
        let first = deliver(&app, &body).await;
        assert_eq!(first["duplicates"], 0, "{name}");
        assert_eq!(first["applied"], first["events"], "{name}");
        let again = deliver(&app, &body).await;
        assert_eq!(again["applied"], 0, "{name} applied twice");
        assert_eq!(again["duplicates"], first["events"], "{name}");
    }
}

async fn first_touch_is_never_overwritten(backend: Backend) {
    let Some((app, _guard)) = app_on(backend).await else {
        return;
    };
    deliver(
        &app,
        &whatsapp_message(
            "111",
            "15550001",
            "wamid.1",
            1_000,
            "hello",
            Some(ctwa_referral("ad-first")),
        ),
    )
    .await;
    deliver(
        &app,
        &whatsapp_message(
            "111",
            "15550001",
            "wamid.2",
            2_000,
            "again",
            Some(ctwa_referral("ad-second")),
        ),
    )
    .await;
    deliver(
        &app,
        &whatsapp_message("111", "15550001", "wamid.3", 3_000, "plain", None),
    )
    .await;
    let contact = contact(&app, "111", "15550001").await.unwrap();
    assert_eq!(contact["acquisition"]["ad_id"], "ad-first");
    let touches: Vec<&str> = contact["touches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|touch| touch["ad_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        touches,
        ["ad-first", "ad-second"],
        "later ad touches stay visible"
    );
    assert_eq!(contact["message_count"], 3);
    assert_eq!(contact["first_message"]["id"], "wamid.1");
    assert_eq!(contact["last_seen_at"], "1970-01-01T00:50:00.000Z");
}

async fn a_later_referral_sets_acquisition_on_an_unattributed_contact(backend: Backend) {
    let Some((app, _guard)) = app_on(backend).await else {
        return;
    };
    deliver(
        &app,
        &whatsapp_message("111", "15550002", "wamid.a", 1_000, "organic hello", None),
    )
    .await;
    assert_eq!(
        contact(&app, "111", "15550002").await.unwrap()["acquisition"],
        Value::Null
    );
    deliver(
        &app,
        &whatsapp_message(
            "111",
            "15550002",
            "wamid.b",
            2_000,
            "from an ad",
            Some(ctwa_referral("ad-late")),
        ),
    )
    .await;
    let contact = contact(&app, "111", "15550002").await.unwrap();
    assert_eq!(contact["acquisition"]["ad_id"], "ad-late");
    assert_eq!(contact["first_message"]["text"], "organic hello");
}

async fn duplicate_delivery_changes_nothing(backend: Backend) {
    let Some((app, _guard)) = app_on(backend).await else {
        return;
    };
    let body = fixture("whatsapp_text_ctwa_referral.json");
    deliver(&app, &body).await;
    let before = contact(&app, WA_INSTANCE, "16505551234").await.unwrap();
    let report = deliver(&app, &body).await;
    assert_eq!(report["duplicates"], 1);
    assert_eq!(
        contact(&app, WA_INSTANCE, "16505551234").await.unwrap(),
        before
    );
    // The same message id inside a different delivery (Meta re-batches retries) is a duplicate too.
    let rebatched = whatsapp_message(
        WA_INSTANCE,
        "16505551234",
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=",
        1_763_976_000,
        "Hi! I'd like to know more about the summer sale.",
        None,
    );
    assert_eq!(deliver(&app, &rebatched).await["duplicates"], 1);
    assert_eq!(
        contact(&app, WA_INSTANCE, "16505551234").await.unwrap(),
        before
    );
}

async fn concurrent_duplicate_deliveries_apply_once(backend: Backend) {
    let Some((app, _guard)) = app_on(backend).await else {
        return;
    };
    let body = whatsapp_message(
        "222",
        "15550003",
        "wamid.same",
        5_000,
        "hi",
        Some(ctwa_referral("ad-x")),
    );
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (app, body) = (app.clone(), body.clone());
            tokio::spawn(async move { deliver(&app, &body).await })
        })
        .collect();
    let mut applied = 0;
    for task in tasks {
        applied += task.await.unwrap()["applied"].as_u64().unwrap();
    }
    assert_eq!(applied, 1);
    let contact = contact(&app, "222", "15550003").await.unwrap();
    assert_eq!(contact["message_count"], 1);
    assert_eq!(contact["touches"].as_array().unwrap().len(), 1);
    assert_eq!(contact["version"], 1);
}

async fn concurrent_messages_of_one_contact_are_all_counted(backend: Backend) {
    let Some((app, _guard)) = app_on(backend).await else {
        return;
    };
    let tasks: Vec<_> = (0..6)
        .map(|n| {
            let app = app.clone();
            let body = whatsapp_message(
                "333",
                "15550004",
                &format!("wamid.{n}"),
                100 + n,
                "burst",
                None,
            );
            tokio::spawn(async move { deliver(&app, &body).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap()["applied"], 1);
    }
    let contact = contact(&app, "333", "15550004").await.unwrap();
    assert_eq!(contact["message_count"], 6);
    assert_eq!(contact["first_message"]["id"], "wamid.0");
}

async fn bad_bodies_get_4xx_json_errors_and_store_nothing(backend: Backend) {
    let Some((app, _guard)) = app_on(backend).await else {
        return;
    };
    let cases: [(&[u8], StatusCode, &str); 4] = [
        (
            b"{\"object\": \"whatsapp_business_account\", ",
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (b"not json at all", StatusCode::BAD_REQUEST, "invalid_json"),
        (
            b"[\"an\", \"array\"]",
            StatusCode::BAD_REQUEST,
            "invalid_payload",
        ),
        (
            b"{\"object\": \"page\", \"entry\": 7}",
            StatusCode::BAD_REQUEST,
            "invalid_payload",
        ),
    ];
    for (body, status, code) in cases {
        let (got, error) = call(&app, signed_delivery(body)).await;
        assert_eq!(
            (got, error["error"]["code"].as_str()),
            (status, Some(code)),
            "{}",
            String::from_utf8_lossy(body)
        );
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // Over 3 MiB: refused before the signature is even looked at.
    let mut huge = whatsapp_message("444", "15550005", "wamid.big", 1, "x", None);
    huge.truncate(huge.len() - 1);
    huge.extend(std::iter::repeat_n(b' ', 3 * 1024 * 1024));
    huge.push(b'}');
    let (status, error) = call(&app, signed_delivery(&huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error["error"]["code"], "payload_too_large");
    assert_eq!(contact(&app, "444", "15550005").await, None);

    // Just under the limit is fine.
    let mut large = whatsapp_message("444", "15550005", "wamid.large", 1, "x", None);
    large.truncate(large.len() - 1);
    large.extend(std::iter::repeat_n(b' ', 3 * 1024 * 1024 - large.len() - 1));
    large.push(b'}');
    assert_eq!(deliver(&app, &large).await["applied"], 1);
}

async fn admin_contact_read_needs_the_key_and_a_known_contact(backend: Backend) {
    let Some((app, _guard)) = app_on(backend).await else {
        return;
    };
    deliver(&app, &fixture("whatsapp_text_prefilled_tiktok.json")).await;
    let path = format!("/instances/{WA_INSTANCE}/contacts/818012345678");
    for authorization in [
        None,
        Some("Bearer wrong-key"),
        Some(ADMIN_KEY),
        Some("Basic abc"),
    ] {
        let mut request = Request::get(&path);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let (status, error) = call(&app, request.body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{authorization:?}");
        assert_eq!(error["error"]["code"], "unauthorized");
    }
    let lower_case_scheme = Request::get(&path)
        .header("authorization", format!("bearer {ADMIN_KEY}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&app, lower_case_scheme).await.0, StatusCode::OK);

    let (status, error) = call(
        &app,
        admin_get(&format!("/instances/{WA_INSTANCE}/contacts/999")),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["error"]["code"], "contact_not_found");
    let (status, error) = call(&app, admin_get("/instances/a%23b/contacts/999")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"]["code"], "invalid_id");
    let (status, error) = call(&app, admin_get("/no/such/route")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["error"]["code"], "route_not_found");
}

async fn store_failure_answers_5xx_and_the_retry_takes_effect(backend: Backend) {
    let Some((store, _guard)) = fresh_store(backend).await else {
        return;
    };
    let plan = FaultPlan::ratio(1.0, 1);
    let app = webhook_app(Arc::new(FaultInjectingStore::new(store, plan.clone())));
    let body = fixture("whatsapp_text_ctwa_referral.json");
    let (status, error) = call(&app, signed_delivery(&body)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error["error"]["code"], "unavailable");
    plan.set_ratio(0.0);
    assert_eq!(
        contact(&app, WA_INSTANCE, "16505551234").await,
        None,
        "nothing stored"
    );
    let report = deliver(&app, &body).await;
    assert_eq!(
        report["applied"], 1,
        "the failed delivery was not marked as processed"
    );
    assert_eq!(
        contact(&app, WA_INSTANCE, "16505551234").await.unwrap()["message_count"],
        1
    );
}

/// A run where 40% of store calls fail, with each failed delivery replayed as Meta would until
/// it succeeds, ends exactly where a fault-free run ends: nothing lost, nothing doubled.
async fn replaying_failed_deliveries_matches_a_fault_free_run(backend: Backend) {
    let Some((clean_store, _clean_guard)) = fresh_store(backend).await else {
        return;
    };
    let Some((faulty_store, _faulty_guard)) = fresh_store(backend).await else {
        return;
    };
    let clean = webhook_app(clean_store);
    let plan = FaultPlan::ratio(0.4, 42);
    let faulty = webhook_app(Arc::new(FaultInjectingStore::new(
        faulty_store,
        plan.clone(),
    )));

    // Several messages per contact and deliveries of two messages each, some with referrals.
    let deliveries: Vec<Vec<u8>> = (0..30)
        .map(|n| {
            let contact = format!("1555000{:02}", n % 7);
            let referral = (n % 3 == 0).then(|| ctwa_referral(&format!("ad-{n}")));
            let mut body: Value = serde_json::from_slice(&whatsapp_message(
                "555",
                &contact,
                &format!("wamid.{n}"),
                1_000 + n,
                "hello",
                referral,
            ))
            .unwrap();
            let mut second = body["entry"][0]["changes"][0]["value"]["messages"][0].clone();
            second["id"] = json!(format!("wamid.{n}.b"));
            body["entry"][0]["changes"][0]["value"]["messages"]
                .as_array_mut()
                .unwrap()
                .push(second);
            serde_json::to_vec(&body).unwrap()
        })
        .collect();

    let mut failures = 0;
    for body in &deliveries {
        deliver(&clean, body).await;
        failures += deliver_until_accepted(&faulty, body).await;
    }
    assert!(failures > 0, "the fault plan injected nothing");
    plan.set_ratio(0.0);
    for n in 0..7 {
        let id = format!("1555000{n:02}");
        let expected = contact(&clean, "555", &id).await.unwrap();
        let mut got = contact(&faulty, "555", &id).await.unwrap();
        // Versions count write attempts that won, which retries do not change; compare anyway
        // everything a user sees.
        got["version"] = expected["version"].clone();
        assert_eq!(got, expected, "contact {id}");
    }
}

async fn match_jobs_are_queued_only_for_unattributed_first_messages(backend: Backend) {
    let Some((store, _guard)) = fresh_store(backend).await else {
        return;
    };
    let queue = Arc::new(RecordingQueue::default());
    let app = webhook_app_with_queue(store, queue.clone());
    deliver(&app, &fixture("whatsapp_text_ctwa_referral.json")).await;
    deliver(&app, &fixture("messenger_referral_existing_thread.json")).await;
    deliver(&app, &fixture("whatsapp_statuses.json")).await;
    assert_eq!(
        queue.job_count(),
        0,
        "attributed contacts and statuses queue nothing"
    );
    deliver(&app, &fixture("whatsapp_text_prefilled_tiktok.json")).await;
    deliver(
        &app,
        &whatsapp_message(
            WA_INSTANCE,
            "818012345678",
            "wamid.second",
            1_763_976_900,
            "more",
            None,
        ),
    )
    .await;
    let jobs = queue.match_jobs();
    assert_eq!(jobs.len(), 1, "one job, for the first message only");
    assert_eq!(jobs[0].contact_id.as_str(), "818012345678");
    assert_eq!(jobs[0].instance_id.as_str(), WA_INSTANCE);
}

async fn a_failed_enqueue_answers_5xx_and_the_replay_queues_the_job(backend: Backend) {
    let Some((store, _guard)) = fresh_store(backend).await else {
        return;
    };
    let queue = Arc::new(RecordingQueue::default());
    let app = webhook_app_with_queue(store, queue.clone());
    queue
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let body = fixture("whatsapp_text_prefilled_tiktok.json");
    let (status, _) = call(&app, signed_delivery(&body)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    queue
        .failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let report = deliver(&app, &body).await;
    assert_eq!(report["duplicates"], 1);
    assert_eq!(
        queue.job_count(),
        1,
        "the replay queued the job the failure lost"
    );
    assert_eq!(
        contact(&app, WA_INSTANCE, "818012345678").await.unwrap()["message_count"],
        1
    );
}
