//! # pentascope-app
//!
//! The use cases of pentascope, one function each, over the stores of
//! `pentascope-store`, the passes of `pentascope-passes` and the
//! computations of `pentascope-core`. Every front
//! door is a thin caller of this crate: the HTTP handlers
//! (`pentascope-server`), the job runners and the Celery worker
//! (`pentascope-jobs`), and the command line (`pentascope ingest`).
//!
//! - [`App`]: the configuration and the stores opened from it;
//! - [`access`]: who is calling ([`access::Caller`]), what they may see and
//!   do, API keys and signed links;
//! - [`ingest`]: a TIFF file → a published image (id reserved, pixels staged,
//!   record and pixels published together, nothing left on failure);
//! - [`integrity`]: every record's pixels checked, orphans found and
//!   removed (`pentascope check`);
//! - [`audit`]: who did what to which object, when, from where;
//! - [`backup`]: a consistent copy of an embedded installation, restored;
//! - [`analyze`]: PCA with its (virtual) scores image;
//! - [`segment`]: thresholds, k-means and objects with a stored labels image;
//! - [`catalogue`]: names, descriptions, tags, annotations, datasets and
//!   paged search;
//! - [`images`]: look-up, listing, statistics, deletion with derived images;
//! - [`slice`]: one plane rendered as PNG or `.npy`, cached;
//! - [`render`]: colour composites, projections, regions, tiles and
//!   thumbnails;
//! - [`resumable`]: resumable uploads (tus): bytes staged across
//!   interruptions and restarts, stored as they arrive, ingested as
//!   uploads are;
//! - [`export`]: a whole image streamed as one file (`.npy`, OME-TIFF);
//! - [`zarr`]: each image's OME-Zarr group, key by key, with byte ranges;
//! - [`validator`]: entity tags for what is computed from an image, which
//!   change when its pixels or its look could;
//! - [`jobs`]: the [`jobs::Job`] trait, the task registry and submission;
//! - [`split`]: one statistics recompute or PCA cut into parts for many
//!   workers, merged where the last part finishes;
//! - [`monitoring`]: what use cases record for `/metrics`;
//! - [`trace`]: the W3C trace context of a request, carried into its jobs;
//! - [`config`]: settings and their one set of defaults.
//!
//! Nothing here knows HTTP; errors are [`AppError`].

pub mod access;
pub mod analyze;
mod app;
pub mod archive;
pub mod audit;
pub mod backup;
pub mod cache;
pub mod catalogue;
pub mod config;
pub mod error;
pub mod export;
pub mod images;
pub mod ingest;
pub mod integrity;
pub mod jobs;
pub mod monitoring;
pub mod render;
pub mod resumable;
pub mod segment;
pub mod slice;
pub mod split;
pub mod trace;
pub mod validator;
pub mod zarr;

pub use access::{parse_lifetime, Caller, Who};
pub use app::{blocking, App, DependencyHealth, Health};
pub use config::Config;
pub use error::AppError;
pub use pentascope_passes::PassError;

/// Told the fraction of the work done, from 0 to 1.
pub type Progress = std::sync::Arc<dyn Fn(f64) + Send + Sync>;
