//! Erasure in DynamoDB. A person's records can outnumber one transaction (100 items), so each
//! record is rewritten on its own, conditioned on still naming the person: a fault part-way
//! answers an error, and the call made again finds and erases what is left. The contact goes
//! last, with its place in the `by_first_seen` index (an index follows its item).
//!
//! The `by_contact` indexes are read eventually consistent, as DynamoDB reads every global
//! index: a record written in the second before an erasure may be missed by it (and by the
//! journey); erasing again sweeps it.

use crate::erasure::{Erased, Erasure, ErasureStore};
use crate::ids::ContactId;
use crate::revenue::store::contact_key;
use crate::revenue::{Click, Conversion, SendRecord};
use crate::store::StoreError;
use crate::store::dynamo::contacts::contact_from_item;
use crate::store::dynamo::revenue::{
    CLICK_POSITION, CONTACT_INDEX, CONTACT_KEY, CONVERTED_KEY, RevenueTables, SENT_KEY,
};
use crate::store::dynamo::toolkit::{
    conditional_put, get_item, key, query_items, record, string, to_item, unavailable,
};
use crate::store::dynamo::{Client, LINKS_TO, RECORDED_START, TableNames};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::ops::ControlFlow;

/// Records rewritten at once.
const CONCURRENT_WRITES: usize = 8;

/// The erasure store on DynamoDB, over the contact and revenue tables.
#[derive(Clone)]
pub struct DynamoErasureStore {
    client: Client,
    contacts_table: String,
    dedupe_table: String,
    revenue: RevenueTables,
}

/// One of the record tables with a `by_contact` index.
struct RecordTable<'a> {
    name: &'a str,
    /// Its hash key.
    key: &'a str,
    /// The index's range attribute, kept as it is so the records keep their order.
    range: &'a str,
}

impl DynamoErasureStore {
    /// A store over the contact and revenue tables through `client`.
    pub fn new(client: Client, tables: &TableNames, revenue: RevenueTables) -> Self {
        Self {
            client,
            contacts_table: tables.contacts.clone(),
            dedupe_table: tables.dedupe.clone(),
            revenue,
        }
    }

    /// For Lambda: table names from the environment, as the other stores read them.
    pub fn from_env(client: &Client) -> Result<Self, crate::config::ConfigError> {
        Ok(Self::new(
            client.clone(),
            &TableNames::from_env()?,
            RevenueTables::from_env()?,
        ))
    }

    /// The hash keys of every record of `table` indexed under `contact`.
    async fn indexed_keys(
        &self,
        table: &RecordTable<'_>,
        contact: &str,
    ) -> Result<Vec<String>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(table.name)
            .index_name(CONTACT_INDEX)
            .key_condition_expression("#contact = :contact")
            .expression_attribute_names("#contact", CONTACT_KEY)
            .expression_attribute_names("#key", table.key)
            .expression_attribute_values(":contact", string(contact))
            .projection_expression("#key");
        let mut keys = Vec::new();
        query_items(query, |item| {
            if let Some(AttributeValue::S(key)) = item.get(table.key) {
                keys.push(key.clone());
            }
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        Ok(keys)
    }

    /// Rewrites one record with `erase` under `new_contact`, if it still names `old_contact`.
    /// Answers whether it did.
    async fn rewrite<T: Serialize + DeserializeOwned>(
        &self,
        table: &RecordTable<'_>,
        record_key: &str,
        old_contact: &str,
        new_contact: &str,
        erase: &(dyn Fn(&mut T) + Sync),
    ) -> Result<bool, StoreError> {
        let found = get_item(&self.client, table.name, key(&[(table.key, record_key)])).await?;
        let Some(item) = found else {
            return Ok(false);
        };
        if item.get(CONTACT_KEY) != Some(&string(old_contact)) {
            return Ok(false);
        }
        let range = item.get(table.range).cloned();
        let mut erased: T = record(item, &[CONTACT_KEY, table.range])?;
        erase(&mut erased);
        let mut item = to_item(&erased)?;
        item.insert(CONTACT_KEY.to_owned(), string(new_contact));
        if let Some(range) = range {
            item.insert(table.range.to_owned(), range);
        }
        let written = self
            .client
            .put_item()
            .table_name(table.name)
            .set_item(Some(item))
            .condition_expression("#contact = :old")
            .expression_attribute_names("#contact", CONTACT_KEY)
            .expression_attribute_values(":old", string(old_contact))
            .send()
            .await;
        // `false`: erased meanwhile by another call.
        conditional_put(written)
    }

    /// Erases every record of `table` indexed under `old_contact`; answers how many.
    async fn sweep<T: Serialize + DeserializeOwned>(
        &self,
        table: RecordTable<'_>,
        old_contact: &str,
        new_contact: &str,
        erase: &(dyn Fn(&mut T) + Sync),
    ) -> Result<usize, StoreError> {
        let keys = self.indexed_keys(&table, old_contact).await?;
        let rewrites: Vec<_> = keys
            .iter()
            .map(|key| self.rewrite(&table, key, old_contact, new_contact, erase))
            .collect();
        let done: Vec<bool> = futures::stream::iter(rewrites)
            .buffer_unordered(CONCURRENT_WRITES)
            .try_collect()
            .await?;
        Ok(done.into_iter().filter(|done| *done).count())
    }

    async fn delete_contact(
        &self,
        erasure: &Erasure,
        contact_id: &ContactId,
    ) -> Result<bool, StoreError> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.contacts_table)
            .key("instance_id", string(erasure.instance_id.as_str()))
            .key("contact_id", string(contact_id.as_str()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(unavailable)?;
        // Read back only to be sure it was a contact, not to keep anything; an identifier's
        // link (phone ↔ BSUID) shares the key space and goes the same way, uncounted.
        match output.attributes {
            Some(item) if item.contains_key(LINKS_TO) || item.contains_key(RECORDED_START) => {
                Ok(false)
            }
            Some(item) if !item.is_empty() => contact_from_item(item).map(|_| true),
            _ => Ok(false),
        }
    }
}

#[async_trait]
impl ErasureStore for DynamoErasureStore {
    async fn erase_contact(&self, erasure: &Erasure) -> Result<Erased, StoreError> {
        let new_contact = contact_key(&erasure.instance_id, &erasure.token);
        let mut erased = Erased::default();
        for contact_id in &erasure.identifiers {
            let old_contact = contact_key(&erasure.instance_id, contact_id);
            let sends = RecordTable {
                name: &self.revenue.sends,
                key: "code",
                range: SENT_KEY,
            };
            let clicks = RecordTable {
                name: &self.revenue.clicks,
                key: "click_id",
                range: CLICK_POSITION,
            };
            let conversions = RecordTable {
                name: &self.revenue.conversions,
                key: "conversion_key",
                range: CONVERTED_KEY,
            };
            let erase_send = |send: &mut SendRecord| erasure.erase_send(send);
            let erase_click = |click: &mut Click| erasure.erase_click(click);
            let erase_conversion =
                |conversion: &mut Conversion| erasure.erase_conversion(conversion);
            let (sends, clicks, conversions) = futures::try_join!(
                self.sweep(sends, &old_contact, &new_contact, &erase_send),
                self.sweep(clicks, &old_contact, &new_contact, &erase_click),
                self.sweep(conversions, &old_contact, &new_contact, &erase_conversion),
            )?;
            // The business's first message to the person, if recorded before they wrote: under
            // their contacts key (deleted with it below), or, recorded before starts moved
            // there, on the dedupe table until its TTL.
            let start = crate::contact::store::business_first_key(&erasure.instance_id, contact_id);
            self.client
                .delete_item()
                .table_name(&self.dedupe_table)
                .key("dedupe_key", string(&start))
                .send()
                .await
                .map_err(unavailable)?;
            let contacts = usize::from(self.delete_contact(erasure, contact_id).await?);
            erased.add(Erased {
                contacts,
                sends,
                clicks,
                conversions,
            });
        }
        Ok(erased)
    }
}
