//! Secrets that never print and compare in constant time.

use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

#[derive(Clone)]
pub struct Secret(String);

impl Secret {
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
        let expected = Sha256::digest(self.0.as_bytes());
        let given = Sha256::digest(candidate);
        expected.ct_eq(&given).into()
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
}
