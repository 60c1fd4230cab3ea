//! Files with no axis metadata: pages of the first page's kind in order,
//! or the page axes of tifffile's shaped JSON description. Pages of other
//! kinds are further series, one per kind ([`file_series`]).

use super::*;

pub(crate) fn interpret(
    chain: &IfdChain,
    desc: &str,
    warnings: &mut Vec<String>,
) -> Interpretation {
    let pages = first_kind_pages(chain);
    let mut axes = vec![('I', pages.len() as u64)];
    // tifffile writes {"shape": [...]} (optionally with "axes") for plain stacks
    if desc.trim_start().starts_with('{') {
        if let Some(shaped) = shaped_axes(chain, desc, pages.len() as u64) {
            axes = shaped;
        } else {
            warnings.push("shaped description does not match the pages; using page order".into());
        }
    }
    // unlabelled axes take their letters before size-1 axes are dropped, so
    // that a shape of [256, 1, 1] is T=256 as tifffile's QQQ reads, not Z;
    // more axes than letters are left for the series to refuse
    if let Ok(letters) = crate::canonical_letters(&axes) {
        for ((letter, _), canonical) in axes.iter_mut().zip(letters) {
            *letter = canonical;
        }
    }
    Interpretation::of_pages(
        Flavour::Plain,
        axes,
        pages.into_iter().map(Some).collect(),
        resolution_sizes(chain, None),
    )
    .squeezed()
}

/// Page axes from tifffile's `{"shape": [..], "axes": ".."}` description.
pub(crate) fn shaped_axes(chain: &IfdChain, desc: &str, n_pages: u64) -> Option<Vec<(char, u64)>> {
    let (letters, dims) = shaped_page_axes(chain, desc)?;
    if dims.iter().try_fold(1u64, |a, d| a.checked_mul(*d)) != Some(n_pages) {
        return None;
    }
    Some(
        letters
            .into_iter()
            .map(|l| if "TZC".contains(l) { l } else { 'I' })
            .zip(dims)
            .collect(),
    )
}

/// The letters and sizes of the axes a shaped description gives beyond
/// the first page's own (rows, columns, samples).
pub(crate) fn shaped_page_axes(chain: &IfdChain, desc: &str) -> Option<(Vec<char>, Vec<u64>)> {
    let first = chain.pages.first()?.as_ref().ok()?;
    let json_shape = desc.split("\"shape\":").nth(1)?;
    let inner = json_shape.split('[').nth(1)?.split(']').next()?;
    let mut dims: Vec<u64> = inner
        .split(',')
        .map(|s| s.trim().parse().ok())
        .collect::<Option<_>>()?;
    let axes_letters: Option<Vec<char>> = desc
        .split("\"axes\":")
        .nth(1)
        .and_then(|s| s.split('"').nth(1))
        .map(|s| s.chars().collect());
    let spp = u64::from(first.samples);
    let mut letters = axes_letters.unwrap_or_else(|| vec!['Q'; dims.len()]);
    if letters.len() != dims.len() {
        return None;
    }
    if spp > 1 {
        if !first.planar_separate && dims.last() == Some(&spp) {
            dims.pop();
            letters.pop();
        } else if first.planar_separate && dims.len() >= 3 && dims[dims.len() - 3] == spp {
            let i = dims.len() - 3;
            dims.remove(i);
            letters.remove(i);
        } else {
            return None;
        }
    }
    if dims.len() < 2
        || dims[dims.len() - 2] != u64::from(first.height)
        || dims[dims.len() - 1] != u64::from(first.width)
    {
        return None;
    }
    dims.truncate(dims.len() - 2);
    letters.truncate(letters.len() - 2);
    Some((letters, dims))
}

/// The series of a plain file beyond `first`: as tifffile's generic series,
/// the pages of each other kind (size, samples, type), in the order of each
/// kind's first page, reduced-resolution pages left out. Refused past
/// [`Limits::max_series`] kinds, before their pages are gathered further.
pub(crate) fn file_series(
    chain: &IfdChain,
    first: &Interpretation,
    limits: &Limits,
) -> Result<FileSeries, TiffError> {
    let used: std::collections::HashSet<usize> = first.pages.iter().flatten().copied().collect();
    let mut kinds: HashMap<(u32, u32, u16, crate::DType), usize> = HashMap::new();
    let mut further: Vec<Vec<usize>> = Vec::new();
    for (index, page) in chain.pages.iter().enumerate() {
        let Ok(p) = page else { continue };
        if p.reduced || used.contains(&index) {
            continue;
        }
        let kind = (p.width, p.height, p.samples, p.dtype);
        let at = match kinds.get(&kind) {
            Some(at) => *at,
            None => {
                check_series_count(further.len() as u64 + 2, limits)?;
                kinds.insert(kind, further.len());
                further.push(Vec::new());
                further.len() - 1
            }
        };
        further[at].push(index);
    }
    Ok(FileSeries {
        further: further
            .into_iter()
            .map(|pages| FurtherSeries {
                name: String::new(),
                kind: SeriesKind::Image,
                interpretation: Interpretation::of_pages(
                    Flavour::Plain,
                    vec![('Z', pages.len() as u64)],
                    pages.into_iter().map(Some).collect(),
                    PhysicalSizes::default(),
                )
                .squeezed(),
            })
            .collect(),
        ..FileSeries::default()
    })
}
