//! Sending outcomes back: destinations an admin configures per instance (Meta's Conversions
//! API for business messaging, Google's Data Manager API, TikTok's Events API, a signed
//! webhook to the business), the jobs a trigger puts on the outbound queue, one per
//! destination that maps the trigger's engine event, and the delivery records that make each
//! (destination, contact, event, reference) go out at most once.

pub mod admin;
pub mod draft;
pub mod payload;
pub mod sender;
pub mod store;
pub mod triggers;

use crate::goals::GoalId;
use crate::ids::{ContactId, InstanceId};
use crate::revenue::money::{Amount, Currency};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::BTreeMap;

crate::goals::ulid_id!(
    /// A destination's id.
    DestinationId,
    InvalidDestinationId,
    "destination_id must be a ULID: 26 characters of Crockford base 32"
);

/// Most destinations one instance may hold: each trigger reads them all.
pub const MAX_DESTINATIONS_PER_INSTANCE: usize = 10;
/// Most engine events one destination maps.
pub const MAX_EVENTS_PER_DESTINATION: usize = 25;

/// What happened in the engine that a destination may be told of.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EngineEvent {
    /// A contact's first touch was recorded.
    Lead,
    /// A WhatsApp order.
    Order,
    /// A postback credited to the contact.
    Conversion,
    /// The contact achieved this goal.
    Goal(GoalId),
}

/// A text that names no engine event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an engine event is lead, order, conversion or goal:<goal_id>")]
pub struct InvalidEngineEvent;

impl EngineEvent {
    /// `lead`, `order`, `conversion` or `goal:<goal_id>`.
    pub fn parse(text: &str) -> Result<Self, InvalidEngineEvent> {
        match text {
            "lead" => Ok(Self::Lead),
            "order" => Ok(Self::Order),
            "conversion" => Ok(Self::Conversion),
            _ => {
                let id = text.strip_prefix("goal:").ok_or(InvalidEngineEvent)?;
                GoalId::parse(id)
                    .map(Self::Goal)
                    .map_err(|_| InvalidEngineEvent)
            }
        }
    }

    /// Its text, as `parse` reads it.
    pub fn as_text(&self) -> String {
        match self {
            Self::Lead => "lead".to_owned(),
            Self::Order => "order".to_owned(),
            Self::Conversion => "conversion".to_owned(),
            Self::Goal(id) => format!("goal:{id}"),
        }
    }

    /// The event type a webhook destination receives for it.
    pub fn webhook_type(&self) -> &'static str {
        match self {
            Self::Lead => "contact.attributed",
            Self::Order => "order.placed",
            Self::Conversion => "conversion.attributed",
            Self::Goal(_) => "goal.achieved",
        }
    }
}

impl Serialize for EngineEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.as_text())
    }
}

impl<'de> Deserialize<'de> for EngineEvent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Where a destination sends, and the settings that are not secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Target {
    /// The business's own endpoint, signed with the destination's secret.
    Webhook {
        /// Where events are posted.
        url: String,
    },
    /// Meta's Conversions API for business messaging.
    MetaCapi {
        /// The dataset events go to.
        dataset_id: String,
        /// The WhatsApp Business Account of the instance's number: WhatsApp events need it
        /// (`user_data.whatsapp_business_account_id`); without it they are skipped.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        whatsapp_business_account_id: Option<String>,
    },
    /// Google's Data Manager API (offline conversions of Google Ads clicks).
    GoogleDataManager {
        /// The Google Ads customer id the conversions belong to.
        operating_account_id: String,
        /// The conversion action they count under.
        conversion_action_id: String,
    },
    /// TikTok's Events API.
    Tiktok {
        /// The TikTok pixel or event source.
        event_source_id: String,
    },
}

impl Target {
    /// The `type` tag, as it appears in JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Webhook { .. } => "webhook",
            Self::MetaCapi { .. } => "meta_capi",
            Self::GoogleDataManager { .. } => "google_data_manager",
            Self::Tiktok { .. } => "tiktok",
        }
    }
}

/// Where a destination's secrets are kept: the key of one vault entry (the credentials as one
/// JSON object), never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretRef(pub String);

/// One destination of an instance, as stored. Its secrets are a reference only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    /// Its id.
    pub id: DestinationId,
    /// Where it sends.
    #[serde(flatten)]
    pub target: Target,
    /// A name for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Engine event → the platform's event name (a webhook's values are its event types).
    pub events: BTreeMap<EngineEvent, String>,
    /// Whether triggers put jobs for it.
    pub enabled: bool,
    /// Its credentials in the vault.
    pub secret_ref: SecretRef,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was last replaced.
    pub updated_at: Timestamp,
}

impl Destination {
    /// The platform event name it sends for `event`, if it maps it.
    pub fn maps(&self, event: &EngineEvent) -> Option<&str> {
        self.enabled
            .then(|| self.events.get(event).map(String::as_str))
            .flatten()
    }

    /// As the admin API shows it: everything but where its secrets are.
    pub fn public_view(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.remove("secret_ref");
        }
        value
    }
}

/// Each instance's destinations, as one small record changed under a version check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationSet {
    /// Moves on with each change.
    pub version: u64,
    /// The destinations, oldest first.
    pub destinations: Vec<Destination>,
}

/// A trigger's facts: what happened to which contact, and what a destination needs of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// The contact's instance.
    pub instance_id: InstanceId,
    /// The contact.
    pub contact_id: ContactId,
    /// What happened.
    pub event: EngineEvent,
    /// The order or conversion it is about (part of the dedupe key), when it is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// Its value, for an order or conversion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Amount>,
    /// The value's currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
}

/// What travels on the outbound queue: one trigger for one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundJob {
    /// The destination to tell.
    pub destination_id: DestinationId,
    /// What to tell it.
    #[serde(flatten)]
    pub trigger: Trigger,
}

impl OutboundJob {
    /// Our own dedupe key: one delivery per (destination, contact, event, reference), however
    /// often the trigger fires or the job is delivered. Meta does not deduplicate business
    /// messaging events, so this is what keeps them single.
    pub fn delivery_key(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.destination_id,
            self.trigger.contact_id.as_str(),
            self.trigger.event.as_text(),
            self.trigger.reference.as_deref().unwrap_or("")
        )
    }

    /// The id platforms that do deduplicate (TikTok's `event_id`, Google's `transactionId`)
    /// and webhook receivers see: stable per delivery key, and no contact id in clear.
    pub fn event_id(&self) -> String {
        let digest = sha2::Sha256::digest(self.delivery_key().as_bytes());
        hex::encode(&digest[..16])
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Claimed and not yet accepted: being sent, or waiting for the queue's next try.
    Pending,
    /// The destination accepted it.
    Sent,
    /// The destination refused it as bad (never retried), or it could not be built.
    Failed,
    /// Not for this destination (no Meta ad acquisition, no click id of the platform).
    Skipped,
}

impl DeliveryStatus {
    /// The status a query names.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "sent" => Some(Self::Sent),
            "failed" => Some(Self::Failed),
            "skipped" => Some(Self::Skipped),
            _ => None,
        }
    }

    /// Its name in JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }

    /// Whether nothing more will be sent for it.
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::Pending)
    }
}

/// The longest platform message a delivery keeps.
pub const MAX_DELIVERY_MESSAGE_BYTES: usize = 500;
/// Deliveries are kept this long (DynamoDB TTL), then their keys may go out again: past every
/// queue retry and every platform's own dedupe window.
pub const DELIVERY_TTL_SECONDS: i64 = 90 * 24 * 60 * 60;

/// One delivery of one job to its destination: claimed before sending, then its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// [`OutboundJob::delivery_key`].
    pub delivery_key: String,
    /// [`OutboundJob::event_id`], shown to the admin.
    pub delivery_id: String,
    /// The instance.
    pub instance_id: InstanceId,
    /// The destination.
    pub destination_id: DestinationId,
    /// The contact.
    pub contact_id: ContactId,
    /// The engine event.
    pub event: EngineEvent,
    /// The platform's event name sent.
    pub platform_event: String,
    /// The order or conversion, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Requests made so far.
    pub attempts: u32,
    /// The last answer's HTTP status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// The platform's message, or why it was skipped or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When it was first claimed; orders the listing.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// A ULID of the first claim: the listing's newest-first position.
    pub listed_key: String,
    /// The queue message that holds it now, while pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_owner: Option<String>,
    /// Until when that holder may work on it; another may take it over after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<Timestamp>,
}

impl Delivery {
    /// A fresh pending delivery of `job`, held by `owner` until `lease_until`.
    pub fn claim_of(
        job: &OutboundJob,
        platform_event: &str,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Self {
        Self {
            delivery_key: job.delivery_key(),
            delivery_id: job.event_id(),
            instance_id: job.trigger.instance_id.clone(),
            destination_id: job.destination_id.clone(),
            contact_id: job.trigger.contact_id.clone(),
            event: job.trigger.event.clone(),
            platform_event: platform_event.to_owned(),
            reference: job.trigger.reference.clone(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            http_status: None,
            message: None,
            created_at: now,
            updated_at: now,
            listed_key: crate::monotonic_ulid::Ulid::new().to_string(),
            lease_owner: Some(owner.to_owned()),
            lease_until: Some(lease_until),
        }
    }

    /// Whether `owner` may work on it at `now`: it is pending and held by `owner`, or by no
    /// one, or by a holder whose lease ran out.
    pub fn may_claim(&self, owner: &str, now: Timestamp) -> bool {
        self.status == DeliveryStatus::Pending
            && (self.lease_owner.as_deref().is_none_or(|held| held == owner)
                || self.lease_until.is_none_or(|until| until < now))
    }

    /// As the admin API shows it.
    pub fn public_view(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            for internal in ["delivery_key", "listed_key", "lease_owner", "lease_until"] {
                object.remove(internal);
            }
        }
        value
    }
}
