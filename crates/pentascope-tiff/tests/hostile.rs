//! Hostile inputs (issue 7: no input can crash, exhaust or corrupt the
//! service). One test per attack, on files built byte by byte, each naming
//! the error kind and the limit it expects; then every input the fuzzers
//! found (`fuzz/regressions/<target>/`) replayed with the default limits.

mod util;

use std::io::Read;
use std::path::PathBuf;

use pentascope_tiff::flavour::{MAX_XML_ATTRIBUTES, MAX_XML_DEPTH};
use pentascope_tiff::{Axes, DType, Limit, Limits, TiffError};
use pentascope_tiff::{Flavour, TiffFile};
use util::{PageSpec, TempFile, TiffBuilder};

fn open(file: &TempFile) -> Result<TiffFile, TiffError> {
    TiffFile::open(file.path(), &Limits::default(), None)
}

/// `n` uncompressed 1×1 uint8 pages sharing one byte, the first described
/// by `description`.
fn one_pixel_pages(n: usize, description: &str) -> TempFile {
    let mut tiff = TiffBuilder::classic();
    let pixel = tiff.blob(vec![0]);
    for i in 0..n {
        tiff.page(PageSpec {
            description: (i == 0).then(|| description.to_string()),
            ..PageSpec::new(1, 1, pixel)
        });
    }
    tiff.write()
}

fn ome_xml(pixels_attributes: &str, pixels_content: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint8" SizeX="1" SizeY="1" {pixels_attributes}>{pixels_content}</Pixels></Image></OME>"#
    )
}

fn nested(levels: usize) -> String {
    "<a>".repeat(levels) + &"</a>".repeat(levels)
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(data, 1).unwrap()
}

#[track_caller]
fn expect_error(result: Result<TiffFile, TiffError>) -> TiffError {
    match result {
        Ok(f) => panic!("accepted as {:?}", f.series()),
        Err(e) => e,
    }
}

// 1. Nested XML

#[test]
fn ome_xml_nested_5000_levels_is_refused_not_a_stack_overflow() {
    let file = one_pixel_pages(1, &ome_xml("", &nested(5000)));
    let e = expect_error(open(&file));
    assert!(
        matches!(&e, TiffError::Unsupported(m) if m.contains(&format!("{MAX_XML_DEPTH} levels"))),
        "{e}"
    );
}

#[test]
fn ome_xml_nested_within_the_depth_limit_is_read() {
    let file = one_pixel_pages(1, &ome_xml("", &nested(MAX_XML_DEPTH - 8)));
    assert_eq!(open(&file).unwrap().series().flavour, Flavour::Ome);
}

#[test]
fn ome_xml_element_with_thousands_of_attributes_is_refused() {
    // roxmltree checks duplicate attributes pairwise: quadratic
    let attributes: String = (0..5000).map(|i| format!(" a{i}=\"\"")).collect();
    let file = one_pixel_pages(1, &ome_xml("", &format!("<Plane{attributes}/>")));
    let e = expect_error(open(&file));
    assert!(
        matches!(&e, TiffError::Unsupported(m) if m.contains(&format!("at most {MAX_XML_ATTRIBUTES}"))),
        "{e}"
    );
}

// 2. Integer overflow in flavour parsers

#[test]
fn scanimage_frames_per_slice_of_2_pow_63_is_ignored_not_a_panic() {
    let mut tiff = TiffBuilder::scanimage(
        "SI.hChannels.channelSave = [1;2]\nSI.hStackManager.framesPerSlice = 9223372036854775808\n",
    );
    let pixel = tiff.blob(vec![0]);
    for _ in 0..4 {
        tiff.page(PageSpec::new(1, 1, pixel));
    }
    let file = tiff.write();
    let tiff = open(&file).unwrap();
    let series = tiff.series();
    assert_eq!(series.flavour, Flavour::Plain);
    assert!(
        series
            .warnings
            .iter()
            .any(|w| w.contains("ScanImage metadata ignored: framesPerSlice")),
        "{:?}",
        series.warnings
    );
}

#[test]
fn imagej_counts_whose_product_overflows_are_ignored() {
    let file = one_pixel_pages(
        1,
        "ImageJ=1.53t\nimages=1\nchannels=4294967296\nslices=4294967296\nframes=1\n",
    );
    let tiff = open(&file).unwrap();
    assert_eq!(tiff.series().flavour, Flavour::Plain);
    assert!(tiff.series().warnings[0].contains("ImageJ metadata ignored"));
}

#[test]
fn shaped_json_whose_product_overflows_is_ignored() {
    let file = one_pixel_pages(2, r#"{"shape": [4294967296, 4294967296, 1, 1]}"#);
    let tiff = open(&file).unwrap();
    assert_eq!(tiff.series().shape.z, 2);
    assert!(tiff.series().warnings[0].contains("shaped description"));
}

#[test]
fn ome_sizes_whose_product_overflows_are_refused() {
    let file = one_pixel_pages(1, &ome_xml(r#"SizeZ="4294967296" SizeT="4294967296""#, ""));
    let e = expect_error(open(&file));
    assert!(
        matches!(&e, TiffError::Format(m) if m.contains("2^64 planes")),
        "{e}"
    );
}

#[test]
fn ome_tiffdata_ifd_near_2_pow_64_leaves_zeros_not_a_panic() {
    let file = one_pixel_pages(
        2,
        &ome_xml(
            r#"SizeZ="2""#,
            r#"<TiffData IFD="18446744073709551615" PlaneCount="18446744073709551615"/>"#,
        ),
    );
    let tiff = open(&file).unwrap();
    let series = tiff.series();
    assert_eq!(series.shape.z, 2);
    assert!(
        series
            .warnings
            .iter()
            .any(|w| w.contains("refers to IFD 18446744073709551615")),
        "{:?}",
        series.warnings
    );
    assert!(series.page_groups().iter().all(|g| g.page.is_none()));
}

#[test]
fn page_axis_override_outside_tzc_is_refused_not_a_panic() {
    let file = one_pixel_pages(3, "");
    let e = TiffFile::open(
        file.path(),
        &Limits::default(),
        Some(&Axes::parse("SYX").unwrap()),
    )
    .unwrap_err();
    assert!(matches!(e, TiffError::InvalidAxes(_)), "{e}");
}

// 3. Decompression budget

#[test]
fn huge_tile_on_a_one_pixel_page_decodes_only_the_row_in_the_image() {
    let mut pixels = vec![0u8; 4096 * 4096];
    pixels[0] = 7;
    let mut tiff = TiffBuilder::classic();
    let tile = tiff.blob(zstd(&pixels));
    tiff.page(PageSpec {
        compression: 50000,
        tile: Some((4096, 4096)),
        ..PageSpec::new(1, 1, tile)
    });
    let file = tiff.write();
    // the whole tile would be 16 MiB; the one row in the image is 4 KiB
    let limits = Limits::default().with_max_chunk_bytes(1 << 16);
    let tiff = TiffFile::open(file.path(), &limits, None).unwrap();
    let mut out = vec![Vec::<u8>::new()];
    tiff.read_band(0, 0..1, &mut out).unwrap();
    assert_eq!(out, [[7]]);
}

#[test]
fn pages_sharing_one_zstd_stream_are_refused_as_a_bomb() {
    // 64 pages of 16384² uint8 all pointing at one 8 KB stream: 16 GiB
    let mut stream = Vec::new();
    let mut encoder =
        zstd::stream::read::Encoder::new(std::io::repeat(0).take(1 << 28), 1).unwrap();
    encoder.read_to_end(&mut stream).unwrap();
    let mut tiff = TiffBuilder::classic();
    let tile = tiff.blob(stream);
    for _ in 0..64 {
        tiff.page(PageSpec {
            compression: 50000,
            tile: Some((16384, 16384)),
            ..PageSpec::new(16384, 16384, tile)
        });
    }
    let file = tiff.write();
    let e = expect_error(open(&file));
    assert!(
        matches!(&e, TiffError::Unsupported(m) if m.contains("decompression bomb")),
        "{e}"
    );
}

#[test]
fn pages_sharing_one_strip_offset_array_are_refused() {
    // 64 IFDs pointing at one array of 4096 strip offsets would be kept as
    // 64 copies; with a million IFDs that exhausts memory
    let mut tiff = TiffBuilder::classic();
    let pixel = tiff.blob(vec![0]);
    tiff.share_values();
    for _ in 0..64 {
        tiff.page(PageSpec {
            rows_per_strip: 1,
            chunks: vec![pixel; 4096],
            ..PageSpec::new(1, 4096, pixel)
        });
    }
    let e = expect_error(open(&tiff.write()));
    assert!(
        matches!(&e, TiffError::Format(m) if m.contains("share their offset arrays")),
        "{e}"
    );
}

#[test]
fn strip_stream_longer_than_the_strip_is_cut_off_unread() {
    // a decoder reading past the strip's one pixel would hit the garbage
    let mut strip = zstd(&[9]);
    strip.extend_from_slice(&[0xEE; 64]);
    let mut tiff = TiffBuilder::classic();
    let blob = tiff.blob(strip);
    tiff.page(PageSpec {
        compression: 50000,
        ..PageSpec::new(1, 1, blob)
    });
    let file = tiff.write();
    let mut out = vec![Vec::<u8>::new()];
    open(&file).unwrap().read_band(0, 0..1, &mut out).unwrap();
    assert_eq!(out, [[9]]);
}

// 4. Channels

fn assert_names_max_channels(e: &TiffError) {
    assert!(
        matches!(e, TiffError::LimitsExceeded { limit: Limit::MaxChannels, message: m }
            if m.contains("maximum of 1024")),
        "{e}"
    );
}

#[test]
fn samples_per_pixel_65535_is_refused_by_max_channels() {
    let mut tiff = TiffBuilder::classic();
    let strip = tiff.blob(vec![0; 4]);
    tiff.page(PageSpec {
        samples: 65535,
        ..PageSpec::new(2, 1, strip)
    });
    assert_names_max_channels(&expect_error(open(&tiff.write())));
}

#[test]
fn ome_size_c_past_max_channels_is_refused() {
    let file = one_pixel_pages(1025, &ome_xml(r#"SizeC="1025""#, ""));
    assert_names_max_channels(&expect_error(open(&file)));
}

// 5. Zero-filled planes

#[test]
fn ome_declaring_2_pow_24_planes_over_one_page_is_refused() {
    let file = one_pixel_pages(1, &ome_xml(r#"SizeZ="4096" SizeT="4096""#, ""));
    let e = expect_error(open(&file));
    assert!(
        matches!(&e, TiffError::Format(m)
            if m.contains("declares 16777216 planes") && m.contains("only 1 of them")),
        "{e}"
    );
}

#[test]
fn ome_tiffdata_leaving_half_the_planes_empty_is_refused() {
    let tiffdata: String = (0..20)
        .map(|z| format!(r#"<TiffData FirstZ="{z}" IFD="{z}" PlaneCount="1"/>"#))
        .collect();
    let file = one_pixel_pages(40, &ome_xml(r#"SizeZ="40""#, &tiffdata));
    let e = expect_error(open(&file));
    assert!(
        matches!(&e, TiffError::Format(m)
            if m.contains("declares 40 planes but the file holds only 20")
                && m.contains("at most 16 planes may be missing")),
        "{e}"
    );
}

#[test]
fn ome_with_a_few_missing_planes_reads_them_as_zeros() {
    let file = one_pixel_pages(1, &ome_xml(r#"SizeZ="17""#, ""));
    let tiff = open(&file).unwrap();
    assert_eq!(tiff.series().shape.z, 17);
    assert_eq!(
        tiff.series().warnings,
        ["16 plane(s) have no TIFF page and are left as zeros"]
    );
}

// 6. Declared sizes

#[test]
fn tile_whose_byte_size_overflows_64_bits_is_refused() {
    let mut tiff = TiffBuilder::classic();
    let tile = tiff.blob(vec![0]);
    tiff.page(PageSpec {
        samples: 65535,
        bits: 64,
        sample_format: 3,
        tile: Some((0xFFFF_FFF0, 0xFFFF_FFF0)),
        ..PageSpec::new(1, 1, tile)
    });
    let e = expect_error(open(&tiff.write()));
    assert!(
        matches!(&e, TiffError::LimitsExceeded { limit: Limit::MaxChunkBytes, message: m } if m.contains("more than the configured maximum of 268435456 bytes")),
        "{e}"
    );
}

#[test]
fn plane_of_2_pow_64_pixels_is_refused() {
    let mut tiff = TiffBuilder::classic();
    let strip = tiff.blob(vec![0]);
    tiff.page(PageSpec::new(u32::MAX, u32::MAX, strip));
    let e = expect_error(open(&tiff.write()));
    assert!(
        matches!(&e, TiffError::LimitsExceeded { limit: Limit::MaxPlanePixels, message: m } if m.contains("pixels per plane")),
        "{e}"
    );
}

// 7. JPEG

/// A one-tile JPEG page (tile 16×16 on a `width`×`height` page) whose
/// tile holds `stream`.
fn jpeg_page(stream: Vec<u8>, (width, height): (u32, u32), tile: (u32, u32)) -> TempFile {
    let mut tiff = TiffBuilder::classic();
    let blob = tiff.blob(stream);
    tiff.page(PageSpec {
        compression: 7,
        tile: Some(tile),
        ..PageSpec::new(width, height, blob)
    });
    tiff.write()
}

fn read_all(file: &TempFile) -> Result<Vec<Vec<u8>>, TiffError> {
    let tiff = open(file)?;
    let mut out = vec![Vec::new()];
    let rows = tiff.series().shape.y as u32;
    tiff.read_band(0, 0..rows, &mut out)?;
    Ok(out)
}

#[test]
fn jpeg_garbage_and_truncated_streams_are_format_errors() {
    let jpeg = util::FLAT_JPEG_16X16;
    assert_eq!(
        read_all(&jpeg_page(jpeg.to_vec(), (16, 16), (16, 16))).unwrap(),
        [vec![100; 256]]
    );
    // the codec fuzz target reaches the JPEG decoder (its seed is this file)
    let (series, decoded) = util::decode_one_chunk(
        7,
        1,
        DType::U8,
        (16, 16, 1),
        false,
        &jpeg,
        &util::tight_limits(),
    )
    .unwrap();
    assert_eq!((series.dtype, decoded), (DType::U8, 256));
    let garbage: Vec<u8> = (0..400u32).map(|i| (i * 7919 % 251) as u8).collect();
    let mut no_eoi_no_scan = jpeg[..330].to_vec();
    no_eoi_no_scan.truncate(325);
    for (what, stream) in [
        ("garbage", garbage),
        ("headers only", jpeg[..318].to_vec()),
        ("cut in the scan", no_eoi_no_scan),
        ("empty", Vec::new()),
    ] {
        let e = read_all(&jpeg_page(stream, (16, 16), (16, 16))).unwrap_err();
        assert!(
            matches!(&e, TiffError::Format(m) if m.contains("JPEG")),
            "{what}: {e}"
        );
    }
}

#[test]
fn jpeg_frame_larger_than_its_tile_is_refused_before_decoding() {
    // the frame header declares 65535×65535 (12 GiB of RGB) in a 16×16 tile
    let mut stream = util::FLAT_JPEG_16X16.to_vec();
    stream[94..98].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    let e = read_all(&jpeg_page(stream, (16, 16), (16, 16))).unwrap_err();
    assert!(
        matches!(&e, TiffError::Format(m) if m.contains("JPEG")),
        "{e}"
    );
}

#[test]
fn jpeg_tile_past_max_chunk_bytes_is_refused_when_opened() {
    // a JPEG decoder produces the whole 4096×4096 tile, even of a 1×1 page
    let file = jpeg_page(util::FLAT_JPEG_16X16.to_vec(), (1, 1), (4096, 4096));
    let limits = Limits::default().with_max_chunk_bytes(1 << 16);
    let e = expect_error(TiffFile::open(file.path(), &limits, None));
    assert!(
        matches!(&e, TiffError::LimitsExceeded { limit: Limit::MaxChunkBytes, message: m } if m.contains("4096×4096")),
        "{e}"
    );
}

#[test]
fn old_style_jpeg_strips_are_read_and_12_bit_jpeg_is_unsupported() {
    // an old-style JPEG page whose strip is a whole JPEG stream, as tifffile reads it
    let mut tiff = TiffBuilder::classic();
    let blob = tiff.blob(util::FLAT_JPEG_16X16.to_vec());
    tiff.page(PageSpec {
        compression: 6,
        ..PageSpec::new(16, 16, blob)
    });
    assert_eq!(read_all(&tiff.write()).unwrap(), [vec![100; 256]]);

    let mut tiff = TiffBuilder::classic();
    let blob = tiff.blob(util::FLAT_JPEG_16X16.to_vec());
    tiff.page(PageSpec {
        compression: 7,
        bits: 12,
        ..PageSpec::new(16, 16, blob)
    });
    let e = expect_error(open(&tiff.write()));
    assert!(
        matches!(&e, TiffError::Unsupported(m) if m.contains("12-bit JPEG")),
        "{e}"
    );
}

// 8. ImageJ planes past the one IFD

#[test]
fn imagej_images_beyond_the_end_of_the_file_are_refused() {
    // 6 planes of 70 bytes stored, 1000 declared: no 1000-plane allocation
    let planes = vec![vec![0u16; 35]; 6];
    let file = util::imagej_contiguous((7, 5), (1, 1000, 1), &planes, Some(1000)).write();
    let e = expect_error(open(&file));
    assert!(
        matches!(&e, TiffError::Format(m) if m.contains("images=1000") && m.contains("truncated")),
        "{e}"
    );
    // 2^40 declared: more than max_pages, refused before the file's length
    let file = util::imagej_contiguous((7, 5), (1, 1 << 40, 1), &planes, Some(1 << 40)).write();
    let e = expect_error(open(&file));
    assert!(
        matches!(&e, TiffError::LimitsExceeded { limit: Limit::MaxPages, message: m } if m.contains("images=1099511627776")),
        "{e}"
    );
    // a plane size times the count past 2^64 is refused, not wrapped
    let file = util::imagej_contiguous((7, 5), (1, 1 << 62, 1), &planes, Some(1 << 62)).write();
    let limits = Limits::default().with_max_pages(u64::MAX);
    let e = expect_error(TiffFile::open(file.path(), &limits, None));
    assert!(
        matches!(&e, TiffError::Format(m) if m.contains("images=")),
        "{e}"
    );
}

// Every input the fuzzers found

fn regressions_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions")
}

#[test]
fn every_fuzz_regression_is_decoded_or_refused() {
    let mut replayed = 0;
    for target in util::TARGETS {
        let Ok(entries) = std::fs::read_dir(regressions_dir().join(target)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for path in paths {
            let data = std::fs::read(&path).unwrap();
            let outcome = util::run_target(target, &data, &Limits::default());
            eprintln!(
                "{target}/{}: {outcome}",
                path.file_name().unwrap().to_string_lossy()
            );
            replayed += 1;
        }
    }
    eprintln!("{replayed} regression inputs replayed");
}

/// The flavour harness reaches every flavour's parser: each seed (one per
/// parser, `fuzz/seeds/flavour/`) is read by its parser, and every
/// truncation and byte flip of it is read or refused, never a panic, within
/// the fuzzing limits.
#[test]
fn every_flavour_parser_survives_its_seed_cut_and_flipped() {
    let seeds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/flavour");
    let mut kinds = std::collections::HashSet::new();
    for entry in std::fs::read_dir(&seeds).unwrap() {
        let path = entry.unwrap().path();
        let seed = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        kinds.insert(usize::from(seed[0]) % util::MetadataKind::ALL.len());
        // each seed is read by the parser it is named after (a shaped
        // description is a plain file's)
        let series = util::flavour_target(&seed, &util::tight_limits())
            .unwrap_or_else(|e| panic!("seed {name}: {e}"));
        let flavour = serde_json::to_value(series.flavour).unwrap();
        let want = if name == "shaped" {
            "plain"
        } else {
            name.as_str()
        };
        assert_eq!(flavour, want, "seed {name}: {:?}", series.warnings);
        for cut in 0..seed.len() {
            let _ = util::flavour_target(&seed[..cut], &util::tight_limits());
        }
        for at in 5..seed.len() {
            let mut flipped = seed.clone();
            flipped[at] ^= 0xA5;
            let _ = util::flavour_target(&flipped, &util::tight_limits());
        }
    }
    assert_eq!(
        kinds.len(),
        util::MetadataKind::ALL.len(),
        "a seed per parser"
    );
}

// SubIFDs (tag 330): a page's own pyramid levels

/// The SubIFDs a page lists, given its IFD's offset, the offset of an IFD
/// outside the chain and that of the pixels.
type Listing = fn(u32, u32, u32) -> Vec<u32>;

/// A 4×4 page whose SubIFDs are `subifds(first IFD, second IFD, blob)`,
/// and a 2×2 page after it whose IFD is taken out of the chain (the first
/// IFD's next offset is 0), so that only a SubIFD can reach it.
fn page_with_subifds(subifds: impl Fn(u32, u32, u32) -> Vec<u32>) -> TempFile {
    let build = |listed: Vec<u32>| {
        let mut tiff = TiffBuilder::classic();
        let big = tiff.blob((0..16).collect());
        let small = tiff.blob(vec![100, 101, 102, 103]);
        tiff.page(PageSpec {
            subifds: listed,
            ..PageSpec::new(4, 4, big)
        });
        tiff.page(PageSpec::new(2, 2, small));
        tiff.build()
    };
    let word = |bytes: &[u8], at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    // the layout does not depend on the offsets' values: find the IFDs
    // with as many SubIFDs listed, then list the ones wanted
    let count = subifds(0, 0, 0).len();
    let probe = build(vec![0; count]);
    let first = word(&probe, 4);
    let entries = u16::from_le_bytes([probe[first as usize], probe[first as usize + 1]]);
    let next_at = first as usize + 2 + 12 * usize::from(entries);
    let second = word(&probe, next_at);
    let mut bytes = build(subifds(first, second, 8));
    assert_eq!(word(&bytes, 4), first);
    bytes[next_at..next_at + 4].copy_from_slice(&[0; 4]);
    TempFile::with_bytes(&bytes)
}

#[test]
fn subifd_outside_the_chain_is_the_pages_pyramid_level() {
    let file = open(&page_with_subifds(|_, second, _| vec![second])).unwrap();
    let series = file.series();
    assert_eq!(series.levels.len(), 1, "{series:?}");
    let level = &series.levels[0];
    assert_eq!((level.height, level.width), (2, 2));
    let page = level.page_groups()[0].page.unwrap();
    let mut band = vec![Vec::<u8>::new()];
    file.read_band(page, 0..2, &mut band).unwrap();
    assert_eq!(band[0], [100, 101, 102, 103]);
}

#[test]
fn hostile_subifds_leave_the_page_without_levels_not_a_panic() {
    // its own IFD (a loop), the middle of its pixels, past the end, and
    // more SubIFDs than are read
    let cases: [(&str, Listing, Option<&str>); 4] = [
        ("loop", |first, _, _| vec![first], None),
        ("pixels", |_, _, blob| vec![blob + 3], None),
        (
            "past the end",
            |_, second, _| vec![second, u32::MAX],
            Some("outside the file"),
        ),
        (
            "too many",
            |_, second, _| vec![second; 65],
            Some("more SubIFDs than the 64 read"),
        ),
    ];
    for (name, subifds, warning) in cases {
        let file = open(&page_with_subifds(subifds)).unwrap();
        let series = file.series();
        assert!(series.levels.is_empty(), "{name}: {series:?}");
        assert_eq!(series.shape.to_array(), [1, 1, 1, 4, 4], "{name}");
        if let Some(warning) = warning {
            assert!(
                series.warnings.iter().any(|w| w.contains(warning)),
                "{name}: {:?}",
                series.warnings
            );
        }
    }
}

#[test]
fn subifds_past_max_pages_are_refused() {
    // every page lists 64 SubIFDs at distinct offsets inside its pixels
    let mut tiff = TiffBuilder::classic();
    let pixels = tiff.blob(vec![0; 4096]);
    for _ in 0..20 {
        tiff.page(PageSpec {
            subifds: (0..64).map(|k| 8 + 2 * k).collect(),
            ..PageSpec::new(64, 64, pixels)
        });
    }
    let limits = Limits::default().with_max_pages(1024);
    let e = expect_error(TiffFile::open(tiff.write().path(), &limits, None));
    assert!(
        matches!(&e, TiffError::LimitsExceeded { limit: Limit::MaxPages, message: m } if m.contains("IFDs and SubIFDs")),
        "{e}"
    );
}

#[test]
fn reader_seed_with_an_ome_subifd_pyramid_has_its_levels() {
    let seed = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds/reader/ome-subifd-pyramid.ome.tif");
    let file = TiffFile::open(&seed, &Limits::default(), None).unwrap();
    let levels: Vec<(u64, u64)> = file
        .series()
        .levels
        .iter()
        .map(|l| (l.height, l.width))
        .collect();
    assert_eq!(levels, [(8, 6), (4, 3)]);
}

#[test]
fn codec_harness_round_trips_every_sample_type() {
    // the fuzz harness itself must reach the decoders: a valid chunk decodes
    for dtype in DType::ALL {
        let bytes = vec![0u8; 3 * 2 * dtype.size()];
        let (series, decoded) =
            util::decode_one_chunk(1, 1, dtype, (3, 2, 1), false, &bytes, &util::tight_limits())
                .unwrap();
        assert_eq!((series.dtype, decoded), (dtype, 6));
    }
}
