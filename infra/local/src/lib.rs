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
            + CatalogStore,
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
            catalog: store,
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
    let webhook = webhook::router(webhook::WebhookState::new(
        secrets,
        stores.contacts.clone(),
        match_queue.clone(),
        stores.goals.clone(),
    ));
    let widget = widget::router(widget::WidgetState::new(
        stores.contacts.clone(),
        stores.widgets.clone(),
    ));
    let clicks = clicks::router(clicks::ClicksState::new(
        secrets,
        stores.revenue.clone(),
        match_queue.clone(),
    ));
    let postback = postback::router(postback::PostbackState::new(
        secrets,
        stores.revenue.clone(),
    ));
    let rules = rules::router(rules::RulesState::new(
        &secrets.admin_keys,
        stores.rules.clone(),
        stores.contacts.clone(),
        stores.jobs.clone(),
        match_queue.clone(),
        stores.widgets.clone(),
        stores.goals.clone(),
    ));
    let contacts = contacts::router(contacts::ContactsState::new(
        &secrets.admin_keys,
        stores.contacts.clone(),
        stores.erasure.clone(),
        stores.spend.clone(),
        stores.goals.clone(),
        stores.catalog.clone(),
    ));
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
    let dashboard = dashboard::router(dashboard::DashboardState::new(
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
    ));
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
                .merge(widget_demo()),
        ),
        match_queue,
    }
}
