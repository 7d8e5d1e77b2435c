//! The contract every `SpendStore` implementation keeps, run against each of them.

use integration_tests::*;
use shared::revenue::{Amount, Currency};
use shared::spend::store::{MAX_AD_LOOKUP, SpendStore};
use shared::spend::{AdNames, SpendRow, Upserted};
use std::sync::Arc;

on_every_store!(
    rows_are_new_once_then_replaced_by_their_key,
    a_range_of_days_reads_its_rows_and_no_others,
    ad_names_come_from_the_latest_day_and_unknown_ids_are_left_out,
    an_empty_batch_writes_nothing,
);

async fn store(backend: Backend) -> Option<(Arc<dyn SpendStore>, StoreGuard)> {
    let (stores, guard) = fresh_stores(backend).await?;
    Some((stores.spend, guard))
}

fn row(date: &str, campaign: &str, ad_id: &str, spend: &str) -> SpendRow {
    SpendRow {
        date: date.into(),
        platform: "meta".into(),
        campaign: campaign.into(),
        ad_set: "Set #1".into(),
        ad_id: ad_id.into(),
        ad_name: (!ad_id.is_empty()).then(|| format!("{campaign} ad")),
        spend: Amount::parse(spend).unwrap(),
        currency: Currency::USD,
        impressions: 10,
        clicks: 1,
    }
}

async fn rows_are_new_once_then_replaced_by_their_key(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let first = [
        row("2026-11-24", "A", "1", "1.00"),
        row("2026-11-24", "A", "2", "2.00"),
    ];
    assert_eq!(
        store.upsert_spend(&first).await.unwrap(),
        Upserted {
            imported: 2,
            replaced: 0
        }
    );
    let corrected = [
        row("2026-11-24", "A", "1", "1.50"),
        row("2026-11-25", "A", "1", "3.00"),
    ];
    assert_eq!(
        store.upsert_spend(&corrected).await.unwrap(),
        Upserted {
            imported: 1,
            replaced: 1
        }
    );
    let rows = store.load_spend("2026-11-24", "2026-11-25").await.unwrap();
    let spend: Vec<(String, String, String)> = rows
        .iter()
        .map(|row| (row.date.clone(), row.ad_id.clone(), row.spend.to_string()))
        .collect();
    assert_eq!(
        spend,
        [
            ("2026-11-24".into(), "1".into(), "1.50".into()),
            ("2026-11-24".into(), "2".into(), "2.00".into()),
            ("2026-11-25".into(), "1".into(), "3.00".into()),
        ]
    );
    assert_eq!(rows[0], corrected[0], "a row reads back as written");
}

async fn a_range_of_days_reads_its_rows_and_no_others(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let rows = [
        row("2026-11-23", "before", "", "1"),
        row("2026-11-24", "first", "", "1"),
        row("2026-11-30", "last", "", "1"),
        row("2026-12-01", "after", "", "1"),
    ];
    store.upsert_spend(&rows).await.unwrap();
    let read = store.load_spend("2026-11-24", "2026-11-30").await.unwrap();
    let campaigns: Vec<&str> = read.iter().map(|row| row.campaign.as_str()).collect();
    assert_eq!(campaigns, ["first", "last"]);
    assert!(
        store
            .load_spend("2026-11-30", "2026-11-24")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn ad_names_come_from_the_latest_day_and_unknown_ids_are_left_out(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    store
        .upsert_spend(&[row("2026-11-25", "Renamed", "7", "1")])
        .await
        .unwrap();
    // An older export, imported later, does not take the newer names back.
    store
        .upsert_spend(&[
            row("2026-11-20", "Old", "7", "1"),
            row("2026-11-20", "Other", "8", "1"),
        ])
        .await
        .unwrap();
    let mut names = store
        .ad_names(&["7".to_owned(), "8".to_owned(), "9".to_owned()])
        .await
        .unwrap();
    names.sort_by(|a, b| a.ad_id.cmp(&b.ad_id));
    assert_eq!(
        names,
        [
            AdNames {
                ad_id: "7".into(),
                ad_name: Some("Renamed ad".into()),
                ad_set_name: Some("Set #1".into()),
                campaign_name: "Renamed".into(),
                date: "2026-11-25".into(),
            },
            AdNames {
                ad_id: "8".into(),
                ad_name: Some("Other ad".into()),
                ad_set_name: Some("Set #1".into()),
                campaign_name: "Other".into(),
                date: "2026-11-20".into(),
            },
        ]
    );
    let many: Vec<String> = (0..MAX_AD_LOOKUP + 10).map(|n| n.to_string()).collect();
    let found = store.ad_names(&many).await.unwrap();
    assert_eq!(
        found.len(),
        2,
        "a full lookup finds the two among {} ids",
        many.len()
    );
}

async fn an_empty_batch_writes_nothing(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    assert_eq!(store.upsert_spend(&[]).await.unwrap(), Upserted::default());
    assert!(
        store
            .load_spend("2026-11-01", "2026-11-30")
            .await
            .unwrap()
            .is_empty()
    );
}
