//! Attribution stats over a window of days, read from the daily counters (never from contacts),
//! and the display colour of each platform.

use crate::contact::counters::{NEW_CONTACTS, UNMATCHED};
use crate::contact::store::{ContactStore, CounterDays};
use crate::ids::InstanceId;
use crate::rules::Rule;
use crate::rules::store::RuleStore;
use crate::store::StoreError;
use crate::time::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;

/// Days the stats cover when the request names none.
pub const DEFAULT_DAYS: u32 = 7;
/// The widest stats window, in days.
pub const MAX_DAYS: u32 = 90;

/// Every platform with its own colour in [`platform_color`]; any other name is drawn as `other`.
pub const PLATFORMS: [&str; 16] = [
    "facebook",
    "instagram",
    "whatsapp",
    "tiktok",
    "google",
    "youtube",
    "twitter",
    "linkedin",
    "snapchat",
    "pinterest",
    "email",
    "sms",
    "microsoft",
    "reddit",
    "direct",
    "custom",
];

/// A fixed, distinct colour per platform, for the avatar ring an inbox draws around a contact.
pub fn platform_color(platform: &str) -> &'static str {
    match platform {
        "facebook" => "#1877F2",
        "instagram" => "#C13584",
        "whatsapp" => "#25D366",
        "tiktok" => "#010101",
        "google" => "#FBBC05",
        "youtube" => "#FF0000",
        "twitter" => "#1DA1F2",
        "linkedin" => "#0A66C2",
        "snapchat" => "#FFFC00",
        "pinterest" => "#BD081C",
        "email" => "#6B7280",
        "sms" => "#8B5CF6",
        "microsoft" => "#00A4EF",
        "reddit" => "#FF4500",
        "direct" => "#94A3B8",
        "custom" => "#F97316",
        _ => "#A16207",
    }
}

/// The last `days` UTC calendar days, today included: counters are kept per day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsWindow {
    /// Days covered, today included.
    pub days: u32,
    /// Start of the first day, UTC.
    pub since: Timestamp,
    /// Now: the window ends with the current day.
    pub until: Timestamp,
    /// First day counted, `YYYY-MM-DD`.
    pub first_day: String,
    /// Last day counted (today), `YYYY-MM-DD`.
    pub last_day: String,
}

/// A `days` parameter outside 1..=`MAX_DAYS`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("days must be a whole number from 1 to {MAX_DAYS}")]
pub struct InvalidDays;

impl StatsWindow {
    /// The `days` days up to `now`, or the default when the request names none.
    pub fn ending(now: Timestamp, days: Option<&str>) -> Result<Self, InvalidDays> {
        let days = match days {
            None => DEFAULT_DAYS,
            Some(text) => text
                .parse()
                .ok()
                .filter(|d| (1..=MAX_DAYS).contains(d))
                .ok_or(InvalidDays)?,
        };
        let first = now.plus_seconds(-86_400 * i64::from(days - 1));
        let since = Timestamp::from_unix_seconds(
            first.unix_seconds() - first.unix_seconds().rem_euclid(86_400),
        )
        .expect("a day start is a valid time");
        Ok(Self {
            days,
            since,
            until: now,
            first_day: first.day(),
            last_day: now.day(),
        })
    }
}

/// New contacts per acquisition kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ByKind {
    /// From a paid Meta ad.
    pub meta_ad: u64,
    /// From an organic Meta post.
    pub meta_post: u64,
    /// From an m.me / ig.me / wa.me link.
    pub shortlink: u64,
    /// From a catalog or shop product, without an ad.
    pub product: u64,
    /// Attributed by a text rule.
    pub rule: u64,
    /// From the website chat widget.
    pub web: u64,
}

impl ByKind {
    /// The kind counters among `get`'s (a day's or a window's).
    fn of(get: impl Fn(&str) -> u64) -> Self {
        Self {
            meta_ad: get("kind:meta_ad"),
            meta_post: get("kind:meta_post"),
            shortlink: get("kind:shortlink"),
            product: get("kind:product"),
            rule: get("kind:rule"),
            web: get("kind:web"),
        }
    }
}

/// New contacts by conversation source (`crate::sources`), from the `source:` counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BySource {
    /// An ad acquired them.
    pub ads: u64,
    /// They wrote first, without an ad.
    pub organic: u64,
    /// The business wrote first.
    pub proactive: u64,
}

/// One UTC day's new contacts by kind, for the dashboard's per-day chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayFigures {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// See [`ByKind`].
    pub by_kind: ByKind,
    /// New contacts the rules checked and found nothing for that day.
    pub unmatched: u64,
}

/// New contacts from one platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformCount {
    /// The platform's name.
    pub platform: String,
    /// Contacts it brought.
    pub contacts: u64,
    /// The platform's fixed colour, as a CSS hex value.
    pub color: &'static str,
}

/// Contacts one rule attributed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleCount {
    /// The rule's id.
    pub rule_id: String,
    /// `None` for a rule deleted since it matched.
    pub name: Option<String>,
    /// The rule's platform, `None` for a deleted rule.
    pub platform: Option<String>,
    /// Contacts it attributed in the window.
    pub matched: u64,
}

/// An instance's acquisition summary over a window, read from the day counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// The instance summarized.
    pub instance_id: InstanceId,
    /// See [`StatsWindow::days`].
    pub days: u32,
    /// See [`StatsWindow::since`].
    pub since: Timestamp,
    /// See [`StatsWindow::until`].
    pub until: Timestamp,
    /// Contacts first seen in the window.
    pub new_contacts: u64,
    /// New contacts from a paid Meta ad (`by_kind.meta_ad`).
    pub meta_ads: u64,
    /// New contacts the text rules decided on (no Meta referral): always
    /// `matched_by_rules + unmatched`. A contact still waiting for the queue worker joins it within
    /// a second.
    pub click_to_chat_contacts: u64,
    /// New contacts a rule attributed.
    pub matched_by_rules: u64,
    /// New contacts the rules checked and found nothing for.
    pub unmatched: u64,
    /// See [`ByKind`].
    pub by_kind: ByKind,
    /// See [`BySource`].
    pub by_source: BySource,
    /// One entry per platform with contacts.
    pub by_platform: Vec<PlatformCount>,
    /// One entry per rule that matched.
    pub rules: Vec<RuleCount>,
}

/// Each counter summed over the days.
fn totals(counters: &CounterDays) -> BTreeMap<&str, u64> {
    let mut totals = BTreeMap::new();
    for day in counters.values() {
        for (name, count) in day {
            *totals.entry(name.as_str()).or_default() += count;
        }
    }
    totals
}

/// Contacts each rule attributed over the days, by rule id.
pub fn matched_by_rule(counters: &CounterDays) -> BTreeMap<String, u64> {
    totals(counters)
        .into_iter()
        .filter_map(|(name, count)| Some((name.strip_prefix("rule:")?.to_owned(), count)))
        .collect()
}

/// The stats of `window` from its day counters and the instance's current rules.
pub fn summarize(
    instance_id: InstanceId,
    window: &StatsWindow,
    counters: &CounterDays,
    rules: &[Rule],
) -> Stats {
    let totals = totals(counters);
    let get = |name: &str| totals.get(name).copied().unwrap_or(0);
    let by_kind = ByKind::of(get);
    let mut by_platform: Vec<PlatformCount> = totals
        .iter()
        .filter_map(|(name, count)| {
            let platform = name.strip_prefix("platform:")?;
            (*count > 0).then(|| PlatformCount {
                platform: platform.to_owned(),
                contacts: *count,
                color: platform_color(platform),
            })
        })
        .collect();
    by_platform.sort_by(|a, b| {
        b.contacts
            .cmp(&a.contacts)
            .then_with(|| a.platform.cmp(&b.platform))
    });

    let mut matched = matched_by_rule(counters);
    let mut rule_counts: Vec<RuleCount> = rules
        .iter()
        .map(|rule| RuleCount {
            rule_id: rule.id.to_string(),
            name: Some(rule.settings.name.clone()),
            platform: Some(rule.settings.platform.as_str().to_owned()),
            matched: matched.remove(rule.id.as_str()).unwrap_or(0),
        })
        .collect();
    rule_counts.extend(matched.into_iter().filter(|(_, count)| *count > 0).map(
        |(rule_id, matched)| RuleCount {
            rule_id,
            name: None,
            platform: None,
            matched,
        },
    ));

    let unmatched = get(UNMATCHED);
    Stats {
        instance_id,
        days: window.days,
        since: window.since,
        until: window.until,
        new_contacts: get(NEW_CONTACTS),
        meta_ads: by_kind.meta_ad,
        click_to_chat_contacts: by_kind.rule + unmatched,
        matched_by_rules: by_kind.rule,
        unmatched,
        by_kind,
        by_source: BySource {
            ads: get("source:ads"),
            organic: get("source:organic"),
            proactive: get("source:proactive"),
        },
        by_platform,
        rules: rule_counts,
    }
}

/// Every day of `window` in order, with no counters as zeros (a day without contacts still has
/// its place on a chart).
pub fn per_day(window: &StatsWindow, counters: &CounterDays) -> Vec<DayFigures> {
    let none = BTreeMap::new();
    (0..window.days)
        .map(|offset| {
            let day = window.since.plus_seconds(86_400 * i64::from(offset)).day();
            let counts = counters.get(&day).unwrap_or(&none);
            let get = |name: &str| counts.get(name).copied().unwrap_or(0);
            DayFigures {
                by_kind: ByKind::of(get),
                unmatched: get(UNMATCHED),
                day,
            }
        })
        .collect()
}

/// The stats of `window` for the instance, read from its day counters and current rules: what
/// `GET /instances/{id}/stats` answers and the dashboard shows.
pub async fn load(
    rules: &dyn RuleStore,
    contacts: &dyn ContactStore,
    instance_id: InstanceId,
    window: &StatsWindow,
) -> Result<Stats, StoreError> {
    Ok(load_with_days(rules, contacts, instance_id, window)
        .await?
        .0)
}

/// [`load`]'s stats and the window's [`per_day`] figures, from the same single counter read.
pub async fn load_with_days(
    rules: &dyn RuleStore,
    contacts: &dyn ContactStore,
    instance_id: InstanceId,
    window: &StatsWindow,
) -> Result<(Stats, Vec<DayFigures>), StoreError> {
    let counters = contacts
        .load_counter_days(&instance_id, &window.first_day, &window.last_day)
        .await?;
    let stored = rules.list_rules(&instance_id).await?;
    let days = per_day(window, &counters);
    Ok((summarize(instance_id, window, &counters, &stored), days))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_platform_has_its_own_color() {
        let platforms: Vec<&str> = PLATFORMS.iter().copied().chain(["other"]).collect();
        let mut colors: Vec<&str> = platforms.iter().map(|p| platform_color(p)).collect();
        colors.sort();
        colors.dedup();
        assert_eq!(colors.len(), platforms.len());
    }

    #[test]
    fn every_day_of_the_window_has_its_figures_in_order() {
        let now = Timestamp::from_unix_seconds(1_763_976_000).unwrap(); // 2025-11-24T09:20Z
        let window = StatsWindow::ending(now, Some("3")).unwrap();
        let counters: CounterDays = [(
            "2025-11-23".to_owned(),
            [("kind:rule".to_owned(), 2), (UNMATCHED.to_owned(), 1)].into(),
        )]
        .into();
        let days = per_day(&window, &counters);
        let names: Vec<&str> = days.iter().map(|d| d.day.as_str()).collect();
        assert_eq!(names, ["2025-11-22", "2025-11-23", "2025-11-24"]);
        assert_eq!((days[1].by_kind.rule, days[1].unmatched), (2, 1));
        assert_eq!((days[0].by_kind.rule, days[2].unmatched), (0, 0));
    }

    #[test]
    fn the_window_covers_whole_days_ending_now() {
        let now = Timestamp::from_unix_seconds(1_763_976_000).unwrap(); // 2025-11-24T09:20Z
        let week = StatsWindow::ending(now, None).unwrap();
        assert_eq!(
            (week.first_day.as_str(), week.last_day.as_str()),
            ("2025-11-18", "2025-11-24")
        );
        assert_eq!(week.since.to_string(), "2025-11-18T00:00:00.000Z");
        let today = StatsWindow::ending(now, Some("1")).unwrap();
        assert_eq!(today.first_day, "2025-11-24");
        for bad in ["0", "91", "-1", "seven", ""] {
            assert_eq!(
                StatsWindow::ending(now, Some(bad)),
                Err(InvalidDays),
                "{bad}"
            );
        }
    }
}
