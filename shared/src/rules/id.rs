//! Rule identifiers: ULIDs, so that an id made in a later millisecond sorts later and the last
//! tie-break of the evaluation order (`id`) agrees with creation order wherever it can.

use crate::monotonic_ulid::Ulid;
use serde::Serialize;
use std::fmt;

/// A rule id that is not a canonical ULID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule_id must be a ULID: 26 characters of Crockford base 32")]
pub struct InvalidRuleId;

/// A rule's id: a ULID (48-bit millisecond time, 80 random bits) in its canonical upper-case
/// text form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RuleId(String);

impl RuleId {
    /// A fresh id for the current time. Monotonic within the process: ids made in the same
    /// millisecond count up from the previous one, so they still sort in creation order.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self(Ulid::new().to_string())
    }

    /// The id for a given time and random part; only the low 48 bits of `millis` and the low
    /// 80 bits of `random` are used.
    pub fn from_parts(millis: u128, random: u128) -> Self {
        Self(Ulid::from_parts(millis, random).to_string())
    }

    /// Accepts lower case too (ULIDs are case-insensitive) and keeps the canonical upper case.
    pub fn parse(value: &str) -> Result<Self, InvalidRuleId> {
        Ulid::canonical_text(value).map(Self).ok_or(InvalidRuleId)
    }

    /// The canonical upper-case ULID.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

crate::ids::deserialize_by_parse!(RuleId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_parse_and_sort_by_time() {
        let id = RuleId::new();
        assert_eq!(RuleId::parse(id.as_str()), Ok(id.clone()));
        let early = RuleId::from_parts(1_000, u128::MAX);
        let late = RuleId::from_parts(1_001, 0);
        assert!(early < late);
        assert_eq!(
            RuleId::from_parts(0, 0).as_str(),
            "00000000000000000000000000"
        );
        assert_eq!(
            RuleId::from_parts(u128::MAX, u128::MAX).as_str(),
            "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"
        );
    }

    #[test]
    fn parse_is_strict_but_case_insensitive() {
        let lower = RuleId::parse("01jd5x1z4q8m3n6p7r9s0t2v4w").unwrap();
        assert_eq!(lower.as_str(), "01JD5X1Z4Q8M3N6P7R9S0T2V4W");
        assert!(RuleId::parse("").is_err());
        assert!(RuleId::parse("01JD5X1Z4Q8M3N6P7R9S0T2V4").is_err()); // 25
        assert!(RuleId::parse("81JD5X1Z4Q8M3N6P7R9S0T2V4W").is_err()); // overflows 128 bits
        assert!(RuleId::parse("01JD5X1Z4Q8M3N6P7R9S0T2V4U").is_err()); // U is not Crockford
        assert!(RuleId::parse("01JD5X1Z4Q8M3N6P7R9S0T2V4é").is_err());
        let json = serde_json::to_string(&lower).unwrap();
        assert_eq!(serde_json::from_str::<RuleId>(&json).unwrap(), lower);
        assert!(serde_json::from_str::<RuleId>("\"nope\"").is_err());
    }
}
