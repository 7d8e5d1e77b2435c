//! What one inbound event may add to a contact, in bytes. A contact keeps its first message,
//! its acquisition and the last [`crate::contact::TOUCH_HISTORY_CAP`] referrals, so with these caps the largest
//! contact any sender can produce stays far below a DynamoDB item's 400 KB (the README's bounds
//! table adds it up). Web visits are capped where they are read (`crate::web`); this caps what
//! Meta relays from people and advertisers: names, texts and referral fields.

use crate::contact::{MetaReferral, Referral};
use crate::fields::cap_bytes;
use crate::ingest::InboundEvent;

/// A profile name (Meta's own limits are far lower).
pub const MAX_DISPLAY_NAME_BYTES: usize = 256;
/// A message text: WhatsApp's 4,096 characters of up to 4 bytes each.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;
/// Each URL of a referral (source, image, video, thumbnail).
pub const MAX_REFERRAL_URL_BYTES: usize = 2 * 1024;
/// An ad's body text.
pub const MAX_REFERRAL_BODY_BYTES: usize = 2 * 1024;
/// An ad's headline, and each id or label of a referral (ad, post, product, `ref`, source…).
pub const MAX_REFERRAL_LABEL_BYTES: usize = 512;

fn cap(field: &mut Option<String>, max_bytes: usize) {
    if let Some(text) = field {
        let kept = cap_bytes(text, max_bytes).len();
        text.truncate(kept);
    }
}

fn cap_referral(referral: &mut MetaReferral) {
    for url in [
        &mut referral.source_url,
        &mut referral.image_url,
        &mut referral.video_url,
        &mut referral.thumbnail_url,
    ] {
        cap(url, MAX_REFERRAL_URL_BYTES);
    }
    cap(&mut referral.body, MAX_REFERRAL_BODY_BYTES);
    for label in [
        &mut referral.headline,
        &mut referral.ad_id,
        &mut referral.ctwa_clid,
        &mut referral.media_type,
        &mut referral.post_id,
        &mut referral.product_id,
        &mut referral.catalog_id,
        &mut referral.ref_param,
        &mut referral.source,
        &mut referral.message_id,
    ] {
        cap(label, MAX_REFERRAL_LABEL_BYTES);
    }
}

/// The event with every field a sender controls cut to its budget; ids Meta makes itself
/// (message ids, the contact's) are left alone, so that they still match.
pub fn bounded(event: &InboundEvent) -> InboundEvent {
    let mut event = event.clone();
    cap(&mut event.display_name, MAX_DISPLAY_NAME_BYTES);
    cap(&mut event.identity.username, MAX_DISPLAY_NAME_BYTES);
    if let Some(message) = &mut event.message {
        cap(&mut message.text, MAX_TEXT_BYTES);
    }
    match &mut event.referral {
        Some(
            Referral::MetaAd(referral)
            | Referral::MetaPost(referral)
            | Referral::Shortlink(referral)
            | Referral::Product(referral)
            | Referral::Other(referral),
        ) => cap_referral(referral),
        Some(Referral::Web(_)) | None => {}
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact::{Channel, InboundMessage, MetaPlatform};
    use crate::ids::{ContactId, InstanceId};
    use crate::time::Timestamp;

    #[test]
    fn every_sender_controlled_field_is_cut_on_a_character_boundary() {
        let at = Timestamp::from_unix_seconds(1_790_000_000).unwrap();
        let long = "é".repeat(40_000);
        let mut referral = MetaReferral::minimal(MetaPlatform::Whatsapp, at);
        referral.body = Some(long.clone());
        referral.headline = Some(long.clone());
        referral.image_url = Some(long.clone());
        referral.ref_param = Some(long.clone());
        let event = InboundEvent {
            dedupe_key: "k".into(),
            instance_id: InstanceId::parse("1").unwrap(),
            contact_id: ContactId::parse("2").unwrap(),
            channel: Channel::Whatsapp,
            display_name: Some(long.clone()),
            occurred_at: at,
            message: Some(InboundMessage {
                id: "wamid.1".into(),
                kind: "text".into(),
                text: Some(long.clone()),
                timestamp: at,
                details: None,
            }),
            referral: Some(Referral::MetaAd(referral)),
            identity: Default::default(),
        };
        let capped = bounded(&event);
        assert_eq!(capped.display_name.unwrap().len(), MAX_DISPLAY_NAME_BYTES);
        let message = capped.message.unwrap();
        assert_eq!(message.text.unwrap().len(), MAX_TEXT_BYTES);
        assert_eq!(message.id, "wamid.1");
        let Some(Referral::MetaAd(referral)) = capped.referral else {
            panic!("the referral is kept");
        };
        assert_eq!(referral.body.unwrap().len(), MAX_REFERRAL_BODY_BYTES);
        assert_eq!(referral.image_url.unwrap().len(), MAX_REFERRAL_URL_BYTES);
        assert_eq!(referral.headline.unwrap().len(), MAX_REFERRAL_LABEL_BYTES);
        assert_eq!(referral.ref_param.unwrap().len(), MAX_REFERRAL_LABEL_BYTES);
        let small = InboundEvent {
            display_name: Some("Ana".into()),
            ..event.clone()
        };
        assert_eq!(bounded(&small).display_name.as_deref(), Some("Ana"));
    }
}
