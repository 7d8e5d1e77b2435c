//! Admin authentication and the audit line of every admin write.

use super::ApiError;
use crate::secret::{AdminKeys, KeyName};
use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

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
