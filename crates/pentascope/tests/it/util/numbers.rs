//! Comparing numbers and reading them from JSON.

use serde_json::Value;

/// `|a - b| <= tol * max(|b|, 1)`.
pub fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

/// A JSON array of numbers as `Vec<f64>`.
pub fn f64s(value: &Value, what: &str) -> Result<Vec<f64>, String> {
    value
        .as_array()
        .ok_or_else(|| format!("{what} is not an array: {value}"))?
        .iter()
        .map(|v| {
            v.as_f64()
                .ok_or_else(|| format!("{what} holds a non-number: {v}"))
        })
        .collect()
}

/// A JSON array of arrays of numbers.
pub fn f64_rows(value: &Value, what: &str) -> Result<Vec<Vec<f64>>, String> {
    value
        .as_array()
        .ok_or_else(|| format!("{what} is not an array: {value}"))?
        .iter()
        .enumerate()
        .map(|(i, row)| f64s(row, &format!("{what}[{i}]")))
        .collect()
}

/// A JSON array of five non-negative integers (a `TZCYX` shape).
pub fn shape5(value: &Value, what: &str) -> Result<[u64; 5], String> {
    let dims: Vec<u64> = value
        .as_array()
        .ok_or_else(|| format!("{what} is not an array: {value}"))?
        .iter()
        .map(|v| v.as_u64().ok_or_else(|| format!("{what} holds {v}")))
        .collect::<Result<_, _>>()?;
    dims.try_into()
        .map_err(|d: Vec<u64>| format!("{what} has {} dims, expected 5", d.len()))
}

/// All unsigned integers written in `text` (runs of ASCII digits).
pub fn numbers_in(text: &str) -> Vec<u64> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect()
}
