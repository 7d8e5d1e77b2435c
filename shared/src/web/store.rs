//! The web widget's store: each instance's widget key and allowed origins, and the ref codes
//! that carry a web visit into WhatsApp (looked up by code, expiring after 30 days).

use crate::ids::InstanceId;
use crate::store::StoreError;
use crate::web::{RefCode, WidgetConfig};
use async_trait::async_trait;

/// Widget configurations and the ref codes that carry web visits into WhatsApp.
#[async_trait]
pub trait WidgetStore: Send + Sync + 'static {
    /// Stores the instance's widget configuration, replacing (rotating) any earlier one.
    async fn save_widget(&self, config: &WidgetConfig) -> Result<(), StoreError>;

    /// Replaces the instance's widget configuration only while its key is still
    /// `expected_key`; `false` (nothing written) when it is gone or was rotated meanwhile, so
    /// an edit never brings back a key a rotation revoked.
    async fn replace_widget(
        &self,
        config: &WidgetConfig,
        expected_key: &str,
    ) -> Result<bool, StoreError>;

    /// The instance's widget configuration, if it has one.
    async fn load_widget(
        &self,
        instance_id: &InstanceId,
    ) -> Result<Option<WidgetConfig>, StoreError>;

    /// Stores a new ref code; `false` if the code is taken (nothing written).
    async fn create_ref(&self, code: &RefCode) -> Result<bool, StoreError>;

    /// The code as stored, expired or not (the caller checks), or `None`.
    async fn load_ref(&self, code: &str) -> Result<Option<RefCode>, StoreError>;
}
