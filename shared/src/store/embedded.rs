//! The embedded store: one redb file that survives restarts, for the local server and fast
//! tests. redb is pure Rust (no C toolchain needed), crash-safe with copy-on-write B-trees,
//! and its serialisable write transactions give the same all-or-nothing commit as a DynamoDB
//! transaction.

use super::{
    CommitOutcome, ContactPage, ContactStore, ContactUpdate, ContactWindow, CounterDays,
    DedupeClaim, JobStore, RuleStore, RuleWrite, StoreError, listing_position,
};
use crate::backfill::BackfillJob;
use crate::counters::CounterBump;
use crate::ids::{ContactId, InstanceId};
use crate::model::Contact;
use crate::rules::{Rule, RuleId};
use async_trait::async_trait;
use redb::{Database, Durability, ReadableTable, TableDefinition, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;
use std::sync::Arc;

const CONTACTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("contacts");
/// Dedupe key → expiry (unix seconds).
const DEDUPE: TableDefinition<&str, i64> = TableDefinition::new("dedupe");
/// (instance, day, counter name) → count.
const COUNTERS: TableDefinition<(&str, &str, &str), u64> = TableDefinition::new("counters");
/// (instance, listing position) → contact id: the newest-first listing.
const CONTACTS_BY_FIRST_SEEN: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("contacts_by_first_seen");
const JOBS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("backfill_jobs");
const RULES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("rules");
/// Instance → (rule count, rules version).
const RULE_META: TableDefinition<&str, (u64, u64)> = TableDefinition::new("rule_meta");

#[derive(Clone)]
pub struct EmbeddedStore {
    pub(super) db: Arc<Database>,
    /// Whether a commit waits for fsync (always, but for bulk loads in benchmarks).
    durable: bool,
}

pub(super) fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

pub(super) fn encode(value: &impl Serialize) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl EmbeddedStore {
    /// Opens (or creates) the store file at `path`, creating its folder if needed.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(unavailable)?;
        }
        let db = Database::create(path).map_err(unavailable)?;
        let txn = db.begin_write().map_err(unavailable)?;
        // Every table exists from the start, so reads never meet a missing one.
        txn.open_table(CONTACTS).map_err(unavailable)?;
        txn.open_table(DEDUPE).map_err(unavailable)?;
        txn.open_table(COUNTERS).map_err(unavailable)?;
        txn.open_table(CONTACTS_BY_FIRST_SEEN)
            .map_err(unavailable)?;
        txn.open_table(RULES).map_err(unavailable)?;
        txn.open_table(RULE_META).map_err(unavailable)?;
        txn.open_table(JOBS).map_err(unavailable)?;
        super::embedded_revenue::create_tables(&txn)?;
        txn.commit().map_err(unavailable)?;
        Ok(Self {
            db: Arc::new(db),
            durable: true,
        })
    }

    /// The same store, but commits return before they reach the disk: a crash may lose the
    /// last ones. Only for loading benchmark data; never for the engine.
    pub fn without_fsync(mut self) -> Self {
        self.durable = false;
        self
    }

    /// Runs `work` in one write transaction, off the async worker threads (a commit waits for
    /// fsync), committing only when it answers `Ok(true)`.
    pub(super) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<(T, bool), StoreError> + Send + 'static,
    {
        let (db, durable) = (self.db.clone(), self.durable);
        tokio::task::spawn_blocking(move || {
            let mut txn = db.begin_write().map_err(unavailable)?;
            if !durable {
                txn.set_durability(Durability::Eventual);
            }
            let (answer, commit) = work(&txn)?;
            if commit {
                txn.commit().map_err(unavailable)?;
            } else {
                txn.abort().map_err(unavailable)?;
            }
            Ok(answer)
        })
        .await
        .map_err(unavailable)?
    }
}

/// Writes `contact` if the stored one is at `expected_version`, and bumps `counters`.
fn put_contact(
    txn: &WriteTransaction,
    contact: &Contact,
    expected_version: Option<u64>,
    counters: &[CounterBump],
) -> Result<CommitOutcome, StoreError> {
    let mut contacts = txn.open_table(CONTACTS).map_err(unavailable)?;
    let key = (contact.instance_id.as_str(), contact.contact_id.as_str());
    let stored = match contacts.get(key).map_err(unavailable)? {
        Some(bytes) => Some(decode::<Contact>(bytes.value())?),
        None => None,
    };
    if stored.as_ref().map(|c| c.version) != expected_version {
        return Ok(CommitOutcome::VersionConflict);
    }
    contacts
        .insert(key, encode(contact)?.as_slice())
        .map_err(unavailable)?;
    // An earlier message arriving late moves `first_seen_at`, and with it the listing position;
    // otherwise the index entry stays as it is (most writes leave it alone).
    let position = listing_position(contact);
    let previous = stored.as_ref().map(listing_position);
    if previous.as_deref() != Some(position.as_str()) {
        let mut listing = txn
            .open_table(CONTACTS_BY_FIRST_SEEN)
            .map_err(unavailable)?;
        if let Some(previous) = previous {
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

#[async_trait]
impl ContactStore for EmbeddedStore {
    async fn load_contact(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
    ) -> Result<Option<Contact>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let contacts = txn.open_table(CONTACTS).map_err(unavailable)?;
        let found = contacts
            .get((instance_id.as_str(), contact_id.as_str()))
            .map_err(unavailable)?;
        found.map(|bytes| decode(bytes.value())).transpose()
    }

    async fn commit_event(
        &self,
        claim: &DedupeClaim,
        contact: &Contact,
        expected_version: Option<u64>,
        counters: &[CounterBump],
    ) -> Result<CommitOutcome, StoreError> {
        let (claim, contact, counters) = (claim.clone(), contact.clone(), counters.to_vec());
        self.write(move |txn| {
            let mut dedupe = txn.open_table(DEDUPE).map_err(unavailable)?;
            let held = dedupe
                .get(claim.key.as_str())
                .map_err(unavailable)?
                .is_some_and(|expiry| expiry.value() >= claim.now.unix_seconds());
            if held {
                return Ok((CommitOutcome::Duplicate, false));
            }
            let outcome = put_contact(txn, &contact, expected_version, &counters)?;
            if outcome == CommitOutcome::Applied {
                dedupe
                    .insert(claim.key.as_str(), claim.expires_at.unix_seconds())
                    .map_err(unavailable)?;
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
        let (contact, counters) = (contact.clone(), counters.to_vec());
        self.write(move |txn| {
            let outcome = put_contact(txn, &contact, Some(expected_version), &counters)?;
            Ok((outcome, outcome == CommitOutcome::Applied))
        })
        .await
    }

    /// One transaction, one fsync, for the whole batch.
    async fn update_contacts(
        &self,
        updates: &[ContactUpdate],
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        let updates = updates.to_vec();
        self.write(move |txn| {
            let mut outcomes = Vec::with_capacity(updates.len());
            for update in &updates {
                outcomes.push(put_contact(
                    txn,
                    &update.contact,
                    Some(update.expected_version),
                    &update.counters,
                )?);
            }
            let any = outcomes.contains(&CommitOutcome::Applied);
            Ok((outcomes, any))
        })
        .await
    }

    async fn list_contacts(
        &self,
        instance_id: &InstanceId,
        window: &ContactWindow,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ContactPage, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let listing = txn
            .open_table(CONTACTS_BY_FIRST_SEEN)
            .map_err(unavailable)?;
        let contacts = txn.open_table(CONTACTS).map_err(unavailable)?;
        let instance = instance_id.as_str();
        let (low, until) = (window.since.to_string(), window.until.to_string());
        let high = match after {
            Some(after) if after < until.as_str() => after.to_owned(),
            _ => until,
        };
        let mut page = ContactPage::default();
        let range = listing
            .range((instance, low.as_str())..(instance, high.as_str()))
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

#[async_trait]
impl RuleStore for EmbeddedStore {
    async fn list_rules(&self, instance_id: &InstanceId) -> Result<Vec<Rule>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let table = txn.open_table(RULES).map_err(unavailable)?;
        let instance = instance_id.as_str();
        let mut rules = Vec::new();
        for entry in table.range((instance, "")..).map_err(unavailable)? {
            let (key, bytes) = entry.map_err(unavailable)?;
            if key.value().0 != instance {
                break;
            }
            rules.push(decode(bytes.value())?);
        }
        Ok(rules)
    }

    async fn load_rule(
        &self,
        instance_id: &InstanceId,
        rule_id: &RuleId,
    ) -> Result<Option<Rule>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let table = txn.open_table(RULES).map_err(unavailable)?;
        let found = table
            .get((instance_id.as_str(), rule_id.as_str()))
            .map_err(unavailable)?;
        found.map(|bytes| decode(bytes.value())).transpose()
    }

    async fn create_rule(&self, rule: &Rule, max_rules: usize) -> Result<RuleWrite, StoreError> {
        let rule = rule.clone();
        self.write(move |txn| {
            let mut meta = txn.open_table(RULE_META).map_err(unavailable)?;
            let instance = rule.instance_id.as_str();
            let (count, version) = meta
                .get(instance)
                .map_err(unavailable)?
                .map_or((0, 0), |v| v.value());
            if count as usize >= max_rules {
                return Ok((RuleWrite::LimitReached, false));
            }
            let mut rules = txn.open_table(RULES).map_err(unavailable)?;
            let key = (instance, rule.id.as_str());
            if rules.get(key).map_err(unavailable)?.is_some() {
                return Err(StoreError::Corrupt(format!(
                    "rule id {} already exists",
                    rule.id
                )));
            }
            rules
                .insert(key, encode(&rule)?.as_slice())
                .map_err(unavailable)?;
            meta.insert(instance, (count + 1, version + 1))
                .map_err(unavailable)?;
            Ok((RuleWrite::Done, true))
        })
        .await
    }

    async fn replace_rule(&self, rule: &Rule) -> Result<RuleWrite, StoreError> {
        let rule = rule.clone();
        self.write(move |txn| {
            let mut rules = txn.open_table(RULES).map_err(unavailable)?;
            let instance = rule.instance_id.as_str();
            let key = (instance, rule.id.as_str());
            if rules.get(key).map_err(unavailable)?.is_none() {
                return Ok((RuleWrite::NotFound, false));
            }
            rules
                .insert(key, encode(&rule)?.as_slice())
                .map_err(unavailable)?;
            let mut meta = txn.open_table(RULE_META).map_err(unavailable)?;
            let (count, version) = meta
                .get(instance)
                .map_err(unavailable)?
                .map_or((1, 0), |v| v.value());
            meta.insert(instance, (count, version + 1))
                .map_err(unavailable)?;
            Ok((RuleWrite::Done, true))
        })
        .await
    }

    async fn delete_rule(
        &self,
        instance_id: &InstanceId,
        rule_id: &RuleId,
    ) -> Result<RuleWrite, StoreError> {
        let (instance_id, rule_id) = (instance_id.clone(), rule_id.clone());
        self.write(move |txn| {
            let mut rules = txn.open_table(RULES).map_err(unavailable)?;
            let instance = instance_id.as_str();
            if rules
                .remove((instance, rule_id.as_str()))
                .map_err(unavailable)?
                .is_none()
            {
                return Ok((RuleWrite::NotFound, false));
            }
            let mut meta = txn.open_table(RULE_META).map_err(unavailable)?;
            let (count, version) = meta
                .get(instance)
                .map_err(unavailable)?
                .map_or((1, 0), |v| v.value());
            meta.insert(instance, (count.saturating_sub(1), version + 1))
                .map_err(unavailable)?;
            Ok((RuleWrite::Done, true))
        })
        .await
    }

    async fn rules_version(&self, instance_id: &InstanceId) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let meta = txn.open_table(RULE_META).map_err(unavailable)?;
        let found = meta.get(instance_id.as_str()).map_err(unavailable)?;
        Ok(found.map_or(0, |value| value.value().1))
    }
}

#[async_trait]
impl JobStore for EmbeddedStore {
    async fn create_job(&self, job: &BackfillJob) -> Result<(), StoreError> {
        let job = job.clone();
        self.write(move |txn| {
            let mut jobs = txn.open_table(JOBS).map_err(unavailable)?;
            jobs.insert(
                (job.instance_id.as_str(), job.job_id.as_str()),
                encode(&job)?.as_slice(),
            )
            .map_err(unavailable)?;
            Ok(((), true))
        })
        .await
    }

    async fn load_job(
        &self,
        instance_id: &InstanceId,
        job_id: &str,
    ) -> Result<Option<BackfillJob>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let jobs = txn.open_table(JOBS).map_err(unavailable)?;
        let found = jobs
            .get((instance_id.as_str(), job_id))
            .map_err(unavailable)?;
        found.map(|bytes| decode(bytes.value())).transpose()
    }

    async fn save_job(
        &self,
        job: &BackfillJob,
        expected_version: u64,
    ) -> Result<CommitOutcome, StoreError> {
        let job = job.clone();
        self.write(move |txn| {
            let mut jobs = txn.open_table(JOBS).map_err(unavailable)?;
            let key = (job.instance_id.as_str(), job.job_id.as_str());
            let stored = match jobs.get(key).map_err(unavailable)? {
                Some(bytes) => Some(decode::<BackfillJob>(bytes.value())?.version),
                None => None,
            };
            if stored != Some(expected_version) {
                return Ok((CommitOutcome::VersionConflict, false));
            }
            jobs.insert(key, encode(&job)?.as_slice())
                .map_err(unavailable)?;
            Ok((CommitOutcome::Applied, true))
        })
        .await
    }
}
