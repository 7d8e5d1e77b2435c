//! Events from the business's own systems (bot, CRM, checkout): `POST
//! /instances/{instance_id}/contacts/{contact_id}/events`, read field by field, then recorded on
//! the contact in one conditional write.

use super::{ContactEvent, EventSource, Recorded};
use crate::contact::Contact;
use crate::contact::counters::CounterBump;
use crate::contact::store::ContactStore;
use crate::fields::{FieldError, json_object, present, reject_unknown};
use crate::goals::GoalSet;
use crate::goals::store::GoalStore;
use crate::ids::{ContactId, InstanceId};
use crate::ingest::MAX_ATTEMPTS;
use crate::revenue::money::{Amount, Currency};
use crate::store::{CommitOutcome, StoreError};
use crate::time::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value};

/// Most events one call may carry.
pub const MAX_EVENTS_PER_CALL: usize = 500;
/// An event id's longest form.
pub const MAX_EVENT_ID_CHARS: usize = 128;
/// An event or property name's longest form.
pub const MAX_NAME_CHARS: usize = 64;
/// What an event's properties may weigh, serialized.
pub const MAX_PROPERTIES_BYTES: usize = 4 * 1024;
/// How far ahead of the server's clock an event may say it happened (clock skew).
pub const MAX_FUTURE_SECONDS: i64 = 24 * 60 * 60;

const FIELDS: [&str; 6] = [
    "event_id",
    "name",
    "occurred_at",
    "properties",
    "value",
    "currency",
];

/// Why a call's events were not recorded.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// A field that does not hold: nothing was recorded.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// No contact of that id.
    #[error("no such contact")]
    UnknownContact,
    /// The store failed: nothing was recorded, the call may be sent again.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Concurrent writers kept winning the contact's version check.
    #[error("the contact kept changing under {attempts} attempts")]
    Contention {
        /// How many times the write was tried.
        attempts: u32,
    },
}

/// What a call did to one of its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventResult {
    /// The event's id, as sent.
    pub event_id: String,
    /// Created, a duplicate (nothing changed), or not kept (older than the kept journey).
    pub status: Recorded,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
}

/// A name of 1 to [`MAX_NAME_CHARS`] characters: lower-case ASCII letters, digits and `_`,
/// starting with a letter (so names read the same in every store, counter and URL).
pub fn check_name(field: &str, name: &str) -> Result<(), FieldError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_CHARS
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(is_name_char);
    if valid {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!(
                "must be 1 to {MAX_NAME_CHARS} characters of a-z, 0-9 and _, starting with a letter"
            ),
        ))
    }
}

fn check_event_id(field: &str, id: &str) -> Result<(), FieldError> {
    let valid = !id.is_empty()
        && id.len() <= MAX_EVENT_ID_CHARS
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
    if valid {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("must be 1 to {MAX_EVENT_ID_CHARS} characters of A-Z, a-z, 0-9 and . _ : -"),
        ))
    }
}

fn string_field<'a>(
    object: &'a Map<String, Value>,
    prefix: &str,
    field: &str,
) -> Result<Option<&'a str>, FieldError> {
    match present(object, field) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(FieldError::new(
            format!("{prefix}{field}"),
            "must be a string",
        )),
    }
}

/// One event of a call, `prefix` its place (`events[3].`).
fn event(
    object: &Map<String, Value>,
    prefix: &str,
    now: Timestamp,
) -> Result<ContactEvent, FieldError> {
    reject_unknown(object, prefix, &FIELDS, &[])?;
    let field = |name: &str| format!("{prefix}{name}");
    let event_id = string_field(object, prefix, "event_id")?
        .ok_or_else(|| FieldError::new(field("event_id"), "is required"))?;
    check_event_id(&field("event_id"), event_id)?;
    let name = string_field(object, prefix, "name")?
        .ok_or_else(|| FieldError::new(field("name"), "is required"))?;
    check_name(&field("name"), name)?;
    let occurred_at = match string_field(object, prefix, "occurred_at")? {
        None => now,
        Some(text) => Timestamp::parse_rfc3339(text)
            .and_then(|at| at.accepted().ok())
            .filter(|at| *at <= now.plus_seconds(MAX_FUTURE_SECONDS))
            .ok_or_else(|| {
                FieldError::new(
                    field("occurred_at"),
                    "must be an RFC 3339 time from 2000 on and at most a day ahead",
                )
            })?,
    };
    let properties = match present(object, "properties") {
        None => Map::new(),
        Some(Value::Object(properties)) => properties.clone(),
        Some(_) => return Err(FieldError::new(field("properties"), "must be an object")),
    };
    for key in properties.keys() {
        check_name(&format!("{prefix}properties.{key}"), key)?;
    }
    let weight = serde_json::to_vec(&properties).map_or(usize::MAX, |bytes| bytes.len());
    if weight > MAX_PROPERTIES_BYTES {
        return Err(FieldError::new(
            field("properties"),
            format!("must be at most {MAX_PROPERTIES_BYTES} bytes as JSON, got {weight}"),
        ));
    }
    let value = match present(object, "value") {
        None => None,
        Some(Value::Number(number)) => Some(number.to_string()),
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => return Err(FieldError::new(field("value"), "must be a number")),
    }
    .map(|text| Amount::parse_payout(&text))
    .transpose()
    .map_err(|error| FieldError::new(field("value"), error.to_string()))?;
    let currency = string_field(object, prefix, "currency")?
        .map(Currency::parse)
        .transpose()
        .map_err(|error| FieldError::new(field("currency"), error.to_string()))?;
    match (&value, &currency) {
        (Some(_), None) => {
            return Err(FieldError::new(field("currency"), "is required with value"));
        }
        (None, Some(_)) => {
            return Err(FieldError::new(field("value"), "is required with currency"));
        }
        _ => {}
    }
    Ok(ContactEvent {
        event_id: event_id.to_owned(),
        name: name.to_owned(),
        source: EventSource::Api,
        occurred_at,
        properties,
        value,
        currency,
    })
}

/// The events of a call's body: `{"events": [ … ]}` (1 to [`MAX_EVENTS_PER_CALL`]) or one
/// event object. An event id twice in one call is refused (which one would count?).
pub fn parse(body: &[u8], now: Timestamp) -> Result<Vec<ContactEvent>, FieldError> {
    let object = json_object(body)?;
    let Some(list) = object.get("events") else {
        return Ok(vec![event(&object, "", now)?]);
    };
    reject_unknown(&object, "", &["events"], &[])?;
    let Value::Array(list) = list else {
        return Err(FieldError::new("events", "must be an array"));
    };
    if list.is_empty() || list.len() > MAX_EVENTS_PER_CALL {
        return Err(FieldError::new(
            "events",
            format!(
                "must hold 1 to {MAX_EVENTS_PER_CALL} events, got {}",
                list.len()
            ),
        ));
    }
    let mut events: Vec<ContactEvent> = Vec::with_capacity(list.len());
    for (index, item) in list.iter().enumerate() {
        let prefix = format!("events[{index}].");
        let Value::Object(item) = item else {
            return Err(FieldError::new(
                format!("events[{index}]"),
                "must be an object",
            ));
        };
        let parsed = event(item, &prefix, now)?;
        if events.iter().any(|seen| seen.event_id == parsed.event_id) {
            return Err(FieldError::new(
                format!("{prefix}event_id"),
                "appears twice in this call",
            ));
        }
        events.push(parsed);
    }
    Ok(events)
}

/// The contact with `events` recorded and its progress toward `goals` moved, what each event
/// did, and the counters of the goals achieved. A duplicate moves no goal (it did when it was
/// new); an event too old for the journey still does.
pub fn apply(
    before: &Contact,
    events: &[ContactEvent],
    goals: &GoalSet,
) -> (Contact, Vec<EventResult>, Vec<CounterBump>) {
    let mut contact = before.clone();
    let results: Vec<EventResult> = events
        .iter()
        .map(|event| EventResult {
            event_id: event.event_id.clone(),
            status: contact.record_event(event.clone()),
        })
        .collect();
    let new: Vec<ContactEvent> = events
        .iter()
        .zip(&results)
        .filter(|(_, result)| result.status != Recorded::Duplicate)
        .map(|(event, _)| event.clone())
        .collect();
    let achieved = crate::goals::advance(&mut contact, goals, &new);
    contact.version += 1;
    (contact, results, achieved)
}

/// Records `events` on the contact `contact_id` names, with the goals they achieve and their
/// counters, all in one conditional write (retried when another writer moved the contact): all
/// of them or none. A call whose every event is a duplicate writes nothing. The goals are read
/// once per call (an admin call: no cache to go stale).
pub async fn record(
    store: &dyn ContactStore,
    goal_store: &dyn GoalStore,
    instance_id: &InstanceId,
    contact_id: &ContactId,
    events: &[ContactEvent],
) -> Result<Vec<EventResult>, EventsError> {
    let goals = goal_store.load_goals(instance_id).await?;
    for _ in 0..MAX_ATTEMPTS {
        let before = store
            .load_contact(instance_id, contact_id)
            .await?
            .ok_or(EventsError::UnknownContact)?;
        let (after, results, achieved) = apply(&before, events, &goals);
        if results
            .iter()
            .all(|result| result.status == Recorded::Duplicate)
        {
            return Ok(results);
        }
        match store
            .update_contact(&after, before.version, &achieved)
            .await?
        {
            CommitOutcome::Applied => return Ok(results),
            CommitOutcome::VersionConflict | CommitOutcome::Duplicate => continue,
        }
    }
    Err(EventsError::Contention {
        attempts: MAX_ATTEMPTS,
    })
}
