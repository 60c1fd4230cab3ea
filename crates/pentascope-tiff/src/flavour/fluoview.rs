//! Olympus FluoView: MM_Header's named dimensions (with MM_Stamp present).

use super::*;

/// FluoView's MM_Header and MM_Stamp (whose presence makes a file
/// FluoView, as tifffile decides).
pub(crate) const MM_HEADER_TAG: u16 = 34361;
pub(crate) const MM_STAMP_TAG: u16 = 34362;
/// Where MM_Header's ten dimensions start, and the bytes of each (name,
/// size, origin, resolution, unit).
pub(crate) const MM_DIMENSIONS_AT: usize = 284;
pub(crate) const MM_DIMENSION_BYTES: usize = 100;

/// An Olympus FluoView file as tifffile reads it: MM_Header's named
/// dimensions, outermost last, place the pages (`Z`; `T` or `Time`; `Ch`
/// or `Wavelength` as channels); other named dimensions of more than one
/// plane are unlabelled axes. Each dimension's resolution in its unit is
/// its physical size.
pub(crate) fn interpret(chain: &IfdChain, header: &[u8]) -> Result<Interpretation, Rejection> {
    if header.len() < MM_DIMENSIONS_AT + 10 * MM_DIMENSION_BYTES {
        return Err(format!(
            "MM_Header has {} bytes, fewer than its dimensions need",
            header.len()
        )
        .into());
    }
    let word = |bytes: &[u8]| -> [u8; 8] {
        let mut w = [0u8; 8];
        w[..bytes.len()].copy_from_slice(bytes);
        if chain.big_endian {
            w[..bytes.len()].reverse();
        }
        w
    };
    let text = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes.split(|b| *b == 0).next().unwrap_or_default())
            .trim()
            .to_string()
    };
    let mut axes: Vec<(char, u64)> = Vec::new();
    let mut physical = PhysicalSizes::default();
    for i in (0..10).rev() {
        let d = &header[MM_DIMENSIONS_AT + i * MM_DIMENSION_BYTES..][..MM_DIMENSION_BYTES];
        let name = text(&d[..16]).to_uppercase();
        let size = i32::from_le_bytes(word(&d[16..20])[..4].try_into().unwrap());
        let resolution = f64::from_le_bytes(word(&d[28..36]));
        let unit = text(&d[36..100]);
        let size_of = || {
            (resolution.is_finite() && resolution > 0.0 && !unit.is_empty()).then(|| PhysicalSize {
                value: resolution,
                unit: unit_name(&unit),
            })
        };
        let letter = match name.as_str() {
            "X" => {
                physical.x = size_of();
                continue;
            }
            "Y" => {
                physical.y = size_of();
                continue;
            }
            "Z" => 'Z',
            "T" | "TIME" => 'T',
            "CH" | "WAVELENGTH" => 'C',
            _ => 'I',
        };
        if letter == 'Z' {
            physical.z = size_of();
        }
        if size > 1 {
            if letter != 'I' && axes.iter().any(|(a, _)| *a == letter) {
                return Err(format!("MM_Header names two {letter} dimensions").into());
            }
            axes.push((letter, size as u64));
        }
    }
    let pages = first_kind_pages(chain);
    let planes = axes
        .iter()
        .try_fold(1u64, |n, (_, size)| n.checked_mul(*size));
    if planes != Some(pages.len() as u64) {
        return Err(format!(
            "MM_Header's dimensions give {planes:?} planes but the file has {} pages",
            pages.len()
        )
        .into());
    }
    if let Ok(letters) = crate::canonical_letters(&axes) {
        for ((letter, _), canonical) in axes.iter_mut().zip(letters) {
            *letter = canonical;
        }
    }
    Ok(Interpretation::of_pages(
        Flavour::Fluoview,
        axes,
        pages.into_iter().map(Some).collect(),
        physical,
    )
    .squeezed())
}
