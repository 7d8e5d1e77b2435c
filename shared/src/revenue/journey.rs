//! A contact's revenue journey: its sends, clicks and conversions, and the revenue credited to
//! it per currency. One place for the journey API and the dashboard's contact panel.

use crate::contact::store::{ContactQueries, ContactStore};
use crate::ids::{ContactId, InstanceId};
use crate::revenue::money::{Amount, Currency};
use crate::revenue::records::Journey;
use crate::revenue::store::RevenueStore;
use crate::store::StoreError;
use std::collections::BTreeMap;

/// The journey of the contact `contact_id` names (a phone number or BSUID resolves to the
/// contact that stays; an id not seen yet stands for itself), with that contact's id.
pub async fn load(
    revenue: &dyn RevenueStore,
    contacts: &dyn ContactStore,
    instance_id: &InstanceId,
    contact_id: ContactId,
) -> Result<(ContactId, Journey), StoreError> {
    let contact_id = contacts
        .resolve_contact_id(instance_id, &contact_id)
        .await?
        .unwrap_or(contact_id);
    let journey = revenue.contact_journey(instance_id, &contact_id).await?;
    Ok((contact_id, journey))
}

/// The payouts of the credited conversions, summed per currency (a sum past the largest
/// amount stays at what it was).
pub fn revenue_by_currency(journey: &Journey) -> BTreeMap<Currency, Amount> {
    let mut revenue: BTreeMap<Currency, Amount> = BTreeMap::new();
    for conversion in &journey.conversions {
        if conversion.credited.is_some() {
            let total = revenue.entry(conversion.currency).or_default();
            *total = total.checked_add(conversion.payout).unwrap_or(*total);
        }
    }
    revenue
}
