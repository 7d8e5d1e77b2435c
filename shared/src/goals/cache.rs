//! Each instance's goals, kept warm in the webhook's container: a delivery does not pay a goals
//! read, and a change reaches a warm container within [`GOALS_CACHE_SECONDS`].

use super::GoalSet;
use super::store::GoalStore;
use crate::ids::InstanceId;
use crate::store::StoreError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a container trusts the goals it read. A goal created or changed in between reaches
/// the events that follow it within this; its backfill evaluates what came before.
pub const GOALS_CACHE_SECONDS: u64 = 60;
/// Instances kept at once: past it the cache starts over (a container serves few instances).
const MAX_INSTANCES: usize = 10_000;

/// The goals of each instance seen, with when they were read.
pub struct GoalsCache {
    store: Arc<dyn GoalStore>,
    ttl: Duration,
    read: Mutex<HashMap<InstanceId, (Instant, Arc<GoalSet>)>>,
}

impl GoalsCache {
    /// An empty cache over `store`, trusting what it read for [`GOALS_CACHE_SECONDS`].
    pub fn new(store: Arc<dyn GoalStore>) -> Self {
        Self::with_ttl(store, Duration::from_secs(GOALS_CACHE_SECONDS))
    }

    /// The same with another trust period (0: read every time, for tests that change goals
    /// between deliveries).
    pub fn with_ttl(store: Arc<dyn GoalStore>, ttl: Duration) -> Self {
        Self {
            store,
            ttl,
            read: Mutex::new(HashMap::new()),
        }
    }

    /// The instance's goals, read from the store at most once per trust period.
    pub async fn get(&self, instance_id: &InstanceId) -> Result<Arc<GoalSet>, StoreError> {
        if let Some((at, goals)) = self.read.lock().expect("cache lock").get(instance_id) {
            if at.elapsed() < self.ttl {
                return Ok(goals.clone());
            }
        }
        let goals = Arc::new(self.store.load_goals(instance_id).await?);
        let mut read = self.read.lock().expect("cache lock");
        if read.len() >= MAX_INSTANCES {
            read.clear();
        }
        read.insert(instance_id.clone(), (Instant::now(), goals.clone()));
        Ok(goals)
    }
}
