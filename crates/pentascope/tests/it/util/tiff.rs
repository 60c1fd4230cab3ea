//! Small TIFF files built byte by byte, for tests that need a shape or a
//! size the fixture corpus does not have.

/// A little-endian classic TIFF of `pages` uncompressed one-strip pages of
/// `width × height` unsigned samples of `bits` bits, each page filled by
/// `fill(page, index)`.
pub fn plain_tiff(
    width: u32,
    height: u32,
    bits: u16,
    pages: u32,
    fill: impl Fn(u32, usize) -> u8,
) -> Vec<u8> {
    described_tiff(width, height, bits, pages, "", fill)
}

/// [`plain_tiff`] with an ImageDescription on every page.
pub fn described_tiff(
    width: u32,
    height: u32,
    bits: u16,
    pages: u32,
    description: &str,
    fill: impl Fn(u32, usize) -> u8,
) -> Vec<u8> {
    let page_bytes = width as usize * height as usize * usize::from(bits / 8);
    const ENTRIES: u16 = 10;
    let ifd_bytes = 2 + 12 * usize::from(ENTRIES) + 4;
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    let text_at = 8 + ifd_bytes * pages as usize;
    let text = format!("{description}\0");
    let first_data = text_at + text.len();
    for page in 0..pages {
        let data_at = (first_data + page_bytes * page as usize) as u32;
        let next = if page + 1 < pages {
            (8 + ifd_bytes * (page as usize + 1)) as u32
        } else {
            0
        };
        out.extend_from_slice(&ENTRIES.to_le_bytes());
        let mut entry = |tag: u16, kind: u16, count: u32, value: u32| {
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
            match kind {
                3 => {
                    out.extend_from_slice(&(value as u16).to_le_bytes());
                    out.extend_from_slice(&[0, 0]);
                }
                _ => out.extend_from_slice(&value.to_le_bytes()),
            }
        };
        entry(256, 4, 1, width);
        entry(257, 4, 1, height);
        entry(258, 3, 1, u32::from(bits));
        entry(259, 3, 1, 1);
        entry(262, 3, 1, 1);
        entry(270, 2, text.len() as u32, text_at as u32);
        entry(273, 4, 1, data_at);
        entry(277, 3, 1, 1);
        entry(278, 4, 1, height);
        entry(279, 4, 1, page_bytes as u32);
        out.extend_from_slice(&next.to_le_bytes());
    }
    out.extend_from_slice(text.as_bytes());
    for page in 0..pages {
        out.extend((0..page_bytes).map(|i| fill(page, i)));
    }
    out
}
