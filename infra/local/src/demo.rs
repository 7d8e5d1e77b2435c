//! `local-server --demo`: a realistic week poured into an empty store through the engine's own
//! public routes (signed Meta deliveries, the widget's routes with its key and origin, tracked
//! links, postbacks, the admin API), so every dashboard page has something true to show. Every
//! request is a `oneshot` on the app the server then serves, so the data went through exactly
//! the checks live traffic goes through. Deterministic apart from "now": the week is laid out
//! backwards from it.

mod payloads;
mod week;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use shared::config::Secrets;
use shared::meta;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tower::ServiceExt;

pub use week::{INSTAGRAM, PAGE, WHATSAPP};

/// What the fill made that a reader of the data needs to find: the instances and the backfill.
#[derive(Debug, Clone)]
pub struct Filled {
    /// Every instance the week wrote to, WhatsApp's first.
    pub instances: Vec<&'static str>,
    /// The WhatsApp instance's backfill job, `done`.
    pub backfill_job_id: String,
}

/// A route that did not answer as the demo expected: which, and what it said.
#[derive(Debug)]
pub struct DemoError(String);

impl fmt::Display for DemoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "demo data: {}", self.0)
    }
}

impl std::error::Error for DemoError {}

/// The demo's data folder (`DEMO_DATA_DIR`, `./.data-demo` by default), emptied of the store a
/// previous `--demo` left, so a rerun starts afresh and nothing counts twice. Refuses the normal
/// data folder `data_dir`: the demo never writes into real data.
pub fn fresh_folder(demo_dir: Option<String>, data_dir: &Path) -> Result<PathBuf, DemoError> {
    let folder = PathBuf::from(demo_dir.unwrap_or_else(|| "./.data-demo".into()));
    let same = |a: &Path, b: &Path| {
        a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
    };
    if same(&folder, data_dir) {
        return Err(DemoError(format!(
            "DEMO_DATA_DIR is the data folder {}; choose another",
            data_dir.display()
        )));
    }
    let store = folder.join(STORE_FILE);
    match std::fs::remove_file(&store) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(DemoError(format!("cannot remove {}: {e}", store.display()))),
    }
    tracing::info!(
        "--demo fills a fresh demo folder, {} (each run starts afresh)",
        folder.display()
    );
    std::fs::create_dir_all(&folder)
        .map_err(|e| DemoError(format!("cannot create {}: {e}", folder.display())))?;
    Ok(folder)
}

/// The file the local server keeps its store in, inside its data folder (`main.rs` opens it).
const STORE_FILE: &str = "engine.redb";

/// Says where to look: the sign-in URL, the key (only when it is the development default: a
/// key from the environment is never logged) and the instances.
pub fn announce(filled: &Filled, base_url: &str, dev_admin_key: Option<&str>) {
    let key = dev_admin_key.map_or_else(
        || "your ADMIN_API_KEY".to_owned(),
        |key| format!("the key {key}"),
    );
    tracing::info!(
        "demo data ready: sign in at {base_url}/app/login with {key}, then open {base_url}/app/instances/{}/attribution (instances: {})",
        filled.instances[0],
        filled.instances.join(", ")
    );
}

/// Pours the week into the (empty) store behind `app`, signed and keyed with `secrets`, and
/// returns once the matcher and the backfill have settled.
pub async fn fill(
    app: &Router,
    secrets: &Secrets,
    now: DateTime<Utc>,
) -> Result<Filled, DemoError> {
    let week = week::week();
    let client = Client::new(app, secrets, now);
    let rules = format!("/instances/{WHATSAPP}/rules");
    for rule in &week.rules {
        client.admin(Method::POST, &rules, rule.clone()).await?;
    }
    let widget = client
        .admin(
            Method::POST,
            &format!("/instances/{WHATSAPP}/widget"),
            json!({"allowed_origins": [week::SHOP], "campaigns": week.widget_campaigns}),
        )
        .await?;
    let widget_key = widget["widget_key"]
        .as_str()
        .ok_or_else(|| DemoError("no widget_key".into()))?;

    for message in &week.whatsapp {
        client.whatsapp(&week, message, "").await?;
    }
    for (object, instance, threads) in [
        ("page", PAGE, &week.messenger),
        ("instagram", INSTAGRAM, &week.instagram),
    ] {
        for thread in threads {
            let at = client.at(thread.ago);
            client
                .deliver(&payloads::messaging(object, instance, thread, at))
                .await?;
        }
    }
    for instance in [WHATSAPP, PAGE, INSTAGRAM] {
        client.settled(instance).await?;
    }

    // The LinkedIn texts came before their rule: the backfill attributes them.
    client
        .admin(Method::POST, &rules, week.late_rule.clone())
        .await?;
    let backfill = format!("/instances/{WHATSAPP}/backfill");
    let preview = client
        .admin(Method::POST, &backfill, json!({"days": 7, "dry_run": true}))
        .await?;
    if preview["would_update"].as_u64().unwrap_or(0) == 0 {
        return Err(DemoError(format!(
            "the backfill preview would change nothing: {preview}"
        )));
    }
    let started = client
        .admin(
            Method::POST,
            &backfill,
            json!({"days": 7, "dry_run": false}),
        )
        .await?;
    let job_id = started["job_id"]
        .as_str()
        .ok_or_else(|| DemoError(format!("no job_id: {started}")))?;
    client
        .backfill_done(&format!("{backfill}/{job_id}"))
        .await?;

    for visit in &week.visits {
        client
            .widget(
                "/webhooks/widget",
                widget_key,
                payloads::visit(WHATSAPP, visit),
            )
            .await?;
    }
    let bridge = client
        .widget(
            "/webhooks/widget/ref",
            widget_key,
            payloads::visit(WHATSAPP, &week.bridged.visit),
        )
        .await?;
    let suffix = bridge["text_suffix"]
        .as_str()
        .ok_or_else(|| DemoError(format!("no text_suffix: {bridge}")))?;
    client
        .whatsapp(&week, &week.bridged.message, suffix)
        .await?;
    client.settled(WHATSAPP).await?;

    client.revenue(&week).await?;
    client.spend(&week).await?;
    Ok(Filled {
        instances: vec![WHATSAPP, PAGE, INSTAGRAM],
        backfill_job_id: job_id.to_owned(),
    })
}

/// One answer: status, headers and the JSON body (`null` when there is none).
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

/// The engine's routes, called in-process as their clients call them.
struct Client<'a> {
    app: &'a Router,
    secrets: &'a Secrets,
    admin_key: String,
    now: DateTime<Utc>,
}

/// How many times a wait reads its state before giving up, 25 ms apart: the in-process
/// matcher settles the week in well under a second.
const POLLS: usize = 800;

impl<'a> Client<'a> {
    fn new(app: &'a Router, secrets: &'a Secrets, now: DateTime<Utc>) -> Self {
        let admin_key =
            String::from_utf8_lossy(secrets.admin_keys.admin.current().expose()).into_owned();
        Self {
            app,
            secrets,
            admin_key,
            now,
        }
    }

    /// `ago` before now in unix seconds, never before the 7-day window's first UTC day, so that
    /// everything counts in the 7-day numbers.
    fn at(&self, ago: week::Ago) -> i64 {
        let first_day = (self.now - Duration::days(6))
            .date_naive()
            .and_hms_opt(0, 1, 0)
            .expect("a time of day")
            .and_utc();
        (self.now - Duration::days(ago.0) - Duration::minutes(ago.1))
            .max(first_day)
            .timestamp()
    }

    fn at_rfc3339(&self, ago: week::Ago) -> String {
        DateTime::from_timestamp(self.at(ago), 0)
            .expect("in range")
            .to_rfc3339()
    }

    async fn call(&self, request: Request<Body>) -> Result<Answer, DemoError> {
        let (what, path) = (request.method().clone(), request.uri().path().to_owned());
        let response = self
            .app
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20)
            .await
            .map_err(|e| DemoError(format!("{what} {path}: {e}")))?;
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        })
    }

    /// `call`, refusing any answer but a 2xx or a redirect.
    async fn expect_ok(&self, request: Request<Body>) -> Result<Answer, DemoError> {
        let what = format!("{} {}", request.method(), request.uri());
        let answer = self.call(request).await?;
        if answer.status.is_success() || answer.status.is_redirection() {
            Ok(answer)
        } else {
            Err(DemoError(format!(
                "{what} answered {}: {}",
                answer.status, answer.body
            )))
        }
    }

    fn request(method: Method, uri: &str) -> axum::http::request::Builder {
        // The click route hashes the peer address, as the server's listener gives it.
        Request::builder()
            .method(method)
            .uri(uri)
            .extension(ConnectInfo(SocketAddr::from(([203, 0, 113, 7], 50_000))))
    }

    fn json_request(builder: axum::http::request::Builder, body: &Value) -> Request<Body> {
        builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .expect("a valid request")
    }

    async fn admin(&self, method: Method, path: &str, body: Value) -> Result<Value, DemoError> {
        let builder = Self::request(method, path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.admin_key));
        Ok(self
            .expect_ok(Self::json_request(builder, &body))
            .await?
            .body)
    }

    async fn admin_get(&self, path: &str) -> Result<Value, DemoError> {
        let request = Self::request(Method::GET, path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.admin_key))
            .body(Body::empty())
            .expect("a valid request");
        Ok(self.expect_ok(request).await?.body)
    }

    /// A Meta delivery, signed with the app secret as Meta signs it.
    async fn deliver(&self, delivery: &Value) -> Result<(), DemoError> {
        let body = delivery.to_string();
        let request = Self::request(Method::POST, "/webhooks/meta")
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                meta::SIGNATURE_HEADER,
                meta::sign(&self.secrets.meta_app_secret, body.as_bytes()),
            )
            .body(Body::from(body))
            .expect("a valid request");
        let answer = self.expect_ok(request).await?;
        if answer.body["applied"].as_u64().unwrap_or(0) == 0 {
            return Err(DemoError(format!(
                "a delivery applied nothing: {}",
                answer.body
            )));
        }
        Ok(())
    }

    /// A WhatsApp message of the week, from its ad if it has one, at its time.
    async fn whatsapp(
        &self,
        week: &week::Week,
        message: &week::WhatsAppMessage,
        suffix: &str,
    ) -> Result<(), DemoError> {
        let ad = message.ad.as_ref().and_then(|ad| week.ads.get(ad));
        let at = self.at(message.ago);
        self.deliver(&payloads::whatsapp(WHATSAPP, message, ad, at, suffix))
            .await
    }

    /// A widget call from the shop's pages: the publishable key and an allowed origin.
    async fn widget(&self, path: &str, key: &str, body: Value) -> Result<Value, DemoError> {
        let builder = Self::request(Method::POST, path)
            .header("x-widget-key", key)
            .header(header::ORIGIN, week::SHOP);
        Ok(self
            .expect_ok(Self::json_request(builder, &body))
            .await?
            .body)
    }

    /// Waits until every contact of `instance` has its verdict: each new contact counts in one
    /// kind or in `unmatched`, none still waits for the matcher.
    async fn settled(&self, instance: &str) -> Result<(), DemoError> {
        let path = format!("/instances/{instance}/stats?days=7");
        for _ in 0..POLLS {
            let stats = self.admin_get(&path).await?;
            let counted = |key: &str| stats["by_kind"][key].as_u64().unwrap_or(0);
            let decided: u64 = ["meta_ad", "meta_post", "shortlink", "rule", "web"]
                .into_iter()
                .map(counted)
                .sum::<u64>()
                + stats["unmatched"].as_u64().unwrap_or(0);
            if Some(decided) == stats["new_contacts"].as_u64() {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        Err(DemoError(format!("the matcher did not settle {instance}")))
    }

    async fn backfill_done(&self, path: &str) -> Result<(), DemoError> {
        for _ in 0..POLLS {
            let job = self.admin_get(path).await?;
            match job["status"].as_str() {
                Some("done") => return Ok(()),
                Some("failed") => return Err(DemoError(format!("the backfill failed: {job}"))),
                _ => tokio::time::sleep(std::time::Duration::from_millis(25)).await,
            }
        }
        Err(DemoError("the backfill did not finish".into()))
    }

    /// The week's spend rows (`POST /spend`), each day's dated back from today.
    async fn spend(&self, week: &week::Week) -> Result<(), DemoError> {
        let today = self.now.date_naive();
        let rows: Vec<Value> = week
            .spend
            .iter()
            .flat_map(|line| {
                let last = line.daily.len() as u64;
                line.daily
                    .iter()
                    .zip(1..)
                    .map(move |((spend, impressions, clicks), n)| {
                        let date = today - chrono::Days::new(last - n);
                        json!({
                            "date": date.format("%Y-%m-%d").to_string(),
                            "platform": line.platform, "campaign": line.campaign,
                            "ad_set": line.ad_set, "ad_id": line.ad_id, "ad_name": line.ad_name,
                            "spend": spend, "currency": line.currency,
                            "impressions": impressions, "clicks": clicks,
                        })
                    })
            })
            .collect();
        self.admin(Method::POST, "/spend", Value::Array(rows))
            .await?;
        Ok(())
    }

    /// Offers, sends with tracked links, clicks on them, postbacks: attributed ones, one
    /// delivered twice, one naming a click that never was.
    async fn revenue(&self, week: &week::Week) -> Result<(), DemoError> {
        for offer in &week.offers {
            self.admin(Method::POST, "/offers", offer.clone()).await?;
        }
        let sends: Vec<Value> = week
            .sends
            .iter()
            .map(|send| payloads::send(WHATSAPP, send, &self.at_rfc3339(send.ago)))
            .collect();
        let stored = self
            .admin(Method::POST, "/sends", Value::Array(sends))
            .await?;
        let mut first_clicks = Vec::new();
        for (send, stored) in week
            .sends
            .iter()
            .zip(stored["sends"].as_array().into_iter().flatten())
        {
            let code = stored["code"]
                .as_str()
                .ok_or_else(|| DemoError(format!("no code: {stored}")))?;
            let mut clicks = Vec::new();
            for _ in 0..send.clicks {
                let request = Self::request(Method::GET, &format!("/c/{code}"))
                    .header(
                        header::USER_AGENT,
                        "Mozilla/5.0 (Linux; Android 14) Mobile Safari/537.36",
                    )
                    .body(Body::empty())
                    .expect("a valid request");
                let answer = self.expect_ok(request).await?;
                let location = answer
                    .headers
                    .get(header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .unwrap_or_default();
                clicks.push(
                    payloads::click_id_of(location)
                        .map(str::to_owned)
                        .ok_or_else(|| DemoError(format!("no click id in {location:?}")))?,
                );
            }
            first_clicks.push(clicks.into_iter().next());
        }
        for postback in &week.postbacks {
            let (click, offer) = match postback.send {
                Some(send) => (
                    first_clicks[send]
                        .as_deref()
                        .ok_or_else(|| DemoError(format!("send {send} has no click")))?,
                    week.sends[send].offer_id.as_str(),
                ),
                None => (week.unknown_click.as_str(), ""),
            };
            let currency = week
                .offers
                .iter()
                .find(|o| o["offer_id"] == offer)
                .and_then(|o| o["currency"].as_str())
                .unwrap_or("USD");
            let conversion = (
                postback.conversion_id.as_str(),
                postback.amount.as_str(),
                currency,
            );
            self.postback(&postback.network, click, conversion, &postback.status)
                .await?;
        }
        Ok(())
    }

    async fn postback(
        &self,
        network: &str,
        click: &str,
        conversion: (&str, &str, &str),
        status: &str,
    ) -> Result<(), DemoError> {
        let query = payloads::postback_query(network, click, conversion);
        let token = String::from_utf8_lossy(self.secrets.postback_token.expose()).into_owned();
        let request = Self::request(Method::GET, &format!("/postbacks/{network}?{query}"))
            .header("x-postback-token", token)
            .body(Body::empty())
            .expect("a valid request");
        let answer = self.expect_ok(request).await?;
        if answer.body["status"] != status {
            return Err(DemoError(format!(
                "postback {query}: expected {status}, got {}",
                answer.body
            )));
        }
        Ok(())
    }
}
