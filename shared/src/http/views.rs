//! How the admin API shows what is stored.

use serde_json::json;

/// A contact as the admin API shows it: as stored, plus its acquisition's display colour (a
/// presentation fact, not stored).
pub fn contact_view(contact: &crate::contact::Contact) -> serde_json::Value {
    let mut shown = json!(contact);
    if let Some(acquisition) = &contact.acquisition {
        shown["acquisition"]["color"] = crate::stats::platform_color(acquisition.platform()).into();
    }
    shown
}
