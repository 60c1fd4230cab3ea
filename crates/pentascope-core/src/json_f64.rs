//! JSON for `f64` values that may be NaN or infinite (statistics of float
//! images). JSON numbers cannot express them, so they are written as the
//! strings `"NaN"`, `"Infinity"` and `"-Infinity"` (the spellings Python's
//! `float()` accepts) and read back from those strings, from numbers, or
//! from `null` (as NaN).

use serde::{Deserialize, Deserializer, Serializer};

/// Writes a finite value as a number, anything else as a string.
pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(*v)
    } else if v.is_nan() {
        s.serialize_str("NaN")
    } else if *v > 0.0 {
        s.serialize_str("Infinity")
    } else {
        s.serialize_str("-Infinity")
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Repr {
    Number(f64),
    Text(String),
    Null(()),
}

/// Reads what [`serialize`] writes (and `null` as NaN).
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    match Option::<Repr>::deserialize(d)? {
        Some(Repr::Number(v)) => Ok(v),
        Some(Repr::Text(t)) => match t.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => Err(serde::de::Error::custom(format!("not a number: {other:?}"))),
        },
        Some(Repr::Null(())) | None => Ok(f64::NAN),
    }
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct V(#[serde(with = "super")] f64);

    #[test]
    fn non_finite_values_round_trip() {
        for v in [1.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let text = serde_json::to_string(&V(v)).unwrap();
            let back: V = serde_json::from_str(&text).unwrap();
            assert!(back.0 == v || (v.is_nan() && back.0.is_nan()), "{text}");
        }
        let null: V = serde_json::from_str("null").unwrap();
        assert!(null.0.is_nan());
    }
}
