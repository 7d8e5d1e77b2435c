//! The queue worker: runs each job of the match queue (a first message to match, a backfill
//! page, a click the redirect queued), on SQS in Lambda and on the in-process queue locally.

use super::backfill::{self, JobStore, Pager};
use super::first_message::{self, MatchOutcome};
use super::rules_cache::RulesCache;
use crate::contact::store::ContactStore;
use crate::ids::InstanceId;
use crate::ingest::IngestError;
use crate::queue::{BackfillPage, JobQueue, JobRunner, MatchJob, QueueJob};
use crate::revenue::Click;
use crate::revenue::store::RevenueStore;
use crate::rules::CompiledRules;
use crate::rules::store::RuleStore;
use crate::store::StoreError;
use crate::time::Timestamp;
use crate::web::store::WidgetStore;
use async_trait::async_trait;
use std::sync::{Arc, OnceLock};

/// Runs the queue's jobs: text rules on first messages, backfill pages and recorded clicks.
pub struct QueueWorker {
    contacts: Arc<dyn ContactStore>,
    jobs: Arc<dyn JobStore>,
    /// Where a backfill page queues the next one; set once the queue exists (the in-process
    /// queue needs the worker first).
    queue: OnceLock<Arc<dyn JobQueue>>,
    page_size: usize,
    rules: RulesCache,
    /// Where ref codes from the web widget are looked up; without it, first messages are
    /// matched against the rules only.
    ref_codes: Option<Arc<dyn WidgetStore>>,
    /// Where queued clicks are recorded; without it, such jobs fail (and are retried).
    revenue: Option<Arc<dyn RevenueStore>>,
}

impl QueueWorker {
    /// A worker over these stores, with compiled rules cached per instance.
    pub fn new(
        contacts: Arc<dyn ContactStore>,
        rules: Arc<dyn RuleStore>,
        jobs: Arc<dyn JobStore>,
    ) -> Self {
        Self {
            contacts,
            jobs,
            queue: OnceLock::new(),
            page_size: backfill::PAGE_SIZE,
            rules: RulesCache::new(rules),
            ref_codes: None,
            revenue: None,
        }
    }

    /// Records the clicks the redirect queued when it could not record them itself.
    pub fn with_revenue(mut self, store: Arc<dyn RevenueStore>) -> Self {
        self.revenue = Some(store);
        self
    }

    /// Looks up the web widget's ref codes (`[ref:…]` in a first message) before the rules.
    pub fn with_ref_codes(mut self, store: Arc<dyn WidgetStore>) -> Self {
        self.ref_codes = Some(store);
        self
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
        self.rules.get(instance_id).await
    }

    /// Decides one contact's attribution from its first message (or its ref code), retrying on
    /// a version conflict.
    pub async fn match_first_message(
        &self,
        job: &MatchJob,
        now: Timestamp,
    ) -> Result<MatchOutcome, IngestError> {
        let compiled = self.compiled_rules(&job.instance_id).await?;
        first_message::decide(
            self.contacts.as_ref(),
            self.ref_codes.as_deref(),
            &compiled,
            job,
            now,
        )
        .await
    }

    /// One page of a backfill run, then its successor queued. Redelivered pages change nothing
    /// (the job records the last page done); a page that fails is retried by the queue and
    /// redone from its start.
    pub async fn handle_backfill_page(
        &self,
        page: &BackfillPage,
        now: Timestamp,
    ) -> Result<(), String> {
        let pager = Pager {
            contacts: self.contacts.as_ref(),
            jobs: self.jobs.as_ref(),
            rules: &self.rules,
            page_size: self.page_size,
        };
        let Some(next) = pager.run(page, now).await? else {
            return Ok(());
        };
        let queue = self
            .queue
            .get()
            .ok_or("no queue attached for backfill pages")?;
        queue
            .enqueue(&QueueJob::BackfillPage(next))
            .await
            .map_err(|e| e.to_string())
    }

    /// A queued click, recorded once however often it is delivered.
    async fn record_click(&self, click: &Click) -> Result<(), String> {
        let store = self
            .revenue
            .as_ref()
            .ok_or("no revenue store attached for queued clicks")?;
        crate::revenue::conversions::record_click(store.as_ref(), click)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(offer_id = %click.offer_id, "queued click recorded");
        Ok(())
    }

    /// Handles a batch of queue messages (id, body); answers the ids of those that failed and
    /// must be delivered again. A body that does not parse fails alone.
    pub async fn handle_batch(&self, messages: &[(String, String)], now: Timestamp) -> Vec<String> {
        let mut failed = Vec::new();
        for (message_id, body) in messages {
            let result = match serde_json::from_str::<QueueJob>(body) {
                Ok(QueueJob::Match(job)) => self
                    .match_first_message(&job, now)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                Ok(QueueJob::BackfillPage(page)) => self.handle_backfill_page(&page, now).await,
                Ok(QueueJob::RecordClick(click)) => self.record_click(&click).await,
                // Its own queue and worker send these; here it can only be a misrouted one.
                Ok(QueueJob::Outbound(_)) => Err("an outbound job on the match queue".to_owned()),
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

/// The in-process queue runs its messages through the worker, as Lambda does with SQS batches.
#[async_trait]
impl JobRunner for QueueWorker {
    async fn handle_batch(&self, messages: &[(String, String)], now: Timestamp) -> Vec<String> {
        QueueWorker::handle_batch(self, messages, now).await
    }

    fn attach_queue(&self, queue: Arc<dyn JobQueue>) {
        QueueWorker::attach_queue(self, queue)
    }
}
