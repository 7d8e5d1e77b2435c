//! Erasure in the embedded store: one write transaction deletes the contacts and rewrites the
//! person's revenue records, so an erasure is all or nothing.

use crate::contact::Contact;
use crate::contact::store::listing_position;
use crate::erasure::{Erased, Erasure, ErasureStore};
use crate::revenue::store::contact_key;
use crate::store::StoreError;
use crate::store::embedded::{
    CLICKS, CLICKS_BY_CONTACT, CONTACTS, CONTACTS_BY_FIRST_SEEN, CONVERSIONS,
    CONVERSIONS_BY_CONTACT, EmbeddedStore, LINKS, SENDS, SENDS_BY_CONTACT, decode, encode,
    unavailable,
};
use async_trait::async_trait;
use redb::{ReadableTable, TableDefinition, WriteTransaction};
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

/// What the erasure removed, and whether it removed anything (a recorded start is not
/// counted in `Erased` but must be committed too).
fn erase_in(txn: &WriteTransaction, erasure: &Erasure) -> Result<(Erased, bool), StoreError> {
    let instance = erasure.instance_id.as_str();
    let new_key = contact_key(&erasure.instance_id, &erasure.token);
    let mut erased = Erased::default();
    let mut removed_start = false;
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
        let start = crate::contact::store::business_first_key(&erasure.instance_id, contact_id);
        removed_start |= txn
            .open_table(super::BUSINESS_FIRST)
            .map_err(unavailable)?
            .remove(start.as_str())
            .map_err(unavailable)?
            .is_some();
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
    let changed = removed_start || erased != Erased::default();
    Ok((erased, changed))
}

#[async_trait]
impl ErasureStore for EmbeddedStore {
    async fn erase_contact(&self, erasure: &Erasure) -> Result<Erased, StoreError> {
        let erasure = erasure.clone();
        self.write(move |txn| erase_in(txn, &erasure)).await
    }
}
