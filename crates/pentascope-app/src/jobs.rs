//! Background jobs: the [`Job`] trait (a typed argument struct per task),
//! the one registry of tasks ([`TASKS`]: adding a task is one `impl Job`
//! and one line there), and submission to a [`JobQueue`]. A job is always a row in the database, however it is run:
//! by this process's runners ([`InProcessQueue`]) or by Celery-compatible
//! workers (the Redis queue of `pentascope-jobs`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use pentascope_store::records::JobRecord;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;

use crate::access::{Caller, Who};
use crate::analyze::PcaArgs;
use crate::app::App;
use crate::audit::Action;
use crate::error::AppError;
use crate::images::{Statistics, StatisticsArgs};
use crate::segment::SegmentArgs;
use crate::split::Phase;
use crate::trace::TRACE_KWARG;
use crate::Progress;
use pentascope_store::records::Scope;
use pentascope_store::ImageRecord;

/// A task that can run in the background, named as clients send it
/// (`app.send_task("heavy_pca", kwargs=…)`), with its keyword arguments as
/// one typed struct.
#[async_trait]
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The task name.
    const NAME: &'static str;
    /// Whether [`Job::split_plan`] may cut it into parts.
    const SPLITS: bool = false;
    /// Runs the task for `caller`; `progress` is told the fraction done.
    async fn run(
        self,
        app: &Arc<App>,
        caller: &Caller,
        progress: Progress,
    ) -> Result<Value, AppError>;
    /// Checks what can be checked before the job is queued, so that a bad
    /// request is refused at once rather than failing later.
    async fn check(&self, app: &App, caller: &Caller) -> Result<(), AppError>;
    /// How the job is cut into parts over workers ([`crate::split`]), or
    /// `None` where the task never is (the default).
    async fn split_plan(
        &self,
        _app: &App,
        _caller: &Caller,
    ) -> Result<Option<SplitPlan>, AppError> {
        Ok(None)
    }
}

/// What a splittable job reads and how its split starts.
#[derive(Debug)]
pub struct SplitPlan {
    /// The image the parts read, checked for the job's owner.
    pub source: ImageRecord,
    /// The first pass, or `None` where this job is small enough to run
    /// whole (a PCA whose scores are answered inline).
    pub first_pass: Option<Phase>,
    /// Components the merged model keeps (PCA; 0 for the others).
    pub components: usize,
}

/// `heavy_pca(image_id, n_components)`: PCA with its scores image.
#[async_trait]
impl Job for PcaArgs {
    const NAME: &'static str = "heavy_pca";
    const SPLITS: bool = true;

    async fn run(
        self,
        app: &Arc<App>,
        caller: &Caller,
        progress: Progress,
    ) -> Result<Value, AppError> {
        to_json(&app.analyze(caller, &self, progress).await?)
    }

    async fn check(&self, app: &App, caller: &Caller) -> Result<(), AppError> {
        app.pca_source(caller, self).await.map(|_| ())
    }

    async fn split_plan(&self, app: &App, caller: &Caller) -> Result<Option<SplitPlan>, AppError> {
        let source = app.pca_source(caller, self).await?;
        let components = self.components_for(source.shape.c);
        let values = source.shape.pixels_per_channel() * components;
        Ok(Some(SplitPlan {
            first_pass: (values > app.config.inline_scores_cap).then_some(Phase::Covariance),
            components: components as usize,
            source,
        }))
    }
}

/// An answer as a task result: through text, so that a PCA's f32 scores
/// keep their shortest form, as in the synchronous answer.
pub(crate) fn to_json<T: Serialize>(result: &T) -> Result<Value, AppError> {
    serde_json::to_string(result)
        .and_then(|text| serde_json::from_str(&text))
        .map_err(|e| AppError::Internal(e.to_string()))
}

/// `heavy_statistics(image_id)`: every channel's statistics recomputed from
/// the stored pixels (as `GET /statistics?recompute=true` answers). Split
/// over workers like a PCA.
#[async_trait]
impl Job for StatisticsArgs {
    const NAME: &'static str = "heavy_statistics";
    const SPLITS: bool = true;

    async fn run(
        self,
        app: &Arc<App>,
        caller: &Caller,
        _progress: Progress,
    ) -> Result<Value, AppError> {
        let (record, statistics) = app.statistics(caller, &self.image_id, true).await?;
        to_json(&Statistics::of(record.id, &statistics))
    }

    async fn check(&self, app: &App, caller: &Caller) -> Result<(), AppError> {
        app.image(caller, &self.image_id).await.map(|_| ())
    }

    async fn split_plan(&self, app: &App, caller: &Caller) -> Result<Option<SplitPlan>, AppError> {
        Ok(Some(SplitPlan {
            source: app.image(caller, &self.image_id).await?,
            first_pass: Some(Phase::Statistics),
            components: 0,
        }))
    }
}

/// `heavy_segmentation(image_id, z=0, t=0, c=0, method='otsu', **kwargs)`:
/// thresholds, k-means and objects with a labels image.
#[async_trait]
impl Job for SegmentArgs {
    const NAME: &'static str = "heavy_segmentation";

    async fn run(
        self,
        app: &Arc<App>,
        caller: &Caller,
        progress: Progress,
    ) -> Result<Value, AppError> {
        let result = app.segment(caller, &self, progress).await?;
        serde_json::to_value(&result).map_err(|e| AppError::Internal(e.to_string()))
    }

    async fn check(&self, app: &App, caller: &Caller) -> Result<(), AppError> {
        app.segment_check(caller, self).await
    }
}

/// The one registry of tasks: every name a client may send, and how each
/// is run and split.
pub static TASKS: [Task; 3] = [
    Task::of::<PcaArgs>(),
    Task::of::<SegmentArgs>(),
    Task::of::<StatisticsArgs>(),
];

/// A future a task entry gives, borrowing what it was called with.
type TaskFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, AppError>> + Send + 'a>>;

/// One task of [`TASKS`]: its [`Job`] implementation behind its name.
pub struct Task {
    /// The name clients send (`heavy_pca`).
    pub name: &'static str,
    /// Whether it may be cut into parts ([`Job::SPLITS`]).
    pub splits: bool,
    run: for<'a> fn(&'a Arc<App>, &'a Caller, &'a Value, Progress) -> TaskFuture<'a, Value>,
    split_plan: for<'a> fn(&'a App, &'a Caller, &'a Value) -> TaskFuture<'a, Option<SplitPlan>>,
}

impl Task {
    const fn of<J: Job>() -> Task {
        Task {
            name: J::NAME,
            splits: J::SPLITS,
            run: run_job::<J>,
            split_plan: split_plan_of::<J>,
        }
    }

    /// Runs the task with keyword arguments `kwargs` (the owner taken out).
    pub async fn run(
        &self,
        app: &Arc<App>,
        caller: &Caller,
        kwargs: &Value,
        progress: Progress,
    ) -> Result<Value, AppError> {
        (self.run)(app, caller, kwargs, progress).await
    }

    /// How the task with `kwargs` is split, `None` where it never is.
    pub async fn split_plan(
        &self,
        app: &App,
        caller: &Caller,
        kwargs: &Value,
    ) -> Result<Option<SplitPlan>, AppError> {
        (self.split_plan)(app, caller, kwargs).await
    }
}

fn run_job<'a, J: Job>(
    app: &'a Arc<App>,
    caller: &'a Caller,
    kwargs: &'a Value,
    progress: Progress,
) -> TaskFuture<'a, Value> {
    Box::pin(async move { parse::<J>(kwargs)?.run(app, caller, progress).await })
}

fn split_plan_of<'a, J: Job>(
    app: &'a App,
    caller: &'a Caller,
    kwargs: &'a Value,
) -> TaskFuture<'a, Option<SplitPlan>> {
    Box::pin(async move { parse::<J>(kwargs)?.split_plan(app, caller).await })
}

/// The task named `name`, or an error listing the known ones.
pub fn task(name: &str) -> Result<&'static Task, AppError> {
    TASKS
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| AppError::UnknownTask {
            name: name.to_string(),
            known: task_names().collect::<Vec<_>>().join(", "),
        })
}

/// Every task name, as workers announce them.
pub fn task_names() -> impl Iterator<Item = &'static str> {
    TASKS.iter().map(|t| t.name)
}

/// The keyword argument that names the user a job acts for. Jobs submitted
/// over HTTP carry it; Celery clients may set it.
pub const OWNER_KWARG: &str = "owner";

/// Runs task `name` with keyword arguments `kwargs` (parsed into the
/// task's argument struct, after the owner is taken out).
pub async fn run_task(
    app: &Arc<App>,
    name: &str,
    kwargs: &Value,
    progress: Progress,
) -> Result<Value, AppError> {
    let started = std::time::Instant::now();
    let outcome = run_named_task(app, name, kwargs, progress).await;
    crate::monitoring::job_finished(name, started.elapsed(), outcome.is_ok());
    outcome
}

async fn run_named_task(
    app: &Arc<App>,
    name: &str,
    kwargs: &Value,
    progress: Progress,
) -> Result<Value, AppError> {
    let task = task(name)?;
    let (owner, kwargs) = split_owner(kwargs);
    let caller = app.job_caller(owner.as_ref()).await?;
    task.run(app, &caller, &kwargs, progress).await
}

/// The owner named in a task's keyword arguments, and the task's own
/// arguments: without the owner nor the trace context.
pub(crate) fn split_owner(kwargs: &Value) -> (Option<Value>, Value) {
    let mut kwargs = kwargs.clone();
    let owner = kwargs.as_object_mut().and_then(|args| {
        args.remove(TRACE_KWARG);
        args.remove(OWNER_KWARG)
    });
    (owner, kwargs)
}

/// A task's arguments from keyword arguments, with a message naming the task
/// and the argument at fault.
pub fn parse<J: Job>(kwargs: &Value) -> Result<J, AppError> {
    serde_path_to_error::deserialize(kwargs).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            String::new()
        } else {
            format!("{path}: ")
        };
        AppError::MalformedArguments(format!(
            "invalid arguments for {}: {at}{}",
            J::NAME,
            e.inner()
        ))
    })
}

/// Where submitted jobs go.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Hands a recorded job to whoever runs jobs.
    async fn send(&self, job: &JobRecord) -> Result<(), AppError>;
    /// Whether the queue answers; `None` when there is nothing to ask
    /// (in-process runners).
    async fn ping(&self) -> Option<Result<(), String>>;
    /// The queue's backend, for `/health`.
    fn backend(&self) -> &'static str;
}

/// Jobs run by this process's runners, which are woken on submission (and
/// poll the database for jobs submitted elsewhere).
#[derive(Debug, Default)]
pub struct InProcessQueue {
    /// Notified on every submission.
    pub submitted: Notify,
}

#[async_trait]
impl JobQueue for InProcessQueue {
    async fn send(&self, _: &JobRecord) -> Result<(), AppError> {
        self.submitted.notify_one();
        Ok(())
    }

    async fn ping(&self) -> Option<Result<(), String>> {
        None
    }

    fn backend(&self) -> &'static str {
        "in-process"
    }
}

impl App {
    /// Checks a job's arguments for `caller`, records it as `PENDING`, owned
    /// by the caller, and queues it.
    pub async fn submit<J: Job>(&self, caller: &Caller, args: J) -> Result<JobRecord, AppError> {
        args.check(self, caller).await?;
        let id = uuid::Uuid::new_v4().to_string();
        let mut kwargs =
            serde_json::to_value(&args).map_err(|e| AppError::Internal(e.to_string()))?;
        if let Some(map) = kwargs.as_object_mut() {
            if let Some(owner) = caller.owner() {
                map.insert(OWNER_KWARG.into(), owner.into());
            }
            // the job continues the submitting request's trace
            if let Some(trace) = crate::trace::current() {
                map.insert(TRACE_KWARG.into(), trace.to_string().into());
            }
        }
        self.jobs
            .create_job(&id, J::NAME, &kwargs, caller.owner())
            .await?;
        let job = self.job(caller, &id).await?;
        self.queue.send(&job).await?;
        self.audit(caller, Action::JobSubmit, &id, J::NAME).await;
        Ok(job)
    }

    /// A job by id, if `caller` submitted it (or is an admin).
    pub async fn job(&self, caller: &Caller, id: &str) -> Result<JobRecord, AppError> {
        caller.require(Scope::Read)?;
        self.jobs
            .get_job(id)
            .await?
            .filter(|job| match &caller.who {
                Who::Open => true,
                Who::User { name, scope, .. } => {
                    *scope == Scope::Admin || job.owner.as_deref() == Some(name)
                }
                Who::Anonymous | Who::Link { .. } => false,
            })
            .ok_or_else(|| AppError::JobNotFound(id.to_string()))
    }

    /// Whom a job acts for: the user its `owner` names (an admin keeps
    /// admin rights, anyone else writes), else the configured service user,
    /// else nobody in particular (unrestricted, as before access control).
    pub(crate) async fn job_caller(&self, owner: Option<&Value>) -> Result<Caller, AppError> {
        let name = match owner {
            Some(Value::String(name)) => Some(name.as_str()),
            Some(Value::Null) | None => self.config.service_user.as_deref(),
            Some(other) => {
                return Err(AppError::MalformedArguments(format!(
                    "{OWNER_KWARG} must be a user name, got {other}"
                )))
            }
        };
        match name {
            Some(name) => self.act_as(name).await,
            None => Ok(Caller::OPEN),
        }
    }
}
