//! A destination as the admin API sends it, read field by field so a refusal names the field.

use super::{EngineEvent, MAX_EVENTS_PER_DESTINATION, Target};
use crate::fields::{FieldError, json_object, list, present, reject_unknown};
use crate::secret::Secret;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Meta's event names for business messaging (a plain `Lead` is refused by Meta).
pub const META_EVENT_NAMES: [&str; 14] = [
    "Purchase",
    "LeadSubmitted",
    "InitiateCheckout",
    "AddToCart",
    "ViewContent",
    "OrderCreated",
    "OrderShipped",
    "OrderDelivered",
    "OrderCanceled",
    "OrderReturned",
    "CartAbandoned",
    "QualifiedLead",
    "RatingProvided",
    "ReviewProvided",
];

/// The types a destination may have.
pub const TYPES: [&str; 4] = ["webhook", "meta_capi", "google_data_manager", "tiktok"];
/// The longest URL, platform id, name or event name taken.
const MAX_URL_BYTES: usize = 2_048;
const MAX_ID_BYTES: usize = 64;
const MAX_NAME_BYTES: usize = 200;
const MAX_EVENT_NAME_BYTES: usize = 64;
const MAX_TOKEN_BYTES: usize = 4_096;

/// What the admin API may do with a destination's URL.
#[derive(Debug, Clone, Copy, Default)]
pub struct DraftRules {
    /// Whether `http://` webhook URLs are taken (`ALLOW_HTTP_DESTINATIONS=1`, the local
    /// server's default); otherwise `https` only.
    pub allow_http: bool,
}

/// A destination's settings as sent, with its credentials apart.
#[derive(Debug, Clone)]
pub struct DestinationDraft {
    /// Where it sends.
    pub target: Target,
    /// A name for people.
    pub name: Option<String>,
    /// Engine event → platform event name.
    pub events: BTreeMap<EngineEvent, String>,
    /// Whether it is on (default `true`).
    pub enabled: bool,
    /// The credentials as one JSON object (a token, OAuth credentials); `None` when the body
    /// gave none (a webhook's secret is made by the engine; a replace keeps the old ones).
    pub credentials: Option<Secret>,
}

fn text(
    object: &Map<String, Value>,
    field: &str,
    max: usize,
) -> Result<Option<String>, FieldError> {
    match present(object, field) {
        None => Ok(None),
        Some(Value::String(value)) => {
            let value = value.trim();
            if value.is_empty() {
                Err(FieldError::new(field, "must not be empty"))
            } else if value.len() > max {
                Err(FieldError::new(
                    field,
                    format!("is longer than {max} bytes"),
                ))
            } else {
                Ok(Some(value.to_owned()))
            }
        }
        Some(_) => Err(FieldError::new(field, "must be a string")),
    }
}

fn required(object: &Map<String, Value>, field: &str, max: usize) -> Result<String, FieldError> {
    text(object, field, max)?.ok_or_else(|| FieldError::new(field, "is required"))
}

/// A platform's numeric id (dataset, account, pixel ids are digits; Google's customer id may
/// come with dashes, which are dropped).
fn platform_id(object: &Map<String, Value>, field: &str) -> Result<String, FieldError> {
    let value = required(object, field, MAX_ID_BYTES)?.replace('-', "");
    if value.is_empty()
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(FieldError::new(
            field,
            "must be the platform's id: letters, digits and _ only",
        ));
    }
    Ok(value)
}

fn optional_platform_id(
    object: &Map<String, Value>,
    field: &str,
) -> Result<Option<String>, FieldError> {
    match present(object, field) {
        None => Ok(None),
        Some(_) => platform_id(object, field).map(Some),
    }
}

fn webhook_url(object: &Map<String, Value>, rules: DraftRules) -> Result<String, FieldError> {
    let raw = required(object, "url", MAX_URL_BYTES)?;
    let url = url::Url::parse(&raw)
        .map_err(|error| FieldError::new("url", format!("is not a URL: {error}")))?;
    match url.scheme() {
        "https" => {}
        "http" if rules.allow_http => {}
        "http" => {
            return Err(FieldError::new(
                "url",
                "must be https (http only with ALLOW_HTTP_DESTINATIONS=1)",
            ));
        }
        _ => return Err(FieldError::new("url", "must be an https URL")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(FieldError::new("url", "must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FieldError::new("url", "must not hold credentials"));
    }
    if !rules.allow_http && names_an_inner_address(&url) {
        return Err(FieldError::new(
            "url",
            "must not name a loopback, private, link-local or unspecified address (allowed \
             with ALLOW_HTTP_DESTINATIONS=1)",
        ));
    }
    Ok(url.to_string())
}

/// Whether the URL's host is an address the sender's own network holds rather than the
/// business's server: loopback (the Lambda runtime API listens there), private, link-local
/// (instance metadata), unspecified, or `localhost`. A name that resolves to one is not
/// caught here (that would need the sender to check the address it connects to).
fn names_an_inner_address(url: &url::Url) -> bool {
    use std::net::IpAddr;
    let inner = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                // 100.64.0.0/10, carrier-grade NAT: not the public internet either.
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                // fc00::/7 unique local, fe80::/10 link-local.
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6.to_ipv4_mapped().is_some_and(|v4| {
                    v4.is_loopback() || v4.is_private() || v4.is_link_local()
                })
        }
    };
    match url.host() {
        Some(url::Host::Ipv4(v4)) => inner(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => inner(IpAddr::V6(v6)),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        None => false,
    }
}

/// How a destination's `events` name what it sends.
#[derive(Clone, Copy)]
enum Names {
    /// Values ignored: an array of engine events, or a map whose values do not matter.
    Ignored(fn(&EngineEvent) -> String),
    /// Values must pass this check.
    Checked(fn(&str) -> Result<(), String>),
}

fn meta_name(name: &str) -> Result<(), String> {
    if META_EVENT_NAMES.contains(&name) {
        Ok(())
    } else {
        Err(format!(
            "is not an event name of Meta's business messaging; expected one of {}",
            list(&META_EVENT_NAMES)
        ))
    }
}

fn tiktok_name(name: &str) -> Result<(), String> {
    let fine = !name.is_empty()
        && name.len() <= MAX_EVENT_NAME_BYTES
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if fine {
        Ok(())
    } else {
        Err(format!(
            "must be a TikTok event name: 1-{MAX_EVENT_NAME_BYTES} letters, digits or _"
        ))
    }
}

fn events(
    object: &Map<String, Value>,
    names: Names,
) -> Result<BTreeMap<EngineEvent, String>, FieldError> {
    let parse_key = |key: &str, field: String| {
        EngineEvent::parse(key).map_err(|error| FieldError::new(field, error.to_string()))
    };
    let mut mapped = BTreeMap::new();
    match (present(object, "events"), names) {
        (None, _) => return Err(FieldError::new("events", "is required")),
        (Some(Value::Array(items)), Names::Ignored(name_of)) => {
            for (i, item) in items.iter().enumerate() {
                let field = format!("events[{i}]");
                let Value::String(key) = item else {
                    return Err(FieldError::new(field, "must be a string"));
                };
                let event = parse_key(key, field)?;
                let name = name_of(&event);
                mapped.insert(event, name);
            }
        }
        (Some(Value::Array(_)), Names::Checked(_)) => {
            return Err(FieldError::new(
                "events",
                "must be an object of engine event → the platform's event name",
            ));
        }
        (Some(Value::Object(map)), names) => {
            for (key, value) in map {
                let field = format!("events.{key}");
                let event = parse_key(key, field.clone())?;
                let name = match (value, names) {
                    (_, Names::Ignored(name_of)) => name_of(&event),
                    (Value::String(name), Names::Checked(check)) => {
                        check(name).map_err(|message| FieldError::new(&field, message))?;
                        name.clone()
                    }
                    (_, Names::Checked(_)) => {
                        return Err(FieldError::new(field, "must be the platform's event name"));
                    }
                };
                mapped.insert(event, name);
            }
        }
        (Some(_), _) => {
            return Err(FieldError::new(
                "events",
                "must be an object of engine event → the platform's event name",
            ));
        }
    }
    if mapped.is_empty() {
        return Err(FieldError::new(
            "events",
            "must name at least one engine event",
        ));
    }
    if mapped.len() > MAX_EVENTS_PER_DESTINATION {
        return Err(FieldError::new(
            "events",
            format!("a destination maps at most {MAX_EVENTS_PER_DESTINATION} engine events"),
        ));
    }
    Ok(mapped)
}

fn token(object: &Map<String, Value>, field: &str) -> Result<Option<Secret>, FieldError> {
    Ok(text(object, field, MAX_TOKEN_BYTES)?
        .map(|value| Secret::new(json!({ field: value }).to_string())))
}

fn oauth(object: &Map<String, Value>) -> Result<Option<Secret>, FieldError> {
    let Some(value) = present(object, "oauth") else {
        return Ok(None);
    };
    let Value::Object(oauth) = value else {
        return Err(FieldError::new(
            "oauth",
            "must be an object: client_id, client_secret, refresh_token",
        ));
    };
    const FIELDS: [&str; 3] = ["client_id", "client_secret", "refresh_token"];
    reject_unknown(oauth, "oauth.", &FIELDS, &[])?;
    let mut credentials = Map::new();
    for field in FIELDS {
        let value = text(oauth, field, MAX_TOKEN_BYTES)
            .map_err(|error| FieldError::new(format!("oauth.{}", error.field), error.message))?
            .ok_or_else(|| FieldError::new(format!("oauth.{field}"), "is required"))?;
        credentials.insert(field.to_owned(), Value::String(value));
    }
    Ok(Some(Secret::new(Value::Object(credentials).to_string())))
}

/// Reads a destination from `body`. A create needs its credentials; a replace may leave them
/// out to keep the stored ones.
pub fn parse(
    body: &[u8],
    rules: DraftRules,
    creating: bool,
) -> Result<DestinationDraft, FieldError> {
    let object = json_object(body)?;
    let kind = required(&object, "type", 32)?;
    const COMMON: [&str; 4] = ["type", "name", "events", "enabled"];
    let (own, target, names, credentials): (&[&str], Target, Names, Option<Secret>) =
        match kind.as_str() {
            "webhook" => (
                &["url"],
                Target::Webhook {
                    url: webhook_url(&object, rules)?,
                },
                Names::Ignored(|event| event.webhook_type().to_owned()),
                None,
            ),
            "meta_capi" => (
                &["dataset_id", "access_token", "whatsapp_business_account_id"],
                Target::MetaCapi {
                    dataset_id: platform_id(&object, "dataset_id")?,
                    whatsapp_business_account_id: optional_platform_id(
                        &object,
                        "whatsapp_business_account_id",
                    )?,
                },
                Names::Checked(meta_name),
                token(&object, "access_token")?,
            ),
            "google_data_manager" => (
                &["operating_account_id", "conversion_action_id", "oauth"],
                Target::GoogleDataManager {
                    operating_account_id: platform_id(&object, "operating_account_id")?,
                    conversion_action_id: platform_id(&object, "conversion_action_id")?,
                },
                Names::Ignored(EngineEvent::as_text),
                oauth(&object)?,
            ),
            "tiktok" => (
                &["event_source_id", "access_token"],
                Target::Tiktok {
                    event_source_id: platform_id(&object, "event_source_id")?,
                },
                Names::Checked(tiktok_name),
                token(&object, "access_token")?,
            ),
            _ => {
                return Err(FieldError::new(
                    "type",
                    format!("must be one of {}", list(&TYPES)),
                ));
            }
        };
    let known: Vec<&str> = COMMON.iter().chain(own).copied().collect();
    reject_unknown(&object, "", &known, &[])?;
    let needs_credentials = !matches!(target, Target::Webhook { .. });
    if creating && needs_credentials && credentials.is_none() {
        let field = match target {
            Target::GoogleDataManager { .. } => "oauth",
            _ => "access_token",
        };
        return Err(FieldError::new(field, "is required"));
    }
    let enabled = match present(&object, "enabled") {
        None => true,
        Some(Value::Bool(on)) => *on,
        Some(_) => return Err(FieldError::new("enabled", "must be true or false")),
    };
    Ok(DestinationDraft {
        target,
        name: text(&object, "name", MAX_NAME_BYTES)?,
        events: events(&object, names)?,
        enabled,
        credentials,
    })
}
