//! PNG bodies: header fields and 8-bit grey decoding.

/// The IHDR fields of a PNG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PngHeader {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bits per sample.
    pub bit_depth: u8,
    /// PNG colour type (0 = grayscale).
    pub color_type: u8,
}

impl PngHeader {
    /// Parses the signature and the IHDR chunk by hand.
    pub fn parse(bytes: &[u8]) -> Result<PngHeader, String> {
        const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
        ensure!(
            bytes.len() >= 33 && bytes.starts_with(SIGNATURE),
            "not a PNG (no signature)"
        );
        ensure!(&bytes[12..16] == b"IHDR", "PNG does not start with IHDR");
        let be32 = |at: usize| {
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        Ok(PngHeader {
            width: be32(16),
            height: be32(20),
            bit_depth: bytes[24],
            color_type: bytes[25],
        })
    }
}

/// A decoded grayscale PNG: samples widened to `u16` (8- or 16-bit).
pub struct GrayPng {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// 8 or 16.
    pub bit_depth: u8,
    /// Row-major samples.
    pub samples: Vec<u16>,
}

/// Decodes a grayscale PNG with the `png` crate.
pub fn decode_gray_png(bytes: &[u8]) -> Result<GrayPng, String> {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("PNG decode: {e}"))?;
    let size = reader
        .output_buffer_size()
        .ok_or("PNG output buffer size overflows")?;
    let mut buf = vec![0u8; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| format!("PNG decode: {e}"))?;
    ensure!(
        info.color_type == png::ColorType::Grayscale,
        "PNG colour type {:?}, expected Grayscale",
        info.color_type
    );
    let (width, height) = (info.width as usize, info.height as usize);
    let samples: Vec<u16> = match info.bit_depth {
        png::BitDepth::Eight => (0..height)
            .flat_map(|y| {
                let row = &buf[y * info.line_size..y * info.line_size + width];
                row.iter().map(|&v| u16::from(v))
            })
            .collect(),
        png::BitDepth::Sixteen => (0..height)
            .flat_map(|y| {
                let row = &buf[y * info.line_size..y * info.line_size + 2 * width];
                row.chunks_exact(2)
                    .map(|b| u16::from_be_bytes([b[0], b[1]]))
            })
            .collect(),
        other => return Err(format!("PNG bit depth {other:?}, expected 8 or 16")),
    };
    Ok(GrayPng {
        width,
        height,
        bit_depth: if info.bit_depth == png::BitDepth::Eight {
            8
        } else {
            16
        },
        samples,
    })
}
