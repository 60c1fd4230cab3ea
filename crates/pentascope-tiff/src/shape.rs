//! The canonical `TZCYX` shape, plane indices and axis strings.

use crate::TiffError;
use serde::{Deserialize, Serialize};

/// The canonical axis order every image is presented in.
pub const CANONICAL_AXES: &str = "TZCYX";

/// A 5D shape in `TZCYX` order. Axes a file lacks have size 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape5 {
    /// Time points.
    pub t: u64,
    /// Z slices.
    pub z: u64,
    /// Channels.
    pub c: u64,
    /// Height (rows).
    pub y: u64,
    /// Width (columns).
    pub x: u64,
}

impl Shape5 {
    /// A shape from its five sizes in `TZCYX` order.
    pub fn new(t: u64, z: u64, c: u64, y: u64, x: u64) -> Self {
        Shape5 { t, z, c, y, x }
    }

    /// The sizes as an array in `TZCYX` order.
    pub fn to_array(self) -> [u64; 5] {
        [self.t, self.z, self.c, self.y, self.x]
    }

    /// Number of 2D planes (T·Z·C).
    pub fn planes(self) -> u64 {
        self.t * self.z * self.c
    }

    /// Pixels in one plane (Y·X).
    pub fn plane_pixels(self) -> u64 {
        self.y * self.x
    }

    /// Pixels per channel (T·Z·Y·X), the sample count of statistics and PCA.
    pub fn pixels_per_channel(self) -> u64 {
        self.t * self.z * self.y * self.x
    }

    /// All samples (T·Z·C·Y·X), saturating on overflow so a limit check
    /// cannot be fooled by wrap-around.
    pub fn total_samples(self) -> u64 {
        self.to_array()
            .into_iter()
            .fold(1u64, |a, b| a.saturating_mul(b))
    }

    /// Checks that `plane` lies inside this shape, naming the valid range of
    /// the first coordinate that does not.
    pub fn check_plane(self, plane: PlaneIndex) -> Result<(), TiffError> {
        for (name, value, size) in [
            ("time", plane.t, self.t),
            ("z", plane.z, self.z),
            ("channel", plane.c, self.c),
        ] {
            if value >= size {
                return Err(TiffError::OutOfRange(format!(
                    "{name}={value} is out of range: valid {name} values are 0..={} (size {size})",
                    size - 1
                )));
            }
        }
        Ok(())
    }

    /// The linear index of a plane in `TZC` order.
    pub fn plane_linear(self, plane: PlaneIndex) -> u64 {
        (plane.t * self.z + plane.z) * self.c + plane.c
    }
}

/// The position of one 2D plane in a 5D image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct PlaneIndex {
    /// Time point.
    pub t: u64,
    /// Z slice.
    pub z: u64,
    /// Channel.
    pub c: u64,
}

impl PlaneIndex {
    /// A plane index from its coordinates.
    pub fn new(t: u64, z: u64, c: u64) -> Self {
        PlaneIndex { t, z, c }
    }
}

/// A validated axis string such as `TYX` or `ZCYX`: each letter of `TZCYXS`
/// at most once, ending in `YX` (optionally followed by `S`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Axes(String);

impl Axes {
    /// Parses an axis string, case-insensitively.
    pub fn parse(s: &str) -> Result<Axes, TiffError> {
        let up = s.trim().to_ascii_uppercase();
        let bad = |why: &str| {
            TiffError::InvalidAxes(format!(
                "axes {s:?} {why}; use letters from T, Z, C, Y, X (and S for samples) \
                 each at most once, ending in YX, for example TYX, ZCYX or TZCYX"
            ))
        };
        if up.is_empty() {
            return Err(bad("is empty"));
        }
        for (i, ch) in up.char_indices() {
            if !"TZCYXS".contains(ch) {
                return Err(bad(&format!("contains {ch:?}")));
            }
            if up[..i].contains(ch) {
                return Err(bad(&format!("repeats {ch:?}")));
            }
        }
        let core = up.strip_suffix('S').unwrap_or(&up);
        if !core.ends_with("YX") {
            return Err(bad("does not end in YX"));
        }
        if up.contains('S') && up.contains('C') {
            return Err(bad("has both C and S"));
        }
        Ok(Axes(up))
    }

    /// The axis letters.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The letters before `YX` (the page axes), outermost first.
    pub fn page_axes(&self) -> &str {
        let core = self.0.strip_suffix('S').unwrap_or(&self.0);
        &core[..core.len() - 2]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_validation() {
        assert_eq!(Axes::parse("tyx").unwrap().page_axes(), "T");
        assert_eq!(Axes::parse("ZCYX").unwrap().page_axes(), "ZC");
        assert_eq!(Axes::parse("YXS").unwrap().page_axes(), "");
        assert!(Axes::parse("TXY").is_err());
        assert!(Axes::parse("TTYX").is_err());
        assert!(Axes::parse("QYX").is_err());
    }

    #[test]
    fn out_of_range_names_valid_range() {
        let s = Shape5::new(2, 3, 1, 4, 4);
        let e = s.check_plane(PlaneIndex::new(0, 3, 0)).unwrap_err();
        assert!(e.to_string().contains("0..=2"), "{e}");
        assert!(s.check_plane(PlaneIndex::new(1, 2, 0)).is_ok());
    }
}
