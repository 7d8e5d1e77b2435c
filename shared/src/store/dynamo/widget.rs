//! DynamoDB implementation of [`WidgetStore`].
//!
//! Tables: widgets keyed by `instance_id`; ref codes keyed by `code`, with DynamoDB TTL on
//! `expires_at_epoch` (unix seconds) so expired codes go away by themselves (reads check the
//! expiry too: TTL deletion lags).

use crate::ids::InstanceId;
use crate::store::StoreError;
use crate::store::dynamo::Client;
use crate::store::dynamo::toolkit::{
    TableSpec, conditional_put, create_tables, from_item, get_item, key, number, store_over,
    string, table_names, to_item, unavailable,
};
use crate::web::store::WidgetStore;
use crate::web::{RefCode, WidgetConfig};
use async_trait::async_trait;

const TTL_ATTRIBUTE: &str = "expires_at_epoch";

table_names!(
    /// The DynamoDB tables of the widget store.
    WidgetTables {
        /// Widget configurations, one per instance (`WIDGETS_TABLE`).
        widgets: "WIDGETS_TABLE",
        /// Ref codes waiting for their WhatsApp message (`REF_CODES_TABLE`).
        refs: "REF_CODES_TABLE",
    }
);

store_over!(
    /// The widget store on DynamoDB.
    DynamoWidgetStore,
    WidgetTables
);

impl DynamoWidgetStore {
    /// Creates the tables as `template.yaml` declares them; for tests and local emulators.
    pub async fn create_tables(&self) -> Result<(), StoreError> {
        let tables = [
            TableSpec::keyed(&self.tables.widgets, "instance_id", None),
            TableSpec::keyed(&self.tables.refs, "code", None).with_ttl(TTL_ATTRIBUTE),
        ];
        create_tables(&self.client, &tables).await
    }
}

#[async_trait]
impl WidgetStore for DynamoWidgetStore {
    async fn save_widget(&self, config: &WidgetConfig) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.tables.widgets)
            .set_item(Some(to_item(config)?))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn replace_widget(
        &self,
        config: &WidgetConfig,
        expected_key: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.widgets)
            .set_item(Some(to_item(config)?))
            .condition_expression("widget_key = :expected")
            .expression_attribute_values(":expected", string(expected_key))
            .send()
            .await;
        conditional_put(result)
    }

    async fn load_widget(
        &self,
        instance_id: &InstanceId,
    ) -> Result<Option<WidgetConfig>, StoreError> {
        let key = key(&[("instance_id", instance_id.as_str())]);
        let found = get_item(&self.client, &self.tables.widgets, key).await?;
        found.map(from_item).transpose()
    }

    async fn create_ref(&self, code: &RefCode) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.refs)
            .set_item(Some(to_item(code)?))
            .item(TTL_ATTRIBUTE, number(code.expires_at.unix_seconds()))
            .condition_expression("attribute_not_exists(code)")
            .send()
            .await;
        conditional_put(result)
    }

    async fn load_ref(&self, code: &str) -> Result<Option<RefCode>, StoreError> {
        let found = get_item(&self.client, &self.tables.refs, key(&[("code", code)])).await?;
        found
            .map(|mut item| {
                item.remove(TTL_ATTRIBUTE);
                from_item(item)
            })
            .transpose()
    }
}
