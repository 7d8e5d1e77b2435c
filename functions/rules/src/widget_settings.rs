//! The web widget's settings: the origin allow-list and the publishable key the widget
//! function admits browser calls with.

use super::RulesState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::Value;
use shared::fields::{json_object, present};
use shared::http::ApiError;
use shared::ids::InstanceId;
use shared::time::Timestamp;
use shared::web::WidgetConfig;
use std::sync::Arc;

/// `POST /instances/{instance_id}/widget` `{"allowed_origins": [...]}`: sets the allow-list and
/// issues a new key (the old one stops working).
pub(crate) async fn configure(
    State(state): State<Arc<RulesState>>,
    Path(instance_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<WidgetConfig>), ApiError> {
    let instance_id = InstanceId::parse(&instance_id)?;
    let body =
        body.map_err(|rejection| ApiError::bad_request("unreadable_body", rejection.body_text()))?;
    let object = json_object(&body)?;
    shared::fields::reject_unknown(&object, "", &["allowed_origins"], &[])?;
    let origins: Vec<String> = match present(&object, "allowed_origins") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ApiError::InvalidField {
                        field: "allowed_origins".to_owned(),
                        message: "must be an array of strings".to_owned(),
                    })
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(ApiError::InvalidField {
                field: "allowed_origins".to_owned(),
                message: "is required: an array of origins such as https://shop.example".to_owned(),
            });
        }
    };
    let config = WidgetConfig::new(instance_id, &origins, Timestamp::now())?;
    state.widgets.save_widget(&config).await?;
    Ok((StatusCode::CREATED, Json(config)))
}

/// `GET /instances/{instance_id}/widget`.
pub(crate) async fn show(
    State(state): State<Arc<RulesState>>,
    Path(instance_id): Path<String>,
) -> Result<Json<WidgetConfig>, ApiError> {
    let instance_id = InstanceId::parse(&instance_id)?;
    state
        .widgets
        .load_widget(&instance_id)
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(
                "widget_not_found",
                "no widget is configured for this instance",
            )
        })
}
