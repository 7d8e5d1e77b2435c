//! A goal's stats over the last days, from its own day counters: one range read of at most
//! `MAX_DAYS` small items, never a scan of contacts.

use super::{ACHIEVED, GoalId, counter_day};
use crate::contact::store::ContactStore;
use crate::ids::InstanceId;
use crate::stats::StatsWindow;
use crate::store::StoreError;
use serde::Serialize;
use std::collections::BTreeMap;

/// What `GET …/goals/{goal_id}/stats` answers: contacts first seen in the window that achieved
/// the goal, in total and by their acquisition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GoalStats {
    /// Contacts that achieved it.
    pub achieved: u64,
    /// By acquisition platform.
    pub by_platform: BTreeMap<String, u64>,
    /// By campaign (a rule's campaign).
    pub by_campaign: BTreeMap<String, u64>,
    /// By ad (a Meta ad id, a rule's ad).
    pub by_ad: BTreeMap<String, u64>,
    /// By the rule that attributed the contact.
    pub by_rule: BTreeMap<String, u64>,
    /// By acquisition kind (`none`: unattributed).
    pub by_kind: BTreeMap<String, u64>,
    /// By conversation source (`ads`, `organic`, `proactive`) when the goal was achieved.
    pub by_source: BTreeMap<String, u64>,
}

/// The goal's counters over `window`.
pub async fn load(
    contacts: &dyn ContactStore,
    instance_id: &InstanceId,
    goal_id: &GoalId,
    window: &StatsWindow,
) -> Result<GoalStats, StoreError> {
    let days = contacts
        .load_counter_days(
            instance_id,
            &counter_day(goal_id, &window.first_day),
            &counter_day(goal_id, &window.last_day),
        )
        .await?;
    let mut stats = GoalStats::default();
    for (name, count) in days.values().flatten() {
        if *count == 0 {
            continue;
        }
        let (dimension, key) = name.split_once(':').unwrap_or((name.as_str(), ""));
        let into = match dimension {
            "platform" => &mut stats.by_platform,
            "campaign" => &mut stats.by_campaign,
            "ad" => &mut stats.by_ad,
            "rule" => &mut stats.by_rule,
            "kind" => &mut stats.by_kind,
            "source" => &mut stats.by_source,
            _ if name == ACHIEVED => {
                stats.achieved += count;
                continue;
            }
            _ => continue,
        };
        *into.entry(key.to_owned()).or_default() += count;
    }
    Ok(stats)
}
