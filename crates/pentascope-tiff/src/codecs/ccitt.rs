//! CCITT bilevel compression (TIFF compressions 2, 3 and 4), decoded by the
//! `hayro-ccitt` crate (ITU-T T.4 and T.6):
//!
//! - 2, modified Huffman RLE: Group 3 one-dimensional codes, no EOL codes,
//!   each row starting on a byte boundary;
//! - 3, Group 3: EOL codes, two-dimensional where T4Options bit 0 says so,
//!   rows on byte boundaries where bit 2 (fill bits) says so;
//! - 4, Group 4 (MMR): two-dimensional codes.
//!
//! FillOrder 2 (bits of each byte stored least significant first) is undone
//! before decoding, as tifffile does. Pixels come out as tifffile gives
//! them: 1 where the fax code says black, 0 where white (whatever the
//! photometric interpretation), as uint8.
//!
//! Bounds: decoding stops at the chunk's rows; each row is the chunk's width
//! (runs past it are corrupt data, refused), and a stream that ends before
//! the rows in the image is refused.

use hayro_ccitt::{DecodeSettings, Decoder, DecoderContext, EncodingMode};
use tiff::tags::Tag;

use super::Frame;
use crate::TiffError;

/// T4Options (292).
const T4_OPTIONS: u16 = 292;
/// T6Options (293).
const T6_OPTIONS: u16 = 293;

/// How a CCITT page is coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fax {
    /// The TIFF compression: 2 (RLE), 3 (Group 3) or 4 (Group 4).
    pub compression: u16,
    /// Group 3 rows may be coded two-dimensionally (T4Options bit 0).
    pub two_dimensional: bool,
    /// Rows start on byte boundaries: always for RLE, by T4Options bit 2
    /// (fill bits before EOL) for Group 3.
    pub byte_aligned: bool,
    /// FillOrder 2: the bits of each byte are stored least significant first.
    pub lsb_first: bool,
}

impl Fax {
    /// The coding of TIFF compression `compression` (2, 3 or 4) before the
    /// page's tags are read.
    pub(crate) fn of_compression(compression: u16) -> Fax {
        Fax {
            compression,
            two_dimensional: false,
            byte_aligned: compression == 2,
            lsb_first: false,
        }
    }

    /// Completed with the page's T4Options / T6Options and FillOrder.
    pub(super) fn with_page_tags(
        self,
        tags: &mut tiff::decoder::IfdDecoder<'_>,
    ) -> Result<Fax, TiffError> {
        let read = |tags: &mut tiff::decoder::IfdDecoder<'_>, tag: Tag, name: &str| {
            tags.find_tag_unsigned::<u32>(tag)
                .map_err(|e| TiffError::Format(format!("cannot read {name}: {e}")))
                .map(Option::unwrap_or_default)
        };
        let lsb_first = read(tags, Tag::FillOrder, "FillOrder")? == 2;
        let options = match self.compression {
            3 => read(tags, Tag::Unknown(T4_OPTIONS), "T4Options")?,
            4 => read(tags, Tag::Unknown(T6_OPTIONS), "T6Options")? << 1,
            _ => 0,
        };
        // T4Options bit 1 / T6Options bit 1
        if options & 2 != 0 {
            return Err(TiffError::Unsupported(
                "CCITT pages that allow uncompressed mode (T4Options or T6Options bit 1) are \
                 not supported"
                    .into(),
            ));
        }
        Ok(Fax {
            two_dimensional: self.compression == 3 && options & 1 != 0,
            byte_aligned: self.byte_aligned || (self.compression == 3 && options & 4 != 0),
            lsb_first,
            ..self
        })
    }
}

/// The decoded rows, widened to one byte a pixel.
struct Rows<'a> {
    out: &'a mut [u8],
    width: usize,
    done: usize,
}

impl Decoder for Rows<'_> {
    fn push_row(&mut self, changes: &[u32]) {
        let start = self.done * self.width;
        let Some(row) = self.out.get_mut(start..start + self.width) else {
            return;
        };
        row.fill(0);
        // changes alternate to black and back to white, each row starting white
        for run in changes.chunks(2) {
            let from = (run[0] as usize).min(self.width);
            let to = run
                .get(1)
                .map_or(self.width, |&x| (x as usize).min(self.width));
            row[from..to.max(from)].fill(1);
        }
        self.done += 1;
    }
}

/// Decodes the first `frame.rows` rows of the CCITT stream `raw` into `out`
/// (one byte a pixel).
pub(super) fn decode(fax: Fax, raw: &[u8], frame: &Frame, out: &mut [u8]) -> Result<(), String> {
    let reversed: Vec<u8>;
    let data = if fax.lsb_first {
        reversed = raw.iter().map(|b| b.reverse_bits()).collect();
        &reversed
    } else {
        raw
    };
    let settings = DecodeSettings {
        columns: frame.width,
        rows: frame.rows,
        end_of_block: fax.compression == 4,
        end_of_line: fax.compression == 3,
        rows_are_byte_aligned: fax.byte_aligned,
        encoding: match fax.compression {
            4 => EncodingMode::Group4,
            3 if fax.two_dimensional => EncodingMode::Group3_2D,
            _ => EncodingMode::Group3_1D,
        },
        strict: true,
    };
    let width = frame.width as usize;
    let mut rows = Rows {
        out,
        width,
        done: 0,
    };
    let decoded = hayro_ccitt::decode(data, &mut rows, &mut DecoderContext::new(settings));
    let done = rows.done;
    if done < frame.rows as usize {
        return Err(match decoded {
            Err(e) => format!("invalid CCITT data after {done} rows: {e}"),
            Ok(_) => format!(
                "the CCITT stream ends after {done} rows, but {} are in the image (truncated?)",
                frame.rows
            ),
        });
    }
    Ok(())
}
