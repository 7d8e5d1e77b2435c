//! DynamoDB implementation of [`RevenueStore`].
//!
//! Tables (PAY_PER_REQUEST, every key attribute a string, every index projecting ALL):
//! - offers: `offer_id` (hash);
//! - sends: `code` (hash); index `by_contact`: `contact_key` + `sent_key` (`sent_at#code`);
//! - clicks: `click_id` (hash); index `by_contact`: `contact_key` + `click_position`;
//! - conversions: `conversion_key` (hash); index `by_contact`: `contact_key` +
//!   `converted_key` (`converted_at#conversion_key`), set only on conversions whose contact is
//!   known (a sparse index);
//! - report: `dimension` (hash, `dimension#day`) + `row` (`@instance#currency#shard#key`;
//!   `currency#shard#key` on rows written before rows were kept per instance), with `day`,
//!   `currency`, `key` and `instance` as attributes: the report of every instance reads the
//!   whole partition and adds the instances up, one instance's reads its rows by prefix, a
//!   `Query` a day either way and the numbers `sends`, `clicks`, `conversions` and
//!   `revenue`: one partition per grouping and day, so a hot campaign's day shares its
//!   partition with no other day (and none of today's writes land on a past day's). Rows
//!   written before this layout stay under `dimension` = the bare grouping with `row` =
//!   `day#currency#shard#key`; they no longer change, and a report reads them with one more
//!   `Query` (a dual read: no copy, and no window in which a row counts twice or not at all).
//!
//! An `unknown_click` conversion's key is also added to the string set `waiting` of the item
//! `waiting#<click id>` of the conversions table (at most [`MAX_WAITING_PER_CLICK`]), in the
//! same transaction that checks the click is still absent, so the click's write, which reads
//! that item after it commits, finds every conversion stored before it.
//!
//! Every send, click and conversion is written in one transaction with its report counters.
//! A counter row is split over [`REPORT_SHARDS`] items, one picked at random per write, so
//! concurrent transactions on a hot row rarely touch the same item; readers add the parts up.

use crate::ids::{ContactId, InstanceId, OfferId};
use crate::revenue::attribution::CreditWindow;
use crate::revenue::models::MAX_MODEL_CLICKS;
use crate::revenue::report::{self, ModelRevenue, ReportBump};
use crate::revenue::store::{
    ConversionWrite, MAX_JOURNEY_ITEMS, MAX_WAITING_PER_CLICK, RevenueStore, SendWrite,
    click_position, click_position_range, contact_key, conversion_position, send_position,
    send_position_range, waiting_key,
};
use crate::revenue::{
    Amount, Click, Conversion, ConversionStatus, Currency, Dimension, Journey, Offer,
    ReportCounter, SendRecord, Tally,
};
use crate::store::StoreError;
use crate::store::dynamo::Client;
use crate::store::dynamo::toolkit::{
    BatchRead, Item, MAX_ATTEMPTS, TableIndex, TableSpec, backoff, batch_get, cancelled,
    conditional_put, create_tables, from_item, get_item, is_conditional_failure, is_conflict, key,
    number, query_items, record, store_over, string, table_names, to_item, transact, unavailable,
    warm_up,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use futures::{StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::ops::ControlFlow;

table_names!(
    /// The DynamoDB tables of the revenue store.
    RevenueTables {
        /// Offers (`OFFERS_TABLE`).
        offers: "OFFERS_TABLE",
        /// Sends, one per tracked-link code (`SENDS_TABLE`).
        sends: "SENDS_TABLE",
        /// Clicks (`CLICKS_TABLE`).
        clicks: "CLICKS_TABLE",
        /// Conversions (`CONVERSIONS_TABLE`).
        conversions: "CONVERSIONS_TABLE",
        /// Report counters per dimension, key and day (`REPORT_TABLE`).
        report: "REPORT_TABLE",
    }
);

/// The index of each record table that lists one contact's records, and its hash key.
pub(super) const CONTACT_INDEX: &str = "by_contact";
pub(super) const CONTACT_KEY: &str = "contact_key";
/// The range keys of the contact indexes.
pub(super) const SENT_KEY: &str = "sent_key";
pub(super) const CLICK_POSITION: &str = "click_position";
pub(super) const CONVERTED_KEY: &str = "converted_key";

/// The report row attributes of the other models' shares: last click, linear, time decay,
/// position based.
const MODEL_ATTRIBUTES: [&str; 4] = [
    "last_click_revenue",
    "linear_revenue",
    "time_decay_revenue",
    "position_based_revenue",
];

/// Items each report counter row is spread over.
pub const REPORT_SHARDS: u8 = 8;

/// A report reads one partition a day; this many side by side.
const REPORT_READS_AT_ONCE: usize = 16;

/// The report partition of `dimension`'s rows of `day`.
fn report_partition(dimension: Dimension, day: &str) -> String {
    format!("{}#{day}", dimension.as_str())
}

/// Where a row of `instance` starts in its partition: before the currency, which is letters.
fn instance_prefix(instance: &InstanceId) -> String {
    format!("@{}#", instance.as_str())
}

/// The rows of a report partition a `Query` reads.
enum Rows<'a> {
    /// Every row.
    All,
    /// The rows sorting from the first to the last, both included.
    Between(&'a str, &'a str),
    /// The rows starting with this.
    Prefixed(&'a str),
}

/// Every day from `first_day` to `last_day` (`YYYY-MM-DD`, both included).
fn days_between(first_day: &str, last_day: &str) -> Result<Vec<String>, StoreError> {
    let parse = |day: &str| {
        chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
            .map_err(|_| StoreError::Corrupt(format!("report day {day:?}")))
    };
    let (first, last) = (parse(first_day)?, parse(last_day)?);
    Ok(first
        .iter_days()
        .take_while(|day| *day <= last)
        .map(|day| day.format("%Y-%m-%d").to_string())
        .collect())
}
/// Sends of one `create_sends` call written at once.
const CONCURRENT_SENDS: usize = 8;

store_over!(
    /// The revenue store on DynamoDB.
    DynamoRevenueStore,
    RevenueTables
);

fn text_attribute(item: &Item, name: &str) -> Result<String, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(text)) => Ok(text.clone()),
        _ => Err(StoreError::Corrupt(format!("report row without {name}"))),
    }
}

/// A number attribute of a report row; absent is zero.
fn count_attribute(item: &Item, name: &str) -> Result<u64, StoreError> {
    match item.get(name) {
        None => Ok(0),
        Some(AttributeValue::N(count)) => count
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("report {name} {count:?}"))),
        Some(_) => Err(StoreError::Corrupt(format!(
            "report {name} is not a number"
        ))),
    }
}

/// An amount attribute of a report row; absent is zero.
fn amount_attribute(item: &Item, name: &str) -> Result<Amount, StoreError> {
    match item.get(name) {
        None => Ok(Amount::ZERO),
        Some(AttributeValue::N(amount)) => Amount::parse(amount)
            .map_err(|_| StoreError::Corrupt(format!("report {name} {amount:?}"))),
        Some(_) => Err(StoreError::Corrupt(format!(
            "report {name} is not a number"
        ))),
    }
}

fn report_counter(dimension: Dimension, item: &Item) -> Result<ReportCounter, StoreError> {
    let instance = match item.get("instance") {
        None => None,
        Some(AttributeValue::S(text)) => Some(
            InstanceId::parse(text)
                .map_err(|_| StoreError::Corrupt(format!("report instance {text:?}")))?,
        ),
        Some(_) => {
            return Err(StoreError::Corrupt(
                "report instance is not a string".to_owned(),
            ));
        }
    };
    let currency = text_attribute(item, "currency")?;
    let revenue = amount_attribute(item, "revenue")?;
    Ok(ReportCounter {
        dimension,
        instance,
        key: text_attribute(item, "key")?,
        day: text_attribute(item, "day")?,
        currency: Currency::parse(&currency)
            .map_err(|_| StoreError::Corrupt(format!("currency {currency:?}")))?,
        tally: Tally {
            sends: count_attribute(item, "sends")?,
            clicks: count_attribute(item, "clicks")?,
            conversions: count_attribute(item, "conversions")?,
            revenue,
            view_through_conversions: count_attribute(item, "view_through_conversions")?,
            view_through_revenue: amount_attribute(item, "view_through_revenue")?,
            models: ModelRevenue {
                last_click: amount_attribute(item, MODEL_ATTRIBUTES[0])?,
                linear: amount_attribute(item, MODEL_ATTRIBUTES[1])?,
                time_decay: amount_attribute(item, MODEL_ATTRIBUTES[2])?,
                position_based: amount_attribute(item, MODEL_ATTRIBUTES[3])?,
            },
        },
    })
}

impl DynamoRevenueStore {
    /// Opens the client's first connection (DNS, TCP, TLS) with one read of a key that never
    /// exists, so the first request after a cold start does not pay for it. Errors are left to
    /// that request.
    pub async fn warm_up(&self) {
        warm_up(
            &self.client,
            &self.tables.offers,
            key(&[("offer_id", "#warm")]),
        )
        .await;
    }

    /// Creates the tables (see the module documentation); for tests and local emulators.
    pub async fn create_tables(&self) -> Result<(), StoreError> {
        let by_contact = |range| TableIndex {
            name: CONTACT_INDEX,
            hash: CONTACT_KEY,
            range,
        };
        let tables = [
            TableSpec::keyed(&self.tables.offers, "offer_id", None),
            TableSpec::keyed(&self.tables.sends, "code", None).with_index(by_contact(SENT_KEY)),
            TableSpec::keyed(&self.tables.clicks, "click_id", None)
                .with_index(by_contact(CLICK_POSITION)),
            TableSpec::keyed(&self.tables.conversions, "conversion_key", None)
                .with_index(by_contact(CONVERTED_KEY)),
            TableSpec::keyed(&self.tables.report, "dimension", Some("row")),
        ];
        create_tables(&self.client, &tables).await
    }

    /// A consistent `Query` of one report partition, all of it or some of its rows.
    fn report_query(
        &self,
        partition: &str,
        rows: Rows<'_>,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        let query = self
            .client
            .query()
            .table_name(&self.tables.report)
            .expression_attribute_names("#dimension", "dimension")
            .expression_attribute_values(":dimension", string(partition))
            .consistent_read(true);
        match rows {
            Rows::All => query.key_condition_expression("#dimension = :dimension"),
            Rows::Between(first, last) => query
                .key_condition_expression(
                    "#dimension = :dimension AND #row BETWEEN :first AND :last",
                )
                .expression_attribute_names("#row", "row")
                .expression_attribute_values(":first", string(first))
                .expression_attribute_values(":last", string(last)),
            Rows::Prefixed(prefix) => query
                .key_condition_expression("#dimension = :dimension AND begins_with(#row, :prefix)")
                .expression_attribute_names("#row", "row")
                .expression_attribute_values(":prefix", string(prefix)),
        }
    }

    /// Adds `bump` to one shard of its counter row.
    fn report_update(&self, bump: &ReportBump) -> Result<TransactWriteItem, StoreError> {
        let shard = rand::random_range(0..REPORT_SHARDS);
        let view_through = bump.tally.view_through_conversions > 0
            || bump.tally.view_through_revenue != Amount::ZERO;
        let models = !bump.tally.models.is_zero();
        let row = format!(
            "{}{}#{shard}#{}",
            bump.instance
                .as_ref()
                .map(instance_prefix)
                .unwrap_or_default(),
            bump.currency.as_str(),
            bump.key
        );
        let update = Update::builder()
            .table_name(&self.tables.report)
            .key(
                "dimension",
                string(&report_partition(bump.dimension, &bump.day)),
            )
            .key("row", string(&row))
            .update_expression(format!(
                "SET #day = :day, #currency = :currency, #key = :key{} \
                 ADD #sends :sends, #clicks :clicks, #conversions :conversions, #revenue :revenue{}{}",
                if bump.instance.is_some() {
                    ", #instance = :instance"
                } else {
                    ""
                },
                if view_through {
                    ", #vt_conversions :vt_conversions, #vt_revenue :vt_revenue"
                } else {
                    ""
                },
                if models {
                    ", #m_last :m_last, #m_linear :m_linear, #m_decay :m_decay, #m_position :m_position"
                } else {
                    ""
                }
            ))
            .expression_attribute_names("#day", "day")
            .expression_attribute_names("#currency", "currency")
            .expression_attribute_names("#key", "key")
            .expression_attribute_names("#sends", "sends")
            .expression_attribute_names("#clicks", "clicks")
            .expression_attribute_names("#conversions", "conversions")
            .expression_attribute_names("#revenue", "revenue")
            .expression_attribute_values(":day", string(&bump.day))
            .expression_attribute_values(":currency", string(bump.currency.as_str()))
            .expression_attribute_values(":key", string(&bump.key))
            .expression_attribute_values(":sends", number(bump.tally.sends))
            .expression_attribute_values(":clicks", number(bump.tally.clicks))
            .expression_attribute_values(":conversions", number(bump.tally.conversions))
            // DynamoDB numbers are exact decimals: the amount goes as its decimal text.
            .expression_attribute_values(":revenue", number(bump.tally.revenue.decimal()));
        // Only a view-through credit writes its numbers: the other rows stay as small as before.
        let update = if view_through {
            update
                .expression_attribute_names("#vt_conversions", "view_through_conversions")
                .expression_attribute_names("#vt_revenue", "view_through_revenue")
                .expression_attribute_values(
                    ":vt_conversions",
                    number(bump.tally.view_through_conversions),
                )
                .expression_attribute_values(
                    ":vt_revenue",
                    number(bump.tally.view_through_revenue.decimal()),
                )
        } else {
            update
        };
        // Likewise the other models' shares, written by click-through credits only.
        let update = if models {
            let shares = &bump.tally.models;
            update
                .expression_attribute_names("#m_last", MODEL_ATTRIBUTES[0])
                .expression_attribute_names("#m_linear", MODEL_ATTRIBUTES[1])
                .expression_attribute_names("#m_decay", MODEL_ATTRIBUTES[2])
                .expression_attribute_names("#m_position", MODEL_ATTRIBUTES[3])
                .expression_attribute_values(":m_last", number(shares.last_click.decimal()))
                .expression_attribute_values(":m_linear", number(shares.linear.decimal()))
                .expression_attribute_values(":m_decay", number(shares.time_decay.decimal()))
                .expression_attribute_values(":m_position", number(shares.position_based.decimal()))
        } else {
            update
        };
        let update = match &bump.instance {
            Some(instance) => update
                .expression_attribute_names("#instance", "instance")
                .expression_attribute_values(":instance", string(instance.as_str())),
            None => update,
        };
        let update = update.build().map_err(unavailable)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// A transaction putting `item` into `table` unless its `key_name` exists, with the report
    /// updates of `bumps`.
    fn record_transaction(
        &self,
        table: &str,
        key_name: &str,
        item: Item,
        bumps: &[ReportBump],
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let put = Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#key)")
            .expression_attribute_names("#key", key_name)
            .build()
            .map_err(unavailable)?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        for bump in bumps {
            items.push(self.report_update(bump)?);
        }
        Ok(items)
    }

    /// Runs the transaction `build` makes, rebuilt (on other shards) and run again after a
    /// short pause while it conflicts with others. `false`: the condition of its first item
    /// failed, nothing was written.
    async fn transact_retrying(
        &self,
        build: impl Fn() -> Result<Vec<TransactWriteItem>, StoreError>,
    ) -> Result<bool, StoreError> {
        Ok(self.transact_conditions(build).await?.is_ok())
    }

    /// [`Self::transact_retrying`], answering which item's condition failed first, if any.
    async fn transact_conditions(
        &self,
        build: impl Fn() -> Result<Vec<TransactWriteItem>, StoreError>,
    ) -> Result<Result<(), usize>, StoreError> {
        let mut attempt = 1;
        loop {
            match transact(&self.client, build()?).await? {
                Ok(()) => return Ok(Ok(())),
                Err(codes) if codes.iter().any(is_conditional_failure) => {
                    return Ok(Err(codes
                        .iter()
                        .position(is_conditional_failure)
                        .unwrap_or_default()));
                }
                // Every condition held: a conflict with another transaction.
                Err(codes) if codes.iter().any(is_conflict) && attempt < MAX_ATTEMPTS => {
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                Err(codes) => return Err(cancelled(&codes)),
            }
        }
    }

    /// A conversion's item, filed under its contact when it is known.
    fn conversion_item(conversion: &Conversion) -> Result<Item, StoreError> {
        let mut item = to_item(conversion)?;
        if let (Some(instance), Some(contact)) = (&conversion.instance_id, &conversion.contact_id) {
            item.insert(
                CONTACT_KEY.to_owned(),
                string(&contact_key(instance, contact)),
            );
            item.insert(
                CONVERTED_KEY.to_owned(),
                string(&conversion_position(conversion)),
            );
        }
        Ok(item)
    }

    /// Adds (`ADD`, while the set has room) or takes (`DELETE`) a conversion key to or from
    /// the set of the conversions waiting for `click_id`.
    fn waiting_update(
        &self,
        click_id: &str,
        conversion_key: &str,
        add: bool,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.tables.conversions)
            .key("conversion_key", string(&waiting_key(click_id)))
            .expression_attribute_names("#waiting", "waiting")
            .expression_attribute_values(
                ":key",
                AttributeValue::Ss(vec![conversion_key.to_owned()]),
            );
        let update = if add {
            update
                .update_expression("ADD #waiting :key")
                .condition_expression("attribute_not_exists(#waiting) OR size(#waiting) < :max")
                .expression_attribute_values(":max", number(MAX_WAITING_PER_CLICK))
        } else {
            update.update_expression("DELETE #waiting :key")
        };
        Ok(TransactWriteItem::builder()
            .update(update.build().map_err(unavailable)?)
            .build())
    }

    /// The check that no click `click_id` is stored.
    fn no_click(&self, click_id: &str) -> Result<TransactWriteItem, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&self.tables.clicks)
            .key("click_id", string(click_id))
            .condition_expression("attribute_not_exists(click_id)")
            .build()
            .map_err(unavailable)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// A consistent read of one record by its hash key.
    async fn get<T: DeserializeOwned>(
        &self,
        table: &str,
        key_name: &str,
        key_value: &str,
        added: &[&str],
    ) -> Result<Option<T>, StoreError> {
        let found = get_item(&self.client, table, key(&[(key_name, key_value)])).await?;
        found.map(|item| record(item, added)).transpose()
    }

    /// Puts `offer` if its id is absent (`must_exist == false`) or present (`true`).
    async fn put_offer(&self, offer: &Offer, must_exist: bool) -> Result<bool, StoreError> {
        let condition = if must_exist {
            "attribute_exists(offer_id)"
        } else {
            "attribute_not_exists(offer_id)"
        };
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.offers)
            .set_item(Some(to_item(offer)?))
            .condition_expression(condition)
            .send()
            .await;
        conditional_put(result)
    }

    /// `create_send` for the first send of a code in a batch; `None` for a repeat.
    async fn create_send_once(
        &self,
        send: Option<&SendRecord>,
    ) -> Result<Option<SendWrite>, StoreError> {
        match send {
            Some(send) => self.create_send(send).await.map(Some),
            None => Ok(None),
        }
    }

    async fn create_send(&self, send: &SendRecord) -> Result<SendWrite, StoreError> {
        let bumps = report::send_bumps(send);
        let created = self
            .transact_retrying(|| {
                let mut item = to_item(send)?;
                item.insert(
                    CONTACT_KEY.to_owned(),
                    string(&contact_key(&send.instance_id, &send.contact_id)),
                );
                item.insert(SENT_KEY.to_owned(), string(&send_position(send)));
                self.record_transaction(&self.tables.sends, "code", item, &bumps)
            })
            .await?;
        if created {
            return Ok(SendWrite::Created);
        }
        match self.load_send(&send.code).await? {
            Some(stored) => Ok(SendWrite::Existing(Box::new(stored))),
            None => Err(StoreError::Unavailable(format!(
                "send {} exists but does not read back",
                send.code
            ))),
        }
    }

    /// Up to [`MAX_JOURNEY_ITEMS`] of the contact's records in `table`, in index order.
    async fn contact_records<T: DeserializeOwned>(
        &self,
        table: &str,
        range: &str,
        contact: &str,
    ) -> Result<Vec<T>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(table)
            .index_name(CONTACT_INDEX)
            .key_condition_expression("#contact = :contact")
            .expression_attribute_names("#contact", CONTACT_KEY)
            .expression_attribute_values(":contact", string(contact))
            .scan_index_forward(true)
            .limit(i32::try_from(MAX_JOURNEY_ITEMS).unwrap_or(i32::MAX));
        let mut found = Vec::new();
        query_items(query, |item| {
            found.push(record(item, &[CONTACT_KEY, range])?);
            Ok(if found.len() == MAX_JOURNEY_ITEMS {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        })
        .await?;
        Ok(found)
    }
}

#[async_trait]
impl RevenueStore for DynamoRevenueStore {
    async fn create_offer(&self, offer: &Offer) -> Result<bool, StoreError> {
        self.put_offer(offer, false).await
    }

    async fn replace_offer(&self, offer: &Offer) -> Result<bool, StoreError> {
        self.put_offer(offer, true).await
    }

    async fn load_offer(&self, offer_id: &OfferId) -> Result<Option<Offer>, StoreError> {
        self.get(&self.tables.offers, "offer_id", offer_id.as_str(), &[])
            .await
    }

    async fn list_offers(&self) -> Result<Vec<Offer>, StoreError> {
        let mut offers: Vec<Offer> = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .scan()
                .table_name(&self.tables.offers)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in output.items.unwrap_or_default() {
                offers.push(from_item(item)?);
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        offers.sort_by(|a, b| a.offer_id.cmp(&b.offer_id));
        Ok(offers)
    }

    /// One transaction per send, a few at once. A code repeated in the batch is written by its
    /// first send only; the later ones answer what the first one found, as if in sequence.
    async fn create_sends(&self, sends: &[SendRecord]) -> Result<Vec<SendWrite>, StoreError> {
        let mut first_with_code: HashMap<&str, usize> = HashMap::new();
        let repeats: Vec<Option<usize>> = sends
            .iter()
            .enumerate()
            .map(|(index, send)| {
                let first = *first_with_code.entry(send.code.as_str()).or_insert(index);
                (first != index).then_some(first)
            })
            .collect();
        // Collected first: a lazy `map` in the stream would trip the compiler's `Send` check.
        let writes: Vec<_> = sends
            .iter()
            .zip(&repeats)
            .map(|(send, repeat)| self.create_send_once(repeat.is_none().then_some(send)))
            .collect();
        let written: Vec<Option<SendWrite>> = futures::stream::iter(writes)
            .buffered(CONCURRENT_SENDS)
            .try_collect()
            .await?;
        let mut outcomes: Vec<SendWrite> = Vec::with_capacity(sends.len());
        for (written, repeat) in written.into_iter().zip(repeats) {
            let outcome = match (written, repeat) {
                (Some(outcome), _) => outcome,
                (None, Some(first)) => match &outcomes[first] {
                    SendWrite::Created => SendWrite::Existing(Box::new(sends[first].clone())),
                    SendWrite::Existing(stored) => SendWrite::Existing(stored.clone()),
                },
                (None, None) => unreachable!("a first send is always written"),
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    async fn load_send(&self, code: &str) -> Result<Option<SendRecord>, StoreError> {
        self.get(&self.tables.sends, "code", code, &[CONTACT_KEY, SENT_KEY])
            .await
    }

    async fn record_click(&self, click: &Click) -> Result<(), StoreError> {
        let bumps = report::click_bumps(click);
        // `false`, the click exists: recorded before, by the try this one repeats.
        self.transact_retrying(|| {
            let mut item = to_item(click)?;
            item.insert(
                CONTACT_KEY.to_owned(),
                string(&contact_key(&click.instance_id, &click.contact_id)),
            );
            item.insert(CLICK_POSITION.to_owned(), string(&click_position(click)));
            self.record_transaction(&self.tables.clicks, "click_id", item, &bumps)
        })
        .await?;
        Ok(())
    }

    async fn load_click(&self, click_id: &str) -> Result<Option<Click>, StoreError> {
        self.get(
            &self.tables.clicks,
            "click_id",
            click_id,
            &[CONTACT_KEY, CLICK_POSITION],
        )
        .await
    }

    async fn window_clicks(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
        offer_id: &OfferId,
        window: &CreditWindow,
    ) -> Result<Vec<Click>, StoreError> {
        let (low, high) = click_position_range(offer_id, window);
        // One page: MAX_MODEL_CLICKS clicks of under 1 KB are far below a page's 1 MB.
        let output = self
            .client
            .query()
            .table_name(&self.tables.clicks)
            .index_name(CONTACT_INDEX)
            .key_condition_expression("#contact = :contact AND #position BETWEEN :low AND :high")
            .expression_attribute_names("#contact", CONTACT_KEY)
            .expression_attribute_names("#position", CLICK_POSITION)
            .expression_attribute_values(":contact", string(&contact_key(instance_id, contact_id)))
            .expression_attribute_values(":low", string(&low))
            .expression_attribute_values(":high", string(&high))
            .scan_index_forward(true)
            .limit(MAX_MODEL_CLICKS as i32)
            .send()
            .await
            .map_err(unavailable)?;
        output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| record(item, &[CONTACT_KEY, CLICK_POSITION]))
            .collect()
    }

    async fn first_send(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
        offer_id: &OfferId,
        window: &CreditWindow,
    ) -> Result<Option<SendRecord>, StoreError> {
        let (low, high) = send_position_range(window);
        let query = self
            .client
            .query()
            .table_name(&self.tables.sends)
            .index_name(CONTACT_INDEX)
            .key_condition_expression("#contact = :contact AND #sent BETWEEN :low AND :high")
            .filter_expression("#offer = :offer")
            .expression_attribute_names("#contact", CONTACT_KEY)
            .expression_attribute_names("#sent", SENT_KEY)
            .expression_attribute_names("#offer", "offer_id")
            .expression_attribute_values(":contact", string(&contact_key(instance_id, contact_id)))
            .expression_attribute_values(":low", string(&low))
            .expression_attribute_values(":high", string(&high))
            .expression_attribute_values(":offer", string(offer_id.as_str()))
            .scan_index_forward(true);
        let mut found = None;
        query_items(query, |item| {
            found = Some(record(item, &[CONTACT_KEY, SENT_KEY])?);
            Ok(ControlFlow::Break(()))
        })
        .await?;
        Ok(found)
    }

    async fn record_conversion(
        &self,
        conversion: &Conversion,
    ) -> Result<ConversionWrite, StoreError> {
        let bumps = report::conversion_bumps(conversion);
        let key = conversion.conversion_key.as_str();
        let waits = conversion.waits_for();
        // Items: 0 the conversion, then for an unknown click 1 the click's absence and 2 its
        // place in the waiting set, which a full set leaves out on a second try.
        let mut wait = waits.is_some();
        let outcome = loop {
            let outcome = self
                .transact_conditions(|| {
                    let item = Self::conversion_item(conversion)?;
                    let mut items = self.record_transaction(
                        &self.tables.conversions,
                        "conversion_key",
                        item,
                        &bumps,
                    )?;
                    if let Some(click) = waits {
                        items.insert(1, self.no_click(click)?);
                        if wait {
                            items.insert(2, self.waiting_update(click, key, true)?);
                        }
                    }
                    Ok(items)
                })
                .await?;
            match outcome {
                Err(2) if wait => wait = false,
                other => break other,
            }
        };
        match outcome {
            Ok(()) => return Ok(ConversionWrite::Recorded),
            Err(1) => return Ok(ConversionWrite::ClickArrived),
            Err(_) => {}
        }
        let stored = self
            .get(
                &self.tables.conversions,
                "conversion_key",
                key,
                &[CONTACT_KEY, CONVERTED_KEY],
            )
            .await?;
        match stored {
            Some(stored) => Ok(ConversionWrite::Duplicate(Box::new(stored))),
            None => Err(StoreError::Unavailable(format!(
                "conversion {key} exists but does not read back"
            ))),
        }
    }

    async fn load_conversion(
        &self,
        conversion_key: &str,
    ) -> Result<Option<Conversion>, StoreError> {
        // A waiting set is no conversion.
        if conversion_key.starts_with("waiting#") {
            return Ok(None);
        }
        self.get(
            &self.tables.conversions,
            "conversion_key",
            conversion_key,
            &[CONTACT_KEY, CONVERTED_KEY],
        )
        .await
    }

    async fn waiting_conversions(&self, click_id: &str) -> Result<Vec<Conversion>, StoreError> {
        let found = get_item(
            &self.client,
            &self.tables.conversions,
            key(&[("conversion_key", &waiting_key(click_id))]),
        )
        .await?;
        let keys: Vec<Item> = match found.as_ref().and_then(|item| item.get("waiting")) {
            Some(AttributeValue::Ss(keys)) => keys
                .iter()
                .map(|waiting| key(&[("conversion_key", waiting)]))
                .collect(),
            _ => return Ok(Vec::new()),
        };
        let reads = vec![BatchRead {
            table: &self.tables.conversions,
            keys,
            consistent: true,
        }];
        let mut items = batch_get(&self.client, reads).await?;
        items
            .remove(&self.tables.conversions)
            .unwrap_or_default()
            .into_iter()
            .map(|item| record(item, &[CONTACT_KEY, CONVERTED_KEY]))
            .collect()
    }

    async fn reattribute_conversion(&self, conversion: &Conversion) -> Result<bool, StoreError> {
        let bumps = report::conversion_bumps(conversion);
        self.transact_retrying(|| {
            let put = Put::builder()
                .table_name(&self.tables.conversions)
                .set_item(Some(Self::conversion_item(conversion)?))
                .condition_expression("#status = :unknown")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(
                    ":unknown",
                    string(ConversionStatus::UnknownClick.as_str()),
                )
                .build()
                .map_err(unavailable)?;
            let mut items = vec![
                TransactWriteItem::builder().put(put).build(),
                self.waiting_update(&conversion.click_id, &conversion.conversion_key, false)?,
            ];
            for bump in &bumps {
                items.push(self.report_update(bump)?);
            }
            Ok(items)
        })
        .await
    }

    async fn contact_journey(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
    ) -> Result<Journey, StoreError> {
        let contact = contact_key(instance_id, contact_id);
        let (sends, mut clicks, conversions) = futures::try_join!(
            self.contact_records::<SendRecord>(&self.tables.sends, SENT_KEY, &contact),
            self.contact_records::<Click>(&self.tables.clicks, CLICK_POSITION, &contact),
            self.contact_records::<Conversion>(&self.tables.conversions, CONVERTED_KEY, &contact),
        )?;
        // The index orders clicks by offer first; a journey reads in time.
        clicks.sort_by(|a, b| (a.clicked_at, &a.click_id).cmp(&(b.clicked_at, &b.click_id)));
        Ok(Journey {
            sends,
            clicks,
            conversions,
        })
    }

    async fn load_report_counters(
        &self,
        dimension: Dimension,
        first_day: &str,
        last_day: &str,
    ) -> Result<Vec<ReportCounter>, StoreError> {
        self.report_counters(dimension, None, first_day, last_day)
            .await
    }

    async fn load_instance_report_counters(
        &self,
        dimension: Dimension,
        instance_id: &InstanceId,
        first_day: &str,
        last_day: &str,
    ) -> Result<Vec<ReportCounter>, StoreError> {
        self.report_counters(dimension, Some(instance_id), first_day, last_day)
            .await
    }
}

impl DynamoRevenueStore {
    /// The counter rows of `dimension` in the report of every instance or of one: a `Query` a
    /// day, and for every instance's report one more of the old layout.
    async fn report_counters(
        &self,
        dimension: Dimension,
        instance: Option<&InstanceId>,
        first_day: &str,
        last_day: &str,
    ) -> Result<Vec<ReportCounter>, StoreError> {
        if first_day > last_day {
            return Ok(Vec::new());
        }
        let days = days_between(first_day, last_day)?;
        let prefix = instance.map(instance_prefix);
        let rows = || match &prefix {
            None => Rows::All,
            Some(prefix) => Rows::Prefixed(prefix),
        };
        let mut queries: Vec<_> = days
            .iter()
            .map(|day| self.report_query(&report_partition(dimension, day), rows()))
            .collect();
        // Rows of one instance were never written in the old layout.
        let last_row = format!("{last_day}#~");
        if instance.is_none() {
            // Every row of `last_day` in the old layout sorts before `last_day#~`: currencies
            // are letters.
            queries
                .push(self.report_query(dimension.as_str(), Rows::Between(first_day, &last_row)));
        }
        let parts: Vec<Vec<Item>> =
            futures::stream::iter(queries.into_iter().map(|query| async move {
                let mut items = Vec::new();
                query_items(query, |item| {
                    items.push(item);
                    Ok(ControlFlow::Continue(()))
                })
                .await?;
                Ok::<_, StoreError>(items)
            }))
            .buffer_unordered(REPORT_READS_AT_ONCE)
            .try_collect()
            .await?;
        let mut counters = Vec::new();
        for item in parts.into_iter().flatten() {
            let counter = report_counter(dimension, &item)?;
            if counter.day.as_str() >= first_day && counter.day.as_str() <= last_day {
                counters.push(counter);
            }
        }
        Ok(counters)
    }
}
