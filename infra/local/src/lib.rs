//! The local composition of the engine: every function's router on one `axum` app, over one
//! store, with an in-process queue feeding the same matcher code the SQS worker runs.

use axum::Router;
use axum::http::header;
use axum::routing::get;
use shared::catalog::store::CatalogStore;
use shared::config::Secrets;
use shared::contact::store::ContactStore;
use shared::erasure::ErasureStore;
use shared::goals::store::GoalStore;
use shared::instances::InstanceStore;
use shared::matching::QueueWorker;
use shared::matching::backfill::JobStore;
use shared::outbound::draft::DraftRules;
use shared::outbound::payload::Endpoints;
use shared::outbound::sender::{RetryPolicy, Sender};
use shared::outbound::store::{OutboundStore, SecretVault};
use shared::outbound::triggers::Dispatcher;
use shared::queue::InProcessQueue;
use shared::revenue::store::RevenueStore;
use shared::rules::store::RuleStore;
use shared::spend::store::SpendStore;
use shared::web::store::WidgetStore;
use std::sync::Arc;

pub mod demo;

/// One store seen through each of its traits.
#[derive(Clone)]
pub struct Stores {
    pub contacts: Arc<dyn ContactStore>,
    pub rules: Arc<dyn RuleStore>,
    pub jobs: Arc<dyn JobStore>,
    pub revenue: Arc<dyn RevenueStore>,
    pub widgets: Arc<dyn WidgetStore>,
    pub erasure: Arc<dyn ErasureStore>,
    pub instances: Arc<dyn InstanceStore>,
    pub spend: Arc<dyn SpendStore>,
    pub goals: Arc<dyn GoalStore>,
    pub catalog: Arc<dyn CatalogStore>,
    pub outbound: Arc<dyn OutboundStore>,
    pub vault: Arc<dyn SecretVault>,
}

impl Stores {
    pub fn of<
        S: ContactStore
            + RuleStore
            + JobStore
            + RevenueStore
            + WidgetStore
            + ErasureStore
            + InstanceStore
            + SpendStore
            + GoalStore
            + CatalogStore
            + OutboundStore
            + SecretVault,
    >(
        store: S,
    ) -> Self {
        let store = Arc::new(store);
        Self {
            contacts: store.clone(),
            rules: store.clone(),
            jobs: store.clone(),
            revenue: store.clone(),
            widgets: store.clone(),
            erasure: store.clone(),
            instances: store.clone(),
            spend: store.clone(),
            goals: store.clone(),
            catalog: store.clone(),
            outbound: store.clone(),
            vault: store,
        }
    }
}

impl Stores {
    /// The spend function's view of the stores.
    pub fn spend_stores(&self) -> spend::SpendStores {
        spend::SpendStores {
            spend: self.spend.clone(),
            contacts: self.contacts.clone(),
            instances: self.instances.clone(),
            revenue: self.revenue.clone(),
            goals: self.goals.clone(),
            catalog: self.catalog.clone(),
        }
    }
}

/// A demo page that loads the widget's snippet (served by the widget function at `/widget.js`).
fn widget_demo() -> Router {
    const DEMO: &str = include_str!("../assets/demo.html");
    Router::new().route(
        "/widget/demo.html",
        get(|| async { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], DEMO) }),
    )
}

pub struct LocalEngine {
    pub app: Router,
    /// The in-process match queue, for inspecting dead letters.
    pub match_queue: Arc<InProcessQueue>,
    /// The in-process outbound queue (the sender's), for inspecting dead letters.
    pub outbound_queue: Arc<InProcessQueue>,
}

/// How the local engine sends outcomes back.
#[derive(Clone)]
pub struct OutboundSettings {
    /// The platforms' URLs.
    pub endpoints: Endpoints,
    /// The sender's retries.
    pub retry: RetryPolicy,
    /// Whether webhook destinations may be `http://`.
    pub allow_http: bool,
    /// How long triggers trust the destinations they read.
    pub cache: std::time::Duration,
}

impl OutboundSettings {
    /// From the environment: the real hosts unless `META_GRAPH_URL`, `GOOGLE_DATA_MANAGER_URL`,
    /// `GOOGLE_OAUTH_URL`, `TIKTOK_EVENTS_URL` say otherwise; `http://` webhooks allowed
    /// unless `ALLOW_HTTP_DESTINATIONS=0`.
    pub fn from_env() -> Self {
        Self {
            endpoints: Endpoints::from_env(),
            retry: RetryPolicy::from_env().unwrap_or_default(),
            allow_http: shared::config::optional("ALLOW_HTTP_DESTINATIONS").as_deref() != Some("0"),
            cache: std::time::Duration::from_secs(
                shared::outbound::triggers::DESTINATIONS_CACHE_SECONDS,
            ),
        }
    }
}

/// Builds the app; must run inside a Tokio runtime (it starts the matcher task). Tracked links
/// are made under `public_base_url`.
pub fn engine(secrets: &Secrets, stores: &Stores, public_base_url: &str) -> LocalEngine {
    engine_with_matcher(secrets, stores, public_base_url, |matcher| matcher)
}

/// The same, with the matcher adjusted (tests use small backfill pages).
pub fn engine_with_matcher(
    secrets: &Secrets,
    stores: &Stores,
    public_base_url: &str,
    adjust: impl FnOnce(QueueWorker) -> QueueWorker,
) -> LocalEngine {
    engine_with(
        secrets,
        stores,
        public_base_url,
        adjust,
        OutboundSettings::from_env(),
    )
}

/// The same, with the outbound side's settings (tests point it at fakes on loopback).
pub fn engine_with(
    secrets: &Secrets,
    stores: &Stores,
    public_base_url: &str,
    adjust: impl FnOnce(QueueWorker) -> QueueWorker,
    outbound: OutboundSettings,
) -> LocalEngine {
    let sender = Sender::new(
        stores.outbound.clone(),
        stores.vault.clone(),
        stores.contacts.clone(),
        Arc::new(shared::https::HttpClient::new(
            std::time::Duration::from_secs(10),
        )),
        outbound.endpoints.clone(),
    )
    .with_retry(outbound.retry);
    let outbound_queue = InProcessQueue::start(Arc::new(sender));
    let dispatcher = Arc::new(Dispatcher::with_ttl(
        stores.outbound.clone(),
        outbound_queue.clone(),
        outbound.cache,
    ));
    let matcher = adjust(
        QueueWorker::new(
            stores.contacts.clone(),
            stores.rules.clone(),
            stores.jobs.clone(),
        )
        .with_ref_codes(stores.widgets.clone())
        .with_revenue(stores.revenue.clone()),
    );
    let match_queue = InProcessQueue::start(Arc::new(matcher));
    let webhook_state = webhook::WebhookState::new(
        secrets,
        stores.contacts.clone(),
        match_queue.clone(),
        stores.goals.clone(),
    );
    webhook_state.send_outcomes_to(dispatcher.clone());
    let webhook = webhook::router(webhook_state);
    let destinations = destinations::router(destinations::DestinationsState::new(
        &secrets.admin_keys,
        stores.outbound.clone(),
        stores.vault.clone(),
        stores.goals.clone(),
        DraftRules {
            allow_http: outbound.allow_http,
        },
    ));
    let widget_state = widget::WidgetState::new(stores.contacts.clone(), stores.widgets.clone());
    widget_state.send_outcomes_to(dispatcher.clone());
    let widget = widget::router(widget_state);
    let clicks = clicks::router(clicks::ClicksState::new(
        secrets,
        stores.revenue.clone(),
        match_queue.clone(),
    ));
    let postback_state = postback::PostbackState::new(secrets, stores.revenue.clone());
    postback_state.send_outcomes_to(dispatcher.clone());
    let postback = postback::router(postback_state);
    let rules = rules::router(rules::RulesState::new(
        &secrets.admin_keys,
        stores.rules.clone(),
        stores.contacts.clone(),
        stores.jobs.clone(),
        match_queue.clone(),
        stores.widgets.clone(),
        stores.goals.clone(),
    ));
    let contacts_state = contacts::ContactsState::new(
        &secrets.admin_keys,
        stores.contacts.clone(),
        stores.erasure.clone(),
        stores.spend.clone(),
        stores.goals.clone(),
        stores.catalog.clone(),
    );
    contacts_state.send_outcomes_to(dispatcher.clone());
    let contacts = contacts::router(contacts_state);
    let revenue = revenue::router(revenue::RevenueState::new(
        secrets,
        public_base_url,
        stores.revenue.clone(),
        stores.contacts.clone(),
    ));
    let spend = spend::router(spend::SpendState::new(
        &secrets.admin_keys,
        stores.spend_stores(),
        spend::MetaSync::from_env(secrets.meta_access_token.clone()),
    ));
    let dashboard_state = dashboard::DashboardState::new(
        &secrets.admin_keys,
        stores.rules.clone(),
        stores.contacts.clone(),
        stores.revenue.clone(),
        stores.jobs.clone(),
        match_queue.clone(),
        stores.instances.clone(),
        stores.spend.clone(),
        stores.goals.clone(),
        stores.catalog.clone(),
    );
    dashboard_state.show_deliveries_of(stores.outbound.clone());
    let dashboard = dashboard::router(dashboard_state);
    LocalEngine {
        app: shared::http::serve_json_errors(
            webhook
                .merge(widget)
                .merge(clicks)
                .merge(postback)
                .merge(rules)
                .merge(contacts)
                .merge(revenue)
                .merge(spend)
                .merge(dashboard)
                .merge(destinations)
                .merge(widget_demo()),
        ),
        match_queue,
        outbound_queue,
    }
}
