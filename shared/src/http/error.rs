//! The one error type of every route, and the one conversion of each domain error into it.

use crate::catalog::feed::FeedFailure;
use crate::events::custom::EventsError;
use crate::fields::FieldError;
use crate::goals::admin::GoalError;
use crate::ids::InvalidId;
use crate::ingest::IngestError;
use crate::matching::backfill::StartError;
use crate::meta::{PayloadError, SignatureError};
use crate::queue::QueueError;
use crate::revenue::import::ImportError;
use crate::spend::import::ImportFailure;
use crate::spend::insights::{InsightsError, SyncError};
use crate::stats::InvalidDays;
use crate::store::StoreError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Every way a request can fail, each mapped to one status and one JSON error body,
/// `{"error": {"code", "message"}}` (and `field` for a field that does not hold).
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
    /// A request field that does not hold (400): the answer names it.
    #[error("{0}")]
    InvalidField(FieldError),
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
    #[error("{}", .0.message())]
    NotFound(Missing),
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
    /// A service this one calls refused or failed (502, or 503 to retry later), with a message
    /// safe to return (the ad spend pull's Graph API errors).
    #[error("{message}")]
    Upstream {
        /// 502 or 503.
        status: StatusCode,
        /// Machine-readable error code, stable for clients.
        code: &'static str,
        /// What went wrong, for a person.
        message: String,
    },
    /// A bug or an impossible state (500); the detail is logged, not returned.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What a request named that is not there: each a 404 with its own code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// No route has this path.
    Route,
    /// No rule of this instance has the id (or the id is not a rule id at all).
    Rule,
    /// No offer has the id (or the id is not an offer id at all).
    Offer,
    /// The instance has no contact of this id.
    Contact,
    /// The instance has no widget configured.
    Widget,
    /// The instance has no backfill job of this id.
    Job,
    /// No tracked link has this code.
    Link,
    /// The postback path names no known affiliate network.
    Network,
    /// No dashboard asset has this name (an old content hash after a deploy, say).
    Asset,
    /// No conversion of this network has the id.
    Conversion,
    /// No goal of this instance has the id (or the id is not a goal id at all).
    Goal,
    /// No funnel of this instance has the id (or the id is not a funnel id at all).
    Funnel,
    /// No destination of this instance has the id (or the id is not a destination id at all).
    Destination,
}

impl Missing {
    /// The machine-readable code of the 404.
    pub fn code(self) -> &'static str {
        match self {
            Self::Route => "route_not_found",
            Self::Rule => "rule_not_found",
            Self::Offer => "offer_not_found",
            Self::Contact => "contact_not_found",
            Self::Widget => "widget_not_found",
            Self::Job => "job_not_found",
            Self::Link => "link_not_found",
            Self::Network => "unknown_network",
            Self::Asset => "asset_not_found",
            Self::Conversion => "conversion_not_found",
            Self::Goal => "goal_not_found",
            Self::Funnel => "funnel_not_found",
            Self::Destination => "destination_not_found",
        }
    }

    /// What is missing, for a person.
    pub fn message(self) -> &'static str {
        match self {
            Self::Route => "no such route",
            Self::Rule => "no such rule on this instance",
            Self::Offer => "no such offer",
            Self::Contact => "no such contact on this instance",
            Self::Widget => "no widget is configured for this instance",
            Self::Job => "no such backfill job on this instance",
            Self::Link => "no such tracked link",
            Self::Network => "the network must be tune, everflow or generic",
            Self::Asset => "no such asset",
            Self::Conversion => "no conversion of this network has this id",
            Self::Goal => "no such goal on this instance",
            Self::Funnel => "no such funnel on this instance",
            Self::Destination => "no such destination on this instance",
        }
    }
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
        Self::InvalidField(FieldError::new(field, message))
    }

    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            Self::InvalidField(_) => (StatusCode::BAD_REQUEST, "invalid_field", self.to_string()),
            Self::BadRequest { code, message } => (StatusCode::BAD_REQUEST, code, message.clone()),
            Self::Unauthorized { code, message } => {
                (StatusCode::UNAUTHORIZED, code, message.clone())
            }
            Self::Forbidden { code, message } => (StatusCode::FORBIDDEN, code, message.clone()),
            Self::NotFound(missing) => (
                StatusCode::NOT_FOUND,
                missing.code(),
                missing.message().to_owned(),
            ),
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
            Self::Upstream {
                status,
                code,
                message,
            } => (*status, code, message.clone()),
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
        if let Self::InvalidField(refused) = &self {
            error["field"] = json!(refused.field);
        }
        (status, Json(json!({ "error": error }))).into_response()
    }
}

impl From<Missing> for ApiError {
    fn from(missing: Missing) -> Self {
        Self::NotFound(missing)
    }
}

impl From<crate::outbound::admin::DestinationError> for ApiError {
    fn from(error: crate::outbound::admin::DestinationError) -> Self {
        use crate::outbound::admin::DestinationError;
        match error {
            DestinationError::Invalid(field) => field.into(),
            DestinationError::Unknown => Missing::Destination.into(),
            DestinationError::Store(store) => store.into(),
            DestinationError::Contention => Self::Unavailable(error.to_string()),
        }
    }
}

impl From<crate::outbound::triggers::FireError> for ApiError {
    fn from(error: crate::outbound::triggers::FireError) -> Self {
        use crate::outbound::triggers::FireError;
        match error {
            FireError::Store(store) => store.into(),
            FireError::Queue(queue) => queue.into(),
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(error: FieldError) -> Self {
        Self::InvalidField(error)
    }
}

impl From<InvalidId> for ApiError {
    fn from(error: InvalidId) -> Self {
        Self::bad_request("invalid_id", error.to_string())
    }
}

impl From<InvalidDays> for ApiError {
    fn from(error: InvalidDays) -> Self {
        Self::invalid_field("days", error.to_string())
    }
}

impl From<ImportError> for ApiError {
    fn from(error: ImportError) -> Self {
        match error {
            ImportError::Header(message) => Self::bad_request("invalid_header", message),
            ImportError::TooLarge { limit } => Self::PayloadTooLarge { limit_bytes: limit },
            ImportError::TooManyRows { .. } => {
                Self::bad_request("too_many_rows", error.to_string())
            }
            ImportError::Body(_) => Self::bad_request("invalid_body", error.to_string()),
            ImportError::Store(error) => error.into(),
        }
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

impl From<QueueError> for ApiError {
    fn from(error: QueueError) -> Self {
        Self::Unavailable(error.to_string())
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

impl From<EventsError> for ApiError {
    fn from(error: EventsError) -> Self {
        match error {
            EventsError::Invalid(field) => field.into(),
            EventsError::UnknownContact => Missing::Contact.into(),
            EventsError::Store(store) => store.into(),
            contention @ EventsError::Contention { .. } => {
                Self::Unavailable(contention.to_string())
            }
        }
    }
}

impl From<GoalError> for ApiError {
    fn from(error: GoalError) -> Self {
        match error {
            GoalError::Invalid(field) => field.into(),
            GoalError::UnknownGoal => Missing::Goal.into(),
            GoalError::UnknownFunnel => Missing::Funnel.into(),
            GoalError::Store(store) => store.into(),
            contention @ GoalError::Contention => Self::Unavailable(contention.to_string()),
        }
    }
}

impl From<StartError> for ApiError {
    fn from(error: StartError) -> Self {
        match error {
            StartError::Store(error) => error.into(),
            StartError::Queue(error) => error.into(),
        }
    }
}

impl From<SignatureError> for ApiError {
    fn from(error: SignatureError) -> Self {
        let code = match error {
            SignatureError::Missing => "missing_signature",
            SignatureError::Malformed | SignatureError::Mismatch => "invalid_signature",
        };
        Self::Unauthorized {
            code,
            message: error.to_string(),
        }
    }
}

impl From<FeedFailure> for ApiError {
    fn from(error: FeedFailure) -> Self {
        match error {
            FeedFailure::File(file) => Self::bad_request("unusable_file", file.to_string()),
            FeedFailure::Store(store) => store.into(),
        }
    }
}

impl From<ImportFailure> for ApiError {
    fn from(error: ImportFailure) -> Self {
        match error {
            ImportFailure::File(file) => Self::bad_request("unusable_file", file.to_string()),
            ImportFailure::Store(store) => store.into(),
        }
    }
}

impl From<SyncError> for ApiError {
    fn from(error: SyncError) -> Self {
        let error = match error {
            SyncError::Store(store) => return store.into(),
            other => other,
        };
        let upstream = |status, code| Self::Upstream {
            status,
            code,
            message: error.to_string(),
        };
        match &error {
            SyncError::NotConfigured => Self::Conflict {
                code: "meta_sync_not_configured",
                message: error.to_string(),
            },
            SyncError::Meta(InsightsError::Token { .. }) => {
                upstream(StatusCode::BAD_GATEWAY, "meta_token_rejected")
            }
            SyncError::Meta(InsightsError::RateLimited { .. }) => {
                upstream(StatusCode::SERVICE_UNAVAILABLE, "meta_rate_limited")
            }
            SyncError::Meta(InsightsError::Other { .. }) | SyncError::TooManyRows => {
                upstream(StatusCode::BAD_GATEWAY, "meta_error")
            }
            SyncError::Unreachable(_) | SyncError::Store(_) => {
                upstream(StatusCode::BAD_GATEWAY, "meta_unreachable")
            }
        }
    }
}

impl From<PayloadError> for ApiError {
    fn from(error: PayloadError) -> Self {
        let code = match error {
            PayloadError::NotJson(_) => "invalid_json",
            PayloadError::NotADelivery(_) => "invalid_payload",
        };
        Self::bad_request(code, error.to_string())
    }
}
