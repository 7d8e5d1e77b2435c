//! The instance list (`/app/instances`), the header's instance selector behind every page,
//! and `/`, which opens the last instance or the only one.

use crate::pages::InstancesPage;
use crate::{
    INSTANCE_COOKIE, PageError, Shared, SignedIn, attribution_url, chrome, cookie, html,
    instance_path, session_of,
};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use shared::ids::InstanceId;
use shared::instances::MAX_LISTED;

/// `/`: the sign-in page without a session; the instance opened last (remembered in a
/// cookie), or the only instance there is; otherwise the list.
pub async fn home(State(state): State<Shared>, headers: HeaderMap) -> Result<Response, PageError> {
    if session_of(&state, &headers).is_none() {
        return Ok(Redirect::to("/app/login").into_response());
    }
    let remembered = cookie(&headers, INSTANCE_COOKIE).and_then(|raw| {
        let (decoded, _) = form_urlencoded::parse(raw.as_bytes()).next()?;
        InstanceId::parse(&decoded).ok()
    });
    let only = match remembered {
        Some(instance_id) => Some(instance_id),
        None => {
            let mut instances = state.instances.list_instances(2).await?;
            if instances.len() == 1 {
                instances.pop()
            } else {
                None
            }
        }
    };
    Ok(match only {
        Some(instance_id) => Redirect::to(&attribution_url(&instance_id)).into_response(),
        None => Redirect::to("/app/instances").into_response(),
    })
}

/// `/app/instances`: the list of instances with links to their pages; `?instance_id=` (the
/// selector, or the box for an id not listed) opens that instance's Attribution view.
pub async fn instances(
    State(state): State<Shared>,
    SignedIn(session): SignedIn,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let form = crate::pages::Form::parse(query.unwrap_or_default().as_bytes());
    let (raw, error) = match form.get("instance_id").map(str::trim) {
        None => ("", None),
        Some(raw) => match InstanceId::parse(raw) {
            Ok(instance_id) => {
                return Ok(Redirect::to(&attribution_url(&instance_id)).into_response());
            }
            Err(error) => (raw, Some(error.to_string())),
        },
    };
    let chrome = chrome(&state, &session, raw).await?;
    let listed = state.instances.list_instances(MAX_LISTED).await?;
    let page = InstancesPage {
        chrome,
        instances: listed
            .iter()
            .map(|instance_id| (instance_id.to_string(), instance_path(instance_id)))
            .collect(),
        capped: listed.len() == MAX_LISTED,
        error,
    };
    let status = if page.error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(html(status, &page))
}
