//! The matcher: applies an instance's text rules to a contact's first message, once, with the
//! attribution and its counters in one conditional write.

use crate::counters::bumps_for;
use crate::ids::InstanceId;
use crate::ingest::IngestError;
use crate::model::{Acquisition, RuleAttribution};
use crate::queue::{JobQueue, MatchJob, QueueError};
use crate::rules::CompiledRules;
use crate::store::{CommitOutcome, ContactStore, RuleStore, StoreError};
use crate::time::Timestamp;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchOutcome {
    Matched {
        rule_id: String,
    },
    Unmatched,
    /// Attributed or matched before (a duplicate job, a Meta referral, a backfill): nothing to do.
    AlreadyDecided,
    /// No such contact: nothing to attribute. Contacts are written before their job is queued,
    /// so this is a job from elsewhere, not a race.
    UnknownContact,
}

/// Same bound as ingestion: concurrent writers to one contact retry on a version conflict.
const MAX_ATTEMPTS: u32 = 16;

pub struct Matcher {
    contacts: Arc<dyn ContactStore>,
    rules: Arc<dyn RuleStore>,
    /// Compiled rules per instance, with the rules version they were compiled from.
    cache: Mutex<HashMap<InstanceId, (u64, Arc<CompiledRules>)>>,
}

impl Matcher {
    pub fn new(contacts: Arc<dyn ContactStore>, rules: Arc<dyn RuleStore>) -> Self {
        Self {
            contacts,
            rules,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The instance's enabled rules, compiled; recompiled only when the rules version moved,
    /// so a rule change applies to the next contact.
    pub async fn compiled_rules(
        &self,
        instance_id: &InstanceId,
    ) -> Result<Arc<CompiledRules>, StoreError> {
        let version = self.rules.rules_version(instance_id).await?;
        if let Some((cached_version, compiled)) =
            self.cache.lock().expect("cache lock").get(instance_id)
        {
            if *cached_version == version {
                return Ok(compiled.clone());
            }
        }
        let rules = self.rules.list_rules(instance_id).await?;
        let compiled = Arc::new(CompiledRules::compile(&rules));
        for skipped in compiled.skipped() {
            tracing::warn!(instance_id = %instance_id, ?skipped, "stored rule skipped");
        }
        self.cache
            .lock()
            .expect("cache lock")
            .insert(instance_id.clone(), (version, compiled.clone()));
        Ok(compiled)
    }

    pub async fn handle(
        &self,
        job: &MatchJob,
        now: Timestamp,
    ) -> Result<MatchOutcome, IngestError> {
        let compiled = self.compiled_rules(&job.instance_id).await?;
        for _ in 0..MAX_ATTEMPTS {
            let Some(before) = self
                .contacts
                .load_contact(&job.instance_id, &job.contact_id)
                .await?
            else {
                return Ok(MatchOutcome::UnknownContact);
            };
            if !before.awaits_rule_match() {
                return Ok(MatchOutcome::AlreadyDecided);
            }
            let text = before
                .first_message
                .as_ref()
                .and_then(|message| message.text.clone())
                .unwrap_or_default();
            let mut after = before.clone();
            after.rules_checked_at = Some(now);
            after.version += 1;
            let outcome = match compiled.first_match(&text) {
                Some(rule) => {
                    after.acquisition = Some(Acquisition::Rule(RuleAttribution {
                        platform: rule.platform,
                        source_name: rule.source_name.clone(),
                        rule_id: rule.id.clone(),
                        rule_name: rule.name.clone(),
                        campaign: rule.campaign.clone(),
                        ad: rule.ad.clone(),
                        matched_text: text.clone(),
                        captured_at: now,
                    }));
                    MatchOutcome::Matched {
                        rule_id: rule.id.to_string(),
                    }
                }
                None => MatchOutcome::Unmatched,
            };
            let counters = bumps_for(Some(&before), &after);
            match self
                .contacts
                .update_contact(&after, before.version, &counters)
                .await?
            {
                CommitOutcome::Applied => {
                    tracing::info!(
                        instance_id = %job.instance_id,
                        contact = %job.contact_id,
                        outcome = ?outcome,
                        "rules applied"
                    );
                    return Ok(outcome);
                }
                CommitOutcome::VersionConflict | CommitOutcome::Duplicate => continue,
            }
        }
        Err(IngestError::Contention {
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Handles a batch of queue messages (id, body); answers the ids of those that failed and
    /// must be delivered again. A body that does not parse fails alone.
    pub async fn handle_batch(&self, messages: &[(String, String)], now: Timestamp) -> Vec<String> {
        let mut failed = Vec::new();
        for (message_id, body) in messages {
            let result = match serde_json::from_str::<MatchJob>(body) {
                Ok(job) => self
                    .handle(&job, now)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                Err(error) => Err(format!("unreadable match job: {error}")),
            };
            if let Err(error) = result {
                tracing::error!(message_id, error, "match job failed; it will be retried");
                failed.push(message_id.clone());
            }
        }
        failed
    }
}

/// The local stand-in for SQS: jobs go to a background task that runs the same matcher code,
/// with the same retry-then-dead-letter behaviour as the SQS redrive policy.
pub struct InProcessQueue {
    sender: tokio::sync::mpsc::UnboundedSender<(String, String)>,
    dead_letters: Arc<Mutex<Vec<String>>>,
}

/// Deliveries of one message before it is dead-lettered (the template's `maxReceiveCount`).
pub const MAX_RECEIVES: u32 = 5;

impl InProcessQueue {
    /// Starts the worker on the current Tokio runtime.
    pub fn start(matcher: Arc<Matcher>) -> Arc<Self> {
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
        let dead_letters = Arc::new(Mutex::new(Vec::new()));
        let dead = dead_letters.clone();
        tokio::spawn(async move {
            while let Some(message) = receiver.recv().await {
                let mut receives = 0;
                loop {
                    receives += 1;
                    let failed = matcher
                        .handle_batch(std::slice::from_ref(&message), Timestamp::now())
                        .await;
                    if failed.is_empty() {
                        break;
                    }
                    if receives >= MAX_RECEIVES {
                        tracing::error!(message_id = message.0, "match job dead-lettered");
                        dead.lock().expect("dead letters").push(message.1.clone());
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(receives))).await;
                }
            }
        });
        Arc::new(Self {
            sender,
            dead_letters,
        })
    }

    /// Bodies of the jobs that failed every delivery.
    pub fn dead_letters(&self) -> Vec<String> {
        self.dead_letters.lock().expect("dead letters").clone()
    }
}

#[async_trait]
impl JobQueue for InProcessQueue {
    async fn enqueue(&self, job: &MatchJob) -> Result<(), QueueError> {
        let body = serde_json::to_string(job).map_err(|e| QueueError(e.to_string()))?;
        let id = format!("local-{}", crate::rules::RuleId::new());
        self.sender
            .send((id, body))
            .map_err(|_| QueueError("the local matcher has stopped".to_owned()))
    }
}
