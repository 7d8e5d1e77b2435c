//! Ad spend: what the ads cost and what they are called, per platform, day, campaign, ad set
//! and ad, from the admin's JSON rows, the CSV exports people download (`import`) and Meta's
//! Insights API (`insights`); and the report that sets it against the conversations and the
//! revenue the ads brought (`report`). Amounts are exact decimals, never summed across
//! currencies.

pub mod import;
pub mod insights;
pub mod report;
pub mod store;

use crate::fields::FieldError;
use crate::revenue::money::{Amount, Currency};
use crate::time::accepted_day;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most rows one `POST /spend` (or one import, or one Insights pull) may carry.
pub const MAX_ROWS: usize = 5_000;
/// Longest campaign, ad set or ad name kept, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Longest ad id: Meta's are 18 digits; other platforms' are shorter.
pub const MAX_AD_ID_BYTES: usize = 64;
/// Impressions and clicks past this are not one ad's day.
pub const MAX_COUNT: u64 = 1_000_000_000_000;

/// The Meta apps' platforms: their ads share one ad account, booked as `meta`.
const META_APPS: [&str; 3] = ["facebook", "instagram", "whatsapp"];

/// The platform `text` names (case-insensitive): `meta` (its ads run on Facebook, Instagram
/// and WhatsApp alike, from one account), `other`, or one of the other platforms the rules and
/// the web know ([`crate::stats::PLATFORMS`]). A fixed list, so a report's platform rows stay a
/// short list.
pub fn platform(text: &str) -> Option<&'static str> {
    let text = text.trim().to_ascii_lowercase();
    ["meta", "other"]
        .into_iter()
        .chain(
            crate::stats::PLATFORMS
                .into_iter()
                .filter(|p| !META_APPS.contains(p)),
        )
        .find(|known| *known == text)
}

/// One day of one ad's (or ad set's, or campaign's) spend. Its key is (platform, date,
/// campaign, ad_set, ad_id): a row sent again under the same key replaces the stored one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendRow {
    /// The UTC day, `YYYY-MM-DD`.
    pub date: String,
    /// A platform [`platform`] accepts.
    pub platform: String,
    /// The campaign's name as the platform shows it.
    pub campaign: String,
    /// The ad set (ad group), empty when the row is for a whole campaign.
    #[serde(default)]
    pub ad_set: String,
    /// The platform's ad id, empty when the row names no ad.
    #[serde(default)]
    pub ad_id: String,
    /// The ad's name.
    #[serde(default)]
    pub ad_name: Option<String>,
    /// What was spent.
    pub spend: Amount,
    /// The currency of `spend`.
    pub currency: Currency,
    /// Impressions.
    #[serde(default)]
    pub impressions: u64,
    /// Clicks.
    #[serde(default)]
    pub clicks: u64,
}

/// `#` separates the key's parts and `%` escapes, so names holding either cannot collide.
fn escaped(part: &str) -> String {
    part.replace('%', "%25").replace('#', "%23")
}

impl SpendRow {
    /// The row's key within its day: platform, campaign, ad set and ad id.
    pub fn key(&self) -> String {
        [&self.platform, &self.campaign, &self.ad_set, &self.ad_id]
            .map(|part| escaped(part))
            .join("#")
    }

    /// The names this row gives its ad, when it has an ad id.
    pub fn ad_names(&self) -> Option<AdNames> {
        (!self.ad_id.is_empty()).then(|| AdNames {
            ad_id: self.ad_id.clone(),
            ad_name: self.ad_name.clone(),
            ad_set_name: (!self.ad_set.is_empty()).then(|| self.ad_set.clone()),
            campaign_name: self.campaign.clone(),
            date: self.date.clone(),
        })
    }
}

/// What an ad is called, from the latest day of spend that named it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdNames {
    /// The ad id.
    pub ad_id: String,
    /// The ad's name.
    pub ad_name: Option<String>,
    /// Its ad set's name.
    pub ad_set_name: Option<String>,
    /// Its campaign's name.
    pub campaign_name: String,
    /// The day of the row the names came from: a later day's names win.
    pub date: String,
}

/// A name as kept: trimmed, at most [`MAX_NAME_BYTES`], no control characters.
pub fn checked_name(field: &str, text: &str) -> Result<String, FieldError> {
    let text = text.trim();
    if text.len() > MAX_NAME_BYTES || text.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_NAME_BYTES} bytes without control characters"),
        ));
    }
    Ok(text.to_owned())
}

/// An ad id: ASCII letters, digits, `_` and `-`, at most [`MAX_AD_ID_BYTES`].
pub fn checked_ad_id(field: &str, text: &str) -> Result<String, FieldError> {
    let text = text.trim();
    let fine = text.len() <= MAX_AD_ID_BYTES
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !fine {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_AD_ID_BYTES} letters, digits, _ or -"),
        ));
    }
    Ok(text.to_owned())
}

/// A `YYYY-MM-DD` day in the accepted years.
pub fn checked_day(field: &str, text: &str) -> Result<String, FieldError> {
    chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|day| accepted_day(day).ok())
        .map(|day| day.format("%Y-%m-%d").to_string())
        .ok_or_else(|| FieldError::new(field, "must be a day, YYYY-MM-DD, from 2000 to 2100"))
}

/// A spend amount: 0 to [`crate::revenue::money::MAX_PAYOUT`], at most 6 decimals.
pub fn checked_spend(field: &str, text: &str) -> Result<Amount, FieldError> {
    Amount::parse_payout(text).map_err(|error| FieldError::new(field, error.to_string()))
}

/// A count of impressions or clicks, 0 to [`MAX_COUNT`].
pub fn checked_count(field: &str, value: u64) -> Result<u64, FieldError> {
    if value > MAX_COUNT {
        return Err(FieldError::new(
            field,
            format!("must be from 0 to {MAX_COUNT}"),
        ));
    }
    Ok(value)
}

const ROW_FIELDS: [&str; 10] = [
    "date",
    "platform",
    "campaign",
    "ad_set",
    "ad_id",
    "ad_name",
    "spend",
    "currency",
    "impressions",
    "clicks",
];

fn text_of<'a>(value: &'a Value, field: &str) -> Result<std::borrow::Cow<'a, str>, FieldError> {
    match value {
        Value::String(text) => Ok(text.as_str().into()),
        Value::Number(number) => Ok(number.to_string().into()),
        _ => Err(FieldError::new(field, "must be a string")),
    }
}

/// One row of `POST /spend`, fields named `[index].field` when refused.
fn row_from_json(prefix: &str, value: &Value) -> Result<SpendRow, FieldError> {
    let Value::Object(object) = value else {
        return Err(FieldError::new(prefix, "must be a JSON object"));
    };
    crate::fields::reject_unknown(object, &format!("{prefix}."), &ROW_FIELDS, &[])?;
    let field = |name: &str| format!("{prefix}.{name}");
    let required = |name: &str| {
        object
            .get(name)
            .filter(|value| !value.is_null())
            .ok_or_else(|| FieldError::new(field(name), "is required"))
            .and_then(|value| text_of(value, &field(name)).map(|text| text.into_owned()))
    };
    let optional = |name: &str| {
        object
            .get(name)
            .filter(|value| !value.is_null())
            .map(|value| text_of(value, &field(name)).map(|text| text.into_owned()))
            .transpose()
    };
    let count = |name: &str| match object.get(name) {
        None | Some(Value::Null) => Ok(0),
        Some(value) => value
            .as_u64()
            .ok_or_else(|| FieldError::new(field(name), "must be a whole number"))
            .and_then(|count| checked_count(&field(name), count)),
    };
    let platform_text = required("platform")?;
    let campaign = checked_name(&field("campaign"), &required("campaign")?)?;
    if campaign.is_empty() {
        return Err(FieldError::new(field("campaign"), "must not be empty"));
    }
    Ok(SpendRow {
        date: checked_day(&field("date"), &required("date")?)?,
        platform: platform(&platform_text)
            .ok_or_else(|| {
                FieldError::new(
                    field("platform"),
                    "must be meta, other, or a platform of the rules (tiktok, google, …)",
                )
            })?
            .to_owned(),
        campaign,
        ad_set: checked_name(&field("ad_set"), &optional("ad_set")?.unwrap_or_default())?,
        ad_id: checked_ad_id(&field("ad_id"), &optional("ad_id")?.unwrap_or_default())?,
        ad_name: optional("ad_name")?
            .map(|name| checked_name(&field("ad_name"), &name))
            .transpose()?
            .filter(|name| !name.is_empty()),
        spend: checked_spend(&field("spend"), &required("spend")?)?,
        currency: Currency::parse(&required("currency")?)
            .map_err(|error| FieldError::new(field("currency"), error.to_string()))?,
        impressions: count("impressions")?,
        clicks: count("clicks")?,
    })
}

/// The rows of `POST /spend`: a JSON array of 1 to [`MAX_ROWS`] rows, each checked; the first
/// refusal names its row (`[3].spend`) and nothing is stored.
pub fn rows_from_json(body: &[u8]) -> Result<Vec<SpendRow>, FieldError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| FieldError::new("body", format!("is not valid JSON: {error}")))?;
    let Value::Array(items) = value else {
        return Err(FieldError::new(
            "body",
            "must be a JSON array of spend rows",
        ));
    };
    if items.is_empty() || items.len() > MAX_ROWS {
        return Err(FieldError::new(
            "body",
            format!("must hold 1 to {MAX_ROWS} rows"),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| row_from_json(&format!("[{index}]"), item))
        .collect()
}

/// The Meta ad ids `contacts` were acquired by, each once, at most
/// [`store::MAX_AD_LOOKUP`].
pub fn acquisition_ad_ids(contacts: &[crate::contact::Contact]) -> Vec<String> {
    let ids: std::collections::BTreeSet<String> = contacts
        .iter()
        .filter_map(|contact| match &contact.acquisition {
            Some(crate::contact::Acquisition::MetaAd(referral)) => referral.ad_id.clone(),
            _ => None,
        })
        .collect();
    ids.into_iter().take(store::MAX_AD_LOOKUP).collect()
}

/// The names of the ads that acquired `contacts` (a page of them), by ad id: one lookup.
pub async fn names_for_contacts(
    store: &dyn store::SpendStore,
    contacts: &[crate::contact::Contact],
) -> Result<std::collections::BTreeMap<String, AdNames>, crate::store::StoreError> {
    let ids = acquisition_ad_ids(contacts);
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let names = store.ad_names(&ids).await?;
    Ok(names
        .into_iter()
        .map(|names| (names.ad_id.clone(), names))
        .collect())
}

/// Adds the names of the contact view's ad (`acquisition.ad_name`, `ad_set_name`,
/// `campaign_name`) when a spend row named it.
pub fn name_ad(view: &mut Value, names: &std::collections::BTreeMap<String, AdNames>) {
    let acquisition = &mut view["acquisition"];
    let known = acquisition["kind"] == "meta_ad";
    let Some(names) = acquisition["ad_id"]
        .as_str()
        .filter(|_| known)
        .and_then(|id| names.get(id))
    else {
        return;
    };
    let names = names.clone();
    acquisition["ad_name"] = names.ad_name.into();
    acquisition["ad_set_name"] = names.ad_set_name.into();
    acquisition["campaign_name"] = names.campaign_name.into();
}

/// What storing a batch of rows did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Upserted {
    /// Rows whose key was new.
    pub imported: usize,
    /// Rows that replaced the row stored under their key.
    pub replaced: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_escape_their_separator() {
        let row = |campaign: &str, ad_set: &str| SpendRow {
            date: "2026-11-24".into(),
            platform: "meta".into(),
            campaign: campaign.into(),
            ad_set: ad_set.into(),
            ad_id: String::new(),
            ad_name: None,
            spend: Amount::ZERO,
            currency: Currency::USD,
            impressions: 0,
            clicks: 0,
        };
        assert_ne!(row("a#b", "c").key(), row("a", "b#c").key());
        assert_eq!(row("a", "b").key(), "meta#a#b#");
    }

    #[test]
    fn json_rows_are_checked_field_by_field() {
        let rows = rows_from_json(
            br#"[{"date":"2026-11-24","platform":"Meta","campaign":"C","ad_id":"120","ad_name":"A","spend":"10.50","currency":"usd","impressions":3,"clicks":1}]"#,
        )
        .unwrap();
        assert_eq!(rows[0].platform, "meta");
        assert_eq!(rows[0].spend.to_string(), "10.50");
        assert_eq!(rows[0].ad_names().unwrap().campaign_name, "C");
        let refused = |body: &str| rows_from_json(body.as_bytes()).unwrap_err().field;
        assert_eq!(
            refused(
                r#"[{"date":"2026-13-01","platform":"meta","campaign":"C","spend":"1","currency":"USD"}]"#
            ),
            "[0].date"
        );
        assert_eq!(
            refused(
                r#"[{"date":"2026-11-01","platform":"myspace","campaign":"C","spend":"1","currency":"USD"}]"#
            ),
            "[0].platform"
        );
        assert_eq!(
            refused(
                r#"[{"date":"2026-11-01","platform":"meta","campaign":"C","spend":"-1","currency":"USD"}]"#
            ),
            "[0].spend"
        );
        assert_eq!(
            refused(
                r#"[{"date":"2026-11-01","platform":"meta","campaign":"C","spend":"1","currency":"USD","extra":1}]"#
            ),
            "[0].extra"
        );
        assert_eq!(refused("[]"), "body");
    }
}
