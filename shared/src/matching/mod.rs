//! The matcher: applies an instance's text rules to a contact's first message, once per first
//! message (an earlier message delivered late is the first one then, and is decided again), with
//! the attribution and its counters in one conditional write. A rule matching the first message
//! replaces an acquisition from a later message's referral: it is the earlier touch.

pub mod backfill;

use crate::contact::Contact;
use crate::contact::counters::bumps_for;
use crate::contact::store::{ContactStore, ContactUpdate};
use crate::contact::{Acquisition, RuleAttribution};
use crate::ids::InstanceId;
use crate::ingest::IngestError;
use crate::matching::backfill::JobStatus;
use crate::matching::backfill::JobStore;
use crate::queue::{BackfillPage, JobQueue, MatchJob, QueueError, QueueJob};
use crate::revenue::Click;
use crate::revenue::store::RevenueStore;
use crate::rules::CompiledRules;
use crate::rules::store::RuleStore;
use crate::store::{CommitOutcome, StoreError};
use crate::time::Timestamp;
use crate::web::ref_code_in;
use crate::web::store::WidgetStore;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// What a match job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchOutcome {
    /// A rule matched the first message and now attributes the contact.
    Matched {
        /// The rule that matched.
        rule_id: String,
    },
    /// No rule matched; the contact counts as unmatched.
    Unmatched,
    /// Attributed or matched before (a duplicate job, a Meta referral, a backfill): nothing to do.
    AlreadyDecided,
    /// The first message carried a known, unexpired ref code of the instance: the contact gets
    /// the web visit it stands for, before any rule.
    WebRef {
        /// The ref code the message carried.
        code: String,
    },
    /// No such contact: nothing to attribute. Contacts are written before their job is queued,
    /// so this is a job from elsewhere, not a race.
    UnknownContact,
}

/// Same bound as ingestion: concurrent writers to one contact retry on a version conflict.
const MAX_ATTEMPTS: u32 = 16;

/// Runs the queue's jobs: text rules on first messages, backfill pages and recorded clicks.
pub struct Matcher {
    contacts: Arc<dyn ContactStore>,
    rules: Arc<dyn RuleStore>,
    jobs: Arc<dyn JobStore>,
    /// Where a backfill page queues the next one; set once the queue exists (the in-process
    /// queue needs the matcher first).
    queue: OnceLock<Arc<dyn JobQueue>>,
    page_size: usize,
    /// Compiled rules per instance, with the rules version they were compiled from.
    cache: Mutex<HashMap<InstanceId, (u64, Arc<CompiledRules>)>>,
    /// Where ref codes from the web widget are looked up; without it, first messages are
    /// matched against the rules only.
    ref_codes: Option<Arc<dyn WidgetStore>>,
    /// Where queued clicks are recorded; without it, such jobs fail (and are retried).
    revenue: Option<Arc<dyn RevenueStore>>,
}

/// What a backfill did to one contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BackfillStep {
    Updated,
    NoMatch,
    AlreadyAttributed,
}

enum BackfillDecision {
    Done(BackfillStep),
    Write(Box<ContactUpdate>),
}

impl Matcher {
    /// A matcher over these stores, with compiled rules cached per instance.
    pub fn new(
        contacts: Arc<dyn ContactStore>,
        rules: Arc<dyn RuleStore>,
        jobs: Arc<dyn JobStore>,
    ) -> Self {
        Self {
            contacts,
            rules,
            jobs,
            queue: OnceLock::new(),
            page_size: backfill::PAGE_SIZE,
            cache: Mutex::new(HashMap::new()),
            ref_codes: None,
            revenue: None,
        }
    }

    /// Records the clicks the redirect queued when it could not record them itself.
    pub fn with_revenue(mut self, store: Arc<dyn RevenueStore>) -> Self {
        self.revenue = Some(store);
        self
    }

    /// A queued click, recorded once however often it is delivered.
    async fn record_click(&self, click: &Click) -> Result<(), String> {
        let store = self
            .revenue
            .as_ref()
            .ok_or("no revenue store attached for queued clicks")?;
        store.record_click(click).await.map_err(|e| e.to_string())?;
        tracing::info!(offer_id = %click.offer_id, "queued click recorded");
        Ok(())
    }

    /// Looks up the web widget's ref codes (`[ref:…]` in a first message) before the rules.
    pub fn with_ref_codes(mut self, store: Arc<dyn WidgetStore>) -> Self {
        self.ref_codes = Some(store);
        self
    }

    /// The web visit a first message's ref code stands for: a known code of this instance,
    /// not expired. An unknown or foreign code is ignored.
    async fn web_visit(
        &self,
        instance_id: &InstanceId,
        text: &str,
        now: Timestamp,
    ) -> Result<Option<(String, Acquisition)>, StoreError> {
        let (Some(store), Some(code)) = (&self.ref_codes, ref_code_in(text)) else {
            return Ok(None);
        };
        // Codes are made lower case; a person's phone may have capitalised the one they sent.
        Ok(store
            .load_ref(&code.to_ascii_lowercase())
            .await?
            .filter(|found| found.applies(instance_id, now))
            .map(|found| {
                (
                    found.code.clone(),
                    Acquisition::Web(found.acquisition_visit()),
                )
            }))
    }

    /// Contacts per backfill page (tests make it small to see several pages).
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// The queue backfill pages continue on. Set once; later calls are ignored.
    pub fn attach_queue(&self, queue: Arc<dyn JobQueue>) {
        let _ = self.queue.set(queue);
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

    /// Decides one contact's attribution from its first message (or its ref code), retrying on
    /// a version conflict.
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
            let text = before.first_text();
            let raw_text = before.first_message_text();
            let (acquisition, outcome) =
                match self.web_visit(&job.instance_id, raw_text, now).await? {
                    Some((code, visit)) => (Some(visit), MatchOutcome::WebRef { code }),
                    None => match compiled.first_match(&text) {
                        Some(rule) => (
                            Some(Acquisition::Rule(RuleAttribution::of(
                                rule,
                                text.to_string(),
                                now,
                            ))),
                            MatchOutcome::Matched {
                                rule_id: rule.id.to_string(),
                            },
                        ),
                        None => (None, MatchOutcome::Unmatched),
                    },
                };
            let after = before.decided_by_rules(acquisition, now);
            let counters = bumps_for(Some(&before), &after);
            match self
                .contacts
                .update_contact(&after, before.version, &counters)
                .await?
            {
                CommitOutcome::Applied => {
                    crate::metrics::counters_moved(&counters);
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

    /// What a backfill does to `contact` now: a step already decided, or the write to make.
    fn backfill_decision(
        contact: &Contact,
        compiled: &CompiledRules,
        job_id: &str,
        now: Timestamp,
    ) -> BackfillDecision {
        match &contact.acquisition {
            // Attributed by this very job on an earlier delivery of the page: still ours.
            Some(Acquisition::Rule(rule)) if rule.backfill_job_id.as_deref() == Some(job_id) => {
                return BackfillDecision::Done(BackfillStep::Updated);
            }
            Some(_) => return BackfillDecision::Done(BackfillStep::AlreadyAttributed),
            None => {}
        }
        let text = contact.first_text();
        let Some(rule) = compiled.first_match(&text) else {
            return BackfillDecision::Done(BackfillStep::NoMatch);
        };
        let acquisition = Acquisition::Rule(RuleAttribution {
            backfill_job_id: Some(job_id.to_owned()),
            ..RuleAttribution::of(rule, text.to_string(), now)
        });
        let after = contact.decided_by_rules(Some(acquisition), now);
        BackfillDecision::Write(Box::new(ContactUpdate {
            counters: bumps_for(Some(contact), &after),
            contact: after,
            expected_version: contact.version,
        }))
    }

    /// Applies today's rules to a page of contacts: only to those still without acquisition (a
    /// conditional write), so a backfill racing live matching attributes and counts once. The
    /// writes go to the store as one batch; a contact that changed meanwhile is read again.
    async fn backfill_contacts(
        &self,
        contacts: Vec<Contact>,
        compiled: &CompiledRules,
        job_id: &str,
        now: Timestamp,
    ) -> Result<Vec<BackfillStep>, IngestError> {
        let mut steps = Vec::with_capacity(contacts.len());
        let mut writes = Vec::new();
        for (index, contact) in contacts.iter().enumerate() {
            match Self::backfill_decision(contact, compiled, job_id, now) {
                BackfillDecision::Done(step) => steps.push(step),
                BackfillDecision::Write(update) => {
                    steps.push(BackfillStep::Updated);
                    writes.push((index, *update));
                }
            }
        }
        let updates: Vec<ContactUpdate> = writes.iter().map(|(_, update)| update.clone()).collect();
        let outcomes = self.contacts.update_contacts(&updates).await?;
        for ((index, update), outcome) in writes.iter().zip(outcomes) {
            if outcome == CommitOutcome::Applied {
                crate::metrics::counters_moved(&update.counters);
            } else {
                steps[*index] = self
                    .backfill_contact(&contacts[*index], compiled, job_id, now)
                    .await?;
            }
        }
        Ok(steps)
    }

    /// One contact, reading it again after each conflict.
    async fn backfill_contact(
        &self,
        stale: &Contact,
        compiled: &CompiledRules,
        job_id: &str,
        now: Timestamp,
    ) -> Result<BackfillStep, IngestError> {
        for _ in 0..MAX_ATTEMPTS {
            let Some(current) = self
                .contacts
                .load_contact(&stale.instance_id, &stale.contact_id)
                .await?
            else {
                return Ok(BackfillStep::NoMatch);
            };
            let update = match Self::backfill_decision(&current, compiled, job_id, now) {
                BackfillDecision::Done(step) => return Ok(step),
                BackfillDecision::Write(update) => update,
            };
            match self
                .contacts
                .update_contact(&update.contact, update.expected_version, &update.counters)
                .await?
            {
                CommitOutcome::Applied => {
                    crate::metrics::counters_moved(&update.counters);
                    return Ok(BackfillStep::Updated);
                }
                CommitOutcome::VersionConflict | CommitOutcome::Duplicate => continue,
            }
        }
        Err(IngestError::Contention {
            attempts: MAX_ATTEMPTS,
        })
    }

    /// One page of a backfill run. Redelivered pages change nothing (the job records the last
    /// page done); a page that fails is retried by the queue and redone from its start.
    pub async fn handle_backfill_page(
        &self,
        page: &BackfillPage,
        now: Timestamp,
    ) -> Result<(), String> {
        let Some(mut job) = self
            .jobs
            .load_job(&page.instance_id, &page.job_id)
            .await
            .map_err(|e| e.to_string())?
        else {
            tracing::warn!(
                job_id = page.job_id,
                "backfill page for an unknown job dropped"
            );
            return Ok(());
        };
        if matches!(job.status, JobStatus::Done | JobStatus::Failed) || job.pages_done > page.page {
            return Ok(());
        }
        if job.pages_done == page.page {
            // Done before, but queueing its successor may have failed: queue it again.
            return self.queue_next(&job).await;
        }
        let compiled = self
            .compiled_rules(&page.instance_id)
            .await
            .map_err(|e| e.to_string())?;
        let remaining = job.limit.map_or(usize::MAX, |limit| {
            limit.saturating_sub(job.scanned) as usize
        });
        let listed = self
            .contacts
            .list_contacts(
                &page.instance_id,
                &job.window(),
                page.after.as_deref(),
                self.page_size.min(remaining),
            )
            .await
            .map_err(|e| e.to_string())?;
        let version = job.version;
        job.scanned += listed.contacts.len() as u64;
        let steps = self
            .backfill_contacts(listed.contacts, &compiled, &job.job_id, now)
            .await
            .map_err(|e| e.to_string())?;
        for step in steps {
            match step {
                BackfillStep::Updated => job.updated += 1,
                BackfillStep::AlreadyAttributed => job.skipped_attributed += 1,
                BackfillStep::NoMatch => {}
            }
        }
        let limit_reached = job.limit.is_some_and(|limit| job.scanned >= limit);
        job.pages_done = page.page;
        job.next_after = listed.next.filter(|_| !limit_reached);
        job.started_at.get_or_insert(now);
        if job.next_after.is_none() {
            job.status = JobStatus::Done;
            job.finished_at = Some(now);
        } else {
            job.status = JobStatus::Running;
        }
        job.version += 1;
        match self
            .jobs
            .save_job(&job, version)
            .await
            .map_err(|e| e.to_string())?
        {
            CommitOutcome::Applied => self.queue_next(&job).await,
            _ => Err("the backfill job changed under this page".to_owned()),
        }
    }

    async fn queue_next(&self, job: &backfill::BackfillJob) -> Result<(), String> {
        let Some(after) = job
            .next_after
            .clone()
            .filter(|_| job.status == JobStatus::Running)
        else {
            return Ok(());
        };
        let queue = self
            .queue
            .get()
            .ok_or("no queue attached for backfill pages")?;
        let next = QueueJob::BackfillPage(BackfillPage {
            instance_id: job.instance_id.clone(),
            job_id: job.job_id.clone(),
            page: job.pages_done + 1,
            after: Some(after),
        });
        queue.enqueue(&next).await.map_err(|e| e.to_string())
    }

    /// Handles a batch of queue messages (id, body); answers the ids of those that failed and
    /// must be delivered again. A body that does not parse fails alone.
    pub async fn handle_batch(&self, messages: &[(String, String)], now: Timestamp) -> Vec<String> {
        let mut failed = Vec::new();
        for (message_id, body) in messages {
            let result = match serde_json::from_str::<QueueJob>(body) {
                Ok(QueueJob::Match(job)) => self
                    .handle(&job, now)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                Ok(QueueJob::BackfillPage(page)) => self.handle_backfill_page(&page, now).await,
                Ok(QueueJob::RecordClick(click)) => self.record_click(&click).await,
                // Not serde's message: it quotes the offending value, which can be a phone
                // number (a contact id sent as a JSON number, say).
                Err(error) => Err(format!(
                    "unreadable queue job: {:?} error at line {} column {}",
                    error.classify(),
                    error.line(),
                    error.column()
                )),
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

/// Match jobs the in-process queue runs at once.
const LOCAL_CONCURRENT_JOBS: usize = 32;

/// Deliveries of one message before it is dead-lettered (the template's `maxReceiveCount`).
pub const MAX_RECEIVES: u32 = 5;

impl InProcessQueue {
    /// Starts the worker on the current Tokio runtime.
    pub fn start(matcher: Arc<Matcher>) -> Arc<Self> {
        let matcher_for_pages = matcher.clone();
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
        let dead_letters = Arc::new(Mutex::new(Vec::new()));
        let dead = dead_letters.clone();
        // Jobs run side by side, as Lambda runs SQS batches: each is idempotent, and a burst of
        // new contacts must not wait for one commit after another.
        let slots = Arc::new(tokio::sync::Semaphore::new(LOCAL_CONCURRENT_JOBS));
        tokio::spawn(async move {
            while let Some(message) = receiver.recv().await {
                let permit = slots.clone().acquire_owned().await.expect("never closed");
                let (matcher, dead) = (matcher.clone(), dead.clone());
                tokio::spawn(async move {
                    let _permit = permit;
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
                });
            }
        });
        let queue = Arc::new(Self {
            sender,
            dead_letters,
        });
        matcher_for_pages.attach_queue(queue.clone());
        queue
    }

    /// Bodies of the jobs that failed every delivery.
    pub fn dead_letters(&self) -> Vec<String> {
        self.dead_letters.lock().expect("dead letters").clone()
    }
}

#[async_trait]
impl JobQueue for InProcessQueue {
    async fn enqueue(&self, job: &QueueJob) -> Result<(), QueueError> {
        let body = serde_json::to_string(job).map_err(|e| QueueError(e.to_string()))?;
        let id = format!("local-{}", crate::rules::RuleId::new());
        self.sender
            .send((id, body))
            .map_err(|_| QueueError("the local matcher has stopped".to_owned()))
    }
}
