//! The dashboard function: server-rendered pages over the same domain functions the admin API
//! uses (`shared::stats::load`, `shared::rules::listing`, `shared::matching::backfill`), behind
//! a signed session cookie that the admin key or the read-only key opens.

mod ads;
mod analytics;
mod assets;
mod backfill;
mod contacts;
mod deliveries;
mod instances;
mod pages;
mod revenue;
mod session;

pub use assets::hashed_name;
pub use session::{COOKIE, LIFETIME_SECONDS, Role, Session};

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use pages::{AttributionPage, Chrome, EditPage, ErrorPage, Form, LoginPage, RuleForm};
use shared::contact::store::ContactStore;
use shared::fields::FieldError;
use shared::goals::store::GoalStore;
use shared::ids::InstanceId;
use shared::instances::{InstanceStore, MAX_LISTED};
use shared::matching::backfill::JobStore;
use shared::queue::{JobQueue, QueueError};
use shared::revenue::store::RevenueStore;
use shared::rules::listing::{self, Created};
use shared::rules::store::{RuleStore, RuleWrite};
use shared::rules::{MAX_RULES_PER_INSTANCE, RuleDraft, RuleId};
use shared::secret::AdminKeys;
use shared::spend::store::SpendStore;
use shared::stats::{self, StatsWindow};
use shared::store::StoreError;
use shared::time::Timestamp;
use std::sync::Arc;

/// Remembers the last instance opened, so `/` goes back to it. Only an id, not signed: it
/// grants nothing.
const INSTANCE_COOKIE: &str = "dash_instance";
/// Forms are a few fields; a sign-in is one key.
const FORM_BODY_BYTES: usize = 16 * 1024;
/// What every dashboard answer carries: nothing but the engine's own files may load, no page
/// may frame it, and forms only post back to it.
/// Images may also come from any `https:` host: a catalog product's picture is on the
/// merchant's image host, named by the feed an admin imported (the panel sends no referrer).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; script-src 'self'; \
     img-src 'self' data: https:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the dashboard's handlers share, built once per process.
pub struct DashboardState {
    keys: AdminKeys,
    rules: Arc<dyn RuleStore>,
    /// The daily counters behind the numbers and each rule's 7-day matches.
    contacts: Arc<dyn ContactStore>,
    /// The revenue side: the report counters of the Revenue page, a contact's sends, clicks and
    /// conversions for its panel's journey.
    revenue: Arc<dyn RevenueStore>,
    /// Backfill jobs, and the queue their runs start on (the admin API's).
    jobs: Arc<dyn JobStore>,
    queue: Arc<dyn JobQueue>,
    /// The instances of the header's selector and the instance list.
    instances: Arc<dyn InstanceStore>,
    /// Spend rows and ad names: the Ads page and its import form.
    spend: Arc<dyn SpendStore>,
    /// The instances' goals: the Ads page's qualified leads.
    goals: Arc<dyn GoalStore>,
    /// Catalog products: the contact panel's product.
    catalog: Arc<dyn shared::catalog::store::CatalogStore>,
    /// Destinations and deliveries: the outbound panel.
    outbound: std::sync::OnceLock<Arc<dyn shared::outbound::store::OutboundStore>>,
}

impl DashboardState {
    // One store per trait, as every function's state takes them: a wrapper (the fault
    // injector) can stand in for any one.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        keys: &AdminKeys,
        rules: Arc<dyn RuleStore>,
        contacts: Arc<dyn ContactStore>,
        revenue: Arc<dyn RevenueStore>,
        jobs: Arc<dyn JobStore>,
        queue: Arc<dyn JobQueue>,
        instances: Arc<dyn InstanceStore>,
        spend: Arc<dyn SpendStore>,
        goals: Arc<dyn GoalStore>,
        catalog: Arc<dyn shared::catalog::store::CatalogStore>,
    ) -> Arc<Self> {
        Arc::new(Self {
            keys: keys.clone(),
            rules,
            contacts,
            revenue,
            jobs,
            queue,
            instances,
            spend,
            goals,
            catalog,
            outbound: std::sync::OnceLock::new(),
        })
    }

    /// Shows the outbound panel over `store`. Set once; later calls are ignored.
    pub fn show_deliveries_of(&self, store: Arc<dyn shared::outbound::store::OutboundStore>) {
        let _ = self.outbound.set(store);
    }
}

type Shared = Arc<DashboardState>;

/// Every page of the dashboard, each answer with the security headers.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(instances::home))
        .route("/app/login", get(login_form).post(login))
        .route("/app/logout", post(logout))
        .route("/app/assets/{name}", get(asset))
        .route("/app/instances", get(instances::instances))
        .route("/app/instances/{instance_id}/attribution", get(attribution))
        .route(
            "/app/instances/{instance_id}/analytics",
            get(analytics::analytics),
        )
        .route(
            "/app/instances/{instance_id}/deliveries",
            get(deliveries::deliveries),
        )
        .route("/app/revenue", get(revenue::revenue))
        .route("/app/ads", get(ads::ads))
        .route(
            "/app/instances/{instance_id}/contacts",
            get(contacts::contacts_page),
        )
        .route(
            "/app/instances/{instance_id}/contacts.csv",
            get(contacts::contacts_csv),
        )
        .route(
            "/app/instances/{instance_id}/contacts/{contact_id}",
            get(contacts::contact_panel),
        )
        .route(
            "/app/instances/{instance_id}/backfill",
            post(backfill::backfill),
        )
        .route(
            "/app/instances/{instance_id}/backfill/{job_id}",
            get(backfill::job),
        )
        .route("/app/instances/{instance_id}/rules", post(add_rule))
        .route(
            "/app/instances/{instance_id}/rules/{rule_id}",
            get(edit_rule).post(change_rule),
        )
        .route_layer(shared::http::body_limit(FORM_BODY_BYTES))
        // An export is a file, not a form: the import takes the API's own limit.
        .route(
            "/app/ads/import",
            post(ads::import).route_layer(shared::http::body_limit(shared::http::ADMIN_BODY_BYTES)),
        )
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Why a page could not be shown: each answers an HTML page, never a stack trace.
#[derive(Debug, thiserror::Error)]
enum PageError {
    #[error("the store is unavailable")]
    Store(#[from] StoreError),
    #[error("the queue is unavailable")]
    Queue(#[from] QueueError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(&'static str),
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title) = match &self {
            Self::Store(error) => {
                tracing::error!(%error, "dashboard page failed on the store");
                (StatusCode::SERVICE_UNAVAILABLE, "Try again in a moment")
            }
            Self::Queue(error) => {
                tracing::error!(%error, "dashboard page failed on the queue");
                (StatusCode::SERVICE_UNAVAILABLE, "Try again in a moment")
            }
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "Bad request"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "Not allowed"),
        };
        let page = ErrorPage {
            chrome: anonymous_chrome(),
            title,
            message: self.to_string(),
        };
        html(status, &page)
    }
}

fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "a dashboard template failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be drawn",
            )
                .into_response()
        }
    }
}

/// The header of a page shown without a session (sign-in, errors).
fn anonymous_chrome() -> Chrome {
    Chrome {
        stylesheet: assets::stylesheet_url(),
        signed_in: false,
        readonly: true,
        csrf: String::new(),
        instance: String::new(),
        instances: Vec::new(),
        role_label: "",
    }
}

/// The header of a signed-in page: `instance` in the selector among the instances listed.
async fn chrome(
    state: &DashboardState,
    session: &Session,
    instance: &str,
) -> Result<Chrome, PageError> {
    let mut instances: Vec<String> = state
        .instances
        .list_instances(MAX_LISTED)
        .await?
        .iter()
        .map(ToString::to_string)
        .collect();
    // An instance opened by its id before it has a contact or a rule stays selectable.
    if !instance.is_empty() && !instances.iter().any(|listed| listed == instance) {
        instances.insert(0, instance.to_owned());
    }
    Ok(Chrome {
        stylesheet: assets::stylesheet_url(),
        signed_in: true,
        readonly: session.role == Role::ReadOnly,
        csrf: session.csrf_token(&state.keys),
        instance: instance.to_owned(),
        instances,
        role_label: match session.role {
            Role::Admin => "Admin",
            Role::ReadOnly => "Read-only",
        },
    })
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(key, value)| (key == name).then_some(value))
}

fn now() -> i64 {
    Timestamp::now().unix_seconds()
}

fn session_of(state: &DashboardState, headers: &HeaderMap) -> Option<Session> {
    Session::verify(&state.keys, cookie(headers, COOKIE)?, now())
}

/// A signed-in session; without one, the sign-in page (303, so a refused POST becomes a GET).
struct SignedIn(Session);

impl FromRequestParts<Shared> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, Response> {
        session_of(state, &parts.headers)
            .map(SignedIn)
            .ok_or_else(|| Redirect::to("/app/login").into_response())
    }
}

const EXPIRED_FORM: &str =
    "this form has expired or did not come from this dashboard; reload the page and try again";

/// A write needs the session's CSRF token and the admin role; both refusals are 403.
fn authorize_write(
    state: &DashboardState,
    session: &Session,
    form: &Form,
) -> Result<(), PageError> {
    let token = form.get("csrf").unwrap_or_default();
    if !session.csrf_matches(&state.keys, token) {
        return Err(PageError::Forbidden(EXPIRED_FORM));
    }
    if session.role == Role::ReadOnly {
        return Err(PageError::Forbidden(
            "a read-only session may look but not change anything; sign in with the admin key",
        ));
    }
    Ok(())
}

/// A form posted to one instance's pages by a session that may write: the form and the
/// instance.
fn writable_form(
    state: &DashboardState,
    session: &Session,
    raw_instance: &str,
    body: &[u8],
) -> Result<(Form, InstanceId), PageError> {
    let form = Form::parse(body);
    authorize_write(state, session, &form)?;
    Ok((form, parse_instance(raw_instance)?))
}

fn https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .is_some_and(|proto| proto.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// A cookie only this site's own requests carry, invisible to scripts.
fn set_cookie(headers: &HeaderMap, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if https(headers) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .expect("cookie values are visible ASCII")
}

/// An id as one URL segment (and cookie value): percent-encoded, since an instance id may hold
/// any visible character, `/`, `;` and non-ASCII ones included.
fn encoded(id: &str) -> String {
    form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

/// Where the instance's pages live.
fn instance_path(instance_id: &InstanceId) -> String {
    format!("/app/instances/{}", encoded(instance_id.as_str()))
}

fn attribution_url(instance_id: &InstanceId) -> String {
    format!("{}/attribution", instance_path(instance_id))
}

fn parse_instance(raw: &str) -> Result<InstanceId, PageError> {
    InstanceId::parse(raw).map_err(|error| PageError::BadRequest(error.to_string()))
}

async fn login_form(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if session_of(&state, &headers).is_some() {
        return Redirect::to("/").into_response();
    }
    login_page(&state, StatusCode::OK, None)
}

fn login_page(state: &DashboardState, status: StatusCode, error: Option<String>) -> Response {
    let _ = state;
    html(
        status,
        &LoginPage {
            chrome: anonymous_chrome(),
            error,
        },
    )
}

/// Signs in with the admin key or the read-only key, compared in constant time; the key is
/// neither logged nor put in the cookie.
async fn login(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let key = form.get("key").unwrap_or_default().trim();
    let Some(name) = state.keys.identify(key.as_bytes()) else {
        tracing::info!(target: "audit", "dashboard sign-in refused");
        let error = "That is neither the admin key nor the read-only key.".to_owned();
        return login_page(&state, StatusCode::UNAUTHORIZED, Some(error));
    };
    tracing::info!(target: "audit", key = name.as_str(), "dashboard sign-in");
    let session = Session::start(name, now());
    let cookie = set_cookie(
        &headers,
        COOKIE,
        &session.sign(&state.keys),
        LIFETIME_SECONDS,
    );
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

/// Signs out: clears the cookie. A live session must send its CSRF token, so another site
/// cannot sign a user out; without a live session there is nothing to protect.
async fn logout(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    if let Some(session) = session_of(&state, &headers) {
        let form = Form::parse(&body);
        if !session.csrf_matches(&state.keys, form.get("csrf").unwrap_or_default()) {
            return Err(PageError::Forbidden(EXPIRED_FORM));
        }
    }
    let mut response = Redirect::to("/app/login").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(&headers, COOKIE, "", 0));
    Ok(response)
}

async fn asset(Path(name): Path<String>) -> Response {
    assets::serve(&name)
}

/// The Attribution view: the last 7 days' numbers exactly as `GET …/stats` gives them, the
/// rules as `GET …/rules` lists them, the test-a-text answer (`?text=`) and the add-rule form.
async fn attribution(
    State(state): State<Shared>,
    SignedIn(session): SignedIn,
    Path(raw_instance): Path<String>,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Response, PageError> {
    let instance_id = parse_instance(&raw_instance)?;
    let query = Form::parse(query.unwrap_or_default().as_bytes());
    let test_text = query.get("text").map(str::to_owned);
    let mut response = attribution_page(&state, &session, &instance_id, test_text, None).await?;
    let remembered = set_cookie(
        &headers,
        INSTANCE_COOKIE,
        &encoded(instance_id.as_str()),
        LIFETIME_SECONDS,
    );
    response
        .headers_mut()
        .append(header::SET_COOKIE, remembered);
    Ok(response)
}

async fn attribution_page(
    state: &DashboardState,
    session: &Session,
    instance_id: &InstanceId,
    test_text: Option<String>,
    refused_form: Option<RuleForm>,
) -> Result<Response, PageError> {
    let now = Timestamp::now();
    let window = StatsWindow::ending(now, None).expect("the default window is valid");
    let (rules, contacts) = (state.rules.as_ref(), state.contacts.as_ref());
    let stats = stats::load(rules, contacts, instance_id.clone(), &window).await?;
    let listed = listing::list_with_matches(rules, contacts, instance_id, now).await?;
    let test_answer = match &test_text {
        Some(text) => Some(pages::test_answer(
            listing::first_match(rules, instance_id, text)
                .await?
                .as_ref(),
        )),
        None => None,
    };
    let status = if refused_form.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = AttributionPage {
        chrome: chrome(state, session, instance_id.as_str()).await?,
        instance_id: instance_id.to_string(),
        instance_path: instance_path(instance_id),
        stats,
        rules: listed.iter().map(Into::into).collect(),
        test_text: test_text.unwrap_or_default(),
        test_answer,
        form: refused_form.unwrap_or_else(|| RuleForm::empty(rules_url(instance_id))),
        backfill: Default::default(),
    };
    Ok(html(status, &page))
}

fn rules_url(instance_id: &InstanceId) -> String {
    format!("{}/rules", instance_path(instance_id))
}

fn rule_url(instance_id: &InstanceId, rule_id: &RuleId) -> String {
    format!("{}/rules/{rule_id}", instance_path(instance_id))
}

/// The form's draft, validated by the API's own parser (same fields, same messages).
fn draft_of(form: &Form) -> Result<RuleDraft, FieldError> {
    let body = serde_json::to_vec(&pages::draft_json(form)).expect("JSON values serialize");
    RuleDraft::from_json(&body)
}

async fn add_rule(
    State(state): State<Shared>,
    SignedIn(session): SignedIn,
    Path(raw_instance): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let (form, instance_id) = writable_form(&state, &session, &raw_instance, &body)?;
    let refused = |error| RuleForm::empty(rules_url(&instance_id)).reposted(&form, error);
    let error = match draft_of(&form) {
        Ok(draft) => {
            let created = listing::create(
                state.rules.as_ref(),
                instance_id.clone(),
                draft,
                Timestamp::now(),
            )
            .await?;
            match created {
                Created::Rule(rule) => {
                    tracing::info!(target: "audit", rule_id = %rule.id, "dashboard rule added");
                    return Ok(Redirect::to(&attribution_url(&instance_id)).into_response());
                }
                Created::LimitReached => FieldError::new(
                    "instance_id",
                    format!("an instance holds at most {MAX_RULES_PER_INSTANCE} rules"),
                ),
            }
        }
        Err(error) => error,
    };
    attribution_page(&state, &session, &instance_id, None, Some(refused(error))).await
}

async fn edit_rule(
    State(state): State<Shared>,
    SignedIn(session): SignedIn,
    Path((raw_instance, raw_rule)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let (instance_id, rule_id) = parse_rule_path(&raw_instance, &raw_rule)?;
    let rule = state
        .rules
        .load_rule(&instance_id, &rule_id)
        .await?
        .ok_or_else(no_such_rule)?;
    let page = EditPage {
        chrome: chrome(&state, &session, instance_id.as_str()).await?,
        instance_id: instance_id.to_string(),
        instance_path: instance_path(&instance_id),
        form: RuleForm::of_rule(rule_url(&instance_id, &rule_id), &rule.settings),
    };
    Ok(html(StatusCode::OK, &page))
}

fn parse_rule_path(raw_instance: &str, raw_rule: &str) -> Result<(InstanceId, RuleId), PageError> {
    let rule_id =
        RuleId::parse(raw_rule).map_err(|error| PageError::BadRequest(error.to_string()))?;
    Ok((parse_instance(raw_instance)?, rule_id))
}

fn no_such_rule() -> PageError {
    PageError::NotFound("this instance has no such rule (it may have been deleted)".to_owned())
}

/// One rule's writes, by the form's `action`: `save` (the edit form), `enable`, `disable`,
/// `delete`; each back to the Attribution view when done.
async fn change_rule(
    State(state): State<Shared>,
    SignedIn(session): SignedIn,
    Path((raw_instance, raw_rule)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = Form::parse(&body);
    authorize_write(&state, &session, &form)?;
    let (instance_id, rule_id) = parse_rule_path(&raw_instance, &raw_rule)?;
    let rules = state.rules.as_ref();
    let now = Timestamp::now();
    let action = form.get("action").unwrap_or_default();
    let found = match action {
        "save" => match draft_of(&form) {
            Ok(draft) => listing::replace(rules, instance_id.clone(), &rule_id, draft, now)
                .await?
                .is_some(),
            Err(error) => {
                let page = EditPage {
                    chrome: chrome(&state, &session, instance_id.as_str()).await?,
                    instance_id: instance_id.to_string(),
                    instance_path: instance_path(&instance_id),
                    form: RuleForm::empty(rule_url(&instance_id, &rule_id))
                        .for_edit()
                        .reposted(&form, error),
                };
                return Ok(html(StatusCode::BAD_REQUEST, &page));
            }
        },
        "enable" | "disable" => {
            let enabled = action == "enable";
            listing::set_enabled(rules, instance_id.clone(), &rule_id, enabled, now)
                .await?
                .is_some()
        }
        "delete" => rules.delete_rule(&instance_id, &rule_id).await? == RuleWrite::Done,
        _ => {
            return Err(PageError::BadRequest(
                "action must be save, enable, disable or delete".to_owned(),
            ));
        }
    };
    if !found {
        return Err(no_such_rule());
    }
    tracing::info!(target: "audit", rule_id = %rule_id, action, "dashboard rule changed");
    Ok(Redirect::to(&attribution_url(&instance_id)).into_response())
}
