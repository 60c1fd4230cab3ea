//! Writing a 5D image as one OME-TIFF, streamed plane by plane.
//!
//! An export must not hold the image in memory, and an HTTP response wants
//! its `Content-Length` before the first byte. Both follow from planning the
//! whole file up front: [`OmeTiffLayout::plan`] computes where every IFD and
//! every strip goes, so the file is
//!
//! 1. [`OmeTiffLayout::header`] (or [`OmeTiffLayout::write_header`]): the
//!    TIFF header, the OME-XML, and *all* IFDs, O(planes) bytes;
//! 2. then the raw little-endian samples of each plane, in the order of
//!    [`OmeTiffLayout::planes`] (`TZC`, channel fastest), each exactly
//!    [`OmeTiffLayout::plane_len`] bytes, for example with
//!    [`write_samples_le`];
//!
//! and adds up to exactly [`OmeTiffLayout::total_len`] bytes.
//!
//! The file is uncompressed, one sample per pixel, strips of at most
//! [`TARGET_STRIP_BYTES`] (at least one row), pages in `DimensionOrder`
//! `XYCZT` so one `<TiffData IFD="0" PlaneCount="…"/>` maps them all.
//! It is a classic TIFF when every offset fits in 32 bits and a BigTIFF
//! otherwise (or when asked for with [`BigTiff::Always`]). pentascope's own
//! reader, tifffile and Bio-Formats (Fiji) read it back as `TZCYX`.
//!
//! ```
//! use pentascope_tiff::writer::{write_samples_le, BigTiff, OmeMetadata, OmeTiffLayout};
//! use pentascope_tiff::{DType, Shape5};
//!
//! let shape = Shape5::new(1, 2, 1, 3, 4);
//! let layout = OmeTiffLayout::plan(shape, DType::U16, &OmeMetadata::default(), BigTiff::Auto)?;
//! let mut file = layout.header();
//! for _plane in layout.planes() {
//!     write_samples_le(&mut file, &[7u16; 12])?;
//! }
//! assert_eq!(file.len() as u64, layout.total_len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::flavour::{FileNotes, PhysicalSize, PhysicalSizes};
use crate::shape::{PlaneIndex, Shape5};
use crate::{DType, Sample};
use crate::{Limit, TiffError};

/// The `Software` tag of the first page.
pub const SOFTWARE: &str = "pentascope";

/// Strips are at most this many bytes (unless one row is larger): small
/// enough that a reader's per-chunk limit (pentascope's own
/// [`Limits::max_chunk_bytes`](crate::Limits::max_chunk_bytes)) accepts
/// large planes and strips decode in parallel, large enough that the
/// strip tables stay a few bytes per megabyte of pixels.
pub const TARGET_STRIP_BYTES: u64 = 1 << 20;

/// Pixel data starts at a multiple of this.
const DATA_ALIGN: u64 = 16;
/// IFDs start at a multiple of this (TIFF asks for a word boundary).
const IFD_ALIGN: u64 = 8;

// TIFF field types
const ASCII: u16 = 2;
const SHORT: u16 = 3;
const LONG: u16 = 4;
const LONG8: u16 = 16;

/// Tags of every page, and the two only the first page has.
const TAGS_PER_PAGE: u64 = 11;
const TAGS_FIRST_PAGE: u64 = TAGS_PER_PAGE + 2;

/// What an export writes besides the pixels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OmeMetadata {
    /// The OME `Image` name (for example the original file name); not
    /// written when empty.
    pub name: String,
    /// One name per channel, or none (then no `Channel` element is written).
    pub channel_names: Vec<String>,
    /// Physical pixel sizes and the time step. Units are written as OME's
    /// symbols (`inch` as `in`, `micron` as `µm`); sizes that OME cannot
    /// hold (a length that is not positive, a value that is not finite, a
    /// unit OME does not know) are left out.
    pub physical_sizes: PhysicalSizes,
    /// The image's description, tags (`TagAnnotation`s) and key-value
    /// annotations (one `MapAnnotation`), linked to the image.
    pub notes: FileNotes,
}

/// Whether the file is a classic TIFF or a BigTIFF.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BigTiff {
    /// Classic TIFF when the whole file fits in 32-bit offsets (below
    /// 4 GiB), BigTIFF otherwise. The default, since older readers know
    /// only classic TIFF.
    #[default]
    Auto,
    /// BigTIFF whatever the size.
    Always,
}

/// Where everything of an OME-TIFF goes, computed before the first byte is
/// written. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct OmeTiffLayout {
    shape: Shape5,
    dtype: DType,
    bigtiff: bool,
    /// The OME-XML, NUL-terminated.
    xml: Vec<u8>,
    xml_offset: u64,
    software_offset: u64,
    rows_per_strip: u64,
    strips_per_plane: u64,
    row_bytes: u64,
    plane_bytes: u64,
    /// The StripByteCounts array all pages share (when a page has more
    /// than one strip).
    counts_offset: u64,
    first_ifd: u64,
    /// Bytes from the first IFD to the second, and between later IFDs.
    first_ifd_len: u64,
    ifd_len: u64,
    data_offset: u64,
    total_len: u64,
}

impl OmeTiffLayout {
    /// Plans the OME-TIFF of an image of `shape` and `dtype` with `meta`.
    ///
    /// Fails with [`TiffError::InvalidRequest`] for an empty shape or
    /// channel names that do not match the channels,
    /// [`TiffError::Unsupported`] for 64-bit integer samples (OME has no
    /// such pixel type) and [`TiffError::LimitsExceeded`] when a plane is
    /// wider or taller than TIFF's 2^32 − 1 pixels or a size overflows.
    pub fn plan(
        shape: Shape5,
        dtype: DType,
        meta: &OmeMetadata,
        bigtiff: BigTiff,
    ) -> Result<OmeTiffLayout, TiffError> {
        if shape.to_array().contains(&0) {
            return Err(TiffError::InvalidRequest(format!(
                "cannot write an image of shape {:?}: every size must be at least 1",
                shape.to_array()
            )));
        }
        for (name, n) in [("width", shape.x), ("height", shape.y)] {
            if n > u64::from(u32::MAX) {
                return Err(TiffError::too_large(
                    Limit::Fixed,
                    format!(
                        "a TIFF page is at most {} pixels in {name}, the image has {n}",
                        u32::MAX
                    ),
                ));
            }
        }
        if !meta.channel_names.is_empty() && meta.channel_names.len() as u64 != shape.c {
            return Err(TiffError::InvalidRequest(format!(
                "{} channel names for {} channels",
                meta.channel_names.len(),
                shape.c
            )));
        }
        let planes = shape
            .t
            .checked_mul(shape.z)
            .and_then(|n| n.checked_mul(shape.c))
            .ok_or_else(|| {
                TiffError::too_large(
                    Limit::Fixed,
                    format!(
                        "{}×{}×{} TZC planes is more than 2^64",
                        shape.t, shape.z, shape.c
                    ),
                )
            })?;
        let mut xml = ome_xml(shape, dtype, planes, meta)?.into_bytes();
        xml.push(0);
        let classic = Self::lay_out(shape, dtype, xml.clone(), false)?;
        match bigtiff {
            BigTiff::Auto if classic.total_len <= u64::from(u32::MAX) => Ok(classic),
            _ => Self::lay_out(shape, dtype, xml, true),
        }
    }

    fn lay_out(
        shape: Shape5,
        dtype: DType,
        xml: Vec<u8>,
        bigtiff: bool,
    ) -> Result<OmeTiffLayout, TiffError> {
        let too_large = || {
            TiffError::too_large(
                Limit::Fixed,
                format!(
                    "an OME-TIFF of {}×{}×{}×{}×{} {dtype} samples would be larger than 2^64 bytes",
                    shape.t, shape.z, shape.c, shape.y, shape.x
                ),
            )
        };
        let add = |a: u64, b: u64| a.checked_add(b).ok_or_else(too_large);
        let mul = |a: u64, b: u64| a.checked_mul(b).ok_or_else(too_large);
        let align = |a: u64, to: u64| add(a, (to - a % to) % to);

        let planes = mul(mul(shape.t, shape.z)?, shape.c)?;
        let row_bytes = mul(shape.x, dtype.size() as u64)?;
        let plane_bytes = mul(row_bytes, shape.y)?;
        let rows_per_strip = (TARGET_STRIP_BYTES / row_bytes).clamp(1, shape.y);
        let strips_per_plane = shape.y.div_ceil(rows_per_strip);
        let (word, header_len, entry_len, count_len) = if bigtiff {
            (8u64, 16u64, 20u64, 8u64)
        } else {
            (4, 8, 12, 2)
        };
        // out-of-line strip tables only when a page has several strips
        let table = if strips_per_plane > 1 {
            mul(strips_per_plane, word)?
        } else {
            0
        };
        let ifd_len = |tags: u64| -> Result<u64, TiffError> {
            let entries = add(add(count_len, mul(tags, entry_len)?)?, word)?;
            align(add(entries, table)?, IFD_ALIGN)
        };

        let xml_offset = header_len;
        let software_offset = add(xml_offset, xml.len() as u64)?;
        let counts_offset = align(add(software_offset, SOFTWARE.len() as u64 + 1)?, word)?;
        let first_ifd = align(add(counts_offset, table)?, IFD_ALIGN)?;
        let first_ifd_len = ifd_len(TAGS_FIRST_PAGE)?;
        let ifd_len = ifd_len(TAGS_PER_PAGE)?;
        let ifds_end = add(add(first_ifd, first_ifd_len)?, mul(planes - 1, ifd_len)?)?;
        let data_offset = align(ifds_end, DATA_ALIGN)?;
        let total_len = add(data_offset, mul(planes, plane_bytes)?)?;
        Ok(OmeTiffLayout {
            shape,
            dtype,
            bigtiff,
            xml,
            xml_offset,
            software_offset,
            rows_per_strip,
            strips_per_plane,
            row_bytes,
            plane_bytes,
            counts_offset,
            first_ifd,
            first_ifd_len,
            ifd_len,
            data_offset,
            total_len,
        })
    }

    /// The exact length of the file in bytes (the `Content-Length`).
    pub fn total_len(&self) -> u64 {
        self.total_len
    }

    /// Whether the file is a BigTIFF.
    pub fn is_bigtiff(&self) -> bool {
        self.bigtiff
    }

    /// The length of [`OmeTiffLayout::header`], which is also where the
    /// first plane's samples start.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// Bytes of one plane's samples (height × width × sample size).
    pub fn plane_len(&self) -> u64 {
        self.plane_bytes
    }

    /// Rows in each strip (the last strip of a page may have fewer).
    pub fn rows_per_strip(&self) -> u64 {
        self.rows_per_strip
    }

    /// The OME-XML written in the first page's `ImageDescription`.
    pub fn ome_xml(&self) -> &str {
        std::str::from_utf8(&self.xml[..self.xml.len() - 1]).expect("built from a String")
    }

    /// The planes in the order their samples follow the header: `TZC`
    /// order, channel fastest (the linear order of
    /// [`Shape5::plane_linear`]), one page each.
    pub fn planes(&self) -> impl Iterator<Item = PlaneIndex> + '_ {
        let s = self.shape;
        (0..s.t).flat_map(move |t| {
            (0..s.z).flat_map(move |z| (0..s.c).map(move |c| PlaneIndex::new(t, z, c)))
        })
    }

    /// Where the samples of `plane` start in the file.
    ///
    /// # Panics
    ///
    /// If `plane` is outside the shape (a caller bug).
    pub fn plane_offset(&self, plane: PlaneIndex) -> u64 {
        self.shape
            .check_plane(plane)
            .expect("plane inside the shape");
        // below total_len, which was computed with checked arithmetic
        self.data_offset + self.shape.plane_linear(plane) * self.plane_bytes
    }

    /// Everything before the first plane's samples, in memory: the TIFF
    /// header, the OME-XML and every IFD ([`OmeTiffLayout::data_offset`]
    /// bytes, about 150 per plane).
    pub fn header(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(usize::try_from(self.data_offset).unwrap_or(0));
        self.write_header(&mut out)
            .expect("writing to a Vec cannot fail");
        out
    }

    /// Writes what [`OmeTiffLayout::header`] returns to `w`, one IFD at a
    /// time, so not even the header is held in memory.
    pub fn write_header<W: Write>(&self, w: &mut W) -> io::Result<()> {
        let mut buf = Vec::with_capacity(self.first_ifd_len as usize);
        // TIFF header: little-endian, magic, offset of the first IFD
        buf.extend_from_slice(b"II");
        if self.bigtiff {
            buf.extend_from_slice(&43u16.to_le_bytes());
            buf.extend_from_slice(&8u16.to_le_bytes());
            buf.extend_from_slice(&0u16.to_le_bytes());
            buf.extend_from_slice(&self.first_ifd.to_le_bytes());
        } else {
            buf.extend_from_slice(&42u16.to_le_bytes());
            buf.extend_from_slice(&(self.first_ifd as u32).to_le_bytes());
        }
        debug_assert_eq!(buf.len() as u64, self.xml_offset);
        buf.extend_from_slice(&self.xml);
        buf.extend_from_slice(SOFTWARE.as_bytes());
        buf.push(0);
        pad_to(&mut buf, self.counts_offset);
        if self.strips_per_plane > 1 {
            for s in 0..self.strips_per_plane {
                self.put_word(&mut buf, self.strip_bytes(s));
            }
        }
        pad_to(&mut buf, self.first_ifd);
        w.write_all(&buf)?;

        let planes = self.shape.planes();
        let mut at = self.first_ifd;
        for k in 0..planes {
            buf.clear();
            let next = if k + 1 == planes {
                0
            } else if k == 0 {
                at + self.first_ifd_len
            } else {
                at + self.ifd_len
            };
            self.ifd(&mut buf, k, at, next);
            w.write_all(&buf)?;
            at = next;
        }
        let ifds_end = self.first_ifd + self.first_ifd_len + (planes - 1) * self.ifd_len;
        w.write_all(&vec![0u8; (self.data_offset - ifds_end) as usize])
    }

    /// Appends IFD `k` (at file offset `at`, followed by the IFD at `next`,
    /// 0 for none) and its strip offsets, padded to its full length.
    fn ifd(&self, buf: &mut Vec<u8>, k: u64, at: u64, next: u64) {
        let first = k == 0;
        let tags = if first {
            TAGS_FIRST_PAGE
        } else {
            TAGS_PER_PAGE
        };
        let (offsets_type, entries_len) = if self.bigtiff {
            (LONG8, 8 + tags * 20 + 8)
        } else {
            (LONG, 2 + tags * 12 + 4)
        };
        let strips = self.strips_per_plane;
        let plane_start = self.data_offset + k * self.plane_bytes;
        // one strip: offset and count are held in the entry itself
        let (offsets, counts) = if strips > 1 {
            (at + entries_len, self.counts_offset)
        } else {
            (plane_start, self.plane_bytes)
        };
        let bits = (self.dtype.size() * 8) as u64;
        let sample_format = if self.dtype.is_float() {
            3
        } else if self.dtype.name().starts_with("int") {
            2
        } else {
            1
        };
        if self.bigtiff {
            buf.extend_from_slice(&tags.to_le_bytes());
        } else {
            buf.extend_from_slice(&(tags as u16).to_le_bytes());
        }
        let mut entry = |tag: u16, typ: u16, count: u64, value: u64| {
            self.put_entry(buf, tag, typ, count, value)
        };
        entry(256, LONG, 1, self.shape.x); // ImageWidth
        entry(257, LONG, 1, self.shape.y); // ImageLength
        entry(258, SHORT, 1, bits); // BitsPerSample
        entry(259, SHORT, 1, 1); // Compression: none
        entry(262, SHORT, 1, 1); // PhotometricInterpretation: min-is-black
        if first {
            entry(270, ASCII, self.xml.len() as u64, self.xml_offset); // ImageDescription
        }
        entry(273, offsets_type, strips, offsets); // StripOffsets
        entry(277, SHORT, 1, 1); // SamplesPerPixel
        entry(278, LONG, 1, self.rows_per_strip); // RowsPerStrip
        entry(279, offsets_type, strips, counts); // StripByteCounts
        entry(284, SHORT, 1, 1); // PlanarConfiguration: contiguous
        if first {
            entry(305, ASCII, SOFTWARE.len() as u64 + 1, self.software_offset); // Software
        }
        entry(339, SHORT, 1, sample_format); // SampleFormat
        self.put_word(buf, next);
        if strips > 1 {
            let strip_bytes = self.rows_per_strip * self.row_bytes;
            for s in 0..strips {
                self.put_word(buf, plane_start + s * strip_bytes);
            }
        }
        let len = if first {
            self.first_ifd_len
        } else {
            self.ifd_len
        };
        buf.resize(len as usize, 0);
    }

    /// One IFD entry. `value` is the value itself when it fits in the
    /// entry (a single SHORT, LONG or LONG8: its little-endian bytes,
    /// zero-padded, are the field), otherwise the offset of the values.
    fn put_entry(&self, buf: &mut Vec<u8>, tag: u16, typ: u16, count: u64, value: u64) {
        buf.extend_from_slice(&tag.to_le_bytes());
        buf.extend_from_slice(&typ.to_le_bytes());
        if self.bigtiff {
            buf.extend_from_slice(&count.to_le_bytes());
        } else {
            buf.extend_from_slice(&(count as u32).to_le_bytes());
        }
        self.put_word(buf, value);
    }

    /// An offset-sized word: 4 bytes in a classic TIFF (where the plan
    /// keeps every value below 2^32), 8 in a BigTIFF.
    fn put_word(&self, buf: &mut Vec<u8>, value: u64) {
        if self.bigtiff {
            buf.extend_from_slice(&value.to_le_bytes());
        } else {
            debug_assert!(value <= u64::from(u32::MAX));
            buf.extend_from_slice(&(value as u32).to_le_bytes());
        }
    }

    /// Bytes of strip `s` of a page: full strips, then what is left.
    fn strip_bytes(&self, s: u64) -> u64 {
        let rows = self
            .rows_per_strip
            .min(self.shape.y - s * self.rows_per_strip);
        rows * self.row_bytes
    }
}

fn pad_to(buf: &mut Vec<u8>, offset: u64) {
    debug_assert!(buf.len() as u64 <= offset);
    buf.resize(offset as usize, 0);
}

/// Writes `samples` little-endian, as an OME-TIFF plane (and `.npy` data)
/// holds them.
pub fn write_samples_le<T: Sample, W: Write>(w: &mut W, samples: &[T]) -> io::Result<()> {
    if cfg!(target_endian = "little") {
        w.write_all(crate::dtype::as_bytes(samples))
    } else {
        let mut buf = Vec::with_capacity(samples.len().min(1 << 16) * T::DTYPE.size());
        for chunk in samples.chunks(1 << 16) {
            buf.clear();
            for v in chunk {
                buf.extend_from_slice(bytemuck::bytes_of(&v.swap_bytes()));
            }
            w.write_all(&buf)?;
        }
        Ok(())
    }
}

/// OME's name of a pixel type; OME has none for 64-bit integers or
/// half-precision floats.
fn ome_pixel_type(dtype: DType) -> Result<&'static str, TiffError> {
    Ok(match dtype {
        DType::U8 => "uint8",
        DType::U16 => "uint16",
        DType::U32 => "uint32",
        DType::I8 => "int8",
        DType::I16 => "int16",
        DType::I32 => "int32",
        DType::F32 => "float",
        DType::F64 => "double",
        DType::U64 | DType::I64 | DType::F16 => {
            return Err(TiffError::Unsupported(format!(
                "OME-TIFF has no {dtype} pixel type; download the image as .npy instead"
            )))
        }
    })
}

/// The OME-XML of the image: one `Image` whose `Pixels` map pages in
/// `XYCZT` order from IFD 0 on.
fn ome_xml(
    shape: Shape5,
    dtype: DType,
    planes: u64,
    meta: &OmeMetadata,
) -> Result<String, TiffError> {
    let pixel_type = ome_pixel_type(dtype)?;
    let mut x = String::with_capacity(1024 + 64 * meta.channel_names.len());
    x.push_str(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <OME xmlns=\"http://www.openmicroscopy.org/Schemas/OME/2016-06\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xsi:schemaLocation=\"http://www.openmicroscopy.org/Schemas/OME/2016-06 \
         http://www.openmicroscopy.org/Schemas/OME/2016-06/ome.xsd\" \
         Creator=\"pentascope\">\n",
    );
    x.push_str("  <Image ID=\"Image:0\"");
    if !meta.name.is_empty() {
        attr(&mut x, "Name", &meta.name);
    }
    x.push_str(">\n");
    let notes = &meta.notes;
    if let Some(description) = notes.description.as_deref().filter(|d| !d.is_empty()) {
        x.push_str("    <Description>");
        escape_attr(&mut x, description);
        x.push_str("</Description>\n");
    }
    x.push_str("    <Pixels ID=\"Pixels:0\" DimensionOrder=\"XYCZT\"");
    attr(&mut x, "Type", pixel_type);
    attr(&mut x, "SignificantBits", &(dtype.size() * 8).to_string());
    x.push_str(" BigEndian=\"false\" Interleaved=\"false\"");
    for (name, n) in [
        ("SizeX", shape.x),
        ("SizeY", shape.y),
        ("SizeC", shape.c),
        ("SizeZ", shape.z),
        ("SizeT", shape.t),
    ] {
        attr(&mut x, name, &n.to_string());
    }
    let p = &meta.physical_sizes;
    physical(&mut x, "PhysicalSizeX", p.x.as_ref(), true);
    physical(&mut x, "PhysicalSizeY", p.y.as_ref(), true);
    physical(&mut x, "PhysicalSizeZ", p.z.as_ref(), true);
    physical(&mut x, "TimeIncrement", p.t.as_ref(), false);
    x.push_str(">\n");
    for (i, name) in meta.channel_names.iter().enumerate() {
        let _ = write!(x, "      <Channel ID=\"Channel:0:{i}\"");
        if !name.is_empty() {
            attr(&mut x, "Name", name);
        }
        x.push_str(" SamplesPerPixel=\"1\"/>\n");
    }
    let _ = writeln!(x, "      <TiffData IFD=\"0\" PlaneCount=\"{planes}\"/>");
    x.push_str("    </Pixels>\n");
    // annotation 0 is the map, 1… the tags; the image refers to each
    let map = !notes.annotations.is_empty();
    let ids = (usize::from(!map)..=notes.tags.len()).collect::<Vec<_>>();
    for id in &ids {
        let _ = writeln!(x, "    <AnnotationRef ID=\"Annotation:{id}\"/>");
    }
    x.push_str("  </Image>\n");
    if !ids.is_empty() {
        x.push_str("  <StructuredAnnotations>\n");
        if map {
            // OMERO's namespace for the key-value pairs users edit
            x.push_str(
                "    <MapAnnotation ID=\"Annotation:0\" \
                 Namespace=\"openmicroscopy.org/omero/client/mapAnnotation\">\n      <Value>\n",
            );
            for (key, value) in &notes.annotations {
                x.push_str("        <M");
                attr(&mut x, "K", key);
                x.push('>');
                escape_attr(&mut x, value);
                x.push_str("</M>\n");
            }
            x.push_str("      </Value>\n    </MapAnnotation>\n");
        }
        for (i, tag) in notes.tags.iter().enumerate() {
            let _ = write!(x, "    <TagAnnotation ID=\"Annotation:{}\"><Value>", i + 1);
            escape_attr(&mut x, tag);
            x.push_str("</Value></TagAnnotation>\n");
        }
        x.push_str("  </StructuredAnnotations>\n");
    }
    x.push_str("</OME>\n");
    Ok(x)
}

/// Appends ` name="value"` with the value escaped.
fn attr(x: &mut String, name: &str, value: &str) {
    x.push(' ');
    x.push_str(name);
    x.push_str("=\"");
    escape_attr(x, value);
    x.push('"');
}

/// A physical size and its unit as `Pixels` attributes; lengths must be
/// positive (OME's `PositiveFloat`), every value finite, and the unit one
/// OME knows ([`ome_unit`]); otherwise the size is left out.
fn physical(x: &mut String, name: &str, size: Option<&PhysicalSize>, length: bool) {
    let Some(size) = size else { return };
    if !size.value.is_finite() || (length && size.value <= 0.0) {
        return;
    }
    let unit = if size.unit.is_empty() {
        None
    } else {
        match ome_unit(&size.unit, length) {
            Some(unit) => Some(unit),
            None => return,
        }
    };
    // Display prints the shortest decimal that parses back to the same f64
    attr(x, name, &size.value.to_string());
    if let Some(unit) = unit {
        attr(x, &format!("{name}Unit"), unit);
    }
}

/// OME's `UnitsLength` symbols.
const OME_LENGTH_UNITS: &[&str] = &[
    "Ym",
    "Zm",
    "Em",
    "Pm",
    "Tm",
    "Gm",
    "Mm",
    "km",
    "hm",
    "dam",
    "m",
    "dm",
    "cm",
    "mm",
    "µm",
    "nm",
    "pm",
    "fm",
    "am",
    "zm",
    "ym",
    "Å",
    "thou",
    "li",
    "in",
    "ft",
    "yd",
    "mi",
    "ua",
    "ly",
    "pc",
    "pt",
    "pixel",
    "reference frame",
];

/// OME's `UnitsTime` symbols.
const OME_TIME_UNITS: &[&str] = &[
    "Ys", "Zs", "Es", "Ps", "Ts", "Gs", "Ms", "ks", "hs", "das", "s", "ds", "cs", "ms", "µs", "ns",
    "ps", "fs", "as", "zs", "ys", "min", "h", "d",
];

/// OME's symbol for a unit, mapping the other spellings pentascope's
/// readers produce (`inch` for TIFF's ResolutionUnit, a Greek mu), or
/// `None` for a unit OME does not know: Bio-Formats (Fiji) does not read a
/// file whose OME-XML has one as OME-TIFF at all, so such a size is left
/// out rather than the whole image flattened to a plain stack.
fn ome_unit(unit: &str, length: bool) -> Option<&str> {
    let unit = match unit {
        "inch" | "inches" => "in",
        "micron" | "microns" | "um" | "micrometer" | "\\u00B5m" => "µm",
        "μm" => "µm", // Greek small letter mu
        "nanometer" => "nm",
        "millimeter" => "mm",
        "centimeter" => "cm",
        "meter" => "m",
        "angstrom" => "Å",
        "μs" | "us" | "microsecond" => "µs",
        "sec" | "second" => "s",
        "millisecond" => "ms",
        "nanosecond" => "ns",
        "minute" => "min",
        "hour" => "h",
        other => other,
    };
    let known = if length {
        OME_LENGTH_UNITS
    } else {
        OME_TIME_UNITS
    };
    known.contains(&unit).then_some(unit)
}

/// Escapes text for a double-quoted XML attribute. Tabs and line breaks
/// become character references (a parser would otherwise normalise them to
/// spaces); characters XML 1.0 cannot hold at all become U+FFFD.
fn escape_attr(x: &mut String, value: &str) {
    for ch in value.chars() {
        match ch {
            '&' => x.push_str("&amp;"),
            '<' => x.push_str("&lt;"),
            '>' => x.push_str("&gt;"),
            '"' => x.push_str("&quot;"),
            '\'' => x.push_str("&apos;"),
            '\t' => x.push_str("&#9;"),
            '\n' => x.push_str("&#10;"),
            '\r' => x.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => x.push('\u{FFFD}'),
            c => x.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_are_bounded_and_cover_the_plane() {
        // 3000 rows of 1000 u16: 2000 bytes a row, 524 rows a strip
        let shape = Shape5::new(1, 1, 1, 3000, 1000);
        let l =
            OmeTiffLayout::plan(shape, DType::U16, &OmeMetadata::default(), BigTiff::Auto).unwrap();
        assert_eq!(l.rows_per_strip(), TARGET_STRIP_BYTES / 2000);
        let total: u64 = (0..l.strips_per_plane).map(|s| l.strip_bytes(s)).sum();
        assert_eq!(total, l.plane_len());
        assert_eq!(l.header().len() as u64, l.data_offset());
    }

    #[test]
    fn size_decides_bigtiff() {
        let meta = OmeMetadata::default();
        // 2 GiB: classic; 4 GiB: BigTIFF; nothing is allocated for either
        let two = Shape5::new(1, 2, 1, 32768, 32768);
        let l = OmeTiffLayout::plan(two, DType::U8, &meta, BigTiff::Auto).unwrap();
        assert!(!l.is_bigtiff());
        let four = Shape5::new(1, 4, 1, 32768, 32768);
        let l = OmeTiffLayout::plan(four, DType::U8, &meta, BigTiff::Auto).unwrap();
        assert!(l.is_bigtiff());
        assert_eq!(l.total_len(), l.data_offset() + (4u64 << 30));
        // the header is a few bytes per strip, not per pixel
        assert!(l.data_offset() < 1 << 16, "{}", l.data_offset());
    }

    #[test]
    fn overflow_and_bad_requests_are_errors() {
        let meta = OmeMetadata::default();
        let huge = Shape5::new(u64::MAX, 2, 1, 4, 4);
        assert!(matches!(
            OmeTiffLayout::plan(huge, DType::U8, &meta, BigTiff::Auto),
            Err(TiffError::LimitsExceeded { .. })
        ));
        let wide = Shape5::new(1, 1, 1, 1, 1 << 32);
        assert!(matches!(
            OmeTiffLayout::plan(wide, DType::U8, &meta, BigTiff::Auto),
            Err(TiffError::LimitsExceeded { .. })
        ));
        let empty = Shape5::new(1, 0, 1, 4, 4);
        assert!(matches!(
            OmeTiffLayout::plan(empty, DType::U8, &meta, BigTiff::Auto),
            Err(TiffError::InvalidRequest(_))
        ));
        let one = Shape5::new(1, 1, 1, 4, 4);
        assert!(matches!(
            OmeTiffLayout::plan(one, DType::I64, &meta, BigTiff::Auto),
            Err(TiffError::Unsupported(_))
        ));
        let names = OmeMetadata {
            channel_names: vec!["a".into(), "b".into()],
            ..OmeMetadata::default()
        };
        assert!(matches!(
            OmeTiffLayout::plan(one, DType::U8, &names, BigTiff::Auto),
            Err(TiffError::InvalidRequest(_))
        ));
    }

    #[test]
    fn attributes_are_escaped() {
        let mut x = String::new();
        escape_attr(&mut x, "a<b>&\"c'\t\n\u{1}é");
        assert_eq!(x, "a&lt;b&gt;&amp;&quot;c&apos;&#9;&#10;\u{FFFD}é");
    }
}
