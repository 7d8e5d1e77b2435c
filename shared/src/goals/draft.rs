//! A goal as an admin sends it, read field by field so that a refusal names the field
//! (`conditions[5]`, `conditions[0].rules[5]`, `conditions[1].rules[0].op`, …).

use super::{
    Condition, DEFAULT_WINDOW_DAYS, GoalRule, GoalSettings, MAX_CONDITIONS, MAX_RULES,
    MAX_WINDOW_DAYS, Match, Op,
};
use crate::events::custom::check_name;
use crate::fields::{FieldError, json_object, present, reject_unknown, required_string};
use serde_json::{Map, Value};

/// A goal's name's longest form, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Most items of an `in` rule's value.
pub const MAX_IN_ITEMS: usize = 50;
/// A rule's text value's longest form, in bytes.
pub const MAX_VALUE_BYTES: usize = 500;

fn match_of(object: &Map<String, Value>, field: &str) -> Result<Match, FieldError> {
    match present(object, "match") {
        None => Ok(Match::All),
        Some(Value::String(text)) if text == "all" => Ok(Match::All),
        Some(Value::String(text)) if text == "any" => Ok(Match::Any),
        Some(_) => Err(FieldError::new(field, "must be all or any")),
    }
}

fn items<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    field: &str,
    max: usize,
) -> Result<&'a Vec<Value>, FieldError> {
    let Some(Value::Array(list)) = present(object, key) else {
        return Err(FieldError::new(field, "must be a list of 1 to 5"));
    };
    if list.is_empty() {
        return Err(FieldError::new(field, format!("must hold 1 to {max}")));
    }
    if list.len() > max {
        return Err(FieldError::new(
            format!("{field}[{max}]"),
            format!("is one too many: at most {max}"),
        ));
    }
    Ok(list)
}

fn object_at<'a>(value: &'a Value, field: &str) -> Result<&'a Map<String, Value>, FieldError> {
    value
        .as_object()
        .ok_or_else(|| FieldError::new(field, "must be an object"))
}

fn scalar(value: &Value) -> bool {
    match value {
        Value::String(text) => text.len() <= MAX_VALUE_BYTES,
        Value::Number(_) | Value::Bool(_) => true,
        _ => false,
    }
}

fn rule(object: &Map<String, Value>, prefix: &str) -> Result<GoalRule, FieldError> {
    reject_unknown(object, prefix, &["event", "property", "op", "value"], &[])?;
    let field = |name: &str| format!("{prefix}{name}");
    let event = match present(object, "event") {
        Some(Value::String(name)) => name.clone(),
        _ => {
            return Err(FieldError::new(
                field("event"),
                "is required: an event name",
            ));
        }
    };
    check_name(&field("event"), &event)?;
    let property = match present(object, "property") {
        None => None,
        Some(Value::String(name)) => {
            check_name(&field("property"), name)?;
            Some(name.clone())
        }
        Some(_) => return Err(FieldError::new(field("property"), "must be a string")),
    };
    let op = match present(object, "op") {
        None => None,
        Some(value) => Some(serde_json::from_value::<Op>(value.clone()).map_err(|_| {
            FieldError::new(field("op"), "must be one of eq, contains, in, gte, lte")
        })?),
    };
    let value = present(object, "value").cloned();
    let Some(_) = &property else {
        if op.is_some() || value.is_some() {
            return Err(FieldError::new(
                field("property"),
                "is required with op and value",
            ));
        }
        return Ok(GoalRule {
            event,
            property,
            op,
            value,
        });
    };
    let Some(value) = value else {
        return Err(FieldError::new(field("value"), "is required with property"));
    };
    let fits = match op.unwrap_or(Op::Eq) {
        Op::Eq => scalar(&value),
        Op::Contains => {
            value.as_str().is_some_and(|text| !text.trim().is_empty()) && scalar(&value)
        }
        Op::In => value.as_array().is_some_and(|list| {
            !list.is_empty() && list.len() <= MAX_IN_ITEMS && list.iter().all(scalar)
        }),
        Op::Gte | Op::Lte => match &value {
            Value::Number(_) => true,
            Value::String(text) => crate::revenue::money::Amount::parse(text).is_ok(),
            _ => false,
        },
    };
    if !fits {
        return Err(FieldError::new(
            field("value"),
            format!(
                "must suit the op: eq a string, number or boolean; contains a non-blank string; in \
                 a list of 1 to {MAX_IN_ITEMS} of those; gte and lte a number (strings up to \
                 {MAX_VALUE_BYTES} bytes)"
            ),
        ));
    }
    Ok(GoalRule {
        event,
        property,
        op: Some(op.unwrap_or(Op::Eq)),
        value: Some(value),
    })
}

/// The goal a request body describes, or the first field that does not hold.
pub fn parse(body: &[u8]) -> Result<GoalSettings, FieldError> {
    let object = json_object(body)?;
    reject_unknown(
        &object,
        "",
        &[
            "name",
            "window_days",
            "match",
            "conditions",
            "qualified_lead",
        ],
        &[],
    )?;
    let name = required_string(&object, "name")?;
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(FieldError::new(
            "name",
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    let window_days = match present(&object, "window_days") {
        None => DEFAULT_WINDOW_DAYS,
        Some(value) => value
            .as_u64()
            .filter(|days| (1..=u64::from(MAX_WINDOW_DAYS)).contains(days))
            .and_then(|days| u32::try_from(days).ok())
            .ok_or_else(|| {
                FieldError::new(
                    "window_days",
                    format!("must be from 1 to {MAX_WINDOW_DAYS}"),
                )
            })?,
    };
    let qualified_lead = match present(&object, "qualified_lead") {
        None => false,
        Some(Value::Bool(flag)) => *flag,
        Some(_) => return Err(FieldError::new("qualified_lead", "must be true or false")),
    };
    let match_ = match_of(&object, "match")?;
    let mut conditions = Vec::new();
    for (c, condition) in items(&object, "conditions", "conditions", MAX_CONDITIONS)?
        .iter()
        .enumerate()
    {
        let at = format!("conditions[{c}]");
        let condition = object_at(condition, &at)?;
        reject_unknown(condition, &format!("{at}."), &["match", "rules"], &[])?;
        let match_ = match_of(condition, &format!("{at}.match"))?;
        let mut rules = Vec::new();
        for (r, item) in items(condition, "rules", &format!("{at}.rules"), MAX_RULES)?
            .iter()
            .enumerate()
        {
            let rule_at = format!("{at}.rules[{r}]");
            rules.push(rule(object_at(item, &rule_at)?, &format!("{rule_at}."))?);
        }
        conditions.push(Condition { match_, rules });
    }
    Ok(GoalSettings {
        name,
        window_days,
        match_,
        conditions,
        qualified_lead,
    })
}
