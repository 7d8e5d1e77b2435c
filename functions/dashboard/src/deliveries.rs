//! The outbound panel (`/app/instances/{instance_id}/deliveries`): the instance's last 50
//! deliveries across its destinations and their failure rate, from the same listing the admin
//! API's `GET …/destinations/{id}/deliveries` answers.

use super::{PageError, Shared, SignedIn, chrome, html, instance_path, parse_instance};
use crate::pages::Chrome;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use shared::outbound::{Delivery, DeliveryStatus};

/// Deliveries the panel shows.
const SHOWN: usize = 50;

/// One row: the delivery, and the destination it went to.
pub struct Row {
    pub destination: String,
    pub delivery: Delivery,
}

#[derive(Template)]
#[template(path = "deliveries.html")]
pub struct DeliveriesPage {
    pub chrome: Chrome,
    pub instance_id: String,
    pub instance_path: String,
    pub destinations: usize,
    pub rows: Vec<Row>,
}

impl DeliveriesPage {
    /// Failed among those the platforms answered (sent or failed), in percent with one
    /// decimal; "—" when none was answered.
    pub fn failure_rate(&self) -> String {
        let count = |status| {
            self.rows
                .iter()
                .filter(|row| row.delivery.status == status)
                .count()
        };
        let (failed, sent) = (count(DeliveryStatus::Failed), count(DeliveryStatus::Sent));
        if failed + sent == 0 {
            return "—".to_owned();
        }
        format!("{:.1} %", 100.0 * failed as f64 / (failed + sent) as f64)
    }

    pub fn status(&self, delivery: &Delivery) -> &'static str {
        delivery.status.as_str()
    }
}

pub(crate) async fn deliveries(
    State(state): State<Shared>,
    SignedIn(session): SignedIn,
    Path(raw_instance): Path<String>,
) -> Result<Response, PageError> {
    let instance_id = parse_instance(&raw_instance)?;
    let Some(store) = state.outbound.get() else {
        return Err(PageError::NotFound(
            "outcomes are not sent back from this deployment".to_owned(),
        ));
    };
    let set = store.load_destinations(&instance_id).await?;
    let mut rows = Vec::new();
    // At most 10 destinations: one newest-first read each, merged.
    for destination in &set.destinations {
        let name = destination
            .name
            .clone()
            .unwrap_or_else(|| destination.target.kind().to_owned());
        for delivery in store
            .list_deliveries(&instance_id, &destination.id, None, SHOWN)
            .await?
        {
            rows.push(Row {
                destination: name.clone(),
                delivery,
            });
        }
    }
    rows.sort_by(|a, b| b.delivery.listed_key.cmp(&a.delivery.listed_key));
    rows.truncate(SHOWN);
    let page = DeliveriesPage {
        chrome: chrome(&state, &session, instance_id.as_str()).await?,
        instance_id: instance_id.to_string(),
        instance_path: instance_path(&instance_id),
        destinations: set.destinations.len(),
        rows,
    };
    Ok(html(StatusCode::OK, &page))
}
