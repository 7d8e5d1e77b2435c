//! The ads report: spend set against the conversations the ads started and the revenue they
//! brought, per platform, campaign, ad or day and per currency. Spend comes from the spend
//! rows, conversations from the contact counters bumped when a contact is attributed (so no
//! contact is read), conversions and revenue from the revenue report's counters.
//!
//! Rounding: `cost_per_conversation` and `cost_per_qualified` are money, rounded half away
//! from zero to the cent (100.00 / 3 = 33.33, 200.00 / 3 = 66.67); `roas` is a ratio, rounded
//! the same way to 4 places. Each is `null` when its divisor is zero.

use crate::contact::counters::kind_counter;
use crate::contact::store::{ContactStore, CounterDays};
use crate::fields::FieldError;
use crate::goals::store::GoalStore;
use crate::ids::InstanceId;
use crate::instances::InstanceStore;
use crate::revenue::money::{Amount, Currency};
use crate::revenue::report::{Dimension, parse_span};
use crate::revenue::store::RevenueStore;
use crate::spend::store::{MAX_AD_LOOKUP, SpendStore};
use crate::spend::{AdNames, SpendRow};
use crate::store::StoreError;
use crate::time::Timestamp;
use futures::{StreamExt, TryStreamExt};
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// What the ads report groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AdsGrouping {
    /// The ad platform (`meta`, `google`, `tiktok`, …).
    Platform,
    /// The campaign's name.
    Campaign,
    /// The ad: its id, or its name when the platform gave no id.
    Ad,
    /// The UTC day.
    Day,
}

impl AdsGrouping {
    /// Every grouping.
    pub const ALL: [AdsGrouping; 4] = [Self::Platform, Self::Campaign, Self::Ad, Self::Day];

    /// The grouping's name in the API.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Platform => "platform",
            Self::Campaign => "campaign",
            Self::Ad => "ad",
            Self::Day => "day",
        }
    }

    /// The revenue report's grouping with the same keys, if there is one: revenue is booked
    /// per send's campaign and per day, not per platform or ad.
    fn revenue_dimension(&self) -> Option<Dimension> {
        match self {
            Self::Campaign => Some(Dimension::Campaign),
            Self::Day => Some(Dimension::Day),
            Self::Platform | Self::Ad => None,
        }
    }
}

/// Most instances one report without `instance_id` reads the counters of.
pub const MAX_INSTANCES: usize = 1_000;

/// A checked `GET /reports/ads` request; the dashboard's Ads page takes the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdsRequest {
    /// What the rows are keyed by.
    pub group_by: AdsGrouping,
    /// First day, `YYYY-MM-DD`.
    pub since: String,
    /// Last day, `YYYY-MM-DD`.
    pub until: String,
    /// Only this number's conversations; every instance's without it.
    pub instance_id: Option<InstanceId>,
}

impl AdsRequest {
    /// `group_by` (required), `since`/`until` as the revenue report takes them, and an
    /// optional `instance_id`.
    pub fn parse(
        group_by: Option<&str>,
        since: Option<&str>,
        until: Option<&str>,
        instance_id: Option<&str>,
        now: Timestamp,
    ) -> Result<Self, FieldError> {
        let group_by = group_by
            .and_then(|text| AdsGrouping::ALL.into_iter().find(|g| g.as_str() == text))
            .ok_or_else(|| {
                FieldError::new("group_by", "must be one of platform, campaign, ad, day")
            })?;
        let (since, until) = parse_span(since, until, now)?;
        let instance_id = instance_id
            .filter(|text| !text.is_empty())
            .map(|text| {
                InstanceId::parse(text)
                    .map_err(|error| FieldError::new("instance_id", error.to_string()))
            })
            .transpose()?;
        Ok(Self {
            group_by,
            since,
            until,
            instance_id,
        })
    }
}

/// One line of the ads report: one key in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdsRow {
    /// The group's key.
    pub key: String,
    /// The ad's name, when grouped by ad and a spend row named it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The currency of the amounts; `null` for a key with conversations but no spend or
    /// revenue.
    pub currency: Option<Currency>,
    /// What was spent.
    pub spend: Amount,
    /// Impressions.
    pub impressions: u64,
    /// Clicks on the ads.
    pub clicks: u64,
    /// Contacts the key's ads acquired, first seen in the window.
    pub conversations: u64,
    /// `spend / conversations`, to the cent.
    pub cost_per_conversation: Option<Amount>,
    /// Qualified leads: contacts the key's ads acquired, first seen in the window, that achieved
    /// the instance's qualified-lead goal.
    pub qualified: u64,
    /// `spend / qualified`, to the cent.
    pub cost_per_qualified: Option<Amount>,
    /// Conversions credited.
    pub conversions: u64,
    /// What they paid.
    pub revenue: Amount,
    /// `revenue / spend`, to 4 places.
    pub roas: Option<Amount>,
}

/// The ads report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdsReport {
    /// The grouping of the rows.
    pub group_by: AdsGrouping,
    /// First day counted.
    pub since: String,
    /// Last day counted.
    pub until: String,
    /// The instance whose conversations count, or `null` for all.
    pub instance_id: Option<InstanceId>,
    /// One row per key and currency, by key.
    pub rows: Vec<AdsRow>,
    /// One row per currency, keyed `"total"`.
    pub totals: Vec<AdsRow>,
}

#[derive(Default, Clone)]
struct Sums {
    name: Option<String>,
    spend: Amount,
    impressions: u64,
    clicks: u64,
    conversions: u64,
    revenue: Amount,
}

fn add(into: &mut Amount, amount: Amount) {
    // 28 significant digits: a sum past that is not money any business has.
    *into = into.checked_add(amount).unwrap_or(*into);
}

fn finished(key: String, currency: Option<Currency>, sums: &Sums, conversations: u64) -> AdsRow {
    let cents = |count: u64| sums.spend.over(Decimal::from(count), 2);
    AdsRow {
        key,
        name: sums.name.clone(),
        currency,
        spend: sums.spend,
        impressions: sums.impressions,
        clicks: sums.clicks,
        conversations,
        cost_per_conversation: cents(conversations),
        qualified: 0,
        cost_per_qualified: cents(0),
        conversions: sums.conversions,
        revenue: sums.revenue,
        roas: sums.revenue.over(sums.spend.decimal(), 4),
    }
}

/// The key a spend row counts under.
fn spend_key(grouping: AdsGrouping, row: &SpendRow) -> String {
    match grouping {
        AdsGrouping::Platform => row.platform.clone(),
        AdsGrouping::Campaign => row.campaign.clone(),
        AdsGrouping::Ad if !row.ad_id.is_empty() => row.ad_id.clone(),
        AdsGrouping::Ad => row.ad_name.clone().unwrap_or_default(),
        AdsGrouping::Day => row.date.clone(),
    }
}

/// The conversations each key counts, from the summed counters of the window: a platform's
/// from `platform:` (Meta's from `kind:meta_ad`, its ads' contacts on any of its apps), a
/// campaign's from `campaign:` plus the Meta ads (`ad:`) whose spend rows name that campaign,
/// an ad's from `ad:`, a day's from the contacts ads or rules acquired that day.
pub fn conversations(
    grouping: AdsGrouping,
    days: &CounterDays,
    names: &[AdNames],
) -> BTreeMap<String, u64> {
    let campaign_of: BTreeMap<&str, &str> = names
        .iter()
        .map(|names| (names.ad_id.as_str(), names.campaign_name.as_str()))
        .collect();
    let paid = [
        kind_counter("meta_ad"),
        kind_counter("rule"),
        kind_counter("web"),
    ];
    let mut counted: BTreeMap<String, u64> = BTreeMap::new();
    for (day, counters) in days {
        for (name, count) in counters {
            let key = match grouping {
                AdsGrouping::Platform if *name == kind_counter("meta_ad") => {
                    Some("meta".to_owned())
                }
                AdsGrouping::Platform => name
                    .strip_prefix("platform:")
                    .filter(|platform| {
                        crate::spend::platform(platform).is_some_and(|p| p != "meta")
                    })
                    .map(str::to_owned),
                AdsGrouping::Campaign => {
                    name.strip_prefix("campaign:")
                        .map(str::to_owned)
                        .or_else(|| {
                            let ad = name.strip_prefix("ad:")?;
                            campaign_of.get(ad).map(|campaign| (*campaign).to_owned())
                        })
                }
                AdsGrouping::Ad => name.strip_prefix("ad:").map(str::to_owned),
                AdsGrouping::Day => paid.contains(name).then(|| day.clone()),
            };
            if let Some(key) = key {
                *counted.entry(key).or_default() += count;
            }
        }
    }
    counted
}

/// One revenue counter row as the report takes it: key, currency, conversions, revenue.
pub type RevenueLine = (String, Currency, u64, Amount);

/// The report's rows: each key's spend per currency beside its conversations (on each of its
/// currency rows: conversations have no currency, and currencies are never summed) and its
/// revenue in that currency; then one total per currency.
pub fn summarize(
    request: &AdsRequest,
    spend: &[SpendRow],
    conversations: &BTreeMap<String, u64>,
    revenue: &[RevenueLine],
) -> AdsReport {
    let mut sums: BTreeMap<(String, Option<Currency>), Sums> = BTreeMap::new();
    for row in spend
        .iter()
        .filter(|row| row.date >= request.since && row.date <= request.until)
    {
        let entry = sums
            .entry((spend_key(request.group_by, row), Some(row.currency)))
            .or_default();
        add(&mut entry.spend, row.spend);
        entry.impressions = entry.impressions.saturating_add(row.impressions);
        entry.clicks = entry.clicks.saturating_add(row.clicks);
        if request.group_by == AdsGrouping::Ad && entry.name.is_none() && !row.ad_id.is_empty() {
            entry.name = row.ad_name.clone();
        }
    }
    for (key, currency, count, amount) in revenue {
        let entry = sums.entry((key.clone(), Some(*currency))).or_default();
        entry.conversions = entry.conversions.saturating_add(*count);
        add(&mut entry.revenue, *amount);
    }
    let with_money: BTreeSet<&String> = sums.keys().map(|(key, _)| key).collect();
    let alone: Vec<String> = conversations
        .keys()
        .filter(|key| !with_money.contains(key))
        .cloned()
        .collect();
    for key in alone {
        sums.insert((key, None), Sums::default());
    }
    let rows: Vec<AdsRow> = sums
        .iter()
        .map(|((key, currency), sums)| {
            let count = conversations.get(key).copied().unwrap_or(0);
            finished(key.clone(), *currency, sums, count)
        })
        .collect();
    let mut totals: BTreeMap<Option<Currency>, (Sums, u64)> = BTreeMap::new();
    for row in &rows {
        let (total, count) = totals.entry(row.currency).or_default();
        add(&mut total.spend, row.spend);
        total.impressions = total.impressions.saturating_add(row.impressions);
        total.clicks = total.clicks.saturating_add(row.clicks);
        total.conversions = total.conversions.saturating_add(row.conversions);
        add(&mut total.revenue, row.revenue);
        *count = count.saturating_add(row.conversations);
    }
    AdsReport {
        group_by: request.group_by,
        since: request.since.clone(),
        until: request.until.clone(),
        instance_id: request.instance_id.clone(),
        rows,
        totals: totals
            .iter()
            .map(|(currency, (sums, count))| finished("total".to_owned(), *currency, sums, *count))
            .collect(),
    }
}

/// The stores the report reads.
pub struct AdsSources<'a> {
    /// Spend rows and ad names.
    pub spend: &'a dyn SpendStore,
    /// The contact counters.
    pub contacts: &'a dyn ContactStore,
    /// The instances, for a report over all of them.
    pub instances: &'a dyn InstanceStore,
    /// The revenue counters.
    pub revenue: &'a dyn RevenueStore,
    /// The instances' goals: the qualified-lead goal's counters are the qualified column.
    pub goals: &'a dyn GoalStore,
}

/// The instance's qualified leads of the window, by day, from its qualified-lead goal's day
/// counters (which carry the stats' names: `kind:`, `platform:`, `campaign:`, `ad:`); none
/// when it marks no goal so. A goals read and one counter `Query`.
async fn qualified_days(
    sources: &AdsSources<'_>,
    instance: &InstanceId,
    request: &AdsRequest,
) -> Result<CounterDays, StoreError> {
    let goals = sources.goals.load_goals(instance).await?;
    let Some(goal) = goals.qualified_lead() else {
        return Ok(CounterDays::new());
    };
    let first = crate::goals::counter_day(&goal.id, &request.since);
    let last = crate::goals::counter_day(&goal.id, &request.until);
    let prefix = crate::goals::counter_day(&goal.id, "");
    let days = sources
        .contacts
        .load_counter_days(instance, &first, &last)
        .await?;
    Ok(days
        .into_iter()
        .filter_map(|(day, counters)| Some((day.strip_prefix(&prefix)?.to_owned(), counters)))
        .collect())
}

/// `days` added into `summed`, day by day and counter by counter.
fn add_days(summed: &mut CounterDays, days: CounterDays) {
    for (day, counters) in days {
        let into = summed.entry(day).or_default();
        for (name, count) in counters {
            *into.entry(name).or_default() += count;
        }
    }
}

/// Every instance's counters of the window, summed day by day, and its qualified leads: a
/// counter read per instance (the instance registry lists them) and its qualified-lead goal's,
/// 8 instances at a time.
async fn counter_days(
    sources: &AdsSources<'_>,
    request: &AdsRequest,
) -> Result<(CounterDays, CounterDays), StoreError> {
    let instances = match &request.instance_id {
        Some(instance) => vec![instance.clone()],
        None => sources.instances.list_instances(MAX_INSTANCES).await?,
    };
    let read: Vec<(CounterDays, CounterDays)> = futures::stream::iter(instances)
        .map(|instance| async move {
            let counters = sources
                .contacts
                .load_counter_days(&instance, &request.since, &request.until)
                .await?;
            let qualified = qualified_days(sources, &instance, request).await?;
            Ok::<_, StoreError>((counters, qualified))
        })
        .buffer_unordered(8)
        .try_collect()
        .await?;
    let (mut summed, mut qualified) = (CounterDays::new(), CounterDays::new());
    for (days, leads) in read {
        add_days(&mut summed, days);
        add_days(&mut qualified, leads);
    }
    Ok((summed, qualified))
}

/// Each row's qualified leads (a key's on each of its currency rows, as its conversations) and
/// its cost per qualified lead; each total's, the sum of its currency's rows.
fn with_qualified(report: &mut AdsReport, qualified: &BTreeMap<String, u64>) {
    let cost = |spend: Amount, count: u64| spend.over(Decimal::from(count), 2);
    for row in &mut report.rows {
        row.qualified = qualified.get(&row.key).copied().unwrap_or(0);
        row.cost_per_qualified = cost(row.spend, row.qualified);
    }
    for total in &mut report.totals {
        total.qualified = report
            .rows
            .iter()
            .filter(|row| row.currency == total.currency)
            .map(|row| row.qualified)
            .sum();
        total.cost_per_qualified = cost(total.spend, total.qualified);
    }
}

/// The names of `ad_ids`, [`MAX_AD_LOOKUP`] a call.
pub async fn names_of(
    store: &dyn SpendStore,
    ad_ids: &[String],
) -> Result<Vec<AdNames>, StoreError> {
    let mut found = Vec::new();
    for chunk in ad_ids.chunks(MAX_AD_LOOKUP) {
        found.extend(store.ad_names(chunk).await?);
    }
    Ok(found)
}

/// The report `request` asks for: what `GET /reports/ads` answers and the Ads page shows.
pub async fn load(sources: &AdsSources<'_>, request: &AdsRequest) -> Result<AdsReport, StoreError> {
    let spend = sources
        .spend
        .load_spend(&request.since, &request.until)
        .await?;
    let (days, qualified_days) = counter_days(sources, request).await?;
    let names = if request.group_by == AdsGrouping::Campaign {
        let ads: BTreeSet<String> = days
            .values()
            .flat_map(|counters| counters.keys())
            .filter_map(|name| name.strip_prefix("ad:").map(str::to_owned))
            .collect();
        names_of(sources.spend, &ads.into_iter().collect::<Vec<_>>()).await?
    } else {
        Vec::new()
    };
    let revenue: Vec<RevenueLine> = match request.group_by.revenue_dimension() {
        Some(dimension) => sources
            .revenue
            .load_report_counters(dimension, &request.since, &request.until)
            .await?
            .into_iter()
            .filter(|counter| counter.day >= request.since && counter.day <= request.until)
            .map(|counter| {
                (
                    counter.key,
                    counter.currency,
                    counter.tally.conversions,
                    counter.tally.revenue,
                )
            })
            .collect(),
        None => Vec::new(),
    };
    let counted = conversations(request.group_by, &days, &names);
    let qualified = conversations(request.group_by, &qualified_days, &names);
    let mut report = summarize(request, &spend, &counted, &revenue);
    with_qualified(&mut report, &qualified);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(group_by: AdsGrouping) -> AdsRequest {
        AdsRequest {
            group_by,
            since: "2026-11-24".into(),
            until: "2026-11-30".into(),
            instance_id: None,
        }
    }

    fn row(campaign: &str, spend: &str, currency: Currency) -> SpendRow {
        SpendRow {
            date: "2026-11-24".into(),
            platform: "meta".into(),
            campaign: campaign.into(),
            ad_set: String::new(),
            ad_id: String::new(),
            ad_name: None,
            spend: Amount::parse(spend).unwrap(),
            currency,
            impressions: 10,
            clicks: 2,
        }
    }

    #[test]
    fn cost_per_conversation_is_rounded_to_the_cent_and_roas_to_four_places() {
        let counted = BTreeMap::from([("C".to_owned(), 3)]);
        let revenue = [(
            "C".to_owned(),
            Currency::USD,
            2,
            Amount::parse("250").unwrap(),
        )];
        let report = summarize(
            &request(AdsGrouping::Campaign),
            &[row("C", "100.00", Currency::USD)],
            &counted,
            &revenue,
        );
        let line = &report.rows[0];
        assert_eq!(line.cost_per_conversation.unwrap().to_string(), "33.33");
        assert_eq!(line.roas.unwrap().to_string(), "2.50");
        assert_eq!(line.cost_per_qualified, None);
        let two = summarize(
            &request(AdsGrouping::Campaign),
            &[row("C", "200.00", Currency::USD)],
            &counted,
            &[],
        );
        assert_eq!(
            two.rows[0].cost_per_conversation.unwrap().to_string(),
            "66.67"
        );
        assert_eq!(two.rows[0].roas.unwrap().to_string(), "0.00");
    }

    #[test]
    fn currencies_are_never_summed_and_a_zero_divisor_is_null() {
        let counted = BTreeMap::from([("D".to_owned(), 4)]);
        let report = summarize(
            &request(AdsGrouping::Campaign),
            &[
                row("C", "10", Currency::USD),
                row("C", "20", Currency::parse("EUR").unwrap()),
            ],
            &counted,
            &[],
        );
        assert_eq!(report.rows.len(), 3);
        assert_eq!(
            report.rows[0].cost_per_conversation, None,
            "no conversations"
        );
        assert_eq!(report.rows[0].roas.unwrap().to_string(), "0.00");
        assert_eq!(report.rows[2].key, "D");
        assert_eq!(report.rows[2].currency, None);
        assert_eq!(
            report.totals.len(),
            3,
            "one total per currency, and one without"
        );
    }

    #[test]
    fn conversations_come_from_the_counters_of_each_grouping() {
        let days = CounterDays::from([(
            "2026-11-24".to_owned(),
            BTreeMap::from([
                ("kind:meta_ad".to_owned(), 3),
                ("kind:rule".to_owned(), 2),
                ("platform:tiktok".to_owned(), 2),
                ("platform:instagram".to_owned(), 2),
                ("ad:120".to_owned(), 3),
                ("campaign:TT".to_owned(), 2),
            ]),
        )]);
        let names = [AdNames {
            ad_id: "120".into(),
            ad_name: None,
            ad_set_name: None,
            campaign_name: "CTWA".into(),
            date: "2026-11-24".into(),
        }];
        let of = |grouping| {
            conversations(grouping, &days, &names)
                .into_iter()
                .collect::<Vec<_>>()
        };
        assert_eq!(
            of(AdsGrouping::Platform),
            [("meta".into(), 3), ("tiktok".into(), 2)]
        );
        assert_eq!(
            of(AdsGrouping::Campaign),
            [("CTWA".into(), 3), ("TT".into(), 2)]
        );
        assert_eq!(of(AdsGrouping::Ad), [("120".into(), 3)]);
        assert_eq!(of(AdsGrouping::Day), [("2026-11-24".into(), 5)]);
    }
}
