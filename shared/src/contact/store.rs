//! The contact store: contacts as the webhook and the matcher read and write them, with the
//! daily counters that change together with them.

use crate::contact::Contact;
use crate::contact::counters::CounterBump;
use crate::ids::{ContactId, InstanceId};
use crate::store::{CommitOutcome, DedupeClaim, StoreError};
use crate::time::Timestamp;
use async_trait::async_trait;
use std::collections::BTreeMap;

/// Contacts, as the webhook and the matcher read and write them, with the daily counters that
/// change together with them.
#[async_trait]
pub trait ContactStore: Send + Sync + 'static {
    /// The contact `contact_id` names: the contact of that id, or the one it is linked to (a
    /// phone number or BSUID of the same person, the id of a contact merged into it).
    async fn load_contact(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
    ) -> Result<Option<Contact>, StoreError>;

    /// The contact each of `identifiers` names (as `load_contact` answers it), the start
    /// recorded under those that name none, and whether `claim` is held already, read
    /// together (on DynamoDB in one round trip), so that a
    /// duplicate is known before it sends a write that would only be refused. The commit's
    /// condition on the claim stays what makes an event count once: this read may miss a claim
    /// made a moment ago, never report one that is not held.
    async fn load_for_event(
        &self,
        instance_id: &InstanceId,
        identifiers: &[ContactId],
        claim: &DedupeClaim,
    ) -> Result<EventRead, StoreError>;

    /// `commit_event` that also links `commit.new_links` to the contact and turns each
    /// absorbed contact (and the identifiers linked to it) into links to it, all or nothing:
    /// `VersionConflict` when an identifier to link is taken or an absorbed contact or link
    /// changed since it was read.
    async fn commit_identity(
        &self,
        claim: &DedupeClaim,
        commit: &IdentityCommit,
    ) -> Result<CommitOutcome, StoreError>;

    /// Atomically claims `claim`, writes `contact` and adds one to each of `counters`,
    /// provided the claim is not held and the stored contact is still at `expected_version`
    /// (`None`: it must not exist yet).
    async fn commit_event(
        &self,
        claim: &DedupeClaim,
        contact: &Contact,
        expected_version: Option<u64>,
        counters: &[CounterBump],
    ) -> Result<CommitOutcome, StoreError>;

    /// Atomically writes an existing `contact` still at `expected_version` and adds one to
    /// each of `counters`. Never answers `Duplicate`.
    async fn update_contact(
        &self,
        contact: &Contact,
        expected_version: u64,
        counters: &[CounterBump],
    ) -> Result<CommitOutcome, StoreError>;

    /// Many `update_contact`s, each applied or not on its own (one conflict fails only its
    /// item): backfill pages use it. Required, with no default, so that a wrapper (`Arc`, the
    /// fault injector) cannot forget to forward it and silently fall back to one write per
    /// contact; a store that cannot commit them together answers with `update_each`.
    async fn update_contacts(
        &self,
        updates: &[ContactUpdate],
    ) -> Result<Vec<CommitOutcome>, StoreError>;

    /// Every counter of one instance for each day from `first_day` to `last_day` (inclusive,
    /// `YYYY-MM-DD`) that has any: day → name → count. Absent counters are zero. One read,
    /// whatever the number of contacts.
    async fn load_counter_days(
        &self,
        instance_id: &InstanceId,
        first_day: &str,
        last_day: &str,
    ) -> Result<CounterDays, StoreError>;

    /// Records that the business wrote to `contact_id` at `start.at` before the person had a
    /// contact, keeping the earliest start recorded (a later one never overwrites it); nothing
    /// when `contact_id` names a contact already (the caller reads it after). Kept
    /// [`BUSINESS_FIRST_TTL_SECONDS`] past its time. `load_for_event` reads it with the
    /// contacts, and a commit that makes `contact_id` a contact or a link refuses
    /// (`VersionConflict`) while a start recorded there would apply to the contact it writes
    /// and is not on it (`sources::applies`), so no start is lost between read and commit.
    async fn record_business_first(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
        start: &crate::sources::BusinessFirst,
    ) -> Result<(), StoreError>;

    /// One page of an instance's contacts first seen in `[since, until)`, newest first,
    /// starting after `after` (exclusive). May return fewer than `limit`; `next` is `None` once
    /// the window is exhausted.
    async fn list_contacts(
        &self,
        instance_id: &InstanceId,
        window: &ContactWindow,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ContactPage, StoreError>;
}

/// How long a recorded start waits for the person's first message: a reply a month after a
/// template no longer says the business opened that conversation.
pub const BUSINESS_FIRST_TTL_SECONDS: i64 = 30 * 24 * 60 * 60;

/// The key a recorded start is kept under in the embedded store, and was on DynamoDB's dedupe
/// table before starts moved under the person's contacts key (erasure still deletes it there
/// until those expire): it begins with `#`, which no instance id holds, so it never meets a
/// dedupe claim's key (`<instance>#<event>`).
pub fn business_first_key(instance_id: &InstanceId, contact_id: &ContactId) -> String {
    format!(
        "#first_out#{}#{}",
        instance_id.as_str(),
        contact_id.as_str()
    )
}

/// `update_contacts` for a store that has no batch commit: one `update_contact` after another.
pub async fn update_each<S: ContactStore + ?Sized>(
    store: &S,
    updates: &[ContactUpdate],
) -> Result<Vec<CommitOutcome>, StoreError> {
    let mut outcomes = Vec::with_capacity(updates.len());
    for update in updates {
        outcomes.push(
            store
                .update_contact(&update.contact, update.expected_version, &update.counters)
                .await?,
        );
    }
    Ok(outcomes)
}

/// Queries made of `ContactStore` calls, the same for every store. Kept out of the trait so
/// that no store or wrapper can override them (a wrapper that forgot to forward an override
/// would answer differently from the store it wraps).
#[async_trait]
pub trait ContactQueries: ContactStore {
    /// The id of the contact `identifier` names (see `load_contact`), for the records that
    /// point at a contact (sends) to point at the one that stays whatever id arrives.
    async fn resolve_contact_id(
        &self,
        instance_id: &InstanceId,
        identifier: &ContactId,
    ) -> Result<Option<ContactId>, StoreError> {
        let contact = self.load_contact(instance_id, identifier).await?;
        Ok(contact.map(|contact| contact.contact_id))
    }

    /// Every counter of one instance and day, by name.
    async fn load_counters(
        &self,
        instance_id: &InstanceId,
        day: &str,
    ) -> Result<BTreeMap<String, u64>, StoreError> {
        let mut days = self.load_counter_days(instance_id, day, day).await?;
        Ok(days.remove(day).unwrap_or_default())
    }
}

impl<S: ContactStore + ?Sized> ContactQueries for S {}

/// What an event's write reads first: see [`ContactStore::load_for_event`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventRead {
    /// The contact each identifier names, in the identifiers' order.
    pub contacts: Vec<Option<Contact>>,
    /// Whether the event's dedupe claim is held (and not expired).
    pub claimed: bool,
    /// The earliest start recorded under an identifier that names no contact yet
    /// ([`ContactStore::record_business_first`]), for the event's commit to put on the contact.
    pub start: Option<crate::sources::BusinessFirst>,
}

/// A contact merged into another: still at `version`, it becomes a link to the contact that
/// stays, and so does each identifier linked to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Absorbed {
    /// The merged contact.
    pub contact_id: ContactId,
    /// The version it must still be at.
    pub version: u64,
    /// The identifiers linked to it, which move over too.
    pub linked_ids: Vec<ContactId>,
}

/// An event's contact write that also changes which identifiers resolve to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityCommit {
    /// The contact as it is to be stored.
    pub contact: Contact,
    /// `None`: the contact must not exist yet, nor any link of its id.
    pub expected_version: Option<u64>,
    /// Identifiers to link to `contact`: each must be neither a contact nor linked yet.
    pub new_links: Vec<ContactId>,
    /// Contacts merged into `contact` by this write.
    pub absorbed: Vec<Absorbed>,
    /// The counter changes that go with the write.
    pub counters: Vec<CounterBump>,
}

/// One conditional contact write with its counters, as `update_contact` takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactUpdate {
    /// The contact as it is to be stored.
    pub contact: Contact,
    /// The version the stored contact must still be at.
    pub expected_version: u64,
    /// The counter changes that go with the write.
    pub counters: Vec<CounterBump>,
}

/// First-seen bounds of a listing: `since` inclusive, `until` exclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactWindow {
    /// Start of the window, inclusive.
    pub since: Timestamp,
    /// End of the window, exclusive.
    pub until: Timestamp,
}

/// One page of an instance's contact listing, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContactPage {
    /// The contacts of the page.
    pub contacts: Vec<Contact>,
    /// The listing position of the last contact returned, to continue after it.
    pub next: Option<String>,
}

/// A contact's place in its instance's newest-first listing: unique, and ordered as
/// `first_seen_at`, then `contact_id`, because timestamps have one fixed textual form.
pub fn listing_position(contact: &Contact) -> String {
    format!("{}#{}", contact.first_seen_at, contact.contact_id.as_str())
}

/// Day (`YYYY-MM-DD`) → counter name → count.
pub type CounterDays = BTreeMap<String, BTreeMap<String, u64>>;
