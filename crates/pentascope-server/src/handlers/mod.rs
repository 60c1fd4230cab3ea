//! Request handlers: parse the request, call one use case, shape the answer.

pub mod analyze;
pub mod images;
pub mod jobs;
pub mod params;
pub mod slice;
pub mod upload;
