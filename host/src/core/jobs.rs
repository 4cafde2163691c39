//! Durable background jobs kept in SQLite (the seed used Celery).
//!
//! A job is enqueued inside the same transaction as the change that needs it
//! (so a committed change always has its job and a rolled-back one never
//! does), then run by the worker: retried with exponential backoff, and
//! recovered after a crash because a claimed job holds only a lease.
//!
//! Each domain registers a handler per job kind when the state is built
//! (`server::job_handlers`). The registry is generic over the state the
//! handlers receive, so this module names no domain: the worker takes the
//! [`Db`] and the registry from the state through axum's [`FromRef`].

use std::{collections::HashMap, future::Future, pin::Pin, sync::Arc, time::Duration};

use axum::extract::FromRef;
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;

use super::{
    ApiError, Db,
    metrics::{JobLabels, Metrics},
    now_ts,
};

/// The `jobs` table (a migration of `crate::schema`).
pub const SCHEMA: &str = include_str!("jobs.sql");

/// How long a claimed job may run before another worker may take it over.
const LEASE_SECS: i64 = 120;
/// How often an idle worker looks for due jobs (it is also woken on enqueue).
const IDLE_POLL: Duration = Duration::from_secs(1);

pub type JobFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
pub type JobHandler<S> = Arc<dyn Fn(S, Value) -> JobFuture + Send + Sync>;

/// Job kinds and their handlers, plus the signal that wakes the worker.
pub struct Jobs<S> {
    handlers: Arc<HashMap<&'static str, JobHandler<S>>>,
    wake: Arc<Notify>,
    idle_poll: Duration,
    /// Where failed runs are counted, when the server exports metrics.
    metrics: Option<Arc<Metrics>>,
}

impl<S> Clone for Jobs<S> {
    fn clone(&self) -> Self {
        Self {
            handlers: self.handlers.clone(),
            wake: self.wake.clone(),
            idle_poll: self.idle_poll,
            metrics: self.metrics.clone(),
        }
    }
}

pub struct JobsBuilder<S> {
    handlers: HashMap<&'static str, JobHandler<S>>,
    idle_poll: Duration,
    metrics: Option<Arc<Metrics>>,
}

impl<S> Jobs<S> {
    pub fn builder() -> JobsBuilder<S> {
        JobsBuilder { handlers: HashMap::new(), idle_poll: IDLE_POLL, metrics: None }
    }

    /// Wakes the worker after a commit that enqueued work due now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

impl<S: Send + 'static> JobsBuilder<S> {
    pub fn handle<F, Fut>(mut self, kind: &'static str, f: F) -> Self
    where
        F: Fn(S, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.handlers.insert(kind, Arc::new(move |state, payload| Box::pin(f(state, payload))));
        self
    }

    /// How often the idle worker polls for jobs that came due (default 1 s).
    pub fn idle_poll(mut self, every: Duration) -> Self {
        self.idle_poll = every;
        self
    }

    /// Counts failed runs by kind in `metrics`.
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn build(self) -> Jobs<S> {
        Jobs {
            handlers: Arc::new(self.handlers),
            wake: Arc::new(Notify::new()),
            idle_poll: self.idle_poll,
            metrics: self.metrics,
        }
    }
}

/// Options for [`enqueue`].
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub kind: &'a str,
    pub payload: Value,
    /// Unix seconds; `None` means now.
    pub run_at: Option<i64>,
    pub max_attempts: i64,
    /// At most one unfinished job per key: enqueueing a duplicate is a no-op.
    pub dedupe_key: Option<String>,
}

impl<'a> NewJob<'a> {
    pub fn new(kind: &'a str, payload: impl Serialize) -> Self {
        Self {
            kind,
            payload: serde_json::to_value(payload).unwrap_or(Value::Null),
            run_at: None,
            max_attempts: 8,
            dedupe_key: None,
        }
    }

    pub fn at(mut self, run_at: i64) -> Self {
        self.run_at = Some(run_at);
        self
    }

    pub fn attempts(mut self, max_attempts: i64) -> Self {
        self.max_attempts = max_attempts.max(1);
        self
    }

    pub fn dedupe(mut self, key: impl Into<String>) -> Self {
        self.dedupe_key = Some(key.into());
        self
    }
}

/// Enqueues a job in the caller's transaction. Returns its id, or `None` when
/// an unfinished job with the same dedupe key exists.
pub fn enqueue(tx: &Transaction<'_>, job: NewJob<'_>) -> Result<Option<i64>, ApiError> {
    let now = now_ts();
    let inserted = tx.execute(
        "INSERT INTO jobs (kind, payload, status, attempts, max_attempts, run_at, dedupe_key, created_at, updated_at)
         VALUES (?1, ?2, 'pending', 0, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT (dedupe_key) WHERE status IN ('pending', 'running') DO NOTHING",
        params![job.kind, job.payload.to_string(), job.max_attempts, job.run_at.unwrap_or(now), job.dedupe_key, now],
    )?;
    Ok((inserted == 1).then(|| tx.last_insert_rowid()))
}

/// What [`ensure_scheduled`] does with a run that is already waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfWaiting {
    /// Leave it as it is.
    Keep,
    /// Move it to the new job's time if that is earlier.
    BringForward,
}

/// Makes sure one run of a recurring job kind is waiting: enqueues `job`
/// unless a pending run of its kind exists (which `if_waiting` may bring
/// forward). Recurring jobs call it at start-up and from each run for the
/// next one. Writers are serialised, so the check and the insert cannot
/// interleave with another's.
pub fn ensure_scheduled(tx: &Transaction<'_>, job: NewJob<'_>, if_waiting: IfWaiting) -> Result<(), ApiError> {
    let at = job.run_at.unwrap_or_else(now_ts);
    let waiting = match if_waiting {
        IfWaiting::Keep => tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM jobs WHERE kind = ?1 AND status = 'pending')",
            [job.kind],
            |r| r.get(0),
        )?,
        IfWaiting::BringForward => {
            tx.execute(
                "UPDATE jobs SET run_at = MIN(run_at, ?2) WHERE kind = ?1 AND status = 'pending'",
                params![job.kind, at],
            )? > 0
        }
    };
    if !waiting {
        enqueue(tx, job.at(at))?;
    }
    Ok(())
}

/// Delay before retry `attempt` (1-based): 2 s, 4 s, 8 s ... capped at 1 hour.
pub fn backoff_secs(attempt: i64) -> i64 {
    let exp = u32::try_from(attempt.clamp(1, 12)).unwrap_or(12);
    2_i64.pow(exp).min(3600)
}

struct Claimed {
    id: i64,
    kind: String,
    payload: String,
    attempts: i64,
    max_attempts: i64,
}

async fn claim(db: &Db) -> Result<Option<Claimed>, ApiError> {
    db.write(|tx| {
        let now = now_ts();
        // Jobs whose lease ran out were claimed by a worker that died.
        Ok(tx
            .query_row(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_until = ?1 + ?2, updated_at = ?1
                     WHERE id = (SELECT id FROM jobs
                                 WHERE (status = 'pending' AND run_at <= ?1)
                                    OR (status = 'running' AND locked_until < ?1)
                                 ORDER BY run_at, id LIMIT 1)
                     RETURNING id, kind, payload, attempts, max_attempts",
                params![now, LEASE_SECS],
                |r| {
                    Ok(Claimed {
                        id: r.get(0)?,
                        kind: r.get(1)?,
                        payload: r.get(2)?,
                        attempts: r.get(3)?,
                        max_attempts: r.get(4)?,
                    })
                },
            )
            .optional()?)
    })
    .await
}

async fn finish(
    db: &Db,
    job: &Claimed,
    outcome: Result<(), String>,
    metrics: Option<&Metrics>,
) -> Result<(), ApiError> {
    let (id, attempts, max_attempts) = (job.id, job.attempts, job.max_attempts);
    if let (Some(metrics), Err(_)) = (metrics, &outcome) {
        let outcome = if attempts < max_attempts { "retry" } else { "final" };
        metrics.job_failures.get_or_create(&JobLabels { kind: job.kind.clone(), outcome: outcome.into() }).inc();
    }
    let kind = job.kind.clone();
    db.write(move |tx| {
            let now = now_ts();
            match outcome {
                Ok(()) => {
                    tx.execute(
                        "UPDATE jobs SET status = 'done', locked_until = NULL, last_error = NULL, updated_at = ?2 WHERE id = ?1",
                        params![id, now],
                    )?;
                }
                Err(error) if attempts < max_attempts => {
                    tracing::warn!(job_id = id, kind, attempts, error, "job failed; will retry");
                    tx.execute(
                        "UPDATE jobs SET status = 'pending', locked_until = NULL, last_error = ?2, run_at = ?3, updated_at = ?4
                         WHERE id = ?1",
                        params![id, error, now + backoff_secs(attempts), now],
                    )?;
                }
                Err(error) => {
                    tracing::error!(job_id = id, kind, attempts, error, "job failed for good");
                    tx.execute(
                        "UPDATE jobs SET status = 'failed', locked_until = NULL, last_error = ?2, updated_at = ?3 WHERE id = ?1",
                        params![id, error, now],
                    )?;
                }
            }
            Ok(())
        })
        .await
}

/// Runs one due job if there is one. Returns whether it found work.
pub async fn run_one<S>(state: &S) -> Result<bool, ApiError>
where
    S: Clone + Send + 'static,
    Db: FromRef<S>,
    Jobs<S>: FromRef<S>,
{
    let db = Db::from_ref(state);
    let Some(job) = claim(&db).await? else { return Ok(false) };
    let jobs = Jobs::<S>::from_ref(state);
    let handler = jobs.handlers.get(job.kind.as_str()).cloned();
    let outcome = match (handler, serde_json::from_str::<Value>(&job.payload)) {
        (None, _) => Err(format!("no handler for job kind {}", job.kind)),
        (_, Err(e)) => Err(format!("payload is not JSON: {e}")),
        // A panicking handler must not take the worker down: run it as a task.
        (Some(handler), Ok(payload)) => match tokio::spawn(handler(state.clone(), payload)).await {
            Ok(result) => result,
            Err(e) => Err(format!("handler panicked: {e}")),
        },
    };
    finish(&db, &job, outcome, jobs.metrics.as_deref()).await?;
    Ok(true)
}

/// The worker loop: runs due jobs one after another until `shutdown` fires.
pub async fn worker<S>(state: S, mut shutdown: tokio::sync::watch::Receiver<bool>)
where
    S: Clone + Send + 'static,
    Db: FromRef<S>,
    Jobs<S>: FromRef<S>,
{
    let Jobs { wake, idle_poll, .. } = Jobs::<S>::from_ref(&state);
    loop {
        if *shutdown.borrow() {
            return;
        }
        match run_one(&state).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::error!(error = %e, "job worker"),
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(idle_poll) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// The least state a worker needs: the database and the registry.
    #[derive(Clone)]
    struct TestState {
        db: Db,
        jobs: Jobs<TestState>,
    }

    impl FromRef<TestState> for Db {
        fn from_ref(state: &TestState) -> Self {
            state.db.clone()
        }
    }

    impl FromRef<TestState> for Jobs<TestState> {
        fn from_ref(state: &TestState) -> Self {
            state.jobs.clone()
        }
    }

    async fn state_with(jobs: Jobs<TestState>) -> (tempfile::TempDir, TestState) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_migrated(&dir.path().join("jobs.db"), 1, &[(1, "jobs", SCHEMA)]).unwrap();
        (dir, TestState { db, jobs })
    }

    async fn job_row(state: &TestState, id: i64) -> (String, i64, i64, Option<String>) {
        state
            .db
            .read(move |c| {
                Ok(c.query_row("SELECT status, attempts, run_at, last_error FROM jobs WHERE id = ?1", [id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?)
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn runs_retries_with_backoff_then_fails_for_good() {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let jobs = Jobs::builder()
            .handle("flaky", move |_, payload| {
                let seen = seen.clone();
                async move {
                    seen.fetch_add(1, Ordering::SeqCst);
                    if payload["ok"] == true { Ok(()) } else { Err("gateway down".to_string()) }
                }
            })
            .build();
        let (_dir, state) = state_with(jobs).await;
        let (ok, bad) = state
            .db
            .write(|tx| {
                let ok = enqueue(tx, NewJob::new("flaky", serde_json::json!({"ok": true})))?.unwrap();
                let bad = enqueue(tx, NewJob::new("flaky", serde_json::json!({"ok": false})).attempts(2))?.unwrap();
                Ok((ok, bad))
            })
            .await
            .unwrap();
        assert!(run_one(&state).await.unwrap());
        assert!(run_one(&state).await.unwrap());
        assert_eq!(job_row(&state, ok).await.0, "done");
        let (status, attempts, run_at, error) = job_row(&state, bad).await;
        assert_eq!((status.as_str(), attempts, error.as_deref()), ("pending", 1, Some("gateway down")));
        assert!(run_at > now_ts(), "retry is delayed");
        // Not due yet: nothing runs.
        assert!(!run_one(&state).await.unwrap());
        state.db.write(move |tx| Ok(tx.execute("UPDATE jobs SET run_at = 0 WHERE id = ?1", [bad])?)).await.unwrap();
        assert!(run_one(&state).await.unwrap());
        assert_eq!(job_row(&state, bad).await.0, "failed");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn dedupe_and_lease_recovery() {
        let jobs = Jobs::builder().handle("noop", |_, _| async { Ok(()) }).build();
        let (_dir, state) = state_with(jobs).await;
        let ids = state
            .db
            .write(|tx| {
                let a = enqueue(tx, NewJob::new("noop", ()).dedupe("k"))?;
                let b = enqueue(tx, NewJob::new("noop", ()).dedupe("k"))?;
                Ok((a, b))
            })
            .await
            .unwrap();
        assert!(ids.0.is_some() && ids.1.is_none(), "duplicate enqueued: {ids:?}");
        let id = ids.0.unwrap();
        // A worker claimed it and died: its lease ran out.
        state
            .db
            .write(move |tx| {
                Ok(tx.execute(
                    "UPDATE jobs SET status = 'running', attempts = 1, locked_until = 1 WHERE id = ?1",
                    [id],
                )?)
            })
            .await
            .unwrap();
        assert!(run_one(&state).await.unwrap());
        assert_eq!(job_row(&state, id).await.0, "done");
        // Finished jobs free the dedupe key.
        let again = state.db.write(|tx| enqueue(tx, NewJob::new("noop", ()).dedupe("k"))).await.unwrap();
        assert!(again.is_some());
    }

    #[tokio::test]
    async fn unknown_kinds_and_panics_fail_the_job_not_the_worker() {
        let jobs = Jobs::builder()
            .handle("boom", |_, _| async {
                if now_ts() > 0 {
                    panic!("handler bug");
                }
                Ok(())
            })
            .build();
        let (_dir, state) = state_with(jobs).await;
        let (a, b) = state
            .db
            .write(|tx| {
                Ok((
                    enqueue(tx, NewJob::new("boom", ()).attempts(1))?.unwrap(),
                    enqueue(tx, NewJob::new("nobody", ()).attempts(1))?.unwrap(),
                ))
            })
            .await
            .unwrap();
        assert!(run_one(&state).await.unwrap());
        assert!(run_one(&state).await.unwrap());
        let (status, _, _, error) = job_row(&state, a).await;
        assert_eq!(status, "failed");
        assert!(error.unwrap().contains("panicked"));
        assert_eq!(job_row(&state, b).await.0, "failed");
    }
}
