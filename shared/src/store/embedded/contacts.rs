//! The contact store in the embedded store: contacts, identifier links, dedupe claims, daily
//! counters and the newest-first listing, each commit one write transaction.

use crate::contact::Contact;
use crate::contact::counters::CounterBump;
use crate::contact::store::{
    ContactPage, ContactStore, ContactUpdate, ContactWindow, CounterDays, EventRead,
    IdentityCommit, listing_position,
};
use crate::ids::{ContactId, InstanceId};
use crate::sources::BusinessFirst;
use crate::store::embedded::{
    BUSINESS_FIRST, CONTACTS, CONTACTS_BY_FIRST_SEEN, COUNTERS, DEDUPE, EmbeddedStore, LINKS,
    decode, encode, unavailable,
};
use crate::store::{CommitOutcome, DedupeClaim, StoreError};
use crate::time::Timestamp;
use async_trait::async_trait;
use redb::{AccessGuard, Database, ReadTransaction, ReadableTable, WriteTransaction};
use serde::Deserialize;

/// The fields of a stored contact that a write checks, read without building the rest.
#[derive(Deserialize)]
struct StoredContactHead {
    first_seen_at: Timestamp,
    version: u64,
}

/// Writes `contact` (`encoded`, encoded by the caller, off the writer's thread) if the stored
/// one is at `expected_version`, and bumps `counters`.
fn put_contact(
    txn: &WriteTransaction,
    contact: &Contact,
    encoded: &[u8],
    expected_version: Option<u64>,
    counters: &[CounterBump],
) -> Result<CommitOutcome, StoreError> {
    let mut contacts = txn.open_table(CONTACTS).map_err(unavailable)?;
    let key = (contact.instance_id.as_str(), contact.contact_id.as_str());
    // An earlier message arriving late moves `first_seen_at`, and with it the listing position
    // (read then from the whole stored contact); otherwise the index entry stays as it is (most
    // writes leave it alone).
    let (stored_version, moved_from) = match contacts.get(key).map_err(unavailable)? {
        None => (None, None),
        Some(bytes) => {
            let head: StoredContactHead = decode(bytes.value())?;
            let moved_from = if head.first_seen_at == contact.first_seen_at {
                None
            } else {
                Some(listing_position(&decode::<Contact>(bytes.value())?))
            };
            (Some(head.version), moved_from)
        }
    };
    if stored_version != expected_version {
        return Ok(CommitOutcome::VersionConflict);
    }
    // A new contact may not take an id that already resolves to another contact, nor one
    // whose recorded start it would miss.
    if stored_version.is_none()
        && (is_linked(txn, key)? || start_missed(txn, contact, &contact.contact_id)?)
    {
        return Ok(CommitOutcome::VersionConflict);
    }
    contacts.insert(key, encoded).map_err(unavailable)?;
    if stored_version.is_none() {
        super::instances::register(txn, key.0)?;
    }
    let position = listing_position(contact);
    let index_moves = match (stored_version, &moved_from) {
        (None, _) => true,
        (Some(_), Some(previous)) => *previous != position,
        (Some(_), None) => false,
    };
    if index_moves {
        let mut listing = txn
            .open_table(CONTACTS_BY_FIRST_SEEN)
            .map_err(unavailable)?;
        if let Some(previous) = moved_from {
            listing
                .remove((key.0, previous.as_str()))
                .map_err(unavailable)?;
        }
        listing
            .insert((key.0, position.as_str()), key.1)
            .map_err(unavailable)?;
    }
    let mut table = txn.open_table(COUNTERS).map_err(unavailable)?;
    for bump in counters {
        let key = (
            bump.instance_id.as_str(),
            bump.day.as_str(),
            bump.name.as_str(),
        );
        let current = table
            .get(key)
            .map_err(unavailable)?
            .map_or(0, |count| count.value());
        table
            .insert(key, current.saturating_add_signed(bump.delta))
            .map_err(unavailable)?;
    }
    Ok(CommitOutcome::Applied)
}

/// Whether a start recorded under `identifier` applies to `contact` and is not on it: one
/// recorded after the event's read (see `ContactStore::record_business_first`).
fn start_missed(
    txn: &WriteTransaction,
    contact: &Contact,
    identifier: &ContactId,
) -> Result<bool, StoreError> {
    let key = crate::contact::store::business_first_key(&contact.instance_id, identifier);
    let table = txn.open_table(BUSINESS_FIRST).map_err(unavailable)?;
    let stored = table.get(key.as_str()).map_err(unavailable)?;
    Ok(match stored {
        Some(stored) => crate::sources::applies(contact, &decode(stored.value())?),
        None => false,
    })
}

fn is_linked(txn: &WriteTransaction, key: (&str, &str)) -> Result<bool, StoreError> {
    let links = txn.open_table(LINKS).map_err(unavailable)?;
    Ok(links.get(key).map_err(unavailable)?.is_some())
}

fn claim_held(txn: &WriteTransaction, claim: &DedupeClaim) -> Result<bool, StoreError> {
    let dedupe = txn.open_table(DEDUPE).map_err(unavailable)?;
    Ok(held(
        dedupe.get(claim.key.as_str()).map_err(unavailable)?,
        claim,
    ))
}

/// Whether a stored claim's expiry (`expiry`, if any) still holds `claim`.
fn held(expiry: Option<AccessGuard<'_, i64>>, claim: &DedupeClaim) -> bool {
    expiry.is_some_and(|expiry| expiry.value() >= claim.now.unix_seconds())
}

/// The contact `contact_id` names in `txn`: its own, or the one its link points at.
fn resolve(
    txn: &ReadTransaction,
    instance_id: &InstanceId,
    contact_id: &ContactId,
) -> Result<Option<Contact>, StoreError> {
    let contacts = txn.open_table(CONTACTS).map_err(unavailable)?;
    let instance = instance_id.as_str();
    let mut found = contacts
        .get((instance, contact_id.as_str()))
        .map_err(unavailable)?;
    if found.is_none() {
        let links = txn.open_table(LINKS).map_err(unavailable)?;
        if let Some(target) = links
            .get((instance, contact_id.as_str()))
            .map_err(unavailable)?
        {
            found = contacts
                .get((instance, target.value()))
                .map_err(unavailable)?;
        }
    }
    found.map(|bytes| decode(bytes.value())).transpose()
}

fn hold_claim(txn: &WriteTransaction, claim: &DedupeClaim) -> Result<(), StoreError> {
    let mut dedupe = txn.open_table(DEDUPE).map_err(unavailable)?;
    dedupe
        .insert(claim.key.as_str(), claim.expires_at.unix_seconds())
        .map_err(unavailable)?;
    Ok(())
}

/// Whether `commit`'s links and absorbed contacts are still as they were read; checked before
/// anything is written, so a conflict writes nothing.
fn identity_holds(txn: &WriteTransaction, commit: &IdentityCommit) -> Result<bool, StoreError> {
    let instance = commit.contact.instance_id.as_str();
    let contacts = txn.open_table(CONTACTS).map_err(unavailable)?;
    let links = txn.open_table(LINKS).map_err(unavailable)?;
    for identifier in &commit.new_links {
        let key = (instance, identifier.as_str());
        if contacts.get(key).map_err(unavailable)?.is_some()
            || links.get(key).map_err(unavailable)?.is_some()
            || start_missed(txn, &commit.contact, identifier)?
        {
            return Ok(false);
        }
    }
    for absorbed in &commit.absorbed {
        let stored = contacts
            .get((instance, absorbed.contact_id.as_str()))
            .map_err(unavailable)?;
        let at_version = match stored {
            Some(bytes) => decode::<StoredContactHead>(bytes.value())?.version == absorbed.version,
            None => false,
        };
        if !at_version {
            return Ok(false);
        }
        for identifier in &absorbed.linked_ids {
            let target = links
                .get((instance, identifier.as_str()))
                .map_err(unavailable)?;
            if target.is_none_or(|target| target.value() != absorbed.contact_id.as_str()) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Removes each absorbed contact (and its listing entry) and points it, its links and the new
/// links at `commit.contact`.
fn write_links(txn: &WriteTransaction, commit: &IdentityCommit) -> Result<(), StoreError> {
    let instance = commit.contact.instance_id.as_str();
    let survivor = commit.contact.contact_id.as_str();
    let mut contacts = txn.open_table(CONTACTS).map_err(unavailable)?;
    let mut listing = txn
        .open_table(CONTACTS_BY_FIRST_SEEN)
        .map_err(unavailable)?;
    let mut links = txn.open_table(LINKS).map_err(unavailable)?;
    let mut linked: Vec<&ContactId> = commit.new_links.iter().collect();
    for absorbed in &commit.absorbed {
        let key = (instance, absorbed.contact_id.as_str());
        let removed = contacts
            .remove(key)
            .map_err(unavailable)?
            .ok_or_else(|| StoreError::Corrupt("an absorbed contact vanished".to_owned()))?;
        let position = listing_position(&decode::<Contact>(removed.value())?);
        drop(removed);
        listing
            .remove((instance, position.as_str()))
            .map_err(unavailable)?;
        linked.push(&absorbed.contact_id);
        linked.extend(&absorbed.linked_ids);
    }
    for identifier in linked {
        links
            .insert((instance, identifier.as_str()), survivor)
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Contacts of `instance` first seen in `[low, high)` (listing positions), newest first.
fn list_page(
    db: &Database,
    instance: &str,
    low: &str,
    high: &str,
    limit: usize,
) -> Result<ContactPage, StoreError> {
    let txn = db.begin_read().map_err(unavailable)?;
    let listing = txn
        .open_table(CONTACTS_BY_FIRST_SEEN)
        .map_err(unavailable)?;
    let contacts = txn.open_table(CONTACTS).map_err(unavailable)?;
    let mut page = ContactPage::default();
    let range = listing
        .range((instance, low)..(instance, high))
        .map_err(unavailable)?;
    for entry in range.rev() {
        let (key, contact_id) = entry.map_err(unavailable)?;
        if page.contacts.len() == limit {
            return Ok(page);
        }
        let found = contacts
            .get((instance, contact_id.value()))
            .map_err(unavailable)?
            .ok_or_else(|| StoreError::Corrupt("listing names a missing contact".to_owned()))?;
        page.contacts.push(decode(found.value())?);
        page.next = Some(key.value().1.to_owned());
    }
    page.next = None;
    Ok(page)
}

#[async_trait]
impl ContactStore for EmbeddedStore {
    async fn load_contact(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
    ) -> Result<Option<Contact>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        resolve(&txn, instance_id, contact_id)
    }

    /// One read transaction: the contacts, the claim and the recorded starts as of one
    /// instant.
    async fn load_for_event(
        &self,
        instance_id: &InstanceId,
        identifiers: &[ContactId],
        claim: &DedupeClaim,
    ) -> Result<EventRead, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let contacts: Vec<Option<Contact>> = identifiers
            .iter()
            .map(|identifier| resolve(&txn, instance_id, identifier))
            .collect::<Result<_, _>>()?;
        let dedupe = txn.open_table(DEDUPE).map_err(unavailable)?;
        let claimed = held(dedupe.get(claim.key.as_str()).map_err(unavailable)?, claim);
        let starts = txn.open_table(BUSINESS_FIRST).map_err(unavailable)?;
        let mut start = None;
        for (identifier, contact) in identifiers.iter().zip(&contacts) {
            if contact.is_some() {
                continue;
            }
            let key = crate::contact::store::business_first_key(instance_id, identifier);
            if let Some(stored) = starts.get(key.as_str()).map_err(unavailable)? {
                start = crate::sources::earliest(start, Some(decode(stored.value())?));
            }
        }
        Ok(EventRead {
            contacts,
            claimed,
            start,
        })
    }

    async fn commit_identity(
        &self,
        claim: &DedupeClaim,
        commit: &IdentityCommit,
    ) -> Result<CommitOutcome, StoreError> {
        let encoded = encode(&commit.contact)?;
        let (claim, commit) = (claim.clone(), commit.clone());
        self.write(move |txn| {
            if claim_held(txn, &claim)? {
                return Ok((CommitOutcome::Duplicate, false));
            }
            if !identity_holds(txn, &commit)? {
                return Ok((CommitOutcome::VersionConflict, false));
            }
            let outcome = put_contact(
                txn,
                &commit.contact,
                &encoded,
                commit.expected_version,
                &commit.counters,
            )?;
            if outcome != CommitOutcome::Applied {
                return Ok((outcome, false));
            }
            write_links(txn, &commit)?;
            hold_claim(txn, &claim)?;
            Ok((outcome, true))
        })
        .await
    }

    async fn commit_event(
        &self,
        claim: &DedupeClaim,
        contact: &Contact,
        expected_version: Option<u64>,
        counters: &[CounterBump],
    ) -> Result<CommitOutcome, StoreError> {
        let encoded = encode(contact)?;
        let (claim, contact, counters) = (claim.clone(), contact.clone(), counters.to_vec());
        self.write(move |txn| {
            if claim_held(txn, &claim)? {
                return Ok((CommitOutcome::Duplicate, false));
            }
            let outcome = put_contact(txn, &contact, &encoded, expected_version, &counters)?;
            if outcome == CommitOutcome::Applied {
                hold_claim(txn, &claim)?;
            }
            Ok((outcome, outcome == CommitOutcome::Applied))
        })
        .await
    }

    async fn update_contact(
        &self,
        contact: &Contact,
        expected_version: u64,
        counters: &[CounterBump],
    ) -> Result<CommitOutcome, StoreError> {
        let encoded = encode(contact)?;
        let (contact, counters) = (contact.clone(), counters.to_vec());
        self.write(move |txn| {
            let outcome = put_contact(txn, &contact, &encoded, Some(expected_version), &counters)?;
            Ok((outcome, outcome == CommitOutcome::Applied))
        })
        .await
    }

    /// One transaction, one fsync, for the whole batch.
    async fn update_contacts(
        &self,
        updates: &[ContactUpdate],
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        let updates = updates
            .iter()
            .map(|update| Ok((update.clone(), encode(&update.contact)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.write(move |txn| {
            let mut outcomes = Vec::with_capacity(updates.len());
            for (update, encoded) in &updates {
                outcomes.push(put_contact(
                    txn,
                    &update.contact,
                    encoded,
                    Some(update.expected_version),
                    &update.counters,
                )?);
            }
            let any = outcomes.contains(&CommitOutcome::Applied);
            Ok((outcomes, any))
        })
        .await
    }

    /// Off the async worker threads: a page decodes up to `limit` contacts, and a backfill
    /// preview reads page after page.
    async fn list_contacts(
        &self,
        instance_id: &InstanceId,
        window: &ContactWindow,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ContactPage, StoreError> {
        let db = self.db.clone();
        let instance = instance_id.as_str().to_owned();
        let (low, until) = (window.since.to_string(), window.until.to_string());
        let high = match after {
            Some(after) if after < until.as_str() => after.to_owned(),
            _ => until,
        };
        tokio::task::spawn_blocking(move || list_page(&db, &instance, &low, &high, limit))
            .await
            .map_err(unavailable)?
    }

    async fn record_business_first(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
        start: &BusinessFirst,
    ) -> Result<(), StoreError> {
        let key = crate::contact::store::business_first_key(instance_id, contact_id);
        let (start, encoded) = (*start, encode(start)?);
        self.write(move |txn| {
            let mut table = txn.open_table(BUSINESS_FIRST).map_err(unavailable)?;
            let known = match table.get(key.as_str()).map_err(unavailable)? {
                Some(stored) => Some(decode::<BusinessFirst>(stored.value())?),
                None => None,
            };
            let earlier = known.is_none_or(|known| start.at < known.at);
            if earlier {
                table
                    .insert(key.as_str(), encoded.as_slice())
                    .map_err(unavailable)?;
            }
            Ok(((), earlier))
        })
        .await
    }

    async fn load_counter_days(
        &self,
        instance_id: &InstanceId,
        first_day: &str,
        last_day: &str,
    ) -> Result<CounterDays, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let table = txn.open_table(COUNTERS).map_err(unavailable)?;
        let instance = instance_id.as_str();
        let mut days = CounterDays::new();
        for entry in table
            .range((instance, first_day, "")..)
            .map_err(unavailable)?
        {
            let (key, count) = entry.map_err(unavailable)?;
            let (found_instance, day, name) = key.value();
            if found_instance != instance || day > last_day {
                break;
            }
            days.entry(day.to_owned())
                .or_default()
                .insert(name.to_owned(), count.value());
        }
        Ok(days)
    }
}
