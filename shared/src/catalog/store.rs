//! The catalog store, shaped after its access patterns: a feed's products stored under their
//! (catalog, id), replacing what was there, and a page's products looked up by those keys.

use crate::catalog::Product;
use crate::spend::Upserted;
use crate::store::StoreError;
use async_trait::async_trait;

/// Most (catalog, id) keys one [`CatalogStore::products`] call looks up: a contacts page's
/// worth, each contact's product under its catalog and under [`crate::catalog::ANY_CATALOG`].
pub const MAX_PRODUCT_LOOKUP: usize = 1_000;

/// Products by (catalog, id).
#[async_trait]
pub trait CatalogStore: Send + Sync + 'static {
    /// Stores each product under its (catalog, id), replacing the one there. Answers how many
    /// keys were new and how many replaced. A fault may leave the first ones written; sending
    /// the feed again replaces them with themselves.
    async fn upsert_products(&self, products: &[Product]) -> Result<Upserted, StoreError>;

    /// The products among `keys` (catalog, id), at most [`MAX_PRODUCT_LOOKUP`], in no order;
    /// keys with no product are left out.
    async fn products(&self, keys: &[(String, String)]) -> Result<Vec<Product>, StoreError>;
}
