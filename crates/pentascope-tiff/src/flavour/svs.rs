//! Aperio SVS whole-slide images (`Aperio ` at the start of the first
//! page's description, the first page tiled), read as tifffile reads them:
//! the baseline is the first page and the tiled pages of its size that
//! follow the thumbnail (focal planes, along Z); the second page is the
//! thumbnail, never a plane of the baseline, whatever its size. The
//! description's `MPP` gives the pixel size in micrometres. The tiled pages
//! of other sizes are the baseline's pyramid levels, and the thumbnail, the
//! label and the macro image are series of their own ([`file_series`]).

use super::*;
use crate::ifd::{ChunkGeometry, PageLayout};

/// Whether the file is an Aperio SVS, as tifffile decides.
pub(crate) fn recognised(chain: &IfdChain, desc: &str) -> bool {
    desc.starts_with("Aperio ")
        && matches!(
            chain.pages.first(),
            Some(Ok(PageLayout {
                geometry: ChunkGeometry::Tiles { .. },
                ..
            }))
        )
}

pub(crate) fn interpret(chain: &IfdChain, desc: &str) -> Result<Interpretation, Rejection> {
    let Some(Ok(first)) = chain.pages.first() else {
        return Err(Rejection::Ignored("the first page is unreadable".into()));
    };
    // pages 2.. up to the first untiled or reduced one are focal planes
    // (the baseline's size) and pyramid levels (smaller ones); the planes
    // count only where every level has as many
    let mut pages = vec![0];
    let mut per_level: HashMap<(u32, u32, u16), usize> =
        HashMap::from([((first.width, first.height, first.samples), 1)]);
    for (index, page) in chain.pages.iter().enumerate().skip(2) {
        match page {
            Ok(p) if matches!(p.geometry, ChunkGeometry::Tiles { .. }) && !p.reduced => {
                *per_level.entry((p.width, p.height, p.samples)).or_default() += 1;
                if p.same_kind(first) {
                    pages.push(index);
                }
            }
            _ => break,
        }
    }
    if per_level.values().any(|n| *n != pages.len()) {
        pages.truncate(1);
    }
    let mpp = desc
        .split('|')
        .filter_map(|field| field.split_once('='))
        .find(|(key, _)| key.trim() == "MPP")
        .and_then(|(_, value)| value.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0);
    let size = mpp.map(|value| PhysicalSize {
        value,
        unit: unit_name("µm"),
    });
    Ok(Interpretation {
        flavour: Flavour::Svs,
        axes: vec![('Z', pages.len() as u64)],
        pages: pages.into_iter().map(Some).collect(),
        channel_names: Vec::new(),
        physical: PhysicalSizes {
            x: size.clone(),
            y: size,
            z: None,
            t: None,
        },
        acquisition: Acquisition::default(),
        notes: FileNotes::default(),
        original: None,
        warnings: Vec::new(),
        contiguous: None,
    }
    .squeezed())
}

/// The baseline's name and pyramid levels (the tiled pages of other sizes
/// after the thumbnail, where each has as many focal planes as the
/// baseline, in `first`'s page order), then the thumbnail (the second page)
/// and the label and macro image (the two pages after the levels; the macro
/// has NewSubfileType 9), as tifffile's `_series_svs` lists them.
pub(crate) fn file_series(chain: &IfdChain, first: &Interpretation) -> FileSeries {
    let mut found = FileSeries {
        name: "Baseline".into(),
        ..FileSeries::default()
    };
    let Some(Ok(base)) = chain.pages.first() else {
        return found;
    };
    if chain.pages.len() < 2 {
        return found;
    }
    let mut levels: Vec<((u32, u32, u16), Vec<usize>)> = Vec::new();
    let mut index = 2;
    while let Some(Ok(p)) = chain.pages.get(index) {
        if !matches!(p.geometry, ChunkGeometry::Tiles { .. }) || p.reduced {
            break;
        }
        let size = (p.width, p.height, p.samples);
        if size != (base.width, base.height, base.samples) {
            match levels.iter_mut().find(|(s, _)| *s == size) {
                Some((_, pages)) => pages.push(index),
                None => levels.push((size, vec![index])),
            }
        }
        index += 1;
    }
    found.levels = levels
        .into_iter()
        .filter(|(_, pages)| pages.len() == first.pages.len())
        .map(|(_, pages)| pages.into_iter().map(Some).collect())
        .collect();
    found.further.push(FurtherSeries::flat(
        "Thumbnail",
        SeriesKind::Thumbnail,
        Interpretation::one_page(Flavour::Svs, 1),
    ));
    for page in index..chain.pages.len().min(index + 2) {
        let macro_image = matches!(&chain.pages[page], Ok(p) if p.subfile_type == 9);
        let (name, kind) = if macro_image {
            ("Macro", SeriesKind::Macro)
        } else {
            ("Label", SeriesKind::Label)
        };
        found.further.push(FurtherSeries::flat(
            name,
            kind,
            Interpretation::one_page(Flavour::Svs, page),
        ));
    }
    found
}
