//! How the admin API shows what is stored.

use serde_json::json;

/// A contact as the admin API shows it: as stored, plus its acquisition's display colour (a
/// presentation fact, not stored).
pub fn contact_view(contact: &crate::contact::Contact) -> serde_json::Value {
    let mut shown = json!(contact);
    // The journey's events, oldest first; how the log keeps its bound is the store's affair.
    shown["events"] = json!(contact.events.kept);
    shown["conversation_source"] = contact.conversation_source().as_str().into();
    if let Some(acquisition) = &contact.acquisition {
        shown["acquisition"]["color"] = crate::stats::platform_color(acquisition.platform()).into();
    }
    shown
}

/// The contacts `query` names as a CSV download, streamed: the admin API's `contacts.csv` and
/// the dashboard's Download CSV both answer this.
pub fn contacts_csv(
    contacts: std::sync::Arc<dyn crate::contact::store::ContactStore>,
    spend: std::sync::Arc<dyn crate::spend::store::SpendStore>,
    instance_id: crate::ids::InstanceId,
    query: &crate::contact::listing::ListingQuery,
) -> Result<axum::response::Response, crate::fields::FieldError> {
    let (window, filter) = query.window_and_filter(crate::time::Timestamp::now())?;
    let name = file_name(&instance_id);
    let rows = crate::contact::export::stream(contacts, spend, instance_id, window, filter);
    Ok(csv_download(&name, rows))
}

/// The id's plain characters, for a file name: a header cannot carry quotes or non-ASCII ones.
fn file_name(instance_id: &crate::ids::InstanceId) -> String {
    instance_id
        .as_str()
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '_',
        })
        .collect()
}

/// A contacts export as a download: `text/csv`, named after the instance.
fn csv_download<S>(name: &str, body: S) -> axum::response::Response
where
    S: futures::Stream<Item = Result<bytes::Bytes, crate::store::StoreError>> + Send + 'static,
{
    use axum::http::header;
    use axum::response::IntoResponse;
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"contacts-{name}.csv\""),
            ),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}
