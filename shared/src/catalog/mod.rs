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

/// The pseudo-catalog a feed's `fb_product_id` column files products under: Messenger and
/// Instagram name a product by Meta's own product id, not the feed's `id`, and no real catalog
/// id has letters.
pub const META_PRODUCT_IDS: &str = "meta-product-id";

/// Products found for a page of contacts, by (catalog, id).
pub type Products = std::collections::BTreeMap<(String, String), Product>;

/// The keys a product named by `catalog` (when the channel names one) and `id` may be stored
/// under, in the order they are preferred: its own catalog's, then the catalog-less import's;
/// and, for a channel that names no catalog (Messenger, Instagram), Meta's product id.
fn lookup_keys(catalog: Option<&str>, id: &str) -> Vec<(String, String)> {
    let mut keys = Vec::with_capacity(2);
    if let Some(catalog) = catalog {
        keys.push((catalog.to_owned(), id.to_owned()));
    }
    keys.push((ANY_CATALOG.to_owned(), id.to_owned()));
    if catalog.is_none() {
        keys.push((META_PRODUCT_IDS.to_owned(), id.to_owned()));
    }
    keys
}

/// The product `catalog` and `id` name among `products`, by [`lookup_keys`]' preference;
/// `None` for an id no feed named.
pub fn find<'a>(products: &'a Products, catalog: Option<&str>, id: &str) -> Option<&'a Product> {
    lookup_keys(catalog, id)
        .iter()
        .find_map(|key| products.get(key))
}

/// The catalog product a contact's acquisition names: a `product` acquisition's, or a Meta
/// ad's that carries a product.
fn acquisition_product(contact: &crate::contact::Contact) -> Option<(Option<&str>, &str)> {
    match &contact.acquisition {
        Some(crate::contact::Acquisition::Product(referral))
        | Some(crate::contact::Acquisition::MetaAd(referral)) => referral
            .product_id
            .as_deref()
            .map(|id| (referral.catalog_id.as_deref(), id)),
        _ => None,
    }
}

/// The products an event names, as (catalog, id): a `product_inquiry`'s product and an
/// `order_placed`'s lines (their retailer ids, in the order's catalog). Read from the
/// properties the engine writes, so the stored event and its API view give the same.
pub fn event_products<'a>(
    name: &str,
    properties: &'a serde_json::Map<String, serde_json::Value>,
) -> Vec<(Option<&'a str>, &'a str)> {
    let catalog = properties
        .get("catalog_id")
        .and_then(serde_json::Value::as_str);
    match name {
        crate::events::PRODUCT_INQUIRY => properties
            .get("product_id")
            .and_then(serde_json::Value::as_str)
            .map(|id| vec![(catalog, id)])
            .unwrap_or_default(),
        crate::events::ORDER_PLACED => properties
            .get("items")
            .and_then(serde_json::Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item["product_retailer_id"].as_str())
                    .map(|id| (catalog, id))
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The products `contacts` (a page of them) name, by (catalog, id), in one lookup: each
/// acquisition's product, then the products of their events (`product_inquiry`,
/// `order_placed` lines), at most [`store::MAX_PRODUCT_LOOKUP`] keys — acquisitions first, so a
/// page's contacts always show theirs; an event's product past the bound shows its id alone.
pub async fn products_for_contacts(
    store: &dyn store::CatalogStore,
    contacts: &[crate::contact::Contact],
) -> Result<Products, crate::store::StoreError> {
    let acquired = contacts.iter().filter_map(acquisition_product);
    let in_events = contacts.iter().flat_map(|contact| {
        contact
            .events
            .kept
            .iter()
            .flat_map(|event| event_products(&event.name, &event.properties))
    });
    let mut seen = std::collections::BTreeSet::new();
    let keys: Vec<(String, String)> = acquired
        .chain(in_events)
        .flat_map(|(catalog, id)| lookup_keys(catalog, id))
        .filter(|key| seen.insert(key.clone()))
        .take(store::MAX_PRODUCT_LOOKUP)
        .collect();
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

/// The product a contact view's acquisition names, from the page's `products`.
pub fn product_of<'a>(view: &serde_json::Value, products: &'a Products) -> Option<&'a Product> {
    let acquisition = &view["acquisition"];
    find(
        products,
        acquisition["catalog_id"].as_str(),
        acquisition["product_id"].as_str()?,
    )
}

/// A product as the contact API shows it: `{title, price, sale_price?, currency, image_link,
/// description, link, availability}`.
fn shown(product: &Product) -> serde_json::Value {
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
    shown
}

/// Adds the products a feed named to the contact view: the acquisition's as
/// `acquisition.product`, and each event's as `products: {<product id>: …}` (a
/// `product_inquiry`'s one, an order's lines'). An unknown id keeps its id alone.
pub fn show_products(view: &mut serde_json::Value, products: &Products) {
    if let Some(product) = product_of(view, products) {
        view["acquisition"]["product"] = shown(product);
    }
    let Some(events) = view["events"].as_array_mut() else {
        return;
    };
    for event in events {
        let name = event["name"].as_str().unwrap_or_default().to_owned();
        let Some(properties) = event["properties"].as_object() else {
            continue;
        };
        let named: serde_json::Map<String, serde_json::Value> = event_products(&name, properties)
            .into_iter()
            .filter_map(|(catalog, id)| Some((id.to_owned(), shown(find(products, catalog, id)?))))
            .collect();
        if !named.is_empty() {
            event["products"] = named.into();
        }
    }
}
