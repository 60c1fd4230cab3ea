//! `pentascope ingest PATH...`: imports files and folders through the same
//! use case as `POST /upload`, with a progress bar per file and a summary.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use pentascope_app::catalogue::NewEntry;
use pentascope_app::ingest::Upload;
use pentascope_app::jobs::InProcessQueue;
use pentascope_app::{App, Caller};
use pentascope_core::Axes;

use crate::{IngestSettings, StoreSettings};

/// Arguments of `pentascope ingest`.
#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    /// Files or folders to import (folders: their TIFF files, by ending).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Axes of every file's pages (`TYX`, `ZCYX`, …), overriding the files'
    /// own metadata, as the upload's `axes` field does.
    #[arg(long)]
    axes: Option<String>,
    /// Descend into sub-folders.
    #[arg(long, short = 'r')]
    recursive: bool,
    /// The user who owns the imported images (access control); default:
    /// no owner (only admins, or everyone with access control off, see them).
    #[arg(long)]
    owner: Option<String>,
    /// The image's name (one file only; default: the file's name).
    #[arg(long)]
    name: Option<String>,
    /// The images' description.
    #[arg(long)]
    description: Option<String>,
    /// A tag for every image (repeat for more).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// A key=value annotation for every image (repeat for more; a key may
    /// repeat).
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    annotations: Vec<String>,
    /// A dataset to put every image in: an id (dataset_<n>) or a name (the
    /// owner's dataset of that name, made if missing). Repeat for more.
    #[arg(long = "dataset", value_name = "NAME")]
    datasets: Vec<String>,
    #[command(flatten)]
    store: StoreSettings,
    #[command(flatten)]
    settings: IngestSettings,
}

impl IngestArgs {
    /// What every imported image is described with.
    fn entry(&self) -> NewEntry {
        NewEntry {
            name: self.name.clone(),
            description: self.description.clone(),
            tags: self.tags.clone(),
            annotations: self.annotations.clone(),
            datasets: self.datasets.clone(),
        }
    }
}

/// Imports every file, one at a time (each import uses every core). A file
/// read with an earlier one (a Micro-Manager dataset's or a multi-file
/// OME-TIFF set's other files, which the first imports with it) is not
/// imported again.
pub async fn run(args: IngestArgs) -> Result<(), String> {
    let axes = args
        .axes
        .as_deref()
        .map(Axes::parse)
        .transpose()
        .map_err(|e| e.to_string())?;
    let files = collect(&args.paths, args.recursive)?;
    if files.is_empty() {
        return Err("no TIFF files found in the paths given".into());
    }
    if args.name.is_some() && files.len() > 1 {
        return Err(format!(
            "--name names one image, but {} files were found: import them one at a time, \
             or leave --name out (each image is named after its file)",
            files.len()
        ));
    }
    // no runners: the command imports and leaves; the database and pixel
    // store are the ones `serve` uses with the same settings
    let app = Arc::new(
        App::open(
            args.settings.config(&args.store),
            Arc::new(InProcessQueue::default()),
        )
        .await
        .map_err(|e| e.to_string())?,
    );
    let caller = match &args.owner {
        Some(name) => app.act_as(name).await.map_err(|e| e.to_string())?,
        None => Caller::OPEN,
    };
    let style = ProgressStyle::with_template("{prefix:>40!} {bar:30} {pos}/{len} planes {msg}")
        .map_err(|e| e.to_string())?;
    let limits = args.settings.config(&args.store).limits;
    let mut failures = Vec::new();
    let (mut imported, mut read_with) = (0, 0);
    // file → the file it was read with
    let mut dataset_of: HashMap<PathBuf, PathBuf> = HashMap::new();
    for (n, path) in files.iter().enumerate() {
        let position = format!("[{}/{}]", n + 1, files.len());
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        if let Some(first) = dataset_of.get(&canonical) {
            read_with += 1;
            println!(
                "{position} {} was read with {} (a file of its dataset)",
                path.display(),
                first.display()
            );
            continue;
        }
        // a file that cannot be read is reported by its import
        for other in pentascope_tiff::dataset_files(path, &limits).unwrap_or_default() {
            let other = std::fs::canonicalize(&other).unwrap_or(other);
            dataset_of.entry(other).or_insert_with(|| path.clone());
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bar = ProgressBar::new(0)
            .with_style(style.clone())
            .with_prefix(name.clone());
        let started = Instant::now();
        let upload = Upload {
            path: path.to_path_buf(),
            name: name.clone(),
            byte_size: 0,
            axes: axes.clone(),
            entry: args.entry(),
        };
        let outcome = import(&app, &caller, upload, bar.clone()).await;
        bar.finish_and_clear();
        match outcome {
            Ok(summary) => {
                imported += 1;
                println!(
                    "{position} {} {summary} in {:.2} s",
                    path.display(),
                    started.elapsed().as_secs_f64()
                );
            }
            Err(e) => {
                println!("{position} {} FAILED: {e}", path.display());
                failures.push((path.clone(), e));
            }
        }
    }
    if read_with > 0 {
        println!(
            "imported {imported} of {} files ({read_with} read with another)",
            files.len()
        );
    } else {
        println!("imported {imported} of {} files", files.len());
    }
    if failures.is_empty() {
        return Ok(());
    }
    println!("failed:");
    for (path, reason) in &failures {
        println!("  {}: {reason}", path.display());
    }
    Err(format!(
        "{} of {} files failed",
        failures.len(),
        files.len()
    ))
}

/// Imports one file; a one-line description of the image.
async fn import(
    app: &Arc<App>,
    caller: &Caller,
    mut upload: Upload,
    bar: ProgressBar,
) -> Result<String, String> {
    upload.byte_size = std::fs::metadata(&upload.path)
        .map_err(|e| format!("cannot read: {e}"))?
        .len();
    let progress = Arc::new(move |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    });
    let record = app
        .ingest(caller, upload, progress)
        .await
        .map_err(|e| pentascope_server::settings::describe(&e))?;
    let mut line = format!(
        "→ {} ({:?} {}, {:?})",
        record.id,
        record.shape.to_array(),
        record.dtype,
        record.flavour
    );
    // the file's other series, each an image of its own
    let images = app
        .file_images(caller, &record)
        .await
        .map_err(|e| e.to_string())?;
    for image in images.iter().filter(|i| i.id != record.id) {
        if let Some(series) = &image.details.series {
            line.push_str(&format!(
                "; {} {} {:?} → {} ({:?})",
                series.kind.as_str(),
                series.index,
                series.name,
                image.id,
                image.shape.to_array()
            ));
        }
    }
    Ok(line)
}

/// The files to import, in a stable order: named files as given, folders'
/// TIFF files sorted by path.
fn collect(paths: &[PathBuf], recursive: bool) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        let meta =
            std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(path, recursive, &mut found)?;
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn walk(dir: &Path, recursive: bool, found: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .path();
        if path.is_dir() {
            if recursive {
                walk(&path, recursive, found)?;
            }
        } else if pentascope_tiff::is_tiff_name(&path) {
            found.push(path);
        }
    }
    Ok(())
}
