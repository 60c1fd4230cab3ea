//! TIFF flavours and sample layouts beyond the fixture corpus, on files built
//! byte by byte: SCIFIO's ImageJ descriptions, tifffile's shaped
//! descriptions with several unlabelled axes, pages without
//! PhotometricInterpretation, physical sizes from every source, and packed
//! sample widths (1 to 15 bits), ImageJ hyperstacks stored as ImageJ stores
//! them past 4 GB, and JPEG-compressed pages. Each expectation states what
//! tifffile (2026.3) reports for the same file.

// the builder is shared with the hostile-input tests and the fuzz targets,
// which use the rest of the module
#[allow(dead_code)]
mod util;

use std::io::Write;
use std::path::PathBuf;

use pentascope_tiff::{DType, Limits, PlaneIndex, Sample, TiffError};
use pentascope_tiff::{Flavour, PhysicalSize, PhysicalSizes, TiffFile};
use util::{PageSpec, TempFile, TiffBuilder};

fn open(file: &TempFile) -> Result<TiffFile, TiffError> {
    TiffFile::open(file.path(), &Limits::default(), None)
}

/// `n` uncompressed `width`×`height` uint8 pages sharing one blob of
/// zeros, the first described by `description`.
fn pages_described(n: usize, (width, height): (u32, u32), description: &str) -> TiffBuilder {
    let mut tiff = TiffBuilder::classic();
    let blob = tiff.blob(vec![0; (width * height) as usize]);
    for i in 0..n {
        tiff.page(PageSpec {
            description: (i == 0).then(|| description.to_string()),
            ..PageSpec::new(width, height, blob)
        });
    }
    tiff
}

/// The samples of every plane of `page`, one buffer per sample.
fn read_page<T: Sample>(file: &TiffFile, page: usize) -> Vec<Vec<T>> {
    let series = file.series();
    let samples = file
        .series()
        .page_groups()
        .iter()
        .find(|g| g.page == Some(page))
        .map_or(1, |g| g.planes.len());
    let mut out = vec![Vec::new(); samples];
    file.read_band(page, 0..series.shape.y as u32, &mut out)
        .unwrap();
    out
}

fn size(value: f64, unit: &str) -> Option<PhysicalSize> {
    Some(PhysicalSize {
        value,
        unit: unit.to_string(),
    })
}

// 1. SCIFIO

/// tifffile: `is_imagej` True, series axes `TZYX`, shape (31, 29, 2, 2),
/// `imagej_metadata` {'SCIFIO': '0.45.0', 'images': 899, 'channels': 1,
/// 'slices': 29, 'frames': 31, 'hyperstack': True, 'unit': 'micron',
/// 'spacing': 0.5, 'finterval': 2.0}.
#[test]
fn scifio_description_is_read_as_imagej_hyperstack() {
    let description = "SCIFIO=0.45.0\nimages=899\nchannels=1\nslices=29\nframes=31\n\
                       hyperstack=true\nunit=micron\nspacing=0.5\nfinterval=2.0\n";
    let file = pages_described(899, (2, 2), description).write();
    let file = open(&file).unwrap();
    let s = file.series();
    assert_eq!(s.flavour, Flavour::ImageJ);
    assert_eq!(s.shape.to_array(), [31, 29, 1, 2, 2]);
    assert_eq!(s.source_axes, "TZYX");
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    // ImageJ stores slices fastest within a frame
    let groups = s.page_groups();
    let at = |t, z| {
        groups
            .iter()
            .find(|g| g.planes[0] == PlaneIndex::new(t, z, 0))
    };
    assert_eq!(at(1, 0).unwrap().page, Some(29));
    assert_eq!(at(30, 28).unwrap().page, Some(898));
    assert_eq!(s.physical_sizes.z, size(0.5, "micrometer"));
    assert_eq!(s.physical_sizes.t, size(2.0, "second"));
}

// 2. Shaped descriptions

/// tifffile: axes `QQQYX`, shape (256, 1, 1, 2, 2) for `[256, 1, 1, 2, 2]`;
/// `QQYX` (5, 1, 2, 2) and (1, 5, 2, 2); `QYX` (7, 2, 2). Unlabelled axes
/// take T, Z, C outermost first (a single one is Z) before size-1 axes go.
#[test]
fn shaped_unlabelled_axes_take_letters_before_size_one_axes_drop() {
    let cases: [(&str, usize, [u64; 3], &str); 5] = [
        (r#"{"shape": [256, 1, 1, 2, 2]}"#, 256, [256, 1, 1], "TYX"),
        (r#"{"shape": [5, 1, 2, 2]}"#, 5, [5, 1, 1], "TYX"),
        (r#"{"shape": [1, 5, 2, 2]}"#, 5, [1, 5, 1], "ZYX"),
        (r#"{"shape": [7, 2, 2]}"#, 7, [1, 7, 1], "ZYX"),
        (r#"{"shape": [3, 4, 2, 2]}"#, 12, [3, 4, 1], "TZYX"),
    ];
    for (description, pages, [t, z, c], axes) in cases {
        let file = pages_described(pages, (2, 2), description).write();
        let file = open(&file).unwrap();
        let s = file.series();
        assert_eq!(s.flavour, Flavour::Plain, "{description}");
        assert_eq!(s.shape.to_array(), [t, z, c, 2, 2], "{description}");
        assert_eq!(s.source_axes, axes, "{description}");
        assert!(s.warnings.is_empty(), "{description}: {:?}", s.warnings);
    }
}

// 3. No PhotometricInterpretation

/// tifffile reads a page without PhotometricInterpretation (libtiff too):
/// one sample is a grayscale `YX` image of the stored values; three
/// samples are `YXS`, which pentascope makes channels.
#[test]
fn page_without_photometric_is_grayscale_or_samples_as_channels() {
    for samples in [1u16, 3] {
        let mut tiff = TiffBuilder::classic();
        let pixels: Vec<u8> = (1..=6 * samples as u8).collect();
        let blob = tiff.blob(pixels.clone());
        tiff.page(PageSpec {
            samples,
            photometric: None,
            ..PageSpec::new(3, 2, blob)
        });
        let file = tiff.write();
        let file = open(&file).unwrap_or_else(|e| panic!("{samples} samples: {e}"));
        let s = file.series();
        assert_eq!(s.shape.to_array(), [1, 1, u64::from(samples), 2, 3]);
        assert_eq!(s.dtype, DType::U8);
        assert_eq!(
            s.source_axes,
            if samples == 1 { "YX" } else { "YXS" },
            "{samples} samples"
        );
        let planes = read_page::<u8>(&file, 0);
        for (k, plane) in planes.iter().enumerate() {
            let want: Vec<u8> = pixels
                .iter()
                .skip(k)
                .step_by(usize::from(samples))
                .copied()
                .collect();
            assert_eq!(plane, &want, "sample {k} of {samples}");
        }
    }
}

// 4. Physical sizes

/// The fixture corpus (`$PENTASCOPE_FIXTURES`, default `../shared/fixtures`).
fn fixture(path: &str) -> PathBuf {
    std::env::var_os("PENTASCOPE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
        })
        .join(path)
}

/// tifffile: `imagej_metadata` has `unit` '\\u00B5m' and `finterval`
/// 0.14285714285714285; `XResolution` and `YResolution` are
/// (11299435, 1000000) pixels per unit, `ResolutionUnit` 1 (none).
#[test]
fn imagej_fixture_reports_pixel_size_from_resolution_and_unit() {
    let file = TiffFile::open(
        &fixture("real/ij_mitosis_crop_TZCYX_u16.tif"),
        &Limits::default(),
        None,
    )
    .unwrap();
    let p = &file.series().physical_sizes;
    let pixel = 1_000_000.0 / 11_299_435.0;
    assert_eq!(p.x, size(pixel, "micrometer"));
    assert_eq!(p.y, size(pixel, "micrometer"));
    assert_eq!(p.z, None);
    assert_eq!(p.t, size(0.14285714285714285, "second"));
}

/// A plain TIFF: tifffile's `page.tags['XResolution']` is (300, 1), and
/// the pixel is 1/300 of the ResolutionUnit's unit (2 inch, 3 centimeter;
/// 1 none gives no size).
#[test]
fn tiff_resolution_tags_give_pixel_size_in_resolution_unit() {
    let cases = [
        (2, size(1.0 / 300.0, "inch"), size(2.0 / 300.0, "inch")),
        (
            3,
            size(1.0 / 300.0, "centimeter"),
            size(2.0 / 300.0, "centimeter"),
        ),
        (1, None, None),
    ];
    for (unit, x, y) in cases {
        let mut tiff = TiffBuilder::classic();
        let blob = tiff.blob(vec![0; 4]);
        tiff.page(PageSpec {
            resolution: Some(((300, 1), (150, 1), unit)),
            ..PageSpec::new(2, 2, blob)
        });
        let file = open(&tiff.write()).unwrap();
        let p = &file.series().physical_sizes;
        assert_eq!((&p.x, &p.y), (&x, &y), "ResolutionUnit {unit}");
        assert_eq!((&p.z, &p.t), (&None, &None));
    }
}

/// ImageJ's units, as its descriptions spell them (tifffile passes them on
/// unchanged in `imagej_metadata`), become UDUNITS names.
#[test]
fn imagej_units_become_udunits_names() {
    let cases = [
        (
            "unit=\\u00B5m\nspacing=2.0\n",
            "micrometer",
            "micrometer",
            "second",
        ),
        (
            "unit=um\nspacing=2.0\nfinterval=3.0\ntunit=min\n",
            "micrometer",
            "micrometer",
            "minute",
        ),
        (
            "unit=nm\nzunit=micron\nspacing=2.0\ntunit=ms\n",
            "nanometer",
            "micrometer",
            "millisecond",
        ),
        (
            "unit=inch\nspacing=2.0\ntunit=sec\n",
            "inch",
            "inch",
            "second",
        ),
    ];
    for (keys, xy, z, t) in cases {
        let description = format!("ImageJ=1.54f\nimages=2\nslices=2\n{keys}finterval=3.0\n");
        let mut tiff = TiffBuilder::classic();
        let blob = tiff.blob(vec![0; 4]);
        for i in 0..2 {
            tiff.page(PageSpec {
                description: (i == 0).then(|| description.clone()),
                resolution: Some(((4, 1), (4, 1), 1)),
                ..PageSpec::new(2, 2, blob)
            });
        }
        let file = open(&tiff.write()).unwrap();
        let s = file.series();
        assert_eq!(s.flavour, Flavour::ImageJ, "{keys}");
        assert_eq!(
            s.physical_sizes,
            PhysicalSizes {
                x: size(0.25, xy),
                y: size(0.25, xy),
                z: size(2.0, z),
                t: size(3.0, t),
            },
            "{keys}"
        );
    }
}

/// OME's unit symbols (tifffile's `ome_metadata` keeps them as written)
/// become UDUNITS names; without a unit attribute OME means µm and s.
#[test]
fn ome_physical_sizes_units_become_udunits_names() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint8" SizeX="2" SizeY="2" SizeZ="1" SizeC="1" SizeT="1" PhysicalSizeX="0.65" PhysicalSizeY="120" PhysicalSizeYUnit="nm" PhysicalSizeZ="1.5" PhysicalSizeZUnit="mm" TimeIncrement="250" TimeIncrementUnit="ms"><TiffData/></Pixels></Image></OME>"#;
    let file = open(&pages_described(1, (2, 2), xml).write()).unwrap();
    let s = file.series();
    assert_eq!(s.flavour, Flavour::Ome);
    assert_eq!(
        s.physical_sizes,
        PhysicalSizes {
            x: size(0.65, "micrometer"),
            y: size(120.0, "nanometer"),
            z: size(1.5, "millimeter"),
            t: size(250.0, "millisecond"),
        }
    );
}

/// ScanImage states the Z step in micrometers and the frame period in
/// seconds; tifffile derives no sizes from them. (tifffile does not take
/// this minimal header for ScanImage's: it reads 8 `IYX` pages.) Pixel size
/// needs the scanner's field of view and is not given.
#[test]
fn scanimage_z_step_and_frame_period_are_physical_sizes() {
    let text = "SI.hChannels.channelSave = [1;2]\nSI.hStackManager.framesPerSlice = 2\n\
                SI.hStackManager.actualStackZStepSize = []\n\
                SI.hStackManager.stackZStepSize = 1.5\nSI.hRoiManager.scanFramePeriod = 0.005\n";
    let mut tiff = TiffBuilder::scanimage(text);
    let blob = tiff.blob(vec![0; 4]);
    for _ in 0..8 {
        tiff.page(PageSpec::new(2, 2, blob));
    }
    let file = open(&tiff.write()).unwrap();
    let s = file.series();
    assert_eq!(s.flavour, Flavour::ScanImage);
    assert_eq!(s.shape.to_array(), [2, 2, 2, 2, 2]);
    assert_eq!(
        s.physical_sizes,
        PhysicalSizes {
            z: size(1.5, "micrometer"),
            t: size(0.005, "second"),
            ..PhysicalSizes::default()
        }
    );
}

/// tifffile: series `TCYX` (2, 2, 64, 64); `scanimage_metadata['FrameData']`
/// has `SI.hRoiManager.scanFramePeriod` 0.00504422 and
/// `SI.hStackManager.numSlices` 1 (so no Z step applies).
#[test]
fn scanimage_fixture_reports_frame_period() {
    let file = TiffFile::open(
        &fixture("real/scanimage_bigtiff_TCYX_i16.tif"),
        &Limits::default(),
        None,
    )
    .unwrap();
    let s = file.series();
    assert_eq!(s.shape.to_array(), [2, 1, 2, 64, 64]);
    assert_eq!(
        s.physical_sizes,
        PhysicalSizes {
            t: size(0.00504422, "second"),
            ..PhysicalSizes::default()
        }
    );
}

// 5. Packed samples

/// `values` (each below 2^bits) packed as TIFF stores them: most
/// significant bit first, each row of `row_len` samples starting on a byte.
fn pack(values: &[u16], bits: u16, row_len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for row in values.chunks(row_len) {
        let (mut pending, mut pending_bits) = (0u32, 0u32);
        for v in row {
            pending = (pending << bits) | u32::from(*v);
            pending_bits += u32::from(bits);
            while pending_bits >= 8 {
                pending_bits -= 8;
                out.push((pending >> pending_bits) as u8);
            }
            pending &= (1 << pending_bits) - 1;
        }
        if pending_bits > 0 {
            out.push((pending << (8 - pending_bits)) as u8);
        }
    }
    out
}

fn lzw(data: &[u8]) -> Vec<u8> {
    weezl::encode::Encoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8)
        .encode(data)
        .unwrap()
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

/// A one-page file of `width`×`height`×`samples` unsigned samples of `bits`
/// bits, in strips of `rows_per_strip` rows, compressed with `compression`
/// (1, 5 LZW or 8 Deflate); returns it and the samples in pixel order.
fn packed_page(
    bits: u16,
    (width, height, samples): (u32, u32, u16),
    rows_per_strip: u32,
    compression: u16,
) -> (TempFile, Vec<u16>) {
    let row_len = (width * u32::from(samples)) as usize;
    let max = (1u64 << bits) - 1;
    // a spread of values including 0 and the largest
    let values: Vec<u16> = (0..row_len as u64 * u64::from(height))
        .map(|i| (i * 2_654_435_761) % (max + 1))
        .map(|v| if v == 1 { max } else { v } as u16)
        .collect();
    let mut tiff = TiffBuilder::classic();
    let chunks = values
        .chunks(row_len * rows_per_strip as usize)
        .map(|strip| {
            let raw = pack(strip, bits, row_len);
            tiff.blob(match compression {
                5 => lzw(&raw),
                8 => deflate(&raw),
                _ => raw,
            })
        })
        .collect();
    tiff.page(PageSpec {
        samples,
        bits,
        compression,
        rows_per_strip,
        chunks,
        ..PageSpec::new(width, height, 0)
    });
    (tiff.write(), values)
}

/// tifffile returns 1-, 2- and 4-bit samples as uint8 of their stored
/// values (1-bit as bool; pentascope gives 0 and 1 as uint8) and 10-, 12-
/// and 14-bit samples as uint16 (`imagecodecs.packints_decode`, rows
/// byte-aligned), uncompressed, LZW or Deflate alike.
#[test]
fn packed_samples_widen_to_uint8_and_uint16() {
    for bits in [1u16, 2, 4, 3, 10, 12, 14] {
        for compression in [1u16, 5, 8] {
            for (width, height, samples) in [(5u32, 3u32, 1u16), (3, 4, 3)] {
                let case = format!("{bits} bits, compression {compression}, {samples} samples");
                let (file, values) = packed_page(bits, (width, height, samples), 2, compression);
                let file = open(&file).unwrap_or_else(|e| panic!("{case}: {e}"));
                let s = file.series();
                assert_eq!(
                    s.shape.to_array(),
                    [
                        1,
                        1,
                        u64::from(samples),
                        u64::from(height),
                        u64::from(width)
                    ],
                    "{case}"
                );
                let spp = usize::from(samples);
                let want = |k: usize| values.iter().skip(k).step_by(spp).copied();
                if bits < 8 {
                    assert_eq!(s.dtype, DType::U8, "{case}");
                    for (k, plane) in read_page::<u8>(&file, 0).iter().enumerate() {
                        let want: Vec<u8> = want(k).map(|v| v as u8).collect();
                        assert_eq!(plane, &want, "{case}, sample {k}");
                    }
                } else {
                    assert_eq!(s.dtype, DType::U16, "{case}");
                    for (k, plane) in read_page::<u16>(&file, 0).iter().enumerate() {
                        assert_eq!(plane, &want(k).collect::<Vec<_>>(), "{case}, sample {k}");
                    }
                }
            }
        }
    }
}

/// A packed bit depth with a predictor is refused as unsupported (415);
/// half-precision floats (SampleFormat 3, 16 bits) are read as float16, as
/// tifffile reads them.
#[test]
fn packed_with_predictor_is_unsupported_and_float16_is_read() {
    let mut tiff = TiffBuilder::classic();
    let blob = tiff.blob(vec![0; 6]);
    tiff.page(PageSpec {
        bits: 12,
        predictor: 2,
        ..PageSpec::new(2, 2, blob)
    });
    let err = open(&tiff.write()).unwrap_err();
    assert!(matches!(err, TiffError::Unsupported(_)), "{err}");
    assert!(err.to_string().contains("predictor 2"), "{err}");

    let mut tiff = TiffBuilder::classic();
    // 1.0, -2.0, 0.5, 65504 (the largest float16) as little-endian halves
    let blob = tiff.blob(vec![0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38, 0xFF, 0x7B]);
    tiff.page(PageSpec {
        bits: 16,
        sample_format: 3,
        ..PageSpec::new(2, 2, blob)
    });
    let file = open(&tiff.write()).unwrap();
    assert_eq!(file.series().dtype, DType::F16);
}

// ImageJ past 4 GB

/// tifffile: `is_imagej` True, one page, series kind `imagej`, axes
/// `TZCYXS` squeezed to `TZCYX`, shape (2, 3, 2, 5, 7): the planes after the
/// first are read from the bytes that follow its strip (checked against
/// tifffile itself by `fixtures::generated_flavours_and_codecs_match_tifffile`).
#[test]
fn imagej_planes_stored_after_the_one_ifd_are_read_contiguously() {
    let planes: Vec<Vec<u16>> = (0..12u16)
        .map(|k| (0..35u16).map(|i| k * 1000 + i).collect())
        .collect();
    let file = util::imagej_contiguous((7, 5), (2, 3, 2), &planes, None).write();
    let tiff = open(&file).unwrap();
    let series = tiff.series();
    assert_eq!(series.flavour, Flavour::ImageJ);
    assert_eq!(series.shape.to_array(), [2, 3, 2, 5, 7]);
    let contiguous = series.contiguous().expect("read as contiguous planes");
    assert_eq!((contiguous.count, contiguous.plane_bytes), (12, 70));
    // ImageJ's order: channels fastest, then slices, then frames
    for group in series.page_groups() {
        let [plane] = group.planes[..] else {
            panic!("{group:?}")
        };
        let k = ((plane.t * 3 + plane.z) * 2 + plane.c) as usize;
        assert_eq!(group.page, Some(k));
        assert_eq!(read_page::<u16>(&tiff, k), [planes[k].clone()], "plane {k}");
        // bands inside the plane come from the right rows too
        let mut band: Vec<Vec<u16>> = vec![Vec::new()];
        tiff.read_band(k, 2..4, &mut band).unwrap();
        assert_eq!(band[0], planes[k][14..28]);
    }
}

/// A page whose data is compressed cannot be followed by raw planes: the
/// ImageJ metadata is ignored with a warning (tifffile reads no ImageJ
/// series either) and the file is read as its one plain page.
#[test]
fn imagej_images_beyond_a_compressed_page_fall_back_to_plain() {
    let mut tiff = TiffBuilder::classic();
    let blob = tiff.blob(deflate(&[0; 35]));
    tiff.page(PageSpec {
        compression: 8,
        description: Some("ImageJ=1.54f\nimages=4\nslices=4\n".into()),
        ..PageSpec::new(7, 5, blob)
    });
    let tiff = open(&tiff.write()).unwrap();
    let series = tiff.series();
    assert_eq!(series.flavour, Flavour::Plain);
    assert_eq!(series.shape.to_array(), [1, 1, 1, 5, 7]);
    assert!(series.contiguous().is_none());
    assert!(
        series.warnings[0].contains("not followed by the other planes"),
        "{:?}",
        series.warnings
    );
}

// JPEG

/// A one-tile and a one-strip JPEG page (with and without JPEGTables) of a
/// flat grey: every decoder gives 100 exactly.
#[test]
fn jpeg_tile_and_strip_with_or_without_tables_decode() {
    let jpeg = util::FLAT_JPEG_16X16;
    // the tables (DQT, DHT) as JPEGTables, the scan without them
    let mut tables = vec![0xFF, 0xD8];
    tables.extend_from_slice(&jpeg[20..89]);
    tables.extend_from_slice(&jpeg[102..318]);
    tables.extend_from_slice(&[0xFF, 0xD9]);
    let mut abbreviated = jpeg[..20].to_vec();
    abbreviated.extend_from_slice(&jpeg[89..102]);
    abbreviated.extend_from_slice(&jpeg[318..]);
    for (tile, with_tables) in [(true, false), (false, false), (true, true), (false, true)] {
        let mut tiff = TiffBuilder::classic();
        let blob = tiff.blob(if with_tables {
            abbreviated.clone()
        } else {
            jpeg.to_vec()
        });
        tiff.page(PageSpec {
            compression: 7,
            tile: tile.then_some((16, 16)),
            jpeg_tables: with_tables.then(|| tables.clone()),
            ..PageSpec::new(if tile { 13 } else { 16 }, 16, blob)
        });
        let tiff = open(&tiff.write()).unwrap();
        let width = tiff.series().shape.x as usize;
        assert_eq!(
            read_page::<u8>(&tiff, 0),
            [vec![100; width * 16]],
            "tile {tile}, tables {with_tables}"
        );
    }
}
