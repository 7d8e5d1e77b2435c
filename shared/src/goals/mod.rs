//! Goals: what a business counts as a chat that went somewhere (a qualified lead, an order),
//! written as conditions on the contact's events. A contact achieves a goal at most once, when
//! its events first satisfy it inside the window from first touch, whatever their arrival
//! order; the achievement and its counters are written in the same commit as the event.

pub mod admin;
pub mod cache;
pub mod draft;
pub mod stats;
pub mod store;

use crate::contact::Contact;
use crate::contact::counters::CounterBump;
use crate::events::ContactEvent;
use crate::monotonic_ulid::Ulid;
use crate::revenue::money::Amount;
use crate::rules::normalize;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// Most goals one instance may hold: each is evaluated on every event of its contacts.
pub const MAX_GOALS_PER_INSTANCE: usize = 20;
/// Most conditions of a goal, and rules of a condition.
pub const MAX_CONDITIONS: usize = 5;
/// Most rules of one condition.
pub const MAX_RULES: usize = 5;
/// The window when a goal names none, in days from first touch.
pub const DEFAULT_WINDOW_DAYS: u32 = 30;
/// The longest window.
pub const MAX_WINDOW_DAYS: u32 = 365;

/// A goal's id: a ULID, like a rule's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct GoalId(String);

/// A goal id that is not a ULID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("goal_id must be a ULID: 26 characters of Crockford base 32")]
pub struct InvalidGoalId;

impl GoalId {
    /// A fresh id.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self(Ulid::new().to_string())
    }

    /// Accepts lower case too and keeps the canonical upper case.
    pub fn parse(value: &str) -> Result<Self, InvalidGoalId> {
        Ulid::canonical_text(value).map(Self).ok_or(InvalidGoalId)
    }

    /// The canonical ULID.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GoalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

crate::ids::deserialize_by_parse!(GoalId);

/// How the parts of a level combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    /// Every part must hold.
    All,
    /// One part is enough.
    Any,
}

/// How a rule compares an event's property with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Equal (numbers as exact decimals; `text` normalised as the rules normalise it).
    Eq,
    /// The property's text holds the value (`text`: normalised).
    Contains,
    /// Equal to one of the value's items.
    In,
    /// At least the value, as exact decimals.
    Gte,
    /// At most the value, as exact decimals.
    Lte,
}

/// One test of one event: its name, and optionally one of its properties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoalRule {
    /// The event's name.
    pub event: String,
    /// The property tested: a name of `properties`, or `value` (the event's value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    /// The comparison, with `property`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<Op>,
    /// What the property is compared with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// Rules combined by `match`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// How the rules combine.
    #[serde(rename = "match")]
    pub match_: Match,
    /// 1 to [`MAX_RULES`] rules.
    pub rules: Vec<GoalRule>,
}

/// What a goal says, as an admin writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoalSettings {
    /// A label for people.
    pub name: String,
    /// Days from first touch in which the events count.
    pub window_days: u32,
    /// How the conditions combine.
    #[serde(rename = "match")]
    pub match_: Match,
    /// 1 to [`MAX_CONDITIONS`] conditions.
    pub conditions: Vec<Condition>,
    /// Whether the ads report counts it as the instance's qualified lead (one goal at most).
    #[serde(default)]
    pub qualified_lead: bool,
}

/// A stored goal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Goal {
    /// Its id.
    pub id: GoalId,
    /// What it says.
    #[serde(flatten)]
    pub settings: GoalSettings,
    /// Moves with every change of the settings: progress toward an older revision starts over.
    pub revision: u64,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// An instance's goals, stored as one record: small (at most [`MAX_GOALS_PER_INSTANCE`]), read
/// in one go by the webhook's cache, and changed under one version check so that the bound and
/// the single qualified-lead goal hold under concurrent writes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoalSet {
    /// Every goal, oldest first.
    #[serde(default)]
    pub goals: Vec<Goal>,
    /// Moves with every write; 0 before the first.
    #[serde(default)]
    pub version: u64,
}

impl GoalSet {
    /// The goal of that id.
    pub fn goal(&self, id: &GoalId) -> Option<&Goal> {
        self.goals.iter().find(|goal| goal.id == *id)
    }

    /// The instance's qualified-lead goal, if one is marked.
    pub fn qualified_lead(&self) -> Option<&Goal> {
        self.goals.iter().find(|goal| goal.settings.qualified_lead)
    }
}

/// A contact's progress toward one goal: for each rule, the earliest time an event satisfied
/// it (kept apart from the bounded event log, so a dropped event changes no goal), and the
/// achievement once there is one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoalProgress {
    /// The goal revision the rule times are for.
    pub revision: u64,
    /// `"<condition>.<rule>"` → the earliest event time that satisfied the rule.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub satisfied: BTreeMap<String, Timestamp>,
    /// When and how the goal was achieved, and counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub achieved: Option<Achievement>,
}

/// A goal achieved, with the counters it moved (so a recount reads the contacts, and nothing is
/// counted twice).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Achievement {
    /// When the last needed rule was satisfied.
    pub at: Timestamp,
    /// The day of the counters it moved: the contact's first-seen day when it was achieved.
    pub day: String,
    /// The counter names it added one to.
    pub counted: Vec<String>,
}

/// Counter names of one goal are kept under a "day" of their own, `g#<goal id>#<YYYY-MM-DD>`:
/// one small counters item per goal and day, outside the range of the instance's daily stats
/// (`g` sorts after every digit).
pub fn counter_day(goal_id: &GoalId, day: &str) -> String {
    format!("g#{goal_id}#{day}")
}

/// The counter a goal achievement moves in total.
pub const ACHIEVED: &str = "achieved";

/// The names an achievement of a contact moves: the total, and what the contact counts in
/// among the stats' counters (its acquisition's kind, platform, rule, campaign and ad, each from
/// a fixed or admin-made vocabulary), or `kind:none` unattributed (matched by no rule or not
/// yet looked at, alike).
fn counted_names(contact: &Contact) -> Vec<String> {
    let mut names: Vec<String> = crate::contact::counters::counted_in(contact)
        .into_iter()
        .filter(|name| name != crate::contact::counters::UNMATCHED)
        .map(|name| match name.as_str() {
            crate::contact::counters::NEW_CONTACTS => ACHIEVED.to_owned(),
            _ => name,
        })
        .collect();
    if contact.acquisition.is_none() {
        names.push("kind:none".to_owned());
    }
    names
}

fn decimal(value: &Value) -> Option<Amount> {
    match value {
        Value::Number(number) => Amount::parse(&number.to_string()).ok(),
        Value::String(text) => Amount::parse(text).ok(),
        _ => None,
    }
}

fn equal(actual: &Value, expected: &Value, is_text: bool) -> bool {
    match (actual, expected) {
        (Value::String(a), Value::String(b)) if is_text => normalize(a, true) == normalize(b, true),
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        _ => decimal(actual).is_some_and(|a| decimal(expected) == Some(a)),
    }
}

impl GoalRule {
    /// Whether `event` satisfies the rule.
    pub fn holds(&self, event: &ContactEvent) -> bool {
        if event.name != self.event {
            return false;
        }
        let Some(property) = &self.property else {
            return true;
        };
        let actual = if property == "value" {
            event.value.map(|value| Value::String(value.to_string()))
        } else {
            event.properties.get(property).cloned()
        };
        let (Some(actual), Some(expected)) = (actual, &self.value) else {
            return false;
        };
        let is_text = property == "text";
        match self.op.unwrap_or(Op::Eq) {
            Op::Eq => equal(&actual, expected, is_text),
            Op::In => expected
                .as_array()
                .is_some_and(|items| items.iter().any(|item| equal(&actual, item, is_text))),
            Op::Contains => match (&actual, expected) {
                (Value::String(a), Value::String(b)) if is_text => {
                    normalize(a, true).contains(&normalize(b, true))
                }
                (Value::String(a), Value::String(b)) => a.contains(b.as_str()),
                _ => false,
            },
            Op::Gte => decimal(&actual)
                .zip(decimal(expected))
                .is_some_and(|(a, b)| a >= b),
            Op::Lte => decimal(&actual)
                .zip(decimal(expected))
                .is_some_and(|(a, b)| a <= b),
        }
    }
}

/// `all`: the latest of the parts' times when every part has one; `any`: the earliest one.
fn combine(how: Match, times: impl Iterator<Item = Option<Timestamp>>) -> Option<Timestamp> {
    match how {
        Match::All => times
            .collect::<Option<Vec<_>>>()
            .and_then(|times| times.into_iter().max()),
        Match::Any => times.flatten().min(),
    }
}

fn rule_key(condition: usize, rule: usize) -> String {
    format!("{condition}.{rule}")
}

impl Goal {
    /// When the goal holds, given the earliest time each rule was satisfied: the time its last
    /// needed rule was, counting only times in `[since, until)`; `None` while it does not.
    pub fn achieved_at(
        &self,
        satisfied: &BTreeMap<String, Timestamp>,
        since: Timestamp,
        until: Timestamp,
    ) -> Option<Timestamp> {
        let conditions = self
            .settings
            .conditions
            .iter()
            .enumerate()
            .map(|(c, condition)| {
                let rules = (0..condition.rules.len()).map(|r| {
                    satisfied
                        .get(&rule_key(c, r))
                        .copied()
                        .filter(|at| since <= *at && *at < until)
                });
                combine(condition.match_, rules)
            });
        combine(self.settings.match_, conditions)
    }

    /// The end of the goal's window for a contact first seen at `since`.
    pub fn window_end(&self, since: Timestamp) -> Timestamp {
        since.plus_seconds(i64::from(self.settings.window_days) * 24 * 60 * 60)
    }
}

/// Moves the contact's progress toward each of `goals` by `events` (new to it), and answers
/// the counters of the goals it achieves now (see [`advance_goal`]). Progress toward goals no
/// longer in `goals` is dropped, so a contact holds progress for the instance's goals only.
pub fn advance(
    contact: &mut Contact,
    goals: &GoalSet,
    events: &[ContactEvent],
) -> Vec<CounterBump> {
    contact.goals.retain(|id, _| goals.goal(id).is_some());
    goals
        .goals
        .iter()
        .flat_map(|goal| advance_goal(contact, goal, events))
        .collect()
}

/// Moves the contact's progress toward `goal` by `events`: each rule keeps the earliest time an
/// event at or after first touch satisfied it, so the outcome depends on the set of events
/// seen, not their order. The goal is achieved at most once, at the time its last needed rule
/// was satisfied inside the window; the achievement's counters are answered, to be written in
/// the same commit.
pub fn advance_goal(
    contact: &mut Contact,
    goal: &Goal,
    events: &[ContactEvent],
) -> Vec<CounterBump> {
    let since = contact.first_seen_at;
    let progress = contact.goals.entry(goal.id.clone()).or_default();
    if progress.revision != goal.revision {
        progress.revision = goal.revision;
        progress.satisfied.clear();
    }
    if progress.achieved.is_some() {
        return Vec::new();
    }
    for (c, condition) in goal.settings.conditions.iter().enumerate() {
        for (r, rule) in condition.rules.iter().enumerate() {
            let earliest = events
                .iter()
                .filter(|event| event.occurred_at >= since && rule.holds(event))
                .map(|event| event.occurred_at)
                .min();
            if let Some(at) = earliest {
                let kept = progress.satisfied.entry(rule_key(c, r)).or_insert(at);
                *kept = (*kept).min(at);
            }
        }
    }
    let Some(at) = goal.achieved_at(&progress.satisfied, since, goal.window_end(since)) else {
        if progress.satisfied.is_empty() {
            contact.goals.remove(&goal.id);
        }
        return Vec::new();
    };
    progress.satisfied.clear();
    let day = contact.first_seen_day();
    let counted = counted_names(contact);
    let bumps = counted
        .iter()
        .map(|name| CounterBump {
            instance_id: contact.instance_id.clone(),
            day: counter_day(&goal.id, &day),
            name: name.clone(),
            delta: 1,
        })
        .collect();
    if let Some(progress) = contact.goals.get_mut(&goal.id) {
        progress.achieved = Some(Achievement { at, day, counted });
    }
    bumps
}

/// Folds `other`'s goal progress into `into` (a merge of two contacts of one person): one
/// achievement per goal, the earlier one, with counters that take back what the other one
/// counted (it was counted on its own contact); otherwise each rule's earliest time, for the
/// later revision. Answers those counter changes, for the merge's commit.
pub fn absorb(into: &mut Contact, other: &Contact) -> Vec<CounterBump> {
    let instance_id = into.instance_id.clone();
    let mut bumps = Vec::new();
    let mut take_back = |goal_id: &GoalId, dropped: &Achievement| {
        bumps.extend(dropped.counted.iter().map(|name| CounterBump {
            instance_id: instance_id.clone(),
            day: counter_day(goal_id, &dropped.day),
            name: name.clone(),
            delta: -1,
        }));
    };
    for (goal_id, theirs) in &other.goals {
        let Some(ours) = into.goals.get_mut(goal_id) else {
            into.goals.insert(goal_id.clone(), theirs.clone());
            continue;
        };
        match (&ours.achieved, &theirs.achieved) {
            (Some(kept), Some(other)) if other.at < kept.at => {
                take_back(goal_id, kept);
                *ours = theirs.clone();
            }
            (Some(_), Some(other)) => take_back(goal_id, other),
            (None, Some(_)) => *ours = theirs.clone(),
            (Some(_), None) => {}
            (None, None) if theirs.revision > ours.revision => *ours = theirs.clone(),
            (None, None) if theirs.revision == ours.revision => {
                for (rule, at) in &theirs.satisfied {
                    let kept = ours.satisfied.entry(rule.clone()).or_insert(*at);
                    *kept = (*kept).min(*at);
                }
            }
            (None, None) => {}
        }
    }
    bumps
}
