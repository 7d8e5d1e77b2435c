//! Secrets that never print and compare in constant time.

use sha2::{Digest, Sha256};
use std::fmt;
use subtle::{Choice, ConstantTimeEq};

/// A secret value that never shows in logs or debug output and compares in constant time.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// A secret nobody knows (random, never stored): what a function holds in place of a
    /// secret it does not use, so that it matches nothing.
    pub fn unusable() -> Self {
        use rand::Rng;
        let bytes: [u8; 32] = rand::rng().random();
        Self(hex::encode(bytes))
    }

    /// Raw bytes, for keying an HMAC. Never log them.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Constant-time equality that also hides the secret's length: both sides are hashed to
    /// fixed-size digests before the comparison.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        self.matches_digest(&Sha256::digest(candidate)).into()
    }

    /// The comparison against a candidate hashed once, for checking one against many secrets.
    fn matches_digest(&self, given: &[u8]) -> Choice {
        Sha256::digest(self.0.as_bytes()).ct_eq(given)
    }
}

/// A secret that rotates without downtime: `current`, or `current,previous` while callers move
/// over to the new value. Both are accepted; whatever the engine signs, it signs with `current`.
#[derive(Debug, Clone)]
pub struct RotatingSecret {
    current: Secret,
    previous: Option<Secret>,
}

/// Which value of a [`RotatingSecret`] a candidate matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// The value the engine signs with now.
    Current,
    /// The value being rotated out, still accepted.
    Previous,
}

impl RotatingSecret {
    /// A secret with one value and nothing to rotate out.
    pub fn new(current: Secret) -> Self {
        Self {
            current,
            previous: None,
        }
    }

    /// `current` or `current,previous` (spaces around each value ignored); anything else,
    /// empty values or a third one, is refused with the reason (which never holds the value).
    pub fn parse(raw: &Secret) -> Result<Self, String> {
        let text = std::str::from_utf8(raw.expose()).map_err(|_| "is not UTF-8".to_owned())?;
        let values: Vec<&str> = text.split(',').map(str::trim).collect();
        if values.iter().any(|value| value.is_empty()) {
            return Err("holds an empty value (expected `current` or `current,previous`)".into());
        }
        match values.as_slice() {
            [current] => Ok(Self::new(Secret::new(*current))),
            [current, previous] => Ok(Self {
                current: Secret::new(*current),
                previous: Some(Secret::new(*previous)),
            }),
            _ => {
                Err("holds more than two values (expected `current` or `current,previous`)".into())
            }
        }
    }

    /// The value to sign with.
    pub fn current(&self) -> &Secret {
        &self.current
    }

    /// Every accepted value, the current one first.
    pub fn accepted(&self) -> impl Iterator<Item = &Secret> {
        std::iter::once(&self.current).chain(self.previous.as_ref())
    }

    /// Which value `candidate` is. Every value is compared, in constant time, whatever matches:
    /// neither the timing nor an early exit tells a caller how close a guess came.
    pub fn identify(&self, candidate: &[u8]) -> Option<Generation> {
        let given = Sha256::digest(candidate);
        let current = self.current.matches_digest(&given);
        let previous = self
            .previous
            .as_ref()
            .map_or(Choice::from(0), |previous| previous.matches_digest(&given));
        match (bool::from(current), bool::from(previous)) {
            (true, _) => Some(Generation::Current),
            (false, true) => Some(Generation::Previous),
            (false, false) => None,
        }
    }
}

/// The keys of the admin API: the admin key (every route) and an optional read-only key
/// (`GET` and `HEAD` only), each rotating.
#[derive(Debug, Clone)]
pub struct AdminKeys {
    /// The key every route accepts.
    pub admin: RotatingSecret,
    /// The key only `GET` and `HEAD` accept, when one is set.
    pub readonly: Option<RotatingSecret>,
}

/// The name a presented key goes by in audit lines: never the key itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyName {
    /// The current admin key.
    Admin,
    /// The previous admin key, during a rotation.
    AdminPrevious,
    /// The current read-only key.
    Readonly,
    /// The previous read-only key, during a rotation.
    ReadonlyPrevious,
}

impl KeyName {
    /// The key's name in audit lines, so a log says which key was used, never its value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::AdminPrevious => "admin_previous",
            Self::Readonly => "readonly",
            Self::ReadonlyPrevious => "readonly_previous",
        }
    }

    /// Whether the key may only read.
    pub fn is_readonly(&self) -> bool {
        matches!(self, Self::Readonly | Self::ReadonlyPrevious)
    }
}

impl AdminKeys {
    /// An admin key alone, with no read-only key.
    pub fn admin_only(admin: RotatingSecret) -> Self {
        Self {
            admin,
            readonly: None,
        }
    }

    /// Which key `candidate` is; both sets are always compared in full.
    pub fn identify(&self, candidate: &[u8]) -> Option<KeyName> {
        let admin = self.admin.identify(candidate);
        let readonly = self
            .readonly
            .as_ref()
            .and_then(|readonly| readonly.identify(candidate));
        match (admin, readonly) {
            (Some(Generation::Current), _) => Some(KeyName::Admin),
            (Some(Generation::Previous), _) => Some(KeyName::AdminPrevious),
            (None, Some(Generation::Current)) => Some(KeyName::Readonly),
            (None, Some(Generation::Previous)) => Some(KeyName::ReadonlyPrevious),
            (None, None) => None,
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_the_same_bytes_and_never_prints() {
        let secret = Secret::new("s3cr3t-value");
        assert!(secret.matches(b"s3cr3t-value"));
        assert!(!secret.matches(b"s3cr3t-valu"));
        assert!(!secret.matches(b""));
        assert!(!format!("{secret:?}").contains("s3cr3t"));
    }

    #[test]
    fn rotating_secrets_take_one_or_two_values_and_name_the_one_matched() {
        let rotating = RotatingSecret::parse(&Secret::new("new-key, old-key")).unwrap();
        assert_eq!(rotating.identify(b"new-key"), Some(Generation::Current));
        assert_eq!(rotating.identify(b"old-key"), Some(Generation::Previous));
        assert_eq!(rotating.identify(b"new-key,old-key"), None);
        assert_eq!(rotating.identify(b""), None);
        assert!(rotating.current().matches(b"new-key"));
        let single = RotatingSecret::parse(&Secret::new("only")).unwrap();
        assert_eq!(single.accepted().count(), 1);
        for bad in ["", "a,", ",b", "a,b,c", " , "] {
            assert!(RotatingSecret::parse(&Secret::new(bad)).is_err(), "{bad:?}");
        }
        assert!(!format!("{rotating:?}").contains("key"));
    }

    #[test]
    fn admin_keys_tell_the_admin_key_from_the_readonly_one() {
        let keys = AdminKeys {
            admin: RotatingSecret::parse(&Secret::new("a1,a0")).unwrap(),
            readonly: Some(RotatingSecret::parse(&Secret::new("r1,r0")).unwrap()),
        };
        assert_eq!(keys.identify(b"a1"), Some(KeyName::Admin));
        assert_eq!(keys.identify(b"a0"), Some(KeyName::AdminPrevious));
        assert_eq!(keys.identify(b"r1"), Some(KeyName::Readonly));
        assert_eq!(keys.identify(b"r0"), Some(KeyName::ReadonlyPrevious));
        assert_eq!(keys.identify(b"x"), None);
        assert!(KeyName::Readonly.is_readonly() && !KeyName::AdminPrevious.is_readonly());
    }
}
