//! Backfill: today's rules applied to recent contacts that have no attribution yet. A preview
//! counts what a run would change; a run travels as pages on the match queue, each continuing
//! from the previous one's position, with its progress in a job record.

use super::rules_cache::RulesCache;
use super::write_decision;
use crate::contact::Contact;
use crate::contact::counters::bumps_for;
use crate::contact::store::{ContactStore, ContactUpdate, ContactWindow};
use crate::contact::{Acquisition, RuleAttribution};
use crate::fields::FieldError;
use crate::ids::{InstanceId, JobId};
use crate::ingest::{IngestError, MAX_ATTEMPTS};
use crate::queue::{BackfillPage, JobQueue, QueueError, QueueJob};
use crate::rules::CompiledRules;
use crate::rules::store::RuleStore;
use crate::store::{CommitOutcome, StoreError};
use crate::time::Timestamp;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Days a backfill covers when the request names none.
pub const DEFAULT_DAYS: u32 = 7;
/// The widest window a backfill may cover, in days.
pub const MAX_DAYS: u32 = 90;
/// Most contacts one backfill may look at: far more than 90 days bring to any instance, few
/// enough to stay a count and not an arbitrary number.
pub const MAX_LIMIT: u64 = 10_000_000;
/// Contacts read per page, in a preview and per queued page of a run.
pub const PAGE_SIZE: usize = 500;

/// A backfill as asked for, within its bounds: the admin API and the dashboard both check it
/// here, so both refuse with the same words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// The window's length, in days.
    pub days: u32,
    /// At most this many contacts are read.
    pub limit: Option<u64>,
}

impl Request {
    /// `days` ([`DEFAULT_DAYS`] when absent) and `limit`, each refused outside its bounds.
    pub fn checked(days: Option<u32>, limit: Option<u64>) -> Result<Self, FieldError> {
        let days = days.unwrap_or(DEFAULT_DAYS);
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(FieldError::new(
                "days",
                format!("must be from 1 to {MAX_DAYS}"),
            ));
        }
        if limit.is_some_and(|limit| !(1..=MAX_LIMIT).contains(&limit)) {
            return Err(FieldError::new(
                "limit",
                format!("must be from 1 to {MAX_LIMIT}"),
            ));
        }
        Ok(Self { days, limit })
    }

    /// The last `days` days, ending `now`.
    pub fn window(&self, now: Timestamp) -> ContactWindow {
        window(now, self.days)
    }

    /// What a run of this request would update now, by the instance's rules as they are now
    /// (see [`preview`]).
    pub async fn preview(
        &self,
        rules: &dyn RuleStore,
        contacts: &dyn ContactStore,
        instance_id: &InstanceId,
        now: Timestamp,
    ) -> Result<Preview, StoreError> {
        let compiled = CompiledRules::compile(&rules.list_rules(instance_id).await?);
        preview(
            contacts,
            &compiled,
            instance_id,
            &self.window(now),
            self.limit,
        )
        .await
    }

    /// Starts a run of this request over the window ending `now` (see [`start`]).
    pub async fn start(
        &self,
        jobs: &dyn JobStore,
        queue: &dyn JobQueue,
        instance_id: InstanceId,
        now: Timestamp,
    ) -> Result<BackfillJob, StartError> {
        let window = self.window(now);
        start(
            jobs,
            queue,
            instance_id,
            self.days,
            &window,
            self.limit,
            now,
        )
        .await
    }
}

/// Where a backfill job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Accepted; its first page is on the queue.
    Queued,
    /// At least one page has run; more follow.
    Running,
    /// Every page has run.
    Done,
    /// Its first page could not be queued: nothing runs.
    Failed,
}

/// A backfill run's job record: its window, limit and progress, kept up to date page by page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillJob {
    /// The job's ULID, by which the admin API reads it.
    pub job_id: JobId,
    /// The instance whose contacts it scans.
    pub instance_id: InstanceId,
    /// Where the job stands.
    pub status: JobStatus,
    /// The window's length, as requested.
    pub days: u32,
    /// Start of the window of first-seen times it scans.
    pub since: Timestamp,
    /// End of the window, fixed when the job was created.
    pub until: Timestamp,
    /// At most this many contacts are scanned.
    pub limit: Option<u64>,
    /// Contacts read so far.
    pub scanned: u64,
    /// Contacts a rule attributed so far.
    pub updated: u64,
    /// Contacts passed over because they already had an attribution.
    pub skipped_attributed: u64,
    /// The last page done (pages count from 1), and where the next one starts.
    pub pages_done: u64,
    /// The position after which the next page lists contacts; `None` once done.
    pub next_after: Option<String>,
    /// When the job was accepted.
    pub created_at: Timestamp,
    /// When its first page started.
    pub started_at: Option<Timestamp>,
    /// When it finished or failed.
    pub finished_at: Option<Timestamp>,
    /// Optimistic-concurrency version of the record, bumped on each write.
    pub version: u64,
}

impl BackfillJob {
    /// A job just accepted: queued over `window`, no progress yet, at version 1.
    pub fn queued(
        job_id: JobId,
        instance_id: InstanceId,
        days: u32,
        window: &ContactWindow,
        limit: Option<u64>,
        now: Timestamp,
    ) -> Self {
        Self {
            job_id,
            instance_id,
            status: JobStatus::Queued,
            days,
            since: window.since,
            until: window.until,
            limit,
            scanned: 0,
            updated: 0,
            skipped_attributed: 0,
            pages_done: 0,
            next_after: None,
            created_at: now,
            started_at: None,
            finished_at: None,
            version: 1,
        }
    }

    /// The window of first-seen times the job covers.
    pub fn window(&self) -> ContactWindow {
        ContactWindow {
            since: self.since,
            until: self.until,
        }
    }
}

/// The last `days` days, ending now.
pub fn window(now: Timestamp, days: u32) -> ContactWindow {
    ContactWindow {
        since: now.plus_seconds(-86_400 * i64::from(days)),
        until: now,
    }
}

/// How many contacts one rule would attribute, in a preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleTally {
    /// The rule's id.
    pub rule_id: String,
    /// The rule's name, for the admin.
    pub name: String,
    /// Contacts it would attribute.
    pub count: u64,
}

/// What a backfill would change, counted without writing anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Preview {
    /// Always `true`: nothing was written.
    pub dry_run: bool,
    /// Contacts read.
    pub scanned: u64,
    /// Unattributed contacts some rule matches.
    pub would_update: u64,
    /// `would_update` split by the rule that matches first.
    pub by_rule: Vec<RuleTally>,
}

/// What a run over `window` would update now: unattributed contacts a rule matches.
pub async fn preview(
    contacts: &dyn ContactStore,
    compiled: &CompiledRules,
    instance_id: &InstanceId,
    window: &ContactWindow,
    limit: Option<u64>,
) -> Result<Preview, StoreError> {
    let (mut scanned, mut by_rule) = (0u64, BTreeMap::<String, RuleTally>::new());
    let mut after: Option<String> = None;
    loop {
        let page = contacts
            .list_contacts(instance_id, window, after.as_deref(), PAGE_SIZE)
            .await?;
        for contact in &page.contacts {
            if limit.is_some_and(|limit| scanned >= limit) {
                return Ok(finish(scanned, by_rule));
            }
            scanned += 1;
            if contact.acquisition.is_some() {
                continue;
            }
            let text = contact.first_text();
            if let Some(rule) = compiled.first_match(&text) {
                by_rule
                    .entry(rule.id.to_string())
                    .or_insert_with(|| RuleTally {
                        rule_id: rule.id.to_string(),
                        name: rule.settings.name.clone(),
                        count: 0,
                    })
                    .count += 1;
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(finish(scanned, by_rule)),
        }
    }
}

fn finish(scanned: u64, by_rule: BTreeMap<String, RuleTally>) -> Preview {
    let by_rule: Vec<RuleTally> = by_rule.into_values().collect();
    Preview {
        dry_run: true,
        scanned,
        would_update: by_rule.iter().map(|tally| tally.count).sum(),
        by_rule,
    }
}

/// Why a run did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The job could not be stored: nothing was queued.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The first page could not be queued: the job is marked failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Starts a run over `window` of the instance's contacts: stores its job, queued, and puts its
/// first page on `queue`. When the queue refuses the page, the job is marked failed (on a
/// best-effort write: the caller hears of the queue's failure either way).
pub async fn start(
    jobs: &dyn JobStore,
    queue: &dyn JobQueue,
    instance_id: InstanceId,
    days: u32,
    window: &ContactWindow,
    limit: Option<u64>,
    now: Timestamp,
) -> Result<BackfillJob, StartError> {
    let job = BackfillJob::queued(JobId::new(), instance_id.clone(), days, window, limit, now);
    jobs.create_job(&job).await?;
    let first = QueueJob::BackfillPage(BackfillPage {
        instance_id,
        job_id: job.job_id.clone(),
        page: 1,
        after: None,
    });
    if let Err(error) = queue.enqueue(&first).await {
        let mut failed = job.clone();
        failed.status = JobStatus::Failed;
        failed.finished_at = Some(now);
        failed.version += 1;
        let _ = jobs.save_job(&failed, job.version).await;
        return Err(error.into());
    }
    Ok(job)
}

/// What a run did to one contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Updated,
    NoMatch,
    AlreadyAttributed,
}

/// What a run does to one contact now: a step already decided, or the write to make.
enum Decision {
    Done(Step),
    Write(Box<ContactUpdate>),
}

/// What a run does to `contact` now, by job `job_id`.
fn decision(
    contact: &Contact,
    compiled: &CompiledRules,
    job_id: &JobId,
    now: Timestamp,
) -> Decision {
    match &contact.acquisition {
        // Attributed by this very job on an earlier delivery of the page: still ours.
        Some(Acquisition::Rule(rule))
            if rule.backfill_job_id.as_deref() == Some(job_id.as_str()) =>
        {
            return Decision::Done(Step::Updated);
        }
        Some(_) => return Decision::Done(Step::AlreadyAttributed),
        None => {}
    }
    let text = contact.first_text();
    let Some(rule) = compiled.first_match(&text) else {
        return Decision::Done(Step::NoMatch);
    };
    let acquisition = Acquisition::Rule(RuleAttribution {
        backfill_job_id: Some(job_id.to_string()),
        ..RuleAttribution::of(rule, text.to_string(), now)
    });
    let mut after = contact.decided_by_rules(Some(acquisition), now);
    let mut counters = bumps_for(Some(contact), &after);
    counters.extend(crate::funnels::follow(&mut after));
    Decision::Write(Box::new(ContactUpdate {
        counters,
        contact: after,
        expected_version: contact.version,
    }))
}

/// Runs the pages of backfill runs, one delivery at a time.
pub(super) struct Pager<'a> {
    /// The contacts pages list and attribute.
    pub(super) contacts: &'a dyn ContactStore,
    /// Where each run's progress is kept.
    pub(super) jobs: &'a dyn JobStore,
    /// The rules a page applies, as they are when it runs.
    pub(super) rules: &'a RulesCache,
    /// Contacts per page.
    pub(super) page_size: usize,
}

impl Pager<'_> {
    /// One page of a backfill run; answers the page to queue next, if any. Redelivered pages
    /// change nothing (the job records the last page done); a page that fails is retried by the
    /// queue and redone from its start.
    pub(super) async fn run(
        &self,
        page: &BackfillPage,
        now: Timestamp,
    ) -> Result<Option<BackfillPage>, String> {
        let Some(mut job) = self
            .jobs
            .load_job(&page.instance_id, &page.job_id)
            .await
            .map_err(|e| e.to_string())?
        else {
            tracing::warn!(
                job_id = %page.job_id,
                "backfill page for an unknown job dropped"
            );
            return Ok(None);
        };
        if matches!(job.status, JobStatus::Done | JobStatus::Failed) || job.pages_done > page.page {
            return Ok(None);
        }
        if job.pages_done == page.page {
            // Done before, but queueing its successor may have failed: queue it again.
            return Ok(successor(&job));
        }
        let compiled = self
            .rules
            .get(&page.instance_id)
            .await
            .map_err(|e| e.to_string())?;
        let remaining = job.limit.map_or(usize::MAX, |limit| {
            limit.saturating_sub(job.scanned) as usize
        });
        let listed = self
            .contacts
            .list_contacts(
                &page.instance_id,
                &job.window(),
                page.after.as_deref(),
                self.page_size.min(remaining),
            )
            .await
            .map_err(|e| e.to_string())?;
        let version = job.version;
        job.scanned += listed.contacts.len() as u64;
        let steps = self
            .attribute(listed.contacts, &compiled, &job.job_id, now)
            .await
            .map_err(|e| e.to_string())?;
        for step in steps {
            match step {
                Step::Updated => job.updated += 1,
                Step::AlreadyAttributed => job.skipped_attributed += 1,
                Step::NoMatch => {}
            }
        }
        let limit_reached = job.limit.is_some_and(|limit| job.scanned >= limit);
        job.pages_done = page.page;
        job.next_after = listed.next.filter(|_| !limit_reached);
        job.started_at.get_or_insert(now);
        if job.next_after.is_none() {
            job.status = JobStatus::Done;
            job.finished_at = Some(now);
        } else {
            job.status = JobStatus::Running;
        }
        job.version += 1;
        match self
            .jobs
            .save_job(&job, version)
            .await
            .map_err(|e| e.to_string())?
        {
            CommitOutcome::Applied => Ok(successor(&job)),
            _ => Err("the backfill job changed under this page".to_owned()),
        }
    }

    /// Applies today's rules to a page of contacts: only to those still without acquisition (a
    /// conditional write), so a backfill racing live matching attributes and counts once. The
    /// writes go to the store as one batch; a contact that changed meanwhile is read again.
    async fn attribute(
        &self,
        contacts: Vec<Contact>,
        compiled: &CompiledRules,
        job_id: &JobId,
        now: Timestamp,
    ) -> Result<Vec<Step>, IngestError> {
        let mut steps = Vec::with_capacity(contacts.len());
        let mut writes = Vec::new();
        for (index, contact) in contacts.iter().enumerate() {
            match decision(contact, compiled, job_id, now) {
                Decision::Done(step) => steps.push(step),
                Decision::Write(update) => {
                    steps.push(Step::Updated);
                    writes.push((index, *update));
                }
            }
        }
        let updates: Vec<ContactUpdate> = writes.iter().map(|(_, update)| update.clone()).collect();
        let outcomes = self.contacts.update_contacts(&updates).await?;
        for ((index, update), outcome) in writes.iter().zip(outcomes) {
            if outcome == CommitOutcome::Applied {
                crate::metrics::counters_moved(&update.counters);
            } else {
                steps[*index] = self
                    .attribute_one(&contacts[*index], compiled, job_id, now)
                    .await?;
            }
        }
        Ok(steps)
    }

    /// One contact, reading it again after each conflict.
    async fn attribute_one(
        &self,
        stale: &Contact,
        compiled: &CompiledRules,
        job_id: &JobId,
        now: Timestamp,
    ) -> Result<Step, IngestError> {
        for _ in 0..MAX_ATTEMPTS {
            let Some(current) = self
                .contacts
                .load_contact(&stale.instance_id, &stale.contact_id)
                .await?
            else {
                return Ok(Step::NoMatch);
            };
            let update = match decision(&current, compiled, job_id, now) {
                Decision::Done(step) => return Ok(step),
                Decision::Write(update) => update,
            };
            if write_decision(self.contacts, &update).await? {
                return Ok(Step::Updated);
            }
        }
        Err(IngestError::Contention {
            attempts: MAX_ATTEMPTS,
        })
    }
}

/// The page that continues `job`, while it runs.
fn successor(job: &BackfillJob) -> Option<BackfillPage> {
    let after = job
        .next_after
        .clone()
        .filter(|_| job.status == JobStatus::Running)?;
    Some(BackfillPage {
        instance_id: job.instance_id.clone(),
        job_id: job.job_id.clone(),
        page: job.pages_done + 1,
        after: Some(after),
    })
}

/// Backfill jobs: their settings and progress.
#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Stores a new job.
    async fn create_job(&self, job: &BackfillJob) -> Result<(), StoreError>;

    /// One job of the instance, if there is one.
    async fn load_job(
        &self,
        instance_id: &InstanceId,
        job_id: &JobId,
    ) -> Result<Option<BackfillJob>, StoreError>;

    /// Writes `job` if the stored one is still at `expected_version`.
    async fn save_job(
        &self,
        job: &BackfillJob,
        expected_version: u64,
    ) -> Result<CommitOutcome, StoreError>;
}
