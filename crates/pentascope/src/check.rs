//! `pentascope check [--deep] [--repair]`: whether every image's pixels are
//! there and are what its record says, and what no record owns; exits
//! non-zero when anything is wrong.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use pentascope_app::integrity::{CheckOptions, CheckReport};
use pentascope_app::jobs::InProcessQueue;
use pentascope_app::App;

use crate::StoreSettings;

/// Arguments of `pentascope check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Read and decode every chunk of every image (on all cores), and
    /// compare the statistics recomputed from them with the stored ones.
    #[arg(long)]
    deep: bool,
    /// Remove orphans (pixels without a record, unfinished uploads, spooled
    /// files) and mark broken images with a warning in their metadata.
    /// Records are never deleted.
    #[arg(long)]
    repair: bool,
    /// Unfinished uploads younger than this may still be in progress (a
    /// server running on the same data) and are left alone.
    #[arg(long, default_value = "6h", value_parser = humantime::parse_duration)]
    in_progress_for: Duration,
    /// Cores the deep check reads and decodes on (default: all); fewer
    /// leave a server on the same machine its share.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    #[command(flatten)]
    settings: StoreSettings,
}

/// Runs the check and prints one line per problem, then a summary.
pub async fn run(args: CheckArgs) -> Result<(), String> {
    if let Some(threads) = args.threads {
        // every parallel pass of the check runs on rayon's global pool
        rayon::ThreadPoolBuilder::new()
            .num_threads(usize::from(threads))
            .build_global()
            .map_err(|e| format!("--threads {threads}: {e}"))?;
    }
    // no runners: the check reads the stores that `serve` uses with the
    // same settings, and may run beside it
    let app = App::open(args.settings.config(), Arc::new(InProcessQueue::default()))
        .await
        .map_err(|e| e.to_string())?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("checking {bar:30} {pos}/{len} images {elapsed}")
            .map_err(|e| e.to_string())?,
    );
    let shown = bar.clone();
    let options = CheckOptions {
        deep: args.deep,
        repair: args.repair,
        in_progress_for: args.in_progress_for,
    };
    let report = app
        .check(
            options,
            Arc::new(move |done, total| {
                shown.set_length(total as u64);
                shown.set_position(done as u64);
            }),
        )
        .await
        .map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    print_report(&report, &options);
    match report.findings.len() {
        0 => Ok(()),
        n => Err(format!(
            "{n} problem{} found",
            if n == 1 { "" } else { "s" }
        )),
    }
}

fn print_report(report: &CheckReport, options: &CheckOptions) {
    for finding in &report.findings {
        let subject = finding
            .image
            .map_or_else(|| "spool".to_string(), |id| id.to_string());
        let repair = match &finding.repair {
            None => String::new(),
            Some(Ok(done)) => format!(" [repair: {done}]"),
            Some(Err(e)) => format!(" [repair failed: {e}]"),
        };
        println!("{subject}: {}{repair}", finding.problem);
    }
    println!(
        "checked {} image records and {} pixel groups{}: {}",
        report.records,
        report.groups,
        if options.deep {
            ", every chunk read"
        } else {
            ""
        },
        match report.findings.len() {
            0 => "clean".to_string(),
            n => format!("{n} problem{}", if n == 1 { "" } else { "s" }),
        }
    );
}
