//! The week's events as the bodies their senders post: Meta's deliveries (shaped after Meta's
//! sample payloads), widget visits, offers, sends and postbacks. Pure: times come in as unix
//! seconds.

use super::week::{Ad, Conversation, OfferSpec, Opened, RuleSpec, Sender, Visit, WhatsAppMessage};
use serde_json::{Value, json};

/// A WhatsApp Cloud API delivery of one message to `instance`, sent at `at` (unix seconds);
/// `suffix` is appended to the text (a widget ref code).
pub fn whatsapp(instance: &str, message: &WhatsAppMessage, at: i64, suffix: &str) -> Value {
    let (contact, mut sent) = match message.from {
        Sender::Phone(phone) => (
            json!({"profile": {"name": message.name}, "wa_id": phone}),
            json!({"from": phone}),
        ),
        Sender::Username { user_id, username } => (
            json!({"profile": {"name": message.name, "username": username}, "user_id": user_id}),
            json!({"from_user_id": user_id}),
        ),
    };
    sent["id"] = json!(message.id);
    sent["timestamp"] = json!(at.to_string());
    sent["type"] = json!("text");
    sent["text"] = json!({"body": format!("{}{suffix}", message.text)});
    if let Some(ad) = message.ad {
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
    if let Some(clid) = ad.ctwa_clid {
        referral["ctwa_clid"] = json!(clid);
    }
    referral
}

/// A Messenger (`object: page`) or Instagram delivery of one conversation's opening and first
/// message, a minute apart, from `at` (unix seconds).
pub fn messaging(object: &str, instance: &str, thread: &Conversation, at: i64) -> Value {
    let millis = at * 1000;
    let event = |body: (&str, Value), millis: i64| {
        let mut event = json!({
            "sender": {"id": thread.sender},
            "recipient": {"id": instance},
            "timestamp": millis,
        });
        event[body.0] = body.1;
        event
    };
    let ad_referral = |ad_id: &str, title: &str| {
        json!({"ref": "ad", "ad_id": ad_id, "source": "ADS", "type": "OPEN_THREAD",
               "ads_context_data": {"ad_title": title, "photo_url": format!("https://scontent.example/{ad_id}.jpg")}})
    };
    let opening = match thread.opened {
        Opened::AdReferral(ad_id, title) => Some(("referral", ad_referral(ad_id, title))),
        Opened::AdGetStarted(ad_id, title) => Some((
            "postback",
            json!({"title": "Get Started", "payload": "GET_STARTED", "referral": ad_referral(ad_id, title)}),
        )),
        Opened::Link(source, reference) => Some((
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

pub fn rule(spec: &RuleSpec) -> Value {
    json!({
        "name": spec.name,
        "platform": spec.platform,
        "match": {"kind": spec.kind, "pattern": spec.pattern},
        "campaign": spec.campaign,
        "ad": spec.ad,
        "priority": spec.priority,
    })
}

/// A widget event (`message` set) or a ref-code request (`message` empty) for `instance`.
pub fn visit(instance: &str, visit: &Visit) -> Value {
    let mut body = json!({
        "instance_id": instance,
        "visitor_id": visit.visitor,
        "page_url": visit.page_url,
        "event_id": format!("{}-open", visit.visitor),
    });
    if let Some(referrer) = visit.referrer {
        body["referrer"] = json!(referrer);
    }
    if !visit.message.is_empty() {
        body["message"] = json!(visit.message);
    }
    body
}

pub fn offer(OfferSpec(id, name, destination, window, currency): &OfferSpec) -> Value {
    json!({"offer_id": id, "name": name, "destination_url": destination,
           "click_window_days": window, "currency": currency})
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
