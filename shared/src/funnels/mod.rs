//! Funnels: a sequence of 2–8 steps (event names or goals) and how far each contact got along
//! it inside its window from first touch. Evaluated in the same commit as the event (or goal
//! achievement) that moves a contact on, with per-step day counters, so a report reads
//! O(steps × days) small items and never the contacts.

pub mod draft;
pub mod report;

use crate::contact::Contact;
use crate::contact::counters::CounterBump;
use crate::goals::{Goal, GoalId, ulid_id};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Most funnels one instance may hold: each is evaluated on every event of its contacts.
pub const MAX_FUNNELS_PER_INSTANCE: usize = 20;
/// Fewest steps of a funnel.
pub const MIN_STEPS: usize = 2;
/// Most steps of a funnel: the counters of a contact's day item grow with it.
pub const MAX_STEPS: usize = 8;
/// What a step names to mean "the contact achieved this goal".
pub const GOAL_STEP_PREFIX: &str = "goal:";

ulid_id!(
    /// A funnel's id.
    FunnelId,
    InvalidFunnelId,
    "funnel_id must be a ULID: 26 characters of Crockford base 32"
);

/// How the steps must follow each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// In order by the events' own times; other events may fall between.
    Ordered,
    /// In order, with no other event of the contact between consecutive steps.
    Strict,
    /// All of them, in any order.
    Any,
}

/// What a funnel says, as an admin writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunnelSettings {
    /// A label for people.
    pub name: String,
    /// [`MIN_STEPS`] to [`MAX_STEPS`] event names or `goal:<goal_id>`.
    pub steps: Vec<String>,
    /// Days from first touch in which the steps count.
    pub window_days: u32,
    /// How the steps follow each other.
    pub order: Order,
}

/// A stored funnel: the goals' shape (id, revision, times) around its own settings.
pub type Funnel = Goal<FunnelId, FunnelSettings>;

/// A contact's place in one funnel: the deepest step counted (never taken back: each step
/// counts a contact once), the times of the steps of the chain that got there (at most
/// [`MAX_STEPS`], so the chain goes on when its events have left the bounded journey), and the
/// day and names all its steps count under (moved together with the contact's acquisition), so
/// a step never outnumbers the one before it under any filter and a recount equals the
/// counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunnelProgress {
    /// The funnel revision this is for.
    pub revision: u64,
    /// Steps reached, 0 to the funnel's length.
    pub reached: usize,
    /// The times of the chain's steps (`ordered`, `strict`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<Timestamp>,
    /// The contact's first-seen day its steps count on.
    pub day: String,
    /// The names it counts under (`all`, `platform:…`, `campaign:…`, `ad:…`).
    pub counted: Vec<String>,
}

/// A funnel's counters are kept under a "day" of their own per revision,
/// `f#<funnel id>#<revision>#<YYYY-MM-DD>`: one small item per funnel and day, outside the
/// daily stats' range, and a changed funnel starts counting afresh.
pub fn counter_day(funnel_id: &FunnelId, revision: u64, day: &str) -> String {
    format!("f#{funnel_id}#{revision}#{day}")
}

/// The counter of step `step` (1-based) under `name`.
pub fn counter_name(step: usize, name: &str) -> String {
    format!("{step}:{name}")
}

/// The name every contact reaching a step counts under.
pub const ALL: &str = "all";

/// A moment of the contact's timeline a step can match: an event (by name) or a goal
/// achievement. A goal is achieved at the time of the event that achieved it, so a goal step
/// may share its time with the step before it.
struct Moment<'a> {
    at: Timestamp,
    event: Option<&'a str>,
    goal: Option<&'a GoalId>,
}

impl Moment<'_> {
    fn matches(&self, step: &str) -> bool {
        match step.strip_prefix(GOAL_STEP_PREFIX) {
            Some(goal) => self.goal.is_some_and(|id| id.as_str() == goal),
            None => self.event == Some(step),
        }
    }

    /// Whether it can follow a step matched at `after`.
    fn follows(&self, after: Timestamp) -> bool {
        self.at > after || (self.goal.is_some() && self.at == after)
    }
}

/// The contact's events in its journey and its goal achievements inside `[since, until)`,
/// sorted by time (events before goals of the same time).
fn timeline(contact: &Contact, since: Timestamp, until: Timestamp) -> Vec<Moment<'_>> {
    let events = contact.events.kept.iter().map(|event| Moment {
        at: event.occurred_at,
        event: Some(event.name.as_str()),
        goal: None,
    });
    let goals = contact.goals.iter().filter_map(|(id, progress)| {
        progress.achieved.as_ref().map(|achieved| Moment {
            at: achieved.at,
            event: None,
            goal: Some(id),
        })
    });
    let mut moments: Vec<Moment> = events
        .chain(goals)
        .filter(|moment| since <= moment.at && moment.at < until)
        .collect();
    moments.sort_by_key(|moment| (moment.at, moment.goal.is_some()));
    moments
}

/// The longest chain of `steps[from..]` after `after` (the previous step's time): `ordered`
/// takes the earliest match each time (which reaches furthest); `strict` tries each match of
/// the next moment (no event may come between), at most a few.
fn chain(
    moments: &[Moment],
    steps: &[String],
    strict: bool,
    after: Option<Timestamp>,
) -> Vec<Timestamp> {
    let Some(step) = steps.first() else {
        return Vec::new();
    };
    let next_event = after.and_then(|after| {
        moments
            .iter()
            .find(|moment| moment.event.is_some() && moment.at > after)
            .map(|moment| moment.at)
    });
    let candidates = moments.iter().filter(|moment| {
        moment.matches(step)
            && after.is_none_or(|after| moment.follows(after))
            && (!strict || after.is_none() || next_event.is_none_or(|next| moment.at <= next))
    });
    let mut best = Vec::new();
    for moment in candidates {
        let mut found = vec![moment.at];
        found.extend(chain(moments, &steps[1..], strict, Some(moment.at)));
        if found.len() > best.len() {
            best = found;
        }
        if !strict || best.len() == steps.len() {
            break;
        }
    }
    best
}

/// Moves the contact's place in each of `funnels` by what its journey and goals now hold, and
/// answers the counters of the steps it reaches now. Places in funnels no longer there are
/// dropped.
pub fn advance(contact: &mut Contact, funnels: &[Funnel]) -> Vec<CounterBump> {
    contact
        .funnels
        .retain(|id, _| funnels.iter().any(|funnel| funnel.id == *id));
    funnels
        .iter()
        .flat_map(|funnel| advance_funnel(contact, funnel))
        .collect()
}

/// The steps reached by what the contact holds, given where it was: the deepest of a fresh
/// look at its journey and goals and the stored chain carried on, so an event that left the
/// journey keeps what it reached. A step once counted stays counted (see the README: a late
/// event that breaks a `strict` chain does not take a count back).
fn reached(
    contact: &Contact,
    funnel: &Funnel,
    progress: &FunnelProgress,
) -> (usize, Vec<Timestamp>) {
    let since = contact.first_seen_at;
    let until = since.plus_seconds(i64::from(funnel.settings.window_days) * 24 * 60 * 60);
    let moments = timeline(contact, since, until);
    let steps = &funnel.settings.steps;
    if funnel.settings.order == Order::Any {
        let done = steps
            .iter()
            .enumerate()
            .take_while(|(index, step)| {
                *index < progress.reached || moments.iter().any(|moment| moment.matches(step))
            })
            .count();
        return (done, Vec::new());
    }
    let strict = funnel.settings.order == Order::Strict;
    let fresh = chain(&moments, steps, strict, None);
    let mut carried = progress.chain.clone();
    // A strict chain goes on only when no event after its last step has left the journey.
    let intact = !strict
        || contact
            .events
            .dropped_through
            .as_ref()
            .is_none_or(|(at, _, _)| carried.last().is_some_and(|last| at < last));
    if let Some(last) = carried.last().copied().filter(|_| intact) {
        carried.extend(chain(&moments, &steps[carried.len()..], strict, Some(last)));
    }
    let best = if fresh.len() > carried.len() {
        fresh
    } else {
        carried
    };
    (best.len().max(progress.reached), best)
}

/// The names a contact counts under in a funnel: all, and its acquisition's platform,
/// campaign and ad (fixed or admin-made vocabularies, as the stats' counters).
fn names_of(contact: &Contact) -> Vec<String> {
    crate::goals::counted_names(contact)
        .into_iter()
        .filter_map(|name| match name.as_str() {
            crate::goals::ACHIEVED => Some(ALL.to_owned()),
            _ if ["platform:", "campaign:", "ad:"]
                .iter()
                .any(|dimension| name.starts_with(dimension)) =>
            {
                Some(name)
            }
            _ => None,
        })
        .collect()
}

/// The (day, name) counters a contact's place in a funnel stands in.
fn counted(funnel_id: &FunnelId, progress: &FunnelProgress) -> BTreeSet<(String, String)> {
    let day = counter_day(funnel_id, progress.revision, &progress.day);
    (1..=progress.reached)
        .flat_map(|step| {
            progress
                .counted
                .iter()
                .map(move |name| counter_name(step, name))
        })
        .map(|name| (day.clone(), name))
        .collect()
}

/// Moves `progress` to the contact's first-seen day and acquisition now, answering the counter
/// changes: what it stands in now and did not (+1), what it stood in and no longer does (−1).
fn follow_progress(
    contact: &Contact,
    funnel_id: &FunnelId,
    before: &FunnelProgress,
    after: &mut FunnelProgress,
) -> Vec<CounterBump> {
    after.day = contact.first_seen_day();
    after.counted = names_of(contact);
    let (was, is) = (counted(funnel_id, before), counted(funnel_id, after));
    let bump = |(day, name): &(String, String), delta| CounterBump {
        instance_id: contact.instance_id.clone(),
        day: day.clone(),
        name: name.clone(),
        delta,
    };
    is.difference(&was)
        .map(|counter| bump(counter, 1))
        .chain(was.difference(&is).map(|counter| bump(counter, -1)))
        .collect()
}

/// Moves the contact's funnel counts with its first-seen day and acquisition (a rule's match,
/// an earlier message), as the stats' counters move: for the commit that changes them, so each
/// step's counters always equal a recount of the contacts' places.
pub fn follow(contact: &mut Contact) -> Vec<CounterBump> {
    let mut funnels = std::mem::take(&mut contact.funnels);
    let bumps = funnels
        .iter_mut()
        .flat_map(|(id, progress)| {
            let before = progress.clone();
            follow_progress(contact, id, &before, progress)
        })
        .collect();
    contact.funnels = funnels;
    bumps
}

/// Moves the contact's place in `funnel`, answering the counters of each step newly reached
/// (to be written in the same commit). The outcome is a function of the events and goals the
/// contact holds: a duplicate or a re-evaluation changes nothing.
pub fn advance_funnel(contact: &mut Contact, funnel: &Funnel) -> Vec<CounterBump> {
    let mut before = contact.funnels.get(&funnel.id).cloned().unwrap_or_default();
    if before.revision != funnel.revision {
        // Counted under the old revision's own days, which no report reads any more.
        before = FunnelProgress {
            revision: funnel.revision,
            ..FunnelProgress::default()
        };
    }
    let (reached, chain) = reached(contact, funnel, &before);
    if reached == 0 {
        contact.funnels.remove(&funnel.id);
        return Vec::new();
    }
    let mut after = before.clone();
    after.reached = reached;
    if chain.len() >= after.chain.len() {
        after.chain = chain;
    }
    let bumps = follow_progress(contact, &funnel.id, &before, &mut after);
    contact.funnels.insert(funnel.id.clone(), after);
    bumps
}

/// Folds `other`'s funnel places into `into`'s (a merge of two contacts of one person): of each
/// funnel the deeper place stays, with its counts (the later revision first); the other one's
/// counts are taken back, so a person counts once. Answers those changes, for the merge's
/// commit.
pub fn absorb(into: &mut Contact, other: &Contact) -> Vec<CounterBump> {
    let mut bumps = Vec::new();
    for (id, theirs) in &other.funnels {
        let ours = into.funnels.get(id);
        let keeps_ours = ours
            .is_some_and(|ours| (ours.revision, ours.reached) >= (theirs.revision, theirs.reached));
        let dropped = if keeps_ours {
            theirs.clone()
        } else {
            match into.funnels.insert(id.clone(), theirs.clone()) {
                Some(dropped) => dropped,
                None => continue,
            }
        };
        bumps.extend(
            counted(id, &dropped)
                .into_iter()
                .map(|(day, name)| CounterBump {
                    instance_id: into.instance_id.clone(),
                    day,
                    name,
                    delta: -1,
                }),
        );
    }
    bumps
}
