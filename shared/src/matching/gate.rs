//! The webhook's match queue, holding back the match jobs that could decide nothing: on an
//! instance with no enabled rule and no widget, no rule can match a first message and no ref
//! code can be known, so the job would only mark the contact unmatched, at the price of a
//! queue message, a Lambda invocation and a contact write. Such a contact stays as the
//! webhook wrote it, not checked (`rules_checked_at` unset, `awaits_rule_match`): a rule made
//! later reaches it through a backfill, which looks at every unattributed contact of its
//! window.
//!
//! An instance found to want its jobs is remembered for [`WANTED_FOR`] (a job queued after its
//! last rule went is decided by the matcher as before: nothing is lost by queueing too much);
//! one found not to is asked again for each new contact's job (two small reads, a list of its
//! rules only when their version moved), so a rule or widget made a moment ago is seen at once.

use crate::ids::InstanceId;
use crate::queue::{JobQueue, QueueError, QueueJob};
use crate::rules::store::RuleStore;
use crate::store::StoreError;
use crate::web::store::WidgetStore;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an instance that wants its match jobs is taken to still want them.
pub const WANTED_FOR: Duration = Duration::from_secs(60);

/// What a container knows of one instance.
#[derive(Debug, Clone, Copy)]
struct Known {
    /// The rules version `enabled` was counted at.
    rules_version: u64,
    /// Whether one of its rules at that version is enabled.
    enabled: bool,
    /// When it was last found to want its jobs.
    wanted_at: Option<Instant>,
}

/// A [`JobQueue`] that passes every job on to the queue it wraps except a match job of an
/// instance that has no enabled rule and no widget.
pub struct MatchGate {
    queue: Arc<dyn JobQueue>,
    rules: Arc<dyn RuleStore>,
    widgets: Arc<dyn WidgetStore>,
    known: Mutex<HashMap<InstanceId, Known>>,
}

impl MatchGate {
    /// A gate in front of `queue`, asking `rules` and `widgets` what each instance has.
    pub fn new(
        queue: Arc<dyn JobQueue>,
        rules: Arc<dyn RuleStore>,
        widgets: Arc<dyn WidgetStore>,
    ) -> Self {
        Self {
            queue,
            rules,
            widgets,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a match job of `instance_id` could decide anything.
    async fn wanted(&self, instance_id: &InstanceId) -> Result<bool, StoreError> {
        let known = self
            .known
            .lock()
            .expect("gate lock")
            .get(instance_id)
            .copied();
        if known
            .and_then(|known| known.wanted_at)
            .is_some_and(|at| at.elapsed() < WANTED_FOR)
        {
            return Ok(true);
        }
        let (rules_version, widget) = futures::try_join!(
            self.rules.rules_version(instance_id),
            self.widgets.load_widget(instance_id)
        )?;
        let enabled = match known {
            Some(known) if known.rules_version == rules_version => known.enabled,
            _ if rules_version == 0 => false,
            _ => self
                .rules
                .list_rules(instance_id)
                .await?
                .iter()
                .any(|rule| rule.settings.enabled),
        };
        let wanted = enabled || widget.is_some();
        self.known.lock().expect("gate lock").insert(
            instance_id.clone(),
            Known {
                rules_version,
                enabled,
                wanted_at: wanted.then(Instant::now),
            },
        );
        Ok(wanted)
    }
}

#[async_trait]
impl JobQueue for MatchGate {
    async fn enqueue(&self, job: &QueueJob) -> Result<(), QueueError> {
        if let QueueJob::Match(matching) = job {
            match self.wanted(&matching.instance_id).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(
                        instance_id = %matching.instance_id,
                        contact = %matching.contact_id,
                        "no enabled rule and no widget: no match job, the contact stays unchecked"
                    );
                    return Ok(());
                }
                // Queueing a job that may be moot loses nothing; refusing the delivery would
                // make Meta retry it for a read that only saves money.
                Err(error) => {
                    tracing::warn!(instance_id = %matching.instance_id, %error, "match gate read failed: job queued");
                }
            }
        }
        self.queue.enqueue(job).await
    }
}
