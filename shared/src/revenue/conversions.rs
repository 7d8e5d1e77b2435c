//! The one path a reported conversion takes (a postback, and a late click catching up with
//! it): read the click, decide the credit, record it once. The postback function and the
//! click recorders (the redirect and the matcher's queued clicks) all go through here.

use crate::revenue::attribution::{CreditWindow, Decision, decide};
use crate::revenue::store::{ConversionWrite, RevenueStore};
use crate::revenue::{Amount, Click, Conversion, ConversionStatus, Postback};
use crate::store::StoreError;
use crate::time::Timestamp;

/// What became of a reported conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Stored, with this status.
    New(Conversion),
    /// Its key was stored before: nothing changed.
    Duplicate(Conversion),
}

impl Recorded {
    /// The status the platform is answered: the conversion's, or `duplicate`.
    pub fn status(&self) -> &'static str {
        match self {
            Self::New(conversion) => conversion.status.as_str(),
            Self::Duplicate(_) => "duplicate",
        }
    }

    /// The conversion as this report of it reads (a duplicate's own fields, not the stored).
    pub fn conversion(&self) -> &Conversion {
        match self {
            Self::New(conversion) | Self::Duplicate(conversion) => conversion,
        }
    }
}

/// Tries of a postback that keeps finding its click arrived between its read and its write:
/// the second try reads the click, so a third is never needed.
const ATTRIBUTION_TRIES: usize = 3;

/// Records the conversion `postback` reports, credited to the first click in the window when
/// its click is known: two reads (the click, the contact's first click on the offer), one write.
pub async fn record_postback(
    store: &dyn RevenueStore,
    postback: &Postback,
    now: Timestamp,
) -> Result<Recorded, StoreError> {
    let reported = Conversion {
        conversion_key: postback.conversion_key(),
        network: postback.network,
        conversion_id: postback.reported_conversion_id(),
        click_id: postback.click_id.clone(),
        event: postback.event.clone(),
        payout: postback.payout.unwrap_or(Amount::ZERO),
        currency: postback.currency,
        converted_at: postback.converted_at,
        received_at: now,
        status: ConversionStatus::UnknownClick,
        instance_id: None,
        contact_id: None,
        credited: None,
    };
    for _ in 0..ATTRIBUTION_TRIES {
        let conversion = match store.load_click(&postback.click_id).await? {
            Some(click) => attribute(store, reported.clone(), &click).await?,
            None => reported.clone(),
        };
        match store.record_conversion(&conversion).await? {
            ConversionWrite::Recorded => return Ok(Recorded::New(conversion)),
            ConversionWrite::Duplicate(_) => return Ok(Recorded::Duplicate(conversion)),
            ConversionWrite::ClickArrived => continue,
        }
    }
    Err(StoreError::Unavailable(format!(
        "the click of conversion {} keeps arriving",
        reported.conversion_key
    )))
}

/// `conversion` credited as its click `click` decides: to the contact's first click on the
/// offer in the window, or not at all (outside the window, before the click).
async fn attribute(
    store: &dyn RevenueStore,
    mut conversion: Conversion,
    click: &Click,
) -> Result<Conversion, StoreError> {
    conversion.instance_id = Some(click.instance_id.clone());
    conversion.contact_id = Some(click.contact_id.clone());
    let window = CreditWindow::new(conversion.converted_at, click);
    let first = if window.contains(click.clicked_at) {
        store
            .first_click(
                &click.instance_id,
                &click.contact_id,
                &click.offer_id,
                &window,
            )
            .await?
    } else {
        None
    };
    (conversion.status, conversion.credited) = match decide(&window, click, first.as_ref()) {
        Decision::Attributed(credit) => (ConversionStatus::Attributed, Some(credit)),
        Decision::OutsideWindow => (ConversionStatus::OutsideWindow, None),
        Decision::BeforeClick => (ConversionStatus::BeforeClick, None),
    };
    Ok(conversion)
}

/// Records a click (once per click id), then re-attributes the `unknown_click` conversions
/// that arrived before it, each once, with its counters in the same write; answers how many.
/// An error leaves the click to be recorded again (from the queue), which finishes the rest.
pub async fn record_click(store: &dyn RevenueStore, click: &Click) -> Result<usize, StoreError> {
    store.record_click(click).await?;
    let mut reattributed = 0;
    for waiting in store.waiting_conversions(&click.click_id).await? {
        if waiting.status != ConversionStatus::UnknownClick {
            continue;
        }
        let conversion = attribute(store, waiting, click).await?;
        if store.reattribute_conversion(&conversion).await? {
            tracing::info!(
                network = conversion.network.as_str(),
                status = conversion.status.as_str(),
                "conversion re-attributed to its late click"
            );
            crate::metrics::count(
                "ConversionsReattributed",
                &[("Status", conversion.status.as_str())],
                1,
            );
            reattributed += 1;
        }
    }
    Ok(reattributed)
}
