//! Helpers for the integration tests: the stores under test, a signed-delivery builder, and
//! one-shot requests against the routers.

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use shared::config::Secrets;
use shared::contact::store::ContactStore;
use shared::erasure::{Erased, Erasure, ErasureStore};
use shared::ids::InstanceId;
use shared::meta;
use shared::queue::{JobQueue, MatchJob, QueueError, QueueJob};
use shared::revenue::store::RevenueStore;
use shared::secret::{AdminKeys, RotatingSecret, Secret};
use shared::store::EmbeddedStore;
use shared::store::StoreError;
use shared::store::dynamo::catalog::{CatalogTables, DynamoCatalogStore};
use shared::store::dynamo::erasure::DynamoErasureStore;
use shared::store::dynamo::outbound::{DynamoOutboundStore, OutboundTables};
use shared::store::dynamo::revenue::{DynamoRevenueStore, RevenueTables};
use shared::store::dynamo::spend::{DynamoSpendStore, SpendTables};
use shared::store::dynamo::widget::{DynamoWidgetStore, WidgetTables};
use shared::store::dynamo::{DynamoStore, TableNames};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

pub mod capacity;

pub const APP_SECRET: &str = "test-app-secret-0123456789";
pub const VERIFY_TOKEN: &str = "test-verify-token";
pub const ADMIN_KEY: &str = "test-admin-key-0123456789";
pub const POSTBACK_TOKEN: &str = "test-postback-token-0123456789";
pub const LINK_SECRET: &str = "test-link-secret-0123456789";
/// Where tests' tracked links point.
pub const PUBLIC_BASE_URL: &str = "https://links.test";

pub fn secrets() -> Secrets {
    Secrets {
        meta_app_secret: Secret::new(APP_SECRET),
        meta_verify_token: Secret::new(VERIFY_TOKEN),
        admin_keys: AdminKeys::admin_only(RotatingSecret::new(Secret::new(ADMIN_KEY))),
        postback_token: Secret::new(POSTBACK_TOKEN),
        link_secret: Secret::new(LINK_SECRET),
        meta_access_token: None,
    }
}

/// The sample Meta payloads shipped in `tests/fixtures/meta/`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/meta")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// A file of `tests/fixtures/<folder>/`.
pub fn fixture_in(folder: &str, name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(folder)
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

pub fn fixture_names() -> Vec<String> {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/meta");
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .expect("fixtures folder")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    names
}

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Dynamo,
}

pub use local_server::Stores;

/// A store of the given kind, empty, private to the calling test. `None` when the DynamoDB
/// emulator is not configured and the run does not require it (plain `cargo test`); the test
/// command sets `REQUIRE_EMULATORS=1`, which turns that into a failure.
pub async fn fresh_stores(backend: Backend) -> Option<(Stores, StoreGuard)> {
    match backend {
        Backend::Embedded => {
            let folder = tempfile::tempdir().expect("temp dir");
            let store =
                EmbeddedStore::open(&folder.path().join("engine.redb")).expect("open store");
            Some((
                Stores::of(store.clone()),
                StoreGuard {
                    _folder: Some(folder),
                    embedded: Some(store),
                    dynamo_prefix: None,
                },
            ))
        }
        Backend::Dynamo => {
            let client = dynamo_client().await?;
            let prefix = format!("t{}", ulid::Ulid::new()).to_lowercase();
            let stores = dynamo_stores(&client, &prefix);
            let tables = TableNames::prefixed(&prefix);
            DynamoStore::new(client.clone(), tables)
                .create_tables()
                .await
                .expect("create tables in DynamoDB Local");
            DynamoWidgetStore::new(client.clone(), WidgetTables::prefixed(&prefix))
                .create_tables()
                .await
                .expect("create widget tables in DynamoDB Local");
            DynamoRevenueStore::new(client.clone(), RevenueTables::prefixed(&prefix))
                .create_tables()
                .await
                .expect("create revenue tables in DynamoDB Local");
            DynamoSpendStore::new(client.clone(), SpendTables::prefixed(&prefix))
                .create_tables()
                .await
                .expect("create spend tables in DynamoDB Local");
            DynamoCatalogStore::new(client.clone(), CatalogTables::prefixed(&prefix))
                .create_tables()
                .await
                .expect("create catalog tables in DynamoDB Local");
            DynamoOutboundStore::new(client, OutboundTables::prefixed(&prefix))
                .create_tables()
                .await
                .expect("create the outbound table in DynamoDB Local");
            Some((
                stores,
                StoreGuard {
                    _folder: None,
                    embedded: None,
                    dynamo_prefix: Some(prefix),
                },
            ))
        }
    }
}

/// The DynamoDB stores over the tables named with `prefix`, with nothing in memory yet.
pub fn dynamo_stores(client: &aws_sdk_dynamodb::Client, prefix: &str) -> Stores {
    let store = Arc::new(DynamoStore::new(
        client.clone(),
        TableNames::prefixed(prefix),
    ));
    Stores {
        contacts: store.clone(),
        rules: store.clone(),
        jobs: store.clone(),
        revenue: Arc::new(DynamoRevenueStore::new(
            client.clone(),
            RevenueTables::prefixed(prefix),
        )),
        widgets: Arc::new(DynamoWidgetStore::new(
            client.clone(),
            WidgetTables::prefixed(prefix),
        )),
        erasure: Arc::new(DynamoErasureStore::new(
            client.clone(),
            &TableNames::prefixed(prefix),
            RevenueTables::prefixed(prefix),
        )),
        instances: store.clone(),
        spend: Arc::new(DynamoSpendStore::new(
            client.clone(),
            SpendTables::prefixed(prefix),
        )),
        goals: store,
        catalog: Arc::new(DynamoCatalogStore::new(
            client.clone(),
            CatalogTables::prefixed(prefix),
        )),
        outbound: Arc::new(DynamoOutboundStore::new(
            client.clone(),
            OutboundTables::prefixed(prefix),
        )),
        vault: memory_vault(prefix),
    }
}

/// The secret vault beside a DynamoDB run: Parameter Store is not in DynamoDB Local, so the
/// tests' stand-in keeps the entries in memory, one vault per table prefix (shared by every
/// "process" of the run). The Parameter Store vault has its own contract run on moto.
pub fn memory_vault(prefix: &str) -> Arc<dyn shared::outbound::store::SecretVault> {
    static VAULTS: std::sync::LazyLock<Mutex<std::collections::HashMap<String, Arc<MemoryVault>>>> =
        std::sync::LazyLock::new(Default::default);
    VAULTS
        .lock()
        .unwrap()
        .entry(prefix.to_owned())
        .or_default()
        .clone()
}

/// Secret entries in memory.
#[derive(Default)]
pub struct MemoryVault(Mutex<std::collections::HashMap<String, Secret>>);

#[async_trait::async_trait]
impl shared::outbound::store::SecretVault for MemoryVault {
    async fn put_secret(
        &self,
        reference: &shared::outbound::SecretRef,
        value: &Secret,
    ) -> Result<(), StoreError> {
        self.0
            .lock()
            .unwrap()
            .insert(reference.0.clone(), value.clone());
        Ok(())
    }

    async fn get_secret(
        &self,
        reference: &shared::outbound::SecretRef,
    ) -> Result<Option<Secret>, StoreError> {
        Ok(self.0.lock().unwrap().get(&reference.0).cloned())
    }

    async fn delete_secret(
        &self,
        reference: &shared::outbound::SecretRef,
    ) -> Result<(), StoreError> {
        self.0.lock().unwrap().remove(&reference.0);
        Ok(())
    }
}

impl StoreGuard {
    /// The stores over the same data as a new process opens them: new DynamoDB stores with
    /// nothing in memory; the same embedded store (a file opens once per process, and the
    /// embedded store keeps nothing in memory between calls).
    pub async fn same_stores_in_a_new_process(&self) -> Stores {
        match (&self.embedded, &self.dynamo_prefix) {
            (Some(store), _) => Stores::of(store.clone()),
            (None, Some(prefix)) => {
                let client = dynamo_client().await.expect("DynamoDB Local is running");
                dynamo_stores(&client, prefix)
            }
            (None, None) => unreachable!("a guard holds one store"),
        }
    }
}

/// The contact side of `fresh_stores`.
pub async fn fresh_store(backend: Backend) -> Option<(Arc<dyn ContactStore>, StoreGuard)> {
    fresh_stores(backend)
        .await
        .map(|(stores, guard)| (stores.contacts, guard))
}

/// Keeps a test's temporary files alive as long as its store.
pub struct StoreGuard {
    _folder: Option<tempfile::TempDir>,
    /// The embedded store itself, for tests that read every table.
    pub embedded: Option<EmbeddedStore>,
    /// The DynamoDB tables' name prefix, for tests that scan every table.
    pub dynamo_prefix: Option<String>,
}

/// A match queue that records jobs (and fails on demand) instead of running the matcher, so
/// webhook tests see exactly what the webhook wrote.
#[derive(Default)]
pub struct RecordingQueue {
    pub jobs: Mutex<Vec<QueueJob>>,
    pub failing: AtomicBool,
}

#[async_trait::async_trait]
impl JobQueue for RecordingQueue {
    async fn enqueue(&self, job: &QueueJob) -> Result<(), QueueError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(QueueError("injected queue fault".to_owned()));
        }
        self.jobs.lock().unwrap().push(job.clone());
        Ok(())
    }
}

impl RecordingQueue {
    pub fn job_count(&self) -> usize {
        self.jobs.lock().unwrap().len()
    }

    pub fn match_jobs(&self) -> Vec<MatchJob> {
        let jobs = self.jobs.lock().unwrap();
        jobs.iter()
            .filter_map(|job| match job {
                QueueJob::Match(job) => Some(job.clone()),
                _ => None,
            })
            .collect()
    }
}

/// SDK configuration for an emulator the test command started, at the URL in `variable`.
/// `None` (with a note) when it is unset, unless `REQUIRE_EMULATORS` is set: then it fails.
pub async fn emulator_config(variable: &str) -> Option<aws_config::SdkConfig> {
    let Ok(endpoint) = std::env::var(variable) else {
        assert!(
            std::env::var("REQUIRE_EMULATORS").is_err(),
            "REQUIRE_EMULATORS is set but {variable} is not: run infra/scripts/test.sh"
        );
        eprintln!(
            "{variable} is not set: skipping the emulator run (infra/scripts/test.sh runs it)"
        );
        return None;
    };
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .load()
        .await;
    Some(config)
}

/// A client for the DynamoDB Local the test command started (`DYNAMODB_ENDPOINT`).
pub async fn dynamo_client() -> Option<aws_sdk_dynamodb::Client> {
    Some(aws_sdk_dynamodb::Client::new(
        &emulator_config("DYNAMODB_ENDPOINT").await?,
    ))
}

/// A client for the moto server the test command started (`SQS_ENDPOINT`).
pub async fn sqs_client() -> Option<aws_sdk_sqs::Client> {
    Some(aws_sdk_sqs::Client::new(
        &emulator_config("SQS_ENDPOINT").await?,
    ))
}

/// The webhook function over `store`, with a recording match queue, and the contact read of
/// the contacts function over the same store, so that a test reads back what a delivery wrote.
pub fn webhook_app(store: Arc<dyn ContactStore>) -> Router {
    webhook_app_with_queue(store, Arc::new(RecordingQueue::default()))
}

/// The same with a given match queue. Nothing can be erased through it (see `NoErasure`).
pub fn webhook_app_with_queue(store: Arc<dyn ContactStore>, queue: Arc<dyn JobQueue>) -> Router {
    webhook_app_with_goals(store, queue, Arc::new(NoGoals))
}

/// The same with the instances' goals read from `goals` (through the webhook's cache).
pub fn webhook_app_with_goals(
    store: Arc<dyn ContactStore>,
    queue: Arc<dyn JobQueue>,
    goals: Arc<dyn shared::goals::store::GoalStore>,
) -> Router {
    let webhook = webhook::router(webhook::WebhookState::new(
        &secrets(),
        store.clone(),
        queue,
        goals,
    ));
    let contacts = contacts::router(contacts::ContactsState::new(
        &secrets().admin_keys,
        store,
        Arc::new(NoErasure),
        Arc::new(NoSpend),
        Arc::new(NoGoals),
        Arc::new(NoSpend),
    ));
    shared::http::serve_json_errors(webhook.merge(contacts))
}

/// A goal store for tests about deliveries only: no instance has a goal, and none can be made.
pub struct NoGoals;

#[async_trait::async_trait]
impl shared::goals::store::GoalStore for NoGoals {
    async fn load_goals(
        &self,
        _instance_id: &InstanceId,
    ) -> Result<shared::goals::GoalSet, StoreError> {
        Ok(shared::goals::GoalSet::default())
    }

    async fn save_goals(
        &self,
        _instance_id: &InstanceId,
        _goals: &shared::goals::GoalSet,
        _expected_version: u64,
    ) -> Result<shared::store::CommitOutcome, StoreError> {
        Err(StoreError::Unavailable(
            "no goal store in this test".to_owned(),
        ))
    }
}

/// An erasure store for tests about Meta deliveries only: erasing answers unavailable.
pub struct NoErasure;

#[async_trait::async_trait]
impl ErasureStore for NoErasure {
    async fn erase_contact(&self, _: &Erasure) -> Result<Erased, StoreError> {
        Err(StoreError::Unavailable(
            "no erasure store in this test".to_owned(),
        ))
    }
}

/// A spend store for tests about Meta deliveries only: it names no ad and stores nothing.
pub struct NoSpend;

#[async_trait::async_trait]
impl shared::spend::store::SpendStore for NoSpend {
    async fn upsert_spend(
        &self,
        _: &[shared::spend::SpendRow],
    ) -> Result<shared::spend::Upserted, StoreError> {
        Err(StoreError::Unavailable(
            "no spend store in this test".to_owned(),
        ))
    }

    async fn load_spend(
        &self,
        _: &str,
        _: &str,
    ) -> Result<Vec<shared::spend::SpendRow>, StoreError> {
        Ok(Vec::new())
    }

    async fn ad_names(&self, _: &[String]) -> Result<Vec<shared::spend::AdNames>, StoreError> {
        Ok(Vec::new())
    }
}

/// Nor a catalog: it names no product and stores none.
#[async_trait::async_trait]
impl shared::catalog::store::CatalogStore for NoSpend {
    async fn upsert_products(
        &self,
        _: &[shared::catalog::Product],
    ) -> Result<shared::spend::Upserted, StoreError> {
        Err(StoreError::Unavailable(
            "no catalog store in this test".to_owned(),
        ))
    }

    async fn products(
        &self,
        _: &[(String, String)],
    ) -> Result<Vec<shared::catalog::Product>, StoreError> {
        Ok(Vec::new())
    }
}

/// The rules function over `stores`, and the contacts function beside it (backfill and stats
/// tests list the contacts they changed).
pub fn rules_app(stores: &Stores) -> Router {
    rules_app_with_queue(stores, Arc::new(RecordingQueue::default()))
}

/// The same with a given queue for backfill pages.
pub fn rules_app_with_queue(stores: &Stores, queue: Arc<dyn JobQueue>) -> Router {
    let keys = secrets().admin_keys;
    shared::http::serve_json_errors(
        rules_router(&keys, stores, queue).merge(contacts_router(&keys, stores)),
    )
}

fn rules_router(keys: &AdminKeys, stores: &Stores, queue: Arc<dyn JobQueue>) -> Router {
    rules::router(rules::RulesState::new(
        keys,
        stores.rules.clone(),
        stores.contacts.clone(),
        stores.jobs.clone(),
        queue,
        stores.widgets.clone(),
        stores.goals.clone(),
    ))
}

fn contacts_router(keys: &AdminKeys, stores: &Stores) -> Router {
    contacts::router(contacts::ContactsState::new(
        keys,
        stores.contacts.clone(),
        stores.erasure.clone(),
        stores.spend.clone(),
        stores.goals.clone(),
        stores.catalog.clone(),
    ))
}

/// The read-only key of the dashboard's tests.
pub const READONLY_KEY: &str = "test-readonly-key-0123456789";

/// Signs in to `dashboard` with `key`: the session cookie (`name=value`) its pages take.
pub async fn dashboard_cookie(dashboard: &Router, key: &str) -> String {
    let request = http::Request::post("/app/login")
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(axum::body::Body::from(format!("key={key}")))
        .unwrap();
    let response = tower::ServiceExt::oneshot(dashboard.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), http::StatusCode::SEE_OTHER);
    let cookie = response.headers()[http::header::SET_COOKIE]
        .to_str()
        .unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

/// The dashboard over `stores`, opened by [`ADMIN_KEY`] or [`READONLY_KEY`], beside the rules
/// and contacts functions under the same keys so a test compares the pages with the API.
pub fn dashboard_app(stores: &Stores) -> Router {
    dashboard_app_with_queue(stores, Arc::new(RecordingQueue::default()))
}

/// The same with a given queue for the backfill pages both the dashboard and the API start.
pub fn dashboard_app_with_queue(stores: &Stores, queue: Arc<dyn JobQueue>) -> Router {
    let keys = AdminKeys {
        readonly: Some(RotatingSecret::new(Secret::new(READONLY_KEY))),
        ..secrets().admin_keys
    };
    shared::http::serve_json_errors(
        dashboard_router(&keys, stores, queue.clone())
            .merge(rules_router(&keys, stores, queue))
            .merge(contacts_router(&keys, stores)),
    )
}

fn dashboard_router(keys: &AdminKeys, stores: &Stores, queue: Arc<dyn JobQueue>) -> Router {
    let state = dashboard::DashboardState::new(
        keys,
        stores.rules.clone(),
        stores.contacts.clone(),
        stores.revenue.clone(),
        stores.jobs.clone(),
        queue,
        stores.instances.clone(),
        stores.spend.clone(),
        stores.goals.clone(),
        stores.catalog.clone(),
    );
    state.show_deliveries_of(stores.outbound.clone());
    dashboard::router(state)
}

/// Every route of every function over `stores`, with the in-process matcher: the local server.
pub fn engine_app(stores: &Stores) -> local_server::LocalEngine {
    local_server::engine(&secrets(), stores, PUBLIC_BASE_URL)
}

/// The click redirect over `stores`, queueing the clicks it cannot record on a recording queue.
pub fn clicks_app(stores: &Stores) -> Router {
    shared::http::serve_json_errors(clicks_router(stores.revenue.clone()))
}

fn clicks_router(store: Arc<dyn RevenueStore>) -> Router {
    clicks::router(clicks::ClicksState::new(
        &secrets(),
        store,
        Arc::new(RecordingQueue::default()),
    ))
}

/// The postback function and the revenue admin API (offers, sends, reports, journeys) over
/// `store`, as the local server serves them together.
pub fn postback_app(stores: &Stores) -> Router {
    shared::http::serve_json_errors(
        postback_router(stores.revenue.clone()).merge(revenue_router(
            stores.revenue.clone(),
            stores.contacts.clone(),
        )),
    )
}

/// The postback function alone over `store`.
pub fn postback_router(store: Arc<dyn RevenueStore>) -> Router {
    postback::router(postback::PostbackState::new(&secrets(), store))
}

/// The revenue function alone over `store`, resolving contact ids with `contacts`.
pub fn revenue_router(store: Arc<dyn RevenueStore>, contacts: Arc<dyn ContactStore>) -> Router {
    revenue::router(revenue::RevenueState::new(
        &secrets(),
        PUBLIC_BASE_URL,
        store,
        contacts,
    ))
}

/// Each function's router alone, by crate name, over `stores`: what the template's routes are
/// checked against.
pub fn function_routers(stores: &Stores) -> Vec<(&'static str, Router)> {
    function_routers_with(&secrets(), stores)
}

/// The same under `secrets`.
pub fn function_routers_with(secrets: &Secrets, stores: &Stores) -> Vec<(&'static str, Router)> {
    let queue: Arc<dyn JobQueue> = Arc::new(RecordingQueue::default());
    vec![
        (
            "webhook",
            webhook::router(webhook::WebhookState::new(
                secrets,
                stores.contacts.clone(),
                queue.clone(),
                stores.goals.clone(),
            )),
        ),
        (
            "widget",
            widget::router(widget::WidgetState::new(
                stores.contacts.clone(),
                stores.widgets.clone(),
            )),
        ),
        (
            "clicks",
            clicks::router(clicks::ClicksState::new(
                secrets,
                stores.revenue.clone(),
                queue.clone(),
            )),
        ),
        (
            "postback",
            postback::router(postback::PostbackState::new(
                secrets,
                stores.revenue.clone(),
            )),
        ),
        (
            "rules",
            rules_router(&secrets.admin_keys, stores, queue.clone()),
        ),
        ("contacts", contacts_router(&secrets.admin_keys, stores)),
        (
            "dashboard",
            dashboard_router(&secrets.admin_keys, stores, queue),
        ),
        (
            "revenue",
            revenue::router(revenue::RevenueState::new(
                secrets,
                PUBLIC_BASE_URL,
                stores.revenue.clone(),
                stores.contacts.clone(),
            )),
        ),
        ("spend", spend_router(&secrets.admin_keys, stores, None)),
        (
            "destinations",
            destinations::router(destinations::DestinationsState::new(
                &secrets.admin_keys,
                stores.outbound.clone(),
                stores.vault.clone(),
                stores.goals.clone(),
                shared::outbound::draft::DraftRules::default(),
            )),
        ),
    ]
    .into_iter()
    .map(|(name, router)| (name, shared::http::serve_json_errors(router)))
    .collect()
}

/// The spend function's router over `stores`, with the Meta pull `meta` (a fake Graph server's
/// in tests) or none.
pub fn spend_router(keys: &AdminKeys, stores: &Stores, meta: Option<spend::MetaSync>) -> Router {
    spend::router(spend::SpendState::new(keys, stores.spend_stores(), meta))
}

pub fn admin_request(method: &str, path: &str, body: Option<Value>) -> Request<Body> {
    let builder = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {ADMIN_KEY}"));
    match body {
        Some(json) => builder
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&json).unwrap()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

/// A POST of `body` to the Meta webhook, signed as Meta signs it.
pub fn signed_delivery(body: &[u8]) -> Request<Body> {
    let signature = meta::sign(&Secret::new(APP_SECRET), body);
    Request::post("/webhooks/meta")
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature)
        .body(Body::from(body.to_vec()))
        .unwrap()
}

pub fn admin_get(path: &str) -> Request<Body> {
    Request::get(path)
        .header("authorization", format!("Bearer {ADMIN_KEY}"))
        .body(Body::empty())
        .unwrap()
}

/// Sends one request; answers the status and the body, parsed as JSON when it is JSON.
pub async fn call(app: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app
        .clone()
        .oneshot(request)
        .await
        .expect("infallible router");
    status_and_body(response).await
}

/// A response's status and body, parsed as JSON when it is JSON.
pub async fn status_and_body(response: http::Response<Body>) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, body)
}

/// Delivers `body` as Meta does after a failure: again and again until it is accepted. Every
/// refusal must be a 5xx (a fault, retried); answers how many there were.
pub async fn deliver_until_accepted(app: &Router, body: &[u8]) -> usize {
    let mut failures = 0;
    loop {
        let (status, _) = call(app, signed_delivery(body)).await;
        if status == StatusCode::OK {
            return failures;
        }
        assert!(
            status.is_server_error(),
            "a fault must answer 5xx, got {status}"
        );
        failures += 1;
    }
}

/// The contact as the admin API shows it, or `None` on 404.
pub async fn contact(app: &Router, instance_id: &str, contact_id: &str) -> Option<Value> {
    let (status, body) = call(
        app,
        admin_get(&format!("/instances/{instance_id}/contacts/{contact_id}")),
    )
    .await;
    match status {
        StatusCode::OK => Some(body),
        StatusCode::NOT_FOUND => None,
        other => panic!("unexpected {other}: {body}"),
    }
}

/// Creates (or rotates) `instance`'s widget for `origins`; answers its key.
pub async fn configure_widget(app: &Router, instance: &str, origins: &[&str]) -> String {
    let (status, body) = call(
        app,
        admin_request(
            "POST",
            &format!("/instances/{instance}/widget"),
            Some(serde_json::json!({"allowed_origins": origins})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["widget_key"].as_str().unwrap().to_owned()
}

/// A widget POST from `origin` (a browser's, or forged) with `key`; answers the status,
/// `Access-Control-Allow-Origin` and the body.
pub async fn widget_post(
    app: &Router,
    path: &str,
    origin: Option<&str>,
    key: &str,
    body: Value,
) -> (StatusCode, Option<String>, Value) {
    let mut request = Request::post(path)
        .header("content-type", "application/json")
        .header("x-widget-key", key);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body.to_string())).unwrap())
        .await
        .expect("infallible router");
    let allowed = response
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = status_and_body(response).await;
    (status, allowed, body)
}

/// `seconds` as an RFC 3339 time with milliseconds, as the API writes times.
pub fn rfc3339(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A WhatsApp text message from a person named by phone, BSUID or both (the ids an identity
/// merge joins), with the profile name Meta sends beside them.
pub fn named_message(
    instance: &str,
    phone: Option<&str>,
    bsuid: Option<&str>,
    id: &str,
    at: i64,
    text: &str,
) -> Vec<u8> {
    let mut body: Value =
        serde_json::from_slice(&whatsapp_message(instance, "0", id, at, text, None)).unwrap();
    let value = &mut body["entry"][0]["changes"][0]["value"];
    value["contacts"] = serde_json::json!([{"profile": {"name": "Marta"}}]);
    value["messages"][0].as_object_mut().unwrap().remove("from");
    for (contact_field, message_field, id) in
        [("wa_id", "from", phone), ("user_id", "from_user_id", bsuid)]
    {
        if let Some(id) = id {
            value["contacts"][0][contact_field] = serde_json::json!(id);
            value["messages"][0][message_field] = serde_json::json!(id);
        }
    }
    serde_json::to_vec(&body).unwrap()
}

/// A WhatsApp delivery of one text message, with an optional referral object.
pub fn whatsapp_message(
    phone_number_id: &str,
    wa_id: &str,
    message_id: &str,
    unix_seconds: i64,
    text: &str,
    referral: Option<Value>,
) -> Vec<u8> {
    let mut message = serde_json::json!({
        "from": wa_id, "id": message_id, "timestamp": unix_seconds.to_string(),
        "type": "text", "text": {"body": text}
    });
    if let Some(referral) = referral {
        message["referral"] = referral;
    }
    serde_json::to_vec(&serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "waba", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": phone_number_id},
            "contacts": [{"profile": {"name": "Test Person"}, "wa_id": wa_id}],
            "messages": [message]
        }}]}]
    }))
    .unwrap()
}

/// `count` WhatsApp contacts (`5511000000` + n, named `=Person <n>`, a formula for the CSV
/// guard) a minute apart from `start`, the oldest from a Meta ad (`ad`), ingested straight
/// into the store: listings longer than a page without a webhook call each.
pub async fn ingest_many_contacts(stores: &Stores, instance: &str, start: i64, count: i64) {
    let ingestor = shared::ingest::Ingestor::new(stores.contacts.clone());
    let events: Vec<shared::ingest::InboundEvent> = (0..count)
        .map(|n| {
            let at = shared::time::Timestamp::from_unix_seconds(start + 60 * n).unwrap();
            shared::ingest::InboundEvent {
                dedupe_key: format!("m{n}"),
                instance_id: shared::ids::InstanceId::parse(instance).unwrap(),
                contact_id: shared::ids::ContactId::parse(&format!("{}", 5_511_000_000 + n))
                    .unwrap(),
                channel: shared::contact::Channel::Whatsapp,
                display_name: Some(format!("=Person {n}")),
                occurred_at: at,
                message: Some(shared::contact::InboundMessage {
                    id: format!("m{n}"),
                    kind: "text".into(),
                    text: Some("hi".into()),
                    timestamp: at,
                    details: None,
                }),
                referral: (n == 0).then(|| {
                    shared::contact::Referral::MetaAd(shared::contact::MetaReferral {
                        ad_id: Some("ad".into()),
                        ..shared::contact::MetaReferral::minimal(
                            shared::contact::MetaPlatform::Facebook,
                            at,
                        )
                    })
                }),
                identity: shared::contact::Identity::default(),
            }
        })
        .collect();
    for batch in events.chunks(20) {
        let ingests = batch
            .iter()
            .map(|event| ingestor.ingest(event, event.occurred_at));
        for done in futures::future::join_all(ingests).await {
            done.unwrap();
        }
    }
}

/// A click-to-WhatsApp ad referral for `whatsapp_message`.
pub fn ctwa_referral(ad_id: &str) -> Value {
    serde_json::json!({
        "source_url": "https://fb.me/abc", "source_id": ad_id, "source_type": "ad",
        "headline": format!("headline {ad_id}"), "media_type": "image", "ctwa_clid": format!("clid-{ad_id}")
    })
}

/// Runs each named `async fn(Backend)` once per store implementation, as separate tests.
#[macro_export]
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Embedded).await
                }
            )*
        }
        mod dynamo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Dynamo).await
                }
            )*
        }
    };
}

/// A contact as the admin API shows it, without what the clock decides (when the matcher ran,
/// when a rule's attribution was written): what must come out equal from two runs of the same
/// events, whatever their faults or order.
pub fn comparable_contact(mut contact: Value) -> Value {
    let object = contact.as_object_mut().expect("a contact object");
    let checked = object.remove("rules_checked_at").is_some();
    object.insert("rules_checked".to_owned(), checked.into());
    if contact["acquisition"]["kind"] == "rule" {
        contact["acquisition"]
            .as_object_mut()
            .expect("an acquisition object")
            .remove("captured_at");
    }
    contact
}

/// Every counter of `instance_id` that is not zero, as (day, name, count), over all days: a
/// counter moved off a day leaves a zero there, the same as none.
pub async fn nonzero_counters(
    store: &dyn ContactStore,
    instance_id: &str,
) -> Vec<(String, String, u64)> {
    let days = store
        .load_counter_days(
            &InstanceId::parse(instance_id).expect("an instance id"),
            "1970-01-01",
            "2100-01-01",
        )
        .await
        .expect("counters");
    days.into_iter()
        .flat_map(|(day, names)| {
            names
                .into_iter()
                .filter(|(_, count)| *count > 0)
                .map(move |(name, count)| (day.clone(), name, count))
        })
        .collect()
}

/// Log output kept in memory, for tests that read what was logged (a subscriber's writer).
#[derive(Clone, Default)]
pub struct Captured(pub Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
