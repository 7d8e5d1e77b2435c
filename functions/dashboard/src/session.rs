//! The signed session cookie and the CSRF token derived from it: pure functions of the admin
//! keys, the clock and the cookie's text.
//!
//! A session is `<role>.<key name>.<expires>.<session id>.<mac>`, the MAC an HMAC-SHA256 of the
//! rest under a key derived from the admin key. It names the role and which key signed in
//! (`admin`, `readonly_previous`, …), never the key. Sessions are signed with the current
//! admin key and still verify under the previous one during a rotation; once the previous
//! value is dropped, every session it signed is refused: rotating the admin key signs everyone
//! out.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use shared::secret::{AdminKeys, KeyName, Secret};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The cookie's name.
pub const COOKIE: &str = "dash_session";
/// How long a session lasts: a working day, then sign in again.
pub const LIFETIME_SECONDS: i64 = 12 * 3600;

/// What a session may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Signed in with the admin key: every page and every write.
    Admin,
    /// Signed in with the read-only key: pages only; writes answer 403.
    ReadOnly,
}

/// A verified session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// What it may do.
    pub role: Role,
    /// Which key signed in (its name, never its value).
    pub key: KeyName,
    /// When it lapses, Unix seconds.
    pub expires: i64,
    /// Random, per sign-in: what the CSRF token is derived from.
    pub id: String,
}

const KEY_NAMES: [KeyName; 4] = [
    KeyName::Admin,
    KeyName::AdminPrevious,
    KeyName::Readonly,
    KeyName::ReadonlyPrevious,
];

/// The signing key of sessions under one admin key value: an HMAC of a fixed label, so the
/// cookie key is never the admin key itself.
fn signing_key(admin: &Secret) -> HmacSha256 {
    let mut derive =
        HmacSha256::new_from_slice(admin.expose()).expect("HMAC takes keys of any length");
    derive.update(b"dashboard session v1");
    let key = derive.finalize().into_bytes();
    HmacSha256::new_from_slice(&key).expect("HMAC takes keys of any length")
}

fn mac_hex(admin: &Secret, label: &[u8], payload: &str) -> String {
    let mut mac = signing_key(admin);
    mac.update(label);
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

impl Session {
    /// A new session for `key`, signed in at `now` (Unix seconds).
    pub fn start(key: KeyName, now: i64) -> Self {
        let id: [u8; 16] = rand::random();
        Self {
            role: if key.is_readonly() {
                Role::ReadOnly
            } else {
                Role::Admin
            },
            key,
            expires: now + LIFETIME_SECONDS,
            id: hex::encode(id),
        }
    }

    fn payload(&self) -> String {
        let role = match self.role {
            Role::Admin => "admin",
            Role::ReadOnly => "readonly",
        };
        format!("{role}.{}.{}.{}", self.key.as_str(), self.expires, self.id)
    }

    /// The cookie value, signed with the current admin key.
    pub fn sign(&self, keys: &AdminKeys) -> String {
        let payload = self.payload();
        let mac = mac_hex(keys.admin.current(), b"session:", &payload);
        format!("{payload}.{mac}")
    }

    /// The session a cookie value holds, if its MAC verifies under an accepted admin key, it
    /// has not expired at `now`, and the key it names is still accepted.
    pub fn verify(keys: &AdminKeys, value: &str, now: i64) -> Option<Self> {
        let (payload, mac) = value.rsplit_once('.')?;
        let signed = keys.admin.accepted().fold(false, |found, admin| {
            let expected = mac_hex(admin, b"session:", payload);
            found | bool::from(expected.as_bytes().ct_eq(mac.as_bytes()))
        });
        if !signed {
            return None;
        }
        let mut parts = payload.split('.');
        let (role, key, expires, id) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let key = KEY_NAMES.into_iter().find(|name| name.as_str() == key)?;
        let expires: i64 = expires.parse().ok()?;
        let session = Self {
            role: match role {
                "admin" => Role::Admin,
                "readonly" => Role::ReadOnly,
                _ => return None,
            },
            key,
            expires,
            id: id.to_owned(),
        };
        let consistent = session.role == Self::start(key, 0).role && parts.next().is_none();
        (consistent && now < expires && key_still_accepted(keys, key)).then_some(session)
    }

    /// The CSRF token of this session's forms: an HMAC of its id.
    pub fn csrf_token(&self, keys: &AdminKeys) -> String {
        mac_hex(keys.admin.current(), b"csrf:", &self.id)
    }

    /// Whether `token` is this session's CSRF token, in constant time.
    pub fn csrf_matches(&self, keys: &AdminKeys, token: &str) -> bool {
        self.csrf_token(keys)
            .as_bytes()
            .ct_eq(token.as_bytes())
            .into()
    }
}

/// A session signed in with a read-only key ends when that key is removed, and one signed in
/// with a previous value ends when the rotation drops it.
fn key_still_accepted(keys: &AdminKeys, key: KeyName) -> bool {
    match key {
        KeyName::Admin => true,
        KeyName::AdminPrevious => keys.admin.accepted().count() > 1,
        KeyName::Readonly => keys.readonly.is_some(),
        KeyName::ReadonlyPrevious => keys
            .readonly
            .as_ref()
            .is_some_and(|readonly| readonly.accepted().count() > 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::secret::RotatingSecret;

    fn keys(admin: &str) -> AdminKeys {
        AdminKeys::admin_only(RotatingSecret::parse(&Secret::new(admin)).unwrap())
    }

    #[test]
    fn verifies_until_expiry_and_refuses_tampering() {
        let keys = keys("k1");
        let session = Session::start(KeyName::Admin, 1000);
        let cookie = session.sign(&keys);
        assert!(!cookie.contains("k1"));
        assert_eq!(Session::verify(&keys, &cookie, 1001), Some(session.clone()));
        assert_eq!(
            Session::verify(&keys, &cookie, 1000 + LIFETIME_SECONDS),
            None
        );
        let forged = cookie.replacen("admin.admin", "readonly.admin", 1);
        assert_eq!(Session::verify(&keys, &forged, 1001), None);
    }

    #[test]
    fn rotating_the_admin_key_signs_out_once_the_previous_value_is_dropped() {
        let cookie = Session::start(KeyName::Admin, 0).sign(&keys("old"));
        assert!(Session::verify(&keys("new,old"), &cookie, 1).is_some());
        assert!(Session::verify(&keys("new"), &cookie, 1).is_none());
    }
}
