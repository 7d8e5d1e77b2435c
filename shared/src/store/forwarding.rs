//! The store traits' forwarding impls, generated: `Arc<S>` forwards every call to `S` (so a
//! shared, type-erased store can stand where a wrapper wants a store), and
//! `FaultInjectingStore<S>` forwards every call to `S` through its fault plan, as a read or a
//! write. One list per trait names each method once, with its kind; both impls come from it.
//! The traits have no default methods, so a list that misses one does not compile: no wrapper
//! can silently fall back to a default instead of the store's own override.

use crate::catalog::Product;
use crate::catalog::store::CatalogStore;
use crate::contact::Contact;
use crate::contact::counters::CounterBump;
use crate::contact::store::{
    ContactPage, ContactStore, ContactUpdate, ContactWindow, CounterDays, EventRead, IdentityCommit,
};
use crate::erasure::{Erased, Erasure, ErasureStore};
use crate::goals::GoalSet;
use crate::goals::store::GoalStore;
use crate::ids::{ContactId, InstanceId, JobId, OfferId};
use crate::instances::InstanceStore;
use crate::matching::backfill::{BackfillJob, JobStore};
use crate::outbound::store::{Claim, OutboundStore, SecretVault};
use crate::outbound::{Delivery, DeliveryStatus, DestinationId, DestinationSet, SecretRef};
use crate::revenue::attribution::CreditWindow;
use crate::revenue::store::{ConversionWrite, RevenueStore, SendWrite};
use crate::revenue::{Click, Conversion, Dimension, Journey, Offer, ReportCounter, SendRecord};
use crate::rules::store::{RuleStore, RuleWrite};
use crate::rules::{Rule, RuleId};
use crate::secret::Secret;
use crate::spend::store::SpendStore;
use crate::spend::{AdNames, SpendRow, Upserted};
use crate::store::faults::FaultInjectingStore;
use crate::store::{CommitOutcome, DedupeClaim, StoreError};
use crate::time::Timestamp;
use crate::web::store::WidgetStore;
use crate::web::{RefCode, WidgetConfig};
use async_trait::async_trait;
use std::sync::Arc;

/// `forward! { Trait { read fn method(&self, arg: Type, …) -> Answer; write fn …; } }`: the
/// `Arc<S>` and `FaultInjectingStore<S>` impls of `Trait`, each method answering
/// `Result<Answer, StoreError>`. `read` and `write` name the fault plan's treatment of the call.
macro_rules! forward {
    ($store:ident {
        $(
            $(#[$doc:meta])*
            $kind:ident fn $method:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $answer:ty;
        )*
    }) => {
        #[async_trait]
        impl<S: $store + ?Sized> $store for Arc<S> {
            $(
                async fn $method(&self $(, $arg: $ty)*) -> Result<$answer, StoreError> {
                    (**self).$method($($arg),*).await
                }
            )*
        }

        #[async_trait]
        impl<S: $store> $store for FaultInjectingStore<S> {
            $(
                $(#[$doc])*
                async fn $method(&self $(, $arg: $ty)*) -> Result<$answer, StoreError> {
                    self.plan
                        .$kind(stringify!($method), self.inner.$method($($arg),*))
                        .await
                }
            )*
        }
    };
}

forward!(ContactStore {
    read fn load_contact(&self, instance_id: &InstanceId, contact_id: &ContactId)
        -> Option<Contact>;
    read fn load_for_event(
        &self,
        instance_id: &InstanceId,
        identifiers: &[ContactId],
        claim: &DedupeClaim,
    ) -> EventRead;
    write fn commit_identity(&self, claim: &DedupeClaim, commit: &IdentityCommit)
        -> CommitOutcome;
    write fn commit_event(
        &self,
        claim: &DedupeClaim,
        contact: &Contact,
        expected_version: Option<u64>,
        counters: &[CounterBump],
    ) -> CommitOutcome;
    write fn update_contact(
        &self,
        contact: &Contact,
        expected_version: u64,
        counters: &[CounterBump],
    ) -> CommitOutcome;
    /// Forwarded whole, so a batch meets one fault as the store's own batch write would.
    write fn update_contacts(&self, updates: &[ContactUpdate]) -> Vec<CommitOutcome>;
    write fn record_business_first(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
        start: &crate::sources::BusinessFirst,
    ) -> ();
    read fn load_counter_days(&self, instance_id: &InstanceId, first_day: &str, last_day: &str)
        -> CounterDays;
    read fn list_contacts(
        &self,
        instance_id: &InstanceId,
        window: &ContactWindow,
        after: Option<&str>,
        limit: usize,
    ) -> ContactPage;
});

forward!(InstanceStore {
    read fn list_instances(&self, limit: usize) -> Vec<InstanceId>;
});

forward!(RuleStore {
    read fn list_rules(&self, instance_id: &InstanceId) -> Vec<Rule>;
    read fn load_rule(&self, instance_id: &InstanceId, rule_id: &RuleId) -> Option<Rule>;
    write fn create_rule(&self, rule: &Rule, max_rules: usize) -> RuleWrite;
    write fn replace_rule(&self, rule: &Rule) -> RuleWrite;
    write fn delete_rule(&self, instance_id: &InstanceId, rule_id: &RuleId) -> RuleWrite;
    read fn rules_version(&self, instance_id: &InstanceId) -> u64;
});

forward!(JobStore {
    write fn create_job(&self, job: &BackfillJob) -> ();
    read fn load_job(&self, instance_id: &InstanceId, job_id: &JobId) -> Option<BackfillJob>;
    write fn save_job(&self, job: &BackfillJob, expected_version: u64) -> CommitOutcome;
});

forward!(RevenueStore {
    write fn create_offer(&self, offer: &Offer) -> bool;
    write fn replace_offer(&self, offer: &Offer) -> bool;
    read fn load_offer(&self, offer_id: &OfferId) -> Option<Offer>;
    read fn list_offers(&self) -> Vec<Offer>;
    write fn create_sends(&self, sends: &[SendRecord]) -> Vec<SendWrite>;
    read fn load_send(&self, code: &str) -> Option<SendRecord>;
    write fn record_click(&self, click: &Click) -> ();
    read fn load_click(&self, click_id: &str) -> Option<Click>;
    read fn window_clicks(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
        offer_id: &OfferId,
        window: &CreditWindow,
    ) -> Vec<Click>;
    read fn first_send(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
        offer_id: &OfferId,
        window: &CreditWindow,
    ) -> Option<SendRecord>;
    write fn record_conversion(&self, conversion: &Conversion) -> ConversionWrite;
    read fn load_conversion(&self, conversion_key: &str) -> Option<Conversion>;
    read fn waiting_conversions(&self, click_id: &str) -> Vec<Conversion>;
    write fn reattribute_conversion(&self, conversion: &Conversion) -> bool;
    read fn contact_journey(&self, instance_id: &InstanceId, contact_id: &ContactId) -> Journey;
    read fn load_report_counters(&self, dimension: Dimension, first_day: &str, last_day: &str)
        -> Vec<ReportCounter>;
    read fn load_instance_report_counters(
        &self,
        dimension: Dimension,
        instance_id: &InstanceId,
        first_day: &str,
        last_day: &str,
    ) -> Vec<ReportCounter>;
});

forward!(WidgetStore {
    write fn save_widget(&self, config: &WidgetConfig) -> ();
    write fn replace_widget(&self, config: &WidgetConfig, expected_key: &str) -> bool;
    read fn load_widget(&self, instance_id: &InstanceId) -> Option<WidgetConfig>;
    write fn create_ref(&self, code: &RefCode) -> bool;
    read fn load_ref(&self, code: &str) -> Option<RefCode>;
});

forward!(ErasureStore {
    write fn erase_contact(&self, erasure: &Erasure) -> Erased;
});

forward!(SpendStore {
    write fn upsert_spend(&self, rows: &[SpendRow]) -> Upserted;
    read fn load_spend(&self, first_day: &str, last_day: &str) -> Vec<SpendRow>;
    read fn ad_names(&self, ad_ids: &[String]) -> Vec<AdNames>;
});

forward!(GoalStore {
    read fn load_goals(&self, instance_id: &InstanceId) -> GoalSet;
    write fn save_goals(&self, instance_id: &InstanceId, goals: &GoalSet, expected_version: u64)
        -> CommitOutcome;
});

forward!(CatalogStore {
    write fn upsert_products(&self, products: &[Product]) -> Upserted;
    read fn products(&self, keys: &[(String, String)]) -> Vec<Product>;
});

forward!(OutboundStore {
    read fn load_destinations(&self, instance_id: &InstanceId) -> DestinationSet;
    write fn save_destinations(
        &self,
        instance_id: &InstanceId,
        set: &DestinationSet,
        expected_version: u64,
    ) -> CommitOutcome;
    write fn claim_delivery(&self, fresh: &Delivery, now: Timestamp) -> Claim;
    write fn record_delivery(&self, delivery: &Delivery) -> ();
    read fn list_deliveries(
        &self,
        instance_id: &InstanceId,
        destination_id: &DestinationId,
        status: Option<DeliveryStatus>,
        limit: usize,
    ) -> Vec<Delivery>;
});

forward!(SecretVault {
    write fn put_secret(&self, reference: &SecretRef, value: &Secret) -> ();
    read fn get_secret(&self, reference: &SecretRef) -> Option<Secret>;
    write fn delete_secret(&self, reference: &SecretRef) -> ();
});
