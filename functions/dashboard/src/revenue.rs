//! The Revenue page: the revenue report exactly as `GET /reports/revenue` gives it (the same
//! `shared::revenue::report::ReportRequest::parse` checks and `report::load` read), its totals
//! per currency, a chart of revenue per day for each currency, and the attribution models side
//! by side as `GET /reports/revenue/models` gives them (`report::load_models`).

use super::{PageError, Shared, SignedIn, chrome, html};
use crate::pages::{Chrome, Form};
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use shared::revenue::models::Model;
use shared::revenue::report::{self, Dimension, ModelReport, Report, ReportRequest};
use shared::time::Timestamp;
use std::collections::BTreeMap;

/// Tallest column of the revenue chart, in the SVG's own units.
const COLUMN_SPAN: f64 = 140.0;
/// Width of one day's column, in the SVG's own units.
const COLUMN_WIDTH: usize = 10;

/// One day's column of a currency's chart.
pub struct DayColumn {
    pub day: String,
    pub revenue: String,
    pub x: usize,
    pub y: u64,
    pub height: u64,
}

/// Revenue per day in one currency.
pub struct CurrencyChart {
    pub currency: String,
    pub width: usize,
    pub columns: Vec<DayColumn>,
}

/// An amount as a bar's length: only for drawing, never shown (the page prints the report's
/// own decimal text).
fn magnitude(amount: &impl ToString) -> f64 {
    amount.to_string().parse().unwrap_or(0.0)
}

/// One chart per currency of `by_day`, a column for every day of `days`.
fn currency_charts(days: &[String], by_day: &Report) -> Vec<CurrencyChart> {
    let mut per_currency: BTreeMap<String, BTreeMap<&str, String>> = BTreeMap::new();
    for row in &by_day.rows {
        per_currency
            .entry(row.currency.to_string())
            .or_default()
            .insert(row.key.as_str(), row.revenue.to_string());
    }
    per_currency
        .into_iter()
        .map(|(currency, revenue)| {
            let most = revenue.values().map(magnitude).fold(0.0, f64::max);
            let columns = days
                .iter()
                .enumerate()
                .map(|(index, day)| {
                    let amount = revenue.get(day.as_str()).cloned().unwrap_or_default();
                    let scaled = if most > 0.0 {
                        (magnitude(&amount).max(0.0) * COLUMN_SPAN / most).round() as u64
                    } else {
                        0
                    };
                    // A day with revenue is always visible, however small beside the best.
                    let height = scaled.max(u64::from(magnitude(&amount) > 0.0));
                    DayColumn {
                        day: day.clone(),
                        revenue: if amount.is_empty() {
                            "0".to_owned()
                        } else {
                            amount
                        },
                        x: index * COLUMN_WIDTH,
                        y: COLUMN_SPAN as u64 - height,
                        height,
                    }
                })
                .collect();
            CurrencyChart {
                currency,
                width: days.len().max(1) * COLUMN_WIDTH,
                columns,
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "revenue.html")]
pub struct RevenuePage {
    pub chrome: Chrome,
    pub report: Report,
    pub dimensions: Vec<&'static str>,
    pub group_by: &'static str,
    pub charts: Vec<CurrencyChart>,
    /// The models compared, by the page's grouping (by campaign when it is by day).
    pub models: ModelReport,
    pub model_columns: Vec<Model>,
}

impl RevenuePage {
    /// `Option<Amount>` as the table shows it.
    pub fn optional(amount: &Option<impl ToString>) -> String {
        amount
            .as_ref()
            .map_or_else(|| "—".to_owned(), ToString::to_string)
    }
}

/// `GET /app/revenue?group_by=message|creative|offer|campaign|day&since=&until=`: `day` when no
/// grouping is named (a page opens without one); every other check is the API's.
pub async fn revenue(
    State(state): State<Shared>,
    SignedIn(session): SignedIn,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let query = Form::parse(query.unwrap_or_default().as_bytes());
    // An empty field is how a form sends "none".
    let given = |name: &str| query.get(name).filter(|value| !value.is_empty());
    let request = ReportRequest::parse(
        Some(query.get("group_by").unwrap_or("day")),
        given("since"),
        given("until"),
        Timestamp::now(),
    )
    .map_err(|error| PageError::BadRequest(error.to_string()))?;
    let store = state.revenue.as_ref();
    let report = report::load(store, &request).await?;
    let by_day = if request.group_by == Dimension::Day {
        None
    } else {
        Some(report::load(store, &request.by_day()).await?)
    };
    let charts = currency_charts(&request.days(), by_day.as_ref().unwrap_or(&report));
    // Every model credits a conversion's own day: by day they would all agree.
    let models_request = ReportRequest {
        group_by: match request.group_by {
            Dimension::Day => Dimension::Campaign,
            other => other,
        },
        ..request.clone()
    };
    let models = report::load_models(store, &models_request).await?;
    let page = RevenuePage {
        chrome: chrome(&state, &session, "").await?,
        group_by: request.group_by.as_str(),
        dimensions: Dimension::ALL.iter().map(Dimension::as_str).collect(),
        charts,
        report,
        models,
        model_columns: Model::ALL.to_vec(),
    };
    Ok(html(StatusCode::OK, &page))
}
