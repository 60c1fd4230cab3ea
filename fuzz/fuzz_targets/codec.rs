//! Fuzz target: see `pentascope_fuzz::codec_target`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pentascope_fuzz::codec_target(data, &pentascope_fuzz::tight_limits());
});
