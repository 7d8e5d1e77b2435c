//! DynamoDB implementation of [`OutboundStore`], and the Parameter Store [`SecretVault`].
//!
//! Table (PAY_PER_REQUEST, string keys): outbound: `pk` (hash) + `sk` (range), two kinds of
//! item:
//! - each instance's destinations: `pk` = the instance id, `sk` = `#destinations`, with
//!   `version` and the set as `set` (JSON text: a few KB at most), put under a version
//!   condition;
//! - a delivery: `pk` = `<instance>#<destination>` (no instance id holds `#`), `sk` = the
//!   delivery key, the record as `record` (JSON text) beside `status`, `updated_at` (what a
//!   takeover is conditioned on), `listed_key` and `expires_at` (TTL, 90 days). The index
//!   `by_time` (`pk`, `listed_key`) lists a destination's deliveries newest first; only
//!   deliveries have `listed_key`, so destinations stay out of it.

use crate::ids::InstanceId;
use crate::outbound::store::{Claim, MAX_DELIVERIES_SCANNED, OutboundStore, SecretVault};
use crate::outbound::{
    DELIVERY_TTL_SECONDS, Delivery, DeliveryStatus, DestinationId, DestinationSet, SecretRef,
};
use crate::secret::Secret;
use crate::store::dynamo::Client;
use crate::store::dynamo::toolkit::{
    Item, TableIndex, TableSpec, conditional_put, create_tables, get_item, key, number,
    put_versioned, query_items, store_over, string, table_names, unavailable, warm_up,
};
use crate::store::{CommitOutcome, StoreError};
use crate::time::Timestamp;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use std::ops::ControlFlow;

table_names!(
    /// The DynamoDB table of the outbound store.
    OutboundTables {
        /// Destinations and deliveries (`OUTBOUND_TABLE`).
        outbound: "OUTBOUND_TABLE",
    }
);

const PK: &str = "pk";
const SK: &str = "sk";
const DESTINATIONS_SK: &str = "#destinations";
const BY_TIME: &str = "by_time";
const LISTED_KEY: &str = "listed_key";
const RECORD: &str = "record";

store_over!(
    /// The outbound store on DynamoDB.
    DynamoOutboundStore,
    OutboundTables
);

fn delivery_pk(instance_id: &str, destination_id: &str) -> String {
    format!("{instance_id}#{destination_id}")
}

fn text_of<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(text)) => Ok(text),
        _ => Err(StoreError::Corrupt(format!("{name} is not text"))),
    }
}

fn decode_record(item: &Item) -> Result<Delivery, StoreError> {
    serde_json::from_str(text_of(item, RECORD)?).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl DynamoOutboundStore {
    /// Opens the client's first connection with one read of a key that never exists.
    pub async fn warm_up(&self) {
        warm_up(
            &self.client,
            &self.tables.outbound,
            key(&[(PK, "#warm"), (SK, "#warm")]),
        )
        .await;
    }

    /// Creates the table (see the module documentation); for tests and local emulators.
    pub async fn create_tables(&self) -> Result<(), StoreError> {
        let tables = [TableSpec::keyed(&self.tables.outbound, PK, Some(SK))
            .with_index(TableIndex {
                name: BY_TIME,
                hash: PK,
                range: LISTED_KEY,
            })
            .with_ttl("expires_at")];
        create_tables(&self.client, &tables).await
    }

    fn delivery_item(delivery: &Delivery) -> Result<Item, StoreError> {
        let record =
            serde_json::to_string(delivery).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut item = key(&[
            (
                PK,
                &delivery_pk(
                    delivery.instance_id.as_str(),
                    delivery.destination_id.as_str(),
                ),
            ),
            (SK, &delivery.delivery_key),
            (LISTED_KEY, &delivery.listed_key),
            ("status", delivery.status.as_str()),
            ("updated_at", &delivery.updated_at.to_string()),
            (RECORD, &record),
        ]);
        item.insert(
            "expires_at".to_owned(),
            number(
                delivery
                    .created_at
                    .plus_seconds(DELIVERY_TTL_SECONDS)
                    .unix_seconds(),
            ),
        );
        Ok(item)
    }
}

#[async_trait]
impl OutboundStore for DynamoOutboundStore {
    async fn load_destinations(
        &self,
        instance_id: &InstanceId,
    ) -> Result<DestinationSet, StoreError> {
        let found = get_item(
            &self.client,
            &self.tables.outbound,
            key(&[(PK, instance_id.as_str()), (SK, DESTINATIONS_SK)]),
        )
        .await?;
        match found {
            None => Ok(DestinationSet::default()),
            Some(item) => serde_json::from_str(text_of(&item, "set")?)
                .map_err(|e| StoreError::Corrupt(e.to_string())),
        }
    }

    async fn save_destinations(
        &self,
        instance_id: &InstanceId,
        set: &DestinationSet,
        expected_version: u64,
    ) -> Result<CommitOutcome, StoreError> {
        let text = serde_json::to_string(set).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut item = key(&[(PK, instance_id.as_str()), (SK, DESTINATIONS_SK)]);
        item.insert("set".to_owned(), string(&text));
        put_versioned(
            &self.client,
            &self.tables.outbound,
            item,
            PK,
            set.version,
            expected_version,
        )
        .await
    }

    async fn claim_delivery(&self, fresh: &Delivery, now: Timestamp) -> Result<Claim, StoreError> {
        let created = self
            .client
            .put_item()
            .table_name(&self.tables.outbound)
            .set_item(Some(Self::delivery_item(fresh)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        if conditional_put(created)? {
            return Ok(Claim::Claimed(fresh.clone()));
        }
        let pk = delivery_pk(fresh.instance_id.as_str(), fresh.destination_id.as_str());
        let Some(item) = get_item(
            &self.client,
            &self.tables.outbound,
            key(&[(PK, &pk), (SK, &fresh.delivery_key)]),
        )
        .await?
        else {
            // Expired between the two calls: the queue's next try creates it.
            return Ok(Claim::Held);
        };
        let stored = decode_record(&item)?;
        if stored.status.is_final() {
            return Ok(Claim::Done(stored));
        }
        let owner = fresh.lease_owner.as_deref().unwrap_or_default();
        if !stored.may_claim(owner, now) {
            return Ok(Claim::Held);
        }
        let read_at = text_of(&item, "updated_at")?.to_owned();
        let mut taken = stored;
        taken.lease_owner = fresh.lease_owner.clone();
        taken.lease_until = fresh.lease_until;
        taken.updated_at = now;
        let put = self
            .client
            .put_item()
            .table_name(&self.tables.outbound)
            .set_item(Some(Self::delivery_item(&taken)?))
            .condition_expression("updated_at = :read")
            .expression_attribute_values(":read", string(&read_at))
            .send()
            .await;
        Ok(if conditional_put(put)? {
            Claim::Claimed(taken)
        } else {
            Claim::Held
        })
    }

    async fn record_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.tables.outbound)
            .set_item(Some(Self::delivery_item(delivery)?))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn list_deliveries(
        &self,
        instance_id: &InstanceId,
        destination_id: &DestinationId,
        status: Option<DeliveryStatus>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.tables.outbound)
            .index_name(BY_TIME)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(
                ":pk",
                string(&delivery_pk(instance_id.as_str(), destination_id.as_str())),
            )
            .scan_index_forward(false)
            .limit(200);
        let mut found = Vec::new();
        let mut scanned = 0;
        query_items(query, |item| {
            scanned += 1;
            let delivery = decode_record(&item)?;
            if status.is_none_or(|wanted| wanted == delivery.status) {
                found.push(delivery);
            }
            Ok(
                if found.len() >= limit || scanned >= MAX_DELIVERIES_SCANNED {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                },
            )
        })
        .await?;
        Ok(found)
    }
}

/// Destinations' credentials as SecureString parameters under the stack's prefix
/// (`SECRETS_PREFIX` + the reference), encrypted with the account's SSM key.
#[derive(Clone)]
pub struct SsmVault {
    client: aws_sdk_ssm::Client,
    prefix: String,
}

impl SsmVault {
    /// A vault under `prefix` (`/attribution-engine/`, say).
    pub fn new(client: aws_sdk_ssm::Client, prefix: &str) -> Self {
        Self {
            client,
            prefix: prefix.to_owned(),
        }
    }

    /// For Lambda: the client from the shared SDK configuration, the prefix from
    /// `SECRETS_PREFIX`.
    pub fn from_env(config: &aws_config::SdkConfig) -> Result<Self, crate::config::ConfigError> {
        let prefix = crate::config::required("SECRETS_PREFIX")?;
        Ok(Self::new(aws_sdk_ssm::Client::new(config), &prefix))
    }

    fn name(&self, reference: &SecretRef) -> String {
        format!("{}{}", self.prefix, reference.0)
    }
}

fn ssm_unavailable(error: impl std::error::Error + 'static) -> StoreError {
    StoreError::Unavailable(aws_sdk_ssm::error::DisplayErrorContext(&error).to_string())
}

#[async_trait]
impl SecretVault for SsmVault {
    async fn put_secret(&self, reference: &SecretRef, value: &Secret) -> Result<(), StoreError> {
        self.client
            .put_parameter()
            .name(self.name(reference))
            .value(String::from_utf8_lossy(value.expose()))
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .map_err(ssm_unavailable)?;
        Ok(())
    }

    async fn get_secret(&self, reference: &SecretRef) -> Result<Option<Secret>, StoreError> {
        let answer = self
            .client
            .get_parameter()
            .name(self.name(reference))
            .with_decryption(true)
            .send()
            .await;
        match answer {
            Ok(output) => Ok(output.parameter.and_then(|p| p.value).map(Secret::new)),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_parameter_not_found()) =>
            {
                Ok(None)
            }
            Err(error) => Err(ssm_unavailable(error)),
        }
    }

    async fn delete_secret(&self, reference: &SecretRef) -> Result<(), StoreError> {
        let answer = self
            .client
            .delete_parameter()
            .name(self.name(reference))
            .send()
            .await;
        match answer {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_parameter_not_found()) =>
            {
                Ok(())
            }
            Err(error) => Err(ssm_unavailable(error)),
        }
    }
}
