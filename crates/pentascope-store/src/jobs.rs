//! Background job records, with Celery's state names so that clients of the
//! original service read them unchanged.

use serde::{Deserialize, Serialize};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
        [
            JobState::Pending,
            JobState::Started,
            JobState::Success,
            JobState::Failure,
        ]
        .into_iter()
        .find(|j| j.as_str() == s)
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
}

/// Seconds since the Unix epoch, for leases.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
