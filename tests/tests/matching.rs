//! Queued rule matching: the webhook queues a job for a new unattributed contact, the matcher
//! applies the instance's rules once. Locally through the in-process queue, and on AWS's
//! shapes: SQS events with partial batch failures, against moto's SQS and DynamoDB Local.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use http::StatusCode;
use integration_tests::*;
use serde_json::{Value, json};
use shared::contact::store::ContactQueries;
use shared::ids::{ContactId, InstanceId};
use shared::matching::{MatchOutcome, QueueWorker};
use shared::queue::MatchJob;
use shared::time::Timestamp;
use std::time::Duration;

on_every_store!(
    a_prefilled_message_is_attributed_by_its_rule_through_the_queue,
    a_message_no_rule_matches_is_counted_unmatched,
    a_meta_referral_is_never_overwritten_by_a_rule,
    unicode_and_case_are_folded_but_accents_kept,
    a_rule_change_applies_to_the_next_contact,
    a_duplicate_job_attributes_and_counts_once,
    a_poison_message_fails_alone_in_its_batch,
    an_unmatched_contact_attributed_later_leaves_the_unmatched_count,
    an_earlier_first_message_arriving_late_is_decided_again_by_the_rules,
    a_rule_on_the_first_message_replaces_a_referral_from_a_later_message,
);

const INSTANCE: &str = "106540352242922";

fn rule(name: &str, pattern: &str, priority: i64) -> Value {
    json!({
        "name": name, "platform": "tiktok",
        "match": {"kind": "contains", "pattern": pattern},
        "campaign": "summer-2026", "ad": "video-a", "priority": priority
    })
}

async fn create_rule(app: &axum::Router, rule: Value) -> Value {
    let (status, body) = call(
        app,
        admin_request("POST", &format!("/instances/{INSTANCE}/rules"), Some(rule)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn deliver(app: &axum::Router, body: &[u8]) {
    let (status, report) = call(app, signed_delivery(body)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
}

/// The contact once the matcher has decided on it (or the last state seen after 10 s).
async fn decided_contact(app: &axum::Router, contact_id: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        last = contact(app, INSTANCE, contact_id)
            .await
            .unwrap_or(Value::Null);
        if last.get("rules_checked_at").is_some() || !last["acquisition"].is_null() {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the matcher did not decide within 10 s: {last}");
}

async fn counters(stores: &Stores, day: &str) -> std::collections::BTreeMap<String, u64> {
    stores
        .contacts
        .load_counters(&InstanceId::parse(INSTANCE).unwrap(), day)
        .await
        .unwrap()
}

async fn a_prefilled_message_is_attributed_by_its_rule_through_the_queue(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    let rule = create_rule(&engine.app, rule("TikTok summer", "TikTok ad", 10)).await;
    deliver(&engine.app, &fixture("whatsapp_text_prefilled_tiktok.json")).await;
    let contact = decided_contact(&engine.app, "818012345678").await;
    let acquisition = &contact["acquisition"];
    assert_eq!(acquisition["kind"], "rule");
    assert_eq!(acquisition["platform"], "tiktok");
    assert_eq!(acquisition["rule_id"], rule["id"]);
    assert_eq!(acquisition["rule_name"], "TikTok summer");
    assert_eq!(acquisition["campaign"], "summer-2026");
    assert_eq!(acquisition["ad"], "video-a");
    assert_eq!(acquisition["matched_text"], "Hi, I saw your TikTok ad!");
    assert_eq!(acquisition["source_name"], Value::Null);
    let day = counters(&stores, "2025-11-24").await;
    let rule_counter = format!("rule:{}", rule["id"].as_str().unwrap());
    assert_eq!(day.get("new_contacts"), Some(&1));
    assert_eq!(day.get("kind:rule"), Some(&1));
    assert_eq!(day.get("platform:tiktok"), Some(&1));
    assert_eq!(day.get(rule_counter.as_str()), Some(&1));
    assert_eq!(day.get("unmatched"), None);
    assert!(engine.match_queue.dead_letters().is_empty());
}

async fn a_message_no_rule_matches_is_counted_unmatched(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    create_rule(&engine.app, rule("Google", "Google ad", 10)).await;
    deliver(&engine.app, &fixture("whatsapp_text_prefilled_tiktok.json")).await;
    let contact = decided_contact(&engine.app, "818012345678").await;
    assert_eq!(contact["acquisition"], Value::Null);
    let day = counters(&stores, "2025-11-24").await;
    assert_eq!(day.get("unmatched"), Some(&1));
    assert_eq!(day.get("kind:rule"), None);
}

async fn a_meta_referral_is_never_overwritten_by_a_rule(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    create_rule(&engine.app, rule("catch-all", "sale", 1)).await;
    deliver(&engine.app, &fixture("whatsapp_text_ctwa_referral.json")).await;
    // An unattributed contact after it, to know the queue has moved past the first.
    deliver(
        &engine.app,
        &whatsapp_message(
            INSTANCE,
            "15550009",
            "wamid.after",
            1_763_976_500,
            "a sale?",
            None,
        ),
    )
    .await;
    assert_eq!(
        decided_contact(&engine.app, "15550009").await["acquisition"]["kind"],
        "rule"
    );
    let meta = contact(&engine.app, INSTANCE, "16505551234").await.unwrap();
    assert_eq!(meta["acquisition"]["kind"], "meta_ad");
    assert!(
        meta.get("rules_checked_at").is_none(),
        "no job was queued for it"
    );

    // And a job for it anyway (a duplicate, a stray) changes nothing.
    let matcher = QueueWorker::new(
        stores.contacts.clone(),
        stores.rules.clone(),
        stores.jobs.clone(),
    );
    let job = MatchJob {
        instance_id: InstanceId::parse(INSTANCE).unwrap(),
        contact_id: ContactId::parse("16505551234").unwrap(),
    };
    assert_eq!(
        matcher
            .match_first_message(&job, Timestamp::now())
            .await
            .unwrap(),
        MatchOutcome::AlreadyDecided
    );
    assert_eq!(
        contact(&engine.app, INSTANCE, "16505551234").await.unwrap(),
        meta
    );
}

async fn unicode_and_case_are_folded_but_accents_kept(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    create_rule(&engine.app, rule("sem acento", "anuncio no tiktok", 1)).await;
    let accented = create_rule(&engine.app, rule("com acento", "ANÚNCIO  no TikTok", 2)).await;
    deliver(
        &engine.app,
        &whatsapp_message(
            INSTANCE,
            "5511900000001",
            "wamid.pt",
            1_763_976_000,
            "Olá, vi seu anúncio no TikTok",
            None,
        ),
    )
    .await;
    let contact = decided_contact(&engine.app, "5511900000001").await;
    assert_eq!(contact["acquisition"]["rule_id"], accented["id"]);
}

async fn a_rule_change_applies_to_the_next_contact(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    let first = create_rule(&engine.app, rule("first", "promo", 1)).await;
    deliver(
        &engine.app,
        &whatsapp_message(
            INSTANCE,
            "15550001",
            "wamid.1",
            1_763_976_000,
            "promo please",
            None,
        ),
    )
    .await;
    assert_eq!(
        decided_contact(&engine.app, "15550001").await["acquisition"]["rule_id"],
        first["id"]
    );

    let mut disabled = rule("first", "promo", 1);
    disabled["enabled"] = json!(false);
    let path = format!(
        "/instances/{INSTANCE}/rules/{}",
        first["id"].as_str().unwrap()
    );
    assert_eq!(
        call(&engine.app, admin_request("PUT", &path, Some(disabled)))
            .await
            .0,
        StatusCode::OK
    );
    let second = create_rule(&engine.app, rule("second", "promo", 5)).await;
    deliver(
        &engine.app,
        &whatsapp_message(
            INSTANCE,
            "15550002",
            "wamid.2",
            1_763_976_001,
            "promo please",
            None,
        ),
    )
    .await;
    assert_eq!(
        decided_contact(&engine.app, "15550002").await["acquisition"]["rule_id"],
        second["id"]
    );
    // The first contact keeps its first touch.
    assert_eq!(
        contact(&engine.app, INSTANCE, "15550001").await.unwrap()["acquisition"]["rule_id"],
        first["id"]
    );
}

async fn a_duplicate_job_attributes_and_counts_once(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    // The webhook alone, so the jobs are ours to run.
    let queue = std::sync::Arc::new(RecordingQueue::default());
    let app = webhook_app_with_queue(stores.contacts.clone(), queue.clone());
    let rules_app = rules_app(&stores);
    let rule = create_rule(&rules_app, rule("r", "TikTok", 1)).await;
    let body = fixture("whatsapp_text_prefilled_tiktok.json");
    deliver(&app, &body).await;
    deliver(&app, &body).await;
    let jobs = queue.match_jobs();
    assert_eq!(
        jobs.len(),
        2,
        "a duplicate delivery asks again while the contact waits"
    );

    let matcher = std::sync::Arc::new(QueueWorker::new(
        stores.contacts.clone(),
        stores.rules.clone(),
        stores.jobs.clone(),
    ));
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let (matcher, job) = (matcher.clone(), jobs[0].clone());
            tokio::spawn(async move {
                matcher
                    .match_first_message(&job, Timestamp::now())
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut matched = 0;
    for run in runs {
        match run.await.unwrap() {
            MatchOutcome::Matched { rule_id } => {
                assert_eq!(rule_id, rule["id"].as_str().unwrap());
                matched += 1;
            }
            MatchOutcome::AlreadyDecided => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(matched, 1);
    let day = counters(&stores, "2025-11-24").await;
    assert_eq!(day.get("kind:rule"), Some(&1));
    assert_eq!(
        day.get(format!("rule:{}", rule["id"].as_str().unwrap()).as_str()),
        Some(&1)
    );
    // Once decided, deliveries queue nothing more.
    deliver(&app, &body).await;
    assert_eq!(queue.job_count(), 2);
}

fn sqs_event(messages: &[(&str, &str)]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|(id, body)| {
            let mut message = SqsMessage::default();
            message.message_id = Some((*id).to_owned());
            message.body = Some((*body).to_owned());
            message
        })
        .collect();
    event
}

async fn a_poison_message_fails_alone_in_its_batch(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = webhook_app(stores.contacts.clone());
    deliver(&app, &fixture("whatsapp_text_prefilled_tiktok.json")).await;
    let matcher = QueueWorker::new(
        stores.contacts.clone(),
        stores.rules.clone(),
        stores.jobs.clone(),
    );
    let good =
        json!({"type": "match", "instance_id": INSTANCE, "contact_id": "818012345678"}).to_string();
    let event = sqs_event(&[
        ("m-1", &good),
        ("m-poison", "{not json"),
        (
            "m-bad-id",
            r#"{"type": "match", "instance_id": "", "contact_id": "1"}"#,
        ),
        (
            "m-unknown",
            r#"{"type": "match", "instance_id": "1", "contact_id": "404"}"#,
        ),
    ]);
    let response = matcher::handle_sqs_event(&matcher, event).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["m-poison", "m-bad-id"]);
    let contact = contact(&app, INSTANCE, "818012345678").await.unwrap();
    assert!(
        contact.get("rules_checked_at").is_some(),
        "the good job in the same batch was applied"
    );
}

async fn an_unmatched_contact_attributed_later_leaves_the_unmatched_count(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    deliver(
        &engine.app,
        &whatsapp_message(
            INSTANCE,
            "15550077",
            "wamid.u1",
            1_763_976_000,
            "hello",
            None,
        ),
    )
    .await;
    decided_contact(&engine.app, "15550077").await;
    assert_eq!(
        counters(&stores, "2025-11-24").await.get("unmatched"),
        Some(&1)
    );
    let referral = ctwa_referral("ad-late");
    deliver(
        &engine.app,
        &whatsapp_message(
            INSTANCE,
            "15550077",
            "wamid.u2",
            1_763_976_100,
            "saw the ad",
            Some(referral),
        ),
    )
    .await;
    let day = counters(&stores, "2025-11-24").await;
    assert_eq!(day.get("unmatched"), Some(&0), "{day:?}");
    assert_eq!(day.get("kind:meta_ad"), Some(&1));
    assert_eq!(day.get("new_contacts"), Some(&1));
}

// ------------------------------------------------------------------------------ arrival order

/// The webhook with a recording queue and a matcher run by hand, so each step is seen.
struct Steps {
    stores: Stores,
    app: axum::Router,
    queue: std::sync::Arc<RecordingQueue>,
    matcher: QueueWorker,
}

impl Steps {
    async fn new(backend: Backend) -> Option<(Self, StoreGuard)> {
        let (stores, guard) = fresh_stores(backend).await?;
        create_rule(&rules_app(&stores), rule("TikTok", "tiktok ad", 1)).await;
        let queue = std::sync::Arc::new(RecordingQueue::default());
        let app = webhook_app_with_queue(stores.contacts.clone(), queue.clone());
        let matcher = QueueWorker::new(
            stores.contacts.clone(),
            stores.rules.clone(),
            stores.jobs.clone(),
        );
        Some((
            Self {
                stores,
                app,
                queue,
                matcher,
            },
            guard,
        ))
    }

    /// Runs the newest queued job, which must exist.
    async fn run_last_job(&self) -> MatchOutcome {
        let job = self.queue.match_jobs().pop().expect("a queued job");
        self.matcher
            .match_first_message(&job, Timestamp::now())
            .await
            .unwrap()
    }

    /// Every counter of the instance that is not zero, over all days, the rule id named.
    async fn counters(&self) -> Vec<(String, String, u64)> {
        let rules = self
            .stores
            .rules
            .list_rules(&InstanceId::parse(INSTANCE).unwrap())
            .await
            .unwrap();
        nonzero_counters(self.stores.contacts.as_ref(), INSTANCE)
            .await
            .into_iter()
            .map(|(day, name, n)| (day, name.replace(rules[0].id.as_str(), "the-rule"), n))
            .collect()
    }
}

fn counted(list: &[(&str, &str, u64)]) -> Vec<(String, String, u64)> {
    list.iter()
        .map(|(day, name, n)| (day.to_string(), name.to_string(), *n))
        .collect()
}

/// Day one and day two of the contact: 1970-01-01 and 1970-01-02 (UTC).
const EARLY: i64 = 1_000;
const LATE: i64 = 90_000;

async fn an_earlier_first_message_arriving_late_is_decided_again_by_the_rules(backend: Backend) {
    let Some((steps, _guard)) = Steps::new(backend).await else {
        return;
    };
    let later = whatsapp_message(INSTANCE, "15550031", "wamid.later", LATE, "hello", None);
    deliver(&steps.app, &later).await;
    assert_eq!(steps.run_last_job().await, MatchOutcome::Unmatched);
    assert_eq!(
        steps.counters().await,
        counted(&[
            ("1970-01-02", "new_contacts", 1),
            ("1970-01-02", "source:organic", 1),
            ("1970-01-02", "unmatched", 1)
        ])
    );

    // Meta's retry of an earlier message: it is the first message now, and the rules read it.
    let earlier = whatsapp_message(
        INSTANCE,
        "15550031",
        "wamid.earlier",
        EARLY,
        "Hi, I saw your TikTok ad",
        None,
    );
    deliver(&steps.app, &earlier).await;
    assert_eq!(
        steps.queue.match_jobs().len(),
        2,
        "the earlier message queued a job"
    );
    let waiting = contact(&steps.app, INSTANCE, "15550031").await.unwrap();
    assert_eq!(waiting["first_message"]["id"], "wamid.earlier");
    assert!(waiting.get("rules_checked_at").is_none(), "{waiting}");
    assert!(matches!(
        steps.run_last_job().await,
        MatchOutcome::Matched { .. }
    ));
    let decided = contact(&steps.app, INSTANCE, "15550031").await.unwrap();
    assert_eq!(decided["acquisition"]["kind"], "rule");
    assert_eq!(
        decided["acquisition"]["matched_text"],
        "Hi, I saw your TikTok ad"
    );
    // The contact and its counts moved to its new first day; nothing is left where it was.
    assert_eq!(
        steps.counters().await,
        counted(&[
            ("1970-01-01", "ad:video-a", 1),
            ("1970-01-01", "campaign:summer-2026", 1),
            ("1970-01-01", "kind:rule", 1),
            ("1970-01-01", "new_contacts", 1),
            ("1970-01-01", "platform:tiktok", 1),
            ("1970-01-01", "rule:the-rule", 1),
            ("1970-01-01", "source:ads", 1),
        ])
    );
    // The later message again (Meta retries it too) queues nothing and changes nothing.
    deliver(&steps.app, &later).await;
    assert_eq!(steps.queue.match_jobs().len(), 2);
    assert_eq!(
        contact(&steps.app, INSTANCE, "15550031").await.unwrap(),
        decided
    );
}

async fn a_rule_on_the_first_message_replaces_a_referral_from_a_later_message(backend: Backend) {
    let Some((steps, _guard)) = Steps::new(backend).await else {
        return;
    };
    for (contact_id, text) in [("15550041", "Hi, I saw your TikTok ad"), ("15550042", "hi")] {
        let later = whatsapp_message(
            INSTANCE,
            contact_id,
            &format!("wamid.{contact_id}.later"),
            LATE,
            "about the ad",
            Some(ctwa_referral("ad-later")),
        );
        deliver(&steps.app, &later).await;
        let earlier = whatsapp_message(
            INSTANCE,
            contact_id,
            &format!("wamid.{contact_id}.earlier"),
            EARLY,
            text,
            None,
        );
        deliver(&steps.app, &earlier).await;
        // The ad came after the first message: the rules decide whether that message was the
        // first touch.
        let waiting = contact(&steps.app, INSTANCE, contact_id).await.unwrap();
        assert_eq!(waiting["acquisition"]["ad_id"], "ad-later", "{waiting}");
        steps.run_last_job().await;
    }
    let matched = contact(&steps.app, INSTANCE, "15550041").await.unwrap();
    assert_eq!(matched["acquisition"]["kind"], "rule", "{matched}");
    assert_eq!(
        matched["touches"][0]["ad_id"], "ad-later",
        "the ad stays a touch"
    );
    let unmatched = contact(&steps.app, INSTANCE, "15550042").await.unwrap();
    assert_eq!(unmatched["acquisition"]["ad_id"], "ad-later", "{unmatched}");
    assert!(unmatched.get("rules_checked_at").is_some());
    assert_eq!(
        steps.counters().await,
        counted(&[
            ("1970-01-01", "ad:video-a", 1),
            ("1970-01-01", "campaign:summer-2026", 1),
            ("1970-01-01", "kind:meta_ad", 1),
            ("1970-01-01", "kind:rule", 1),
            ("1970-01-01", "new_contacts", 2),
            ("1970-01-01", "platform:facebook", 1),
            ("1970-01-01", "platform:tiktok", 1),
            ("1970-01-01", "rule:the-rule", 1),
            ("1970-01-01", "source:ads", 2),
        ])
    );
}
