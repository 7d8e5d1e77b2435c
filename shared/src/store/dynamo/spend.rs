//! DynamoDB implementation of [`SpendStore`].
//!
//! Tables (PAY_PER_REQUEST, string keys):
//! - spend: `day` (hash, `YYYY-MM-DD`) + `row_key` (the row's key within its day), the row's
//!   fields as attributes: a report over a range of days is one `Query` per day, no `Scan`;
//! - ad_names: `ad_id` (hash), the names of the ad and the `date` of the row they came from.
//!
//! A batch is one `PutItem` per row (answering the old item, which tells replaced from new),
//! 16 at a time, then one conditional `PutItem` per distinct ad (kept unless a later day's
//! names are stored). A batch of 5,000 does not fit a transaction (100 items at most): a fault
//! may leave part of it written, and sending it again replaces those rows with themselves.

use crate::revenue::report::days_from;
use crate::spend::store::{MAX_AD_LOOKUP, SpendStore};
use crate::spend::{AdNames, SpendRow, Upserted};
use crate::store::StoreError;
use crate::store::dynamo::Client;
use crate::store::dynamo::toolkit::{
    Item, TableSpec, create_tables, key, query_items, record, store_over, string, table_names,
    to_item, unavailable, warm_up,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{KeysAndAttributes, ReturnValue};
use futures::{StreamExt, TryStreamExt};
use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;

table_names!(
    /// The DynamoDB tables of the spend store.
    SpendTables {
        /// Spend rows by day and key (`SPEND_TABLE`).
        spend: "SPEND_TABLE",
        /// Ad names by ad id (`AD_NAMES_TABLE`).
        ad_names: "AD_NAMES_TABLE",
    }
);

const DAY: &str = "day";
const ROW_KEY: &str = "row_key";
/// Writes and day queries in flight at once.
const IN_FLIGHT: usize = 16;

store_over!(
    /// The spend store on DynamoDB.
    DynamoSpendStore,
    SpendTables
);

impl DynamoSpendStore {
    /// Opens the client's first connection with one read of a key that never exists.
    pub async fn warm_up(&self) {
        warm_up(
            &self.client,
            &self.tables.ad_names,
            key(&[("ad_id", "#warm")]),
        )
        .await;
    }

    /// Creates the tables (see the module documentation); for tests and local emulators.
    pub async fn create_tables(&self) -> Result<(), StoreError> {
        let tables = [
            TableSpec::keyed(&self.tables.spend, DAY, Some(ROW_KEY)),
            TableSpec::keyed(&self.tables.ad_names, "ad_id", None),
        ];
        create_tables(&self.client, &tables).await
    }

    /// Stores `row`; answers whether a row was there before.
    async fn put_row(&self, row: &SpendRow) -> Result<bool, StoreError> {
        let mut item = to_item(row)?;
        item.insert(DAY.to_owned(), string(&row.date));
        item.insert(ROW_KEY.to_owned(), string(&row.key()));
        let output = self
            .client
            .put_item()
            .table_name(&self.tables.spend)
            .set_item(Some(item))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(output.attributes.is_some_and(|old| !old.is_empty()))
    }

    /// Stores `names` unless names of a later day are stored.
    async fn put_names(&self, names: &AdNames) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.ad_names)
            .set_item(Some(to_item(names)?))
            .condition_expression("attribute_not_exists(ad_id) OR #date <= :date")
            .expression_attribute_names("#date", "date")
            .expression_attribute_values(":date", string(&names.date))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    /// One day's rows, by key.
    async fn day_rows(&self, day: String) -> Result<Vec<SpendRow>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.tables.spend)
            .key_condition_expression("#day = :day")
            .expression_attribute_names("#day", DAY)
            .expression_attribute_values(":day", string(&day))
            .consistent_read(true);
        let mut rows = Vec::new();
        query_items(query, |item| {
            rows.push(record(item, &[DAY, ROW_KEY])?);
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        Ok(rows)
    }
}

#[async_trait]
impl SpendStore for DynamoSpendStore {
    async fn upsert_spend(&self, rows: &[SpendRow]) -> Result<Upserted, StoreError> {
        let existed: Vec<bool> = futures::stream::iter(rows.to_vec())
            .map(|row| async move { self.put_row(&row).await })
            .buffered(IN_FLIGHT)
            .try_collect()
            .await?;
        let mut latest: BTreeMap<String, AdNames> = BTreeMap::new();
        for names in rows.iter().filter_map(SpendRow::ad_names) {
            if latest
                .get(&names.ad_id)
                .is_none_or(|kept| kept.date <= names.date)
            {
                latest.insert(names.ad_id.clone(), names);
            }
        }
        futures::stream::iter(latest.into_values())
            .map(|names| async move { self.put_names(&names).await })
            .buffer_unordered(IN_FLIGHT)
            .try_collect::<Vec<()>>()
            .await?;
        let replaced = existed.iter().filter(|was| **was).count();
        Ok(Upserted {
            imported: existed.len() - replaced,
            replaced,
        })
    }

    async fn load_spend(
        &self,
        first_day: &str,
        last_day: &str,
    ) -> Result<Vec<SpendRow>, StoreError> {
        let per_day: Vec<Vec<SpendRow>> = futures::stream::iter(days_from(first_day, last_day))
            .map(|day| self.day_rows(day))
            .buffered(IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(per_day.into_iter().flatten().collect())
    }

    async fn ad_names(&self, ad_ids: &[String]) -> Result<Vec<AdNames>, StoreError> {
        let mut unique: Vec<&String> = ad_ids.iter().take(MAX_AD_LOOKUP).collect();
        unique.sort_unstable();
        unique.dedup();
        let mut found = Vec::new();
        for chunk in unique.chunks(super::toolkit::MAX_BATCH_KEYS) {
            let mut wanted = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.iter().map(|id| key(&[("ad_id", id)])).collect()))
                    .consistent_read(true)
                    .build()
                    .map_err(unavailable)?,
            );
            // Keys DynamoDB left unprocessed (throttled) are asked again until none are left.
            while let Some(keys) = wanted.take() {
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.tables.ad_names, keys)
                    .send()
                    .await
                    .map_err(unavailable)?;
                let items: Vec<Item> = output
                    .responses
                    .and_then(|mut tables| tables.remove(&self.tables.ad_names))
                    .unwrap_or_default();
                for item in items {
                    found.push(record(item, &[])?);
                }
                wanted = output
                    .unprocessed_keys
                    .and_then(|mut left: HashMap<_, _>| left.remove(&self.tables.ad_names))
                    .filter(|keys| !keys.keys().is_empty());
            }
        }
        Ok(found)
    }
}
