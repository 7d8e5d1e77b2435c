//! Storage, as narrow traits shaped after the access patterns, and their implementations.

#[cfg(feature = "aws")]
pub mod dynamo;
mod embedded;
mod faults;

pub use embedded::EmbeddedStore;
pub use faults::{FaultInjectingStore, FaultPlan};

use crate::ids::{ContactId, InstanceId};
use crate::model::Contact;
use crate::time::Timestamp;
use async_trait::async_trait;

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
    pub key: String,
    pub expires_at: Timestamp,
    /// A claim found with `expires_at` before this instant is treated as gone.
    pub now: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    Applied,
    /// The event was processed before: nothing was written.
    Duplicate,
    /// The contact changed since it was read: nothing was written; read again and retry.
    VersionConflict,
}

/// Contacts, as the webhook reads and writes them.
#[async_trait]
pub trait ContactStore: Send + Sync + 'static {
    async fn load_contact(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
    ) -> Result<Option<Contact>, StoreError>;

    /// Atomically claims `claim` and writes `contact`, provided the claim is not held and the
    /// stored contact is still at `expected_version` (`None`: it must not exist yet).
    async fn commit_event(
        &self,
        claim: &DedupeClaim,
        contact: &Contact,
        expected_version: Option<u64>,
    ) -> Result<CommitOutcome, StoreError>;
}

/// Lets wrappers (such as the fault injector) hold a shared, type-erased store.
#[async_trait]
impl<S: ContactStore + ?Sized> ContactStore for std::sync::Arc<S> {
    async fn load_contact(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
    ) -> Result<Option<Contact>, StoreError> {
        (**self).load_contact(instance_id, contact_id).await
    }

    async fn commit_event(
        &self,
        claim: &DedupeClaim,
        contact: &Contact,
        expected_version: Option<u64>,
    ) -> Result<CommitOutcome, StoreError> {
        (**self)
            .commit_event(claim, contact, expected_version)
            .await
    }
}
