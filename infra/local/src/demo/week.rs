//! The demo's week, as data (`week.json`, one record a line): who wrote in, from which ad or
//! pre-filled text, when (`ago`: days, then minutes, before "now"), the rules and offers as the
//! admin API takes them, what the business sent and what was bought. Ids and shapes follow
//! Meta's sample deliveries; the people and numbers are made up.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The WhatsApp business number (`phone_number_id`): CTWA ads, rules, the widget, revenue.
pub const WHATSAPP: &str = "106540352242922";
/// The Facebook page (Messenger).
pub const PAGE: &str = "448736998987654";
/// The Instagram business account.
pub const INSTAGRAM: &str = "17841400000000001";
/// The shop's site, the widget's one allowed origin.
pub const SHOP: &str = "https://shop.example";

/// The week, in the order it is delivered.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Week {
    /// The click-to-WhatsApp ads, by the name messages refer to them with.
    pub ads: BTreeMap<String, Ad>,
    /// First messages, then later messages of earlier contacts.
    pub whatsapp: Vec<WhatsAppMessage>,
    /// The rules in place before the texts (`POST …/rules` bodies).
    pub rules: Vec<Value>,
    /// The rule made after its texts arrived, which the backfill applies to them.
    pub late_rule: Value,
    pub messenger: Vec<Conversation>,
    pub instagram: Vec<Conversation>,
    pub visits: Vec<Visit>,
    /// A visit whose wa.me link carries its ref code into WhatsApp, and the message that follows.
    pub bridged: Bridged,
    /// The `utm_campaign`s the widget counts as conversations (its `campaigns` list).
    pub widget_campaigns: Vec<String>,
    /// What the ads cost over the week: one line per ad (or campaign), one entry per day.
    pub spend: Vec<Spend>,
    /// `POST /offers` bodies.
    pub offers: Vec<Value>,
    pub sends: Vec<Send>,
    pub postbacks: Vec<Postback>,
    /// A click id no click ever had.
    pub unknown_click: String,
}

/// When something happened: `[days, minutes]` before now.
#[derive(Deserialize, Clone, Copy)]
pub struct Ago(pub i64, pub i64);

/// A click-to-WhatsApp ad, as its referral describes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ad {
    pub id: String,
    pub source_url: String,
    pub headline: String,
    pub body: String,
    /// Absent for an ad shown in WhatsApp Status.
    pub ctwa_clid: Option<String>,
}

/// One WhatsApp message: from a phone number, or from a username user's BSUID alone.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatsAppMessage {
    pub id: String,
    pub phone: Option<String>,
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub name: String,
    pub text: String,
    pub ago: Ago,
    /// The ad it came from (a key of `Week::ads`).
    pub ad: Option<String>,
}

/// How a Messenger or Instagram conversation was opened.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Opened {
    /// A standalone `referral` event from an ad, on an existing thread.
    AdReferral { ad_id: String, title: String },
    /// A new thread's "Get Started" `postback` carrying an ad's referral.
    AdGetStarted { ad_id: String, title: String },
    /// An m.me / ig.me link with its `ref`.
    Link {
        source: String,
        #[serde(rename = "ref")]
        reference: String,
    },
    /// Nothing: the person just wrote.
    Organic,
}

/// A Messenger or Instagram conversation: how it opened, then one message.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conversation {
    pub sender: String,
    pub opened: Opened,
    pub text: String,
    pub ago: Ago,
}

/// A widget visit: the visitor, the landing page (its UTMs and click ids), the referrer, and
/// what the visitor wrote in the chat (none for a ref-code request).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Visit {
    pub visitor: String,
    pub page_url: String,
    pub referrer: Option<String>,
    pub message: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bridged {
    pub visit: Visit,
    /// Its text gets the visit's ref code appended when it is sent.
    pub message: WhatsAppMessage,
}

/// An ad's (or a campaign's) spend over the week: the `POST /spend` row's fields but the date
/// and figures, and `daily` `[spend, impressions, clicks]` from 6 days ago to today.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spend {
    pub platform: String,
    pub campaign: String,
    pub ad_set: String,
    pub ad_id: Option<String>,
    pub ad_name: Option<String>,
    pub currency: String,
    pub daily: Vec<(String, u64, u64)>,
}

/// A message the business sent with a tracked link, and how many times it was clicked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Send {
    pub contact_id: String,
    pub message_id: String,
    pub campaign: String,
    pub creative: String,
    pub offer_id: String,
    pub ago: Ago,
    pub clicks: usize,
}

/// A conversion posted back: whose click (the first click of `sends[send]`, or the unknown
/// click when absent), and the status the postback must answer.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Postback {
    pub network: String,
    pub send: Option<usize>,
    pub conversion_id: String,
    pub amount: String,
    pub status: String,
}

/// The week of `week.json`, compiled into the binary (nothing is read at run time).
pub fn week() -> Week {
    serde_json::from_str(include_str!("week.json")).expect("week.json holds a week")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_week_reads_and_its_references_resolve() {
        let week = super::week();
        for message in &week.whatsapp {
            assert!(
                message.phone.is_some() || message.user_id.is_some(),
                "{}",
                message.id
            );
            if let Some(ad) = &message.ad {
                assert!(week.ads.contains_key(ad), "{ad}");
            }
        }
        for postback in &week.postbacks {
            assert!(postback.send.is_none_or(|send| week.sends[send].clicks > 0));
        }
    }
}
