//! Writes OME-TIFFs with `tiff::writer` (header, then plane by plane, as the
//! download handler streams them) and reads them back with pentascope's own
//! reader: shape, dtype, every sample's bits, channel names and physical
//! sizes must come back as written, in classic TIFF and BigTIFF.
//!
//! With `PENTASCOPE_TEST_PYTHON` set to a Python that has tifffile and numpy,
//! the same files are also read by tifffile (`ome_writer_check.py`); the test
//! then fails if that Python cannot run the check.

use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

use pentascope_tiff::flavour::unit_name;
use pentascope_tiff::writer::{write_samples_le, BigTiff, OmeMetadata, OmeTiffLayout};
use pentascope_tiff::{dispatch_dtype, DType, Limits, Sample, Shape5};
use pentascope_tiff::{FileNotes, Flavour, PhysicalSize, PhysicalSizes, TiffFile};

/// One image to write and read back.
struct Case {
    name: &'static str,
    dtype: DType,
    shape: Shape5,
    meta: OmeMetadata,
}

fn um(value: f64) -> Option<PhysicalSize> {
    Some(PhysicalSize {
        value,
        unit: "µm".into(),
    })
}

fn cases() -> Vec<Case> {
    let names = |n: usize| (0..n).map(|i| format!("ch{i}")).collect::<Vec<_>>();
    vec![
        Case {
            name: "u8_single_plane",
            dtype: DType::U8,
            shape: Shape5::new(1, 1, 1, 5, 7),
            meta: OmeMetadata::default(),
        },
        Case {
            name: "u16_tzc",
            dtype: DType::U16,
            shape: Shape5::new(2, 3, 4, 9, 11),
            meta: OmeMetadata {
                notes: FileNotes {
                    description: Some("Fixed <4% PFA> & \"stained\"\nsecond line".into()),
                    tags: vec!["DAPI".into(), "tag & <angle>".into(), "ünïcode ✓".into()],
                    annotations: vec![
                        ("Stain".into(), "DAPI".into()),
                        ("Mouse".into(), "M12".into()),
                        ("Mouse".into(), "M13 & \"x\"".into()),
                        ("Empty".into(), String::new()),
                    ],
                },
                name: "stack.ome.tif".into(),
                channel_names: vec![
                    "DAPI".into(),
                    "GFP <488> & \"co\"".into(),
                    String::new(),
                    "Cy5 – 'far red' µ\tx".into(),
                ],
                physical_sizes: PhysicalSizes {
                    x: um(0.65),
                    y: um(0.325),
                    z: Some(PhysicalSize {
                        value: 2.5,
                        unit: "nm".into(),
                    }),
                    t: Some(PhysicalSize {
                        value: 0.1,
                        unit: "s".into(),
                    }),
                },
            },
        },
        Case {
            name: "i16_tc",
            dtype: DType::I16,
            shape: Shape5::new(3, 1, 2, 6, 5),
            meta: OmeMetadata {
                notes: FileNotes::default(),
                channel_names: names(2),
                physical_sizes: PhysicalSizes {
                    x: um(1e-7),
                    y: um(123456.789),
                    ..PhysicalSizes::default()
                },
                ..OmeMetadata::default()
            },
        },
        Case {
            name: "f32_z",
            dtype: DType::F32,
            shape: Shape5::new(1, 4, 1, 8, 3),
            meta: OmeMetadata::default(),
        },
        Case {
            name: "f64_one_row",
            dtype: DType::F64,
            shape: Shape5::new(2, 1, 3, 1, 13),
            meta: OmeMetadata {
                notes: FileNotes::default(),
                channel_names: names(3),
                ..OmeMetadata::default()
            },
        },
        Case {
            name: "i8_one_column",
            dtype: DType::I8,
            shape: Shape5::new(1, 2, 1, 9, 1),
            meta: OmeMetadata::default(),
        },
        Case {
            name: "u32_tz",
            dtype: DType::U32,
            shape: Shape5::new(2, 2, 1, 3, 4),
            meta: OmeMetadata::default(),
        },
        // 1200 bytes a row: two strips a plane, the second shorter
        Case {
            name: "u16_multistrip",
            dtype: DType::U16,
            shape: Shape5::new(1, 1, 2, 1000, 600),
            meta: OmeMetadata {
                notes: FileNotes::default(),
                channel_names: names(2),
                ..OmeMetadata::default()
            },
        },
    ]
}

/// Deterministic samples with every bit pattern likely: NaNs, infinities
/// and negative zeros included for floats.
fn samples<T: Sample>(n: usize, seed: u64) -> Vec<T> {
    let mut v = vec![T::default(); n];
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut v);
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for b in bytes.iter_mut() {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *b = (state >> 24) as u8;
    }
    v
}

fn out_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `case` as an OME-TIFF the way the download handler does; returns
/// every plane's samples in `TZC` order.
fn write_case<T: Sample>(case: &Case, bigtiff: BigTiff, path: &Path) -> Vec<Vec<T>> {
    let layout = OmeTiffLayout::plan(case.shape, case.dtype, &case.meta, bigtiff).unwrap();
    let plane_len = (case.shape.y * case.shape.x) as usize;
    let mut w = BufWriter::new(File::create(path).unwrap());
    layout.write_header(&mut w).unwrap();
    assert_eq!(w.stream_position().unwrap(), layout.data_offset());
    assert_eq!(layout.header().len() as u64, layout.data_offset());
    let mut planes = Vec::new();
    for (k, plane) in layout.planes().enumerate() {
        assert_eq!(case.shape.plane_linear(plane), k as u64);
        assert_eq!(w.stream_position().unwrap(), layout.plane_offset(plane));
        let data = samples::<T>(plane_len, k as u64 + 1);
        write_samples_le(&mut w, &data).unwrap();
        planes.push(data);
    }
    w.flush().unwrap();
    drop(w);
    assert_eq!(std::fs::metadata(path).unwrap().len(), layout.total_len());
    planes
}

/// Reads every plane back with pentascope's reader and compares.
fn check_with_reader<T: Sample>(case: &Case, path: &Path, planes: &[Vec<T>]) {
    let file = TiffFile::open(path, &Limits::default(), None)
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let s = file.series();
    assert_eq!(s.flavour, Flavour::Ome, "{}", case.name);
    assert!(s.warnings.is_empty(), "{}: {:?}", case.name, s.warnings);
    assert_eq!(s.shape, case.shape, "{}", case.name);
    assert_eq!(s.dtype, case.dtype, "{}", case.name);
    assert_eq!(s.channel_names, case.meta.channel_names, "{}", case.name);
    // the reader gives units their UDUNITS names (µm is micrometer)
    let mut want = case.meta.physical_sizes.clone();
    for size in [&mut want.x, &mut want.y, &mut want.z, &mut want.t]
        .into_iter()
        .flatten()
    {
        size.unit = unit_name(&size.unit);
    }
    assert_eq!(s.physical_sizes, want, "{}", case.name);
    assert_eq!(
        s.notes, case.meta.notes,
        "{}: description, tags, annotations",
        case.name
    );
    let groups = s.page_groups();
    assert_eq!(groups.len() as u64, case.shape.planes());
    for g in &groups {
        assert_eq!(g.planes.len(), 1);
        let k = case.shape.plane_linear(g.planes[0]) as usize;
        let page = g.page.expect("every plane has a page");
        assert_eq!(page, k, "{}: pages are in TZC order", case.name);
        let mut out: Vec<Vec<T>> = vec![Vec::new()];
        file.read_band(page, 0..case.shape.y as u32, &mut out)
            .unwrap();
        let got = pentascope_tiff::dtype::as_bytes(&out[0]);
        let want = pentascope_tiff::dtype::as_bytes(&planes[k]);
        assert!(got == want, "{}: plane {k} differs", case.name);
    }
}

/// Appends the case to the manifest the Python check reads and saves the
/// expected array beside it.
fn record_for_python<T: Sample>(
    case: &Case,
    file: &str,
    bigtiff: bool,
    planes: &[Vec<T>],
    dir: &Path,
    manifest: &mut Vec<serde_json::Value>,
) {
    let all: Vec<T> = planes.iter().flatten().copied().collect();
    // raw little-endian samples in C order: the check reads them with the
    // manifest's dtype and shape
    let raw = format!("{file}.raw");
    let little_endian: Vec<T> = all
        .iter()
        .map(|v| {
            if cfg!(target_endian = "big") {
                v.swap_bytes()
            } else {
                *v
            }
        })
        .collect();
    std::fs::write(
        dir.join(&raw),
        pentascope_tiff::dtype::as_bytes(&little_endian),
    )
    .unwrap();
    let size = |p: &Option<PhysicalSize>| {
        p.as_ref()
            .map(|p| serde_json::json!({"value": p.value, "unit": p.unit}))
    };
    let p = &case.meta.physical_sizes;
    manifest.push(serde_json::json!({
        "file": file,
        "expected": raw,
        "shape": case.shape.to_array(),
        "dtype": case.dtype.name(),
        "bigtiff": bigtiff,
        "name": case.meta.name,
        "channel_names": case.meta.channel_names,
        "description": case.meta.notes.description,
        "tags": case.meta.notes.tags,
        "annotations": case.meta.notes.annotations,
        "physical_sizes": {"x": size(&p.x), "y": size(&p.y), "z": size(&p.z), "t": size(&p.t)},
    }));
}

#[test]
fn ome_tiff_round_trips_through_the_reader_classic_and_bigtiff() {
    let dir = out_dir("ome_writer");
    let mut manifest = Vec::new();
    for case in cases() {
        for bigtiff in [BigTiff::Auto, BigTiff::Always] {
            let big = bigtiff == BigTiff::Always;
            let file = format!("{}{}.ome.tif", case.name, if big { "_big" } else { "" });
            let path = dir.join(&file);
            dispatch_dtype!(case.dtype, T => {
                let planes = write_case::<T>(&case, bigtiff, &path);
                let head = std::fs::read(&path).unwrap();
                let magic = if big { 43u8 } else { 42 };
                assert_eq!(&head[..4], &[b'I', b'I', magic, 0], "{file}");
                check_with_reader::<T>(&case, &path, &planes);
                record_for_python::<T>(&case, &file, big, &planes, &dir, &mut manifest);
            });
        }
    }
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();

    // the tifffile cross-check, only where a Python for it is named
    if let Some(python) = std::env::var_os("PENTASCOPE_TEST_PYTHON") {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ome_writer_check.py");
        let out = std::process::Command::new(&python)
            .arg(&script)
            .arg(&dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run PENTASCOPE_TEST_PYTHON={python:?}: {e}"));
        assert!(
            out.status.success(),
            "tifffile check failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    }
}

#[test]
fn units_are_written_as_ome_symbols() {
    let meta = OmeMetadata {
        physical_sizes: PhysicalSizes {
            x: Some(PhysicalSize {
                value: 1.0 / 72.0,
                unit: "inch".into(),
            }),
            // OME's PhysicalSizeY is a PositiveFloat: left out
            y: Some(PhysicalSize {
                value: 0.0,
                unit: "µm".into(),
            }),
            z: Some(PhysicalSize {
                value: f64::NAN,
                unit: "µm".into(),
            }),
            // not an OME unit: Bio-Formats would not read the file as OME
            t: Some(PhysicalSize {
                value: 2.0,
                unit: "fortnight".into(),
            }),
        },
        ..OmeMetadata::default()
    };
    let layout =
        OmeTiffLayout::plan(Shape5::new(1, 1, 1, 2, 2), DType::U8, &meta, BigTiff::Auto).unwrap();
    let xml = layout.ome_xml();
    assert!(
        xml.contains(&format!(
            "PhysicalSizeX=\"{}\" PhysicalSizeXUnit=\"in\"",
            1.0 / 72.0
        )),
        "{xml}"
    );
    assert!(!xml.contains("PhysicalSizeY"), "{xml}");
    assert!(!xml.contains("PhysicalSizeZ"), "{xml}");
    assert!(!xml.contains("TimeIncrement"), "{xml}");
}
