//! Conversation events: what a contact did (wrote, replied to a button, ordered, what the
//! business's own systems report), kept on the contact as a bounded journey. Built-in events
//! come from the webhook in the same commit as the contact change; custom ones from
//! `POST …/contacts/{contact_id}/events`.

pub mod custom;

use crate::contact::InboundMessage;
use crate::fields::cap_bytes;
use crate::revenue::money::{Amount, Currency};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// An inbound message of any type: properties `type`, `text` (when it has one), `reply_id`
/// and `reply_title` (a WhatsApp `button` or `interactive` button/list reply, a Messenger quick
/// reply).
pub const MESSAGE_RECEIVED: &str = "message_received";
/// A WhatsApp cart order: properties `catalog_id`, `text` (when sent), `items`
/// (`product_retailer_id`, `quantity`, `item_price`, `currency`), `totals` (currency → Σ
/// item_price × quantity, exact); `value`/`currency` the total when the order has one currency.
pub const ORDER_PLACED: &str = "order_placed";
/// A message from a product's "Message business" button (WhatsApp `context.referred_product`)
/// or a Messenger/Instagram product referral: properties `catalog_id` (WhatsApp) and
/// `product_id`, from [`crate::ingest::InboundEvent::product`].
pub const PRODUCT_INQUIRY: &str = "product_inquiry";

/// The names the engine itself produces.
pub const BUILT_IN: [&str; 3] = [MESSAGE_RECEIVED, ORDER_PLACED, PRODUCT_INQUIRY];

/// How many events a contact keeps: the newest ones by their own time. Goals never read this
/// log (their progress is kept apart, per rule), so dropping old events changes no goal; the
/// journey shows the recent conversation.
pub const MAX_KEPT_EVENTS: usize = 20;
/// What the kept events may weigh together, serialized: the newest always stays, older ones go
/// first, so a contact item stays small whatever a sender sends.
pub const MAX_KEPT_BYTES: usize = 3 * 1024;
/// A message's text as an event property: enough to read the conversation, and what goal rules
/// test with `contains` (the first message keeps its whole text for the text rules).
pub const MAX_EVENT_TEXT_BYTES: usize = 256;
/// Order lines kept on an `order_placed` event (the totals count every line).
pub const MAX_ORDER_ITEMS: usize = 50;

/// Who reported an event: the webhook (Meta's message id) or the business (its own id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    /// Built in: parsed from a Meta delivery.
    Webhook,
    /// Sent by the business through the admin API.
    Api,
}

/// One thing a contact did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactEvent {
    /// Unique per source: the message id for built-in events, the business's id otherwise.
    pub event_id: String,
    /// What happened (`message_received`, `order_placed`, or the business's own name).
    pub name: String,
    /// Who reported it.
    pub source: EventSource,
    /// When it happened, by the reporter's clock.
    pub occurred_at: Timestamp,
    /// What it says, by property name.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub properties: Map<String, Value>,
    /// What it is worth (an order's total), exact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Amount>,
    /// The currency of `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
}

/// An event's place in time: by its own time, then source and id, so that every arrival order
/// sorts alike.
type EventKey = (Timestamp, EventSource, String);

impl ContactEvent {
    fn key(&self) -> EventKey {
        (self.occurred_at, self.source, self.event_id.clone())
    }

    fn weight(&self) -> usize {
        serde_json::to_vec(self).map_or(0, |bytes| bytes.len())
    }
}

/// A contact's recent events, oldest first: the newest [`MAX_KEPT_EVENTS`] within
/// [`MAX_KEPT_BYTES`]. Which events it keeps depends on the set of events recorded, not on
/// their arrival order: an event at or before `dropped_through` is older than every one kept
/// and would be dropped again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLog {
    /// The kept events, oldest first.
    #[serde(default)]
    pub kept: Vec<ContactEvent>,
    /// The newest event dropped so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped_through: Option<(Timestamp, EventSource, String)>,
}

/// What recording an event did to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Recorded {
    /// Kept (possibly pushing the oldest out).
    Created,
    /// An event of that source and id is kept already: nothing changed.
    Duplicate,
    /// Older than everything the log keeps: not kept (goals still see it).
    NotKept,
}

impl EventLog {
    /// Whether no event was ever kept.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty() && self.dropped_through.is_none()
    }

    /// Records `event`, keeping the log's bounds.
    pub fn record(&mut self, event: ContactEvent) -> Recorded {
        if self
            .kept
            .iter()
            .any(|kept| kept.source == event.source && kept.event_id == event.event_id)
        {
            return Recorded::Duplicate;
        }
        let key = event.key();
        if self
            .dropped_through
            .as_ref()
            .is_some_and(|through| key <= *through)
        {
            return Recorded::NotKept;
        }
        let at = self.kept.partition_point(|kept| kept.key() < key);
        self.kept.insert(at, event);
        let mut weight: usize = self.kept.iter().map(ContactEvent::weight).sum();
        let mut recorded = Recorded::Created;
        while self.kept.len() > MAX_KEPT_EVENTS || (weight > MAX_KEPT_BYTES && self.kept.len() > 1)
        {
            let oldest = self.kept.remove(0);
            weight -= oldest.weight();
            if oldest.key() == key {
                recorded = Recorded::NotKept;
            }
            self.dropped_through = Some(oldest.key());
        }
        recorded
    }

    /// Both logs in one, as if one contact had seen both (a merge of two contacts).
    pub fn merged(&self, other: &EventLog) -> EventLog {
        let mut merged = self.clone();
        merged.dropped_through = self
            .dropped_through
            .clone()
            .max(other.dropped_through.clone());
        merged.kept.retain(|event| {
            merged
                .dropped_through
                .as_ref()
                .is_none_or(|t| event.key() > *t)
        });
        for event in &other.kept {
            merged.record(event.clone());
        }
        merged
    }
}

/// What a message carried beyond its type and text: a button or list reply, or an order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDetails {
    /// The reply's id (WhatsApp `button.payload`, `interactive.*_reply.id`, a Messenger quick
    /// reply's `payload`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_id: Option<String>,
    /// The reply's title as shown to the customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_title: Option<String>,
    /// A WhatsApp cart order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Order>,
}

/// A WhatsApp cart order as Meta sends it: no total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The catalogue ordered from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_id: Option<String>,
    /// The customer's note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The lines, each price exact as sent.
    pub items: Vec<OrderItem>,
}

/// One order line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    /// The product's retailer id.
    pub product_retailer_id: String,
    /// How many.
    pub quantity: u32,
    /// The price of one, in major units.
    pub item_price: Amount,
    /// The price's currency.
    pub currency: Currency,
}

impl Order {
    /// Σ item_price × quantity per currency, exact; `None` on an overflow (no real order).
    pub fn totals(&self) -> Option<BTreeMap<Currency, Amount>> {
        let mut totals: BTreeMap<Currency, Amount> = BTreeMap::new();
        for item in &self.items {
            let line = item
                .item_price
                .decimal()
                .checked_mul(item.quantity.into())?;
            let total = totals.entry(item.currency).or_default();
            *total = total.checked_add(line.into())?;
        }
        Some(totals)
    }
}

/// The built-in events an inbound message stands for: always `message_received`,
/// `order_placed` for an order and `product_inquiry` when it is about a catalog product. Their
/// ids are the message id, `#order` or `#product` added for the other two.
pub fn built_in(
    message: &InboundMessage,
    product: Option<&crate::catalog::ProductRef>,
) -> Vec<ContactEvent> {
    let details = message.details.as_deref().cloned().unwrap_or_default();
    let mut properties = Map::new();
    properties.insert("type".into(), message.kind.clone().into());
    if let Some(text) = &message.text {
        properties.insert(
            "text".into(),
            cap_bytes(text, MAX_EVENT_TEXT_BYTES).to_owned().into(),
        );
    }
    for (name, field) in [
        ("reply_id", &details.reply_id),
        ("reply_title", &details.reply_title),
    ] {
        if let Some(text) = field {
            properties.insert(name.into(), text.clone().into());
        }
    }
    let event = |name: &str, properties| ContactEvent {
        event_id: message.id.clone(),
        name: name.to_owned(),
        source: EventSource::Webhook,
        occurred_at: message.timestamp,
        properties,
        value: None,
        currency: None,
    };
    let mut events = vec![event(MESSAGE_RECEIVED, properties)];
    if let Some(order) = &details.order {
        let totals = order.totals().unwrap_or_default();
        let mut properties = Map::new();
        if let Some(catalog_id) = &order.catalog_id {
            properties.insert("catalog_id".into(), catalog_id.clone().into());
        }
        if let Some(text) = &order.text {
            let text = cap_bytes(text, MAX_EVENT_TEXT_BYTES).to_owned();
            properties.insert("text".into(), text.into());
        }
        let items: Vec<Value> = order
            .items
            .iter()
            .take(MAX_ORDER_ITEMS)
            .map(|item| json!(item))
            .collect();
        properties.insert("items".into(), items.into());
        properties.insert("totals".into(), json!(totals));
        let mut order_event = event(ORDER_PLACED, properties);
        order_event.event_id = format!("{}#order", message.id);
        if let [(currency, total)] = totals.iter().collect::<Vec<_>>()[..] {
            order_event.value = Some(*total);
            order_event.currency = Some(*currency);
        }
        events.push(order_event);
    }
    if let Some(product) = product {
        let mut properties = Map::new();
        if let Some(catalog_id) = &product.catalog_id {
            properties.insert("catalog_id".into(), catalog_id.clone().into());
        }
        properties.insert("product_id".into(), product.product_id.clone().into());
        let mut product_event = event(PRODUCT_INQUIRY, properties);
        product_event.event_id = format!("{}#product", message.id);
        events.push(product_event);
    }
    events
}
