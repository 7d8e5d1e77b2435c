//! A contact's first message decided once: a web ref code it carries, else the instance's
//! first matching rule, else unmatched; the attribution and its counters in one conditional
//! write. Decided again when an earlier message, delivered late, becomes the first one. A rule
//! matching the first message replaces an acquisition from a later message's referral: it is
//! the earlier touch.

use super::write_decision;
use crate::contact::counters::bumps_for;
use crate::contact::store::{ContactStore, ContactUpdate};
use crate::contact::{Acquisition, RuleAttribution};
use crate::ids::InstanceId;
use crate::ingest::{IngestError, MAX_ATTEMPTS};
use crate::queue::MatchJob;
use crate::rules::CompiledRules;
use crate::store::StoreError;
use crate::time::Timestamp;
use crate::web::ref_code_in;
use crate::web::store::WidgetStore;

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

/// Decides `job`'s contact from its first message with `compiled`, looking ref codes up in
/// `ref_codes` first when there is one; retries on a version conflict.
pub(super) async fn decide(
    contacts: &dyn ContactStore,
    ref_codes: Option<&dyn WidgetStore>,
    compiled: &CompiledRules,
    job: &MatchJob,
    now: Timestamp,
) -> Result<MatchOutcome, IngestError> {
    for _ in 0..MAX_ATTEMPTS {
        let Some(before) = contacts
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
            match web_visit(ref_codes, &job.instance_id, raw_text, now).await? {
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
        let mut after = before.decided_by_rules(acquisition, now);
        let mut counters = bumps_for(Some(&before), &after);
        counters.extend(crate::funnels::follow(&mut after));
        let update = ContactUpdate {
            counters,
            contact: after,
            expected_version: before.version,
        };
        if write_decision(contacts, &update).await? {
            tracing::info!(
                instance_id = %job.instance_id,
                contact = %job.contact_id,
                outcome = ?outcome,
                "rules applied"
            );
            return Ok(outcome);
        }
    }
    Err(IngestError::Contention {
        attempts: MAX_ATTEMPTS,
    })
}

/// The web visit a first message's ref code stands for: a known code of this instance,
/// not expired. An unknown or foreign code is ignored.
async fn web_visit(
    ref_codes: Option<&dyn WidgetStore>,
    instance_id: &InstanceId,
    text: &str,
    now: Timestamp,
) -> Result<Option<(String, Acquisition)>, StoreError> {
    let (Some(store), Some(code)) = (ref_codes, ref_code_in(text)) else {
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
