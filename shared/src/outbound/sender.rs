//! The outbound sender: runs each job of the outbound queue. It claims the job's delivery
//! record before sending (a conditional write keyed by the job's dedupe key), so a job
//! delivered again, or triggered twice, never sends twice once it was accepted; retries 5xx,
//! 429 (after its `Retry-After`) and timeouts with exponential backoff and jitter inside one
//! receive, then leaves the rest to the queue (its redrive moves a job that keeps failing to
//! the dead-letter queue); and records a refusal of the event as `failed`, never retried.

use super::payload::{self, Answer, Built, Endpoints, Request};
use super::store::{Claim, OutboundStore, SecretVault};
use super::{Delivery, DeliveryStatus, Destination, OutboundJob, SecretRef, Target};
use crate::contact::store::ContactStore;
use crate::fields::cap_bytes;
use crate::queue::{JobQueue, JobRunner, QueueJob};
use crate::secret::Secret;
use crate::store::StoreError;
use crate::time::Timestamp;
use async_trait::async_trait;
use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An answer of the transport: status, `Retry-After`, body.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The HTTP status.
    pub status: u16,
    /// `Retry-After`, as sent.
    pub retry_after: Option<String>,
    /// The body.
    pub body: Bytes,
}

/// What carries requests out: the HTTP client in the engine, anything in a unit test.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Posts `request`; `Err` is a timeout or a connection failure (described without the
    /// URL, which may carry a token).
    async fn post(&self, request: &Request) -> Result<Sent, String>;
}

/// How one receive of a job retries a platform's faults.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Requests in one receive, the first included.
    pub attempts: usize,
    /// The first pause; each one after doubles, with jitter.
    pub first_pause: Duration,
    /// The longest pause, `Retry-After` included.
    pub max_pause: Duration,
}

impl Default for RetryPolicy {
    /// 4 requests over about 7 s, inside a Lambda run and the queue's visibility timeout; the
    /// queue's own redeliveries (5) carry on after.
    fn default() -> Self {
        Self {
            attempts: 4,
            first_pause: Duration::from_secs(1),
            max_pause: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// From `OUTBOUND_RETRY_ATTEMPTS` and `OUTBOUND_RETRY_FIRST_MS` (tests make pauses short).
    pub fn from_env() -> Result<Self, crate::config::ConfigError> {
        let default = Self::default();
        Ok(Self {
            attempts: crate::config::parsed_or("OUTBOUND_RETRY_ATTEMPTS", default.attempts)?.max(1),
            first_pause: Duration::from_millis(crate::config::parsed_or(
                "OUTBOUND_RETRY_FIRST_MS",
                1_000u64,
            )?),
            max_pause: default.max_pause,
        })
    }
}

/// How long a claim keeps other copies of a job away: longer than one receive's requests and
/// pauses, shorter than the queue's redelivery of a crashed holder's message.
const LEASE_SECONDS: i64 = 120;
/// Google access tokens are used until this long before they expire.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// Why a job failed this receive (it goes back to the queue).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The store or the vault failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The platform kept failing or could not be reached.
    #[error("the destination kept failing: {0}")]
    Exhausted(String),
    /// The job does not parse.
    #[error("{0}")]
    Unreadable(String),
}

/// One try's outcome.
enum Try {
    Accepted(u16),
    Refused(Option<u16>, String),
    Again(Option<u16>, Option<Duration>, String),
}

/// Runs outbound jobs.
pub struct Sender {
    store: Arc<dyn OutboundStore>,
    vault: Arc<dyn SecretVault>,
    contacts: Arc<dyn ContactStore>,
    transport: Arc<dyn Transport>,
    endpoints: Endpoints,
    retry: RetryPolicy,
    /// Google access tokens by the credentials they came from, with when they lapse.
    google_tokens: Mutex<HashMap<SecretRef, (Secret, Instant)>>,
}

impl Sender {
    /// A sender over these stores, reaching `endpoints` through `transport`.
    pub fn new(
        store: Arc<dyn OutboundStore>,
        vault: Arc<dyn SecretVault>,
        contacts: Arc<dyn ContactStore>,
        transport: Arc<dyn Transport>,
        endpoints: Endpoints,
    ) -> Self {
        Self {
            store,
            vault,
            contacts,
            transport,
            endpoints,
            retry: RetryPolicy::default(),
            google_tokens: Mutex::new(HashMap::new()),
        }
    }

    /// The same with other retry pauses.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Runs one job for the queue message `owner`.
    pub async fn deliver(
        &self,
        job: &OutboundJob,
        owner: &str,
        now: Timestamp,
    ) -> Result<DeliveryStatus, SendError> {
        let trigger = &job.trigger;
        let set = self.store.load_destinations(&trigger.instance_id).await?;
        let Some(destination) = set.destinations.iter().find(|d| d.id == job.destination_id) else {
            tracing::info!(destination_id = %job.destination_id, "destination deleted; job dropped");
            return Ok(DeliveryStatus::Skipped);
        };
        let Some(event_name) = destination.maps(&trigger.event) else {
            tracing::info!(destination_id = %job.destination_id, "event no longer mapped; job dropped");
            return Ok(DeliveryStatus::Skipped);
        };
        let fresh =
            Delivery::claim_of(job, event_name, owner, now, now.plus_seconds(LEASE_SECONDS));
        let mut delivery = match self.store.claim_delivery(&fresh, now).await? {
            Claim::Claimed(delivery) => delivery,
            Claim::Done(done) => return Ok(done.status),
            // Its holder's own message comes back if the holder fails.
            Claim::Held => return Ok(DeliveryStatus::Pending),
        };
        let contact = self
            .contacts
            .load_contact(&trigger.instance_id, &trigger.contact_id)
            .await?;
        let Some(credentials) = self.vault.get_secret(&destination.secret_ref).await? else {
            return self
                .finish(
                    &mut delivery,
                    DeliveryStatus::Failed,
                    None,
                    "the destination's credentials are missing".into(),
                )
                .await;
        };
        // Built once without the real token to learn whether it goes out at all.
        match payload::build(
            job,
            destination,
            event_name,
            contact.as_ref(),
            &Secret::new(""),
            &self.endpoints,
            now,
        ) {
            Built::Send(_) => {}
            Built::Skip(reason) => {
                return self
                    .finish(&mut delivery, DeliveryStatus::Skipped, None, reason)
                    .await;
            }
            Built::Invalid(reason) => {
                return self
                    .finish(&mut delivery, DeliveryStatus::Failed, None, reason)
                    .await;
            }
        }
        let mut pauses = ExponentialBuilder::default()
            .with_min_delay(self.retry.first_pause)
            .with_max_delay(self.retry.max_pause)
            .with_max_times(self.retry.attempts.saturating_sub(1))
            .with_jitter()
            .build();
        loop {
            delivery.attempts += 1;
            let outcome = self
                .try_once(job, destination, event_name, contact.as_ref(), &credentials)
                .await;
            match outcome {
                Try::Accepted(status) => {
                    tracing::info!(destination_id = %job.destination_id, status, "delivery accepted");
                    return self
                        .finish(
                            &mut delivery,
                            DeliveryStatus::Sent,
                            Some(status),
                            String::new(),
                        )
                        .await;
                }
                Try::Refused(status, message) => {
                    tracing::warn!(destination_id = %job.destination_id, ?status, "delivery refused as bad");
                    return self
                        .finish(&mut delivery, DeliveryStatus::Failed, status, message)
                        .await;
                }
                Try::Again(status, after, message) => {
                    let Some(pause) = pauses.next() else {
                        // Released for the next receive, which any copy of the job may take.
                        delivery.http_status = status;
                        delivery.message = Some(cap(&message));
                        delivery.lease_owner = None;
                        delivery.lease_until = None;
                        delivery.updated_at = Timestamp::now();
                        self.store.record_delivery(&delivery).await?;
                        return Err(SendError::Exhausted(message));
                    };
                    let pause = after.map_or(pause, |after| after.min(self.retry.max_pause));
                    tracing::warn!(destination_id = %job.destination_id, ?status, ?pause, "destination fault; retrying");
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    async fn finish(
        &self,
        delivery: &mut Delivery,
        status: DeliveryStatus,
        http_status: Option<u16>,
        message: String,
    ) -> Result<DeliveryStatus, SendError> {
        delivery.status = status;
        delivery.http_status = http_status;
        delivery.message = (!message.is_empty()).then(|| cap(&message));
        delivery.lease_owner = None;
        delivery.lease_until = None;
        delivery.updated_at = Timestamp::now();
        self.store.record_delivery(delivery).await?;
        Ok(status)
    }

    async fn try_once(
        &self,
        job: &OutboundJob,
        destination: &Destination,
        event_name: &str,
        contact: Option<&crate::contact::Contact>,
        credentials: &Secret,
    ) -> Try {
        let token = match self.token(destination, credentials).await {
            Ok(token) => token,
            Err(again) => return again,
        };
        let request = match payload::build(
            job,
            destination,
            event_name,
            contact,
            &token,
            &self.endpoints,
            Timestamp::now(),
        ) {
            Built::Send(request) => request,
            Built::Skip(reason) | Built::Invalid(reason) => return Try::Refused(None, reason),
        };
        match self.transport.post(&request).await {
            Err(error) => Try::Again(None, None, error),
            Ok(sent) => {
                let google = matches!(destination.target, Target::GoogleDataManager { .. });
                if google && sent.status == 401 {
                    // An access token revoked or expired early: the next try fetches another.
                    self.google_tokens
                        .lock()
                        .expect("token cache")
                        .remove(&destination.secret_ref);
                    return Try::Again(Some(401), None, "Google refused the access token".into());
                }
                match payload::classify(
                    &destination.target,
                    sent.status,
                    sent.retry_after.as_deref(),
                    &sent.body,
                ) {
                    Answer::Accepted => Try::Accepted(sent.status),
                    Answer::Refused { message } => Try::Refused(Some(sent.status), message),
                    Answer::Retry { after, message } => {
                        Try::Again(Some(sent.status), after, message)
                    }
                }
            }
        }
    }

    /// The bearer credential of `destination`: a webhook's signing secret, Meta's or TikTok's
    /// access token, or a Google access token from its OAuth refresh token (kept until shortly
    /// before it lapses).
    async fn token(&self, destination: &Destination, credentials: &Secret) -> Result<Secret, Try> {
        let field = match destination.target {
            Target::Webhook { .. } => "signing_secret",
            Target::MetaCapi { .. } | Target::Tiktok { .. } => "access_token",
            Target::GoogleDataManager { .. } => {
                return self.google_token(destination, credentials).await;
            }
        };
        payload::credential(credentials, field)
            .map(Secret::new)
            .ok_or_else(|| {
                Try::Refused(
                    None,
                    format!("the destination's credentials have no {field}"),
                )
            })
    }

    async fn google_token(
        &self,
        destination: &Destination,
        credentials: &Secret,
    ) -> Result<Secret, Try> {
        if let Some((token, until)) = self
            .google_tokens
            .lock()
            .expect("token cache")
            .get(&destination.secret_ref)
        {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let field = |name| payload::credential(credentials, name).unwrap_or_default();
        let form: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "refresh_token")
            .append_pair("client_id", &field("client_id"))
            .append_pair("client_secret", &field("client_secret"))
            .append_pair("refresh_token", &field("refresh_token"))
            .finish();
        let request = Request {
            url: self.endpoints.google_oauth.clone(),
            headers: Vec::new(),
            body: form.into_bytes(),
            form: true,
        };
        let sent = self
            .transport
            .post(&request)
            .await
            .map_err(|error| Try::Again(None, None, format!("Google OAuth: {error}")))?;
        let body: serde_json::Value = serde_json::from_slice(&sent.body).unwrap_or_default();
        match (
            sent.status,
            body.get("access_token").and_then(|t| t.as_str()),
        ) {
            (200, Some(token)) => {
                let lifetime = body
                    .get("expires_in")
                    .and_then(serde_json::Value::as_u64)
                    .map_or(Duration::from_secs(3_600), Duration::from_secs);
                let token = Secret::new(token);
                self.google_tokens.lock().expect("token cache").insert(
                    destination.secret_ref.clone(),
                    (
                        token.clone(),
                        Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN),
                    ),
                );
                Ok(token)
            }
            (status, _) if status == 429 || status >= 500 => Err(Try::Again(
                Some(status),
                payload::retry_after(sent.retry_after.as_deref()),
                format!("Google OAuth answered {status}"),
            )),
            (status, _) => Err(Try::Refused(
                Some(status),
                format!(
                    "Google OAuth refused the credentials: {}",
                    body.get("error_description")
                        .or_else(|| body.get("error"))
                        .and_then(|e| e.as_str())
                        .unwrap_or("no reason given")
                ),
            )),
        }
    }

    /// Runs a batch of queue messages (id, body); answers the ids that failed and must come
    /// again. A body that does not parse fails alone (and reaches the dead-letter queue).
    pub async fn handle_batch(&self, messages: &[(String, String)], now: Timestamp) -> Vec<String> {
        let mut failed = Vec::new();
        for (message_id, body) in messages {
            let result = match serde_json::from_str::<QueueJob>(body) {
                Ok(QueueJob::Outbound(job)) => {
                    self.deliver(&job, message_id, now).await.map(|_| ())
                }
                Ok(_) => Err(SendError::Unreadable("not an outbound job".to_owned())),
                // Not serde's message: it may quote a contact id.
                Err(error) => Err(SendError::Unreadable(format!(
                    "unreadable outbound job: {:?} error at line {} column {}",
                    error.classify(),
                    error.line(),
                    error.column()
                ))),
            };
            if let Err(error) = result {
                tracing::error!(message_id, error = %error, "outbound job failed; it will be retried");
                failed.push(message_id.clone());
            }
        }
        failed
    }
}

fn cap(message: &str) -> String {
    cap_bytes(message, super::MAX_DELIVERY_MESSAGE_BYTES).to_owned()
}

#[async_trait]
impl JobRunner for Sender {
    async fn handle_batch(&self, messages: &[(String, String)], now: Timestamp) -> Vec<String> {
        Sender::handle_batch(self, messages, now).await
    }

    /// The sender queues nothing.
    fn attach_queue(&self, _queue: Arc<dyn JobQueue>) {}
}
