//! Harnesses of the fuzz targets. They live with pentascope-core's
//! hostile-input tests, which replay `regressions/` through the same code on
//! stable Rust; this crate only re-exports them.

#[path = "../../crates/pentascope-core/tests/util/mod.rs"]
mod util;

pub use util::*;
