//! # pentascope-jobs
//!
//! Background work, independent of HTTP:
//!
//! - [`tasks`]: what each task does (`heavy_pca`), given a [`tasks::TaskContext`]
//!   (the stores);
//! - [`runner`]: the in-process runners of the embedded configuration, which
//!   claim job rows from the database under renewable leases;
//! - [`celery`]: the Redis transport that speaks Celery's message protocol v2
//!   and writes results as Celery's Redis result backend does, so Python code
//!   (`app.send_task("heavy_pca", kwargs=…)`, `AsyncResult.get()`) works
//!   unchanged against `pentascope worker`.
//!
//! Every job, however submitted, is also a row in the database, so
//! `GET /jobs/{id}` reports it and a restart never forgets it.

pub mod celery;
pub mod runner;
pub mod tasks;

/// Seconds a runner's claim on a job lasts without renewal.
pub const LEASE_SECS: i64 = 30;
/// Runs after which an interrupted job is failed instead of retried.
pub const MAX_ATTEMPTS: i64 = 3;
