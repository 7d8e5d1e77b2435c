//! What the engine knows about a conversation.

pub mod bounds;
pub mod counters;
pub mod export;
pub mod identity;
pub mod listing;
pub mod store;

use crate::ids::{ContactId, InstanceId};
use crate::rules::{RuleId, RulePlatform};
use crate::time::Timestamp;
use crate::web::WebVisit;
use serde::{Deserialize, Serialize};

/// The messaging channel a contact writes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// WhatsApp Business (Cloud API).
    Whatsapp,
    /// Facebook Messenger, through a page.
    Messenger,
    /// Instagram direct messages, through a business account.
    Instagram,
    /// A website's chat widget; the contact is the browser's visitor id.
    Web,
}

impl Channel {
    /// The channel's name, as it appears in JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            Channel::Whatsapp => "whatsapp",
            Channel::Messenger => "messenger",
            Channel::Instagram => "instagram",
            Channel::Web => "web",
        }
    }
}

/// Where Meta showed the ad or link that opened the chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetaPlatform {
    /// An ad or post on Facebook.
    Facebook,
    /// An ad or post on Instagram.
    Instagram,
    /// A click-to-WhatsApp ad or post.
    Whatsapp,
}

/// The facts a Meta referral carries, with only the fields Meta sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaReferral {
    /// Where the referral's ad or post ran.
    pub platform: MetaPlatform,
    /// The ad the person came from, when Meta names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ad_id: Option<String>,
    /// WhatsApp's click id of a click-to-WhatsApp ad.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctwa_clid: Option<String>,
    /// The ad's headline, as Meta sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headline: Option<String>,
    /// The ad's body text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The ad or post URL Meta gives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    /// The ad's media type (`image`, `video`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The ad's image, for an image ad.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// The ad's video, for a video ad.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_url: Option<String>,
    /// The video ad's thumbnail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
    /// The post the person came from, for a post referral.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_id: Option<String>,
    /// The catalogue product the ad showed, or the product a shop or catalog message came
    /// from (its retailer id on WhatsApp, Meta's product id on Messenger and Instagram).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// The catalog of `product_id`, when Meta names it (WhatsApp's `referred_product`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_id: Option<String>,
    /// The `ref` parameter of an m.me or ig.me link.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub ref_param: Option<String>,
    /// Meta's own name for the entry point (`ADS`, `SHORTLINK`, `CUSTOMER_CHAT_PLUGIN`, …) or,
    /// on WhatsApp, the `source_type` (`ad`, `post`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The message that carried the referral, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// When the referral happened, by Meta's clock: what first touch is decided by.
    pub captured_at: Timestamp,
}

impl MetaReferral {
    /// A referral that says only where it was seen and when; the parser fills in the rest.
    pub fn minimal(platform: MetaPlatform, captured_at: Timestamp) -> Self {
        Self {
            platform,
            ad_id: None,
            ctwa_clid: None,
            headline: None,
            body: None,
            source_url: None,
            media_type: None,
            image_url: None,
            video_url: None,
            thumbnail_url: None,
            post_id: None,
            product_id: None,
            catalog_id: None,
            ref_param: None,
            source: None,
            message_id: None,
            captured_at,
        }
    }
}

/// A referral as seen on one event, classified. Every one is kept in the touch history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Referral {
    /// A paid ad.
    MetaAd(MetaReferral),
    /// An organic post.
    MetaPost(MetaReferral),
    /// An m.me / ig.me / wa.me link.
    Shortlink(MetaReferral),
    /// A catalog or shop product the person wrote about (WhatsApp's "Message business" on a
    /// product, a Messenger Shops or Instagram Shop product), without an ad.
    Product(MetaReferral),
    /// An entry point that says nothing about acquisition (e.g. the customer chat plugin).
    Other(MetaReferral),
    /// The page a web visitor opened the chat widget from.
    Web(WebVisit),
}

impl Referral {
    /// When the touch happened: the event's own time, or the web visit's.
    pub fn captured_at(&self) -> Timestamp {
        match self {
            Referral::MetaAd(referral)
            | Referral::MetaPost(referral)
            | Referral::Shortlink(referral)
            | Referral::Product(referral)
            | Referral::Other(referral) => referral.captured_at,
            Referral::Web(visit) => visit.captured_at,
        }
    }

    /// Whether it stands for an acquisition (without building it).
    pub fn is_acquisition(&self) -> bool {
        !matches!(self, Referral::Other(_))
    }

    /// The Meta referral's facts; `None` for a web visit.
    pub fn meta_facts(&self) -> Option<&MetaReferral> {
        match self {
            Referral::MetaAd(referral)
            | Referral::MetaPost(referral)
            | Referral::Shortlink(referral)
            | Referral::Product(referral)
            | Referral::Other(referral) => Some(referral),
            Referral::Web(_) => None,
        }
    }

    /// The first-touch acquisition this referral stands for, if it stands for one.
    pub fn acquisition(&self) -> Option<Acquisition> {
        match self {
            Referral::MetaAd(referral) => Some(Acquisition::MetaAd(referral.clone())),
            Referral::MetaPost(referral) => Some(Acquisition::MetaPost(referral.clone())),
            Referral::Shortlink(referral) => Some(Acquisition::Shortlink(referral.clone())),
            Referral::Product(referral) => Some(Acquisition::Product(referral.clone())),
            Referral::Other(_) => None,
            Referral::Web(visit) => Some(Acquisition::Web(visit.clone())),
        }
    }
}

/// How the contact was acquired: its earliest touch, by the touches' own times. Only an earlier
/// touch (an event Meta delivered late) ever replaces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Acquisition {
    /// A paid Meta ad.
    MetaAd(MetaReferral),
    /// An organic Meta post.
    MetaPost(MetaReferral),
    /// An m.me / ig.me / wa.me link.
    Shortlink(MetaReferral),
    /// A catalog or shop product, without an ad (`catalog_id`, `product_id`).
    Product(MetaReferral),
    /// An admin's rule matched the contact's first message (non-Meta ads' pre-filled text).
    Rule(RuleAttribution),
    /// A website visit: through the chat widget, or carried into WhatsApp by a ref code
    /// (`via: "wa.me"`).
    Web(WebVisit),
}

/// What a matching rule says about the contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleAttribution {
    /// The platform the rule stands for (a non-Meta ad network or source).
    pub platform: RulePlatform,
    /// The rule's source label, when it has one.
    pub source_name: Option<String>,
    /// The rule that matched.
    pub rule_id: RuleId,
    /// The rule's name when it matched, kept if the rule is renamed or deleted.
    pub rule_name: String,
    /// The campaign the rule names.
    pub campaign: Option<String>,
    /// The ad the rule names.
    pub ad: Option<String>,
    /// The first message text the rule matched.
    pub matched_text: String,
    /// When the rule was applied.
    pub captured_at: Timestamp,
    /// The backfill run that applied the rule, when it was not the live matcher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill_job_id: Option<String>,
}

impl RuleAttribution {
    /// The attribution `rule` gives for matching `matched_text` at `at`.
    pub fn of(rule: &crate::rules::Rule, matched_text: String, at: Timestamp) -> Self {
        Self {
            platform: rule.settings.platform,
            source_name: rule.settings.source_name.clone(),
            rule_id: rule.id.clone(),
            rule_name: rule.settings.name.clone(),
            campaign: rule.settings.campaign.clone(),
            ad: rule.settings.ad.clone(),
            matched_text,
            captured_at: at,
            backfill_job_id: None,
        }
    }
}

impl Acquisition {
    /// The `kind` tag, as it appears in JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Acquisition::MetaAd(_) => "meta_ad",
            Acquisition::MetaPost(_) => "meta_post",
            Acquisition::Shortlink(_) => "shortlink",
            Acquisition::Product(_) => "product",
            Acquisition::Rule(_) => "rule",
            Acquisition::Web(_) => "web",
        }
    }

    /// Whether this acquisition was read from the first message's text (a rule, a web ref
    /// code), so that it stands only as long as that message is the first.
    pub fn read_from_first_message(&self) -> bool {
        self.touched_at().is_none()
    }

    /// When the touch behind this acquisition happened: the referral's or the visit's own
    /// time; `None` for one read from the first message, which stands at that message's time.
    pub fn touched_at(&self) -> Option<Timestamp> {
        match self {
            Acquisition::MetaAd(referral)
            | Acquisition::MetaPost(referral)
            | Acquisition::Shortlink(referral)
            | Acquisition::Product(referral) => Some(referral.captured_at),
            Acquisition::Web(visit) if visit.ref_code.is_none() => Some(visit.captured_at),
            Acquisition::Rule(_) | Acquisition::Web(_) => None,
        }
    }

    /// The platform the contact came from, as stats group them: always one of a fixed list,
    /// since it names a counter.
    pub fn platform(&self) -> &'static str {
        match self {
            Acquisition::MetaAd(referral)
            | Acquisition::MetaPost(referral)
            | Acquisition::Shortlink(referral)
            | Acquisition::Product(referral) => referral.platform.as_str(),
            Acquisition::Rule(rule) => rule.platform.as_str(),
            Acquisition::Web(visit) => visit.platform.as_str(),
        }
    }
}

impl MetaPlatform {
    /// The platform's name in counters, filters and the API.
    pub fn as_str(&self) -> &'static str {
        match self {
            MetaPlatform::Facebook => "facebook",
            MetaPlatform::Instagram => "instagram",
            MetaPlatform::Whatsapp => "whatsapp",
        }
    }
}

/// A contact's message as stored: enough to match rules and order messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// The channel's message id.
    pub id: String,
    /// Meta's message type (`text`, `audio`, `image`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// The text, for a text message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// When it was sent, by the channel's clock.
    pub timestamp: Timestamp,
    /// A reply's id and title, an order: what the built-in events read. Never stored on the
    /// contact's first message (the events keep it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Box<crate::events::MessageDetails>>,
}

/// Who a WhatsApp user is, as Meta names them beside the contact id. A user who adopted a
/// username may come without a phone number; every user has a business-scoped user id (BSUID).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The phone number (`wa_id`, the message's `from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<ContactId>,
    /// The business-scoped user id (`user_id`, the message's `from_user_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<ContactId>,
    /// The BSUID shared by the business portfolios linked to this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_user_id: Option<ContactId>,
    /// The WhatsApp username, when the user has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

impl Identity {
    /// The identifiers that name one person, and so one contact: phone and BSUID.
    pub fn identifiers(&self) -> impl Iterator<Item = &ContactId> {
        self.wa_id.iter().chain(&self.user_id)
    }

    /// `self` with what `newer` says, keeping what it leaves out.
    pub fn updated_by(&self, newer: &Identity) -> Identity {
        let pick = |newer: &Option<ContactId>, older: &Option<ContactId>| {
            newer.clone().or_else(|| older.clone())
        };
        Identity {
            wa_id: pick(&newer.wa_id, &self.wa_id),
            user_id: pick(&newer.user_id, &self.user_id),
            parent_user_id: pick(&newer.parent_user_id, &self.parent_user_id),
            username: newer.username.clone().or_else(|| self.username.clone()),
        }
    }
}

/// How many referrals the touch history keeps; the most recent ones win, the first touch is
/// always kept in `acquisition`.
pub const TOUCH_HISTORY_CAP: usize = 20;

/// A person who wrote to an instance: when, how often, and where they came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// The business side they wrote to.
    pub instance_id: InstanceId,
    /// The person, as the channel names them.
    pub contact_id: ContactId,
    /// The channel the contact belongs to.
    pub channel: Channel,
    /// The name the channel last showed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The earliest event time seen (events may arrive out of order).
    pub first_seen_at: Timestamp,
    /// The latest event time seen.
    pub last_seen_at: Timestamp,
    /// Messages applied so far.
    pub message_count: u64,
    /// The earliest message, which the text rules read.
    pub first_message: Option<InboundMessage>,
    /// The first touch that attributes the contact, if any.
    pub acquisition: Option<Acquisition>,
    /// The latest referrals the contact came with (at most `TOUCH_HISTORY_CAP`), first touch or not.
    #[serde(default)]
    pub touches: Vec<Referral>,
    /// When the text rules were applied to the first message (matched or not); `None` while
    /// the contact waits for the matcher, and when a referral at or before the first message
    /// made their verdict moot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_checked_at: Option<Timestamp>,
    /// Phone, BSUID and username, as far as Meta told them.
    #[serde(flatten)]
    pub identity: Identity,
    /// The other identifiers (phone, BSUID, ids of contacts merged into this one) that resolve
    /// to this contact; the store holds a link for each, written in the same commit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub linked_ids: Vec<ContactId>,
    /// The contact's recent conversation events (bounded: see `crate::events::EventLog`).
    #[serde(default, skip_serializing_if = "crate::events::EventLog::is_empty")]
    pub events: crate::events::EventLog,
    /// Progress toward each of the instance's goals that the contact's events have touched.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub goals: std::collections::BTreeMap<crate::goals::GoalId, crate::goals::GoalProgress>,
    /// The earliest outbound message the business sent this person (a WhatsApp `sent` status
    /// with its conversation's origin), when one is known: what tells a `proactive`
    /// conversation source (see [`crate::sources`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_first: Option<crate::sources::BusinessFirst>,
    /// Optimistic-concurrency version: every write names the version it was computed from.
    pub version: u64,
}

impl Contact {
    /// Whether the text rules still have to look at this contact's first message: they have
    /// not decided on it, and no referral came at or before it. A referral on a later message
    /// does not settle it: a rule matching the first message is the earlier touch.
    pub fn awaits_rule_match(&self) -> bool {
        self.first_message.is_some() && self.rules_checked_at.is_none() && !self.rules_are_moot()
    }

    /// Whether a referral (or web visit) at or before the first message is the acquisition:
    /// then the first message's text cannot be the first touch.
    pub fn rules_are_moot(&self) -> bool {
        self.acquisition
            .as_ref()
            .and_then(Acquisition::touched_at)
            .is_some_and(|at| self.is_at_or_before_first_message(at))
    }

    /// Whether a touch at `at` comes no later than the first message (or there is none yet).
    pub fn is_at_or_before_first_message(&self, at: Timestamp) -> bool {
        self.first_message
            .as_ref()
            .is_none_or(|first| at <= first.timestamp)
    }

    /// The first message's text as sent, or empty (audio, image, none yet).
    pub fn first_message_text(&self) -> &str {
        self.first_message
            .as_ref()
            .and_then(|message| message.text.as_deref())
            .unwrap_or_default()
    }

    /// The text the rules read: the first message's, without a web widget's ref code token.
    pub fn first_text(&self) -> std::borrow::Cow<'_, str> {
        crate::web::without_ref_code(self.first_message_text())
    }

    /// The contact once the text rules have decided on it: checked now, and attributed to
    /// `acquisition` if a rule matched. The caller writes it at this contact's version.
    pub fn decided_by_rules(&self, acquisition: Option<Acquisition>, now: Timestamp) -> Contact {
        let mut after = self.clone();
        if acquisition.is_some() {
            after.acquisition = acquisition;
        }
        after.rules_checked_at = Some(now);
        after.version += 1;
        after
    }

    /// Every identifier that resolves to this contact: its own id first, then the linked ones.
    pub fn identifiers(&self) -> impl Iterator<Item = &ContactId> {
        std::iter::once(&self.contact_id).chain(&self.linked_ids)
    }

    /// Records `event` in the contact's journey.
    pub fn record_event(&mut self, event: crate::events::ContactEvent) -> crate::events::Recorded {
        self.events.record(event)
    }

    /// The UTC day the contact was first seen (`YYYY-MM-DD`): the day its counters belong to.
    pub fn first_seen_day(&self) -> String {
        self.first_seen_at.day()
    }
}
