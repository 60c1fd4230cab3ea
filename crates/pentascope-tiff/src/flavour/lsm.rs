//! Zeiss LSM: CZ_LSMINFO's dimensions, scan type and voxel sizes; every
//! other page is a thumbnail, and the thumbnails are a series of their own.

use super::*;

/// CZ_LSMINFO, whose presence makes a file Zeiss LSM.
pub(crate) const CZ_LSMINFO_TAG: u16 = 34412;
/// A Zeiss LSM file as tifffile reads it: its image pages (the others are
/// thumbnails) along the page axes of its scan type, sizes from
/// CZ_LSMINFO; channels are each page's samples. Voxel sizes (metres) and
/// the time interval (seconds) are the physical sizes. Line and point
/// scans (x-z planes, single lines) are read as plain files.
pub(crate) fn interpret(chain: &IfdChain, info: &[u8]) -> Result<Interpretation, Rejection> {
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(info.get(at..at + 4)?.try_into().ok()?))
    };
    let f64_at = |at: usize| -> Option<f64> {
        Some(f64::from_le_bytes(info.get(at..at + 8)?.try_into().ok()?))
    };
    let u16_at = |at: usize| -> Option<u16> {
        Some(u16::from_le_bytes(info.get(at..at + 2)?.try_into().ok()?))
    };
    let magic = u32_at(0).ok_or("CZ_LSMINFO is shorter than its header")?;
    if magic != 0x0300_494C && magic != 0x0400_494C {
        return Err(format!("CZ_LSMINFO has the magic number {magic:#x}, not LSM's").into());
    }
    let dimension = |at: usize, name: &str| -> Result<u64, Rejection> {
        match u32_at(at).map(|v| v as i32) {
            Some(v) if v >= 1 => Ok(v as u64),
            other => Err(format!("CZ_LSMINFO's {name} is {other:?}, not a size").into()),
        }
    };
    let (z, t) = (
        dimension(16, "DimensionZ")?,
        dimension(24, "DimensionTime")?,
    );
    let scan_type = u16_at(88).ok_or("CZ_LSMINFO ends before ScanType")?;
    // page axes of the plane scans, outermost first (tifffile's
    // CZ_LSMINFO_SCANTYPE without C, Y and X)
    let axes = match scan_type {
        0 => vec![('Z', z)],
        3 => vec![('T', t)],
        6 | 7 => vec![('T', t), ('Z', z)],
        other => {
            return Err(format!(
                "LSM scan type {other} (a line, point or x-z scan) is read as a plain file"
            )
            .into())
        }
    };
    let pages = first_kind_pages(chain);
    let planes: u64 = axes.iter().map(|(_, n)| n).product();
    if planes != pages.len() as u64 {
        return Err(format!(
            "CZ_LSMINFO's dimensions give {planes} planes but the file has {} image pages",
            pages.len()
        )
        .into());
    }
    let metres = |at: usize| {
        f64_at(at)
            .filter(|v| v.is_finite() && *v > 0.0)
            .map(|v| PhysicalSize {
                value: v * 1e6,
                unit: "micrometer".into(),
            })
    };
    let interval = f64_at(112)
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(|value| PhysicalSize {
            value,
            unit: "second".into(),
        });
    let physical = PhysicalSizes {
        x: metres(40),
        y: metres(48),
        z: metres(56).filter(|_| z > 1),
        t: interval.filter(|_| t > 1),
    };
    Ok(Interpretation::of_pages(
        Flavour::Lsm,
        axes,
        pages.into_iter().map(Some).collect(),
        physical,
    )
    .squeezed())
}

/// The thumbnails of an LSM file as a series of their own, as tifffile's
/// second LSM series: every other page from the second on, where the
/// second is a reduced-resolution page, along the image's page axes.
/// Left out (with a warning) where the thumbnails are not one per image
/// page, all of one kind.
pub(crate) fn file_series(chain: &IfdChain, first: &Interpretation) -> FileSeries {
    let mut found = FileSeries::default();
    let Some(Ok(thumbnail)) = chain.pages.get(1) else {
        return found;
    };
    if !thumbnail.reduced {
        return found;
    }
    let pages: Vec<Option<usize>> = (1..chain.pages.len()).step_by(2).map(Some).collect();
    let fits = pages
        .iter()
        .flatten()
        .all(|page| matches!(&chain.pages[*page], Ok(p) if p.same_kind(thumbnail)));
    if !fits || pages.len() != first.pages.len() {
        found.warnings.push(format!(
            "the LSM thumbnails are left out: {} pages from the second on, every other one, \
             are not one thumbnail of one size per image page ({})",
            pages.len(),
            first.pages.len()
        ));
        return found;
    }
    found.further.push(FurtherSeries::flat(
        "",
        SeriesKind::Thumbnail,
        Interpretation::of_pages(
            Flavour::Lsm,
            first.axes.clone(),
            pages,
            PhysicalSizes::default(),
        ),
    ));
    found
}
