//! Per-instance, per-day counters, bumped in the same conditional write as the contact change
//! they count, so they stay exact under retries and never need a scan to read.

use crate::ids::InstanceId;
use crate::model::Contact;

pub const NEW_CONTACTS: &str = "new_contacts";
pub const UNMATCHED: &str = "unmatched";

pub fn kind_counter(kind: &str) -> String {
    format!("kind:{kind}")
}

pub fn platform_counter(platform: &str) -> String {
    format!("platform:{platform}")
}

pub fn rule_counter(rule_id: &str) -> String {
    format!("rule:{rule_id}")
}

/// One increment of one counter of one instance and day (`YYYY-MM-DD`, the contact's first
/// seen day in UTC).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CounterBump {
    pub instance_id: InstanceId,
    pub day: String,
    pub name: String,
}

/// The counters a change of a contact from `before` to `after` adds to.
pub fn bumps_for(before: Option<&Contact>, after: &Contact) -> Vec<CounterBump> {
    let bump = |name: String| CounterBump {
        instance_id: after.instance_id.clone(),
        day: after.first_seen_day(),
        name,
    };
    let mut bumps = Vec::new();
    if before.is_none() {
        bumps.push(bump(NEW_CONTACTS.to_owned()));
    }
    let had_acquisition = before.is_some_and(|contact| contact.acquisition.is_some());
    if let (false, Some(acquisition)) = (had_acquisition, &after.acquisition) {
        bumps.push(bump(kind_counter(acquisition.kind())));
        bumps.push(bump(platform_counter(acquisition.platform())));
        if let crate::model::Acquisition::Rule(rule) = acquisition {
            bumps.push(bump(rule_counter(rule.rule_id.as_str())));
        }
    }
    let newly_checked = before.is_some_and(|contact| contact.rules_checked_at.is_none())
        && after.rules_checked_at.is_some();
    if newly_checked && after.acquisition.is_none() {
        bumps.push(bump(UNMATCHED.to_owned()));
    }
    bumps
}
