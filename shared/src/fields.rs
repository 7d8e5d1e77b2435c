//! Requests read field by field, so that a refusal names the field that does not hold.

use serde_json::{Map, Value};

/// Why a request was refused: the offending field of its body or query (`match.pattern`,
/// `destination_url`, `click_id`, `cursor`, …, or `body` when it is not a JSON object) and a
/// message for the caller. The one field error of bodies, postbacks and listings alike.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The field's path in the body or its query parameter, e.g. `match.pattern`.
    pub field: String,
    /// What is wrong with it, for the caller.
    pub message: String,
}

impl FieldError {
    /// A refusal of `field` with `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The longest prefix of `text` of at most `max_bytes` bytes that ends on a character
/// boundary: how a stored string is kept within its byte budget whatever its script.
pub fn cap_bytes(text: &str, max_bytes: usize) -> &str {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The body as a JSON object, or why not.
pub fn json_object(body: &[u8]) -> Result<Map<String, Value>, FieldError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| FieldError::new("body", format!("is not valid JSON: {error}")))?;
    match value {
        Value::Object(object) => Ok(object),
        _ => Err(FieldError::new("body", "must be a JSON object")),
    }
}

/// Refuses fields outside `known` (a typo would otherwise be dropped silently); `ignored` ones
/// are accepted and left alone.
pub fn reject_unknown(
    object: &Map<String, Value>,
    prefix: &str,
    known: &[&str],
    ignored: &[&str],
) -> Result<(), FieldError> {
    match object
        .keys()
        .find(|key| !known.contains(&key.as_str()) && !ignored.contains(&key.as_str()))
    {
        Some(unknown) => Err(FieldError::new(
            format!("{prefix}{unknown}"),
            format!("is not a known field; expected one of {}", list(known)),
        )),
        None => Ok(()),
    }
}

/// The field's value, `None` when absent or `null`.
pub fn present<'a>(object: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    object.get(field).filter(|value| !value.is_null())
}

/// A trimmed string, `None` when absent, `null` or blank.
pub fn optional_string(
    object: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, FieldError> {
    match present(object, field) {
        None => Ok(None),
        Some(Value::String(text)) => {
            let trimmed = text.trim();
            Ok((!trimmed.is_empty()).then(|| trimmed.to_owned()))
        }
        Some(_) => Err(FieldError::new(field, "must be a string")),
    }
}

/// A trimmed, non-blank string that must be there.
pub fn required_string(
    object: &Map<String, Value>,
    field: &'static str,
) -> Result<String, FieldError> {
    optional_string(object, field)?.ok_or_else(|| FieldError::new(field, "is required"))
}

/// Field names joined for a message, e.g. the allowed values of an enum field.
pub fn list(names: &[&str]) -> String {
    names.join(", ")
}
