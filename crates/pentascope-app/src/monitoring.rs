//! What the use cases record for `/metrics`, through the `metrics` facade
//! (a no-op until a front door installs an exporter): bytes ingested,
//! cache hits and misses, job durations by task and outcome, and the
//! gauges read from the database when metrics are scraped (images by kind,
//! jobs by state, the pool's connections). Label values come from fixed sets, never from a request.

use std::time::Duration;

use pentascope_store::records::JobState;
use pentascope_store::ImageKind;

use crate::app::App;
use crate::error::AppError;
use crate::jobs::task_names;

/// Bytes of image files ingested (uploads and `pentascope ingest`).
pub const INGESTED_BYTES: &str = "pentascope_ingested_bytes_total";
/// Images published, by kind.
pub const IMAGES: &str = "pentascope_images";
/// Jobs by state: `pending` is the queue's depth.
pub const JOBS: &str = "pentascope_jobs";
/// Job durations by task and outcome.
pub const JOB_DURATION: &str = "pentascope_job_duration_seconds";
/// Cache look-ups by cache and result (hit or miss).
pub const CACHE_REQUESTS: &str = "pentascope_cache_requests_total";
/// The database pool's connections, by state (idle or in use).
pub const DB_CONNECTIONS: &str = "pentascope_db_pool_connections";

/// The help text of each metric recorded here.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        INGESTED_BYTES,
        Unit::Bytes,
        "Bytes of image files ingested."
    );
    describe_gauge!(IMAGES, "Published images, by kind.");
    describe_gauge!(
        JOBS,
        "Jobs by state (pending: the queue's depth; started: running)."
    );
    describe_histogram!(
        JOB_DURATION,
        Unit::Seconds,
        "Duration of jobs, by task and outcome (success or failure)."
    );
    describe_gauge!(
        DB_CONNECTIONS,
        "Connections of the metadata database's pool, by state (idle or in_use)."
    );
    describe_counter!(
        CACHE_REQUESTS,
        "Cache look-ups, by cache (rendered: slices and renders; reader: open pixel arrays) and result (hit or miss)."
    );
}

/// Counts a look-up of `cache`.
pub(crate) fn cache_lookup(cache: &'static str, hit: bool) {
    let result = if hit { "hit" } else { "miss" };
    metrics::counter!(CACHE_REQUESTS, "cache" => cache, "result" => result).increment(1);
}

/// Records a job of task `name` that took `elapsed`.
pub(crate) fn job_finished(name: &str, elapsed: Duration, succeeded: bool) {
    // a task name comes from a client: only known ones become labels
    let task = task_names().find(|t| *t == name).unwrap_or("unknown");
    let outcome = if succeeded { "success" } else { "failure" };
    metrics::histogram!(JOB_DURATION, "task" => task, "outcome" => outcome)
        .record(elapsed.as_secs_f64());
}

/// Records the bytes of an ingested file.
pub(crate) fn ingested(bytes: u64) {
    metrics::counter!(INGESTED_BYTES).increment(bytes);
}

impl App {
    /// Sets the gauges read from the database (images by kind, jobs by
    /// state), before metrics are scraped. Every kind and state is set, to
    /// zero when there is none, so that a gauge falls when its last image
    /// or job goes.
    pub async fn refresh_gauges(&self) -> Result<(), AppError> {
        let images = self.images.count_by_kind().await?;
        for kind in ImageKind::ALL {
            let n = images.iter().find(|(k, _)| *k == kind).map_or(0, |x| x.1);
            metrics::gauge!(IMAGES, "kind" => kind.as_str()).set(n as f64);
        }
        let jobs = self.jobs.count_by_state().await?;
        for state in JobState::ALL {
            let n = jobs.iter().find(|(s, _)| *s == state).map_or(0, |x| x.1);
            let label = match state {
                JobState::Pending => "pending",
                JobState::Started => "started",
                JobState::Success => "success",
                JobState::Failure => "failure",
            };
            metrics::gauge!(JOBS, "state" => label).set(n as f64);
        }
        let (open, idle) = self.images.pool_connections();
        let in_use = (open as usize).saturating_sub(idle);
        metrics::gauge!(DB_CONNECTIONS, "state" => "idle").set(idle as f64);
        metrics::gauge!(DB_CONNECTIONS, "state" => "in_use").set(in_use as f64);
        Ok(())
    }
}
