//! The catalog store in the embedded store: one write transaction per feed (all or nothing).

use crate::catalog::Product;
use crate::catalog::store::{CatalogStore, MAX_PRODUCT_LOOKUP};
use crate::spend::Upserted;
use crate::store::StoreError;
use crate::store::embedded::{EmbeddedStore, PRODUCTS, decode, encode, unavailable};
use async_trait::async_trait;

#[async_trait]
impl CatalogStore for EmbeddedStore {
    async fn upsert_products(&self, products: &[Product]) -> Result<Upserted, StoreError> {
        let products = products.to_vec();
        self.write(move |txn| {
            let mut table = txn.open_table(PRODUCTS).map_err(unavailable)?;
            let mut done = Upserted::default();
            for product in &products {
                let previous = table
                    .insert(
                        (product.catalog.as_str(), product.id.as_str()),
                        encode(product)?.as_slice(),
                    )
                    .map_err(unavailable)?;
                match previous {
                    Some(_) => done.replaced += 1,
                    None => done.imported += 1,
                }
            }
            Ok((done, !products.is_empty()))
        })
        .await
    }

    async fn products(&self, keys: &[(String, String)]) -> Result<Vec<Product>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let table = txn.open_table(PRODUCTS).map_err(unavailable)?;
        let mut unique: Vec<&(String, String)> = keys.iter().take(MAX_PRODUCT_LOOKUP).collect();
        unique.sort_unstable();
        unique.dedup();
        let mut found = Vec::new();
        for (catalog, id) in unique {
            if let Some(bytes) = table
                .get((catalog.as_str(), id.as_str()))
                .map_err(unavailable)?
            {
                found.push(decode(bytes.value())?);
            }
        }
        Ok(found)
    }
}
