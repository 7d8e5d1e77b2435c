//! Affiliate postbacks: TUNE, Everflow and a generic form, read into one conversion report.

use crate::ids::{ContactId, InstanceId, OfferId};
use crate::revenue::money::{Amount, Currency};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// The affiliate platform a postback comes from, which decides how its query is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// TUNE (HasOffers).
    Tune,
    /// Everflow.
    Everflow,
    /// Any other platform, sending the engine's own parameter names.
    Generic,
}

impl Network {
    /// Every platform, as the postback URL path names them.
    pub const ALL: [Network; 3] = [Network::Tune, Network::Everflow, Network::Generic];

    /// The platform a path segment names.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|network| network.as_str() == text)
    }

    /// The platform's name in postback URLs and stored conversions.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Tune => "tune",
            Self::Everflow => "everflow",
            Self::Generic => "generic",
        }
    }

    /// Parameter names read for each field, in order of preference: the generic name first,
    /// then the network's own.
    fn names(&self, field: Field) -> &'static [&'static str] {
        match (self, field) {
            (_, Field::ClickId) => match self {
                Self::Tune => &["click_id", "aff_sub"],
                Self::Everflow => &["click_id", "sub1"],
                Self::Generic => &["click_id"],
            },
            (Self::Generic, Field::ConversionId) => &["conversion_id"],
            (_, Field::ConversionId) => &["conversion_id", "transaction_id"],
            (Self::Everflow, Field::Payout) => &["payout", "sale_amount"],
            (_, Field::Payout) => &["payout"],
            (_, Field::Currency) => &["currency"],
            (_, Field::Event) => &["event"],
            (_, Field::ConvertedAt) => &["converted_at"],
            (_, Field::InstanceId) => &["instance_id"],
            (_, Field::ContactId) => &["contact_id"],
            (_, Field::OfferId) => &["offer_id"],
        }
    }
}

impl Network {
    /// Every parameter name the network's postbacks are read by (the token aside), in the
    /// order of the fields: what a conversion import's header may name.
    pub fn parameter_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        for field in Field::ALL {
            for name in self.names(field) {
                if !names.contains(name) {
                    names.push(name);
                }
            }
        }
        names
    }

    /// The names a click id is read by.
    pub fn click_id_names(&self) -> &'static [&'static str] {
        self.names(Field::ClickId)
    }

    /// Whether `columns` can name who converted, as a postback must: a click id, or the
    /// instance, the contact and the offer.
    pub fn names_a_converter(&self, columns: &[String]) -> bool {
        let has = |field: Field| {
            self.names(field)
                .iter()
                .any(|name| columns.iter().any(|column| column == name))
        };
        has(Field::ClickId)
            || [Field::InstanceId, Field::ContactId, Field::OfferId]
                .into_iter()
                .all(has)
    }
}

#[derive(Debug, Clone, Copy)]
enum Field {
    ClickId,
    ConversionId,
    Payout,
    Currency,
    Event,
    ConvertedAt,
    InstanceId,
    ContactId,
    OfferId,
}

impl Field {
    const ALL: [Field; 9] = [
        Field::ClickId,
        Field::ConversionId,
        Field::Payout,
        Field::Currency,
        Field::Event,
        Field::ConvertedAt,
        Field::InstanceId,
        Field::ContactId,
        Field::OfferId,
    ];
}

const MAX_CLICK_ID: usize = 128;
const MAX_CONVERSION_ID: usize = 256;
const MAX_EVENT: usize = 64;

/// A postback that cannot be used, naming the parameter: the answer is `400`, the only
/// refusal a well-behaved platform ever sees.
pub use crate::fields::FieldError as PostbackError;

fn refuse(field: &'static str, message: impl Into<String>) -> PostbackError {
    PostbackError::new(field, message)
}

/// Who converted, as a postback names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Converter {
    /// The click id the engine put in the offer URL.
    Click(String),
    /// The contact and the offer, when the advertiser knows the buyer but not the click.
    Contact {
        /// The instance the contact wrote to.
        instance_id: InstanceId,
        /// The contact.
        contact_id: ContactId,
        /// The offer converted on.
        offer_id: OfferId,
    },
}

/// One conversion as a postback reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Postback {
    /// The platform that sent it.
    pub network: Network,
    /// The click, or the contact and offer, it names.
    pub converter: Converter,
    /// The platform's conversion id, when it sends one.
    pub conversion_id: Option<String>,
    /// What the conversion pays; `None`: the offer's default.
    pub payout: Option<Amount>,
    /// The payout's currency.
    pub currency: Currency,
    /// The platform's event name, when it says.
    pub event: Option<String>,
    /// When the conversion happened.
    pub converted_at: Timestamp,
}

impl Postback {
    /// Reads the parameters (query first, then body, as given: the first occurrence of a name
    /// wins). Values a platform left as an unfilled macro (`{aff_sub}`) count as absent.
    pub fn parse(
        network: Network,
        params: &[(String, String)],
        now: Timestamp,
    ) -> Result<Self, PostbackError> {
        let read = |field: Field| -> Option<&str> {
            network.names(field).iter().find_map(|name| {
                params
                    .iter()
                    .find(|(key, _)| key == name)
                    .map(|(_, value)| value.trim())
                    .filter(|value| !value.is_empty() && !is_unfilled_macro(value))
            })
        };
        let bounded = |field: &'static str, value: &str, max: usize| {
            if value.len() > max || value.chars().any(char::is_control) {
                Err(refuse(
                    field,
                    format!("must be at most {max} bytes of text"),
                ))
            } else {
                Ok(value.to_owned())
            }
        };
        let converter = match read(Field::ClickId) {
            Some(click_id) => Converter::Click(bounded("click_id", click_id, MAX_CLICK_ID)?),
            None if [Field::InstanceId, Field::ContactId, Field::OfferId]
                .iter()
                .any(|field| read(*field).is_some()) =>
            {
                let id = |field: Field, name: &'static str| {
                    read(field).ok_or_else(|| {
                        refuse(
                            name,
                            "is required with instance_id, contact_id and offer_id (or give a click id)",
                        )
                    })
                };
                let invalid = |name: &'static str| {
                    move |error: crate::ids::InvalidId| refuse(name, error.to_string())
                };
                Converter::Contact {
                    instance_id: InstanceId::parse(id(Field::InstanceId, "instance_id")?)
                        .map_err(invalid("instance_id"))?,
                    contact_id: ContactId::parse(id(Field::ContactId, "contact_id")?)
                        .map_err(invalid("contact_id"))?,
                    offer_id: OfferId::parse(id(Field::OfferId, "offer_id")?)
                        .map_err(invalid("offer_id"))?,
                }
            }
            None => {
                return Err(refuse(
                    "click_id",
                    format!(
                        "is required (as {}), or instance_id, contact_id and offer_id",
                        network.names(Field::ClickId).join(" or ")
                    ),
                ));
            }
        };
        let conversion_id = read(Field::ConversionId)
            .map(|id| bounded("conversion_id", id, MAX_CONVERSION_ID))
            .transpose()?;
        let payout = read(Field::Payout)
            .map(|text| Amount::parse_payout(text).map_err(|e| refuse("payout", e.to_string())))
            .transpose()?;
        let currency = read(Field::Currency)
            .map(|text| Currency::parse(text).map_err(|e| refuse("currency", e.to_string())))
            .transpose()?
            .unwrap_or(Currency::USD);
        let event = read(Field::Event)
            .map(|event| bounded("event", event, MAX_EVENT))
            .transpose()?;
        let converted_at = read(Field::ConvertedAt)
            .map(|text| {
                parse_time(text)
                    .ok_or_else(|| {
                        refuse(
                            "converted_at",
                            "must be an RFC 3339 timestamp or unix seconds",
                        )
                    })?
                    .accepted()
                    .map_err(|e| refuse("converted_at", e.to_string()))
            })
            .transpose()?
            .unwrap_or(now);
        Ok(Self {
            network,
            converter,
            conversion_id,
            payout,
            currency,
            event,
            converted_at,
        })
    }

    /// What makes two postbacks the same conversion: the network's conversion id, or without
    /// one the click and the event. Parts are joined by `#` with every `%` and `#` inside them
    /// escaped, so no two different postbacks share a key (`C#signup` as a conversion id is
    /// not click `C` with event `signup`) and ids without either keep the key they always had.
    pub fn conversion_key(&self) -> String {
        let network = self.network.as_str();
        let event = key_part(self.event.as_deref().unwrap_or(""));
        match (&self.conversion_id, &self.converter) {
            (Some(id), _) => conversion_key_of(self.network, id),
            (None, Converter::Click(click_id)) => {
                format!("{network}#{}#{event}", key_part(click_id))
            }
            // Five parts, a click's key three: the two never meet.
            (
                None,
                Converter::Contact {
                    instance_id,
                    contact_id,
                    offer_id,
                },
            ) => format!(
                "{network}#{}#{}#{}#{event}",
                key_part(instance_id.as_str()),
                key_part(contact_id.as_str()),
                key_part(offer_id.as_str())
            ),
        }
    }

    /// The click id, or `instance<sep>contact<sep>offer`.
    fn converter_text(&self, separator: &str) -> String {
        match &self.converter {
            Converter::Click(click_id) => click_id.clone(),
            Converter::Contact {
                instance_id,
                contact_id,
                offer_id,
            } => [instance_id.as_str(), contact_id.as_str(), offer_id.as_str()].join(separator),
        }
    }

    /// The click id the postback named, if it named one.
    pub fn click_id(&self) -> Option<&str> {
        match &self.converter {
            Converter::Click(click_id) => Some(click_id),
            Converter::Contact { .. } => None,
        }
    }

    /// The conversion id to report back: the network's, or one made from the click (or the
    /// contact and offer) and the event.
    pub fn reported_conversion_id(&self) -> String {
        let converter = self.converter_text(":");
        match (&self.conversion_id, &self.event) {
            (Some(id), _) => id.clone(),
            (None, Some(event)) => format!("{converter}:{event}"),
            (None, None) => converter,
        }
    }
}

/// The dedupe key of the conversion `network` reported with its own `conversion_id`.
pub fn conversion_key_of(network: Network, conversion_id: &str) -> String {
    format!("{}#{}", network.as_str(), key_part(conversion_id))
}

/// One part of a conversion key: percent-escaped, so it holds no `#`.
fn key_part(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains(['%', '#']) {
        text.replace('%', "%25").replace('#', "%23").into()
    } else {
        text.into()
    }
}

/// Bodies bigger than this are refused before parsing; a postback is a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A postback's parameters in order, and the token that came with them.
pub type PostbackParams = (Vec<(String, String)>, Option<String>);

/// The parameters of a postback: the query's, then the body's (form-encoded or a JSON object of
/// scalars), in order. `token` is taken out: it is a credential, not a field.
pub fn read_params(
    query: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<PostbackParams, PostbackError> {
    let mut params: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
    let is_json = content_type.is_some_and(|ct| {
        ct.trim_start()
            .to_ascii_lowercase()
            .starts_with("application/json")
    });
    // An empty body is no body, whatever the content type says (a GET sent by a client that
    // always names JSON).
    if is_json && !body.is_empty() {
        for (key, value) in crate::fields::json_object(body)? {
            let text = match value {
                serde_json::Value::String(text) => text,
                serde_json::Value::Number(number) => number.to_string(),
                serde_json::Value::Bool(flag) => flag.to_string(),
                serde_json::Value::Null => continue,
                _ => {
                    return Err(refuse(
                        "body",
                        format!("{key} must be a string or a number"),
                    ));
                }
            };
            params.push((key, text));
        }
    } else if !body.is_empty() {
        // Form-encoded, whatever the platform called it.
        params.extend(
            url::form_urlencoded::parse(body)
                .map(|(key, value)| (key.into_owned(), value.into_owned())),
        );
    }
    let token = params
        .iter()
        .position(|(key, _)| key == "token")
        .map(|index| params.remove(index).1);
    params.retain(|(key, _)| key != "token");
    Ok((params, token))
}

fn is_unfilled_macro(value: &str) -> bool {
    (value.starts_with('{') && value.ends_with('}'))
        || (value.starts_with("%7B") && value.ends_with("%7D"))
}

fn parse_time(text: &str) -> Option<Timestamp> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let seconds: i64 = text.parse().ok()?;
        // Thirteen digits and more are milliseconds (a seconds value that large is year 5138).
        return if seconds >= 100_000_000_000 {
            Timestamp::from_unix_millis(seconds)
        } else {
            Timestamp::from_unix_seconds(seconds)
        };
    }
    Timestamp::parse_rfc3339(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn now() -> Timestamp {
        Timestamp::from_unix_seconds(1_790_000_000).unwrap()
    }

    #[test]
    fn tune_reads_its_own_names_and_the_generic_ones() {
        let tune = Postback::parse(
            Network::Tune,
            &params(&[
                ("aff_sub", "CLICK"),
                ("transaction_id", "T1"),
                ("payout", "1.50"),
            ]),
            now(),
        )
        .unwrap();
        assert_eq!(tune.click_id(), Some("CLICK"));
        assert_eq!(tune.conversion_id.as_deref(), Some("T1"));
        assert_eq!(tune.payout, Some(Amount::parse("1.5").unwrap()));
        assert_eq!(tune.currency, Currency::USD);
        assert_eq!(tune.converted_at, now());
        assert_eq!(tune.conversion_key(), "tune#T1");
        let generic_wins = Postback::parse(
            Network::Tune,
            &params(&[("aff_sub", "A"), ("click_id", "B")]),
            now(),
        )
        .unwrap();
        assert_eq!(generic_wins.click_id(), Some("B"));
    }

    #[test]
    fn everflow_takes_sub1_and_sale_amount() {
        let everflow = Postback::parse(
            Network::Everflow,
            &params(&[
                ("sub1", "C"),
                ("transaction_id", "T"),
                ("sale_amount", "20"),
                ("currency", "eur"),
            ]),
            now(),
        )
        .unwrap();
        assert_eq!(everflow.click_id(), Some("C"));
        assert_eq!(everflow.payout, Some(Amount::parse("20").unwrap()));
        assert_eq!(everflow.currency.as_str(), "EUR");
        // The generic preset knows none of the networks' names.
        assert!(Postback::parse(Network::Generic, &params(&[("sub1", "C")]), now()).is_err());
    }

    #[test]
    fn unusable_postbacks_name_the_field() {
        let error = |pairs: &[(&str, &str)]| {
            Postback::parse(Network::Generic, &params(pairs), now())
                .unwrap_err()
                .field
        };
        assert_eq!(error(&[]), "click_id");
        assert_eq!(error(&[("click_id", "{aff_sub}")]), "click_id");
        assert_eq!(error(&[("click_id", "C"), ("payout", "ten")]), "payout");
        assert_eq!(
            error(&[("click_id", "C"), ("currency", "dollars")]),
            "currency"
        );
        assert_eq!(
            error(&[("click_id", "C"), ("converted_at", "yesterday")]),
            "converted_at"
        );
    }

    #[test]
    fn params_come_from_query_then_body_without_the_token() {
        let (params, token) = read_params(
            Some("click_id=A&token=s%20ecret&payout=1"),
            Some("application/x-www-form-urlencoded"),
            b"click_id=B&conversion_id=T",
        )
        .unwrap();
        assert_eq!(token.as_deref(), Some("s ecret"));
        let p = Postback::parse(Network::Generic, &params, now()).unwrap();
        assert_eq!(
            (p.click_id(), p.conversion_id.as_deref()),
            (Some("A"), Some("T"))
        );
        let (json, _) = read_params(
            None,
            Some("application/json"),
            br#"{"click_id":"C","payout":0.1}"#,
        )
        .unwrap();
        let p = Postback::parse(Network::Generic, &json, now()).unwrap();
        assert_eq!(p.payout, Some(Amount::parse("0.10").unwrap()));
        assert!(read_params(None, Some("application/json"), b"[1]").is_err());
    }

    #[test]
    fn times_are_rfc3339_or_unix_seconds_and_first_occurrence_wins() {
        let p = Postback::parse(
            Network::Generic,
            &params(&[
                ("click_id", "C"),
                ("converted_at", "1790000100"),
                ("click_id", "D"),
            ]),
            now(),
        )
        .unwrap();
        assert_eq!(p.click_id(), Some("C"));
        assert_eq!(p.converted_at, now().plus_seconds(100));
        let rfc = Postback::parse(
            Network::Generic,
            &params(&[
                ("click_id", "C"),
                ("converted_at", "2026-09-21T13:00:00+02:00"),
            ]),
            now(),
        )
        .unwrap();
        assert_eq!(rfc.converted_at.to_string(), "2026-09-21T11:00:00.000Z");
        assert_eq!(rfc.conversion_key(), "generic#C#");
        let far = |at: &str| {
            Postback::parse(
                Network::Generic,
                &params(&[("click_id", "C"), ("converted_at", at)]),
                now(),
            )
            .unwrap_err()
            .field
        };
        assert_eq!(far("1999-12-31T23:59:59Z"), "converted_at");
        assert_eq!(far("99999999999"), "converted_at");
        assert_eq!(far("9999999999999999"), "converted_at");
    }

    #[test]
    fn conversion_keys_do_not_collide_when_ids_hold_the_separator() {
        let key = |pairs: &[(&str, &str)]| {
            Postback::parse(Network::Tune, &params(pairs), now())
                .unwrap()
                .conversion_key()
        };
        let keys = [
            key(&[("click_id", "a#b"), ("event", "c")]),
            key(&[("click_id", "a"), ("event", "b#c")]),
            key(&[("click_id", "x"), ("conversion_id", "a#b#c")]),
            key(&[("click_id", "x"), ("conversion_id", "a%23b#c")]),
            key(&[("click_id", "a"), ("event", "b%23c")]),
        ];
        let distinct: std::collections::BTreeSet<&String> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len(), "{keys:?}");
        assert_eq!(
            key(&[("click_id", "x"), ("conversion_id", "T1")]),
            "tune#T1"
        );
    }
}
