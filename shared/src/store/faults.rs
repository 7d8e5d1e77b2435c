//! A store wrapper that fails a chosen fraction of calls, to prove that faults lose nothing and
//! double nothing. Used by tests, and by the local server when asked to.

use super::{CommitOutcome, ContactStore, DedupeClaim, StoreError};
use crate::ids::{ContactId, InstanceId};
use crate::model::Contact;
use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

const PARTS: u32 = 1_000_000;

/// Which calls fail: each call fails with probability `ratio`, drawn from a seeded sequence so
/// a run can be repeated.
#[derive(Debug)]
pub struct FaultPlan {
    failing_parts_per_million: AtomicU32,
    state: AtomicU64,
}

impl FaultPlan {
    pub fn ratio(ratio: f64, seed: u64) -> Arc<Self> {
        let plan = Arc::new(Self {
            failing_parts_per_million: AtomicU32::new(0),
            state: AtomicU64::new(seed | 1),
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
}

pub struct FaultInjectingStore<S> {
    inner: S,
    plan: Arc<FaultPlan>,
}

impl<S> FaultInjectingStore<S> {
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
        self.plan.check("load_contact")?;
        self.inner.load_contact(instance_id, contact_id).await
    }

    async fn commit_event(
        &self,
        claim: &DedupeClaim,
        contact: &Contact,
        expected_version: Option<u64>,
    ) -> Result<CommitOutcome, StoreError> {
        self.plan.check("commit_event")?;
        self.inner
            .commit_event(claim, contact, expected_version)
            .await
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
}
