//! One large job on many workers: a statistics recompute or a PCA of one
//! image cut into parts over chunk ranges (`pentascope_passes::analysis::parts`),
//! each part a task of its own, the partial results merged where the last
//! part finishes. The parts and their merge order depend only on the image,
//! so the result is the one a single worker computes, bit for bit.
//!
//! A split job runs in phases: statistics have one (statistics partials);
//! a PCA two (covariance partials, then, under the fitted model, the
//! scores' statistics). The transport (`pentascope-jobs`) carries the
//! [`Split`] between workers, stores the partial results and decides who
//! merges; this module says what a part computes and what a merge gives.

use std::sync::Arc;

use pentascope_core::pca::PcaModel;
use pentascope_passes::analysis::{
    covariance_part, exact_score_windows, fit_parts, merge_score_statistics, merge_statistics,
    parts, scores_part, statistics_part, PcaOutcome,
};
use pentascope_passes::cancel::Cancel;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::access::Caller;
use crate::analyze::PcaArgs;
use crate::app::{blocking, App};
use crate::error::AppError;
use crate::images::{open_pixels, Statistics};
use crate::jobs::{self, split_owner, SplitPlan};

/// The pass of a split job whose parts are running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Per-channel statistics of each part.
    Statistics,
    /// The channels' covariance over each part.
    Covariance,
    /// The statistics of each part's scores under the fitted model.
    Scores {
        /// The model fitted from the merged covariance.
        model: PcaModel,
    },
}

/// A job split into parts, as it travels between workers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Split {
    /// The task split (`heavy_statistics`, `heavy_pca`).
    pub task: String,
    /// Its keyword arguments, the owner among them.
    pub kwargs: Value,
    /// The pass whose parts are running.
    pub phase: Phase,
    /// How many parts the pass has.
    pub parts: usize,
    /// Pixels per channel in one part, as the splitting worker was
    /// configured: every worker cuts the parts the same way.
    pub part_pixels: u64,
}

impl Split {
    /// The fraction of the whole job done when `done` parts of this pass
    /// are (a PCA's two passes are half each).
    pub fn progress(&self, done: usize) -> f64 {
        let (before, passes) = match self.phase {
            Phase::Statistics => (0.0, 1.0),
            Phase::Covariance => (0.0, 2.0),
            Phase::Scores { .. } => (1.0, 2.0),
        };
        (before + done as f64 / self.parts.max(1) as f64) / passes
    }
}

/// What merging a pass's parts gives.
#[derive(Debug)]
pub enum Merged {
    /// The next pass, to be run in parts.
    Next(Split),
    /// The job's result.
    Done(Value),
}

impl App {
    /// How `task` with `kwargs` is split, or `None` when it runs whole: a
    /// task that cannot be split, an image of one part, or a PCA small
    /// enough to answer with its scores inline. Checks the arguments and
    /// the caller's access as running the task would.
    pub async fn split(&self, task: &str, kwargs: &Value) -> Result<Option<Split>, AppError> {
        let task = jobs::task(task)?;
        if !task.splits {
            return Ok(None);
        }
        let (caller, args) = self.task_caller(kwargs).await?;
        let plan = task.split_plan(self, &caller, &args).await?;
        let Some(SplitPlan {
            source,
            first_pass: Some(phase),
            ..
        }) = plan
        else {
            return Ok(None);
        };
        let part_pixels = self.config.part_pixels;
        let (pixels, record) = (self.pixels.clone(), source.clone());
        let n =
            blocking(
                move || Ok(parts(open_pixels(&*pixels, &record)?.layout(), part_pixels).len()),
            )
            .await?;
        Ok((n > 1).then(|| Split {
            task: task.name.to_string(),
            kwargs: kwargs.clone(),
            phase,
            parts: n,
            part_pixels,
        }))
    }

    /// How a split job was planned: the image it reads, checked for the
    /// job's owner.
    async fn split_plan(&self, split: &Split) -> Result<SplitPlan, AppError> {
        let (caller, args) = self.task_caller(&split.kwargs).await?;
        jobs::task(&split.task)?
            .split_plan(self, &caller, &args)
            .await?
            .ok_or_else(|| AppError::InvalidArguments(format!("{} cannot be split", split.task)))
    }

    /// Computes part `part` of the split's current pass: its partial
    /// result, encoded. Stops if the image is deleted meanwhile.
    pub async fn run_part(
        self: &Arc<Self>,
        split: &Split,
        part: usize,
    ) -> Result<Vec<u8>, AppError> {
        if part >= split.parts {
            return Err(AppError::InvalidArguments(format!(
                "part {part} of a job split into {} parts (0..{})",
                split.parts, split.parts
            )));
        }
        let source = self.split_plan(split).await?.source;
        let cancel = Cancel::new();
        let _reading = self.reading(source.id, &cancel);
        let (pixels, record, phase) = (self.pixels.clone(), source.clone(), split.phase.clone());
        let size = split.part_pixels;
        let computed = blocking(move || {
            let reader = open_pixels(&*pixels, &record)?;
            Ok(match &phase {
                Phase::Statistics => statistics_part(&*reader, size, part, &cancel)?,
                Phase::Covariance => covariance_part(&*reader, size, part, &cancel)?,
                Phase::Scores { model } => scores_part(&*reader, model, size, part, &cancel)?,
            })
        })
        .await;
        match computed {
            Ok(bytes) => Ok(bytes),
            Err(e) => Err(self.unless_deleted(source.id, e).await),
        }
    }

    /// Merges the partial results of every part of the split's current
    /// pass, in part order: the next pass, or the job's result (for a PCA,
    /// its scores image is registered then).
    pub async fn merge_parts(
        self: &Arc<Self>,
        split: &Split,
        partials: Vec<Vec<u8>>,
    ) -> Result<Merged, AppError> {
        if partials.len() != split.parts {
            return Err(AppError::Internal(format!(
                "{} partial results for {} parts",
                partials.len(),
                split.parts
            )));
        }
        let SplitPlan {
            source,
            components: k,
            ..
        } = self.split_plan(split).await?;
        let phase = split.phase.clone();
        let (dtype, channels) = (source.dtype, source.shape.c as usize);
        // the record has the type and channels: merging reads no pixels,
        // except for the passes that find the scores' display windows
        let (pixels, record, part_pixels) =
            (self.pixels.clone(), source.clone(), split.part_pixels);
        let merged = blocking(move || {
            Ok(match phase {
                Phase::Statistics => {
                    MergedPass::Statistics(merge_statistics(dtype, channels, &partials)?)
                }
                Phase::Covariance => MergedPass::Model(fit_parts(channels, &partials, k)?),
                Phase::Scores { model } => {
                    let mut statistics = merge_score_statistics(k, &partials)?;
                    let reader = open_pixels(&*pixels, &record)?;
                    exact_score_windows(
                        &*reader,
                        &model,
                        &mut statistics,
                        part_pixels,
                        &Cancel::new(),
                    )?;
                    MergedPass::Scores(model, statistics)
                }
            })
        })
        .await;
        let merged = match merged {
            Ok(m) => m,
            Err(e) => return Err(self.unless_deleted(source.id, e).await),
        };
        Ok(match merged {
            MergedPass::Statistics(statistics) => {
                Merged::Done(jobs::to_json(&Statistics::of(source.id, &statistics))?)
            }
            MergedPass::Model(model) => Merged::Next(Split {
                phase: Phase::Scores { model },
                ..split.clone()
            }),
            MergedPass::Scores(model, score_statistics) => {
                let outcome = PcaOutcome {
                    model,
                    score_statistics,
                    inline_scores: None,
                };
                // only a PCA has a scores pass
                let (_, args) = split_owner(&split.kwargs);
                let args = jobs::parse::<PcaArgs>(&args)?;
                let cap = self.config.inline_scores_cap;
                let result = self.publish_pca(&source, &args, outcome, cap).await?;
                Merged::Done(jobs::to_json(&result)?)
            }
        })
    }

    /// The caller a task acts for and its arguments without the owner.
    async fn task_caller(&self, kwargs: &Value) -> Result<(Caller, Value), AppError> {
        let (owner, args) = split_owner(kwargs);
        Ok((self.job_caller(owner.as_ref()).await?, args))
    }
}

/// A pass's parts merged, before the answer is built.
enum MergedPass {
    Statistics(Vec<pentascope_core::stats::ChannelStats>),
    Model(PcaModel),
    Scores(PcaModel, Vec<pentascope_core::stats::ChannelStats>),
}
