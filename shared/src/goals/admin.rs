//! Goal writes as the admin API (and any page) makes them, each a change of the instance's goal
//! set under its version check, and the backfill that evaluates existing contacts.

use super::store::GoalStore;
use super::{Goal, GoalId, GoalSet, GoalSettings, MAX_GOALS_PER_INSTANCE, advance_goal};
use crate::contact::store::{ContactStore, ContactUpdate, ContactWindow};
use crate::fields::{FieldError, json_object, present, reject_unknown};
use crate::ids::InstanceId;
use crate::stats::StatsWindow;
use crate::store::{CommitOutcome, StoreError};
use crate::time::Timestamp;
use serde::Serialize;
use serde_json::Value;

/// Why a goal write or backfill did nothing.
#[derive(Debug, thiserror::Error)]
pub enum GoalError {
    /// A field that does not hold: nothing was written.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// No goal of that id on the instance.
    #[error("no such goal")]
    UnknownGoal,
    /// The store failed: nothing was written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Concurrent writers kept changing the instance's goals.
    #[error("the instance's goals kept changing")]
    Contention,
}

/// Attempts of one change against concurrent writers (admin writes are rare).
const ATTEMPTS: u32 = 8;

/// Applies `change` to the instance's goals and stores them under the version read, again
/// when another writer got there first. The set's bounds are checked on the result.
async fn change<T>(
    store: &dyn GoalStore,
    instance_id: &InstanceId,
    mut change: impl FnMut(&mut GoalSet) -> Result<T, GoalError>,
) -> Result<T, GoalError> {
    for _ in 0..ATTEMPTS {
        let mut goals = store.load_goals(instance_id).await?;
        let read = goals.version;
        let answer = change(&mut goals)?;
        if goals.goals.len() > MAX_GOALS_PER_INSTANCE {
            return Err(FieldError::new(
                "instance_id",
                format!("an instance holds at most {MAX_GOALS_PER_INSTANCE} goals"),
            )
            .into());
        }
        if goals
            .goals
            .iter()
            .filter(|g| g.settings.qualified_lead)
            .count()
            > 1
        {
            return Err(FieldError::new(
                "qualified_lead",
                "another goal of this instance is its qualified lead already",
            )
            .into());
        }
        goals.version = read + 1;
        match store.save_goals(instance_id, &goals, read).await? {
            CommitOutcome::Applied => return Ok(answer),
            CommitOutcome::VersionConflict | CommitOutcome::Duplicate => continue,
        }
    }
    Err(GoalError::Contention)
}

/// Adds a goal; answers it as stored.
pub async fn create(
    store: &dyn GoalStore,
    instance_id: &InstanceId,
    settings: GoalSettings,
    now: Timestamp,
) -> Result<Goal, GoalError> {
    let goal = Goal {
        id: GoalId::new(),
        settings,
        revision: 1,
        created_at: now,
        updated_at: now,
    };
    change(store, instance_id, |goals| {
        goals.goals.push(goal.clone());
        Ok(())
    })
    .await?;
    Ok(goal)
}

/// Replaces a goal's settings (keeping its id and creation time); a new revision, so progress
/// toward the old one starts over (goals achieved stay achieved).
pub async fn replace(
    store: &dyn GoalStore,
    instance_id: &InstanceId,
    goal_id: &GoalId,
    settings: GoalSettings,
    now: Timestamp,
) -> Result<Goal, GoalError> {
    change(store, instance_id, |goals| {
        let goal = goals
            .goals
            .iter_mut()
            .find(|goal| goal.id == *goal_id)
            .ok_or(GoalError::UnknownGoal)?;
        goal.settings = settings.clone();
        goal.revision += 1;
        goal.updated_at = now;
        Ok(goal.clone())
    })
    .await
}

/// Removes a goal (its counters stay, unread).
pub async fn delete(
    store: &dyn GoalStore,
    instance_id: &InstanceId,
    goal_id: &GoalId,
) -> Result<(), GoalError> {
    change(store, instance_id, |goals| {
        let before = goals.goals.len();
        goals.goals.retain(|goal| goal.id != *goal_id);
        if goals.goals.len() == before {
            return Err(GoalError::UnknownGoal);
        }
        Ok(())
    })
    .await
}

/// One goal of the instance.
pub async fn load(
    store: &dyn GoalStore,
    instance_id: &InstanceId,
    goal_id: &GoalId,
) -> Result<Goal, GoalError> {
    store
        .load_goals(instance_id)
        .await?
        .goal(goal_id)
        .cloned()
        .ok_or(GoalError::UnknownGoal)
}

/// Contacts one backfill call reads at most; a larger window answers `truncated` and is run
/// again (a re-run changes nothing it already did).
pub const BACKFILL_MAX_CONTACTS: usize = 10_000;
/// Contacts read and written per page.
const PAGE: usize = 100;

/// What a goal backfill found (a preview) or did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BackfillReport {
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Contacts first seen in the window that were read.
    pub scanned: u64,
    /// Contacts that achieve the goal now, from their stored events (a preview: would).
    pub achieved: u64,
    /// Contacts that had achieved it already.
    pub already_achieved: u64,
    /// Whether the window held more than one call reads.
    pub truncated: bool,
    /// When truncated: send the same request again with `"before"` set to this, to go on
    /// from there (every contact first seen at that instant was read by this call).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume_before: Option<Timestamp>,
}

/// What a backfill call asks for.
#[derive(Debug, Clone)]
pub struct BackfillRequest {
    /// Preview only.
    pub dry_run: bool,
    /// The days whose first-seen contacts are evaluated.
    pub window: StatsWindow,
    /// Only contacts first seen before this instant (a truncated call's `resume_before`).
    pub before: Option<Timestamp>,
    /// Contacts this call reads at most (1 to `BACKFILL_MAX_CONTACTS`).
    pub limit: usize,
}

/// A backfill request: `{"dry_run": bool, "days"?: 1–90, "before"?: RFC 3339}`.
pub fn backfill_request(body: &[u8], now: Timestamp) -> Result<BackfillRequest, FieldError> {
    let object = json_object(body)?;
    reject_unknown(&object, "", &["dry_run", "days", "before", "limit"], &[])?;
    let limit = match present(&object, "limit") {
        None => BACKFILL_MAX_CONTACTS,
        Some(value) => value
            .as_u64()
            .filter(|limit| (1..=BACKFILL_MAX_CONTACTS as u64).contains(limit))
            .ok_or_else(|| {
                FieldError::new(
                    "limit",
                    format!("must be a whole number from 1 to {BACKFILL_MAX_CONTACTS}"),
                )
            })? as usize,
    };
    let before = match present(&object, "before") {
        None => None,
        Some(Value::String(text)) => Some(Timestamp::parse_rfc3339(text).ok_or_else(|| {
            FieldError::new("before", "must be an RFC 3339 time (a resume_before)")
        })?),
        Some(_) => return Err(FieldError::new("before", "must be an RFC 3339 time")),
    };
    let dry_run = match present(&object, "dry_run") {
        None => true,
        Some(Value::Bool(flag)) => *flag,
        Some(_) => return Err(FieldError::new("dry_run", "must be true or false")),
    };
    let days = match present(&object, "days") {
        None => None,
        Some(Value::Number(days)) => Some(days.to_string()),
        Some(_) => return Err(FieldError::new("days", "must be a number")),
    };
    let window = StatsWindow::ending(now, days.as_deref())
        .map_err(|error| FieldError::new("days", error.to_string()))?;
    Ok(BackfillRequest {
        dry_run,
        window,
        before,
        limit,
    })
}

/// Evaluates `goal` on the contacts first seen in `window` from their stored events; unless
/// `dry_run`, writes each achievement with its counters (conditioned on the contact's version:
/// a contact that moved meanwhile is left to the next run or its next event). A contact counts
/// once whichever of the live events and backfills gets there first.
pub async fn backfill(
    contacts: &dyn ContactStore,
    goal: &Goal,
    instance_id: &InstanceId,
    request: &BackfillRequest,
) -> Result<BackfillReport, GoalError> {
    let dry_run = request.dry_run;
    let mut report = BackfillReport {
        dry_run,
        ..BackfillReport::default()
    };
    let end = request.window.until.plus_seconds(1);
    let listing = ContactWindow {
        since: request.window.since,
        until: request.before.map_or(end, |before| before.min(end)),
    };
    let mut last_seen: Option<Timestamp> = None;
    // Past the limit, the contacts first seen at the same instant as the last one read are
    // still read, so that resuming strictly before that instant skips none and repeats none.
    let mut finishing = false;
    let mut after: Option<String> = None;
    loop {
        let room = if finishing {
            PAGE
        } else {
            request.limit - report.scanned as usize
        };
        let page = contacts
            .list_contacts(instance_id, &listing, after.as_deref(), PAGE.min(room))
            .await?;
        let mut updates = Vec::new();
        let mut stopped = false;
        for contact in &page.contacts {
            if finishing && last_seen != Some(contact.first_seen_at) {
                stopped = true;
                break;
            }
            report.scanned += 1;
            last_seen = Some(contact.first_seen_at);
            let achieved = |c: &crate::contact::Contact| {
                c.goals
                    .get(&goal.id)
                    .is_some_and(|progress| progress.achieved.is_some())
            };
            if achieved(contact) {
                report.already_achieved += 1;
                continue;
            }
            let mut after = contact.clone();
            let counters = advance_goal(&mut after, goal, &contact.events.kept);
            if counters.is_empty() {
                continue;
            }
            after.version += 1;
            updates.push(ContactUpdate {
                contact: after,
                expected_version: contact.version,
                counters,
            });
        }
        if dry_run {
            report.achieved += updates.len() as u64;
        } else if !updates.is_empty() {
            let outcomes = contacts.update_contacts(&updates).await?;
            report.achieved += outcomes
                .iter()
                .filter(|outcome| **outcome == CommitOutcome::Applied)
                .count() as u64;
        }
        if stopped {
            report.truncated = true;
            report.resume_before = last_seen;
            return Ok(report);
        }
        match page.next {
            None => return Ok(report),
            next => {
                finishing = report.scanned as usize >= request.limit;
                after = next;
            }
        }
    }
}
