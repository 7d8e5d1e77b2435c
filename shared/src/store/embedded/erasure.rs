//! Erasure in the embedded store: one write transaction deletes the contacts and rewrites the
//! person's revenue records, so an erasure is all or nothing.

use crate::contact::Contact;
use crate::contact::store::listing_position;
use crate::erasure::{Erased, Erasure, ErasureStore};
use crate::revenue::store::contact_key;
use crate::store::StoreError;
use crate::store::embedded::revenue::{
    CLICKS, CLICKS_BY_CONTACT, CONVERSIONS, CONVERSIONS_BY_CONTACT, OFFERS, REPORT, SENDS,
    SENDS_BY_CONTACT,
};
use crate::store::embedded::widget::{REF_CODES, WIDGETS};
use crate::store::embedded::{
    CONTACTS, CONTACTS_BY_FIRST_SEEN, COUNTERS, DEDUPE, EmbeddedStore, JOBS, LINKS, RULE_META,
    RULES, decode, encode, unavailable,
};
use async_trait::async_trait;
use redb::{ReadableTable, TableDefinition, TableHandle, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Moves every entry of `old_key` in a contact index to `new_key` (same positions, so the
/// order among the person's records holds) and rewrites each record it names with `erase`.
/// Answers how many records it rewrote.
fn rekey<T: Serialize + DeserializeOwned>(
    txn: &WriteTransaction,
    index: TableDefinition<(&str, &str), &str>,
    records: TableDefinition<&str, &[u8]>,
    old_key: &str,
    new_key: &str,
    erase: impl Fn(&mut T),
) -> Result<usize, StoreError> {
    let mut index = txn.open_table(index).map_err(unavailable)?;
    let mut records = txn.open_table(records).map_err(unavailable)?;
    let mut entries = Vec::new();
    for entry in index.range((old_key, "")..).map_err(unavailable)? {
        let (key, id) = entry.map_err(unavailable)?;
        if key.value().0 != old_key {
            break;
        }
        entries.push((key.value().1.to_owned(), id.value().to_owned()));
    }
    for (position, id) in &entries {
        index
            .remove((old_key, position.as_str()))
            .map_err(unavailable)?;
        index
            .insert((new_key, position.as_str()), id.as_str())
            .map_err(unavailable)?;
        let mut record: T = match records.get(id.as_str()).map_err(unavailable)? {
            Some(bytes) => decode(bytes.value())?,
            None => {
                return Err(StoreError::Corrupt(
                    "an index names a missing record".into(),
                ));
            }
        };
        erase(&mut record);
        records
            .insert(id.as_str(), encode(&record)?.as_slice())
            .map_err(unavailable)?;
    }
    Ok(entries.len())
}

fn erase_in(txn: &WriteTransaction, erasure: &Erasure) -> Result<Erased, StoreError> {
    let instance = erasure.instance_id.as_str();
    let new_key = contact_key(&erasure.instance_id, &erasure.token);
    let mut erased = Erased::default();
    for contact_id in &erasure.identifiers {
        let removed = txn
            .open_table(CONTACTS)
            .map_err(unavailable)?
            .remove((instance, contact_id.as_str()))
            .map_err(unavailable)?
            .map(|bytes| decode::<Contact>(bytes.value()))
            .transpose()?;
        txn.open_table(LINKS)
            .map_err(unavailable)?
            .remove((instance, contact_id.as_str()))
            .map_err(unavailable)?;
        if let Some(contact) = removed {
            txn.open_table(CONTACTS_BY_FIRST_SEEN)
                .map_err(unavailable)?
                .remove((instance, listing_position(&contact).as_str()))
                .map_err(unavailable)?;
            erased.contacts += 1;
        }
        let old_key = contact_key(&erasure.instance_id, contact_id);
        erased.sends += rekey(txn, SENDS_BY_CONTACT, SENDS, &old_key, &new_key, |send| {
            erasure.erase_send(send)
        })?;
        erased.clicks += rekey(
            txn,
            CLICKS_BY_CONTACT,
            CLICKS,
            &old_key,
            &new_key,
            |click| erasure.erase_click(click),
        )?;
        erased.conversions += rekey(
            txn,
            CONVERSIONS_BY_CONTACT,
            CONVERSIONS,
            &old_key,
            &new_key,
            |conversion| erasure.erase_conversion(conversion),
        )?;
    }
    Ok(erased)
}

#[async_trait]
impl ErasureStore for EmbeddedStore {
    async fn erase_contact(&self, erasure: &Erasure) -> Result<Erased, StoreError> {
        let erasure = erasure.clone();
        self.write(move |txn| {
            let erased = erase_in(txn, &erasure)?;
            Ok((erased, erased != Erased::default()))
        })
        .await
    }
}

/// Appends `table`'s entries to `out`, one line each: the key, then the value as `show` renders
/// it.
fn dump_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &redb::ReadTransaction,
    table: TableDefinition<K, V>,
    show: impl Fn(V::SelfType<'_>) -> String,
    out: &mut String,
) -> Result<(), StoreError>
where
    for<'a> K::SelfType<'a>: std::fmt::Debug,
{
    let opened = txn.open_table(table).map_err(unavailable)?;
    for entry in opened.iter().map_err(unavailable)? {
        let (key, value) = entry.map_err(unavailable)?;
        out.push_str(&format!(
            "{}\t{:?}\t{}\n",
            table.name(),
            key.value(),
            show(value.value())
        ));
    }
    Ok(())
}

impl EmbeddedStore {
    /// Every key and value of every table, as text: for tests that prove what the file holds
    /// (an erasure leaves nothing personal). A table it does not know is an error, so a table
    /// added later cannot escape those tests unseen.
    pub fn dump_text(&self) -> Result<String, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let bytes = |value: &[u8]| String::from_utf8_lossy(value).into_owned();
        let debug = |value: &dyn std::fmt::Debug| format!("{value:?}");
        let mut out = String::new();
        let mut known = Vec::new();
        macro_rules! dump {
            ($table:expr, bytes) => {{
                known.push($table.name().to_owned());
                dump_table(&txn, $table, |value| bytes(value), &mut out)?;
            }};
            ($table:expr, debug) => {{
                known.push($table.name().to_owned());
                dump_table(&txn, $table, |value| debug(&value), &mut out)?;
            }};
        }
        dump!(CONTACTS, bytes);
        dump!(LINKS, debug);
        dump!(DEDUPE, debug);
        dump!(COUNTERS, debug);
        dump!(CONTACTS_BY_FIRST_SEEN, debug);
        dump!(JOBS, bytes);
        dump!(RULES, bytes);
        dump!(RULE_META, debug);
        dump!(OFFERS, bytes);
        dump!(SENDS, bytes);
        dump!(SENDS_BY_CONTACT, debug);
        dump!(CLICKS, bytes);
        dump!(CLICKS_BY_CONTACT, debug);
        dump!(CONVERSIONS, bytes);
        dump!(CONVERSIONS_BY_CONTACT, debug);
        dump!(REPORT, bytes);
        dump!(WIDGETS, bytes);
        dump!(REF_CODES, bytes);
        for table in txn.list_tables().map_err(unavailable)? {
            if !known.iter().any(|name| name == table.name()) {
                return Err(StoreError::Corrupt(format!(
                    "dump_text does not know the table {:?}",
                    table.name()
                )));
            }
        }
        Ok(out)
    }
}
