//! ULIDs (48-bit millisecond time, 80 random bits) in their canonical text form, minted
//! monotonically within the process: ids that sort by creation time even within one
//! millisecond, for rules, backfill jobs and local queue messages alike. (The `ulid` crate's
//! `Ulid::new` makes ids that need not sort within a millisecond: fine for click, send and
//! erasure ids, not for a rule's last tie-break.)

use std::fmt;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Crockford's base 32, as ULIDs use it: no I, L, O or U.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters of the text form.
const LEN: usize = 26;

/// A ULID as its 128-bit value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ulid(u128);

impl Ulid {
    /// A fresh ULID for the current time. Monotonic within the process: ULIDs made in the same
    /// millisecond count up from the previous one, so they still sort in creation order.
    pub(crate) fn new() -> Self {
        static LAST: Mutex<(u128, u128)> = Mutex::new((0, 0));
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis());
        let mut last = LAST.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (millis, random) = if millis <= last.0 {
            (last.0, last.1 + 1)
        } else {
            // Room below the 80-bit top keeps the increments from overflowing into the time.
            (millis, rand::random::<u128>() & ((1 << 79) - 1))
        };
        *last = (millis, random);
        Self::from_parts(millis, random)
    }

    /// The ULID for a given time and random part; only the low 48 bits of `millis` and the low
    /// 80 bits of `random` are used.
    pub(crate) fn from_parts(millis: u128, random: u128) -> Self {
        Self(((millis & ((1 << 48) - 1)) << 80) | (random & ((1 << 80) - 1)))
    }

    /// The canonical upper-case text of a ULID written in either case, if `text` is one.
    pub(crate) fn canonical_text(text: &str) -> Option<String> {
        let bytes = text.as_bytes();
        let acceptable = bytes.len() == LEN
            // 26 × 5 bits = 130: the first character carries only 3 bits.
            && bytes[0] <= b'7'
            && bytes
                .iter()
                .all(|b| ALPHABET.contains(&b.to_ascii_uppercase()));
        acceptable.then(|| text.to_ascii_uppercase())
    }
}

impl fmt::Display for Ulid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text: String = (0..LEN)
            .map(|i| ALPHABET[((self.0 >> (125 - 5 * i)) & 31) as usize] as char)
            .collect();
        f.write_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_ulids_count_up_within_a_millisecond() {
        let (first, second) = (Ulid::new(), Ulid::new());
        assert!(first < second);
        assert!(first.to_string() < second.to_string());
        assert_eq!(
            Ulid::canonical_text(&first.to_string().to_ascii_lowercase()),
            Some(first.to_string())
        );
    }
}
