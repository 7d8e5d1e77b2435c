//! The week's events as the bodies their senders post: Meta's deliveries (shaped after Meta's
//! sample payloads), widget visits, sends and postbacks. Pure: times come in as unix seconds.

use super::week::{Ad, Conversation, Opened, Send, Visit, WhatsAppMessage};
use serde_json::{Value, json};

/// A WhatsApp Cloud API delivery of one message to `instance`, sent at `at` (unix seconds),
/// from the ad `ad` if any; `suffix` is appended to the text (a widget ref code).
pub fn whatsapp(
    instance: &str,
    message: &WhatsAppMessage,
    ad: Option<&Ad>,
    at: i64,
    suffix: &str,
) -> Value {
    let (contact, mut sent) = match &message.phone {
        Some(phone) => (
            json!({"profile": {"name": message.name}, "wa_id": phone}),
            json!({"from": phone}),
        ),
        // A username user: Meta names them by the BSUID alone.
        None => (
            json!({"profile": {"name": message.name, "username": message.username},
                   "user_id": message.user_id}),
            json!({"from_user_id": message.user_id}),
        ),
    };
    sent["id"] = json!(message.id);
    sent["timestamp"] = json!(at.to_string());
    sent["type"] = json!("text");
    sent["text"] = json!({"body": format!("{}{suffix}", message.text)});
    if let Some(ad) = ad {
        sent["referral"] = ctwa_referral(ad);
    }
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": instance},
            "contacts": [contact],
            "messages": [sent],
        }}]}],
    })
}

fn ctwa_referral(ad: &Ad) -> Value {
    let mut referral = json!({
        "source_url": ad.source_url,
        "source_id": ad.id,
        "source_type": "ad",
        "body": ad.body,
        "headline": ad.headline,
        "media_type": "image",
        "image_url": format!("https://scontent.example/{}.jpg", ad.id),
        "welcome_message": {"text": "Hi there! How can we help?"},
    });
    if let Some(clid) = &ad.ctwa_clid {
        referral["ctwa_clid"] = json!(clid);
    }
    referral
}

/// A Messenger (`object: page`) or Instagram delivery of one conversation's opening and first
/// message, a minute apart, from `at` (unix seconds).
pub fn messaging(object: &str, instance: &str, thread: &Conversation, at: i64) -> Value {
    let millis = at * 1000;
    let event = |(kind, body): (&str, Value), millis: i64| {
        let mut event = json!({
            "sender": {"id": thread.sender},
            "recipient": {"id": instance},
            "timestamp": millis,
        });
        event[kind] = body;
        event
    };
    let ad_referral = |ad_id: &str, title: &str| {
        json!({"ref": "ad", "ad_id": ad_id, "source": "ADS", "type": "OPEN_THREAD",
               "ads_context_data": {"ad_title": title,
                                    "photo_url": format!("https://scontent.example/{ad_id}.jpg")}})
    };
    let opening = match &thread.opened {
        Opened::AdReferral { ad_id, title } => Some(("referral", ad_referral(ad_id, title))),
        Opened::AdGetStarted { ad_id, title } => Some((
            "postback",
            json!({"title": "Get Started", "payload": "GET_STARTED",
                   "referral": ad_referral(ad_id, title)}),
        )),
        Opened::Link { source, reference } => Some((
            "referral",
            json!({"ref": reference, "source": source, "type": "OPEN_THREAD"}),
        )),
        Opened::Organic => None,
    };
    let message = (
        "message",
        json!({"mid": format!("m_demo-{}", thread.sender), "text": thread.text}),
    );
    let mut events: Vec<Value> = opening.map(|o| event(o, millis)).into_iter().collect();
    events.push(event(message, millis + 60_000));
    json!({"object": object, "entry": [{"id": instance, "time": millis, "messaging": events}]})
}

/// A widget event (with the visitor's message) or a ref-code request (without) for `instance`.
pub fn visit(instance: &str, visit: &Visit) -> Value {
    let mut body = json!({
        "instance_id": instance,
        "visitor_id": visit.visitor,
        "page_url": visit.page_url,
        "event_id": format!("{}-open", visit.visitor),
    });
    if let Some(referrer) = &visit.referrer {
        body["referrer"] = json!(referrer);
    }
    if let Some(message) = &visit.message {
        body["message"] = json!(message);
    }
    body
}

/// One `POST /sends` item, sent at `sent_at` (RFC 3339).
pub fn send(instance: &str, send: &Send, sent_at: &str) -> Value {
    json!({"instance_id": instance, "contact_id": send.contact_id, "message_id": send.message_id,
           "campaign": send.campaign, "creative": send.creative, "offer_id": send.offer_id,
           "sent_at": sent_at})
}

/// The click id a tracked link's redirect put in the offer's destination (`aff_click=`).
pub fn click_id_of(location: &str) -> Option<&str> {
    let (_, rest) = location.split_once("aff_click=")?;
    Some(rest.split('&').next().unwrap_or(rest)).filter(|id| !id.is_empty())
}

/// A postback's query in the network's own parameter names (the token goes in a header).
pub fn postback_query(
    network: &str,
    click: &str,
    (conversion, amount, currency): (&str, &str, &str),
) -> String {
    let fields: [(&str, &str); 3] = match network {
        "tune" => [
            ("aff_sub", click),
            ("transaction_id", conversion),
            ("payout", amount),
        ],
        "everflow" => [
            ("sub1", click),
            ("transaction_id", conversion),
            ("sale_amount", amount),
        ],
        _ => [
            ("click_id", click),
            ("conversion_id", conversion),
            ("payout", amount),
        ],
    };
    let mut query = format!("currency={currency}");
    for (name, value) in fields {
        query.push_str(&format!("&{name}={value}"));
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_click_id_is_read_from_the_redirect() {
        let location = "https://shop.example/p/aurora?aff_click=01JABC&x=1";
        assert_eq!(click_id_of(location), Some("01JABC"));
        assert_eq!(click_id_of("https://shop.example/p?aff_click="), None);
        assert_eq!(click_id_of("https://shop.example/p"), None);
    }
}
