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
