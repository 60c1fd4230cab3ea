//! Shared machinery for the integration tests: starting and stopping the
//! `pentascope` binary, the services of the production configuration, a
//! small HTTP client, fixture discovery and decoders for the `.npy` and PNG
//! bodies the server returns.

/// Returns `Err(format!(..))` from the enclosing function unless `$cond` holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {{
        let ok: bool = $cond;
        if !ok {
            return Err(format!($($arg)+));
        }
    }};
}

pub mod conformance;
pub mod fixtures;
pub mod npy;
pub mod numbers;
pub mod png;
pub mod python;
pub mod resp;
pub mod server;
pub mod services;
pub mod tiff;

pub use fixtures::{fixtures_dir, FixtureSet};
pub use numbers::{close, f64_rows, f64s, numbers_in, shape5};
pub use png::decode_gray_png;
pub use resp::{image_id_of, Resp};
pub use server::{Server, Worker};
