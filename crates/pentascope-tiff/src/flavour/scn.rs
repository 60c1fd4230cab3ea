//! Leica SCN slides (an XML description ending in `</scn>` on the first
//! page), read as tifffile's `_series_scn` reads them: each `pixels` of
//! each `image` of each `collection` is a series, named by the image;
//! its `dimension` elements place pages (`ifd`) by channel (`c`), focal
//! plane (`z`) and resolution (`r`): the lowest resolution number is the
//! series, the others its pyramid levels. The file's flavour stays
//! `plain`.

use std::collections::BTreeMap;

use super::*;

/// One series of an SCN slide.
#[derive(Debug)]
pub(crate) struct ScnImage {
    pub name: String,
    /// `C` and `Z` of the series, as the pages are placed.
    pub axes: Vec<(char, u64)>,
    pub pages: Vec<Option<usize>>,
    /// The pages of each further resolution, in order.
    pub levels: Vec<Vec<Option<usize>>>,
}

/// One resolution of an SCN image: its highest channel and focal plane,
/// and the page (IFD) of each channel and plane listed.
type Resolution = (u64, u64, Vec<(u64, u64, u64)>);

/// Whether the first page's description makes the file a Leica SCN, as
/// tifffile decides.
pub(crate) fn recognised(desc: &str) -> bool {
    desc.trim_end().ends_with("</scn>")
}

/// The series of an SCN slide, or `None` where the file is none, or its
/// XML cannot be read as tifffile reads it (a Z-stack image, a dimension
/// without `ifd`, a resolution whose first plane has no page): then it is
/// read as a plain file. XML past the limits on its structure is refused.
pub(crate) fn images(chain: &IfdChain, desc: &str) -> Result<Option<Vec<ScnImage>>, TiffError> {
    if !recognised(desc) {
        return Ok(None);
    }
    let doc = match ome::parse(desc) {
        Ok(doc) => doc,
        Err(Rejection::Refused(e)) => return Err(e),
        Err(Rejection::Ignored(_)) => return Ok(None),
    };
    let is = |n: &roxmltree::Node, name: &str| n.is_element() && n.tag_name().name() == name;
    let number = |n: &roxmltree::Node, name: &str| -> Option<u64> {
        n.attribute(name).map_or(Some(0), |v| v.trim().parse().ok())
    };
    let mut found = Vec::new();
    for collection in doc
        .root_element()
        .children()
        .filter(|n| is(n, "collection"))
    {
        for image in collection.children().filter(|n| is(n, "image")) {
            let name = image.attribute("name").unwrap_or("Unknown").to_string();
            if number(&image, "sizeZ").is_none_or(|z| z > 1) {
                return Ok(None);
            }
            for pixels in image.children().filter(|n| is(n, "pixels")) {
                let mut resolutions: BTreeMap<u64, Resolution> = BTreeMap::new();
                for dimension in pixels.children().filter(|n| is(n, "dimension")) {
                    let (Some(c), Some(z), Some(r)) = (
                        number(&dimension, "c"),
                        number(&dimension, "z"),
                        number(&dimension, "r"),
                    ) else {
                        return Ok(None);
                    };
                    let Some(ifd) = dimension
                        .attribute("ifd")
                        .and_then(|v| v.trim().parse().ok())
                    else {
                        return Ok(None);
                    };
                    let level = resolutions.entry(r).or_default();
                    level.0 = level.0.max(c);
                    level.1 = level.1.max(z);
                    level.2.push((c, z, ifd));
                }
                let mut levels = Vec::new();
                for (channels, planes, ifds) in resolutions.into_values() {
                    // a page for each channel and plane at most
                    let Some(count) = channels
                        .checked_add(1)
                        .zip(planes.checked_add(1))
                        .and_then(|(c, z)| c.checked_mul(z))
                        .filter(|n| *n <= chain.pages.len() as u64)
                    else {
                        return Ok(None);
                    };
                    let mut pages = vec![None; count as usize];
                    for (c, z, ifd) in ifds {
                        pages[(c * (planes + 1) + z) as usize] =
                            (ifd < chain.pages.len() as u64).then_some(ifd as usize);
                    }
                    if pages[0].is_none() {
                        return Ok(None);
                    }
                    levels.push((channels + 1, planes + 1, pages));
                }
                let mut levels = levels.into_iter();
                let Some((c, z, pages)) = levels.next() else {
                    continue;
                };
                found.push(ScnImage {
                    name: name.clone(),
                    axes: vec![('C', c), ('Z', z)],
                    pages,
                    levels: levels.map(|(_, _, pages)| pages).collect(),
                });
            }
        }
    }
    Ok((!found.is_empty()).then_some(found))
}
