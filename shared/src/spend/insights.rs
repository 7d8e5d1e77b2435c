//! Meta's Insights API, the pure half: the request for an ad account's daily spend per ad
//! over a window, and each answer page read into spend rows, the next page's URL, or the
//! error Meta gave. The HTTP calls, paging and retries are the pull's (`functions/spend`).

use crate::revenue::money::Currency;
use crate::spend::{
    SpendRow, checked_ad_id, checked_count, checked_day, checked_name, checked_spend,
};
use serde::Deserialize;

/// The fields asked for, in the order Meta's documentation lists them.
pub const FIELDS: &str = "ad_id,ad_name,adset_id,adset_name,campaign_id,campaign_name,spend,impressions,clicks,account_currency";

/// Days one pull reads when not told otherwise, and at most.
pub const DEFAULT_DAYS: u32 = 7;
/// Insights keeps daily rows this far back in one request's window.
pub const MAX_DAYS: u32 = 90;

/// The first page's URL: `GET {base}/{ad_account_id}/insights?level=ad&time_increment=1&
/// time_range={"since","until"}&fields=…&access_token=…` (`until` and `since` are
/// `YYYY-MM-DD`). The token is in the query, as the Graph API takes it; the URL is never
/// logged.
pub fn first_page_url(
    base: &str,
    ad_account_id: &str,
    since: &str,
    until: &str,
    token: &str,
) -> String {
    let range = serde_json::json!({ "since": since, "until": until }).to_string();
    let query = form_urlencoded_pairs(&[
        ("level", "ad"),
        ("time_increment", "1"),
        ("time_range", &range),
        ("fields", FIELDS),
        ("access_token", token),
    ]);
    format!(
        "{}/{}/insights?{query}",
        base.trim_end_matches('/'),
        ad_account_id
    )
}

fn form_urlencoded_pairs(pairs: &[(&str, &str)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

/// Most rows one pull writes: 90 days of some 500 ads.
pub const MAX_PULL_ROWS: usize = 50_000;

/// Why a pull wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// No ad account or no token is configured.
    #[error(
        "the Meta pull is not configured: set META_AD_ACCOUNT_ID and the META_ACCESS_TOKEN secret"
    )]
    NotConfigured,
    /// Meta refused, or kept refusing after the retries.
    #[error(transparent)]
    Meta(#[from] InsightsError),
    /// No answer from the Graph API.
    #[error("the Graph API could not be reached: {0}")]
    Unreachable(String),
    /// The window holds more rows than one pull writes.
    #[error("the window holds more than {MAX_PULL_ROWS} rows; pull fewer days")]
    TooManyRows,
    /// Storing the rows failed; nothing is half-counted (rows replace themselves on a rerun).
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// What one answer page holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Its rows.
    pub rows: Vec<SpendRow>,
    /// The next page's URL, as `paging.next` gives it.
    pub next: Option<String>,
}

/// Why a page gives no rows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InsightsError {
    /// Meta refused the token (expired, revoked, lacking `ads_read`): code 190, or an
    /// `OAuthException`, or 401/403. Retrying does not help; a person must renew it.
    #[error("Meta refused the access token (code {code}): {message}; renew META_ACCESS_TOKEN")]
    Token {
        /// Meta's error code.
        code: i64,
        /// Meta's message.
        message: String,
    },
    /// Too many calls (HTTP 429, codes 4, 17, 32, 613, 80000-80014): retry after a pause.
    #[error("Meta's rate limit (code {code}): {message}")]
    RateLimited {
        /// Meta's error code (0 for a bare 429).
        code: i64,
        /// Meta's message.
        message: String,
    },
    /// Another error, or an answer that is not an Insights page.
    #[error("Meta answered {status}: {message}")]
    Other {
        /// The HTTP status.
        status: u16,
        /// Meta's message, or what did not parse.
        message: String,
    },
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    data: Vec<InsightsRow>,
    #[serde(default)]
    paging: Option<Paging>,
    #[serde(default)]
    error: Option<GraphError>,
}

#[derive(Deserialize)]
struct Paging {
    next: Option<String>,
}

#[derive(Deserialize)]
struct GraphError {
    #[serde(default)]
    message: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    code: i64,
}

#[derive(Deserialize)]
struct InsightsRow {
    ad_id: Option<String>,
    ad_name: Option<String>,
    adset_name: Option<String>,
    campaign_name: Option<String>,
    spend: Option<String>,
    impressions: Option<String>,
    clicks: Option<String>,
    account_currency: Option<String>,
    date_start: Option<String>,
}

fn is_rate_limit(code: i64) -> bool {
    matches!(code, 4 | 17 | 32 | 613 | 80_000..=80_014)
}

fn classify(status: u16, error: Option<GraphError>) -> InsightsError {
    let (code, kind, message) = match error {
        Some(error) => (error.code, error.kind, error.message),
        None => (0, String::new(), format!("HTTP {status}")),
    };
    let message: String = message.chars().take(300).collect();
    if code == 190
        || kind == "OAuthException" && !is_rate_limit(code)
        || matches!(status, 401 | 403) && !is_rate_limit(code)
    {
        InsightsError::Token { code, message }
    } else if status == 429 || is_rate_limit(code) {
        InsightsError::RateLimited { code, message }
    } else {
        InsightsError::Other { status, message }
    }
}

fn row_of(index: usize, row: InsightsRow) -> Result<SpendRow, String> {
    let field = |name: &str| format!("data[{index}].{name}");
    let text = |value: Option<String>| value.unwrap_or_default();
    let count = |name: &str, value: Option<String>| -> Result<u64, String> {
        let value = text(value);
        if value.is_empty() {
            return Ok(0);
        }
        let parsed = value
            .parse()
            .map_err(|_| format!("{}: not a whole number", field(name)))?;
        checked_count(&field(name), parsed).map_err(|e| e.to_string())
    };
    let ad_name = checked_name(&field("ad_name"), &text(row.ad_name)).map_err(|e| e.to_string())?;
    Ok(SpendRow {
        date: checked_day(&field("date_start"), &text(row.date_start))
            .map_err(|e| e.to_string())?,
        platform: "meta".to_owned(),
        campaign: checked_name(&field("campaign_name"), &text(row.campaign_name))
            .map_err(|e| e.to_string())?,
        ad_set: checked_name(&field("adset_name"), &text(row.adset_name))
            .map_err(|e| e.to_string())?,
        ad_id: checked_ad_id(&field("ad_id"), &text(row.ad_id)).map_err(|e| e.to_string())?,
        ad_name: (!ad_name.is_empty()).then_some(ad_name),
        spend: checked_spend(&field("spend"), &text(row.spend).if_empty("0"))
            .map_err(|e| e.to_string())?,
        currency: Currency::parse(&text(row.account_currency))
            .map_err(|e| format!("{}: {e}", field("account_currency")))?,
        impressions: count("impressions", row.impressions)?,
        clicks: count("clicks", row.clicks)?,
    })
}

trait IfEmpty {
    fn if_empty(self, default: &str) -> String;
}

impl IfEmpty for String {
    fn if_empty(self, default: &str) -> String {
        if self.is_empty() {
            default.to_owned()
        } else {
            self
        }
    }
}

/// Reads one answer: its HTTP status and body. A row that does not hold fails the page (and so
/// the pull: it writes all of a window or nothing).
pub fn parse_page(status: u16, body: &[u8]) -> Result<Page, InsightsError> {
    let answer: Result<Answer, _> = serde_json::from_slice(body);
    let answer = match answer {
        Ok(answer) if answer.error.is_none() && (200..300).contains(&status) => answer,
        Ok(answer) => return Err(classify(status, answer.error)),
        Err(_) if !(200..300).contains(&status) => return Err(classify(status, None)),
        Err(error) => {
            return Err(InsightsError::Other {
                status,
                message: format!("not an Insights page: {error}"),
            });
        }
    };
    let rows = answer
        .data
        .into_iter()
        .enumerate()
        .map(|(index, row)| row_of(index, row))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|message| InsightsError::Other { status, message })?;
    Ok(Page {
        rows,
        next: answer.paging.and_then(|paging| paging.next),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_gives_rows_and_the_next_url() {
        let page = parse_page(
            200,
            br#"{"data":[{"ad_id":"120","ad_name":"Video A","adset_name":"S","campaign_name":"C","spend":"5339.5","impressions":"10","clicks":"2","account_currency":"BRL","date_start":"2026-11-24","date_stop":"2026-11-24"}],"paging":{"next":"http://x/next"}}"#,
        )
        .unwrap();
        assert_eq!(page.rows[0].spend.to_string(), "5339.50");
        assert_eq!(
            page.rows[0].ad_names().unwrap().ad_set_name.as_deref(),
            Some("S")
        );
        assert_eq!(page.next.as_deref(), Some("http://x/next"));
    }

    #[test]
    fn errors_are_told_apart() {
        let token = br#"{"error":{"message":"Error validating access token","type":"OAuthException","code":190}}"#;
        assert!(matches!(
            parse_page(400, token),
            Err(InsightsError::Token { code: 190, .. })
        ));
        let limit = br#"{"error":{"message":"User request limit reached","type":"OAuthException","code":17}}"#;
        assert!(matches!(
            parse_page(400, limit),
            Err(InsightsError::RateLimited { code: 17, .. })
        ));
        assert!(matches!(
            parse_page(429, b""),
            Err(InsightsError::RateLimited { .. })
        ));
        assert!(matches!(
            parse_page(500, b"oops"),
            Err(InsightsError::Other { status: 500, .. })
        ));
    }
}
