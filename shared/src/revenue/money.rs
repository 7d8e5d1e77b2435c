//! Money as exact decimals with their currency: never floating point, never summed across
//! currencies.

use rust_decimal::Decimal;
use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// An exact decimal amount. Serialised as a string (`"0.30"`), so no JSON reader turns it into
/// a float on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(Decimal);

/// Why an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAmount {
    /// Not a decimal number.
    #[error("must be a decimal number such as 12.50, got {0:?}")]
    NotANumber(String),
    /// Negative, too large, or too precise.
    #[error("must be from 0 to {MAX_PAYOUT} with at most {MAX_PAYOUT_DECIMALS} decimal places")]
    OutOfRange,
}

/// The largest payout one conversion or offer may name. Sums of such payouts stay exact far
/// past any real total: a `Decimal` holds 28 digits, a DynamoDB number 38.
pub const MAX_PAYOUT: u32 = 1_000_000_000;
/// Beyond this, a payout is not money but a way to make sums lose digits.
pub const MAX_PAYOUT_DECIMALS: u32 = 6;

impl Amount {
    /// Nothing, what sums start from.
    pub const ZERO: Self = Self(Decimal::ZERO);

    /// Plain (`12.5`, `-3`, `.5`) or scientific (`1.2e3`) notation, surrounding spaces allowed.
    pub fn parse(text: &str) -> Result<Self, InvalidAmount> {
        let trimmed = text.trim();
        let invalid = || InvalidAmount::NotANumber(text.chars().take(40).collect());
        if trimmed.is_empty() || trimmed.len() > 64 {
            return Err(invalid());
        }
        Decimal::from_str_exact(trimmed)
            .or_else(|_| Decimal::from_scientific(trimmed))
            .map(|value| Self(value.normalize()))
            .map_err(|_| invalid())
    }

    /// A payout as a postback or an offer names it: [`Amount::parse`], then no less than zero,
    /// at most [`MAX_PAYOUT`] and [`MAX_PAYOUT_DECIMALS`] places.
    pub fn parse_payout(text: &str) -> Result<Self, InvalidAmount> {
        let amount = Self::parse(text)?;
        let in_range = amount.0 >= Decimal::ZERO
            && amount.0 <= Decimal::from(MAX_PAYOUT)
            && amount.0.scale() <= MAX_PAYOUT_DECIMALS;
        if in_range {
            Ok(amount)
        } else {
            Err(InvalidAmount::OutOfRange)
        }
    }

    /// The exact decimal, for arithmetic and storage.
    pub fn decimal(&self) -> Decimal {
        self.0
    }

    /// The sum, or `None` if it overflows.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(Self)
    }

    /// `self / count`, rounded half away from zero to 4 decimal places; `None` when `count`
    /// is 0 (a ratio over nothing is not zero, it is undefined).
    pub fn per(self, count: u64) -> Option<Self> {
        self.over(Decimal::from(count), 4)
    }

    /// `self / divisor`, rounded half away from zero to `places` decimal places; `None` when
    /// `divisor` is 0.
    pub fn over(self, divisor: Decimal, places: u32) -> Option<Self> {
        if divisor.is_zero() {
            return None;
        }
        let ratio = self.0.checked_div(divisor)?;
        Some(Self(ratio.round_dp_with_strategy(
            places,
            rust_decimal::RoundingStrategy::MidpointAwayFromZero,
        )))
    }
}

impl From<Decimal> for Amount {
    fn from(value: Decimal) -> Self {
        Self(value)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // At least two decimals, as money reads; more when the amount has them.
        let shown = if self.0.scale() < 2 {
            let mut padded = self.0;
            padded.rescale(2);
            padded
        } else {
            self.0
        };
        write!(f, "{shown}")
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

crate::ids::deserialize_by_parse!(Amount);

/// An ISO 4217 currency code: three upper-case ASCII letters (`usd` is read as `USD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

/// A currency that is not three ASCII letters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be a three-letter ISO 4217 currency code such as USD")]
pub struct InvalidCurrency;

impl Currency {
    /// US dollars, the default currency.
    pub const USD: Self = Self(*b"USD");

    /// A three-letter code, upper-cased.
    pub fn parse(text: &str) -> Result<Self, InvalidCurrency> {
        match text.trim().as_bytes() {
            [a, b, c] if [a, b, c].iter().all(|byte| byte.is_ascii_alphabetic()) => Ok(Self([
                a.to_ascii_uppercase(),
                b.to_ascii_uppercase(),
                c.to_ascii_uppercase(),
            ])),
            _ => Err(InvalidCurrency),
        }
    }

    /// The code, e.g. `USD`.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ASCII letters")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Currency {
    type Err = InvalidCurrency;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

crate::ids::deserialize_by_parse!(Currency);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_money_adds_exactly() {
        let sum = Amount::parse("0.10")
            .unwrap()
            .checked_add(Amount::parse("0.20").unwrap())
            .unwrap();
        assert_eq!(sum, Amount::parse("0.3").unwrap());
        assert_eq!(sum.to_string(), "0.30");
        assert_eq!(Amount::parse("1.2e3").unwrap().to_string(), "1200.00");
        assert_eq!(Amount::parse(" 12.345 ").unwrap().to_string(), "12.345");
    }

    #[test]
    fn amounts_refuse_what_is_not_a_number() {
        for bad in ["", "abc", "1,5", "NaN", "inf", "1.2.3", "0x10"] {
            assert!(Amount::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn payouts_are_bounded_and_never_negative() {
        assert_eq!(
            Amount::parse_payout("1000000000").unwrap().to_string(),
            "1000000000.00"
        );
        assert!(Amount::parse_payout("0.000001").is_ok());
        assert!(Amount::parse_payout("1.50000000").is_ok(), "trailing zeros");
        for bad in [
            "-0.01",
            "1000000000.01",
            "79228162514264337593543950335",
            "1e20",
            "0.0000001",
        ] {
            assert_eq!(
                Amount::parse_payout(bad),
                Err(InvalidAmount::OutOfRange),
                "{bad}"
            );
        }
        assert!(matches!(
            Amount::parse_payout("ten"),
            Err(InvalidAmount::NotANumber(_))
        ));
    }

    #[test]
    fn ratios_round_to_four_places_and_refuse_zero() {
        let ten = Amount::parse("10").unwrap();
        assert_eq!(ten.per(3).unwrap().to_string(), "3.3333");
        assert_eq!(ten.per(0), None);
    }

    #[test]
    fn currencies_are_three_letters() {
        assert_eq!(Currency::parse("eur").unwrap().as_str(), "EUR");
        assert!(Currency::parse("EURO").is_err());
        assert!(Currency::parse("E1R").is_err());
    }
}
