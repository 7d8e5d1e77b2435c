//! Timestamps with one fixed textual form, so that stored values sort lexicographically in
//! time order (DynamoDB sort keys, embedded range scans).

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// An instant in UTC, to the millisecond, with one fixed textual form that sorts as it orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

/// The years a time or day from outside (a query, a body, a postback) may fall in. Far enough
/// either way for any real event, near enough that every day is four digits (the textual
/// forms sort as times only then) and no window arithmetic around it leaves chrono's range.
const ACCEPTED_YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// A time or day outside the accepted years.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be from 2000-01-01 to 2100-12-31 (UTC)")]
pub struct OutOfRange;

/// `day` if it lies in the accepted years.
pub fn accepted_day(day: NaiveDate) -> Result<NaiveDate, OutOfRange> {
    if ACCEPTED_YEARS.contains(&day.year()) {
        Ok(day)
    } else {
        Err(OutOfRange)
    }
}

impl Timestamp {
    /// Now, to the millisecond: the precision timestamps are stored with, so a value reads
    /// back equal to what was written and orders the same before and after storage.
    pub fn now() -> Self {
        Self::from_unix_millis(Utc::now().timestamp_millis()).expect("the clock is in range")
    }

    /// The instant `seconds` after the Unix epoch, if representable.
    pub fn from_unix_seconds(seconds: i64) -> Option<Self> {
        Utc.timestamp_opt(seconds, 0).single().map(Self)
    }

    /// The instant `millis` after the Unix epoch, if representable.
    pub fn from_unix_millis(millis: i64) -> Option<Self> {
        Utc.timestamp_millis_opt(millis).single().map(Self)
    }

    /// An RFC 3339 timestamp (any offset), kept to the millisecond like every stored time.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let parsed = DateTime::parse_from_rfc3339(text).ok()?;
        Self::from_unix_millis(parsed.timestamp_millis())
    }

    /// Seconds since the Unix epoch.
    pub fn unix_seconds(&self) -> i64 {
        self.0.timestamp()
    }

    /// Saturates at the ends of chrono's range rather than panicking: the callers add windows
    /// of days to accepted times, so the ends are never reached in practice.
    pub fn plus_seconds(&self, seconds: i64) -> Self {
        let moved = chrono::TimeDelta::try_seconds(seconds)
            .and_then(|delta| self.0.checked_add_signed(delta));
        Self(moved.unwrap_or(if seconds < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        }))
    }

    /// `self` if its UTC day lies in the accepted years (see [`accepted_day`]).
    pub fn accepted(self) -> Result<Self, OutOfRange> {
        accepted_day(self.0.date_naive()).map(|_| self)
    }

    /// The UTC calendar day, `YYYY-MM-DD`.
    pub fn day(&self) -> String {
        self.0.format("%Y-%m-%d").to_string()
    }

    /// The instant for date arithmetic.
    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(value: DateTime<Utc>) -> Self {
        Self(value)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|parsed| Self(parsed.with_timezone(&Utc)))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_sorts_like_time() {
        let early = Timestamp::from_unix_millis(999).unwrap();
        let late = Timestamp::from_unix_seconds(1_763_976_000).unwrap();
        assert!(early.to_string() < late.to_string());
        assert_eq!(late.to_string(), "2025-11-24T09:20:00.000Z");
        let round_trip: Timestamp =
            serde_json::from_str(&serde_json::to_string(&late).unwrap()).unwrap();
        assert_eq!(round_trip, late);
    }

    #[test]
    fn only_this_century_and_the_next_are_accepted_and_arithmetic_never_panics() {
        let day = |text| NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap();
        assert!(accepted_day(day("2000-01-01")).is_ok());
        assert!(accepted_day(day("2100-12-31")).is_ok());
        assert_eq!(accepted_day(day("1999-12-31")), Err(OutOfRange));
        assert_eq!(accepted_day(day("2101-01-01")), Err(OutOfRange));
        assert_eq!(accepted_day(day("-262143-01-01")), Err(OutOfRange));
        let epoch = Timestamp::from_unix_seconds(0).unwrap();
        assert_eq!(epoch.accepted(), Err(OutOfRange));
        let far = epoch.plus_seconds(i64::MIN).plus_seconds(i64::MIN);
        assert_eq!(far.as_datetime(), DateTime::<Utc>::MIN_UTC);
        assert_eq!(
            epoch.plus_seconds(i64::MAX).as_datetime(),
            DateTime::<Utc>::MAX_UTC
        );
    }
}
