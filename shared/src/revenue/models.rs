//! Attribution models side by side: how the revenue of one credited conversion would be
//! split over the contact's clicks on its offer inside its window under each model.
//!
//! The split is exact: each click's share is a whole number of the conversion's smallest unit
//! (a cent, or the payout's own last decimal place when it has more than two), and the shares
//! are rounded by largest remainder (each share rounded down, the units left over going one
//! each to the largest remainders, the earlier click first on a tie), so a conversion's shares
//! always add up to its payout and every model's column adds up to the credited total.

use crate::revenue::money::Amount;
use crate::time::Timestamp;
use rust_decimal::Decimal;
use serde::Serialize;

/// The models compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// All to the first click: the credited model.
    FirstClick,
    /// All to the last click.
    LastClick,
    /// Equal shares.
    Linear,
    /// Weight 2^(−Δt / 7 days), Δt the click's age at the conversion, normalised.
    TimeDecay,
    /// 40 % first, 40 % last, 20 % shared by the clicks between; one click all, two half each.
    PositionBased,
}

impl Model {
    /// Every model, in the order the report shows them.
    pub const ALL: [Model; 5] = [
        Model::FirstClick,
        Model::LastClick,
        Model::Linear,
        Model::TimeDecay,
        Model::PositionBased,
    ];

    /// The model's name in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FirstClick => "first_click",
            Self::LastClick => "last_click",
            Self::Linear => "linear",
            Self::TimeDecay => "time_decay",
            Self::PositionBased => "position_based",
        }
    }

    /// The model's name for a person.
    pub fn label(self) -> &'static str {
        match self {
            Self::FirstClick => "First click (credited)",
            Self::LastClick => "Last click",
            Self::Linear => "Linear",
            Self::TimeDecay => "Time decay (7-day half-life)",
            Self::PositionBased => "Position based (40/20/40)",
        }
    }
}

/// Most clicks a conversion's split considers: the earliest in the window. A person clicks a
/// link a handful of times; this bounds the report rows one conversion's write touches
/// (4 groupings × 20 sends + the credited rows stay under DynamoDB's 100 items a transaction).
pub const MAX_MODEL_CLICKS: usize = 20;

/// The time-decay half-life, in seconds.
pub const HALF_LIFE_SECONDS: f64 = 7.0 * 86_400.0;

/// Time-decay weights are fixed-point with this many fractional bits, so the split itself is
/// integer arithmetic (exact, the same on every machine).
const WEIGHT_BITS: i32 = 40;

/// The weight of each click under `model`, as integers in proportion. `clicked` are the
/// clicks' times in time order, `converted_at` the conversion's.
fn weights(model: Model, clicked: &[Timestamp], converted_at: Timestamp) -> Vec<u128> {
    let n = clicked.len();
    let mut weights = vec![0u128; n];
    if n == 0 {
        return weights;
    }
    match model {
        Model::FirstClick => weights[0] = 1,
        Model::LastClick => weights[n - 1] = 1,
        Model::Linear => weights.fill(1),
        Model::PositionBased => match n {
            1 => weights[0] = 1,
            2 => weights.fill(1),
            // First and last 2 parts of 5 (n − 2) each, every middle click 1: 40/40/20.
            _ => {
                let middle = (n - 2) as u128;
                weights.fill(1);
                weights[0] = 2 * middle;
                weights[n - 1] = 2 * middle;
            }
        },
        Model::TimeDecay => {
            // Relative to the newest click, so the largest weight is 2^40 and none overflows;
            // a click after the conversion (inside the clock-skew allowance) is age 0.
            let age = |at: &Timestamp| (converted_at.unix_seconds() - at.unix_seconds()).max(0);
            let youngest = clicked.iter().map(age).min().unwrap_or(0);
            for (weight, at) in weights.iter_mut().zip(clicked) {
                let halvings = (age(at) - youngest) as f64 / HALF_LIFE_SECONDS;
                let scaled = (f64::from(WEIGHT_BITS) - halvings).exp2().round();
                // A click 40 half-lives older than the newest keeps the smallest weight
                // rather than none, so every click in the window has a share to round.
                *weight = (scaled as u128).max(1);
            }
        }
    }
    weights
}

/// The smallest unit a payout is split in: a cent, or its own last place when finer.
fn unit_scale(payout: Amount) -> u32 {
    payout.decimal().scale().max(2)
}

/// `total` split in proportion to `weights` by largest remainder, in units of `10^-scale`:
/// the shares add up to `total` exactly.
fn split(total: Amount, weights: &[u128], scale: u32) -> Vec<Amount> {
    let mut units = total.decimal();
    units.rescale(scale);
    // A payout is at most 10^9 with 6 places: at most 10^15 units, and weights at most
    // 2^45 together, so every product fits in a u128.
    let units = u128::try_from(units.mantissa()).unwrap_or(0);
    let sum: u128 = weights.iter().sum();
    let to_amount = |count: u128| {
        Amount::from(Decimal::from_i128_with_scale(
            i128::try_from(count).unwrap_or(i128::MAX),
            scale,
        ))
    };
    if sum == 0 {
        return weights.iter().map(|_| Amount::ZERO).collect();
    }
    let mut shares: Vec<u128> = weights.iter().map(|w| units * w / sum).collect();
    let mut left = units - shares.iter().sum::<u128>();
    let mut by_remainder: Vec<usize> = (0..weights.len()).collect();
    // Stable: on equal remainders the earlier click comes first.
    by_remainder.sort_by_key(|&i| std::cmp::Reverse(units * weights[i] % sum));
    for i in by_remainder {
        if left == 0 {
            break;
        }
        shares[i] += 1;
        left -= 1;
    }
    shares.into_iter().map(to_amount).collect()
}

/// Each click's share of `payout` under `model`, in the clicks' order (time order). No clicks:
/// no shares.
pub fn shares(
    model: Model,
    payout: Amount,
    clicked: &[Timestamp],
    converted_at: Timestamp,
) -> Vec<Amount> {
    split(
        payout,
        &weights(model, clicked, converted_at),
        unit_scale(payout),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(days_before: f64) -> Timestamp {
        let conversion = 1_790_000_000i64;
        Timestamp::from_unix_seconds(conversion - (days_before * 86_400.0) as i64).unwrap()
    }

    fn converted() -> Timestamp {
        at(0.0)
    }

    fn amounts(texts: &[&str]) -> Vec<Amount> {
        texts.iter().map(|t| Amount::parse(t).unwrap()).collect()
    }

    #[test]
    fn worked_examples_split_to_the_cent() {
        // (model, payout, click ages in days, expected shares in time order)
        let cases: &[(Model, &str, &[f64], &[&str])] = &[
            // One click: every model gives it everything.
            (Model::FirstClick, "10", &[3.0], &["10"]),
            (Model::LastClick, "10", &[3.0], &["10"]),
            (Model::Linear, "10", &[3.0], &["10"]),
            (Model::TimeDecay, "10", &[3.0], &["10"]),
            (Model::PositionBased, "10", &[3.0], &["10"]),
            // Two clicks.
            (Model::FirstClick, "10", &[14.0, 0.0], &["10", "0"]),
            (Model::LastClick, "10", &[14.0, 0.0], &["0", "10"]),
            (Model::Linear, "10", &[14.0, 0.0], &["5", "5"]),
            (Model::PositionBased, "10", &[14.0, 0.0], &["5", "5"]),
            // 14 days is two half-lives: weights 1/4 and 1, so 2 and 8.
            (Model::TimeDecay, "10", &[14.0, 0.0], &["2", "8"]),
            // 7 days apart: 1/2 and 1 of 10.00 is 3.333… and 6.666…: 3.33 and 6.67.
            (Model::TimeDecay, "10", &[7.0, 0.0], &["3.33", "6.67"]),
            // Three-way splits of amounts that do not divide by three.
            (
                Model::Linear,
                "10",
                &[3.0, 2.0, 1.0],
                &["3.34", "3.33", "3.33"],
            ),
            (
                Model::Linear,
                "0.02",
                &[3.0, 2.0, 1.0],
                &["0.01", "0.01", "0"],
            ),
            (
                Model::Linear,
                "100.01",
                &[3.0, 2.0, 1.0],
                &["33.34", "33.34", "33.33"],
            ),
            (
                Model::PositionBased,
                "10",
                &[3.0, 2.0, 1.0],
                &["4", "2", "4"],
            ),
            (
                Model::PositionBased,
                "0.01",
                &[3.0, 2.0, 1.0],
                &["0.01", "0", "0"],
            ),
            (
                Model::PositionBased,
                "1.01",
                &[3.0, 2.0, 1.0],
                &["0.41", "0.20", "0.40"],
            ),
            // Four clicks: the middle 20 % in two.
            (
                Model::PositionBased,
                "10",
                &[4.0, 3.0, 2.0, 1.0],
                &["4", "1", "1", "4"],
            ),
            (Model::FirstClick, "10", &[3.0, 2.0, 1.0], &["10", "0", "0"]),
            (Model::LastClick, "10", &[3.0, 2.0, 1.0], &["0", "0", "10"]),
            // A payout finer than a cent splits in its own last place.
            (Model::Linear, "1.000001", &[2.0, 1.0], &["0.500001", "0.5"]),
            // Zero splits into zeros.
            (Model::Linear, "0", &[2.0, 1.0], &["0", "0"]),
        ];
        for (model, payout, ages, expected) in cases {
            let clicked: Vec<Timestamp> = ages.iter().map(|d| at(*d)).collect();
            let payout = Amount::parse(payout).unwrap();
            let got = shares(*model, payout, &clicked, converted());
            assert_eq!(got, amounts(expected), "{model:?} {payout} {ages:?}");
            let sum = got
                .iter()
                .fold(Amount::ZERO, |a, b| a.checked_add(*b).unwrap());
            assert_eq!(sum, payout, "{model:?} {payout} {ages:?} adds up");
        }
    }

    #[test]
    fn clicks_at_the_window_edge_and_after_the_conversion() {
        // A click at the 90-day edge keeps a share (the smallest weight, never none), and one
        // inside the clock-skew allowance after the conversion is as young as can be.
        let clicked = [at(90.0), at(-0.003)];
        let got = shares(
            Model::TimeDecay,
            Amount::parse("100").unwrap(),
            &clicked,
            converted(),
        );
        assert_eq!(got, amounts(&["0.01", "99.99"]));
        let linear = shares(
            Model::Linear,
            Amount::parse("100").unwrap(),
            &clicked,
            converted(),
        );
        assert_eq!(linear, amounts(&["50", "50"]));
    }

    #[test]
    fn every_model_adds_up_for_many_payouts_and_click_counts() {
        for n in 1..=MAX_MODEL_CLICKS {
            let clicked: Vec<Timestamp> = (0..n).map(|i| at((n - i) as f64 * 1.7)).collect();
            for payout in [
                "0.01",
                "0.07",
                "1",
                "9.99",
                "123.456",
                "1000000000",
                "0.000001",
            ] {
                let payout = Amount::parse(payout).unwrap();
                for model in Model::ALL {
                    let got = shares(model, payout, &clicked, converted());
                    assert_eq!(got.len(), n);
                    let sum = got
                        .iter()
                        .fold(Amount::ZERO, |a, b| a.checked_add(*b).unwrap());
                    assert_eq!(sum, payout, "{model:?} {payout} over {n}");
                }
            }
        }
        assert!(shares(Model::Linear, Amount::parse("1").unwrap(), &[], converted()).is_empty());
    }
}
