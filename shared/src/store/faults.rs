//! A store wrapper that fails a chosen fraction of calls, to prove that faults lose nothing and
//! double nothing. Used by tests, and by the local server when asked to. Its store trait impls
//! are generated with the `Arc` ones (`store::forwarding`), so none can be forgotten.

use crate::store::StoreError;
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
    pub(super) async fn read<T>(
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
    pub(super) async fn write<T>(
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
    pub(super) inner: S,
    pub(super) plan: Arc<FaultPlan>,
}

impl<S> FaultInjectingStore<S> {
    /// Wraps `inner`, failing calls as `plan` says.
    pub fn new(inner: S, plan: Arc<FaultPlan>) -> Self {
        Self { inner, plan }
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
