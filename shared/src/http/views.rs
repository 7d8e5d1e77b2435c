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

/// A contacts export as a download: `text/csv`, named after the instance. The file name keeps
/// only the id's plain characters, since a header cannot carry quotes or non-ASCII ones.
pub fn csv_download<S>(instance_id: &crate::ids::InstanceId, body: S) -> axum::response::Response
where
    S: futures::Stream<Item = Result<bytes::Bytes, crate::store::StoreError>> + Send + 'static,
{
    use axum::http::header;
    use axum::response::IntoResponse;
    let name: String = instance_id
        .as_str()
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '_',
        })
        .collect();
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
