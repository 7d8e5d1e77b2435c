//! The extractors every handler takes its input through. Each refuses with an [`ApiError`], so
//! a body, query or path that does not hold answers the same JSON error on every route, and a
//! body over its route's limit answers 413 with that limit.

use super::{ApiError, Missing};
use crate::ids::{ContactId, InstanceId, JobId, OfferId};
use crate::revenue::Network;
use crate::rules::RuleId;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::{Extension, RequestPartsExt};
use bytes::Bytes;
use serde::de::DeserializeOwned;

/// axum's own limit, for a route that states none.
const AXUM_DEFAULT_BODY_BYTES: usize = 2 * 1024 * 1024;

/// A route's body limit, as the request carries it for the 413 to report.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(usize);

/// The layer that gives a route its body limit: the limit enforced, and the same number
/// reported by the 413 of a larger body.
pub fn body_limit(bytes: usize) -> (DefaultBodyLimit, Extension<BodyLimit>) {
    (DefaultBodyLimit::max(bytes), Extension(BodyLimit(bytes)))
}

/// The raw request body, within the route's limit (see [`body_limit`]).
#[derive(Debug)]
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let limit = request
            .extensions()
            .get::<BodyLimit>()
            .map_or(AXUM_DEFAULT_BODY_BYTES, |limit| limit.0);
        Bytes::from_request(request, state)
            .await
            .map(Self)
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge { limit_bytes: limit }
                } else {
                    ApiError::bad_request("unreadable_body", rejection.body_text())
                }
            })
    }
}

/// The query string, deserialized into `T`.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(query)| Self(query))
            .map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text()))
    }
}

/// A value one path segment names, parsed once at the edge.
pub trait PathSegment: Sized {
    /// The value, or the route's refusal of a segment that names none.
    fn from_segment(segment: &str) -> Result<Self, ApiError>;
}

impl PathSegment for String {
    fn from_segment(segment: &str) -> Result<Self, ApiError> {
        Ok(segment.to_owned())
    }
}

impl PathSegment for InstanceId {
    fn from_segment(segment: &str) -> Result<Self, ApiError> {
        Ok(Self::parse(segment)?)
    }
}

impl PathSegment for ContactId {
    fn from_segment(segment: &str) -> Result<Self, ApiError> {
        Ok(Self::parse(segment)?)
    }
}

/// A rule id that does not parse names no rule.
impl PathSegment for RuleId {
    fn from_segment(segment: &str) -> Result<Self, ApiError> {
        Self::parse(segment).map_err(|_| Missing::Rule.into())
    }
}

/// A goal id that does not parse names no goal.
impl PathSegment for crate::goals::GoalId {
    fn from_segment(segment: &str) -> Result<Self, ApiError> {
        Self::parse(segment).map_err(|_| Missing::Goal.into())
    }
}

/// A funnel id that does not parse names no funnel.
impl PathSegment for crate::funnels::FunnelId {
    fn from_segment(segment: &str) -> Result<Self, ApiError> {
        Self::parse(segment).map_err(|_| Missing::Funnel.into())
    }
}

/// A destination id that does not parse names no destination.
impl PathSegment for crate::outbound::DestinationId {
    fn from_segment(segment: &str) -> Result<Self, ApiError> {
        Self::parse(segment).map_err(|_| Missing::Destination.into())
    }
}

/// An offer id that does not parse names no offer.
impl PathSegment for OfferId {
    fn from_segment(segment: &str) -> Result<Self, ApiError> {
        Self::parse(segment).map_err(|_| Missing::Offer.into())
    }
}

/// A job id that does not parse names no job.
impl PathSegment for JobId {
    fn from_segment(segment: &str) -> Result<Self, ApiError> {
        Self::parse(segment).map_err(|_| Missing::Job.into())
    }
}

impl PathSegment for Network {
    fn from_segment(segment: &str) -> Result<Self, ApiError> {
        Self::parse(segment).ok_or(ApiError::NotFound(Missing::Network))
    }
}

/// The values a route's path segments name, in order.
pub trait PathSegments: Sized {
    /// The values, or the refusal of the first segment that names none.
    fn from_segments(segments: &[String]) -> Result<Self, ApiError>;
}

fn segment_count(expected: usize, segments: &[String]) -> Result<(), ApiError> {
    if segments.len() == expected {
        Ok(())
    } else {
        Err(ApiError::Internal(format!(
            "the route has {} path parameters, the handler reads {expected}",
            segments.len()
        )))
    }
}

impl<T: PathSegment> PathSegments for T {
    fn from_segments(segments: &[String]) -> Result<Self, ApiError> {
        segment_count(1, segments)?;
        T::from_segment(&segments[0])
    }
}

impl<A: PathSegment, B: PathSegment> PathSegments for (A, B) {
    fn from_segments(segments: &[String]) -> Result<Self, ApiError> {
        segment_count(2, segments)?;
        Ok((
            A::from_segment(&segments[0])?,
            B::from_segment(&segments[1])?,
        ))
    }
}

/// The path's parameters, each parsed by its [`PathSegment`]: `Path<InstanceId>`,
/// `Path<(InstanceId, RuleId)>`.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T: PathSegments, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        // Segments that are not UTF-8 once percent-decoded are refused here, as axum words it.
        let axum::extract::Path(segments) = parts
            .extract::<axum::extract::Path<Vec<String>>>()
            .await
            .map_err(|rejection| {
                if rejection.status().is_server_error() {
                    ApiError::Internal(rejection.body_text())
                } else {
                    ApiError::bad_request("invalid_request", rejection.body_text())
                }
            })?;
        T::from_segments(&segments).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(values: &[&str]) -> Vec<String> {
        values.iter().map(|value| (*value).to_owned()).collect()
    }

    #[test]
    fn path_ids_parse_in_order_or_answer_their_routes_refusal() {
        let rule = "01JD5X1Z4Q8M3N6P7R9S0T2V4W";
        let (instance, rule_id) =
            <(InstanceId, RuleId)>::from_segments(&segments(&["1", rule])).unwrap();
        assert_eq!((instance.as_str(), rule_id.as_str()), ("1", rule));
        let refusal =
            |values: &[&str]| <(InstanceId, RuleId)>::from_segments(&segments(values)).unwrap_err();
        assert!(matches!(
            refusal(&["a#b", "nope"]),
            ApiError::BadRequest {
                code: "invalid_id",
                ..
            }
        ));
        assert!(matches!(
            refusal(&["1", "nope"]),
            ApiError::NotFound(Missing::Rule)
        ));
        assert!(matches!(refusal(&["1"]), ApiError::Internal(_)));
        assert!(matches!(
            OfferId::from_segments(&segments(&["a#b"])),
            Err(ApiError::NotFound(Missing::Offer))
        ));
        assert!(matches!(
            Network::from_segments(&segments(&["nosuch"])),
            Err(ApiError::NotFound(Missing::Network))
        ));
        assert_eq!(
            Network::from_segments(&segments(&["tune"])).unwrap(),
            Network::Tune
        );
    }
}
