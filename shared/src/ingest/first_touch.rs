//! First touch, decided purely: the contact after an inbound event, whatever order Meta
//! delivers the events in. The first message is the earliest, and the acquisition is the
//! earliest touch by the events' own times.

use super::InboundEvent;
use crate::contact::{Acquisition, Contact, Identity, InboundMessage, Referral, TOUCH_HISTORY_CAP};
use std::cmp::Ordering;

/// The contact after `event`, given the contact before it (if any). The result depends on
/// the set of events applied, not on the order they arrived in (Meta retries for days, so an
/// earlier message can come after a later one): the first message is the earliest, and the
/// acquisition is the earliest touch by the events' own times.
pub fn apply_event(before: Option<Contact>, event: &InboundEvent) -> Contact {
    let mut contact = before.unwrap_or_else(|| Contact {
        instance_id: event.instance_id.clone(),
        contact_id: event.contact_id.clone(),
        channel: event.channel,
        display_name: None,
        first_seen_at: event.occurred_at,
        last_seen_at: event.occurred_at,
        message_count: 0,
        first_message: None,
        acquisition: None,
        touches: Vec::new(),
        rules_checked_at: None,
        identity: Identity::default(),
        linked_ids: Vec::new(),
        events: Default::default(),
        goals: Default::default(),
        business_first: None,
        version: 0,
    });
    if let Some(name) = &event.display_name {
        // The latest event's name; at equal times the greatest, so that arrival order never
        // decides.
        let latest = event.occurred_at > contact.last_seen_at
            || (event.occurred_at == contact.last_seen_at
                && contact
                    .display_name
                    .as_ref()
                    .is_none_or(|shown| name > shown));
        if latest {
            contact.display_name = Some(name.clone());
        }
    }
    contact.first_seen_at = contact.first_seen_at.min(event.occurred_at);
    contact.last_seen_at = contact.last_seen_at.max(event.occurred_at);
    if let Some(message) = &event.message {
        contact.message_count += 1;
        let earlier = contact
            .first_message
            .as_ref()
            .is_none_or(|first| (message.timestamp, &message.id) < (first.timestamp, &first.id));
        if earlier {
            if contact.first_message.is_some() {
                // The rules decided on a message that is no longer the first: they decide again
                // on this one (the caller queues the match job).
                contact.rules_checked_at = None;
                if contact
                    .acquisition
                    .as_ref()
                    .is_some_and(Acquisition::read_from_first_message)
                {
                    contact.acquisition = None;
                }
            }
            contact.first_message = Some(InboundMessage {
                details: None,
                ..message.clone()
            });
        }
        for built_in in crate::events::built_in(message, event.product().as_ref()) {
            contact.record_event(built_in);
        }
    }
    if let Some(referral) = &event.referral {
        record_touch(&mut contact.touches, referral.clone());
    }
    settle_acquisition(&mut contact);
    contact.version += 1;
    contact
}

/// The order of touches: by time, then (for equal times) by content, so that every arrival
/// order sorts them alike. Serialising happens only on a tie of times.
fn touch_order(a: &Referral, b: &Referral) -> Ordering {
    a.captured_at().cmp(&b.captured_at()).then_with(|| {
        let text = |referral: &Referral| serde_json::to_string(referral).unwrap_or_default();
        text(a).cmp(&text(b))
    })
}

/// Adds `referral` to the touch history, kept in touch order: the most recent touches, and the
/// earliest one that stands for an acquisition whatever its age, so the acquisition can be
/// found again when the first message changes under a rule's decision.
fn record_touch(touches: &mut Vec<Referral>, referral: Referral) {
    let at = touches.partition_point(|touch| touch_order(touch, &referral) != Ordering::Greater);
    touches.insert(at, referral);
    while touches.len() > TOUCH_HISTORY_CAP {
        let kept = touches.iter().position(Referral::is_acquisition);
        touches.remove(if kept == Some(0) { 1 } else { 0 });
    }
}

/// The acquisition the contact's touches and first message stand for: a decision of the rules
/// on the first message, unless a referral came at or before that message; else the earliest
/// referral that stands for one. The rules' verdict is dropped when it no longer matters, so a
/// contact's state does not depend on whether the rules ran before a referral arrived.
fn settle_acquisition(contact: &mut Contact) {
    let earliest_touch = contact
        .touches
        .iter()
        .find(|touch| touch.is_acquisition())
        .and_then(Referral::acquisition);
    let read_from_text = contact
        .acquisition
        .as_ref()
        .is_some_and(Acquisition::read_from_first_message);
    if !read_from_text {
        contact.acquisition = earliest_touch;
    } else if let Some(touch) = earliest_touch.filter(|touch| {
        touch
            .touched_at()
            .is_some_and(|at| contact.is_at_or_before_first_message(at))
    }) {
        contact.acquisition = Some(touch);
    }
    if contact.rules_are_moot() {
        contact.rules_checked_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact::counters::bumps_for;
    use crate::contact::{Channel, InboundMessage, MetaPlatform, MetaReferral};
    use crate::ids::{ContactId, InstanceId};
    use crate::time::Timestamp;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_seconds(seconds).unwrap()
    }

    fn referral(ad_id: &str, seconds: i64) -> Referral {
        Referral::MetaAd(MetaReferral {
            ad_id: Some(ad_id.into()),
            source: Some("ad".into()),
            ..MetaReferral::minimal(MetaPlatform::Facebook, at(seconds))
        })
    }

    fn event(id: &str, seconds: i64, referral: Option<Referral>) -> InboundEvent {
        InboundEvent {
            dedupe_key: id.into(),
            instance_id: InstanceId::parse("1").unwrap(),
            contact_id: ContactId::parse("2").unwrap(),
            channel: Channel::Whatsapp,
            display_name: None,
            occurred_at: at(seconds),
            message: Some(InboundMessage {
                id: id.into(),
                kind: "text".into(),
                text: Some(id.into()),
                timestamp: at(seconds),
                details: None,
            }),
            referral,
            identity: Identity::default(),
        }
    }

    #[test]
    fn first_touch_is_kept_and_later_touches_are_recorded() {
        let first = apply_event(None, &event("a", 100, None));
        assert!(first.acquisition.is_none());
        let second = apply_event(Some(first), &event("b", 200, Some(referral("ad-1", 200))));
        let third = apply_event(Some(second), &event("c", 300, Some(referral("ad-2", 300))));
        match third.acquisition.as_ref().unwrap() {
            Acquisition::MetaAd(facts) => assert_eq!(facts.ad_id.as_deref(), Some("ad-1")),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(third.touches.len(), 2);
        assert_eq!(third.message_count, 3);
        assert_eq!(third.version, 3);
        assert_eq!(third.first_message.unwrap().id, "a");
    }

    #[test]
    fn out_of_order_messages_keep_the_earliest_as_first() {
        let later = apply_event(None, &event("late", 500, None));
        let both = apply_event(Some(later), &event("early", 100, None));
        assert_eq!(both.first_message.unwrap().id, "early");
        assert_eq!(both.first_seen_at, at(100));
        assert_eq!(both.last_seen_at, at(500));
    }

    #[test]
    fn touch_history_is_capped_to_the_most_recent_and_the_first_touch() {
        let mut contact = None;
        for n in 0..(TOUCH_HISTORY_CAP as i64 + 5) {
            contact = Some(apply_event(
                contact,
                &event(&format!("m{n}"), n, Some(referral(&format!("ad-{n}"), n))),
            ));
        }
        let contact = contact.unwrap();
        assert_eq!(contact.touches.len(), TOUCH_HISTORY_CAP);
        assert_eq!(ad_ids(&contact)[..2], ["ad-0", "ad-6"]);
        assert_eq!(ad_id(&contact), Some("ad-0".into()));
    }

    fn ad_id(contact: &Contact) -> Option<String> {
        match contact.acquisition.as_ref()? {
            Acquisition::MetaAd(facts) => facts.ad_id.clone(),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn ad_ids(contact: &Contact) -> Vec<String> {
        contact
            .touches
            .iter()
            .map(|touch| match touch {
                Referral::MetaAd(facts) => facts.ad_id.clone().unwrap(),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    fn rule_decided(contact: Contact, rule_id: &str) -> Contact {
        let attribution = crate::contact::RuleAttribution {
            platform: crate::rules::RulePlatform::Tiktok,
            source_name: None,
            rule_id: crate::rules::RuleId::parse(rule_id).unwrap(),
            rule_name: "r".into(),
            campaign: None,
            ad: None,
            matched_text: contact.first_text().to_string(),
            captured_at: at(9_999),
            backfill_job_id: None,
        };
        contact.decided_by_rules(Some(Acquisition::Rule(attribution)), at(9_999))
    }

    /// Every order of `events` (and, after each order, the same events again as duplicates
    /// would be refused upstream) ends in one contact, version aside.
    fn same_in_every_order(events: &[InboundEvent]) -> Contact {
        let mut orders = vec![vec![]];
        for index in 0..events.len() {
            orders = orders
                .into_iter()
                .flat_map(|order: Vec<usize>| {
                    (0..=order.len()).map(move |at| {
                        let mut order = order.clone();
                        order.insert(at, index);
                        order
                    })
                })
                .collect();
        }
        let mut ends = orders.into_iter().map(|order| {
            let mut contact = None;
            for index in order {
                contact = Some(apply_event(contact, &events[index]));
            }
            contact.unwrap()
        });
        let first = ends.next().unwrap();
        for end in ends {
            assert_eq!(end, first);
        }
        first
    }

    #[test]
    fn an_earlier_referral_arriving_late_replaces_a_later_one_and_counters_move() {
        let later = apply_event(None, &event("b", 200, Some(referral("ad-late", 200))));
        let both = apply_event(
            Some(later.clone()),
            &event("a", 100, Some(referral("ad-early", 100))),
        );
        assert_eq!(ad_id(&both), Some("ad-early".into()));
        assert_eq!(
            ad_ids(&both),
            ["ad-early", "ad-late"],
            "touches in time order"
        );
        assert_eq!(both.first_message.as_ref().unwrap().id, "a");
        // Same kind and platform, same day: nothing to count again.
        assert!(bumps_for(Some(&later), &both).is_empty());
    }

    #[test]
    fn the_acquisition_is_the_earliest_touch_whatever_the_arrival_order() {
        let events = [
            event("c", 300, Some(referral("ad-3", 300))),
            event("a", 100, None),
            event("b", 200, Some(referral("ad-2", 200))),
            event("d", 200, Some(referral("ad-2b", 200))),
        ];
        let contact = same_in_every_order(&events);
        // Equal times are ordered by content, the same way every time.
        assert_eq!(ad_id(&contact), Some("ad-2".into()));
        assert_eq!(contact.first_message.as_ref().unwrap().id, "a");
        assert!(
            contact.awaits_rule_match(),
            "the first message came before every referral: the rules decide on it"
        );
    }

    #[test]
    fn equal_message_times_pick_the_first_message_by_id() {
        let contact = same_in_every_order(&[event("y", 100, None), event("x", 100, None)]);
        assert_eq!(contact.first_message.unwrap().id, "x");
    }

    #[test]
    fn an_earlier_first_message_undoes_the_rules_decision_on_the_later_one() {
        let later = apply_event(None, &event("b", 200, None));
        let matched = rule_decided(later, "01JAAAAAAAAAAAAAAAAAAAAAAA");
        assert!(!matched.awaits_rule_match());
        let earlier = apply_event(Some(matched.clone()), &event("a", 100, None));
        assert_eq!(
            earlier.acquisition, None,
            "the rule read a message no longer first"
        );
        assert_eq!(earlier.rules_checked_at, None);
        assert!(earlier.awaits_rule_match());
        let names: Vec<_> = bumps_for(Some(&matched), &earlier)
            .into_iter()
            .map(|bump| (bump.name, bump.delta))
            .collect();
        assert_eq!(
            names,
            [
                ("source:organic".into(), 1),
                ("source:ads".into(), -1),
                ("kind:rule".into(), -1),
                ("platform:tiktok".into(), -1),
                ("rule:01JAAAAAAAAAAAAAAAAAAAAAAA".into(), -1)
            ]
        );
    }

    #[test]
    fn a_rule_on_the_first_message_beats_a_later_referral_but_not_an_earlier_one() {
        let first = apply_event(None, &event("a", 100, None));
        let with_later_ad = apply_event(Some(first), &event("b", 200, Some(referral("ad", 200))));
        assert_eq!(ad_id(&with_later_ad), Some("ad".into()));
        assert!(with_later_ad.awaits_rule_match());
        let matched = rule_decided(with_later_ad, "01JAAAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(matched.acquisition.as_ref().unwrap().kind(), "rule");
        // Another later referral leaves the rule's decision standing.
        let again = apply_event(
            Some(matched.clone()),
            &event("c", 300, Some(referral("ad-3", 300))),
        );
        assert_eq!(again.acquisition.as_ref().unwrap().kind(), "rule");
        // A standalone referral (no message) from before the first message is the first touch.
        let earlier = InboundEvent {
            message: None,
            ..event("z", 50, Some(referral("ad-0", 50)))
        };
        let replaced = apply_event(Some(again), &earlier);
        assert_eq!(ad_id(&replaced), Some("ad-0".into()));
        assert_eq!(
            replaced.rules_checked_at, None,
            "the rules' verdict no longer matters"
        );
        assert!(!replaced.awaits_rule_match());
    }

    #[test]
    fn a_referral_on_the_first_message_leaves_the_rules_nothing_to_do() {
        let contact = apply_event(None, &event("a", 100, Some(referral("ad", 100))));
        assert!(!contact.awaits_rule_match());
    }

    #[test]
    fn the_name_is_the_latest_events_whatever_the_arrival_order() {
        let named = |id: &str, seconds: i64, name: &str| InboundEvent {
            display_name: Some(name.into()),
            ..event(id, seconds, None)
        };
        let contact = same_in_every_order(&[
            named("a", 100, "Old"),
            named("b", 300, "New"),
            named("c", 300, "Newer"),
            named("d", 200, "Middle"),
        ]);
        assert_eq!(contact.display_name.as_deref(), Some("Newer"));
    }
}
