use crate::secret::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header in which Meta signs each webhook delivery.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// Why a webhook delivery's signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No signature header.
    #[error("the X-Hub-Signature-256 header is missing")]
    Missing,
    /// A header, but not `sha256=<hex>`.
    #[error("the X-Hub-Signature-256 header is not of the form sha256=<hex>")]
    Malformed,
    /// A well-formed signature that the body does not match.
    #[error("the X-Hub-Signature-256 header does not match the body")]
    Mismatch,
}

fn keyed(secret: &Secret) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret.expose()).expect("HMAC accepts keys of any length")
}

/// Checks Meta's HMAC-SHA256 of the raw body bytes, in constant time.
pub fn verify_signature(
    app_secret: &Secret,
    header: Option<&[u8]>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_digest = header
        .strip_prefix(b"sha256=")
        .ok_or(SignatureError::Malformed)?;
    let mut expected = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut expected).map_err(|_| SignatureError::Malformed)?;
    let mut mac = keyed(app_secret);
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// The header value Meta would send for `body`; used by tests, the load script and the README.
pub fn sign(app_secret: &Secret, body: &[u8]) -> String {
    let mut mac = keyed(app_secret);
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_its_own_signature_and_refuses_everything_else() {
        let secret = Secret::new("app-secret");
        let body = br#"{"object":"page","entry":[]}"#;
        let header = sign(&secret, body);
        assert_eq!(
            verify_signature(&secret, Some(header.as_bytes()), body),
            Ok(())
        );
        assert_eq!(
            verify_signature(&secret, None, body),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(&secret, Some(b"sha1=abcd"), body),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(&secret, Some(b"sha256=zz"), body),
            Err(SignatureError::Malformed)
        );
        let mut tampered = body.to_vec();
        tampered[2] = b'X';
        assert_eq!(
            verify_signature(&secret, Some(header.as_bytes()), &tampered),
            Err(SignatureError::Mismatch)
        );
        let other = Secret::new("other-secret");
        assert_eq!(
            verify_signature(&other, Some(header.as_bytes()), body),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn matches_a_known_vector() {
        // printf '%s' 'hello' | openssl dgst -sha256 -hmac 'key'
        let header = sign(&Secret::new("key"), b"hello");
        assert_eq!(
            header,
            "sha256=9307b3b915efb5171ff14d8cb55fbcc798c6c0ef1456d66ded1a6aa723a58b7b"
        );
    }
}
