//! Where engine events become outbound jobs: the triggers an inbound event, custom events or a
//! credited conversion stand for (pure), and the dispatcher that puts one job per destination
//! mapping a trigger on the outbound queue. Callers fire after their commit and fail their
//! request when queueing fails, so the caller's retry (a duplicate by then) fires again;
//! the delivery records make the repeats harmless.

use super::store::OutboundStore;
use super::{DestinationSet, EngineEvent, OutboundJob, Trigger};
use crate::contact::Contact;
use crate::events::{ContactEvent, ORDER_PLACED};
use crate::ids::InstanceId;
use crate::ingest::InboundEvent;
use crate::queue::{JobQueue, QueueError, QueueJob};
use crate::revenue::Conversion;
use crate::store::StoreError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a container trusts the destinations it read: a new destination gets the events
/// that follow within this.
pub const DESTINATIONS_CACHE_SECONDS: u64 = 30;
/// Instances kept at once: past it the cache starts over.
const MAX_INSTANCES: usize = 10_000;

fn trigger(contact: &Contact, event: EngineEvent, at: crate::time::Timestamp) -> Trigger {
    Trigger {
        instance_id: contact.instance_id.clone(),
        contact_id: contact.contact_id.clone(),
        event,
        reference: None,
        occurred_at: at,
        value: None,
        currency: None,
    }
}

/// The goals `contact` achieved at one of `times` (the events just applied): an achievement
/// is stamped with the time of the event that completed it.
fn goals_achieved_at(contact: &Contact, times: &[crate::time::Timestamp]) -> Vec<Trigger> {
    contact
        .goals
        .iter()
        .filter_map(|(id, progress)| {
            let at = progress.achieved.as_ref()?.at;
            times
                .contains(&at)
                .then(|| trigger(contact, EngineEvent::Goal(id.clone()), at))
        })
        .collect()
}

/// What an inbound event applied to `contact` (now, or before: a retried delivery) stands
/// for: `lead` when it is the contact's first event, `order` for a WhatsApp order, and each
/// goal it completed. Derived from the event and the contact as stored, so a retry of the
/// delivery finds the same triggers.
pub fn after_inbound(event: &InboundEvent, contact: &Contact) -> Vec<Trigger> {
    let mut triggers = Vec::new();
    let first = match (&event.message, &contact.first_message) {
        (Some(message), Some(first)) => message.id == first.id,
        _ => event.occurred_at == contact.first_seen_at,
    };
    if first {
        triggers.push(trigger(contact, EngineEvent::Lead, contact.first_seen_at));
    }
    if let Some(message) = &event.message {
        let order = crate::events::built_in(message, None)
            .into_iter()
            .find(|built| built.name == ORDER_PLACED);
        if let Some(order) = order {
            let mut placed = trigger(contact, EngineEvent::Order, order.occurred_at);
            placed.reference = Some(message.id.clone());
            placed.value = order.value;
            placed.currency = order.currency;
            triggers.push(placed);
        }
    }
    triggers.extend(goals_achieved_at(contact, &[event.occurred_at]));
    triggers
}

/// The goals `events` (the business's own, just recorded) completed on `contact`.
pub fn after_events(contact: &Contact, events: &[ContactEvent]) -> Vec<Trigger> {
    let times: Vec<_> = events.iter().map(|event| event.occurred_at).collect();
    goals_achieved_at(contact, &times)
}

/// A conversion credited to a contact; `None` for one credited to nobody.
pub fn after_conversion(conversion: &Conversion) -> Option<Trigger> {
    conversion.credited.as_ref()?;
    Some(Trigger {
        instance_id: conversion.instance_id.clone()?,
        contact_id: conversion.contact_id.clone()?,
        event: EngineEvent::Conversion,
        reference: Some(conversion.conversion_key.clone()),
        occurred_at: conversion.converted_at,
        value: Some(conversion.payout),
        currency: Some(conversion.currency),
    })
}

/// Why triggers were not all queued; the caller answers 5xx and its retry fires again.
#[derive(Debug, thiserror::Error)]
pub enum FireError {
    /// The destinations could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The outbound queue did not take a job.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Puts outbound jobs on the outbound queue for the destinations that map each trigger.
pub struct Dispatcher {
    store: Arc<dyn OutboundStore>,
    queue: Arc<dyn JobQueue>,
    ttl: Duration,
    read: Mutex<HashMap<InstanceId, (Instant, Arc<DestinationSet>)>>,
}

impl Dispatcher {
    /// A dispatcher reading destinations from `store` (cached per instance for
    /// [`DESTINATIONS_CACHE_SECONDS`]) and queueing on `queue`.
    pub fn new(store: Arc<dyn OutboundStore>, queue: Arc<dyn JobQueue>) -> Self {
        Self::with_ttl(
            store,
            queue,
            Duration::from_secs(DESTINATIONS_CACHE_SECONDS),
        )
    }

    /// For Lambda: the destinations in `OUTBOUND_TABLE`, the jobs to `OUTBOUND_QUEUE_URL`.
    #[cfg(feature = "aws")]
    pub fn from_env(
        start: &crate::config::LambdaStart,
    ) -> Result<Self, crate::config::ConfigError> {
        Ok(Self::new(
            Arc::new(crate::store::dynamo::outbound::DynamoOutboundStore::from_env(&start.dynamo)?),
            Arc::new(crate::queue::sqs::SqsQueue::outbound_from_env(&start.aws)?),
        ))
    }

    /// The same with another trust period (0: read every time, for tests).
    pub fn with_ttl(
        store: Arc<dyn OutboundStore>,
        queue: Arc<dyn JobQueue>,
        ttl: Duration,
    ) -> Self {
        Self {
            store,
            queue,
            ttl,
            read: Mutex::new(HashMap::new()),
        }
    }

    async fn destinations(
        &self,
        instance_id: &InstanceId,
    ) -> Result<Arc<DestinationSet>, StoreError> {
        if let Some((at, set)) = self.read.lock().expect("cache lock").get(instance_id) {
            if at.elapsed() < self.ttl {
                return Ok(set.clone());
            }
        }
        let set = Arc::new(self.store.load_destinations(instance_id).await?);
        let mut read = self.read.lock().expect("cache lock");
        if read.len() >= MAX_INSTANCES {
            read.clear();
        }
        read.insert(instance_id.clone(), (Instant::now(), set.clone()));
        Ok(set)
    }

    /// Queues one job per (trigger, destination mapping it); answers how many. Returns once
    /// every job is queued.
    pub async fn fire(&self, triggers: &[Trigger]) -> Result<usize, FireError> {
        let mut queued = 0;
        for trigger in triggers {
            let set = self.destinations(&trigger.instance_id).await?;
            for destination in &set.destinations {
                if destination.maps(&trigger.event).is_none() {
                    continue;
                }
                let job = OutboundJob {
                    destination_id: destination.id.clone(),
                    trigger: trigger.clone(),
                };
                self.queue
                    .enqueue(&QueueJob::Outbound(Box::new(job)))
                    .await?;
                queued += 1;
            }
        }
        Ok(queued)
    }
}
