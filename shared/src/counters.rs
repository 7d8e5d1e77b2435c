//! Per-instance, per-day counters, bumped in the same conditional write as the contact change
//! they count, so they stay exact under retries and never need a scan to read.

use crate::ids::InstanceId;
use crate::model::Contact;

pub const NEW_CONTACTS: &str = "new_contacts";
pub const UNMATCHED: &str = "unmatched";

// Every counter name comes from a fixed vocabulary (`'static` names) or an admin-created rule's
// id, never from what a message or a page URL says: a day's counters stay a short list.

pub fn kind_counter(kind: &'static str) -> String {
    format!("kind:{kind}")
}

pub fn platform_counter(platform: &'static str) -> String {
    format!("platform:{platform}")
}

pub fn rule_counter(rule_id: &crate::rules::RuleId) -> String {
    format!("rule:{}", rule_id.as_str())
}

/// One change of one counter of one instance and day (`YYYY-MM-DD`, the contact's first seen
/// day in UTC).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CounterBump {
    pub instance_id: InstanceId,
    pub day: String,
    pub name: String,
    /// +1, or -1 when a contact leaves a count (an unmatched contact later attributed).
    pub delta: i64,
}

/// The counters a change of a contact from `before` to `after` adds to.
pub fn bumps_for(before: Option<&Contact>, after: &Contact) -> Vec<CounterBump> {
    let change = |name: String, delta: i64| CounterBump {
        instance_id: after.instance_id.clone(),
        day: after.first_seen_day(),
        name,
        delta,
    };
    let bump = |name: String| change(name, 1);
    let mut bumps = Vec::new();
    if before.is_none() {
        bumps.push(bump(NEW_CONTACTS.to_owned()));
    }
    let had_acquisition = before.is_some_and(|contact| contact.acquisition.is_some());
    if let (false, Some(acquisition)) = (had_acquisition, &after.acquisition) {
        bumps.push(bump(kind_counter(acquisition.kind())));
        bumps.push(bump(platform_counter(acquisition.platform())));
        if let crate::model::Acquisition::Rule(rule) = acquisition {
            bumps.push(bump(rule_counter(&rule.rule_id)));
        }
    }
    // A contact counts as unmatched while the rules found nothing for it and nothing else has
    // attributed it; a later referral (or backfill) moves it out of that count.
    let unmatched =
        |contact: &Contact| contact.rules_checked_at.is_some() && contact.acquisition.is_none();
    match (before.is_some_and(unmatched), unmatched(after)) {
        (false, true) => bumps.push(bump(UNMATCHED.to_owned())),
        (true, false) => bumps.push(change(UNMATCHED.to_owned(), -1)),
        _ => {}
    }
    bumps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ContactId;
    use crate::model::{Acquisition, Channel, MetaPlatform, MetaReferral};
    use crate::time::Timestamp;

    fn contact() -> Contact {
        let at = Timestamp::from_unix_seconds(1_763_976_000).unwrap();
        Contact {
            instance_id: InstanceId::parse("1").unwrap(),
            contact_id: ContactId::parse("2").unwrap(),
            channel: Channel::Whatsapp,
            display_name: None,
            first_seen_at: at,
            last_seen_at: at,
            message_count: 1,
            first_message: None,
            acquisition: None,
            touches: Vec::new(),
            rules_checked_at: None,
            version: 1,
        }
    }

    fn meta_ad() -> Acquisition {
        Acquisition::MetaAd(MetaReferral::minimal(
            MetaPlatform::Instagram,
            Timestamp::from_unix_seconds(1).unwrap(),
        ))
    }

    fn named(bumps: &[CounterBump]) -> Vec<(String, i64)> {
        bumps
            .iter()
            .map(|bump| (bump.name.clone(), bump.delta))
            .collect()
    }

    #[test]
    fn a_new_attributed_contact_counts_its_kind_and_platform_on_its_first_day() {
        let mut after = contact();
        after.acquisition = Some(meta_ad());
        let bumps = bumps_for(None, &after);
        assert_eq!(
            named(&bumps),
            [
                ("new_contacts".into(), 1),
                ("kind:meta_ad".into(), 1),
                ("platform:instagram".into(), 1)
            ]
        );
        assert!(bumps.iter().all(|bump| bump.day == "2025-11-24"));
    }

    #[test]
    fn unmatched_is_counted_once_and_left_when_attributed_later() {
        let waiting = contact();
        let mut checked = waiting.clone();
        checked.rules_checked_at = Some(Timestamp::now());
        assert_eq!(
            named(&bumps_for(Some(&waiting), &checked)),
            [("unmatched".into(), 1)]
        );
        assert!(
            bumps_for(Some(&checked), &checked).is_empty(),
            "a repeat counts nothing"
        );
        let mut attributed = checked.clone();
        attributed.acquisition = Some(meta_ad());
        assert_eq!(
            named(&bumps_for(Some(&checked), &attributed)),
            [
                ("kind:meta_ad".into(), 1),
                ("platform:instagram".into(), 1),
                ("unmatched".into(), -1)
            ]
        );
    }
}
