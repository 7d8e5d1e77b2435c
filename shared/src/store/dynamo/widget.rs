//! DynamoDB implementation of [`WidgetStore`].
//!
//! Tables: widgets keyed by `instance_id`; ref codes keyed by `code`, with DynamoDB TTL on
//! `expires_at_epoch` (unix seconds) so expired codes go away by themselves (reads check the
//! expiry too: TTL deletion lags).

use crate::ids::InstanceId;
use crate::store::StoreError;
use crate::store::dynamo::{
    TableSpec, conditional_put, create_table, from_item, number, string, to_item, unavailable,
};
use crate::web::store::WidgetStore;
use crate::web::{RefCode, WidgetConfig};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;

const TTL_ATTRIBUTE: &str = "expires_at_epoch";

/// The DynamoDB tables of the widget store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WidgetTables {
    /// Widget configurations, one per instance (`WIDGETS_TABLE`).
    pub widgets: String,
    /// Ref codes waiting for their WhatsApp message (`REF_CODES_TABLE`).
    pub refs: String,
}

impl WidgetTables {
    /// Reads `WIDGETS_TABLE` and `REF_CODES_TABLE`.
    pub fn from_env() -> Result<Self, crate::config::ConfigError> {
        Ok(Self {
            widgets: crate::config::required("WIDGETS_TABLE")?,
            refs: crate::config::required("REF_CODES_TABLE")?,
        })
    }

    /// Names with a common prefix, for test runs sharing one DynamoDB Local.
    pub fn prefixed(prefix: &str) -> Self {
        Self {
            widgets: format!("{prefix}-widgets"),
            refs: format!("{prefix}-refs"),
        }
    }
}

/// The widget store on DynamoDB.
#[derive(Clone)]
pub struct DynamoWidgetStore {
    client: Client,
    tables: WidgetTables,
}

impl DynamoWidgetStore {
    /// A store over `tables` through `client`.
    pub fn new(client: Client, tables: WidgetTables) -> Self {
        Self { client, tables }
    }

    /// A store over the tables the environment names.
    pub fn from_env(client: &Client) -> Result<Self, crate::config::ConfigError> {
        Ok(Self::new(client.clone(), WidgetTables::from_env()?))
    }

    /// Creates the tables as `template.yaml` declares them; for tests and local emulators.
    pub async fn create_tables(&self) -> Result<(), StoreError> {
        create_table(
            &self.client,
            &TableSpec::keyed(&self.tables.widgets, "instance_id", None),
        )
        .await?;
        create_table(
            &self.client,
            &TableSpec::keyed(&self.tables.refs, "code", None).with_ttl(TTL_ATTRIBUTE),
        )
        .await
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

    async fn load_widget(
        &self,
        instance_id: &InstanceId,
    ) -> Result<Option<WidgetConfig>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.widgets)
            .key("instance_id", string(instance_id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output.item.map(from_item).transpose()
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
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.refs)
            .key("code", string(code))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output
            .item
            .map(|mut item| {
                item.remove(TTL_ATTRIBUTE);
                from_item(item)
            })
            .transpose()
    }
}
