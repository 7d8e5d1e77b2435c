//! Revenue reports from counters: every send, click and credited conversion adds to one row of
//! each grouping (message, creative, offer, campaign, day) in the same write that records it,
//! so a report reads counters, never events, and every grouping adds up to the same totals.

use crate::fields::FieldError;
use crate::ids::InstanceId;
use crate::revenue::models::{self, Model};
use crate::revenue::money::{Amount, Currency};
use crate::revenue::records::{Attribution, Click, Conversion, Credit, SendRecord};
use crate::revenue::store::RevenueStore;
use crate::store::StoreError;
use crate::time::{Timestamp, accepted_day};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a revenue report groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// The sent message.
    Message,
    /// The creative (message variant).
    Creative,
    /// The offer linked to.
    Offer,
    /// The campaign.
    Campaign,
    /// The UTC day.
    Day,
}

impl Dimension {
    /// Every dimension.
    pub const ALL: [Dimension; 5] = [
        Dimension::Message,
        Dimension::Creative,
        Dimension::Offer,
        Dimension::Campaign,
        Dimension::Day,
    ];

    /// The dimension a `group_by` parameter names.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == text)
    }

    /// The dimension's name in the API and in stored report keys.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Creative => "creative",
            Self::Offer => "offer",
            Self::Campaign => "campaign",
            Self::Day => "day",
        }
    }
}

/// What one row counts. Adds up field by field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Tally {
    /// Messages sent with tracked links.
    pub sends: u64,
    /// Clicks on those links.
    pub clicks: u64,
    /// Conversions credited to those clicks.
    pub conversions: u64,
    /// What those conversions paid.
    pub revenue: Amount,
    /// Conversions credited view-through (to a send, no click in the window): never in
    /// `conversions`.
    #[serde(default)]
    pub view_through_conversions: u64,
    /// What they paid: never in `revenue`.
    #[serde(default)]
    pub view_through_revenue: Amount,
    /// What the other attribution models would give this row of the click-through revenue
    /// (the credited model, first click, is `revenue`).
    #[serde(default, skip_serializing_if = "ModelRevenue::is_zero")]
    pub models: ModelRevenue,
}

/// A row's click-through revenue under the models other than first click (see
/// [`crate::revenue::models`]). Adds up field by field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ModelRevenue {
    /// All to the last click.
    pub last_click: Amount,
    /// Equal shares.
    pub linear: Amount,
    /// Halved every 7 days of the click's age.
    pub time_decay: Amount,
    /// 40/20/40.
    pub position_based: Amount,
}

impl ModelRevenue {
    /// Whether every model gives nothing (the row was moved by no click-through credit).
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    /// The amount `model` gives; first click is the row's `revenue`, not here.
    pub fn get(&self, model: Model) -> Option<Amount> {
        match model {
            Model::FirstClick => None,
            Model::LastClick => Some(self.last_click),
            Model::Linear => Some(self.linear),
            Model::TimeDecay => Some(self.time_decay),
            Model::PositionBased => Some(self.position_based),
        }
    }

    fn slot(&mut self, model: Model) -> Option<&mut Amount> {
        match model {
            Model::FirstClick => None,
            Model::LastClick => Some(&mut self.last_click),
            Model::Linear => Some(&mut self.linear),
            Model::TimeDecay => Some(&mut self.time_decay),
            Model::PositionBased => Some(&mut self.position_based),
        }
    }

    /// Adds `other`; a sum past 28 digits stays at what it was.
    pub fn add(&mut self, other: &ModelRevenue) {
        for model in Model::ALL {
            if let (Some(mine), Some(theirs)) = (self.slot(model), other.get(model)) {
                *mine = mine.checked_add(theirs).unwrap_or(*mine);
            }
        }
    }
}

impl Tally {
    /// Adds `other`, saturating rather than overflowing.
    pub fn add(&mut self, other: &Tally) {
        self.sends = self.sends.saturating_add(other.sends);
        self.clicks = self.clicks.saturating_add(other.clicks);
        self.conversions = self.conversions.saturating_add(other.conversions);
        // 28 significant digits: a sum past that is not money any business has.
        self.revenue = self
            .revenue
            .checked_add(other.revenue)
            .unwrap_or(self.revenue);
        self.view_through_conversions = self
            .view_through_conversions
            .saturating_add(other.view_through_conversions);
        self.view_through_revenue = self
            .view_through_revenue
            .checked_add(other.view_through_revenue)
            .unwrap_or(self.view_through_revenue);
        self.models.add(&other.models);
    }

    /// Whether the row counts anything the revenue report shows (a row moved only by the
    /// other models' shares is in the model comparison alone).
    pub fn counts_anything(&self) -> bool {
        self.sends > 0
            || self.clicks > 0
            || self.conversions > 0
            || self.view_through_conversions > 0
            || self.revenue != Amount::ZERO
            || self.view_through_revenue != Amount::ZERO
    }
}

/// One change to one counter row: the row's dimension, key, day and currency, and the
/// instance whose event it counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportBump {
    /// The grouping the bump counts in.
    pub dimension: Dimension,
    /// The instance of the send, click or conversion counted (`None` on rows stored before
    /// rows were kept per instance: they count in the report of every instance only).
    pub instance: Option<InstanceId>,
    /// The group's key: a message id, offer id, campaign, …
    pub key: String,
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// The currency it counts in; currencies are never summed together.
    pub currency: Currency,
    /// What it adds.
    pub tally: Tally,
}

/// A counter row as stored (summed over a store's shards, if it has any).
pub type ReportCounter = ReportBump;

/// The labels an event carries into each grouping: its message, creative, offer and campaign.
struct Labels<'a>(&'a str, &'a str, &'a str, &'a str);

/// Sends, clicks and credits carry the same four labels under the same names.
macro_rules! labels_of {
    ($($record:ty),*) => {$(
        impl<'a> From<&'a $record> for Labels<'a> {
            fn from(record: &'a $record) -> Self {
                Self(
                    &record.message_id,
                    &record.creative,
                    record.offer_id.as_str(),
                    &record.campaign,
                )
            }
        }
    )*};
}

labels_of!(SendRecord, Click, Credit);

/// The name an embedded store files `dimension`'s rows under: the bare grouping for every
/// instance's report, `grouping@instance` for one instance's (a grouping's name holds no `@`).
pub fn scope_name(dimension: Dimension, instance: Option<&InstanceId>) -> String {
    match instance {
        None => dimension.as_str().to_owned(),
        Some(instance) => format!("{}@{}", dimension.as_str(), instance.as_str()),
    }
}

/// One bump per grouping, all on the event's UTC day, each carrying the event's instance so a
/// store can count it in that instance's report too.
fn bumps(
    labels: Labels<'_>,
    instance: &InstanceId,
    at: Timestamp,
    currency: Currency,
    tally: Tally,
) -> Vec<ReportBump> {
    let day = at.day();
    let Labels(message_id, creative, offer_id, campaign) = labels;
    Dimension::ALL
        .into_iter()
        .map(|dimension| ReportBump {
            dimension,
            instance: Some(instance.clone()),
            key: match dimension {
                Dimension::Message => message_id.to_owned(),
                Dimension::Creative => creative.to_owned(),
                Dimension::Offer => offer_id.to_owned(),
                Dimension::Campaign => campaign.to_owned(),
                Dimension::Day => day.clone(),
            },
            day: day.clone(),
            currency,
            tally,
        })
        .collect()
}

/// The report counters a send moves, one per dimension.
pub fn send_bumps(send: &SendRecord) -> Vec<ReportBump> {
    let tally = Tally {
        sends: 1,
        ..Tally::default()
    };
    bumps(
        send.into(),
        &send.instance_id,
        send.sent_at,
        send.currency,
        tally,
    )
}

/// The report counters a click moves, one per dimension.
pub fn click_bumps(click: &Click) -> Vec<ReportBump> {
    let tally = Tally {
        clicks: 1,
        ..Tally::default()
    };
    bumps(
        click.into(),
        &click.instance_id,
        click.clicked_at,
        click.currency,
        tally,
    )
}

/// A credited conversion counts once, with its revenue, where its credit went; an uncredited
/// one counts nowhere (it has no message, creative or campaign to count under).
pub fn conversion_bumps(conversion: &Conversion) -> Vec<ReportBump> {
    let (Some(credit), Some(instance)) = (&conversion.credited, &conversion.instance_id) else {
        return Vec::new();
    };
    let tally = match credit.attribution {
        Attribution::ClickThrough => Tally {
            conversions: 1,
            revenue: conversion.payout,
            ..Tally::default()
        },
        Attribution::ViewThrough => Tally {
            view_through_conversions: 1,
            view_through_revenue: conversion.payout,
            ..Tally::default()
        },
    };
    let mut moved = bumps(
        credit.into(),
        instance,
        conversion.converted_at,
        conversion.currency,
        tally,
    );
    if credit.attribution == Attribution::ClickThrough {
        add_model_shares(&mut moved, conversion, credit, instance);
    }
    moved
}

/// Adds each model's shares of a click-through conversion to the rows of the clicks they go
/// to (the credited rows, or new bumps for the rows of later clicks), in the same write.
/// Without the window's clicks (a conversion read back), the credited click stands alone, so
/// every model gives it all and the columns still add up.
fn add_model_shares(
    moved: &mut Vec<ReportBump>,
    conversion: &Conversion,
    credit: &Credit,
    instance: &InstanceId,
) {
    let alone = [credit.clone()];
    let clicks: &[Credit] = if conversion.window_clicks.is_empty() {
        &alone
    } else {
        &conversion.window_clicks
    };
    let times: Vec<Timestamp> = clicks.iter().map(|click| click.clicked_at).collect();
    let mut per_click = vec![ModelRevenue::default(); clicks.len()];
    for model in Model::ALL {
        let shares = models::shares(model, conversion.payout, &times, conversion.converted_at);
        for (revenue, share) in per_click.iter_mut().zip(shares) {
            if let Some(slot) = revenue.slot(model) {
                *slot = share;
            }
        }
    }
    let day = conversion.converted_at.day();
    for (click, revenue) in clicks.iter().zip(&per_click) {
        let Labels(message_id, creative, offer_id, campaign) = click.into();
        for (dimension, key) in [
            (Dimension::Message, message_id),
            (Dimension::Creative, creative),
            (Dimension::Offer, offer_id),
            (Dimension::Campaign, campaign),
        ] {
            match moved
                .iter_mut()
                .find(|bump| bump.dimension == dimension && bump.key == key)
            {
                Some(bump) => bump.tally.models.add(revenue),
                None => moved.push(ReportBump {
                    dimension,
                    instance: Some(instance.clone()),
                    key: key.to_owned(),
                    day: day.clone(),
                    currency: conversion.currency,
                    tally: Tally {
                        models: *revenue,
                        ..Tally::default()
                    },
                }),
            }
        }
    }
}

/// One line of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportRow {
    /// The group's key.
    pub key: String,
    /// The currency of the row's amounts.
    pub currency: Currency,
    /// Messages sent.
    pub sends: u64,
    /// Clicks.
    pub clicks: u64,
    /// Conversions credited.
    pub conversions: u64,
    /// What they paid.
    pub revenue: Amount,
    /// Revenue per send, `null` without sends.
    pub revenue_per_send: Option<Amount>,
    /// Earnings per click, `null` without clicks.
    pub epc: Option<Amount>,
    /// Conversions credited view-through, not in `conversions`.
    pub view_through_conversions: u64,
    /// What they paid, not in `revenue`.
    pub view_through_revenue: Amount,
}

impl ReportRow {
    fn new(key: String, currency: Currency, tally: &Tally) -> Self {
        Self {
            key,
            currency,
            sends: tally.sends,
            clicks: tally.clicks,
            conversions: tally.conversions,
            revenue: tally.revenue,
            revenue_per_send: tally.revenue.per(tally.sends),
            epc: tally.revenue.per(tally.clicks),
            view_through_conversions: tally.view_through_conversions,
            view_through_revenue: tally.view_through_revenue,
        }
    }
}

/// Revenue over a range of days, grouped by one dimension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The dimension of the rows.
    pub group_by: Dimension,
    /// First day counted, `YYYY-MM-DD`.
    pub since: String,
    /// Last day counted, `YYYY-MM-DD`.
    pub until: String,
    /// One row per group and currency.
    pub rows: Vec<ReportRow>,
    /// One row per currency, keyed `"total"`: what every grouping adds up to.
    pub totals: Vec<ReportRow>,
}

/// Per-key-and-currency and per-currency sums of `group_by`'s counters of `[since, until]`.
type Sums = (
    BTreeMap<(String, Currency), Tally>,
    BTreeMap<Currency, Tally>,
);

fn sum_counters(group_by: Dimension, since: &str, until: &str, counters: &[ReportCounter]) -> Sums {
    let mut rows: BTreeMap<(String, Currency), Tally> = BTreeMap::new();
    let mut totals: BTreeMap<Currency, Tally> = BTreeMap::new();
    for counter in counters
        .iter()
        .filter(|c| c.dimension == group_by && c.day.as_str() >= since && c.day.as_str() <= until)
    {
        rows.entry((counter.key.clone(), counter.currency))
            .or_default()
            .add(&counter.tally);
        totals
            .entry(counter.currency)
            .or_default()
            .add(&counter.tally);
    }
    (rows, totals)
}

/// Sums the counters of `[since, until]` into one row per key and currency, sorted by key.
pub fn summarize(
    group_by: Dimension,
    since: &str,
    until: &str,
    counters: &[ReportCounter],
) -> Report {
    let (rows, totals) = sum_counters(group_by, since, until, counters);
    Report {
        group_by,
        since: since.to_owned(),
        until: until.to_owned(),
        rows: rows
            .iter()
            .filter(|(_, tally)| tally.counts_anything())
            .map(|((key, currency), tally)| ReportRow::new(key.clone(), *currency, tally))
            .collect(),
        totals: totals
            .iter()
            .map(|(currency, tally)| ReportRow::new("total".to_owned(), *currency, tally))
            .collect(),
    }
}

/// One line of the model comparison: a row's click-through revenue under each model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelRow {
    /// The group's key.
    pub key: String,
    /// The currency of the row's amounts.
    pub currency: Currency,
    /// Click-through conversions credited to the row (first click).
    pub conversions: u64,
    /// The credited model: the revenue report's `revenue`.
    pub first_click: Amount,
    /// All to the last click in the window.
    pub last_click: Amount,
    /// Equal shares.
    pub linear: Amount,
    /// 7-day half-life.
    pub time_decay: Amount,
    /// 40 % first, 40 % last, 20 % between.
    pub position_based: Amount,
}

impl ModelRow {
    fn new(key: String, currency: Currency, tally: &Tally) -> Self {
        Self {
            key,
            currency,
            conversions: tally.conversions,
            first_click: tally.revenue,
            last_click: tally.models.last_click,
            linear: tally.models.linear,
            time_decay: tally.models.time_decay,
            position_based: tally.models.position_based,
        }
    }

    /// Each model with the amount it gives the row, in [`Model::ALL`]'s order.
    pub fn amounts(&self) -> Vec<(Model, Amount)> {
        Model::ALL
            .into_iter()
            .map(|model| (model, self.get(model)))
            .collect()
    }

    /// The amount `model` gives the row.
    pub fn get(&self, model: Model) -> Amount {
        match model {
            Model::FirstClick => self.first_click,
            Model::LastClick => self.last_click,
            Model::Linear => self.linear,
            Model::TimeDecay => self.time_decay,
            Model::PositionBased => self.position_based,
        }
    }
}

/// The attribution models side by side over a range of days, grouped by one dimension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelReport {
    /// The dimension of the rows.
    pub group_by: Dimension,
    /// First day counted, `YYYY-MM-DD`.
    pub since: String,
    /// Last day counted, `YYYY-MM-DD`.
    pub until: String,
    /// The models' names, in the order of the columns.
    pub models: Vec<&'static str>,
    /// One row per group and currency that some model gives revenue or a conversion.
    pub rows: Vec<ModelRow>,
    /// One row per currency, keyed `"total"`: every model's column adds up to the same total,
    /// the credited (click-through) revenue of the revenue report.
    pub totals: Vec<ModelRow>,
}

/// The model comparison of the counters of `[since, until]`.
pub fn summarize_models(
    group_by: Dimension,
    since: &str,
    until: &str,
    counters: &[ReportCounter],
) -> ModelReport {
    let (rows, totals) = sum_counters(group_by, since, until, counters);
    ModelReport {
        group_by,
        since: since.to_owned(),
        until: until.to_owned(),
        models: Model::ALL.iter().map(|model| model.as_str()).collect(),
        rows: rows
            .iter()
            .filter(|(_, tally)| {
                tally.conversions > 0 || tally.revenue != Amount::ZERO || !tally.models.is_zero()
            })
            .map(|((key, currency), tally)| ModelRow::new(key.clone(), *currency, tally))
            .collect(),
        totals: totals
            .iter()
            .filter(|(_, tally)| tally.conversions > 0)
            .map(|(currency, tally)| ModelRow::new("total".to_owned(), *currency, tally))
            .collect(),
    }
}

/// Longest report span, in days.
pub const MAX_REPORT_DAYS: i64 = 366;
/// Days a report covers when the request names no `since`.
pub const DEFAULT_REPORT_DAYS: u64 = 30;

/// A report request's parameters, checked: `GET /reports/revenue` and the dashboard's Revenue
/// page take them alike and refuse them with the same messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRequest {
    /// What the rows are keyed by.
    pub group_by: Dimension,
    /// First day, `YYYY-MM-DD`.
    pub since: String,
    /// Last day, `YYYY-MM-DD`.
    pub until: String,
    /// `None`: every instance; an instance: that instance's sends, clicks and conversions.
    pub instance_id: Option<InstanceId>,
}

fn day_field(field: &'static str, text: &str) -> Result<chrono::NaiveDate, FieldError> {
    // A full timestamp names its UTC day too.
    let day = Timestamp::parse_rfc3339(text)
        .map(|at| at.as_datetime().date_naive())
        .or_else(|| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .ok_or_else(|| {
            FieldError::new(field, "must be a day (YYYY-MM-DD) or an RFC 3339 timestamp")
        })?;
    accepted_day(day).map_err(|error| FieldError::new(field, error.to_string()))
}

impl ReportRequest {
    /// `group_by` (required), `since` and `until` (UTC days, both included; the last 30 days up
    /// to `now` by default), at most [`MAX_REPORT_DAYS`] apart.
    pub fn parse(
        group_by: Option<&str>,
        since: Option<&str>,
        until: Option<&str>,
        now: Timestamp,
    ) -> Result<Self, FieldError> {
        let group_by = group_by.and_then(Dimension::parse).ok_or_else(|| {
            FieldError::new(
                "group_by",
                "must be one of message, creative, offer, campaign, day",
            )
        })?;
        let (since, until) = parse_span(since, until, now)?;
        Ok(Self {
            group_by,
            since,
            until,
            instance_id: None,
        })
    }

    /// [`Self::parse`] for the model comparison, which has no `day` grouping (every model
    /// credits the conversion's own day).
    pub fn parse_models(
        group_by: Option<&str>,
        since: Option<&str>,
        until: Option<&str>,
        now: Timestamp,
    ) -> Result<Self, FieldError> {
        let refused = || {
            FieldError::new(
                "group_by",
                "must be one of message, creative, offer, campaign",
            )
        };
        match group_by.map(Dimension::parse) {
            None | Some(None) | Some(Some(Dimension::Day)) => Err(refused()),
            Some(Some(_)) => Self::parse(group_by, since, until, now),
        }
    }

    /// The same report of one instance only, when `instance_id` names one: checked like a
    /// path's instance id.
    pub fn for_instance(mut self, instance_id: Option<&str>) -> Result<Self, FieldError> {
        self.instance_id = instance_id
            .map(|text| {
                InstanceId::parse(text).map_err(|e| FieldError::new("instance_id", e.to_string()))
            })
            .transpose()?;
        Ok(self)
    }
}

/// `since` and `until` of a report (UTC days, both included; the last
/// [`DEFAULT_REPORT_DAYS`] up to `now` by default), at most [`MAX_REPORT_DAYS`] apart, as
/// `YYYY-MM-DD`: the span the revenue and the ads reports take alike.
pub fn parse_span(
    since: Option<&str>,
    until: Option<&str>,
    now: Timestamp,
) -> Result<(String, String), FieldError> {
    let until = match until {
        Some(text) => day_field("until", text)?,
        None => now.as_datetime().date_naive(),
    };
    let since = match since {
        Some(text) => day_field("since", text)?,
        // `until` is an accepted day, so this stays far inside chrono's range.
        None => until - chrono::Days::new(DEFAULT_REPORT_DAYS - 1),
    };
    let span = (until - since).num_days() + 1;
    if !(1..=MAX_REPORT_DAYS).contains(&span) {
        return Err(FieldError::new(
            "since",
            format!("must be on or before until, at most {MAX_REPORT_DAYS} days before it"),
        ));
    }
    Ok((
        since.format("%Y-%m-%d").to_string(),
        until.format("%Y-%m-%d").to_string(),
    ))
}

impl ReportRequest {
    /// Every day of `[since, until]` in order, `YYYY-MM-DD` (a day without revenue still has
    /// its place on a chart).
    pub fn days(&self) -> Vec<String> {
        days_from(&self.since, &self.until)
    }

    /// The same span, grouped by day.
    pub fn by_day(&self) -> Self {
        Self {
            group_by: Dimension::Day,
            ..self.clone()
        }
    }
}

/// Every day of `[first, last]` in order, `YYYY-MM-DD`; none when either is not a day.
pub fn days_from(first: &str, last: &str) -> Vec<String> {
    let parse = |day: &str| chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok();
    let (Some(first), Some(last)) = (parse(first), parse(last)) else {
        return Vec::new();
    };
    first
        .iter_days()
        .take_while(|day| *day <= last)
        .map(|day| day.format("%Y-%m-%d").to_string())
        .collect()
}

/// The counter rows `request` reads: every instance's or one instance's.
async fn counters(
    store: &dyn RevenueStore,
    request: &ReportRequest,
) -> Result<Vec<ReportCounter>, StoreError> {
    match &request.instance_id {
        None => {
            store
                .load_report_counters(request.group_by, &request.since, &request.until)
                .await
        }
        Some(instance) => {
            store
                .load_instance_report_counters(
                    request.group_by,
                    instance,
                    &request.since,
                    &request.until,
                )
                .await
        }
    }
}

/// The report `request` asks for, read from the report counters: what `GET /reports/revenue`
/// answers and the dashboard shows.
pub async fn load(store: &dyn RevenueStore, request: &ReportRequest) -> Result<Report, StoreError> {
    let counters = counters(store, request).await?;
    Ok(summarize(
        request.group_by,
        &request.since,
        &request.until,
        &counters,
    ))
}

/// The model comparison `request` asks for, from the same counters (one read per day, like
/// the report): what `GET /reports/revenue/models` answers and the dashboard shows.
pub async fn load_models(
    store: &dyn RevenueStore,
    request: &ReportRequest,
) -> Result<ModelReport, StoreError> {
    let counters = counters(store, request).await?;
    Ok(summarize_models(
        request.group_by,
        &request.since,
        &request.until,
        &counters,
    ))
}
