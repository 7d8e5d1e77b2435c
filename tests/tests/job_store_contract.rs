//! The contract every `JobStore` implementation keeps, run against each of them.

use integration_tests::*;
use shared::ids::{InstanceId, JobId};
use shared::matching::backfill::JobStore;
use shared::matching::backfill::{BackfillJob, JobStatus};
use shared::store::CommitOutcome;
use shared::time::Timestamp;
use std::sync::Arc;

on_every_store!(
    a_created_job_loads_back_field_for_field,
    a_job_with_every_field_set_round_trips,
    loading_an_unknown_job_answers_none,
    jobs_are_per_instance,
    save_at_the_stored_version_replaces_the_job,
    save_at_a_stale_version_conflicts_and_writes_nothing,
    save_of_a_job_never_created_conflicts_and_creates_nothing,
    save_checks_the_version_of_the_same_instances_job,
    concurrent_saves_at_one_version_have_one_winner,
);

async fn store(backend: Backend) -> Option<(Arc<dyn JobStore>, StoreGuard)> {
    let (stores, guard) = fresh_stores(backend).await?;
    Some((stores.jobs, guard))
}

fn ts(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

fn instance(id: &str) -> InstanceId {
    InstanceId::parse(id).unwrap()
}

/// The job stored under `job_id` in `instance_id`, if any.
async fn stored(store: &Arc<dyn JobStore>, instance_id: &str, job_id: &str) -> Option<BackfillJob> {
    store
        .load_job(&instance(instance_id), &JobId::parse(job_id).unwrap())
        .await
        .unwrap()
}

/// What saving `job` at `expected_version` answered.
async fn saved(
    store: &Arc<dyn JobStore>,
    job: &BackfillJob,
    expected_version: u64,
) -> CommitOutcome {
    store.save_job(job, expected_version).await.unwrap()
}

/// A queued job, as the admin API creates it: no progress yet, at version 1.
fn job(instance_id: &str, job_id: &str) -> BackfillJob {
    BackfillJob {
        job_id: JobId::parse(job_id).unwrap(),
        instance_id: instance(instance_id),
        status: JobStatus::Queued,
        days: 7,
        since: ts("2026-03-01T10:00:00.000Z"),
        until: ts("2026-03-08T10:00:00.000Z"),
        limit: None,
        scanned: 0,
        updated: 0,
        skipped_attributed: 0,
        pages_done: 0,
        next_after: None,
        created_at: ts("2026-03-08T10:00:00.123Z"),
        started_at: None,
        finished_at: None,
        version: 1,
    }
}

/// `job` one page further, at the next version.
fn progressed(job: &BackfillJob) -> BackfillJob {
    BackfillJob {
        status: JobStatus::Running,
        scanned: job.scanned + 500,
        updated: job.updated + 3,
        skipped_attributed: job.skipped_attributed + 7,
        pages_done: job.pages_done + 1,
        next_after: Some(format!(
            "2026-03-0{}T00:00:00.000Z#15550001",
            job.pages_done + 2
        )),
        started_at: Some(ts("2026-03-08T10:00:01.000Z")),
        version: job.version + 1,
        ..job.clone()
    }
}

async fn a_created_job_loads_back_field_for_field(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let queued = job("1", "job-a");
    store.create_job(&queued).await.unwrap();
    assert_eq!(stored(&store, "1", "job-a").await, Some(queued));
}

async fn a_job_with_every_field_set_round_trips(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    // Every optional field set, counts past what a 64-bit float holds exactly, a position with
    // separators and non-ASCII text, and millisecond timestamps.
    let done = BackfillJob {
        status: JobStatus::Done,
        days: 90,
        limit: Some((1 << 53) + 1),
        scanned: u64::MAX,
        updated: (1 << 53) + 3,
        skipped_attributed: 9_007_199_254_740_993,
        pages_done: 18_014_398_509_481_985,
        next_after: Some("2026-03-07T23:59:59.999Z#wa:+4915550001 ü#é".to_owned()),
        started_at: Some(ts("2026-03-08T10:00:01.001Z")),
        finished_at: Some(ts("2026-03-08T10:05:00.999Z")),
        version: u64::MAX - 1,
        ..job("1", "job-full")
    };
    store.create_job(&done).await.unwrap();
    let failed = BackfillJob {
        status: JobStatus::Failed,
        job_id: JobId::parse("job-failed").unwrap(),
        ..done.clone()
    };
    store.create_job(&failed).await.unwrap();
    let running = BackfillJob {
        status: JobStatus::Running,
        job_id: JobId::parse("job-running").unwrap(),
        ..done.clone()
    };
    store.create_job(&running).await.unwrap();
    for expected in [done, failed, running] {
        assert_eq!(
            store
                .load_job(&expected.instance_id, &expected.job_id)
                .await
                .unwrap(),
            Some(expected)
        );
    }
}

async fn loading_an_unknown_job_answers_none(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    assert_eq!(stored(&store, "1", "job-a").await, None);
    store.create_job(&job("1", "job-a")).await.unwrap();
    assert_eq!(stored(&store, "1", "job-b").await, None);
    assert_eq!(stored(&store, "1", "job-").await, None);
    assert_eq!(stored(&store, "1", "job-a2").await, None);
    assert_eq!(stored(&store, "2", "job-a").await, None);
}

async fn jobs_are_per_instance(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    // The same job id in two instances: two jobs, each loaded and saved on its own.
    let first = job("1", "job-a");
    let second = BackfillJob {
        days: 30,
        limit: Some(10),
        ..job("2", "job-a")
    };
    store.create_job(&first).await.unwrap();
    store.create_job(&second).await.unwrap();
    assert_eq!(stored(&store, "1", "job-a").await, Some(first.clone()));
    assert_eq!(stored(&store, "2", "job-a").await, Some(second.clone()));

    let moved = progressed(&second);
    assert_eq!(
        saved(&store, &moved, second.version).await,
        CommitOutcome::Applied
    );
    assert_eq!(stored(&store, "2", "job-a").await, Some(moved));
    assert_eq!(stored(&store, "1", "job-a").await, Some(first));
}

async fn save_at_the_stored_version_replaces_the_job(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let queued = job("1", "job-a");
    store.create_job(&queued).await.unwrap();
    let mut current = queued;
    for _ in 0..3 {
        let next = progressed(&current);
        assert_eq!(
            saved(&store, &next, current.version).await,
            CommitOutcome::Applied
        );
        assert_eq!(stored(&store, "1", "job-a").await, Some(next.clone()));
        current = next;
    }
    // Back to no position and no start: a replaced job keeps no field of the earlier one.
    let finished = BackfillJob {
        status: JobStatus::Done,
        next_after: None,
        started_at: None,
        finished_at: Some(ts("2026-03-08T10:09:00.000Z")),
        version: current.version + 1,
        ..current.clone()
    };
    assert_eq!(
        saved(&store, &finished, current.version).await,
        CommitOutcome::Applied
    );
    assert_eq!(stored(&store, "1", "job-a").await, Some(finished));
}

async fn save_at_a_stale_version_conflicts_and_writes_nothing(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let queued = job("1", "job-a");
    store.create_job(&queued).await.unwrap();
    let running = progressed(&queued);
    assert_eq!(saved(&store, &running, 1).await, CommitOutcome::Applied);

    // A writer that read version 1 (now stale), one ahead of the store, and one far off.
    let stale = BackfillJob {
        status: JobStatus::Failed,
        scanned: 42,
        version: 2,
        ..queued.clone()
    };
    for expected_version in [1, 0, 3, u64::MAX] {
        assert_eq!(
            saved(&store, &stale, expected_version).await,
            CommitOutcome::VersionConflict,
            "expected version {expected_version}"
        );
        assert_eq!(
            stored(&store, "1", "job-a").await,
            Some(running.clone()),
            "expected version {expected_version}"
        );
    }
    // The version the conflicting job itself carries does not matter, only the stored one.
    let claims_current = BackfillJob {
        version: running.version,
        ..stale.clone()
    };
    assert_eq!(
        saved(&store, &claims_current, 1).await,
        CommitOutcome::VersionConflict
    );
    assert_eq!(stored(&store, "1", "job-a").await, Some(running));
}

async fn save_of_a_job_never_created_conflicts_and_creates_nothing(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let ghost = job("1", "job-ghost");
    for expected_version in [0, 1] {
        assert_eq!(
            saved(&store, &ghost, expected_version).await,
            CommitOutcome::VersionConflict,
            "expected version {expected_version}"
        );
    }
    assert_eq!(stored(&store, "1", "job-ghost").await, None);
    // And it can still be created afterwards.
    store.create_job(&ghost).await.unwrap();
    assert_eq!(stored(&store, "1", "job-ghost").await, Some(ghost));
}

async fn save_checks_the_version_of_the_same_instances_job(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    // Instance 1's job-a is at version 5, instance 2's at version 1, and instance 1 has a
    // job-b at version 1: a save is checked against its own job's version only.
    let ahead = BackfillJob {
        version: 5,
        ..job("1", "job-a")
    };
    let other_instance = job("2", "job-a");
    let other_job = job("1", "job-b");
    for created in [&ahead, &other_instance, &other_job] {
        store.create_job(created).await.unwrap();
    }
    let moved = progressed(&other_instance);
    assert_eq!(
        saved(&store, &moved, 5).await,
        CommitOutcome::VersionConflict
    );
    assert_eq!(
        stored(&store, "2", "job-a").await,
        Some(other_instance.clone())
    );
    let moved_b = progressed(&other_job);
    assert_eq!(
        saved(&store, &moved_b, 5).await,
        CommitOutcome::VersionConflict
    );
    assert_eq!(
        saved(&store, &progressed(&ahead), 1).await,
        CommitOutcome::VersionConflict
    );
    assert_eq!(stored(&store, "1", "job-a").await, Some(ahead.clone()));
    assert_eq!(stored(&store, "1", "job-b").await, Some(other_job));
    assert_eq!(saved(&store, &moved, 1).await, CommitOutcome::Applied);
    assert_eq!(stored(&store, "2", "job-a").await, Some(moved));
    assert_eq!(stored(&store, "1", "job-a").await, Some(ahead));
}

async fn concurrent_saves_at_one_version_have_one_winner(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let queued = job("1", "job-a");
    store.create_job(&queued).await.unwrap();
    let writers: Vec<_> = (0..8u64)
        .map(|writer| {
            let store = store.clone();
            let candidate = BackfillJob {
                scanned: writer,
                ..progressed(&queued)
            };
            tokio::spawn(async move {
                let outcome = saved(&store, &candidate, 1).await;
                (candidate, outcome)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for writer in writers {
        let (candidate, outcome) = writer.await.unwrap();
        match outcome {
            CommitOutcome::Applied => winners.push(candidate),
            CommitOutcome::VersionConflict => {}
            CommitOutcome::Duplicate => panic!("save_job never answers Duplicate"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one save at version 1 applies");
    assert_eq!(stored(&store, "1", "job-a").await, winners.pop());
}
