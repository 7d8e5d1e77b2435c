//! Matching: the text rules (and the web widget's ref codes) applied to contacts' first
//! messages, live for each new contact and in backfill runs over recent ones, by the queue
//! worker that runs the match queue's jobs.

pub mod backfill;
mod first_message;
mod rules_cache;
mod worker;

pub use first_message::MatchOutcome;
pub use worker::QueueWorker;

use crate::contact::store::{ContactStore, ContactUpdate};
use crate::store::{CommitOutcome, StoreError};

/// Makes a rules decision's write if the contact is still at the version it was decided on,
/// with its counters in the same write; `false` when another writer got there first and the
/// contact must be read and decided again.
async fn write_decision(
    contacts: &dyn ContactStore,
    update: &ContactUpdate,
) -> Result<bool, StoreError> {
    match contacts
        .update_contact(&update.contact, update.expected_version, &update.counters)
        .await?
    {
        CommitOutcome::Applied => {
            crate::metrics::counters_moved(&update.counters);
            Ok(true)
        }
        CommitOutcome::VersionConflict | CommitOutcome::Duplicate => Ok(false),
    }
}
