//! The rule store: each instance's rules, with a version that every write changes.

use crate::ids::InstanceId;
use crate::rules::{Rule, RuleId};
use crate::store::StoreError;
use async_trait::async_trait;

/// What a rule write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleWrite {
    /// Written.
    Done,
    /// No such rule: nothing was written.
    NotFound,
    /// The instance already has `MAX_RULES_PER_INSTANCE` rules: nothing was written.
    LimitReached,
}

/// Each instance's rules, with a version that every write changes, so warm queue workers know
/// when to recompile.
#[async_trait]
pub trait RuleStore: Send + Sync + 'static {
    /// Every rule of the instance, disabled ones included, in no particular order.
    async fn list_rules(&self, instance_id: &InstanceId) -> Result<Vec<Rule>, StoreError>;

    /// One rule, if the instance has it.
    async fn load_rule(
        &self,
        instance_id: &InstanceId,
        rule_id: &RuleId,
    ) -> Result<Option<Rule>, StoreError>;

    /// Adds a new rule unless the instance already holds `max_rules`.
    async fn create_rule(&self, rule: &Rule, max_rules: usize) -> Result<RuleWrite, StoreError>;

    /// Replaces an existing rule (same instance and id).
    async fn replace_rule(&self, rule: &Rule) -> Result<RuleWrite, StoreError>;

    /// Removes a rule, `NotFound` if there was none.
    async fn delete_rule(
        &self,
        instance_id: &InstanceId,
        rule_id: &RuleId,
    ) -> Result<RuleWrite, StoreError>;

    /// Changes whenever the instance's rules change; 0 for an instance without any.
    async fn rules_version(&self, instance_id: &InstanceId) -> Result<u64, StoreError>;
}
