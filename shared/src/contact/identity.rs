//! One person, one contact. A WhatsApp event may name its sender by phone number, by
//! business-scoped user id (BSUID), or both; whatever arrives, and in whatever order, the
//! identifiers of one person resolve to one contact. The first identifier seen files the
//! contact; each other one becomes a link to it. When two contacts turn out to be one person
//! (a BSUID-only contact and a phone-only contact, then a message carrying both), the one first
//! seen absorbs the other. Pure: the ingestor reads, `plan` decides, the store commits.

use crate::contact::counters::{CounterBump, bumps_for};
use crate::contact::store::{Absorbed, IdentityCommit};
use crate::contact::{Acquisition, Contact, Referral, TOUCH_HISTORY_CAP};
use crate::ids::ContactId;
use crate::ingest::{InboundEvent, apply_event};
use crate::time::Timestamp;
use std::collections::BTreeMap;

/// How many identifiers may resolve to one contact besides its own id. A person has a phone
/// number and a BSUID, a new pair when they change number; this bounds the contact item and
/// the commit that links them (a DynamoDB transaction holds at most 100 items).
pub const MAX_LINKED_IDS: usize = 16;

/// The identifiers `event` names its sender by, its contact id first.
pub fn identifiers(event: &InboundEvent) -> Vec<ContactId> {
    let mut identifiers = vec![event.contact_id.clone()];
    for identifier in event.identity.identifiers() {
        if !identifiers.contains(identifier) {
            identifiers.push(identifier.clone());
        }
    }
    identifiers
}

/// What applying an event does, identity included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The stored contact the event lands on, as read (`None`: a new contact).
    pub before: Option<Contact>,
    /// The identity writes that go with the contact write.
    pub commit: IdentityCommit,
}

impl Plan {
    /// Whether the commit changes which identifiers resolve to which contact.
    pub fn relinks(&self) -> bool {
        !self.commit.new_links.is_empty() || !self.commit.absorbed.is_empty()
    }
}

/// The write `event` calls for, given the contact each of its `identifiers` resolved to when
/// read (`found[i]` for `identifiers(event)[i]`).
pub fn plan(event: &InboundEvent, found: &[Option<Contact>]) -> Plan {
    let mut contacts: Vec<&Contact> = Vec::new();
    for contact in found.iter().flatten() {
        if !contacts.iter().any(|c| c.contact_id == contact.contact_id) {
            contacts.push(contact);
        }
    }
    contacts
        .sort_by(|a, b| (a.first_seen_at, &a.contact_id).cmp(&(b.first_seen_at, &b.contact_id)));
    let mut unknown: Vec<ContactId> = identifiers(event)
        .into_iter()
        .zip(found)
        .filter(|(_, found)| found.is_none())
        .map(|(identifier, _)| identifier)
        .collect();
    let identifiers_after = contacts
        .iter()
        .map(|contact| contact.linked_ids.len() + 1)
        .sum::<usize>()
        + unknown.len();
    // Past the bound nothing is linked or merged: the event lands on the contact first seen,
    // as it would without identity.
    if identifiers_after.saturating_sub(1) > MAX_LINKED_IDS {
        contacts.truncate(1);
        unknown.clear();
    }
    let before = contacts.first().map(|contact| (*contact).clone());
    let absorbed: Vec<&Contact> = contacts.iter().skip(1).copied().collect();
    let base = before.clone().map(|survivor| {
        absorbed
            .iter()
            .fold(survivor, |into, other| merged(into, other))
    });
    let mut after = apply_event(base.clone(), event);
    after.identity = after.identity.updated_by(&event.identity);
    let new_links: Vec<ContactId> = unknown
        .into_iter()
        .filter(|identifier| *identifier != after.contact_id)
        .collect();
    for identifier in &new_links {
        if !after.linked_ids.contains(identifier) {
            after.linked_ids.push(identifier.clone());
        }
    }
    let counters = if absorbed.is_empty() {
        bumps_for(before.as_ref(), &after)
    } else {
        let mut gone: Vec<&Contact> = absorbed.clone();
        gone.extend(before.as_ref());
        let mut counters = moved_counters(&after, &gone);
        // Summed per counter: a transaction may name a counter once.
        let mut taken_back: BTreeMap<(String, String), i64> = BTreeMap::new();
        for other in &absorbed {
            for bump in crate::goals::absorb(&mut after, other) {
                *taken_back.entry((bump.day, bump.name)).or_default() += bump.delta;
            }
        }
        counters.extend(
            taken_back
                .into_iter()
                .map(|((day, name), delta)| CounterBump {
                    instance_id: after.instance_id.clone(),
                    day,
                    name,
                    delta,
                }),
        );
        counters
    };
    Plan {
        commit: IdentityCommit {
            expected_version: before.as_ref().map(|contact| contact.version),
            new_links,
            absorbed: absorbed
                .iter()
                .map(|contact| Absorbed {
                    contact_id: contact.contact_id.clone(),
                    version: contact.version,
                    linked_ids: contact.linked_ids.clone(),
                })
                .collect(),
            counters,
            contact: after,
        },
        before,
    }
}

/// `into` with `other` folded in, as if one contact had seen both histories: earliest first
/// seen and first message, summed messages, the earliest acquisition as the first touch, both
/// touch histories, and every identifier of both.
pub fn merged(into: Contact, other: &Contact) -> Contact {
    let mut merged = into.clone();
    merged.first_seen_at = into.first_seen_at.min(other.first_seen_at);
    merged.last_seen_at = into.last_seen_at.max(other.last_seen_at);
    merged.message_count = into.message_count.saturating_add(other.message_count);
    let (older, newer) = if other.last_seen_at > into.last_seen_at {
        (&into, other)
    } else {
        (other, &into)
    };
    merged.display_name = newer
        .display_name
        .clone()
        .or_else(|| older.display_name.clone());
    merged.identity = older.identity.updated_by(&newer.identity);
    let first_from_other = match (&into.first_message, &other.first_message) {
        (Some(ours), Some(theirs)) => theirs.timestamp < ours.timestamp,
        (None, Some(_)) => true,
        _ => false,
    };
    if first_from_other {
        merged.first_message = other.first_message.clone();
        // The rules read the first message: their verdict goes with it.
        merged.rules_checked_at = other.rules_checked_at;
    }
    let acquisition_from_other = match (acquired_at(&into), acquired_at(other)) {
        (Some(ours), Some(theirs)) => theirs < ours,
        (None, Some(_)) => true,
        _ => false,
    };
    if acquisition_from_other {
        merged.acquisition = other.acquisition.clone();
    }
    merged.business_first = crate::sources::earliest(into.business_first, other.business_first);
    let mut touches: Vec<Referral> = into.touches.clone();
    touches.extend(other.touches.iter().cloned());
    touches.sort_by_key(Referral::captured_at);
    touches.dedup();
    let excess = touches.len().saturating_sub(TOUCH_HISTORY_CAP);
    touches.drain(..excess);
    merged.touches = touches;
    merged.events = into.events.merged(&other.events);
    for identifier in other.identifiers() {
        if !merged.linked_ids.contains(identifier) && *identifier != merged.contact_id {
            merged.linked_ids.push(identifier.clone());
        }
    }
    merged
}

/// When the contact's acquisition happened: the referral's or visit's own time; for a rule,
/// the first message it matched.
fn acquired_at(contact: &Contact) -> Option<Timestamp> {
    Some(match contact.acquisition.as_ref()? {
        Acquisition::MetaAd(referral)
        | Acquisition::MetaPost(referral)
        | Acquisition::Shortlink(referral)
        | Acquisition::Product(referral) => referral.captured_at,
        Acquisition::Web(visit) => visit.captured_at,
        Acquisition::Rule(_) => contact
            .first_message
            .as_ref()
            .map_or(contact.first_seen_at, |message| message.timestamp),
    })
}

/// The counter changes that replace the counts of `gone` (the contacts as stored) by those of
/// `after`: what each contact counts is what `bumps_for` adds when it is first written.
fn moved_counters(after: &Contact, gone: &[&Contact]) -> Vec<CounterBump> {
    let mut net: BTreeMap<(String, String), (CounterBump, i64)> = BTreeMap::new();
    let mut add = |contact: &Contact, sign: i64| {
        for bump in bumps_for(None, contact) {
            let key = (bump.day.clone(), bump.name.clone());
            net.entry(key).or_insert_with(|| (bump.clone(), 0)).1 += sign * bump.delta;
        }
    };
    add(after, 1);
    for contact in gone {
        add(contact, -1);
    }
    net.into_values()
        .filter(|(_, delta)| *delta != 0)
        .map(|(bump, delta)| CounterBump { delta, ..bump })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact::{Channel, Identity, InboundMessage, MetaPlatform, MetaReferral};
    use crate::ids::InstanceId;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_seconds(1_764_000_000 + seconds).unwrap()
    }

    fn id(text: &str) -> ContactId {
        ContactId::parse(text).unwrap()
    }

    fn event(
        message_id: &str,
        phone: Option<&str>,
        bsuid: Option<&str>,
        seconds: i64,
        ad: Option<&str>,
    ) -> InboundEvent {
        InboundEvent {
            dedupe_key: message_id.into(),
            instance_id: InstanceId::parse("1").unwrap(),
            contact_id: id(phone.or(bsuid).unwrap()),
            channel: Channel::Whatsapp,
            display_name: None,
            occurred_at: at(seconds),
            message: Some(InboundMessage {
                id: message_id.into(),
                kind: "text".into(),
                text: Some("hi".into()),
                timestamp: at(seconds),
                details: None,
            }),
            referral: ad.map(|ad| {
                Referral::MetaAd(MetaReferral {
                    ad_id: Some(ad.into()),
                    ..MetaReferral::minimal(MetaPlatform::Facebook, at(seconds))
                })
            }),
            identity: Identity {
                wa_id: phone.map(id),
                user_id: bsuid.map(id),
                ..Identity::default()
            },
        }
    }

    #[test]
    fn a_new_sender_named_twice_is_one_contact_with_one_link() {
        let plan = plan(
            &event("m1", Some("155"), Some("US.1"), 0, None),
            &[None, None],
        );
        assert_eq!(plan.before, None);
        assert_eq!(plan.commit.contact.contact_id, id("155"));
        assert_eq!(plan.commit.new_links, [id("US.1")]);
        assert_eq!(plan.commit.contact.linked_ids, [id("US.1")]);
        assert!(plan.commit.absorbed.is_empty());
        assert_eq!(
            plan.commit.counters.len(),
            2,
            "new_contacts and its source only"
        );
    }

    #[test]
    fn two_contacts_of_one_person_fold_into_the_first_seen() {
        let bsuid_only = apply_event(None, &event("m2", None, Some("US.1"), 100, Some("ad-late")));
        let phone_only = apply_event(None, &event("m1", Some("155"), None, 0, Some("ad-early")));
        let both = event("m3", Some("155"), Some("US.1"), 200, None);
        let plan = plan(&both, &[Some(phone_only.clone()), Some(bsuid_only.clone())]);
        let contact = &plan.commit.contact;
        assert_eq!(plan.before.as_ref(), Some(&phone_only));
        assert_eq!(contact.contact_id, id("155"));
        assert_eq!(contact.linked_ids, [id("US.1")]);
        assert_eq!(contact.message_count, 3);
        assert_eq!(contact.first_message.as_ref().unwrap().id, "m1");
        match contact.acquisition.as_ref().unwrap() {
            Acquisition::MetaAd(referral) => {
                assert_eq!(referral.ad_id.as_deref(), Some("ad-early"))
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(contact.touches.len(), 2);
        assert_eq!(plan.commit.expected_version, Some(phone_only.version));
        assert_eq!(plan.commit.absorbed.len(), 1);
        assert_eq!(plan.commit.absorbed[0].contact_id, id("US.1"));
        assert!(plan.commit.new_links.is_empty());
        // One contact counted instead of two: new_contacts, source, kind and platform leave once.
        let total: i64 = plan.commit.counters.iter().map(|bump| bump.delta).sum();
        assert_eq!(total, -4, "{:?}", plan.commit.counters);
    }

    #[test]
    fn past_the_bound_nothing_is_linked_or_merged() {
        let mut full = apply_event(None, &event("m1", Some("155"), None, 0, None));
        full.linked_ids = (0..MAX_LINKED_IDS)
            .map(|n| id(&format!("US.{n}")))
            .collect();
        let other = apply_event(None, &event("m2", None, Some("US.new"), 10, None));
        let plan = plan(
            &event("m3", Some("155"), Some("US.new"), 20, None),
            &[Some(full.clone()), Some(other)],
        );
        assert!(!plan.relinks());
        assert_eq!(plan.commit.contact.linked_ids, full.linked_ids);
        assert_eq!(plan.commit.contact.message_count, 2);
    }
}
