//! Applying inbound events to contacts: the first-touch decision (pure) and the idempotent,
//! retry-safe write around it.

use crate::counters::bumps_for;
use crate::ids::{ContactId, InstanceId};
use crate::model::{Channel, Contact, InboundMessage, Referral, TOUCH_HISTORY_CAP};
use crate::queue::MatchJob;
use crate::store::{CommitOutcome, ContactStore, DedupeClaim, StoreError};
use crate::time::Timestamp;
use std::sync::Arc;

/// One inbound message or referral, whatever channel it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundEvent {
    /// Stable across Meta's retries of the same event: the message id, or a key derived from
    /// sender, recipient, timestamp and kind.
    pub dedupe_key: String,
    pub instance_id: InstanceId,
    pub contact_id: ContactId,
    pub channel: Channel,
    pub display_name: Option<String>,
    pub occurred_at: Timestamp,
    pub message: Option<InboundMessage>,
    pub referral: Option<Referral>,
}

/// Meta retries for up to 7 days; a processed event is remembered a day longer.
pub const DEDUPE_TTL_SECONDS: i64 = 8 * 24 * 60 * 60;

/// The contact after `event`, given the contact before it (if any). First touch: an
/// acquisition, once set, is never replaced.
pub fn apply_event(before: Option<Contact>, event: &InboundEvent) -> Contact {
    let mut contact = before.unwrap_or_else(|| Contact {
        instance_id: event.instance_id.clone(),
        contact_id: event.contact_id.clone(),
        channel: event.channel,
        display_name: None,
        first_seen_at: event.occurred_at,
        last_seen_at: event.occurred_at,
        message_count: 0,
        first_message: None,
        acquisition: None,
        touches: Vec::new(),
        rules_checked_at: None,
        version: 0,
    });
    contact.first_seen_at = contact.first_seen_at.min(event.occurred_at);
    contact.last_seen_at = contact.last_seen_at.max(event.occurred_at);
    if let Some(name) = &event.display_name {
        contact.display_name = Some(name.clone());
    }
    if let Some(message) = &event.message {
        contact.message_count += 1;
        // Retries can deliver an earlier message after a later one: the earliest is the first.
        let earlier = contact
            .first_message
            .as_ref()
            .is_none_or(|first| message.timestamp < first.timestamp);
        if earlier {
            contact.first_message = Some(message.clone());
        }
    }
    if let Some(referral) = &event.referral {
        if contact.acquisition.is_none() {
            contact.acquisition = referral.acquisition();
        }
        contact.touches.push(referral.clone());
        if contact.touches.len() > TOUCH_HISTORY_CAP {
            let excess = contact.touches.len() - TOUCH_HISTORY_CAP;
            contact.touches.drain(..excess);
        }
    }
    contact.version += 1;
    contact
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    Applied {
        contact: Box<Contact>,
        created: bool,
    },
    /// Processed before; `contact` is the contact as it stands.
    Duplicate { contact: Option<Box<Contact>> },
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
    /// the first time is queued by Meta's retry (the matcher ignores repeats).
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

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the contact kept changing under {attempts} attempts")]
    Contention { attempts: u32 },
    /// An event of one channel named a contact of another: refused, so that no channel can
    /// read or change what another one recorded.
    #[error("the contact belongs to another channel")]
    ForeignChannel,
}

/// Concurrent writers to one contact retry on a version conflict; this many is far more than
/// one conversation's burst needs.
const MAX_ATTEMPTS: u32 = 16;

#[derive(Clone)]
pub struct Ingestor {
    store: Arc<dyn ContactStore>,
}

impl Ingestor {
    pub fn new(store: Arc<dyn ContactStore>) -> Self {
        Self { store }
    }

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
        let event = &crate::bounds::bounded(event);
        let claim = DedupeClaim {
            key: format!("{}#{}", event.instance_id, event.dedupe_key),
            expires_at: now.plus_seconds(DEDUPE_TTL_SECONDS),
            now,
        };
        for _ in 0..MAX_ATTEMPTS {
            let before = self
                .store
                .load_contact(&event.instance_id, &event.contact_id)
                .await?;
            if before.as_ref().is_some_and(|c| c.channel != event.channel) {
                return Err(IngestError::ForeignChannel);
            }
            let expected_version = before.as_ref().map(|contact| contact.version);
            let after = apply_event(before.clone(), event);
            let counters = bumps_for(before.as_ref(), &after);
            match self
                .store
                .commit_event(&claim, &after, expected_version, &counters)
                .await?
            {
                CommitOutcome::Applied => {
                    crate::metrics::counters_moved(&counters);
                    return Ok(IngestOutcome::Applied {
                        created: expected_version.is_none(),
                        contact: Box::new(after),
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Acquisition, MetaPlatform, MetaReferral};

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_seconds(seconds).unwrap()
    }

    fn referral(ad_id: &str, seconds: i64) -> Referral {
        Referral::MetaAd(MetaReferral {
            ad_id: Some(ad_id.into()),
            source: Some("ad".into()),
            ..MetaReferral::minimal(MetaPlatform::Facebook, at(seconds))
        })
    }

    fn event(id: &str, seconds: i64, referral: Option<Referral>) -> InboundEvent {
        InboundEvent {
            dedupe_key: id.into(),
            instance_id: InstanceId::parse("1").unwrap(),
            contact_id: ContactId::parse("2").unwrap(),
            channel: Channel::Whatsapp,
            display_name: None,
            occurred_at: at(seconds),
            message: Some(InboundMessage {
                id: id.into(),
                kind: "text".into(),
                text: Some(id.into()),
                timestamp: at(seconds),
            }),
            referral,
        }
    }

    #[test]
    fn first_touch_is_kept_and_later_touches_are_recorded() {
        let first = apply_event(None, &event("a", 100, None));
        assert!(first.acquisition.is_none());
        let second = apply_event(Some(first), &event("b", 200, Some(referral("ad-1", 200))));
        let third = apply_event(Some(second), &event("c", 300, Some(referral("ad-2", 300))));
        match third.acquisition.as_ref().unwrap() {
            Acquisition::MetaAd(facts) => assert_eq!(facts.ad_id.as_deref(), Some("ad-1")),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(third.touches.len(), 2);
        assert_eq!(third.message_count, 3);
        assert_eq!(third.version, 3);
        assert_eq!(third.first_message.unwrap().id, "a");
    }

    #[test]
    fn out_of_order_messages_keep_the_earliest_as_first() {
        let later = apply_event(None, &event("late", 500, None));
        let both = apply_event(Some(later), &event("early", 100, None));
        assert_eq!(both.first_message.unwrap().id, "early");
        assert_eq!(both.first_seen_at, at(100));
        assert_eq!(both.last_seen_at, at(500));
    }

    #[test]
    fn touch_history_is_capped_to_the_most_recent() {
        let mut contact = None;
        for n in 0..(TOUCH_HISTORY_CAP as i64 + 5) {
            contact = Some(apply_event(
                contact,
                &event(&format!("m{n}"), n, Some(referral(&format!("ad-{n}"), n))),
            ));
        }
        let contact = contact.unwrap();
        assert_eq!(contact.touches.len(), TOUCH_HISTORY_CAP);
        match (&contact.touches[0], contact.acquisition.unwrap()) {
            (Referral::MetaAd(oldest_kept), Acquisition::MetaAd(first)) => {
                assert_eq!(oldest_kept.ad_id.as_deref(), Some("ad-5"));
                assert_eq!(first.ad_id.as_deref(), Some("ad-0"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
