//! First touch does not depend on arrival order. Meta retries failed deliveries for days, so an
//! earlier message can arrive after a later one, twice, and before or after the matcher ran on
//! what was then the first message. Property: every order (with duplicates, with the matcher's
//! jobs run at any points, with or without store faults of either kind, each failed call
//! retried until it succeeds) ends in the same contacts, acquisitions, counters and stats as
//! delivering the same events once each, in time order, with the matcher keeping up.
//!
//! Bounded cases: DynamoDB Local answers about 1,000 requests a second, so it runs fewer.

use axum::Router;
use http::StatusCode;
use integration_tests::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use shared::contact::store::ContactStore;
use shared::ids::InstanceId;
use shared::matching::QueueWorker;
use shared::queue::MatchJob;
use shared::store::{FaultInjectingStore, FaultMode, FaultPlan};
use std::sync::Arc;

on_every_store!(an_earlier_ad_delivered_late_replaces_the_later_one_and_its_counts);

const EMBEDDED_CASES: u32 = 24;
const DYNAMO_CASES: u32 = 8;

const WHATSAPP: &str = "106540352242922";
const PAGE: &str = "448736998987654";
const PSID: &str = "7391029384756012";
/// Retries of one call before the test gives up.
const MAX_ATTEMPTS: usize = 200;

/// One inbound event, delivered alone.
#[derive(Debug, Clone)]
enum Touch {
    /// A WhatsApp message of `contact` (0..3), seconds after the base time.
    WhatsApp {
        contact: usize,
        seconds: i64,
        text: &'static str,
        ad: Option<String>,
        name: &'static str,
    },
    /// A Messenger message of the page's one contact.
    Messenger { seconds: i64, text: &'static str },
    /// A standalone Messenger ad referral (an existing thread), no message.
    MessengerReferral { seconds: i64, ad: String },
}

/// Times close enough to tie (WhatsApp counts in seconds), and a second day, so that a late
/// earlier message moves the contact's first-seen day and its counters.
const OFFSETS: [i64; 6] = [0, 0, 40, 3_600, 86_400, 86_440];
const TEXTS: [&str; 3] = ["hello", "Hi, I saw your TikTok ad", "tiktok ad, price?"];
const NAMES: [&str; 2] = ["Ana", "Ana Souza"];

fn touch() -> impl Strategy<Value = Touch> {
    let offset = prop::sample::select(OFFSETS.to_vec());
    let text = prop::sample::select(TEXTS.to_vec());
    prop_oneof![
        4 => (0..3usize, offset.clone(), text.clone(), prop::option::weighted(0.4, 0..3u8),
              prop::sample::select(NAMES.to_vec()))
            .prop_map(|(contact, seconds, text, ad, name)| Touch::WhatsApp {
                contact, seconds, text, ad: ad.map(|n| format!("ad-{n}")), name,
            }),
        1 => (offset.clone(), text).prop_map(|(seconds, text)| Touch::Messenger { seconds, text }),
        1 => (offset, 0..3u8).prop_map(|(seconds, n)| Touch::MessengerReferral {
            seconds, ad: format!("ad-{n}"),
        }),
    ]
}

/// A step of a run: deliver touch `n` (until it is accepted), or run the jobs queued so far.
#[derive(Debug, Clone, Copy)]
enum Step {
    Deliver(usize),
    RunJobs,
}

#[derive(Debug, Clone)]
struct Case {
    touches: Vec<Touch>,
    steps: Vec<Step>,
    faults: Option<(FaultMode, u64)>,
}

fn case() -> impl Strategy<Value = Case> {
    prop::collection::vec(touch(), 1..9).prop_flat_map(|touches| {
        let n = touches.len();
        let order = Just((0..n).collect::<Vec<_>>()).prop_shuffle();
        let repeats = prop::collection::vec((0..n, any::<prop::sample::Index>()), 0..4);
        let matcher_runs = prop::collection::vec(any::<prop::sample::Index>(), 0..4);
        let faults = prop::option::of((
            prop::sample::select(vec![FaultMode::Refused, FaultMode::AnswerLost]),
            any::<u64>(),
        ));
        (Just(touches), order, repeats, matcher_runs, faults).prop_map(
            |(touches, order, repeats, matcher_runs, faults)| {
                let mut steps: Vec<Step> = order.into_iter().map(Step::Deliver).collect();
                // Meta sends some events twice, and retries come at any time.
                for (touch, at) in repeats {
                    steps.insert(at.index(steps.len() + 1), Step::Deliver(touch));
                }
                for at in matcher_runs {
                    steps.insert(at.index(steps.len() + 1), Step::RunJobs);
                }
                Case {
                    touches,
                    steps,
                    faults,
                }
            },
        )
    })
}

/// Midnight UTC two days ago: every touch falls inside the 7-day stats window.
fn base() -> i64 {
    let now = chrono::Utc::now().timestamp();
    now - now.rem_euclid(86_400) - 2 * 86_400
}

impl Touch {
    /// When it happened, and an id that orders equal times: the in-order run's sort key.
    fn order_key(&self, index: usize) -> (i64, usize) {
        match self {
            Touch::WhatsApp { seconds, .. }
            | Touch::Messenger { seconds, .. }
            | Touch::MessengerReferral { seconds, .. } => (*seconds, index),
        }
    }

    /// The delivery, with ids unique per touch (`index`).
    fn delivery(&self, index: usize, base: i64) -> Vec<u8> {
        let body = match self {
            Touch::WhatsApp {
                contact,
                seconds,
                text,
                ad,
                name,
            } => {
                let wa_id = format!("1555300000{contact}");
                let mut message = json!({
                    "from": wa_id, "id": format!("wamid.order.{index:02}"),
                    "timestamp": (base + seconds).to_string(), "type": "text",
                    "text": {"body": text}
                });
                if let Some(ad) = ad {
                    message["referral"] = ctwa_referral(ad);
                }
                json!({"object": "whatsapp_business_account", "entry": [{"id": "waba", "changes": [{
                "field": "messages", "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550000000", "phone_number_id": WHATSAPP},
                    "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
                    "messages": [message]
                }}]}]})
            }
            Touch::Messenger { seconds, text } => messenger(
                base,
                *seconds,
                index,
                json!({"message": {"mid": format!("m_order.{index:02}"), "text": text}}),
            ),
            Touch::MessengerReferral { seconds, ad } => messenger(
                base,
                *seconds,
                index,
                json!({"referral": {"ref": "promo", "ad_id": ad, "source": "ADS",
                                    "type": "OPEN_THREAD"}}),
            ),
        };
        serde_json::to_vec(&body).unwrap()
    }
}

/// A Messenger event `index` milliseconds past its second: Meta tells events without an id
/// apart by sender, recipient and time, so two different ones never share a millisecond.
fn messenger(base: i64, seconds: i64, index: usize, event: Value) -> Value {
    let millis = (base + seconds) * 1_000 + index as i64;
    let mut item = json!({"sender": {"id": PSID}, "recipient": {"id": PAGE},
                          "timestamp": millis});
    item.as_object_mut()
        .unwrap()
        .extend(event.as_object().unwrap().clone());
    json!({"object": "page", "entry": [{"id": PAGE, "time": millis, "messaging": [item]}]})
}

/// The contacts a case can make.
fn contact_ids() -> Vec<(&'static str, String)> {
    let mut ids: Vec<(&str, String)> = (0..3)
        .map(|contact| (WHATSAPP, format!("1555300000{contact}")))
        .collect();
    ids.push((PAGE, PSID.to_owned()));
    ids
}

/// A store under test, seen by the webhook and the matcher through a fault injector (off
/// when the plan's ratio is 0).
struct Engine {
    stores: Stores,
    webhook: Router,
    queue: Arc<RecordingQueue>,
    matcher: QueueWorker,
    jobs_run: usize,
}

async fn engine(backend: Backend, plan: &Arc<FaultPlan>) -> Option<(Engine, StoreGuard)> {
    let (stores, guard) = fresh_stores(backend).await?;
    for instance in [WHATSAPP, PAGE] {
        let rule = json!({"name": "TikTok", "platform": "tiktok", "campaign": "autumn",
                          "match": {"kind": "contains", "pattern": "tiktok ad"}});
        let (status, body) = call(
            &rules_app(&stores),
            admin_request("POST", &format!("/instances/{instance}/rules"), Some(rule)),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let faulty: Arc<dyn ContactStore> = Arc::new(FaultInjectingStore::new(
        stores.contacts.clone(),
        plan.clone(),
    ));
    let queue = Arc::new(RecordingQueue::default());
    let webhook = webhook_app_with_queue(faulty.clone(), queue.clone());
    let matcher = QueueWorker::new(faulty, stores.rules.clone(), stores.jobs.clone());
    Some((
        Engine {
            stores,
            webhook,
            queue,
            matcher,
            jobs_run: 0,
        },
        guard,
    ))
}

impl Engine {
    /// Delivers until answered 200, as Meta retries; every failure must be a 5xx.
    async fn deliver(&self, body: &[u8]) {
        for _ in 0..MAX_ATTEMPTS {
            let (status, answer) = call(&self.webhook, signed_delivery(body)).await;
            if status == StatusCode::OK {
                return;
            }
            assert!(status.is_server_error(), "{status} {answer}");
        }
        panic!("a delivery still fails after {MAX_ATTEMPTS} attempts");
    }

    /// Runs each job queued since the last call until it succeeds, as SQS redelivers.
    async fn run_jobs(&mut self) {
        let jobs: Vec<MatchJob> = self.queue.match_jobs();
        for job in &jobs[self.jobs_run..] {
            let mut attempts = 0;
            while let Err(error) = self
                .matcher
                .match_first_message(job, shared::time::Timestamp::now())
                .await
            {
                attempts += 1;
                assert!(
                    attempts < MAX_ATTEMPTS,
                    "a match job keeps failing: {error}"
                );
            }
        }
        self.jobs_run = jobs.len();
    }

    /// Contacts as the admin API shows them, without what the clock or the number of writes
    /// decides (the version, when the matcher ran), every counter that is not zero, and the
    /// stats of both instances; rule ids replaced by a name.
    async fn state(&self) -> String {
        let mut contacts = Vec::new();
        for (instance, id) in contact_ids() {
            if let Some(contact) = contact(&self.webhook, instance, &id).await {
                let mut contact = comparable_contact(contact);
                contact.as_object_mut().unwrap().remove("version");
                contacts.push(contact);
            }
        }
        let mut counters = Vec::new();
        let mut stats = Vec::new();
        let rules = rules_app(&self.stores);
        for instance in [WHATSAPP, PAGE] {
            let days = nonzero_counters(self.stores.contacts.as_ref(), instance).await;
            counters.push(days);
            let (status, mut shown) = call(
                &rules,
                admin_get(&format!("/instances/{instance}/stats?days=7")),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{shown}");
            shown.as_object_mut().unwrap().remove("until");
            stats.push(shown);
        }
        let mut text = serde_json::to_string_pretty(
            &json!({"contacts": contacts, "counters": counters, "stats": stats}),
        )
        .unwrap();
        for instance in [WHATSAPP, PAGE] {
            let rules = self
                .stores
                .rules
                .list_rules(&InstanceId::parse(instance).unwrap())
                .await
                .unwrap();
            for rule in rules {
                text = text.replace(rule.id.as_str(), "the-rule");
            }
        }
        text
    }
}

/// The reference: each touch once, in time order, the matcher keeping up, no fault.
async fn in_order(backend: Backend, touches: &[Touch], base: i64) -> Option<String> {
    let plan = FaultPlan::ratio(0.0, 1);
    let (mut engine, _guard) = engine(backend, &plan).await?;
    let mut order: Vec<usize> = (0..touches.len()).collect();
    order.sort_by_key(|&index| touches[index].order_key(index));
    for index in order {
        engine.deliver(&touches[index].delivery(index, base)).await;
        engine.run_jobs().await;
    }
    Some(engine.state().await)
}

async fn as_scheduled(backend: Backend, case: &Case, base: i64) -> Option<String> {
    let plan = FaultPlan::ratio(0.0, case.faults.map_or(1, |(_, seed)| seed));
    let (mut engine, _guard) = engine(backend, &plan).await?;
    if let Some((mode, _)) = case.faults {
        plan.set_mode(mode);
        plan.set_ratio(0.2);
    }
    for step in &case.steps {
        match step {
            Step::Deliver(index) => {
                engine
                    .deliver(&case.touches[*index].delivery(*index, base))
                    .await
            }
            Step::RunJobs => engine.run_jobs().await,
        }
    }
    engine.run_jobs().await;
    plan.set_ratio(0.0);
    Some(engine.state().await)
}

/// Where two states part: the lines after their common start and before their common end.
fn difference(reference: &str, scheduled: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (reference.lines().collect(), scheduled.lines().collect());
    let start = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let end = a[start..]
        .iter()
        .rev()
        .zip(b[start..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let context = start.saturating_sub(12);
    format!(
        "the states part at line {start}:\n{}\n--- in order:\n{}\n--- as scheduled:\n{}",
        a[context..start].join("\n"),
        a[start..a.len() - end].join("\n"),
        b[start..b.len() - end].join("\n")
    )
}

fn every_order_ends_alike(backend: Backend, cases: u32) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if backend == Backend::Dynamo && runtime.block_on(dynamo_client()).is_none() {
        return;
    }
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 32,
        ..Config::default()
    });
    let base = base();
    runner
        .run(&case(), |case| {
            let (reference, scheduled) = runtime.block_on(async {
                (
                    in_order(backend, &case.touches, base).await.unwrap(),
                    as_scheduled(backend, &case, base).await.unwrap(),
                )
            });
            if reference == scheduled {
                Ok(())
            } else {
                Err(TestCaseError::fail(difference(&reference, &scheduled)))
            }
        })
        .unwrap();
}

/// The example behind the property: Meta's retry brings yesterday's ad referral after today's.
async fn an_earlier_ad_delivered_late_replaces_the_later_one_and_its_counts(backend: Backend) {
    let plan = FaultPlan::ratio(0.0, 1);
    let Some((engine, _guard)) = engine(backend, &plan).await else {
        return;
    };
    let base = base();
    let ad = |index: usize, seconds: i64, ad: &str| {
        Touch::WhatsApp {
            contact: 0,
            seconds,
            text: "hello",
            ad: Some(ad.to_owned()),
            name: "Ana",
        }
        .delivery(index, base)
    };
    engine.deliver(&ad(1, 86_400, "ad-today")).await;
    engine.deliver(&ad(0, 0, "ad-yesterday")).await;
    let shown = contact(&engine.webhook, WHATSAPP, "15553000000")
        .await
        .unwrap();
    assert_eq!(shown["acquisition"]["ad_id"], "ad-yesterday", "{shown}");
    let ads: Vec<&Value> = shown["touches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["ad_id"])
        .collect();
    assert_eq!(ads, ["ad-yesterday", "ad-today"], "touches in time order");
    let counters = nonzero_counters(engine.stores.contacts.as_ref(), WHATSAPP).await;
    let counted = |offset: i64| -> Vec<(String, u64)> {
        let day = shared::time::Timestamp::from_unix_seconds(base + offset)
            .unwrap()
            .day();
        counters
            .iter()
            .filter(|(on, _, _)| *on == day)
            .map(|(_, name, count)| (name.clone(), *count))
            .collect()
    };
    assert_eq!(counted(86_400), [], "nothing is left on the later day");
    assert_eq!(
        counted(0),
        [
            ("kind:meta_ad".to_owned(), 1),
            ("new_contacts".to_owned(), 1),
            ("platform:facebook".to_owned(), 1),
            ("source:ads".to_owned(), 1)
        ]
    );
}

/// Plain tests (not `on_every_store!`): proptest drives its own runtime.
mod property {
    mod embedded {
        #[test]
        fn every_arrival_order_ends_as_delivering_in_order() {
            super::super::every_order_ends_alike(
                crate::Backend::Embedded,
                super::super::EMBEDDED_CASES,
            );
        }
    }

    mod dynamo {
        #[test]
        fn every_arrival_order_ends_as_delivering_in_order() {
            super::super::every_order_ends_alike(
                crate::Backend::Dynamo,
                super::super::DYNAMO_CASES,
            );
        }
    }
}
