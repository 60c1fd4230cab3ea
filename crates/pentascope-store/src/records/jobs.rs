//! Background job records: submitted, claimed under renewable leases,
//! finished, with Celery's state names so that clients of the
//! original service read them unchanged.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// Where a job is in its life.
#[derive(schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum JobState {
    /// Waiting for a runner.
    Pending,
    /// A runner has it (and renews its lease).
    Started,
    /// Done; `result` holds the outcome.
    Success,
    /// Failed; `error` says why.
    Failure,
}

impl JobState {
    /// Every state.
    pub const ALL: [JobState; 4] = [
        JobState::Pending,
        JobState::Started,
        JobState::Success,
        JobState::Failure,
    ];

    /// The stored (Celery) name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "PENDING",
            JobState::Started => "STARTED",
            JobState::Success => "SUCCESS",
            JobState::Failure => "FAILURE",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|j| j.as_str() == s)
    }
}

/// A job as the database keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Its id (a UUID, as Celery task ids are).
    pub id: String,
    /// The task name, e.g. `heavy_pca`.
    pub task: String,
    /// The task's keyword arguments.
    pub kwargs: serde_json::Value,
    /// Its state.
    pub state: JobState,
    /// Fraction done, 0 to 1.
    pub progress: f64,
    /// The result, once `SUCCESS`.
    pub result: Option<serde_json::Value>,
    /// Why it failed, once `FAILURE`.
    pub error: Option<String>,
    /// How many times a runner has started it.
    pub attempts: i64,
    /// When it was submitted (RFC 3339).
    pub created_at: String,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
    /// The user who submitted it; `None` when access control was off or
    /// for Celery clients that name no owner.
    pub owner: Option<String>,
}

/// Seconds since the Unix epoch, for leases.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Job records: submitted, claimed under renewable leases, finished.
#[async_trait]
pub trait JobRepo: Send + Sync {
    /// Records a new `PENDING` job submitted by `owner`.
    async fn create_job(
        &self,
        id: &str,
        task: &str,
        kwargs: &serde_json::Value,
        owner: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Claims the oldest `PENDING` job, or a `STARTED` one whose lease ran
    /// out (its runner died): it becomes `STARTED` with a lease of
    /// `lease_secs`. At most one claimer gets a given job.
    async fn claim_job(&self, lease_secs: i64) -> Result<Option<JobRecord>, StoreError>;
    /// Marks job `id` `STARTED` by a runner that was handed it (a broker
    /// delivery) rather than claiming it; `None` if it has already finished.
    async fn start_job(&self, id: &str, lease_secs: i64) -> Result<Option<JobRecord>, StoreError>;
    /// Records progress (0 to 1) and renews the lease.
    async fn job_progress(
        &self,
        id: &str,
        progress: f64,
        lease_secs: i64,
    ) -> Result<(), StoreError>;
    /// Records the final state: `SUCCESS` with a result or `FAILURE` with an error.
    async fn finish_job(
        &self,
        id: &str,
        outcome: Result<&serde_json::Value, &str>,
    ) -> Result<(), StoreError>;
    /// A job.
    async fn get_job(&self, id: &str) -> Result<Option<JobRecord>, StoreError>;
    /// Makes every `STARTED` job claimable again at once (their runners are
    /// known to be gone); returns how many.
    async fn release_started_jobs(&self) -> Result<u64, StoreError>;
    /// How many jobs are in each state (states without jobs left out).
    async fn count_by_state(&self) -> Result<Vec<(JobState, u64)>, StoreError>;
}
