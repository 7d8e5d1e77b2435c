//! The spend store in the embedded store: one write transaction per batch of rows (all or
//! nothing), rows keyed by day so a report reads one range.

use crate::spend::store::{MAX_AD_LOOKUP, SpendStore};
use crate::spend::{AdNames, SpendRow, Upserted};
use crate::store::StoreError;
use crate::store::embedded::{AD_NAMES, EmbeddedStore, SPEND, decode, encode, unavailable};
use async_trait::async_trait;
use redb::ReadableTable;

#[async_trait]
impl SpendStore for EmbeddedStore {
    async fn upsert_spend(&self, rows: &[SpendRow]) -> Result<Upserted, StoreError> {
        let rows = rows.to_vec();
        self.write(move |txn| {
            let mut spend = txn.open_table(SPEND).map_err(unavailable)?;
            let mut names = txn.open_table(AD_NAMES).map_err(unavailable)?;
            let mut done = Upserted::default();
            for row in &rows {
                let key = row.key();
                let previous = spend
                    .insert((row.date.as_str(), key.as_str()), encode(row)?.as_slice())
                    .map_err(unavailable)?;
                match previous {
                    Some(_) => done.replaced += 1,
                    None => done.imported += 1,
                }
                let Some(named) = row.ad_names() else {
                    continue;
                };
                let stored: Option<AdNames> =
                    match names.get(named.ad_id.as_str()).map_err(unavailable)? {
                        Some(bytes) => Some(decode(bytes.value())?),
                        None => None,
                    };
                if stored.is_none_or(|stored| stored.date <= named.date) {
                    names
                        .insert(named.ad_id.as_str(), encode(&named)?.as_slice())
                        .map_err(unavailable)?;
                }
            }
            Ok((done, !rows.is_empty()))
        })
        .await
    }

    async fn load_spend(
        &self,
        first_day: &str,
        last_day: &str,
    ) -> Result<Vec<SpendRow>, StoreError> {
        if first_day > last_day {
            return Ok(Vec::new());
        }
        let txn = self.db.begin_read().map_err(unavailable)?;
        let spend = txn.open_table(SPEND).map_err(unavailable)?;
        let mut rows = Vec::new();
        for entry in spend.range((first_day, "")..).map_err(unavailable)? {
            let (key, bytes) = entry.map_err(unavailable)?;
            if key.value().0 > last_day {
                break;
            }
            rows.push(decode(bytes.value())?);
        }
        Ok(rows)
    }

    async fn ad_names(&self, ad_ids: &[String]) -> Result<Vec<AdNames>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let names = txn.open_table(AD_NAMES).map_err(unavailable)?;
        let mut found = Vec::new();
        for ad_id in ad_ids.iter().take(MAX_AD_LOOKUP) {
            if let Some(bytes) = names.get(ad_id.as_str()).map_err(unavailable)? {
                found.push(decode(bytes.value())?);
            }
        }
        Ok(found)
    }
}
