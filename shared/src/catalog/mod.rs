//! Catalog products: the product a conversation came from, and the catalog feed that names it.

use crate::contact::Referral;
use crate::ingest::InboundEvent;
use serde::{Deserialize, Serialize};

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
