//! The HTTP side shared by every function: one error type mapped to one JSON answer, admin
//! authentication, and the fallbacks that keep even unknown routes answering in JSON.

use crate::ids::InvalidId;
use crate::ingest::IngestError;
use crate::secret::{AdminKeys, KeyName};
use crate::store::StoreError;
use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

/// Every way a request can fail, each mapped to one status and one JSON error body.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A request that does not make sense as sent (400).
    #[error("{message}")]
    BadRequest {
        /// Machine-readable error code, stable for clients.
        code: &'static str,
        /// What went wrong, for a person.
        message: String,
    },
    /// A request field that does not hold: the answer names it.
    #[error("{field}: {message}")]
    InvalidField {
        /// The field's path in the body or query.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// No valid credentials (401).
    #[error("{message}")]
    Unauthorized {
        /// Machine-readable error code, stable for clients.
        code: &'static str,
        /// What went wrong, for a person.
        message: String,
    },
    /// Valid credentials that may not do this, e.g. a read-only key writing (403).
    #[error("{message}")]
    Forbidden {
        /// Machine-readable error code, stable for clients.
        code: &'static str,
        /// What went wrong, for a person.
        message: String,
    },
    /// No such route or object (404).
    #[error("{message}")]
    NotFound {
        /// Machine-readable error code, stable for clients.
        code: &'static str,
        /// What went wrong, for a person.
        message: String,
    },
    /// The request clashes with what is stored, e.g. an offer id already taken (409).
    #[error("{message}")]
    Conflict {
        /// Machine-readable error code, stable for clients.
        code: &'static str,
        /// What went wrong, for a person.
        message: String,
    },
    /// The body exceeds the route's limit (413).
    #[error("the request body is larger than {limit_bytes} bytes")]
    PayloadTooLarge {
        /// The route's limit.
        limit_bytes: usize,
    },
    /// The route exists under another method (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A dependency failed; the caller should retry later. The detail is logged, not returned.
    #[error("a dependency is unavailable: {0}")]
    Unavailable(String),
    /// A bug or an impossible state (500); the detail is logged, not returned.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 with a machine-readable `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// A 400 naming the field that does not hold.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A 404 with a machine-readable `code`.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::NotFound {
            code,
            message: message.into(),
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            Self::InvalidField { .. } => {
                (StatusCode::BAD_REQUEST, "invalid_field", self.to_string())
            }
            Self::BadRequest { code, message } => (StatusCode::BAD_REQUEST, code, message.clone()),
            Self::Unauthorized { code, message } => {
                (StatusCode::UNAUTHORIZED, code, message.clone())
            }
            Self::Forbidden { code, message } => (StatusCode::FORBIDDEN, code, message.clone()),
            Self::NotFound { code, message } => (StatusCode::NOT_FOUND, code, message.clone()),
            Self::Conflict { code, message } => (StatusCode::CONFLICT, code, message.clone()),
            Self::PayloadTooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                self.to_string(),
            ),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                self.to_string(),
            ),
            Self::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "a dependency is unavailable; retry later".to_owned(),
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error".to_owned(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        if status.is_server_error() {
            tracing::error!(error = %self, status = status.as_u16(), "request failed");
        }
        let mut error = json!({ "code": code, "message": message });
        if let Self::InvalidField { field, .. } = &self {
            error["field"] = json!(field);
        }
        (status, Json(json!({ "error": error }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(detail) => Self::Unavailable(detail),
            StoreError::Corrupt(detail) => Self::Internal(detail),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        match error {
            IngestError::Store(store) => store.into(),
            contention @ IngestError::Contention { .. } => {
                Self::Unavailable(contention.to_string())
            }
            foreign @ IngestError::ForeignChannel => Self::Conflict {
                code: "contact_of_another_channel",
                message: foreign.to_string(),
            },
        }
    }
}

impl From<crate::matching::backfill::StartError> for ApiError {
    fn from(error: crate::matching::backfill::StartError) -> Self {
        use crate::matching::backfill::StartError;
        match error {
            StartError::Store(error) => error.into(),
            StartError::Queue(error) => Self::Unavailable(error.to_string()),
        }
    }
}

impl From<crate::fields::FieldError> for ApiError {
    fn from(error: crate::fields::FieldError) -> Self {
        Self::InvalidField {
            field: error.field,
            message: error.message,
        }
    }
}

impl From<crate::revenue::PostbackError> for ApiError {
    fn from(error: crate::revenue::PostbackError) -> Self {
        Self::InvalidField {
            field: error.field.to_owned(),
            message: error.message,
        }
    }
}

impl From<InvalidId> for ApiError {
    fn from(error: InvalidId) -> Self {
        Self::bad_request("invalid_id", error.to_string())
    }
}

/// Middleware for admin routes: `Authorization: Bearer <key>`, the admin key (current or
/// previous) for every route, the read-only key for `GET` and `HEAD` only. Every key is
/// compared, in constant time. Each write (any other method) logs one audit line.
pub async fn require_admin(
    State(keys): State<Arc<AdminKeys>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let key = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| {
            let value = value.as_bytes();
            let (scheme, token) = value.split_at(value.len().min(7));
            scheme.eq_ignore_ascii_case(b"bearer ").then_some(token)
        })
        .and_then(|token| keys.identify(token))
        .ok_or_else(|| ApiError::Unauthorized {
            code: "unauthorized",
            message: "a valid `Authorization: Bearer <admin key>` header is required".to_owned(),
        })?;
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    if reads {
        return Ok(next.run(request).await);
    }
    let (mut parts, body) = request.into_parts();
    let audit = AuditLine::of(&mut parts, key).await;
    if key.is_readonly() {
        let refused = ApiError::Forbidden {
            code: "read_only_key",
            message: "this key may only read (GET); writes need the admin key".to_owned(),
        };
        audit.log(StatusCode::FORBIDDEN, None);
        return Err(refused);
    }
    let response = next.run(Request::from_parts(parts, body)).await;
    audit.log(
        response.status(),
        response.extensions().get::<AuditObject>(),
    );
    Ok(response)
}

/// The id of what an admin write created, when the path does not name it (a new rule, offer or
/// job): handlers put it in their response's extensions for the audit line.
#[derive(Debug, Clone)]
pub struct AuditObject(pub String);

impl AuditObject {
    /// Marks `response` with the id of what the write created, for the audit line.
    pub fn attach(mut response: Response, id: impl Into<String>) -> Response {
        response.extensions_mut().insert(Self(id.into()));
        response
    }
}

/// What an audit line says about a write, read from the request before it runs.
struct AuditLine {
    route: String,
    method: Method,
    key: KeyName,
    /// The path's ids, `name=value` each; contact ids masked like everywhere in logs.
    objects: String,
}

impl AuditLine {
    async fn of(parts: &mut axum::http::request::Parts, key: KeyName) -> Self {
        // The template, never the path itself: a path holds contact ids.
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map_or_else(|| "<unmatched>".to_owned(), |path| path.as_str().to_owned());
        let objects = match RawPathParams::from_request_parts(parts, &()).await {
            Ok(params) => params
                .iter()
                .map(|(name, value)| {
                    let shown = if name == "contact_id" {
                        crate::ids::mask(value)
                    } else {
                        value.to_owned()
                    };
                    format!("{name}={shown}")
                })
                .collect::<Vec<_>>()
                .join(" "),
            Err(_) => String::new(),
        };
        Self {
            route,
            method: parts.method.clone(),
            key,
            objects,
        }
    }

    fn log(&self, status: StatusCode, created: Option<&AuditObject>) {
        tracing::info!(
            target: "audit",
            route = %self.route,
            method = %self.method,
            key = self.key.as_str(),
            object = %self.objects,
            created = created.map(|object| object.0.as_str()),
            status = status.as_u16(),
            "admin write"
        );
    }
}

/// Adds the fallbacks to a complete router (a function's, or the local server's union of all
/// of them), so unknown paths and methods answer in JSON too. axum refuses to merge routers
/// that each have a fallback, hence once, at the top.
pub fn serve_json_errors(router: Router) -> Router {
    router
        .fallback(|| async { ApiError::not_found("route_not_found", "no such route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::map_response(json_rejections))
}

/// axum's own refusals (a path segment that is not UTF-8, say) come as plain text: they are
/// turned into the JSON error every other refusal is, with their text as the message.
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

/// A contact as the admin API shows it: as stored, plus its acquisition's display colour (a
/// presentation fact, not stored).
pub fn contact_view(contact: &crate::contact::Contact) -> serde_json::Value {
    let mut shown = json!(contact);
    if let Some(acquisition) = &contact.acquisition {
        shown["acquisition"]["color"] = crate::stats::platform_color(acquisition.platform()).into();
    }
    shown
}
