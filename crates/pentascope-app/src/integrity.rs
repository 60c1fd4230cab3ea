//! `pentascope check`: whether every image record has its pixels and they
//! are what the record says, and what the stores hold that no record owns.
//!
//! - every published record: its pixel group opens and its array's shape
//!   and type are the record's (a PCA scores image, which has no pixels of
//!   its own, needs its source);
//! - deep: every chunk of every level is read and decoded, and the
//!   statistics recomputed from level 0 are compared with the stored ones;
//! - orphans: pixel groups without a record, staged groups and ids
//!   reserved long ago by uploads that never finished, spooled upload files
//!   left behind.
//!
//! Repairing removes orphans and marks broken images with a warning in
//! their metadata; a record is never deleted.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pentascope_core::stats::ChannelStats;
use pentascope_passes::analysis::{read_levels, recompute_statistics};
use pentascope_passes::cancel::Cancel;
use pentascope_store::{ImageId, ImageRecord};

use crate::app::{blocking, App};
use crate::error::AppError;

/// What to check.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// Read and decode every chunk, and compare recomputed statistics.
    pub deep: bool,
    /// Remove orphans and mark broken images.
    pub repair: bool,
    /// Unfinished uploads and spooled files younger than this may be in
    /// progress and are left alone.
    pub in_progress_for: Duration,
}

/// What is wrong with an image or a stored object.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// A published record has no pixel group.
    MissingPixels,
    /// The pixel group does not open, or a chunk is missing or does not
    /// decode.
    Unreadable(String),
    /// The group's array is not the shape or type of its record.
    MetadataMismatch(String),
    /// Statistics recomputed from the pixels differ from the stored ones.
    StatisticsMismatch(String),
    /// A PCA scores image whose source image is gone.
    MissingSource(ImageId),
    /// A pixel group no record owns.
    OrphanPixels,
    /// A staged pixel group no upload in progress owns.
    StagedOrphan,
    /// An id reserved for an upload that never finished.
    StalePending,
    /// A spooled upload file left behind.
    StaleSpool(PathBuf),
}

impl Problem {
    /// Whether the image it is about is broken (rather than an orphan to
    /// remove).
    pub fn breaks_image(&self) -> bool {
        matches!(
            self,
            Problem::MissingPixels
                | Problem::Unreadable(_)
                | Problem::MetadataMismatch(_)
                | Problem::StatisticsMismatch(_)
                | Problem::MissingSource(_)
        )
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::MissingPixels => f.write_str("its record has no pixels"),
            Problem::Unreadable(e) => write!(f, "its pixels do not read: {e}"),
            Problem::MetadataMismatch(e) => write!(f, "its pixels are not its record's: {e}"),
            Problem::StatisticsMismatch(e) => {
                write!(f, "its pixels differ from what was stored: {e}")
            }
            Problem::MissingSource(source) => {
                write!(f, "the image it is computed from, {source}, is gone")
            }
            Problem::OrphanPixels => f.write_str("pixels without a record"),
            Problem::StagedOrphan => f.write_str("staged pixels of no upload in progress"),
            Problem::StalePending => f.write_str("an upload that never finished"),
            Problem::StaleSpool(path) => {
                write!(f, "a spooled upload left behind: {}", path.display())
            }
        }
    }
}

/// One problem found, and what repairing did about it.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The image (or pixel group) it is about; `None` for spooled files.
    pub image: Option<ImageId>,
    /// What is wrong.
    pub problem: Problem,
    /// What `--repair` did, if it ran.
    pub repair: Option<Result<String, String>>,
}

/// What a check found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// Published records checked.
    pub records: usize,
    /// Pixel groups in the store.
    pub groups: usize,
    /// Everything wrong.
    pub findings: Vec<Finding>,
}

/// The warning that marks a broken image, in its metadata's `warnings`.
pub const BROKEN: &str = "broken (pentascope check): ";

/// Told each image checked: how many of how many.
pub type CheckProgress = Arc<dyn Fn(usize, usize) + Send + Sync>;

impl App {
    /// Checks every record and the stores (see the module documentation).
    pub async fn check(
        &self,
        options: CheckOptions,
        progress: CheckProgress,
    ) -> Result<CheckReport, AppError> {
        let records = self.images.list().await?;
        let pixels = self.pixels.clone();
        let stored = blocking(move || Ok(pixels.list_images()?)).await?;
        let cutoff = SystemTime::now()
            .checked_sub(options.in_progress_for)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let cutoff_text = humantime::format_rfc3339_millis(cutoff).to_string();
        let far_future = "9999-12-31T23:59:59Z";
        let pending: BTreeSet<ImageId> =
            self.images.pending(far_future).await?.into_iter().collect();
        let stale: BTreeSet<ImageId> = self
            .images
            .pending(&cutoff_text)
            .await?
            .into_iter()
            .collect();
        let published: BTreeSet<ImageId> = stored.published.iter().copied().collect();
        let ready: BTreeSet<ImageId> = records.iter().map(|r| r.id).collect();

        let mut report = CheckReport {
            records: records.len(),
            groups: stored.published.len(),
            findings: Vec::new(),
        };
        let mut found = |image: Option<ImageId>, problem: Problem| {
            report.findings.push(Finding {
                image,
                problem,
                repair: None,
            })
        };
        for (n, record) in records.iter().enumerate() {
            if let Some(problem) = self
                .check_record(record, &published, &ready, options.deep)
                .await?
            {
                found(Some(record.id), problem);
            }
            progress(n + 1, records.len());
        }
        for &id in &stored.published {
            if !ready.contains(&id) && !pending.contains(&id) {
                found(Some(id), Problem::OrphanPixels);
            }
        }
        for &id in &stored.staged {
            // staged pixels of an upload still in progress have a recent
            // reservation; those of stale reservations go with them
            if !pending.contains(&id) {
                found(Some(id), Problem::StagedOrphan);
            }
        }
        for &id in &stale {
            found(Some(id), Problem::StalePending);
        }
        for path in stale_spool(&self.config.spool_dir(), cutoff) {
            found(None, Problem::StaleSpool(path));
        }
        if options.repair {
            for finding in &mut report.findings {
                finding.repair = Some(self.repair(finding, &ready).await);
            }
        }
        Ok(report)
    }

    /// What is wrong with one published record, if anything.
    async fn check_record(
        &self,
        record: &ImageRecord,
        published: &BTreeSet<ImageId>,
        ready: &BTreeSet<ImageId>,
        deep: bool,
    ) -> Result<Option<Problem>, AppError> {
        if record.details.pca.is_some() {
            // virtual: projected from its source on request
            return Ok(match record.source_image_id {
                Some(source) if !ready.contains(&source) => Some(Problem::MissingSource(source)),
                _ => None,
            });
        }
        if !published.contains(&record.id) {
            return Ok(Some(Problem::MissingPixels));
        }
        let (pixels, checked) = (self.pixels.clone(), record.clone());
        let part_pixels = self.config.part_pixels;
        blocking(move || Ok(check_pixels(&*pixels, &checked, deep, part_pixels))).await
    }

    /// Repairs what can be repaired of `finding`: orphans are removed,
    /// broken images marked.
    async fn repair(&self, finding: &Finding, ready: &BTreeSet<ImageId>) -> Result<String, String> {
        let remove_pixels = |id: ImageId| {
            let pixels = self.pixels.clone();
            blocking(move || Ok(pixels.delete(id)?))
        };
        match (&finding.problem, finding.image) {
            (Problem::OrphanPixels | Problem::StagedOrphan, Some(id)) => {
                if ready.contains(&id) {
                    return Err(format!("left alone: {id} is a published image"));
                }
                remove_pixels(id).await.map_err(|e| e.to_string())?;
                Ok("removed".into())
            }
            (Problem::StalePending, Some(id)) => {
                remove_pixels(id).await.map_err(|e| e.to_string())?;
                self.images.discard(id).await.map_err(|e| e.to_string())?;
                Ok("removed with its pixels".into())
            }
            (Problem::StaleSpool(path), _) => std::fs::remove_file(path)
                .map(|()| "removed".to_string())
                .map_err(|e| e.to_string()),
            (problem, Some(id)) if problem.breaks_image() => self.mark_broken(id, problem).await,
            _ => Err("nothing to repair".into()),
        }
    }

    /// Adds the broken warning to image `id`'s metadata (once per problem).
    async fn mark_broken(&self, id: ImageId, problem: &Problem) -> Result<String, String> {
        let Some(mut record) = self.images.get(id).await.map_err(|e| e.to_string())? else {
            return Err("its record is gone".into());
        };
        let warning = format!("{BROKEN}{problem}");
        if record.details.warnings.contains(&warning) {
            return Ok("already marked broken".into());
        }
        record.details.warnings.push(warning);
        self.images
            .update_details(id, &record.details)
            .await
            .map_err(|e| e.to_string())?;
        self.caches.forget(id);
        Ok("marked broken (a warning in its metadata)".into())
    }
}

/// Opens an image's pixels and compares them with its record; deep, reads
/// every chunk and compares the statistics too (blocking).
fn check_pixels(
    pixels: &dyn pentascope_store::pixels::PixelStore,
    record: &ImageRecord,
    deep: bool,
    part_pixels: u64,
) -> Option<Problem> {
    let reader = match pixels.open(record.id) {
        Ok(reader) => reader,
        Err(e) => return Some(Problem::Unreadable(e.to_string())),
    };
    let layout = reader.layout();
    if layout.shape != record.shape || layout.dtype != record.dtype {
        return Some(Problem::MetadataMismatch(format!(
            "the array is {} {:?} (TZCYX), the record {} {:?}",
            layout.dtype,
            layout.shape.to_array(),
            record.dtype,
            record.shape.to_array()
        )));
    }
    if !deep {
        return None;
    }
    let cancel = Cancel::new();
    let statistics = match recompute_statistics(&*reader, part_pixels, &cancel) {
        Ok(statistics) => statistics,
        Err(e) => return Some(Problem::Unreadable(e.to_string())),
    };
    if let Err(e) = read_levels(&*reader, &cancel) {
        return Some(Problem::Unreadable(e.to_string()));
    }
    statistics_differ(&record.statistics, &statistics).map(Problem::StatisticsMismatch)
}

/// How recomputed statistics differ from stored ones, if they do: counts,
/// minima and maxima exactly, means and deviations within rounding.
fn statistics_differ(stored: &[ChannelStats], recomputed: &[ChannelStats]) -> Option<String> {
    if stored.is_empty() {
        return None;
    }
    if stored.len() != recomputed.len() {
        return Some(format!(
            "{} channels stored, {} read",
            stored.len(),
            recomputed.len()
        ));
    }
    let same = |a: f64, b: f64| a == b || a.is_nan() && b.is_nan();
    let close =
        |a: f64, b: f64| same(a, b) || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
    for (c, (s, r)) in stored.iter().zip(recomputed).enumerate() {
        let agree = s.count == r.count
            && same(s.min, r.min)
            && same(s.max, r.max)
            && close(s.mean, r.mean)
            && close(s.std, r.std);
        if !agree {
            return Some(format!(
                "channel {c}: stored count {} min {} max {} mean {}, read count {} min {} max {} mean {}",
                s.count, s.min, s.max, s.mean, r.count, r.min, r.max, r.mean
            ));
        }
    }
    None
}

/// Files in the upload spool last written before `cutoff`.
fn stale_spool(dir: &std::path::Path, cutoff: SystemTime) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut stale: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|modified| modified < cutoff)
        })
        .map(|e| e.path())
        .collect();
    stale.sort();
    stale
}

#[cfg(test)]
mod tests {
    use super::*;
    use pentascope_core::stats::StatsAccumulator;

    fn stats(samples: &[u16]) -> Vec<ChannelStats> {
        let mut acc = StatsAccumulator::<u16>::new();
        acc.add(samples);
        vec![acc.finish()]
    }

    #[test]
    fn statistics_differ_on_any_change_but_rounding() {
        let a = stats(&[1, 2, 3, 4]);
        assert_eq!(statistics_differ(&a, &a), None);
        assert_eq!(statistics_differ(&[], &a), None, "nothing stored");
        assert!(statistics_differ(&a, &stats(&[1, 2, 3, 5])).is_some());
        assert!(statistics_differ(&a, &stats(&[1, 2, 3])).is_some());
        let mut rounded = a.clone();
        rounded[0].mean *= 1.0 + 1e-12;
        assert_eq!(statistics_differ(&a, &rounded), None);
        assert!(statistics_differ(&a, &[a[0].clone(), a[0].clone()]).is_some());
    }
}
