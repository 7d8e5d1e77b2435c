//! The local composition of the engine: every function's router on one `axum` app, over one
//! store, with an in-process queue feeding the same matcher code the SQS worker runs.

use axum::Router;
use shared::config::Secrets;
use shared::matching::{InProcessQueue, Matcher};
use shared::store::{ContactStore, RuleStore};
use std::sync::Arc;

pub struct LocalEngine {
    pub app: Router,
    /// The in-process match queue, for inspecting dead letters.
    pub match_queue: Arc<InProcessQueue>,
}

/// Builds the app; must run inside a Tokio runtime (it starts the matcher task).
pub fn engine(
    secrets: &Secrets,
    contacts: Arc<dyn ContactStore>,
    rules: Arc<dyn RuleStore>,
) -> LocalEngine {
    let matcher = Arc::new(Matcher::new(contacts.clone(), rules.clone()));
    let stats_contacts = contacts.clone();
    let match_queue = InProcessQueue::start(matcher);
    let webhook = webhook::router(webhook::WebhookState::new(
        secrets,
        contacts,
        match_queue.clone(),
    ));
    let rules = rules::router(rules::RulesState::new(
        &secrets.admin_api_key,
        rules,
        stats_contacts,
    ));
    LocalEngine {
        app: shared::http::serve_json_errors(webhook.merge(rules)),
        match_queue,
    }
}
