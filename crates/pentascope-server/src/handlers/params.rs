//! Query-parameter parsing with messages that say what is expected.

use std::collections::HashMap;

use crate::error::ApiError;

/// Raw query parameters.
pub type Params = HashMap<String, String>;

/// A required string parameter.
pub fn required<'a>(params: &'a Params, name: &str) -> Result<&'a str, ApiError> {
    params
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("the query parameter {name} is required")))
}

/// An optional non-negative integer parameter (an index).
pub fn index(params: &Params, name: &str) -> Result<Option<u64>, ApiError> {
    params
        .get(name)
        .map(|v| {
            v.trim().parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("{name} must be a non-negative integer, got {v:?}"))
            })
        })
        .transpose()
}

/// An optional finite number parameter.
pub fn number(params: &Params, name: &str) -> Result<Option<f64>, ApiError> {
    params
        .get(name)
        .map(|v| {
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| {
                    ApiError::bad_request(format!("{name} must be a finite number, got {v:?}"))
                })
        })
        .transpose()
}
