//! One person, one contact. A WhatsApp event may name its sender by phone number, by
//! business-scoped user id (BSUID), or both; whatever arrives, and in whatever order, the
//! identifiers of one person resolve to one contact. The first identifier seen files the
//! contact; each other one becomes a link to it. When two contacts turn out to be one person
//! (a BSUID-only contact and a phone-only contact, then a message carrying both), the one first
//! seen absorbs the other. Pure: the ingestor reads, `plan` decides, the store commits.

use crate::counters::{CounterBump, bumps_for};
use crate::ids::ContactId;
use crate::ingest::{InboundEvent, apply_event};
use crate::model::{Acquisition, Contact, Referral, TOUCH_HISTORY_CAP};
use crate::store::{Absorbed, IdentityCommit};
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
        moved_counters(&after, &gone)
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
    let mut touches: Vec<Referral> = into.touches.clone();
    touches.extend(other.touches.iter().cloned());
    touches.sort_by_key(Referral::captured_at);
    touches.dedup();
    let excess = touches.len().saturating_sub(TOUCH_HISTORY_CAP);
    touches.drain(..excess);
    merged.touches = touches;
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
        | Acquisition::Shortlink(referral) => referral.captured_at,
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
