//! The Meta Insights pull, the I/O half (the requests and answers are `shared::spend::insights`):
//! reads every page of an ad account's daily spend per ad over the last N days, retrying
//! rate-limit answers with a growing pause, then writes the rows in one store batch. Every page
//! is read and checked before the first write, so a token error, a rate limit that outlasts the
//! retries or a page that does not parse writes nothing.

use bytes::Bytes;
use chrono::NaiveDate;
use shared::https::{HttpClient, HttpError};
use shared::secret::Secret;
use shared::spend::insights::{self, InsightsError, MAX_PULL_ROWS, SyncError};
use shared::spend::store::SpendStore;
use shared::spend::{SpendRow, Upserted};
use std::time::Duration;

/// The Graph API's host, with the API version the fields were checked against.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.facebook.com/v21.0";
/// Pages one pull follows at most: far past 50,000 rows at Meta's page sizes.
const MAX_PAGES: usize = 2_000;
/// Longest wait for one answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// How rate-limit answers are retried: `attempts` tries in all, pausing `first_pause`, then
/// twice that, and so on (each pause drawn from its upper half, so parallel pulls spread out).
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The pause after the first refusal.
    pub first_pause: Duration,
}

impl Default for Retry {
    /// 4 tries over about 14 s: inside a Lambda run, and past Meta's short bursts limits.
    fn default() -> Self {
        Self {
            attempts: 4,
            first_pause: Duration::from_secs(2),
        }
    }
}

impl Retry {
    fn pause(&self, retry: u32) -> Duration {
        let ceiling = self
            .first_pause
            .saturating_mul(1 << retry.saturating_sub(1).min(10));
        ceiling.mul_f64(rand::random_range(0.5..=1.0))
    }
}

/// The status and body of `GET url`. The URL holds the token: it is never logged, and errors
/// are described without it.
async fn get(http: &HttpClient, url: &str) -> Result<(u16, Bytes), SyncError> {
    http.get(url)
        .await
        .map(|answer| (answer.status, answer.body))
        .map_err(|error| match error {
            HttpError::Timeout(_) => SyncError::Unreachable("no answer in 30 s".to_owned()),
            HttpError::Unreachable(reason) => SyncError::Unreachable(reason),
        })
}

/// Whether `next` is on the Graph URL's scheme, host and port.
fn same_origin(next: &str, graph_url: &str) -> bool {
    match (url::Url::parse(next), url::Url::parse(graph_url)) {
        (Ok(next), Ok(graph)) => next.origin() == graph.origin(),
        _ => false,
    }
}

/// Where and as whom the pull reads Insights.
#[derive(Clone)]
pub struct MetaSync {
    graph_url: String,
    ad_account_id: String,
    token: Secret,
    retry: Retry,
    http: HttpClient,
}

/// What a pull did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Pulled {
    /// First day read.
    pub since: String,
    /// Last day read.
    pub until: String,
    /// Answer pages read.
    pub pages: usize,
    /// Rows written.
    pub rows: usize,
    /// Rows new and rows replaced.
    #[serde(flatten)]
    pub upserted: Upserted,
}

impl MetaSync {
    /// Reads Insights of `ad_account_id` (`act_…`) under `graph_url` with `token`.
    pub fn new(graph_url: &str, ad_account_id: &str, token: Secret) -> Self {
        Self {
            graph_url: graph_url.trim_end_matches('/').to_owned(),
            ad_account_id: ad_account_id.to_owned(),
            token,
            retry: Retry::default(),
            http: HttpClient::new(ANSWER_TIMEOUT),
        }
    }

    /// From the environment (`META_AD_ACCOUNT_ID`, `META_GRAPH_URL`, the real host by default)
    /// and the token secret; `None` when either the account or the token is not set.
    pub fn from_env(token: Option<Secret>) -> Option<Self> {
        let account = shared::config::optional("META_AD_ACCOUNT_ID")?;
        let graph_url = shared::config::optional("META_GRAPH_URL")
            .unwrap_or_else(|| DEFAULT_GRAPH_URL.to_owned());
        Some(Self::new(&graph_url, &account, token?))
    }

    /// The same with other retry pauses (tests use short ones).
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// One page, retried while Meta answers with its rate limit.
    async fn page(&self, url: &str) -> Result<insights::Page, SyncError> {
        let mut attempt = 1;
        loop {
            let (status, body) = get(&self.http, url).await?;
            match insights::parse_page(status, &body) {
                Err(InsightsError::RateLimited { code, .. }) if attempt < self.retry.attempts => {
                    tracing::warn!(code, attempt, "Meta Insights rate limit; pausing");
                    tokio::time::sleep(self.retry.pause(attempt)).await;
                    attempt += 1;
                }
                answer => return Ok(answer?),
            }
        }
    }

    /// Pulls the `days` days up to `today` (both included) and writes them; see the module.
    pub async fn pull(
        &self,
        store: &dyn SpendStore,
        days: u32,
        today: NaiveDate,
    ) -> Result<Pulled, SyncError> {
        let since = today - chrono::Days::new(u64::from(days.max(1) - 1));
        let (since, until) = (
            since.format("%Y-%m-%d").to_string(),
            today.format("%Y-%m-%d").to_string(),
        );
        let mut url = insights::first_page_url(
            &self.graph_url,
            &self.ad_account_id,
            &since,
            &until,
            &String::from_utf8_lossy(self.token.expose()),
        );
        let mut rows: Vec<SpendRow> = Vec::new();
        let mut pages = 0;
        loop {
            let page = self.page(&url).await?;
            pages += 1;
            rows.extend(page.rows);
            if rows.len() > MAX_PULL_ROWS || pages > MAX_PAGES {
                return Err(SyncError::TooManyRows);
            }
            match page.next {
                // Only the configured host is followed: the next URL carries the token.
                Some(next) if same_origin(&next, &self.graph_url) => url = next,
                Some(_) => {
                    return Err(SyncError::Meta(InsightsError::Other {
                        status: 200,
                        message: "paging.next points away from the Graph URL".to_owned(),
                    }));
                }
                None => break,
            }
        }
        let upserted = store.upsert_spend(&rows).await?;
        tracing::info!(
            pages,
            rows = rows.len(),
            imported = upserted.imported,
            replaced = upserted.replaced,
            "Meta Insights pulled"
        );
        Ok(Pulled {
            since,
            until,
            pages,
            rows: rows.len(),
            upserted,
        })
    }
}
