//! Backfill: today's rules applied to recent contacts that have no attribution yet. A preview
//! counts what a run would change; a run travels as pages on the match queue, each continuing
//! from the previous one's position, with its progress in a job record.

use crate::contact::store::{ContactStore, ContactWindow};
use crate::ids::InstanceId;
use crate::rules::CompiledRules;
use crate::store::{CommitOutcome, StoreError};
use crate::time::Timestamp;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Days a backfill covers when the request names none.
pub const DEFAULT_DAYS: u32 = 7;
/// The widest window a backfill may cover, in days.
pub const MAX_DAYS: u32 = 90;
/// Contacts read per page, in a preview and per queued page of a run.
pub const PAGE_SIZE: usize = 500;

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
    pub job_id: String,
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
                        name: rule.name.clone(),
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

/// Backfill jobs: their settings and progress.
#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Stores a new job.
    async fn create_job(&self, job: &BackfillJob) -> Result<(), StoreError>;

    /// One job of the instance, if there is one.
    async fn load_job(
        &self,
        instance_id: &InstanceId,
        job_id: &str,
    ) -> Result<Option<BackfillJob>, StoreError>;

    /// Writes `job` if the stored one is still at `expected_version`.
    async fn save_job(
        &self,
        job: &BackfillJob,
        expected_version: u64,
    ) -> Result<CommitOutcome, StoreError>;
}
