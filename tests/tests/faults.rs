//! Faults lose nothing and double nothing. A store that fails a share of its calls
//! (`FaultInjectingStore`, what `STORE_FAULT_RATIO` turns on in the local server) stands under
//! the webhook, the matcher and the postback function; every call that met a fault must answer
//! 5xx (or fail its queue message), and once the failed ones are retried — as Meta, SQS or the
//! affiliate platform would — the stored result must equal a fault-free run of the same input.
//! Jobs that fail every time end in the dead-letter queue without holding up their batch, in
//! process and on moto's SQS with a redrive policy.

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use integration_tests::*;
use serde_json::{Value, json};
use shared::contact::Contact;
use shared::contact::store::ContactQueries;
use shared::contact::store::{ContactPage, ContactStore, ContactWindow, CounterDays};
use shared::ids::{ContactId, InstanceId};
use shared::matching::QueueWorker;
use shared::queue::InProcessQueue;
use shared::queue::{JobQueue, MatchJob, QueueError, QueueJob};
use shared::revenue::Click;
use shared::revenue::store::RevenueStore;
use shared::store::{
    CommitOutcome, DedupeClaim, FaultInjectingStore, FaultMode, FaultPlan, StoreError,
};
use shared::time::Timestamp;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

on_every_store!(
    webhook_deliveries_that_met_faults_are_replayed_to_the_same_state,
    webhook_deliveries_whose_answers_were_lost_are_replayed_to_the_same_state,
    match_jobs_that_met_faults_are_retried_to_the_same_state,
    match_jobs_whose_answers_were_lost_are_retried_to_the_same_state,
    backfill_pages_that_met_faults_are_retried_to_the_same_state,
    backfill_pages_whose_answers_were_lost_are_retried_to_the_same_state,
    postbacks_that_met_faults_are_replayed_to_the_same_state,
    postbacks_whose_answers_were_lost_are_replayed_to_the_same_state,
    clicks_whose_answers_were_lost_are_recorded_once,
    a_job_failing_every_time_is_dead_lettered_in_process_and_the_rest_succeed,
);

const INSTANCE: &str = "106540352242922";
const OTHER_INSTANCE: &str = "200300400500";
/// Share of store calls that fail while faults are on.
const FAULT_RATIO: f64 = 0.25;
/// Replays before a test gives up (each round resends every delivery still failing).
const MAX_ROUNDS: usize = 200;

// ------------------------------------------------------------------------------ deliveries

/// 2025-11-23 00:00 UTC: deliveries span this day and the next.
const DAY_ONE: i64 = 1_763_856_000;

/// WhatsApp contacts of both instances: Meta ads, TikTok pre-filled texts (a rule matches) and
/// organic chats, two or three messages each, some delivered in batches, some out of order
/// (an earlier message after a later one, moving the contact's first-seen day), some twice.
/// Each contact carries at most one referral, so its final state does not depend on the order
/// in which retries happen to land.
fn deliveries() -> (Vec<Vec<u8>>, Vec<(&'static str, String)>) {
    let mut deliveries = Vec::new();
    let mut contacts = Vec::new();
    for n in 0..12_i64 {
        let instance = if n % 4 == 3 { OTHER_INSTANCE } else { INSTANCE };
        let contact = format!("1555000{n:04}");
        contacts.push((instance, contact.clone()));
        let referral = (n % 3 == 0).then(|| ctwa_referral(&format!("ad-{n}")));
        let first_text = match n % 3 {
            0 => "Hi, about the ad".to_owned(),
            1 => format!("Hi, I saw your TikTok ad ({n})"),
            _ => "hello".to_owned(),
        };
        let late = DAY_ONE + 86_400 + 3_600 + n * 60;
        let early = DAY_ONE + 7_200 + n * 60;
        let first = whatsapp_message(
            instance,
            &contact,
            &format!("wamid.{n}.first"),
            early,
            &first_text,
            referral,
        );
        let second = whatsapp_message(
            instance,
            &contact,
            &format!("wamid.{n}.second"),
            late,
            "and another thing",
            None,
        );
        if n % 2 == 0 {
            deliveries.push(first);
            deliveries.push(second);
        } else {
            // Out of order: the contact is first seen on day two, then moves to day one.
            deliveries.push(second);
            deliveries.push(first.clone());
            // Meta sends some notifications twice.
            deliveries.push(first);
        }
    }
    // One delivery with several contacts' messages: a fault in its middle leaves the first
    // ones applied, and the replay sees them as duplicates.
    let batch: Vec<Value> = (0..4)
        .map(|n| {
            json!({"from": format!("1555100{n:04}"), "id": format!("wamid.batch.{n}"),
                   "timestamp": (DAY_ONE + 40_000 + n).to_string(), "type": "text",
                   "text": {"body": if n % 2 == 0 { "tiktok ad" } else { "hey" }}})
        })
        .collect();
    for n in 0..4 {
        contacts.push((INSTANCE, format!("1555100{n:04}")));
    }
    deliveries.push(
        serde_json::to_vec(&json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "waba", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550000000", "phone_number_id": INSTANCE},
                "contacts": (0..4).map(|n| json!({"profile": {"name": format!("Batch {n}")},
                                                   "wa_id": format!("1555100{n:04}")}))
                                  .collect::<Vec<_>>(),
                "messages": batch
            }}]}]
        }))
        .unwrap(),
    );
    // The fixtures' contacts, Messenger and Instagram included, and deliveries that hold no
    // inbound message at all.
    for name in [
        "whatsapp_text_ctwa_referral.json",
        "whatsapp_text_prefilled_tiktok.json",
        "whatsapp_audio_ctwa_referral_status_ad.json",
        "whatsapp_statuses.json",
    ] {
        deliveries.push(fixture(name));
    }
    contacts.push((INSTANCE, "16505551234".to_owned()));
    contacts.push((INSTANCE, "818012345678".to_owned()));
    (deliveries, contacts)
}

/// A match queue that fails every `period`-th enqueue (the webhook must then answer 5xx).
struct FlakyQueue {
    inner: RecordingQueue,
    calls: AtomicUsize,
    period: usize,
    failures: AtomicUsize,
}

impl FlakyQueue {
    fn new(period: usize) -> Self {
        Self {
            inner: RecordingQueue::default(),
            calls: AtomicUsize::new(0),
            period,
            failures: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl JobQueue for FlakyQueue {
    async fn enqueue(&self, job: &QueueJob) -> Result<(), QueueError> {
        if self.period > 0 && (self.calls.fetch_add(1, Ordering::SeqCst) + 1) % self.period == 0 {
            self.failures.fetch_add(1, Ordering::SeqCst);
            return Err(QueueError("injected queue fault".to_owned()));
        }
        self.inner.enqueue(job).await
    }
}

/// Sends every delivery once, in order, then replays those that failed until each has been
/// answered 200, as Meta does. Every failure must be a 5xx. Answers how many calls failed.
async fn deliver_until_accepted(app: &Router, deliveries: &[Vec<u8>]) -> usize {
    let mut pending: Vec<usize> = (0..deliveries.len()).collect();
    let mut failures = 0;
    for _ in 0..MAX_ROUNDS {
        let mut failed = Vec::new();
        for index in pending {
            let (status, body) = call(app, signed_delivery(&deliveries[index])).await;
            if status != StatusCode::OK {
                assert!(
                    status.is_server_error(),
                    "delivery {index} met a fault and got {status} {body}, not a 5xx"
                );
                assert_eq!(body["error"]["code"], "unavailable", "{body}");
                failed.push(index);
                failures += 1;
            }
        }
        if failed.is_empty() {
            return failures;
        }
        pending = failed;
    }
    panic!("deliveries {pending:?} still fail after {MAX_ROUNDS} rounds");
}

fn sqs_event(messages: &[(String, String)]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|(id, body)| {
            let mut message = SqsMessage::default();
            message.message_id = Some(id.clone());
            message.body = Some(body.clone());
            message
        })
        .collect();
    event
}

/// Runs match jobs as the SQS-triggered Lambda would: batches of up to 10, and whatever a
/// batch reports as failed comes back in a later batch. Answers how many runs failed.
async fn run_jobs_until_done(matcher: &QueueWorker, jobs: &[MatchJob]) -> usize {
    let mut pending: Vec<(String, String)> = jobs
        .iter()
        .enumerate()
        .map(|(n, job)| {
            (
                format!("m-{n}"),
                serde_json::to_string(&QueueJob::Match(job.clone())).unwrap(),
            )
        })
        .collect();
    let mut failures = 0;
    for _ in 0..MAX_ROUNDS {
        if pending.is_empty() {
            return failures;
        }
        let mut next = Vec::new();
        for batch in pending.chunks(10) {
            let response = matcher::handle_sqs_event(matcher, sqs_event(batch)).await;
            for failure in response.batch_item_failures {
                failures += 1;
                next.push(
                    batch
                        .iter()
                        .find(|(id, _)| *id == failure.item_identifier)
                        .expect("a failure names a message of its batch")
                        .clone(),
                );
            }
        }
        pending = next;
    }
    panic!(
        "{} jobs still fail after {MAX_ROUNDS} rounds",
        pending.len()
    );
}

/// Every contact of the run and every daily counter of both instances.
async fn final_state(
    stores: &Stores,
    contacts: &[(&str, String)],
) -> (Vec<Value>, Vec<Vec<(String, String, u64)>>) {
    let reader = webhook_app(stores.contacts.clone());
    let mut shown = Vec::new();
    for (instance, contact_id) in contacts {
        let contact = contact(&reader, instance, contact_id)
            .await
            .unwrap_or_else(|| panic!("contact {contact_id} was lost"));
        shown.push(comparable_contact(contact));
    }
    // A counter moved off a day reads 0 there, the same as none: which deliveries met a fault
    // (and so came again later, after others) decides where zeros are left, not what counts.
    let mut counters = Vec::new();
    for instance in [INSTANCE, OTHER_INSTANCE] {
        counters.push(nonzero_counters(stores.contacts.as_ref(), instance).await);
    }
    (shown, counters)
}

async fn create_tiktok_rule(stores: &Stores, instance: &str) {
    let rule = json!({"name": "TikTok", "platform": "tiktok", "campaign": "autumn",
                      "match": {"kind": "contains", "pattern": "tiktok ad"}});
    let (status, body) = call(
        &rules_app(stores),
        admin_request("POST", &format!("/instances/{instance}/rules"), Some(rule)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// The store under test, seen through a fault injector on its contact and revenue sides (the
/// ones the webhook, the matcher and the postback function write).
fn faulty(stores: &Stores, plan: &Arc<FaultPlan>) -> Stores {
    Stores {
        contacts: Arc::new(FaultInjectingStore::new(
            stores.contacts.clone(),
            plan.clone(),
        )),
        revenue: Arc::new(FaultInjectingStore::new(
            stores.revenue.clone(),
            plan.clone(),
        )),
        ..stores.clone()
    }
}

/// The final state as text, rule ids replaced by a name (rule ids differ between runs).
async fn normalized_state(stores: &Stores, contacts: &[(&str, String)]) -> String {
    let (shown, counters) = final_state(stores, contacts).await;
    let mut text =
        serde_json::to_string_pretty(&json!({"contacts": shown, "counters": counters})).unwrap();
    for instance in [INSTANCE, OTHER_INSTANCE] {
        let rules = stores
            .rules
            .list_rules(&InstanceId::parse(instance).unwrap())
            .await
            .unwrap();
        for rule in rules {
            text = text.replace(rule.id.as_str(), &format!("rule-of-{instance}"));
        }
    }
    text
}

/// The reference: the same deliveries and jobs without a fault, on a store of its own.
async fn fault_free_run(backend: Backend) -> Option<(String, StoreGuard)> {
    let (stores, guard) = fresh_stores(backend).await?;
    create_tiktok_rule(&stores, INSTANCE).await;
    create_tiktok_rule(&stores, OTHER_INSTANCE).await;
    let (deliveries, contacts) = deliveries();
    let queue = Arc::new(RecordingQueue::default());
    let app = webhook_app_with_queue(stores.contacts.clone(), queue.clone());
    assert_eq!(deliver_until_accepted(&app, &deliveries).await, 0);
    let matcher = QueueWorker::new(
        stores.contacts.clone(),
        stores.rules.clone(),
        stores.jobs.clone(),
    );
    assert_eq!(run_jobs_until_done(&matcher, &queue.match_jobs()).await, 0);
    Some((normalized_state(&stores, &contacts).await, guard))
}

async fn webhook_deliveries_that_met_faults_are_replayed_to_the_same_state(backend: Backend) {
    replay_deliveries(backend, FaultMode::Refused).await;
}

/// The dedupe claim makes Meta's retry of a delivery whose commit went through a duplicate;
/// the retry must still queue the match job the lost answer never queued.
async fn webhook_deliveries_whose_answers_were_lost_are_replayed_to_the_same_state(
    backend: Backend,
) {
    replay_deliveries(backend, FaultMode::AnswerLost).await;
}

async fn replay_deliveries(backend: Backend, mode: FaultMode) {
    let Some((reference, _reference_guard)) = fault_free_run(backend).await else {
        return;
    };
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    create_tiktok_rule(&stores, INSTANCE).await;
    create_tiktok_rule(&stores, OTHER_INSTANCE).await;
    let (deliveries, contacts) = deliveries();

    let plan = FaultPlan::ratio(FAULT_RATIO, 0x00fa_u64);
    plan.set_mode(mode);
    let queue = Arc::new(FlakyQueue::new(7));
    let app = webhook_app_with_queue(faulty(&stores, &plan).contacts, queue.clone());
    let failures = deliver_until_accepted(&app, &deliveries).await;
    assert!(
        failures > 0,
        "no delivery met a fault: the test proves nothing"
    );
    assert!(
        queue.failures.load(Ordering::SeqCst) > 0,
        "the queue never failed"
    );
    // The jobs run fault-free here (their faults are the next test's), so any difference
    // comes from the deliveries. A job lost with a failed enqueue would leave its contact
    // undecided.
    plan.set_ratio(0.0);
    let matcher = QueueWorker::new(
        stores.contacts.clone(),
        stores.rules.clone(),
        stores.jobs.clone(),
    );
    run_jobs_until_done(&matcher, &queue.inner.match_jobs()).await;
    assert_eq!(
        normalized_state(&stores, &contacts).await,
        reference,
        "the deliveries that met faults ({mode:?}) ended differently from a fault-free run ({failures} failed calls)"
    );
}

async fn match_jobs_that_met_faults_are_retried_to_the_same_state(backend: Backend) {
    retry_jobs(backend, FaultMode::Refused).await;
}

/// A job whose write went through but failed to answer is retried by SQS: it must find the
/// contact decided and count nothing again.
async fn match_jobs_whose_answers_were_lost_are_retried_to_the_same_state(backend: Backend) {
    retry_jobs(backend, FaultMode::AnswerLost).await;
}

async fn retry_jobs(backend: Backend, mode: FaultMode) {
    let Some((reference, _reference_guard)) = fault_free_run(backend).await else {
        return;
    };
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    create_tiktok_rule(&stores, INSTANCE).await;
    create_tiktok_rule(&stores, OTHER_INSTANCE).await;
    let (deliveries, contacts) = deliveries();
    let queue = Arc::new(RecordingQueue::default());
    let app = webhook_app_with_queue(stores.contacts.clone(), queue.clone());
    assert_eq!(deliver_until_accepted(&app, &deliveries).await, 0);

    let plan = FaultPlan::ratio(FAULT_RATIO, 0x0b5e_u64);
    plan.set_mode(mode);
    let matcher = QueueWorker::new(
        faulty(&stores, &plan).contacts,
        stores.rules.clone(),
        stores.jobs.clone(),
    );
    let jobs = queue.match_jobs();
    let failures = run_jobs_until_done(&matcher, &jobs).await;
    assert!(failures > 0, "no job met a fault: the test proves nothing");
    let state = normalized_state(&stores, &contacts).await;
    assert_eq!(
        state, reference,
        "jobs that met faults ({mode:?}) ended differently from a fault-free run ({failures} failed runs)"
    );
    // Delivered once more after success (SQS delivers at least once): nothing changes.
    plan.set_ratio(0.0);
    run_jobs_until_done(&matcher, &jobs).await;
    assert_eq!(normalized_state(&stores, &contacts).await, state);
}

// ------------------------------------------------------------------------------ backfill

/// Contacts per backfill page, so that a run takes several pages.
const BACKFILL_PAGE: usize = 3;

/// Contacts of the last hours before `now` (unix seconds), written while no rule exists (so the pre-filled ones stay unmatched until
/// the backfill): pre-filled TikTok texts, organic chats and Meta ads.
async fn unmatched_contacts(stores: &Stores, now: i64) -> Vec<(&'static str, String)> {
    let queue = Arc::new(RecordingQueue::default());
    let app = webhook_app_with_queue(stores.contacts.clone(), queue.clone());
    let mut contacts = Vec::new();
    for n in 0..11_i64 {
        let contact = format!("1555400{n:04}");
        let text = if n % 3 == 1 {
            "hello"
        } else {
            "Hi, I saw your TikTok ad"
        };
        let referral = (n % 4 == 3).then(|| ctwa_referral(&format!("ad-{n}")));
        let body = whatsapp_message(
            INSTANCE,
            &contact,
            &format!("wamid.backfill.{n}"),
            now - 3_600 - n * 60,
            text,
            referral,
        );
        assert_eq!(deliver_until_accepted(&app, &[body]).await, 0);
        contacts.push((INSTANCE, contact));
    }
    let matcher = QueueWorker::new(
        stores.contacts.clone(),
        stores.rules.clone(),
        stores.jobs.clone(),
    );
    assert_eq!(run_jobs_until_done(&matcher, &queue.match_jobs()).await, 0);
    contacts
}

/// Runs every queued job (a backfill page queues the next) until each has succeeded, as SQS
/// redelivers what failed. Answers how many runs failed.
async fn run_queue_until_empty(matcher: &QueueWorker, queue: &RecordingQueue) -> usize {
    let (mut done, mut failures) = (0, 0);
    for _ in 0..MAX_ROUNDS {
        let jobs = queue.jobs.lock().unwrap().clone();
        if done == jobs.len() {
            return failures;
        }
        for (n, job) in jobs.iter().enumerate().skip(done) {
            let message = (format!("q-{n}"), serde_json::to_string(job).unwrap());
            let mut runs = 0;
            while !matcher
                .handle_batch(std::slice::from_ref(&message), Timestamp::now())
                .await
                .is_empty()
            {
                failures += 1;
                runs += 1;
                assert!(runs < MAX_ROUNDS, "job {n} keeps failing");
            }
        }
        done = jobs.len();
    }
    panic!("the queue never emptied");
}

/// A backfill run over `unmatched_contacts`, its pages run by a matcher whose contacts and
/// jobs go through a fault injector in `mode` (`None`: no fault). Answers the final state and
/// the job as the admin API shows it, the job id and clock fields replaced, and how many runs
/// failed.
async fn backfill_run(
    backend: Backend,
    now: i64,
    mode: Option<FaultMode>,
) -> Option<(String, Value, usize, StoreGuard)> {
    let (stores, guard) = fresh_stores(backend).await?;
    let contacts = unmatched_contacts(&stores, now).await;
    create_tiktok_rule(&stores, INSTANCE).await;
    let queue = Arc::new(RecordingQueue::default());
    let rules = rules_app_with_queue(&stores, queue.clone());
    let (status, started) = call(
        &rules,
        admin_request(
            "POST",
            &format!("/instances/{INSTANCE}/backfill"),
            Some(json!({"days": 1, "dry_run": false})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let job_id = started["job_id"].as_str().unwrap().to_owned();

    let plan = FaultPlan::ratio(0.0, 0x0bac_u64);
    let faulty_jobs = Arc::new(FaultInjectingStore::new(stores.jobs.clone(), plan.clone()));
    let matcher = QueueWorker::new(
        faulty(&stores, &plan).contacts,
        stores.rules.clone(),
        faulty_jobs,
    )
    .with_page_size(BACKFILL_PAGE);
    matcher.attach_queue(queue.clone());
    if let Some(mode) = mode {
        plan.set_mode(mode);
        plan.set_ratio(FAULT_RATIO);
    }
    let failures = run_queue_until_empty(&matcher, &queue).await;
    plan.set_ratio(0.0);

    let (status, mut job) = call(
        &rules,
        admin_get(&format!("/instances/{INSTANCE}/backfill/{job_id}")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{job}");
    for clock in [
        "job_id",
        "created_at",
        "started_at",
        "finished_at",
        "since",
        "until",
    ] {
        job.as_object_mut().unwrap().remove(clock);
    }
    let state = normalized_state(&stores, &contacts)
        .await
        .replace(&job_id, "the-job");
    Some((state, job, failures, guard))
}

async fn backfill_pages_that_met_faults_are_retried_to_the_same_state(backend: Backend) {
    backfill_with_faults(backend, FaultMode::Refused).await;
}

/// A page whose contact writes (or job save) went through but failed to answer is redone by
/// the queue: the contacts it attributed stay its own, and nothing is counted twice.
async fn backfill_pages_whose_answers_were_lost_are_retried_to_the_same_state(backend: Backend) {
    backfill_with_faults(backend, FaultMode::AnswerLost).await;
}

async fn backfill_with_faults(backend: Backend, mode: FaultMode) {
    let now = Timestamp::now().unix_seconds();
    let Some((reference, reference_job, failures, _reference_guard)) =
        backfill_run(backend, now, None).await
    else {
        return;
    };
    assert_eq!(failures, 0);
    assert_eq!(reference_job["status"], "done", "{reference_job}");
    assert!(
        reference_job["updated"].as_u64().unwrap() >= 5,
        "the backfill changes too little to prove much: {reference_job}"
    );
    let Some((state, job, failures, _guard)) = backfill_run(backend, now, Some(mode)).await else {
        return;
    };
    assert!(failures > 0, "no page met a fault: the test proves nothing");
    assert_eq!(
        job, reference_job,
        "the job's record differs ({mode:?}, {failures} failed runs)"
    );
    assert_eq!(
        state, reference,
        "pages that met faults ({mode:?}) ended differently from a fault-free run ({failures} failed runs)"
    );
}

// ------------------------------------------------------------------------------ postbacks

const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36";

fn revenue_app(stores: &Stores) -> Router {
    shared::http::serve_json_errors(
        clicks::router(clicks::ClicksState::new(
            &secrets(),
            stores.revenue.clone(),
            Arc::new(RecordingQueue::default()),
        ))
        .merge(postback_router(stores.revenue.clone()))
        .merge(revenue_router(
            stores.revenue.clone(),
            stores.contacts.clone(),
        )),
    )
}

/// What a run made that the next run makes differently (ids, codes): replaced by their role.
#[derive(Default)]
struct Names(Vec<(String, String)>);

impl Names {
    fn add(&mut self, made: &str, role: String) {
        self.0.push((made.to_owned(), role));
    }

    /// What was made for `role`.
    fn made(&self, role: &str) -> &str {
        let (made, _) = self
            .0
            .iter()
            .find(|(_, named)| named == role)
            .unwrap_or_else(|| panic!("nothing was made for {role}"));
        made
    }

    fn apply(&self, value: &Value) -> Value {
        let mut text = serde_json::to_string(value).unwrap();
        for (made, role) in &self.0 {
            text = text.replace(made, role);
        }
        let mut value: Value = serde_json::from_str(&text).unwrap();
        strip_clock(&mut value);
        value
    }
}

/// Drops the times the clock decides (when a click or a postback arrived).
fn strip_clock(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("clicked_at");
            map.remove("received_at");
            map.remove("created_at");
            map.remove("updated_at");
            map.values_mut().for_each(strip_clock);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_clock),
        _ => {}
    }
}

/// Offers, sends and clicks, fault-free: answers the names of what was made and the click
/// ids, two per contact, the first click of each contact first.
async fn revenue_setup(app: &Router, base: Timestamp) -> (Names, Vec<String>) {
    let mut names = Names::default();
    for (offer, window) in [("shoes", 30), ("bags", 7)] {
        let (status, body) = call(
            app,
            admin_request(
                "POST",
                "/offers",
                Some(
                    json!({"offer_id": offer, "name": offer, "click_window_days": window,
                    "destination_url": format!("https://shop.example/{offer}?aff={{click_id}}")}),
                ),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let mut clicks = Vec::new();
    for n in 0..6 {
        let contact = format!("1555200{n:04}");
        let offer = if n % 3 == 2 { "bags" } else { "shoes" };
        let (status, send) = call(
            app,
            admin_request(
                "POST",
                "/sends",
                Some(json!({"instance_id": INSTANCE, "contact_id": contact,
                    "message_id": format!("wamid.send.{n}"), "campaign": format!("camp-{}", n % 2),
                    "creative": format!("tpl-{}", n % 3), "offer_id": offer,
                    "sent_at": base.plus_seconds(-86_400).to_string()})),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{send}");
        let code = send["code"].as_str().unwrap().to_owned();
        names.add(send["send_id"].as_str().unwrap(), format!("send-{n}"));
        names.add(&code, format!("code-{n}"));
        // Two clicks each: the first earns the conversion, whichever click the postback names.
        for _ in 0..2 {
            let response = app
                .clone()
                .oneshot(
                    Request::get(format!("/c/{code}"))
                        .header("user-agent", BROWSER)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::FOUND);
            let location = response.headers()["location"].to_str().unwrap();
            assert!(location.contains("aff="), "{location}");
        }
        // Named by the order that decides which click is first: time, then id. (Two clicks
        // in the same millisecond are ordered by their ids, which are random past the time.)
        let (status, journey) = call(
            app,
            admin_get(&format!("/instances/{INSTANCE}/contacts/{contact}/journey")),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{journey}");
        let mut made: Vec<(String, String)> = journey["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|event| event["type"] == "click")
            .map(|event| {
                let id = event["click_id"].as_str().unwrap().to_owned();
                (event["clicked_at"].as_str().unwrap().to_owned(), id)
            })
            .collect();
        made.sort();
        assert_eq!(made.len(), 2, "{journey}");
        for (k, (_, click_id)) in made.iter().enumerate() {
            names.add(click_id, format!("click-{n}-{k}"));
            clicks.push(click_id.clone());
        }
    }
    (names, clicks)
}

/// The postbacks, in the order the platforms send them: TUNE, Everflow and generic ones, by
/// GET and POST (form and JSON), conversions without an id, an unknown click, one outside its
/// window, another currency, and duplicates.
fn postbacks(clicks: &[String], base: Timestamp) -> Vec<Request<Body>> {
    let soon = base.plus_seconds(3_600).to_string().replace('+', "%2B");
    let late = base
        .plus_seconds(40 * 86_400)
        .to_string()
        .replace('+', "%2B");
    let token = format!("token={POSTBACK_TOKEN}");
    let get = |path: String| Request::get(path).body(Body::empty()).unwrap();
    let mut requests = vec![
        get(format!(
            "/postbacks/tune?{token}&aff_sub={}&transaction_id=T1&payout=12.50&converted_at={soon}",
            clicks[1]
        )),
        get(format!(
            "/postbacks/everflow?{token}&sub1={}&transaction_id=E1&payout=3.10&currency=EUR&converted_at={soon}",
            clicks[2]
        )),
        get(format!(
            "/postbacks/generic?{token}&click_id={}&event=signup&converted_at={soon}",
            clicks[4]
        )),
        get(format!(
            "/postbacks/generic?{token}&click_id={}&event=purchase&payout=0.30&converted_at={soon}",
            clicks[4]
        )),
        get(format!(
            "/postbacks/tune?{token}&aff_sub=01JUNKNOWNCLICK00000000000&transaction_id=T404&payout=5&converted_at={soon}"
        )),
        get(format!(
            "/postbacks/tune?{token}&aff_sub={}&transaction_id=T-late&payout=9&converted_at={late}",
            clicks[6]
        )),
        Request::post("/postbacks/generic")
            .header("x-postback-token", POSTBACK_TOKEN)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!(
                "click_id={}&conversion_id=G1&payout=1.25&converted_at={soon}",
                clicks[8]
            )))
            .unwrap(),
        Request::post(format!("/postbacks/everflow?{token}"))
            .header("content-type", "application/json")
            .body(Body::from(
                json!({"sub1": clicks[10], "transaction_id": "E2", "sale_amount": 100,
                       "payout": "7.77", "converted_at": base.plus_seconds(600).unix_seconds()})
                .to_string(),
            ))
            .unwrap(),
    ];
    // Platforms retry what they think failed: the same conversions again.
    requests.push(get(format!(
        "/postbacks/tune?{token}&aff_sub={}&transaction_id=T1&payout=12.50&converted_at={soon}",
        clicks[0]
    )));
    requests.push(get(format!(
        "/postbacks/generic?{token}&click_id={}&event=signup&converted_at={soon}",
        clicks[4]
    )));
    requests
}

/// Requests are used up by sending; this rebuilds one from its parts to send it again.
async fn parts(request: Request<Body>) -> (http::request::Parts, bytes::Bytes) {
    let (parts, body) = request.into_parts();
    let bytes = http_body_util::BodyExt::collect(body)
        .await
        .unwrap()
        .to_bytes();
    (parts, bytes)
}

fn rebuild(parts: &http::request::Parts, body: &bytes::Bytes) -> Request<Body> {
    let mut request = Request::builder()
        .method(parts.method.clone())
        .uri(parts.uri.clone());
    for (name, value) in &parts.headers {
        request = request.header(name, value);
    }
    request.body(Body::from(body.clone())).unwrap()
}

/// Sends each postback, then replays the failed ones until each was answered 200. Answers the
/// final answers (sorted, names applied) and the number of failed calls.
async fn post_back_until_accepted(
    app: &Router,
    requests: Vec<Request<Body>>,
    names: &Names,
) -> (Vec<Value>, usize) {
    let mut requests_parts = Vec::new();
    for request in requests {
        requests_parts.push(parts(request).await);
    }
    let mut answers: Vec<Option<Value>> = vec![None; requests_parts.len()];
    let mut failures = 0;
    for _ in 0..MAX_ROUNDS {
        let mut pending = false;
        for (index, (parts, body)) in requests_parts.iter().enumerate() {
            if answers[index].is_some() {
                continue;
            }
            let (status, answer) = call(app, rebuild(parts, body)).await;
            if status == StatusCode::OK {
                answers[index] = Some(names.apply(&answer));
            } else {
                assert!(
                    status.is_server_error(),
                    "postback {index} met a fault and got {status} {answer}, not a 5xx"
                );
                failures += 1;
                pending = true;
            }
        }
        if !pending {
            let mut answers: Vec<Value> = answers.into_iter().map(Option::unwrap).collect();
            answers.sort_by_key(|answer| answer.to_string());
            return (answers, failures);
        }
    }
    panic!("postbacks still fail after {MAX_ROUNDS} rounds");
}

/// Each contact's journey and every report, names applied.
async fn revenue_state(app: &Router, names: &Names) -> Value {
    let mut journeys = Vec::new();
    for n in 0..6 {
        let (status, journey) = call(
            app,
            admin_get(&format!(
                "/instances/{INSTANCE}/contacts/1555200{n:04}/journey"
            )),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{journey}");
        journeys.push(names.apply(&journey));
    }
    let mut reports = BTreeMap::new();
    let today = chrono::Utc::now().date_naive();
    let (since, until) = (
        today - chrono::Duration::days(300),
        today + chrono::Duration::days(60),
    );
    for group_by in ["message", "creative", "offer", "campaign", "day"] {
        let (status, report) = call(
            app,
            admin_get(&format!(
                "/reports/revenue?group_by={group_by}&since={since}&until={until}"
            )),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{report}");
        reports.insert(group_by, names.apply(&report));
    }
    json!({"journeys": journeys, "reports": reports})
}

async fn postbacks_that_met_faults_are_replayed_to_the_same_state(backend: Backend) {
    replay_postbacks(backend, FaultMode::Refused).await;
}

/// A postback whose conversion was stored but not answered is retried by the platform: it is a
/// duplicate then (answered 200, with what was credited), and nothing is counted twice.
async fn postbacks_whose_answers_were_lost_are_replayed_to_the_same_state(backend: Backend) {
    replay_postbacks(backend, FaultMode::AnswerLost).await;
}

/// Answers as the platform reads them; with lost answers, a retry may be the duplicate of its
/// own first try (which says neither status nor attribution), so only the conversion ids are
/// compared; what was credited is compared through the reports.
fn credited_answers(answers: &[Value], mode: FaultMode) -> Vec<Value> {
    let mut shown: Vec<Value> = answers
        .iter()
        .map(|answer| {
            let mut answer = answer.clone();
            if mode == FaultMode::AnswerLost {
                let fields = answer.as_object_mut().unwrap();
                fields.remove("status");
                fields.remove("attribution");
            }
            answer
        })
        .collect();
    shown.sort_by_key(|answer| answer.to_string());
    shown
}

async fn replay_postbacks(backend: Backend, mode: FaultMode) {
    let base = Timestamp::now();
    // The reference.
    let Some((reference_stores, _reference_guard)) = fresh_stores(backend).await else {
        return;
    };
    let reference_app = revenue_app(&reference_stores);
    let (reference_names, reference_clicks) = revenue_setup(&reference_app, base).await;
    let (reference_answers, failures) = post_back_until_accepted(
        &reference_app,
        postbacks(&reference_clicks, base),
        &reference_names,
    )
    .await;
    assert_eq!(failures, 0);
    let reference = revenue_state(&reference_app, &reference_names).await;

    // The same with faults once the clicks are in.
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let plan = FaultPlan::ratio(0.0, 0x0c1c_u64);
    let app = revenue_app(&faulty(&stores, &plan));
    let (names, clicks) = revenue_setup(&app, base).await;
    plan.set_mode(mode);
    plan.set_ratio(FAULT_RATIO);
    let (answers, failures) =
        post_back_until_accepted(&app, postbacks(&clicks, base), &names).await;
    assert!(
        failures > 0,
        "no postback met a fault: the test proves nothing"
    );
    plan.set_ratio(0.0);
    assert_eq!(
        credited_answers(&answers, mode),
        credited_answers(&reference_answers, mode),
        "the platforms were answered differently"
    );
    let statuses: Vec<&Value> = reference_answers.iter().map(|a| &a["status"]).collect();
    assert!(
        answers
            .iter()
            .all(|answer| answer["status"] == "duplicate" || statuses.contains(&&answer["status"])),
        "{answers:?}"
    );
    let state = revenue_state(&app, &names).await;
    assert_eq!(
        state, reference,
        "postbacks that met faults ended differently from a fault-free run ({failures} failed calls)"
    );
    // Sent once more after all succeeded, every postback is a duplicate and changes nothing.
    let (again, _) = post_back_until_accepted(&app, postbacks(&clicks, base), &names).await;
    assert!(
        again.iter().all(|answer| answer["status"] == "duplicate"),
        "{again:?}"
    );
    assert_eq!(revenue_state(&app, &names).await, reference);
    let credited: usize = reference["journeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|journey| journey["conversions"].as_u64().unwrap() as usize)
        .sum();
    assert!(
        credited >= 6,
        "the scenario credits too little to prove much: {reference}"
    );
}

/// The clicks each contact of `revenue_setup` makes once more, recorded through `store` as a
/// retried record does (the click queue): each call repeated until it answers `Ok`.
async fn record_clicks(stores: &Stores, store: &Arc<dyn RevenueStore>, names: &Names) -> usize {
    let mut failures = 0;
    for n in 0..6 {
        let code = names.made(&format!("code-{n}"));
        let send = stores.revenue.load_send(code).await.unwrap().unwrap();
        let offer = stores
            .revenue
            .load_offer(&send.offer_id)
            .await
            .unwrap()
            .unwrap();
        // Fixed ids, the same in both runs (digits are ULID characters).
        let click = Click::new(
            format!("01J{n:023}"),
            &send,
            &offer,
            Timestamp::now(),
            Some(BROWSER.to_owned()),
            None,
        );
        let mut tries = 0;
        while store.record_click(&click).await.is_err() {
            failures += 1;
            tries += 1;
            assert!(tries < MAX_ROUNDS, "click {n} is never recorded");
        }
    }
    failures
}

/// A click whose write went through but failed to answer is recorded again by its retry: it
/// must count once, as in a fault-free run.
async fn clicks_whose_answers_were_lost_are_recorded_once(backend: Backend) {
    let base = Timestamp::now();
    let Some((reference_stores, _reference_guard)) = fresh_stores(backend).await else {
        return;
    };
    let reference_app = revenue_app(&reference_stores);
    let (reference_names, _) = revenue_setup(&reference_app, base).await;
    assert_eq!(
        record_clicks(
            &reference_stores,
            &reference_stores.revenue,
            &reference_names
        )
        .await,
        0
    );
    let reference = revenue_state(&reference_app, &reference_names).await;

    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = revenue_app(&stores);
    let (names, _) = revenue_setup(&app, base).await;
    let plan = FaultPlan::ratio(0.5, 0x0c1c_u64);
    plan.set_mode(FaultMode::AnswerLost);
    let failures = record_clicks(&stores, &faulty(&stores, &plan).revenue, &names).await;
    assert!(
        failures > 0,
        "no click met a fault: the test proves nothing"
    );
    assert_eq!(
        revenue_state(&app, &names).await,
        reference,
        "clicks whose answers were lost ended differently from a fault-free run ({failures} failed calls)"
    );
}

// ------------------------------------------------------------------------------ dead letters

/// A contact store whose `update_contact` (the matcher's write) fails the first `flaky` times
/// for each contact, and always for the contacts in `poisoned`: deterministic faults, so that
/// every job but the poisoned ones succeeds before its receives run out.
struct FlakyWrites {
    inner: Arc<dyn ContactStore>,
    flaky: usize,
    poisoned: Vec<String>,
    attempts: Mutex<HashMap<String, usize>>,
    written: Mutex<Vec<String>>,
}

impl FlakyWrites {
    fn new(inner: Arc<dyn ContactStore>, flaky: usize, poisoned: &[&str]) -> Self {
        Self {
            inner,
            flaky,
            poisoned: poisoned.iter().map(|id| (*id).to_owned()).collect(),
            attempts: Mutex::new(HashMap::new()),
            written: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl ContactStore for FlakyWrites {
    async fn load_contact(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
    ) -> Result<Option<Contact>, StoreError> {
        self.inner.load_contact(instance_id, contact_id).await
    }

    async fn load_for_event(
        &self,
        instance_id: &InstanceId,
        identifiers: &[ContactId],
        claim: &DedupeClaim,
    ) -> Result<shared::contact::store::EventRead, StoreError> {
        self.inner
            .load_for_event(instance_id, identifiers, claim)
            .await
    }

    async fn commit_event(
        &self,
        claim: &DedupeClaim,
        contact: &Contact,
        expected_version: Option<u64>,
        counters: &[shared::contact::counters::CounterBump],
    ) -> Result<CommitOutcome, StoreError> {
        self.inner
            .commit_event(claim, contact, expected_version, counters)
            .await
    }

    async fn commit_identity(
        &self,
        claim: &DedupeClaim,
        commit: &shared::contact::store::IdentityCommit,
    ) -> Result<CommitOutcome, StoreError> {
        self.inner.commit_identity(claim, commit).await
    }

    async fn update_contact(
        &self,
        contact: &Contact,
        expected_version: u64,
        counters: &[shared::contact::counters::CounterBump],
    ) -> Result<CommitOutcome, StoreError> {
        let id = contact.contact_id.as_str().to_owned();
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap();
            let attempt = attempts.entry(id.clone()).or_default();
            *attempt += 1;
            *attempt
        };
        if self.poisoned.contains(&id) || attempt <= self.flaky {
            return Err(StoreError::Unavailable(format!(
                "injected fault, attempt {attempt}"
            )));
        }
        let outcome = self
            .inner
            .update_contact(contact, expected_version, counters)
            .await?;
        if outcome == CommitOutcome::Applied {
            self.written.lock().unwrap().push(id);
        }
        Ok(outcome)
    }

    async fn update_contacts(
        &self,
        updates: &[shared::contact::store::ContactUpdate],
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        shared::contact::store::update_each(self, updates).await
    }

    async fn record_business_first(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
        start: &shared::sources::BusinessFirst,
    ) -> Result<(), StoreError> {
        self.inner
            .record_business_first(instance_id, contact_id, start)
            .await
    }

    async fn load_counter_days(
        &self,
        instance_id: &InstanceId,
        first_day: &str,
        last_day: &str,
    ) -> Result<CounterDays, StoreError> {
        self.inner
            .load_counter_days(instance_id, first_day, last_day)
            .await
    }

    async fn list_contacts(
        &self,
        instance_id: &InstanceId,
        window: &ContactWindow,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ContactPage, StoreError> {
        self.inner
            .list_contacts(instance_id, window, after, limit)
            .await
    }
}

const POISONED: &str = "15550009999";

/// Five new contacts, three of them for the rule, and the poisoned one (also for the rule).
fn dead_letter_deliveries() -> Vec<Vec<u8>> {
    let mut deliveries: Vec<Vec<u8>> = (0..5)
        .map(|n| {
            whatsapp_message(
                INSTANCE,
                &format!("1555300{n:04}"),
                &format!("wamid.dl.{n}"),
                DAY_ONE + n,
                if n < 3 { "saw the tiktok ad" } else { "hello" },
                None,
            )
        })
        .collect();
    deliveries.insert(
        2,
        whatsapp_message(
            INSTANCE,
            POISONED,
            "wamid.dl.poisoned",
            DAY_ONE + 100,
            "tiktok ad!",
            None,
        ),
    );
    deliveries
}

async fn assert_all_but_the_poisoned_decided(stores: &Stores) {
    let reader = webhook_app(stores.contacts.clone());
    for n in 0..5 {
        let contact = contact(&reader, INSTANCE, &format!("1555300{n:04}"))
            .await
            .unwrap();
        assert!(contact.get("rules_checked_at").is_some(), "{contact}");
        assert_eq!(contact["acquisition"]["kind"] == "rule", n < 3, "{contact}");
    }
    let poisoned = contact(&reader, INSTANCE, POISONED).await.unwrap();
    assert!(poisoned.get("rules_checked_at").is_none(), "{poisoned}");
    let day = stores
        .contacts
        .load_counters(&InstanceId::parse(INSTANCE).unwrap(), "2025-11-23")
        .await
        .unwrap();
    assert_eq!(day.get("new_contacts"), Some(&6), "{day:?}");
    assert_eq!(day.get("kind:rule"), Some(&3), "{day:?}");
    assert_eq!(day.get("unmatched"), Some(&2), "{day:?}");
}

async fn a_job_failing_every_time_is_dead_lettered_in_process_and_the_rest_succeed(
    backend: Backend,
) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    create_tiktok_rule(&stores, INSTANCE).await;
    // Every job fails twice before it succeeds (the in-process queue delivers each up to
    // MAX_RECEIVES times); the poisoned contact's job fails every time.
    let flaky = Arc::new(FlakyWrites::new(stores.contacts.clone(), 2, &[POISONED]));
    let matcher = Arc::new(QueueWorker::new(
        flaky.clone(),
        stores.rules.clone(),
        stores.jobs.clone(),
    ));
    let queue = InProcessQueue::start(matcher);
    let app = webhook_app_with_queue(stores.contacts.clone(), queue.clone());
    for delivery in dead_letter_deliveries() {
        let (status, body) = call(&app, signed_delivery(&delivery)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // The queue works through its jobs in order; the poisoned one is dead-lettered after its
    // last receive, and the jobs after it still run.
    for _ in 0..600 {
        let decided = flaky.written.lock().unwrap().len() == 5;
        if decided && !queue.dead_letters().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dead = queue.dead_letters();
    assert_eq!(dead.len(), 1, "{dead:?}");
    let job: Value = serde_json::from_str(&dead[0]).unwrap();
    assert_eq!(
        job,
        json!({"type": "match", "instance_id": INSTANCE, "contact_id": POISONED})
    );
    assert_eq!(
        flaky.attempts.lock().unwrap()[POISONED],
        shared::queue::MAX_RECEIVES as usize
    );
    assert_all_but_the_poisoned_decided(&stores).await;
}

// ------------------------------------------------------------------------------ SQS

/// A queue and its dead-letter queue on moto, with the template's redrive policy shape.
async fn sqs_queues(client: &aws_sdk_sqs::Client, max_receives: u32) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName;
    let name = format!("faults-{}", ulid::Ulid::new()).to_lowercase();
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

/// One Lambda-style poll: a batch in, the failed ones left to come back (visibility 0), the
/// rest deleted. Answers the bodies received and those that failed.
async fn poll(
    client: &aws_sdk_sqs::Client,
    url: &str,
    matcher: &QueueWorker,
) -> (Vec<String>, Vec<String>) {
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
            record
        })
        .collect();
    let response = matcher::handle_sqs_event(matcher, event).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.as_str())
        .collect();
    let mut failed_bodies = Vec::new();
    for message in &received {
        if failed.contains(&message.message_id.as_deref().unwrap()) {
            failed_bodies.push(message.body.clone().unwrap());
        } else {
            client
                .delete_message()
                .queue_url(url)
                .receipt_handle(message.receipt_handle.clone().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    let bodies = received.into_iter().filter_map(|m| m.body).collect();
    (bodies, failed_bodies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqs_failed_jobs_come_back_and_one_failing_every_time_reaches_the_dead_letter_queue() {
    let Some(client) = sqs_client().await else {
        return;
    };
    let Some((stores, _guard)) = fresh_stores(Backend::Dynamo).await else {
        return;
    };
    create_tiktok_rule(&stores, INSTANCE).await;
    let max_receives = 4;
    let (url, dlq_url) = sqs_queues(&client, max_receives).await;
    let queue = Arc::new(shared::queue::sqs::SqsQueue::new(
        client.clone(),
        url.clone(),
    ));
    let app = webhook_app_with_queue(stores.contacts.clone(), queue);
    for delivery in dead_letter_deliveries() {
        let (status, body) = call(&app, signed_delivery(&delivery)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let flaky = Arc::new(FlakyWrites::new(stores.contacts.clone(), 2, &[POISONED]));
    let matcher = QueueWorker::new(flaky.clone(), stores.rules.clone(), stores.jobs.clone());
    let poisoned_job = json!({"type": "match", "instance_id": INSTANCE, "contact_id": POISONED});
    let is_poisoned = |body: &String| serde_json::from_str::<Value>(body).unwrap() == poisoned_job;
    let (mut polls, mut batch_with_poison_and_success) = (0, false);
    loop {
        let (received, failed) = poll(&client, &url, &matcher).await;
        if received.is_empty() {
            break;
        }
        if failed.iter().any(is_poisoned) && failed.len() < received.len() {
            batch_with_poison_and_success = true;
        }
        polls += 1;
        assert!(polls < 60, "the queue does not drain");
    }
    assert!(
        batch_with_poison_and_success,
        "no batch held the poisoned job beside jobs that succeeded"
    );
    let dead = client
        .receive_message()
        .queue_url(&dlq_url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    let dead: Vec<Value> = dead
        .iter()
        .map(|message| serde_json::from_str(message.body.as_ref().unwrap()).unwrap())
        .collect();
    assert_eq!(
        dead,
        [json!({"type": "match", "instance_id": INSTANCE, "contact_id": POISONED})],
        "only the job failing every time is dead-lettered"
    );
    assert_eq!(
        flaky.attempts.lock().unwrap()[POISONED],
        max_receives as usize
    );
    assert_all_but_the_poisoned_decided(&stores).await;
}

// ------------------------------------------------------------------------------ DynamoDB down

/// A DynamoDB Local of this test's own (`infra/scripts/emulators.sh serve-dynamodb`), with its data on
/// disk so that it survives being killed; killed for good when dropped.
struct SpareDynamo {
    script: String,
    port: u16,
    folder: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl SpareDynamo {
    fn start(&mut self) {
        let log = std::fs::File::create(self.folder.path().join("dynamodb.log")).unwrap();
        let data = self.folder.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        self.child = Some(
            std::process::Command::new("bash")
                .arg(&self.script)
                .arg("serve-dynamodb")
                .arg(self.port.to_string())
                .arg(&data)
                .stdin(std::process::Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start DynamoDB Local"),
        );
    }

    /// Stops it with SIGTERM, as a host shutting down would. (A SIGKILL loses DynamoDB
    /// Local's last acknowledged writes, which DynamoDB itself never does: that would test
    /// the emulator, not the engine.) SIGKILL when dropped.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits (bounded) until a fresh client lists tables.
    async fn wait_ready(&self, client: &aws_sdk_dynamodb::Client) {
        for _ in 0..240 {
            if client.list_tables().send().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let log = std::fs::read_to_string(self.folder.path().join("dynamodb.log"));
        panic!("the spare DynamoDB Local did not start: {log:?}");
    }
}

impl Drop for SpareDynamo {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_local_killed_mid_run_answers_5xx_and_the_replayed_deliveries_complete() {
    let Some((reference, _reference_guard)) = fault_free_run(Backend::Dynamo).await else {
        return;
    };
    let Some((main_stores, _guard)) = fresh_stores(Backend::Dynamo).await else {
        return;
    };
    let script = std::env::var("EMULATORS_SH")
        .expect("EMULATORS_SH is set by infra/scripts/emulators.sh run, with DYNAMODB_ENDPOINT");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut spare = SpareDynamo {
        script,
        port,
        folder: tempfile::tempdir().unwrap(),
        child: None,
    };
    spare.start();
    let config = emulator_config("DYNAMODB_ENDPOINT").await.unwrap();
    let client = |config: &aws_config::SdkConfig| {
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(config)
                .endpoint_url(format!("http://127.0.0.1:{port}"))
                .build(),
        )
    };
    spare.wait_ready(&client(&config)).await;

    // The engine's client is made once and kept across the outage, as a warm Lambda keeps it.
    let store = Arc::new(shared::store::dynamo::DynamoStore::new(
        client(&config),
        shared::store::dynamo::TableNames::prefixed("spare"),
    ));
    store.create_tables().await.expect("tables on the spare");
    let stores = Stores {
        contacts: store.clone(),
        rules: store.clone(),
        jobs: store.clone(),
        ..main_stores.clone()
    };
    create_tiktok_rule(&stores, INSTANCE).await;
    create_tiktok_rule(&stores, OTHER_INSTANCE).await;
    let (deliveries, contacts) = deliveries();
    let queue = Arc::new(RecordingQueue::default());
    let app = webhook_app_with_queue(stores.contacts.clone(), queue.clone());
    let (before, during) = deliveries.split_at(deliveries.len() / 2);
    let (during, after) = during.split_at(3);
    assert_eq!(deliver_until_accepted(&app, before).await, 0);

    spare.stop();
    for delivery in during {
        let (status, body) = call(&app, signed_delivery(delivery)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["error"]["code"], "unavailable", "{body}");
    }

    spare.start();
    spare.wait_ready(&client(&config)).await;
    // Meta's retries of what failed, then the rest, on the same engine.
    assert_eq!(deliver_until_accepted(&app, during).await, 0);
    assert_eq!(deliver_until_accepted(&app, after).await, 0);
    let matcher = QueueWorker::new(
        stores.contacts.clone(),
        stores.rules.clone(),
        stores.jobs.clone(),
    );
    assert_eq!(run_jobs_until_done(&matcher, &queue.match_jobs()).await, 0);
    assert_eq!(
        normalized_state(&stores, &contacts).await,
        reference,
        "the run across the outage ended differently from an undisturbed one"
    );
}
