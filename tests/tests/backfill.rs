//! Backfill: a preview, a run in queued pages, and its interplay with live matching.

use http::StatusCode;
use integration_tests::*;
use serde_json::{Value, json};
use shared::contact::Contact;
use shared::contact::counters::CounterBump;
use shared::contact::store::{
    ContactPage, ContactStore, ContactUpdate, ContactWindow, CounterDays, IdentityCommit,
};
use shared::ids::ContactId;
use shared::ids::InstanceId;
use shared::ids::JobId;
use shared::matching::QueueWorker;
use shared::matching::backfill::{self, BackfillJob, JobStatus, JobStore, StartError};
use shared::queue::{BackfillPage, QueueJob};
use shared::store::{CommitOutcome, DedupeClaim, FaultInjectingStore, FaultPlan, StoreError};
use shared::time::Timestamp;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

on_every_store!(
    a_run_updates_exactly_what_its_preview_said_and_only_unattributed_contacts,
    a_limit_stops_a_run_early,
    bad_backfill_requests_are_400,
    a_backfill_racing_live_matching_attributes_and_counts_each_contact_once,
    a_backfill_page_reaches_the_stores_batch_write_through_the_engines_store_types,
    a_started_run_is_stored_queued_with_its_first_page_on_the_queue,
    a_run_whose_first_page_the_queue_refuses_is_marked_failed,
);

const INSTANCE: &str = "106540352242922";

async fn deliver(app: &axum::Router, contact: &str, at: i64, text: &str, referral: Option<Value>) {
    let body = whatsapp_message(
        INSTANCE,
        contact,
        &format!("wamid.{contact}"),
        at,
        text,
        referral,
    );
    let (status, report) = call(app, signed_delivery(&body)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
}

async fn post(app: &axum::Router, path: &str, body: Value) -> (StatusCode, Value) {
    call(
        app,
        admin_request("POST", &format!("/instances/{INSTANCE}{path}"), Some(body)),
    )
    .await
}

async fn until_job_done(app: &axum::Router, job_id: &str) -> Value {
    for _ in 0..400 {
        let (status, job) = call(
            app,
            admin_request(
                "GET",
                &format!("/instances/{INSTANCE}/backfill/{job_id}"),
                None,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{job}");
        if job["status"] == "done" || job["status"] == "failed" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the backfill did not finish");
}

async fn counters(stores: &Stores) -> std::collections::BTreeMap<String, u64> {
    let instance = InstanceId::parse(INSTANCE).unwrap();
    let days = stores
        .contacts
        .load_counter_days(&instance, "2000-01-01", "2100-01-01")
        .await
        .unwrap();
    let mut totals = std::collections::BTreeMap::new();
    for day in days.values() {
        for (name, count) in day {
            *totals.entry(name.clone()).or_default() += count;
        }
    }
    totals
}

/// Seven contacts arrive before any rule exists: the matcher marks the unattributed ones
/// unmatched. Five are in the last week (three mention TikTok), one came from a Meta ad, one
/// is ten days old (and mentions TikTok).
async fn arrivals_before_the_rule(app: &axum::Router) {
    let now = chrono::Utc::now().timestamp();
    deliver(app, "3001", now - 3_600, "saw your tiktok", None).await;
    deliver(app, "3002", now - 7_200, "TikTok ad!", None).await;
    deliver(app, "3003", now - 3 * 86_400, "hello there", None).await;
    deliver(app, "3004", now - 4 * 86_400, "tiktok video", None).await;
    deliver(app, "3005", now - 60, "prices?", None).await;
    deliver(
        app,
        "3006",
        now - 120,
        "tiktok, from an ad",
        Some(ctwa_referral("ad-1")),
    )
    .await;
    deliver(app, "3007", now - 10 * 86_400, "tiktok long ago", None).await;
    for _ in 0..200 {
        let (_, listed) = call(
            app,
            admin_request(
                "GET",
                &format!("/instances/{INSTANCE}/contacts?unattributed=true"),
                None,
            ),
        )
        .await;
        if listed["contacts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c.get("rules_checked_at").is_some())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the matcher did not decide");
}

async fn a_run_updates_exactly_what_its_preview_said_and_only_unattributed_contacts(
    backend: Backend,
) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    // Pages of two contacts, so the run travels as several queued pages.
    let engine =
        local_server::engine_with_matcher(&secrets(), &stores, PUBLIC_BASE_URL, |matcher| {
            matcher.with_page_size(2)
        });
    let app = &engine.app;
    arrivals_before_the_rule(app).await;
    assert_eq!(counters(&stores).await.get("unmatched"), Some(&6));
    let rule = json!({"name": "TikTok", "platform": "tiktok", "match": {"kind": "contains", "pattern": "tiktok"}});
    let (_, rule) = post(app, "/rules", rule).await;
    let rule_id = rule["id"].as_str().unwrap().to_owned();

    let (status, preview) = post(app, "/backfill", json!({"days": 7, "dry_run": true})).await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(
        preview,
        json!({"dry_run": true, "scanned": 6, "would_update": 3,
               "by_rule": [{"rule_id": rule_id, "name": "TikTok", "count": 3}]})
    );
    assert_eq!(
        counters(&stores).await.get("kind:rule"),
        None,
        "a preview changes nothing"
    );

    let (status, started) = post(app, "/backfill", json!({"days": 7, "dry_run": false})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    assert_eq!(started["status"], "queued");
    let job = until_job_done(app, started["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "done");
    assert_eq!(job["scanned"], 6);
    assert_eq!(job["updated"], preview["would_update"]);
    assert_eq!(job["skipped_attributed"], 1);
    assert!(job["started_at"].is_string() && job["finished_at"].is_string());

    for id in ["3001", "3002", "3004"] {
        let contact = contact(app, INSTANCE, id).await.unwrap();
        assert_eq!(contact["acquisition"]["rule_id"], rule_id.as_str(), "{id}");
        assert_eq!(contact["acquisition"]["backfill_job_id"], job["job_id"]);
    }
    assert_eq!(
        contact(app, INSTANCE, "3006").await.unwrap()["acquisition"]["kind"],
        "meta_ad"
    );
    assert_eq!(
        contact(app, INSTANCE, "3007").await.unwrap()["acquisition"],
        Value::Null,
        "outside the window"
    );
    assert_eq!(
        contact(app, INSTANCE, "3003").await.unwrap()["acquisition"],
        Value::Null
    );

    let totals = counters(&stores).await;
    assert_eq!(totals.get("kind:rule"), Some(&3));
    assert_eq!(totals.get(format!("rule:{rule_id}").as_str()), Some(&3));
    assert_eq!(
        totals.get("unmatched"),
        Some(&3),
        "the three moved out of unmatched"
    );
    let (_, week) = call(
        app,
        admin_request("GET", &format!("/instances/{INSTANCE}/stats?days=30"), None),
    )
    .await;
    assert_eq!(week["click_to_chat_contacts"], 6);
    assert_eq!(
        week["matched_by_rules"].as_u64().unwrap() + week["unmatched"].as_u64().unwrap(),
        6
    );

    // Again: nothing left to update, and nothing counted twice.
    let (_, again) = post(app, "/backfill", json!({"days": 7, "dry_run": false})).await;
    let again = until_job_done(app, again["job_id"].as_str().unwrap()).await;
    assert_eq!(
        (
            again["updated"].as_u64(),
            again["skipped_attributed"].as_u64()
        ),
        (Some(0), Some(4))
    );
    assert_eq!(counters(&stores).await, totals);
}

async fn a_limit_stops_a_run_early(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine =
        local_server::engine_with_matcher(&secrets(), &stores, PUBLIC_BASE_URL, |matcher| {
            matcher.with_page_size(2)
        });
    let app = &engine.app;
    arrivals_before_the_rule(app).await;
    post(app, "/rules", json!({"name": "TikTok", "platform": "tiktok", "match": {"kind": "contains", "pattern": "tiktok"}})).await;
    let (_, preview) = post(
        app,
        "/backfill",
        json!({"days": 7, "dry_run": true, "limit": 3}),
    )
    .await;
    assert_eq!(
        (
            preview["scanned"].as_u64(),
            preview["would_update"].as_u64()
        ),
        (Some(3), Some(1))
    );
    let (_, started) = post(
        app,
        "/backfill",
        json!({"days": 7, "dry_run": false, "limit": 3}),
    )
    .await;
    let job = until_job_done(app, started["job_id"].as_str().unwrap()).await;
    assert_eq!(job["scanned"], 3);
    assert_eq!(job["updated"], preview["would_update"]);
}

async fn bad_backfill_requests_are_400(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = rules_app(&stores);
    for (body, field) in [
        (json!({"days": 0}), "days"),
        (json!({"days": 91}), "days"),
        (json!({"days": "seven"}), "body"),
        (json!({"dry_run": "yes"}), "body"),
        (json!({"dayz": 7}), "body"),
        (json!({"limit": 0, "dry_run": false}), "limit"),
    ] {
        let (status, error) = post(&app, "/backfill", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error["error"]["field"], field, "{body}");
    }
    let (status, error) = call(
        &app,
        admin_request("GET", &format!("/instances/{INSTANCE}/backfill/nope"), None),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["error"]["code"], "job_not_found");
}

async fn a_backfill_racing_live_matching_attributes_and_counts_each_contact_once(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    // Live match jobs are held back, so both paths find the same unattributed contacts.
    let live_jobs = Arc::new(RecordingQueue::default());
    let webhook = webhook_app_with_queue(stores.contacts.clone(), live_jobs.clone());
    let pages = Arc::new(RecordingQueue::default());
    let rules = rules_app_with_queue(&stores, pages.clone());
    let (_, rule) = post(&rules, "/rules", json!({"name": "TikTok", "platform": "tiktok", "match": {"kind": "contains", "pattern": "tiktok"}})).await;
    let now = chrono::Utc::now().timestamp();
    for n in 0..8 {
        deliver(
            &webhook,
            &format!("40{n:02}"),
            now - 60 * n,
            "tiktok please",
            None,
        )
        .await;
    }
    let (status, started) = post(&rules, "/backfill", json!({"days": 1, "dry_run": false})).await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let matcher = Arc::new(
        QueueWorker::new(
            stores.contacts.clone(),
            stores.rules.clone(),
            stores.jobs.clone(),
        )
        .with_page_size(3),
    );
    matcher.attach_queue(pages.clone());
    let live = {
        let matcher = matcher.clone();
        let jobs = live_jobs.match_jobs();
        tokio::spawn(async move {
            for job in jobs {
                matcher
                    .match_first_message(&job, Timestamp::now())
                    .await
                    .unwrap();
            }
        })
    };
    let backfill = {
        let (matcher, pages) = (matcher.clone(), pages.clone());
        tokio::spawn(async move {
            let mut done = 0;
            loop {
                let next = pages.jobs.lock().unwrap().get(done).cloned();
                match next {
                    Some(QueueJob::BackfillPage(page)) => {
                        matcher
                            .handle_backfill_page(&page, Timestamp::now())
                            .await
                            .unwrap();
                        done += 1;
                    }
                    _ => break,
                }
            }
        })
    };
    live.await.unwrap();
    backfill.await.unwrap();

    let totals = counters(&stores).await;
    let rule_id = rule["id"].as_str().unwrap();
    assert_eq!(totals.get(format!("rule:{rule_id}").as_str()), Some(&8));
    assert_eq!(totals.get("kind:rule"), Some(&8));
    assert_eq!(totals.get("unmatched"), None);
    let (_, job) = call(
        &rules,
        admin_request(
            "GET",
            &format!(
                "/instances/{INSTANCE}/backfill/{}",
                started["job_id"].as_str().unwrap()
            ),
            None,
        ),
    )
    .await;
    assert_eq!(job["status"], "done");
    assert_eq!(
        job["updated"].as_u64().unwrap() + job["skipped_attributed"].as_u64().unwrap(),
        8,
        "{job}"
    );
}

/// Counts the contact writes that reach the store it wraps, one by one or in batches.
struct WriteSpy {
    inner: Arc<dyn ContactStore>,
    singles: AtomicUsize,
    batches: AtomicUsize,
}

#[async_trait::async_trait]
impl ContactStore for WriteSpy {
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

    async fn commit_identity(
        &self,
        claim: &DedupeClaim,
        commit: &IdentityCommit,
    ) -> Result<CommitOutcome, StoreError> {
        self.inner.commit_identity(claim, commit).await
    }

    async fn commit_event(
        &self,
        claim: &DedupeClaim,
        contact: &Contact,
        expected_version: Option<u64>,
        counters: &[CounterBump],
    ) -> Result<CommitOutcome, StoreError> {
        self.inner
            .commit_event(claim, contact, expected_version, counters)
            .await
    }

    async fn update_contact(
        &self,
        contact: &Contact,
        expected_version: u64,
        counters: &[CounterBump],
    ) -> Result<CommitOutcome, StoreError> {
        self.singles.fetch_add(1, Ordering::SeqCst);
        self.inner
            .update_contact(contact, expected_version, counters)
            .await
    }

    async fn update_contacts(
        &self,
        updates: &[ContactUpdate],
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        self.batches.fetch_add(1, Ordering::SeqCst);
        self.inner.update_contacts(updates).await
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

/// The engine holds its contact store as `Arc<dyn ContactStore>`, behind the fault injector
/// when faults are asked for; a backfill page must reach the store's own batch write through
/// both (one write per page), never a loop of single writes a wrapper fell back to.
async fn a_backfill_page_reaches_the_stores_batch_write_through_the_engines_store_types(
    backend: Backend,
) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let spy = Arc::new(WriteSpy {
        inner: stores.contacts.clone(),
        singles: AtomicUsize::new(0),
        batches: AtomicUsize::new(0),
    });
    let spied: Arc<dyn ContactStore> = spy.clone();
    // A plan that never fails: the wrapper is in the path, its faults are not.
    let wrapped: Arc<dyn ContactStore> =
        Arc::new(FaultInjectingStore::new(spied, FaultPlan::ratio(0.0, 1)));
    let held = Stores {
        contacts: wrapped,
        ..stores.clone()
    };
    let engine = local_server::engine_with_matcher(&secrets(), &held, PUBLIC_BASE_URL, |matcher| {
        matcher.with_page_size(2)
    });
    let app = &engine.app;
    arrivals_before_the_rule(app).await;
    let rule = json!({"name": "TikTok", "platform": "tiktok", "match": {"kind": "contains", "pattern": "tiktok"}});
    let (status, _) = post(app, "/rules", rule).await;
    assert_eq!(status, StatusCode::CREATED);
    let singles_before = spy.singles.load(Ordering::SeqCst);

    let (status, started) = post(app, "/backfill", json!({"days": 7, "dry_run": false})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let job = until_job_done(app, started["job_id"].as_str().unwrap()).await;
    assert_eq!(job["updated"], 3, "{job}");
    assert_eq!(
        spy.singles.load(Ordering::SeqCst),
        singles_before,
        "no backfill write went one contact at a time"
    );
    assert!(
        spy.batches.load(Ordering::SeqCst) >= 2,
        "three contacts in pages of two are at least two batch writes"
    );
}

/// A job store that remembers the ids of the jobs created through it, so a test can find a
/// job whose start failed.
struct CreatedJobs {
    inner: Arc<dyn JobStore>,
    created: std::sync::Mutex<Vec<JobId>>,
}

#[async_trait::async_trait]
impl JobStore for CreatedJobs {
    async fn create_job(&self, job: &BackfillJob) -> Result<(), StoreError> {
        self.created.lock().unwrap().push(job.job_id.clone());
        self.inner.create_job(job).await
    }

    async fn load_job(
        &self,
        instance_id: &InstanceId,
        job_id: &JobId,
    ) -> Result<Option<BackfillJob>, StoreError> {
        self.inner.load_job(instance_id, job_id).await
    }

    async fn save_job(
        &self,
        job: &BackfillJob,
        expected_version: u64,
    ) -> Result<CommitOutcome, StoreError> {
        self.inner.save_job(job, expected_version).await
    }
}

/// Starts a 7-day run limited to 10 contacts on `stores` through `queue`; answers what the
/// start answered and the job it stored.
async fn start_run(
    stores: &Stores,
    queue: &RecordingQueue,
    now: Timestamp,
) -> (Result<BackfillJob, StartError>, BackfillJob) {
    let jobs = CreatedJobs {
        inner: stores.jobs.clone(),
        created: Default::default(),
    };
    let instance = InstanceId::parse(INSTANCE).unwrap();
    let window = backfill::window(now, 7);
    let started = backfill::start(&jobs, queue, instance.clone(), 7, &window, Some(10), now).await;
    let created = jobs.created.lock().unwrap().clone();
    assert_eq!(created.len(), 1, "one job stored");
    let stored = stores
        .jobs
        .load_job(&instance, &created[0])
        .await
        .unwrap()
        .expect("the job is stored");
    (started, stored)
}

async fn a_started_run_is_stored_queued_with_its_first_page_on_the_queue(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let queue = RecordingQueue::default();
    let now = Timestamp::now();
    let (started, stored) = start_run(&stores, &queue, now).await;
    let started = started.unwrap();
    assert_eq!(started, stored);
    assert_eq!(stored.status, JobStatus::Queued);
    assert_eq!(
        (stored.days, stored.limit, stored.version),
        (7, Some(10), 1)
    );
    assert_eq!(
        (stored.since, stored.until),
        (now.plus_seconds(-7 * 86_400), now)
    );
    assert_eq!(
        *queue.jobs.lock().unwrap(),
        [QueueJob::BackfillPage(BackfillPage {
            instance_id: stored.instance_id.clone(),
            job_id: stored.job_id.clone(),
            page: 1,
            after: None,
        })]
    );
}

async fn a_run_whose_first_page_the_queue_refuses_is_marked_failed(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let queue = RecordingQueue::default();
    queue.failing.store(true, Ordering::SeqCst);
    let now = Timestamp::now();
    let (started, stored) = start_run(&stores, &queue, now).await;
    let error = started.unwrap_err();
    assert!(matches!(error, StartError::Queue(_)), "{error}");
    assert_eq!(stored.status, JobStatus::Failed);
    assert_eq!((stored.finished_at, stored.version), (Some(now), 2));
    assert_eq!(queue.job_count(), 0);
}
