//! Request handlers: validate, call the stores and core, respond.

pub mod analyze;
pub mod images;
pub mod params;
pub mod slice;
pub mod upload;
