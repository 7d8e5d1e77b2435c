//! Tracked links: the codes that name sends, link-preview fetchers that are not clicks, and
//! client addresses kept only as keyed hashes.

use crate::secret::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const CODE_ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// 10 base-62 characters: about 59.5 bits, too many to guess one that exists.
pub const CODE_LEN: usize = 10;
/// User agents are kept to this many bytes.
pub const MAX_USER_AGENT_BYTES: usize = 256;

fn keyed(key: &Secret, purpose: &str, parts: &[&str]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.expose()).expect("HMAC takes any key");
    mac.update(purpose.as_bytes());
    for part in parts {
        mac.update(&[0]);
        mac.update(part.as_bytes());
    }
    mac.finalize().into_bytes().into()
}

/// The tracked link of a send: the click function's route under the public base URL.
pub fn tracked_url(public_base_url: &str, code: &str) -> String {
    format!("{}/c/{code}", public_base_url.trim_end_matches('/'))
}

/// The tracked-link code of a message: derived from the instance and message id with a server
/// key, so it is unguessable, and a send retried with the same message id gets the same code
/// (and is recognised as the same send).
pub fn send_code(key: &Secret, instance_id: &str, message_id: &str) -> String {
    let digest = keyed(key, "send-code", &[instance_id, message_id]);
    let mut value = u128::from_be_bytes(digest[..16].try_into().expect("16 bytes"));
    (0..CODE_LEN)
        .map(|_| {
            let digit = (value % 62) as usize;
            value /= 62;
            char::from(CODE_ALPHABET[digit])
        })
        .collect()
}

/// Whether `text` could be a code at all (so the store is not asked about junk).
pub fn is_code_shaped(text: &str) -> bool {
    text.len() == CODE_LEN && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A client address, hashed with a server key: repeat visitors stay recognisable, the address
/// cannot be read back (a plain hash of the 2^32 IPv4 addresses could be reversed).
pub fn hash_client_ip(key: &Secret, ip: &str) -> String {
    hex::encode(&keyed(key, "client-ip", &[ip.trim()])[..16])
}

/// Link-preview fetchers and crawlers, matched case-insensitively anywhere in the user agent.
const PREVIEW_AGENTS: [&str; 22] = [
    "whatsapp",
    "facebookexternalhit",
    "facebookcatalog",
    "facebot",
    "meta-externalagent",
    "slackbot",
    "slack-imgproxy",
    "telegrambot",
    "twitterbot",
    "linkedinbot",
    "discordbot",
    "skypeuripreview",
    "microsoftpreview",
    "googlebot",
    "bingbot",
    "applebot",
    "pinterestbot",
    "redditbot",
    "embedly",
    "iframely",
    "vkshare",
    "viber",
];

/// Previews, crawlers and requests without a user agent (every browser sends one) get the
/// redirect but are not clicks.
pub fn is_link_preview(user_agent: Option<&str>) -> bool {
    let Some(agent) = user_agent.map(str::trim).filter(|a| !a.is_empty()) else {
        return true;
    };
    let agent = agent.to_ascii_lowercase();
    PREVIEW_AGENTS.iter().any(|bot| agent.contains(bot))
}

/// The user agent as stored: at most [`MAX_USER_AGENT_BYTES`], cut on a character boundary.
pub fn truncate_user_agent(agent: &str) -> String {
    crate::fields::cap_bytes(agent, MAX_USER_AGENT_BYTES).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_per_message_and_differ_between_messages() {
        let key = Secret::new("k");
        let a = send_code(&key, "1", "m1");
        assert_eq!(a, send_code(&key, "1", "m1"));
        assert_ne!(a, send_code(&key, "1", "m2"));
        assert_ne!(a, send_code(&key, "2", "m1"));
        assert_ne!(a, send_code(&Secret::new("other"), "1", "m1"));
        assert!(is_code_shaped(&a), "{a}");
    }

    #[test]
    fn previews_are_not_clicks_but_browsers_are() {
        for bot in [
            "WhatsApp/2.23.20.0 A",
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            "TelegramBot (like TwitterBot)",
            "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
            "LinkedInBot/1.0",
            "",
        ] {
            assert!(is_link_preview(Some(bot)), "{bot}");
        }
        assert!(is_link_preview(None));
        assert!(!is_link_preview(Some(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
        )));
    }

    #[test]
    fn addresses_hash_with_the_key_and_agents_truncate_on_characters() {
        let key = Secret::new("k");
        let hash = hash_client_ip(&key, "203.0.113.7");
        assert_eq!(hash.len(), 32);
        assert!(!hash.contains("203"));
        assert_ne!(hash, hash_client_ip(&Secret::new("j"), "203.0.113.7"));
        let long = "é".repeat(200);
        let cut = truncate_user_agent(&long);
        assert!(cut.len() <= MAX_USER_AGENT_BYTES && cut.chars().all(|c| c == 'é'));
    }
}
