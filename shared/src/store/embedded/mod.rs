//! The embedded store: one redb file that survives restarts, for the local server and fast
//! tests. redb is pure Rust (no C toolchain needed), crash-safe with copy-on-write B-trees,
//! and its serialisable write transactions give the same all-or-nothing commit as a DynamoDB
//! transaction.

mod erasure;
mod revenue;
mod widget;

use crate::contact::Contact;
use crate::contact::counters::CounterBump;
use crate::contact::store::{
    ContactPage, ContactStore, ContactUpdate, ContactWindow, CounterDays, IdentityCommit,
    listing_position,
};
use crate::ids::{ContactId, InstanceId};
use crate::matching::backfill::BackfillJob;
use crate::matching::backfill::JobStore;
use crate::rules::store::{RuleStore, RuleWrite};
use crate::rules::{Rule, RuleId};
use crate::store::{CommitOutcome, DedupeClaim, StoreError};
use crate::time::Timestamp;
use async_trait::async_trait;
use redb::{Database, Durability, ReadableTable, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::oneshot;

pub(super) const CONTACTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("contacts");
/// (instance, identifier) → the id of the contact it resolves to: a phone number or BSUID of
/// a contact filed under the other one, or the id of a contact merged into another. A key is
/// in `CONTACTS` or here, never both.
pub(super) const LINKS: TableDefinition<(&str, &str), &str> = TableDefinition::new("contact_links");
/// Dedupe key → expiry (unix seconds).
pub(super) const DEDUPE: TableDefinition<&str, i64> = TableDefinition::new("dedupe");
/// (instance, day, counter name) → count.
pub(super) const COUNTERS: TableDefinition<(&str, &str, &str), u64> =
    TableDefinition::new("counters");
/// (instance, listing position) → contact id: the newest-first listing.
pub(super) const CONTACTS_BY_FIRST_SEEN: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("contacts_by_first_seen");
pub(super) const JOBS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("backfill_jobs");
pub(super) const RULES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("rules");
/// Instance → (rule count, rules version).
pub(super) const RULE_META: TableDefinition<&str, (u64, u64)> = TableDefinition::new("rule_meta");

/// Every store in one embedded redb database file, for the local server and tests.
#[derive(Clone)]
pub struct EmbeddedStore {
    pub(super) db: Arc<Database>,
    /// Whether a commit waits for fsync (always, but for bulk loads in benchmarks).
    durable: bool,
    writes: Arc<WriteQueue>,
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
        txn.open_table(LINKS).map_err(unavailable)?;
        txn.open_table(DEDUPE).map_err(unavailable)?;
        txn.open_table(COUNTERS).map_err(unavailable)?;
        txn.open_table(CONTACTS_BY_FIRST_SEEN)
            .map_err(unavailable)?;
        txn.open_table(RULES).map_err(unavailable)?;
        txn.open_table(RULE_META).map_err(unavailable)?;
        txn.open_table(JOBS).map_err(unavailable)?;
        crate::store::embedded::revenue::create_tables(&txn)?;
        txn.commit().map_err(unavailable)?;
        Ok(Self {
            db: Arc::new(db),
            durable: true,
            writes: Arc::default(),
        })
    }

    /// The same store, but commits return before they reach the disk: a crash may lose the
    /// last ones. Only for loading benchmark data; never for the engine.
    pub fn without_fsync(mut self) -> Self {
        self.durable = false;
        self
    }

    /// Runs `work` in a write transaction, off the async worker threads, and answers once its
    /// writes are committed (after fsync) when it answers `Ok((_, true))`; `Ok((_, false))`
    /// must mean that it wrote nothing.
    ///
    /// Group commit: the writes that arrive while a commit is waiting for its fsync queue up,
    /// and the next commit applies them all, in arrival order, in ONE write transaction with
    /// ONE fsync. Each `work` sees the writes of the earlier ones of its group, as if they had
    /// committed alone; every answer waits for the group's commit (an answer may depend on an
    /// earlier write of the group), and a failed commit fails them all. A `work` that fails may
    /// have written part of its changes, so its group is abandoned and run again without it
    /// (the ones before it, it alone, the ones after it): only it fails. `work` may therefore
    /// run more than once, each time in a new transaction.
    pub(super) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&WriteTransaction) -> Result<(T, bool), StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let start_writer = self.writes.push(Box::new(Write {
            work,
            answer: None,
            reply,
        }));
        if start_writer {
            let writer = Writer {
                db: self.db.clone(),
                durable: self.durable,
                writes: self.writes.clone(),
                finished: false,
            };
            // Blocking: each commit waits for its fsync.
            tokio::task::spawn_blocking(move || writer.run());
        }
        answer
            .await
            .map_err(|_| unavailable("the store's writer stopped before answering"))?
    }
}

/// Writes no more than this many in one transaction, so that one commit stays short.
const MAX_GROUP: usize = 512;

/// The writes waiting for the next commit, and whether a writer is draining them.
#[derive(Default)]
struct WriteQueue {
    state: Mutex<QueueState>,
    /// Transactions committed, for the tests of grouping.
    #[cfg(test)]
    commits: std::sync::atomic::AtomicUsize,
}

#[derive(Default)]
struct QueueState {
    pending: Vec<Box<dyn PendingWrite>>,
    writer_running: bool,
}

impl WriteQueue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // Nothing panics while holding the lock; a poisoned one is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `write`; answers whether the caller must start a writer (none is running).
    fn push(&self, write: Box<dyn PendingWrite>) -> bool {
        let mut state = self.lock();
        state.pending.push(write);
        !std::mem::replace(&mut state.writer_running, true)
    }

    /// The next group, oldest first; `None` (and no writer running any more) when there is
    /// nothing left.
    fn next_group(&self) -> Option<Vec<Box<dyn PendingWrite>>> {
        let mut state = self.lock();
        if state.pending.is_empty() {
            state.writer_running = false;
            return None;
        }
        let rest = if state.pending.len() > MAX_GROUP {
            state.pending.split_off(MAX_GROUP)
        } else {
            Vec::new()
        };
        Some(std::mem::replace(&mut state.pending, rest))
    }
}

/// One queued write: its closure, the answer of its last run, and where the answer goes.
trait PendingWrite: Send {
    /// Runs the closure in `txn`; answers whether it asks for a commit.
    fn run(&mut self, txn: &WriteTransaction) -> Result<bool, StoreError>;
    /// Answers the caller: the last run's answer once `outcome` (the commit) is `Ok`.
    fn finish(self: Box<Self>, outcome: Result<(), StoreError>);
}

struct Write<T, F> {
    work: F,
    answer: Option<T>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> PendingWrite for Write<T, F>
where
    T: Send,
    F: Fn(&WriteTransaction) -> Result<(T, bool), StoreError> + Send,
{
    fn run(&mut self, txn: &WriteTransaction) -> Result<bool, StoreError> {
        self.answer = None;
        let work = &self.work;
        let (answer, commit) = std::panic::catch_unwind(AssertUnwindSafe(|| work(txn)))
            .map_err(|_| unavailable("a store write panicked"))??;
        self.answer = Some(answer);
        Ok(commit)
    }

    fn finish(self: Box<Self>, outcome: Result<(), StoreError>) {
        let Write { answer, reply, .. } = *self;
        let answer =
            outcome.and_then(|()| answer.ok_or_else(|| unavailable("a store write never ran")));
        // The caller may have stopped waiting; the write stands (or not) all the same.
        let _ = reply.send(answer);
    }
}

/// Drains the queue, one group per transaction, until it is empty.
struct Writer {
    db: Arc<Database>,
    durable: bool,
    writes: Arc<WriteQueue>,
    finished: bool,
}

impl Writer {
    fn run(mut self) {
        while let Some(group) = self.writes.next_group() {
            self.commit_group(group);
        }
        self.finished = true;
    }

    fn begin(&self) -> Result<WriteTransaction, StoreError> {
        let mut txn = self.db.begin_write().map_err(unavailable)?;
        if !self.durable {
            txn.set_durability(Durability::Eventual);
        }
        Ok(txn)
    }

    fn commit_group(&self, mut group: Vec<Box<dyn PendingWrite>>) {
        if group.is_empty() {
            return;
        }
        let txn = match self.begin() {
            Ok(txn) => txn,
            Err(error) => return finish_all(group, &Err(error)),
        };
        let mut commit = false;
        for index in 0..group.len() {
            match group[index].run(&txn) {
                Ok(asks) => commit |= asks,
                Err(error) if group.len() == 1 => {
                    let _ = txn.abort();
                    return finish_all(group, &Err(error));
                }
                Err(_) => {
                    // It may have written part of its changes: the whole transaction goes, and
                    // the group runs again around it, in the same order.
                    let _ = txn.abort();
                    let after = group.split_off(index + 1);
                    let failed = group.pop().expect("the failed write");
                    self.commit_group(group);
                    self.commit_group(vec![failed]);
                    self.commit_group(after);
                    return;
                }
            }
        }
        let outcome = if commit {
            #[cfg(test)]
            self.writes
                .commits
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            txn.commit().map_err(unavailable)
        } else {
            txn.abort().map_err(unavailable)
        };
        finish_all(group, &outcome);
    }
}

impl Drop for Writer {
    /// A writer that stops early (a panic outside the closures, or a runtime shutting down
    /// before the task ran) fails what is queued and lets the next write start a new one.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let pending = {
            let mut state = self.writes.lock();
            state.writer_running = false;
            std::mem::take(&mut state.pending)
        };
        finish_all(
            pending,
            &Err(unavailable("the store's writer stopped before committing")),
        );
    }
}

fn finish_all(group: Vec<Box<dyn PendingWrite>>, outcome: &Result<(), StoreError>) {
    for write in group {
        write.finish(match outcome {
            Ok(()) => Ok(()),
            Err(StoreError::Unavailable(message)) => Err(StoreError::Unavailable(message.clone())),
            Err(StoreError::Corrupt(message)) => Err(StoreError::Corrupt(message.clone())),
        });
    }
}

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
    // A new contact may not take an id that already resolves to another contact.
    if stored_version.is_none() && is_linked(txn, key)? {
        return Ok(CommitOutcome::VersionConflict);
    }
    contacts.insert(key, encoded).map_err(unavailable)?;
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

fn is_linked(txn: &WriteTransaction, key: (&str, &str)) -> Result<bool, StoreError> {
    let links = txn.open_table(LINKS).map_err(unavailable)?;
    Ok(links.get(key).map_err(unavailable)?.is_some())
}

fn claim_held(txn: &WriteTransaction, claim: &DedupeClaim) -> Result<bool, StoreError> {
    let dedupe = txn.open_table(DEDUPE).map_err(unavailable)?;
    let held = dedupe
        .get(claim.key.as_str())
        .map_err(unavailable)?
        .is_some_and(|expiry| expiry.value() >= claim.now.unix_seconds());
    Ok(held)
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
        job_id: &crate::ids::JobId,
    ) -> Result<Option<BackfillJob>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let jobs = txn.open_table(JOBS).map_err(unavailable)?;
        let found = jobs
            .get((instance_id.as_str(), job_id.as_str()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    const SCRATCH: TableDefinition<&str, i64> = TableDefinition::new("group_commit_scratch");

    fn store() -> (tempfile::TempDir, EmbeddedStore) {
        let folder = tempfile::tempdir().expect("temporary folder");
        let store = EmbeddedStore::open(&folder.path().join("engine.redb")).expect("open");
        (folder, store)
    }

    fn put(txn: &WriteTransaction, key: &str, value: i64) -> Result<(), StoreError> {
        let mut table = txn.open_table(SCRATCH).map_err(unavailable)?;
        table.insert(key, value).map_err(unavailable)?;
        Ok(())
    }

    fn get(txn: &WriteTransaction, key: &str) -> Result<Option<i64>, StoreError> {
        let table = txn.open_table(SCRATCH).map_err(unavailable)?;
        let found = table.get(key).map_err(unavailable)?;
        Ok(found.map(|value| value.value()))
    }

    fn stored(store: &EmbeddedStore, key: &str) -> Option<i64> {
        let txn = store.db.begin_read().expect("read");
        let table = txn.open_table(SCRATCH).expect("table");
        table.get(key).expect("get").map(|value| value.value())
    }

    /// Holds the writer inside a write until released, so that the writes queued meanwhile
    /// form the next group, in the order they are queued.
    struct Gate {
        release: std::sync::mpsc::Sender<()>,
        held: tokio::task::JoinHandle<Result<(), StoreError>>,
    }

    async fn hold_writer(store: &EmbeddedStore) -> Gate {
        let (entered, inside) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (entered, released) = (Mutex::new(entered), Mutex::new(released));
        let writer = store.clone();
        let held = tokio::spawn(async move {
            writer
                .write(move |_| {
                    let _ = entered.lock().expect("entered").send(());
                    let _ = released.lock().expect("released").recv();
                    Ok(((), false))
                })
                .await
        });
        tokio::task::spawn_blocking(move || inside.recv().expect("the gate runs"))
            .await
            .expect("gate");
        Gate { release, held }
    }

    impl Gate {
        async fn open(self) {
            self.release.send(()).expect("release");
            self.held.await.expect("gate task").expect("gate write");
        }
    }

    /// Queues `work` behind the ones already queued, and waits until it is.
    async fn queue<T, F>(
        store: &EmbeddedStore,
        work: F,
    ) -> tokio::task::JoinHandle<Result<T, StoreError>>
    where
        T: Send + 'static,
        F: Fn(&WriteTransaction) -> Result<(T, bool), StoreError> + Send + 'static,
    {
        let before = store.writes.lock().pending.len();
        let writer = store.clone();
        let handle = tokio::spawn(async move { writer.write(work).await });
        while store.writes.lock().pending.len() == before {
            tokio::task::yield_now().await;
        }
        handle
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_commits_once_and_each_write_sees_the_earlier_ones() {
        let (_folder, store) = store();
        let gate = hold_writer(&store).await;
        let mut claims = Vec::new();
        for n in 0..20 {
            claims.push(
                queue(&store, move |txn| {
                    if get(txn, "claim")?.is_some() {
                        return Ok((false, false));
                    }
                    put(txn, "claim", n)?;
                    put(txn, &format!("write {n}"), n)?;
                    Ok((true, true))
                })
                .await,
            );
        }
        let commits = store.writes.commits.load(Ordering::SeqCst);
        gate.open().await;
        let mut won = Vec::new();
        for (n, claim) in claims.into_iter().enumerate() {
            if claim.await.expect("task").expect("write") {
                won.push(n);
            }
        }
        assert_eq!(won, vec![0], "only the first of the group claims");
        assert_eq!(stored(&store, "claim"), Some(0));
        assert_eq!(stored(&store, "write 0"), Some(0));
        assert_eq!(
            stored(&store, "write 1"),
            None,
            "a write answering false wrote"
        );
        assert_eq!(store.writes.commits.load(Ordering::SeqCst), commits + 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_failing_after_partial_writes_fails_alone() {
        let (_folder, store) = store();
        let gate = hold_writer(&store).await;
        let first = queue(&store, |txn| put(txn, "first", 1).map(|()| ((), true))).await;
        let failing = queue(&store, |txn| {
            put(txn, "failing", 2)?;
            Err::<((), bool), _>(StoreError::Corrupt("refused".to_owned()))
        })
        .await;
        let panicking = queue(&store, |txn| {
            put(txn, "panicking", 3)?;
            panic!("a bug in a write");
            #[allow(unreachable_code)]
            Ok(((), true))
        })
        .await;
        let after = queue(&store, |txn| {
            put(txn, "after", 4)?;
            // Sees the first write, not the failed ones.
            Ok(((get(txn, "first")?, get(txn, "failing")?), true))
        })
        .await;
        let reader = queue(&store, |txn| Ok((get(txn, "panicking")?, false))).await;
        gate.open().await;

        first.await.expect("task").expect("first");
        match failing.await.expect("task") {
            Err(StoreError::Corrupt(message)) => assert_eq!(message, "refused"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            panicking.await.expect("task"),
            Err(StoreError::Unavailable(_))
        ));
        assert_eq!(after.await.expect("task").expect("after"), (Some(1), None));
        assert_eq!(reader.await.expect("task").expect("reader"), None);
        assert_eq!(stored(&store, "first"), Some(1));
        assert_eq!(stored(&store, "failing"), None);
        assert_eq!(stored(&store, "panicking"), None);
        assert_eq!(stored(&store, "after"), Some(4));

        // The writer carries on.
        store
            .write(|txn| put(txn, "later", 5).map(|()| ((), true)))
            .await
            .expect("later");
        assert_eq!(stored(&store, "later"), Some(5));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_all_land() {
        let (_folder, store) = store();
        let writes: Vec<_> = (0..200)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .write(move |txn| {
                            let total = get(txn, "total")?.unwrap_or(0);
                            put(txn, "total", total + 1)?;
                            put(txn, &format!("write {n}"), n)?;
                            Ok(((), true))
                        })
                        .await
                })
            })
            .collect();
        for write in writes {
            write.await.expect("task").expect("write");
        }
        assert_eq!(stored(&store, "total"), Some(200));
        assert!((0..200).all(|n| stored(&store, &format!("write {n}")) == Some(n)));
    }
}
