//! A compact binary form for partial results that travel between workers
//! (statistics and covariance partials of one job split over chunk ranges):
//! little-endian words, length-prefixed sequences, and `f64` as its bits, so
//! that NaN, infinities and every last bit survive the trip, which JSON does
//! not guarantee. Decoding checks every length against the bytes left
//! before allocating.

use crate::error::CoreError;

/// Appends values to a byte buffer.
#[derive(Debug, Default)]
pub struct WireWriter {
    bytes: Vec<u8>,
}

impl WireWriter {
    /// An empty buffer.
    pub fn new() -> Self {
        WireWriter::default()
    }

    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// One `u64`.
    pub fn u64(&mut self, v: u64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    /// One `f64`, bit for bit.
    pub fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }

    /// One flag.
    pub fn bool(&mut self, v: bool) {
        self.u64(u64::from(v));
    }

    /// A length-prefixed sequence of `f64`.
    pub fn f64s(&mut self, values: &[f64]) {
        self.u64(values.len() as u64);
        for &v in values {
            self.f64(v);
        }
    }

    /// A length-prefixed sequence of `u64`.
    pub fn u64s(&mut self, values: &[u64]) {
        self.u64(values.len() as u64);
        for &v in values {
            self.u64(v);
        }
    }
}

/// Reads values back in the order they were written.
#[derive(Debug)]
pub struct WireReader<'a> {
    bytes: &'a [u8],
}

impl<'a> WireReader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        WireReader { bytes }
    }

    fn malformed(what: &str) -> CoreError {
        CoreError::InvalidRequest(format!("malformed partial result: {what}"))
    }

    /// Fails unless every byte was read.
    pub fn finish(self) -> Result<(), CoreError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(Self::malformed("trailing bytes"))
        }
    }

    /// One `u64`.
    pub fn u64(&mut self) -> Result<u64, CoreError> {
        let (word, rest) = self
            .bytes
            .split_first_chunk::<8>()
            .ok_or_else(|| Self::malformed("truncated"))?;
        self.bytes = rest;
        Ok(u64::from_le_bytes(*word))
    }

    /// One `f64`.
    pub fn f64(&mut self) -> Result<f64, CoreError> {
        self.u64().map(f64::from_bits)
    }

    /// One flag.
    pub fn bool(&mut self) -> Result<bool, CoreError> {
        match self.u64()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Self::malformed("a flag is neither 0 nor 1")),
        }
    }

    /// The length of a sequence of 8-byte words, checked against the bytes
    /// left (so a corrupt length cannot drive an allocation).
    fn words(&mut self) -> Result<usize, CoreError> {
        let n = self.u64()?;
        if n > (self.bytes.len() / 8) as u64 {
            return Err(Self::malformed("a length past the end"));
        }
        Ok(n as usize)
    }

    /// A length-prefixed sequence of `f64`.
    pub fn f64s(&mut self) -> Result<Vec<f64>, CoreError> {
        let n = self.words()?;
        (0..n).map(|_| self.f64()).collect()
    }

    /// A length-prefixed sequence of `u64`.
    pub fn u64s(&mut self) -> Result<Vec<u64>, CoreError> {
        let n = self.words()?;
        (0..n).map(|_| self.u64()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_bit_for_bit() {
        let mut w = WireWriter::new();
        w.u64(u64::MAX);
        w.f64(f64::NAN);
        w.f64(-0.0);
        w.bool(true);
        w.f64s(&[0.1, f64::INFINITY]);
        w.u64s(&[]);
        let bytes = w.into_bytes();
        let mut r = WireReader::new(&bytes);
        assert_eq!(r.u64().unwrap(), u64::MAX);
        assert!(r.f64().unwrap().is_nan());
        assert_eq!(r.f64().unwrap().to_bits(), (-0.0f64).to_bits());
        assert!(r.bool().unwrap());
        assert_eq!(r.f64s().unwrap(), vec![0.1, f64::INFINITY]);
        assert!(r.u64s().unwrap().is_empty());
        r.finish().unwrap();
    }

    #[test]
    fn corrupt_lengths_and_truncation_are_errors() {
        let mut w = WireWriter::new();
        w.u64(1 << 60);
        let bytes = w.into_bytes();
        assert!(WireReader::new(&bytes).f64s().is_err());
        assert!(WireReader::new(&bytes[..5]).u64().is_err());
        let mut r = WireReader::new(&bytes);
        r.u64().unwrap();
        r.finish().unwrap();
        assert!(WireReader::new(&[2, 0, 0, 0, 0, 0, 0, 0]).bool().is_err());
    }
}
