//! First-click attribution: a conversion's credit goes to the contact's earliest click on the
//! same offer inside the offer's window before the conversion.

use crate::revenue::records::{Click, Credit};
use crate::time::Timestamp;

/// How far a platform's clock may put a conversion before the click that led to it: clocks
/// differ by seconds, a click minutes after its conversion did not cause it.
pub const CLOCK_SKEW_SECONDS: i64 = 5 * 60;

/// The span in which a click can earn a conversion at `converted_at`: from `window_seconds`
/// before it (inclusive: a click exactly at the limit counts) to the conversion itself plus the
/// clock-skew allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditWindow {
    /// The earliest click time credited.
    pub from: Timestamp,
    /// The latest click time credited.
    pub to: Timestamp,
}

impl CreditWindow {
    /// The window of the postback's click (its offer's, as it was at that click).
    pub fn new(converted_at: Timestamp, postback_click: &Click) -> Self {
        Self::days_before(converted_at, postback_click.click_window_days)
    }

    /// The window of `days` days up to a conversion at `converted_at` (an offer's click window
    /// when no click names it, or its view window).
    pub fn days_before(converted_at: Timestamp, days: u32) -> Self {
        Self {
            from: converted_at.plus_seconds(-i64::from(days) * 86_400),
            to: converted_at.plus_seconds(CLOCK_SKEW_SECONDS),
        }
    }

    /// Whether a click at `at` falls in the window, both ends included.
    pub fn contains(&self, at: Timestamp) -> bool {
        self.from <= at && at <= self.to
    }
}

/// Whether a postback's conversion is credited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Credited to the click's contact and acquisition.
    Attributed(Credit),
    /// The postback's click is older than the window: nothing is credited.
    OutsideWindow,
    /// The postback's click came after the conversion, past the clock-skew allowance: nothing
    /// is credited.
    BeforeClick,
}

/// Decides the credit, given the postback's click and the contact's earliest click on that
/// offer inside the window (which the store found).
pub fn decide(
    window: &CreditWindow,
    postback_click: &Click,
    first_in_window: Option<&Click>,
) -> Decision {
    if postback_click.clicked_at > window.to {
        return Decision::BeforeClick;
    }
    if !window.contains(postback_click.clicked_at) {
        return Decision::OutsideWindow;
    }
    let first = first_in_window
        .filter(|first| {
            window.contains(first.clicked_at) && first.clicked_at <= postback_click.clicked_at
        })
        .unwrap_or(postback_click);
    Decision::Attributed(Credit::from(first))
}
