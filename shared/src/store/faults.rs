//! A store wrapper that fails a chosen fraction of calls, to prove that faults lose nothing and
//! double nothing. Used by tests, and by the local server when asked to.

use crate::contact::Contact;
use crate::contact::counters::CounterBump;
use crate::contact::store::{
    ContactPage, ContactStore, ContactUpdate, ContactWindow, CounterDays, IdentityCommit,
};
use crate::erasure::{Erased, Erasure, ErasureStore};
use crate::ids::{ContactId, InstanceId, OfferId};
use crate::matching::backfill::BackfillJob;
use crate::matching::backfill::JobStore;
use crate::revenue::attribution::CreditWindow;
use crate::revenue::store::{ConversionWrite, RevenueStore, SendWrite};
use crate::revenue::{Click, Conversion, Dimension, Journey, Offer, ReportCounter, SendRecord};
use crate::rules::store::{RuleStore, RuleWrite};
use crate::rules::{Rule, RuleId};
use crate::store::{CommitOutcome, DedupeClaim, StoreError};
use crate::web::store::WidgetStore;
use crate::web::{RefCode, WidgetConfig};
use async_trait::async_trait;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

const PARTS: u32 = 1_000_000;

/// How a call meets its fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// The call fails before it reaches the store: nothing is read or written.
    Refused,
    /// A write reaches the store and takes effect, then its answer is lost: the caller sees
    /// an error (DynamoDB can time out after applying a transaction). Reads are not affected.
    AnswerLost,
}

/// Which calls fail: each call fails with probability `ratio`, drawn from a seeded sequence so
/// a run can be repeated, in the plan's mode.
#[derive(Debug)]
pub struct FaultPlan {
    failing_parts_per_million: AtomicU32,
    state: AtomicU64,
    answers_lost: AtomicBool,
}

impl FaultPlan {
    /// A plan failing each call with probability `ratio`, repeatable from `seed`.
    pub fn ratio(ratio: f64, seed: u64) -> Arc<Self> {
        let plan = Arc::new(Self {
            failing_parts_per_million: AtomicU32::new(0),
            state: AtomicU64::new(seed | 1),
            answers_lost: AtomicBool::new(false),
        });
        plan.set_ratio(ratio);
        plan
    }

    /// Changes the failing fraction (clamped to 0..=1) for the calls that follow.
    pub fn set_ratio(&self, ratio: f64) {
        let parts = (ratio.clamp(0.0, 1.0) * f64::from(PARTS)).round() as u32;
        self.failing_parts_per_million
            .store(parts, Ordering::SeqCst);
    }

    /// Changes how the calls that follow meet their faults.
    pub fn set_mode(&self, mode: FaultMode) {
        self.answers_lost
            .store(mode == FaultMode::AnswerLost, Ordering::SeqCst);
    }

    /// How calls fail now.
    pub fn mode(&self) -> FaultMode {
        if self.answers_lost.load(Ordering::SeqCst) {
            FaultMode::AnswerLost
        } else {
            FaultMode::Refused
        }
    }

    fn should_fail(&self) -> bool {
        let threshold = self.failing_parts_per_million.load(Ordering::SeqCst);
        if threshold == 0 {
            return false;
        }
        // xorshift64*: cheap, and good enough to spread faults over calls.
        let mut x = self.state.load(Ordering::Relaxed);
        loop {
            let mut next = x;
            next ^= next >> 12;
            next ^= next << 25;
            next ^= next >> 27;
            match self
                .state
                .compare_exchange_weak(x, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    let draw = (next.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32 % PARTS;
                    return draw < threshold;
                }
                Err(current) => x = current,
            }
        }
    }

    fn check(&self, call: &str) -> Result<(), StoreError> {
        if self.should_fail() {
            Err(StoreError::Unavailable(format!("injected fault in {call}")))
        } else {
            Ok(())
        }
    }

    /// A read: it may be refused; a lost answer is not a read's fault.
    async fn read<T>(
        &self,
        call: &str,
        read: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        if self.mode() == FaultMode::Refused {
            self.check(call)?;
        }
        read.await
    }

    /// A write: refused before it runs, or run and its answer lost, as the mode says.
    async fn write<T>(
        &self,
        call: &str,
        write: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match self.mode() {
            FaultMode::Refused => {
                self.check(call)?;
                write.await
            }
            FaultMode::AnswerLost => {
                let answer = write.await?;
                self.check(call)?;
                Ok(answer)
            }
        }
    }
}

/// A store wrapper that fails calls as its plan says, for the fault tests.
pub struct FaultInjectingStore<S> {
    inner: S,
    plan: Arc<FaultPlan>,
}

impl<S> FaultInjectingStore<S> {
    /// Wraps `inner`, failing calls as `plan` says.
    pub fn new(inner: S, plan: Arc<FaultPlan>) -> Self {
        Self { inner, plan }
    }
}

#[async_trait]
impl<S: ContactStore> ContactStore for FaultInjectingStore<S> {
    async fn load_contact(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
    ) -> Result<Option<Contact>, StoreError> {
        self.plan
            .read(
                "load_contact",
                self.inner.load_contact(instance_id, contact_id),
            )
            .await
    }

    async fn commit_event(
        &self,
        claim: &DedupeClaim,
        contact: &Contact,
        expected_version: Option<u64>,
        counters: &[CounterBump],
    ) -> Result<CommitOutcome, StoreError> {
        self.plan
            .write(
                "commit_event",
                self.inner
                    .commit_event(claim, contact, expected_version, counters),
            )
            .await
    }

    async fn update_contact(
        &self,
        contact: &Contact,
        expected_version: u64,
        counters: &[CounterBump],
    ) -> Result<CommitOutcome, StoreError> {
        self.plan
            .write(
                "update_contact",
                self.inner
                    .update_contact(contact, expected_version, counters),
            )
            .await
    }

    /// Forwarded whole, so a batch meets one fault as the store's own batch write would.
    async fn update_contacts(
        &self,
        updates: &[ContactUpdate],
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        self.plan
            .write("update_contacts", self.inner.update_contacts(updates))
            .await
    }

    async fn commit_identity(
        &self,
        claim: &DedupeClaim,
        commit: &IdentityCommit,
    ) -> Result<CommitOutcome, StoreError> {
        self.plan
            .write("commit_identity", self.inner.commit_identity(claim, commit))
            .await
    }

    async fn list_contacts(
        &self,
        instance_id: &InstanceId,
        window: &ContactWindow,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ContactPage, StoreError> {
        self.plan
            .read(
                "list_contacts",
                self.inner.list_contacts(instance_id, window, after, limit),
            )
            .await
    }

    async fn load_counter_days(
        &self,
        instance_id: &InstanceId,
        first_day: &str,
        last_day: &str,
    ) -> Result<CounterDays, StoreError> {
        self.plan
            .read(
                "load_counter_days",
                self.inner
                    .load_counter_days(instance_id, first_day, last_day),
            )
            .await
    }
}

#[async_trait]
impl<S: RuleStore> RuleStore for FaultInjectingStore<S> {
    async fn list_rules(&self, instance_id: &InstanceId) -> Result<Vec<Rule>, StoreError> {
        self.plan
            .read("list_rules", self.inner.list_rules(instance_id))
            .await
    }

    async fn load_rule(
        &self,
        instance_id: &InstanceId,
        rule_id: &RuleId,
    ) -> Result<Option<Rule>, StoreError> {
        self.plan
            .read("load_rule", self.inner.load_rule(instance_id, rule_id))
            .await
    }

    async fn create_rule(&self, rule: &Rule, max_rules: usize) -> Result<RuleWrite, StoreError> {
        self.plan
            .write("create_rule", self.inner.create_rule(rule, max_rules))
            .await
    }

    async fn replace_rule(&self, rule: &Rule) -> Result<RuleWrite, StoreError> {
        self.plan
            .write("replace_rule", self.inner.replace_rule(rule))
            .await
    }

    async fn delete_rule(
        &self,
        instance_id: &InstanceId,
        rule_id: &RuleId,
    ) -> Result<RuleWrite, StoreError> {
        self.plan
            .write("delete_rule", self.inner.delete_rule(instance_id, rule_id))
            .await
    }

    async fn rules_version(&self, instance_id: &InstanceId) -> Result<u64, StoreError> {
        self.plan
            .read("rules_version", self.inner.rules_version(instance_id))
            .await
    }
}

#[async_trait]
impl<S: JobStore> JobStore for FaultInjectingStore<S> {
    async fn create_job(&self, job: &BackfillJob) -> Result<(), StoreError> {
        self.plan
            .write("create_job", self.inner.create_job(job))
            .await
    }

    async fn load_job(
        &self,
        instance_id: &InstanceId,
        job_id: &crate::ids::JobId,
    ) -> Result<Option<BackfillJob>, StoreError> {
        self.plan
            .read("load_job", self.inner.load_job(instance_id, job_id))
            .await
    }

    async fn save_job(
        &self,
        job: &BackfillJob,
        expected_version: u64,
    ) -> Result<CommitOutcome, StoreError> {
        self.plan
            .write("save_job", self.inner.save_job(job, expected_version))
            .await
    }
}

#[async_trait]
impl<S: RevenueStore> RevenueStore for FaultInjectingStore<S> {
    async fn create_offer(&self, offer: &Offer) -> Result<bool, StoreError> {
        self.plan
            .write("create_offer", self.inner.create_offer(offer))
            .await
    }

    async fn replace_offer(&self, offer: &Offer) -> Result<bool, StoreError> {
        self.plan
            .write("replace_offer", self.inner.replace_offer(offer))
            .await
    }

    async fn load_offer(&self, offer_id: &OfferId) -> Result<Option<Offer>, StoreError> {
        self.plan
            .read("load_offer", self.inner.load_offer(offer_id))
            .await
    }

    async fn list_offers(&self) -> Result<Vec<Offer>, StoreError> {
        self.plan
            .read("list_offers", self.inner.list_offers())
            .await
    }

    async fn create_sends(&self, sends: &[SendRecord]) -> Result<Vec<SendWrite>, StoreError> {
        self.plan
            .write("create_sends", self.inner.create_sends(sends))
            .await
    }

    async fn load_send(&self, code: &str) -> Result<Option<SendRecord>, StoreError> {
        self.plan
            .read("load_send", self.inner.load_send(code))
            .await
    }

    async fn record_click(&self, click: &Click) -> Result<(), StoreError> {
        self.plan
            .write("record_click", self.inner.record_click(click))
            .await
    }

    async fn load_click(&self, click_id: &str) -> Result<Option<Click>, StoreError> {
        self.plan
            .read("load_click", self.inner.load_click(click_id))
            .await
    }

    async fn first_click(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
        offer_id: &OfferId,
        window: &CreditWindow,
    ) -> Result<Option<Click>, StoreError> {
        self.plan
            .read(
                "first_click",
                self.inner
                    .first_click(instance_id, contact_id, offer_id, window),
            )
            .await
    }

    async fn record_conversion(
        &self,
        conversion: &Conversion,
    ) -> Result<ConversionWrite, StoreError> {
        self.plan
            .write(
                "record_conversion",
                self.inner.record_conversion(conversion),
            )
            .await
    }

    async fn contact_journey(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
    ) -> Result<Journey, StoreError> {
        self.plan
            .read(
                "contact_journey",
                self.inner.contact_journey(instance_id, contact_id),
            )
            .await
    }

    async fn load_report_counters(
        &self,
        dimension: Dimension,
        first_day: &str,
        last_day: &str,
    ) -> Result<Vec<ReportCounter>, StoreError> {
        self.plan
            .read(
                "load_report_counters",
                self.inner
                    .load_report_counters(dimension, first_day, last_day),
            )
            .await
    }
}

#[async_trait]
impl<S: ErasureStore> ErasureStore for FaultInjectingStore<S> {
    async fn erase_contact(&self, erasure: &Erasure) -> Result<Erased, StoreError> {
        self.plan
            .write("erase_contact", self.inner.erase_contact(erasure))
            .await
    }
}

#[async_trait]
impl<S: WidgetStore> WidgetStore for FaultInjectingStore<S> {
    async fn save_widget(&self, config: &WidgetConfig) -> Result<(), StoreError> {
        self.plan
            .write("save_widget", self.inner.save_widget(config))
            .await
    }

    async fn load_widget(
        &self,
        instance_id: &InstanceId,
    ) -> Result<Option<WidgetConfig>, StoreError> {
        self.plan
            .read("load_widget", self.inner.load_widget(instance_id))
            .await
    }

    async fn create_ref(&self, code: &RefCode) -> Result<bool, StoreError> {
        self.plan
            .write("create_ref", self.inner.create_ref(code))
            .await
    }

    async fn load_ref(&self, code: &str) -> Result<Option<RefCode>, StoreError> {
        self.plan.read("load_ref", self.inner.load_ref(code)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fails_about_the_chosen_fraction() {
        let plan = FaultPlan::ratio(0.25, 7);
        let failures = (0..10_000).filter(|_| plan.should_fail()).count();
        assert!((2_000..3_000).contains(&failures), "{failures} failures");
        plan.set_ratio(0.0);
        assert!((0..1_000).all(|_| !plan.should_fail()));
        plan.set_ratio(1.0);
        assert!((0..1_000).all(|_| plan.should_fail()));
    }

    #[tokio::test]
    async fn a_lost_answer_comes_after_the_write_and_spares_reads() {
        let plan = FaultPlan::ratio(1.0, 7);
        let ran = AtomicU32::new(0);
        let write = async {
            ran.fetch_add(1, Ordering::SeqCst);
            Ok(())
        };
        assert!(plan.write("w", write).await.is_err());
        assert_eq!(ran.load(Ordering::SeqCst), 0, "a refused write never runs");
        plan.set_mode(FaultMode::AnswerLost);
        let write = async {
            ran.fetch_add(1, Ordering::SeqCst);
            Ok(())
        };
        assert!(plan.write("w", write).await.is_err());
        assert_eq!(
            ran.load(Ordering::SeqCst),
            1,
            "the write ran, its answer was lost"
        );
        assert!(plan.read("r", async { Ok(()) }).await.is_ok());
    }
}
