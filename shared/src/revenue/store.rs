//! The store behind tracked links and postbacks, shaped after its access patterns: a send by
//! its code, a click by its id, a contact's earliest click on an offer in a time span, a
//! conversion claimed once by its dedupe key, a contact's journey, and report counters by
//! grouping and day. Every write that counts moves the report counters in the same atomic step.

use crate::ids::{ContactId, InstanceId, OfferId};
use crate::revenue::attribution::CreditWindow;
use crate::revenue::{Click, Conversion, Dimension, Journey, Offer, ReportCounter, SendRecord};
use crate::store::StoreError;
use async_trait::async_trait;

/// What storing one send did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendWrite {
    /// Stored as given.
    Created,
    /// A send with this code (the same instance and message id) was stored before: this one.
    Existing(Box<SendRecord>),
}

/// What recording a conversion did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConversionWrite {
    /// Stored, with its report counters.
    Recorded,
    /// The dedupe key was claimed before: the conversion stored then. Nothing was written.
    Duplicate(Box<Conversion>),
    /// An `unknown_click` conversion whose click was recorded since it was attributed: nothing
    /// was written; attribute it again. Checked in the write itself, so a click recorded at the
    /// same moment either sees the conversion waiting for it or makes this answer.
    ClickArrived,
}

/// Most `unknown_click` conversions that wait for one click id; later ones are stored, never
/// re-attributed (a real click has a handful of conversions; only a caller making ids up has
/// more).
pub const MAX_WAITING_PER_CLICK: usize = 100;

/// Most sends, clicks and conversions of one contact a journey returns, each.
pub const MAX_JOURNEY_ITEMS: usize = 1_000;

/// Offers, sends, clicks and conversions, with the report counters they move.
#[async_trait]
pub trait RevenueStore: Send + Sync + 'static {
    /// Stores a new offer; `false` if its id is taken (nothing written).
    async fn create_offer(&self, offer: &Offer) -> Result<bool, StoreError>;

    /// Replaces an existing offer; `false` if there is none (nothing written).
    async fn replace_offer(&self, offer: &Offer) -> Result<bool, StoreError>;

    /// One offer, if it exists.
    async fn load_offer(&self, offer_id: &OfferId) -> Result<Option<Offer>, StoreError>;

    /// Every offer, by id.
    async fn list_offers(&self) -> Result<Vec<Offer>, StoreError>;

    /// Stores each send with its report counters, unless its code exists; one answer per send,
    /// in order. A fault may leave the first ones written: calling again with the same sends
    /// answers those `Existing` and writes the rest.
    async fn create_sends(&self, sends: &[SendRecord]) -> Result<Vec<SendWrite>, StoreError>;

    /// The send a tracked-link code stands for, which the redirect needs.
    async fn load_send(&self, code: &str) -> Result<Option<SendRecord>, StoreError>;

    /// Stores a click with its report counters; a click already stored under its id is left
    /// as it is (a retried record, from the queue, counts once).
    async fn record_click(&self, click: &Click) -> Result<(), StoreError>;

    /// One click, which a postback needs to be credited.
    async fn load_click(&self, click_id: &str) -> Result<Option<Click>, StoreError>;

    /// The contact's clicks on the offer inside `window` (both ends inclusive), earliest
    /// first, at most [`crate::revenue::models::MAX_MODEL_CLICKS`]: the first earns the
    /// conversion, all of them share it in the model comparison. One key-range read.
    async fn window_clicks(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
        offer_id: &OfferId,
        window: &CreditWindow,
    ) -> Result<Vec<Click>, StoreError>;

    /// The contact's earliest send carrying the offer inside `window` (both ends inclusive),
    /// for view-through credit: read from the contact's sends in the window, which a view
    /// window of at most 30 days bounds.
    async fn first_send(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
        offer_id: &OfferId,
        window: &CreditWindow,
    ) -> Result<Option<SendRecord>, StoreError>;

    /// Claims the conversion's key and stores it with its report counters, or answers the one
    /// stored under that key before, writing nothing. An `unknown_click` conversion is stored
    /// only while its click id names no click, and then waits for that click (up to
    /// [`MAX_WAITING_PER_CLICK`] per click id).
    async fn record_conversion(
        &self,
        conversion: &Conversion,
    ) -> Result<ConversionWrite, StoreError>;

    /// The conversion stored under its dedupe key.
    async fn load_conversion(&self, conversion_key: &str)
    -> Result<Option<Conversion>, StoreError>;

    /// The `unknown_click` conversions waiting for `click_id`, read by key.
    async fn waiting_conversions(&self, click_id: &str) -> Result<Vec<Conversion>, StoreError>;

    /// Replaces the stored conversion of `conversion`'s key with it, its report counters and
    /// its contact index, if the stored one is still `unknown_click` (and no longer waits);
    /// `false`, nothing written: it was re-attributed before.
    async fn reattribute_conversion(&self, conversion: &Conversion) -> Result<bool, StoreError>;

    /// The contact's sends, clicks and conversions (up to [`MAX_JOURNEY_ITEMS`] of each, the
    /// earliest), each in time order.
    async fn contact_journey(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
    ) -> Result<Journey, StoreError>;

    /// Every counter row of `dimension` for the days `first_day..=last_day`, in no order (a
    /// row may come in parts that add up).
    async fn load_report_counters(
        &self,
        dimension: Dimension,
        first_day: &str,
        last_day: &str,
    ) -> Result<Vec<ReportCounter>, StoreError>;

    /// [`Self::load_report_counters`] of one instance's own report.
    async fn load_instance_report_counters(
        &self,
        dimension: Dimension,
        instance_id: &InstanceId,
        first_day: &str,
        last_day: &str,
    ) -> Result<Vec<ReportCounter>, StoreError>;
}

/// The sort key of a click in its contact's index: by offer, then time, then id, because
/// timestamps have one fixed textual form and ids hold no `#`.
pub fn click_position(click: &Click) -> String {
    format!(
        "{}#{}#{}",
        click.offer_id.as_str(),
        click.clicked_at,
        click.click_id
    )
}

/// The sort key of a send in its contact's index: by time, then code.
pub fn send_position(send: &SendRecord) -> String {
    format!("{}#{}", send.sent_at, send.code)
}

/// The sort key of a conversion in its contact's index: by time, then conversion key.
pub fn conversion_position(conversion: &Conversion) -> String {
    format!("{}#{}", conversion.converted_at, conversion.conversion_key)
}

/// The positions bounding the sends inside `window` in their contact's index: `from#` sorts
/// before every send at `from`, `to#~` after every send at `to` (codes are alphanumeric).
pub fn send_position_range(window: &CreditWindow) -> (String, String) {
    (format!("{}#", window.from), format!("{}#~", window.to))
}

/// The positions bounding an offer's clicks inside `window`: `from#` sorts before every click
/// at `from`, `to#~` after every click at `to` (ids are alphanumeric).
pub fn click_position_range(offer_id: &OfferId, window: &CreditWindow) -> (String, String) {
    (
        format!("{}#{}#", offer_id.as_str(), window.from),
        format!("{}#{}#~", offer_id.as_str(), window.to),
    )
}

/// Where a store keeps the keys of the conversions waiting for `click_id`, beside the
/// conversions themselves: conversion keys start with a network's name, never `waiting#`.
pub fn waiting_key(click_id: &str) -> String {
    format!("waiting#{click_id}")
}

/// The key that groups one contact's records in the journey indexes.
pub fn contact_key(instance_id: &InstanceId, contact_id: &ContactId) -> String {
    format!("{}#{}", instance_id.as_str(), contact_id.as_str())
}
