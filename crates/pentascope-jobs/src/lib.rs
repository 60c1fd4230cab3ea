//! # pentascope-jobs
//!
//! Background work, independent of HTTP:
//!
//! What each task does lives with the use cases (`pentascope_app::jobs`);
//! this crate runs them:
//!
//! - [`runner`]: the in-process runners of the embedded configuration, which
//!   claim job rows from the database under renewable leases;
//! - [`celery`]: the Redis transport that speaks Celery's message protocol v2
//!   and writes results as Celery's Redis result backend does, so Python code
//!   (`app.send_task("heavy_pca", kwargs=…)`, `AsyncResult.get()`) works
//!   unchanged against `pentascope worker`;
//! - [`split`]: a large statistics recompute or PCA cut into part tasks
//!   that any worker takes, merged by whichever finishes last.
//!
//! Every job, however submitted, is also a row in the database, so
//! `GET /jobs/{id}` reports it and a restart never forgets it.

pub mod celery;
pub mod runner;
pub mod split;

use std::sync::Arc;

use pentascope_app::jobs::{InProcessQueue, JobQueue};
use pentascope_app::{App, AppError, Config};

use crate::celery::CeleryBroker;

/// Seconds a runner's claim on a job lasts without renewal.
pub const LEASE_SECS: i64 = 30;
/// Runs after which an interrupted job is failed instead of retried.
pub const MAX_ATTEMPTS: i64 = 3;

/// Where this process's jobs go, as the configuration says.
pub enum Queue {
    /// Run by this process's runners.
    InProcess(Arc<InProcessQueue>),
    /// Sent to `pentascope worker` processes through Redis.
    Celery(Arc<CeleryBroker>),
}

/// Opens the stores and the job queue that `config` names.
pub async fn open_app(config: Config) -> Result<(Arc<App>, Queue), AppError> {
    let queue = match &config.celery {
        None => Queue::InProcess(Arc::new(InProcessQueue::default())),
        Some(c) => {
            let mut broker = CeleryBroker::new(&c.broker_url, &c.result_backend, &c.queue)
                .map_err(|e| AppError::InvalidArguments(format!("invalid Celery broker: {e}")))?;
            broker.visibility_timeout = c.visibility_timeout;
            Queue::Celery(Arc::new(broker))
        }
    };
    let sink: Arc<dyn JobQueue> = match &queue {
        Queue::InProcess(q) => q.clone(),
        Queue::Celery(b) => b.clone(),
    };
    Ok((Arc::new(App::open(config, sink).await?), queue))
}
