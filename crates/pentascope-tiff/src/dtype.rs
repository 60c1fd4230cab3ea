//! Sample types and the [`Sample`] trait that pixel loops are generic over.

use std::fmt;

/// Half-precision floats (`float16`).
pub use half::f16;

/// The numeric type of one sample, named as NumPy names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum DType {
    /// `uint8`
    U8,
    /// `uint16`
    U16,
    /// `uint32`
    U32,
    /// `uint64`
    U64,
    /// `int8`
    I8,
    /// `int16`
    I16,
    /// `int32`
    I32,
    /// `int64`
    I64,
    /// `float16`
    F16,
    /// `float32`
    F32,
    /// `float64`
    F64,
}

impl DType {
    /// Every supported type.
    pub const ALL: [DType; 11] = [
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::F16,
        DType::F32,
        DType::F64,
    ];

    /// NumPy's name (`"uint16"`).
    pub fn name(self) -> &'static str {
        match self {
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::F16 => "float16",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }

    /// Parses NumPy's name.
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Bytes per sample.
    pub fn size(self) -> usize {
        match self {
            DType::U8 | DType::I8 => 1,
            DType::U16 | DType::I16 | DType::F16 => 2,
            DType::U32 | DType::I32 | DType::F32 => 4,
            DType::U64 | DType::I64 | DType::F64 => 8,
        }
    }

    /// The little-endian NumPy type string (`"<u2"`), as `.npy` headers use.
    pub fn npy_descr(self) -> &'static str {
        match self {
            DType::U8 => "|u1",
            DType::U16 => "<u2",
            DType::U32 => "<u4",
            DType::U64 => "<u8",
            DType::I8 => "|i1",
            DType::I16 => "<i2",
            DType::I32 => "<i4",
            DType::I64 => "<i8",
            DType::F16 => "<f2",
            DType::F32 => "<f4",
            DType::F64 => "<f8",
        }
    }

    /// Whether the type is a floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::F32 | DType::F64)
    }

    /// The type a TIFF page with this `SampleFormat` and `BitsPerSample` holds.
    /// `format` is 1 (unsigned), 2 (signed) or 3 (IEEE float).
    pub fn from_tiff(format: u16, bits: u16) -> Option<DType> {
        Some(match (format, bits) {
            (1, 8) => DType::U8,
            (1, 16) => DType::U16,
            (1, 32) => DType::U32,
            (1, 64) => DType::U64,
            (2, 8) => DType::I8,
            (2, 16) => DType::I16,
            (2, 32) => DType::I32,
            (2, 64) => DType::I64,
            (3, 16) => DType::F16,
            (3, 32) => DType::F32,
            (3, 64) => DType::F64,
            _ => return None,
        })
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<DType> for &'static str {
    fn from(d: DType) -> Self {
        d.name()
    }
}

/// Written as NumPy's name of the type (`uint16`, `float32`, …).
#[cfg(feature = "schemars")]
impl schemars::JsonSchema for DType {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DType".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = DType::ALL.iter().map(|d| d.name()).collect();
        schemars::json_schema!({
            "type": "string",
            "enum": names,
            "description": "Sample type, named as in NumPy.",
        })
    }
}

impl TryFrom<String> for DType {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        DType::from_name(&s).ok_or_else(|| format!("unknown dtype {s:?}"))
    }
}

/// A sample type that pixel loops are generic over: plain old data with a
/// lossless view as `f64` for statistics (exact for every type up to 32 bits).
pub trait Sample:
    bytemuck::Pod + PartialOrd + Default + Send + Sync + fmt::Debug + 'static
{
    /// The [`DType`] this Rust type stands for.
    const DTYPE: DType;
    /// The value as `f64`.
    fn to_f64(self) -> f64;
    /// The value with its bytes reversed (big-endian ↔ little-endian).
    fn swap_bytes(self) -> Self;
    /// `self + rhs` with wrap-around, as TIFF's horizontal predictor adds.
    /// Float types never use the horizontal predictor; they add normally.
    fn wrapping_add(self, rhs: Self) -> Self;
    /// For 8- and 16-bit integer types, the value's bin in a full histogram
    /// (`value - MIN`); `None` for wider types.
    const HISTOGRAM_BINS: Option<usize>;
    /// The histogram bin of this value (only meaningful when
    /// [`Sample::HISTOGRAM_BINS`] is `Some`).
    fn bin(self) -> usize;
    /// The value of a histogram bin (inverse of [`Sample::bin`]).
    fn from_bin(bin: usize) -> f64;
    /// `v` as this type: integers rounded half away from zero and
    /// saturated at the type's range (NaN is 0); floats converted.
    fn from_f64_rounded(v: f64) -> Self;
}

macro_rules! int_sample {
    ($t:ty, $d:expr, $bins:expr, $min:expr) => {
        impl Sample for $t {
            const DTYPE: DType = $d;
            const HISTOGRAM_BINS: Option<usize> = $bins;
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn swap_bytes(self) -> Self {
                <$t>::swap_bytes(self)
            }
            #[inline(always)]
            fn wrapping_add(self, rhs: Self) -> Self {
                <$t>::wrapping_add(self, rhs)
            }
            #[inline(always)]
            fn bin(self) -> usize {
                (self as i64 - $min) as usize
            }
            #[inline(always)]
            fn from_bin(bin: usize) -> f64 {
                (bin as i64 + $min) as f64
            }
            #[inline(always)]
            fn from_f64_rounded(v: f64) -> Self {
                v.round() as $t
            }
        }
    };
}

int_sample!(u8, DType::U8, Some(1 << 8), 0);
int_sample!(u16, DType::U16, Some(1 << 16), 0);
int_sample!(i8, DType::I8, Some(1 << 8), i8::MIN as i64);
int_sample!(i16, DType::I16, Some(1 << 16), i16::MIN as i64);
int_sample!(u32, DType::U32, None, 0);
int_sample!(u64, DType::U64, None, 0);
int_sample!(i32, DType::I32, None, 0);
int_sample!(i64, DType::I64, None, 0);

macro_rules! float_sample {
    ($t:ty, $d:expr) => {
        impl Sample for $t {
            const DTYPE: DType = $d;
            const HISTOGRAM_BINS: Option<usize> = None;
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn swap_bytes(self) -> Self {
                <$t>::from_bits(self.to_bits().swap_bytes())
            }
            #[inline(always)]
            fn wrapping_add(self, rhs: Self) -> Self {
                self + rhs
            }
            #[inline(always)]
            fn bin(self) -> usize {
                0
            }
            #[inline(always)]
            fn from_bin(_bin: usize) -> f64 {
                0.0
            }
            #[inline(always)]
            fn from_f64_rounded(v: f64) -> Self {
                v as $t
            }
        }
    };
}

float_sample!(f32, DType::F32);

/// Half precision, as microscopes and deep-learning pipelines write it: kept
/// as stored, computed on in `f64`.
impl Sample for half::f16 {
    const DTYPE: DType = DType::F16;
    const HISTOGRAM_BINS: Option<usize> = None;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        half::f16::to_f64(self)
    }
    #[inline(always)]
    fn swap_bytes(self) -> Self {
        half::f16::from_bits(self.to_bits().swap_bytes())
    }
    #[inline(always)]
    fn wrapping_add(self, rhs: Self) -> Self {
        self + rhs
    }
    #[inline(always)]
    fn bin(self) -> usize {
        0
    }
    #[inline(always)]
    fn from_bin(_bin: usize) -> f64 {
        0.0
    }
    #[inline(always)]
    fn from_f64_rounded(v: f64) -> Self {
        half::f16::from_f64(v)
    }
}
float_sample!(f64, DType::F64);

/// Runs `$body` with the type alias `$T` bound to the Rust type of `$dtype`,
/// so that one generic function serves every sample type without dynamic
/// dispatch in the loop.
///
/// ```
/// use pentascope_tiff::{dispatch_dtype, DType, Sample};
/// fn size_of<T: Sample>() -> usize { std::mem::size_of::<T>() }
/// let n = dispatch_dtype!(DType::U16, T => size_of::<T>());
/// assert_eq!(n, 2);
/// ```
#[macro_export]
macro_rules! dispatch_dtype {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::DType::U8 => {
                type $T = u8;
                $body
            }
            $crate::DType::U16 => {
                type $T = u16;
                $body
            }
            $crate::DType::U32 => {
                type $T = u32;
                $body
            }
            $crate::DType::U64 => {
                type $T = u64;
                $body
            }
            $crate::DType::I8 => {
                type $T = i8;
                $body
            }
            $crate::DType::I16 => {
                type $T = i16;
                $body
            }
            $crate::DType::I32 => {
                type $T = i32;
                $body
            }
            $crate::DType::I64 => {
                type $T = i64;
                $body
            }
            $crate::DType::F16 => {
                type $T = $crate::dtype::f16;
                $body
            }
            $crate::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::DType::F64 => {
                type $T = f64;
                $body
            }
        }
    };
}

/// The bytes of a slice of samples, in native byte order.
pub fn as_bytes<T: Sample>(samples: &[T]) -> &[u8] {
    bytemuck::cast_slice(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in DType::ALL {
            assert_eq!(DType::from_name(d.name()), Some(d));
        }
        assert_eq!(DType::from_name("complex64"), None);
    }

    #[test]
    fn bins_cover_signed_range() {
        assert_eq!(i8::MIN.bin(), 0);
        assert_eq!(i8::MAX.bin(), 255);
        assert_eq!(i16::from_bin(0), -32768.0);
        assert_eq!(u16::MAX.bin(), 65535);
    }
}
