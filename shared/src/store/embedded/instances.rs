//! The instance registry in the embedded store: one key per instance, written in the
//! transaction that creates its first contact or rule.

use crate::ids::InstanceId;
use crate::instances::InstanceStore;
use crate::store::StoreError;
use crate::store::embedded::{CONTACTS, EmbeddedStore, INSTANCES, RULE_META, unavailable};
use async_trait::async_trait;
use redb::{ReadableTable, WriteTransaction};

/// Registers `instance` in `txn` (a no-op when it is registered already).
pub(super) fn register(txn: &WriteTransaction, instance: &str) -> Result<(), StoreError> {
    let mut instances = txn.open_table(INSTANCES).map_err(unavailable)?;
    if instances.get(instance).map_err(unavailable)?.is_none() {
        instances.insert(instance, ()).map_err(unavailable)?;
    }
    Ok(())
}

/// Registers every instance a file written before the registry holds: one pass over the
/// contacts (skipping from one instance to the next) and the rules' per-instance items.
pub(super) fn register_existing(txn: &WriteTransaction) -> Result<(), StoreError> {
    let mut found = Vec::new();
    {
        let contacts = txn.open_table(CONTACTS).map_err(unavailable)?;
        // The least instance id above the last one found: that id with a NUL appended.
        let mut from = String::new();
        loop {
            let next = contacts
                .range((from.as_str(), "")..)
                .map_err(unavailable)?
                .next()
                .transpose()
                .map_err(unavailable)?;
            let Some((key, _)) = next else { break };
            let instance = key.value().0.to_owned();
            from = format!("{instance}\0");
            found.push(instance);
        }
        let meta = txn.open_table(RULE_META).map_err(unavailable)?;
        for entry in meta.iter().map_err(unavailable)? {
            let (key, _) = entry.map_err(unavailable)?;
            found.push(key.value().to_owned());
        }
    }
    for instance in found {
        register(txn, &instance)?;
    }
    Ok(())
}

#[async_trait]
impl InstanceStore for EmbeddedStore {
    async fn list_instances(&self, limit: usize) -> Result<Vec<InstanceId>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let table = txn.open_table(INSTANCES).map_err(unavailable)?;
        let mut instances = Vec::new();
        for entry in table.iter().map_err(unavailable)?.take(limit) {
            let (key, _) = entry.map_err(unavailable)?;
            let instance = InstanceId::parse(key.value())
                .map_err(|error| StoreError::Corrupt(error.to_string()))?;
            instances.push(instance);
        }
        Ok(instances)
    }
}
