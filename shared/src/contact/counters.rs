//! Per-instance, per-day counters, bumped in the same conditional write as the contact change
//! they count, so they stay exact under retries and never need a scan to read.

use crate::contact::Contact;
use crate::ids::InstanceId;

/// Counter of contacts first seen that day.
pub const NEW_CONTACTS: &str = "new_contacts";
/// Counter of contacts the rules checked and found nothing for.
pub const UNMATCHED: &str = "unmatched";

// Every counter name comes from a fixed vocabulary (`'static` names) or an admin-created rule's
// id, never from what a message or a page URL says: a day's counters stay a short list.

/// Counter name of an acquisition kind (`kind:meta_ad`, …).
pub fn kind_counter(kind: &'static str) -> String {
    format!("kind:{kind}")
}

/// Counter name of an acquisition platform (`platform:instagram`, …).
pub fn platform_counter(platform: &'static str) -> String {
    format!("platform:{platform}")
}

/// Counter name of a conversation source (`source:ads`, `source:organic`, `source:proactive`).
pub fn source_counter(source: crate::sources::ConversationSource) -> String {
    format!("source:{}", source.as_str())
}

/// Counter name of the rule that attributed a contact.
pub fn rule_counter(rule_id: &crate::rules::RuleId) -> String {
    format!("rule:{}", rule_id.as_str())
}

/// Counter name of a campaign that acquired contacts: a rule's `campaign` (admin-made).
pub fn campaign_counter(campaign: &str) -> String {
    format!("campaign:{campaign}")
}

/// Counter name of an ad that acquired contacts: a Meta ad's `ad_id`, or a rule's `ad`.
pub fn ad_counter(ad: &str) -> String {
    format!("ad:{ad}")
}

/// A Meta ad id as counted: only the digits Meta's ids are made of, at most 32 of them, so a
/// counter name stays short whatever a referral carries. Each id stands for an ad someone paid
/// Meta to run towards this number, so the names a day can gain are the ads running.
fn countable_ad_id(ad_id: &str) -> bool {
    !ad_id.is_empty() && ad_id.len() <= 32 && ad_id.bytes().all(|b| b.is_ascii_digit())
}

/// The campaign and ad counters of an acquisition (the ads report's conversations): a Meta
/// ad's id, a rule's campaign and ad, a web visit's `counted_campaign`. A visit's raw
/// `utm_campaign` is never counted: anyone holding a widget's publishable key can send any
/// value, and a counter set must not grow with what an outsider sends; the mark is set only for
/// a campaign on the widget's admin-made list.
fn campaign_and_ad(acquisition: &crate::contact::Acquisition) -> Vec<String> {
    match acquisition {
        crate::contact::Acquisition::MetaAd(referral) => referral
            .ad_id
            .as_deref()
            .filter(|id| countable_ad_id(id))
            .map(ad_counter)
            .into_iter()
            .collect(),
        crate::contact::Acquisition::Rule(rule) => {
            let campaign = rule.campaign.as_deref().map(campaign_counter);
            let ad = rule.ad.as_deref().map(ad_counter);
            campaign.into_iter().chain(ad).collect()
        }
        crate::contact::Acquisition::Web(visit) => visit
            .counted_campaign
            .as_deref()
            .map(campaign_counter)
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

/// One change of one counter of one instance and day (`YYYY-MM-DD`, the contact's first seen
/// day in UTC).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CounterBump {
    /// The instance whose counter changes.
    pub instance_id: InstanceId,
    /// The day counted, `YYYY-MM-DD` in UTC.
    pub day: String,
    /// The counter's name, from a fixed vocabulary or a rule id.
    pub name: String,
    /// +1, or -1 when a contact leaves a count (an unmatched contact later attributed).
    pub delta: i64,
}

/// The counters a contact stands in, on its first-seen day: one new contact, its acquisition's
/// kind, platform and rule, or `unmatched` while the rules found nothing for it and nothing
/// else has attributed it.
pub(crate) fn counted_in(contact: &Contact) -> Vec<String> {
    let mut names = vec![
        NEW_CONTACTS.to_owned(),
        source_counter(contact.conversation_source()),
    ];
    match &contact.acquisition {
        Some(acquisition) => {
            names.push(kind_counter(acquisition.kind()));
            names.push(platform_counter(acquisition.platform()));
            if let crate::contact::Acquisition::Rule(rule) = acquisition {
                names.push(rule_counter(&rule.rule_id));
            }
            names.extend(campaign_and_ad(acquisition));
        }
        None if contact.rules_checked_at.is_some() => names.push(UNMATCHED.to_owned()),
        None => {}
    }
    names
}

/// The counter changes that move a contact from where `before` counted to where `after`
/// counts: what `after` stands in and `before` did not (+1), what `before` stood in and
/// `after` does not (-1). So a later, earlier message that moves the first-seen day, or an
/// earlier referral that replaces the acquisition, moves the counts with it.
pub fn bumps_for(before: Option<&Contact>, after: &Contact) -> Vec<CounterBump> {
    let on_day = |contact: &Contact| {
        let day = contact.first_seen_day();
        counted_in(contact)
            .into_iter()
            .map(move |name| (day.clone(), name))
    };
    let mut left: Vec<(String, String)> = before.into_iter().flat_map(on_day).collect();
    let change = |(day, name): (String, String), delta: i64| CounterBump {
        instance_id: after.instance_id.clone(),
        day,
        name,
        delta,
    };
    let mut bumps = Vec::new();
    for counted in on_day(after) {
        match left.iter().position(|previous| *previous == counted) {
            Some(index) => {
                left.remove(index);
            }
            None => bumps.push(change(counted, 1)),
        }
    }
    bumps.extend(left.into_iter().map(|counted| change(counted, -1)));
    bumps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact::{Acquisition, Channel, MetaPlatform, MetaReferral};
    use crate::ids::ContactId;
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
            identity: Default::default(),
            linked_ids: Vec::new(),
            events: Default::default(),
            goals: Default::default(),
            business_first: None,
            version: 1,
        }
    }

    fn meta_ad() -> Acquisition {
        Acquisition::MetaAd(MetaReferral::minimal(
            MetaPlatform::Instagram,
            Timestamp::from_unix_seconds(1).unwrap(),
        ))
    }

    /// The bumps but the conversation source's (its own test below).
    fn named(bumps: &[CounterBump]) -> Vec<(String, i64)> {
        bumps
            .iter()
            .filter(|bump| !bump.name.starts_with("source:"))
            .map(|bump| (bump.name.clone(), bump.delta))
            .collect()
    }

    #[test]
    fn the_conversation_source_moves_with_what_decides_it() {
        let sources = |bumps: Vec<CounterBump>| -> Vec<(String, i64)> {
            bumps
                .into_iter()
                .filter(|bump| bump.name.starts_with("source:"))
                .map(|bump| (bump.name, bump.delta))
                .collect()
        };
        let organic = contact();
        assert_eq!(
            sources(bumps_for(None, &organic)),
            [("source:organic".into(), 1)]
        );
        let mut proactive = organic.clone();
        proactive.business_first = Some(crate::sources::BusinessFirst {
            at: organic.first_seen_at.plus_seconds(-60),
            origin: crate::sources::Origin::Marketing,
        });
        assert_eq!(
            sources(bumps_for(Some(&organic), &proactive)),
            [
                ("source:proactive".into(), 1),
                ("source:organic".into(), -1)
            ]
        );
        let mut from_an_ad = proactive.clone();
        from_an_ad.acquisition = Some(meta_ad());
        assert_eq!(
            sources(bumps_for(Some(&proactive), &from_an_ad)),
            [("source:ads".into(), 1), ("source:proactive".into(), -1)]
        );
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

    #[test]
    fn a_contact_whose_first_seen_day_moves_takes_its_counts_along() {
        let mut before = contact();
        before.acquisition = Some(meta_ad());
        let mut after = before.clone();
        after.first_seen_at = before.first_seen_at.plus_seconds(-86_400);
        let moved: Vec<_> = bumps_for(Some(&before), &after)
            .into_iter()
            .map(|bump| (bump.day, bump.name, bump.delta))
            .collect();
        let on = |day: &str, name: &str, delta| (day.to_owned(), name.to_owned(), delta);
        assert_eq!(
            moved,
            [
                on("2025-11-23", "new_contacts", 1),
                on("2025-11-23", "source:ads", 1),
                on("2025-11-23", "kind:meta_ad", 1),
                on("2025-11-23", "platform:instagram", 1),
                on("2025-11-24", "new_contacts", -1),
                on("2025-11-24", "source:ads", -1),
                on("2025-11-24", "kind:meta_ad", -1),
                on("2025-11-24", "platform:instagram", -1),
            ]
        );
    }

    #[test]
    fn a_replaced_acquisition_moves_its_counts_to_the_new_one() {
        let mut before = contact();
        before.acquisition = Some(meta_ad());
        let mut after = before.clone();
        after.acquisition = Some(Acquisition::MetaPost(MetaReferral::minimal(
            MetaPlatform::Facebook,
            Timestamp::from_unix_seconds(1).unwrap(),
        )));
        assert_eq!(
            named(&bumps_for(Some(&before), &after)),
            [
                ("kind:meta_post".into(), 1),
                ("platform:facebook".into(), 1),
                ("kind:meta_ad".into(), -1),
                ("platform:instagram".into(), -1)
            ]
        );
    }
}
