//! The contract every `CatalogStore` implementation keeps, run against each of them.

use integration_tests::*;
use shared::catalog::Product;
use shared::catalog::store::{CatalogStore, MAX_PRODUCT_LOOKUP};
use shared::revenue::{Amount, Currency};
use shared::spend::Upserted;
use std::sync::Arc;

on_every_store!(
    products_are_new_once_then_replaced_by_their_key,
    catalogs_keep_their_own_products_and_unknown_keys_are_left_out,
    an_empty_feed_writes_nothing,
);

async fn store(backend: Backend) -> Option<(Arc<dyn CatalogStore>, StoreGuard)> {
    let (stores, guard) = fresh_stores(backend).await?;
    Some((stores.catalog, guard))
}

fn product(catalog: &str, id: &str, price: &str) -> Product {
    Product {
        catalog: catalog.into(),
        id: id.into(),
        title: format!("Product {id}"),
        description: "Organic cotton, regular fit".into(),
        availability: "in stock".into(),
        condition: "new".into(),
        price: Amount::parse(price).unwrap(),
        sale_price: None,
        currency: Currency::parse("MXN").unwrap(),
        link: format!("https://shop.example/p/{id}"),
        image_link: format!("https://shop.example/img/{id}.jpg"),
        brand: "Shop".into(),
    }
}

fn key(catalog: &str, id: &str) -> (String, String) {
    (catalog.to_owned(), id.to_owned())
}

async fn products_are_new_once_then_replaced_by_their_key(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let first = [product("any", "a", "1.00"), product("any", "b", "2.00")];
    assert_eq!(
        store.upsert_products(&first).await.unwrap(),
        Upserted {
            imported: 2,
            replaced: 0
        }
    );
    let corrected = [product("any", "a", "1.50"), product("any", "c", "3.00")];
    assert_eq!(
        store.upsert_products(&corrected).await.unwrap(),
        Upserted {
            imported: 1,
            replaced: 1
        }
    );
    let mut found = store
        .products(&[key("any", "a"), key("any", "b"), key("any", "c")])
        .await
        .unwrap();
    found.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(
        found,
        vec![corrected[0].clone(), first[1].clone(), corrected[1].clone()]
    );
}

async fn catalogs_keep_their_own_products_and_unknown_keys_are_left_out(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let products = [product("111", "a", "1.00"), product("222", "a", "9.00")];
    store.upsert_products(&products).await.unwrap();
    let found = store
        .products(&[
            key("111", "a"),
            key("111", "a"),
            key("333", "a"),
            key("any", "a"),
        ])
        .await
        .unwrap();
    assert_eq!(found, vec![products[0].clone()]);
    // A page's worth and more: the keys past the bound are not read, and nothing fails.
    let mut many: Vec<(String, String)> = (0..MAX_PRODUCT_LOOKUP + 50)
        .map(|n| key("111", &format!("missing-{n}")))
        .collect();
    many.push(key("222", "a"));
    assert!(store.products(&many).await.unwrap().is_empty());
    assert_eq!(
        store
            .products(&many[MAX_PRODUCT_LOOKUP..])
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn an_empty_feed_writes_nothing(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    assert_eq!(
        store.upsert_products(&[]).await.unwrap(),
        Upserted::default()
    );
    assert!(store.products(&[]).await.unwrap().is_empty());
}
