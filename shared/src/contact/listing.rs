//! The contacts listing behind the attribution view: filters, and cursors that cannot be
//! turned into another instance's.

use crate::contact::store::{ContactPage, ContactStore, ContactWindow, listing_position};
use crate::contact::{Acquisition, Contact};
use crate::ids::InstanceId;
use crate::secret::{RotatingSecret, Secret};
use crate::store::StoreError;
use crate::time::Timestamp;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Contacts per page when the request names no limit.
pub const DEFAULT_LIMIT: usize = 50;
/// The largest page a listing may ask for.
pub const MAX_LIMIT: usize = 500;
/// Every acquisition kind a filter may name.
pub const ACQUISITION_KINDS: [&str; 6] = [
    "meta_ad",
    "meta_post",
    "shortlink",
    "product",
    "rule",
    "web",
];

/// Which contacts a listing keeps; every filter given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactFilter {
    /// Only this acquisition kind (`meta_ad`, `rule`, …).
    pub kind: Option<String>,
    /// Only this acquisition platform.
    pub platform: Option<String>,
    /// Only acquisitions from this campaign.
    pub campaign: Option<String>,
    /// Only contacts this rule attributed.
    pub rule_id: Option<String>,
    /// `Some(true)`: only contacts without acquisition; `Some(false)`: only attributed ones.
    pub unattributed: Option<bool>,
}

/// A listing parameter that does not hold, named for the answer.
pub use crate::fields::FieldError as InvalidListing;

impl ContactFilter {
    /// Checks the query parameters against the known vocabularies.
    pub fn parse(
        kind: Option<&str>,
        platform: Option<&str>,
        campaign: Option<&str>,
        rule_id: Option<&str>,
        unattributed: Option<&str>,
    ) -> Result<Self, InvalidListing> {
        if let Some(kind) = kind.filter(|kind| !ACQUISITION_KINDS.contains(kind)) {
            return Err(InvalidListing::new(
                "kind",
                format!(
                    "unknown kind {kind:?}; one of {}",
                    ACQUISITION_KINDS.join(", ")
                ),
            ));
        }
        let unattributed = match unattributed {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => {
                return Err(InvalidListing::new("unattributed", "must be true or false"));
            }
        };
        Ok(Self {
            kind: kind.map(str::to_owned),
            platform: platform.map(str::to_owned),
            campaign: campaign.map(str::to_owned),
            rule_id: rule_id.map(str::to_owned),
            unattributed,
        })
    }

    /// Whether `contact` passes every filter set.
    pub fn matches(&self, contact: &Contact) -> bool {
        let acquisition = contact.acquisition.as_ref();
        let campaign = acquisition.and_then(|acquisition| match acquisition {
            Acquisition::Rule(rule) => rule.campaign.as_deref(),
            _ => None,
        });
        let rule_id = acquisition.and_then(|acquisition| match acquisition {
            Acquisition::Rule(rule) => Some(rule.rule_id.as_str()),
            _ => None,
        });
        let wanted = |filter: &Option<String>, value: Option<&str>| {
            filter.as_deref().is_none_or(|filter| value == Some(filter))
        };
        wanted(&self.kind, acquisition.map(Acquisition::kind))
            && wanted(&self.platform, acquisition.map(Acquisition::platform))
            && wanted(&self.campaign, campaign)
            && wanted(&self.rule_id, rule_id)
            && self
                .unattributed
                .is_none_or(|unattributed| unattributed == acquisition.is_none())
    }
}

/// A listing's query parameters, as the admin API and the dashboard take them (the CSV export
/// takes all but `limit` and `cursor`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ListingQuery {
    /// First seen at or after (RFC 3339).
    pub since: Option<String>,
    /// First seen before (RFC 3339).
    pub until: Option<String>,
    /// An acquisition kind.
    pub kind: Option<String>,
    /// An acquisition platform.
    pub platform: Option<String>,
    /// A rule's campaign.
    pub campaign: Option<String>,
    /// The rule that attributed.
    pub rule_id: Option<String>,
    /// `true` or `false`.
    pub unattributed: Option<String>,
    /// Contacts per page.
    pub limit: Option<String>,
    /// A signed cursor from the previous page.
    pub cursor: Option<String>,
}

fn timestamp(
    field: &'static str,
    text: Option<&str>,
    default: Timestamp,
) -> Result<Timestamp, InvalidListing> {
    match text {
        None => Ok(default),
        Some(text) => Timestamp::parse_rfc3339(text)
            .ok_or_else(|| InvalidListing::new(field, "must be an RFC 3339 timestamp"))?
            .accepted()
            .map_err(|error| InvalidListing::new(field, error.to_string())),
    }
}

impl ListingQuery {
    /// The first-seen window the query names: from the epoch to a day past `now` unless told.
    pub fn window(&self, now: Timestamp) -> Result<ContactWindow, InvalidListing> {
        let epoch = Timestamp::from_unix_seconds(0).expect("the epoch");
        let window = ContactWindow {
            since: timestamp("since", self.since.as_deref(), epoch)?,
            // A little past now: Meta's clocks and ours differ by seconds.
            until: timestamp("until", self.until.as_deref(), now.plus_seconds(86_400))?,
        };
        if window.since >= window.until {
            return Err(InvalidListing::new("since", "must be before until"));
        }
        Ok(window)
    }

    /// The window and the filter, each checked, in that order.
    pub fn window_and_filter(
        &self,
        now: Timestamp,
    ) -> Result<(ContactWindow, ContactFilter), InvalidListing> {
        Ok((self.window(now)?, self.filter()?))
    }

    /// The filter the query names, checked.
    pub fn filter(&self) -> Result<ContactFilter, InvalidListing> {
        ContactFilter::parse(
            self.kind.as_deref(),
            self.platform.as_deref(),
            self.campaign.as_deref(),
            self.rule_id.as_deref(),
            self.unattributed.as_deref(),
        )
    }
}

/// How many contacts one request may look at to fill a filtered page; past it the page ends
/// early, with a position to go on from.
pub const MAX_SCANNED_PER_REQUEST: usize = 5_000;

/// One page of the instance's contacts in `window` that pass `filter`, newest first, from
/// after the listing position `after`: the store's pages are read until `limit` contacts pass
/// or [`MAX_SCANNED_PER_REQUEST`] were looked at. `next` is the position of the last contact
/// looked at when the page ended there, `None` once the listing is exhausted.
pub async fn filtered_page(
    contacts: &dyn ContactStore,
    instance_id: &InstanceId,
    window: &ContactWindow,
    filter: &ContactFilter,
    mut after: Option<String>,
    limit: usize,
) -> Result<ContactPage, StoreError> {
    let (mut shown, mut scanned) = (Vec::new(), 0);
    // A store page reads each of its contacts (on DynamoDB a `BatchGetItem` of them): an
    // unfiltered page reads no more than it shows, a filtered one reads ahead.
    let read = if *filter == ContactFilter::default() {
        limit
    } else {
        limit.max(100)
    };
    loop {
        let page = contacts
            .list_contacts(instance_id, window, after.as_deref(), read)
            .await?;
        for contact in page.contacts {
            scanned += 1;
            let position = listing_position(&contact);
            if filter.matches(&contact) {
                shown.push(contact);
            }
            if shown.len() == limit || scanned == MAX_SCANNED_PER_REQUEST {
                return Ok(ContactPage {
                    contacts: shown,
                    next: Some(position),
                });
            }
        }
        match page.next {
            Some(position) => after = Some(position),
            None => {
                return Ok(ContactPage {
                    contacts: shown,
                    next: None,
                });
            }
        }
    }
}

/// Why a listing page could not be read: a parameter that does not hold, or the store.
#[derive(Debug, thiserror::Error)]
pub enum PageFailure {
    /// A parameter that does not hold (a 400).
    #[error(transparent)]
    Invalid(#[from] InvalidListing),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The page `query` names (window, filter, limit, signed cursor) and the signed cursor of the
/// next one: the admin API's listing and the dashboard's Contacts page alike.
pub async fn query_page(
    contacts: &dyn ContactStore,
    cursors: &CursorCodec,
    instance_id: &InstanceId,
    query: &ListingQuery,
    now: Timestamp,
) -> Result<(Vec<Contact>, Option<String>), PageFailure> {
    let (window, filter) = query.window_and_filter(now)?;
    let limit = parse_limit(query.limit.as_deref())?;
    let after = match &query.cursor {
        Some(cursor) => Some(cursors.decode(instance_id, cursor)?),
        None => None,
    };
    let page = filtered_page(contacts, instance_id, &window, &filter, after, limit).await?;
    let next = page
        .next
        .map(|position| cursors.encode(instance_id, &position));
    Ok((page.contacts, next))
}

/// The page size asked for, within 1..=`MAX_LIMIT`, or the default.
pub fn parse_limit(limit: Option<&str>) -> Result<usize, InvalidListing> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(text) => text
            .parse()
            .ok()
            .filter(|limit| (1..=MAX_LIMIT).contains(limit))
            .ok_or_else(|| {
                InvalidListing::new(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_LIMIT}"),
                )
            }),
    }
}

/// Cursors carry a listing position, bound to its instance by an HMAC under a server key: one
/// made for an instance, or edited, is refused anywhere else. The key rotates with the admin
/// key: cursors are signed with its current value and accepted under either, so a listing walk
/// survives a rotation for as long as the previous admin key is still accepted.
pub struct CursorCodec {
    key: RotatingSecret,
}

const TAG_BYTES: usize = 16;

impl CursorCodec {
    /// A codec signing with `key`.
    pub fn new(key: RotatingSecret) -> Self {
        Self { key }
    }

    fn mac(key: &Secret, instance_id: &InstanceId, position: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key.expose()).expect("any key length");
        mac.update(b"contacts-cursor\0");
        mac.update(instance_id.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(position.as_bytes());
        mac
    }

    /// An opaque cursor for `position` in `instance_id`'s listing.
    pub fn encode(&self, instance_id: &InstanceId, position: &str) -> String {
        let tag = Self::mac(self.key.current(), instance_id, position)
            .finalize()
            .into_bytes();
        format!(
            "{}.{}",
            hex::encode(position),
            hex::encode(&tag[..TAG_BYTES])
        )
    }

    /// The position a cursor carries, if it was made for this instance under a key still accepted.
    pub fn decode(&self, instance_id: &InstanceId, cursor: &str) -> Result<String, InvalidListing> {
        let invalid = || InvalidListing::new("cursor", "not a cursor of this listing");
        let (position, tag) = cursor.split_once('.').ok_or_else(invalid)?;
        let position = String::from_utf8(hex::decode(position).map_err(|_| invalid())?)
            .map_err(|_| invalid())?;
        let tag = hex::decode(tag).map_err(|_| invalid())?;
        if tag.len() != TAG_BYTES {
            return Err(invalid());
        }
        // Not short-circuited: every accepted key is tried.
        let valid = self.key.accepted().fold(false, |valid, key| {
            let verified = Self::mac(key, instance_id, &position)
                .verify_truncated_left(&tag)
                .is_ok();
            valid | verified
        });
        valid.then_some(position).ok_or_else(invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_other_instances_and_edits() {
        let codec = CursorCodec::new(RotatingSecret::new(Secret::new("k")));
        let one = InstanceId::parse("1").unwrap();
        let two = InstanceId::parse("2").unwrap();
        let cursor = codec.encode(&one, "2026-01-01T00:00:00.000Z#5511");
        assert_eq!(
            codec.decode(&one, &cursor).unwrap(),
            "2026-01-01T00:00:00.000Z#5511"
        );
        assert!(codec.decode(&two, &cursor).is_err());
        let forged = codec
            .encode(&two, "x")
            .replace(&hex::encode("x"), &hex::encode("y"));
        assert!(codec.decode(&two, &forged).is_err());
        assert!(codec.decode(&one, "garbage").is_err());
        assert!(codec.decode(&one, &cursor[..cursor.len() - 2]).is_err());
    }

    #[test]
    fn cursors_survive_a_rotation_while_the_previous_key_is_accepted() {
        let one = InstanceId::parse("1").unwrap();
        let before = CursorCodec::new(RotatingSecret::parse(&Secret::new("old")).unwrap());
        let cursor = before.encode(&one, "p");
        let rotating = CursorCodec::new(RotatingSecret::parse(&Secret::new("new,old")).unwrap());
        assert_eq!(rotating.decode(&one, &cursor).unwrap(), "p");
        let fresh = rotating.encode(&one, "q");
        let after = CursorCodec::new(RotatingSecret::parse(&Secret::new("new")).unwrap());
        assert_eq!(after.decode(&one, &fresh).unwrap(), "q");
        assert!(after.decode(&one, &cursor).is_err());
    }

    /// `count` WhatsApp contacts first seen a minute apart, the oldest of them from a Meta ad,
    /// on a fresh embedded store.
    async fn contacts_one_from_an_ad(
        count: i64,
    ) -> (tempfile::TempDir, crate::store::EmbeddedStore) {
        use crate::contact::{Channel, Identity, InboundMessage, MetaPlatform, MetaReferral};
        use crate::contact::{Referral, store::ContactStore};
        use crate::ids::ContactId;
        use crate::ingest::{InboundEvent, Ingestor};
        use crate::time::Timestamp;
        let folder = tempfile::tempdir().unwrap();
        let store = crate::store::EmbeddedStore::open(&folder.path().join("db")).unwrap();
        let ingestor =
            Ingestor::new(std::sync::Arc::new(store.clone()) as std::sync::Arc<dyn ContactStore>);
        let events = (0..count).map(|n| {
            let at = Timestamp::from_unix_seconds(1_750_000_000 + 60 * n).unwrap();
            InboundEvent {
                dedupe_key: format!("m{n}"),
                instance_id: InstanceId::parse("1").unwrap(),
                contact_id: ContactId::parse(&format!("{}", 5_511_000_000 + n)).unwrap(),
                channel: Channel::Whatsapp,
                display_name: None,
                occurred_at: at,
                message: Some(InboundMessage {
                    id: format!("m{n}"),
                    kind: "text".into(),
                    text: Some("hi".into()),
                    timestamp: at,
                    details: None,
                }),
                referral: (n == 0).then(|| {
                    Referral::MetaAd(MetaReferral {
                        ad_id: Some("ad".into()),
                        source: Some("ad".into()),
                        ..MetaReferral::minimal(MetaPlatform::Facebook, at)
                    })
                }),
                identity: Identity::default(),
            }
        });
        let ingests = events.map(|event| {
            let ingestor = ingestor.clone();
            async move { ingestor.ingest(&event, event.occurred_at).await.unwrap() }
        });
        futures::future::join_all(ingests).await;
        (folder, store)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_filtered_page_reads_on_across_store_pages_until_it_is_full_or_the_listing_ends() {
        let (_folder, store) = contacts_one_from_an_ad(150).await;
        let window = ContactWindow {
            since: crate::time::Timestamp::from_unix_seconds(0).unwrap(),
            until: crate::time::Timestamp::from_unix_seconds(1_800_000_000).unwrap(),
        };
        let instance = InstanceId::parse("1").unwrap();
        let from_ads = ContactFilter::parse(Some("meta_ad"), None, None, None, None).unwrap();
        // Newest first: the one contact from an ad is the last of 150, past the first store page
        // of 100 that a page of one reads.
        let full = filtered_page(&store, &instance, &window, &from_ads, None, 1)
            .await
            .unwrap();
        let ids: Vec<&str> = full
            .contacts
            .iter()
            .map(|c| c.contact_id.as_str())
            .collect();
        assert_eq!(ids, ["5511000000"]);
        assert_eq!(full.next, Some(listing_position(&full.contacts[0])));
        // A page of two is never full: the listing ends, and nothing is left to go on with.
        let ended = filtered_page(&store, &instance, &window, &from_ads, None, 2)
            .await
            .unwrap();
        assert_eq!(ended.contacts, full.contacts);
        assert_eq!(ended.next, None);
    }
}
