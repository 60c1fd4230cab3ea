//! The integration tests: each starts the real `pentascope` binary (on an
//! ephemeral port, on a temporary data directory) and talks to it over HTTP
//! or runs its subcommands. The fixture corpus is read in place from
//! `../shared/fixtures` beside the repository, or `$PENTASCOPE_FIXTURES`.
//!
//! Tests that need PostgreSQL, Redis, an S3 server or a Python venv are
//! `#[ignore]`d, so a plain `cargo test` lists them as ignored;
//! `.ci/run` starts those services and runs them with `--ignored`.

#[macro_use]
mod util;

mod access;
mod api;
mod archive;
mod audit;
mod backup;
mod caching;
mod catalogue;
mod celery;
mod check;
mod cli;
mod codecs;
mod compat;
mod deploy;
mod docs;
mod hostile;
mod observe;
mod omeset;
mod openapi;
mod outage;
mod render;
mod scale_out;
mod segment;
mod series;
mod shutdown;
mod stream;
mod tifffile;
mod tus;
mod upgrade;
mod viewer;
mod zarr;
