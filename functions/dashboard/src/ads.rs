//! The Ads page: the ads report exactly as `GET /reports/ads` gives it (the same
//! `shared::spend::report::AdsRequest::parse` checks and `report::load` read), a chart of spend
//! against conversations per day for each currency, and (for admin sessions) the import form
//! of a CSV export, read by the same `shared::spend::import::import_into` as
//! `POST /spend/import`.

use super::{PageError, Shared, SignedIn, authorize_write, chrome, html};
use crate::pages::{Chrome, Form};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use shared::revenue::report::days_from;
use shared::spend::import::{ExportFormat, ImportFailure, Imported, import_into};
use shared::spend::report::{self, AdsGrouping, AdsReport, AdsRequest, AdsSources};
use shared::time::Timestamp;
use std::collections::BTreeMap;

/// Tallest bar of the chart, in the SVG's own units.
const BAR_SPAN: f64 = 140.0;
/// Width of one day's pair of bars.
const DAY_WIDTH: usize = 12;

/// One day of a currency's chart: its spend bar and its conversations bar.
pub struct DayBars {
    pub day: String,
    pub spend: String,
    pub conversations: u64,
    pub x: usize,
    pub spend_height: u64,
    pub conversations_height: u64,
}

/// Spend and conversations per day in one currency.
pub struct SpendChart {
    pub currency: String,
    pub width: usize,
    pub days: Vec<DayBars>,
}

/// `value` of `most` as a bar's height; a value above zero always shows.
fn height(value: f64, most: f64) -> u64 {
    if most <= 0.0 || value <= 0.0 {
        return 0;
    }
    ((value * BAR_SPAN / most).round() as u64).max(1)
}

/// One chart per currency of `by_day` (conversations-only days under "no spend").
fn charts(days: &[String], by_day: &AdsReport) -> Vec<SpendChart> {
    let mut per_currency: BTreeMap<String, BTreeMap<&str, (String, u64)>> = BTreeMap::new();
    for row in &by_day.rows {
        let currency = row
            .currency
            .map_or_else(|| "no spend".to_owned(), |c| c.to_string());
        per_currency
            .entry(currency)
            .or_default()
            .insert(row.key.as_str(), (row.spend.to_string(), row.conversations));
    }
    per_currency
        .into_iter()
        .map(|(currency, values)| {
            // Only for drawing: the page prints the report's own decimal text.
            let amount = |text: &str| text.parse::<f64>().unwrap_or(0.0);
            let most_spend = values.values().map(|(s, _)| amount(s)).fold(0.0, f64::max);
            let most_conversations = values.values().map(|(_, c)| *c).max().unwrap_or(0) as f64;
            let bars: Vec<DayBars> = days
                .iter()
                .enumerate()
                .map(|(index, day)| {
                    let (spend, conversations) = values
                        .get(day.as_str())
                        .cloned()
                        .unwrap_or_else(|| ("0.00".to_owned(), 0));
                    DayBars {
                        day: day.clone(),
                        spend_height: height(amount(&spend), most_spend),
                        conversations_height: height(conversations as f64, most_conversations),
                        spend,
                        conversations,
                        x: index * DAY_WIDTH,
                    }
                })
                .collect();
            SpendChart {
                currency,
                width: days.len().max(1) * DAY_WIDTH,
                days: bars,
            }
        })
        .collect()
}

/// What an import through the form did, or why it stored nothing.
pub enum ImportNotice {
    Done(Imported),
    Refused(String),
}

#[derive(Template)]
#[template(path = "ads.html")]
pub struct AdsPage {
    pub chrome: Chrome,
    pub report: AdsReport,
    pub groupings: Vec<&'static str>,
    pub group_by: &'static str,
    pub instance_id: String,
    pub charts: Vec<SpendChart>,
    pub import: Option<ImportNotice>,
}

impl AdsPage {
    /// `Option<Amount>` (or a currency) as the table shows it.
    pub fn optional(value: &Option<impl ToString>) -> String {
        value
            .as_ref()
            .map_or_else(|| "—".to_owned(), ToString::to_string)
    }
}

/// The page for `query` (`day` when no grouping is named), with `import`'s outcome.
async fn page(
    state: &Shared,
    session: &super::Session,
    query: &Form,
    import: Option<ImportNotice>,
) -> Result<Response, PageError> {
    // An empty field is how a form sends "none".
    let given = |name: &str| query.get(name).filter(|value| !value.is_empty());
    let request = AdsRequest::parse(
        Some(query.get("group_by").unwrap_or("day")),
        given("since"),
        given("until"),
        given("instance_id"),
        Timestamp::now(),
    )
    .map_err(|error| PageError::BadRequest(error.to_string()))?;
    let sources = AdsSources {
        spend: state.spend.as_ref(),
        contacts: state.contacts.as_ref(),
        instances: state.instances.as_ref(),
        revenue: state.revenue.as_ref(),
        goals: state.goals.as_ref(),
    };
    let report = report::load(&sources, &request).await?;
    let by_day = if request.group_by == AdsGrouping::Day {
        None
    } else {
        let by_day = AdsRequest {
            group_by: AdsGrouping::Day,
            ..request.clone()
        };
        Some(report::load(&sources, &by_day).await?)
    };
    let charts = charts(
        &days_from(&request.since, &request.until),
        by_day.as_ref().unwrap_or(&report),
    );
    let status = match import {
        Some(ImportNotice::Refused(_)) => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    let page = AdsPage {
        chrome: chrome(state, session, "").await?,
        group_by: request.group_by.as_str(),
        groupings: AdsGrouping::ALL.iter().map(AdsGrouping::as_str).collect(),
        instance_id: request
            .instance_id
            .as_ref()
            .map(|id| id.as_str().to_owned())
            .unwrap_or_default(),
        charts,
        report,
        import,
    };
    Ok(html(status, &page))
}

/// `GET /app/ads?group_by=platform|campaign|ad|day&since=&until=&instance_id=`.
pub async fn ads(
    State(state): State<Shared>,
    SignedIn(session): SignedIn,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let query = Form::parse(query.unwrap_or_default().as_bytes());
    page(&state, &session, &query, None).await
}

/// The parts of a `multipart/form-data` body by name: the text fields and the file's bytes.
/// Only what the import form sends is read: `name="…"` parts, their content after the blank
/// line, up to the next boundary.
fn multipart_parts(headers: &HeaderMap, body: &[u8]) -> Option<BTreeMap<String, Vec<u8>>> {
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let boundary = content_type
        .split(';')
        .find_map(|part| part.trim().strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("\r\n--{boundary}");
    // The first boundary has no line break before it.
    let mut rest = body.strip_prefix(format!("--{boundary}").as_bytes())?;
    let mut parts = BTreeMap::new();
    while let Some(after) = rest.strip_prefix(b"\r\n") {
        let head_end = find(after, b"\r\n\r\n")?;
        let head = std::str::from_utf8(&after[..head_end]).ok()?;
        let content = &after[head_end + 4..];
        let end = find(content, delimiter.as_bytes())?;
        let name = head
            .split(';')
            .find_map(|part| part.trim().strip_prefix("name="))
            .map(|name| {
                name.split(['\r', '\n'])
                    .next()
                    .unwrap_or("")
                    .trim_matches('"')
                    .to_owned()
            })?;
        parts.insert(name, content[..end].to_vec());
        rest = &content[end + delimiter.len()..];
    }
    Some(parts)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// `POST /app/ads/import` (multipart: `csrf`, `platform`, `file`), admin sessions only.
pub async fn import(
    State(state): State<Shared>,
    SignedIn(session): SignedIn,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let parts = multipart_parts(&headers, &body).unwrap_or_default();
    let text = |name: &str| {
        parts
            .get(name)
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
    };
    let fields: Vec<(String, String)> = ["csrf", "platform"]
        .into_iter()
        .filter_map(|name| text(name).map(|value| (name.to_owned(), value)))
        .collect();
    let form = Form::from_pairs(fields);
    authorize_write(&state, &session, &form)?;
    let notice = match ExportFormat::from_param(form.get("platform")) {
        Err(error) => ImportNotice::Refused(error.to_string()),
        Ok(format) => {
            let file = parts.get("file").map(Vec::as_slice).unwrap_or_default();
            match import_into(state.spend.as_ref(), format, file).await {
                Ok(imported) => {
                    tracing::info!(target: "audit", imported = imported.upserted.imported, replaced = imported.upserted.replaced, "dashboard spend imported");
                    ImportNotice::Done(imported)
                }
                Err(ImportFailure::File(error)) => ImportNotice::Refused(error.to_string()),
                Err(ImportFailure::Store(error)) => return Err(error.into()),
            }
        }
    };
    page(&state, &session, &Form::parse(b""), Some(notice)).await
}
