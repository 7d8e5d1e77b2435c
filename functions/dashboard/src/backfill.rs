//! Backfill from the Attribution view: a preview (what `POST …/backfill` answers with
//! `dry_run`, through `backfill::Request::preview`), a run (`backfill::Request::start`, on the
//! queue the admin API uses) and the job's page, which reloads itself until the job is done or
//! failed. The days and limit are checked by `backfill::Request::checked`, the API's own check.

use super::{
    PageError, Shared, SignedIn, chrome, html, instance_path, parse_instance, writable_form,
};
use crate::pages::{Chrome, Form};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use shared::fields::FieldError;
use shared::ids::{InstanceId, JobId};
use shared::matching::backfill::{self, BackfillJob, JobStatus, Preview, StartError};
use shared::time::Timestamp;
use std::str::FromStr;

/// The backfill form's values, and the check's refusal next to its field.
pub struct BackfillForm {
    pub days: String,
    pub limit: String,
    error: Option<FieldError>,
}

impl Default for BackfillForm {
    fn default() -> Self {
        Self {
            days: backfill::DEFAULT_DAYS.to_string(),
            limit: String::new(),
            error: None,
        }
    }
}

impl BackfillForm {
    /// The widest window, for the field's hint.
    pub fn max_days(&self) -> u32 {
        backfill::MAX_DAYS
    }

    pub fn max_limit(&self) -> u64 {
        backfill::MAX_LIMIT
    }

    /// The refusal of `field` (`days` or `limit`), in the API's words.
    pub fn error_of(&self, field: &str) -> Option<String> {
        self.error
            .as_ref()
            .filter(|error| error.field == field)
            .map(ToString::to_string)
    }

    fn posted(form: &Form, error: Option<FieldError>) -> Self {
        let value = |name| form.get(name).unwrap_or_default().trim().to_owned();
        Self {
            days: value("days"),
            limit: value("limit"),
            error,
        }
    }
}

/// A whole number field; empty is absent. Text that is not a whole number of the type is
/// passed on as 0, which is out of bounds, so it is refused with the same range message.
fn whole<T: FromStr + Default>(form: &Form, name: &str) -> Option<T> {
    let text = form
        .get(name)
        .map(str::trim)
        .filter(|text| !text.is_empty())?;
    Some(text.parse().unwrap_or_default())
}

fn request_of(form: &Form) -> Result<backfill::Request, FieldError> {
    backfill::Request::checked(whole(form, "days"), whole(form, "limit"))
}

#[derive(Template)]
#[template(path = "backfill.html")]
pub struct BackfillPage {
    pub chrome: Chrome,
    pub instance_id: String,
    /// `/app/instances/<the id, percent-encoded>`.
    pub instance_path: String,
    pub backfill: BackfillForm,
    pub preview: Option<Preview>,
}

#[derive(Template)]
#[template(path = "backfill_job.html")]
pub struct JobPage {
    pub chrome: Chrome,
    pub instance_id: String,
    /// `/app/instances/<the id, percent-encoded>`.
    pub instance_path: String,
    pub job: BackfillJob,
}

impl JobPage {
    /// While the job may still move, the page reloads itself.
    pub fn running(&self) -> bool {
        matches!(self.job.status, JobStatus::Queued | JobStatus::Running)
    }

    pub fn status(&self) -> &'static str {
        match self.job.status {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
        }
    }

    pub fn time(&self, at: &Option<Timestamp>) -> String {
        at.map(|at| at.to_string())
            .unwrap_or_else(|| "—".to_owned())
    }
}

fn job_url(instance_id: &InstanceId, job_id: &JobId) -> String {
    format!("{}/backfill/{job_id}", instance_path(instance_id))
}

/// The form's `action`: `preview` shows what a run would attribute, per rule; `run` starts it
/// and goes to its job page.
pub(crate) async fn backfill(
    State(state): State<Shared>,
    SignedIn(session): SignedIn,
    Path(raw_instance): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let (form, instance_id) = writable_form(&state, &session, &raw_instance, &body)?;
    let page = |chrome, status, error, preview| {
        let page = BackfillPage {
            chrome,
            instance_id: instance_id.to_string(),
            instance_path: instance_path(&instance_id),
            backfill: BackfillForm::posted(&form, error),
            preview,
        };
        html(status, &page)
    };
    let request = match request_of(&form) {
        Ok(request) => request,
        Err(error) => {
            let chrome = chrome(&state, &session, instance_id.as_str()).await?;
            return Ok(page(chrome, StatusCode::BAD_REQUEST, Some(error), None));
        }
    };
    let now = Timestamp::now();
    match form.get("action").unwrap_or_default() {
        "preview" => {
            let (rules, contacts) = (state.rules.as_ref(), state.contacts.as_ref());
            let preview = request.preview(rules, contacts, &instance_id, now).await?;
            let chrome = chrome(&state, &session, instance_id.as_str()).await?;
            Ok(page(chrome, StatusCode::OK, None, Some(preview)))
        }
        "run" => {
            let job = request
                .start(
                    state.jobs.as_ref(),
                    state.queue.as_ref(),
                    instance_id.clone(),
                    now,
                )
                .await
                .map_err(|error| match error {
                    StartError::Store(error) => PageError::Store(error),
                    StartError::Queue(error) => PageError::Queue(error),
                })?;
            tracing::info!(target: "audit", job_id = %job.job_id, "dashboard backfill started");
            Ok(Redirect::to(&job_url(&instance_id, &job.job_id)).into_response())
        }
        _ => Err(PageError::BadRequest(
            "action must be preview or run".to_owned(),
        )),
    }
}

/// A job's status and progress, as `GET …/backfill/{job_id}` reads it.
pub(crate) async fn job(
    State(state): State<Shared>,
    SignedIn(session): SignedIn,
    Path((raw_instance, raw_job)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let instance_id = parse_instance(&raw_instance)?;
    let job_id =
        JobId::parse(&raw_job).map_err(|error| PageError::BadRequest(error.to_string()))?;
    let job = state
        .jobs
        .load_job(&instance_id, &job_id)
        .await?
        .ok_or_else(|| PageError::NotFound("this instance has no such backfill job".to_owned()))?;
    let page = JobPage {
        chrome: chrome(&state, &session, instance_id.as_str()).await?,
        instance_id: instance_id.to_string(),
        instance_path: instance_path(&instance_id),
        job,
    };
    Ok(html(StatusCode::OK, &page))
}
