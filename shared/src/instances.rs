//! The instances the engine knows, for the dashboard's instance list: every instance with a
//! committed contact event or a rule. Each store registers an instance with the write that
//! commits something of it (inside the same transaction), so the list is one small read, never
//! a scan of contacts or rules.

use crate::ids::InstanceId;
use crate::store::StoreError;
use async_trait::async_trait;

/// Most instances one list holds: far more than a deployment serves (each is a business
/// number, Page or Instagram account of the deployment's own), few enough for one selector.
pub const MAX_LISTED: usize = 1000;

/// The registry of instances.
#[async_trait]
pub trait InstanceStore: Send + Sync + 'static {
    /// Up to `limit` instances with a committed contact event or a rule, in id order.
    async fn list_instances(&self, limit: usize) -> Result<Vec<InstanceId>, StoreError>;
}
