//! The spend store, shaped after its access patterns: a batch of rows stored under their keys
//! (replacing what was there, with the names of the ads they name), the rows of a range of
//! days for a report, and the names of a page's ads by their ids.

use crate::spend::{AdNames, SpendRow, Upserted};
use crate::store::StoreError;
use async_trait::async_trait;

/// Most ad ids one [`SpendStore::ad_names`] call looks up: a contacts page's worth.
pub const MAX_AD_LOOKUP: usize = 500;

/// Spend rows by day and key, and ad names by ad id.
#[async_trait]
pub trait SpendStore: Send + Sync + 'static {
    /// Stores each row under its (day, key), replacing the row there, and the names of each
    /// row's ad unless a later day's row named it already. Answers how many keys were new and
    /// how many replaced. Rows are written in order; a fault may leave the first ones written,
    /// and sending the batch again replaces them with themselves.
    async fn upsert_spend(&self, rows: &[SpendRow]) -> Result<Upserted, StoreError>;

    /// Every row of the days `first_day..=last_day`, by day then key.
    async fn load_spend(
        &self,
        first_day: &str,
        last_day: &str,
    ) -> Result<Vec<SpendRow>, StoreError>;

    /// The names of the ads among `ad_ids` (at most [`MAX_AD_LOOKUP`]) that a spend row named,
    /// in no order; ids without names are left out.
    async fn ad_names(&self, ad_ids: &[String]) -> Result<Vec<AdNames>, StoreError>;
}
