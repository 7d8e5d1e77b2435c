//! The widget store in the embedded store: widget configurations and ref codes.

use crate::ids::InstanceId;
use crate::store::StoreError;
use crate::store::embedded::{
    EmbeddedStore, REF_CODES, WIDGETS, decode, encode, put_record, unavailable,
};
use crate::web::store::WidgetStore;
use crate::web::{RefCode, WidgetConfig};
use async_trait::async_trait;
use redb::ReadableTable;

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

    async fn replace_widget(
        &self,
        config: &WidgetConfig,
        expected_key: &str,
    ) -> Result<bool, StoreError> {
        let config = config.clone();
        let expected_key = expected_key.to_owned();
        self.write(move |txn| {
            let mut widgets = txn.open_table(WIDGETS).map_err(unavailable)?;
            let current: Option<WidgetConfig> = match widgets
                .get(config.instance_id.as_str())
                .map_err(unavailable)?
            {
                Some(bytes) => Some(decode(bytes.value())?),
                None => None,
            };
            if current.is_none_or(|current| current.widget_key != expected_key) {
                return Ok((false, false));
            }
            widgets
                .insert(config.instance_id.as_str(), encode(&config)?.as_slice())
                .map_err(unavailable)?;
            Ok((true, true))
        })
        .await
    }

    async fn load_widget(
        &self,
        instance_id: &InstanceId,
    ) -> Result<Option<WidgetConfig>, StoreError> {
        self.load(WIDGETS, instance_id.as_str())
    }

    async fn create_ref(&self, code: &RefCode) -> Result<bool, StoreError> {
        let code = code.clone();
        self.write(move |txn| {
            let created = put_record(txn, REF_CODES, code.code.as_str(), &code, false)?;
            Ok((created, created))
        })
        .await
    }

    async fn load_ref(&self, code: &str) -> Result<Option<RefCode>, StoreError> {
        self.load(REF_CODES, code)
    }
}
