//! Identifiers parsed once at the edge, so the rest of the code never sees an invalid one.

use serde::Serialize;
use std::fmt;

/// Room for WhatsApp's business-scoped user ids (a country code, a dot and up to 128
/// alphanumerics, sometimes with an `ENT.` part) beside every other platform's ids.
const MAX_ID_LEN: usize = 160;

/// An identifier that does not hold, named by its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} must be 1 to {MAX_ID_LEN} visible characters without spaces or '#'")]
pub struct InvalidId {
    /// The field the identifier came in.
    pub field: &'static str,
}

fn parse_id(field: &'static str, value: &str) -> Result<String, InvalidId> {
    let acceptable = !value.is_empty()
        && value.len() <= MAX_ID_LEN
        && value
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '#');
    if acceptable {
        Ok(value.to_owned())
    } else {
        Err(InvalidId { field })
    }
}

/// `Deserialize` through the type's `parse(&str)`, its only way in, so that stored or received
/// text passes the same check as at the edge.
macro_rules! deserialize_by_parse {
    ($name:ty) => {
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(deserializer)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use deserialize_by_parse;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The id, if `value` is 1 to 160 visible characters without spaces or `#`.
            pub fn parse(value: &str) -> Result<Self, InvalidId> {
                parse_id($field, value).map(Self)
            }

            /// The id as received.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        deserialize_by_parse!($name);
    };
}

id_type!(
    /// The business side of a conversation: a WhatsApp phone number id, a Facebook page id or an
    /// Instagram account id.
    InstanceId,
    "instance_id"
);

id_type!(
    /// The customer side: a WhatsApp id (a phone number) or business-scoped user id (BSUID), a
    /// page-scoped or Instagram-scoped id. Its `Display` is masked because a WhatsApp id is a
    /// phone number, and a BSUID identifies a person too: neither may reach logs.
    ContactId,
    "contact_id"
);

id_type!(
    /// An affiliate offer: where tracked links lead, and the click window its conversions use.
    OfferId,
    "offer_id"
);

id_type!(
    /// A backfill run, by which the admin API reads its progress and its queued pages find it.
    JobId,
    "job_id"
);

impl JobId {
    /// A fresh id: a ULID, so that jobs sort by when they were started.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self(crate::monotonic_ulid::Ulid::new().to_string())
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for OfferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for ContactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask(&self.0))
    }
}

/// Keeps the last four characters, enough to tell contacts apart in a log line.
pub fn mask(value: &str) -> String {
    let visible: String = value
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("***{visible}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_or_name_their_field() {
        assert!(InstanceId::parse("106540352242922").is_ok());
        assert_eq!(ContactId::parse("").unwrap_err().field, "contact_id");
        assert!(ContactId::parse("a b").is_err());
        assert!(InstanceId::parse("a#b").is_err());
        assert!(InstanceId::parse(&"9".repeat(161)).is_err());
        assert!(ContactId::parse(&format!("BR.{}", "a".repeat(128))).is_ok());
    }

    #[test]
    fn fresh_job_ids_parse_back_and_sort_by_creation() {
        let (first, second) = (JobId::new(), JobId::new());
        assert_eq!(JobId::parse(first.as_str()), Ok(first.clone()));
        assert!(first < second);
        assert_eq!(JobId::parse("a b").unwrap_err().field, "job_id");
    }

    #[test]
    fn contact_ids_display_masked() {
        let id = ContactId::parse("5511987654321").unwrap();
        assert_eq!(id.to_string(), "***4321");
        assert_eq!(id.as_str(), "5511987654321");
    }
}
