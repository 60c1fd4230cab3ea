//! A Celery-compatible job transport on Redis.
//!
//! Producer side ([`CeleryBroker::send`]): a task message in Celery's
//! message protocol v2, pushed on the queue list as kombu's Redis transport
//! does (`LPUSH celery <envelope>`), so Python workers could consume it too.
//! A job's W3C trace context travels in the message's `traceparent` header
//! (where Celery's OpenTelemetry instrumentation puts it) as well as in its
//! keyword arguments; a message from a client that set only the header has
//! it copied into its keyword arguments, so the job's row keeps it.
//!
//! Worker side ([`CeleryBroker::work`]): `BRPOP` a message, record it as
//! unacknowledged exactly as kombu does (`unacked` hash and `unacked_index`
//! sorted set), run the task, write the result as Celery's Redis result
//! backend does (`SET celery-task-meta-<id>` with an expiry, then `PUBLISH`
//! on the same name, which `AsyncResult.get()` listens to), and only then
//! acknowledge (acks late). A message whose worker died is pushed back on its
//! queue once it has been unacknowledged longer than the visibility timeout.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use redis::AsyncCommands;
use serde_json::{json, Value};
use tracing::Instrument;

use async_trait::async_trait;
use pentascope_app::jobs::JobQueue;
use pentascope_app::trace::TRACE_KWARG;
use pentascope_app::PassError;
use pentascope_app::{App, AppError};
use pentascope_store::records::JobRecord;
use pentascope_store::StoreError;

use crate::runner::{job_span, run_claimed};
use crate::split::PART_TASK;
use crate::LEASE_SECS;

/// kombu's names for its bookkeeping of unacknowledged messages.
const UNACKED: &str = "unacked";
const UNACKED_INDEX: &str = "unacked_index";

/// Errors of the Redis transport.
#[derive(Debug, thiserror::Error)]
pub enum CeleryError {
    /// Redis failed or is unreachable.
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A message that is not Celery protocol v2.
    #[error("malformed task message: {0}")]
    Message(String),
}

/// A Celery broker and result backend on Redis.
#[derive(Clone)]
pub struct CeleryBroker {
    pub(crate) broker: redis::Client,
    broker_url: String,
    backend: redis::Client,
    queue: String,
    /// Seconds a message may stay unacknowledged before it is redelivered.
    pub visibility_timeout: u64,
    /// Seconds results are kept (Celery's `result_expires`, default one day).
    pub result_expires: u64,
}

/// A task message taken from the queue.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The task id (Celery's `headers.id`).
    pub id: String,
    /// The task name.
    pub task: String,
    /// Keyword arguments (with the message's trace context, if any).
    pub kwargs: Value,
    /// kombu's delivery tag, the key of its unacknowledged record.
    tag: String,
}

impl CeleryBroker {
    /// A broker on `broker_url` with results on `backend_url`
    /// (`redis://HOST:PORT/DB` each), consuming and producing on `queue`.
    pub fn new(broker_url: &str, backend_url: &str, queue: &str) -> Result<Self, CeleryError> {
        Ok(CeleryBroker {
            broker: redis::Client::open(broker_url)?,
            broker_url: broker_url.to_string(),
            backend: redis::Client::open(backend_url)?,
            queue: queue.to_string(),
            visibility_timeout: 3600,
            result_expires: 86_400,
        })
    }

    /// The queue and broker, for logs (without the password).
    pub fn describe(&self) -> String {
        format!(
            "queue {} on {}",
            self.queue,
            pentascope_app::config::redact_url(&self.broker_url)
        )
    }

    /// Whether the broker answers.
    pub async fn ping(&self) -> Result<(), CeleryError> {
        let mut c = self.broker.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut c).await?;
        Ok(())
    }

    /// Queues task `task` with id `id` and keyword arguments `kwargs`.
    pub async fn send(&self, id: &str, task: &str, kwargs: &Value) -> Result<(), CeleryError> {
        let envelope = self.envelope(id, task, kwargs);
        let mut c = self.broker.get_multiplexed_async_connection().await?;
        let _: () = c.lpush(&self.queue, envelope.to_string()).await?;
        Ok(())
    }

    /// The task message (protocol v2) of task `task` with id `id` and
    /// keyword arguments `kwargs`, whose trace context, if any, also goes
    /// in the headers.
    fn envelope(&self, id: &str, task: &str, kwargs: &Value) -> Value {
        let body = json!([[], kwargs, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]);
        let mut envelope = json!({
            "body": base64::engine::general_purpose::STANDARD.encode(body.to_string()),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {
                "lang": "py", "task": task, "id": id, "shadow": null, "eta": null,
                "expires": null, "group": null, "group_index": null, "retries": 0,
                "timelimit": [null, null], "root_id": id, "parent_id": null,
                "argsrepr": "()", "kwargsrepr": kwargs.to_string(),
                "origin": format!("pentascope@{}", std::process::id()),
                "ignore_result": false,
            },
            "properties": {
                "correlation_id": id, "reply_to": uuid::Uuid::new_v4().to_string(),
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": self.queue},
                "priority": 0, "body_encoding": "base64",
                "delivery_tag": uuid::Uuid::new_v4().to_string(),
            },
        });
        if let Some(trace) = kwargs.get(TRACE_KWARG) {
            envelope["headers"][TRACE_KWARG] = trace.clone();
        }
        envelope
    }

    /// Takes the next message, waiting up to `wait`; it is recorded as
    /// unacknowledged until [`CeleryBroker::ack`].
    pub async fn next(&self, wait: Duration) -> Result<Option<Delivery>, CeleryError> {
        let mut c = self.broker.get_multiplexed_async_connection().await?;
        let popped: Option<(String, String)> = redis::cmd("BRPOP")
            .arg(&self.queue)
            .arg(wait.as_secs_f64())
            .query_async(&mut c)
            .await?;
        let Some((_, raw)) = popped else {
            return Ok(None);
        };
        let delivery = parse(&raw)?;
        let record = json!([
            serde_json::from_str::<Value>(&raw).unwrap_or(Value::Null),
            "",
            self.queue
        ])
        .to_string();
        let now = unix_time();
        let _: () = redis::pipe()
            .atomic()
            .zadd(UNACKED_INDEX, &delivery.tag, now)
            .hset(UNACKED, &delivery.tag, record)
            .query_async(&mut c)
            .await?;
        Ok(Some(delivery))
    }

    /// Acknowledges a message: it will not be delivered again.
    pub async fn ack(&self, d: &Delivery) -> Result<(), CeleryError> {
        let mut c = self.broker.get_multiplexed_async_connection().await?;
        let _: () = redis::pipe()
            .atomic()
            .zrem(UNACKED_INDEX, &d.tag)
            .hdel(UNACKED, &d.tag)
            .query_async(&mut c)
            .await?;
        Ok(())
    }

    /// Pushes back on their queue the messages left unacknowledged for
    /// longer than the visibility timeout (their worker died). Of several
    /// workers doing this at once, only the one whose `ZREM` succeeds
    /// restores a given message.
    pub async fn restore_unacked(&self) -> Result<usize, CeleryError> {
        let mut c = self.broker.get_multiplexed_async_connection().await?;
        let cutoff = unix_time() - self.visibility_timeout as f64;
        let tags: Vec<String> = c.zrangebyscore(UNACKED_INDEX, "-inf", cutoff).await?;
        let mut restored = 0;
        for tag in tags {
            let removed: i64 = c.zrem(UNACKED_INDEX, &tag).await?;
            if removed == 0 {
                continue;
            }
            let record: Option<String> = c.hget(UNACKED, &tag).await?;
            let _: () = c.hdel(UNACKED, &tag).await?;
            let Some(record) = record else { continue };
            let parsed: Value =
                serde_json::from_str(&record).map_err(|e| CeleryError::Message(e.to_string()))?;
            let queue = parsed[2].as_str().unwrap_or(&self.queue).to_string();
            let mut message = parsed[0].clone();
            message["headers"]["redelivered"] = json!(true);
            let _: () = c.lpush(queue, message.to_string()).await?;
            restored += 1;
        }
        Ok(restored)
    }

    /// Stores a task's state as Celery's Redis result backend does and
    /// publishes it to listeners of `AsyncResult.get()`.
    pub async fn store_result(
        &self,
        id: &str,
        status: &str,
        result: Value,
        traceback: Option<String>,
    ) -> Result<(), CeleryError> {
        let key = format!("celery-task-meta-{id}");
        let meta = json!({
            "status": status,
            "result": result,
            "traceback": traceback,
            "children": [],
            "date_done": if status == "STARTED" { Value::Null } else { json!(iso_now()) },
            "task_id": id,
        })
        .to_string();
        let mut c = self.backend.get_multiplexed_async_connection().await?;
        let _: () = c.set_ex(&key, &meta, self.result_expires).await?;
        let _: () = c.publish(&key, &meta).await?;
        Ok(())
    }

    /// Stores a task's failure as Celery does (the client re-raises it),
    /// worded as `message`.
    pub(crate) async fn store_failure(
        &self,
        id: &str,
        e: &AppError,
        message: &str,
    ) -> Result<(), CeleryError> {
        self.store_result(
            id,
            "FAILURE",
            exception(e, message),
            Some(format!("{message}\n")),
        )
        .await
    }

    /// Consumes the queue until the process ends, running each task with
    /// `app` (at most `concurrency` at once). Every task is also a job row in
    /// the database (created if a Python client sent it directly).
    pub async fn work(self, app: Arc<App>, concurrency: usize) {
        let slots = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
        tracing::info!(queue = %self.queue, concurrency, "worker ready");
        let restorer = self.clone();
        tokio::spawn(async move {
            loop {
                match restorer.restore_unacked().await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(n, "redelivered tasks whose worker stopped"),
                    Err(e) => tracing::warn!("cannot restore unacknowledged tasks: {e}"),
                }
                let period = (restorer.visibility_timeout / 4).clamp(1, 60);
                tokio::time::sleep(Duration::from_secs(period)).await;
            }
        });
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            match self.next(Duration::from_secs(1)).await {
                Ok(Some(delivery)) => {
                    let (broker, app) = (self.clone(), app.clone());
                    let span = job_span(&delivery.kwargs);
                    tokio::spawn(
                        async move {
                            broker.handle(&app, delivery).await;
                            drop(permit);
                        }
                        .instrument(span),
                    );
                }
                Ok(None) => drop(permit),
                Err(CeleryError::Message(m)) => {
                    tracing::error!("dropping a malformed message: {m}");
                    drop(permit);
                }
                Err(e) => {
                    tracing::warn!("broker unavailable: {e}");
                    drop(permit);
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    }

    /// Runs one delivered task and reports it in the database and the
    /// result backend, then acknowledges it.
    async fn handle(&self, app: &Arc<App>, d: Delivery) {
        if d.task == PART_TASK {
            return self.handle_part(app, &d).await;
        }
        let job = match start_job(app, &d).await {
            Ok(Some(job)) => job,
            Ok(None) => {
                // delivered again after it finished: nothing left to do
                let _ = self.ack(&d).await;
                return;
            }
            Err(e) => {
                // the database is down: leave the message unacknowledged so
                // it is redelivered once the visibility timeout has passed
                tracing::error!(task = %d.id, "cannot record the job: {e}");
                return;
            }
        };
        let _ = self
            .store_result(
                &d.id,
                "STARTED",
                json!({"pid": std::process::id(), "hostname": hostname()}),
                None,
            )
            .await;
        // each task's registry entry says whether and how it splits; an
        // unknown task name fails here
        match app.split(&d.task, &d.kwargs).await {
            Ok(None) => {}
            Ok(Some(split)) => {
                if let Err(e) = self.fan_out(&d.id, &split).await {
                    // unacknowledged: split again once Redis answers
                    tracing::warn!(task = %d.id, "cannot send the parts: {e}");
                    return;
                }
                if let Err(e) = self.ack(&d).await {
                    tracing::warn!(task = %d.id, "cannot acknowledge the task: {e}");
                }
                return;
            }
            Err(e) => {
                self.fail(app, &d.id, &e).await;
                let _ = self.ack(&d).await;
                return;
            }
        }
        let outcome = run_claimed(app, job).await;
        let stored = match &outcome {
            Ok(result) => {
                self.store_result(&d.id, "SUCCESS", result.clone(), None)
                    .await
            }
            Err(e) => {
                let message = (app.config.describe_error)(e);
                self.store_failure(&d.id, e, &message).await
            }
        };
        if let Err(e) = stored {
            tracing::error!(task = %d.id, "cannot store the task's result: {e}");
            return;
        }
        if let Err(e) = self.ack(&d).await {
            tracing::warn!(task = %d.id, "cannot acknowledge the task: {e}");
        }
    }
}

#[async_trait]
impl JobQueue for CeleryBroker {
    async fn send(&self, job: &JobRecord) -> Result<(), AppError> {
        self.send(&job.id, &job.task, &job.kwargs)
            .await
            .map_err(|e| AppError::QueueUnavailable {
                component: "Redis",
                message: e.to_string(),
            })
    }

    async fn ping(&self) -> Option<Result<(), String>> {
        Some(self.ping().await.map_err(|e| e.to_string()))
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}

/// Marks the delivery's job row `STARTED` (creating it for tasks sent
/// directly by a Celery client) and returns it; `None` if it has finished.
async fn start_job(app: &App, d: &Delivery) -> Result<Option<JobRecord>, StoreError> {
    if app.jobs.get_job(&d.id).await?.is_none() {
        let owner = d.kwargs[pentascope_app::jobs::OWNER_KWARG].as_str();
        app.jobs
            .create_job(&d.id, &d.task, &d.kwargs, owner)
            .await?;
    }
    app.jobs.start_job(&d.id, LEASE_SECS).await
}

/// The Python exception class a Celery client re-raises (`builtins`).
fn python_exception(e: &AppError) -> &'static str {
    match e {
        AppError::UnknownTask { .. } => "NotImplementedError",
        AppError::MalformedArguments(_) => "TypeError",
        AppError::InvalidArguments(_) | AppError::OverLimit { .. } => "ValueError",
        AppError::Forbidden(_) | AppError::Unauthenticated(_) => "PermissionError",
        AppError::Store(StoreError::NotFound(_)) => "LookupError",
        AppError::Store(StoreError::Core(_)) | AppError::Pass(PassError::Core(_)) => "ValueError",
        AppError::Pass(PassError::Store(StoreError::NotFound(_))) => "LookupError",
        _ => "RuntimeError",
    }
}

/// A task failure as Celery serialises exceptions (re-raised by the client).
fn exception(e: &AppError, message: &str) -> Value {
    json!({
        "exc_type": python_exception(e),
        "exc_message": [message],
        "exc_module": "builtins",
    })
}

fn parse(raw: &str) -> Result<Delivery, CeleryError> {
    let bad = |what: &str| CeleryError::Message(what.to_string());
    let envelope: Value = serde_json::from_str(raw).map_err(|e| bad(&e.to_string()))?;
    let headers = &envelope["headers"];
    let id = headers["id"].as_str().ok_or_else(|| bad("no headers.id"))?;
    let task = headers["task"]
        .as_str()
        .ok_or_else(|| bad("no headers.task"))?;
    let tag = envelope["properties"]["delivery_tag"]
        .as_str()
        .ok_or_else(|| bad("no properties.delivery_tag"))?;
    let body = envelope["body"].as_str().ok_or_else(|| bad("no body"))?;
    let body = match envelope["properties"]["body_encoding"].as_str() {
        Some("base64") => base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| bad(&format!("body is not base64: {e}")))?,
        _ => body.as_bytes().to_vec(),
    };
    if envelope["content-type"].as_str() != Some("application/json") {
        return Err(bad("only application/json task messages are supported"));
    }
    let mut body: Value = serde_json::from_slice(&body).map_err(|e| bad(&e.to_string()))?;
    if body[0].as_array().is_some_and(|a| !a.is_empty()) {
        return Err(bad("positional arguments are not supported; pass kwargs"));
    }
    let mut kwargs = body[1].take();
    if let (Some(trace), Some(args)) = (headers.get(TRACE_KWARG), kwargs.as_object_mut()) {
        args.entry(TRACE_KWARG).or_insert_with(|| trace.clone());
    }
    Ok(Delivery {
        id: id.to_string(),
        task: task.to_string(),
        kwargs,
        tag: tag.to_string(),
    })
}

fn unix_time() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn iso_now() -> String {
    // Celery writes naive UTC ISO 8601 timestamps
    let t = pentascope_store::record::now_rfc3339();
    t.trim_end_matches('Z').to_string()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn broker() -> CeleryBroker {
        CeleryBroker::new("redis://127.0.0.1:1/0", "redis://127.0.0.1:1/0", "q").unwrap()
    }

    #[test]
    fn a_jobs_trace_context_goes_in_the_headers_and_comes_back() {
        let kwargs = json!({"image_id": "image_1", TRACE_KWARG: TRACE});
        let envelope = broker().envelope("t1", "heavy_pca", &kwargs);
        assert_eq!(envelope["headers"]["traceparent"], TRACE);
        let delivery = parse(&envelope.to_string()).unwrap();
        assert_eq!(delivery.kwargs, kwargs);
        let untraced = broker().envelope("t2", "heavy_pca", &json!({"image_id": "image_1"}));
        assert!(untraced["headers"].get("traceparent").is_none());
    }

    #[test]
    fn a_trace_context_only_in_the_headers_joins_the_kwargs() {
        // as a Celery client with OpenTelemetry instrumentation sends it
        let mut envelope = broker().envelope("t3", "heavy_pca", &json!({"image_id": "image_1"}));
        envelope["headers"]["traceparent"] = json!(TRACE);
        let delivery = parse(&envelope.to_string()).unwrap();
        assert_eq!(
            delivery.kwargs,
            json!({"image_id": "image_1", TRACE_KWARG: TRACE})
        );
    }
}
