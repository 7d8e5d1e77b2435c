//! The HTTP side shared by every function: one error type mapped to one JSON answer, the
//! extractors that refuse with it, admin authentication, and the fallbacks that keep even
//! unknown routes answering in JSON.

mod auth;
mod error;
mod extract;
mod views;

pub use auth::{AuditObject, require_admin};
pub use error::{ApiError, Missing};
pub use extract::{Body, BodyLimit, Path, PathSegment, PathSegments, Query, body_limit};
pub use views::{contact_view, contacts_csv};

use crate::secret::AdminKeys;
use axum::http::header;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

/// The body limit of every admin route: axum's own default, stated. Admin bodies are rules,
/// offers, widget settings and batches of sends.
pub const ADMIN_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Puts `routes` behind the admin key (see [`require_admin`]), with the admin body limit.
pub fn admin_routes<S: Clone + Send + Sync + 'static>(
    routes: Router<S>,
    keys: Arc<AdminKeys>,
) -> Router<S> {
    routes
        .route_layer(body_limit(ADMIN_BODY_BYTES))
        .route_layer(from_fn_with_state(keys, require_admin))
}

/// Adds the fallbacks to a complete router (a function's, or the local server's union of all
/// of them), so unknown paths and methods answer in JSON too. axum refuses to merge routers
/// that each have a fallback, hence once, at the top.
pub fn serve_json_errors(router: Router) -> Router {
    router
        .fallback(|| async { ApiError::NotFound(Missing::Route) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::map_response(json_rejections))
}

/// axum's own refusals (an extractor that is not one of this module's, say) come as
/// plain text: they are turned into the JSON error every other refusal is, with their text as
/// the message.
async fn json_rejections(response: Response) -> Response {
    let plain_text = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"text/plain"));
    if !response.status().is_client_error() || !plain_text {
        return response;
    }
    let status = response.status();
    // Rejection texts are a line or two; more is cut rather than buffered.
    let text = match axum::body::to_bytes(response.into_body(), 4096).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => "the request was refused".to_owned(),
    };
    let error = json!({ "error": { "code": "invalid_request", "message": text } });
    (status, Json(error)).into_response()
}
