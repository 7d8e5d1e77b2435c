//! The one path a reported conversion takes (a postback, and a late click catching up with
//! it): read the click, decide the credit, record it once. The postback function and the
//! click recorders (the redirect and the matcher's queued clicks) all go through here.

use crate::ids::{ContactId, InstanceId, OfferId};
use crate::revenue::attribution::{CreditWindow, Decision, decide};
use crate::revenue::postback::Converter;
use crate::revenue::store::{ConversionWrite, RevenueStore};
use crate::revenue::{Amount, Click, Conversion, ConversionStatus, Credit, Offer, Postback};
use crate::store::StoreError;
use crate::time::Timestamp;
use serde::Serialize;

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

    /// What the platform reads back (a postback's answer, an imported row's): its own
    /// conversion id, what became of it and, when credited, how. Nothing stored about the
    /// click, its send or its contact: a platform (or whoever holds a leaked token) has no use
    /// for them. A duplicate says only that: how the first delivery was credited is the
    /// reports' to say.
    pub fn answer(&self) -> Answer {
        let status = self.status();
        let conversion = self.conversion();
        Answer {
            status,
            conversion_id: conversion.conversion_id.clone(),
            attribution: conversion
                .credited
                .as_ref()
                .filter(|_| status == "attributed")
                .map(|credit| credit.attribution.as_str()),
        }
    }
}

/// A recorded conversion's answer: `{"status", "conversion_id", "attribution"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Answer {
    /// `attributed`, `duplicate`, `unknown_click`, `outside_window` or `before_click`.
    pub status: &'static str,
    /// The platform's own conversion id (or the one made for it).
    pub conversion_id: String,
    /// `click_through` or `view_through`, when credited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribution: Option<&'static str>,
}

/// Tries of a postback that keeps finding its click arrived between its read and its write:
/// the second try reads the click, so a third is never needed.
const ATTRIBUTION_TRIES: usize = 3;

/// Records the conversion `postback` reports, credited to the first click in the window when
/// its click is known: two reads (the click, the contact's clicks on the offer in the window),
/// one write that also moves the model comparison's counters.
/// One naming the contact instead is credited to the contact's first click on the offer in
/// the offer's click window: the offer, that first click, one write. Failing a click in the
/// window, a send carrying the offer in its view window earns it view-through (one read more).
pub async fn record_postback(
    store: &dyn RevenueStore,
    postback: &Postback,
    now: Timestamp,
) -> Result<Recorded, StoreError> {
    let named = match &postback.converter {
        Converter::Contact {
            instance_id,
            contact_id,
            offer_id,
        } => Some((instance_id, contact_id, offer_id)),
        Converter::Click(_) => None,
    };
    let reported = Conversion {
        conversion_key: postback.conversion_key(),
        network: postback.network,
        conversion_id: postback.reported_conversion_id(),
        click_id: postback.click_id().unwrap_or_default().to_owned(),
        offer_id: named.map(|(_, _, offer_id)| offer_id.clone()),
        event: postback.event.clone(),
        payout: postback.payout.unwrap_or(Amount::ZERO),
        currency: postback.currency,
        converted_at: postback.converted_at,
        received_at: now,
        status: ConversionStatus::UnknownClick,
        instance_id: named.map(|(instance_id, _, _)| instance_id.clone()),
        contact_id: named.map(|(_, contact_id, _)| contact_id.clone()),
        credited: None,
        window_clicks: Vec::new(),
    };
    for _ in 0..ATTRIBUTION_TRIES {
        let conversion = match &postback.converter {
            Converter::Contact {
                instance_id,
                contact_id,
                offer_id,
            } => {
                attribute_to_contact(store, reported.clone(), instance_id, contact_id, offer_id)
                    .await?
            }
            Converter::Click(click_id) => match store.load_click(click_id).await? {
                Some(click) => attribute(store, reported.clone(), &click).await?,
                None => reported.clone(),
            },
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
/// offer in the window, or not at all (outside the window, before the click); outside the
/// window, view-through when the offer's view window holds a send.
async fn attribute(
    store: &dyn RevenueStore,
    mut conversion: Conversion,
    click: &Click,
) -> Result<Conversion, StoreError> {
    conversion.instance_id = Some(click.instance_id.clone());
    conversion.contact_id = Some(click.contact_id.clone());
    let window = CreditWindow::new(conversion.converted_at, click);
    let in_window = if window.contains(click.clicked_at) {
        store
            .window_clicks(
                &click.instance_id,
                &click.contact_id,
                &click.offer_id,
                &window,
            )
            .await?
    } else {
        Vec::new()
    };
    (conversion.status, conversion.credited) = match decide(&window, click, in_window.first()) {
        Decision::Attributed(credit) => {
            conversion.window_clicks = in_window.iter().map(Credit::from).collect();
            (ConversionStatus::Attributed, Some(credit))
        }
        Decision::OutsideWindow => {
            let offer = store.load_offer(&click.offer_id).await?;
            match view_through(
                store,
                &conversion,
                &click.instance_id,
                &click.contact_id,
                offer,
            )
            .await?
            {
                Some(credit) => (ConversionStatus::Attributed, Some(credit)),
                None => (ConversionStatus::OutsideWindow, None),
            }
        }
        Decision::BeforeClick => (ConversionStatus::BeforeClick, None),
    };
    Ok(conversion)
}

/// `conversion`, which names its contact and offer, credited to the contact's first click on
/// the offer inside the offer's click window, or view-through, or `unknown_click`.
async fn attribute_to_contact(
    store: &dyn RevenueStore,
    mut conversion: Conversion,
    instance_id: &InstanceId,
    contact_id: &ContactId,
    offer_id: &OfferId,
) -> Result<Conversion, StoreError> {
    let Some(offer) = store.load_offer(offer_id).await? else {
        return Ok(conversion);
    };
    let window = CreditWindow::days_before(conversion.converted_at, offer.click_window_days);
    let in_window = store
        .window_clicks(instance_id, contact_id, offer_id, &window)
        .await?;
    let credit = match in_window.first() {
        Some(click) => {
            conversion.window_clicks = in_window.iter().map(Credit::from).collect();
            Some(Credit::from(click))
        }
        None => view_through(store, &conversion, instance_id, contact_id, Some(offer)).await?,
    };
    if credit.is_some() {
        conversion.status = ConversionStatus::Attributed;
        conversion.credited = credit;
    }
    Ok(conversion)
}

/// The view-through credit of a conversion no click in the window earns: the contact's
/// earliest send carrying the offer inside its view window, when it has one.
async fn view_through(
    store: &dyn RevenueStore,
    conversion: &Conversion,
    instance_id: &InstanceId,
    contact_id: &ContactId,
    offer: Option<Offer>,
) -> Result<Option<Credit>, StoreError> {
    let Some(offer) = offer.filter(|offer| offer.view_window_days > 0) else {
        return Ok(None);
    };
    let window = CreditWindow::days_before(conversion.converted_at, offer.view_window_days);
    let send = store
        .first_send(instance_id, contact_id, &offer.offer_id, &window)
        .await?;
    Ok(send.as_ref().map(Credit::view_through))
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
