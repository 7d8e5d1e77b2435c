//! DynamoDB implementation of the store traits.
//!
//! Tables (declared in `template.yaml`):
//! - contacts: `instance_id` (hash) + `contact_id` (range), one item per contact, with a
//!   `version` number for optimistic concurrency; and one link item per identifier that
//!   resolves to a contact filed under another id (`contact_id` = the identifier,
//!   `links_to` = that contact's id, nothing else). Sharing the key space, a contact and a link
//!   of one id exclude each other in every conditional write;
//! - dedupe: `dedupe_key` (hash) with TTL on `expires_at` (unix seconds);
//! - counters: `instance_id` + `day` (`YYYY-MM-DD`), one number attribute per counter;
//! - rules: `instance_id` + `rule_id`, plus one `#meta` item per instance holding
//!   `rule_count` and `version`.

pub mod erasure;
pub mod revenue;
pub mod widget;

use crate::contact::Contact;
use crate::contact::counters::CounterBump;
use crate::contact::store::{
    ContactPage, ContactStore, ContactUpdate, ContactWindow, CounterDays, IdentityCommit,
    listing_position,
};
use crate::ids::{ContactId, InstanceId};
use crate::matching::backfill::BackfillJob;
use crate::matching::backfill::JobStore;
use crate::rules::store::{RuleStore, RuleWrite};
use crate::rules::{Rule, RuleId};
use crate::store::{CommitOutcome, DedupeClaim, StoreError};
use async_trait::async_trait;
pub use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::builders::PutBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, Projection, ProjectionType, Put, ScalarAttributeType,
    TimeToLiveSpecification, TransactWriteItem, Update,
};
use std::collections::{BTreeMap, HashMap};

/// The DynamoDB tables of the contact, rule and job stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    /// Contacts and identifier links (`CONTACTS_TABLE`).
    pub contacts: String,
    /// Dedupe claims of processed events (`DEDUPE_TABLE`).
    pub dedupe: String,
    /// Per-day counters (`COUNTERS_TABLE`).
    pub counters: String,
    /// Rules and each instance's rules version (`RULES_TABLE`).
    pub rules: String,
    /// Backfill jobs (`JOBS_TABLE`).
    pub jobs: String,
}

impl TableNames {
    /// Reads `CONTACTS_TABLE`, `DEDUPE_TABLE`, `COUNTERS_TABLE`, `RULES_TABLE` and `JOBS_TABLE`.
    pub fn from_env() -> Result<Self, crate::config::ConfigError> {
        Ok(Self {
            contacts: crate::config::required("CONTACTS_TABLE")?,
            dedupe: crate::config::required("DEDUPE_TABLE")?,
            counters: crate::config::required("COUNTERS_TABLE")?,
            rules: crate::config::required("RULES_TABLE")?,
            jobs: crate::config::required("JOBS_TABLE")?,
        })
    }

    /// Names with a common prefix, for test runs sharing one DynamoDB Local.
    pub fn prefixed(prefix: &str) -> Self {
        Self {
            contacts: format!("{prefix}-contacts"),
            dedupe: format!("{prefix}-dedupe"),
            counters: format!("{prefix}-counters"),
            rules: format!("{prefix}-rules"),
            jobs: format!("{prefix}-jobs"),
        }
    }
}

/// The contacts index that lists an instance's contacts newest first, and its sort key.
const LISTING_INDEX: &str = "by_first_seen";
const LISTING_KEY: &str = "first_seen_key";

/// The attribute that makes a contacts item a link, naming the contact it resolves to.
const LINKS_TO: &str = "links_to";

/// Sort key of the per-instance item that counts rules and versions them; `#` cannot start a
/// rule id.
const RULE_META_KEY: &str = "#meta";

/// The contact, rule and job stores on DynamoDB.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    tables: TableNames,
}

pub(super) fn unavailable<E>(error: E) -> StoreError
where
    E: std::error::Error + 'static,
{
    StoreError::Unavailable(DisplayErrorContext(&error).to_string())
}

type Item = HashMap<String, AttributeValue>;

pub(super) fn to_item(value: &impl serde::Serialize) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A conditional `PutItem`'s answer: `true` written, `false` its condition did not hold.
pub(super) fn conditional_put<T>(
    result: Result<T, SdkError<aws_sdk_dynamodb::operation::put_item::PutItemError>>,
) -> Result<bool, StoreError> {
    match result {
        Ok(_) => Ok(true),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(false)
        }
        Err(error) => Err(unavailable(error)),
    }
}

pub(super) fn string(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

pub(super) fn number(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl DynamoStore {
    /// A store over `tables` through `client`.
    pub fn new(client: Client, tables: TableNames) -> Self {
        Self { client, tables }
    }

    /// Opens the client's first connection (DNS, TCP, TLS) with one read of a key that never
    /// exists, so the first request after a cold start does not pay for it. Errors are left to
    /// that request.
    pub async fn warm_up(&self) {
        let _ = self
            .client
            .get_item()
            .table_name(&self.tables.contacts)
            .key("instance_id", string("#warm"))
            .key("contact_id", string("#warm"))
            .send()
            .await;
    }

    /// For Lambda: the client from the shared SDK configuration, table names from the
    /// environment (see [`TableNames::from_env`]).
    pub fn from_env(client: &Client) -> Result<Self, crate::config::ConfigError> {
        Ok(Self::new(client.clone(), TableNames::from_env()?))
    }

    /// Creates the tables as `template.yaml` declares them; for tests and local emulators.
    pub async fn create_tables(&self) -> Result<(), StoreError> {
        let listing = TableIndex {
            name: LISTING_INDEX,
            hash: "instance_id",
            range: LISTING_KEY,
        };
        let tables = [
            TableSpec::keyed(&self.tables.contacts, "instance_id", Some("contact_id"))
                .with_index(listing),
            TableSpec::keyed(&self.tables.dedupe, "dedupe_key", None).with_ttl("expires_at"),
            TableSpec::keyed(&self.tables.counters, "instance_id", Some("day")),
            TableSpec::keyed(&self.tables.rules, "instance_id", Some("rule_id")),
            TableSpec::keyed(&self.tables.jobs, "instance_id", Some("job_id")),
        ];
        for table in &tables {
            create_table(&self.client, table).await?;
        }
        Ok(())
    }

    fn dedupe_put(&self, claim: &DedupeClaim) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.tables.dedupe)
            .item("dedupe_key", string(&claim.key))
            .item("expires_at", number(claim.expires_at.unix_seconds()))
            // TTL deletion lags by up to two days; an expired claim counts as gone.
            .condition_expression("attribute_not_exists(dedupe_key) OR expires_at < :now")
            .expression_attribute_values(":now", number(claim.now.unix_seconds()))
            .build()
            .map_err(unavailable)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn contact_put(
        &self,
        contact: &Contact,
        expected_version: Option<u64>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut item = to_item(contact)?;
        item.insert(LISTING_KEY.to_owned(), string(&listing_position(contact)));
        let put = Put::builder()
            .table_name(&self.tables.contacts)
            .set_item(Some(item));
        let put = match expected_version {
            None => put.condition_expression("attribute_not_exists(contact_id)"),
            Some(version) => put
                .condition_expression("#version = :expected")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expected", number(version)),
        };
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(unavailable)?)
            .build())
    }
}

impl DynamoStore {
    /// A link item from `identifier` to `target`, written under the condition `condition` adds.
    fn link_put(
        &self,
        instance_id: &InstanceId,
        identifier: &ContactId,
        target: &ContactId,
        condition: impl FnOnce(PutBuilder) -> PutBuilder,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.tables.contacts)
            .item("instance_id", string(instance_id.as_str()))
            .item("contact_id", string(identifier.as_str()))
            .item(LINKS_TO, string(target.as_str()));
        Ok(TransactWriteItem::builder()
            .put(condition(put).build().map_err(unavailable)?)
            .build())
    }

    /// The link puts of `commit`: a new identifier must be free (neither a contact nor a link);
    /// an absorbed contact must still be at its version (a link has none), and its links must
    /// still point at it.
    fn identity_items(
        &self,
        commit: &IdentityCommit,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let instance = &commit.contact.instance_id;
        let survivor = &commit.contact.contact_id;
        let mut items = Vec::new();
        for identifier in &commit.new_links {
            items.push(self.link_put(instance, identifier, survivor, |put| {
                put.condition_expression("attribute_not_exists(contact_id)")
            })?);
        }
        for absorbed in &commit.absorbed {
            items.push(
                self.link_put(instance, &absorbed.contact_id, survivor, |put| {
                    put.condition_expression("#version = :version")
                        .expression_attribute_names("#version", "version")
                        .expression_attribute_values(":version", number(absorbed.version))
                })?,
            );
            for identifier in &absorbed.linked_ids {
                items.push(self.link_put(instance, identifier, survivor, |put| {
                    put.condition_expression(format!("{LINKS_TO} = :from"))
                        .expression_attribute_values(":from", string(absorbed.contact_id.as_str()))
                })?);
            }
        }
        Ok(items)
    }

    /// One `ADD` per instance and day (a transaction may touch an item only once).
    fn counter_updates(
        &self,
        counters: &[CounterBump],
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut by_day: BTreeMap<(&str, &str), Vec<&CounterBump>> = BTreeMap::new();
        for bump in counters {
            by_day
                .entry((bump.instance_id.as_str(), bump.day.as_str()))
                .or_default()
                .push(bump);
        }
        by_day
            .into_iter()
            .map(|((instance, day), bumps)| {
                let mut update = Update::builder()
                    .table_name(&self.tables.counters)
                    .key("instance_id", string(instance))
                    .key("day", string(day));
                let mut adds = Vec::new();
                for (index, bump) in bumps.iter().enumerate() {
                    update = update
                        .expression_attribute_names(format!("#c{index}"), bump.name.as_str())
                        .expression_attribute_values(format!(":d{index}"), number(bump.delta));
                    adds.push(format!("#c{index} :d{index}"));
                }
                let update = update
                    .update_expression(format!("ADD {}", adds.join(", ")))
                    .build()
                    .map_err(unavailable)?;
                Ok(TransactWriteItem::builder().update(update).build())
            })
            .collect()
    }

    /// Runs a transaction whose first item is a dedupe claim: a failed claim is a duplicate,
    /// any other failed condition a conflict.
    async fn transact_claimed(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<CommitOutcome, StoreError> {
        match self.transact(items).await? {
            Ok(()) => Ok(CommitOutcome::Applied),
            Err(codes) if codes.first().is_some_and(is_conditional_failure) => {
                Ok(CommitOutcome::Duplicate)
            }
            Err(codes) if codes.iter().any(is_conflict) => Ok(CommitOutcome::VersionConflict),
            Err(codes) => Err(cancelled(&codes)),
        }
    }

    /// The contacts item of `id` (a contact or a link), read consistently.
    async fn contacts_item(
        &self,
        instance_id: &InstanceId,
        id: &str,
    ) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.contacts)
            .key("instance_id", string(instance_id.as_str()))
            .key("contact_id", string(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(output.item)
    }

    /// Runs a transaction; a cancelled one answers the reason code of each item.
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Result<(), Vec<Option<String>>>, StoreError> {
        transact(&self.client, items).await
    }

    fn rule_put(&self, rule: &Rule, condition: &str) -> Result<TransactWriteItem, StoreError> {
        let item = to_item(rule)?;
        let put = Put::builder()
            .table_name(&self.tables.rules)
            .set_item(Some(item))
            .item("rule_id", string(rule.id.as_str()))
            .condition_expression(condition)
            .build()
            .map_err(unavailable)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Bumps the instance's rules version and moves its rule count by `count_change`; when
    /// `max_rules` is given, only while the count is below it.
    fn rule_meta_update(
        &self,
        instance_id: &InstanceId,
        count_change: i64,
        max_rules: Option<usize>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.tables.rules)
            .key("instance_id", string(instance_id.as_str()))
            .key("rule_id", string(RULE_META_KEY))
            .update_expression("ADD version :one, rule_count :change")
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":change", number(count_change));
        if let Some(max_rules) = max_rules {
            update = update
                .condition_expression("attribute_not_exists(rule_count) OR rule_count < :max")
                .expression_attribute_values(":max", number(max_rules));
        }
        Ok(TransactWriteItem::builder()
            .update(update.build().map_err(unavailable)?)
            .build())
    }

    fn rule_key(&self, instance_id: &InstanceId, rule_id: &str) -> Item {
        HashMap::from([
            ("instance_id".to_owned(), string(instance_id.as_str())),
            ("rule_id".to_owned(), string(rule_id)),
        ])
    }
}

/// Runs a transaction; a cancelled one answers the reason code of each item.
pub(super) async fn transact(
    client: &Client,
    items: Vec<TransactWriteItem>,
) -> Result<Result<(), Vec<Option<String>>>, StoreError> {
    let result = client
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await;
    match result {
        Ok(_) => Ok(Ok(())),
        Err(SdkError::ServiceError(service)) => match service.err() {
            TransactWriteItemsError::TransactionCanceledException(cancelled) => Ok(Err(cancelled
                .cancellation_reasons()
                .iter()
                .map(|reason| reason.code().map(str::to_owned))
                .collect())),
            other => Err(StoreError::Unavailable(
                DisplayErrorContext(other).to_string(),
            )),
        },
        Err(other) => Err(unavailable(other)),
    }
}

/// A transaction cancelled for a reason other than its conditions: a fault to retry.
pub(super) fn cancelled(codes: &[Option<String>]) -> StoreError {
    StoreError::Unavailable(format!("transaction cancelled: {codes:?}"))
}

pub(super) fn is_conditional_failure(code: &Option<String>) -> bool {
    code.as_deref() == Some("ConditionalCheckFailed")
}

pub(super) fn is_conflict(code: &Option<String>) -> bool {
    matches!(
        code.as_deref(),
        Some("ConditionalCheckFailed" | "TransactionConflict")
    )
}

/// A global secondary index (string keys, all attributes projected).
pub(super) struct TableIndex<'a> {
    pub name: &'a str,
    pub hash: &'a str,
    pub range: &'a str,
}

/// A table as `template.yaml` declares it, for tests and local emulators: on-demand, string
/// keys, at most one index, TTL on one attribute if any.
pub(super) struct TableSpec<'a> {
    name: &'a str,
    hash: &'a str,
    range: Option<&'a str>,
    index: Option<TableIndex<'a>>,
    ttl: Option<&'a str>,
}

impl<'a> TableSpec<'a> {
    pub fn keyed(name: &'a str, hash: &'a str, range: Option<&'a str>) -> Self {
        Self {
            name,
            hash,
            range,
            index: None,
            ttl: None,
        }
    }

    pub fn with_index(mut self, index: TableIndex<'a>) -> Self {
        self.index = Some(index);
        self
    }

    pub fn with_ttl(mut self, attribute: &'a str) -> Self {
        self.ttl = Some(attribute);
        self
    }
}

/// Creates `spec`'s table (and turns its TTL on).
pub(super) async fn create_table(client: &Client, spec: &TableSpec<'_>) -> Result<(), StoreError> {
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(unavailable)
    };
    let mut attributes = vec![spec.hash];
    attributes.extend(spec.range);
    if let Some(index) = &spec.index {
        attributes.extend([index.hash, index.range]);
    }
    attributes.sort_unstable();
    attributes.dedup();
    let mut request = client
        .create_table()
        .table_name(spec.name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(spec.hash, KeyType::Hash)?);
    if let Some(range) = spec.range {
        request = request.key_schema(key(range, KeyType::Range)?);
    }
    for attribute in attributes {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attribute)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(unavailable)?,
        );
    }
    if let Some(index) = &spec.index {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .key_schema(key(index.hash, KeyType::Hash)?)
                .key_schema(key(index.range, KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(unavailable)?,
        );
    }
    request.send().await.map_err(unavailable)?;
    if let Some(attribute) = spec.ttl {
        client
            .update_time_to_live()
            .table_name(spec.name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(attribute)
                    .build()
                    .map_err(unavailable)?,
            )
            .send()
            .await
            .map_err(unavailable)?;
    }
    Ok(())
}

#[async_trait]
impl ContactStore for DynamoStore {
    async fn load_contact(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
    ) -> Result<Option<Contact>, StoreError> {
        let Some(mut item) = self.contacts_item(instance_id, contact_id.as_str()).await? else {
            return Ok(None);
        };
        if let Some(AttributeValue::S(target)) = item.remove(LINKS_TO) {
            // A link always names a contact, never another link: merges repoint every link.
            return match self.contacts_item(instance_id, &target).await? {
                Some(item) if !item.contains_key(LINKS_TO) => from_item(item).map(Some),
                Some(_) => Err(StoreError::Corrupt("a link names a link".to_owned())),
                None => Ok(None),
            };
        }
        from_item(item).map(Some)
    }

    async fn commit_identity(
        &self,
        claim: &DedupeClaim,
        commit: &IdentityCommit,
    ) -> Result<CommitOutcome, StoreError> {
        let mut items = vec![
            self.dedupe_put(claim)?,
            self.contact_put(&commit.contact, commit.expected_version)?,
        ];
        items.extend(self.identity_items(commit)?);
        items.extend(self.counter_updates(&commit.counters)?);
        self.transact_claimed(items).await
    }

    async fn commit_event(
        &self,
        claim: &DedupeClaim,
        contact: &Contact,
        expected_version: Option<u64>,
        counters: &[CounterBump],
    ) -> Result<CommitOutcome, StoreError> {
        let mut items = vec![
            self.dedupe_put(claim)?,
            self.contact_put(contact, expected_version)?,
        ];
        items.extend(self.counter_updates(counters)?);
        self.transact_claimed(items).await
    }

    async fn update_contact(
        &self,
        contact: &Contact,
        expected_version: u64,
        counters: &[CounterBump],
    ) -> Result<CommitOutcome, StoreError> {
        let mut items = vec![self.contact_put(contact, Some(expected_version))?];
        items.extend(self.counter_updates(counters)?);
        match self.transact(items).await? {
            Ok(()) => Ok(CommitOutcome::Applied),
            Err(codes) if codes.iter().any(is_conflict) => Ok(CommitOutcome::VersionConflict),
            Err(codes) => Err(cancelled(&codes)),
        }
    }

    /// One transaction per contact: a page of 500 would exceed a transaction's 100 items, and
    /// one conflict must fail only its own contact.
    async fn update_contacts(
        &self,
        updates: &[ContactUpdate],
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        crate::contact::store::update_each(self, updates).await
    }

    async fn list_contacts(
        &self,
        instance_id: &InstanceId,
        window: &ContactWindow,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ContactPage, StoreError> {
        let (low, until) = (window.since.to_string(), window.until.to_string());
        // BETWEEN is inclusive: the upper bound is either `until` itself, which no position
        // equals (positions continue with `#`), or the cursor's contact, skipped below.
        let high = match after {
            Some(after) if after < until.as_str() => after.to_owned(),
            _ => until,
        };
        let mut page = ContactPage::default();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.tables.contacts)
                .index_name(LISTING_INDEX)
                .key_condition_expression(
                    "instance_id = :instance AND #position BETWEEN :low AND :high",
                )
                .expression_attribute_names("#position", LISTING_KEY)
                .expression_attribute_values(":instance", string(instance_id.as_str()))
                .expression_attribute_values(":low", string(&low))
                .expression_attribute_values(":high", string(&high))
                .scan_index_forward(false)
                .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for mut item in output.items.unwrap_or_default() {
                let position = match item.remove(LISTING_KEY) {
                    Some(AttributeValue::S(position)) => position,
                    _ => {
                        return Err(StoreError::Corrupt(
                            "contact without a listing key".to_owned(),
                        ));
                    }
                };
                if position == high {
                    continue;
                }
                if page.contacts.len() == limit {
                    return Ok(page);
                }
                page.contacts.push(from_item(item)?);
                page.next = Some(position);
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => {
                    page.next = None;
                    return Ok(page);
                }
            }
        }
    }

    async fn load_counter_days(
        &self,
        instance_id: &InstanceId,
        first_day: &str,
        last_day: &str,
    ) -> Result<CounterDays, StoreError> {
        let mut days = CounterDays::new();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.tables.counters)
                .key_condition_expression(
                    "instance_id = :instance AND #day BETWEEN :first AND :last",
                )
                .expression_attribute_names("#day", "day")
                .expression_attribute_values(":instance", string(instance_id.as_str()))
                .expression_attribute_values(":first", string(first_day))
                .expression_attribute_values(":last", string(last_day))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for mut item in output.items.unwrap_or_default() {
                let Some(AttributeValue::S(day)) = item.remove("day") else {
                    continue;
                };
                let counters = days.entry(day).or_default();
                for (name, value) in item {
                    if let AttributeValue::N(count) = value {
                        let count = count
                            .parse()
                            .map_err(|_| StoreError::Corrupt(format!("counter {name}")))?;
                        counters.insert(name, count);
                    }
                }
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(days),
            }
        }
    }
}

#[async_trait]
impl RuleStore for DynamoStore {
    async fn list_rules(&self, instance_id: &InstanceId) -> Result<Vec<Rule>, StoreError> {
        let mut rules = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.tables.rules)
                .key_condition_expression("instance_id = :instance")
                .expression_attribute_values(":instance", string(instance_id.as_str()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in output.items.unwrap_or_default() {
                let is_meta = matches!(item.get("rule_id"), Some(AttributeValue::S(id)) if id == RULE_META_KEY);
                if !is_meta {
                    rules.push(from_item(item)?);
                }
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(rules),
            }
        }
    }

    async fn load_rule(
        &self,
        instance_id: &InstanceId,
        rule_id: &RuleId,
    ) -> Result<Option<Rule>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.rules)
            .set_key(Some(self.rule_key(instance_id, rule_id.as_str())))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output.item.map(from_item).transpose()
    }

    async fn create_rule(&self, rule: &Rule, max_rules: usize) -> Result<RuleWrite, StoreError> {
        let items = vec![
            self.rule_put(rule, "attribute_not_exists(rule_id)")?,
            self.rule_meta_update(&rule.instance_id, 1, Some(max_rules))?,
        ];
        match self.transact(items).await? {
            Ok(()) => Ok(RuleWrite::Done),
            Err(codes) if codes.get(1).is_some_and(is_conditional_failure) => {
                Ok(RuleWrite::LimitReached)
            }
            Err(codes) => Err(cancelled(&codes)),
        }
    }

    async fn replace_rule(&self, rule: &Rule) -> Result<RuleWrite, StoreError> {
        let items = vec![
            self.rule_put(rule, "attribute_exists(rule_id)")?,
            self.rule_meta_update(&rule.instance_id, 0, None)?,
        ];
        match self.transact(items).await? {
            Ok(()) => Ok(RuleWrite::Done),
            Err(codes) if codes.first().is_some_and(is_conditional_failure) => {
                Ok(RuleWrite::NotFound)
            }
            Err(codes) => Err(cancelled(&codes)),
        }
    }

    async fn delete_rule(
        &self,
        instance_id: &InstanceId,
        rule_id: &RuleId,
    ) -> Result<RuleWrite, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.tables.rules)
            .set_key(Some(self.rule_key(instance_id, rule_id.as_str())))
            .condition_expression("attribute_exists(rule_id)")
            .build()
            .map_err(unavailable)?;
        let items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            self.rule_meta_update(instance_id, -1, None)?,
        ];
        match self.transact(items).await? {
            Ok(()) => Ok(RuleWrite::Done),
            Err(codes) if codes.first().is_some_and(is_conditional_failure) => {
                Ok(RuleWrite::NotFound)
            }
            Err(codes) => Err(cancelled(&codes)),
        }
    }

    async fn rules_version(&self, instance_id: &InstanceId) -> Result<u64, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.rules)
            .set_key(Some(self.rule_key(instance_id, RULE_META_KEY)))
            .projection_expression("version")
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        match output.item.as_ref().and_then(|item| item.get("version")) {
            Some(AttributeValue::N(version)) => version
                .parse()
                .map_err(|_| StoreError::Corrupt("rules version".to_owned())),
            _ => Ok(0),
        }
    }
}

#[async_trait]
impl JobStore for DynamoStore {
    async fn create_job(&self, job: &BackfillJob) -> Result<(), StoreError> {
        let item = to_item(job)?;
        self.client
            .put_item()
            .table_name(&self.tables.jobs)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(job_id)")
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn load_job(
        &self,
        instance_id: &InstanceId,
        job_id: &crate::ids::JobId,
    ) -> Result<Option<BackfillJob>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.jobs)
            .key("instance_id", string(instance_id.as_str()))
            .key("job_id", string(job_id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output.item.map(from_item).transpose()
    }

    async fn save_job(
        &self,
        job: &BackfillJob,
        expected_version: u64,
    ) -> Result<CommitOutcome, StoreError> {
        let item = to_item(job)?;
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.jobs)
            .set_item(Some(item))
            .condition_expression("#version = :expected")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":expected", number(expected_version))
            .send()
            .await;
        match result {
            Ok(_) => Ok(CommitOutcome::Applied),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(CommitOutcome::VersionConflict)
            }
            Err(error) => Err(unavailable(error)),
        }
    }
}
