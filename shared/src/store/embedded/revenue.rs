//! The revenue store in the embedded store: offers, sends, clicks and conversions with their
//! contact indexes, one write transaction per recorded send batch, click or conversion (with
//! its report counters).

use crate::ids::{ContactId, InstanceId, OfferId};
use crate::revenue::attribution::CreditWindow;
use crate::revenue::models::MAX_MODEL_CLICKS;
use crate::revenue::report::{self, ReportBump};
use crate::revenue::store::{
    ConversionWrite, MAX_JOURNEY_ITEMS, MAX_WAITING_PER_CLICK, RevenueStore, SendWrite,
    click_position, click_position_range, contact_key, conversion_position, send_position,
    send_position_range,
};
use crate::revenue::{
    Click, Conversion, ConversionStatus, Currency, Dimension, Journey, Offer, ReportCounter,
    SendRecord, Tally,
};
use crate::store::StoreError;
use crate::store::embedded::{
    CLICKS, CLICKS_BY_CONTACT, CONVERSIONS, CONVERSIONS_BY_CONTACT, EmbeddedStore, OFFERS, REPORT,
    SENDS, SENDS_BY_CONTACT, WAITING_FOR_CLICK, decode, encode, put_record, unavailable,
};
use async_trait::async_trait;
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;

/// Adds each bump to its row in the report of every instance and in its instance's own.
fn add_to_report(txn: &WriteTransaction, bumps: &[ReportBump]) -> Result<(), StoreError> {
    let mut table = txn.open_table(REPORT).map_err(unavailable)?;
    for bump in bumps {
        let scopes = std::iter::once(None).chain(bump.instance.as_ref().map(Some));
        for scope in scopes {
            let scope = report::scope_name(bump.dimension, scope);
            let key = (
                scope.as_str(),
                bump.day.as_str(),
                bump.key.as_str(),
                bump.currency.as_str(),
            );
            let mut tally: Tally = match table.get(key).map_err(unavailable)? {
                Some(bytes) => decode(bytes.value())?,
                None => Tally::default(),
            };
            tally.add(&bump.tally);
            table
                .insert(key, encode(&tally)?.as_slice())
                .map_err(unavailable)?;
        }
    }
    Ok(())
}

/// Files a stored conversion under its contact, when known, and adds it to the report.
fn index_and_count(txn: &WriteTransaction, conversion: &Conversion) -> Result<(), StoreError> {
    if let (Some(instance), Some(contact)) = (&conversion.instance_id, &conversion.contact_id) {
        let mut by_contact = txn
            .open_table(CONVERSIONS_BY_CONTACT)
            .map_err(unavailable)?;
        let position = conversion_position(conversion);
        by_contact
            .insert(
                (contact_key(instance, contact).as_str(), position.as_str()),
                conversion.conversion_key.as_str(),
            )
            .map_err(unavailable)?;
    }
    add_to_report(txn, &report::conversion_bumps(conversion))
}

/// Every indexed record of one contact, in index order, up to the journey limit.
fn indexed<T: DeserializeOwned>(
    txn: &redb::ReadTransaction,
    index: TableDefinition<(&str, &str), &str>,
    records: TableDefinition<&str, &[u8]>,
    contact: &str,
) -> Result<Vec<T>, StoreError> {
    let index = txn.open_table(index).map_err(unavailable)?;
    let records = txn.open_table(records).map_err(unavailable)?;
    let mut found = Vec::new();
    for entry in index.range((contact, "")..).map_err(unavailable)? {
        let (key, id) = entry.map_err(unavailable)?;
        if key.value().0 != contact || found.len() == MAX_JOURNEY_ITEMS {
            break;
        }
        let record = records
            .get(id.value())
            .map_err(unavailable)?
            .ok_or_else(|| StoreError::Corrupt("an index names a missing record".to_owned()))?;
        found.push(decode(record.value())?);
    }
    Ok(found)
}

impl EmbeddedStore {
    /// Writes `offer` if its id is absent (`must_exist == false`) or present (`true`).
    async fn put_offer(&self, offer: &Offer, must_exist: bool) -> Result<bool, StoreError> {
        let offer = offer.clone();
        self.write(move |txn| {
            let written = put_record(txn, OFFERS, offer.offer_id.as_str(), &offer, must_exist)?;
            Ok((written, written))
        })
        .await
    }
}

#[async_trait]
impl RevenueStore for EmbeddedStore {
    async fn create_offer(&self, offer: &Offer) -> Result<bool, StoreError> {
        self.put_offer(offer, false).await
    }

    async fn replace_offer(&self, offer: &Offer) -> Result<bool, StoreError> {
        self.put_offer(offer, true).await
    }

    async fn load_offer(&self, offer_id: &OfferId) -> Result<Option<Offer>, StoreError> {
        self.load(OFFERS, offer_id.as_str())
    }

    async fn list_offers(&self) -> Result<Vec<Offer>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let offers = txn.open_table(OFFERS).map_err(unavailable)?;
        let mut listed = Vec::new();
        for entry in offers.iter().map_err(unavailable)? {
            let (_, bytes) = entry.map_err(unavailable)?;
            listed.push(decode(bytes.value())?);
        }
        Ok(listed)
    }

    /// One transaction for the whole batch.
    async fn create_sends(&self, sends: &[SendRecord]) -> Result<Vec<SendWrite>, StoreError> {
        let sends = sends.to_vec();
        self.write(move |txn| {
            let mut stored = txn.open_table(SENDS).map_err(unavailable)?;
            let mut by_contact = txn.open_table(SENDS_BY_CONTACT).map_err(unavailable)?;
            let mut outcomes = Vec::with_capacity(sends.len());
            for send in &sends {
                if let Some(existing) = stored.get(send.code.as_str()).map_err(unavailable)? {
                    outcomes.push(SendWrite::Existing(Box::new(decode(existing.value())?)));
                    continue;
                }
                stored
                    .insert(send.code.as_str(), encode(send)?.as_slice())
                    .map_err(unavailable)?;
                let position = send_position(send);
                by_contact
                    .insert(
                        (
                            contact_key(&send.instance_id, &send.contact_id).as_str(),
                            position.as_str(),
                        ),
                        send.code.as_str(),
                    )
                    .map_err(unavailable)?;
                add_to_report(txn, &report::send_bumps(send))?;
                outcomes.push(SendWrite::Created);
            }
            let any = outcomes.contains(&SendWrite::Created);
            Ok((outcomes, any))
        })
        .await
    }

    async fn load_send(&self, code: &str) -> Result<Option<SendRecord>, StoreError> {
        self.load(SENDS, code)
    }

    async fn record_click(&self, click: &Click) -> Result<(), StoreError> {
        let click = click.clone();
        self.write(move |txn| {
            if !put_record(txn, CLICKS, click.click_id.as_str(), &click, false)? {
                return Ok(((), false));
            }
            let mut by_contact = txn.open_table(CLICKS_BY_CONTACT).map_err(unavailable)?;
            by_contact
                .insert(
                    (
                        contact_key(&click.instance_id, &click.contact_id).as_str(),
                        click_position(&click).as_str(),
                    ),
                    click.click_id.as_str(),
                )
                .map_err(unavailable)?;
            add_to_report(txn, &report::click_bumps(&click))?;
            Ok(((), true))
        })
        .await
    }

    async fn load_click(&self, click_id: &str) -> Result<Option<Click>, StoreError> {
        self.load(CLICKS, click_id)
    }

    async fn window_clicks(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
        offer_id: &OfferId,
        window: &CreditWindow,
    ) -> Result<Vec<Click>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let index = txn.open_table(CLICKS_BY_CONTACT).map_err(unavailable)?;
        let clicks = txn.open_table(CLICKS).map_err(unavailable)?;
        let contact = contact_key(instance_id, contact_id);
        let (low, high) = click_position_range(offer_id, window);
        let mut found = Vec::new();
        for entry in index
            .range((contact.as_str(), low.as_str())..=(contact.as_str(), high.as_str()))
            .map_err(unavailable)?
            .take(MAX_MODEL_CLICKS)
        {
            let (_, click_id) = entry.map_err(unavailable)?;
            if let Some(bytes) = clicks.get(click_id.value()).map_err(unavailable)? {
                found.push(decode(bytes.value())?);
            }
        }
        Ok(found)
    }

    async fn first_send(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
        offer_id: &OfferId,
        window: &CreditWindow,
    ) -> Result<Option<SendRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let index = txn.open_table(SENDS_BY_CONTACT).map_err(unavailable)?;
        let sends = txn.open_table(SENDS).map_err(unavailable)?;
        let contact = contact_key(instance_id, contact_id);
        let (low, high) = send_position_range(window);
        for entry in index
            .range((contact.as_str(), low.as_str())..=(contact.as_str(), high.as_str()))
            .map_err(unavailable)?
        {
            let (_, code) = entry.map_err(unavailable)?;
            let Some(bytes) = sends.get(code.value()).map_err(unavailable)? else {
                continue;
            };
            let send: SendRecord = decode(bytes.value())?;
            if &send.offer_id == offer_id {
                return Ok(Some(send));
            }
        }
        Ok(None)
    }

    async fn record_conversion(
        &self,
        conversion: &Conversion,
    ) -> Result<ConversionWrite, StoreError> {
        let conversion = conversion.clone();
        self.write(move |txn| {
            let mut conversions = txn.open_table(CONVERSIONS).map_err(unavailable)?;
            let key = conversion.conversion_key.as_str();
            if let Some(existing) = conversions.get(key).map_err(unavailable)? {
                return Ok((
                    ConversionWrite::Duplicate(Box::new(decode(existing.value())?)),
                    false,
                ));
            }
            if let Some(click) = conversion.waits_for() {
                let clicks = txn.open_table(CLICKS).map_err(unavailable)?;
                if clicks.get(click).map_err(unavailable)?.is_some() {
                    return Ok((ConversionWrite::ClickArrived, false));
                }
                let mut waiting = txn.open_table(WAITING_FOR_CLICK).map_err(unavailable)?;
                let already = waiting
                    .range((click, "")..)
                    .map_err(unavailable)?
                    .take(MAX_WAITING_PER_CLICK)
                    .map_while(|entry| entry.ok().filter(|(k, _)| k.value().0 == click))
                    .count();
                if already < MAX_WAITING_PER_CLICK {
                    waiting.insert((click, key), ()).map_err(unavailable)?;
                }
            }
            conversions
                .insert(key, encode(&conversion)?.as_slice())
                .map_err(unavailable)?;
            drop(conversions);
            index_and_count(txn, &conversion)?;
            Ok((ConversionWrite::Recorded, true))
        })
        .await
    }

    async fn load_conversion(
        &self,
        conversion_key: &str,
    ) -> Result<Option<Conversion>, StoreError> {
        self.load(CONVERSIONS, conversion_key)
    }

    async fn waiting_conversions(&self, click_id: &str) -> Result<Vec<Conversion>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let waiting = txn.open_table(WAITING_FOR_CLICK).map_err(unavailable)?;
        let conversions = txn.open_table(CONVERSIONS).map_err(unavailable)?;
        let mut found = Vec::new();
        for entry in waiting.range((click_id, "")..).map_err(unavailable)? {
            let (key, _) = entry.map_err(unavailable)?;
            let (click, conversion_key) = key.value();
            if click != click_id {
                break;
            }
            if let Some(bytes) = conversions.get(conversion_key).map_err(unavailable)? {
                found.push(decode(bytes.value())?);
            }
        }
        Ok(found)
    }

    async fn reattribute_conversion(&self, conversion: &Conversion) -> Result<bool, StoreError> {
        let conversion = conversion.clone();
        self.write(move |txn| {
            let mut conversions = txn.open_table(CONVERSIONS).map_err(unavailable)?;
            let key = conversion.conversion_key.as_str();
            let stored: Option<Conversion> = conversions
                .get(key)
                .map_err(unavailable)?
                .map(|bytes| decode(bytes.value()))
                .transpose()?;
            let Some(stored) = stored.filter(|c| c.status == ConversionStatus::UnknownClick) else {
                return Ok((false, false));
            };
            conversions
                .insert(key, encode(&conversion)?.as_slice())
                .map_err(unavailable)?;
            drop(conversions);
            let mut waiting = txn.open_table(WAITING_FOR_CLICK).map_err(unavailable)?;
            waiting
                .remove((stored.click_id.as_str(), key))
                .map_err(unavailable)?;
            drop(waiting);
            index_and_count(txn, &conversion)?;
            Ok((true, true))
        })
        .await
    }

    async fn contact_journey(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
    ) -> Result<Journey, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let contact = contact_key(instance_id, contact_id);
        let mut clicks: Vec<Click> = indexed(&txn, CLICKS_BY_CONTACT, CLICKS, &contact)?;
        // The index orders clicks by offer first; a journey reads in time.
        clicks.sort_by(|a, b| (a.clicked_at, &a.click_id).cmp(&(b.clicked_at, &b.click_id)));
        Ok(Journey {
            sends: indexed(&txn, SENDS_BY_CONTACT, SENDS, &contact)?,
            clicks,
            conversions: indexed(&txn, CONVERSIONS_BY_CONTACT, CONVERSIONS, &contact)?,
        })
    }

    async fn load_report_counters(
        &self,
        dimension: Dimension,
        first_day: &str,
        last_day: &str,
    ) -> Result<Vec<ReportCounter>, StoreError> {
        self.report_counters(dimension, None, first_day, last_day)
    }

    async fn load_instance_report_counters(
        &self,
        dimension: Dimension,
        instance_id: &InstanceId,
        first_day: &str,
        last_day: &str,
    ) -> Result<Vec<ReportCounter>, StoreError> {
        self.report_counters(dimension, Some(instance_id), first_day, last_day)
    }
}

impl EmbeddedStore {
    /// The counter rows of `dimension` in the report of every instance or of one.
    fn report_counters(
        &self,
        dimension: Dimension,
        instance: Option<&InstanceId>,
        first_day: &str,
        last_day: &str,
    ) -> Result<Vec<ReportCounter>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let table = txn.open_table(REPORT).map_err(unavailable)?;
        let name = report::scope_name(dimension, instance);
        let name = name.as_str();
        let mut counters = Vec::new();
        for entry in table
            .range((name, first_day, "", "")..)
            .map_err(unavailable)?
        {
            let (key, tally) = entry.map_err(unavailable)?;
            let (found, day, row_key, currency) = key.value();
            if found != name || day > last_day {
                break;
            }
            counters.push(ReportCounter {
                dimension,
                instance: instance.cloned(),
                key: row_key.to_owned(),
                day: day.to_owned(),
                currency: Currency::parse(currency)
                    .map_err(|_| StoreError::Corrupt(format!("currency {currency:?}")))?,
                tally: decode(tally.value())?,
            });
        }
        Ok(counters)
    }
}
