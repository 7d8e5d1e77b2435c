//! Offers, sends, clicks and conversions: the records behind revenue attribution.

use crate::fields::{
    FieldError, json_object, optional_string, present, reject_unknown, required_string,
};
use crate::ids::{ContactId, InstanceId, OfferId};
use crate::revenue::money::{Amount, Currency};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An offer's click window when the admin names none, in days.
pub const DEFAULT_CLICK_WINDOW_DAYS: u32 = 90;
/// The longest click window an offer may have, in days.
pub const MAX_CLICK_WINDOW_DAYS: u32 = 365;
/// The longest view-through window an offer may have, in days (0 turns view-through off).
pub const MAX_VIEW_WINDOW_DAYS: u32 = 30;
/// Longest `name`, `campaign` and `creative`, in characters.
pub const MAX_LABEL_CHARS: usize = 200;
/// Longest destination URL, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// Where an offer's tracked links lead. `{click_id}` in it is replaced by the click id;
/// without it, `click_id=<id>` is added to the query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DestinationUrl(String);

impl DestinationUrl {
    /// Where the click id goes in the destination URL.
    pub const CLICK_ID_PLACEHOLDER: &'static str = "{click_id}";

    /// An absolute http(s) URL within `MAX_URL_BYTES`, or why not.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.len() > MAX_URL_BYTES {
            return Err(format!("must be at most {MAX_URL_BYTES} bytes"));
        }
        let parsed = url::Url::parse(text).map_err(|error| format!("is not a URL: {error}"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err("must be an http or https URL with a host".to_owned());
        }
        Ok(Self(text.to_owned()))
    }

    /// The URL as the admin gave it, placeholder included.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL a click is redirected to.
    pub fn for_click(&self, click_id: &str) -> String {
        if self.0.contains(Self::CLICK_ID_PLACEHOLDER) {
            return self.0.replace(Self::CLICK_ID_PLACEHOLDER, click_id);
        }
        match url::Url::parse(&self.0) {
            Ok(mut url) => {
                url.query_pairs_mut().append_pair("click_id", click_id);
                url.into()
            }
            // Parsed when stored, so this does not happen; the bare URL still gets them there.
            Err(_) => self.0.clone(),
        }
    }
}

/// Something an affiliate platform pays for, which tracked links in messages lead to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// The offer's id, as named in sends and postbacks.
    pub offer_id: OfferId,
    /// The admin's name for it.
    pub name: String,
    /// Where its links redirect.
    pub destination_url: DestinationUrl,
    /// How long after a click a conversion is still credited to it, in days.
    pub click_window_days: u32,
    /// How long after a send carrying the offer a conversion without a click in the click
    /// window is credited view-through to that send, in days; 0: never.
    #[serde(default)]
    pub view_window_days: u32,
    /// What a conversion pays when its postback names no payout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout: Option<Amount>,
    /// The currency of the offer's sends and clicks in reports (conversions carry their own).
    pub currency: Currency,
    /// When it was first created.
    pub created_at: Timestamp,
    /// When it was last changed.
    pub updated_at: Timestamp,
}

/// An offer as `POST /offers` and `PUT /offers/{id}` take it, parsed and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferDraft {
    /// The id the admin chose; `None`: the server makes one up.
    pub offer_id: Option<OfferId>,
    /// See [`Offer::name`].
    pub name: String,
    /// See [`Offer::destination_url`].
    pub destination_url: DestinationUrl,
    /// See [`Offer::click_window_days`].
    pub click_window_days: u32,
    /// See [`Offer::view_window_days`].
    pub view_window_days: u32,
    /// See [`Offer::payout`].
    pub payout: Option<Amount>,
    /// See [`Offer::currency`].
    pub currency: Currency,
}

const OFFER_FIELDS: [&str; 7] = [
    "offer_id",
    "name",
    "destination_url",
    "click_window_days",
    "view_window_days",
    "payout",
    "currency",
];
const OFFER_SERVER_FIELDS: [&str; 2] = ["created_at", "updated_at"];

impl OfferDraft {
    /// Reads an offer body, refusing unknown and server-set fields by name.
    pub fn from_json(body: &[u8]) -> Result<Self, FieldError> {
        let object = json_object(body)?;
        reject_unknown(&object, "", &OFFER_FIELDS, &OFFER_SERVER_FIELDS)?;
        let offer_id = optional_string(&object, "offer_id")?
            .map(|id| OfferId::parse(&id).map_err(|e| FieldError::new("offer_id", e.to_string())))
            .transpose()?;
        let name = label(&object, "name")?;
        let destination_url = DestinationUrl::parse(&required_string(&object, "destination_url")?)
            .map_err(|message| FieldError::new("destination_url", message))?;
        let click_window_days = days_field(
            &object,
            "click_window_days",
            1,
            MAX_CLICK_WINDOW_DAYS,
            DEFAULT_CLICK_WINDOW_DAYS,
        )?;
        let view_window_days = days_field(&object, "view_window_days", 0, MAX_VIEW_WINDOW_DAYS, 0)?;
        let payout = amount_field(&object, "payout")?;
        let currency = currency_field(&object, "currency")?.unwrap_or(Currency::USD);
        Ok(Self {
            offer_id,
            name,
            destination_url,
            click_window_days,
            view_window_days,
            payout,
            currency,
        })
    }

    /// The stored offer, with its id and timestamps.
    pub fn into_offer(self, offer_id: OfferId, created_at: Timestamp, now: Timestamp) -> Offer {
        Offer {
            offer_id,
            name: self.name,
            destination_url: self.destination_url,
            click_window_days: self.click_window_days,
            view_window_days: self.view_window_days,
            payout: self.payout,
            currency: self.currency,
            created_at,
            updated_at: now,
        }
    }
}

/// A message sent to a contact, carrying a campaign, a creative and an offer, with the code of
/// its tracked link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendRecord {
    /// The send's ULID.
    pub send_id: String,
    /// The tracked-link code that stands for this send in the message.
    pub code: String,
    /// The instance that sent the message.
    pub instance_id: InstanceId,
    /// The contact it was sent to.
    pub contact_id: ContactId,
    /// The sent message's id, to group the report by message.
    pub message_id: String,
    /// The campaign the send belongs to, for the report.
    pub campaign: String,
    /// The creative (message variant) sent, for the report.
    pub creative: String,
    /// The offer the link leads to.
    pub offer_id: OfferId,
    /// The offer's currency when the message was sent: its sends and clicks count there.
    pub currency: Currency,
    /// When the message was sent.
    pub sent_at: Timestamp,
}

/// One send of a `POST /sends` body, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendDraft {
    /// See [`SendRecord::instance_id`].
    pub instance_id: InstanceId,
    /// See [`SendRecord::contact_id`].
    pub contact_id: ContactId,
    /// The sent message's id; `None`: the send's own id stands in.
    pub message_id: Option<String>,
    /// See [`SendRecord::campaign`].
    pub campaign: String,
    /// See [`SendRecord::creative`].
    pub creative: String,
    /// See [`SendRecord::offer_id`].
    pub offer_id: OfferId,
    /// When the message was sent; `None`: now.
    pub sent_at: Option<Timestamp>,
}

/// The most sends one request may register.
pub const MAX_SENDS_PER_CALL: usize = 1_000;
const SEND_FIELDS: [&str; 7] = [
    "instance_id",
    "contact_id",
    "message_id",
    "campaign",
    "creative",
    "offer_id",
    "sent_at",
];

impl SendDraft {
    /// One send (an object) or several (an array of at most [`MAX_SENDS_PER_CALL`]); fields of
    /// array items are named `[i].field`.
    pub fn many_from_json(body: &[u8]) -> Result<(Vec<Self>, bool), FieldError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|error| FieldError::new("body", format!("is not valid JSON: {error}")))?;
        match value {
            Value::Object(object) => Ok((vec![Self::from_object(&object, "")?], false)),
            Value::Array(items) => {
                if items.is_empty() || items.len() > MAX_SENDS_PER_CALL {
                    return Err(FieldError::new(
                        "body",
                        format!("must hold 1 to {MAX_SENDS_PER_CALL} sends"),
                    ));
                }
                let sends = items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| match item {
                        Value::Object(object) => Self::from_object(object, &format!("[{index}].")),
                        _ => Err(FieldError::new(format!("[{index}]"), "must be an object")),
                    })
                    .collect::<Result<_, _>>()?;
                Ok((sends, true))
            }
            _ => Err(FieldError::new(
                "body",
                "must be a send object or an array of them",
            )),
        }
    }

    fn from_object(object: &Map<String, Value>, prefix: &str) -> Result<Self, FieldError> {
        let named =
            |error: FieldError| FieldError::new(format!("{prefix}{}", error.field), error.message);
        let parse = || -> Result<Self, FieldError> {
            reject_unknown(object, "", &SEND_FIELDS, &[])?;
            let id_error = |field: &'static str| {
                move |e: crate::ids::InvalidId| FieldError::new(field, e.to_string())
            };
            Ok(Self {
                instance_id: InstanceId::parse(&required_string(object, "instance_id")?)
                    .map_err(id_error("instance_id"))?,
                contact_id: ContactId::parse(&required_string(object, "contact_id")?)
                    .map_err(id_error("contact_id"))?,
                message_id: optional_string(object, "message_id")?
                    .map(|id| {
                        crate::ids::ContactId::parse(&id).map(|_| id).map_err(|_| {
                            FieldError::new(
                                "message_id",
                                "must be 1 to 128 visible characters without spaces or '#'",
                            )
                        })
                    })
                    .transpose()?,
                campaign: label(object, "campaign")?,
                creative: label(object, "creative")?,
                offer_id: OfferId::parse(&required_string(object, "offer_id")?)
                    .map_err(id_error("offer_id"))?,
                sent_at: optional_string(object, "sent_at")?
                    .map(|text| {
                        Timestamp::parse_rfc3339(&text)
                            .ok_or_else(|| {
                                FieldError::new("sent_at", "must be an RFC 3339 timestamp")
                            })?
                            .accepted()
                            .map_err(|e| FieldError::new("sent_at", e.to_string()))
                    })
                    .transpose()?,
            })
        };
        parse().map_err(named)
    }
}

/// A counted click on a tracked link (link-preview fetchers are not recorded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Click {
    /// The click's ULID, passed to the offer's URL and back in the postback.
    pub click_id: String,
    /// The send whose link was clicked.
    pub send_id: String,
    /// The message the link was in (copied from the send).
    pub message_id: String,
    /// The instance of the send.
    pub instance_id: InstanceId,
    /// The contact the link was sent to.
    pub contact_id: ContactId,
    /// The send's campaign.
    pub campaign: String,
    /// The send's creative.
    pub creative: String,
    /// The offer the click went to.
    pub offer_id: OfferId,
    /// The send's currency, in which the click counts.
    pub currency: Currency,
    /// When the redirect answered.
    pub clicked_at: Timestamp,
    /// The offer's click window when the click happened: like an affiliate cookie's lifetime,
    /// it is fixed at the click, so a later change of the offer applies to later clicks.
    pub click_window_days: u32,
    /// The clicking client's `User-Agent`, capped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// A keyed hash of the client address: enough to tell repeat visitors apart, never the
    /// address itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_hash: Option<String>,
}

impl Click {
    /// The click window in seconds.
    pub fn window_seconds(&self) -> i64 {
        i64::from(self.click_window_days) * 86_400
    }

    /// A click on `send`'s link, with the offer's current click window.
    pub fn new(
        click_id: String,
        send: &SendRecord,
        offer: &Offer,
        clicked_at: Timestamp,
        user_agent: Option<String>,
        ip_hash: Option<String>,
    ) -> Self {
        Self {
            click_id,
            send_id: send.send_id.clone(),
            message_id: send.message_id.clone(),
            instance_id: send.instance_id.clone(),
            contact_id: send.contact_id.clone(),
            campaign: send.campaign.clone(),
            creative: send.creative.clone(),
            offer_id: send.offer_id.clone(),
            currency: send.currency,
            clicked_at,
            click_window_days: offer.click_window_days,
            user_agent,
            ip_hash,
        }
    }
}

/// How a conversion came to be credited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attribution {
    /// To a click on a tracked link inside the click window.
    #[default]
    ClickThrough,
    /// To a send carrying the offer inside the view window, no click being in the click window.
    ViewThrough,
}

impl Attribution {
    /// Its name in answers and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClickThrough => "click_through",
            Self::ViewThrough => "view_through",
        }
    }
}

/// What a conversion's revenue is credited to: the first click (or, view-through, the first
/// send) and everything it carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credit {
    /// Click-through or view-through.
    #[serde(default)]
    pub attribution: Attribution,
    /// The credited click; empty for a view-through credit.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub click_id: String,
    /// The send whose link was clicked.
    pub send_id: String,
    /// The message the link was in.
    pub message_id: String,
    /// The campaign credited.
    pub campaign: String,
    /// The creative credited.
    pub creative: String,
    /// The offer of the click.
    pub offer_id: OfferId,
    /// When the credited click happened (view-through: when the send was sent).
    pub clicked_at: Timestamp,
}

impl Credit {
    /// A view-through credit to `send`.
    pub fn view_through(send: &SendRecord) -> Self {
        Self {
            attribution: Attribution::ViewThrough,
            click_id: String::new(),
            send_id: send.send_id.clone(),
            message_id: send.message_id.clone(),
            campaign: send.campaign.clone(),
            creative: send.creative.clone(),
            offer_id: send.offer_id.clone(),
            clicked_at: send.sent_at,
        }
    }
}

impl From<&Click> for Credit {
    fn from(click: &Click) -> Self {
        Self {
            attribution: Attribution::ClickThrough,
            click_id: click.click_id.clone(),
            send_id: click.send_id.clone(),
            message_id: click.message_id.clone(),
            campaign: click.campaign.clone(),
            creative: click.creative.clone(),
            offer_id: click.offer_id.clone(),
            clicked_at: click.clicked_at,
        }
    }
}

/// What became of a conversion's postback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversionStatus {
    /// Credited to a known click within its window.
    Attributed,
    /// The click id matches no recorded click.
    UnknownClick,
    /// The click is known but older than its window.
    OutsideWindow,
    /// Converted before its own click (beyond the clock-skew allowance): the click cannot
    /// have caused it, so nothing is credited.
    BeforeClick,
}

impl ConversionStatus {
    /// The status as answers, logs and metrics name it (its serialised form).
    pub fn as_str(self) -> &'static str {
        match self {
            ConversionStatus::Attributed => "attributed",
            ConversionStatus::UnknownClick => "unknown_click",
            ConversionStatus::OutsideWindow => "outside_window",
            ConversionStatus::BeforeClick => "before_click",
        }
    }
}

/// A conversion as a postback reported it, stored whether or not it could be credited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversion {
    /// `network#conversion_id`, or `network#click_id#event` without one, each part escaped
    /// (see [`crate::revenue::Postback::conversion_key`]): the dedupe key.
    pub conversion_key: String,
    /// The platform that sent the postback.
    pub network: crate::revenue::postback::Network,
    /// The platform's id of the conversion (or one derived from the postback).
    pub conversion_id: String,
    /// The click id the postback named; empty when it named the contact instead.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub click_id: String,
    /// The offer the postback named with the contact instead of a click id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer_id: Option<OfferId>,
    /// The platform's event name (`sale`, `lead`, …), when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// What the conversion pays: the postback's payout or the offer's default.
    pub payout: Amount,
    /// The payout's currency.
    pub currency: Currency,
    /// When the conversion happened, by the platform's clock.
    pub converted_at: Timestamp,
    /// When the postback arrived.
    pub received_at: Timestamp,
    /// Whether and why it was credited.
    pub status: ConversionStatus,
    /// The contact of the postback's click, when the click is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<InstanceId>,
    /// The contact of the postback's click, when the click is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ContactId>,
    /// The click credited, when the status is `attributed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credited: Option<Credit>,
    /// The contact's clicks on the offer inside the window when it was credited click-through,
    /// in time order (the first [`crate::revenue::models::MAX_MODEL_CLICKS`]): what the model
    /// comparison splits the payout over, in the write that credits it. Never stored: the
    /// report counters keep the split.
    #[serde(skip)]
    pub window_clicks: Vec<Credit>,
}

impl Conversion {
    /// The click id an `unknown_click` conversion waits for, when it named one.
    pub fn waits_for(&self) -> Option<&str> {
        (self.status == ConversionStatus::UnknownClick && !self.click_id.is_empty())
            .then_some(self.click_id.as_str())
    }
}

/// Everything that happened with one contact, in time order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Journey {
    /// The messages with tracked links sent to the contact.
    pub sends: Vec<SendRecord>,
    /// The clicks on those links.
    pub clicks: Vec<Click>,
    /// The conversions credited to or reported for those clicks.
    pub conversions: Vec<Conversion>,
}

/// A whole number of days in `min..=max`, `default` when absent.
fn days_field(
    object: &Map<String, Value>,
    field: &'static str,
    min: u32,
    max: u32,
    default: u32,
) -> Result<u32, FieldError> {
    match present(object, field) {
        None => Ok(default),
        Some(value) => value
            .as_u64()
            .filter(|days| (u64::from(min)..=u64::from(max)).contains(days))
            .map(|days| days as u32)
            .ok_or_else(|| {
                FieldError::new(
                    field,
                    format!("must be a whole number of days from {min} to {max}"),
                )
            }),
    }
}

fn label(object: &Map<String, Value>, field: &'static str) -> Result<String, FieldError> {
    let value = required_string(object, field)?;
    let chars = value.chars().count();
    if chars > MAX_LABEL_CHARS {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_LABEL_CHARS} characters, got {chars}"),
        ));
    }
    Ok(value)
}

/// A decimal amount given as a JSON string or number; `None` when absent.
fn amount_field(
    object: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<Amount>, FieldError> {
    let text = match present(object, field) {
        None => return Ok(None),
        // A JSON number keeps its exact text (serde_json's arbitrary precision is not needed:
        // `Number`'s Display prints what was parsed for the decimals money uses).
        Some(Value::Number(number)) => number.to_string(),
        Some(Value::String(text)) => text.clone(),
        Some(_) => return Err(FieldError::new(field, "must be a decimal number")),
    };
    Amount::parse_payout(&text)
        .map(Some)
        .map_err(|error| FieldError::new(field, error.to_string()))
}

fn currency_field(
    object: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<Currency>, FieldError> {
    optional_string(object, field)?
        .map(|text| {
            Currency::parse(&text).map_err(|error| FieldError::new(field, error.to_string()))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_get_the_click_id_in_place_or_appended() {
        let placeholder =
            DestinationUrl::parse("https://shop.example/p?sub={click_id}&x=1").unwrap();
        assert_eq!(
            placeholder.for_click("C1"),
            "https://shop.example/p?sub=C1&x=1"
        );
        let bare = DestinationUrl::parse("https://shop.example/p?x=1#top").unwrap();
        assert_eq!(
            bare.for_click("C1"),
            "https://shop.example/p?x=1&click_id=C1#top"
        );
        assert!(DestinationUrl::parse("ftp://shop.example/").is_err());
        assert!(DestinationUrl::parse("javascript:alert(1)").is_err());
        assert!(DestinationUrl::parse("not a url").is_err());
    }

    #[test]
    fn offer_drafts_default_and_validate() {
        let draft =
            OfferDraft::from_json(br#"{"name":"Shoes","destination_url":"https://s.example/"}"#)
                .unwrap();
        assert_eq!(draft.click_window_days, 90);
        assert_eq!(draft.currency, Currency::USD);
        for (body, field) in [
            (
                r#"{"name":"S","destination_url":"https://s.example/","click_window_days":0}"#,
                "click_window_days",
            ),
            (
                r#"{"name":"S","destination_url":"https://s.example/","click_window_days":366}"#,
                "click_window_days",
            ),
            (
                r#"{"name":"S","destination_url":"mailto:a@b"}"#,
                "destination_url",
            ),
            (r#"{"destination_url":"https://s.example/"}"#, "name"),
            (
                r#"{"name":"S","destination_url":"https://s.example/","payout":"x"}"#,
                "payout",
            ),
            (
                r#"{"name":"S","destination_url":"https://s.example/","windw":3}"#,
                "windw",
            ),
        ] {
            assert_eq!(
                OfferDraft::from_json(body.as_bytes()).unwrap_err().field,
                field,
                "{body}"
            );
        }
    }

    #[test]
    fn send_arrays_name_the_item_of_a_bad_field() {
        let body =
            br#"[{"instance_id":"1","contact_id":"2","campaign":"c","creative":"k","offer_id":"o"},
                        {"instance_id":"1","contact_id":"2","campaign":"c","offer_id":"o"}]"#;
        assert_eq!(
            SendDraft::many_from_json(body).unwrap_err().field,
            "[1].creative"
        );
        assert_eq!(SendDraft::many_from_json(b"[]").unwrap_err().field, "body");
    }
}
