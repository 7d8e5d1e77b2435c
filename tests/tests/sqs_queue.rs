//! The queued path on AWS's own parts: the webhook sends match jobs to SQS (moto's server), the
//! matcher consumes them as Lambda would, with partial batch failures and a redrive policy that
//! moves a poison message to the dead-letter queue. Contacts live in DynamoDB Local. Clicks the
//! redirect could not record travel the same way.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::QueueAttributeName;
use http::StatusCode;
use integration_tests::*;
use serde_json::json;
use shared::matching::QueueWorker;
use shared::queue::sqs::SqsQueue;
use shared::queue::{JobQueue, QueueError, QueueJob};
use shared::store::{FaultInjectingStore, FaultPlan};
use std::sync::Arc;

/// A queue and its dead-letter queue, as the template declares them (fewer receives, to keep
/// the test short).
async fn queues(client: &aws_sdk_sqs::Client, max_receives: u32) -> (String, String) {
    let name = format!("match-{}", ulid::Ulid::new()).to_lowercase();
    let dlq_url = client
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    let redrive =
        json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives.to_string()})
            .to_string();
    let url = client
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    (url, dlq_url)
}

/// One Lambda-style poll: receive a batch, run it, delete what succeeded. Failed messages stay
/// and come back (visibility timeout 0), as SQS redelivers them.
async fn poll_once(client: &aws_sdk_sqs::Client, url: &str, matcher: &QueueWorker) -> usize {
    let received = client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    let mut event = SqsEvent::default();
    event.records = received
        .iter()
        .map(|message| {
            let mut record = SqsMessage::default();
            record.message_id = message.message_id.clone();
            record.body = message.body.clone();
            record.receipt_handle = message.receipt_handle.clone();
            record
        })
        .collect();
    let response = matcher::handle_sqs_event(matcher, event).await;
    let failed: Vec<String> = response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    for message in &received {
        if !failed.contains(message.message_id.as_ref().unwrap()) {
            client
                .delete_message()
                .queue_url(url)
                .receipt_handle(message.receipt_handle.clone().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    received.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_travel_through_sqs_and_a_poison_message_ends_in_the_dead_letter_queue() {
    let Some(client) = sqs_client().await else {
        return;
    };
    let Some((stores, _guard)) = fresh_stores(Backend::Dynamo).await else {
        return;
    };
    let (url, dlq_url) = queues(&client, 2).await;
    let queue = Arc::new(SqsQueue::new(client.clone(), url.clone()));
    let app = webhook_app_with_queue(stores.contacts.clone(), queue);
    let rules_app = rules_app(&stores);
    let rule = json!({"name": "TikTok", "platform": "tiktok", "match": {"kind": "contains", "pattern": "tiktok ad"}});
    let (status, _) = call(
        &rules_app,
        admin_request("POST", "/instances/106540352242922/rules", Some(rule)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    for body in [
        fixture("whatsapp_text_prefilled_tiktok.json"),
        whatsapp_message(
            "106540352242922",
            "15550100",
            "wamid.organic",
            1_763_976_000,
            "hello",
            None,
        ),
        fixture("whatsapp_text_ctwa_referral.json"),
    ] {
        let (status, report) = call(&app, signed_delivery(&body)).await;
        assert_eq!(status, StatusCode::OK, "{report}");
    }
    client
        .send_message()
        .queue_url(&url)
        .message_body("{poison")
        .send()
        .await
        .unwrap();

    let matcher = QueueWorker::new(
        stores.contacts.clone(),
        stores.rules.clone(),
        stores.jobs.clone(),
    );
    let mut polls = 0;
    while poll_once(&client, &url, &matcher).await > 0 {
        polls += 1;
        assert!(polls < 20, "the queue does not drain");
    }

    let tiktok = contact(&app, "106540352242922", "818012345678")
        .await
        .unwrap();
    assert_eq!(tiktok["acquisition"]["kind"], "rule");
    let organic = contact(&app, "106540352242922", "15550100").await.unwrap();
    assert_eq!(organic["acquisition"], serde_json::Value::Null);
    assert!(organic.get("rules_checked_at").is_some());
    let meta = contact(&app, "106540352242922", "16505551234")
        .await
        .unwrap();
    assert_eq!(meta["acquisition"]["kind"], "meta_ad");

    let dead = client
        .receive_message()
        .queue_url(&dlq_url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let bodies: Vec<String> = dead
        .messages
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.body)
        .collect();
    assert_eq!(
        bodies,
        ["{poison"],
        "only the poison message is dead-lettered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_enqueue_answers_5xx_and_the_retry_queues_the_job() {
    let Some(client) = sqs_client().await else {
        return;
    };
    let Some((stores, _guard)) = fresh_stores(Backend::Dynamo).await else {
        return;
    };
    let (url, _) = queues(&client, 2).await;
    let missing = SqsQueue::new(client.clone(), format!("{url}-does-not-exist"));
    let broken = webhook_app_with_queue(stores.contacts.clone(), Arc::new(missing));
    let body = fixture("whatsapp_text_prefilled_tiktok.json");
    let (status, error) = call(&broken, signed_delivery(&body)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{error}");

    // Meta retries; the contact was stored, the event is a duplicate, and the job is queued now.
    let working = webhook_app_with_queue(
        stores.contacts.clone(),
        Arc::new(SqsQueue::new(client.clone(), url.clone())),
    );
    let (status, report) = call(&working, signed_delivery(&body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["duplicates"], 1);
    let received = client
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let bodies: Vec<serde_json::Value> = received
        .messages
        .unwrap_or_default()
        .iter()
        .map(|m| serde_json::from_str(m.body.as_ref().unwrap()).unwrap())
        .collect();
    assert_eq!(
        bodies,
        [json!({"type": "match", "instance_id": "106540352242922", "contact_id": "818012345678"})]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_run_travels_as_pages_through_sqs() {
    let Some(client) = sqs_client().await else {
        return;
    };
    let Some((stores, _guard)) = fresh_stores(Backend::Dynamo).await else {
        return;
    };
    let (url, _) = queues(&client, 3).await;
    let queue = Arc::new(SqsQueue::new(client.clone(), url.clone()));
    // Contacts arrive before any rule: their live jobs are not run, they stay unattributed.
    let webhook = webhook_app(stores.contacts.clone());
    let now = chrono::Utc::now().timestamp();
    for n in 0..7 {
        let text = if n % 2 == 0 {
            "saw it on tiktok"
        } else {
            "hello"
        };
        let body = whatsapp_message(
            "106540352242922",
            &format!("1555020{n}"),
            &format!("wamid.bf{n}"),
            now - 60 * n,
            text,
            None,
        );
        assert_eq!(
            call(&webhook, signed_delivery(&body)).await.0,
            StatusCode::OK
        );
    }
    let rules_app = rules_app_with_queue(&stores, queue.clone());
    let rule = json!({"name": "TikTok", "platform": "tiktok", "match": {"kind": "contains", "pattern": "tiktok"}});
    let (status, _) = call(
        &rules_app,
        admin_request("POST", "/instances/106540352242922/rules", Some(rule)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, started) = call(
        &rules_app,
        admin_request(
            "POST",
            "/instances/106540352242922/backfill",
            Some(json!({"days": 1, "dry_run": false})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");

    // Pages of two contacts: four pages, each queued on SQS by the one before.
    let matcher = QueueWorker::new(
        stores.contacts.clone(),
        stores.rules.clone(),
        stores.jobs.clone(),
    )
    .with_page_size(2);
    matcher.attach_queue(queue);
    let mut polls = 0;
    while poll_once(&client, &url, &matcher).await > 0 {
        polls += 1;
        assert!(polls < 20, "the queue does not drain");
    }
    let job_path = format!(
        "/instances/106540352242922/backfill/{}",
        started["job_id"].as_str().unwrap()
    );
    let (_, job) = call(&rules_app, admin_request("GET", &job_path, None)).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(
        (job["scanned"].as_u64(), job["updated"].as_u64()),
        (Some(7), Some(4))
    );
    assert!(polls >= 4, "{polls} polls for four pages");
}

/// SQS delivers at least once: this queue sends every job twice.
struct TwiceQueue(SqsQueue);

#[async_trait::async_trait]
impl JobQueue for TwiceQueue {
    async fn enqueue(&self, job: &QueueJob) -> Result<(), QueueError> {
        self.0.enqueue(job).await?;
        self.0.enqueue(job).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicks_the_redirect_could_not_record_travel_through_sqs_and_count_once() {
    let Some(client) = sqs_client().await else {
        return;
    };
    let Some((stores, _guard)) = fresh_stores(Backend::Dynamo).await else {
        return;
    };
    let (url, _) = queues(&client, 3).await;
    let admin = postback_app(&stores);
    let offer = json!({"offer_id": "o", "name": "O", "destination_url": "https://shop.example/o?aff={click_id}"});
    assert_eq!(
        call(&admin, admin_request("POST", "/offers", Some(offer)))
            .await
            .0,
        StatusCode::CREATED
    );
    let send = json!({"instance_id": "106540352242922", "contact_id": "c1", "message_id": "m1",
                      "campaign": "spring", "creative": "t1", "offer_id": "o"});
    let (status, sent) = call(&admin, admin_request("POST", "/sends", Some(send))).await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let code = sent["code"].as_str().unwrap();

    let plan = FaultPlan::ratio(0.3, 0x5e5_u64);
    let clicks = shared::http::serve_json_errors(clicks::router(clicks::ClicksState::new(
        &secrets(),
        Arc::new(FaultInjectingStore::new(
            stores.revenue.clone(),
            plan.clone(),
        )),
        Arc::new(TwiceQueue(SqsQueue::new(client.clone(), url.clone()))),
    )));
    let mut redirected = Vec::new();
    for _ in 0..30 {
        let request = http::Request::get(format!("/c/{code}"))
            .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64)")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = tower::ServiceExt::oneshot(clicks.clone(), request)
            .await
            .unwrap();
        match response.status() {
            StatusCode::FOUND => {
                let location = response.headers()["location"].to_str().unwrap();
                redirected.push(location.rsplit_once("aff=").unwrap().1.to_owned());
            }
            StatusCode::SERVICE_UNAVAILABLE => {}
            other => panic!("{other}"),
        }
    }
    plan.set_ratio(0.0);

    let matcher = QueueWorker::new(
        stores.contacts.clone(),
        stores.rules.clone(),
        stores.jobs.clone(),
    )
    .with_revenue(stores.revenue.clone());
    let (mut polls, mut delivered) = (0, 0);
    loop {
        let received = poll_once(&client, &url, &matcher).await;
        if received == 0 {
            break;
        }
        delivered += received;
        polls += 1;
        assert!(polls < 20, "the queue does not drain");
    }
    assert!(
        delivered >= 2,
        "no click write met a fault: the test proves nothing"
    );
    let (_, journey) = call(
        &admin,
        admin_request(
            "GET",
            "/instances/106540352242922/contacts/c1/journey",
            None,
        ),
    )
    .await;
    let mut stored: Vec<String> = journey["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["type"] == "click")
        .map(|event| event["click_id"].as_str().unwrap().to_owned())
        .collect();
    stored.sort();
    redirected.sort();
    assert_eq!(stored, redirected, "every redirected click, once");
    let day = chrono::Utc::now().date_naive();
    let (status, report) = call(
        &admin,
        admin_request(
            "GET",
            &format!(
                "/reports/revenue?group_by=message&since={}&until={}",
                day.pred_opt().unwrap(),
                day.succ_opt().unwrap()
            ),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report["rows"][0]["clicks"],
        redirected.len(),
        "counted once each: {report}"
    );
    assert!(
        delivered / 2 < redirected.len(),
        "some clicks were recorded directly"
    );
}
