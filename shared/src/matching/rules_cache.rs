//! Each instance's compiled rules, kept warm between jobs.

use crate::ids::InstanceId;
use crate::rules::CompiledRules;
use crate::rules::store::RuleStore;
use crate::store::StoreError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Compiled rules per instance, with the rules version they were compiled from.
pub(super) struct RulesCache {
    rules: Arc<dyn RuleStore>,
    compiled: Mutex<HashMap<InstanceId, (u64, Arc<CompiledRules>)>>,
}

impl RulesCache {
    /// An empty cache over `rules`.
    pub(super) fn new(rules: Arc<dyn RuleStore>) -> Self {
        Self {
            rules,
            compiled: Mutex::new(HashMap::new()),
        }
    }

    /// The instance's enabled rules, compiled; recompiled only when the rules version moved,
    /// so a rule change applies to the next contact.
    pub(super) async fn get(
        &self,
        instance_id: &InstanceId,
    ) -> Result<Arc<CompiledRules>, StoreError> {
        let version = self.rules.rules_version(instance_id).await?;
        if let Some((cached_version, compiled)) =
            self.compiled.lock().expect("cache lock").get(instance_id)
        {
            if *cached_version == version {
                return Ok(compiled.clone());
            }
        }
        let rules = self.rules.list_rules(instance_id).await?;
        let compiled = Arc::new(CompiledRules::compile(&rules));
        for skipped in compiled.skipped() {
            tracing::warn!(instance_id = %instance_id, ?skipped, "stored rule skipped");
        }
        self.compiled
            .lock()
            .expect("cache lock")
            .insert(instance_id.clone(), (version, compiled.clone()));
        Ok(compiled)
    }
}
