//! DynamoDB implementation of the store traits: this file holds the contact, rule and job
//! store (`DynamoStore`) and its tables; `toolkit` what every file here builds on; the other
//! files one store trait each (`revenue`, `widget` and `erasure` with their own store types).
//!
//! Tables of `DynamoStore` (declared in `template.yaml`):
//! - contacts: `instance_id` (hash) + `contact_id` (range), one item per contact, with a
//!   `version` number for optimistic concurrency; and one link item per identifier that
//!   resolves to a contact filed under another id (`contact_id` = the identifier,
//!   `links_to` = that contact's id, nothing else). Sharing the key space, a contact and a link
//!   of one id exclude each other in every conditional write;
//! - dedupe: `dedupe_key` (hash) with TTL on `expires_at` (unix seconds);
//! - counters: `instance_id` + `day` (`YYYY-MM-DD`), one number attribute per counter; and
//!   the instance registry, one small item per instance under `instance_id` = `#instances`
//!   (no instance id holds `#`) with the instance's id as `day`;
//! - rules: `instance_id` + `rule_id`, plus one `#meta` item per instance holding
//!   `rule_count` and `version`;
//! - jobs: `instance_id` + `job_id`;
//! - goals: `instance_id`, one item holding the instance's goal set and its version.

pub mod catalog;
mod contacts;
pub mod erasure;
mod goals;
mod instances;
mod jobs;
pub mod outbound;
pub mod revenue;
mod rules;
pub mod spend;
mod toolkit;
pub mod widget;

use crate::store::StoreError;
use toolkit::{TableIndex, TableSpec, create_tables, key, store_over, table_names, warm_up};

pub use aws_sdk_dynamodb::Client;

table_names!(
    /// The DynamoDB tables of the contact, rule and job stores.
    TableNames {
        /// Contacts and identifier links (`CONTACTS_TABLE`).
        contacts: "CONTACTS_TABLE",
        /// Dedupe claims of processed events (`DEDUPE_TABLE`).
        dedupe: "DEDUPE_TABLE",
        /// Per-day counters (`COUNTERS_TABLE`).
        counters: "COUNTERS_TABLE",
        /// Rules and each instance's rules version (`RULES_TABLE`).
        rules: "RULES_TABLE",
        /// Backfill jobs (`JOBS_TABLE`).
        jobs: "JOBS_TABLE",
        /// Each instance's goals, one item (`GOALS_TABLE`).
        goals: "GOALS_TABLE",
    }
);

/// The contacts index that lists an instance's contacts newest first, and its sort key. It
/// projects the keys only: a contact's write that keeps its first-seen time then costs the
/// index nothing (with all attributes projected, every write copied the whole item to it).
const LISTING_INDEX: &str = "by_first_seen";
const LISTING_KEY: &str = "first_seen_key";

/// The attribute that makes a contacts item a link, naming the contact it resolves to.
const LINKS_TO: &str = "links_to";

/// The attribute that makes a contacts item a start the business recorded before the person
/// had a contact (`sources::BusinessFirst`), and its TTL attribute (the table's).
const RECORDED_START: &str = "recorded_start";
const START_EXPIRES: &str = "expires_at";

/// Sort key of the per-instance item that counts rules and versions them; `#` cannot start a
/// rule id.
const RULE_META_KEY: &str = "#meta";

store_over!(
    /// The contact, rule, job and instance stores on DynamoDB.
    DynamoStore,
    TableNames,
    registered: std::sync::Arc<instances::Registered>
);

impl DynamoStore {
    /// Opens the client's first connection (DNS, TCP, TLS) with one read of a key that never
    /// exists, so the first request after a cold start does not pay for it. Errors are left to
    /// that request.
    pub async fn warm_up(&self) {
        let warm = key(&[("instance_id", "#warm"), ("contact_id", "#warm")]);
        warm_up(&self.client, &self.tables.contacts, warm).await;
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
                .with_index(listing)
                .keys_only()
                .with_ttl(START_EXPIRES),
            TableSpec::keyed(&self.tables.dedupe, "dedupe_key", None).with_ttl("expires_at"),
            TableSpec::keyed(&self.tables.counters, "instance_id", Some("day")),
            TableSpec::keyed(&self.tables.rules, "instance_id", Some("rule_id")),
            TableSpec::keyed(&self.tables.jobs, "instance_id", Some("job_id")),
            TableSpec::keyed(&self.tables.goals, "instance_id", None),
        ];
        create_tables(&self.client, &tables).await
    }
}

#[cfg(test)]
mod tests {
    use super::TableNames;
    use super::revenue::RevenueTables;
    use super::spend::SpendTables;
    use super::widget::WidgetTables;

    /// The test runs and benchmarks share one DynamoDB Local by these names.
    #[test]
    fn prefixed_names_are_the_prefix_and_the_table() {
        let named = |prefix: &str, table: &str| format!("{prefix}-{table}");
        assert_eq!(
            TableNames::prefixed("run"),
            TableNames {
                contacts: named("run", "contacts"),
                dedupe: named("run", "dedupe"),
                counters: named("run", "counters"),
                rules: named("run", "rules"),
                jobs: named("run", "jobs"),
                goals: named("run", "goals"),
            }
        );
        assert_eq!(
            RevenueTables::prefixed("run"),
            RevenueTables {
                offers: named("run", "offers"),
                sends: named("run", "sends"),
                clicks: named("run", "clicks"),
                conversions: named("run", "conversions"),
                report: named("run", "report"),
            }
        );
        assert_eq!(
            SpendTables::prefixed("run"),
            SpendTables {
                spend: named("run", "spend"),
                ad_names: named("run", "ad_names"),
            }
        );
        assert_eq!(
            WidgetTables::prefixed("run"),
            WidgetTables {
                widgets: named("run", "widgets"),
                refs: named("run", "refs"),
            }
        );
    }
}
