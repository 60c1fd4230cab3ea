//! A minimal reader for NumPy `.npy` version 1.0 files.

/// A parsed `.npy` file.
#[derive(Debug)]
pub struct Npy {
    /// The `descr` of the header, e.g. `<u2`.
    pub descr: String,
    /// The `fortran_order` of the header.
    pub fortran_order: bool,
    /// The `shape` of the header.
    pub shape: Vec<u64>,
    /// The raw sample bytes following the header.
    pub data: Vec<u8>,
}

/// The `descr` strings NumPy accepts for a little-endian array of the numpy
/// dtype `name` (single-byte types are written `|u1` by NumPy itself).
pub fn descrs_for(name: &str) -> &'static [&'static str] {
    match name {
        "uint8" => &["|u1", "<u1"],
        "int8" => &["|i1", "<i1"],
        "uint16" => &["<u2"],
        "int16" => &["<i2"],
        "uint32" => &["<u4"],
        "int32" => &["<i4"],
        "uint64" => &["<u8"],
        "int64" => &["<i8"],
        "float16" => &["<f2"],
        "float32" => &["<f4"],
        "float64" => &["<f8"],
        _ => &[],
    }
}

/// Bytes per sample of a numpy dtype name.
pub fn itemsize(name: &str) -> Option<usize> {
    Some(match name {
        "uint8" | "int8" => 1,
        "uint16" | "int16" | "float16" => 2,
        "uint32" | "int32" | "float32" => 4,
        "uint64" | "int64" | "float64" => 8,
        _ => return None,
    })
}

impl Npy {
    /// Parses a complete `.npy` v1.0 file.
    pub fn parse(bytes: &[u8]) -> Result<Npy, String> {
        if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
            return Err("body is not a .npy file (no \\x93NUMPY magic)".into());
        }
        if (bytes[6], bytes[7]) != (1, 0) {
            return Err(format!(
                ".npy version {}.{}, expected 1.0",
                bytes[6], bytes[7]
            ));
        }
        let header_len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
        let start = 10 + header_len;
        if bytes.len() < start {
            return Err(format!(".npy header length {header_len} runs past the end"));
        }
        let header = std::str::from_utf8(&bytes[10..start])
            .map_err(|_| ".npy header is not ASCII".to_string())?;
        if !header.ends_with('\n') {
            return Err(format!(
                ".npy header {header:?} does not end with a newline"
            ));
        }
        let descr = value_after(header, "descr")?
            .strip_prefix('\'')
            .and_then(|s| s.split('\'').next())
            .ok_or_else(|| format!("cannot read descr in {header:?}"))?
            .to_string();
        let fortran = value_after(header, "fortran_order")?;
        let fortran_order = if fortran.starts_with("False") {
            false
        } else if fortran.starts_with("True") {
            true
        } else {
            return Err(format!("cannot read fortran_order in {header:?}"));
        };
        let shape_text = value_after(header, "shape")?
            .strip_prefix('(')
            .and_then(|s| s.split(')').next())
            .ok_or_else(|| format!("cannot read shape in {header:?}"))?;
        let shape = shape_text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<u64>()
                    .map_err(|_| format!("bad shape entry {s:?} in {header:?}"))
            })
            .collect::<Result<Vec<u64>, String>>()?;
        Ok(Npy {
            descr,
            fortran_order,
            shape,
            data: bytes[start..].to_vec(),
        })
    }

    /// Checks the header against the expected dtype name and shape, and the
    /// data length against both.
    pub fn check(&self, dtype: &str, shape: &[u64]) -> Result<(), String> {
        let descrs = descrs_for(dtype);
        if !descrs.contains(&self.descr.as_str()) {
            return Err(format!(
                ".npy descr {:?}, expected one of {descrs:?} for {dtype}",
                self.descr
            ));
        }
        if self.fortran_order {
            return Err(".npy is in Fortran order, expected C order".into());
        }
        if self.shape != shape {
            return Err(format!(".npy shape {:?}, expected {shape:?}", self.shape));
        }
        let want = shape.iter().product::<u64>() as usize * itemsize(dtype).unwrap_or(0);
        if self.data.len() != want {
            return Err(format!(
                ".npy holds {} data bytes, expected {want}",
                self.data.len()
            ));
        }
        Ok(())
    }

    /// The samples as `f64`, decoding the little-endian `descr`.
    pub fn values(&self) -> Vec<f64> {
        fn le<const N: usize>(data: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
            data.chunks_exact(N)
                .map(|c| c.try_into().expect("chunk of N bytes"))
        }
        let d = &self.data;
        match &self.descr[1..] {
            "u1" => d.iter().map(|&v| f64::from(v)).collect(),
            "i1" => d.iter().map(|&v| f64::from(v as i8)).collect(),
            "u2" => le::<2>(d)
                .map(|b| f64::from(u16::from_le_bytes(b)))
                .collect(),
            "i2" => le::<2>(d)
                .map(|b| f64::from(i16::from_le_bytes(b)))
                .collect(),
            "u4" => le::<4>(d)
                .map(|b| f64::from(u32::from_le_bytes(b)))
                .collect(),
            "i4" => le::<4>(d)
                .map(|b| f64::from(i32::from_le_bytes(b)))
                .collect(),
            "u8" => le::<8>(d).map(|b| u64::from_le_bytes(b) as f64).collect(),
            "i8" => le::<8>(d).map(|b| i64::from_le_bytes(b) as f64).collect(),
            "f4" => le::<4>(d)
                .map(|b| f64::from(f32::from_le_bytes(b)))
                .collect(),
            "f8" => le::<8>(d).map(f64::from_le_bytes).collect(),
            other => panic!("unsupported .npy descr {other:?}"),
        }
    }
}

/// The text after `'key':` in a header dict, leading spaces removed.
fn value_after<'a>(header: &'a str, key: &str) -> Result<&'a str, String> {
    let pattern = format!("'{key}':");
    let at = header
        .find(&pattern)
        .ok_or_else(|| format!(".npy header {header:?} has no {pattern}"))?;
    Ok(header[at + pattern.len()..].trim_start())
}
