//! The embedded store: one redb file that survives restarts, for the local server and fast
//! tests. redb is pure Rust (no C toolchain needed), crash-safe with copy-on-write B-trees,
//! and its serialisable write transactions give the same all-or-nothing commit as a DynamoDB
//! transaction.

use super::{CommitOutcome, ContactStore, DedupeClaim, StoreError};
use crate::ids::{ContactId, InstanceId};
use crate::model::Contact;
use async_trait::async_trait;
use redb::{Database, ReadableTable, TableDefinition};
use std::path::Path;
use std::sync::Arc;

const CONTACTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("contacts");
/// Dedupe key → expiry (unix seconds).
const DEDUPE: TableDefinition<&str, i64> = TableDefinition::new("dedupe");

#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

impl EmbeddedStore {
    /// Opens (or creates) the store file at `path`, creating its folder if needed.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(unavailable)?;
        }
        let db = Database::create(path).map_err(unavailable)?;
        let txn = db.begin_write().map_err(unavailable)?;
        txn.open_table(CONTACTS).map_err(unavailable)?;
        txn.open_table(DEDUPE).map_err(unavailable)?;
        txn.commit().map_err(unavailable)?;
        Ok(Self { db: Arc::new(db) })
    }

    fn commit_blocking(
        &self,
        claim: &DedupeClaim,
        contact: &Contact,
        expected_version: Option<u64>,
    ) -> Result<CommitOutcome, StoreError> {
        let encoded =
            serde_json::to_vec(contact).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let txn = self.db.begin_write().map_err(unavailable)?;
        {
            let mut dedupe = txn.open_table(DEDUPE).map_err(unavailable)?;
            let held = dedupe
                .get(claim.key.as_str())
                .map_err(unavailable)?
                .is_some_and(|expiry| expiry.value() >= claim.now.unix_seconds());
            if held {
                return Ok(CommitOutcome::Duplicate);
            }
            let mut contacts = txn.open_table(CONTACTS).map_err(unavailable)?;
            let key = (contact.instance_id.as_str(), contact.contact_id.as_str());
            let stored_version = match contacts.get(key).map_err(unavailable)? {
                Some(bytes) => Some(decode(bytes.value())?.version),
                None => None,
            };
            if stored_version != expected_version {
                return Ok(CommitOutcome::VersionConflict);
            }
            dedupe
                .insert(claim.key.as_str(), claim.expires_at.unix_seconds())
                .map_err(unavailable)?;
            contacts
                .insert(key, encoded.as_slice())
                .map_err(unavailable)?;
        }
        txn.commit().map_err(unavailable)?;
        Ok(CommitOutcome::Applied)
    }
}

fn decode(bytes: &[u8]) -> Result<Contact, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[async_trait]
impl ContactStore for EmbeddedStore {
    async fn load_contact(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
    ) -> Result<Option<Contact>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let contacts = txn.open_table(CONTACTS).map_err(unavailable)?;
        let found = contacts
            .get((instance_id.as_str(), contact_id.as_str()))
            .map_err(unavailable)?;
        found.map(|bytes| decode(bytes.value())).transpose()
    }

    async fn commit_event(
        &self,
        claim: &DedupeClaim,
        contact: &Contact,
        expected_version: Option<u64>,
    ) -> Result<CommitOutcome, StoreError> {
        let store = self.clone();
        let claim = claim.clone();
        let contact = contact.clone();
        // A commit waits for fsync: keep it off the async worker threads.
        tokio::task::spawn_blocking(move || {
            store.commit_blocking(&claim, &contact, expected_version)
        })
        .await
        .map_err(unavailable)?
    }
}
