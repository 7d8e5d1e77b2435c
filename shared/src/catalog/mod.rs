//! Catalog products: the product a conversation came from, and the catalog feed that names it.

pub mod feed;
pub mod store;

use crate::contact::Referral;
use crate::ingest::InboundEvent;
use crate::revenue::money::{Amount, Currency};
use serde::{Deserialize, Serialize};

/// Most products one `POST /catalog/import` takes.
pub const MAX_PRODUCTS: usize = 5_000;
/// Meta's limit on a product title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Meta's limit on a product description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 9_999;
/// Longest `link` or `image_link`, in bytes.
pub const MAX_LINK_BYTES: usize = 2_048;
/// Longest `availability`, `condition` or `brand`, in characters.
pub const MAX_SHORT_BYTES: usize = 100;
/// The catalog a feed imported without `?catalog_id=` is stored under: Meta's catalog ids are
/// digits, so no real catalog has this name.
pub const ANY_CATALOG: &str = "any";

/// One product of a catalog feed, stored under (`catalog`, `id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// The catalog it was imported for, [`ANY_CATALOG`] when the import named none.
    pub catalog: String,
    /// The feed's `id`: the retailer id WhatsApp's `product_retailer_id` names.
    pub id: String,
    /// The product's name.
    pub title: String,
    /// The feed's description, shown on the contact panel.
    #[serde(default)]
    pub description: String,
    /// `in stock`, `out of stock`, … as the feed writes it.
    #[serde(default)]
    pub availability: String,
    /// `new`, `refurbished`, `used`, as the feed writes it.
    #[serde(default)]
    pub condition: String,
    /// The regular price, in `currency`.
    pub price: Amount,
    /// The sale price, when the feed gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale_price: Option<Amount>,
    /// The currency of `price` and `sale_price`.
    pub currency: Currency,
    /// The product's page.
    #[serde(default)]
    pub link: String,
    /// The product's image, as the feed gives it (the panel shows only `https://` ones).
    #[serde(default)]
    pub image_link: String,
    /// The brand, as the feed writes it.
    #[serde(default)]
    pub brand: String,
}

/// The catalog product an inbound message is about: WhatsApp's `context.referred_product`
/// (`catalog_id`, `product_retailer_id`), a Messenger Shops or Instagram Shop message's
/// `referral.product.id`, or the product a Meta ad names (`ads_context_data.product_id`).
/// Read it with [`InboundEvent::product`]; both ids are capped like every referral label
/// (`contact::bounds`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductRef {
    /// The catalog, when Meta names it (WhatsApp does; Messenger and Instagram do not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_id: Option<String>,
    /// The product: its retailer id on WhatsApp (the feed's `id`), Meta's product id on
    /// Messenger and Instagram.
    pub product_id: String,
}

impl InboundEvent {
    /// The catalog product this event is about, when its referral names one (a `product`
    /// referral, or an ad, post or link referral that carries a product).
    pub fn product(&self) -> Option<ProductRef> {
        let facts = self.referral.as_ref().and_then(Referral::meta_facts)?;
        Some(ProductRef {
            catalog_id: facts.catalog_id.clone(),
            product_id: facts.product_id.clone()?,
        })
    }
}

/// The catalog product a contact's acquisition names: a `product` acquisition's, or a Meta
/// ad's that carries a product.
fn acquisition_product(contact: &crate::contact::Contact) -> Option<&crate::contact::MetaReferral> {
    match &contact.acquisition {
        Some(crate::contact::Acquisition::Product(referral))
        | Some(crate::contact::Acquisition::MetaAd(referral)) => {
            referral.product_id.as_ref().map(|_| referral)
        }
        _ => None,
    }
}

/// The products `contacts` (a page of them) were acquired through, by (catalog, id): one
/// lookup, each product under its own catalog and under [`ANY_CATALOG`]. Messenger and
/// Instagram name Meta's product id, not the feed's, so theirs are found only when a feed's
/// `id` is that number.
pub async fn products_for_contacts(
    store: &dyn store::CatalogStore,
    contacts: &[crate::contact::Contact],
) -> Result<std::collections::BTreeMap<(String, String), Product>, crate::store::StoreError> {
    let mut keys: Vec<(String, String)> = Vec::new();
    for referral in contacts.iter().filter_map(acquisition_product) {
        let id = referral.product_id.clone().unwrap_or_default();
        if let Some(catalog) = &referral.catalog_id {
            keys.push((catalog.clone(), id.clone()));
        }
        keys.push((ANY_CATALOG.to_owned(), id));
    }
    keys.truncate(store::MAX_PRODUCT_LOOKUP);
    if keys.is_empty() {
        return Ok(Default::default());
    }
    Ok(store
        .products(&keys)
        .await?
        .into_iter()
        .map(|product| ((product.catalog.clone(), product.id.clone()), product))
        .collect())
}

/// The product a contact view's acquisition names, from the page's `products`: its own
/// catalog's first, then the catalog-less import's; `None` for an id no feed named.
pub fn product_of<'a>(
    view: &serde_json::Value,
    products: &'a std::collections::BTreeMap<(String, String), Product>,
) -> Option<&'a Product> {
    let acquisition = &view["acquisition"];
    let id = acquisition["product_id"].as_str()?.to_owned();
    let own = acquisition["catalog_id"]
        .as_str()
        .and_then(|catalog| products.get(&(catalog.to_owned(), id.clone())));
    own.or_else(|| products.get(&(ANY_CATALOG.to_owned(), id)))
}

/// Adds the product's details to the contact view's acquisition (`product: {title, price,
/// sale_price?, currency, image_link, description, link, availability}`) when a feed named
/// it; an unknown id keeps `product_id` alone.
pub fn show_product(
    view: &mut serde_json::Value,
    products: &std::collections::BTreeMap<(String, String), Product>,
) {
    let Some(product) = product_of(view, products) else {
        return;
    };
    let mut shown = serde_json::json!({
        "title": product.title,
        "price": product.price,
        "currency": product.currency,
        "image_link": product.image_link,
        "description": product.description,
        "link": product.link,
        "availability": product.availability,
    });
    if let Some(sale) = product.sale_price {
        shown["sale_price"] = serde_json::json!(sale);
    }
    view["acquisition"]["product"] = shown;
}
