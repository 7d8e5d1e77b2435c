//! Erasure on request: a person's contact goes, and the revenue records that name them (sends,
//! clicks, conversions) keep their numbers but no longer say who: their contact id becomes a
//! random token, and a click's user agent and address hash are dropped. Counters and report
//! rows are never touched, so every total stays as it was.

use crate::contact::Contact;
use crate::ids::{ContactId, InstanceId};
use crate::revenue::{Click, Conversion, SendRecord};
use crate::store::StoreError;
use async_trait::async_trait;

/// One person to erase from one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    /// The instance the person wrote to.
    pub instance_id: InstanceId,
    /// Every id the person goes by on the instance, the one asked for first. Contacts and
    /// revenue records stored under any of them are erased. This is also the list an erasure
    /// of identifier links (phone ↔ BSUID) works from: the store deletes each id's links in the
    /// same call.
    pub identifiers: Vec<ContactId>,
    /// What the revenue records carry instead: random, so nothing leads back to the person,
    /// and one per erasure, so the person's first click keeps its place among their clicks.
    pub token: ContactId,
}

impl Erasure {
    /// An erasure of `identifiers`, with a fresh token to put in their place.
    pub fn new(instance_id: InstanceId, identifiers: Vec<ContactId>) -> Self {
        let token = ContactId::parse(&format!("erased-{}", ulid::Ulid::new()))
            .expect("a ULID makes a valid id");
        Self {
            instance_id,
            identifiers,
            token,
        }
    }

    /// The erasure of the person `requested` names: that id, and when the contact is known
    /// (`found`, loaded by that id) every identifier it goes by (its own id, its phone, its
    /// BSUID, the ids of contacts merged into it), whose links go with it.
    pub fn of_person(
        instance_id: InstanceId,
        requested: ContactId,
        found: Option<&Contact>,
    ) -> Self {
        let mut identifiers = vec![requested];
        for identifier in found.into_iter().flat_map(Contact::identifiers) {
            if !identifiers.contains(identifier) {
                identifiers.push(identifier.clone());
            }
        }
        Self::new(instance_id, identifiers)
    }

    /// Replaces the send's contact with the token.
    pub fn erase_send(&self, send: &mut SendRecord) {
        send.contact_id = self.token.clone();
    }

    /// Replaces the click's contact with the token and drops what could identify the client.
    pub fn erase_click(&self, click: &mut Click) {
        click.contact_id = self.token.clone();
        click.user_agent = None;
        click.ip_hash = None;
    }

    /// Replaces the conversion's contact with the token.
    pub fn erase_conversion(&self, conversion: &mut Conversion) {
        if conversion.contact_id.is_some() {
            conversion.contact_id = Some(self.token.clone());
        }
    }
}

/// What one erasure changed; a second erasure of the same person changes nothing and says so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Erased {
    /// Contacts deleted.
    pub contacts: usize,
    /// Sends rewritten.
    pub sends: usize,
    /// Clicks rewritten.
    pub clicks: usize,
    /// Conversions rewritten.
    pub conversions: usize,
}

impl Erased {
    /// Adds another store's or page's counts.
    pub fn add(&mut self, other: Erased) {
        self.contacts += other.contacts;
        self.sends += other.sends;
        self.clicks += other.clicks;
        self.conversions += other.conversions;
    }
}

/// Erases a person's data from a store, for a data-deletion request.
#[async_trait]
pub trait ErasureStore: Send + Sync + 'static {
    /// Deletes the contact stored under each identifier (and its place in the listing index),
    /// and rewrites every send, click and conversion indexed under them as `erasure` says,
    /// moving them out of the person's journey indexes. Safe to call again, after a fault
    /// too: what was erased stays erased, what was left is erased then.
    async fn erase_contact(&self, erasure: &Erasure) -> Result<Erased, StoreError>;
}
