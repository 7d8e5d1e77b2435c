//! DynamoDB implementation of [`CatalogStore`].
//!
//! Table (PAY_PER_REQUEST, string keys): products: `catalog` (hash: the catalog id, or
//! [`crate::catalog::ANY_CATALOG`]) + `product_id` (range: the feed's `id`), the product's
//! fields as attributes. A page's products are `BatchGetItem`s of 100 keys, no `Scan`.
//!
//! A feed is one `PutItem` per product (answering the old item, which tells replaced from
//! new), 16 at a time. 5,000 products do not fit a transaction: a fault may leave part of the
//! feed written, and sending it again replaces those products with themselves.

use crate::catalog::Product;
use crate::catalog::store::{CatalogStore, MAX_PRODUCT_LOOKUP};
use crate::spend::Upserted;
use crate::store::StoreError;
use crate::store::dynamo::Client;
use crate::store::dynamo::toolkit::{
    BatchRead, TableSpec, batch_get, create_tables, key, record, store_over, string, table_names,
    to_item, unavailable, warm_up,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use futures::{StreamExt, TryStreamExt};

table_names!(
    /// The DynamoDB table of the catalog store.
    CatalogTables {
        /// Products by catalog and id (`PRODUCTS_TABLE`).
        products: "PRODUCTS_TABLE",
    }
);

const CATALOG: &str = "catalog";
const PRODUCT_ID: &str = "product_id";
/// Writes in flight at once.
const IN_FLIGHT: usize = 16;

store_over!(
    /// The catalog store on DynamoDB.
    DynamoCatalogStore,
    CatalogTables
);

impl DynamoCatalogStore {
    /// Opens the client's first connection with one read of a key that never exists.
    pub async fn warm_up(&self) {
        warm_up(
            &self.client,
            &self.tables.products,
            key(&[(CATALOG, "#warm"), (PRODUCT_ID, "#warm")]),
        )
        .await;
    }

    /// Creates the table (see the module documentation); for tests and local emulators.
    pub async fn create_tables(&self) -> Result<(), StoreError> {
        let tables = [TableSpec::keyed(
            &self.tables.products,
            CATALOG,
            Some(PRODUCT_ID),
        )];
        create_tables(&self.client, &tables).await
    }

    /// Stores `product`; answers whether one was there before.
    async fn put_product(&self, product: &Product) -> Result<bool, StoreError> {
        let mut item = to_item(product)?;
        item.insert(PRODUCT_ID.to_owned(), string(&product.id));
        let output = self
            .client
            .put_item()
            .table_name(&self.tables.products)
            .set_item(Some(item))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(output.attributes.is_some_and(|old| !old.is_empty()))
    }
}

#[async_trait]
impl CatalogStore for DynamoCatalogStore {
    async fn upsert_products(&self, products: &[Product]) -> Result<Upserted, StoreError> {
        let existed: Vec<bool> = futures::stream::iter(products.to_vec())
            .map(|product| async move { self.put_product(&product).await })
            .buffered(IN_FLIGHT)
            .try_collect()
            .await?;
        let replaced = existed.iter().filter(|was| **was).count();
        Ok(Upserted {
            imported: existed.len() - replaced,
            replaced,
        })
    }

    async fn products(&self, keys: &[(String, String)]) -> Result<Vec<Product>, StoreError> {
        let mut unique: Vec<&(String, String)> = keys.iter().take(MAX_PRODUCT_LOOKUP).collect();
        unique.sort_unstable();
        unique.dedup();
        let mut found = Vec::new();
        for chunk in unique.chunks(super::toolkit::MAX_BATCH_KEYS) {
            let read = BatchRead {
                table: &self.tables.products,
                keys: chunk
                    .iter()
                    .map(|(catalog, id)| key(&[(CATALOG, catalog), (PRODUCT_ID, id)]))
                    .collect(),
                consistent: true,
            };
            for item in batch_get(&self.client, vec![read])
                .await?
                .into_values()
                .flatten()
            {
                found.push(record(item, &[PRODUCT_ID])?);
            }
        }
        Ok(found)
    }
}
