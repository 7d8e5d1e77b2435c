//! Storage: what every store trait shares (errors, dedupe claims, commit outcomes), the
//! backends that implement the traits, one folder each, and the wrappers that forward them
//! (`Arc`, the fault injector). The traits themselves live next to
//! their domain types (`contact::store`, `rules::store`, `matching::backfill`,
//! `revenue::store`, `web::store`, `erasure`).

#[cfg(feature = "aws")]
pub mod dynamo;
mod embedded;
mod faults;
mod forwarding;

pub use embedded::EmbeddedStore;
pub use faults::{FaultInjectingStore, FaultMode, FaultPlan};

use crate::time::Timestamp;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or refused the call; the caller answers 5xx and the
    /// sender retries.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data that does not read back as the model (a bug or a manual edit).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Marks one inbound event as processed, for as long as its sender may retry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupeClaim {
    /// The event's dedupe key, scoped by instance.
    pub key: String,
    /// When the claim lapses, long after the sender stops retrying.
    pub expires_at: Timestamp,
    /// A claim found with `expires_at` before this instant is treated as gone.
    pub now: Timestamp,
}

/// What a conditional write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Written.
    Applied,
    /// The event was processed before: nothing was written.
    Duplicate,
    /// The contact changed since it was read: nothing was written; read again and retry.
    VersionConflict,
}
