//! Backfill over N contacts on the embedded store: the preview, then the run page by page as
//! the matcher handles it (queue hops are in-process here).
//!
//! cargo bench -p shared --bench backfill            (BACKFILL_CONTACTS=100000 by default)
//!
//! With `--features aws` and `DYNAMODB_ENDPOINT` set (DynamoDB Local, e.g. under
//! `infra/scripts/emulators.sh run`), the same on DynamoDB with `BACKFILL_DYNAMO_CONTACTS` (5000).

use async_trait::async_trait;
use shared::contact::store::ContactStore;
use shared::contact::{Channel, InboundMessage};
use shared::ids::{ContactId, InstanceId, JobId};
use shared::ingest::{InboundEvent, Ingestor};
use shared::matching::QueueWorker;
use shared::matching::backfill::JobStore;
use shared::matching::backfill::{self, BackfillJob};
use shared::queue::{BackfillPage, JobQueue, QueueError, QueueJob};
use shared::rules::store::RuleStore;
use shared::rules::{CompiledRules, MAX_RULES_PER_INSTANCE, RuleDraft, RuleId};
use shared::store::EmbeddedStore;
use shared::time::Timestamp;
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Default)]
struct Pages(Mutex<Vec<QueueJob>>);

#[async_trait]
impl JobQueue for Pages {
    async fn enqueue(&self, job: &QueueJob) -> Result<(), QueueError> {
        self.0.lock().unwrap().push(job.clone());
        Ok(())
    }
}

fn count(variable: &str, default: usize) -> usize {
    std::env::var(variable)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("engine.redb");
        let contacts = count("BACKFILL_CONTACTS", 100_000);
        // Loading is not what is measured: it skips fsync, then the store is opened as usual.
        load(
            Arc::new(EmbeddedStore::open(&path).unwrap().without_fsync()),
            contacts,
        )
        .await;
        measure("embedded", Arc::new(EmbeddedStore::open(&path).unwrap())).await;
        #[cfg(feature = "aws")]
        if std::env::var("DYNAMODB_ENDPOINT").is_ok() {
            let store = Arc::new(dynamo_local().await);
            load(store.clone(), count("BACKFILL_DYNAMO_CONTACTS", 5_000)).await;
            measure("DynamoDB Local", store).await;
        }
    });
}

#[cfg(feature = "aws")]
async fn dynamo_local() -> shared::store::dynamo::DynamoStore {
    use shared::store::dynamo::{DynamoStore, TableNames};
    let endpoint = std::env::var("DYNAMODB_ENDPOINT").unwrap();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .load()
        .await;
    let prefix = format!("bench{}", std::process::id());
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        TableNames::prefixed(&prefix),
    );
    store.create_tables().await.unwrap();
    store
}

fn instance() -> InstanceId {
    InstanceId::parse("106540352242922").unwrap()
}

/// `count` contacts over the last six days, a third of whose first messages name TikTok.
async fn load(store: Arc<dyn ContactStore>, count: usize) {
    let (instance, now) = (instance(), Timestamp::now());
    let started = Instant::now();
    {
        let ingestor = Ingestor::new(store);
        for n in 0..count {
            let at = now.plus_seconds(-((n % (6 * 86_400)) as i64));
            let text = if n % 3 == 0 {
                "Hi, I saw your TikTok ad!"
            } else {
                "hello"
            };
            let event = InboundEvent {
                dedupe_key: format!("wa:bench.{n}"),
                instance_id: instance.clone(),
                contact_id: ContactId::parse(&format!("55119{n:08}")).unwrap(),
                channel: Channel::Whatsapp,
                display_name: None,
                occurred_at: at,
                message: Some(InboundMessage {
                    id: format!("bench.{n}"),
                    kind: "text".into(),
                    text: Some(text.into()),
                    timestamp: at,
                    details: None,
                }),
                referral: None,
                identity: Default::default(),
            };
            ingestor.ingest(&event, now).await.unwrap();
        }
    }
    println!(
        "loaded {count} contacts in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

async fn measure<S: ContactStore + RuleStore + JobStore>(label: &str, store: Arc<S>) {
    let (instance, now) = (instance(), Timestamp::now());
    let draft = RuleDraft::from_json(br#"{"name": "TikTok", "platform": "tiktok", "match": {"kind": "contains", "pattern": "tiktok ad"}}"#).unwrap();
    let rule = draft.into_rule(RuleId::new(), instance.clone(), now, now);
    store
        .create_rule(&rule, MAX_RULES_PER_INSTANCE)
        .await
        .unwrap();
    let window = backfill::window(Timestamp::now(), 7);

    let started = Instant::now();
    let compiled = CompiledRules::compile(&store.list_rules(&instance).await.unwrap());
    let preview = backfill::preview(store.as_ref(), &compiled, &instance, &window, None)
        .await
        .unwrap();
    println!(
        "{label} preview: scanned {} would_update {} in {:.2} s",
        preview.scanned,
        preview.would_update,
        started.elapsed().as_secs_f64()
    );

    let job = BackfillJob::queued(JobId::new(), instance.clone(), 7, &window, None, now);
    store.create_job(&job).await.unwrap();
    let pages = Arc::new(Pages::default());
    let matcher = QueueWorker::new(store.clone(), store.clone(), store.clone());
    matcher.attach_queue(pages.clone());
    let started = Instant::now();
    let mut page = BackfillPage {
        instance_id: instance.clone(),
        job_id: job.job_id.clone(),
        page: 1,
        after: None,
    };
    loop {
        matcher
            .handle_backfill_page(&page, Timestamp::now())
            .await
            .unwrap();
        match pages.0.lock().unwrap().pop() {
            Some(QueueJob::BackfillPage(next)) => page = next,
            _ => break,
        }
    }
    let done = store
        .load_job(&instance, &job.job_id)
        .await
        .unwrap()
        .unwrap();
    println!(
        "{label} run: scanned {} updated {} in {} pages, {:.2} s",
        done.scanned,
        done.updated,
        done.pages_done,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        done.updated, preview.would_update,
        "a run updates what its preview said"
    );
}
