//! The DynamoDB toolkit every store file of this backend builds on: the item codec, the
//! attribute builders, consistent reads, paged queries, conditional puts and transactions with
//! their answers read, the mapping of SDK errors to `StoreError`, and table creation for tests
//! and local emulators.

use crate::store::StoreError;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, KeysAndAttributes, Projection, ProjectionType, ScalarAttributeType,
    TimeToLiveSpecification, TransactWriteItem,
};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::ops::ControlFlow;

/// One DynamoDB item: attribute name → value.
pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) fn unavailable<E>(error: E) -> StoreError
where
    E: std::error::Error + 'static,
{
    StoreError::Unavailable(DisplayErrorContext(&error).to_string())
}

pub(super) fn to_item(value: &impl serde::Serialize) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A conditional `PutItem`'s answer: `true` written, `false` its condition did not hold.
pub(super) fn conditional_put<T>(
    result: Result<T, SdkError<aws_sdk_dynamodb::operation::put_item::PutItemError>>,
) -> Result<bool, StoreError> {
    match result {
        Ok(_) => Ok(true),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(false)
        }
        Err(error) => Err(unavailable(error)),
    }
}

pub(super) fn string(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

pub(super) fn number(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A key (or any item) of string attributes.
pub(super) fn key(attributes: &[(&str, &str)]) -> Item {
    attributes
        .iter()
        .map(|(name, value)| ((*name).to_owned(), string(value)))
        .collect()
}

/// A record read back: without the index attributes the store added to it.
pub(super) fn record<T: DeserializeOwned>(mut item: Item, added: &[&str]) -> Result<T, StoreError> {
    for name in added {
        item.remove(*name);
    }
    from_item(item)
}

/// Puts `item` (its key, the record, and `version` now) if the stored item is still at
/// `expected_version` (0: none, told by its hash key `hash` missing); `VersionConflict`
/// otherwise, writing nothing. How each instance's goals and destinations are changed.
pub(super) async fn put_versioned(
    client: &Client,
    table: &str,
    mut item: Item,
    hash: &str,
    version: u64,
    expected_version: u64,
) -> Result<crate::store::CommitOutcome, StoreError> {
    item.insert("version".to_owned(), number(version));
    let put = client.put_item().table_name(table).set_item(Some(item));
    let put = if expected_version == 0 {
        put.condition_expression(format!("attribute_not_exists({hash})"))
    } else {
        put.condition_expression("version = :expected")
            .expression_attribute_values(":expected", number(expected_version))
    };
    Ok(if conditional_put(put.send().await)? {
        crate::store::CommitOutcome::Applied
    } else {
        crate::store::CommitOutcome::VersionConflict
    })
}

/// The item under `key` in `table`, read consistently.
pub(super) async fn get_item(
    client: &Client,
    table: &str,
    key: Item,
) -> Result<Option<Item>, StoreError> {
    let output = client
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .consistent_read(true)
        .send()
        .await
        .map_err(unavailable)?;
    Ok(output.item)
}

/// Most keys one `BatchGetItem` takes.
pub(super) const MAX_BATCH_KEYS: usize = 100;

/// The keys one `BatchGetItem` reads from one table, and how.
pub(super) struct BatchRead<'a> {
    pub table: &'a str,
    pub keys: Vec<Item>,
    pub consistent: bool,
}

/// Every item `reads` name that exists, by table, in one `BatchGetItem` (more only for the
/// keys DynamoDB leaves unprocessed, which are asked again). At most 100 keys in all.
pub(super) async fn batch_get(
    client: &Client,
    reads: Vec<BatchRead<'_>>,
) -> Result<HashMap<String, Vec<Item>>, StoreError> {
    let mut pending: HashMap<String, KeysAndAttributes> = HashMap::new();
    for read in reads {
        let keys = KeysAndAttributes::builder()
            .set_keys(Some(read.keys))
            .consistent_read(read.consistent)
            .build()
            .map_err(unavailable)?;
        pending.insert(read.table.to_owned(), keys);
    }
    let mut found: HashMap<String, Vec<Item>> = HashMap::new();
    while !pending.is_empty() {
        let output = client
            .batch_get_item()
            .set_request_items(Some(std::mem::take(&mut pending)))
            .send()
            .await
            .map_err(unavailable)?;
        for (table, items) in output.responses.unwrap_or_default() {
            found.entry(table).or_default().extend(items);
        }
        pending = output.unprocessed_keys.unwrap_or_default();
        pending.retain(|_, keys| !keys.keys().is_empty());
    }
    Ok(found)
}

/// Opens the client's first connection (DNS, TCP, TLS) with one read of a key that never
/// exists, so the first request after a cold start does not pay for it. Errors are left to
/// that request.
pub(super) async fn warm_up(client: &Client, table: &str, key: Item) {
    let _ = client
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .send()
        .await;
}

/// Runs `query` page after page, handing each item to `each` until it answers `Break` or the
/// pages run out; answers whether `each` stopped it.
pub(super) async fn query_items(
    query: QueryFluentBuilder,
    mut each: impl FnMut(Item) -> Result<ControlFlow<()>, StoreError>,
) -> Result<bool, StoreError> {
    let mut start: Option<Item> = None;
    loop {
        let output = query
            .clone()
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(unavailable)?;
        for item in output.items.unwrap_or_default() {
            if each(item)?.is_break() {
                return Ok(true);
            }
        }
        match output.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(false),
        }
    }
}

/// Runs a transaction; a cancelled one answers the reason code of each item.
pub(super) async fn transact(
    client: &Client,
    items: Vec<TransactWriteItem>,
) -> Result<Result<(), Vec<Option<String>>>, StoreError> {
    let result = client
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await;
    match result {
        Ok(_) => Ok(Ok(())),
        Err(SdkError::ServiceError(service)) => match service.err() {
            TransactWriteItemsError::TransactionCanceledException(cancelled) => Ok(Err(cancelled
                .cancellation_reasons()
                .iter()
                .map(|reason| reason.code().map(str::to_owned))
                .collect())),
            other => Err(StoreError::Unavailable(
                DisplayErrorContext(other).to_string(),
            )),
        },
        Err(other) => Err(unavailable(other)),
    }
}

/// Tries of a transaction that keeps conflicting with others before the store gives up.
pub(super) const MAX_ATTEMPTS: u32 = 5;
/// The longest pause before the first retry; it doubles with each retry after.
const FIRST_BACKOFF_MS: u64 = 20;

/// A random pause before retry `retry` (1, 2, …): up to [`FIRST_BACKOFF_MS`] doubled each time,
/// at least half of that.
pub(super) fn backoff(retry: u32) -> std::time::Duration {
    let ceiling = FIRST_BACKOFF_MS << retry.saturating_sub(1).min(6);
    std::time::Duration::from_millis(rand::random_range(ceiling / 2..=ceiling))
}

/// A transaction cancelled for a reason other than its conditions: a fault to retry.
pub(super) fn cancelled(codes: &[Option<String>]) -> StoreError {
    StoreError::Unavailable(format!("transaction cancelled: {codes:?}"))
}

pub(super) fn is_conditional_failure(code: &Option<String>) -> bool {
    code.as_deref() == Some("ConditionalCheckFailed")
}

pub(super) fn is_conflict(code: &Option<String>) -> bool {
    matches!(
        code.as_deref(),
        Some("ConditionalCheckFailed" | "TransactionConflict")
    )
}

/// A global secondary index (string keys; all attributes projected unless the table says
/// keys only).
pub(super) struct TableIndex<'a> {
    pub name: &'a str,
    pub hash: &'a str,
    pub range: &'a str,
}

/// A table as `template.yaml` declares it, for tests and local emulators: on-demand, string
/// keys, at most one index, TTL on one attribute if any.
pub(super) struct TableSpec<'a> {
    name: &'a str,
    hash: &'a str,
    range: Option<&'a str>,
    index: Option<TableIndex<'a>>,
    keys_only: bool,
    ttl: Option<&'a str>,
}

impl<'a> TableSpec<'a> {
    pub fn keyed(name: &'a str, hash: &'a str, range: Option<&'a str>) -> Self {
        Self {
            name,
            hash,
            range,
            index: None,
            keys_only: false,
            ttl: None,
        }
    }

    pub fn with_index(mut self, index: TableIndex<'a>) -> Self {
        self.index = Some(index);
        self
    }

    /// The index projects the keys only.
    pub fn keys_only(mut self) -> Self {
        self.keys_only = true;
        self
    }

    pub fn with_ttl(mut self, attribute: &'a str) -> Self {
        self.ttl = Some(attribute);
        self
    }
}

/// Creates `spec`'s table (and turns its TTL on).
pub(super) async fn create_table(client: &Client, spec: &TableSpec<'_>) -> Result<(), StoreError> {
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(unavailable)
    };
    let mut attributes = vec![spec.hash];
    attributes.extend(spec.range);
    if let Some(index) = &spec.index {
        attributes.extend([index.hash, index.range]);
    }
    attributes.sort_unstable();
    attributes.dedup();
    let mut request = client
        .create_table()
        .table_name(spec.name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(spec.hash, KeyType::Hash)?);
    if let Some(range) = spec.range {
        request = request.key_schema(key(range, KeyType::Range)?);
    }
    for attribute in attributes {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attribute)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(unavailable)?,
        );
    }
    if let Some(index) = &spec.index {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .key_schema(key(index.hash, KeyType::Hash)?)
                .key_schema(key(index.range, KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(if spec.keys_only {
                            ProjectionType::KeysOnly
                        } else {
                            ProjectionType::All
                        })
                        .build(),
                )
                .build()
                .map_err(unavailable)?,
        );
    }
    request.send().await.map_err(unavailable)?;
    if let Some(attribute) = spec.ttl {
        client
            .update_time_to_live()
            .table_name(spec.name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(attribute)
                    .build()
                    .map_err(unavailable)?,
            )
            .send()
            .await
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Creates each of `specs`' tables, one after another.
pub(super) async fn create_tables(
    client: &Client,
    specs: &[TableSpec<'_>],
) -> Result<(), StoreError> {
    for spec in specs {
        create_table(client, spec).await?;
    }
    Ok(())
}

/// A store's set of table names: `table_names!(/// docs Name { /// docs field: "VARIABLE", … })`
/// declares the struct, its `from_env` (each name from its variable) and its `prefixed` (each
/// name `{prefix}-{field}`).
macro_rules! table_names {
    ($(#[$doc:meta])* $name:ident {
        $($(#[$field_doc:meta])* $field:ident: $variable:literal,)*
    }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            $($(#[$field_doc])* pub $field: String,)*
        }

        impl $name {
            /// Reads each table's name from its environment variable (named on its field).
            pub fn from_env() -> Result<Self, crate::config::ConfigError> {
                Ok(Self {
                    $($field: crate::config::required($variable)?,)*
                })
            }

            /// Names with a common prefix, for test runs sharing one DynamoDB Local.
            pub fn prefixed(prefix: &str) -> Self {
                Self {
                    $($field: format!("{prefix}-{}", stringify!($field)),)*
                }
            }
        }
    };
}
pub(super) use table_names;

/// A store over one set of tables: `store_over!(/// docs Name, Tables)` declares the struct with
/// its client and tables, `new` and `from_env`; `store_over!(… Name, Tables, field: Type)` adds
/// fields that start as their type's `Default` (what the store keeps in memory).
macro_rules! store_over {
    ($(#[$doc:meta])* $name:ident, $tables:ident $(, $field:ident: $type:ty)*) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            client: Client,
            tables: $tables,
            $($field: $type,)*
        }

        impl $name {
            /// A store over `tables` through `client`.
            pub fn new(client: Client, tables: $tables) -> Self {
                Self {
                    client,
                    tables,
                    $($field: Default::default(),)*
                }
            }

            #[doc = concat!(
                "For Lambda: the client from the shared SDK configuration, table names from the ",
                "environment (see [`", stringify!($tables), "::from_env`])."
            )]
            pub fn from_env(client: &Client) -> Result<Self, crate::config::ConfigError> {
                Ok(Self::new(client.clone(), $tables::from_env()?))
            }
        }
    };
}
pub(super) use store_over;
