//! The request each platform gets for one job (pure: built from the job, its destination, the
//! contact and the credentials), and how each platform's answer is read.

use super::{Destination, OutboundJob, Target};
use crate::contact::{Acquisition, Channel, Contact};
use crate::fields::cap_bytes;
use crate::revenue::money::Amount;
use crate::secret::Secret;
use crate::time::Timestamp;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use std::time::Duration;

/// The real hosts, by default.
pub const DEFAULT_META_GRAPH_URL: &str = "https://graph.facebook.com/v21.0";
/// Google's Data Manager API.
pub const DEFAULT_GOOGLE_DATA_MANAGER_URL: &str = "https://datamanager.googleapis.com";
/// Google's OAuth token endpoint (a refresh token for an access token).
pub const DEFAULT_GOOGLE_OAUTH_URL: &str = "https://oauth2.googleapis.com/token";
/// TikTok's Events API.
pub const DEFAULT_TIKTOK_EVENTS_URL: &str =
    "https://business-api.tiktok.com/open_api/v1.3/event/track/";
/// Meta refuses server events older than this.
const META_MAX_AGE_SECONDS: i64 = 7 * 24 * 60 * 60;
/// The header a webhook's signature travels in.
pub const SIGNATURE_HEADER: &str = "x-signature";

/// Where each platform is reached: the real hosts unless the environment points elsewhere
/// (tests point them at fakes on loopback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// `META_GRAPH_URL`, with the API version.
    pub meta_graph: String,
    /// `GOOGLE_DATA_MANAGER_URL`.
    pub google_data_manager: String,
    /// `GOOGLE_OAUTH_URL`.
    pub google_oauth: String,
    /// `TIKTOK_EVENTS_URL`, the whole track URL.
    pub tiktok_events: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Self {
            meta_graph: DEFAULT_META_GRAPH_URL.to_owned(),
            google_data_manager: DEFAULT_GOOGLE_DATA_MANAGER_URL.to_owned(),
            google_oauth: DEFAULT_GOOGLE_OAUTH_URL.to_owned(),
            tiktok_events: DEFAULT_TIKTOK_EVENTS_URL.to_owned(),
        }
    }
}

impl Endpoints {
    /// From `META_GRAPH_URL`, `GOOGLE_DATA_MANAGER_URL`, `GOOGLE_OAUTH_URL` and
    /// `TIKTOK_EVENTS_URL`, each defaulting to the real host.
    pub fn from_env() -> Self {
        let or = |name, default: &str| {
            crate::config::optional(name)
                .unwrap_or_else(|| default.to_owned())
                .trim_end_matches('/')
                .to_owned()
        };
        Self {
            meta_graph: or("META_GRAPH_URL", DEFAULT_META_GRAPH_URL),
            google_data_manager: or("GOOGLE_DATA_MANAGER_URL", DEFAULT_GOOGLE_DATA_MANAGER_URL),
            google_oauth: or("GOOGLE_OAUTH_URL", DEFAULT_GOOGLE_OAUTH_URL),
            // TikTok's path ends in a slash, which it expects.
            tiktok_events: crate::config::optional("TIKTOK_EVENTS_URL")
                .unwrap_or_else(|| DEFAULT_TIKTOK_EVENTS_URL.to_owned()),
        }
    }
}

/// One HTTP POST. Its URL may carry a token (Meta's `access_token`): never log it.
#[derive(Clone)]
pub struct Request {
    /// Where.
    pub url: String,
    /// Headers besides the content type (`application/json` unless `form`).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Whether the body is a form (`application/x-www-form-urlencoded`).
    pub form: bool,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Request(<redacted>)")
    }
}

/// What a job comes to for its destination.
#[derive(Debug)]
pub enum Built {
    /// Send this.
    Send(Request),
    /// Not for this destination: recorded `skipped` with the reason.
    Skip(String),
    /// Would be refused whole: recorded `failed` with the reason, never sent.
    Invalid(String),
}

/// The credentials of a destination, as the vault keeps them (one JSON object).
pub fn credential(credentials: &Secret, field: &str) -> Option<String> {
    let value: Value = serde_json::from_slice(credentials.expose()).ok()?;
    value.get(field)?.as_str().map(str::to_owned)
}

fn number(amount: &Amount) -> Value {
    serde_json::from_str(&amount.decimal().normalize().to_string()).unwrap_or(Value::Null)
}

fn value_fields(job: &OutboundJob, value_key: &str, object: &mut Map<String, Value>) {
    if let (Some(value), Some(currency)) = (&job.trigger.value, &job.trigger.currency) {
        object.insert(value_key.to_owned(), number(value));
        object.insert("currency".to_owned(), currency.as_str().into());
    }
}

/// The webhook body: the event, the contact's ids and acquisition.
pub fn webhook_body(job: &OutboundJob, contact: Option<&Contact>, now: Timestamp) -> Vec<u8> {
    let trigger = &job.trigger;
    let mut data = Map::new();
    data.insert("instance_id".into(), trigger.instance_id.as_str().into());
    data.insert("contact_id".into(), trigger.contact_id.as_str().into());
    data.insert("event".into(), trigger.event.as_text().into());
    if let super::EngineEvent::Goal(id) = &trigger.event {
        data.insert("goal_id".into(), id.as_str().into());
    }
    if let Some(reference) = &trigger.reference {
        data.insert("reference".into(), reference.clone().into());
    }
    data.insert("occurred_at".into(), json!(trigger.occurred_at));
    value_fields(job, "value", &mut data);
    if let Some(contact) = contact {
        data.insert("channel".into(), contact.channel.as_str().into());
        data.insert("first_seen_at".into(), json!(contact.first_seen_at));
        data.insert(
            "identifiers".into(),
            json!(
                contact
                    .identifiers()
                    .map(|id| id.as_str())
                    .collect::<Vec<_>>()
            ),
        );
        data.insert("acquisition".into(), json!(contact.acquisition));
    }
    json!({
        "id": job.event_id(),
        "type": trigger.event.webhook_type(),
        "created_at": now,
        "data": data,
    })
    .to_string()
    .into_bytes()
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, keyed with the signing secret.
pub fn webhook_signature(secret: &[u8], at: Timestamp, body: &[u8]) -> String {
    let t = at.unix_seconds();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn meta_ad(contact: &Contact) -> Option<&crate::contact::MetaReferral> {
    match &contact.acquisition {
        Some(Acquisition::MetaAd(referral)) => Some(referral),
        _ => None,
    }
}

fn web_visit(contact: &Contact) -> Option<&crate::web::WebVisit> {
    match &contact.acquisition {
        Some(Acquisition::Web(visit)) => Some(visit),
        _ => None,
    }
}

fn meta_event(
    job: &OutboundJob,
    event_name: &str,
    contact: &Contact,
    waba: Option<&str>,
    now: Timestamp,
) -> Result<Value, Built> {
    let Some(referral) = meta_ad(contact) else {
        return Err(Built::Skip("the contact has no Meta ad acquisition".into()));
    };
    let (channel, user_data) = match contact.channel {
        Channel::Whatsapp => {
            let Some(ctwa_clid) = &referral.ctwa_clid else {
                return Err(Built::Skip(
                    "the WhatsApp ad gave no ctwa_clid (a Status ad)".into(),
                ));
            };
            let Some(waba) = waba else {
                return Err(Built::Skip(
                    "the destination has no whatsapp_business_account_id".into(),
                ));
            };
            (
                "whatsapp",
                json!({ "whatsapp_business_account_id": waba, "ctwa_clid": ctwa_clid }),
            )
        }
        Channel::Messenger => (
            "messenger",
            json!({
                "page_id": contact.instance_id.as_str(),
                "page_scoped_user_id": contact.contact_id.as_str(),
            }),
        ),
        Channel::Instagram => (
            "instagram",
            json!({
                "instagram_business_account_id": contact.instance_id.as_str(),
                "ig_sid": contact.contact_id.as_str(),
            }),
        ),
        Channel::Web => return Err(Built::Skip("web contacts are not Meta messaging".into())),
    };
    let event_time = job.trigger.occurred_at.unix_seconds();
    if now.unix_seconds() - event_time > META_MAX_AGE_SECONDS {
        return Err(Built::Invalid(
            "event_time is more than 7 days old: Meta refuses it".into(),
        ));
    }
    let mut event = Map::new();
    event.insert("event_name".into(), event_name.into());
    event.insert("event_time".into(), event_time.into());
    event.insert("action_source".into(), "business_messaging".into());
    event.insert("messaging_channel".into(), channel.into());
    event.insert("user_data".into(), user_data);
    let mut custom = Map::new();
    value_fields(job, "value", &mut custom);
    if !custom.is_empty() {
        event.insert("custom_data".into(), Value::Object(custom));
    } else if matches!(event_name, "Purchase" | "OrderCreated") {
        return Err(Built::Invalid(format!(
            "{event_name} needs a value and currency, and this {} has none",
            job.trigger.event.as_text()
        )));
    }
    Ok(Value::Object(event))
}

fn google_event(job: &OutboundJob, contact: &Contact) -> Result<Value, Built> {
    let Some(visit) = web_visit(contact) else {
        return Err(Built::Skip(
            "the contact has no web visit with a Google click id".into(),
        ));
    };
    let ids = &visit.click_ids;
    let identifier = [
        ("gclid", &ids.gclid),
        ("gbraid", &ids.gbraid),
        ("wbraid", &ids.wbraid),
    ]
    .into_iter()
    .find_map(|(name, id)| id.as_ref().map(|id| (name, id)));
    let Some((name, id)) = identifier else {
        return Err(Built::Skip(
            "the contact's visit has no gclid, gbraid or wbraid".into(),
        ));
    };
    // Validated here because Google rejects a whole request for one bad field.
    if id.is_empty() || id.len() > 512 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Built::Invalid(format!(
            "the {name} is not a Google click id"
        )));
    }
    let mut event = Map::new();
    event.insert(
        "eventTimestamp".into(),
        job.trigger
            .occurred_at
            .as_datetime()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            .into(),
    );
    event.insert("transactionId".into(), job.event_id().into());
    event.insert("adIdentifiers".into(), json!({ name: id }));
    value_fields(job, "conversionValue", &mut event);
    Ok(Value::Object(event))
}

fn tiktok_event(job: &OutboundJob, event_name: &str, contact: &Contact) -> Result<Value, Built> {
    let Some(ttclid) = web_visit(contact).and_then(|visit| visit.click_ids.ttclid.as_ref()) else {
        return Err(Built::Skip("the contact has no ttclid".into()));
    };
    let mut properties = Map::new();
    value_fields(job, "value", &mut properties);
    let mut event = Map::new();
    event.insert("event".into(), event_name.into());
    event.insert(
        "event_time".into(),
        job.trigger.occurred_at.unix_seconds().into(),
    );
    event.insert("event_id".into(), job.event_id().into());
    event.insert("user".into(), json!({ "ttclid": ttclid }));
    if !properties.is_empty() {
        event.insert("properties".into(), Value::Object(properties));
    }
    Ok(Value::Object(event))
}

/// The request of `job` for `destination`. `contact` is the contact as it stands (`None`:
/// erased or never stored); `token` the destination's bearer credential (Meta's and TikTok's
/// access token, Google's OAuth access token, a webhook's signing secret).
pub fn build(
    job: &OutboundJob,
    destination: &Destination,
    event_name: &str,
    contact: Option<&Contact>,
    token: &Secret,
    endpoints: &Endpoints,
    now: Timestamp,
) -> Built {
    let token_text = || String::from_utf8_lossy(token.expose()).into_owned();
    if let Target::Webhook { url } = &destination.target {
        let body = webhook_body(job, contact, now);
        let signature = webhook_signature(token.expose(), now, &body);
        return Built::Send(Request {
            url: url.clone(),
            headers: vec![
                (SIGNATURE_HEADER.to_owned(), signature),
                ("x-webhook-id".to_owned(), job.event_id()),
            ],
            body,
            form: false,
        });
    }
    let Some(contact) = contact else {
        return Built::Skip("the contact no longer exists".into());
    };
    let built = match &destination.target {
        Target::Webhook { .. } => unreachable!("answered above"),
        Target::MetaCapi {
            dataset_id,
            whatsapp_business_account_id,
        } => meta_event(
            job,
            event_name,
            contact,
            whatsapp_business_account_id.as_deref(),
            now,
        )
        .map(|event| Request {
            url: format!(
                "{}/{dataset_id}/events?access_token={}",
                endpoints.meta_graph,
                url::form_urlencoded::byte_serialize(token.expose()).collect::<String>()
            ),
            headers: Vec::new(),
            body: json!({ "data": [event] }).to_string().into_bytes(),
            form: false,
        }),
        Target::GoogleDataManager {
            operating_account_id,
            conversion_action_id,
        } => google_event(job, contact).map(|event| Request {
            url: format!("{}/v1/events:ingest", endpoints.google_data_manager),
            headers: vec![(
                "authorization".to_owned(),
                format!("Bearer {}", token_text()),
            )],
            body: json!({
                "destinations": [{
                    "operatingAccount": {
                        "accountType": "GOOGLE_ADS",
                        "accountId": operating_account_id,
                    },
                    "productDestinationId": conversion_action_id,
                }],
                "events": [event],
            })
            .to_string()
            .into_bytes(),
            form: false,
        }),
        Target::Tiktok { event_source_id } => {
            tiktok_event(job, event_name, contact).map(|event| Request {
                url: endpoints.tiktok_events.clone(),
                headers: vec![("access-token".to_owned(), token_text())],
                body: json!({
                    "event_source": "web",
                    "event_source_id": event_source_id,
                    "data": [event],
                })
                .to_string()
                .into_bytes(),
                form: false,
            })
        }
    };
    match built {
        Ok(request) => Built::Send(request),
        Err(other) => other,
    }
}

/// How an answer reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Accepted.
    Accepted,
    /// A fault worth trying again (5xx, 429, a rate limit), after `after` if it said.
    Retry {
        /// `Retry-After`, when given in seconds.
        after: Option<Duration>,
        /// What it said.
        message: String,
    },
    /// The event is bad: never retried.
    Refused {
        /// The platform's message.
        message: String,
    },
}

/// The platform's own words in an error body: Graph's and Google's `error.message`, TikTok's
/// `message`, or the body's start.
fn message_of(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let found = parsed.as_ref().and_then(|value| {
        value
            .pointer("/error/message")
            .or_else(|| value.get("message"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let text = found.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    cap_bytes(text.trim(), super::MAX_DELIVERY_MESSAGE_BYTES).to_owned()
}

/// `Retry-After` in seconds (an HTTP date is left to the backoff).
pub fn retry_after(value: Option<&str>) -> Option<Duration> {
    value?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Meta's error codes of its rate limits, which come with a 4xx status.
const META_RATE_LIMITS: [i64; 6] = [4, 17, 32, 613, 80004, 80014];
/// TikTok's codes of its rate limit and its own faults (it answers 200 with a code).
const TIKTOK_RETRY_CODES: [i64; 3] = [40100, 50000, 50002];

/// Reads `status` and `body` as `target`'s platform answers.
pub fn classify(
    target: &Target,
    status: u16,
    retry_after_header: Option<&str>,
    body: &[u8],
) -> Answer {
    let retry = |message: String| Answer::Retry {
        after: retry_after(retry_after_header),
        message,
    };
    if status == 429 || status == 408 || status >= 500 {
        return retry(format!("HTTP {status}: {}", message_of(body)));
    }
    if !(200..300).contains(&status) {
        if let Target::MetaCapi { .. } = target {
            let code = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|value| value.pointer("/error/code").and_then(Value::as_i64));
            if code.is_some_and(|code| META_RATE_LIMITS.contains(&code)) {
                return retry(format!("Meta rate limit: {}", message_of(body)));
            }
        }
        return Answer::Refused {
            message: message_of(body),
        };
    }
    if let Target::Tiktok { .. } = target {
        let code = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|value| value.get("code").and_then(Value::as_i64));
        match code {
            Some(0) => {}
            Some(code) if TIKTOK_RETRY_CODES.contains(&code) => {
                return retry(format!("TikTok code {code}: {}", message_of(body)));
            }
            _ => {
                return Answer::Refused {
                    message: message_of(body),
                };
            }
        }
    }
    Answer::Accepted
}
