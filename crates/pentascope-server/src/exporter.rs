//! The Prometheus exporter behind `GET /metrics`: one process-wide
//! recorder of the `metrics` facade, which every layer records into
//! (requests here, caches, ingest and jobs in pentascope-app, pixel storage
//! in pentascope-store). Names follow the Prometheus and OpenTelemetry HTTP
//! conventions; no label ever holds an image id or a raw path (routes are
//! templates, and every other label has a fixed set of values).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Request durations by method, route template and status.
pub const HTTP_DURATION: &str = "http_server_request_duration_seconds";
/// Requests being served, by method.
pub const HTTP_ACTIVE: &str = "http_server_active_requests";

/// OpenTelemetry's default buckets for HTTP durations, in seconds.
const HTTP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0,
];
/// Storage requests: from a cached local read to a slow object store.
const STORAGE_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// Jobs: from a small image's statistics to an hour-long PCA.
const JOB_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0, 3600.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's recorder (once; later calls do nothing). Until it
/// is installed, recording is a no-op and `/metrics` answers 503.
pub fn install() -> Result<(), String> {
    if HANDLE.get().is_some() {
        return Ok(());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), HTTP_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Prefix("pentascope_storage_".into()),
                STORAGE_BUCKETS,
            )
        })
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Prefix("pentascope_job_".into()), JOB_BUCKETS)
        })
        .map_err(|e| format!("metrics buckets: {e}"))?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    describe();
    let _ = HANDLE.set(handle);
    Ok(())
}

/// The help text of each metric, as the exposition shows it.
fn describe() {
    use metrics::{describe_gauge, describe_histogram, Unit};
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Duration of HTTP requests, by method, route template and status."
    );
    describe_gauge!(HTTP_ACTIVE, "HTTP requests being served, by method.");
    pentascope_app::monitoring::describe();
    pentascope_store::pixels::metered::describe();
}

/// The exposition of every metric, or `None` before [`install`].
pub fn render() -> Option<String> {
    let handle = HANDLE.get()?;
    handle.run_upkeep();
    Some(handle.render())
}
