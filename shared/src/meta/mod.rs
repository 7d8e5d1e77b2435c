//! Meta's webhook: signature check and payload parsing for WhatsApp, Messenger and Instagram.

mod payload;
mod signature;

pub use payload::{Delivery, PayloadError, parse_delivery};
pub use signature::{SIGNATURE_HEADER, SignatureError, sign, verify_signature};

/// Meta sends deliveries of up to 3 MB; anything larger is refused before it is read whole.
pub const MAX_DELIVERY_BYTES: usize = 3 * 1024 * 1024;
