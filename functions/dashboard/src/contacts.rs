//! The Contacts pages: the listing with its filters and paging, its CSV download and one
//! contact's panel, each read through the functions the contacts API calls
//! (`shared::contact::listing`, `shared::contact::export`, `ContactStore::load_contact`).

use super::{PageError, Shared, SignedIn, chrome, encoded, html, instance_path, parse_instance};
use crate::pages::{Chrome, Form};
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use shared::contact::export;
use shared::contact::listing::{self, CursorCodec, ListingQuery, PageFailure};
use shared::contact::{Acquisition, Contact};
use shared::fields::FieldError;
use shared::ids::{ContactId, InstanceId};
use shared::revenue::journey;
use shared::spend::AdNames;
use shared::stats::PLATFORMS;
use shared::time::Timestamp;
use std::collections::BTreeMap;

/// The filters of the form, as typed: what the form shows again and what the links carry.
#[derive(Debug, Default)]
pub struct Filters {
    pub kind: String,
    pub platform: String,
    pub campaign: String,
    pub rule_id: String,
    pub unattributed: String,
    /// First seen on or after this day (`YYYY-MM-DD`, UTC).
    pub since: String,
    /// First seen on or before this day.
    pub until: String,
}

impl Filters {
    fn of(form: &Form) -> Self {
        let field = |name| form.get(name).unwrap_or_default().trim().to_owned();
        Self {
            kind: field("kind"),
            platform: field("platform"),
            campaign: field("campaign"),
            rule_id: field("rule_id"),
            unattributed: field("unattributed"),
            since: field("since"),
            until: field("until"),
        }
    }

    fn pairs(&self) -> [(&'static str, &str); 7] {
        [
            ("kind", &self.kind),
            ("platform", &self.platform),
            ("campaign", &self.campaign),
            ("rule_id", &self.rule_id),
            ("unattributed", &self.unattributed),
            ("since", &self.since),
            ("until", &self.until),
        ]
    }

    /// The filters set, as a query string (empty fields left out).
    fn query(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in self.pairs() {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        query.finish()
    }

    /// The API's listing query for these filters: a day range becomes `[since day 00:00,
    /// the day after until 00:00)` in UTC, so both days are included.
    fn listing_query(&self) -> Result<ListingQuery, FieldError> {
        let set = |value: &str| (!value.is_empty()).then(|| value.to_owned());
        let day = |field: &'static str, text: &str, days_after: i64| {
            if text.is_empty() {
                return Ok(None);
            }
            Timestamp::parse_rfc3339(&format!("{text}T00:00:00Z"))
                .filter(|_| text.len() == 10)
                .map(|start| Some(start.plus_seconds(86_400 * days_after).to_string()))
                .ok_or_else(|| FieldError::new(field, "must be a day, YYYY-MM-DD"))
        };
        Ok(ListingQuery {
            since: day("since", &self.since, 0)?,
            until: day("until", &self.until, 1)?,
            kind: set(&self.kind),
            platform: set(&self.platform),
            campaign: set(&self.campaign),
            rule_id: set(&self.rule_id),
            unattributed: set(&self.unattributed),
            limit: None,
            cursor: None,
        })
    }
}

fn bad_field(error: FieldError) -> PageError {
    PageError::BadRequest(error.to_string())
}

/// The ring class of a contact's avatar: its source's platform colour (`.ring-<platform>` in
/// the stylesheet, `.ring-other` for a platform without a colour of its own).
pub fn ring_class(acquisition: Option<&Acquisition>) -> String {
    match acquisition.map(Acquisition::platform) {
        None => "ring-none".to_owned(),
        Some(platform) if PLATFORMS.contains(&platform) => format!("ring-{platform}"),
        Some(_) => "ring-other".to_owned(),
    }
}

/// Up to two letters of the name (or the id's last two characters), for the avatar.
fn initials(contact: &Contact) -> String {
    match contact
        .display_name
        .as_deref()
        .filter(|name| !name.trim().is_empty())
    {
        Some(name) => name
            .split_whitespace()
            .filter_map(|word| word.chars().next())
            .take(2)
            .flat_map(char::to_uppercase)
            .collect(),
        None => {
            let id: Vec<char> = contact.contact_id.as_str().chars().collect();
            id[id.len().saturating_sub(2)..].iter().collect()
        }
    }
}

/// One contact as a row and as the panel's header: the CSV's cells, named.
pub struct ContactRow {
    pub id: String,
    /// The panel's URL.
    pub url: String,
    pub name: String,
    pub initials: String,
    pub ring: String,
    pub channel: String,
    pub first_seen_at: String,
    pub source: String,
    pub referral_id: String,
    pub platform: String,
    pub campaign: String,
    pub ad: String,
    pub first_message: String,
    /// The ad's name and campaign name, when a spend row named the contact's Meta ad.
    pub ad_name: String,
}

impl ContactRow {
    fn of(instance_id: &InstanceId, contact: &Contact) -> Self {
        let [
            id,
            channel,
            first_seen_at,
            source,
            referral_id,
            platform,
            campaign,
            ad,
            first_message,
        ] = export::row(contact);
        Self {
            url: format!("{}/contacts/{}", instance_path(instance_id), encoded(&id)),
            id,
            name: contact.display_name.clone().unwrap_or_default(),
            initials: initials(contact),
            ring: ring_class(contact.acquisition.as_ref()),
            channel,
            first_seen_at,
            source,
            referral_id,
            platform,
            campaign,
            ad,
            first_message,
            ad_name: String::new(),
        }
    }

    /// The row with its Meta ad's names from `names` (the page's one lookup).
    fn named(mut self, contact: &Contact, names: &BTreeMap<String, AdNames>) -> Self {
        if let Some(Acquisition::MetaAd(referral)) = &contact.acquisition {
            if let Some(named) = referral.ad_id.as_ref().and_then(|id| names.get(id)) {
                let ad = named.ad_name.as_deref().unwrap_or(&named.ad_id);
                self.ad_name = format!("{ad} · {}", named.campaign_name);
            }
        }
        self
    }
}

#[derive(Template)]
#[template(path = "contacts.html")]
pub struct ContactsPage {
    pub chrome: Chrome,
    pub instance_id: String,
    pub instance_path: String,
    pub filters: Filters,
    pub kinds: [&'static str; 6],
    /// The platform filter's choices: every platform with a colour, then `other`.
    pub platforms: Vec<&'static str>,
    pub rows: Vec<ContactRow>,
    pub next_url: Option<String>,
    pub csv_url: String,
}

/// One touch of the panel's list.
pub struct TouchRow {
    pub kind: String,
    pub platform: String,
    pub captured_at: String,
}

/// One event of the contact's journey as the panel shows it.
pub struct EventRow {
    pub name: String,
    pub occurred_at: String,
    /// Its value and properties, as the contact API shows them.
    pub details: String,
    /// The catalog products it names that a feed knows (an inquiry's, an order's lines').
    pub products: Vec<ProductView>,
}

impl EventRow {
    fn of(event: &shared::events::ContactEvent, products: &shared::catalog::Products) -> Self {
        let value = match (&event.value, &event.currency) {
            (Some(value), Some(currency)) => format!("{value} {currency} "),
            _ => String::new(),
        };
        let properties = serde_json::to_string(&event.properties).unwrap_or_default();
        Self {
            name: event.name.clone(),
            occurred_at: event.occurred_at.to_string(),
            details: format!("{value}{properties}"),
            products: shared::catalog::event_products(&event.name, &event.properties)
                .into_iter()
                .filter_map(|(catalog, id)| shared::catalog::find(products, catalog, id))
                .map(ProductView::of)
                .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "contact.html")]
pub struct ContactPanel {
    pub chrome: Chrome,
    pub instance_id: String,
    pub instance_path: String,
    pub contact: ContactRow,
    pub message_count: u64,
    /// `ads`, `organic` or `proactive`, as the contact API shows it.
    pub conversation_source: &'static str,
    /// The business's first message's origin, for a contact the business wrote to first.
    pub business_first: Option<String>,
    pub last_seen_at: String,
    pub touches: Vec<TouchRow>,
    /// The journey's events, newest first.
    pub events: Vec<EventRow>,
    pub linked_ids: Vec<String>,
    pub sends: usize,
    pub clicks: usize,
    pub conversions: usize,
    /// (currency, amount) per currency, as the journey API totals them.
    pub revenue: Vec<(String, String)>,
    /// The names of the Meta ad that acquired the contact, as the contact API shows them.
    pub ad_names: Option<shared::spend::AdNames>,
    /// The catalog product the contact came through, when a feed named it.
    pub product: Option<ProductView>,
}

/// A catalog product as the panel shows it.
pub struct ProductView {
    pub title: String,
    /// `9.99 USD`, and the sale price after it when the feed gives one.
    pub price: String,
    pub description: String,
    pub availability: String,
    /// Only an `https://` picture is shown (the CSP allows no other).
    pub image: Option<String>,
}

impl ProductView {
    fn of(product: &shared::catalog::Product) -> Self {
        let price = match &product.sale_price {
            Some(sale) => format!("{sale} {} (was {})", product.currency, product.price),
            None => format!("{} {}", product.price, product.currency),
        };
        Self {
            title: product.title.clone(),
            price,
            description: product.description.clone(),
            availability: product.availability.clone(),
            image: product
                .image_link
                .starts_with("https://")
                .then(|| product.image_link.clone()),
        }
    }
}

fn query_form(query: Option<String>) -> Form {
    Form::parse(query.unwrap_or_default().as_bytes())
}

/// The listing with its filters, a page at a time (`?cursor=` the listing's signed cursor).
pub async fn contacts_page(
    State(state): State<Shared>,
    SignedIn(session): SignedIn,
    Path(raw_instance): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let instance_id = parse_instance(&raw_instance)?;
    let form = query_form(query);
    let filters = Filters::of(&form);
    let query = ListingQuery {
        cursor: form
            .get("cursor")
            .filter(|cursor| !cursor.is_empty())
            .map(str::to_owned),
        ..filters.listing_query().map_err(bad_field)?
    };
    // The dashboard signs cursors as the contacts API does, under the admin key.
    let cursors = CursorCodec::new(state.keys.admin.clone());
    let now = Timestamp::now();
    let (contacts, next) =
        listing::query_page(state.contacts.as_ref(), &cursors, &instance_id, &query, now)
            .await
            .map_err(|failure| match failure {
                PageFailure::Invalid(error) => bad_field(error),
                PageFailure::Store(error) => PageError::Store(error),
            })?;
    let path = instance_path(&instance_id);
    let filter_query = filters.query();
    let next_url = next.map(|cursor| {
        let cursor = encoded(&cursor);
        let joiner = if filter_query.is_empty() { "" } else { "&" };
        format!("{path}/contacts?{filter_query}{joiner}cursor={cursor}")
    });
    let names = shared::spend::names_for_contacts(state.spend.as_ref(), &contacts).await?;
    let page = ContactsPage {
        chrome: chrome(&state, &session, instance_id.as_str()).await?,
        instance_id: instance_id.to_string(),
        rows: contacts
            .iter()
            .map(|contact| ContactRow::of(&instance_id, contact).named(contact, &names))
            .collect(),
        csv_url: format!("{path}/contacts.csv?{filter_query}"),
        instance_path: path,
        filters,
        kinds: shared::contact::listing::ACQUISITION_KINDS,
        platforms: PLATFORMS.iter().copied().chain(["other"]).collect(),
        next_url,
    };
    Ok(html(StatusCode::OK, &page))
}

/// The same listing as the API's `contacts.csv`, written by the same streaming writer.
pub async fn contacts_csv(
    State(state): State<Shared>,
    SignedIn(_): SignedIn,
    Path(raw_instance): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let instance_id = parse_instance(&raw_instance)?;
    let query = Filters::of(&query_form(query))
        .listing_query()
        .map_err(bad_field)?;
    shared::http::contacts_csv(
        state.contacts.clone(),
        state.spend.clone(),
        instance_id,
        &query,
    )
    .map_err(bad_field)
}

/// One contact: acquisition, touches, first message and linked ids, as `GET …/contacts/{id}`
/// reads it.
pub async fn contact_panel(
    State(state): State<Shared>,
    SignedIn(session): SignedIn,
    Path((raw_instance, raw_contact)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let instance_id = parse_instance(&raw_instance)?;
    let contact_id =
        ContactId::parse(&raw_contact).map_err(|error| PageError::BadRequest(error.to_string()))?;
    let contact = state
        .contacts
        .load_contact(&instance_id, &contact_id)
        .await?
        .ok_or_else(|| PageError::NotFound("this instance has no such contact".to_owned()))?;
    let (_, journey) = journey::load(
        state.revenue.as_ref(),
        state.contacts.as_ref(),
        &instance_id,
        contact.contact_id.clone(),
    )
    .await?;
    let ad_names =
        shared::spend::names_for_contacts(state.spend.as_ref(), std::slice::from_ref(&contact))
            .await?
            .into_values()
            .next();
    let products = shared::catalog::products_for_contacts(
        state.catalog.as_ref(),
        std::slice::from_ref(&contact),
    )
    .await?;
    let product = shared::catalog::product_of(&shared::http::contact_view(&contact), &products)
        .map(ProductView::of);
    let revenue = journey::revenue_by_currency(&journey)
        .into_iter()
        .map(|(currency, amount)| (currency.to_string(), amount.to_string()))
        .collect();
    let touches = contact
        .touches
        .iter()
        .map(|touch| {
            let shown = serde_json::to_value(touch).unwrap_or_default();
            TouchRow {
                kind: shown["kind"].as_str().unwrap_or_default().to_owned(),
                platform: shown["platform"].as_str().unwrap_or_default().to_owned(),
                captured_at: touch.captured_at().to_string(),
            }
        })
        .collect();
    let page = ContactPanel {
        chrome: chrome(&state, &session, instance_id.as_str()).await?,
        instance_id: instance_id.to_string(),
        instance_path: instance_path(&instance_id),
        contact: ContactRow::of(&instance_id, &contact),
        message_count: contact.message_count,
        conversation_source: contact.conversation_source().as_str(),
        business_first: contact
            .business_first
            .map(|first| format!("{} ({})", first.at, first.origin.as_str())),
        last_seen_at: contact.last_seen_at.to_string(),
        touches,
        events: contact
            .events
            .kept
            .iter()
            .rev()
            .map(|event| EventRow::of(event, &products))
            .collect(),
        linked_ids: contact
            .linked_ids
            .iter()
            .map(|id| id.as_str().to_owned())
            .collect(),
        sends: journey.sends.len(),
        clicks: journey.clicks.len(),
        conversions: journey.conversions.len(),
        revenue,
        ad_names,
        product,
    };
    Ok(html(StatusCode::OK, &page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ring_class_has_its_platforms_fixed_colour() {
        let css = include_str!("../assets/dashboard.css");
        for platform in PLATFORMS {
            let rule = format!(
                ".ring-{platform} {{ --ring: {}; }}",
                shared::stats::platform_color(platform)
            );
            assert!(css.contains(&rule), "missing {rule}");
        }
        let other = format!(
            ".ring-other {{ --ring: {}; }}",
            shared::stats::platform_color("")
        );
        assert!(css.contains(&other));
    }

    #[test]
    fn day_filters_are_checked_and_cover_both_days() {
        let filters = Filters {
            since: "2026-03-01".into(),
            until: "2026-03-02".into(),
            ..Filters::default()
        };
        let query = filters.listing_query().unwrap();
        assert_eq!(query.since.as_deref(), Some("2026-03-01T00:00:00.000Z"));
        assert_eq!(query.until.as_deref(), Some("2026-03-03T00:00:00.000Z"));
        for bad in [
            "2026-02-30",
            "yesterday",
            "2026-3-1",
            "2026-03-01T00:00:00Z",
        ] {
            let filters = Filters {
                since: bad.into(),
                ..Filters::default()
            };
            assert!(filters.listing_query().is_err(), "{bad}");
        }
    }
}
