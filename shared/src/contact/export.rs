//! The contacts listing as CSV, for spreadsheets: one writer behind the admin API's
//! `contacts.csv` and the dashboard's Download CSV link, streamed page by page through the
//! listing's own paging, so an export never holds the whole listing in memory.

use crate::contact::listing::{self, ContactFilter};
use crate::contact::store::{ContactStore, ContactWindow};
use crate::contact::{Acquisition, Contact};
use crate::ids::InstanceId;
use crate::spend::AdNames;
use crate::spend::store::SpendStore;
use crate::store::StoreError;
use bytes::Bytes;
use futures::Stream;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The header row, in column order: the contact's cells ([`row`]), then its Meta ad's names.
pub const COLUMNS: [&str; 12] = [
    "contact_id",
    "channel",
    "first_seen_at",
    "referral_source",
    "referral_id",
    "platform",
    "campaign",
    "ad",
    "first_message",
    "ad_name",
    "ad_set_name",
    "campaign_name",
];

/// Contacts per chunk: the first bytes leave after one store page, and memory holds one chunk.
pub const CHUNK: usize = 100;

/// What a spreadsheet would run as a formula when a cell starts with it.
const FORMULA_STARTS: [char; 4] = ['=', '+', '-', '@'];

/// A cell as written: one starting like a formula gets a leading `'`, since names and first
/// messages are written by outsiders and a spreadsheet would otherwise run them.
pub fn guarded(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(FORMULA_STARTS) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// The source's own id: the ad's, the post's, the link's ref, the rule's, or the web visit's
/// first click id.
fn referral_id(acquisition: &Acquisition) -> Option<String> {
    match acquisition {
        Acquisition::MetaAd(referral) => referral.ad_id.clone(),
        Acquisition::MetaPost(referral) => referral.post_id.clone(),
        Acquisition::Shortlink(referral) => referral.ref_param.clone(),
        Acquisition::Product(referral) => referral.product_id.clone(),
        Acquisition::Rule(rule) => Some(rule.rule_id.to_string()),
        Acquisition::Web(visit) => visit
            .click_ids
            .in_order()
            .into_iter()
            .find_map(Clone::clone),
    }
}

/// The campaign and the ad, where the source names them: a rule's own, a web visit's UTM
/// campaign and content, a Meta ad's headline.
fn campaign_and_ad(acquisition: &Acquisition) -> (Option<&str>, Option<&str>) {
    match acquisition {
        Acquisition::Rule(rule) => (rule.campaign.as_deref(), rule.ad.as_deref()),
        Acquisition::Web(visit) => (visit.utm.campaign.as_deref(), visit.utm.content.as_deref()),
        Acquisition::MetaAd(referral) => (None, referral.headline.as_deref()),
        Acquisition::MetaPost(_) | Acquisition::Shortlink(_) | Acquisition::Product(_) => {
            (None, None)
        }
    }
}

/// One contact's own cells, the first nine of [`COLUMNS`], before the formula guard.
pub fn row(contact: &Contact) -> [String; 9] {
    let acquisition = contact.acquisition.as_ref();
    let (campaign, ad) = acquisition.map(campaign_and_ad).unwrap_or_default();
    let owned = |text: Option<&str>| text.unwrap_or_default().to_owned();
    [
        // Its own text: `Display` masks phone numbers for logs.
        contact.contact_id.as_str().to_owned(),
        contact.channel.as_str().to_owned(),
        contact.first_seen_at.to_string(),
        acquisition.map_or("none", Acquisition::kind).to_owned(),
        acquisition.and_then(referral_id).unwrap_or_default(),
        owned(acquisition.map(Acquisition::platform)),
        owned(campaign),
        owned(ad),
        owned(
            contact
                .first_message
                .as_ref()
                .and_then(|message| message.text.as_deref()),
        ),
    ]
}

/// Rows as CSV text, each cell guarded.
fn write_rows<'a>(rows: impl IntoIterator<Item = Vec<std::borrow::Cow<'a, str>>>) -> Bytes {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer
            .write_record(row.iter().map(|cell| cell.as_bytes()))
            .expect("writing to memory cannot fail");
    }
    Bytes::from(writer.into_inner().expect("writing to memory cannot fail"))
}

fn header() -> Bytes {
    write_rows([COLUMNS.iter().map(|name| (*name).into()).collect()])
}

/// The names of the contact's Meta ad (ad, ad set, campaign) when a spend row named it, else
/// empty cells.
fn ad_name_cells(contact: &Contact, names: &BTreeMap<String, AdNames>) -> [String; 3] {
    let named = match &contact.acquisition {
        Some(Acquisition::MetaAd(referral)) => referral.ad_id.as_ref().and_then(|id| names.get(id)),
        _ => None,
    };
    named.map_or_else(Default::default, |names| {
        [
            names.ad_name.clone().unwrap_or_default(),
            names.ad_set_name.clone().unwrap_or_default(),
            names.campaign_name.clone(),
        ]
    })
}

fn rows(contacts: &[Contact], names: &BTreeMap<String, AdNames>) -> Bytes {
    let cells: Vec<Vec<String>> = contacts
        .iter()
        .map(|contact| {
            let mut cells = row(contact).to_vec();
            cells.extend(ad_name_cells(contact, names));
            cells
        })
        .collect();
    write_rows(
        cells
            .iter()
            .map(|cells| cells.iter().map(|cell| guarded(cell)).collect()),
    )
}

/// Where the export stands between two pages.
enum Step {
    Header,
    From(Option<String>),
    Done,
}

/// The instance's contacts in `window` that pass `filter`, newest first, as CSV: the header
/// row, then one chunk per listing page of [`CHUNK`] contacts, read only when the previous
/// one has been sent, with its ads' names from one lookup of the page's ad ids.
pub fn stream(
    contacts: Arc<dyn ContactStore>,
    spend: Arc<dyn SpendStore>,
    instance_id: InstanceId,
    window: ContactWindow,
    filter: ContactFilter,
) -> impl Stream<Item = Result<Bytes, StoreError>> + Send + 'static {
    futures::stream::unfold(Step::Header, move |step| {
        let (contacts, spend, instance_id) = (contacts.clone(), spend.clone(), instance_id.clone());
        let (window, filter) = (window.clone(), filter.clone());
        async move {
            let after = match step {
                Step::Header => return Some((Ok(header()), Step::From(None))),
                Step::From(after) => after,
                Step::Done => return None,
            };
            let page = listing::filtered_page(
                contacts.as_ref(),
                &instance_id,
                &window,
                &filter,
                after,
                CHUNK,
            )
            .await;
            let named = match page {
                Ok(page) => crate::spend::names_for_contacts(spend.as_ref(), &page.contacts)
                    .await
                    .map(|names| (page, names)),
                Err(error) => Err(error),
            };
            Some(match named {
                Ok((page, names)) => {
                    let next = page.next.map_or(Step::Done, |next| Step::From(Some(next)));
                    (Ok(rows(&page.contacts, &names)), next)
                }
                Err(error) => (Err(error), Step::Done),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_that_start_like_formulas_are_quoted_and_others_kept() {
        for risky in ["=1+1", "+55", "-2", "@SUM(A1)"] {
            assert_eq!(guarded(risky), format!("'{risky}"));
        }
        for plain in ["hi", "", "5511", "a=b"] {
            assert_eq!(guarded(plain), plain);
        }
    }

    #[test]
    fn the_header_names_the_columns_in_order() {
        assert_eq!(header(), format!("{}\n", COLUMNS.join(",")));
    }
}
