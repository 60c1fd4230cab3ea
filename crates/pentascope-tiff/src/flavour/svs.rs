//! Aperio SVS whole-slide images (`Aperio ` at the start of the first
//! page's description, the first page tiled), read as tifffile reads them:
//! the baseline is the first page and the tiled pages of its size that
//! follow the thumbnail (focal planes, along Z); the second page is the
//! thumbnail, never a plane of the baseline, whatever its size. The
//! description's `MPP` gives the pixel size in micrometres.

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
