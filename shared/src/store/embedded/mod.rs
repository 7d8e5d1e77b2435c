//! The embedded store: one redb file that survives restarts, for the local server and fast
//! tests. redb is pure Rust (no C toolchain needed), crash-safe with copy-on-write B-trees,
//! and its serialisable write transactions give the same all-or-nothing commit as a DynamoDB
//! transaction.
//!
//! This file holds the store itself (opening it, every table, the record codec); `engine` its
//! group-commit writer; the other files one store trait each, over the tables listed here.

mod catalog;
mod contacts;
mod engine;
mod erasure;
mod goals;
mod instances;
mod jobs;
mod outbound;
mod revenue;
mod rules;
mod spend;
mod widget;

use crate::store::StoreError;
use redb::{Database, Key, ReadableTable, TableDefinition, TableHandle, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;
use std::sync::Arc;

/// (instance, contact id) → contact.
const CONTACTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("contacts");
/// (instance, identifier) → the id of the contact it resolves to: a phone number or BSUID of
/// a contact filed under the other one, or the id of a contact merged into another. A key is
/// in `CONTACTS` or here, never both.
const LINKS: TableDefinition<(&str, &str), &str> = TableDefinition::new("contact_links");
/// Dedupe key → expiry (unix seconds).
const DEDUPE: TableDefinition<&str, i64> = TableDefinition::new("dedupe");
/// (instance, day, counter name) → count.
const COUNTERS: TableDefinition<(&str, &str, &str), u64> = TableDefinition::new("counters");
/// (instance, listing position) → contact id: the newest-first listing.
const CONTACTS_BY_FIRST_SEEN: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("contacts_by_first_seen");
/// (instance, job id) → backfill job.
const JOBS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("backfill_jobs");
/// (instance, rule id) → rule.
const RULES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("rules");
/// Instance → (rule count, rules version).
const RULE_META: TableDefinition<&str, (u64, u64)> = TableDefinition::new("rule_meta");
/// Offer id → offer.
const OFFERS: TableDefinition<&str, &[u8]> = TableDefinition::new("offers");
/// Code → send.
const SENDS: TableDefinition<&str, &[u8]> = TableDefinition::new("sends");
/// (contact key, `sent_at#code`) → code.
const SENDS_BY_CONTACT: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("sends_by_contact");
/// Click id → click.
const CLICKS: TableDefinition<&str, &[u8]> = TableDefinition::new("clicks");
/// (contact key, click position) → click id.
const CLICKS_BY_CONTACT: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("clicks_by_contact");
/// Conversion key → conversion.
const CONVERSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("conversions");
/// (contact key, `converted_at#conversion key`) → conversion key.
const CONVERSIONS_BY_CONTACT: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("conversions_by_contact");
/// (click id, conversion key) → nothing: the `unknown_click` conversions waiting for a click.
const WAITING_FOR_CLICK: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("conversions_waiting_for_click");
/// (dimension, day, key, currency) → tally.
const REPORT: TableDefinition<(&str, &str, &str, &str), &[u8]> =
    TableDefinition::new("report_counters");
/// Instance → widget configuration.
const WIDGETS: TableDefinition<&str, &[u8]> = TableDefinition::new("widgets");
/// Code → ref code.
const REF_CODES: TableDefinition<&str, &[u8]> = TableDefinition::new("ref_codes");
/// (day, spend row key) → spend row.
const SPEND: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("spend");
/// Ad id → the ad's names.
const AD_NAMES: TableDefinition<&str, &[u8]> = TableDefinition::new("ad_names");
/// Instance id → its goal set.
const GOALS: TableDefinition<&str, &[u8]> = TableDefinition::new("goals");
/// (catalog, product id) → catalog product.
const PRODUCTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("products");
/// Instance id → nothing: the instances with a contact or a rule.
const INSTANCES: TableDefinition<&str, ()> = TableDefinition::new("instances");
/// The business's first outbound message to a person not yet a contact, by
/// `contact::store::business_first_key`.
const BUSINESS_FIRST: TableDefinition<&str, &[u8]> = TableDefinition::new("business_first");
/// Instance id → its destination set.
const DESTINATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("destinations");
/// (instance, destination, delivery key) → delivery.
const DELIVERIES: TableDefinition<(&str, &str, &str), &[u8]> = TableDefinition::new("deliveries");
/// (instance, destination, listed key) → delivery key: the newest-first listing.
const DELIVERIES_BY_TIME: TableDefinition<(&str, &str, &str), &str> =
    TableDefinition::new("deliveries_by_time");
/// Secret reference → the credentials (the local secret vault).
const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("secrets");

/// `$each!(TABLE, shown)` for every table of the store: the one list that `open` creates and
/// `dump_text` reads. `shown` says how a dump shows the values: `bytes`, encoded records as
/// text; `debug`, plain values; `hidden`, nothing (secrets).
macro_rules! every_table {
    ($each:ident) => {
        $each!(CONTACTS, bytes);
        $each!(LINKS, debug);
        $each!(DEDUPE, debug);
        $each!(COUNTERS, debug);
        $each!(CONTACTS_BY_FIRST_SEEN, debug);
        $each!(JOBS, bytes);
        $each!(RULES, bytes);
        $each!(RULE_META, debug);
        $each!(OFFERS, bytes);
        $each!(SENDS, bytes);
        $each!(SENDS_BY_CONTACT, debug);
        $each!(CLICKS, bytes);
        $each!(CLICKS_BY_CONTACT, debug);
        $each!(CONVERSIONS, bytes);
        $each!(CONVERSIONS_BY_CONTACT, debug);
        $each!(WAITING_FOR_CLICK, debug);
        $each!(REPORT, bytes);
        $each!(WIDGETS, bytes);
        $each!(REF_CODES, bytes);
        $each!(INSTANCES, debug);
        $each!(SPEND, bytes);
        $each!(AD_NAMES, bytes);
        $each!(GOALS, bytes);
        $each!(PRODUCTS, bytes);
        $each!(BUSINESS_FIRST, bytes);
        $each!(DESTINATIONS, bytes);
        $each!(DELIVERIES, bytes);
        $each!(DELIVERIES_BY_TIME, debug);
        $each!(SECRETS, hidden);
    };
}

/// Every store in one embedded redb database file, for the local server and tests.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    /// Whether a commit waits for fsync (always, but for bulk loads in benchmarks).
    durable: bool,
    writes: Arc<engine::WriteQueue>,
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn encode(value: &impl Serialize) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Stores `record` under `key` in `table` if the key is already there (`must_exist`) or not
/// yet (`!must_exist`); answers whether it did.
fn put_record(
    txn: &WriteTransaction,
    table: TableDefinition<&str, &[u8]>,
    key: &str,
    record: &impl Serialize,
    must_exist: bool,
) -> Result<bool, StoreError> {
    let mut table = txn.open_table(table).map_err(unavailable)?;
    let exists = table.get(key).map_err(unavailable)?.is_some();
    if exists != must_exist {
        return Ok(false);
    }
    table
        .insert(key, encode(record)?.as_slice())
        .map_err(unavailable)?;
    Ok(true)
}

/// A record an instance keeps as one, changed under a version check (goals, destinations).
trait Versioned: Serialize + DeserializeOwned {
    fn version(&self) -> u64;
}

impl Versioned for crate::goals::GoalSet {
    fn version(&self) -> u64 {
        self.version
    }
}

impl Versioned for crate::outbound::DestinationSet {
    fn version(&self) -> u64 {
        self.version
    }
}

impl EmbeddedStore {
    /// Stores `record` under `key` in `table` if the stored one is still at
    /// `expected_version` (0: none stored); `VersionConflict` otherwise, writing nothing.
    async fn save_versioned<T: Versioned>(
        &self,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
        key: &str,
        record: &T,
        expected_version: u64,
    ) -> Result<crate::store::CommitOutcome, StoreError> {
        use crate::store::CommitOutcome;
        let encoded = encode(record)?;
        let key = key.to_owned();
        self.write(move |txn| {
            let mut opened = txn.open_table(table).map_err(unavailable)?;
            let stored = match opened.get(key.as_str()).map_err(unavailable)? {
                Some(bytes) => decode::<T>(bytes.value())?.version(),
                None => 0,
            };
            if stored != expected_version {
                return Ok((CommitOutcome::VersionConflict, false));
            }
            opened
                .insert(key.as_str(), encoded.as_slice())
                .map_err(unavailable)?;
            Ok((CommitOutcome::Applied, true))
        })
        .await
    }

    /// Opens (or creates) the store file at `path`, creating its folder if needed.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(unavailable)?;
        }
        let db = Database::create(path).map_err(unavailable)?;
        let txn = db.begin_write().map_err(unavailable)?;
        let registry_is_new = !txn
            .list_tables()
            .map_err(unavailable)?
            .any(|table| table.name() == INSTANCES.name());
        // Every table exists from the start, so reads never meet a missing one.
        macro_rules! create {
            ($table:expr, $shown:ident) => {
                txn.open_table($table).map_err(unavailable)?;
            };
        }
        every_table!(create);
        if registry_is_new {
            instances::register_existing(&txn)?;
        }
        txn.commit().map_err(unavailable)?;
        Ok(Self {
            db: Arc::new(db),
            durable: true,
            writes: Arc::default(),
        })
    }

    /// The same store, but commits return before they reach the disk: a crash may lose the
    /// last ones. Only for loading benchmark data; never for the engine.
    pub fn without_fsync(mut self) -> Self {
        self.durable = false;
        self
    }

    /// The record stored under `key` in `table`, read in a transaction of its own.
    fn load<'k, K: Key + 'static, T: DeserializeOwned>(
        &self,
        table: TableDefinition<K, &[u8]>,
        key: K::SelfType<'k>,
    ) -> Result<Option<T>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let table = txn.open_table(table).map_err(unavailable)?;
        let found = table.get(key).map_err(unavailable)?;
        found.map(|bytes| decode(bytes.value())).transpose()
    }

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
            ($table:expr, hidden) => {{
                known.push($table.name().to_owned());
                dump_table(&txn, $table, |_| "<secret>".to_owned(), &mut out)?;
            }};
        }
        every_table!(dump);
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

/// Appends `table`'s entries to `out`, one line each: the key, then the value as `show` renders
/// it.
fn dump_table<K: Key + 'static, V: redb::Value + 'static>(
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
