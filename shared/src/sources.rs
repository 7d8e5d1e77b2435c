//! Conversation sources: whether a contact's conversation came from an ad (`ads`), from the
//! customer writing first without one (`organic`), or from the business writing first
//! (`proactive`: an outbound message before any inbound one, as WhatsApp's `sent` statuses
//! tell with their conversation's `origin.type`).
//!
//! A status and the first inbound message may arrive in either order, and both meet on the
//! same contacts item: a status for a person with no contact yet records its start under the
//! person's id (where their contact or link will be), and the event's commit that takes that
//! key refuses when a start it did not read was recorded there meanwhile, so the event is read
//! and planned again. Either the start is read with the event's contacts and goes on the
//! contact in its commit, or the status finds the contact. The answer compares the events' own
//! times, never their arrival.

use crate::contact::counters::{bumps_for, summed};
use crate::contact::store::ContactStore;
use crate::contact::store::IdentityCommit;
use crate::contact::{Acquisition, Contact};
use crate::ids::{ContactId, InstanceId};
use crate::rules::RulePlatform;
use crate::store::{CommitOutcome, StoreError};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;

/// Where a contact's conversation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationSource {
    /// An ad acquired the contact (see [`is_ad`]).
    Ads,
    /// The customer wrote first, and no ad acquired them.
    Organic,
    /// The business wrote first: an outbound message before the contact's first inbound event.
    Proactive,
}

impl ConversationSource {
    /// The name in JSON and in counters.
    pub fn as_str(&self) -> &'static str {
        match self {
            ConversationSource::Ads => "ads",
            ConversationSource::Organic => "organic",
            ConversationSource::Proactive => "proactive",
        }
    }
}

/// Whether an acquisition is an ad's: a Meta ad referral; a rule for an ad network (TikTok,
/// Google, YouTube, X, LinkedIn, Snapchat, Pinterest — not email, SMS or a custom source);
/// a web visit that carries an ad click id (gclid, gbraid, wbraid, fbclid, ttclid, msclkid,
/// li_fat_id) or a paid `utm_medium` (`cpc`, `ppc`, `cpm`, `paid…`). Meta posts, short links
/// and catalog products are not ads.
pub fn is_ad(acquisition: &Acquisition) -> bool {
    match acquisition {
        Acquisition::MetaAd(_) => true,
        Acquisition::Rule(rule) => !matches!(
            rule.platform,
            RulePlatform::Email | RulePlatform::Sms | RulePlatform::Custom
        ),
        Acquisition::Web(visit) => {
            let clicked = visit.click_ids.in_order().iter().any(|id| id.is_some());
            let paid = visit.utm.medium.as_deref().is_some_and(|medium| {
                let medium = medium.to_ascii_lowercase();
                ["cpc", "ppc", "cpm"].contains(&medium.as_str()) || medium.starts_with("paid")
            });
            clicked || paid
        }
        Acquisition::MetaPost(_) | Acquisition::Shortlink(_) | Acquisition::Product(_) => false,
    }
}

/// What opened a conversation the business started, as WhatsApp's `conversation.origin.type`
/// names it; any other value reads as `other`, so the stored set stays fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A marketing template.
    Marketing,
    /// A utility template (order updates, …).
    Utility,
    /// An authentication template (one-time codes).
    Authentication,
    /// A service conversation.
    Service,
    /// A click-to-WhatsApp ad's free entry point.
    ReferralConversion,
    /// A type this engine does not know.
    Other,
}

impl Origin {
    /// The name in JSON, as WhatsApp writes it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Origin::Marketing => "marketing",
            Origin::Utility => "utility",
            Origin::Authentication => "authentication",
            Origin::Service => "service",
            Origin::ReferralConversion => "referral_conversion",
            Origin::Other => "other",
        }
    }

    /// The origin `origin.type` names.
    pub fn of(name: &str) -> Origin {
        match name {
            "marketing" => Origin::Marketing,
            "utility" => Origin::Utility,
            "authentication" => Origin::Authentication,
            "service" => Origin::Service,
            "referral_conversion" => Origin::ReferralConversion,
            _ => Origin::Other,
        }
    }
}

/// The earliest message the business sent a person, as a `sent` status told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessFirst {
    /// The status's own time: when the message was sent.
    pub at: Timestamp,
    /// Its conversation's origin.
    pub origin: Origin,
}

/// The earlier of two starts (the first one on a tie, which is the same either way).
pub fn earliest(a: Option<BusinessFirst>, b: Option<BusinessFirst>) -> Option<BusinessFirst> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.at < a.at { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// Whether `start` tells that the business wrote first to `contact`: before its first inbound
/// event, at most [`BUSINESS_FIRST_TTL_SECONDS`](crate::contact::store::BUSINESS_FIRST_TTL_SECONDS)
/// before it (one older than the recorded starts live is not this conversation's), and
/// earlier than the start it has.
pub fn applies(contact: &Contact, start: &BusinessFirst) -> bool {
    let expires = start
        .at
        .plus_seconds(crate::contact::store::BUSINESS_FIRST_TTL_SECONDS);
    start.at < contact.first_seen_at
        && contact.first_seen_at <= expires
        && contact
            .business_first
            .is_none_or(|known| start.at < known.at)
}

/// Puts the start recorded under the event's identifiers (read with its contacts) on the
/// contact the commit writes, when it applies, with the counters that moves.
pub fn fold_recorded(commit: &mut IdentityCommit, start: Option<BusinessFirst>) {
    let Some(start) = start.filter(|start| applies(&commit.contact, start)) else {
        return;
    };
    let before = commit.contact.clone();
    commit.contact.business_first = Some(start);
    commit
        .counters
        .extend(bumps_for(Some(&before), &commit.contact));
    // The source counter the event moved may be the one the start moves back.
    commit.counters = summed(std::mem::take(&mut commit.counters));
}

impl Contact {
    /// The contact's conversation source: `ads` for an ad acquisition, else `proactive` when
    /// the business wrote before the contact's first inbound event, else `organic`.
    pub fn conversation_source(&self) -> ConversationSource {
        if self.acquisition.as_ref().is_some_and(is_ad) {
            ConversationSource::Ads
        } else if self
            .business_first
            .is_some_and(|first| first.at < self.first_seen_at)
        {
            ConversationSource::Proactive
        } else {
            ConversationSource::Organic
        }
    }
}

/// A WhatsApp `sent` status of a conversation with an origin: the only statuses that can tell
/// that the business wrote first (`delivered` and `read` follow a `sent` of the same message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundStatus {
    /// The business number that sent it.
    pub instance_id: InstanceId,
    /// The person it went to: the phone (`recipient_id`) when Meta sent one, else the BSUID.
    pub recipient: ContactId,
    /// The status's own time.
    pub at: Timestamp,
    /// The conversation's origin.
    pub origin: Origin,
}

/// Containers remember this many recipients, then start over: a bound on memory, not on
/// correctness (a forgotten recipient costs a read, never a wrong answer).
const REMEMBERED: usize = 10_000;

/// What one container knows already, so that most statuses cost nothing: for a recipient, a
/// time at or after which no status can change their contact (their first inbound event seen
/// here, or a start recorded here). Only ever an upper bound of the times that matter, so a
/// status skipped for it would have changed nothing.
#[derive(Default)]
pub struct Known(Mutex<HashMap<(InstanceId, ContactId), Timestamp>>);

impl Known {
    /// Remembers that statuses to `contact_id` at or after `at` change nothing.
    pub fn remember(&self, instance_id: &InstanceId, contact_id: &ContactId, at: Timestamp) {
        let mut known = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if known.len() >= REMEMBERED {
            known.clear();
        }
        let entry = known
            .entry((instance_id.clone(), contact_id.clone()))
            .or_insert(at);
        *entry = (*entry).min(at);
    }

    fn settles(&self, status: &OutboundStatus) -> bool {
        let known = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        known
            .get(&(status.instance_id.clone(), status.recipient.clone()))
            .is_some_and(|at| *at <= status.at)
    }
}

/// Records `status`: on the recipient's contact when it exists, else as the recipient's
/// recorded start (kept the earliest) and then, if the contact appeared meanwhile, on it.
/// A status the container's `known` settles costs nothing.
pub async fn record_status(
    store: &dyn ContactStore,
    known: &Known,
    status: &OutboundStatus,
) -> Result<(), StoreError> {
    if known.settles(status) {
        return Ok(());
    }
    let start = BusinessFirst {
        at: status.at,
        origin: status.origin,
    };
    let (instance_id, recipient) = (&status.instance_id, &status.recipient);
    if !apply_start(store, instance_id, recipient, start).await? {
        store
            .record_business_first(instance_id, recipient, &start)
            .await?;
        // Written first, read after: a contact committed meanwhile is seen here, or its
        // commit came after the start was recorded and took it (`fold_recorded`).
        apply_start(store, instance_id, recipient, start).await?;
    }
    known.remember(instance_id, recipient, status.at);
    Ok(())
}

/// Puts `start` on the contact `contact_id` names, when it is earlier than its first inbound
/// event and than the start it has, with the counters it moves, in one conditional write
/// (retried on a version conflict). Answers whether the contact exists.
async fn apply_start(
    store: &dyn ContactStore,
    instance_id: &InstanceId,
    contact_id: &ContactId,
    start: BusinessFirst,
) -> Result<bool, StoreError> {
    for _ in 0..crate::ingest::MAX_ATTEMPTS {
        let Some(before) = store.load_contact(instance_id, contact_id).await? else {
            return Ok(false);
        };
        // The same answer whether the start was recorded or met the contact directly.
        if !applies(&before, &start) {
            return Ok(true);
        }
        let mut after = before.clone();
        after.business_first = Some(start);
        after.version += 1;
        let counters = bumps_for(Some(&before), &after);
        match store
            .update_contact(&after, before.version, &counters)
            .await?
        {
            CommitOutcome::VersionConflict => continue,
            _ => {
                crate::metrics::counters_moved(&counters);
                return Ok(true);
            }
        }
    }
    Err(StoreError::Unavailable(
        "the contact kept changing under a status".into(),
    ))
}
