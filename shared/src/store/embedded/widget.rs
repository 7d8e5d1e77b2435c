//! The widget side of the embedded store.

use crate::ids::InstanceId;
use crate::store::StoreError;
use crate::store::embedded::{EmbeddedStore, decode, encode, unavailable};
use crate::web::store::WidgetStore;
use crate::web::{RefCode, WidgetConfig};
use async_trait::async_trait;
use redb::{ReadableTable, TableDefinition, WriteTransaction};

/// Instance → widget configuration.
pub(super) const WIDGETS: TableDefinition<&str, &[u8]> = TableDefinition::new("widgets");
/// Code → ref code.
pub(super) const REF_CODES: TableDefinition<&str, &[u8]> = TableDefinition::new("ref_codes");

pub(super) fn create_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(WIDGETS).map_err(unavailable)?;
    txn.open_table(REF_CODES).map_err(unavailable)?;
    Ok(())
}

impl EmbeddedStore {
    fn read_widget_table<T: serde::de::DeserializeOwned>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let table = txn.open_table(table).map_err(unavailable)?;
        let found = table.get(key).map_err(unavailable)?;
        found.map(|bytes| decode(bytes.value())).transpose()
    }
}

#[async_trait]
impl WidgetStore for EmbeddedStore {
    async fn save_widget(&self, config: &WidgetConfig) -> Result<(), StoreError> {
        let config = config.clone();
        self.write(move |txn| {
            let mut widgets = txn.open_table(WIDGETS).map_err(unavailable)?;
            widgets
                .insert(config.instance_id.as_str(), encode(&config)?.as_slice())
                .map_err(unavailable)?;
            Ok(((), true))
        })
        .await
    }

    async fn load_widget(
        &self,
        instance_id: &InstanceId,
    ) -> Result<Option<WidgetConfig>, StoreError> {
        self.read_widget_table(WIDGETS, instance_id.as_str())
    }

    async fn create_ref(&self, code: &RefCode) -> Result<bool, StoreError> {
        let code = code.clone();
        self.write(move |txn| {
            let mut codes = txn.open_table(REF_CODES).map_err(unavailable)?;
            if codes
                .get(code.code.as_str())
                .map_err(unavailable)?
                .is_some()
            {
                return Ok((false, false));
            }
            codes
                .insert(code.code.as_str(), encode(&code)?.as_slice())
                .map_err(unavailable)?;
            Ok((true, true))
        })
        .await
    }

    async fn load_ref(&self, code: &str) -> Result<Option<RefCode>, StoreError> {
        self.read_widget_table(REF_CODES, code)
    }
}
