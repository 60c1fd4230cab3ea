//! Harnesses of the fuzz targets. They live with pentascope-tiff's
//! hostile-input tests, which replay `regressions/` through the same code on
//! stable Rust; this crate only re-exports them.

#[path = "../../crates/pentascope-tiff/tests/util/mod.rs"]
mod util;

pub use util::*;
