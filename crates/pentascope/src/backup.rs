//! `pentascope backup DEST` and `pentascope restore SRC --data-dir DIR`:
//! see `pentascope_app::backup`.

use std::path::PathBuf;

use clap::Args;
use pentascope_app::backup::Manifest;

use crate::StoreSettings;

/// Arguments of `pentascope backup`.
#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// Where the backup goes: a new or empty directory (on the same file
    /// system as the data directory, pixel files are hard-linked, not
    /// copied).
    dest: PathBuf,
    #[command(flatten)]
    settings: StoreSettings,
}

/// Arguments of `pentascope restore`.
#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// A directory made by `pentascope backup`.
    src: PathBuf,
    /// The data directory to make: new or empty.
    #[arg(long, env = "PENTASCOPE_DATA_DIR")]
    data_dir: PathBuf,
}

/// Runs `pentascope backup`.
pub async fn backup(args: BackupArgs) -> Result<(), String> {
    let manifest = pentascope_app::backup::backup(&args.settings.config(), &args.dest)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "backed up {} as of {}",
        summary(&manifest),
        manifest.taken_at
    );
    for id in &manifest.left_out {
        println!("{id} was deleted while the backup ran: left out");
    }
    Ok(())
}

/// Runs `pentascope restore`.
pub async fn restore(args: RestoreArgs) -> Result<(), String> {
    let manifest = pentascope_app::backup::restore(&args.src, &args.data_dir)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "restored {} images (backup of {} by pentascope {}) into {}; check it with \
         pentascope check --data-dir {}",
        manifest.images,
        manifest.taken_at,
        manifest.version,
        args.data_dir.display(),
        args.data_dir.display()
    );
    Ok(())
}

fn summary(m: &Manifest) -> String {
    format!(
        "{} images ({} pixel files linked, {} copied, {} bytes)",
        m.images, m.linked_files, m.copied_files, m.pixel_bytes
    )
}
