//! A Meta catalog feed as the business downloads or keeps it: a CSV (or tab-separated) file
//! with a header naming `id`, `title`, `price` and Meta's other columns, in any order, maybe
//! after a UTF-8 BOM. Each line gives a product or a reason it was skipped.

use crate::catalog::store::CatalogStore;
use crate::catalog::{
    MAX_DESCRIPTION_CHARS, MAX_LINK_BYTES, MAX_PRODUCTS, MAX_SHORT_BYTES, MAX_TITLE_CHARS,
    META_PRODUCT_IDS, Product,
};
use crate::revenue::money::{Amount, Currency};
use crate::spend::Upserted;
use crate::spend::import::{Skipped, first_reasons, line_of};
use serde::Serialize;

/// Why a feed gave nothing at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// No header line with the columns every feed has.
    #[error("no header line with the feed's id, title and price columns")]
    NoHeader,
    /// Not UTF-8 text, or not CSV.
    #[error("the file is not UTF-8 CSV: {0}")]
    Unreadable(String),
    /// More products than one call takes.
    #[error("the file has more than {MAX_PRODUCTS} products; split it")]
    TooManyRows,
    /// A header, but no line gave a product.
    #[error("no usable row; skipped: {0}")]
    NoRows(String),
}

/// Why an import stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum FeedFailure {
    /// The file gave no product.
    #[error(transparent)]
    File(#[from] FeedError),
    /// The store refused the products.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// What an import did: `{"imported", "replaced", "skipped"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Imported {
    /// Products new and products replaced.
    #[serde(flatten)]
    pub upserted: Upserted,
    /// Lines that gave no product, with their reasons.
    pub skipped: Vec<Skipped>,
}

/// What a feed gave: its products and the lines it skipped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    /// Products to store.
    pub products: Vec<Product>,
    /// The same products again under [`META_PRODUCT_IDS`] and Meta's product id, for the lines
    /// that give one (`fb_product_id`): how Messenger and Instagram name them.
    pub by_meta_id: Vec<Product>,
    /// Lines after the header that gave no product.
    pub skipped: Vec<Skipped>,
}

/// Reads `file` as a feed of `catalog` and stores its products: each replaces the product
/// stored under its id, and products the file does not name stay (a feed may come in parts).
pub async fn import_into(
    store: &dyn CatalogStore,
    catalog: &str,
    file: &[u8],
) -> Result<Imported, FeedFailure> {
    let parsed = parse_feed(catalog, file)?;
    let upserted = store.upsert_products(&parsed.products).await?;
    // Counted once, as the lines they come from.
    store.upsert_products(&parsed.by_meta_id).await?;
    tracing::info!(
        products = parsed.products.len(),
        skipped = parsed.skipped.len(),
        "catalog imported"
    );
    Ok(Imported {
        upserted,
        skipped: parsed.skipped,
    })
}

/// Where each column sits in the header.
struct Layout {
    id: usize,
    title: usize,
    price: usize,
    description: Option<usize>,
    availability: Option<usize>,
    condition: Option<usize>,
    sale_price: Option<usize>,
    link: Option<usize>,
    image_link: Option<usize>,
    brand: Option<usize>,
    fb_product_id: Option<usize>,
}

fn layout(header: &csv::StringRecord) -> Option<Layout> {
    let names: Vec<String> = header
        .iter()
        .map(|cell| {
            cell.trim()
                .trim_start_matches('\u{feff}')
                .trim()
                .to_lowercase()
        })
        .collect();
    let find = |name: &str| names.iter().position(|cell| cell == name);
    Some(Layout {
        id: find("id")?,
        title: find("title")?,
        price: find("price")?,
        description: find("description"),
        availability: find("availability"),
        condition: find("condition"),
        sale_price: find("sale_price"),
        link: find("link"),
        image_link: find("image_link"),
        brand: find("brand"),
        fb_product_id: find("fb_product_id").or_else(|| find("meta_product_id")),
    })
}

fn cell(record: &csv::StringRecord, at: Option<usize>) -> &str {
    at.and_then(|at| record.get(at)).unwrap_or("").trim()
}

/// `9.99 USD` (Meta's format; `USD 9.99` is read too) → the amount and its currency.
pub fn feed_price(name: &str, text: &str) -> Result<(Amount, Currency), String> {
    let shown: String = text.chars().take(40).collect();
    let mut parts = text.split_whitespace();
    let (Some(first), Some(second), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!(
            "{name} {shown:?} is not an amount and a currency such as 9.99 USD"
        ));
    };
    let (number, code) = if first.starts_with(|c: char| c.is_ascii_digit()) {
        (first, second)
    } else {
        (second, first)
    };
    let currency = Currency::parse(code)
        .map_err(|_| format!("{name}: currency {code:?} is not a 3-letter ISO 4217 code"))?;
    let amount = Amount::parse_payout(number).map_err(|e| format!("{name}: {e}"))?;
    Ok((amount, currency))
}

/// A text cell at most `max` characters long.
fn bounded(name: &str, text: &str, max: usize) -> Result<String, String> {
    if text.chars().count() > max {
        return Err(format!("{name} is longer than {max} characters"));
    }
    Ok(text.to_owned())
}

/// A link cell: empty, or an `http(s)://` URL of at most [`MAX_LINK_BYTES`].
fn link(name: &str, text: &str) -> Result<String, String> {
    let lower = text.to_ascii_lowercase();
    if !(text.is_empty() || lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err(format!("{name} is not an http(s) URL"));
    }
    if text.len() > MAX_LINK_BYTES {
        return Err(format!("{name} is longer than {MAX_LINK_BYTES} bytes"));
    }
    Ok(text.to_owned())
}

/// Longest Meta product id: they are 15 to 17 digits today.
const MAX_META_PRODUCT_ID_DIGITS: usize = 20;

/// A line's `fb_product_id`: empty, or Meta's product id (digits).
fn meta_product_id(text: &str) -> Result<Option<String>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > MAX_META_PRODUCT_ID_DIGITS || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "fb_product_id is not Meta's product id: 1 to {MAX_META_PRODUCT_ID_DIGITS} digits"
        ));
    }
    Ok(Some(text.to_owned()))
}

/// A line's product, and Meta's id for it when the line gives one.
fn product_of(
    catalog: &str,
    layout: &Layout,
    record: &csv::StringRecord,
) -> Result<(Product, Option<String>), String> {
    let id = cell(record, Some(layout.id));
    if id.is_empty() {
        return Err("no id".to_owned());
    }
    if id.len() > crate::contact::bounds::MAX_REFERRAL_LABEL_BYTES {
        return Err(format!(
            "id is longer than {} bytes",
            crate::contact::bounds::MAX_REFERRAL_LABEL_BYTES
        ));
    }
    let title = bounded("title", cell(record, Some(layout.title)), MAX_TITLE_CHARS)?;
    if title.is_empty() {
        return Err("no title".to_owned());
    }
    let (price, currency) = feed_price("price", cell(record, Some(layout.price)))?;
    let sale_price = match cell(record, layout.sale_price) {
        "" => None,
        text => {
            let (amount, sale_currency) = feed_price("sale_price", text)?;
            if sale_currency != currency {
                return Err("sale_price is in another currency than price".to_owned());
            }
            Some(amount)
        }
    };
    let short = |name: &str, at| bounded(name, cell(record, at), MAX_SHORT_BYTES);
    let meta_id = meta_product_id(cell(record, layout.fb_product_id))?;
    let product = Product {
        catalog: catalog.to_owned(),
        id: id.to_owned(),
        title,
        description: bounded(
            "description",
            cell(record, layout.description),
            MAX_DESCRIPTION_CHARS,
        )?,
        availability: short("availability", layout.availability)?,
        condition: short("condition", layout.condition)?,
        price,
        sale_price,
        currency,
        link: link("link", cell(record, layout.link))?,
        image_link: link("image_link", cell(record, layout.image_link))?,
        brand: short("brand", layout.brand)?,
    };
    Ok((product, meta_id))
}

/// Reads a feed of `catalog`: the first line is its header (comma- or tab-separated, whichever
/// it holds); after it each line gives a product or a [`Skipped`] reason (a blank line gives
/// neither). The same id twice: the later line wins, the earlier is skipped.
pub fn parse_feed(catalog: &str, bytes: &[u8]) -> Result<Parsed, FeedError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let header_line = bytes
        .split(|byte| *byte == b'\n')
        .next()
        .unwrap_or_default();
    let delimiter = if header_line.contains(&b'\t') && !header_line.contains(&b',') {
        b'\t'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(bytes);
    let mut records = reader.records();
    let header = match records.next() {
        Some(record) => record.map_err(|error| FeedError::Unreadable(error.to_string()))?,
        None => return Err(FeedError::NoHeader),
    };
    let layout = layout(&header).ok_or(FeedError::NoHeader)?;
    let mut parsed = Parsed::default();
    let mut lines: std::collections::HashMap<String, (usize, u64)> = Default::default();
    let mut meta_ids: Vec<Option<String>> = Vec::new();
    for record in records {
        let record = record.map_err(|error| FeedError::Unreadable(error.to_string()))?;
        let line = line_of(bytes, record.position());
        if record.iter().all(|value| value.trim().is_empty()) {
            continue;
        }
        match product_of(catalog, &layout, &record) {
            Ok((product, meta_id)) => {
                if let Some((at, earlier)) = lines.get(&product.id).copied() {
                    parsed.products[at] = product;
                    meta_ids[at] = meta_id;
                    parsed.skipped.push(Skipped {
                        line: earlier,
                        reason: format!("the id comes again on line {line}"),
                    });
                    lines.insert(parsed.products[at].id.clone(), (at, line));
                    continue;
                }
                if parsed.products.len() == MAX_PRODUCTS {
                    return Err(FeedError::TooManyRows);
                }
                lines.insert(product.id.clone(), (parsed.products.len(), line));
                parsed.products.push(product);
                meta_ids.push(meta_id);
            }
            Err(reason) => parsed.skipped.push(Skipped { line, reason }),
        }
    }
    parsed.skipped.sort_by_key(|skip| skip.line);
    parsed.by_meta_id = parsed
        .products
        .iter()
        .zip(meta_ids)
        .filter_map(|(product, meta_id)| {
            Some(Product {
                catalog: META_PRODUCT_IDS.to_owned(),
                id: meta_id?,
                ..product.clone()
            })
        })
        .collect();
    if parsed.products.is_empty() {
        return Err(FeedError::NoRows(first_reasons(&parsed.skipped)));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_read_as_meta_writes_them() {
        let (amount, currency) = feed_price("price", "9.99 USD").unwrap();
        assert_eq!(
            (amount.to_string().as_str(), currency.as_str()),
            ("9.99", "USD")
        );
        assert!(feed_price("price", "9.99").is_err());
        assert!(feed_price("price", "9,99 USD").is_err());
        assert!(feed_price("price", "9.99 DOLLARS").is_err());
    }
}
