//! Rules as admins define them, and the validation that keeps a bad one from being stored.

use crate::fields::{json_object, list, optional_string, present, reject_unknown};
use crate::ids::InstanceId;
use crate::rules::id::RuleId;
use crate::rules::normalize::normalize;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::fmt;

/// The API refuses to store more rules than this on one instance.
pub const MAX_RULES_PER_INSTANCE: usize = 10_000;
/// Longest pattern, in characters (not bytes): pre-filled messages are short.
pub const MAX_PATTERN_CHARS: usize = 500;
/// Longest `name`, `source_name`, `campaign` and `ad`, in characters.
pub const MAX_LABEL_CHARS: usize = 200;
/// Accepted `priority` range; lower is evaluated first.
pub const MIN_PRIORITY: i64 = -1_000_000;
/// Upper end of the accepted `priority` range.
pub const MAX_PRIORITY: i64 = 1_000_000;
/// `priority` when a draft leaves it out.
pub const DEFAULT_PRIORITY: i64 = 100;
/// Compiled size limit of one `regex` rule (the regex crate's `size_limit`), so that one
/// pattern like `\w{1000}` cannot make every message of an instance slow or exhaust memory.
/// One Unicode `\w` compiles to about 50 KB, so this allows `\w{20}` or `.{100}` but not
/// `\w{1,30}` (1.5 MB) or `(\w{10}){10}` (5 MB).
pub const REGEX_SIZE_LIMIT: usize = 1024 * 1024;

/// The ad platform a rule attributes to. `Custom` names its source in `source_name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RulePlatform {
    /// TikTok ads.
    Tiktok,
    /// Google Ads.
    Google,
    /// YouTube ads.
    Youtube,
    /// X (Twitter) ads.
    Twitter,
    /// LinkedIn ads.
    Linkedin,
    /// Snapchat ads.
    Snapchat,
    /// Pinterest ads.
    Pinterest,
    /// Email campaigns.
    Email,
    /// SMS campaigns.
    Sms,
    /// Any other source, named by the rule's `source_name`.
    Custom,
}

impl RulePlatform {
    /// Every platform, as the API names them.
    pub const ALL: [RulePlatform; 10] = [
        RulePlatform::Tiktok,
        RulePlatform::Google,
        RulePlatform::Youtube,
        RulePlatform::Twitter,
        RulePlatform::Linkedin,
        RulePlatform::Snapchat,
        RulePlatform::Pinterest,
        RulePlatform::Email,
        RulePlatform::Sms,
        RulePlatform::Custom,
    ];

    /// The name as it appears in JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            RulePlatform::Tiktok => "tiktok",
            RulePlatform::Google => "google",
            RulePlatform::Youtube => "youtube",
            RulePlatform::Twitter => "twitter",
            RulePlatform::Linkedin => "linkedin",
            RulePlatform::Snapchat => "snapchat",
            RulePlatform::Pinterest => "pinterest",
            RulePlatform::Email => "email",
            RulePlatform::Sms => "sms",
            RulePlatform::Custom => "custom",
        }
    }

    /// The platform a request names.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == value)
    }
}

impl fmt::Display for RulePlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a rule's pattern is compared with the (normalised) message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// The pattern occurs anywhere in the message.
    Contains,
    /// The whole message is the pattern.
    Exact,
    /// The message starts with the pattern.
    Prefix,
    /// Rust `regex` syntax, unanchored, against the whitespace-normalised (not folded) message;
    /// case-insensitive through the regex's own Unicode case folding unless `case_sensitive`.
    Regex,
}

impl MatchKind {
    /// Every match kind, as the API names them.
    pub const ALL: [MatchKind; 4] = [
        MatchKind::Contains,
        MatchKind::Exact,
        MatchKind::Prefix,
        MatchKind::Regex,
    ];

    /// The kind's name in the API.
    pub fn as_str(&self) -> &'static str {
        match self {
            MatchKind::Contains => "contains",
            MatchKind::Exact => "exact",
            MatchKind::Prefix => "prefix",
            MatchKind::Regex => "regex",
        }
    }

    /// The kind a request names.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == value)
    }
}

impl fmt::Display for MatchKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `match` object of a rule. The pattern is stored as the admin typed it; normalisation
/// happens when rules are compiled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleMatch {
    /// How `pattern` is compared with the text.
    pub kind: MatchKind,
    /// The text or regex to look for.
    pub pattern: String,
    /// Whether case counts; off by default.
    #[serde(default)]
    pub case_sensitive: bool,
}

impl RuleMatch {
    /// The checks matching depends on (non-empty pattern, a regex that compiles within
    /// [`REGEX_SIZE_LIMIT`]), without the length limit. Compilation re-runs them on stored rules.
    pub(crate) fn check_compilable(&self) -> Result<(), RuleError> {
        match self.kind {
            MatchKind::Regex => {
                if self.pattern.trim().is_empty() {
                    return Err(RuleError::new("match.pattern", "must not be empty"));
                }
                build_regex(&self.pattern, self.case_sensitive).map(|_| ())
            }
            MatchKind::Contains | MatchKind::Exact | MatchKind::Prefix => {
                if normalize(&self.pattern, false).is_empty() {
                    return Err(RuleError::new("match.pattern", "must not be empty"));
                }
                Ok(())
            }
        }
    }

    fn validate(&self) -> Result<(), RuleError> {
        let chars = self.pattern.chars().count();
        if chars > MAX_PATTERN_CHARS {
            return Err(RuleError::new(
                "match.pattern",
                format!("must be at most {MAX_PATTERN_CHARS} characters, got {chars}"),
            ));
        }
        self.check_compilable()
    }
}

/// Compiles one `regex` rule alone, with the size limit, naming the field on failure.
pub(crate) fn build_regex(pattern: &str, case_sensitive: bool) -> Result<regex::Regex, RuleError> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(!case_sensitive)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(regex_error)
}

/// A regex crate error as a validation error on the pattern.
pub(crate) fn regex_error(error: regex::Error) -> RuleError {
    match error {
        regex::Error::CompiledTooBig(limit) => RuleError::new(
            "match.pattern",
            format!(
                "regex is too complex: it compiles to more than {limit} bytes (a Unicode class \
                 such as \\w costs about 50 KB per repetition; prefer + or [a-z0-9])"
            ),
        ),
        other => RuleError::new("match.pattern", format!("invalid regex: {other}")),
    }
}

/// A stored rule: what the admin set (`settings`, flattened into the same JSON object) under
/// the id and times the server owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// The rule's ULID.
    pub id: RuleId,
    /// The instance whose contacts it applies to.
    pub instance_id: InstanceId,
    /// Everything the admin sets: name, platform, match, campaign, ad, priority, enabled.
    #[serde(flatten)]
    pub settings: RuleDraft,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was last changed.
    pub updated_at: Timestamp,
}

impl Rule {
    /// Evaluation order: ascending `priority`, then oldest `created_at`, then `id`, so that the
    /// order is total and the same on every machine.
    pub fn evaluation_cmp(&self, other: &Rule) -> Ordering {
        (self.settings.priority, self.created_at, &self.id).cmp(&(
            other.settings.priority,
            other.created_at,
            &other.id,
        ))
    }
}

/// Sorts rules into evaluation order (see [`Rule::evaluation_cmp`]), disabled ones included,
/// as `GET …/rules` lists them.
pub fn sort_in_evaluation_order(rules: &mut [Rule]) {
    rules.sort_by(Rule::evaluation_cmp);
}

/// Why a rule was refused: the offending field (`match.pattern`, `platform`, …, or `body` when
/// the request is not a JSON object) and a message for the admin.
pub use crate::fields::FieldError as RuleError;

/// What a client sends to create (`POST`) or replace (`PUT`) a rule, and what a stored rule
/// holds of it. [`RuleDraft::from_json`] is the way in from a request: it parses and validates,
/// so a draft it returns can always become a rule (deserialising is for stored rules only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleDraft {
    /// The admin's name for the rule.
    pub name: String,
    /// The source the rule attributes contacts to.
    pub platform: RulePlatform,
    /// A name for the source, e.g. for a `custom` platform.
    pub source_name: Option<String>,
    /// What the first message must contain or be.
    #[serde(rename = "match")]
    pub text_match: RuleMatch,
    /// The campaign a match attributes.
    pub campaign: Option<String>,
    /// The ad a match attributes.
    pub ad: Option<String>,
    /// Lower is evaluated first.
    pub priority: i64,
    /// Whether the rule takes part in matching.
    pub enabled: bool,
}

const DRAFT_FIELDS: [&str; 8] = [
    "name",
    "platform",
    "source_name",
    "match",
    "campaign",
    "ad",
    "priority",
    "enabled",
];
/// Fields of a stored rule that a client may send back unchanged (a `GET` body edited and
/// `PUT` back); they are ignored, the server owns them.
const SERVER_FIELDS: [&str; 4] = ["id", "instance_id", "created_at", "updated_at"];
const MATCH_FIELDS: [&str; 3] = ["kind", "pattern", "case_sensitive"];

impl RuleDraft {
    /// Parses and validates a request body.
    ///
    /// Unknown fields are refused, naming the field (`"prority"` or `"match.case_sensitve"`
    /// would otherwise be silently dropped and the rule would not do what the admin meant);
    /// `id`, `instance_id`, `created_at` and `updated_at` are accepted and ignored. `null` is the
    /// same as leaving a field out. Strings are trimmed; an empty `source_name`, `campaign` or
    /// `ad` becomes `null`. The pattern is kept as typed.
    pub fn from_json(body: &[u8]) -> Result<RuleDraft, RuleError> {
        let object = json_object(body)?;
        reject_unknown(&object, "", &DRAFT_FIELDS, &SERVER_FIELDS)?;

        let name = match present(&object, "name") {
            None => return Err(RuleError::new("name", "is required")),
            Some(Value::String(name)) => name.trim().to_owned(),
            Some(_) => return Err(RuleError::new("name", "must be a string")),
        };

        let platform = match present(&object, "platform") {
            None => return Err(RuleError::new("platform", "is required")),
            Some(value) => value
                .as_str()
                .and_then(RulePlatform::parse)
                .ok_or_else(|| {
                    RuleError::new(
                        "platform",
                        format!(
                            "must be one of {}",
                            list(&RulePlatform::ALL.map(|p| p.as_str()))
                        ),
                    )
                })?,
        };

        let text_match = match present(&object, "match") {
            None => return Err(RuleError::new("match", "is required")),
            Some(Value::Object(text_match)) => parse_match(text_match)?,
            Some(_) => return Err(RuleError::new("match", "must be an object")),
        };

        let priority = match present(&object, "priority") {
            None => DEFAULT_PRIORITY,
            Some(value) => value.as_i64().ok_or_else(priority_error)?,
        };
        let enabled = match present(&object, "enabled") {
            None => true,
            Some(value) => value
                .as_bool()
                .ok_or_else(|| RuleError::new("enabled", "must be true or false"))?,
        };

        let draft = RuleDraft {
            name,
            platform,
            source_name: optional_string(&object, "source_name")?,
            text_match,
            campaign: optional_string(&object, "campaign")?,
            ad: optional_string(&object, "ad")?,
            priority,
            enabled,
        };
        draft.validate()?;
        Ok(draft)
    }

    /// The checks [`RuleDraft::from_json`] runs, for a draft built by hand.
    pub fn validate(&self) -> Result<(), RuleError> {
        if self.name.trim().is_empty() {
            return Err(RuleError::new("name", "must not be empty"));
        }
        check_label("name", &self.name)?;
        for (field, value) in [
            ("source_name", &self.source_name),
            ("campaign", &self.campaign),
            ("ad", &self.ad),
        ] {
            if let Some(value) = value {
                check_label(field, value)?;
            }
        }
        let has_source_name = self
            .source_name
            .as_deref()
            .is_some_and(|s| !s.trim().is_empty());
        if self.platform == RulePlatform::Custom && !has_source_name {
            return Err(RuleError::new(
                "source_name",
                "is required when platform is custom",
            ));
        }
        if !(MIN_PRIORITY..=MAX_PRIORITY).contains(&self.priority) {
            return Err(priority_error());
        }
        self.text_match.validate()
    }

    /// The stored rule this draft becomes. On `PUT`, pass the existing `id` and `created_at`
    /// (a replaced rule keeps its place among equal priorities).
    pub fn into_rule(
        self,
        id: RuleId,
        instance_id: InstanceId,
        created_at: Timestamp,
        updated_at: Timestamp,
    ) -> Rule {
        Rule {
            id,
            instance_id,
            settings: self,
            created_at,
            updated_at,
        }
    }
}

fn parse_match(object: &Map<String, Value>) -> Result<RuleMatch, RuleError> {
    reject_unknown(object, "match.", &MATCH_FIELDS, &[])?;
    let kind = match present(object, "kind") {
        None => return Err(RuleError::new("match.kind", "is required")),
        Some(value) => value.as_str().and_then(MatchKind::parse).ok_or_else(|| {
            RuleError::new(
                "match.kind",
                format!(
                    "must be one of {}",
                    list(&MatchKind::ALL.map(|k| k.as_str()))
                ),
            )
        })?,
    };
    let pattern = match present(object, "pattern") {
        None => return Err(RuleError::new("match.pattern", "is required")),
        Some(Value::String(pattern)) => pattern.clone(),
        Some(_) => return Err(RuleError::new("match.pattern", "must be a string")),
    };
    let case_sensitive = match present(object, "case_sensitive") {
        None => false,
        Some(value) => value
            .as_bool()
            .ok_or_else(|| RuleError::new("match.case_sensitive", "must be true or false"))?,
    };
    Ok(RuleMatch {
        kind,
        pattern,
        case_sensitive,
    })
}

fn check_label(field: &str, value: &str) -> Result<(), RuleError> {
    let chars = value.chars().count();
    if chars > MAX_LABEL_CHARS {
        return Err(RuleError::new(
            field,
            format!("must be at most {MAX_LABEL_CHARS} characters, got {chars}"),
        ));
    }
    Ok(())
}

fn priority_error() -> RuleError {
    RuleError::new(
        "priority",
        format!("must be an integer from {MIN_PRIORITY} to {MAX_PRIORITY}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn draft(body: Value) -> Result<RuleDraft, RuleError> {
        RuleDraft::from_json(body.to_string().as_bytes())
    }

    fn valid() -> Value {
        json!({
            "name": "TikTok summer", "platform": "tiktok",
            "match": {"kind": "contains", "pattern": "TikTok ad"},
            "campaign": "summer-2026", "ad": "video-a", "priority": 10
        })
    }

    fn with(mut body: Value, pointer: &str, value: Value) -> Value {
        let (parent, field) = pointer.rsplit_once('/').unwrap();
        body.pointer_mut(parent).unwrap()[field] = value;
        body
    }

    fn without(mut body: Value, pointer: &str) -> Value {
        let (parent, field) = pointer.rsplit_once('/').unwrap();
        body.pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove(field);
        body
    }

    #[test]
    fn a_valid_draft_becomes_the_documented_json() {
        let draft = draft(valid()).unwrap();
        assert_eq!(draft.priority, 10);
        assert!(draft.enabled);
        assert!(!draft.text_match.case_sensitive);
        let at = Timestamp::from_unix_seconds(1_763_976_000).unwrap();
        let rule = draft.into_rule(
            RuleId::parse("01JD5X1Z4Q8M3N6P7R9S0T2V4W").unwrap(),
            InstanceId::parse("106540352242922").unwrap(),
            at,
            at,
        );
        let json = serde_json::to_value(&rule).unwrap();
        assert_eq!(
            json,
            json!({
                "id": "01JD5X1Z4Q8M3N6P7R9S0T2V4W", "instance_id": "106540352242922",
                "name": "TikTok summer", "platform": "tiktok", "source_name": null,
                "match": {"kind": "contains", "pattern": "TikTok ad", "case_sensitive": false},
                "campaign": "summer-2026", "ad": "video-a", "priority": 10, "enabled": true,
                "created_at": "2025-11-24T09:20:00.000Z", "updated_at": "2025-11-24T09:20:00.000Z"
            })
        );
        assert_eq!(serde_json::from_value::<Rule>(json).unwrap(), rule);
    }

    #[test]
    fn defaults_nulls_trimming_and_server_fields() {
        let body = json!({
            "id": "ignored", "created_at": "ignored", "updated_at": null, "instance_id": 1,
            "name": "  Custom  ", "platform": "custom", "source_name": " Newsletter ",
            "match": {"kind": "regex", "pattern": "promo\\s+\\d+", "case_sensitive": true},
            "campaign": "", "ad": null, "priority": null, "enabled": false
        });
        let draft = draft(body).unwrap();
        assert_eq!(draft.name, "Custom");
        assert_eq!(draft.source_name.as_deref(), Some("Newsletter"));
        assert_eq!(draft.campaign, None);
        assert_eq!(draft.ad, None);
        assert_eq!(draft.priority, DEFAULT_PRIORITY);
        assert!(!draft.enabled);
        assert!(draft.text_match.case_sensitive);
        assert_eq!(draft.text_match.kind, MatchKind::Regex);
    }

    #[test]
    fn every_validation_error_names_its_field() {
        let long = "x".repeat(MAX_PATTERN_CHARS + 1);
        let cases: Vec<(Value, &str, &str)> = vec![
            (json!([1, 2]), "body", "object"),
            (json!("text"), "body", "object"),
            (without(valid(), "/name"), "name", "required"),
            (with(valid(), "/name", json!("   ")), "name", "empty"),
            (
                with(valid(), "/name", json!("n".repeat(201))),
                "name",
                "200",
            ),
            (with(valid(), "/name", json!(5)), "name", "string"),
            (without(valid(), "/platform"), "platform", "required"),
            (
                with(valid(), "/platform", json!("facebook")),
                "platform",
                "tiktok, google",
            ),
            (
                with(valid(), "/platform", json!("TikTok")),
                "platform",
                "custom",
            ),
            (
                with(valid(), "/platform", json!("custom")),
                "source_name",
                "custom",
            ),
            (
                with(
                    with(valid(), "/platform", json!("custom")),
                    "/source_name",
                    json!(" "),
                ),
                "source_name",
                "custom",
            ),
            (
                with(valid(), "/source_name", json!(7)),
                "source_name",
                "string",
            ),
            (
                with(valid(), "/campaign", json!("c".repeat(201))),
                "campaign",
                "200",
            ),
            (with(valid(), "/ad", json!(["a"])), "ad", "string"),
            (without(valid(), "/match"), "match", "required"),
            (
                with(valid(), "/match", json!("contains")),
                "match",
                "object",
            ),
            (without(valid(), "/match/kind"), "match.kind", "required"),
            (
                with(valid(), "/match/kind", json!("glob")),
                "match.kind",
                "contains, exact, prefix, regex",
            ),
            (
                without(valid(), "/match/pattern"),
                "match.pattern",
                "required",
            ),
            (
                with(valid(), "/match/pattern", json!("")),
                "match.pattern",
                "empty",
            ),
            (
                with(valid(), "/match/pattern", json!(" \t\n ")),
                "match.pattern",
                "empty",
            ),
            (
                with(valid(), "/match/pattern", json!(12)),
                "match.pattern",
                "string",
            ),
            (
                with(valid(), "/match/pattern", json!(long)),
                "match.pattern",
                "500",
            ),
            (
                with(valid(), "/match/case_sensitive", json!("yes")),
                "match.case_sensitive",
                "true or false",
            ),
            (
                with(valid(), "/match/case_sensitve", json!(true)),
                "match.case_sensitve",
                "not a known field",
            ),
            (
                with(valid(), "/prority", json!(1)),
                "prority",
                "not a known field",
            ),
            (
                with(valid(), "/priority", json!(1_000_001)),
                "priority",
                "-1000000 to 1000000",
            ),
            (
                with(valid(), "/priority", json!(-1_000_001)),
                "priority",
                "integer",
            ),
            (
                with(valid(), "/priority", json!(1.5)),
                "priority",
                "integer",
            ),
            (
                with(valid(), "/priority", json!("1")),
                "priority",
                "integer",
            ),
            (
                with(valid(), "/enabled", json!("true")),
                "enabled",
                "true or false",
            ),
        ];
        for (body, field, message) in cases {
            let error = draft(body.clone()).expect_err(&body.to_string());
            assert_eq!(error.field, field, "{body}: {error}");
            assert!(error.message.contains(message), "{body}: {error}");
        }
        let error = RuleDraft::from_json(b"{not json").unwrap_err();
        assert_eq!(error.field, "body");
        assert!(error.message.contains("JSON"));
    }

    #[test]
    fn pattern_length_counts_characters_not_bytes() {
        let accented = "é".repeat(MAX_PATTERN_CHARS); // 1,000 bytes
        assert!(draft(with(valid(), "/match/pattern", json!(accented))).is_ok());
        let over = "é".repeat(MAX_PATTERN_CHARS + 1);
        let error = draft(with(valid(), "/match/pattern", json!(over))).unwrap_err();
        assert_eq!(error.field, "match.pattern");
    }

    #[test]
    fn regex_errors_carry_the_regex_crate_text() {
        let regex = |pattern: &str| {
            let body = with(valid(), "/match/kind", json!("regex"));
            draft(with(body, "/match/pattern", json!(pattern)))
        };
        assert!(regex(r"promo\s*code\s*\d{3}").is_ok());
        // Reasonable Unicode-heavy patterns stay under the limit, case-insensitive too.
        assert!(regex(r"^(?:olá|oi|bom dia)\W+vi\s+(?:seu|o)\s+anúncio\b.*\w+").is_ok());
        assert!(regex(r"code\s*\w{15}\b").is_ok());
        assert!(regex(r".{100}").is_ok());

        let error = regex("(unclosed").unwrap_err();
        assert_eq!(error.field, "match.pattern");
        assert!(error.message.starts_with("invalid regex:"), "{error}");
        assert!(error.message.contains("unclosed group"), "{error}");

        let error = regex(r"\w{1000}{1000}").unwrap_err();
        assert_eq!(error.field, "match.pattern");
        assert!(error.message.contains("too complex"), "{error}");
        let error = regex(r"\w{1,30}").unwrap_err();
        assert!(error.message.contains("too complex"), "{error}");

        assert_eq!(regex("   ").unwrap_err().field, "match.pattern");
    }

    #[test]
    fn evaluation_order_is_priority_then_age_then_id() {
        let at = |s| Timestamp::from_unix_seconds(s).unwrap();
        let make = |id: &str, priority, created, enabled| {
            let mut rule = draft(valid()).unwrap().into_rule(
                RuleId::parse(id).unwrap(),
                InstanceId::parse("1").unwrap(),
                at(created),
                at(created),
            );
            rule.settings.priority = priority;
            rule.settings.enabled = enabled;
            rule
        };
        let mut rules = vec![
            make("01JD5X1Z4Q8M3N6P7R9S0T2V4B", 10, 5, true),
            make("01JD5X1Z4Q8M3N6P7R9S0T2V4A", 10, 5, false),
            make("01JD5X1Z4Q8M3N6P7R9S0T2V4C", 10, 1, true),
            make("01JD5X1Z4Q8M3N6P7R9S0T2V4D", -5, 9, true),
        ];
        sort_in_evaluation_order(&mut rules);
        let ids: Vec<&str> = rules.iter().map(|r| &r.id.as_str()[24..]).collect();
        assert_eq!(ids, ["4D", "4C", "4A", "4B"]);
    }

    #[test]
    fn platforms_and_kinds_round_trip() {
        for platform in RulePlatform::ALL {
            let json = serde_json::to_string(&platform).unwrap();
            assert_eq!(json, format!("\"{}\"", platform.as_str()));
            assert_eq!(RulePlatform::parse(platform.as_str()), Some(platform));
        }
        for kind in MatchKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(MatchKind::parse(kind.as_str()), Some(kind));
        }
        let stored: RuleMatch =
            serde_json::from_str(r#"{"kind": "exact", "pattern": "hi"}"#).unwrap();
        assert!(!stored.case_sensitive);
    }
}
