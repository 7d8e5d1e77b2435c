//! Why a conversion was credited as it was: the clicks the rule looked at, the window it used
//! and the outcome in words. The troubleshooting checklist, answered from what is stored: the
//! conversion by its key, its click, its offer and its contact's clicks (key reads only).

use crate::revenue::attribution::{CLOCK_SKEW_SECONDS, CreditWindow};
use crate::revenue::postback::{Network, conversion_key_of};
use crate::revenue::store::RevenueStore;
use crate::revenue::{Attribution, Click, Conversion, ConversionStatus};
use crate::store::StoreError;
use crate::time::Timestamp;
use serde::Serialize;

/// One click the rule considered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClickConsidered {
    /// The click.
    pub click_id: String,
    /// When it happened.
    pub clicked_at: Timestamp,
    /// The send whose link it was.
    pub send_id: String,
    /// The message of that send.
    pub message_id: String,
    /// Whether it falls inside the window.
    pub inside_window: bool,
    /// Whether it earned the conversion.
    pub credited: bool,
    /// Why it did or did not.
    pub why: String,
}

/// The window the rule used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WindowUsed {
    /// Its length in days.
    pub days: u32,
    /// The earliest click time credited.
    pub from: Timestamp,
    /// The latest (the conversion plus the clock-skew allowance).
    pub to: Timestamp,
}

/// A conversion explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The conversion as stored.
    pub conversion: Conversion,
    /// The click window used, when there was one (the click's, or the offer's for a
    /// conversion naming its contact).
    pub window: Option<WindowUsed>,
    /// The contact's clicks on the conversion's offer, in time order.
    pub clicks: Vec<ClickConsidered>,
    /// What became of it, in words.
    pub outcome: String,
}

/// Whole days from `earlier` to `later`, rounded up (a click 90 days and an hour before is 91).
fn days_between(earlier: Timestamp, later: Timestamp) -> i64 {
    (later.unix_seconds() - earlier.unix_seconds() + 86_399).div_euclid(86_400)
}

/// The explanation of `network`'s conversion `conversion_id`; `None` when none is stored.
pub async fn explain(
    store: &dyn RevenueStore,
    network: Network,
    conversion_id: &str,
) -> Result<Option<Explanation>, StoreError> {
    let Some(conversion) = store
        .load_conversion(&conversion_key_of(network, conversion_id))
        .await?
    else {
        return Ok(None);
    };
    let click = match conversion.click_id.as_str() {
        "" => None,
        id => store.load_click(id).await?,
    };
    let offer_id = click
        .as_ref()
        .map(|click| click.offer_id.clone())
        .or_else(|| conversion.offer_id.clone())
        .or_else(|| conversion.credited.as_ref().map(|c| c.offer_id.clone()));
    let window = match (&click, &offer_id) {
        (Some(click), _) => Some((
            click.click_window_days,
            CreditWindow::new(conversion.converted_at, click),
        )),
        (None, Some(offer_id)) => store.load_offer(offer_id).await?.map(|offer| {
            (
                offer.click_window_days,
                CreditWindow::days_before(conversion.converted_at, offer.click_window_days),
            )
        }),
        (None, None) => None,
    };
    let mut clicks: Vec<Click> = match (&conversion.instance_id, &conversion.contact_id) {
        (Some(instance_id), Some(contact_id)) => {
            store.contact_journey(instance_id, contact_id).await?.clicks
        }
        _ => Vec::new(),
    };
    clicks.retain(|c| Some(&c.offer_id) == offer_id.as_ref());
    let credited_click = conversion
        .credited
        .as_ref()
        .filter(|credit| credit.attribution == Attribution::ClickThrough)
        .map(|credit| credit.click_id.as_str());
    let considered: Vec<ClickConsidered> = clicks
        .iter()
        .map(|c| {
            let inside = window.is_some_and(|(_, w)| w.contains(c.clicked_at));
            let credited = credited_click == Some(c.click_id.as_str());
            let why = match window {
                _ if credited => "credited: the first click inside the window".to_owned(),
                Some((days, w)) if c.clicked_at < w.from => format!(
                    "before the window: {} days before the conversion, window {days} days",
                    days_between(c.clicked_at, conversion.converted_at)
                ),
                Some((_, w)) if c.clicked_at > w.to => format!(
                    "after the conversion (more than {} minutes)",
                    CLOCK_SKEW_SECONDS / 60
                ),
                Some(_) if conversion.credited.is_some() => {
                    "inside the window, but not the first".to_owned()
                }
                Some(_) => "inside the window; the conversion was not credited".to_owned(),
                None => "no window: the offer is gone".to_owned(),
            };
            ClickConsidered {
                click_id: c.click_id.clone(),
                clicked_at: c.clicked_at,
                send_id: c.send_id.clone(),
                message_id: c.message_id.clone(),
                inside_window: inside,
                credited,
                why,
            }
        })
        .collect();
    let inside = considered.iter().filter(|c| c.inside_window).count();
    let outcome = outcome(&conversion, click.as_ref(), window, inside);
    Ok(Some(Explanation {
        conversion,
        window: window.map(|(days, w)| WindowUsed {
            days,
            from: w.from,
            to: w.to,
        }),
        clicks: considered,
        outcome,
    }))
}

/// The outcome in words.
fn outcome(
    conversion: &Conversion,
    click: Option<&Click>,
    window: Option<(u32, CreditWindow)>,
    inside: usize,
) -> String {
    let days = window.map(|(days, _)| days).unwrap_or_default();
    match (conversion.status, &conversion.credited) {
        (ConversionStatus::Attributed, Some(credit))
            if credit.attribution == Attribution::ViewThrough =>
        {
            format!(
                "attributed view-through to the send of message {} at {}: no click on the offer in the {days}-day click window",
                credit.message_id, credit.clicked_at
            )
        }
        (ConversionStatus::Attributed, _) => {
            format!("attributed to the first click of {inside} in the {days}-day window")
        }
        (ConversionStatus::UnknownClick, _) if conversion.click_id.is_empty() => format!(
            "no click or send of the contact on the offer in the window ({days}-day click window)"
        ),
        (ConversionStatus::UnknownClick, _) => "unknown click id".to_owned(),
        (ConversionStatus::OutsideWindow, _) => match click {
            Some(click) => format!(
                "click {} days before the conversion, window {days} days",
                days_between(click.clicked_at, conversion.converted_at)
            ),
            None => format!("the click was outside its {days}-day window"),
        },
        (ConversionStatus::BeforeClick, _) => format!(
            "the click came after the conversion, more than {} minutes later: it cannot have caused it",
            CLOCK_SKEW_SECONDS / 60
        ),
    }
}
