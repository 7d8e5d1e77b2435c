//! The dashboard's backfill through its routes: the preview against `POST …/backfill` with
//! `dry_run`, a run on the API's queue and its job page against `GET …/backfill/{job_id}`,
//! the read-only role and CSRF refusals, and the days and limit checks in the API's words.

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use integration_tests::*;
use serde_json::{Value, json};
use shared::ids::JobId;
use shared::queue::QueueJob;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

on_every_store!(
    the_preview_is_the_apis_and_a_run_shows_the_apis_numbers_when_done,
    a_run_starts_the_apis_job_on_its_queue_and_its_page_reloads_while_queued,
    a_read_only_session_sees_no_backfill_form_and_its_posts_answer_403,
    a_backfill_post_without_the_sessions_csrf_token_answers_403,
    bad_days_and_limits_show_the_apis_message_next_to_the_field_and_start_nothing,
    an_unknown_job_is_the_404_page,
    a_run_the_queue_refuses_is_a_503_page,
);

const INSTANCE: &str = "106540352242922";
const REFRESH: &str = "<meta http-equiv=\"refresh\" content=\"2\">";

/// What an answer says: its status, `Location`, session cookie (as a browser sends it back)
/// and body.
struct Answer {
    status: StatusCode,
    location: String,
    cookie: String,
    body: String,
}

async fn send(app: &Router, request: http::request::Builder, body: String) -> Answer {
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let header_of = |name| {
        response
            .headers()
            .get(name)
            .map(|value: &http::HeaderValue| value.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (location, cookie) = (header_of(header::LOCATION), header_of(header::SET_COOKIE));
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        location,
        cookie: cookie.split(';').next().unwrap_or_default().to_owned(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn get(app: &Router, path: &str, cookie: &str) -> (StatusCode, String) {
    let answer = send(
        app,
        Request::get(path).header(header::COOKIE, cookie),
        String::new(),
    )
    .await;
    (answer.status, answer.body)
}

async fn post_form(app: &Router, path: &str, cookie: &str, fields: &[(&str, &str)]) -> Answer {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let request = Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, cookie);
    send(app, request, body).await
}

async fn sign_in(app: &Router, key: &str) -> String {
    let answer = post_form(app, "/app/login", "", &[("key", key)]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    answer.cookie
}

fn attribution_path() -> String {
    format!("/app/instances/{INSTANCE}/attribution")
}

fn backfill_path() -> String {
    format!("/app/instances/{INSTANCE}/backfill")
}

/// The CSRF token of a page's forms.
fn csrf(body: &str) -> String {
    let at = body.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    body[at..at + 64].to_owned()
}

/// The number a page shows under `data-stat="<stat>"`, after `from` (a row's marker).
fn shown(body: &str, from: &str, stat: &str) -> u64 {
    let rest = &body[body.find(from).unwrap_or_else(|| panic!("no {from}"))..];
    let marker = format!("data-stat=\"{stat}\">");
    let at = rest.find(&marker).unwrap_or_else(|| panic!("no {stat}")) + marker.len();
    rest[at..at + rest[at..].find('<').unwrap()]
        .parse()
        .unwrap()
}

async fn api_backfill(app: &Router, body: Value) -> (StatusCode, Value) {
    call(
        app,
        admin_request(
            "POST",
            &format!("/instances/{INSTANCE}/backfill"),
            Some(body),
        ),
    )
    .await
}

/// The dashboard and the API over fresh stores, with a queue that keeps the pages they start
/// (so a job stays queued).
async fn with_recorded_queue(
    backend: Backend,
) -> Option<(Router, Arc<RecordingQueue>, StoreGuard)> {
    let (stores, guard) = fresh_stores(backend).await?;
    let queue = Arc::new(RecordingQueue::default());
    Some((
        dashboard_app_with_queue(&stores, queue.clone()),
        queue,
        guard,
    ))
}

/// Signs in as admin and posts the backfill form with the session's token.
async fn admin_backfill(app: &Router, fields: &[(&str, &str)]) -> Answer {
    let cookie = sign_in(app, ADMIN_KEY).await;
    let (_, page) = get(app, &attribution_path(), &cookie).await;
    let token = csrf(&page);
    let mut fields = fields.to_vec();
    fields.push(("csrf", &token));
    post_form(app, &backfill_path(), &cookie, &fields).await
}

/// Five contacts arrive before any rule and are left unattributed; then two rules, so a
/// backfill has something to attribute to each.
async fn contacts_then_rules(app: &Router) -> Vec<String> {
    let now = chrono::Utc::now().timestamp();
    for (contact, text) in [
        ("5001", "saw your tiktok"),
        ("5002", "tiktok!"),
        ("5003", "from youtube"),
        ("5004", "hello"),
        ("5005", "a tiktok video"),
    ] {
        let body = whatsapp_message(
            INSTANCE,
            contact,
            &format!("wamid.{contact}"),
            now - 600,
            text,
            None,
        );
        let (status, report) = call(app, signed_delivery(&body)).await;
        assert_eq!(status, StatusCode::OK, "{report}");
    }
    for _ in 0..400 {
        let (_, listed) = call(
            app,
            admin_get(&format!("/instances/{INSTANCE}/contacts?unattributed=true")),
        )
        .await;
        let contacts = listed["contacts"].as_array().unwrap();
        if contacts.len() == 5 && contacts.iter().all(|c| c.get("rules_checked_at").is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut ids = Vec::new();
    for (name, platform, pattern) in [
        ("TikTok", "tiktok", "tiktok"),
        ("YouTube", "youtube", "youtube"),
    ] {
        let rule = json!({"name": name, "platform": platform, "match": {"kind": "contains", "pattern": pattern}});
        let (status, rule) = call(
            app,
            admin_request("POST", &format!("/instances/{INSTANCE}/rules"), Some(rule)),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{rule}");
        ids.push(rule["id"].as_str().unwrap().to_owned());
    }
    ids
}

async fn the_preview_is_the_apis_and_a_run_shows_the_apis_numbers_when_done(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    // The local server's composition: its in-process queue runs the pages.
    let engine = engine_app(&stores);
    let app = &engine.app;
    let rule_ids = contacts_then_rules(app).await;

    let (status, api) = api_backfill(app, json!({"days": 7, "dry_run": true})).await;
    assert_eq!(status, StatusCode::OK, "{api}");
    assert_eq!(api["would_update"], 4, "{api}");
    let Answer {
        status, body: page, ..
    } = admin_backfill(app, &[("days", "7"), ("limit", ""), ("action", "preview")]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        json!(shown(&page, "id=\"backfill-preview\"", "would_update")),
        api["would_update"]
    );
    assert_eq!(
        json!(shown(&page, "id=\"backfill-preview\"", "scanned")),
        api["scanned"]
    );
    let tallies = api["by_rule"].as_array().unwrap();
    assert_eq!(tallies.len(), 2, "{api}");
    for tally in tallies {
        let row = format!("data-rule-id=\"{}\"", tally["rule_id"].as_str().unwrap());
        assert_eq!(json!(shown(&page, &row, "count")), tally["count"], "{row}");
    }
    assert!(rule_ids.iter().all(|id| page.contains(id.as_str())));
    assert!(page.contains("value=\"run\""), "the preview offers the run");

    let Answer {
        status, location, ..
    } = admin_backfill(app, &[("days", "7"), ("limit", ""), ("action", "run")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let job_id = location
        .strip_prefix(&format!("{}/", backfill_path()))
        .unwrap_or_else(|| panic!("to the job page: {location}"));
    let mut job = Value::Null;
    for _ in 0..400 {
        (_, job) = call(
            app,
            admin_get(&format!("/instances/{INSTANCE}/backfill/{job_id}")),
        )
        .await;
        if job["status"] == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["updated"], api["would_update"]);
    let cookie = sign_in(app, ADMIN_KEY).await;
    let (status, page) = get(app, &location, &cookie).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("id=\"job-status\">done<"), "{page}");
    for stat in ["scanned", "updated", "skipped_attributed"] {
        assert_eq!(json!(shown(&page, "<main>", stat)), job[stat], "{stat}");
    }
    assert!(
        !page.contains("http-equiv=\"refresh\""),
        "a finished job's page stays put"
    );
}

async fn a_run_starts_the_apis_job_on_its_queue_and_its_page_reloads_while_queued(
    backend: Backend,
) {
    // The queue holds the pages, so the job stays queued.
    let Some((app, queue, _guard)) = with_recorded_queue(backend).await else {
        return;
    };
    let app = &app;
    let Answer {
        status, location, ..
    } = admin_backfill(app, &[("days", "30"), ("limit", "250"), ("action", "run")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let job_id = location.rsplit('/').next().unwrap().to_owned();
    let jobs = queue.jobs.lock().unwrap().clone();
    match jobs.as_slice() {
        [QueueJob::BackfillPage(page)] => {
            assert_eq!(page.job_id.as_str(), job_id);
            assert_eq!((page.page, page.after.as_deref()), (1, None));
        }
        other => panic!("one first page on the queue: {other:?}"),
    }
    let (status, job) = call(
        app,
        admin_get(&format!("/instances/{INSTANCE}/backfill/{job_id}")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{job}");
    assert_eq!(
        (
            job["status"].clone(),
            job["days"].clone(),
            job["limit"].clone()
        ),
        (json!("queued"), json!(30), json!(250))
    );
    let cookie = sign_in(app, READONLY_KEY).await;
    let (status, page) = get(app, &location, &cookie).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a read-only session may watch a job: {page}"
    );
    assert!(page.contains("id=\"job-status\">queued<"), "{page}");
    assert!(page.contains(REFRESH), "a queued job's page reloads itself");
    assert!(page.contains("250 contacts"));
}

async fn a_read_only_session_sees_no_backfill_form_and_its_posts_answer_403(backend: Backend) {
    let Some((app, queue, _guard)) = with_recorded_queue(backend).await else {
        return;
    };
    let app = &app;
    let admin = sign_in(app, ADMIN_KEY).await;
    let (_, page) = get(app, &attribution_path(), &admin).await;
    assert!(page.contains(&format!("action=\"{}\"", backfill_path())));
    let readonly = sign_in(app, READONLY_KEY).await;
    let (status, page) = get(app, &attribution_path(), &readonly).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !page.contains("/backfill\""),
        "no backfill form for a read-only session"
    );
    assert!(!page.contains("value=\"preview\""));
    // The session's own token (its sign-out form carries it) does not make it a writer.
    let token = csrf(&page);
    for action in ["preview", "run"] {
        let fields = [("csrf", token.as_str()), ("days", "7"), ("action", action)];
        let Answer { status, body, .. } =
            post_form(app, &backfill_path(), &readonly, &fields).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{action}");
        assert!(body.contains("read-only"), "{body}");
    }
    assert_eq!(queue.job_count(), 0, "nothing started");
    // Nor does a rule's edit form offer it a button.
    let rule = json!({"name": "TikTok", "platform": "tiktok", "match": {"kind": "contains", "pattern": "tiktok"}});
    let (_, rule) = call(
        app,
        admin_request("POST", &format!("/instances/{INSTANCE}/rules"), Some(rule)),
    )
    .await;
    let edit = format!(
        "/app/instances/{INSTANCE}/rules/{}",
        rule["id"].as_str().unwrap()
    );
    let (status, page) = get(app, &edit, &readonly).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("value=\"TikTok\""), "the rule is shown");
    assert!(page.contains("<fieldset class=\"bare\" disabled"), "{page}");
    assert!(
        !page.contains("Save rule"),
        "no save button for a read-only session"
    );
    let (_, page) = get(app, &edit, &admin).await;
    assert!(page.contains("Save rule") && !page.contains(" disabled"));
}

async fn a_backfill_post_without_the_sessions_csrf_token_answers_403(backend: Backend) {
    let Some((app, queue, _guard)) = with_recorded_queue(backend).await else {
        return;
    };
    let app = &app;
    let admin = sign_in(app, ADMIN_KEY).await;
    let forged = "0".repeat(64);
    for fields in [
        vec![("days", "7"), ("action", "run")],
        vec![("csrf", forged.as_str()), ("days", "7"), ("action", "run")],
    ] {
        let Answer { status, body, .. } = post_form(app, &backfill_path(), &admin, &fields).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{fields:?}");
        assert!(body.contains("expired"), "{body}");
    }
    assert_eq!(queue.job_count(), 0, "nothing started");
}

async fn bad_days_and_limits_show_the_apis_message_next_to_the_field_and_start_nothing(
    backend: Backend,
) {
    let Some((app, queue, _guard)) = with_recorded_queue(backend).await else {
        return;
    };
    let app = &app;
    let too_many = (shared::matching::backfill::MAX_DAYS + 1).to_string();
    let too_large = (shared::matching::backfill::MAX_LIMIT + 1).to_string();
    for (days, limit, field, api_body) in [
        ("0", "", "days", json!({"days": 0})),
        (too_many.as_str(), "", "days", json!({"days": 91})),
        ("seven", "", "days", json!({"days": 0})),
        ("-3", "", "days", json!({"days": 0})),
        ("7", "0", "limit", json!({"limit": 0})),
        (
            "7",
            too_large.as_str(),
            "limit",
            json!({"limit": 10_000_001}),
        ),
        ("7", "many", "limit", json!({"limit": 0})),
    ] {
        let (status, api) = api_backfill(app, api_body).await;
        assert_eq!(
            (status, api["error"]["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field))
        );
        let message = api["error"]["message"].as_str().unwrap();
        for action in ["preview", "run"] {
            let fields = [("days", days), ("limit", limit), ("action", action)];
            let Answer {
                status, body: page, ..
            } = admin_backfill(app, &fields).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{fields:?}");
            let shown =
                format!("<p class=\"field-error\" id=\"backfill-{field}-error\">{message}</p>");
            assert!(page.contains(&shown), "{fields:?}: {page}");
            assert!(page.contains(&format!("aria-describedby=\"backfill-{field}-error\"")));
            assert!(
                page.contains(&format!(
                    "value=\"{}\"",
                    if field == "days" { days } else { limit }
                )),
                "the value posted is shown again"
            );
        }
    }
    assert_eq!(queue.job_count(), 0, "nothing started");
}

async fn an_unknown_job_is_the_404_page(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = &dashboard_app(&stores);
    let cookie = sign_in(app, ADMIN_KEY).await;
    for job_id in [JobId::new().to_string(), "nope".to_owned()] {
        let (status, page) = get(app, &format!("{}/{job_id}", backfill_path()), &cookie).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{job_id}");
        assert!(page.contains("<h1>Not found</h1>"), "{page}");
        assert!(page.contains("no such backfill job"), "{page}");
    }
}

async fn a_run_the_queue_refuses_is_a_503_page(backend: Backend) {
    let Some((app, queue, _guard)) = with_recorded_queue(backend).await else {
        return;
    };
    queue
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let Answer { status, body, .. } =
        admin_backfill(&app, &[("days", "7"), ("action", "run")]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("<h1>Try again in a moment</h1>"), "{body}");
    assert!(
        !body.contains("injected queue fault"),
        "no internals on the page"
    );
}
