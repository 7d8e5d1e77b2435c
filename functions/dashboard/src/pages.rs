//! The pages: one `askama` template each (checked when the crate compiles), and the rule form's
//! model, which turns a posted form into the JSON the API takes so both validate alike.

use askama::Template;
use serde_json::{Value, json};
use shared::fields::FieldError;
use shared::rules::listing::ListedRule;
use shared::rules::{MatchKind, Rule, RuleDraft, RulePlatform};
use shared::stats::Stats;

/// What every page's header shows.
pub struct Chrome {
    pub stylesheet: String,
    pub signed_in: bool,
    pub readonly: bool,
    /// The session's CSRF token, for the forms that change something.
    pub csrf: String,
    /// The instance in the selector.
    pub instance: String,
    /// The selector's choices: the listed instances, and `instance` if it is not one of them.
    pub instances: Vec<String>,
    pub role_label: &'static str,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub chrome: Chrome,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "instances.html")]
pub struct InstancesPage {
    pub chrome: Chrome,
    /// Each instance's id and the path of its pages.
    pub instances: Vec<(String, String)>,
    /// The list stops at `MAX_LISTED`: the box opens any other.
    pub capped: bool,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub chrome: Chrome,
    pub title: &'static str,
    pub message: String,
}

#[derive(Template)]
#[template(path = "attribution.html")]
pub struct AttributionPage {
    pub chrome: Chrome,
    pub instance_id: String,
    /// `/app/instances/<the id, percent-encoded>`.
    pub instance_path: String,
    pub stats: Stats,
    pub rules: Vec<RuleRow>,
    pub test_text: String,
    pub test_answer: Option<String>,
    /// The add-rule form.
    pub form: RuleForm,
    pub backfill: crate::backfill::BackfillForm,
}

#[derive(Template)]
#[template(path = "edit.html")]
pub struct EditPage {
    pub chrome: Chrome,
    pub instance_id: String,
    /// `/app/instances/<the id, percent-encoded>`.
    pub instance_path: String,
    pub form: RuleForm,
}

/// One row of the rules table.
pub struct RuleRow {
    pub id: String,
    pub name: String,
    pub platform: &'static str,
    pub kind: &'static str,
    pub pattern: String,
    pub priority: i64,
    pub enabled: bool,
    pub matched_7d: u64,
}

impl From<&ListedRule> for RuleRow {
    fn from(listed: &ListedRule) -> Self {
        let settings = &listed.rule.settings;
        Self {
            id: listed.rule.id.to_string(),
            name: settings.name.clone(),
            platform: settings.platform.as_str(),
            kind: settings.text_match.kind.as_str(),
            pattern: settings.text_match.pattern.clone(),
            priority: settings.priority,
            enabled: settings.enabled,
            matched_7d: listed.matched_7d,
        }
    }
}

/// What the test-a-text box says about a dry run.
pub fn test_answer(matched: Option<&Rule>) -> String {
    match matched {
        Some(rule) => format!(
            "Matches “{}” ({}, rule {}).",
            rule.settings.name,
            rule.settings.platform.as_str(),
            rule.id
        ),
        None => "No rule matches this text.".to_owned(),
    }
}

/// A posted `application/x-www-form-urlencoded` body.
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }

    /// A form of fields read some other way (the parts of a multipart upload).
    pub fn from_pairs(fields: Vec<(String, String)>) -> Self {
        Self(fields)
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// The text fields of the rule form: (form name, label, the API's field, wide).
const TEXT_FIELDS: [(&str, &str, &str, bool); 8] = [
    ("name", "Name", "name", true),
    ("platform", "Platform", "platform", false),
    (
        "source_name",
        "Source name (required for custom)",
        "source_name",
        false,
    ),
    ("match_kind", "Match", "match.kind", false),
    ("pattern", "Pattern", "match.pattern", false),
    ("campaign", "Campaign", "campaign", false),
    ("ad", "Ad", "ad", false),
    ("priority", "Priority (lower runs first)", "priority", false),
];

/// The rule form: the values shown and the API's refusal, if any, next to its field.
pub struct RuleForm {
    pub action: String,
    pub submit: &'static str,
    /// Prefix of the inputs' ids.
    pub prefix: &'static str,
    values: [String; 8],
    pub case_sensitive: bool,
    pub enabled: bool,
    error: Option<FieldError>,
}

/// One text field as the template draws it.
pub struct FieldView {
    pub name: &'static str,
    pub label: &'static str,
    pub input: &'static str,
    pub value: String,
    pub wide: bool,
    pub choices: Vec<&'static str>,
    pub error: Option<String>,
}

impl FieldView {
    /// Whether `choice` is the select's current value.
    pub fn selected(&self, choice: &str) -> bool {
        self.value == choice
    }
}

impl RuleForm {
    /// An empty add-rule form posting to `action`.
    pub fn empty(action: String) -> Self {
        let mut values: [String; 8] = Default::default();
        values[1] = RulePlatform::ALL[0].as_str().to_owned();
        values[3] = MatchKind::ALL[0].as_str().to_owned();
        Self {
            action,
            submit: "Add rule",
            prefix: "add",
            values,
            case_sensitive: false,
            enabled: true,
            error: None,
        }
    }

    /// The same form, labelled as the edit form of a rule.
    pub fn for_edit(self) -> Self {
        Self {
            submit: "Save rule",
            prefix: "edit",
            ..self
        }
    }

    /// The edit form of a stored rule.
    pub fn of_rule(action: String, draft: &RuleDraft) -> Self {
        let optional = |value: &Option<String>| value.clone().unwrap_or_default();
        Self {
            action,
            submit: "Add rule",
            prefix: "add",
            values: [
                draft.name.clone(),
                draft.platform.as_str().to_owned(),
                optional(&draft.source_name),
                draft.text_match.kind.as_str().to_owned(),
                draft.text_match.pattern.clone(),
                optional(&draft.campaign),
                optional(&draft.ad),
                draft.priority.to_string(),
            ],
            case_sensitive: draft.text_match.case_sensitive,
            enabled: draft.enabled,
            error: None,
        }
        .for_edit()
    }

    /// The form as posted (shown again with `error`), keeping this form's action and labels.
    pub fn reposted(self, form: &Form, error: FieldError) -> Self {
        Self {
            values: TEXT_FIELDS.map(|(name, ..)| form.get(name).unwrap_or_default().to_owned()),
            case_sensitive: form.has("case_sensitive"),
            enabled: form.has("enabled"),
            error: Some(error),
            ..self
        }
    }

    /// The fields in order, each with its refusal when the API named it.
    pub fn fields(&self) -> Vec<FieldView> {
        TEXT_FIELDS
            .iter()
            .zip(&self.values)
            .map(|((name, label, api_field, wide), value)| FieldView {
                name,
                label,
                input: if *name == "priority" {
                    "number"
                } else {
                    "text"
                },
                value: value.clone(),
                wide: *wide,
                choices: match *name {
                    "platform" => RulePlatform::ALL.map(|p| p.as_str()).to_vec(),
                    "match_kind" => MatchKind::ALL.map(|k| k.as_str()).to_vec(),
                    _ => Vec::new(),
                },
                error: self
                    .error
                    .as_ref()
                    .filter(|error| error.field == *api_field)
                    // The API's own message, to the letter (`match.pattern: invalid regex …`).
                    .map(ToString::to_string),
            })
            .collect()
    }

    /// A refusal no single field shows (`body`, `enabled`, the instance's rule limit, …).
    pub fn general_error(&self) -> Option<String> {
        self.error
            .as_ref()
            .filter(|error| !TEXT_FIELDS.iter().any(|field| field.2 == error.field))
            .map(ToString::to_string)
    }
}

/// The JSON body the API's `POST`/`PUT …/rules` would take for this form, so
/// `RuleDraft::from_json` validates both with the same messages. Empty optional fields are left
/// out; a priority that is not a whole number is passed as text for the API to refuse.
pub fn draft_json(form: &Form) -> Value {
    let text = |name: &str| json!(form.get(name).unwrap_or_default());
    let optional = |name: &str| match form.get(name).map(str::trim) {
        Some(value) if !value.is_empty() => json!(value),
        _ => Value::Null,
    };
    let priority = match form.get("priority").map(str::trim) {
        None | Some("") => Value::Null,
        Some(text) => text
            .parse::<i64>()
            .map_or_else(|_| json!(text), Value::from),
    };
    json!({
        "name": text("name"),
        "platform": text("platform"),
        "source_name": optional("source_name"),
        "match": {
            "kind": text("match_kind"),
            "pattern": text("pattern"),
            "case_sensitive": form.has("case_sensitive"),
        },
        "campaign": optional("campaign"),
        "ad": optional("ad"),
        "priority": priority,
        "enabled": form.has("enabled"),
    })
}
