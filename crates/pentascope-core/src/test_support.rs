//! What unit tests across the crate share.

/// A xorshift64 generator from `seed` (not 0): deterministic noise.
pub(crate) fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}
