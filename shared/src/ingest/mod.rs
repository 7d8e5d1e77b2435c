//! Applying inbound events to contacts: the idempotent, retry-safe write around the pure
//! first-touch decision of [`first_touch`].

pub mod first_touch;

pub use first_touch::apply_event;

use crate::contact::counters::summed;
use crate::contact::identity::{self, Plan};
use crate::contact::store::ContactStore;
use crate::contact::{Channel, Contact, Identity, InboundMessage, Referral};
use crate::goals::cache::GoalsCache;
use crate::ids::{ContactId, InstanceId};
use crate::queue::MatchJob;
use crate::store::{CommitOutcome, DedupeClaim, StoreError};
use crate::time::Timestamp;
use std::sync::Arc;

/// One inbound message or referral, whatever channel it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundEvent {
    /// Stable across Meta's retries of the same event: the message id, or a key derived from
    /// sender, recipient, timestamp and kind.
    pub dedupe_key: String,
    /// The business side that received the event.
    pub instance_id: InstanceId,
    /// The person who wrote, as the channel names them.
    pub contact_id: ContactId,
    /// The channel it came through.
    pub channel: Channel,
    /// The sender's name as the channel shows it, when it says.
    pub display_name: Option<String>,
    /// When the event happened, by the channel's clock (not when it arrived).
    pub occurred_at: Timestamp,
    /// The message text and id, when the event is a message.
    pub message: Option<InboundMessage>,
    /// The ad, post or link the event came from, when it says.
    pub referral: Option<Referral>,
    /// The WhatsApp identifiers the event carried (empty on other channels).
    pub identity: Identity,
}

/// Meta retries for up to 7 days; a processed event is remembered a day longer.
pub const DEDUPE_TTL_SECONDS: i64 = 8 * 24 * 60 * 60;

/// What ingesting an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Written: `contact` as it stands now.
    Applied {
        /// The contact after the event.
        contact: Box<Contact>,
        /// Whether the event created the contact.
        created: bool,
    },
    /// Processed before; `contact` is the contact as it stands.
    Duplicate {
        /// The contact as it stands, if it still exists.
        contact: Option<Box<Contact>>,
    },
}

impl IngestOutcome {
    /// The contact after the event, whether it was applied now or before.
    pub fn contact(&self) -> Option<&Contact> {
        match self {
            IngestOutcome::Applied { contact, .. } => Some(contact),
            IngestOutcome::Duplicate { contact } => contact.as_deref(),
        }
    }

    /// The match job `event` calls for: it carried the first message of a contact that still
    /// awaits the text rules. Asked again on a duplicate too, so that a job whose enqueue failed
    /// the first time is queued by Meta's retry (the queue worker ignores repeats).
    pub fn match_job(&self, event: &InboundEvent) -> Option<MatchJob> {
        let contact = self.contact()?;
        let message = event.message.as_ref()?;
        let is_first = contact
            .first_message
            .as_ref()
            .is_some_and(|first| first.id == message.id);
        (is_first && contact.awaits_rule_match()).then(|| MatchJob {
            instance_id: contact.instance_id.clone(),
            contact_id: contact.contact_id.clone(),
        })
    }
}

/// Why an event could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Concurrent writers kept winning the contact's version check.
    #[error("the contact kept changing under {attempts} attempts")]
    Contention {
        /// How many times the write was tried.
        attempts: u32,
    },
    /// An event of one channel named a contact of another: refused, so that no channel can
    /// read or change what another one recorded.
    #[error("the contact belongs to another channel")]
    ForeignChannel,
}

/// Concurrent writers to one contact retry on a version conflict; this many is far more than
/// one conversation's burst needs (the queue worker's writes share the bound).
pub(crate) const MAX_ATTEMPTS: u32 = 16;

/// Applies inbound events to contacts, exactly once each, through the contact store.
#[derive(Clone)]
pub struct Ingestor {
    store: Arc<dyn ContactStore>,
    /// The instances' goals, when events move them (the webhook's).
    goals: Option<Arc<GoalsCache>>,
}

impl Ingestor {
    /// An ingestor writing to `store`.
    pub fn new(store: Arc<dyn ContactStore>) -> Self {
        Self { store, goals: None }
    }

    /// The same, moving the instances' goals (read through `goals`) in each event's commit.
    pub fn with_goals(mut self, goals: Arc<GoalsCache>) -> Self {
        self.goals = Some(goals);
        self
    }

    /// The contact store it writes to, for callers that read what it wrote.
    pub fn store(&self) -> &Arc<dyn ContactStore> {
        &self.store
    }

    /// Applies the event exactly once: the dedupe claim and the contact write commit together
    /// or not at all, so a failure leaves nothing marked as processed.
    pub async fn ingest(
        &self,
        event: &InboundEvent,
        now: Timestamp,
    ) -> Result<IngestOutcome, IngestError> {
        let event = &crate::contact::bounds::bounded(event);
        let claim = DedupeClaim {
            key: format!("{}#{}", event.instance_id, event.dedupe_key),
            expires_at: now.plus_seconds(DEDUPE_TTL_SECONDS),
            now,
        };
        for _ in 0..MAX_ATTEMPTS {
            let (mut plan, claimed) = self.plan(event, &claim).await?;
            if claimed {
                // Known from the read: no write that the claim's condition would refuse.
                return Ok(IngestOutcome::Duplicate {
                    contact: plan.before.map(Box::new),
                });
            }
            if let (Some(goals), Some(message)) = (&self.goals, &event.message) {
                let goals = goals.get(&event.instance_id).await?;
                let events = crate::events::built_in(message, event.product().as_ref());
                let commit = &mut plan.commit;
                let achieved = crate::goals::advance(&mut commit.contact, &goals, &events);
                commit.counters.extend(achieved);
                // A merge's take-backs and the merged contact's new counts may name one counter.
                commit.counters = summed(std::mem::take(&mut commit.counters));
            }
            let commit = &plan.commit;
            let outcome = if plan.relinks() {
                self.store.commit_identity(&claim, commit).await?
            } else {
                self.store
                    .commit_event(
                        &claim,
                        &commit.contact,
                        commit.expected_version,
                        &commit.counters,
                    )
                    .await?
            };
            let Plan { before, commit } = plan;
            match outcome {
                CommitOutcome::Applied => {
                    crate::metrics::counters_moved(&commit.counters);
                    return Ok(IngestOutcome::Applied {
                        created: commit.expected_version.is_none(),
                        contact: Box::new(commit.contact),
                    });
                }
                CommitOutcome::Duplicate => {
                    return Ok(IngestOutcome::Duplicate {
                        contact: before.map(Box::new),
                    });
                }
                CommitOutcome::VersionConflict => continue,
            }
        }
        Err(IngestError::Contention {
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Reads the contact each of the event's identifiers resolves to, with whether `claim` is
    /// held and the business's start recorded under them, and plans the write. An identifier that names a contact of another channel is
    /// refused.
    async fn plan(
        &self,
        event: &InboundEvent,
        claim: &DedupeClaim,
    ) -> Result<(Plan, bool), IngestError> {
        let identifiers = identity::identifiers(event);
        let read = self
            .store
            .load_for_event(&event.instance_id, &identifiers, claim)
            .await?;
        if read
            .contacts
            .iter()
            .flatten()
            .any(|c| c.channel != event.channel)
        {
            return Err(IngestError::ForeignChannel);
        }
        let mut plan = identity::plan(event, &read.contacts);
        crate::sources::fold_recorded(&mut plan.commit, read.start);
        Ok((plan, read.claimed))
    }
}
