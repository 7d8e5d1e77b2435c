//! A funnel as an admin sends it, read field by field so that a refusal names the field
//! (`steps`, `steps[8]`, `steps[2]`, `order`, …).

use super::{FunnelSettings, GOAL_STEP_PREFIX, MAX_STEPS, MIN_STEPS, Order};
use crate::events::custom::check_name;
use crate::fields::{FieldError, json_object, present, reject_unknown};
use crate::goals::GoalId;
use crate::goals::draft::{name_of, window_days_of};
use serde_json::Value;

fn step(value: &Value, field: &str) -> Result<String, FieldError> {
    let Some(text) = value.as_str() else {
        return Err(FieldError::new(
            field,
            "must be an event name or goal:<goal_id>",
        ));
    };
    match text.strip_prefix(GOAL_STEP_PREFIX) {
        Some(goal) => GoalId::parse(goal)
            .map(|id| format!("{GOAL_STEP_PREFIX}{id}"))
            .map_err(|error| FieldError::new(field, error.to_string())),
        None => check_name(field, text).map(|()| text.to_owned()),
    }
}

/// The funnel a request body describes, or the first field that does not hold.
pub fn parse(body: &[u8]) -> Result<FunnelSettings, FieldError> {
    let object = json_object(body)?;
    reject_unknown(&object, "", &["name", "steps", "window_days", "order"], &[])?;
    let name = name_of(&object)?;
    let Some(Value::Array(list)) = present(&object, "steps") else {
        return Err(FieldError::new(
            "steps",
            format!("is required: a list of {MIN_STEPS} to {MAX_STEPS} steps"),
        ));
    };
    if list.len() > MAX_STEPS {
        return Err(FieldError::new(
            format!("steps[{MAX_STEPS}]"),
            format!("is one too many: at most {MAX_STEPS}"),
        ));
    }
    if list.len() < MIN_STEPS {
        return Err(FieldError::new(
            "steps",
            format!("must hold {MIN_STEPS} to {MAX_STEPS} steps"),
        ));
    }
    let steps = list
        .iter()
        .enumerate()
        .map(|(index, value)| step(value, &format!("steps[{index}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let window_days = window_days_of(&object)?;
    let order = match present(&object, "order") {
        None => Order::Ordered,
        Some(value) => serde_json::from_value(value.clone())
            .map_err(|_| FieldError::new("order", "must be one of ordered, strict, any"))?,
    };
    Ok(FunnelSettings {
        name,
        steps,
        window_days,
        order,
    })
}
