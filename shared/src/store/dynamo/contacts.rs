//! The contact store on DynamoDB: contacts and identifier links in one table, dedupe claims,
//! daily counters, and the `by_first_seen` listing index; each event's writes go in one
//! transaction headed by its dedupe claim.

use crate::contact::Contact;
use crate::contact::counters::CounterBump;
use crate::contact::store::{
    ContactPage, ContactStore, ContactUpdate, ContactWindow, CounterDays, EventRead,
    IdentityCommit, listing_position,
};
use crate::ids::{ContactId, InstanceId};
use crate::store::dynamo::toolkit::{
    BatchRead, Item, MAX_ATTEMPTS, MAX_BATCH_KEYS, backoff, batch_get, cancelled, conditional_put,
    from_item, get_item, is_conditional_failure, is_conflict, key, number, query_items, string,
    to_item, transact, unavailable,
};
use crate::store::dynamo::{
    DynamoStore, LINKS_TO, LISTING_INDEX, LISTING_KEY, RECORDED_START, START_EXPIRES,
};
use crate::store::{CommitOutcome, DedupeClaim, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::builders::PutBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::ControlFlow;

/// Most items one transaction takes.
const MAX_TRANSACTION_ITEMS: usize = 100;
/// What one transaction's contacts may weigh (as JSON, near their item size): under the 4 MB
/// DynamoDB takes.
const MAX_TRANSACTION_BYTES: usize = 3 * 1024 * 1024;

/// The attribute a contact item carries instead of `touches` when its one touch is its
/// acquisition (an ad contact's usual state), which it would otherwise hold twice: a quarter of
/// a small contact item, the difference between one write unit and two.
const TOUCH_IS_ACQUISITION: &str = "touch_is_acquisition";

/// `contact` as its contacts item.
fn contact_item(contact: &Contact) -> Result<Item, StoreError> {
    let mut item = to_item(contact)?;
    let single = match (item.get("touches"), item.get("acquisition")) {
        (Some(AttributeValue::L(touches)), Some(acquisition)) => {
            touches.len() == 1 && touches[0] == *acquisition
        }
        _ => false,
    };
    if single {
        item.remove("touches");
        item.insert(TOUCH_IS_ACQUISITION.to_owned(), AttributeValue::Bool(true));
    }
    Ok(item)
}

/// The contact a contacts item holds (see [`contact_item`]).
pub(super) fn contact_from_item(mut item: Item) -> Result<Contact, StoreError> {
    if item.remove(TOUCH_IS_ACQUISITION).is_some() {
        let acquisition = item
            .get("acquisition")
            .cloned()
            .ok_or_else(|| StoreError::Corrupt("a touch without its acquisition".to_owned()))?;
        item.insert("touches".to_owned(), AttributeValue::L(vec![acquisition]));
    }
    from_item(item)
}

/// The condition on a key a new contact or link takes: neither a contact nor a link is
/// there, and a start recorded there (`record_business_first`) is one that does not apply to
/// `contact` (`sources::applies`: it is on it already, later, or too old). A start recorded
/// since the event's read fails it, and the event is planned again with the start.
fn unclaimed_key(put: PutBuilder, contact: &Contact) -> PutBuilder {
    let bound = contact
        .business_first
        .map_or(contact.first_seen_at, |known| {
            known.at.min(contact.first_seen_at)
        });
    let oldest = contact
        .first_seen_at
        .plus_seconds(-crate::contact::store::BUSINESS_FIRST_TTL_SECONDS);
    // Timestamps have one fixed textual form, so their text orders as they do.
    put.condition_expression(
        "attribute_not_exists(contact_id) OR #start.#at >= :bound OR #start.#at < :oldest",
    )
    .expression_attribute_names("#start", RECORDED_START)
    .expression_attribute_names("#at", "at")
    .expression_attribute_values(":bound", string(&bound.to_string()))
    .expression_attribute_values(":oldest", string(&oldest.to_string()))
}

impl DynamoStore {
    fn dedupe_put(&self, claim: &DedupeClaim) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.tables.dedupe)
            .item("dedupe_key", string(&claim.key))
            .item("expires_at", number(claim.expires_at.unix_seconds()))
            // TTL deletion lags by up to two days; an expired claim counts as gone.
            .condition_expression("attribute_not_exists(dedupe_key) OR expires_at < :now")
            .expression_attribute_values(":now", number(claim.now.unix_seconds()))
            .build()
            .map_err(unavailable)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn contact_put(
        &self,
        contact: &Contact,
        expected_version: Option<u64>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut item = contact_item(contact)?;
        item.insert(LISTING_KEY.to_owned(), string(&listing_position(contact)));
        let put = Put::builder()
            .table_name(&self.tables.contacts)
            .set_item(Some(item));
        let put = match expected_version {
            None => unclaimed_key(put, contact),
            Some(version) => put
                .condition_expression("#version = :expected")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expected", number(version)),
        };
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(unavailable)?)
            .build())
    }

    /// A link item from `identifier` to `target`, written under the condition `condition` adds.
    fn link_put(
        &self,
        instance_id: &InstanceId,
        identifier: &ContactId,
        target: &ContactId,
        condition: impl FnOnce(PutBuilder) -> PutBuilder,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.tables.contacts)
            .item("instance_id", string(instance_id.as_str()))
            .item("contact_id", string(identifier.as_str()))
            .item(LINKS_TO, string(target.as_str()));
        Ok(TransactWriteItem::builder()
            .put(condition(put).build().map_err(unavailable)?)
            .build())
    }

    /// The link puts of `commit`: a new identifier must be free (neither a contact nor a link,
    /// see [`unclaimed_key`]);
    /// an absorbed contact must still be at its version (a link has none), and its links must
    /// still point at it.
    fn identity_items(
        &self,
        commit: &IdentityCommit,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let instance = &commit.contact.instance_id;
        let survivor = &commit.contact.contact_id;
        let mut items = Vec::new();
        for identifier in &commit.new_links {
            items.push(self.link_put(instance, identifier, survivor, |put| {
                unclaimed_key(put, &commit.contact)
            })?);
        }
        for absorbed in &commit.absorbed {
            items.push(
                self.link_put(instance, &absorbed.contact_id, survivor, |put| {
                    put.condition_expression("#version = :version")
                        .expression_attribute_names("#version", "version")
                        .expression_attribute_values(":version", number(absorbed.version))
                })?,
            );
            for identifier in &absorbed.linked_ids {
                items.push(self.link_put(instance, identifier, survivor, |put| {
                    put.condition_expression(format!("{LINKS_TO} = :from"))
                        .expression_attribute_values(":from", string(absorbed.contact_id.as_str()))
                })?);
            }
        }
        Ok(items)
    }

    /// One `ADD` per instance and day (a transaction may touch an item only once).
    fn counter_updates(
        &self,
        counters: &[CounterBump],
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut by_day: BTreeMap<(&str, &str), Vec<&CounterBump>> = BTreeMap::new();
        for bump in counters {
            by_day
                .entry((bump.instance_id.as_str(), bump.day.as_str()))
                .or_default()
                .push(bump);
        }
        by_day
            .into_iter()
            .map(|((instance, day), bumps)| {
                let mut update = Update::builder()
                    .table_name(&self.tables.counters)
                    .key("instance_id", string(instance))
                    .key("day", string(day));
                let mut adds = Vec::new();
                for (index, bump) in bumps.iter().enumerate() {
                    update = update
                        .expression_attribute_names(format!("#c{index}"), bump.name.as_str())
                        .expression_attribute_values(format!(":d{index}"), number(bump.delta));
                    adds.push(format!("#c{index} :d{index}"));
                }
                let update = update
                    .update_expression(format!("ADD {}", adds.join(", ")))
                    .build()
                    .map_err(unavailable)?;
                Ok(TransactWriteItem::builder().update(update).build())
            })
            .collect()
    }

    /// Writes the contacts `members` of `updates` names in one transaction with their counters
    /// summed, setting each one's outcome; run again without those whose version moved.
    async fn update_batch(
        &self,
        updates: &[ContactUpdate],
        mut members: Vec<usize>,
        outcomes: &mut [CommitOutcome],
    ) -> Result<(), StoreError> {
        let mut attempt = 1;
        while !members.is_empty() {
            let mut items = Vec::with_capacity(members.len() + 1);
            let mut sums: BTreeMap<(&InstanceId, &str, &str), i64> = BTreeMap::new();
            for &index in &members {
                let update = &updates[index];
                items.push(self.contact_put(&update.contact, Some(update.expected_version))?);
                for bump in &update.counters {
                    *sums
                        .entry((&bump.instance_id, &bump.day, &bump.name))
                        .or_default() += bump.delta;
                }
            }
            let counters: Vec<CounterBump> = sums
                .into_iter()
                .filter(|(_, delta)| *delta != 0)
                .map(|((instance_id, day, name), delta)| CounterBump {
                    instance_id: instance_id.clone(),
                    day: day.to_owned(),
                    name: name.to_owned(),
                    delta,
                })
                .collect();
            items.extend(self.counter_updates(&counters)?);
            let codes = match transact(&self.client, items).await? {
                Ok(()) => {
                    for &index in &members {
                        outcomes[index] = CommitOutcome::Applied;
                    }
                    return Ok(());
                }
                Err(codes) => codes,
            };
            // The contact items come first, in `members`' order.
            let moved: Vec<usize> = members
                .iter()
                .zip(&codes)
                .filter(|(_, code)| is_conditional_failure(code))
                .map(|(index, _)| *index)
                .collect();
            if !moved.is_empty() {
                members.retain(|index| !moved.contains(index));
            } else if codes.iter().any(is_conflict) && attempt < MAX_ATTEMPTS {
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            } else {
                return Err(cancelled(&codes));
            }
        }
        Ok(())
    }

    /// [`Self::transact_claimed`] with the instance's registry item added until one lands.
    async fn transact_registered(
        &self,
        instance: &InstanceId,
        mut items: Vec<TransactWriteItem>,
    ) -> Result<CommitOutcome, StoreError> {
        let registers = self.register_with(instance, &mut items)?;
        let outcome = self.transact_claimed(items).await?;
        if registers && outcome == CommitOutcome::Applied {
            self.registry_landed(instance);
        }
        Ok(outcome)
    }

    /// Runs a transaction whose first item is a dedupe claim: a failed claim is a duplicate,
    /// any other failed condition a conflict.
    async fn transact_claimed(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<CommitOutcome, StoreError> {
        match transact(&self.client, items).await? {
            Ok(()) => Ok(CommitOutcome::Applied),
            Err(codes) if codes.first().is_some_and(is_conditional_failure) => {
                Ok(CommitOutcome::Duplicate)
            }
            Err(codes) if codes.iter().any(is_conflict) => Ok(CommitOutcome::VersionConflict),
            Err(codes) => Err(cancelled(&codes)),
        }
    }

    /// The contact a contacts item stands for: itself, or the contact its link names (read
    /// consistently); none for a recorded start.
    async fn resolved(
        &self,
        instance_id: &InstanceId,
        item: Option<Item>,
    ) -> Result<Option<Contact>, StoreError> {
        let Some(mut item) = item.filter(|item| !item.contains_key(RECORDED_START)) else {
            return Ok(None);
        };
        if let Some(AttributeValue::S(target)) = item.remove(LINKS_TO) {
            // A link always names a contact, never another link: merges repoint every link.
            return match self.contacts_item(instance_id, &target).await? {
                Some(item) if !item.contains_key(LINKS_TO) => contact_from_item(item).map(Some),
                Some(_) => Err(StoreError::Corrupt("a link names a link".to_owned())),
                None => Ok(None),
            };
        }
        contact_from_item(item).map(Some)
    }

    /// The contacts items of `ids` that exist, by contact id: `BatchGetItem`s of 100 keys,
    /// eventually consistent (half the units; a listing's index is eventually consistent
    /// anyway).
    async fn contacts_items<'a>(
        &self,
        instance_id: &InstanceId,
        ids: impl Iterator<Item = &'a str>,
    ) -> Result<HashMap<String, Item>, StoreError> {
        let keys: Vec<Item> = ids
            .map(|id| key(&[("instance_id", instance_id.as_str()), ("contact_id", id)]))
            .collect();
        let mut found = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(MAX_BATCH_KEYS) {
            let read = BatchRead {
                table: &self.tables.contacts,
                keys: chunk.to_vec(),
                consistent: false,
            };
            for item in batch_get(&self.client, vec![read])
                .await?
                .into_values()
                .flatten()
            {
                if let Some(AttributeValue::S(id)) = item.get("contact_id") {
                    found.insert(id.clone(), item);
                }
            }
        }
        Ok(found)
    }

    /// The contacts item of `id` (a contact or a link), read consistently.
    async fn contacts_item(
        &self,
        instance_id: &InstanceId,
        id: &str,
    ) -> Result<Option<Item>, StoreError> {
        let key = key(&[("instance_id", instance_id.as_str()), ("contact_id", id)]);
        get_item(&self.client, &self.tables.contacts, key).await
    }
}

#[async_trait]
impl ContactStore for DynamoStore {
    async fn load_contact(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
    ) -> Result<Option<Contact>, StoreError> {
        let item = self.contacts_item(instance_id, contact_id.as_str()).await?;
        self.resolved(instance_id, item).await
    }

    /// One `BatchGetItem`: the identifiers' contacts items (contacts, links or recorded
    /// starts), read consistently, and the claim,
    /// read eventually consistently (half the units): a claim only ever appears (until it
    /// expires), so a stale read can miss one, which the transaction then refuses, but never
    /// show one that is not held.
    async fn load_for_event(
        &self,
        instance_id: &InstanceId,
        identifiers: &[ContactId],
        claim: &DedupeClaim,
    ) -> Result<EventRead, StoreError> {
        let mut keys: Vec<Item> = Vec::new();
        for identifier in identifiers {
            let key = key(&[
                ("instance_id", instance_id.as_str()),
                ("contact_id", identifier.as_str()),
            ]);
            // BatchGetItem refuses a key named twice.
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        let reads = vec![
            BatchRead {
                table: &self.tables.contacts,
                keys,
                consistent: true,
            },
            BatchRead {
                table: &self.tables.dedupe,
                keys: vec![key(&[("dedupe_key", &claim.key)])],
                consistent: false,
            },
        ];
        let mut found = batch_get(&self.client, reads).await?;
        let claimed = found
            .remove(&self.tables.dedupe)
            .unwrap_or_default()
            .iter()
            .any(|item| match item.get("expires_at") {
                Some(AttributeValue::N(expiry)) => expiry
                    .parse::<i64>()
                    .is_ok_and(|expiry| expiry >= claim.now.unix_seconds()),
                _ => false,
            });
        let mut items = found.remove(&self.tables.contacts).unwrap_or_default();
        let mut start = None;
        for item in &items {
            if let Some(AttributeValue::M(recorded)) = item.get(RECORDED_START) {
                start = crate::sources::earliest(start, Some(from_item(recorded.clone())?));
            }
        }
        let mut contacts = Vec::with_capacity(identifiers.len());
        for identifier in identifiers {
            let item = items
                .iter()
                .position(|item| {
                    matches!(item.get("contact_id"), Some(AttributeValue::S(id)) if id == identifier.as_str())
                })
                .map(|at| items.swap_remove(at));
            contacts.push(self.resolved(instance_id, item).await?);
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
        let mut items = vec![
            self.dedupe_put(claim)?,
            self.contact_put(&commit.contact, commit.expected_version)?,
        ];
        items.extend(self.identity_items(commit)?);
        items.extend(self.counter_updates(&commit.counters)?);
        self.transact_registered(&commit.contact.instance_id, items)
            .await
    }

    async fn commit_event(
        &self,
        claim: &DedupeClaim,
        contact: &Contact,
        expected_version: Option<u64>,
        counters: &[CounterBump],
    ) -> Result<CommitOutcome, StoreError> {
        let mut items = vec![
            self.dedupe_put(claim)?,
            self.contact_put(contact, expected_version)?,
        ];
        items.extend(self.counter_updates(counters)?);
        self.transact_registered(&contact.instance_id, items).await
    }

    async fn update_contact(
        &self,
        contact: &Contact,
        expected_version: u64,
        counters: &[CounterBump],
    ) -> Result<CommitOutcome, StoreError> {
        let mut items = vec![self.contact_put(contact, Some(expected_version))?];
        items.extend(self.counter_updates(counters)?);
        match transact(&self.client, items).await? {
            Ok(()) => Ok(CommitOutcome::Applied),
            Err(codes) if codes.iter().any(is_conflict) => Ok(CommitOutcome::VersionConflict),
            Err(codes) => Err(cancelled(&codes)),
        }
    }

    /// Transactions of up to 100 items: as many contacts as fit beside one combined counter
    /// update per day they count on. A contact that changed since it was read cancels its
    /// transaction, which then runs again without it, so one conflict fails only its own
    /// contact; every contact still commits with its counters or not at all.
    async fn update_contacts(
        &self,
        updates: &[ContactUpdate],
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        let mut outcomes = vec![CommitOutcome::VersionConflict; updates.len()];
        let mut batch: Vec<usize> = Vec::new();
        let (mut days, mut bytes) = (BTreeSet::new(), 0);
        for (index, update) in updates.iter().enumerate() {
            let size = serde_json::to_vec(&update.contact)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?
                .len();
            let own: BTreeSet<(&str, &str)> = update
                .counters
                .iter()
                .map(|bump| (bump.instance_id.as_str(), bump.day.as_str()))
                .collect();
            let fits = batch.len() + 1 + days.union(&own).count() <= MAX_TRANSACTION_ITEMS
                && bytes + size <= MAX_TRANSACTION_BYTES;
            if !fits && !batch.is_empty() {
                self.update_batch(updates, std::mem::take(&mut batch), &mut outcomes)
                    .await?;
                (days, bytes) = (BTreeSet::new(), 0);
            }
            batch.push(index);
            days.extend(own);
            bytes += size;
        }
        if !batch.is_empty() {
            self.update_batch(updates, batch, &mut outcomes).await?;
        }
        Ok(outcomes)
    }

    async fn list_contacts(
        &self,
        instance_id: &InstanceId,
        window: &ContactWindow,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ContactPage, StoreError> {
        let (low, until) = (window.since.to_string(), window.until.to_string());
        // BETWEEN is inclusive: the upper bound is either `until` itself, which no position
        // equals (positions continue with `#`), or the cursor's contact, skipped below.
        let high = match after {
            Some(after) if after < until.as_str() => after.to_owned(),
            _ => until,
        };
        let query = self
            .client
            .query()
            .table_name(&self.tables.contacts)
            .index_name(LISTING_INDEX)
            .key_condition_expression(
                "instance_id = :instance AND #position BETWEEN :low AND :high",
            )
            .expression_attribute_names("#position", LISTING_KEY)
            .expression_attribute_values(":instance", string(instance_id.as_str()))
            .expression_attribute_values(":low", string(&low))
            .expression_attribute_values(":high", string(&high))
            .scan_index_forward(false)
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX));
        // The index holds keys only (a contact's own write then never rewrites its entry):
        // the positions first, then the page's contacts by key.
        let mut positions: Vec<(String, String)> = Vec::new();
        let stopped = query_items(query, |mut item| {
            let (Some(AttributeValue::S(position)), Some(AttributeValue::S(contact_id))) =
                (item.remove(LISTING_KEY), item.remove("contact_id"))
            else {
                return Err(StoreError::Corrupt(
                    "an index entry without its keys".to_owned(),
                ));
            };
            if position == high {
                return Ok(ControlFlow::Continue(()));
            }
            if positions.len() == limit {
                return Ok(ControlFlow::Break(()));
            }
            positions.push((position, contact_id));
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        let mut items = self
            .contacts_items(instance_id, positions.iter().map(|(_, id)| id.as_str()))
            .await?;
        let mut page = ContactPage::default();
        for (position, contact_id) in positions {
            page.next = Some(position.clone());
            // Gone, merged into another, or moved in the listing since the index answered
            // (then it is listed at its new place): not this position's contact.
            let Some(item) = items.remove(&contact_id) else {
                continue;
            };
            if item.contains_key(LINKS_TO) {
                continue;
            }
            let contact = contact_from_item(item)?;
            if listing_position(&contact) == position {
                page.contacts.push(contact);
            }
        }
        if !stopped {
            page.next = None;
        }
        Ok(page)
    }

    /// On the contacts table, under the person's key: the event that makes it their contact
    /// or link reads it with its contacts and its commit's condition sees one recorded since
    /// ([`unclaimed_key`]). Removed by the table's TTL once too old to matter; a contact
    /// overwrites it.
    async fn record_business_first(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
        start: &crate::sources::BusinessFirst,
    ) -> Result<(), StoreError> {
        let mut item = key(&[
            ("instance_id", instance_id.as_str()),
            ("contact_id", contact_id.as_str()),
        ]);
        item.insert(RECORDED_START.into(), AttributeValue::M(to_item(start)?));
        let expires = start
            .at
            .plus_seconds(crate::contact::store::BUSINESS_FIRST_TTL_SECONDS);
        item.insert(START_EXPIRES.into(), number(expires.unix_seconds()));
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.contacts)
            .set_item(Some(item))
            // Never over a contact or a link, nor over an earlier start: the earliest is what
            // tells who wrote first.
            .condition_expression("attribute_not_exists(contact_id) OR #start.#at > :at")
            .expression_attribute_names("#start", RECORDED_START)
            .expression_attribute_names("#at", "at")
            .expression_attribute_values(":at", string(&start.at.to_string()))
            .send()
            .await;
        conditional_put(result).map(|_| ())
    }

    async fn load_counter_days(
        &self,
        instance_id: &InstanceId,
        first_day: &str,
        last_day: &str,
    ) -> Result<CounterDays, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.tables.counters)
            .key_condition_expression("instance_id = :instance AND #day BETWEEN :first AND :last")
            .expression_attribute_names("#day", "day")
            .expression_attribute_values(":instance", string(instance_id.as_str()))
            .expression_attribute_values(":first", string(first_day))
            .expression_attribute_values(":last", string(last_day))
            .consistent_read(true);
        let mut days = CounterDays::new();
        query_items(query, |mut item| {
            let Some(AttributeValue::S(day)) = item.remove("day") else {
                return Ok(ControlFlow::Continue(()));
            };
            let counters = days.entry(day).or_default();
            for (name, value) in item {
                if let AttributeValue::N(count) = value {
                    let count = count
                        .parse()
                        .map_err(|_| StoreError::Corrupt(format!("counter {name}")))?;
                    counters.insert(name, count);
                }
            }
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        Ok(days)
    }
}
