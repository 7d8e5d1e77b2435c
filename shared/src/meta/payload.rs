//! Meta delivery → inbound events. Unknown objects, fields and event kinds are skipped one by
//! one: a single odd entry never fails the whole delivery.

use crate::contact::{Channel, Identity, InboundMessage, MetaPlatform, MetaReferral, Referral};
use crate::events::{MessageDetails, Order, OrderItem};
use crate::ids::{ContactId, InstanceId};
use crate::ingest::InboundEvent;
use crate::revenue::money::{Amount, Currency};
use crate::time::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// Why a webhook body could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The body does not parse as JSON.
    #[error("the body is not valid JSON: {0}")]
    NotJson(String),
    /// JSON, but not shaped like a Meta delivery.
    #[error("the body is not a Meta webhook delivery: {0}")]
    NotADelivery(String),
}

/// What one delivery holds for the engine.
#[derive(Debug, Default)]
pub struct Delivery {
    /// The inbound messages and referrals the delivery carried.
    pub events: Vec<InboundEvent>,
    /// Entries and items that were not inbound messages or referrals (statuses, echoes, reads,
    /// unknown kinds or shapes).
    pub skipped: usize,
    /// The WhatsApp statuses that may say the business wrote first (`sent`, with the
    /// conversation's origin); also counted in `skipped`, as every status is.
    pub outbound: Vec<crate::sources::OutboundStatus>,
}

/// Parses a delivery whose signature has already been checked. `received_at` stands in for a
/// missing or unreadable event timestamp.
pub fn parse_delivery(body: &[u8], received_at: Timestamp) -> Result<Delivery, PayloadError> {
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|error| match error.classify() {
            serde_json::error::Category::Data => PayloadError::NotADelivery(error.to_string()),
            _ => PayloadError::NotJson(error.to_string()),
        })?;
    let mut delivery = Delivery::default();
    let channel = match envelope.object.as_str() {
        "whatsapp_business_account" => Some(Channel::Whatsapp),
        "page" => Some(Channel::Messenger),
        "instagram" => Some(Channel::Instagram),
        _ => None,
    };
    for raw_entry in envelope.entry {
        match channel {
            // Strict first, in one pass; only an entry with an odd item is parsed again with
            // items skipped one by one.
            Some(Channel::Whatsapp) => {
                if let Some(entry) = parse_lenient::<WaEntry<WaMessage>>(raw_entry) {
                    whatsapp_events(entry, received_at, &mut delivery);
                } else if let Some(entry) = parse_lenient::<WaEntry<Lenient<WaMessage>>>(raw_entry)
                {
                    whatsapp_events(entry, received_at, &mut delivery);
                } else {
                    delivery.skipped += 1;
                }
            }
            Some(channel) => {
                if let Some(entry) = parse_lenient::<MessagingEntry<Messaging>>(raw_entry) {
                    messaging_events(channel, entry, received_at, &mut delivery);
                } else if let Some(entry) =
                    parse_lenient::<MessagingEntry<Lenient<Messaging>>>(raw_entry)
                {
                    messaging_events(channel, entry, received_at, &mut delivery);
                } else {
                    delivery.skipped += 1;
                }
            }
            None => delivery.skipped += 1,
        }
    }
    Ok(delivery)
}

#[derive(Deserialize)]
struct Envelope<'a> {
    object: String,
    #[serde(borrow, default)]
    entry: Vec<&'a RawValue>,
}

fn parse_lenient<T: DeserializeOwned>(raw: &RawValue) -> Option<T> {
    serde_json::from_str(raw.get()).ok()
}

/// An item that is skipped, instead of failing its parent, when its shape is unexpected.
struct Lenient<T>(Option<T>);

impl<'de, T: DeserializeOwned> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw: &'de RawValue = Deserialize::deserialize(deserializer)?;
        Ok(Lenient(parse_lenient(raw)))
    }
}

/// An item of a batch, parsed strictly (`T`) or leniently (`Lenient<T>`).
trait Item<T> {
    fn into_item(self) -> Option<T>;
}

impl<T> Item<T> for T {
    fn into_item(self) -> Option<T> {
        Some(self)
    }
}

impl<T> Item<T> for Lenient<T> {
    fn into_item(self) -> Option<T> {
        self.0
    }
}

// ---------------------------------------------------------------- WhatsApp Cloud API

#[derive(Deserialize)]
struct WaEntry<M> {
    #[serde(default = "Vec::new")]
    changes: Vec<WaChange<M>>,
}

#[derive(Deserialize)]
struct WaChange<M> {
    field: String,
    value: Option<WaValue<M>>,
}

#[derive(Deserialize)]
struct WaValue<M> {
    metadata: Option<WaMetadata>,
    #[serde(default)]
    contacts: Vec<Lenient<WaContact>>,
    #[serde(default = "Vec::new")]
    messages: Vec<M>,
    #[serde(default)]
    statuses: Vec<Lenient<WaStatus>>,
}

/// An outbound message's status; only what tells who wrote first is read.
#[derive(Deserialize)]
struct WaStatus {
    status: Option<String>,
    timestamp: Option<String>,
    recipient_id: Option<String>,
    recipient_user_id: Option<String>,
    conversation: Option<WaConversation>,
}

#[derive(Deserialize)]
struct WaConversation {
    origin: Option<WaOrigin>,
}

#[derive(Deserialize)]
struct WaOrigin {
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// A `sent` status of a conversation with an origin, as an outbound start; `None` for any
/// other status (a `delivered` or `read` follows a `sent` of the same message).
fn outbound_status(
    status: WaStatus,
    instance_id: &InstanceId,
) -> Option<crate::sources::OutboundStatus> {
    if status.status.as_deref() != Some("sent") {
        return None;
    }
    let origin = status.conversation?.origin?.kind?;
    let parse = |id: Option<&str>| id.and_then(|id| ContactId::parse(id).ok());
    let recipient = parse(status.recipient_id.as_deref())
        .or_else(|| parse(status.recipient_user_id.as_deref()))?;
    let at = status
        .timestamp?
        .parse()
        .ok()
        .and_then(Timestamp::from_unix_seconds)?;
    Some(crate::sources::OutboundStatus {
        instance_id: instance_id.clone(),
        recipient,
        at,
        origin: crate::sources::Origin::of(&origin),
    })
}

#[derive(Deserialize)]
struct WaMetadata {
    phone_number_id: String,
}

/// A sender as `contacts[]` describes them; a username user comes without `wa_id`.
#[derive(Deserialize)]
struct WaContact {
    wa_id: Option<String>,
    user_id: Option<String>,
    parent_user_id: Option<String>,
    profile: Option<WaProfile>,
}

#[derive(Deserialize)]
struct WaProfile {
    name: Option<String>,
    username: Option<String>,
}

#[derive(Deserialize)]
struct WaMessage {
    id: String,
    /// The phone number; absent for a user who hides it behind a username.
    from: Option<String>,
    /// The business-scoped user id.
    from_user_id: Option<String>,
    timestamp: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<WaText>,
    button: Option<WaButton>,
    interactive: Option<WaInteractive>,
    order: Option<Lenient<WaOrder>>,
    referral: Option<WaReferral>,
    context: Option<WaContext>,
}

/// What a message answers or came from; only a product's "Message business" button is read.
#[derive(Deserialize)]
struct WaContext {
    referred_product: Option<WaReferredProduct>,
}

#[derive(Deserialize)]
struct WaReferredProduct {
    catalog_id: Option<String>,
    product_retailer_id: Option<String>,
}

#[derive(Deserialize)]
struct WaText {
    body: String,
}

#[derive(Deserialize)]
struct WaButton {
    text: Option<String>,
    payload: Option<String>,
}

/// A reply to an interactive message: a reply button's or a list row's id and title.
#[derive(Deserialize)]
struct WaInteractive {
    button_reply: Option<WaReply>,
    list_reply: Option<WaReply>,
}

#[derive(Deserialize)]
struct WaReply {
    id: Option<String>,
    title: Option<String>,
}

#[derive(Deserialize)]
struct WaOrder {
    catalog_id: Option<String>,
    text: Option<String>,
    #[serde(default)]
    product_items: Vec<Lenient<WaOrderItem>>,
}

/// An order line; `item_price` kept as Meta wrote the number, so that it is read exactly.
#[derive(Deserialize)]
struct WaOrderItem {
    product_retailer_id: String,
    quantity: u32,
    item_price: Box<RawValue>,
    currency: String,
}

/// What a WhatsApp message carries beyond its text, for the built-in events; `None` for a
/// plain message. An order line that does not read (a price that is not a number) is dropped.
fn whatsapp_details(
    button: Option<&WaButton>,
    interactive: Option<WaInteractive>,
    order: Option<Lenient<WaOrder>>,
) -> Option<Box<MessageDetails>> {
    let reply = interactive.and_then(|i| i.button_reply.or(i.list_reply));
    let order = order.and_then(|order| order.0).map(|order| Order {
        catalog_id: order.catalog_id,
        text: order.text,
        items: order
            .product_items
            .into_iter()
            .filter_map(|item| item.0)
            .filter_map(|item| {
                Some(OrderItem {
                    item_price: Amount::parse_payout(item.item_price.get()).ok()?,
                    currency: Currency::parse(&item.currency).ok()?,
                    product_retailer_id: item.product_retailer_id,
                    quantity: item.quantity,
                })
            })
            .collect(),
    });
    let details = MessageDetails {
        reply_id: reply
            .as_ref()
            .and_then(|reply| reply.id.clone())
            .or_else(|| button.and_then(|button| button.payload.clone())),
        reply_title: reply
            .and_then(|reply| reply.title)
            .or_else(|| button.and_then(|button| button.text.clone())),
        order,
    };
    (details != MessageDetails::default()).then(|| Box::new(details))
}

#[derive(Deserialize)]
struct WaReferral {
    source_url: Option<String>,
    source_id: Option<String>,
    source_type: Option<String>,
    body: Option<String>,
    headline: Option<String>,
    media_type: Option<String>,
    image_url: Option<String>,
    video_url: Option<String>,
    thumbnail_url: Option<String>,
    ctwa_clid: Option<String>,
}

fn whatsapp_events<M: Item<WaMessage>>(
    entry: WaEntry<M>,
    received_at: Timestamp,
    delivery: &mut Delivery,
) {
    for change in entry.changes {
        let WaChange {
            field,
            value: Some(value),
        } = change
        else {
            delivery.skipped += 1;
            continue;
        };
        delivery.skipped += value.statuses.len();
        let instance = value
            .metadata
            .as_ref()
            .and_then(|metadata| InstanceId::parse(&metadata.phone_number_id).ok());
        let (true, Some(instance_id)) = (field == "messages", instance) else {
            delivery.skipped += value.messages.len().max(1);
            continue;
        };
        delivery.outbound.extend(
            value
                .statuses
                .into_iter()
                .filter_map(|status| outbound_status(status.0?, &instance_id)),
        );
        let names: Vec<WaContact> = value.contacts.into_iter().filter_map(|c| c.0).collect();
        for message in value.messages {
            let Some(message) = message.into_item() else {
                delivery.skipped += 1;
                continue;
            };
            let Some((contact_id, identity, display_name)) = whatsapp_sender(&message, &names)
            else {
                delivery.skipped += 1;
                continue;
            };
            let occurred_at = message
                .timestamp
                .as_deref()
                .and_then(|seconds| seconds.parse().ok())
                .and_then(Timestamp::from_unix_seconds)
                .unwrap_or(received_at);
            let product = message
                .context
                .and_then(|context| context.referred_product)
                .and_then(|product| Some((product.catalog_id, product.product_retailer_id?)));
            let referral = match (message.referral, product) {
                (Some(referral), product) => Some(whatsapp_referral(
                    referral,
                    product,
                    &message.id,
                    occurred_at,
                )),
                (None, Some((catalog_id, product_id))) => Some(Referral::Product(MetaReferral {
                    product_id: Some(product_id),
                    catalog_id,
                    source: Some("referred_product".into()),
                    message_id: Some(message.id.clone()),
                    ..MetaReferral::minimal(MetaPlatform::Whatsapp, occurred_at)
                })),
                (None, None) => None,
            };
            let details =
                whatsapp_details(message.button.as_ref(), message.interactive, message.order);
            let text = message
                .text
                .map(|text| text.body)
                .or_else(|| message.button.and_then(|button| button.text));
            delivery.events.push(InboundEvent {
                dedupe_key: format!("wa:{}", message.id),
                instance_id: instance_id.clone(),
                contact_id,
                channel: Channel::Whatsapp,
                display_name,
                occurred_at,
                message: Some(InboundMessage {
                    id: message.id,
                    kind: message.kind.unwrap_or_else(|| "unknown".into()),
                    text,
                    timestamp: occurred_at,
                    details,
                }),
                referral,
                identity,
            });
        }
    }
}

/// Who sent `message`: the contact id it is filed under (the phone number when Meta sent one,
/// else the BSUID), every identifier known for the sender, and their profile name. `None` when
/// the message names no usable sender.
fn whatsapp_sender(
    message: &WaMessage,
    contacts: &[WaContact],
) -> Option<(ContactId, Identity, Option<String>)> {
    let parse = |id: Option<&str>| id.and_then(|id| ContactId::parse(id).ok());
    let phone = parse(message.from.as_deref());
    let bsuid = parse(message.from_user_id.as_deref());
    let contact_id = phone.clone().or_else(|| bsuid.clone())?;
    let same = |ours: &Option<ContactId>, theirs: &Option<String>| {
        ours.as_ref()
            .is_some_and(|ours| theirs.as_deref() == Some(ours.as_str()))
    };
    let profile = contacts
        .iter()
        .find(|contact| same(&phone, &contact.wa_id) || same(&bsuid, &contact.user_id));
    let identity = Identity {
        wa_id: phone.or_else(|| parse(profile?.wa_id.as_deref())),
        user_id: bsuid.or_else(|| parse(profile?.user_id.as_deref())),
        parent_user_id: profile.and_then(|contact| parse(contact.parent_user_id.as_deref())),
        username: profile.and_then(|contact| contact.profile.as_ref()?.username.clone()),
    };
    let display_name = profile.and_then(|contact| contact.profile.as_ref()?.name.clone());
    Some((contact_id, identity, display_name))
}

/// A catalog id (when Meta names it) and a product's retailer id.
type WaProduct = (Option<String>, String);

/// The referral of a message, with the product it was sent from, if any (an ad's product).
fn whatsapp_referral(
    referral: WaReferral,
    product: Option<WaProduct>,
    message_id: &str,
    at: Timestamp,
) -> Referral {
    let (catalog_id, product_id) = product.unzip();
    let url_platform = referral.source_url.as_deref().and_then(platform_of_url);
    let is_ad = referral.source_type.as_deref() == Some("ad");
    // Ads shown in WhatsApp Status carry no ctwa_clid: the ad was seen inside WhatsApp itself,
    // whatever post the source_url points to.
    let platform = if is_ad && referral.ctwa_clid.is_none() {
        MetaPlatform::Whatsapp
    } else {
        url_platform.unwrap_or(MetaPlatform::Facebook)
    };
    let facts = MetaReferral {
        platform,
        ad_id: referral.source_id,
        ctwa_clid: referral.ctwa_clid,
        headline: referral.headline,
        body: referral.body,
        source_url: referral.source_url,
        media_type: referral.media_type,
        image_url: referral.image_url,
        video_url: referral.video_url,
        thumbnail_url: referral.thumbnail_url,
        post_id: None,
        product_id,
        catalog_id: catalog_id.flatten(),
        ref_param: None,
        source: referral.source_type.clone(),
        message_id: Some(message_id.to_owned()),
        captured_at: at,
    };
    match referral.source_type.as_deref() {
        Some("ad") => Referral::MetaAd(facts),
        Some("post") => Referral::MetaPost(facts),
        _ => Referral::Other(facts),
    }
}

/// Which Meta surface a link belongs to, from its host.
fn platform_of_url(url: &str) -> Option<MetaPlatform> {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = after_scheme
        .split(['/', '?', '#'])
        .next()?
        .rsplit('@')
        .next()?
        .split(':')
        .next()?
        .to_ascii_lowercase();
    let is = |domain: &str| host == domain || host.ends_with(&format!(".{domain}"));
    if is("instagram.com") || is("instagr.am") || is("ig.me") {
        Some(MetaPlatform::Instagram)
    } else if is("facebook.com") || is("fb.me") || is("fb.com") || is("fb.watch") || is("m.me") {
        Some(MetaPlatform::Facebook)
    } else if is("whatsapp.com") || is("wa.me") {
        Some(MetaPlatform::Whatsapp)
    } else {
        None
    }
}

// ---------------------------------------------------------------- Messenger and Instagram

#[derive(Deserialize)]
struct MessagingEntry<M> {
    #[serde(default = "Vec::new")]
    messaging: Vec<M>,
}

#[derive(Deserialize)]
struct Messaging {
    sender: Party,
    recipient: Party,
    timestamp: Option<i64>,
    message: Option<MessengerMessage>,
    postback: Option<MessengerPostback>,
    referral: Option<MessengerReferral>,
}

#[derive(Deserialize)]
struct Party {
    id: String,
}

#[derive(Deserialize)]
struct MessengerMessage {
    mid: String,
    text: Option<String>,
    #[serde(default)]
    is_echo: bool,
    #[serde(default)]
    attachments: Vec<Lenient<Attachment>>,
    referral: Option<MessengerReferral>,
    quick_reply: Option<QuickReply>,
}

#[derive(Deserialize)]
struct QuickReply {
    payload: Option<String>,
}

#[derive(Deserialize)]
struct Attachment {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct MessengerPostback {
    mid: Option<String>,
    referral: Option<MessengerReferral>,
}

#[derive(Deserialize)]
struct MessengerReferral {
    #[serde(rename = "ref")]
    ref_param: Option<String>,
    source: Option<String>,
    ad_id: Option<String>,
    ads_context_data: Option<AdsContext>,
    /// A Messenger Shops or Instagram Shop product the person wrote from.
    product: Option<ReferralProduct>,
}

#[derive(Deserialize)]
struct ReferralProduct {
    id: Option<String>,
}

#[derive(Deserialize)]
struct AdsContext {
    ad_title: Option<String>,
    photo_url: Option<String>,
    video_url: Option<String>,
    post_id: Option<String>,
    product_id: Option<String>,
}

fn messaging_events(
    channel: Channel,
    entry: MessagingEntry<impl Item<Messaging>>,
    received_at: Timestamp,
    delivery: &mut Delivery,
) {
    for item in entry.messaging {
        match item
            .into_item()
            .and_then(|item| messaging_event(channel, item, received_at))
        {
            Some(event) => delivery.events.push(event),
            None => delivery.skipped += 1,
        }
    }
}

/// One `messaging[]` item → an event, if it is an inbound message, postback or referral.
fn messaging_event(
    channel: Channel,
    item: Messaging,
    received_at: Timestamp,
) -> Option<InboundEvent> {
    let instance_id = InstanceId::parse(&item.recipient.id).ok()?;
    let contact_id = ContactId::parse(&item.sender.id).ok()?;
    let occurred_at = item
        .timestamp
        .and_then(Timestamp::from_unix_millis)
        .unwrap_or(received_at);
    // Events without their own id get a key stable across Meta's retries of the same event.
    let derived_key = |kind: &str| {
        format!(
            "{}:{kind}:{}:{}:{}",
            channel_tag(channel),
            item.sender.id,
            item.recipient.id,
            occurred_at.as_datetime().timestamp_millis()
        )
    };
    let (dedupe_key, message, referral) = if let Some(message) = item.message {
        if message.is_echo {
            return None;
        }
        let kind = if message.text.is_some() {
            "text".to_owned()
        } else {
            message
                .attachments
                .into_iter()
                .find_map(|attachment| attachment.0)
                .map_or_else(|| "unknown".to_owned(), |attachment| attachment.kind)
        };
        let referral = message
            .referral
            .map(|referral| messenger_referral(channel, referral, Some(&message.mid), occurred_at));
        let details = message
            .quick_reply
            .and_then(|reply| reply.payload)
            .map(|payload| {
                Box::new(MessageDetails {
                    reply_id: Some(payload),
                    reply_title: message.text.clone(),
                    order: None,
                })
            });
        let inbound = InboundMessage {
            id: message.mid.clone(),
            kind,
            text: message.text,
            timestamp: occurred_at,
            details,
        };
        (format!("mid:{}", message.mid), Some(inbound), referral)
    } else if let Some(postback) = item.postback {
        let key = postback
            .mid
            .as_ref()
            .map_or_else(|| derived_key("postback"), |mid| format!("mid:{mid}"));
        let referral = postback.referral.map(|referral| {
            messenger_referral(channel, referral, postback.mid.as_deref(), occurred_at)
        });
        (key, None, referral)
    } else if let Some(referral) = item.referral {
        let referral = messenger_referral(channel, referral, None, occurred_at);
        (derived_key("referral"), None, Some(referral))
    } else {
        return None;
    };
    Some(InboundEvent {
        dedupe_key,
        instance_id,
        contact_id,
        channel,
        display_name: None,
        occurred_at,
        message,
        referral,
        identity: Identity::default(),
    })
}

fn channel_tag(channel: Channel) -> &'static str {
    match channel {
        Channel::Whatsapp => "wa",
        Channel::Messenger => "messenger",
        Channel::Instagram => "instagram",
        Channel::Web => "web",
    }
}

fn messenger_referral(
    channel: Channel,
    referral: MessengerReferral,
    message_id: Option<&str>,
    at: Timestamp,
) -> Referral {
    let platform = match channel {
        Channel::Instagram => MetaPlatform::Instagram,
        _ => MetaPlatform::Facebook,
    };
    let context = referral.ads_context_data;
    let (headline, image_url, video_url, post_id, product_id) = match context {
        Some(context) => (
            context.ad_title,
            context.photo_url,
            context.video_url,
            context.post_id,
            context.product_id,
        ),
        None => (None, None, None, None, None),
    };
    let shop_product = referral.product.and_then(|product| product.id);
    let product_id = product_id.or_else(|| shop_product.clone());
    let source = referral.source.map(|source| source.to_ascii_uppercase());
    let is_ad = source.as_deref() == Some("ADS") || referral.ad_id.is_some();
    // Instagram's ig.me links say `IGME-SOURCE-LINK`: a link with a `ref`, like a shortlink.
    let is_shortlink = matches!(
        source.as_deref(),
        Some("SHORTLINK" | "SHORTLINKS" | "IGME-SOURCE-LINK")
    );
    let facts = MetaReferral {
        platform,
        ad_id: referral.ad_id,
        ctwa_clid: None,
        headline,
        body: None,
        source_url: None,
        media_type: None,
        image_url,
        video_url,
        thumbnail_url: None,
        post_id,
        product_id,
        catalog_id: None,
        ref_param: referral.ref_param,
        source,
        message_id: message_id.map(str::to_owned),
        captured_at: at,
    };
    if is_ad {
        Referral::MetaAd(facts)
    } else if is_shortlink {
        Referral::Shortlink(facts)
    } else if shop_product.is_some() {
        Referral::Product(facts)
    } else {
        Referral::Other(facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_unix_seconds(1_800_000_000).unwrap()
    }

    #[test]
    fn url_hosts_name_their_platform() {
        assert_eq!(
            platform_of_url("https://www.instagram.com/p/x/"),
            Some(MetaPlatform::Instagram)
        );
        assert_eq!(
            platform_of_url("https://fb.me/3cr4Wqqkv"),
            Some(MetaPlatform::Facebook)
        );
        assert_eq!(
            platform_of_url("https://m.facebook.com/ads/1"),
            Some(MetaPlatform::Facebook)
        );
        assert_eq!(platform_of_url("https://notfacebook.com/"), None);
        assert_eq!(platform_of_url("not a url"), None);
        assert_eq!(platform_of_url(""), None);
    }

    #[test]
    fn non_json_and_non_delivery_bodies_are_told_apart() {
        assert!(matches!(
            parse_delivery(b"{not json", now()),
            Err(PayloadError::NotJson(_))
        ));
        assert!(matches!(
            parse_delivery(b"[1,2]", now()),
            Err(PayloadError::NotADelivery(_))
        ));
        assert!(matches!(
            parse_delivery(br#"{"object": 5}"#, now()),
            Err(PayloadError::NotADelivery(_))
        ));
    }

    #[test]
    fn odd_entries_and_items_are_skipped_one_by_one() {
        let body = br#"{"object":"whatsapp_business_account","entry":[
            "not an entry",
            {"changes":[{"field":"account_update","value":{}},
                {"field":"messages","value":{"metadata":{"phone_number_id":"1"},
                  "messages":[{"id":42},{"id":"wamid.ok","from":"15550001111","timestamp":"x","type":"sticker"}]}}]}]}"#;
        let delivery = parse_delivery(body, now()).unwrap();
        assert_eq!(delivery.events.len(), 1);
        assert_eq!(delivery.events[0].occurred_at, now());
        assert_eq!(delivery.events[0].message.as_ref().unwrap().kind, "sticker");
        assert!(delivery.skipped >= 3);
    }

    fn whatsapp(contact: &str, message: &str) -> Vec<u8> {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"changes":[{{"field":"messages",
            "value":{{"metadata":{{"phone_number_id":"1"}},"contacts":[{contact}],
            "messages":[{message}],"statuses":[{{"id":"wamid.s","recipient_id":"15550001111",
            "recipient_user_id":"US.1","status":"read"}}]}}}}]}}]}}"#
        )
        .into_bytes()
    }

    #[test]
    fn whatsapp_senders_are_named_by_phone_bsuid_or_both() {
        let both = whatsapp(
            r#"{"wa_id":"15550001111","user_id":"US.77","parent_user_id":"US.ENT.9","profile":{"name":"Jo"}}"#,
            r#"{"id":"wamid.1","from":"15550001111","from_user_id":"US.77","type":"text","text":{"body":"hi"}}"#,
        );
        let delivery = parse_delivery(&both, now()).unwrap();
        assert_eq!(delivery.skipped, 1, "the status");
        let event = &delivery.events[0];
        assert_eq!(
            event.contact_id.as_str(),
            "15550001111",
            "the phone files it"
        );
        assert_eq!(event.display_name.as_deref(), Some("Jo"));
        let identity = &event.identity;
        assert_eq!(identity.wa_id.as_ref().unwrap().as_str(), "15550001111");
        assert_eq!(identity.user_id.as_ref().unwrap().as_str(), "US.77");
        assert_eq!(
            identity.parent_user_id.as_ref().unwrap().as_str(),
            "US.ENT.9"
        );

        let username_only = whatsapp(
            r#"{"user_id":"US.77","profile":{"name":"Jo","username":"@jo"}}"#,
            r#"{"id":"wamid.2","from_user_id":"US.77","type":"text","text":{"body":"hi"}}"#,
        );
        let event = &parse_delivery(&username_only, now()).unwrap().events[0];
        assert_eq!(event.contact_id.as_str(), "US.77");
        assert_eq!(event.identity.wa_id, None);
        assert_eq!(event.identity.username.as_deref(), Some("@jo"));
        assert_eq!(event.display_name.as_deref(), Some("Jo"));

        let nobody = whatsapp(
            r#"{"user_id":"US.77"}"#,
            r#"{"id":"wamid.3","type":"text","text":{"body":"hi"}}"#,
        );
        let delivery = parse_delivery(&nobody, now()).unwrap();
        assert!(delivery.events.is_empty());
        assert_eq!(delivery.skipped, 2, "the message and the status");
    }

    #[test]
    fn unknown_objects_are_skipped() {
        let delivery =
            parse_delivery(br#"{"object":"permissions","entry":[{"id":"1"}]}"#, now()).unwrap();
        assert!(delivery.events.is_empty());
        assert_eq!(delivery.skipped, 1);
    }

    #[test]
    fn echoes_reads_and_deliveries_are_not_inbound() {
        let body = br#"{"object":"page","entry":[{"id":"9","messaging":[
            {"sender":{"id":"9"},"recipient":{"id":"1"},"timestamp":1,"message":{"mid":"m.1","text":"hi","is_echo":true}},
            {"sender":{"id":"2"},"recipient":{"id":"9"},"timestamp":1,"read":{"watermark":1}},
            {"sender":{"id":"2"},"recipient":{"id":"9"},"timestamp":1,"message":{"mid":"m.2","attachments":[{"type":"image","payload":{}}]}}]}]}"#;
        let delivery = parse_delivery(body, now()).unwrap();
        assert_eq!(delivery.events.len(), 1);
        assert_eq!(delivery.events[0].message.as_ref().unwrap().kind, "image");
        assert_eq!(delivery.skipped, 2);
    }
}
