//! Files with no axis metadata: pages of the first page's kind in order,
//! or the page axes of tifffile's shaped JSON description. Pages of other
//! kinds are further series, one per kind, or pyramid levels
//! ([`file_series`]); tifffile's shaped series, a Hamamatsu NDPI's, a
//! Ventana BIF's, a Philips DP slide's and a Leica SCN's ([`scn`]) series
//! are read as tifffile lists them.

use super::*;

pub(crate) fn interpret(
    chain: &IfdChain,
    desc: &str,
    warnings: &mut Vec<String>,
) -> Interpretation {
    if let Some(slide) = bif_series(chain).or_else(|| philips_series(chain)) {
        return Interpretation::one_page(Flavour::Plain, slide.baseline);
    }
    match scn::images(chain, desc) {
        Ok(Some(mut images)) => {
            let first = images.swap_remove(0);
            return Interpretation::of_pages(
                Flavour::Plain,
                first.axes,
                first.pages,
                PhysicalSizes::default(),
            )
            .squeezed();
        }
        Ok(None) => {}
        Err(e) => warnings.push(format!("Leica SCN metadata ignored: {e}")),
    }
    // tifffile writes {"shape": [...]} (optionally with "axes") for plain
    // stacks, on the first page of each series
    if let Some(first) = shaped_series(chain).and_then(|mut all| all.drain(..).next()) {
        let (axes, pages) = first;
        return Interpretation::of_pages(
            Flavour::Plain,
            lettered(axes),
            pages.into_iter().map(Some).collect(),
            resolution_sizes(chain, None),
        )
        .squeezed();
    }
    let pages = first_kind_pages(chain);
    let mut axes = vec![('I', pages.len() as u64)];
    if desc.trim_start().starts_with('{') {
        if let Some(shaped) = shaped_axes(chain, desc, pages.len() as u64) {
            axes = shaped;
        } else {
            warnings.push("shaped description does not match the pages; using page order".into());
        }
    }
    Interpretation::of_pages(
        Flavour::Plain,
        lettered(axes),
        pages.into_iter().map(Some).collect(),
        resolution_sizes(chain, None),
    )
    .squeezed()
}

/// Unlabelled axes with their canonical letters, given before size-1
/// axes are dropped, so that a shape of [256, 1, 1] is T=256 as tifffile's
/// QQQ reads, not Z; more axes than letters are left for the series to
/// refuse.
fn lettered(mut axes: Vec<(char, u64)>) -> Vec<(char, u64)> {
    if let Ok(letters) = crate::canonical_letters(&axes) {
        for ((letter, _), canonical) in axes.iter_mut().zip(letters) {
            *letter = canonical;
        }
    }
    axes
}

/// A slide scanner's series of one page each: a Ventana BIF's, as
/// tifffile's `_series_bif` lists them, or a Philips DP slide's
/// (`_series_philips`).
struct Slide {
    /// The first page whose description names a `level`.
    baseline: usize,
    /// The later pages that name one: the baseline's pyramid levels.
    levels: Vec<usize>,
    /// The other pages, each a series of its own, with its name and kind.
    others: Vec<(usize, &'static str, SeriesKind)>,
}

/// A Ventana BIF's series (one page each), where the file is one
/// ([`IfdChain::bif`]) and a page's description names a `level`: the
/// first such page is the baseline, the later ones its levels; the others
/// in order are `Label` (description `Label…`), `Thumbnail` (`Thumbnail`,
/// `Probability…`) or `Unknown`.
fn bif_series(chain: &IfdChain) -> Option<Slide> {
    if !chain.bif {
        return None;
    }
    let mut baseline = None;
    let mut levels = Vec::new();
    let mut others = Vec::new();
    let mut described = chain.descriptions.iter().peekable();
    for index in 0..chain.pages.len() {
        let description = match described.next_if(|(page, _)| *page == index) {
            Some((_, text)) => text.as_str(),
            None => "",
        };
        if description.starts_with("Label") {
            others.push((index, "Label", SeriesKind::Label));
        } else if description == "Thumbnail" || description.starts_with("Probability") {
            others.push((index, "Thumbnail", SeriesKind::Thumbnail));
        } else if !description.contains("level") {
            others.push((index, "Unknown", SeriesKind::Image));
        } else if baseline.is_none() {
            baseline = Some(index);
        } else {
            levels.push(index);
        }
    }
    Some(Slide {
        baseline: baseline?,
        levels,
        others,
    })
}

/// A Philips DP slide's series (one page each), where the file is one
/// ([`IfdChain::philips`]): its tiled pages are the baseline and its
/// levels, as many as the XML's pixel spacings (at least two); then the
/// untiled pages (`Other`), and the last page whose description starts
/// `Macro` and the last that starts `Label`, in the order of the first of
/// each. The levels are the pages as stored: tifffile crops those padded
/// past the size the pixel spacing gives, pentascope leaves such a level
/// out of the stored pyramid (it is not the size of a stored level).
fn philips_series(chain: &IfdChain) -> Option<Slide> {
    if !chain.philips {
        return None;
    }
    let doc = ome::parse(chain.description.as_deref()?).ok()?;
    let root = doc.root_element();
    let spacings = doc
        .descendants()
        .filter(|n| {
            n.tag_name().name() == "DataObject"
                && n.attribute("ObjectType") == Some("PixelDataRepresentation")
                && n.parent_element().is_some_and(|p| p != root)
        })
        .flat_map(|n| n.children())
        .filter(|a| {
            a.tag_name().name() == "Attribute"
                && a.attribute("Name") == Some("DICOM_PIXEL_SPACING")
                && a.text().is_some()
        })
        .count();
    let mut tiled = Vec::new();
    let mut others = Vec::new();
    // the macro image and the label: where each comes first, and its page
    let mut named: Vec<(&'static str, SeriesKind, usize)> = Vec::new();
    let mut described = chain.descriptions.iter().peekable();
    for (index, page) in chain.pages.iter().enumerate() {
        let description = match described.next_if(|(page, _)| *page == index) {
            Some((_, text)) => text.as_str(),
            None => "",
        };
        let kind = if description.starts_with("Macro") {
            Some(("Macro", SeriesKind::Macro))
        } else if description.starts_with("Label") {
            Some(("Label", SeriesKind::Label))
        } else {
            None
        };
        match (kind, page) {
            (Some((name, kind)), _) => match named.iter_mut().find(|(n, _, _)| *n == name) {
                Some(entry) => entry.2 = index,
                None => named.push((name, kind, index)),
            },
            (None, Ok(p)) if matches!(p.geometry, crate::ChunkGeometry::Tiles { .. }) => {
                tiled.push(index)
            }
            (None, _) => others.push((index, "Other", SeriesKind::Image)),
        }
    }
    if spacings < 2 || tiled.len() != spacings {
        return None;
    }
    others.extend(
        named
            .into_iter()
            .map(|(name, kind, page)| (page, name, kind)),
    );
    Some(Slide {
        baseline: tiled[0],
        levels: tiled[1..].to_vec(),
        others,
    })
}

/// A series' page axes and pages.
type Shaped = (Vec<(char, u64)>, Vec<usize>);

/// tifffile's shaped series of the file, in order: from the first page,
/// each series' first page has a shaped description that gives its page
/// axes, and so how many pages it takes; the next series begins after
/// them. `None` where a series' first page has no shaped description, or
/// its pages run past the file's or are not all of its first page's kind.
fn shaped_series(chain: &IfdChain) -> Option<Vec<Shaped>> {
    let n = chain.pages.len();
    let mut all = Vec::new();
    let mut index = 0;
    while index < n {
        let at = chain
            .descriptions
            .binary_search_by_key(&index, |(page, _)| *page)
            .ok()?;
        let key = chain.pages[index].as_ref().ok()?;
        let (letters, dims) = shaped_page_axes_of(key, &chain.descriptions[at].1)?;
        let count = dims.iter().try_fold(1u64, |a, d| a.checked_mul(*d))?;
        if count == 0 || count > (n - index) as u64 {
            return None;
        }
        let pages: Vec<usize> = (index..index + count as usize).collect();
        if !pages
            .iter()
            .all(|p| matches!(&chain.pages[*p], Ok(page) if page.same_kind(key)))
        {
            return None;
        }
        let axes = letters
            .into_iter()
            .map(|l| if "TZC".contains(l) { l } else { 'I' })
            .zip(dims)
            .collect();
        all.push((axes, pages));
        index += count as usize;
    }
    Some(all)
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
    shaped_page_axes_of(chain.pages.first()?.as_ref().ok()?, desc)
}

/// The letters and sizes of the axes a shaped description gives beyond
/// the page `first`'s own (rows, columns, samples).
fn shaped_page_axes_of(first: &crate::PageLayout, desc: &str) -> Option<(Vec<char>, Vec<u64>)> {
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

/// The series of a plain file beyond `first`. A file of tifffile's shaped
/// series ([`shaped_series`]) has those, as tifffile lists them; any
/// other, as tifffile's generic series, the pages of each other kind
/// (size, samples, type) in the order of each kind's first page,
/// reduced-resolution pages left out unless they are levels. Each series' own pyramid levels are
/// its pages' SubIFDs ([`subifd_levels`]) or else, as tifffile pyramids
/// its series, the later series of the same page axes that each make one
/// step of a pyramid below it ([`pyramid_step`]; of shaped series, only
/// reduced-resolution ones): these are its levels, not series. Refused
/// past [`Limits::max_series`] series, before their pages are gathered
/// further.
pub(crate) fn file_series(
    chain: &IfdChain,
    first: &Interpretation,
    limits: &Limits,
) -> Result<FileSeries, TiffError> {
    if let Some(slide) = bif_series(chain).or_else(|| philips_series(chain)) {
        check_series_count(slide.others.len() as u64 + 1, limits)?;
        return Ok(FileSeries {
            name: "Baseline".into(),
            levels: slide
                .levels
                .into_iter()
                .map(|page| vec![Some(page)])
                .collect(),
            further: slide
                .others
                .into_iter()
                .map(|(page, name, kind)| {
                    FurtherSeries::flat(name, kind, Interpretation::one_page(Flavour::Plain, page))
                })
                .collect(),
            ..FileSeries::default()
        });
    }
    let desc = chain.description.as_deref().unwrap_or("");
    if let Some(images) = scn::images(chain, desc)? {
        check_series_count(images.len() as u64, limits)?;
        let mut images = images.into_iter();
        let first = images.next();
        return Ok(FileSeries {
            name: first.as_ref().map(|i| i.name.clone()).unwrap_or_default(),
            levels: first.map(|i| i.levels).unwrap_or_default(),
            further: images
                .map(|image| FurtherSeries {
                    name: image.name,
                    kind: SeriesKind::Image,
                    levels: image.levels,
                    interpretation: Interpretation::of_pages(
                        Flavour::Plain,
                        image.axes,
                        image.pages,
                        PhysicalSizes::default(),
                    )
                    .squeezed(),
                })
                .collect(),
            ..FileSeries::default()
        });
    }
    let shaped = shaped_series(chain);
    let mut series = match &shaped {
        Some(all) => {
            check_series_count(all.len() as u64, limits)?;
            all.iter()
                .map(|(axes, pages)| {
                    Kind::of(
                        chain,
                        axes.clone(),
                        pages.iter().copied().map(Some).collect(),
                    )
                })
                .collect()
        }
        None => kinds(chain, first, limits)?,
    };
    pyramids(chain, &mut series, shaped.is_some());
    if shaped.is_none() {
        // reduced-resolution pages that are no level are left out
        series.retain(|kind| !matches!(layout_of(chain, &kind.pages), Some(p) if p.reduced));
    }
    let named = |kind: &Kind| match &chain.ndpi {
        Some(ndpi) => ndpi_name(ndpi, kind),
        None => (String::new(), SeriesKind::Image),
    };
    let name = series
        .first()
        .map(|first| named(first).0)
        .unwrap_or_default();
    let mut series = series.into_iter();
    let levels = series.next().map(|first| first.levels).unwrap_or_default();
    Ok(FileSeries {
        name,
        levels,
        further: series
            .map(|kind| {
                let (name, series_kind) = named(&kind);
                FurtherSeries {
                    name,
                    kind: series_kind,
                    levels: kind.levels,
                    interpretation: Interpretation::of_pages(
                        Flavour::Plain,
                        lettered(kind.axes),
                        kind.pages,
                        PhysicalSizes::default(),
                    )
                    .squeezed(),
                }
            })
            .collect(),
        ..FileSeries::default()
    })
}

/// The first series (`first`'s pages), then the pages of each other kind
/// (size, samples, type, and whether they are reduced-resolution) in the
/// order of each kind's first page.
fn kinds(
    chain: &IfdChain,
    first: &Interpretation,
    limits: &Limits,
) -> Result<Vec<Kind>, TiffError> {
    let used: std::collections::HashSet<usize> = first.pages.iter().flatten().copied().collect();
    let mut kinds: HashMap<(u32, u32, u16, crate::DType, bool), usize> = HashMap::new();
    let mut further: Vec<Vec<Option<usize>>> = Vec::new();
    for (index, page) in chain.pages.iter().enumerate() {
        let Ok(p) = page else { continue };
        if used.contains(&index) {
            continue;
        }
        let kind = (p.width, p.height, p.samples, p.dtype, p.reduced);
        let at = match kinds.get(&kind) {
            Some(at) => *at,
            None => {
                check_series_count(further.len() as u64 + 2, limits)?;
                kinds.insert(kind, further.len());
                further.push(Vec::new());
                further.len() - 1
            }
        };
        further[at].push(Some(index));
    }
    // one page axis each: generic series are levels of one another by
    // their page counts
    let first = Kind::of(
        chain,
        vec![('Z', first.pages.len() as u64)],
        first.pages.clone(),
    );
    Ok(std::iter::once(first)
        .chain(
            further
                .into_iter()
                .map(|pages| Kind::of(chain, vec![('Z', pages.len() as u64)], pages)),
        )
        .collect())
}

/// The name and kind of a Hamamatsu NDPI's series as tifffile gives them:
/// a series with pyramid levels is named by its first page's slide label,
/// or `Baseline`; of the others, the one of magnification -1 is the
/// `Macro` and the one of -2 the `Map`.
fn ndpi_name(ndpi: &[crate::ifd::NdpiPage], kind: &Kind) -> (String, SeriesKind) {
    let page = kind
        .pages
        .iter()
        .flatten()
        .next()
        .and_then(|page| ndpi.get(*page));
    if !kind.levels.is_empty() {
        let label = page.and_then(|p| p.slide_label.clone());
        return (
            label
                .filter(|l| !l.is_empty())
                .unwrap_or_else(|| "Baseline".into()),
            SeriesKind::Image,
        );
    }
    match page.and_then(|p| p.magnification) {
        Some(-1.0) => ("Macro".into(), SeriesKind::Macro),
        Some(-2.0) => ("Map".into(), SeriesKind::Image),
        _ => (String::new(), SeriesKind::Image),
    }
}

/// A series' page axes, its pages and its pyramid levels' pages.
struct Kind {
    axes: Vec<(char, u64)>,
    pages: Vec<Option<usize>>,
    levels: Vec<Vec<Option<usize>>>,
}

impl Kind {
    /// The series of `pages` along `axes`, with its SubIFDs as its levels.
    fn of(chain: &IfdChain, axes: Vec<(char, u64)>, pages: Vec<Option<usize>>) -> Kind {
        Kind {
            levels: subifd_levels(chain, &pages),
            axes,
            pages,
        }
    }
}

/// Moves the kinds that are pyramid levels of an earlier one (see
/// [`pyramid_step`]) into its levels, as tifffile's `pyramidize_series`:
/// the first later kind one step below it at a factor of 2, 3 or 4 fixes
/// the factor, and each further level is one step below the last one
/// found; with `reduced`, only reduced-resolution series are levels. A
/// series whose levels are its SubIFDs takes no others.
fn pyramids(chain: &IfdChain, series: &mut Vec<Kind>, reduced: bool) {
    let layout = |pages: &[Option<usize>]| layout_of(chain, pages);
    let mut i = 0;
    while i < series.len() {
        if !series[i].levels.is_empty() {
            i += 1;
            continue;
        }
        let mut factor = None;
        let mut j = i + 1;
        while j < series.len() {
            let top = series[i].levels.last().unwrap_or(&series[i].pages);
            let step = match (layout(top), layout(&series[j].pages)) {
                (Some(a), Some(b))
                    if series[i].axes == series[j].axes
                        && top.len() == series[j].pages.len()
                        && (b.reduced || !reduced) =>
                {
                    match factor {
                        Some(f) => pyramid_step(a, b, f).then_some(f),
                        None => [2, 3, 4].into_iter().find(|f| pyramid_step(a, b, *f)),
                    }
                }
                _ => None,
            };
            match step {
                Some(f) => {
                    factor = Some(f);
                    let level = series.remove(j);
                    series[i].levels.push(level.pages);
                }
                None => j += 1,
            }
        }
        i += 1;
    }
}

/// The first of `pages`, where it can be read.
fn layout_of<'a>(chain: &'a IfdChain, pages: &[Option<usize>]) -> Option<&'a crate::PageLayout> {
    chain.page(pages.first().copied().flatten()?)?.as_ref().ok()
}

/// Whether page `b` is one step of a pyramid of factor `f` below page `a`,
/// as tifffile's `subresolution` decides it: the same samples and type,
/// and each side the other's divided by `f`, rounded down or up.
fn pyramid_step(a: &crate::PageLayout, b: &crate::PageLayout, f: u32) -> bool {
    let step = |big: u32, small: u32| f <= big && (big / f == small || big.div_ceil(f) == small);
    a.samples == b.samples
        && a.dtype == b.dtype
        && step(a.height, b.height)
        && step(a.width, b.width)
}
