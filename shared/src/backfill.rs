//! Backfill: today's rules applied to recent contacts that have no attribution yet. A preview
//! counts what a run would change; a run travels as pages on the match queue, each continuing
//! from the previous one's position, with its progress in a job record.

use crate::ids::InstanceId;
use crate::rules::CompiledRules;
use crate::store::{ContactStore, ContactWindow, StoreError};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const DEFAULT_DAYS: u32 = 7;
pub const MAX_DAYS: u32 = 90;
/// Contacts read per page, in a preview and per queued page of a run.
pub const PAGE_SIZE: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillJob {
    pub job_id: String,
    pub instance_id: InstanceId,
    pub status: JobStatus,
    pub days: u32,
    pub since: Timestamp,
    pub until: Timestamp,
    /// At most this many contacts are scanned.
    pub limit: Option<u64>,
    pub scanned: u64,
    pub updated: u64,
    pub skipped_attributed: u64,
    /// The last page done (pages count from 1), and where the next one starts.
    pub pages_done: u64,
    pub next_after: Option<String>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub version: u64,
}

impl BackfillJob {
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleTally {
    pub rule_id: String,
    pub name: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Preview {
    pub dry_run: bool,
    pub scanned: u64,
    pub would_update: u64,
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
