//! Attribution rules for non-Meta ads: validation, normalisation and compiled rules.
//!
//! TikTok, Google, X, LinkedIn, YouTube and other ads open WhatsApp through `wa.me` links with a
//! pre-filled message. An admin describes each ad by a pattern on that message; the first
//! message of a contact without a Meta referral is matched against the instance's enabled rules
//! in evaluation order (ascending `priority`, oldest first, then `id`), and the first match
//! attributes the contact.
//!
//! - [`RuleDraft::from_json`] parses and validates what a client sends; [`RuleDraft::into_rule`]
//!   makes the stored [`Rule`].
//! - [`CompiledRules::compile`] turns an instance's rules into compiled rules, and
//!   [`CompiledRules::first_match`] answers for one message in about a microsecond, even at
//!   [`MAX_RULES_PER_INSTANCE`] rules.
//! - [`normalize`] is the text form literal patterns and messages are compared in.

mod compiled;
mod id;
pub mod listing;
mod normalize;
mod rule;
pub mod store;

pub use compiled::{CompiledRules, SkippedRule};
pub use id::{InvalidRuleId, RuleId};
pub use normalize::normalize;
pub use rule::{
    DEFAULT_PRIORITY, MAX_LABEL_CHARS, MAX_PATTERN_CHARS, MAX_PRIORITY, MAX_RULES_PER_INSTANCE,
    MIN_PRIORITY, MatchKind, REGEX_SIZE_LIMIT, Rule, RuleDraft, RuleError, RuleMatch, RulePlatform,
    sort_in_evaluation_order,
};
