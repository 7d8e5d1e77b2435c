//! The Analytics page: where an instance's new contacts came from over 7, 30 or 90 days (by
//! platform, by kind, per day), read through `shared::stats::load_with_days`, the stats API's
//! own query. Charts are SVG drawn by askama templates with CSS classes, not a plotting crate:
//! the page's CSP refuses `style="…"` attributes, and a class is what ties each bar to its
//! platform's colour (`platform_css`, a stylesheet generated from `shared::stats::platform_color`).

use super::{PageError, Shared, SignedIn, chrome, html, instance_path, parse_instance};
use crate::pages::{Chrome, Form};
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use shared::stats::{self, ByKind, DayFigures, PLATFORMS, Stats, StatsWindow, platform_color};
use shared::time::Timestamp;

/// The windows the page offers; any other `days` is refused.
const WINDOWS: [u32; 3] = [7, 30, 90];
/// Longest bar of a bar chart, in the SVG's own units.
const BAR_SPAN: u64 = 240;
/// Tallest column of the per-day chart, in the SVG's own units.
const COLUMN_SPAN: u64 = 140;
/// Width of one day's column, in the SVG's own units.
const COLUMN_WIDTH: u32 = 10;

/// Each acquisition kind as (label, CSS class suffix), in the order the charts stack them.
const KINDS: [(&str, &str); 7] = [
    ("Meta ads", "meta_ad"),
    ("Meta posts", "meta_post"),
    ("Short links", "shortlink"),
    ("Products", "product"),
    ("Rules", "rule"),
    ("Web", "web"),
    ("Unattributed", "unmatched"),
];

/// A kind's count, in [`KINDS`]'s order.
fn kind_counts(by_kind: &ByKind, unmatched: u64) -> [u64; 7] {
    [
        by_kind.meta_ad,
        by_kind.meta_post,
        by_kind.shortlink,
        by_kind.product,
        by_kind.rule,
        by_kind.web,
        unmatched,
    ]
}

/// The CSS class of a platform's bars: its own for a known platform, `platform-other` (the
/// colour `platform_color` gives any other name) otherwise, so a class never carries raw text.
pub fn platform_class(platform: &str) -> String {
    let known = PLATFORMS.contains(&platform);
    format!("platform-{}", if known { platform } else { "other" })
}

/// The stylesheet giving each platform's bars its fixed colour, served as its own hashed asset
/// so `platform_color` stays the only place the colours are written.
pub fn platform_css() -> String {
    PLATFORMS
        .iter()
        .chain(&["other"])
        .map(|platform| {
            let color = platform_color(platform);
            format!(".{} {{ fill: {color}; }}\n", platform_class(platform))
        })
        .collect()
}

/// One bar of a horizontal bar chart.
pub struct Bar {
    pub label: String,
    pub count: u64,
    pub class: String,
    /// Top of the bar's row.
    pub y: u64,
    pub width: u64,
}

/// A horizontal bar chart and, drawn from the same rows, its table.
pub struct BarChart {
    /// The id its heading carries, which labels the SVG and the table.
    pub id: &'static str,
    pub title: &'static str,
    pub bars: Vec<Bar>,
    /// The SVG's height.
    pub height: u64,
}

/// Row height of a bar chart.
const ROW: u64 = 24;

impl BarChart {
    fn new(id: &'static str, title: &'static str, rows: Vec<(String, u64, String)>) -> Self {
        let most = rows.iter().map(|row| row.1).max().unwrap_or(0).max(1);
        let bars: Vec<Bar> = rows
            .into_iter()
            .zip(0..)
            .map(|((label, count, class), index)| Bar {
                label,
                count,
                class,
                y: index * ROW,
                // A bar with contacts is always visible, however small beside the longest.
                width: (count * BAR_SPAN / most).max(u64::from(count > 0)),
            })
            .collect();
        Self {
            id,
            title,
            height: (bars.len() as u64).max(1) * ROW,
            bars,
        }
    }
}

/// One kind's part of one day's column.
pub struct Segment {
    pub label: &'static str,
    pub class: &'static str,
    pub count: u64,
    pub y: u64,
    pub height: u64,
}

/// One day's stacked column and its row of the table.
pub struct Column {
    pub day: String,
    pub x: u32,
    pub counts: [u64; 7],
    pub segments: Vec<Segment>,
}

/// The per-day chart: a column per day, stacked by kind.
pub struct DayChart {
    pub width: u32,
    pub columns: Vec<Column>,
}

impl DayChart {
    fn new(days: &[DayFigures]) -> Self {
        let counts: Vec<[u64; 7]> = days
            .iter()
            .map(|day| kind_counts(&day.by_kind, day.unmatched))
            .collect();
        let most = counts
            .iter()
            .map(|c| c.iter().sum::<u64>())
            .max()
            .unwrap_or(0)
            .max(1);
        let columns = days
            .iter()
            .zip(counts)
            .zip(0..)
            .map(|((day, counts), index)| {
                let mut bottom = COLUMN_SPAN;
                let segments = KINDS
                    .iter()
                    .zip(counts)
                    .filter(|(_, count)| *count > 0)
                    .map(|((label, class), count)| {
                        let height = (count * COLUMN_SPAN / most).max(1);
                        bottom = bottom.saturating_sub(height);
                        Segment {
                            label,
                            class,
                            count,
                            y: bottom,
                            height,
                        }
                    })
                    .collect();
                Column {
                    day: day.day.clone(),
                    x: index * COLUMN_WIDTH,
                    counts,
                    segments,
                }
            })
            .collect();
        Self {
            width: (days.len() as u32).max(1) * COLUMN_WIDTH,
            columns,
        }
    }
}

#[derive(Template)]
#[template(path = "analytics.html")]
pub struct AnalyticsPage {
    pub chrome: Chrome,
    pub instance_id: String,
    pub instance_path: String,
    pub days: u32,
    pub windows: [u32; 3],
    pub stats: Stats,
    pub platforms: BarChart,
    pub kinds: BarChart,
    pub per_day: DayChart,
    pub kind_labels: [(&'static str, &'static str); 7],
    /// The platform colours' stylesheet (see [`platform_css`]).
    pub platform_stylesheet: String,
}

/// `?days=` as the page takes it: 7 when absent, else exactly 7, 30 or 90.
pub fn window_days(query: &Form) -> Result<Option<&str>, PageError> {
    match query.get("days") {
        None => Ok(None),
        Some(days) if WINDOWS.iter().any(|w| w.to_string() == days) => Ok(Some(days)),
        Some(_) => Err(PageError::BadRequest("days must be 7, 30 or 90".to_owned())),
    }
}

/// `GET /app/instances/{instance_id}/analytics?days=7|30|90`.
pub async fn analytics(
    State(state): State<Shared>,
    SignedIn(session): SignedIn,
    Path(raw_instance): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let instance_id = parse_instance(&raw_instance)?;
    let query = Form::parse(query.unwrap_or_default().as_bytes());
    let window = StatsWindow::ending(Timestamp::now(), window_days(&query)?)
        .expect("7, 30 and 90 are valid windows");
    let (stats, days) = stats::load_with_days(
        state.rules.as_ref(),
        state.contacts.as_ref(),
        instance_id.clone(),
        &window,
    )
    .await?;
    let platforms = stats
        .by_platform
        .iter()
        .map(|p| (p.platform.clone(), p.contacts, platform_class(&p.platform)))
        .collect();
    let kinds = KINDS
        .iter()
        .zip(kind_counts(&stats.by_kind, stats.unmatched))
        .map(|((label, class), count)| (label.to_string(), count, format!("kind-{class}")))
        .collect();
    let page = AnalyticsPage {
        chrome: chrome(&state, &session, instance_id.as_str()).await?,
        instance_id: instance_id.to_string(),
        instance_path: instance_path(&instance_id),
        days: window.days,
        windows: WINDOWS,
        platforms: BarChart::new("by-platform", "By platform", platforms),
        kinds: BarChart::new("by-kind", "By kind", kinds),
        per_day: DayChart::new(&days),
        kind_labels: KINDS,
        platform_stylesheet: crate::assets::platform_colours_url(),
        stats,
    };
    Ok(html(StatusCode::OK, &page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_platform_class_is_its_name_or_other() {
        assert_eq!(platform_class("tiktok"), "platform-tiktok");
        assert_eq!(platform_class("x\" onload=\"y"), "platform-other");
        assert!(platform_css().contains(".platform-facebook { fill: #1877F2; }"));
    }

    #[test]
    fn bars_scale_to_the_longest_and_a_small_count_stays_visible() {
        let chart = BarChart::new(
            "c",
            "C",
            vec![("a".into(), 1000, "x".into()), ("b".into(), 1, "y".into())],
        );
        assert_eq!((chart.bars[0].width, chart.bars[1].width), (BAR_SPAN, 1));
        assert_eq!(chart.bars[1].y, ROW);
    }
}
