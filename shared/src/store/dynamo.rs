//! DynamoDB implementation of the store traits.
//!
//! Tables (declared in `template.yaml`):
//! - contacts: `instance_id` (hash) + `contact_id` (range), one item per contact, with a
//!   `version` number for optimistic concurrency;
//! - dedupe: `dedupe_key` (hash) with TTL on `expires_at` (unix seconds).

use super::{CommitOutcome, ContactStore, DedupeClaim, StoreError};
use crate::ids::{ContactId, InstanceId};
use crate::model::Contact;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put,
    ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem,
};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    pub contacts: String,
    pub dedupe: String,
}

impl TableNames {
    /// Reads `CONTACTS_TABLE` and `DEDUPE_TABLE`.
    pub fn from_env() -> Result<Self, crate::config::ConfigError> {
        Ok(Self {
            contacts: crate::config::required("CONTACTS_TABLE")?,
            dedupe: crate::config::required("DEDUPE_TABLE")?,
        })
    }

    /// Names with a common prefix, for test runs sharing one DynamoDB Local.
    pub fn prefixed(prefix: &str) -> Self {
        Self {
            contacts: format!("{prefix}-contacts"),
            dedupe: format!("{prefix}-dedupe"),
        }
    }
}

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    tables: TableNames,
}

fn unavailable<E>(error: E) -> StoreError
where
    E: std::error::Error + 'static,
{
    StoreError::Unavailable(DisplayErrorContext(&error).to_string())
}

fn string(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn number(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl DynamoStore {
    pub fn new(client: Client, tables: TableNames) -> Self {
        Self { client, tables }
    }

    /// For Lambda: region and credentials from the environment as the SDK reads them
    /// (`AWS_ENDPOINT_URL` too), table names from `CONTACTS_TABLE` and `DEDUPE_TABLE`.
    pub async fn from_env() -> Result<Self, crate::config::ConfigError> {
        let tables = TableNames::from_env()?;
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        Ok(Self::new(Client::new(&config), tables))
    }

    /// Creates the tables as `template.yaml` declares them; for tests and local emulators.
    pub async fn create_tables(&self) -> Result<(), StoreError> {
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(unavailable)
        };
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(unavailable)
        };
        self.client
            .create_table()
            .table_name(&self.tables.contacts)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("instance_id", KeyType::Hash)?)
            .key_schema(key("contact_id", KeyType::Range)?)
            .attribute_definitions(attribute("instance_id")?)
            .attribute_definitions(attribute("contact_id")?)
            .send()
            .await
            .map_err(unavailable)?;
        self.client
            .create_table()
            .table_name(&self.tables.dedupe)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("dedupe_key", KeyType::Hash)?)
            .attribute_definitions(attribute("dedupe_key")?)
            .send()
            .await
            .map_err(unavailable)?;
        self.client
            .update_time_to_live()
            .table_name(&self.tables.dedupe)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name("expires_at")
                    .build()
                    .map_err(unavailable)?,
            )
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    fn dedupe_put(&self, claim: &DedupeClaim) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.tables.dedupe)
            .item("dedupe_key", string(&claim.key))
            .item("expires_at", number(claim.expires_at.unix_seconds()))
            // TTL deletion lags by up to two days; an expired claim counts as gone.
            .condition_expression("attribute_not_exists(dedupe_key) OR expires_at < :now")
            .expression_attribute_values(":now", number(claim.now.unix_seconds()))
            .build()
            .map_err(unavailable)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn contact_put(
        &self,
        contact: &Contact,
        expected_version: Option<u64>,
    ) -> Result<TransactWriteItem, StoreError> {
        let item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(contact).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let put = Put::builder()
            .table_name(&self.tables.contacts)
            .set_item(Some(item));
        let put = match expected_version {
            None => put.condition_expression("attribute_not_exists(contact_id)"),
            Some(version) => put
                .condition_expression("#version = :expected")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expected", number(version)),
        };
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(unavailable)?)
            .build())
    }
}

#[async_trait]
impl ContactStore for DynamoStore {
    async fn load_contact(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
    ) -> Result<Option<Contact>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.contacts)
            .key("instance_id", string(instance_id.as_str()))
            .key("contact_id", string(contact_id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output
            .item
            .map(|item| {
                serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .transpose()
    }

    async fn commit_event(
        &self,
        claim: &DedupeClaim,
        contact: &Contact,
        expected_version: Option<u64>,
    ) -> Result<CommitOutcome, StoreError> {
        let result = self
            .client
            .transact_write_items()
            .transact_items(self.dedupe_put(claim)?)
            .transact_items(self.contact_put(contact, expected_version)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(CommitOutcome::Applied),
            Err(SdkError::ServiceError(service)) => match service.err() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                    let code = |index: usize| {
                        cancelled
                            .cancellation_reasons()
                            .get(index)
                            .and_then(|reason| reason.code())
                    };
                    match (code(0), code(1)) {
                        (Some("ConditionalCheckFailed"), _) => Ok(CommitOutcome::Duplicate),
                        (_, Some("ConditionalCheckFailed" | "TransactionConflict"))
                        | (Some("TransactionConflict"), _) => Ok(CommitOutcome::VersionConflict),
                        _ => Err(StoreError::Unavailable(format!(
                            "transaction cancelled: {:?}",
                            cancelled.cancellation_reasons()
                        ))),
                    }
                }
                other => Err(StoreError::Unavailable(
                    DisplayErrorContext(other).to_string(),
                )),
            },
            Err(other) => Err(unavailable(other)),
        }
    }
}
