//! The web widget's settings: the origin allow-list and the publishable key the widget
//! function admits browser calls with.

use super::RulesState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;
use shared::fields::{json_object, present};
use shared::http::{ApiError, Body, Missing, Path};
use shared::ids::InstanceId;
use shared::time::Timestamp;
use shared::web::WidgetConfig;
use std::sync::Arc;

/// `POST /instances/{instance_id}/widget` `{"allowed_origins": [...], "campaigns"?: [...]}`:
/// sets the allow-list and the campaigns whose visits count, and issues a new key (the old one
/// stops working).
pub(crate) async fn configure(
    State(state): State<Arc<RulesState>>,
    Path(instance_id): Path<InstanceId>,
    Body(body): Body,
) -> Result<(StatusCode, Json<WidgetConfig>), ApiError> {
    let object = json_object(&body)?;
    shared::fields::reject_unknown(&object, "", &["allowed_origins", "campaigns"], &[])?;
    let origins = match present(&object, "allowed_origins") {
        Some(value) => strings(value, "allowed_origins")?,
        None => {
            return Err(ApiError::invalid_field(
                "allowed_origins",
                "is required: an array of origins such as https://shop.example",
            ));
        }
    };
    let campaigns = match present(&object, "campaigns") {
        Some(value) => strings(value, "campaigns")?,
        None => Vec::new(),
    };
    let config =
        WidgetConfig::new(instance_id, &origins, Timestamp::now())?.with_campaigns(&campaigns)?;
    state.widgets.save_widget(&config).await?;
    Ok((StatusCode::CREATED, Json(config)))
}

/// `PUT /instances/{instance_id}/widget/campaigns` `{"campaigns": [...]}`: replaces the
/// campaigns whose visits count and keeps the key, so the snippet on the site keeps working.
pub(crate) async fn set_campaigns(
    State(state): State<Arc<RulesState>>,
    Path(instance_id): Path<InstanceId>,
    Body(body): Body,
) -> Result<Json<WidgetConfig>, ApiError> {
    let object = json_object(&body)?;
    shared::fields::reject_unknown(&object, "", &["campaigns"], &[])?;
    let campaigns = match present(&object, "campaigns") {
        Some(value) => strings(value, "campaigns")?,
        None => {
            return Err(ApiError::invalid_field(
                "campaigns",
                "is required: an array of utm_campaign names",
            ));
        }
    };
    // A rotation may land between the read and the write; the write then names a key that is
    // gone and is refused, and the edit is made again on the rotated configuration.
    for _ in 0..3 {
        let current = state
            .widgets
            .load_widget(&instance_id)
            .await?
            .ok_or(Missing::Widget)?;
        let key = current.widget_key.clone();
        let mut edited = current.with_campaigns(&campaigns)?;
        edited.updated_at = Timestamp::now();
        if state.widgets.replace_widget(&edited, &key).await? {
            return Ok(Json(edited));
        }
    }
    Err(ApiError::Conflict {
        code: "widget_changing",
        message: "the widget's configuration kept changing; send the campaigns again".into(),
    })
}

/// The strings of an array field; anything else is refused by the field's name.
fn strings(value: &Value, field: &'static str) -> Result<Vec<String>, ApiError> {
    let refused = || ApiError::invalid_field(field, "must be an array of strings");
    match value {
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or_else(refused))
            .collect(),
        _ => Err(refused()),
    }
}

/// `GET /instances/{instance_id}/widget`.
pub(crate) async fn show(
    State(state): State<Arc<RulesState>>,
    Path(instance_id): Path<InstanceId>,
) -> Result<Json<WidgetConfig>, ApiError> {
    let config = state.widgets.load_widget(&instance_id).await?;
    Ok(Json(config.ok_or(Missing::Widget)?))
}
