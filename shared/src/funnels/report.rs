//! A funnel's report from its own day counters: one range read of at most `MAX_DAYS` small
//! items (steps × names each), never a scan of contacts.

use super::{ALL, Funnel, counter_day, counter_name};
use crate::contact::store::ContactStore;
use crate::fields::FieldError;
use crate::ids::InstanceId;
use crate::stats::StatsWindow;
use crate::store::StoreError;
use serde::Serialize;

/// The longest filter value (a campaign or ad id as the counters name it).
pub const MAX_FILTER_CHARS: usize = 160;

/// Which contacts a report counts: all, or those of one platform, campaign or ad (the names
/// their steps count under).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Filter {
    /// `platform`, `campaign` or `ad`.
    pub by: &'static str,
    /// The platform, campaign or ad id.
    pub value: String,
}

impl Filter {
    /// At most one of `ad_id`, `platform`, `campaign` (each 1 to [`MAX_FILTER_CHARS`] visible
    /// characters), or a refusal naming the field.
    pub fn parse(
        ad_id: Option<&str>,
        platform: Option<&str>,
        campaign: Option<&str>,
    ) -> Result<Option<Self>, FieldError> {
        let given: Vec<(&'static str, &'static str, &str)> = [
            ("ad_id", "ad", ad_id),
            ("platform", "platform", platform),
            ("campaign", "campaign", campaign),
        ]
        .into_iter()
        .filter_map(|(field, by, value)| value.map(|value| (field, by, value)))
        .collect();
        match given.as_slice() {
            [] => Ok(None),
            [(field, by, value)] => {
                let visible = !value.is_empty()
                    && value.chars().count() <= MAX_FILTER_CHARS
                    && value.chars().all(|c| !c.is_control() && !c.is_whitespace());
                if !visible {
                    return Err(FieldError::new(
                        *field,
                        format!("must be 1 to {MAX_FILTER_CHARS} visible characters"),
                    ));
                }
                Ok(Some(Self {
                    by,
                    value: (*value).to_owned(),
                }))
            }
            [_, (field, _, _), ..] => Err(FieldError::new(
                *field,
                "at most one of ad_id, platform and campaign",
            )),
        }
    }

    fn name(&self) -> String {
        format!("{}:{}", self.by, self.value)
    }
}

/// One step of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepReport {
    /// The step as the funnel names it.
    pub step: String,
    /// Contacts that reached it.
    pub contacts: u64,
    /// Percent of the previous step's contacts, two decimals, half away from zero (`null` for
    /// the first step, or when the previous step has none).
    pub from_previous: Option<String>,
    /// Percent of the first step's contacts, the same way (`null` when it has none).
    pub from_first: Option<String>,
    /// Contacts of the previous step that did not reach this one (0 for the first).
    pub drop_off: u64,
}

/// What `GET …/funnels/{funnel_id}` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FunnelReport {
    /// Days of first touch counted.
    pub days: u32,
    /// The contacts counted, when not all.
    pub filter: Option<Filter>,
    /// Each step, in order.
    pub steps: Vec<StepReport>,
}

/// `part` of `whole` in percent with two decimals, rounded half away from zero, from integers
/// (exact: no float).
pub fn percent(part: u64, whole: u64) -> Option<String> {
    if whole == 0 {
        return None;
    }
    let (part, whole) = (u128::from(part), u128::from(whole));
    let hundredths = (part * 20_000 + whole) / (2 * whole);
    Some(format!("{}.{:02}", hundredths / 100, hundredths % 100))
}

/// The funnel's counts among contacts first seen in `window`, by step.
pub async fn load(
    contacts: &dyn ContactStore,
    instance_id: &InstanceId,
    funnel: &Funnel,
    window: &StatsWindow,
    filter: Option<Filter>,
) -> Result<FunnelReport, StoreError> {
    let days = contacts
        .load_counter_days(
            instance_id,
            &counter_day(&funnel.id, funnel.revision, &window.first_day),
            &counter_day(&funnel.id, funnel.revision, &window.last_day),
        )
        .await?;
    let name = filter.as_ref().map_or_else(|| ALL.to_owned(), Filter::name);
    let counts: Vec<u64> = (1..=funnel.settings.steps.len())
        .map(|step| {
            let counter = counter_name(step, &name);
            days.values().filter_map(|day| day.get(&counter)).sum()
        })
        .collect();
    let first = counts.first().copied().unwrap_or(0);
    let steps = funnel
        .settings
        .steps
        .iter()
        .zip(&counts)
        .enumerate()
        .map(|(index, (step, &contacts))| {
            let previous = index.checked_sub(1).map(|before| counts[before]);
            StepReport {
                step: step.clone(),
                contacts,
                from_previous: previous.and_then(|previous| percent(contacts, previous)),
                from_first: percent(contacts, first),
                drop_off: previous.map_or(0, |previous| previous.saturating_sub(contacts)),
            }
        })
        .collect();
    Ok(FunnelReport {
        days: window.days,
        filter,
        steps,
    })
}

#[cfg(test)]
mod tests {
    use super::percent;

    #[test]
    fn percent_rounds_half_away_from_zero_exactly() {
        assert_eq!(percent(2, 3).as_deref(), Some("66.67"));
        assert_eq!(percent(1, 3).as_deref(), Some("33.33"));
        assert_eq!(percent(1, 8).as_deref(), Some("12.50"));
        assert_eq!(percent(1, 80_000).as_deref(), Some("0.00"));
        assert_eq!(percent(1, 20_000).as_deref(), Some("0.01"));
        assert_eq!(percent(3, 3).as_deref(), Some("100.00"));
        assert_eq!(percent(0, 0), None);
    }
}
